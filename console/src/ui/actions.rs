//! The campaign's actions below its dashboard: issuing access codes (the sheet or list is
//! downloaded at once: the codes are never shown again), recording meeting attendance,
//! closing the campaign after a confirmation that names it, and the exports with their
//! checksum. Viewers see the counts only; the server refuses them the actions anyway.

use leptos::prelude::*;
use serde_json::json;

use super::dashboard::{FormInfo, Live};
use super::{ctx, ErrorLine};
use crate::api::{self, campaign_url, AttendanceList, Closure, FileAnswer};
use crate::i18n::fill;
use crate::platform::{self, local_time};

/// Saves a file answer under the server's name, else `fallback`.
fn save(file: &FileAnswer, fallback: &str) -> Result<String, String> {
    let name = file
        .filename
        .clone()
        .unwrap_or_else(|| fallback.to_string());
    platform::download(&name, &file.mime, &file.bytes)?;
    Ok(name)
}

#[component]
pub fn CodesSection(
    id: String,
    version: String,
    live: Live,
    form: RwSignal<FormInfo>,
) -> impl IntoView {
    let ctx = ctx();
    let group = RwSignal::new(String::new());
    let count = RwSignal::new(String::from("60"));
    let error = RwSignal::new(None::<String>);
    let done = RwSignal::new(None::<(String, FileAnswer, String)>);
    let busy = RwSignal::new(false);
    let code_groups = move || {
        form.with(|f| {
            f.groups
                .iter()
                .filter(|g| g.2)
                .map(|g| g.0.clone())
                .collect::<Vec<_>>()
        })
    };
    Effect::new(move |_| {
        if group.with_untracked(String::is_empty) {
            if let Some(g) = code_groups().into_iter().next() {
                group.set(g);
            }
        }
    });
    let campaign = StoredValue::new((id, version));
    let issue = move |format: &'static str| {
        move |_| {
            let (id, version) = campaign.get_value();
            let t = ctx.lang.get_untracked().texts();
            let Ok(n) = count.get_untracked().trim().parse::<u32>() else {
                error.set(Some(format!("{}: 1–2000", t.issue_count)));
                return;
            };
            let g = group.get_untracked();
            let url = campaign_url(&id, &version, &format!("/codes?format={format}"));
            let fallback = format!("codes-{id}-{version}-{g}.{format}");
            busy.set(true);
            error.set(None);
            leptos::task::spawn_local(async move {
                match api::file(&url, Some(&json!({"group": g, "count": n}))).await {
                    Ok(file) => match save(&file, &fallback) {
                        Ok(name) => done.set(Some((g, file, name))),
                        Err(e) => error.set(Some(e)),
                    },
                    Err(e) => error.set(Some(ctx.failed(&e))),
                }
                busy.set(false);
            });
        }
    };
    let counts = move || {
        let t = ctx.t();
        let lang = ctx.lang.get();
        let list = live.codes.get().map(|c| c.groups).unwrap_or_default();
        view! { <ul data-testid="code-counts">{list.into_iter().map(|c| {
            let g = form.with(|f| f.group_label(&c.group, lang));
            view! { <li data-testid=format!("code-count-{}", c.group)>{format!("{g}: {} {} · {} {}", t.issued, c.issued, t.used, c.used)}</li> }
        }).collect_view()}</ul> }
    };
    view! {
        <section class="card" data-testid="codes-section">
            <h2>{move || ctx.t().codes}</h2>
            {counts}
            <Show when=move || ctx.admin()>
                <Show when=move || !code_groups().is_empty() fallback=move || view! { <p class="muted">{ctx.t().no_code_groups}</p> }>
                    <p class="note">{move || ctx.t().codes_once}</p>
                    <div class="row">
                        <select data-testid="codes-group" on:change=move |e| group.set(event_target_value(&e))>
                            {move || code_groups().into_iter().map(|g| {
                                let shown = form.with(|f| f.group_label(&g, ctx.lang.get()));
                                let selected = group.get() == g;
                                view! { <option value=g.clone() selected=selected>{shown}</option> }
                            }).collect_view()}
                        </select>
                        <label>{move || ctx.t().issue_count}" "
                            <input data-testid="codes-count" type="number" min="1" max="2000" inputmode="numeric"
                                prop:value=move || count.get() on:input=move |e| count.set(event_target_value(&e))/>
                        </label>
                    </div>
                    <div class="row">
                        <button class="primary" data-testid="issue-pdf" disabled=move || busy.get() on:click=issue("pdf")>{move || ctx.t().issue_pdf}</button>
                        <button data-testid="issue-csv" disabled=move || busy.get() on:click=issue("csv")>{move || ctx.t().issue_csv}</button>
                    </div>
                </Show>
            </Show>
            <ErrorLine msg=error testid="codes-error"/>
            {move || done.get().map(|(g, file, name)| {
                let t = ctx.t();
                let shown = form.with(|f| f.group_label(&g, ctx.lang.get()));
                let n = count.get_untracked();
                view! {
                    <p class="ok" data-testid="codes-issued">{fill(t.issued_batch, &[("n", &n), ("group", &shown)])}" "
                        <button class="link" data-testid="codes-again" on:click=move |_| { let _ = platform::download(&name, &file.mime, &file.bytes); }>{t.download_again}</button>
                    </p>
                }
            })}
        </section>
    }
}

