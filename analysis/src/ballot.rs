//! Ballots (one respondent's submitted answers) and the logic that checks answers
//! against a form: structure (codes exist, types match) and the form's own rules
//! (relevance, required, constraints), shared by the app and the CLI.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::access_code::AccessCode;
use crate::error::{cut, quoted, Problem};
use crate::expr::{Answers, Reference, Value};
use crate::form::{Form, Item, ItemKind, Target};
use crate::time::parse_rfc3339;

/// An appraisal grid's answers: unit id → criterion id → option code.
pub type Grid = BTreeMap<String, BTreeMap<String, String>>;

/// One answer, shaped by its item's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A code (single, rating) or free text (text).
    Str(String),
    /// A number (number).
    Number(f64),
    /// Codes (multi), in the order chosen.
    Codes(Vec<String>),
    /// An appraisal grid: unit → criterion → code.
    Grid(Grid),
}

/// 选票: one respondent's submitted answers, as stored on the device and exported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ballot {
    /// Random UUID made on the device.
    pub id: String,
    /// The form's id.
    pub form_id: String,
    /// The form's version.
    pub form_version: String,
    /// The device that took the ballot.
    pub device_id: String,
    /// 评议主体: the respondent group.
    pub group: String,
    /// The language the form was filled in.
    pub lang: String,
    /// When the respondent began (RFC 3339).
    pub started_at: String,
    /// When the ballot was submitted (RFC 3339).
    pub submitted_at: String,
    /// Item id → answer; unanswered items are absent.
    pub answers: BTreeMap<String, Answer>,
    /// 投票码: the one-time code of a restricted group, as typed (`K7QM-3XWD`), on its way
    /// to the server. Absent from the JSON when `None`, so a ballot without one keeps its
    /// canonical JSON and hash; the server and every export strip it, so it never stands
    /// next to the answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_code: Option<String>,
}

impl Ballot {
    /// Seconds from start to submit, when both times are valid.
    pub fn duration_s(&self) -> Option<f64> {
        let (a, b) = (
            parse_rfc3339(&self.started_at)?,
            parse_rfc3339(&self.submitted_at)?,
        );
        Some((b - a) as f64 / 1000.0)
    }

    /// Structural problems of this ballot against `form`, with paths such as `answers.appr.gaj`.
    /// It does not apply required/relevant/constraint: see [`logic_problems`] for those.
    pub fn problems(&self, form: &Form) -> Vec<Problem> {
        let mut out = Vec::new();
        let mut p = |path: &str, msg: String| out.push(Problem::new(path, msg));
        if self.id.trim().is_empty() {
            p("id", "is empty, expected the ballot's unique id".into());
        }
        if self.form_id != form.id {
            p(
                "form_id",
                format!(
                    "{} is not this form, expected {}",
                    quoted(&self.form_id),
                    quoted(&form.id)
                ),
            );
        }
        if self.form_version != form.version {
            p(
                "form_version",
                format!(
                    "{} is not this form's version, expected {}",
                    quoted(&self.form_version),
                    quoted(&form.version)
                ),
            );
        }
        if self.device_id.trim().is_empty() {
            p("device_id", "is empty, expected the device's id".into());
        }
        if form.group(&self.group).is_none() {
            let known: Vec<&str> = form.groups.iter().map(|g| g.id.as_str()).collect();
            p(
                "group",
                format!(
                    "{} is not a respondent group, expected one of: {}",
                    quoted(&self.group),
                    known.join(", ")
                ),
            );
        }
        if !form.languages.contains(&self.lang) {
            p(
                "lang",
                format!(
                    "{} is not a language of the form, expected one of: {}",
                    quoted(&self.lang),
                    form.languages.join(", ")
                ),
            );
        }
        let start = parse_rfc3339(&self.started_at);
        let end = parse_rfc3339(&self.submitted_at);
        if start.is_none() {
            p(
                "started_at",
                format!(
                    "{} is not an RFC 3339 time such as 2026-11-22T09:30:00+08:00",
                    quoted(&self.started_at)
                ),
            );
        }
        if end.is_none() {
            p(
                "submitted_at",
                format!(
                    "{} is not an RFC 3339 time such as 2026-11-22T09:30:00+08:00",
                    quoted(&self.submitted_at)
                ),
            );
        }
        if let (Some(a), Some(b)) = (start, end) {
            if b < a {
                p(
                    "submitted_at",
                    format!(
                        "{} is before started_at {}, expected a later time",
                        cut(&self.submitted_at),
                        cut(&self.started_at)
                    ),
                );
            }
        }
        // Whether the group needs a code is the server's decision (a ballot exported by
        // hand from a device has none); here only a code that cannot be one is refused.
        if let Some(code) = &self.access_code {
            if let Err(e) = AccessCode::parse(code) {
                p("access_code", format!("{}: {e}", quoted(code)));
            }
        }
        for (id, answer) in &self.answers {
            let path = format!("answers.{id}");
            match form.item(id) {
                None => p(
                    &path,
                    format!("{} is not an item of form {}", quoted(id), quoted(&form.id)),
                ),
                Some(item) => {
                    for msg in answer_problems(form, item, answer) {
                        p(&path, msg);
                    }
                }
            }
        }
        out
    }
}

