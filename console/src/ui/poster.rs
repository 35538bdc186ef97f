//! The poster for a service hall's counter: the form's title, the QR code of the public
//! address (drawn as SVG by the `qrcode` crate) and short instructions for citizens,
//! Chinese first and English below. The print stylesheet makes it one A4 page.

use leptos::prelude::*;
use qrcode::render::svg;
use qrcode::QrCode;
use serde_json::Value;

use super::{ctx, label, ErrorLine, Route};
use crate::api::{self, Info};
use crate::i18n::{Lang, EN, ZH};
use crate::platform;

/// The QR code of `text` as an SVG document (dark modules on white, quiet zone included).
pub fn qr_svg(text: &str) -> Result<String, String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<svg::Color>()
        .min_dimensions(240, 240)
        .quiet_zone(true)
        .build())
}

#[component]
pub fn Poster(id: String, version: String) -> impl IntoView {
    let ctx = ctx();
    let title = RwSignal::new(Value::Null);
    let info = RwSignal::new(None::<Info>);
    let error = RwSignal::new(None::<String>);
    let form_url = format!(
        "/api/v1/forms/{}/{}",
        js_sys::encode_uri_component(&id),
        js_sys::encode_uri_component(&version)
    );
    leptos::task::spawn_local(async move {
        match api::get::<Value>(&form_url).await {
            Ok(f) => title.set(f.get("title").cloned().unwrap_or(Value::Null)),
            Err(e) => error.set(Some(ctx.failed(&e))),
        }
        match api::get::<Info>(&format!("{}/info", api::ADMIN)).await {
            Ok(i) => info.set(Some(i)),
            Err(e) => error.set(Some(ctx.failed(&e))),
        }
    });
    let back = Route::Campaign(id, version);
    let back_href = format!("#{}", back.fragment());
    let qr = move || {
        let url = info.get()?.public_url;
        if url.is_empty() {
            return Some(
                view! { <p class="error">{ZH.no_public_url}" "{EN.no_public_url}</p> }.into_any(),
            );
        }
        match qr_svg(&url) {
            Ok(svg) => Some(view! {
                <div class="qr" data-testid="poster-qr" inner_html=svg></div>
                <p class="url">{ZH.poster_or_visit}" / "{EN.poster_or_visit}<br/><strong data-testid="poster-url">{url}</strong></p>
            }.into_any()),
            Err(e) => Some(view! { <p class="error">{e}</p> }.into_any()),
        }
    };
    view! {
        <div class="no-print row">
            <a href=back_href on:click=move |_| ctx.route.set(back.clone())>{move || ctx.t().back}</a>
            <button class="primary" data-testid="poster-print" on:click=move |_| platform::print()>{move || ctx.t().print}</button>
        </div>
        <ErrorLine msg=error testid="poster-error"/>
        <article class="poster" data-testid="poster">
            <h1 data-testid="poster-title">{move || label(&title.get(), Lang::Zh)}</h1>
            <p class="en-title">{move || label(&title.get(), Lang::En)}</p>
            <h2>{ZH.poster_scan}<span class="en">{EN.poster_scan}</span></h2>
            {qr}
            <ol class="steps" lang="zh-CN">{ZH.poster_steps.iter().map(|s| view! { <li>{*s}</li> }).collect_view()}</ol>
            <ol class="steps en" lang="en">{EN.poster_steps.iter().map(|s| view! { <li>{*s}</li> }).collect_view()}</ol>
        </article>
    }
}
