//! Numbers at their edges, through the real `pingyi` binary: counts that pass what a u64
//! holds, settings outside their ranges, huge samples, and expressions nested past the
//! limit. Each test here failed (a panic, a hang, a stack overflow or a NaN score ranked
//! with exit 0) before the checks it guards; every fixture is written into a fresh folder.

mod common;

use common::{fixture, rules, Work};
use serde_json::Value;

const U64_MAX: &str = "18446744073709551615";

/// The service-hall form of the fixtures with `relevant` of its text item replaced.
fn hall_form_with_relevant(relevant: &str) -> String {
    let text = std::fs::read_to_string(fixture("forms/hall.json")).unwrap();
    let mut form: Value = serde_json::from_str(&text).unwrap();
    form["sections"][0]["items"][1]["relevant"] = Value::String(relevant.into());
    serde_json::to_string(&form).unwrap()
}

#[test]
fn form_check_refuses_a_relevant_nested_100000_deep_naming_its_path() {
    let w = Work::new();
    let n = 100_000;
    let deep = format!(
        "{}selected(${{grid.attitude}}, '3'){}",
        "(".repeat(n),
        ")".repeat(n)
    );
    w.write("deep.json", &hall_form_with_relevant(&deep));
    let out = w.run(&["form", "check", "deep.json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The call of selected() is one level more than the parentheses around it.
    let problem = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sections[0].items[1].relevant:"))
        .unwrap_or_else(|| panic!("no problem at the item's path in {stdout:.500}"));
    assert!(
        problem.contains("nested 100001 levels deep") && problem.contains("expected at most 32"),
        "{problem:.500}"
    );
}

#[test]
fn form_check_accepts_a_long_flat_relevant() {
    // 10,000 alternatives joined by `or` nest no deeper than two.
    let w = Work::new();
    let flat = vec!["selected(${grid.attitude}, '3')"; 10_000].join(" or ");
    w.write("flat.json", &hall_form_with_relevant(&flat));
    let out = w.ok(&["form", "check", "flat.json"]);
    assert!(out.contains("valid form \"hall-survey\""), "{out}");
}

#[test]
fn tally_counts_that_add_up_past_u64_are_refused_at_the_line() {
    let w = Work::new();
    w.write(
        "tally.csv",
        &format!(
            "unit,group,criterion,option,count\ngaj,public,overall,5,{U64_MAX}\ngaj,public,overall,4,1\n"
        ),
    );
    let err = w.fails(&["score", "tally.csv"], 1);
    assert!(
        err.contains("tally.csv:3:5: column \"count\": 1 makes the votes read so far add up to 18446744073709551616, expected a total of at most 18446744073709551615"),
        "{err}"
    );
}

#[test]
fn tally_counts_that_are_not_whole_numbers_are_refused() {
    let w = Work::new();
    for (count, shown) in [
        ("-1", "\"-1\""),
        ("2.5", "\"2.5\""),
        ("1e3", "\"1e3\""),
        ("18446744073709551616", "\"18446744073709551616\""),
    ] {
        w.write(
            "tally.csv",
            &format!("unit,group,criterion,option,count\ngaj,public,overall,5,{count}\n"),
        );
        let err = w.fails(&["score", "tally.csv"], 1);
        assert!(
            err.contains(&format!("tally.csv:2:5: column \"count\": {shown} is not a count, expected a whole number ≥ 0 (at most {U64_MAX})")),
            "{count}: {err}"
        );
    }
}

#[test]
fn a_huge_tally_scores_with_normal_intervals() {
    // 2⁶² − 1 votes each for 非常满意 (100 points) and 非常不满意 (0 points) on two units
    // (all four counts add up to just under 2⁶⁴): mean 50, s = 50, n − 1 ≈ 9.2e18 degrees
    // of freedom. Student's t at that df never returned; the normal quantile
    // z(0.975) = 1.959964 gives the half width 1.959964 · 50 / √(2⁶³ − 2) = 3.2268e-8.
    let w = Work::new();
    let half = "4611686018427387903";
    let mut tally = String::from("unit,group,criterion,option,count\n");
    for unit in ["gaj", "jyj"] {
        tally.push_str(&format!(
            "{unit},public,overall,5,{half}\n{unit},public,overall,1,{half}\n"
        ));
    }
    w.write("tally.csv", &tally);
    let r = w.json(&["score", "tally.csv"]);
    let gaj = r["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == "gaj")
        .unwrap();
    let overall = &gaj["criteria"]["overall"];
    assert_eq!(overall["n"], 9223372036854775806u64);
    assert_eq!(overall["mean"], 50.0);
    let ci = overall["ci"].as_array().unwrap();
    let half_width = 1.959_963_984_540_054 * 50.0 / 9223372036854775806f64.sqrt();
    assert!(
        (ci[1].as_f64().unwrap() - 50.0 - half_width).abs() < 1e-12,
        "{ci:?}"
    );
    assert_eq!(gaj["score"], 50.0);
    assert_eq!(gaj["rank"], 1, "the two equal units tie");
    assert!(
        gaj["flags"]
            .as_array()
            .unwrap()
            .contains(&Value::from("indistinct")),
        "{}",
        gaj["flags"]
    );
}

/// `pingyi aggregate` on the 好差评 fixture, with `counts[i]` set so that the counts add
/// up to exactly `total`.
fn part_adding_up_to(w: &Work, name: &str, total: u128) {
    w.ok(&[
        "aggregate",
        &fixture("haochaping.csv"),
        "--rules",
        &rules("haochaping.toml"),
        "-o",
        name,
    ]);
    let mut part: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path(name)).unwrap()).unwrap();
    let counts = part["counts"].as_array_mut().unwrap();
    let others: u128 = counts.iter().map(|c| c.as_u64().unwrap() as u128).sum();
    let i = counts.iter().position(|c| c.as_u64() != Some(0)).unwrap();
    let mine = counts[i].as_u64().unwrap() as u128;
    counts[i] = Value::from((total - (others - mine)) as u64);
    std::fs::write(w.path(name), serde_json::to_string(&part).unwrap()).unwrap();
}

#[test]
fn parts_whose_counts_add_up_past_u64_are_refused_naming_the_part() {
    let w = Work::new();
    let max = u64::MAX as u128;
    part_adding_up_to(&w, "a.json", max / 2 + 1);
    part_adding_up_to(&w, "b.json", max / 2 + 1);
    let rules = rules("haochaping.toml");
    let err = w.fails(&["score", "a.json", "b.json", "--rules", &rules], 1);
    assert!(
        err.contains("b.json: counts: this part's 9223372036854775808 added to the 9223372036854775808 read before make 18446744073709551616, more than the 18446744073709551615 a count can hold"),
        "{err}"
    );
    // Each part alone is within bounds and scores.
    w.ok(&["score", "a.json", "--rules", &rules]);
    // A part that is too large by itself is refused when read.
    part_adding_up_to(&w, "c.json", max + 1);
    let err = w.fails(&["score", "c.json", "--rules", &rules], 1);
    assert!(
        err.contains("c.json: counts: adds up to 18446744073709551616"),
        "{err}"
    );
}

/// The 好差评 rules with `extra` appended, checked by `pingyi score` on its fixture.
fn score_with_rules(w: &Work, extra: &str) -> std::process::Output {
    let base = std::fs::read_to_string(rules("haochaping.toml")).unwrap();
    // Drop the sections the extra text redefines.
    let kept: String = base
        .split("\n[")
        .filter(|section| !extra.contains(&format!("[{}", section.lines().next().unwrap_or(""))))
        .collect::<Vec<_>>()
        .join("\n[");
    w.write("r.toml", &format!("{kept}\n{extra}"));
    w.run(&["score", &fixture("haochaping.csv"), "--rules", "r.toml"])
}

#[test]
fn an_extreme_decimals_setting_is_refused_not_a_panic() {
    let w = Work::new();
    let out = score_with_rules(
        &w,
        "[output]\nrate_decimals = 20\nscore_decimals = 4294967295\nrounding = \"largest_remainder\"\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(
            "output.rate_decimals: 20 is too many decimals, expected a whole number from 0 to 6"
        ),
        "{err}"
    );
    assert!(
        err.contains("output.score_decimals: 4294967295 is too many decimals"),
        "{err}"
    );
}

