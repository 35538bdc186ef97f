//! The form's sections as pages: progress, back and next, and the submit that stores the
//! ballot on the device before the thank-you screen appears.

use analysis::ballot::Issue;
use analysis::form::{Form, Item, ItemKind};
use leptos::prelude::*;

use super::items::ItemView;
use super::{Ctx, Screen};
use crate::i18n::fill;
use crate::model::{self, keys, Problem};
use crate::platform;
use crate::store::{self, KeyValue, StoreError};

/// The id of the control to focus for an item's problem: the first empty grid cell, or
/// the item's first control.
pub fn focus_id(form: &Form, item: &Item, problem: Option<&Problem>) -> String {
    match &item.kind {
        ItemKind::Appraisal {
            units, criteria, ..
        } => {
            let (mut ui, mut ci) = (0, 0);
            if let Some(Problem::Rule(Issue::Required { missing_cells })) = problem {
                if let Some((u, c)) = missing_cells.first() {
                    ui = units.iter().position(|x| x == u).unwrap_or(0);
                    ci = criteria.iter().position(|x| &x.id == c).unwrap_or(0);
                }
            }
            format!("q-{}-{ui}-{ci}-0", item.id)
        }
        ItemKind::Text { .. } | ItemKind::Number { .. } => format!("q-{}", item.id),
        _ => {
            let _ = form;
            format!("q-{}-0", item.id)
        }
    }
}

#[component]
pub fn FormPages() -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let lang = ctx.lang_now();
    let f = ctx.form_now();
    let pages = {
        let f = f.clone();
        Memo::new(move |_| {
            ctx.draft.with(|d| {
                d.as_ref()
                    .map(|d| model::visible_pages(&f.form, &d.answers))
                    .unwrap_or_default()
            })
        })
    };
    // The page shown: the draft's page, or the next visible one if it became hidden.
    let current = Memo::new(move |_| {
        let want = ctx.draft.with(|d| d.as_ref().map(|d| d.page).unwrap_or(0));
        let p = pages.get();
        p.iter()
            .copied()
            .find(|&i| i >= want)
            .or_else(|| p.last().copied())
            .unwrap_or(0)
    });
    let position = move || pages.with(|p| p.iter().position(|&i| i == current.get()).unwrap_or(0));

    let go = move |page: usize| {
        ctx.edit_draft(|d| d.page = page);
        platform::scroll_top();
        platform::focus("page-title".into());
    };
    let next = {
        let f = f.clone();
        move |_| {
            let Some(d) = ctx.draft.get_untracked() else {
                return;
            };
            let problems = d.problems(
                &f.form,
                f.form.sections[current.get_untracked()].items.iter(),
            );
            if let Some((item, p)) = problems.first() {
                ctx.shown
                    .update(|s| s.extend(problems.iter().map(|(i, _)| i.id.clone())));
                platform::focus(focus_id(&f.form, item, Some(p)));
                return;
            }
            if let Some(&n) = pages
                .with_untracked(|p| p.get(position() + 1).copied())
                .as_ref()
            {
                go(n);
            }
        }
    };
    let back = move |_| {
        if let Some(n) = position()
            .checked_sub(1)
            .and_then(|i| pages.with_untracked(|p| p.get(i).copied()))
        {
            go(n);
        }
    };
    let progress = Signal::derive(move || {
        fill(
            t.page_of,
            &[("n", &(position() + 1)), ("m", &pages.with(Vec::len))],
        )
    });
    let percent = Signal::derive(move || {
        format!(
            "width: {}%",
            100 * (position() + 1) / pages.with(Vec::len).max(1)
        )
    });
    let problem_count = {
        let f = f.clone();
        Signal::derive(move || {
            let shown = ctx.shown.get();
            ctx.draft.with(|d| {
                d.as_ref().map_or(0, |d| {
                    d.problems(&f.form, f.form.sections[current.get()].items.iter())
                        .into_iter()
                        .filter(|(i, _)| shown.contains(&i.id))
                        .count()
                })
            })
        })
    };
    let summary = Signal::derive(move || {
        let n = problem_count.get();
        (n > 0).then(|| fill(t.fix_before_continue, &[("n", &n)]))
    });
    let is_last = Signal::derive(move || position() + 1 >= pages.with(Vec::len));
    let is_first = Signal::derive(move || position() == 0);
    let section = {
        let f = f.clone();
        move || {
            let s = &f.form.sections[current.get()];
            view! {
                <section class="page" data-testid=format!("page-{}", s.id)>
                    <h2 id="page-title" tabindex="-1">{s.title.get(&lang).to_string()}</h2>
                    {s.items.iter().map(|item| view! { <ItemView item=item.clone()/> }).collect_view()}
                </section>
            }
        }
    };

    view! {
        <div class="progress">
            <p data-testid="progress">{progress}</p>
            <div class="bar" role="progressbar" aria-valuemin="1"
                aria-valuemax=Signal::derive(move || pages.with(Vec::len).to_string())
                aria-valuenow=Signal::derive(move || (position() + 1).to_string())
                aria-label=progress>
                <div class="fill" style=percent></div>
            </div>
        </div>
        <p class="error summary" role="alert" data-testid="page-problems" hidden=Signal::derive(move || summary.get().is_none())>{summary}</p>
        {section}
        <nav class="pager">
            <button class="secondary big" data-testid="back" hidden=is_first on:click=back>{t.back}</button>
            <button class="primary big" data-testid="next" hidden=is_last on:click=next>{t.next}</button>
            <button class="primary big" data-testid="submit" hidden=Signal::derive(move || !is_last.get()) on:click=move |_| submit(ctx)>{t.submit}</button>
        </nav>
    }
}

