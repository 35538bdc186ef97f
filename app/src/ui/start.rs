//! The start screen (title, privacy notice, respondent group, start) and the thank-you
//! screen.

use leptos::prelude::*;

use super::{kiosk, Ctx, Screen};
use crate::i18n::fill;
use crate::model::Draft;
use crate::platform;

#[component]
pub fn StartScreen() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let lang = ctx.lang_now();
    let f = ctx.form_now();
    let fixed_group = ctx
        .settings
        .with_untracked(|s| {
            if s.kiosk.enabled {
                s.kiosk.fixed_group.clone()
            } else {
                None
            }
        })
        .filter(|g| f.form.group(g).is_some());
    let resuming = ctx.draft.with_untracked(Option::is_some);
    let chosen = ctx.chosen_group;
    let asked = RwSignal::new(false);
    let wait_left = Signal::derive(move || {
        let k = ctx.settings.with(|s| s.kiosk.clone());
        if !k.enabled {
            return 0;
        }
        let left = f64::from(k.min_interval_s) * 1000.0 - (ctx.now.get() - ctx.last_submit.get());
        (left / 1000.0).ceil().max(0.0) as i64
    });
    let space = Memo::new(move |_| ctx.space());
    let blocked = Signal::derive(move || !resuming && (!space.get().1 || wait_left.get() > 0));

    let key = f.key.clone();
    let group_of = {
        let fixed = fixed_group.clone();
        move || fixed.clone().or_else(|| chosen.get_untracked())
    };
    let start = move |_| {
        if ctx.draft.get_untracked().is_some() {
            ctx.screen.set(Screen::Form);
            return;
        }
        if blocked.get_untracked() {
            return;
        }
        let Some(g) = group_of() else {
            asked.set(true);
            platform::focus("groups".into());
            return;
        };
        if ctx
            .settings
            .with_untracked(|s| s.kiosk.enabled && s.kiosk.fullscreen)
        {
            platform::request_fullscreen();
        }
        chosen.set(None);
        ctx.begin_draft(Draft::new(
            key.clone(),
            g,
            ctx.lang_now(),
            platform::now_iso(),
        ));
        ctx.shown.set(Default::default());
        ctx.screen.set(Screen::Form);
        platform::scroll_top();
    };

    let storage_banner = move || {
        let (frac, fits) = space.get();
        if !fits {
            Some(view! { <p class="warning full" role="alert" data-testid="storage-full">{t.storage_full}</p> }.into_any())
        } else if frac >= 0.8 {
            let p = (frac * 100.0).floor() as u32;
            Some(view! { <p class="warning" role="status" data-testid="storage-warning">{fill(t.storage_nearly_full, &[("p", &p)])}</p> }.into_any())
        } else {
            None
        }
    };
    let groups = (fixed_group.is_none() && !resuming).then(|| {
        let options = f
            .form
            .groups
            .iter()
            .map(|g| {
                let id = g.id.clone();
                let checked = {
                    let id = id.clone();
                    Signal::derive(move || chosen.get().as_deref() == Some(id.as_str()))
                };
                let (testid, value) = (format!("group-{id}"), id.clone());
                view! {
                    <label class="opt" data-testid=testid>
                        <input type="radio" name="group" value=value prop:checked=checked
                            on:change=move |_| { chosen.set(Some(id.clone())); asked.set(false); }/>
                        <span>{g.label.get(&lang).to_string()}</span>
                    </label>
                }
            })
            .collect_view();
        let missing = Signal::derive(move || (asked.get() && chosen.get().is_none()).then_some(t.choose_group_first));
        view! {
            <fieldset class="choices groups" id="groups" tabindex="-1" aria-describedby="group-error">
                <legend>{t.choose_group}</legend>
                <div class="options">{options}</div>
                <p class="error" id="group-error" role="alert">{missing}</p>
            </fieldset>
        }
    });
    let wait_text = Signal::derive(move || {
        let n = wait_left.get();
        (n > 0).then(|| fill(t.wait_next, &[("n", &n)]))
    });

    view! {
        <section class="start" data-testid="start">
            <h1 data-testid="form-title">{f.form.title.get(&lang).to_string()}</h1>
            {storage_banner}
            {f.form.description.as_ref().map(|d| view! {
                <div class="privacy">
                    <h2>{t.privacy_heading}</h2>
                    <p data-testid="privacy">{d.get(&lang).to_string()}</p>
                </div>
            })}
            {groups}
            <p class="warning" role="status" data-testid="wait-next" hidden=Signal::derive(move || wait_text.get().is_none())>{wait_text}</p>
            <div class="actions">
                <button class="primary big" data-testid="start-button" disabled=blocked on:click=start>
                    {if resuming { t.resume } else { t.start }}
                </button>
            </div>
            <div class="admin-link">
                <button class="link" data-testid="open-admin" on:click=move |_| ctx.screen.set(Screen::Admin)>{t.admin}</button>
            </div>
        </section>
    }
}

#[component]
pub fn Thanks(id: String) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let short = id.chars().take(8).collect::<String>();
    let countdown = Signal::derive(move || {
        kiosk::return_seconds_left(ctx).map(|n| fill(t.back_to_start_in, &[("n", &n)]))
    });
    view! {
        <section class="thanks" data-testid="thanks" role="status">
            <div class="tick" aria-hidden="true">"✓"</div>
            <h1>{t.thanks_title}</h1>
            <p>{t.thanks_body}</p>
            <super::sync::DeliveryStatus/>
            <p class="muted" data-testid="ballot-id" data-ballot-id=id.clone()>{fill(t.thanks_saved, &[("id", &short)])}</p>
            <p class="countdown" data-testid="return-countdown" hidden=Signal::derive(move || countdown.get().is_none())>{countdown}</p>
            <button class="primary big" data-testid="new-ballot" on:click=move |_| ctx.go_to_start()>{t.new_ballot}</button>
        </section>
    }
}
