//! The administrator's screen, behind a PIN chosen on first use: device name, ballots by
//! group, storage, export (CSV through the `analysis` writer, and JSON), the entries that
//! cannot be read (shown and exported raw), clearing only after everything has been
//! exported and a typed confirmation, loading a new form, kiosk settings. Failed PINs and
//! the lockout are kept in storage; a damaged settings record is recovered only through a
//! typed word and a new PIN.

use std::collections::BTreeMap;

use analysis::error::cut;
use analysis::{json, wide_csv};
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::Ctx;
use crate::i18n::fill;
use crate::model::{self, keys, ExportMark, Kiosk, PinHash, PinLock};
use crate::outbox;
use crate::platform;
use crate::store::{self, Contents, Damaged, KeyValue};
use crate::{FormSource, LoadedForm};

#[component]
pub fn AdminScreen() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let unlocked = ctx.admin_unlocked;
    view! {
        <section class="admin" data-testid="admin">
            <h1>{t.admin_title}</h1>
            <SettingsRepaired/>
            {move || if unlocked.get() { view! { <Panel/> }.into_any() } else { view! { <PinGate unlocked=unlocked/> }.into_any() }}
        </section>
    }
}

/// What a damaged settings record lost, until the official says it was seen.
#[component]
fn SettingsRepaired() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let lost = move || ctx.settings.with(|s| s.repaired.join(", "));
    let seen = move |_| {
        let mut s = ctx.settings.get_untracked();
        s.repaired.clear();
        if let Err(e) = ctx.save_settings(s) {
            ctx.notice.set(Some(fill(t.settings_failed, &[("e", &e)])));
        }
    };
    view! {
        <Show when=move || !lost().is_empty()>
            <div class="warning" role="alert" data-testid="settings-damaged">
                <p>{move || fill(t.settings_damaged, &[("fields", &lost())])}</p>
                <Show when=move || ctx.admin_unlocked.get()>
                    <button class="secondary" data-testid="settings-damaged-ok" on:click=seen>{t.settings_damaged_ok}</button>
                </Show>
            </div>
        </Show>
    }
}

/// Whether `typed` is the confirmation word in either language.
fn typed_word(typed: &str, zh: &str, en: &str) -> bool {
    let typed = typed.trim();
    typed == zh || typed.eq_ignore_ascii_case(en)
}