fn describe(a: &Answer) -> String {
    match a {
        Answer::Str(s) => format!("text {}", quoted(s)),
        Answer::Number(n) => format!("number {n}"),
        Answer::Codes(c) => format!("a list {}", cut(&format!("{c:?}"))),
        Answer::Grid(_) => "a grid".into(),
    }
}

/// What is wrong with `answer` as an answer to `item` (codes exist, types match, ranges hold).
pub fn answer_problems(form: &Form, item: &Item, answer: &Answer) -> Vec<String> {
    let mut out = Vec::new();
    let codes = item.codes(form);
    let expected_codes = || codes.join(", ");
    match (&item.kind, answer) {
        (ItemKind::Single { .. } | ItemKind::Rating { .. }, Answer::Str(code)) => {
            if !codes.contains(&code.as_str()) {
                out.push(format!(
                    "{} is not an option, expected one of: {}",
                    quoted(code),
                    expected_codes()
                ));
            }
        }
        (ItemKind::Multi { .. }, Answer::Codes(list)) => {
            if list.is_empty() {
                out.push(
                    "is an empty list, expected at least one code (leave the answer out instead)"
                        .into(),
                );
            }
            for (i, code) in list.iter().enumerate() {
                if !codes.contains(&code.as_str()) {
                    out.push(format!(
                        "{} is not an option, expected one of: {}",
                        quoted(code),
                        expected_codes()
                    ));
                } else if list[..i].contains(code) {
                    out.push(format!(
                        "{} is chosen twice, expected each code once",
                        quoted(code)
                    ));
                }
            }
        }
        (ItemKind::Text { max_length, .. }, Answer::Str(text)) => {
            if text.is_empty() {
                out.push("is empty, expected some text (leave the answer out instead)".into());
            }
            if let Some(max) = max_length {
                let n = text.chars().count();
                if n > *max {
                    out.push(format!("has {n} characters, expected at most {max}"));
                }
            }
        }
        (ItemKind::Number { min, max, integer }, Answer::Number(x)) => {
            if !x.is_finite() {
                out.push(format!("{x} is not a finite number"));
            }
            if *integer && x.fract() != 0.0 {
                out.push(format!(
                    "{x} is not a whole number, expected a whole number"
                ));
            }
            if let Some(lo) = min {
                if x < lo {
                    out.push(format!("{x} is below the minimum {lo}"));
                }
            }
            if let Some(hi) = max {
                if x > hi {
                    out.push(format!("{x} is above the maximum {hi}"));
                }
            }
        }
        (
            ItemKind::Appraisal {
                units, criteria, ..
            },
            Answer::Grid(grid),
        ) => {
            if grid.values().all(|row| row.is_empty()) {
                out.push(
                    "is an empty grid, expected at least one cell (leave the answer out instead)"
                        .into(),
                );
            }
            for (unit, row) in grid {
                if !units.contains(unit) {
                    out.push(format!(
                        "{} is not a unit of this grid, expected one of: {}",
                        quoted(unit),
                        units.join(", ")
                    ));
                    continue;
                }
                for (crit, code) in row {
                    if !criteria.iter().any(|c| &c.id == crit) {
                        let ids: Vec<&str> = criteria.iter().map(|c| c.id.as_str()).collect();
                        out.push(format!(
                            "{}.{}: {} is not a criterion, expected one of: {}",
                            cut(unit),
                            cut(crit),
                            quoted(crit),
                            ids.join(", ")
                        ));
                    } else if !codes.contains(&code.as_str()) {
                        out.push(format!(
                            "{unit}.{crit}: {} is not an option, expected one of: {}",
                            quoted(code),
                            expected_codes()
                        ));
                    }
                }
            }
        }
        (kind, other) => {
            let expected = match kind {
                ItemKind::Single { .. } | ItemKind::Rating { .. } => "a code (text)",
                ItemKind::Multi { .. } => "a list of codes",
                ItemKind::Text { .. } => "text",
                ItemKind::Number { .. } => "a number",
                ItemKind::Appraisal { .. } => "a grid (unit → criterion → code)",
            };
            out.push(format!(
                "found {}, expected {expected} for a {} item",
                describe(other),
                kind.type_name()
            ));
        }
    }
    out
}

