//! Kiosk behaviour: noticing input, the "are you still there" countdown that discards an
//! abandoned ballot for the next person's privacy, and the automatic return to the start
//! screen after the thank-you screen.

use leptos::ev;
use leptos::prelude::*;

use super::{Ctx, Screen};
use crate::i18n::fill;
use crate::platform;

/// Any touch, click, key or scroll counts as the person still being there.
pub fn watch_activity(ctx: Ctx) {
    let seen = move || ctx.last_input.set_value(platform::now_ms());
    // The handles are kept for the page's life: the app never unmounts.
    std::mem::forget(window_event_listener(ev::pointerdown, move |_| seen()));
    std::mem::forget(window_event_listener(ev::keydown, move |_| seen()));
    std::mem::forget(window_event_listener(ev::input, move |_| seen()));
    std::mem::forget(window_event_listener(ev::wheel, move |_| seen()));
    std::mem::forget(window_event_listener(ev::touchstart, move |_| seen()));
}

/// Seconds left before an idle ballot is discarded, when the warning is showing.
pub fn idle_seconds_left(ctx: Ctx) -> Option<i64> {
    let k = ctx.settings.with(|s| s.kiosk.clone());
    if !k.enabled || ctx.screen.get() != Screen::Form || ctx.draft.with(Option::is_none) {
        return None;
    }
    let idle_ms = ctx.now.get() - ctx.last_input.get_value();
    let warn_at = f64::from(k.idle_after_s) * 1000.0;
    if idle_ms < warn_at {
        return None;
    }
    let left = ((warn_at + f64::from(k.countdown_s) * 1000.0 - idle_ms) / 1000.0).ceil() as i64;
    Some(left.max(0))
}

/// Seconds left on the thank-you screen before the kiosk returns to the start.
pub fn return_seconds_left(ctx: Ctx) -> Option<i64> {
    let k = ctx.settings.with(|s| s.kiosk.clone());
    if !k.enabled || !matches!(ctx.screen.get(), Screen::Thanks(_)) {
        return None;
    }
    let since = ctx.now.get() - ctx.last_submit.get();
    Some(
        ((f64::from(k.return_after_s) * 1000.0 - since) / 1000.0)
            .ceil()
            .max(0.0) as i64,
    )
}

/// Runs every second.
pub fn tick(ctx: Ctx) {
    if idle_seconds_left(ctx) == Some(0) {
        ctx.drop_draft();
        ctx.go_to_start();
    }
    if return_seconds_left(ctx) == Some(0) {
        ctx.go_to_start();
    }
}

/// The countdown shown over an idle ballot.
#[component]
pub fn IdleWarning() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    move || {
        idle_seconds_left(ctx).map(|left| {
            let t = ctx.t();
            view! {
                <div class="overlay">
                    <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="idle-title" aria-describedby="idle-body" data-testid="idle-warning">
                        <h2 id="idle-title">{t.idle_title}</h2>
                        <p id="idle-body" class="countdown">{fill(t.idle_body, &[("n", &left)])}</p>
                        <button
                            class="primary big"
                            data-testid="idle-continue"
                            autofocus
                            on:click=move |_| {
                                ctx.last_input.set_value(platform::now_ms());
                                ctx.now.set(platform::now_ms());
                            }
                        >
                            {t.idle_continue}
                        </button>
                    </div>
                </div>
            }
        })
    }
}
