//! The components. [`Console`] asks the server who is signed in, provides [`Ctx`] and
//! switches between sign-in and the screens named by the address's fragment.

mod actions;
mod audit;
mod campaigns;
mod chart;
mod dashboard;
mod poster;
mod signin;

use leptos::ev;
use leptos::prelude::*;
use serde_json::Value;

use crate::api::{self, ApiError, Me};
use crate::i18n::{Lang, Texts};
use crate::platform;

/// Which screen the fragment names.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    Campaigns,
    Campaign(String, String),
    Poster(String, String),
    Audit,
}

impl Route {
    /// Reads a fragment (`/c/ID/VERSION`); anything else is the campaigns list.
    pub fn parse(fragment: &str) -> Route {
        let parts: Vec<String> = fragment
            .trim_start_matches('/')
            .split('/')
            .map(|p| {
                js_sys::decode_uri_component(p)
                    .ok()
                    .and_then(|s| s.as_string())
                    .unwrap_or_else(|| p.to_string())
            })
            .collect();
        match parts.as_slice() {
            [c, id, v] if c == "c" => Route::Campaign(id.clone(), v.clone()),
            [c, id, v] if c == "poster" => Route::Poster(id.clone(), v.clone()),
            [c] if c == "audit" => Route::Audit,
            _ => Route::Campaigns,
        }
    }

    /// The fragment of this route.
    pub fn fragment(&self) -> String {
        let enc = |s: &str| String::from(js_sys::encode_uri_component(s));
        match self {
            Route::Campaigns => "/".into(),
            Route::Campaign(id, v) => format!("/c/{}/{}", enc(id), enc(v)),
            Route::Poster(id, v) => format!("/poster/{}/{}", enc(id), enc(v)),
            Route::Audit => "/audit".into(),
        }
    }
}

/// Shared state, provided once as context.
#[derive(Clone, Copy)]
pub struct Ctx {
    pub lang: RwSignal<Lang>,
    /// The signed-in official; `None` shows the sign-in screen.
    pub me: RwSignal<Option<Me>>,
    pub route: RwSignal<Route>,
}

impl Ctx {
    pub fn t(&self) -> &'static Texts {
        self.lang.get().texts()
    }

    /// Whether the signed-in official may do admin actions.
    pub fn admin(&self) -> bool {
        self.me.with(|m| m.as_ref().is_some_and(Me::is_admin))
    }

    /// The words for a failed call; a lost session goes back to sign-in.
    pub fn failed(&self, e: &ApiError) -> String {
        if e.signed_out() {
            self.me.set(None);
        }
        e.words(self.lang.get_untracked().texts())
    }
}

pub fn ctx() -> Ctx {
    expect_context::<Ctx>()
}

/// A label of a form (`{"zh-CN": …, "en": …}`) in the chosen language, else any.
pub fn label(v: &Value, lang: Lang) -> String {
    v.get(lang.tag())
        .or_else(|| v.get("zh-CN"))
        .or_else(|| v.as_object().and_then(|o| o.values().next()))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[component]
pub fn Console() -> impl IntoView {
    let ctx = Ctx {
        lang: RwSignal::new(Lang::Zh),
        me: RwSignal::new(None),
        route: RwSignal::new(Route::parse(&platform::hash())),
    };
    provide_context(ctx);
    let checked = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        if let Ok(me) = api::get::<Me>(&format!("{}/session", api::ADMIN)).await {
            ctx.me.set(Some(me));
        }
        checked.set(true);
    });
    let _ = window_event_listener(ev::hashchange, move |_| {
        ctx.route.set(Route::parse(&platform::hash()));
    });
    Effect::new(move |_| platform::set_document_lang(ctx.lang.get().tag()));
    view! {
        <Show when=move || checked.get() fallback=move || view! { <p class="loading">{move || ctx.t().loading}</p> }>
            <Show when=move || ctx.me.with(Option::is_some) fallback=signin::SignIn>
                <TopBar/>
                <main>
                    {move || match ctx.route.get() {
                        Route::Campaigns => campaigns::Campaigns().into_any(),
                        Route::Campaign(id, v) => view! { <dashboard::CampaignPage id=id version=v/> }.into_any(),
                        Route::Poster(id, v) => view! { <poster::Poster id=id version=v/> }.into_any(),
                        Route::Audit => audit::AuditLog().into_any(),
                    }}
                </main>
            </Show>
        </Show>
    }
}

/// The bar on top: the console's name, navigation, who is signed in, language, sign-out.
#[component]
fn TopBar() -> impl IntoView {
    let ctx = ctx();
    let who = move || {
        let t = ctx.t();
        ctx.me.with(|m| {
            m.as_ref()
                .map(|m| {
                    let role = if m.is_admin() {
                        t.role_admin
                    } else {
                        t.role_viewer
                    };
                    crate::i18n::fill(t.signed_in_as, &[("name", &m.name), ("role", role)])
                })
                .unwrap_or_default()
        })
    };
    let sign_out = move |_| {
        leptos::task::spawn_local(async move {
            let _ = api::delete(&format!("{}/session", api::ADMIN)).await;
            ctx.me.set(None);
        });
    };
    view! {
        <header class="top no-print">
            <strong class="brand">{move || ctx.t().app_title}</strong>
            <nav>
                <a href="#/" data-testid="nav-campaigns" on:click=move |_| ctx.route.set(Route::Campaigns)>{move || ctx.t().campaigns}</a>
                <Show when=move || ctx.admin()>
                    <a href="#/audit" data-testid="nav-audit" on:click=move |_| ctx.route.set(Route::Audit)>{move || ctx.t().audit_log}</a>
                </Show>
            </nav>
            <span class="who" data-testid="who">{who}</span>
            <button class="link" data-testid="lang" on:click=move |_| ctx.lang.update(|l| *l = if *l == Lang::Zh { Lang::En } else { Lang::Zh })>
                {move || ctx.t().other_lang}
            </button>
            <button class="link" data-testid="sign-out" on:click=sign_out>{move || ctx.t().sign_out}</button>
        </header>
    }
}

/// A line that shows an error message when there is one.
#[component]
pub fn ErrorLine(msg: RwSignal<Option<String>>, #[prop(into)] testid: String) -> impl IntoView {
    view! {
        <Show when=move || msg.with(Option::is_some)>
            <p class="error" role="alert" data-testid=testid.clone()>{move || msg.get().unwrap_or_default()}</p>
        </Show>
    }
}
