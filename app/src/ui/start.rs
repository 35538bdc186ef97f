//! The start screen (title, privacy notice, respondent group, the 投票码 of a group that
//! votes with one, start) and the thank-you screen.

use analysis::access_code::{AccessCode, CodeError, ALPHABET};
use leptos::prelude::*;

use super::{kiosk, Ctx, Screen};
use crate::i18n::{self, fill};
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
        move || fixed.clone().or_else(|| chosen.get())
    };
    // Whether the group chosen (or fixed for this kiosk) votes with a code.
    let needs_code = {
        let (group_of, form) = (group_of.clone(), f.clone());
        Signal::derive(move || {
            !resuming
                && group_of()
                    .and_then(|g| form.form.group(&g).map(|g| g.code_required))
                    .unwrap_or(false)
        })
    };
    let code_asked = RwSignal::new(false);
    let start = move |_| {
        if ctx.draft.get_untracked().is_some() {
            ctx.screen.set(Screen::Form);
            return;
        }
        if blocked.get_untracked() {
            return;
        }
        let Some(g) = group_of.clone()() else {
            asked.set(true);
            platform::focus("groups".into());
            return;
        };
        // Checked offline here, so a typo is caught at once; only the server knows
        // whether the code was issued for this group and is still unused.
        let code = if needs_code.get_untracked() {
            match AccessCode::parse(&ctx.typed_code.get_untracked()) {
                Ok(c) => Some(c.to_string()),
                Err(_) => {
                    code_asked.set(true);
                    platform::focus("access-code".into());
                    return;
                }
            }
        } else {
            None
        };
        if ctx
            .settings
            .with_untracked(|s| s.kiosk.enabled && s.kiosk.fullscreen)
        {
            platform::request_fullscreen();
        }
        chosen.set(None);
        ctx.typed_code.set(String::new());
        let mut draft = Draft::new(key.clone(), g, ctx.lang_now(), platform::now_iso());
        draft.access_code = code;
        ctx.begin_draft(draft);
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
    let code_field = move || {
        needs_code
            .get()
            .then(|| view! { <CodeField asked=code_asked/> })
    };
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
            {code_field}
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

/// What to say under the code field: nothing while a code is still being typed, a mistake
/// in words as soon as it shows (a character codes never use, too many characters, a
/// check character that disagrees), and everything once the respondent tried to start.
fn code_message(typed: &str, asked: bool) -> Option<Result<(), CodeError>> {
    // A character codes never use (0, O, 1, I …) is named at once, even in a short code.
    let first_foreign = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .enumerate()
        .find(|(_, c)| !u8::try_from(*c).is_ok_and(|b| ALPHABET.contains(&b)));
    if let Some((i, ch)) = first_foreign {
        return Some(Err(CodeError::Char {
            ch,
            position: i + 1,
        }));
    }
    match AccessCode::parse(typed) {
        Ok(_) => Some(Ok(())),
        Err(e @ (CodeError::Empty | CodeError::Length { .. })) if !asked => match e {
            CodeError::Length { found } if found > analysis::access_code::LEN => Some(Err(e)),
            _ => None,
        },
        Err(e) => Some(Err(e)),
    }
}

/// The 投票码 field: large, the format shown, any case, spaces and hyphens ignored.
#[component]
fn CodeField(asked: RwSignal<bool>) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let typed = ctx.typed_code;
    let message = Signal::derive(move || code_message(&typed.get(), asked.get()));
    let error = move || match message.get() {
        Some(Err(e)) => Some(i18n::code_error(t, &e)),
        _ => None,
    };
    let ok = move || matches!(message.get(), Some(Ok(()))).then_some(t.code_ok);
    view! {
        <div class="code" data-testid="code-field">
            <label class="field" for="access-code">{t.code_label}</label>
            <span class="hint" id="code-hint">{t.code_hint}</span>
            <input id="access-code" type="text" data-testid="access-code"
                autocomplete="off" autocapitalize="characters" spellcheck="false"
                placeholder="K7QM-3XWD" maxlength="20" aria-describedby="code-hint code-error"
                aria-invalid=move || error().is_some().to_string()
                style="font-size:1.75rem;letter-spacing:.12em;max-width:16rem;font-family:monospace;text-transform:uppercase"
                prop:value=typed on:input=move |ev| typed.set(event_target_value(&ev))/>
            <p class="error" id="code-error" role="alert" data-testid="code-error">{error}</p>
            <p class="muted" role="status" data-testid="code-ok">{ok}</p>
        </div>
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
