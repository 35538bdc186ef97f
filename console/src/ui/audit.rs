//! The audit log (admin): who did what, from where, newest first.

use leptos::prelude::*;

use super::{ctx, ErrorLine};
use crate::api::{self, Audit};
use crate::platform::local_time;

/// How many entries the view asks for.
const LIMIT: u32 = 500;

#[component]
pub fn AuditLog() -> impl IntoView {
    let ctx = ctx();
    let log = RwSignal::new(None::<Audit>);
    let error = RwSignal::new(None::<String>);
    leptos::task::spawn_local(async move {
        match api::get::<Audit>(&format!("{}/audit?limit={LIMIT}", api::ADMIN)).await {
            Ok(a) => log.set(Some(a)),
            Err(e) => error.set(Some(ctx.failed(&e))),
        }
    });
    view! {
        <h1>{move || ctx.t().audit_log}</h1>
        <ErrorLine msg=error testid="audit-error"/>
        {move || log.get().map(|a| {
            let t = ctx.t();
            view! {
                <div class="scroll"><table data-testid="audit-table">
                    <thead><tr><th>{t.when}</th><th>{t.who}</th><th>{t.address}</th><th>{t.action}</th><th>{t.detail}</th></tr></thead>
                    <tbody>{a.entries.into_iter().map(|e| view! { <tr>
                        <td>{local_time(&e.at)}</td><td>{e.user}</td><td class="mono">{e.address}</td>
                        <td class="mono">{e.action}</td><td>{e.detail}</td>
                    </tr> }).collect_view()}</tbody>
                </table></div>
            }
        })}
    }
}