/// Answers seen through the form, for evaluating expressions.
pub struct AnswerView<'a> {
    form: &'a Form,
    answers: &'a BTreeMap<String, Answer>,
    current: Option<&'a Answer>,
}

impl<'a> AnswerView<'a> {
    /// A view of `answers` for `form`.
    pub fn new(form: &'a Form, answers: &'a BTreeMap<String, Answer>) -> AnswerView<'a> {
        AnswerView {
            form,
            answers,
            current: None,
        }
    }

    /// The same view with `.` bound to `answer`.
    pub fn with_current(&self, answer: Option<&'a Answer>) -> AnswerView<'a> {
        AnswerView {
            form: self.form,
            answers: self.answers,
            current: answer,
        }
    }
}

fn to_value(a: Option<&Answer>) -> Value {
    match a {
        None => Value::empty(),
        Some(Answer::Str(s)) => Value::Str(s.clone()),
        Some(Answer::Number(n)) => Value::Num(*n),
        Some(Answer::Codes(c)) => Value::List(c.clone()),
        Some(Answer::Grid(g)) => {
            Value::List(g.values().flat_map(|row| row.values().cloned()).collect())
        }
    }
}

impl Answers for AnswerView<'_> {
    fn value(&self, r: &Reference) -> Value {
        let Ok(target) = self.form.resolve(r) else {
            return Value::empty();
        };
        let grid = match self.answers.get(&r.item) {
            Some(Answer::Grid(g)) => Some(g),
            _ => None,
        };
        match target {
            Target::Item(_) => to_value(self.answers.get(&r.item)),
            Target::Unit(_, unit) => Value::List(
                grid.and_then(|g| g.get(unit))
                    .map(|row| row.values().cloned().collect())
                    .unwrap_or_default(),
            ),
            Target::Criterion(_, crit) => Value::List(
                grid.map(|g| {
                    g.values()
                        .filter_map(|row| row.get(crit).cloned())
                        .collect()
                })
                .unwrap_or_default(),
            ),
            Target::Cell(_, unit, crit) => grid
                .and_then(|g| g.get(unit))
                .and_then(|row| row.get(crit))
                .map(|c| Value::Str(c.clone()))
                .unwrap_or_else(Value::empty),
        }
    }

    fn current(&self) -> Value {
        to_value(self.current)
    }
}

/// Why an item's answer is not acceptable under the form's rules.
#[derive(Debug, Clone, PartialEq)]
pub enum Issue {
    /// Required and not (fully) answered; for a grid, the cells still empty as `unit.criterion`.
    Required {
        /// Grid cells without an answer (empty for other items).
        missing_cells: Vec<(String, String)>,
    },
    /// The constraint is false.
    Constraint,
    /// The answer does not fit the item (bad code, out of range …), with the reasons.
    Invalid(Vec<String>),
}

/// Whether `item` is shown, given `answers` (XLSForm: no `relevant` means always).
pub fn is_relevant(form: &Form, answers: &BTreeMap<String, Answer>, item: &Item) -> bool {
    item.relevant
        .as_ref()
        .is_none_or(|e| e.is_true(&AnswerView::new(form, answers)))
}

/// The answers that count: those of relevant items, decided in form order so that an
/// item hidden by an earlier hidden item is hidden too (its stale answer is dropped).
pub fn relevant_answers(
    form: &Form,
    answers: &BTreeMap<String, Answer>,
) -> BTreeMap<String, Answer> {
    let mut kept = BTreeMap::new();
    for item in form.items() {
        if let Some(a) = answers.get(&item.id) {
            kept.insert(item.id.clone(), a.clone());
        }
    }
    for item in form.items() {
        if !is_relevant(form, &kept, item) {
            kept.remove(&item.id);
        }
    }
    kept
}