#[component]
pub fn MeetingSection(id: String, version: String, form: RwSignal<FormInfo>) -> impl IntoView {
    let ctx = ctx();
    let rows = RwSignal::new(None::<AttendanceList>);
    let error = RwSignal::new(None::<String>);
    let url = campaign_url(&id, &version, "/attendance");
    let load = {
        let url = url.clone();
        move || {
            let url = url.clone();
            leptos::task::spawn_local(async move {
                match api::get::<AttendanceList>(&url).await {
                    Ok(l) => rows.set(Some(l)),
                    Err(e) => error.set(Some(ctx.failed(&e))),
                }
            });
        }
    };
    load();
    let groups = move || form.with(|f| f.groups.iter().map(|g| g.0.clone()).collect::<Vec<_>>());
    view! {
        <section class="card" data-testid="meeting-section">
            <h2>{move || ctx.t().meeting}</h2>
            <Show when=move || ctx.admin()><p class="muted">{move || ctx.t().meeting_hint}</p></Show>
            <div class="scroll"><table>
                <thead><tr><th>{move || ctx.t().group}</th><th>{move || ctx.t().present}</th><th>{move || ctx.t().members}</th><th></th></tr></thead>
                <tbody>
                {move || groups().into_iter().map(|g| {
                    let current = rows.with(|r| r.as_ref().and_then(|r| r.groups.iter().find(|a| a.group == g).cloned()));
                    let present = RwSignal::new(current.as_ref().map(|a| a.present.to_string()).unwrap_or_default());
                    let members = RwSignal::new(current.as_ref().and_then(|a| a.members).map(|m| m.to_string()).unwrap_or_default());
                    let put_url = format!("{url}/{}", js_sys::encode_uri_component(&g));
                    let load = load.clone();
                    let record = move |_| {
                        let t = ctx.lang.get_untracked().texts();
                        let p = present.get_untracked().trim().parse::<u64>();
                        let m = members.get_untracked();
                        let m = m.trim();
                        let m = if m.is_empty() { Ok(None) } else { m.parse::<u64>().map(Some) };
                        let (Ok(p), Ok(m)) = (p, m) else {
                            error.set(Some(format!("{} / {}: 0, 1, 2, …", t.present, t.members)));
                            return;
                        };
                        error.set(None);
                        let (put_url, load) = (put_url.clone(), load.clone());
                        leptos::task::spawn_local(async move {
                            match api::put::<serde_json::Value>(&put_url, &json!({"present": p, "members": m})).await {
                                Ok(_) => load(),
                                Err(e) => error.set(Some(ctx.failed(&e))),
                            }
                        });
                    };
                    let state = current.map(|a| fill(ctx.t().recorded, &[("who", &a.recorded_by), ("at", &local_time(&a.recorded_at))]))
                        .unwrap_or_else(|| ctx.t().not_recorded.to_string());
                    view! { <tr>
                        <th>{form.with(|f| f.group_label(&g, ctx.lang.get()))}</th>
                        <td><input type="number" min="0" inputmode="numeric" data-testid=format!("present-{g}") disabled=move || !ctx.admin()
                            prop:value=move || present.get() on:input=move |e| present.set(event_target_value(&e))/></td>
                        <td><input type="number" min="0" inputmode="numeric" data-testid=format!("members-{g}") disabled=move || !ctx.admin()
                            prop:value=move || members.get() on:input=move |e| members.set(event_target_value(&e))/></td>
                        <td><Show when=move || ctx.admin()><button data-testid=format!("record-{g}") on:click=record.clone()>{ctx.t().record}</button></Show>
                            <small class="muted">{state.clone()}</small></td>
                    </tr> }
                }).collect_view()}
                </tbody>
            </table></div>
            <ErrorLine msg=error testid="meeting-error"/>
        </section>
    }
}

