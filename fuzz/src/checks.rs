//! What every fuzz target asserts about one input, as plain functions of the input's bytes.
//!
//! Each function feeds the bytes to one reader of the analysis library and asserts what a
//! user relies on: a bad input is an `Err` (never a panic, an overflow or a hang), and what
//! was read writes back and reads again to the same thing (the CSV and JSON exports, the
//! compact stored ballot, a saved part). The fuzz targets in fuzz/fuzz_targets/ call these;
//! analysis/tests/fuzz_regressions.rs includes this very file with `#[path]`, so a saved
//! crash replays through the same code in a plain `cargo test`. That is why it uses nothing
//! but `analysis`, `serde_json` and std.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use analysis::aggregate::Aggregate;
use analysis::assess::{assess, read_components, read_deductions};
use analysis::ballot::{logic_problems, AnswerView};
use analysis::compact;
use analysis::expr::Expression;
use analysis::ingest::{fold_csv, Pass, Session};
use analysis::rules::{Resolved, Rules};
use analysis::score::{score, Report};
use analysis::tally::fold_tally;
use analysis::time::{format_rfc3339, parse_rfc3339};
use analysis::{json, render, wide_csv, Answer, Ballot, Form};

const BALLOTS_CSV: &str = include_str!("../../tests/fixtures/kiosk-a.csv");
const CADRE_CSV: &str = include_str!("../../tests/fixtures/annual.csv");
const BALLOTS_JSON: &str = include_str!("../../tests/fixtures/kiosk-b.json");
const TALLY_CSV: &str = include_str!("../../tests/fixtures/tally.csv");
const COMPONENTS_CSV: &str = include_str!("../../tests/fixtures/components.csv");
const DEDUCTIONS_CSV: &str = include_str!("../../tests/fixtures/deductions.csv");
const ANNUAL_RULES: &str = include_str!("../../analysis/rules/annual-1000.toml");

/// What the checks read against: the built-in form, its default rules, the fixtures'
/// ballots, and a score report under the annual-assessment rules. Built once per process.
struct World {
    form: Form,
    rules: Resolved,
    ballots: Vec<Ballot>,
    annual: Resolved,
    annual_report: Report,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let form = Form::default_form();
        let rules = Rules::default()
            .resolve("default rules", &form)
            .expect("the default rules fit the built-in form");
        let ballots = json::read_all(&form, "kiosk-b.json", BALLOTS_JSON.as_bytes())
            .expect("the JSON fixture reads");
        let annual = Rules::from_toml("annual-1000.toml", ANNUAL_RULES, &form)
            .expect("the annual rules read");
        let annual_report = score(&form, &annual, &fixtures_folded(&form, &annual));
        World {
            form,
            rules,
            ballots,
            annual,
            annual_report,
        }
    })
}

/// The fixtures' ballots and tally folded under `rules`; a fixture they refuse is left out.
fn fixtures_folded(form: &Form, rules: &Resolved) -> Aggregate {
    let session = Session::new(form, rules, Pass::Fold, None);
    let mut agg = session.empty();
    for (name, text) in [("kiosk-a.csv", BALLOTS_CSV), ("annual.csv", CADRE_CSV)] {
        let mut one = session.empty();
        if fold_csv(&session, name, text.as_bytes(), &mut one).is_ok() {
            agg.merge(&one).expect("states of one session merge");
        }
    }
    let _ = fold_tally(rules, "tally.csv", TALLY_CSV.as_bytes(), &mut agg);
    agg
}

/// Ballots as the CSV export can hold them: it has no way to write an empty row of a grid,
/// so those are dropped before comparing.
fn without_empty_rows(ballots: &[Ballot]) -> Vec<Ballot> {
    let mut out = ballots.to_vec();
    for b in &mut out {
        for a in b.answers.values_mut() {
            if let Answer::Grid(g) = a {
                g.retain(|_, row| !row.is_empty());
            }
        }
    }
    out
}

