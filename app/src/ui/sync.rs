//! Sending the outbox: the loop that posts waiting ballots to the collection server in
//! batches and backs off while it cannot be reached, what the respondent sees of it on the
//! thank-you screen, and the administrator's section (counts, last contact, send now, the
//! server address). The bookkeeping itself is [`crate::outbox`].
//!
//! One round sends batch after batch until nothing is waiting, under the Web Lock
//! `pingyi-sync`, so of several tabs one sends at a time (the server keeps each ballot id
//! once either way). A round starts at once on page load, after each submit, when the
//! browser comes online, when the page becomes visible, and on 立即发送; after a failure
//! the next one waits [`outbox::backoff_ms`].

use std::time::Duration;

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::Ctx;
use crate::i18n::fill;
use crate::i18n::Texts;
use crate::model::keys;
use crate::outbox::{self, Failure, LineState, Reply};
use crate::platform;
use crate::store::{KeyValue, Stored};

/// How long one request may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The loop's state for this page load.
#[derive(Default)]
pub struct Driver {
    running: bool,
    /// Asked to run again while a round was running.
    again: bool,
    /// Failed rounds in a row.
    failures: u32,
    /// The back-off wait, cancelled when something asks to send at once.
    timer: Option<TimeoutHandle>,
    /// Ballots per request after the server refused a batch for its size.
    batch: Option<usize>,
}

/// The last time the app heard from the server (or tried to), kept in local storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// When (RFC 3339).
    pub at: String,
    /// Why it failed; `None` when the server answered for the batch.
    pub error: Option<String>,
    /// Ballots delivered and refused in that answer.
    pub sent: usize,
    pub refused: usize,
    /// Seconds until the next try, after a failure.
    pub retry_s: u64,
}

impl Contact {
    /// The stored last contact, if any can be read.
    pub fn read(kv: &dyn KeyValue) -> Option<Contact> {
        serde_json::from_str(&kv.get(keys::LAST_CONTACT)?).ok()
    }
}

fn note_contact(ctx: Ctx, c: Contact) {
    if let Ok(json) = serde_json::to_string(&c) {
        // Only a note for the official: without room for it nothing else is lost.
        let _ = ctx.kv().set(keys::LAST_CONTACT, &json);
    }
    ctx.contact.set(Some(c));
}

/// Between heartbeats when nothing else makes a round happen.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(300);

/// Starts sending: now, whenever the browser is back online or the page is shown, and
/// every [`HEARTBEAT_EVERY`] (a round with nothing waiting still sends the heartbeat).
pub fn start(ctx: Ctx) {
    platform::on_online_or_visible(move || kick(ctx));
    kick(ctx);
    let _ = set_interval_with_handle(move || kick(ctx), HEARTBEAT_EVERY);
}

/// Tells the server this device is alive and how many ballots wait on it, so the
/// officials' dashboard shows it. Its answer changes nothing here (an older server has no
/// such route), and a failure waits for the next round.
fn heartbeat(ctx: Ctx) {
    let Some(form) = ctx.form.get_untracked() else {
        return;
    };
    let waiting = ctx.store.with_value(|s| outbox::tally(s).waiting);
    let (server, device) = ctx
        .settings
        .with_untracked(|s| (s.sync.server.clone(), s.device_id.clone()));
    let url = outbox::device_endpoint(server.as_deref(), &platform::path_segment(&device));
    let body = outbox::heartbeat_body(waiting, &form.form.id, &form.form.version);
    leptos::task::spawn_local(async move {
        let _ = platform::send_json("PUT", &url, &body, REQUEST_TIMEOUT).await;
    });
}

/// Sends the waiting ballots now (or right after the round under way).
pub fn kick(ctx: Ctx) {
    let go = ctx
        .sync
        .try_update_value(|d| {
            if d.running {
                d.again = true;
                return false;
            }
            if let Some(t) = d.timer.take() {
                t.clear();
            }
            d.running = true;
            true
        })
        .unwrap_or(false);
    if go {
        leptos::task::spawn_local(platform::exclusive(
            "pingyi-sync",
            Box::pin(async move {
                let result = round(ctx).await;
                finish(ctx, result);
            }),
        ));
    }
}