/// Checks one item's answer under the form's rules; `None` when it is acceptable or hidden.
pub fn item_issue(form: &Form, answers: &BTreeMap<String, Answer>, item: &Item) -> Option<Issue> {
    if !is_relevant(form, answers, item) {
        return None;
    }
    let answer = answers.get(&item.id);
    if item.required {
        match (&item.kind, answer) {
            (_, None) => {
                let missing_cells = match &item.kind {
                    ItemKind::Appraisal {
                        units, criteria, ..
                    } => units
                        .iter()
                        .flat_map(|u| criteria.iter().map(move |c| (u.clone(), c.id.clone())))
                        .collect(),
                    _ => Vec::new(),
                };
                return Some(Issue::Required { missing_cells });
            }
            (
                ItemKind::Appraisal {
                    units, criteria, ..
                },
                Some(Answer::Grid(g)),
            ) => {
                let missing_cells: Vec<(String, String)> = units
                    .iter()
                    .flat_map(|u| criteria.iter().map(move |c| (u.clone(), c.id.clone())))
                    .filter(|(u, c)| g.get(u).and_then(|row| row.get(c)).is_none())
                    .collect();
                if !missing_cells.is_empty() {
                    return Some(Issue::Required { missing_cells });
                }
            }
            _ => {}
        }
    }
    let answer = answer?;
    let invalid = answer_problems(form, item, answer);
    if !invalid.is_empty() {
        return Some(Issue::Invalid(invalid));
    }
    if let Some(c) = &item.constraint {
        if !c.is_true(&AnswerView::new(form, answers).with_current(Some(answer))) {
            return Some(Issue::Constraint);
        }
    }
    None
}

