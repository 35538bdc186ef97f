//! Sign-in: name and password, with the server's refusal in words (wrong password, or too
//! many tries and how long to wait).

use leptos::prelude::*;
use serde_json::json;

use super::{ctx, ErrorLine};
use crate::api::{self, ApiError, Me};
use crate::i18n::Lang;

#[component]
pub fn SignIn() -> impl IntoView {
    let ctx = ctx();
    let name = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let body =
            json!({"name": name.get_untracked().trim(), "password": password.get_untracked()});
        leptos::task::spawn_local(async move {
            match api::post::<Me>(&format!("{}/session", api::ADMIN), &body).await {
                Ok(me) => {
                    password.set(String::new());
                    ctx.me.set(Some(me));
                }
                Err(e) => {
                    let t = ctx.lang.get_untracked().texts();
                    error.set(Some(match e {
                        ApiError::Status { status: 401, .. } => t.wrong_password.to_string(),
                        e => e.words(t),
                    }));
                }
            }
            busy.set(false);
        });
    };
    view! {
        <main class="signin">
            <h1>{move || ctx.t().app_title}</h1>
            <button class="link" data-testid="lang" on:click=move |_| ctx.lang.update(|l| *l = if *l == Lang::Zh { Lang::En } else { Lang::Zh })>
                {move || ctx.t().other_lang}
            </button>
            <form on:submit=submit data-testid="signin-form">
                <label>{move || ctx.t().name}
                    <input data-testid="signin-name" autocomplete="username" required
                        prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
                </label>
                <label>{move || ctx.t().password}
                    <input data-testid="signin-password" type="password" autocomplete="current-password" required
                        prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/>
                </label>
                <button type="submit" class="primary" data-testid="signin-submit" disabled=move || busy.get()>
                    {move || ctx.t().sign_in}
                </button>
            </form>
            <ErrorLine msg=error testid="signin-error"/>
        </main>
    }
}