/// Whether two parts are the same, counts exactly and float sums up to their last bits:
/// serde_json's default float parsing is not correctly rounded beyond 10^22 (its
/// `float_roundtrip` feature is), so a huge sum of squares may come back a few ulps away.
fn same_part(a: &Aggregate, b: &Aggregate) -> bool {
    fn close(a: &serde_json::Value, b: &serde_json::Value) -> bool {
        use serde_json::Value::{Array, Number, Object};
        match (a, b) {
            (Number(x), Number(y)) if x.is_f64() && y.is_f64() => {
                let (x, y) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                x == y || (x - y).abs() <= 1e-15 * x.abs().max(y.abs())
            }
            (Array(x), Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(v, w)| close(v, w)),
            (Object(x), Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| close(v, w)))
            }
            _ => a == b,
        }
    }
    let value = |p: &Aggregate| serde_json::to_value(p).expect("a part serializes");
    close(&value(a), &value(b))
}

/// A ballot as the compact store gives it back: times in the UTC `toISOString()` shape.
fn with_utc_times(b: &Ballot) -> Ballot {
    let utc = |t: &str| parse_rfc3339(t).map(format_rfc3339).unwrap_or_default();
    let mut b = without_empty_rows(std::slice::from_ref(b)).remove(0);
    b.started_at = utc(&b.started_at);
    b.submitted_at = utc(&b.submitted_at);
    b
}

/// Form JSON (`Form::from_json`): a form either reads or is refused with problems; a form
/// that reads evaluates its own rules on every fixture ballot and on no answers, takes
/// default rules or refuses them, and reads its own empty CSV export back.
pub fn form_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let form = match Form::from_json("fuzz.json", text) {
        Ok(form) => form,
        Err(problems) => {
            assert!(!problems.problems.is_empty(), "refused without a problem");
            let _ = problems.to_string();
            return;
        }
    };
    let w = world();
    let empty = BTreeMap::new();
    let _ = logic_problems(&form, &empty);
    for b in &w.ballots {
        let _ = logic_problems(&form, &b.answers);
        let _ = b.problems(&form);
    }
    let _ = Rules::default().resolve("default rules", &form);
    let export = wide_csv::to_string(&form, &[]);
    match wide_csv::read_all(&form, "export.csv", export.as_bytes()) {
        Ok(read) => assert!(read.is_empty(), "an empty export read as {read:?}"),
        Err(e) => panic!("the form's own empty export does not read back: {e}\n{export}"),
    }
}

/// Expressions (`Expression::parse`, then evaluation): an expression parses or is refused
/// at a character inside it; one that parses evaluates against no answers and every
/// fixture ballot, with `.` unset, a number, a text and a list.
pub fn expression(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let x = match Expression::parse(source) {
        Ok(x) => x,
        Err(e) => {
            let end = source.chars().count() + 1;
            assert!(
                (1..=end).contains(&e.position),
                "error at character {} of {end}: {e}",
                e.position
            );
            return;
        }
    };
    assert_eq!(x.source(), source);
    let _ = x.references();
    let _ = x.uses_current();
    let w = world();
    let empty = BTreeMap::new();
    let currents = [
        None,
        Some(Answer::Number(f64::MAX)),
        Some(Answer::Number(-0.5)),
        Some(Answer::Str("5".into())),
        Some(Answer::Codes(vec!["online".into(), "window".into()])),
    ];
    for answers in std::iter::once(&empty).chain(w.ballots.iter().map(|b| &b.answers)) {
        let view = AnswerView::new(&w.form, answers);
        for current in &currents {
            let v = x.evaluate(&view.with_current(current.as_ref()));
            let _ = (v.truthy(), v.number(), v.string());
        }
    }
}

