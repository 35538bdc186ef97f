//! One component per item type, all driven by the same draft: single and rating (radio
//! buttons), multi (check boxes), text, number, and the appraisal grid, which is a table
//! of units × criteria on a wide screen and one card per unit on a phone (the same
//! markup, laid out by CSS).

use analysis::ballot::{self, Answer, Issue};
use analysis::form::{Item, ItemKind};
use analysis::label::Label;
use leptos::prelude::*;

use super::Ctx;
use crate::i18n::fill;
use crate::model::Problem;

/// An option to show: code, label, and whether it is 不了解-like (not counted).
#[derive(Clone)]
struct Opt {
    code: String,
    label: Label,
    aside: bool,
}

fn options(ctx: Ctx, item: &Item) -> Vec<Opt> {
    let f = ctx.form_now();
    match &item.kind {
        ItemKind::Single { choices } | ItemKind::Multi { choices } => choices
            .iter()
            .map(|c| Opt {
                code: c.code.clone(),
                label: c.label.clone(),
                aside: false,
            })
            .collect(),
        ItemKind::Rating { scale } | ItemKind::Appraisal { scale, .. } => f
            .form
            .scale(scale)
            .map(|s| {
                s.options
                    .iter()
                    .map(|o| Opt {
                        code: o.code.clone(),
                        label: o.label.clone(),
                        aside: !o.counted,
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    }
}

/// The message for a problem, in the current language.
fn message(ctx: Ctx, item: &Item, p: &Problem) -> String {
    let t = ctx.t();
    match p {
        Problem::NotANumber => t.not_a_number.into(),
        Problem::Rule(Issue::Required { missing_cells }) if !missing_cells.is_empty() => {
            fill(t.grid_missing, &[("n", &missing_cells.len())])
        }
        Problem::Rule(Issue::Required { .. }) => t.required_missing.into(),
        Problem::Rule(Issue::Constraint) => item
            .constraint_message
            .as_ref()
            .map(|m| m.get(&ctx.lang_now()).to_string())
            .unwrap_or_else(|| t.constraint_default.into()),
        // A number out of its range: the form's own message, else the range in words.
        Problem::Rule(Issue::Invalid(reasons)) => match (&item.kind, &item.constraint_message) {
            (ItemKind::Number { .. }, Some(m)) => m.get(&ctx.lang_now()).to_string(),
            (ItemKind::Number { min, max, integer }, None) => {
                let show =
                    |x: &Option<f64>| x.map(|v| format!("{v}")).unwrap_or_else(|| "…".into());
                let range = fill(t.number_range, &[("min", &show(min)), ("max", &show(max))]);
                if *integer {
                    format!("{range}{}", t.whole_number)
                } else {
                    range
                }
            }
            _ => format!("{}{}", t.invalid_answer, reasons.join("; ")),
        },
    }
}

/// Whether `code` is the answer (or one of the answers) to `item` in the draft.
fn is_chosen(ctx: Ctx, item: &str, code: &str) -> bool {
    ctx.draft
        .with(|d| match d.as_ref().and_then(|d| d.answers.get(item)) {
            Some(Answer::Str(s)) => s == code,
            Some(Answer::Codes(c)) => c.iter().any(|x| x == code),
            _ => false,
        })
}

/// Whether a grid cell holds `code`.
fn cell_is(ctx: Ctx, item: &str, unit: &str, crit: &str, code: &str) -> bool {
    ctx.draft
        .with(|d| match d.as_ref().and_then(|d| d.answers.get(item)) {
            Some(Answer::Grid(g)) => g
                .get(unit)
                .and_then(|r| r.get(crit))
                .is_some_and(|c| c == code),
            _ => false,
        })
}

#[component]
pub fn ItemView(item: Item) -> impl IntoView {
    let ctx = expect_context::<Ctx>();
    let t = ctx.t();
    let lang = ctx.lang_now();
    let f = ctx.form_now();
    let id = item.id.clone();
    let item = StoredValue::new(item);
    let relevant = {
        let f = f.clone();
        Memo::new(move |_| {
            ctx.draft.with(|d| {
                d.as_ref().is_some_and(|d| {
                    let answers = ballot::relevant_answers(&f.form, &d.answers);
                    item.with_value(|i| ballot::is_relevant(&f.form, &answers, i))
                })
            })
        })
    };
    let problem = {
        let f = f.clone();
        let id = id.clone();
        Memo::new(move |_| {
            if !ctx.shown.with(|s| s.contains(&id)) {
                return None;
            }
            ctx.draft.with(|d| {
                d.as_ref().and_then(|d| {
                    item.with_value(|i| {
                        d.problems(&f.form, std::iter::once(i))
                            .into_iter()
                            .next()
                            .map(|(_, p)| p)
                    })
                })
            })
        })
    };
    let invalid = Signal::derive(move || problem.with(Option::is_some));
    let aria_invalid = Signal::derive(move || problem.with(Option::is_some).then_some("true"));
    let err_id = format!("err-{id}");
    let hint_id = format!("hint-{id}");
    let label_id = format!("label-{id}");
    let described = format!("{hint_id} {err_id}");
    let (label, hint, required, kind) = item.with_value(|i| {
        (
            i.label.get(&lang).to_string(),
            i.hint.as_ref().map(|h| h.get(&lang).to_string()),
            i.required,
            i.kind.clone(),
        )
    });
    let heading = view! {
        <span id=label_id.clone() class="q-label">
            {label}
            {required.then(|| view! { <span class="req">{t.required_mark}</span> })}
        </span>
        {hint.map(|h| view! { <span class="hint" id=hint_id.clone()>{h}</span> })}
    };
    let error_text = Signal::derive(move || {
        problem
            .get()
            .map(|p| item.with_value(|i| message(ctx, i, &p)))
    });
    let error = view! { <p class="error" id=err_id data-testid=format!("error-{id}") role="alert">{error_text}</p> };

    let body = match kind {
        ItemKind::Single { .. } | ItemKind::Rating { .. } | ItemKind::Multi { .. } => {
            let multi = matches!(kind, ItemKind::Multi { .. });
            let opts = item.with_value(|i| options(ctx, i));
            let buttons = opts
                .into_iter()
                .enumerate()
                .map(|(k, o)| choice(ctx, &id, k, o, multi, &lang))
                .collect_view();
            view! {
                <fieldset class="choices" role=(!multi).then_some("radiogroup") aria-describedby=described
                    aria-required=(required && !multi).then_some("true") aria-invalid=aria_invalid>
                    <legend>{heading}</legend>
                    <div class="options">{buttons}</div>
                    {error}
                </fieldset>
            }
            .into_any()
        }
        ItemKind::Text {
            multiline,
            max_length,
        } => {
            let initial =
                ctx.draft
                    .with_untracked(|d| match d.as_ref().and_then(|d| d.answers.get(&id)) {
                        Some(Answer::Str(s)) => s.clone(),
                        _ => String::new(),
                    });
            let typed = RwSignal::new(initial.chars().count());
            let input_id = format!("q-{id}");
            let id2 = id.clone();
            let on_input = move |ev: leptos::ev::Event| {
                let v = event_target_value(&ev);
                typed.set(v.chars().count());
                let id = id2.clone();
                ctx.edit_draft(move |d| d.set(&id, (!v.is_empty()).then_some(Answer::Str(v))));
            };
            let max = max_length.map(|m| m.to_string());
            let left = Signal::derive(move || {
                max_length.map(|m| fill(t.chars_left, &[("n", &m.saturating_sub(typed.get()))]))
            });
            let control = if multiline {
                view! {
                    <textarea id=input_id.clone() rows="4" maxlength=max aria-describedby=described aria-invalid=aria_invalid
                        data-testid=format!("input-{id}") on:input=on_input prop:value=initial></textarea>
                }
                .into_any()
            } else {
                view! {
                    <input type="text" id=input_id.clone() maxlength=max aria-describedby=described aria-invalid=aria_invalid
                        data-testid=format!("input-{id}") on:input=on_input prop:value=initial/>
                }
                .into_any()
            };
            view! {
                <label class="field" for=input_id>{heading}</label>
                {control}
                <p class="muted counter">{left}</p>
                {error}
            }
            .into_any()
        }
        ItemKind::Number { integer, .. } => {
            let initial = ctx.draft.with_untracked(|d| {
                d.as_ref()
                    .and_then(|d| {
                        d.unparsed
                            .get(&id)
                            .cloned()
                            .or_else(|| match d.answers.get(&id) {
                                Some(Answer::Number(x)) => Some(format!("{x}")),
                                _ => None,
                            })
                    })
                    .unwrap_or_default()
            });
            let input_id = format!("q-{id}");
            let id2 = id.clone();
            view! {
                <label class="field" for=input_id.clone()>{heading}</label>
                <input type="text" inputmode=if integer { "numeric" } else { "decimal" } class="number" id=input_id
                    aria-describedby=described aria-invalid=aria_invalid data-testid=format!("input-{id}") prop:value=initial
                    on:input=move |ev| {
                        let v = event_target_value(&ev);
                        let id = id2.clone();
                        ctx.edit_draft(move |d| d.set_number_text(&id, &v));
                    }/>
                {error}
            }
            .into_any()
        }
        ItemKind::Appraisal {
            units, criteria, ..
        } => {
            let opts = item.with_value(|i| options(ctx, i));
            let missing = Memo::new(move |_| match problem.get() {
                Some(Problem::Rule(Issue::Required { missing_cells })) => missing_cells,
                _ => Vec::new(),
            });
            let head = criteria
                .iter()
                .map(|c| view! { <span>{c.label.get(&lang).to_string()}</span> })
                .collect_view();
            let crits: Vec<(String, String)> = criteria
                .iter()
                .map(|c| (c.id.clone(), c.label.get(&lang).to_string()))
                .collect();
            let rows = units
                .iter()
                .enumerate()
                .filter_map(|(ui, u)| {
                    f.form
                        .unit(u)
                        .map(|x| (ui, u.clone(), x.name.get(&lang).to_string()))
                })
                .map(|(ui, unit, name)| {
                    grid_row(ctx, &id, ui, unit, name, &crits, &opts, missing, &lang)
                })
                .collect_view();
            view! {
                <div class="grid-item" role="group" aria-labelledby=label_id aria-describedby=described>
                    <p class="grid-title">{heading}</p>
                    <div class="grid" style=format!("--criteria: {}", crits.len())>
                        <div class="grid-head" aria-hidden="true"><span></span>{head}</div>
                        {rows}
                    </div>
                    {error}
                </div>
            }
            .into_any()
        }
    };

    // A hidden item stays in the page (what was typed is kept if it becomes relevant
    // again) but is out of sight and out of the tab order; its answer is not submitted.
    view! {
        <div class="item" class:invalid=invalid hidden=Signal::derive(move || !relevant.get())
            id=format!("item-{id}") data-testid=format!("item-{id}")>
            {body}
        </div>
    }
}

/// One radio button or check box of a choice item.
fn choice(ctx: Ctx, item: &str, k: usize, o: Opt, multi: bool, lang: &str) -> impl IntoView {
    let code = o.code.clone();
    let checked = {
        let (item, code) = (item.to_string(), code.clone());
        Signal::derive(move || is_chosen(ctx, &item, &code))
    };
    let on_change = {
        let (item, code) = (item.to_string(), code.clone());
        move |ev: leptos::ev::Event| {
            let on = event_target_checked(&ev);
            let (item, code) = (item.clone(), code.clone());
            ctx.edit_draft(move |d| {
                if multi {
                    d.toggle(&item, &code, on);
                } else {
                    d.set(&item, Some(Answer::Str(code)));
                }
            });
        }
    };
    view! {
        <label class="opt" class:aside=o.aside data-testid=format!("opt-{item}-{code}")>
            <input type=if multi { "checkbox" } else { "radio" } name=format!("q-{item}") id=format!("q-{item}-{k}")
                value=code.clone() prop:checked=checked on:change=on_change/>
            <span>{o.label.get(lang).to_string()}</span>
        </label>
    }
}

/// One unit's row of the grid: a card on a phone.
#[allow(clippy::too_many_arguments)]
fn grid_row(
    ctx: Ctx,
    item: &str,
    ui: usize,
    unit: String,
    name: String,
    crits: &[(String, String)],
    opts: &[Opt],
    missing: Memo<Vec<(String, String)>>,
    lang: &str,
) -> impl IntoView {
    let cells = crits
        .iter()
        .enumerate()
        .map(|(ci, (crit, clabel))| {
            let is_missing = {
                let (unit, crit) = (unit.clone(), crit.clone());
                Signal::derive(move || missing.with(|m| m.iter().any(|(u, c)| *u == unit && *c == crit)))
            };
            let buttons = opts
                .iter()
                .enumerate()
                .map(|(k, o)| {
                    let (item, unit, crit, code) = (item.to_string(), unit.clone(), crit.clone(), o.code.clone());
                    let checked = {
                        let (item, unit, crit, code) = (item.clone(), unit.clone(), crit.clone(), code.clone());
                        Signal::derive(move || cell_is(ctx, &item, &unit, &crit, &code))
                    };
                    let testid = format!("opt-{item}-{unit}-{crit}-{code}");
                    let name = format!("q-{item}-{unit}-{crit}");
                    let input_id = format!("q-{item}-{ui}-{ci}-{k}");
                    let set = move |_| {
                        let (item, unit, crit, code) = (item.clone(), unit.clone(), crit.clone(), code.clone());
                        ctx.edit_draft(move |d| d.set_cell(&item, &unit, &crit, Some(&code)));
                    };
                    view! {
                        <label class="opt small" class:aside=o.aside data-testid=testid>
                            <input type="radio" name=name id=input_id
                                value=o.code.clone() prop:checked=checked on:change=set/>
                            <span>{o.label.get(lang).to_string()}</span>
                        </label>
                    }
                })
                .collect_view();
            view! {
                <fieldset class="cell" class:missing=is_missing role="radiogroup" data-testid=format!("cell-{item}-{unit}-{crit}")>
                    <legend class="cell-legend"><span class="wide-only">{name.clone()}" · "</span>{clabel.clone()}</legend>
                    <div class="cell-options">{buttons}</div>
                </fieldset>
            }
        })
        .collect_view();
    view! {
        <div class="grid-row" data-testid=format!("row-{item}-{unit}")>
            <h3 class="unit-name">{name}</h3>
            {cells}
        </div>
    }
}