#[component]
fn PinGate(unlocked: RwSignal<bool>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let pin = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let word = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let lost = ctx.settings.with_untracked(|s| s.pin_lost);
    let creating = lost || ctx.settings.with_untracked(|s| s.pin.is_none());
    // Read from storage on every try, so neither cancel, reload nor another tab resets it.
    let lock_now =
        move || PinLock::read(ctx.kv().get(keys::PIN_LOCK).as_deref(), platform::now_ms());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let p = pin.get_untracked();
        if creating {
            if lost
                && !typed_word(
                    &word.get_untracked(),
                    crate::i18n::ZH.reset_word,
                    crate::i18n::EN.reset_word,
                )
            {
                error.set(Some(fill(t.reset_type, &[("w", &t.reset_word)])));
            } else if !model::pin_is_acceptable(&p) {
                error.set(Some(t.pin_too_short.into()));
            } else if p != repeat.get_untracked() {
                error.set(Some(t.pin_mismatch.into()));
            } else {
                let mut s = ctx.settings.get_untracked();
                s.pin = Some(PinHash::new(&p, &platform::random_bytes::<16>()));
                if s.pin_lost {
                    // What the lost record had exported cannot be known: export again.
                    s.pin_lost = false;
                    s.exported.clear();
                    s.damaged_exported = None;
                }
                match ctx.save_settings(s) {
                    Ok(()) => unlocked.set(true),
                    Err(e) => error.set(Some(fill(t.settings_failed, &[("e", &e)]))),
                }
            }
        } else {
            let now = platform::now_ms();
            let mut lock = lock_now();
            if let Some(n) = lock.seconds_left(now) {
                error.set(Some(fill(t.pin_locked, &[("n", &n)])));
            } else if ctx
                .settings
                .with_untracked(|s| s.pin.as_ref().is_some_and(|h| h.matches(&p)))
            {
                ctx.kv().remove(keys::PIN_LOCK);
                unlocked.set(true);
            } else {
                lock.failed(now);
                if let Ok(json) = serde_json::to_string(&lock) {
                    let _ = store::set_vital(&ctx.kv(), keys::PIN_LOCK, &json);
                }
                error.set(Some(t.pin_wrong.into()));
            }
        }
        pin.set(String::new());
        repeat.set(String::new());
    };
    view! {
        <form class="pin" on:submit=submit data-testid="pin-form">
            {lost.then(|| view! {
                <p class="warning" data-testid="pin-lost">{fill(t.pin_lost, &[("w", &t.reset_word)])}</p>
                <label for="reset-word">{fill(t.reset_type, &[("w", &t.reset_word)])}</label>
                <input id="reset-word" type="text" autocomplete="off" data-testid="reset-word"
                    prop:value=word on:input=move |ev| word.set(event_target_value(&ev))/>
            })}
            <label for="pin">{if lost { t.pin_new } else if creating { t.pin_create } else { t.pin_enter }}</label>
            <input id="pin" type="password" inputmode="numeric" autocomplete="off" data-testid="pin"
                prop:value=pin on:input=move |ev| pin.set(event_target_value(&ev))/>
            {creating.then(|| view! {
                <p class="muted">{t.pin_create_hint}</p>
                <label for="pin-repeat">{t.pin_repeat}</label>
                <input id="pin-repeat" type="password" inputmode="numeric" autocomplete="off" data-testid="pin-repeat"
                    prop:value=repeat on:input=move |ev| repeat.set(event_target_value(&ev))/>
            })}
            <p class="error" role="alert" data-testid="pin-error">{error}</p>
            <div class="actions">
                <button type="submit" class="primary" data-testid="pin-ok">{if lost { t.pin_reset } else { t.pin_ok }}</button>
                <button type="button" class="secondary" data-testid="pin-cancel" on:click=move |_| ctx.go_to_start()>{t.cancel}</button>
            </div>
        </form>
    }
}