#[component]
pub fn CloseSection(
    id: String,
    version: String,
    live: Live,
    #[prop(into)] title: Signal<String>,
) -> impl IntoView {
    let ctx = ctx();
    let confirming = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let exported = RwSignal::new(None::<(String, String)>);
    // The closure this page made, shown at once (the campaigns row follows on refresh).
    let closed_here = RwSignal::new(None::<Closure>);
    let closure = move || {
        closed_here.get().or_else(|| {
            live.campaign
                .with(|c| c.as_ref().and_then(|c| c.closed.clone()))
        })
    };
    let close = {
        let url = campaign_url(&id, &version, "/close");
        move |_| {
            let url = url.clone();
            confirming.set(false);
            leptos::task::spawn_local(async move {
                match api::post::<Closure>(&url, &json!({})).await {
                    Ok(c) => closed_here.set(Some(c)),
                    Err(e) => error.set(Some(ctx.failed(&e))),
                }
            });
        }
    };
    let export = {
        let (id, version) = (id.clone(), version.clone());
        move |format: &'static str| {
            let url = campaign_url(&id, &version, &format!("/export?format={format}"));
            let fallback = format!("{id}-{version}.{format}");
            move |_| {
                let (url, fallback) = (url.clone(), fallback.clone());
                leptos::task::spawn_local(async move {
                    match api::file(&url, None).await {
                        Ok(file) => match save(&file, &fallback) {
                            Ok(name) => exported.set(Some((name, file.sha256.unwrap_or_default()))),
                            Err(e) => error.set(Some(e)),
                        },
                        Err(e) => error.set(Some(ctx.failed(&e))),
                    }
                });
            }
        }
    };
    let campaign = StoredValue::new((id.clone(), version.clone()));
    view! {
        <section class="card" data-testid="close-section">
            <h2>{move || ctx.t().close_and_export}</h2>
            {move || closure().map(|c| view! {
                <p class="ok">{fill(ctx.t().closed_checksum, &[("n", &c.ballots.to_string())])}" "
                    <code class="mono" data-testid="closure-sha256">{c.sha256.clone()}</code></p>
                <p class="muted">{fill(ctx.t().closed_on, &[("at", &local_time(&c.closed_at)), ("who", &c.closed_by)])}</p>
            })}
            <Show when=move || ctx.admin()>
                <div class="row">
                    <button data-testid="export-csv" on:click=export("csv")>{move || ctx.t().export_csv}</button>
                    <button data-testid="export-json" on:click=export("json")>{move || ctx.t().export_json}</button>
                    <Show when=move || closure().is_none()>
                        <button class="danger" data-testid="close-campaign" on:click=move |_| confirming.set(true)>{move || ctx.t().close_campaign}</button>
                    </Show>
                </div>
            </Show>
            {move || exported.get().map(|(name, sha)| view! {
                <p data-testid="export-done">{fill(ctx.t().exported, &[("file", &name)])}" "<code class="mono" data-testid="export-sha256">{sha}</code></p>
            })}
            <Show when=move || confirming.get()>
                <div class="confirm" role="alertdialog" data-testid="close-confirm">
                    <p><strong>{move || fill(ctx.t().close_confirm, &[("title", &title.get()), ("id", &campaign.get_value().0), ("version", &campaign.get_value().1)])}</strong></p>
                    <p>{move || ctx.t().close_final}</p>
                    <div class="row">
                        <button class="danger" data-testid="close-yes" on:click=close.clone()>{move || ctx.t().close_yes}</button>
                        <button data-testid="close-cancel" on:click=move |_| confirming.set(false)>{move || ctx.t().cancel}</button>
                    </div>
                </div>
            </Show>
            <ErrorLine msg=error testid="close-error"/>
        </section>
    }
}