/// Every item with an issue, in form order: what blocks a submit.
pub fn logic_problems<'f>(
    form: &'f Form,
    answers: &BTreeMap<String, Answer>,
) -> Vec<(&'f Item, Issue)> {
    let answers = relevant_answers(form, answers);
    form.items()
        .filter_map(|item| item_issue(form, &answers, item).map(|i| (item, i)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(cells: &[(&str, &str, &str)]) -> Answer {
        let mut g = Grid::new();
        for (u, c, code) in cells {
            g.entry(u.to_string())
                .or_default()
                .insert(c.to_string(), code.to_string());
        }
        Answer::Grid(g)
    }

    fn full_grid(form: &Form, code: &str) -> Answer {
        let ItemKind::Appraisal {
            units, criteria, ..
        } = &form.item("appr").unwrap().kind
        else {
            panic!()
        };
        let cells: Vec<(String, String)> = units
            .iter()
            .flat_map(|u| criteria.iter().map(move |c| (u.clone(), c.id.clone())))
            .collect();
        let refs: Vec<(&str, &str, &str)> = cells
            .iter()
            .map(|(u, c)| (u.as_str(), c.as_str(), code))
            .collect();
        grid(&refs)
    }

    #[test]
    fn follow_up_why_is_relevant_only_after_a_dissatisfied_overall() {
        let form = Form::default_form();
        let why = form.item("why").unwrap();
        let mut answers = BTreeMap::new();
        answers.insert("appr".to_string(), full_grid(&form, "4"));
        assert!(!is_relevant(&form, &answers, why));
        answers.insert(
            "appr".to_string(),
            grid(&[("gaj", "overall", "2"), ("jyj", "overall", "5")]),
        );
        assert!(is_relevant(&form, &answers, why));
        answers.insert(
            "appr".to_string(),
            grid(&[("gaj", "attitude", "1"), ("jyj", "overall", "3")]),
        );
        assert!(
            !is_relevant(&form, &answers, why),
            "only the 总体评价 column counts"
        );
        answers.insert("appr".to_string(), grid(&[("mzj", "overall", "1")]));
        assert!(is_relevant(&form, &answers, why));
    }

    #[test]
    fn required_grid_lists_missing_cells_and_constraint_uses_current() {
        let form = Form::default_form();
        let mut answers = BTreeMap::new();
        answers.insert("contact".to_string(), Answer::Str("often".into()));
        answers.insert("appr".to_string(), grid(&[("gaj", "overall", "5")]));
        answers.insert("times".to_string(), Answer::Number(1000.0));
        let issues = logic_problems(&form, &answers);
        let ids: Vec<&str> = issues.iter().map(|(i, _)| i.id.as_str()).collect();
        assert_eq!(ids, ["times", "appr"]);
        let Issue::Required { missing_cells } = &issues[1].1 else {
            panic!("{issues:?}")
        };
        assert_eq!(missing_cells.len(), form.units.len() * 5 - 1);
        assert!(
            matches!(&issues[0].1, Issue::Invalid(m) if m[0].contains("above the maximum 999"))
        );
        answers.insert("times".to_string(), Answer::Number(12.0));
        answers.insert("appr".to_string(), full_grid(&form, "9"));
        assert!(logic_problems(&form, &answers).is_empty());
    }

    #[test]
    fn hidden_answers_do_not_count() {
        let form = Form::default_form();
        let mut answers = BTreeMap::new();
        answers.insert("contact".to_string(), Answer::Str("never".into()));
        answers.insert("channels".to_string(), Answer::Codes(vec!["online".into()]));
        answers.insert("times".to_string(), Answer::Number(-3.0));
        let kept = relevant_answers(&form, &answers);
        assert!(!kept.contains_key("channels") && !kept.contains_key("times"));
        assert!(logic_problems(&form, &answers)
            .iter()
            .all(|(i, _)| i.id == "appr"));
    }

    #[test]
    fn a_ballot_without_a_code_keeps_its_json_and_one_with_a_code_reads_back() {
        let form = Form::default_form();
        let mut b = crate::synth::Generator::new(&form, 7).ballot();
        assert_eq!(b.access_code, None);
        let plain = serde_json::to_string(&b).unwrap();
        assert!(!plain.contains("access_code"), "{plain}");
        let back: Ballot = serde_json::from_str(&plain).unwrap();
        assert_eq!(back, b);

        b.access_code = Some("k7qm 3xwd".into());
        let coded = serde_json::to_string(&b).unwrap();
        assert!(coded.ends_with(r#","access_code":"k7qm 3xwd"}"#), "{coded}");
        let back: Ballot = serde_json::from_str(&coded).unwrap();
        assert_eq!(back, b, "the code comes back exactly as typed");
    }

    #[test]
    fn a_code_that_parses_is_no_problem_whatever_the_group() {
        let form = Form::default_form();
        let mut b = crate::synth::Generator::new(&form, 7).ballot();
        let good = crate::access_code::AccessCode::from_random([3, 1, 4, 1, 5, 9, 2]);
        for group in ["public", "npc"] {
            b.group = group.into();
            b.access_code = None;
            assert_eq!(b.problems(&form), [], "no code is the server's business");
            b.access_code = Some(good.to_string().to_lowercase());
            assert_eq!(b.problems(&form), []);
        }
        let typo: String = good
            .as_str()
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 2 {
                    if c == 'A' {
                        'B'
                    } else {
                        'A'
                    }
                } else {
                    c
                }
            })
            .collect();
        b.access_code = Some(typo.clone());
        let p: Vec<String> = b.problems(&form).iter().map(|p| p.to_string()).collect();
        assert_eq!(
            p,
            [format!(
                "access_code: \"{typo}\": the access code's check character does not match: a character was mistyped"
            )]
        );
    }

    #[test]
    fn structural_problems_have_paths() {
        let form = Form::default_form();
        let mut b = Ballot {
            id: "x".into(),
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            device_id: "d".into(),
            group: "aliens".into(),
            lang: "zh-CN".into(),
            started_at: "2026-11-22T09:00:00+08:00".into(),
            submitted_at: "2026-11-22T08:59:00+08:00".into(),
            answers: BTreeMap::new(),
            access_code: Some("K7QM-3XWO".into()),
        };
        b.answers
            .insert("contact".into(), Answer::Str("daily".into()));
        b.answers.insert("times".into(), Answer::Str("5".into()));
        b.answers
            .insert("appr".into(), grid(&[("gaj", "overall", "7")]));
        b.answers.insert("nope".into(), Answer::Str("1".into()));
        let p: Vec<String> = b.problems(&form).iter().map(|p| p.to_string()).collect();
        assert!(
            p.iter()
                .any(|m| m.starts_with("group: \"aliens\" is not a respondent group")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("submitted_at: ") && m.contains("before started_at")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("answers.contact: \"daily\" is not an option")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("answers.times: found text \"5\", expected a number")),
            "{p:#?}"
        );
        assert!(
            p.iter()
                .any(|m| m.starts_with("answers.appr: gaj.overall: \"7\" is not an option")),
            "{p:#?}"
        );
        assert!(p.iter().any(|m| m.starts_with("answers.nope: ")), "{p:#?}");
        assert!(
            p.iter()
                .any(|m| m.starts_with("access_code: \"K7QM-3XWO\": character 8")
                    && m.contains("which codes never use")),
            "{p:#?}"
        );
        assert_eq!(p.len(), 7);
    }
}