/// A file-name-safe version of a device id.
fn file_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Local date and time as `20261122-0930`, for file names.
fn local_stamp() -> String {
    let d = js_sys::Date::new_0();
    format!(
        "{:04}{:02}{:02}-{:02}{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    )
}

/// One stored form's line in the panel.
#[derive(Debug, Clone, PartialEq)]
struct FormSummary {
    key: String,
    title: String,
    ballots: usize,
    /// Its lines that could not be decoded (listed with the damaged entries).
    damaged: usize,
    /// (group label, group id, ballots)
    by_group: Vec<(String, String, usize)>,
}

/// The panel's view of one form's ballots, labelled from that form.
fn summarize(
    fkey: &str,
    ballots: &[analysis::Ballot],
    damaged: &[Damaged],
    form_json: Option<String>,
    lang: &str,
) -> FormSummary {
    let form = form_json.and_then(|j| LoadedForm::parse(fkey, j, FormSource::Admin).ok());
    let mut by_group: BTreeMap<String, usize> = BTreeMap::new();
    for b in ballots {
        *by_group.entry(b.group.clone()).or_insert(0) += 1;
    }
    let by_group = by_group
        .into_iter()
        .map(|(g, n)| {
            let label = form
                .as_ref()
                .and_then(|f| f.form.group(&g))
                .map(|x| x.label.get(lang).to_string());
            (label.unwrap_or_else(|| g.clone()), g, n)
        })
        .collect();
    FormSummary {
        key: fkey.to_string(),
        title: form
            .map(|f| f.form.title.get(lang).to_string())
            .unwrap_or_default(),
        ballots: ballots.len(),
        damaged: damaged
            .iter()
            .filter(|d| d.form_key.as_deref() == Some(fkey))
            .count(),
        by_group,
    }
}

/// The damaged entries as one JSON document, each whole and as stored.
fn damaged_document(device: &str, at: &str, damaged: &[Damaged]) -> String {
    let entries: Vec<serde_json::Value> = damaged
        .iter()
        .map(|d| {
            serde_json::json!({
                "key": d.key, "line": d.line, "form": d.form_key, "reason": d.reason, "raw": d.raw,
            })
        })
        .collect();
    serde_json::json!({ "device_id": device, "exported_at": at, "entries": entries }).to_string()
}

#[component]
fn Panel() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    // Messages go to the app's notice bar, which stays in view (and survives the panel
    // being rebuilt when the language changes).
    let message = ctx.notice;
    let lang = ctx.lang_now();
    // Everything stored, re-read when the store changes (here or in another tab), and
    // once now: another tab may have stored ballots since this one last looked.
    ctx.store.update_value(|s| s.refresh());
    let contents = Memo::new(move |_| {
        ctx.store_rev.track();
        ctx.store.with_value(|s| s.contents())
    });
    let summary = Memo::new(move |_| {
        contents.with(|c| {
            c.forms
                .iter()
                .map(|(fkey, ballots)| {
                    summarize(
                        fkey,
                        ballots,
                        &c.damaged,
                        ctx.store.with_value(|s| s.form_json(fkey)),
                        &lang,
                    )
                })
                .collect::<Vec<_>>()
        })
    });
    // The server's answers, re-counted when they change (here or in another tab).
    let tally = Memo::new(move |_| {
        ctx.store_rev.track();
        ctx.sync_rev.track();
        ctx.store.with_value(outbox::tally)
    });
    let all_exported = move || {
        ctx.settings
            .with(|s| contents.with(|c| tally.with(|t| model::clearable(c, s, t))))
    };
    let total =
        Signal::derive(move || summary.with(|f| f.iter().map(|x| x.ballots).sum::<usize>()));
    let damaged_n = Signal::derive(move || contents.with(|c| c.damaged.len()));

    let export = move |fkey: String, as_csv: bool| {
        let t = ctx.t();
        let loaded = ctx
            .store
            .with_value(|s| s.form_json(&fkey))
            .map(|json| LoadedForm::parse(&fkey, json, FormSource::Admin));
        let loaded = match loaded {
            Some(Ok(l)) => l,
            Some(Err(p)) => {
                return message.set(Some(fill(t.export_failed, &[("e", &cut(&p.to_string()))])))
            }
            None => return message.set(Some(fill(t.export_failed, &[("e", &fkey)]))),
        };
        let mut ballots = read_afresh(ctx).forms.remove(&fkey).unwrap_or_default();
        // Stored lines never hold a 投票码 (it waits beside them, see `store`); cleared here
        // as well so that no export can ever put a code next to a ballot's answers.
        ballots.iter_mut().for_each(|b| b.access_code = None);
        let device = ctx.settings.with_untracked(|s| s.device_id.clone());
        let name = format!(
            "pingyi-{}-{}-{}",
            file_part(&device),
            file_part(&loaded.form.id),
            local_stamp()
        );
        let result = if as_csv {
            platform::download(
                &format!("{name}.csv"),
                "text/csv;charset=utf-8",
                &wide_csv::to_string(&loaded.form, &ballots),
            )
        } else {
            platform::download(
                &format!("{name}.json"),
                "application/json",
                &json::to_string(&ballots),
            )
        };
        match result {
            Ok(()) => {
                let mut s = ctx.settings.get_untracked();
                let at = platform::now_iso();
                let last_id = ballots.last().map(|b| b.id.clone()).unwrap_or_default();
                s.exported.insert(
                    fkey,
                    ExportMark {
                        count: ballots.len(),
                        last_id,
                        at: at.clone(),
                    },
                );
                let done = fill(t.exported_at, &[("n", &ballots.len()), ("t", &at)]);
                message.set(Some(match ctx.save_settings(s) {
                    Ok(()) => done,
                    Err(e) => format!("{done} {}", fill(t.export_mark_failed, &[("e", &e)])),
                }));
            }
            Err(e) => message.set(Some(fill(t.export_failed, &[("e", &e)]))),
        }
    };
    view! {
        <div class="panel" data-testid="admin-panel">
            <DeviceSection message=message/>

            <section>
                <h2>{t.ballots_stored}</h2>
                <p class="big-number" data-testid="ballot-total">{total}</p>
                {move || summary.get().into_iter().enumerate().map(|(k, f)| {
                    let rows = f.by_group
                        .into_iter()
                        .map(|(label, g, c)| view! { <tr><td>{label}</td><td data-testid=format!("count-{g}")>{c}</td></tr> })
                        .collect_view();
                    let (k1, k2) = (f.key.clone(), f.key.clone());
                    view! {
                        <div class="form-ballots">
                            <h3>{fill(t.form_of_ballots, &[("form", &f.key), ("n", &f.ballots)])}</h3>
                            <p class="muted">{f.title}</p>
                            <table>
                                <thead><tr><th scope="col">{t.group_col}</th><th scope="col">{t.count_col}</th></tr></thead>
                                <tbody>{rows}</tbody>
                            </table>
                            {(f.damaged > 0).then(|| view! { <p class="warning">{fill(t.damaged_lines, &[("n", &f.damaged)])}</p> })}
                            <div class="actions">
                                <button class="primary" data-testid=format!("export-csv-{k}") on:click=move |_| export(k1.clone(), true)>{t.export_csv}</button>
                                <button class="secondary" data-testid=format!("export-json-{k}") on:click=move |_| export(k2.clone(), false)>{t.export_json}</button>
                            </div>
                        </div>
                    }
                }).collect_view()}
                <p class="muted" hidden=Signal::derive(move || total.get() > 0 || damaged_n.get() > 0)>{t.nothing_to_export}</p>
            </section>

            <super::sync::SyncSection tally=tally message=message/>

            <DamagedSection contents=contents message=message/>

            <StorageSection/>
            <ClearSection all_exported=Signal::derive(all_exported) anything=Signal::derive(move || total.get() + damaged_n.get() > 0) message=message/>
            <FormSection message=message/>
            <KioskSection message=message/>
            <PinSection message=message/>

            <div class="actions">
                <button class="secondary big" data-testid="admin-close" on:click=move |_| ctx.go_to_start()>{t.close_admin}</button>
            </div>
        </div>
    }
}