#[test]
fn points_and_weights_that_would_make_a_score_infinite_are_refused() {
    // Before: 1e308 points gave inf and NaN scores that were still ranked, with exit 0.
    let w = Work::new();
    let out = score_with_rules(
        &w,
        "[scale]\npoints = { \"5\" = 1e308, \"4\" = 1e308, \"3\" = 6, \"2\" = 3, \"1\" = 0 }\nnot_counted = [\"9\"]\n\n[criteria]\noverall = inf\nattitude = nan\n",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    for want in [
        "scale.points.5: 1e308 is not points, expected a number from -1000000 to 1000000",
        "scale.points.4: 1e308 is not points",
        "criteria.overall: inf is not a weight, expected a number from 0 to 1000000",
        "criteria.attitude: NaN is not a weight",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
}

#[test]
fn weights_at_the_top_of_their_range_still_give_finite_ranked_scores() {
    let w = Work::new();
    let out = score_with_rules(
        &w,
        "[criteria]\noverall = 1e6\nattitude = 1e6\nefficiency = 1e6\nlawful = 1e6\nintegrity = 1e6\n",
    );
    assert!(out.status.success(), "{out:?}");
    let table = String::from_utf8(out.stdout).unwrap();
    // gaj: 10 10 8 6 0 on overall → 6.80, as with the rules' own weights.
    assert!(table.contains("gaj") && table.contains("6.80"), "{table}");
    assert!(!table.contains("NaN") && !table.contains("inf"), "{table}");
}

#[test]
fn an_assessment_total_that_is_not_finite_is_an_error_naming_the_unit() {
    // A score report edited by hand: relative points divide by the best score, 1e-300,
    // so -1e308 becomes -inf points. That total was ranked (last) with exit 0 before.
    let w = Work::new();
    let base = std::fs::read_to_string(rules("haochaping.toml")).unwrap();
    w.write(
        "r.toml",
        &format!(
            "{base}\n[assessment]\n[assessment.appraisal]\nmethod = \"relative\"\npoints = 600\n"
        ),
    );
    w.ok(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        "r.toml",
        "-o",
        "scores.json",
    ]);
    let mut report: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("scores.json")).unwrap()).unwrap();
    for u in report["units"].as_array_mut().unwrap() {
        match u["unit"].as_str() {
            Some("gaj") => u["score"] = Value::from(1e-300),
            Some("jyj") => u["score"] = Value::from(-1e308),
            _ => {}
        }
    }
    std::fs::write(w.path("scores.json"), report.to_string()).unwrap();
    w.write("components.csv", "unit,component,value\n");
    let err = w.fails(
        &[
            "assess",
            "--scores",
            "scores.json",
            "--components",
            "components.csv",
            "--rules",
            "r.toml",
        ],
        1,
    );
    assert!(
        err.contains("components.csv: unit \"jyj\": the total came out as -inf"),
        "{err}"
    );
}
