//! The campaigns list: each collected form version with its ballots and whether it is
//! closed (and its checksum).

use leptos::prelude::*;

use super::{ctx, label, ErrorLine, Route};
use crate::api::{self, Campaigns as List};
use crate::i18n::fill;
use crate::platform::local_time;

#[component]
pub fn Campaigns() -> impl IntoView {
    let ctx = ctx();
    let list = RwSignal::new(None::<List>);
    let error = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        match api::get::<List>(&format!("{}/campaigns", api::ADMIN)).await {
            Ok(l) => list.set(Some(l)),
            Err(e) => error.set(Some(ctx.failed(&e))),
        }
    });
    view! {
        <h1>{move || ctx.t().campaigns}</h1>
        <ErrorLine msg=error testid="campaigns-error"/>
        {move || list.get().map(|l| {
            let t = ctx.t();
            if l.campaigns.is_empty() {
                return view! { <p>{t.no_campaigns}</p> }.into_any();
            }
            let lang = ctx.lang.get();
            view! {
                <ul class="campaigns">
                    {l.campaigns.into_iter().map(|c| {
                        let route = Route::Campaign(c.form_id.clone(), c.form_version.clone());
                        let href = format!("#{}", route.fragment());
                        let state = match &c.closed {
                            Some(cl) => fill(t.closed_on, &[("at", &local_time(&cl.closed_at)), ("who", &cl.closed_by)]),
                            None if c.served => t.served.to_string(),
                            None => t.not_served.to_string(),
                        };
                        let testid = format!("campaign-{}-{}", c.form_id, c.form_version);
                        view! {
                            <li class="card">
                                <a href=href data-testid=testid on:click=move |_| ctx.route.set(route.clone())>
                                    <strong>{label(&c.title, lang)}</strong>
                                    <span class="muted">{format!(" {}@{}", c.form_id, c.form_version)}</span>
                                </a>
                                <div>{format!("{}: {} · {state}", t.ballots, c.ballots)}</div>
                            </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any()
        })}
    }
}