/// Reads the store afresh (another tab may have stored more) and bumps the panel.
fn read_afresh(ctx: Ctx) -> Contents {
    ctx.store.update_value(|s| s.refresh());
    ctx.store_rev.update(|r| *r += 1);
    ctx.store.with_value(|s| s.contents())
}

/// The entries that cannot be read: each with its key, why, and the start of what it
/// holds; and their raw export, which clearing waits for.
#[component]
fn DamagedSection(contents: Memo<Contents>, message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let damaged_n = Signal::derive(move || contents.with(|c| c.damaged.len()));
    let export_damaged = move |_| {
        let t = ctx.t();
        let c = read_afresh(ctx);
        let device = ctx.settings.with_untracked(|s| s.device_id.clone());
        let at = platform::now_iso();
        let name = format!(
            "pingyi-{}-damaged-{}.json",
            file_part(&device),
            local_stamp()
        );
        match platform::download(
            &name,
            "application/json",
            &damaged_document(&device, &at, &c.damaged),
        ) {
            Ok(()) => {
                let mut s = ctx.settings.get_untracked();
                s.damaged_exported = Some(c.damaged_fingerprint());
                let done = fill(t.damaged_exported, &[("n", &c.damaged.len()), ("t", &at)]);
                message.set(Some(match ctx.save_settings(s) {
                    Ok(()) => done,
                    Err(e) => format!("{done} {}", fill(t.export_mark_failed, &[("e", &e)])),
                }));
            }
            Err(e) => message.set(Some(fill(t.export_failed, &[("e", &e)]))),
        }
    };

    view! {
        <Show when=move || { damaged_n.get() > 0 }>
            <section data-testid="damaged">
                <h2>{t.damaged_title}</h2>
                <p class="warning" data-testid="damaged-total">{move || fill(t.damaged_total, &[("n", &damaged_n.get())])}</p>
                <ul class="problems">
                    {move || contents.with(|c| c.damaged.iter().map(|d| {
                        let line = d.line.map(|n| format!(" #{n}")).unwrap_or_default();
                        let text = fill(t.damaged_entry, &[("key", &d.key), ("line", &line), ("reason", &d.reason), ("raw", &cut(&d.raw))]);
                        view! { <li data-testid="damaged-entry">{text}</li> }
                    }).collect_view())}
                </ul>
                <button class="primary" data-testid="export-damaged" on:click=export_damaged>{t.export_damaged}</button>
            </section>
        </Show>
    }
}