/// The wide CSV ballot reader (`wide_csv::read_all`) and the scorer's fold of the same
/// file (`ingest::fold_csv`): what reads writes back as CSV and reads again unchanged, and
/// the two readers agree on whether the file is good.
pub fn wide_csv(data: &[u8]) {
    let w = world();
    let read = wide_csv::read_all(&w.form, "fuzz.csv", data);
    let session = Session::new(&w.form, &w.rules, Pass::Fold, None);
    let mut agg = session.empty();
    let folded = fold_csv(&session, "fuzz.csv", data, &mut agg);
    let Ok(ballots) = read else {
        return;
    };
    let export = wide_csv::to_string(&w.form, &ballots);
    match wide_csv::read_all(&w.form, "export.csv", export.as_bytes()) {
        Ok(again) => assert_eq!(again, without_empty_rows(&ballots), "{export}"),
        Err(e) => panic!("the export of what was read does not read back: {e}\n{export}"),
    }
    let mut ids: Vec<&str> = ballots.iter().map(|b| b.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.len() == ballots.len() {
        if let Err(e) = folded {
            panic!(
                "read_all reads {} ballots, fold_csv refuses: {e:?}",
                ballots.len()
            );
        }
        assert_eq!(agg.ballots.total, ballots.len() as u64);
    }
}

/// JSON ballots (`json::read_all`): what reads writes back as JSON, as CSV and as compact
/// stored lines, and each reads again to the same ballots.
pub fn json_ballots(data: &[u8]) {
    let w = world();
    let Ok(ballots) = json::read_all(&w.form, "fuzz.json", data) else {
        return;
    };
    // No export, JSON or CSV, nor the device's store line, keeps an access code.
    let ballots: Vec<Ballot> = ballots
        .into_iter()
        .map(|b| Ballot {
            access_code: None,
            ..b
        })
        .collect();
    let text = json::to_string(&ballots);
    match json::read_all(&w.form, "export.json", text.as_bytes()) {
        Ok(again) => assert_eq!(again, ballots, "{text}"),
        Err(e) => panic!("the JSON export of what was read does not read back: {e}\n{text}"),
    }
    let export = wide_csv::to_string(&w.form, &ballots);
    match wide_csv::read_all(&w.form, "export.csv", export.as_bytes()) {
        Ok(again) => assert_eq!(again, without_empty_rows(&ballots), "{export}"),
        Err(e) => panic!("the CSV export of what was read does not read back: {e}\n{export}"),
    }
    for b in &ballots {
        // The device store keeps times from 1970 to 9999 (what its decoder accepts) and
        // refuses others with a message; anything else a checked ballot holds must store.
        let line = match compact::encode(&w.form, b) {
            Ok(line) => line,
            Err(e) if e.contains("is not between 1970 and 9999") => continue,
            Err(e) => panic!("a checked ballot does not store: {e}\n{b:?}"),
        };
        match compact::decode(&w.form, &b.device_id, &line) {
            Ok(again) => assert_eq!(again, with_utc_times(b), "{line}"),
            Err(e) => panic!("a stored ballot does not read back: {e}\n{line}"),
        }
    }
}

/// Tallies (`tally::fold_tally`): a tally folds or is refused; one that folds scores,
/// renders, and saves as a part that reads back the same.
pub fn tally(data: &[u8]) {
    let w = world();
    let session = Session::new(&w.form, &w.rules, Pass::Fold, None);
    let mut agg = session.empty();
    if fold_tally(&w.rules, "fuzz.csv", data, &mut agg).is_err() {
        return;
    }
    let report = score(&w.form, &w.rules, &agg);
    let _ = render::to_csv(&report, &w.rules.rules.output);
    let _ = render::to_table(&report, &w.rules.rules.output);
    let saved = agg.to_json();
    match Aggregate::from_json("part.json", &saved) {
        Ok(again) => assert_eq!(again, agg, "{saved}"),
        Err(e) => panic!("the part saved from a tally does not read back: {e}\n{saved}"),
    }
}

/// Saved parts (`Aggregate::from_json`, what `pingyi aggregate` writes): a part reads or is
/// refused; one that reads saves and reads back the same, merges into a run under the
/// default rules (twice, as two copies of one part would) or is refused, and scores.
pub fn part(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(part) = Aggregate::from_json("fuzz.json", text) else {
        return;
    };
    let saved = part.to_json();
    match Aggregate::from_json("again.json", &saved) {
        Ok(again) => assert!(same_part(&again, &part), "{saved}"),
        Err(e) => panic!("a part that read does not read back once saved: {e}\n{saved}"),
    }
    let w = world();
    let session = Session::new(&w.form, &w.rules, Pass::Fold, None);
    let mut total = session.empty();
    if total.merge(&part).is_err() || total.merge(&part).is_err() {
        return;
    }
    let report = score(&w.form, &w.rules, &total);
    let _ = render::to_csv(&report, &w.rules.rules.output);
    let _ = render::to_table(&report, &w.rules.rules.output);
}

/// Rules TOML (`Rules::from_toml`): rules read or are refused with problems; rules that
/// read fold the fixtures' ballots and tally, score, render as table, CSV and JSON, and
/// run the annual assessment when they have one.
pub fn rules_toml(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let w = world();
    let rules = match Rules::from_toml("fuzz.toml", text, &w.form) {
        Ok(rules) => rules,
        Err(problems) => {
            assert!(!problems.problems.is_empty(), "refused without a problem");
            let _ = problems.to_string();
            return;
        }
    };
    let agg = fixtures_folded(&w.form, &rules);
    let report = score(&w.form, &rules, &agg);
    let out = &rules.rules.output;
    let _ = (render::to_csv(&report, out), render::to_table(&report, out));
    let _ = serde_json::to_string(&report);
    if let Some(a) = &rules.rules.assessment {
        let components = read_components("c.csv", COMPONENTS_CSV.as_bytes(), a, &report);
        let deductions = read_deductions("d.csv", DEDUCTIONS_CSV.as_bytes(), a, &report);
        if let (Ok(c), Ok(d)) = (components, deductions) {
            if let Ok(r) = assess(&report, a, &c, &d, "c.csv") {
                let _ = analysis::assess::to_table(&r, out.score_decimals);
                let _ = analysis::assess::to_csv(&r, out.score_decimals);
            }
        }
    }
}

/// The compact stored ballot (`compact::decode`): a line decodes or is refused; a line
/// that decodes encodes again, and that line decodes to the same ballot.
pub fn compact(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let w = world();
    let Ok(b) = compact::decode(&w.form, "kiosk-7", line) else {
        return;
    };
    let stored = compact::encode(&w.form, &b)
        .unwrap_or_else(|e| panic!("a decoded ballot does not store again: {e}\n{b:?}"));
    match compact::decode(&w.form, "kiosk-7", &stored) {
        Ok(again) => assert_eq!(again, b, "{line}\n{stored}"),
        Err(e) => panic!("a line written by encode does not decode: {e}\n{stored}"),
    }
}

/// The annual assessment's tables (`assess::read_components`, `assess::read_deductions`):
/// the input is read as both; what reads goes into an assessment of the fixture scores.
pub fn assess_tables(data: &[u8]) {
    let w = world();
    let a = w
        .annual
        .rules
        .assessment
        .as_ref()
        .expect("the annual rules have an assessment");
    let report = &w.annual_report;
    let fixture_components = read_components("c.csv", COMPONENTS_CSV.as_bytes(), a, report)
        .expect("the components fixture reads");
    let fixture_deductions = read_deductions("d.csv", DEDUCTIONS_CSV.as_bytes(), a, report)
        .expect("the deductions fixture reads");
    let decimals = w.annual.rules.output.score_decimals;
    if let Ok(c) = read_components("fuzz.csv", data, a, report) {
        if let Ok(r) = assess(report, a, &c, &fixture_deductions, "fuzz.csv") {
            let _ = (
                analysis::assess::to_table(&r, decimals),
                analysis::assess::to_csv(&r, decimals),
            );
        }
    }
    if let Ok(d) = read_deductions("fuzz.csv", data, a, report) {
        if let Ok(r) = assess(report, a, &fixture_components, &d, "c.csv") {
            let _ = (
                analysis::assess::to_table(&r, decimals),
                analysis::assess::to_csv(&r, decimals),
            );
        }
    }
}