/// Why the last round stopped, in the official's words.
fn describe(t: &Texts, why: &Failure) -> String {
    match why {
        Failure::Network(e) => fill(t.sync_err_network, &[("e", e)]),
        Failure::Status(code, said) => {
            let said = said.as_ref().map(|s| format!(": {s}")).unwrap_or_default();
            fill(t.sync_err_status, &[("code", code), ("said", &said)])
        }
        Failure::Unreadable(e) => fill(t.sync_err_unreadable, &[("e", e)]),
        Failure::Mismatch => t.sync_err_mismatch.to_string(),
        Failure::Storage(e) => fill(t.sync_err_storage, &[("e", e)]),
    }
}

/// After a round: again at once if asked meanwhile, else after the back-off if it failed.
fn finish(ctx: Ctx, result: Result<(), (Failure, Option<u32>)>) {
    let random = f64::from(u32::from_le_bytes(platform::random_bytes::<4>())) / f64::from(u32::MAX);
    let (again, wait) = ctx
        .sync
        .try_update_value(|d| {
            d.running = false;
            let again = std::mem::take(&mut d.again);
            match &result {
                Ok(()) => {
                    d.failures = 0;
                    (again, None)
                }
                Err((_, after)) => {
                    d.failures += 1;
                    (again, Some(outbox::backoff_ms(d.failures, random, *after)))
                }
            }
        })
        .unwrap_or((false, None));
    if let (Err((why, _)), Some(ms)) = (result, wait) {
        note_contact(
            ctx,
            Contact {
                at: platform::now_iso(),
                error: Some(describe(ctx.t(), &why)),
                sent: 0,
                refused: 0,
                retry_s: if again {
                    0
                } else {
                    (ms / 1000.0).ceil() as u64
                },
            },
        );
    }
    // After every round, also a failed one: a server that refuses batches (storage down)
    // still hears how many ballots wait here; without a network it simply fails too.
    heartbeat(ctx);
    if again {
        kick(ctx);
    } else if let Some(ms) = wait {
        let timer =
            set_timeout_with_handle(move || kick(ctx), Duration::from_millis(ms as u64)).ok();
        ctx.sync.update_value(|d| d.timer = timer);
    }
}

/// Sends batch after batch until nothing is waiting; the error says why it stopped early,
/// with the server's `Retry-After`.
async fn round(ctx: Ctx) -> Result<(), (Failure, Option<u32>)> {
    let settings = ctx.settings.with_untracked(|s| s.sync.clone());
    let url = outbox::endpoint(settings.server.as_deref());
    let configured = settings.batch.clamp(1, outbox::BATCH_MAX) as usize;
    loop {
        let size = ctx.sync.with_value(|d| d.batch).unwrap_or(configured);
        // Read afresh: other tabs store ballots and mark answers too.
        let batch = ctx
            .store
            .try_update_value(|s| {
                s.refresh();
                outbox::next_batch(s, size)
            })
            .unwrap_or_default();
        if batch.is_empty() {
            return Ok(());
        }
        let reply =
            match platform::send_json("POST", &url, &outbox::request_body(&batch), REQUEST_TIMEOUT)
                .await
            {
                Ok((status, body, after)) => {
                    outbox::read_reply(&batch, status, &body, after.as_deref())
                }
                Err(e) => Reply::Later(Failure::Network(e), None),
            };
        let verdicts = match reply {
            Reply::Smaller => {
                let half = (batch.len() / 2).max(1);
                ctx.sync.update_value(|d| d.batch = Some(half));
                continue;
            }
            Reply::Later(why, after) => return Err((why, after)),
            Reply::Answered(v) => v,
        };
        // The server answered: the back-off starts again from 2 s at the next failure.
        ctx.sync.update_value(|d| d.failures = 0);
        let (marked, error) = outbox::apply(&ctx.kv(), &batch, &verdicts);
        let refused = verdicts
            .iter()
            .filter(|v| matches!(v, outbox::Verdict::Refused(_)))
            .count();
        note_contact(
            ctx,
            Contact {
                at: platform::now_iso(),
                error: None,
                sent: verdicts.len() - refused,
                refused,
                retry_s: 0,
            },
        );
        ctx.sync_rev.update(|r| *r += 1);
        if let Some(e) = error {
            // The answers could not be noted (storage full): the ballots stay waiting and
            // are sent again later; the server then answers already_stored.
            return Err((Failure::Storage(e), None));
        }
        if marked == 0 {
            // Another tab noted the same answers meanwhile: it is sending.
            return Ok(());
        }
    }
}