#[component]
fn DeviceSection(message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let name = RwSignal::new(ctx.settings.with_untracked(|s| s.device_id.clone()));
    let save = move |_| {
        let n = name.get_untracked().trim().to_string();
        // The id is the second part of every stored chunk's first line, after a tab.
        if n.is_empty() || n.chars().any(char::is_control) {
            message.set(Some(t.device_id_bad.to_string()));
            return;
        }
        let mut s = ctx.settings.get_untracked();
        s.device_id = n;
        message.set(Some(match ctx.save_settings(s) {
            Ok(()) => t.saved.to_string(),
            Err(e) => fill(t.settings_failed, &[("e", &e)]),
        }));
    };
    view! {
        <section>
            <h2>{t.device}</h2>
            <label for="device-id">{t.device_id}</label>
            <div class="inline">
                <input id="device-id" type="text" maxlength="40" data-testid="device-id"
                    prop:value=name on:input=move |ev| name.set(event_target_value(&ev))/>
                <button class="secondary" data-testid="device-save" on:click=save>{t.save}</button>
            </div>
        </section>
    }
}

#[component]
fn StorageSection() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let line = move || {
        // Sizes in KB as the browser counts them: two bytes per UTF-16 unit.
        let used = ctx.used();
        let cap = ctx.capacity.get().unwrap_or(used).max(1);
        let left = cap.saturating_sub(used);
        let per = ctx.store.with_value(|s| s.largest_line()).max(100);
        let more = left / per;
        let p = (used as f64 / cap as f64 * 100.0).floor() as u64;
        let kb = |units: u64| units * 2 / 1024;
        (
            fill(
                t.storage_line,
                &[
                    ("used", &kb(used)),
                    ("left", &kb(left)),
                    ("n", &more),
                    ("cap", &kb(cap)),
                    ("p", &p),
                ],
            ),
            p,
        )
    };
    view! {
        <section>
            <h2>{t.storage}</h2>
            <p data-testid="storage-line">{Signal::derive(move || line().0)}</p>
            {move || {
                let (frac, fits) = ctx.space();
                if !fits {
                    Some(view! { <p class="warning full" role="alert" data-testid="admin-storage-full">{t.storage_full}</p> }.into_any())
                } else if frac >= 0.8 {
                    Some(view! { <p class="warning" role="alert" data-testid="admin-storage-warning">{fill(t.storage_nearly_full, &[("p", &line().1)])}</p> }.into_any())
                } else {
                    None
                }
            }}
            <p class="muted">{Signal::derive(move || match ctx.persisted.get() {
                Some(true) => t.storage_persistent,
                _ => t.storage_not_persistent,
            })}</p>
        </section>
    }
}

#[component]
fn ClearSection(
    all_exported: Signal<bool>,
    anything: Signal<bool>,
    message: RwSignal<Option<String>>,
) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let typed = RwSignal::new(String::new());
    let word_ok = move || {
        typed_word(
            &typed.get(),
            crate::i18n::ZH.clear_word,
            crate::i18n::EN.clear_word,
        )
    };
    let clear = move |_| {
        if !(all_exported.get_untracked() && word_ok()) {
            return;
        }
        let settings = ctx.settings.get_untracked();
        // Checked again on the store read afresh: another tab may have stored more.
        let cleared = ctx
            .store
            .try_update_value(|s| {
                s.clear_if(|st, c: &Contents| model::clearable(c, &settings, &outbox::tally(st)))
            })
            .unwrap_or(false);
        ctx.store_rev.update(|r| *r += 1);
        ctx.sync_rev.update(|r| *r += 1);
        if !cleared {
            message.set(Some(t.clear_refused.to_string()));
            return;
        }
        let mut s = settings;
        s.exported.clear();
        s.damaged_exported = None;
        // The ballots are gone either way; a stale export mark only matters once new ones
        // arrive, and then it no longer matches the store, so clearing stays refused.
        let saved = ctx.save_settings(s);
        store::keep_reserve(&ctx.kv());
        typed.set(String::new());
        message.set(Some(match saved {
            Ok(()) => t.cleared.to_string(),
            Err(e) => format!("{} {}", t.cleared, fill(t.settings_failed, &[("e", &e)])),
        }));
    };
    view! {
        <section>
            <h2>{t.clear}</h2>
            <Show when=move || { anything.get() && !all_exported.get() }>
                <p class="muted" data-testid="clear-needs-export">{t.clear_needs_export}</p>
            </Show>
            <Show when=move || { anything.get() && all_exported.get() }>
                <label for="clear-word">{fill(t.clear_type, &[("w", &t.clear_word)])}</label>
                <div class="inline">
                    <input id="clear-word" type="text" autocomplete="off" data-testid="clear-word"
                        prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev))/>
                    <button class="danger" data-testid="clear-button" disabled=Signal::derive(move || !word_ok()) on:click=clear>{t.clear_button}</button>
                </div>
            </Show>
        </section>
    }
}