/// Checks the whole ballot, stores it, reads it back, and only then thanks the respondent.
/// A second tap arrives after the screen changed and does nothing.
fn submit(ctx: Ctx) {
    if ctx.screen.get_untracked() != Screen::Form {
        return;
    }
    let (Some(f), Some(draft)) = (ctx.form.get_untracked(), ctx.draft.get_untracked()) else {
        return;
    };
    let problems = draft.problems(&f.form, f.form.items());
    if let Some((item, p)) = problems.first() {
        ctx.shown
            .update(|s| s.extend(problems.iter().map(|(i, _)| i.id.clone())));
        let page = f
            .form
            .sections
            .iter()
            .position(|s| s.items.iter().any(|i| i.id == item.id))
            .unwrap_or(0);
        if page != draft.page {
            ctx.edit_draft(|d| d.page = page);
        }
        platform::focus(focus_id(&f.form, item, Some(p)));
        return;
    }
    let t = ctx.t();
    let device = ctx.settings.with_untracked(|s| s.device_id.clone());
    let id = model::uuid_v4(&platform::random_bytes::<16>());
    let ballot = draft.to_ballot(&f.form, id.clone(), device, platform::now_iso());
    let result = ctx
        .store
        .try_update_value(|s| s.append(&f.form, &f.json, &ballot))
        .unwrap_or_else(|| Err(StoreError::Refused("the store is gone".into())));
    match result {
        Ok(stored) => {
            ctx.last_stored.set_value(Some(stored));
            let now = platform::now_ms();
            let kv = ctx.kv();
            let _ = kv.set(keys::LAST_SUBMIT, &now.to_string());
            ctx.last_submit.set(now);
            ctx.drop_draft();
            ctx.store_rev.update(|r| *r += 1);
            ctx.notice.set(None);
            ctx.screen.set(Screen::Thanks(id));
            platform::scroll_top();
            super::sync::kick(ctx);
        }
        Err(e) => {
            if matches!(e, StoreError::Refused(_)) {
                // The browser knows best how much room is left: measure again.
                let kv = ctx.kv();
                let cap = store::used(&kv) + store::probe_free(&kv);
                let _ = kv.set(keys::CAPACITY, &cap.to_string());
                ctx.capacity.set(Some(cap));
            }
            ctx.notice.set(Some(fill(t.save_failed, &[("e", &e)])));
            platform::scroll_top();
        }
    }
}