/// Where the ballot just submitted stands, for the thank-you screen.
#[component]
pub fn DeliveryStatus() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let state = Signal::derive(move || {
        ctx.sync_rev.track();
        ctx.last_stored
            .with_value(|s: &Option<Stored>| s.clone())
            .map(|s| outbox::line_state(&ctx.kv(), &s.key, s.line))
            .unwrap_or(LineState::Waiting)
    });
    view! {
        <p class="delivery" data-testid="delivery-status"
            data-state=move || match state.get() { LineState::Sent => "delivered", LineState::Waiting => "waiting", LineState::Refused(_) => "refused" }
            data-reason=move || match state.get() { LineState::Refused(why) => why, _ => String::new() }>
            {move || match state.get() {
                LineState::Sent => t.delivered,
                LineState::Waiting => t.kept_on_device,
                LineState::Refused(why) => crate::i18n::refusal(t, &why).map_or(t.delivery_refused, |(long, _)| long),
            }}
        </p>
    }
}

/// The administrator's view of sending: counts, the last contact, send now, the server.
#[component]
pub fn SyncSection(tally: Memo<outbox::Tally>, message: RwSignal<Option<String>>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let current = ctx.settings.with_untracked(|s| s.sync.clone());
    let server = RwSignal::new(current.server.unwrap_or_default());
    let batch = RwSignal::new(current.batch.to_string());
    let contact = move || match ctx.contact.get() {
        None => t.sync_never.to_string(),
        Some(c) => match c.error {
            None => fill(
                t.sync_contact_ok,
                &[("t", &c.at), ("n", &c.sent), ("r", &c.refused)],
            ),
            Some(e) => fill(
                t.sync_contact_failed,
                &[("t", &c.at), ("e", &e), ("s", &c.retry_s)],
            ),
        },
    };
    let save = move |_| {
        let typed = server.get_untracked();
        let address = if typed.trim().is_empty() {
            None
        } else {
            match outbox::check_server(&typed) {
                Some(a) => Some(a),
                None => {
                    let v = analysis::error::quoted(&typed);
                    return message.set(Some(fill(t.sync_server_bad, &[("v", &v)])));
                }
            }
        };
        let Some(n) = batch
            .get_untracked()
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=outbox::BATCH_MAX).contains(n))
        else {
            return message.set(Some(t.sync_batch_bad.to_string()));
        };
        let mut s = ctx.settings.get_untracked();
        s.sync = crate::model::SyncSettings {
            server: address,
            batch: n,
        };
        message.set(Some(match ctx.save_settings(s) {
            Ok(()) => t.saved.to_string(),
            Err(e) => fill(t.settings_failed, &[("e", &e)]),
        }));
        ctx.sync.update_value(|d| d.batch = None);
        kick(ctx);
    };
    let count = move |testid: &'static str, label: &'static str, n: Signal<usize>| {
        view! { <p>{label}<strong data-testid=testid>{n}</strong></p> }
    };
    view! {
        <section data-testid="sync">
            <h2>{t.sync_title}</h2>
            {count("sync-sent", t.sync_sent, Signal::derive(move || tally.with(|x| x.sent)))}
            {count("sync-waiting", t.sync_waiting, Signal::derive(move || tally.with(|x| x.waiting)))}
            {count("sync-refused", t.sync_refused, Signal::derive(move || tally.with(|x| x.refused)))}
            <ul class="problems">
                {move || tally.with(|x| x.reasons.iter().map(|(why, n)| {
                    let words = crate::i18n::refusal(t, why).map_or(why.as_str(), |(_, short)| short);
                    view! { <li data-testid="sync-reason" data-reason=why.clone()>{fill(t.sync_reason, &[("n", n), ("why", &words)])}</li> }
                }).collect_view())}
            </ul>
            <p class="muted" data-testid="sync-last-contact">{contact}</p>
            <button class="primary" data-testid="sync-now" on:click=move |_| kick(ctx)>{t.sync_now}</button>
            <label for="sync-server">{t.sync_server}</label>
            <input id="sync-server" type="url" data-testid="sync-server" placeholder="https://"
                prop:value=server on:input=move |ev| server.set(event_target_value(&ev))/>
            <label for="sync-batch">{t.sync_batch}</label>
            <input id="sync-batch" type="text" inputmode="numeric" data-testid="sync-batch"
                prop:value=batch on:input=move |ev| batch.set(event_target_value(&ev))/>
            <button class="secondary" data-testid="sync-save" on:click=save>{t.save}</button>
        </section>
    }
}