#[component]
fn FormSection(message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let problems = RwSignal::new(Vec::<String>::new());
    let on_file = move |ev: leptos::ev::Event| {
        let Some(input) = ev
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let name = file.name();
        input.set_value("");
        leptos::task::spawn_local(async move {
            let t = ctx.t();
            if ctx.draft.get_untracked().is_some() {
                problems.set(vec![t.draft_in_progress.into()]);
                return;
            }
            let text = match platform::read_file(file).await {
                Ok(t) => t,
                Err(e) => {
                    problems.set(vec![format!("{name}: {e}")]);
                    return;
                }
            };
            match LoadedForm::parse(&name, text.clone(), FormSource::Admin) {
                Err(p) => {
                    let mut list = vec![fill(t.form_problems, &[("n", &p.problems.len())])];
                    list.extend(p.problems.iter().map(|x| x.to_string()));
                    problems.set(list);
                }
                Ok(loaded) => match ctx.kv().set(keys::ACTIVE_FORM, &text) {
                    Ok(()) => {
                        problems.set(Vec::new());
                        ctx.lang.set(loaded.form.languages[0].clone());
                        ctx.form.set(Some(loaded));
                        message.set(Some(t.form_loaded.into()));
                    }
                    Err(e) => problems.set(vec![fill(t.settings_failed, &[("e", &e)])]),
                },
            }
        });
    };
    let use_server = move |_| {
        ctx.kv().remove(keys::ACTIVE_FORM);
        leptos::task::spawn_local(async move {
            if let Ok(json) = platform::fetch_text("form.json").await {
                if let Ok(f) = LoadedForm::parse("form.json", json, FormSource::Server) {
                    ctx.form.set(Some(f));
                    message.set(Some(t.form_loaded.into()));
                }
            }
        });
    };
    view! {
        <section>
            <h2>{t.form_section}</h2>
            <p data-testid="current-form">{move || ctx.form.get().map(|f| fill(t.current_form, &[
                ("title", &f.form.title.get(&ctx.lang.get())), ("id", &f.form.id), ("v", &f.form.version),
            ]))}</p>
            <label for="form-file">{t.load_form}</label>
            <input id="form-file" type="file" accept=".json,application/json" data-testid="form-file" on:change=on_file/>
            <Show when=move || !problems.get().is_empty()>
                <ul class="problems" role="alert" data-testid="form-problems">
                    {move || problems.get().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
                </ul>
            </Show>
            <Show when=move || ctx.form.get().is_some_and(|f| f.source == FormSource::Admin)>
                <button class="secondary" data-testid="use-server-form" on:click=use_server>{t.use_server_form}</button>
            </Show>
        </section>
    }
}

#[component]
fn KioskSection(message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let k = ctx.settings.with_untracked(|s| s.kiosk.clone());
    let enabled = RwSignal::new(k.enabled);
    let fullscreen = RwSignal::new(k.fullscreen);
    let group = RwSignal::new(k.fixed_group.clone().unwrap_or_default());
    let fields = [
        ("kiosk-return", RwSignal::new(k.return_after_s.to_string())),
        ("kiosk-idle", RwSignal::new(k.idle_after_s.to_string())),
        ("kiosk-countdown", RwSignal::new(k.countdown_s.to_string())),
        (
            "kiosk-interval",
            RwSignal::new(k.min_interval_s.to_string()),
        ),
    ];
    let error = RwSignal::new(false);
    let save = move |_| {
        let parsed: Vec<Option<u32>> = fields
            .iter()
            .map(|(_, v)| {
                v.get_untracked()
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n <= 86_400)
            })
            .collect();
        if parsed.iter().any(Option::is_none) {
            error.set(true);
            return;
        }
        error.set(false);
        let n: Vec<u32> = parsed.into_iter().flatten().collect();
        let g = group.get_untracked();
        let mut s = ctx.settings.get_untracked();
        s.kiosk = Kiosk {
            enabled: enabled.get_untracked(),
            return_after_s: n[0].max(1),
            idle_after_s: n[1].max(1),
            countdown_s: n[2],
            min_interval_s: n[3],
            fixed_group: (!g.is_empty()).then_some(g),
            fullscreen: fullscreen.get_untracked(),
        };
        message.set(Some(match ctx.save_settings(s) {
            Ok(()) => t.saved.to_string(),
            Err(e) => fill(t.settings_failed, &[("e", &e)]),
        }));
    };
    let labels = [
        t.kiosk_return,
        t.kiosk_idle,
        t.kiosk_countdown,
        t.kiosk_interval,
    ];
    let lang = ctx.lang_now();
    let initial_group = group.get_untracked();
    let group_options = ctx.form.get_untracked().map(|f| {
        f.form
            .groups
            .iter()
            .map(|g| {
                let selected = g.id == initial_group;
                view! { <option value=g.id.clone() selected=selected>{g.label.get(&lang).to_string()}</option> }
            })
            .collect_view()
    });
    view! {
        <section>
            <h2>{t.kiosk}</h2>
            <label class="check">
                <input type="checkbox" data-testid="kiosk-enabled" prop:checked=enabled on:change=move |ev| enabled.set(event_target_checked(&ev))/>
                {t.kiosk_enabled}
            </label>
            {fields.into_iter().enumerate().map(|(i, (id, v))| view! {
                <label for=id>{labels[i]}</label>
                <input id=id type="text" inputmode="numeric" data-testid=id prop:value=v on:input=move |ev| v.set(event_target_value(&ev))/>
            }).collect_view()}
            <label for="kiosk-group">{t.kiosk_group}</label>
            <select id="kiosk-group" data-testid="kiosk-group" on:change=move |ev| group.set(event_target_value(&ev))>
                <option value="" selected=initial_group.is_empty()>{t.kiosk_any_group}</option>
                {group_options}
            </select>
            <label class="check">
                <input type="checkbox" data-testid="kiosk-fullscreen" prop:checked=fullscreen on:change=move |ev| fullscreen.set(event_target_checked(&ev))/>
                {t.kiosk_fullscreen}
            </label>
            <p class="error" role="alert">{Signal::derive(move || error.get().then_some(t.kiosk_bad_number))}</p>
            <button class="secondary" data-testid="kiosk-save" on:click=save>{t.save}</button>
        </section>
    }
}

#[component]
fn PinSection(message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let new_pin = RwSignal::new(String::new());
    let save = move |_| {
        let p = new_pin.get_untracked();
        if !model::pin_is_acceptable(&p) {
            message.set(Some(t.pin_too_short.into()));
            return;
        }
        let mut s = ctx.settings.get_untracked();
        s.pin = Some(PinHash::new(&p, &platform::random_bytes::<16>()));
        new_pin.set(String::new());
        message.set(Some(match ctx.save_settings(s) {
            Ok(()) => t.pin_changed.to_string(),
            Err(e) => fill(t.settings_failed, &[("e", &e)]),
        }));
    };
    view! {
        <section>
            <h2>{t.change_pin}</h2>
            <div class="inline">
                <input type="password" inputmode="numeric" autocomplete="off" aria-label=t.change_pin
                    prop:value=new_pin on:input=move |ev| new_pin.set(event_target_value(&ev))/>
                <button class="secondary" on:click=save>{t.save}</button>
            </div>
        </section>
    }
}
