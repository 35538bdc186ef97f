//! The real `pingyi` binary on the scoring fixtures, in a fresh work folder per test.
//! Every expected number is worked out by hand in the comments next to it.

mod common;

use common::{fixture, rules, Work};
use serde_json::Value;

fn text_of(rules_file: &str) -> String {
    std::fs::read_to_string(rules(rules_file)).unwrap()
}

fn unit<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == id)
        .unwrap_or_else(|| panic!("unit {id} in the report"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("{v} is a number"))
}

fn close(got: &Value, want: f64, tol: f64) {
    let g = num(got);
    assert!((g - want).abs() <= tol, "got {g}, expected {want} ± {tol}");
}

#[test]
fn haochaping_10_8_6_3_0() {
    let w = Work::new();
    let r = w.json(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        &rules("haochaping.toml"),
    ]);
    // Seven rows: hc-1 twice (a duplicate, kept once) and hc-6 with no answer (blank).
    let b = &r["ballots"];
    assert_eq!(b["total"], 7);
    assert_eq!(b["duplicates"], 1);
    assert_eq!(b["invalid"], 1);
    assert_eq!(b["invalid_by_reason"]["blank"], 1);
    assert_eq!(b["valid"], 5);
    assert_eq!(b["used"], 5);
    // hc-1 (5, 5) and hc-3 (4, 4) give one option to every answered cell.
    assert_eq!(b["careless"]["straight_lining"], 2);

    // gaj: 5 5 4 3 1 → 10 10 8 6 0 points, mean 34/5 = 6.8.
    // Deviations 3.2 3.2 1.2 −0.8 −6.8, squares 10.24+10.24+1.44+0.64+46.24 = 68.8,
    // s² = 68.8/4 = 17.2, s = 4.14729. t(0.975; 4) = 2.776 (t table):
    // 6.8 ± 2.776 · 4.14729/√5 = 6.8 ± 5.1487 → 1.651 … 11.949, cut to the scale's top
    // (10 points): no mean can be above it.
    let gaj = unit(&r, "gaj");
    assert_eq!(gaj["n"], 5);
    close(&gaj["score"], 6.8, 1e-9);
    close(&gaj["criteria"]["overall"]["sd"], 4.14729, 1e-5);
    close(&gaj["score_ci"][0], 1.651, 2e-3);
    close(&gaj["score_ci"][1], 10.0, 0.0);
    // 好评率 = 5, 4, 3 → 4 of 5 = 0.8. Wilson at 95% (z = 1.959964, z² = 3.841459):
    // (0.8 + 0.384146 ± 1.959964·√(0.032 + 0.038415)) / 1.768292 = 0.37554 … 0.96378.
    close(&gaj["satisfaction"], 0.8, 1e-12);
    close(&gaj["satisfaction_ci"][0], 0.37554, 1e-4);
    close(&gaj["satisfaction_ci"][1], 0.96378, 1e-4);
    close(
        &gaj["criteria"]["overall"]["satisfaction_ci"][0],
        0.37554,
        1e-4,
    );
    close(
        &gaj["groups"]["public"]["criteria"]["overall"]["satisfaction_ci"][1],
        0.96378,
        1e-4,
    );

    // jyj: 5 4 4 9 2 → 9 (不了解) is no vote: 10 8 8 3, mean 29/4 = 7.25, 好评 3 of 4.
    let jyj = unit(&r, "jyj");
    assert_eq!(jyj["n"], 4);
    assert_eq!(jyj["excluded"], 1);
    close(&jyj["score"], 7.25, 1e-9);
    close(&jyj["satisfaction"], 0.75, 1e-12);

    // Ranks: jyj 7.25 before gaj 6.8; Welch: t = 0.45/√(8.9167/4 + 17.2/5) = 0.189, far
    // from significant, so both are marked. Bands: both in [6, 8) → 一般.
    assert_eq!(jyj["rank"], 1);
    assert_eq!(gaj["rank"], 2);
    assert_eq!(jyj["grade"], "一般");
    assert_eq!(gaj["grade"], "一般");
    assert_eq!(jyj["indistinct_from"][0], "gaj");
    assert!(gaj["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("indistinct")));
    // Nobody rated zwfw.
    let zwfw = unit(&r, "zwfw");
    assert_eq!(zwfw["score"], Value::Null);
    assert_eq!(zwfw["rank"], Value::Null);
    assert!(zwfw["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("no_score")));
    // Every field of the README's JSON score report is there.
    for key in [
        "unit",
        "name",
        "n",
        "excluded",
        "score",
        "score_ci",
        "satisfaction",
        "satisfaction_ci",
        "rank",
        "grade",
        "flags",
        "groups",
        "criteria",
    ] {
        assert!(gaj.get(key).is_some(), "units[].{key}");
    }
    assert!(gaj["groups"]["public"].get("satisfaction").is_some());
    assert!(gaj["criteria"]["overall"].get("trimmed_mean").is_some());
    assert!(r["reliability"].get("cronbach_alpha").is_some());
    assert_eq!(r["form_id"], "minzhu-pingyi");

    // Guangxi's rule: an unrated cell of an answered ballot counts as 非常满意 (10 points).
    // gaj's four other criteria become 10 for all five valid ballots, so with equal weights
    // (0.2 each) gaj = (6.8 + 4 · 10)/5 = 9.36; zwfw, never rated, is 10 everywhere. The
    // blank ballot stays invalid, and 不了解 stays no vote (jyj overall n is still 4).
    let guangxi = w.write(
        "gx.toml",
        &text_of("haochaping.toml").replace("# missing = \"5\"", "missing = \"5\""),
    );
    let g = w.json(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        guangxi.to_str().unwrap(),
    ]);
    close(&unit(&g, "gaj")["score"], 9.36, 1e-9);
    close(&unit(&g, "zwfw")["score"], 10.0, 1e-12);
    assert_eq!(unit(&g, "jyj")["criteria"]["overall"]["n"], 4);
    assert_eq!(g["ballots"]["invalid_by_reason"]["blank"], 1);

    // Ranked within categories instead: gaj is a 窗口单位 (window), jyj is not.
    let text = std::fs::read_to_string(rules("haochaping.toml")).unwrap();
    let by_category = w.write(
        "c.toml",
        &text.replace("within = \"all\"", "within = \"category\""),
    );
    let c = w.json(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        by_category.to_str().unwrap(),
    ]);
    assert_eq!(unit(&c, "gaj")["rank"], 1);
    assert_eq!(unit(&c, "gaj")["pool"], "window");
    assert_eq!(unit(&c, "jyj")["rank"], 1);
    assert_eq!(unit(&c, "jyj")["pool"], "non-window");

    // The table and the CSV print the same numbers, rounded half-up to 2 places.
    let table = w.ok(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        &rules("haochaping.toml"),
    ]);
    assert!(table.contains("好差评 10/8/6/3/0"), "{table}");
    assert!(
        table.contains("ballots read 7, valid 5, invalid 1 (blank 1), duplicates 1"),
        "{table}"
    );
    let gaj_line = table.lines().find(|l| l.contains(" gaj ")).unwrap();
    assert!(
        gaj_line.contains("6.80") && gaj_line.contains("1.65–10.00") && gaj_line.contains("80.00"),
        "{gaj_line}"
    );
    let rows = w.csv_rows(&[
        "score",
        &fixture("haochaping.csv"),
        "--rules",
        &rules("haochaping.toml"),
    ]);
    let jyj = rows.iter().find(|r| r["unit"] == "jyj").unwrap();
    assert_eq!(jyj["score"], "7.25");
    assert_eq!(jyj["satisfaction_pct"], "75.00");
    assert_eq!(jyj["rank"], "1");
}

#[test]
fn congress_majority_of_all_members_and_the_exactly_half_setting() {
    let w = Work::new();
    let text = std::fs::read_to_string(rules("congress-majority.toml")).unwrap();
    let r = w.json(&[
        "score",
        &fixture("congress.csv"),
        "--rules",
        &rules("congress-majority.toml"),
    ]);
    // Nine of ten deputies voted. 满意 votes (5, 4) over all 10 members:
    // zwfw 5 4 4 4 … = 2 + 3 = 5 → exactly half, which does not pass (超过半数);
    //   5 4 3 = 5 + 2 = 7 → 基本满意.
    // gaj 5 5 5 4 4 4 → 6 > 5 → 满意.
    // rsj 5 4 → 2; 5 4 3 → 4 → 不满意.
    assert_eq!(unit(&r, "zwfw")["grade"], "基本满意");
    assert_eq!(unit(&r, "gaj")["grade"], "满意");
    assert_eq!(unit(&r, "rsj")["grade"], "不满意");
    // 满意率 over all members: zwfw 7/10, rsj 4/10 (the ninth deputy said 不了解 on rsj).
    close(&unit(&r, "zwfw")["satisfaction"], 0.7, 1e-12);
    close(&unit(&r, "rsj")["satisfaction"], 0.4, 1e-12);
    assert_eq!(unit(&r, "rsj")["n"], 8);
    assert_eq!(unit(&r, "mzj")["grade"], Value::Null, "no votes, no grade");

    // When exactly half passes (达到半数), zwfw's 5 of 10 is 满意.
    let half = w.write(
        "half.toml",
        &text.replace("exactly_half_passes = false", "exactly_half_passes = true"),
    );
    let r = w.json(&[
        "score",
        &fixture("congress.csv"),
        "--rules",
        half.to_str().unwrap(),
    ]);
    assert_eq!(unit(&r, "zwfw")["grade"], "满意");

    // More ballots back (9) than issued (8): the deputies' vote is void.
    let void = w.write("void.toml", &text.replace("issued = 10", "issued = 8"));
    let r = w.json(&[
        "score",
        &fixture("congress.csv"),
        "--rules",
        void.to_str().unwrap(),
    ]);
    assert_eq!(r["ballots"]["invalid_by_reason"]["void:npc"], 9);
    assert_eq!(r["ballots"]["valid"], 0);
    assert_eq!(unit(&r, "gaj")["score"], Value::Null);
    assert!(r["notes"][0]
        .as_str()
        .unwrap()
        .contains("9 ballots returned but 8 issued"));
}

#[test]
fn score_bands_with_high_low_trimming_group_weights_and_a_cap() {
    let w = Work::new();
    let r = w.json(&[
        "score",
        &fixture("bands.csv"),
        "--rules",
        &rules("bands-trimmed.toml"),
    ]);
    // cap-1 gives 90 points or more (option 5 = 100) to three units: invalid.
    assert_eq!(r["ballots"]["invalid_by_reason"]["too_many_top"], 1);
    assert_eq!(r["ballots"]["valid"], 10);
    // gaj, public (7 raters ≥ 6, trim one each side): 100 100 80 80 60 30 0 → drop 0 and
    // one 100 → 350/5 = 70. npc (3 raters): 80 80 60 → 220/3 = 73.333, no trimming.
    // 0.6 · 70 + 0.4 · 73.333 = 42 + 29.333 = 71.333 → 基本满意 (60–75).
    let gaj = unit(&r, "gaj");
    close(
        &gaj["groups"]["public"]["criteria"]["overall"]["trimmed_mean"],
        70.0,
        1e-9,
    );
    close(&gaj["groups"]["npc"]["score"], 220.0 / 3.0, 1e-9);
    close(&gaj["score"], 71.333_333, 1e-5);
    assert_eq!(gaj["grade"], "基本满意");
    // zwfw, public: 100 100 100 100 80 80 0 → drop 0 and one 100 → 460/5 = 92; npc 100 80
    // 80 → 86.667. 0.6 · 92 + 0.4 · 86.667 = 55.2 + 34.667 = 89.867 → 满意 (≥ 85).
    let zwfw = unit(&r, "zwfw");
    close(&zwfw["score"], 89.866_667, 1e-5);
    assert_eq!(zwfw["grade"], "满意");
    close(&zwfw["groups"]["public"]["weight"], 0.6, 1e-12);
    // Naming: the top unit, and the bottom one among those under 80.
    assert!(zwfw["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("named:满意单位")));
    assert!(gaj["flags"]
        .as_array()
        .unwrap()
        .contains(&Value::from("named:不满意单位")));
    assert_eq!(r["reliability"]["missing"], "listwise");
    // Largest remainder: every unit's printed option shares add up to exactly 100.
    let rows = w.csv_rows(&[
        "score",
        &fixture("bands.csv"),
        "--rules",
        &rules("bands-trimmed.toml"),
    ]);
    let mut checked = 0;
    for row in rows
        .iter()
        .filter(|r| r["unit"] == "gaj" || r["unit"] == "zwfw")
    {
        let sum: f64 = row
            .iter()
            .filter(|(h, c)| h.starts_with("option.") && !c.is_empty())
            .map(|(_, c)| c.parse::<f64>().unwrap())
            .sum();
        assert!((sum - 100.0).abs() < 1e-9, "{row:?}");
        checked += 1;
    }
    assert_eq!(checked, 2, "both units are in the CSV");
}

#[test]
fn annual_assessment_of_1000_points() {
    let w = Work::new();
    w.ok(&[
        "score",
        &fixture("annual.csv"),
        "--rules",
        &rules("annual-1000.toml"),
        "-o",
        "scores.json",
    ]);
    let a: Value = serde_json::from_str(&w.ok(&[
        "assess",
        "--scores",
        "scores.json",
        "--components",
        &fixture("components.csv"),
        "--deductions",
        &fixture("deductions.csv"),
        "--rules",
        &rules("annual-1000.toml"),
        "--format",
        "json",
    ]))
    .unwrap();
    let u = |id: &str| {
        a["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == id)
            .unwrap()
            .clone()
    };
    // 民主测评 by the share of 优秀 (option 5) among ten cadres:
    // zwfw 9/10 = 90% → 200; gaj 7/10 = 70% → 180;
    // rsj 5/10 = 50% → 160, but 基本称职 + 不称职 (2, 1) = 4/10 ≥ 1/3 → 130.
    assert_eq!(num(&u("zwfw")["appraisal_points"]), 200.0);
    assert_eq!(num(&u("gaj")["appraisal_points"]), 180.0);
    assert_eq!(num(&u("rsj")["appraisal_points"]), 130.0);
    // Totals: zwfw 200 + 450 + 90 + 250 + 5 (provincial rank 1) − 2 督办 · 0.5 = 994.0;
    // gaj 180 + 480 + 95 + 280 − 5 (rank 10 of 10) − (1.5 查办 + 1 催办) = 1027.5;
    // rsj 130 + 470 + 80 + 260 + 1 (rank 5 of 10) = 941.
    close(&u("zwfw")["total"], 994.0, 1e-9);
    close(&u("gaj")["total"], 1027.5, 1e-9);
    close(&u("rsj")["total"], 941.0, 1e-9);
    // Ranks, and 优秀 for at most a third of 3 units = 1; the others by bands (≥ 800 良好).
    assert_eq!(u("gaj")["rank"], 1);
    assert_eq!(u("zwfw")["rank"], 2);
    assert_eq!(u("rsj")["rank"], 3);
    assert_eq!(u("gaj")["grade"], "优秀");
    assert_eq!(u("zwfw")["grade"], "良好");
    assert_eq!(u("rsj")["grade"], "良好");
    assert_eq!(
        a["skipped"].as_array().unwrap().len(),
        5,
        "the five units nobody rated"
    );

    // The same scores as relative points (÷ the best score × 200) and as rank points
    // (first 200, each lower place 2% of 200 less). Scores: zwfw 9×100 + 80 = 980/10 = 98;
    // gaj (7×100 + 80 + 30 + 0)/10 = 81; rsj (5×100 + 2×30 + 2×0 + 60)/10 = 62.
    let text = std::fs::read_to_string(rules("annual-1000.toml")).unwrap();
    let start = text.find("[assessment.appraisal]").unwrap();
    let end = text.find("# Other components").unwrap();
    for (method, zwfw, gaj, rsj) in [
        (
            "method = \"relative\"\npoints = 200\n",
            200.0,
            81.0 / 98.0 * 200.0,
            62.0 / 98.0 * 200.0,
        ),
        (
            "method = \"rank\"\npoints = 200\nstep = 0.02\n",
            200.0,
            196.0,
            192.0,
        ),
    ] {
        let changed = format!(
            "{}[assessment.appraisal]\n{method}\n{}",
            &text[..start],
            &text[end..]
        );
        let path = w.write("r.toml", &changed);
        let a: Value = serde_json::from_str(&w.ok(&[
            "assess",
            "--scores",
            "scores.json",
            "--components",
            &fixture("components.csv"),
            "--rules",
            path.to_str().unwrap(),
            "--format",
            "json",
        ]))
        .unwrap();
        let points = |id: &str| {
            num(&a["units"]
                .as_array()
                .unwrap()
                .iter()
                .find(|u| u["unit"] == id)
                .unwrap()["appraisal_points"])
        };
        assert!((points("zwfw") - zwfw).abs() < 1e-9, "{method}");
        assert!((points("gaj") - gaj).abs() < 1e-9, "{method}");
        assert!((points("rsj") - rsj).abs() < 1e-9, "{method}");
    }

    // A component missing for a unit is an error naming both.
    let short = w.write("c.csv", "unit,component,value\nzwfw,key_work,1\n");
    let err = w.fails(
        &[
            "assess",
            "--scores",
            "scores.json",
            "--components",
            short.to_str().unwrap(),
            "--rules",
            &rules("annual-1000.toml"),
        ],
        1,
    );
    assert!(
        err.contains("c.csv: unit \"zwfw\" has no row for component \"agencies\""),
        "{err}"
    );
}

#[test]
fn careless_flags_and_exclusion() {
    let w = Work::new();
    // Durations 20 300 310 320 330 340 s: median (310 + 320)/2 = 315, half 157.5 → cl-1 is
    // too fast. cl-5 answers 4 in all five cells: straight-lining.
    let r = w.json(&["score", &fixture("careless.csv")]);
    let c = &r["ballots"]["careless"];
    close(&c["median_s"], 315.0, 1e-12);
    close(&c["too_fast_threshold_s"], 157.5, 1e-12);
    assert_eq!(c["too_fast"], 1);
    assert_eq!(c["straight_lining"], 1);
    assert_eq!(c["excluded"], 0);
    assert_eq!(unit(&r, "gaj")["n"], 6);
    // Excluding both: the median comes from a first pass, then 4 ballots are used.
    let ex = w.write("ex.toml", "[careless]\nexclude = true\n");
    let r = w.json(&[
        "score",
        &fixture("careless.csv"),
        "--rules",
        ex.to_str().unwrap(),
    ]);
    let c = &r["ballots"]["careless"];
    assert_eq!(c["excluded"], 2);
    assert_eq!(c["excluded_by_reason"]["too_fast"], 1);
    assert_eq!(c["excluded_by_reason"]["straight_lining"], 1);
    assert_eq!(r["ballots"]["used"], 4);
    assert_eq!(unit(&r, "gaj")["n"], 4);
    // Alpha over the five criteria of the remaining full rows exists and has its interval.
    assert!(r["reliability"]["cronbach_alpha"].is_number());
    assert_eq!(r["reliability"]["ci"]["method"], "feldt");
}

#[test]
fn tallies_alone_and_mixed_with_ballots() {
    let w = Work::new();
    let r = w.json(&["score", &fixture("tally.csv")]);
    // zwfw public overall: 10×100 + 5×80 + 3×60 + 1×30 + 1×0 = 1610 over 20 votes = 80.5;
    // 满意 (5, 4, 3) 18/20; two 不了解 are no votes.
    let zwfw = unit(&r, "zwfw");
    close(&zwfw["score"], 80.5, 1e-12);
    close(&zwfw["satisfaction"], 0.9, 1e-12);
    assert_eq!(zwfw["n"], 20);
    assert_eq!(zwfw["excluded"], 2);
    // gaj: 6×80 + 4×30 = 600 / 10 = 60.
    close(&unit(&r, "gaj")["score"], 60.0, 1e-12);
    assert_eq!(r["ballots"]["tally_votes"], 32);
    assert_eq!(r["reliability"]["cronbach_alpha"], Value::Null);
    assert!(r["reliability"]["note"]
        .as_str()
        .unwrap()
        .contains("tallies carry no per-ballot answers"));
    // With the 好差评 ballots (public gaj 10 10 8 6 0 under 10/8/6/3/0) the counts add:
    // tally gaj 6×8 + 4×3 = 60 plus ballots 34 → 94 over 15 votes = 6.2667.
    let r = w.json(&[
        "score",
        &fixture("tally.csv"),
        &fixture("haochaping.csv"),
        "--rules",
        &rules("haochaping.toml"),
    ]);
    close(&unit(&r, "gaj")["score"], 94.0 / 15.0, 1e-9);
    assert_eq!(unit(&r, "gaj")["n"], 15);
}

#[test]
fn parts_from_many_machines_add_up_to_one_run() {
    let w = Work::new();
    w.ok(&["generate", "--ballots", "400", "--seed", "5", "-o", "a.csv"]);
    w.ok(&[
        "generate",
        "--ballots",
        "300",
        "--seed",
        "6",
        "-o",
        "b.json",
    ]);
    w.ok(&["aggregate", "a.csv", "-o", "part-a.json"]);
    w.ok(&["aggregate", "b.json", "-o", "part-b.json"]);
    let whole = w.json(&["score", "a.csv", "b.json"]);
    let parts = w.json(&["score", "part-a.json", "part-b.json"]);
    let mixed = w.json(&["score", "part-a.json", "b.json"]);
    for other in [&parts, &mixed] {
        assert_eq!(other["ballots"], whole["ballots"]);
        for (x, y) in whole["units"]
            .as_array()
            .unwrap()
            .iter()
            .zip(other["units"].as_array().unwrap())
        {
            assert_eq!(x["n"], y["n"]);
            assert_eq!(x["rank"], y["rank"]);
            close(&y["score"], num(&x["score"]), 1e-9);
            close(&y["score_ci"][0], num(&x["score_ci"][0]), 1e-9);
        }
        close(
            &other["reliability"]["cronbach_alpha"],
            num(&whole["reliability"]["cronbach_alpha"]),
            1e-9,
        );
    }
    assert_eq!(whole["ballots"]["total"], 700);
    // The same export scored twice is read once.
    let twice = w.json(&["score", "a.csv", "part-a.json"]);
    assert_eq!(twice["ballots"]["total"], 800);
    assert_eq!(
        twice["ballots"]["valid"], 800,
        "parts cannot see ballot ids: run merge first when exports may overlap"
    );
    // A part made under other rules is refused.
    let other = w.write("o.toml", "[scale]\npoints = { \"5\" = 10 }\n");
    let err = w.fails(
        &["score", "part-a.json", "--rules", other.to_str().unwrap()],
        1,
    );
    assert!(
        err.contains("part-a.json: was aggregated under other scoring rules"),
        "{err}"
    );
}

#[test]
fn large_files_are_read_on_two_threads_with_the_same_result() {
    let w = Work::new();
    // About 5 MB: above the size where the reader cuts the file into blocks.
    w.ok(&[
        "generate",
        "--ballots",
        "22000",
        "--seed",
        "9",
        "-o",
        "big.csv",
    ]);
    assert!(std::fs::metadata(w.path("big.csv")).unwrap().len() > 4 << 20);
    let two = w.ok(&["score", "big.csv", "--threads", "2", "--format", "json"]);
    let one = w.ok(&["score", "big.csv", "--threads", "1", "--format", "json"]);
    let (a, b): (Value, Value) = (
        serde_json::from_str(&two).unwrap(),
        serde_json::from_str(&one).unwrap(),
    );
    assert_eq!(a["ballots"], b["ballots"]);
    for (x, y) in a["units"]
        .as_array()
        .unwrap()
        .iter()
        .zip(b["units"].as_array().unwrap())
    {
        assert_eq!(x["n"], y["n"]);
        assert_eq!(x["options"], y["options"]);
        close(&x["score"], num(&y["score"]), 1e-9);
    }
    // A copy of an early row at the end is a duplicate on either path; a bad cell deep in
    // the file is reported at its true line by both.
    let text = std::fs::read_to_string(w.path("big.csv")).unwrap();
    let rows: Vec<&str> = text.split("\r\n").collect();
    let with_dup = format!("{}{}\r\n", text, rows[3]);
    w.write("dup.csv", &with_dup);
    for threads in ["1", "2"] {
        let r = w.json(&["score", "dup.csv", "--threads", threads]);
        assert_eq!(r["ballots"]["duplicates"], 1, "{threads} threads");
        assert_eq!(r["ballots"]["total"], 22001);
    }
    let header: Vec<&str> = rows[0].split(',').collect();
    let col = header.iter().position(|h| *h == "appr.mzj.lawful").unwrap();
    let mut cells: Vec<&str> = rows[15000].split(',').collect();
    cells[col] = "7";
    let bad_row = cells.join(",");
    let mut bad: Vec<&str> = rows.clone();
    bad[15000] = &bad_row;
    w.write("bad.csv", &bad.join("\r\n"));
    for threads in ["1", "2"] {
        let err = w.fails(&["score", "bad.csv", "--threads", threads], 1);
        assert!(
            err.contains(&format!(
                "bad.csv:15001:{}: column \"appr.mzj.lawful\": \"7\" is not an option",
                col + 1
            )),
            "{threads} threads: {err}"
        );
    }
}

#[test]
fn bad_input_names_file_line_column_value_and_expectation() {
    let w = Work::new();
    // A grid cell with an unknown code, on the third line.
    let text = std::fs::read_to_string(fixture("haochaping.csv")).unwrap();
    let header = text.lines().next().unwrap();
    let col = header
        .split(',')
        .position(|h| h == "appr.gaj.overall")
        .unwrap()
        + 1;
    let bad: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| if i == 2 { l.replacen(",5,", ",7,", 1) } else { l.to_string() } + "\r\n")
        .collect();
    let p = w.write("bad.csv", &bad);
    let err = w.fails(&["score", p.to_str().unwrap()], 1);
    assert!(
        err.contains(&format!(
            "bad.csv:3:{col}: column \"appr.gaj.overall\": \"7\" is not an option, expected one of: 5, 4, 3, 2, 1, 9"
        )),
        "{err}"
    );
    // A tally with a count that is not a number.
    let t = w.write(
        "t.csv",
        "unit,group,criterion,option,count\ngaj,public,overall,5,3\ngaj,public,overall,4,many\n",
    );
    let err = w.fails(&["score", t.to_str().unwrap()], 1);
    assert!(
        err.contains(
            "t.csv:3:5: column \"count\": \"many\" is not a count, expected a whole number ≥ 0"
        ),
        "{err}"
    );
    let t = w.write(
        "u.csv",
        "unit,group,criterion,option,count\nzoo,public,overall,5,3\n",
    );
    let err = w.fails(&["score", t.to_str().unwrap()], 1);
    assert!(err.contains("u.csv:2:1: column \"unit\": \"zoo\" is not a unit of the grid, expected one of: zwfw, gaj"), "{err}");
    // A rules file with problems lists each with its path.
    let r = w.write(
        "r.toml",
        "[scale]\nsatisfied = [\"5\", \"six\"]\n[groups]\nmars = 1\n",
    );
    let err = w.fails(
        &[
            "score",
            &fixture("haochaping.csv"),
            "--rules",
            r.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("r.toml: 2 problems found"), "{err}");
    assert!(
        err.contains("scale.satisfied[1]: \"six\" is not an option of scale \"sat5\""),
        "{err}"
    );
    assert!(
        err.contains("groups.mars: \"mars\" is not a respondent group"),
        "{err}"
    );
    // The same id with other answers in two files: both places are named.
    let err = w.fails(
        &["score", &fixture("kiosk-a.csv"), &fixture("conflict.json")],
        1,
    );
    assert!(err.contains("conflict.json: [0].id: "), "{err}");
    assert!(
        err.contains("was read before with different answers (at ") && err.contains("kiosk-a.csv:"),
        "{err}"
    );
    // A damaged part and a damaged JSON export.
    let part = w.write(
        "part.json",
        "{\"format\": \"pingyi-aggregate/1\", \"form_id\": 7}",
    );
    let err = w.fails(&["score", part.to_str().unwrap()], 1);
    assert!(
        err.contains("part.json:1:")
            && err.contains("form_id: invalid type: integer `7`, expected a string"),
        "{err}"
    );
    let json = w.write("b.json", "[{\"id\": \"x\",");
    let err = w.fails(&["score", json.to_str().unwrap()], 1);
    assert!(err.contains("b.json:1:"), "{err}");
    // A missing file, and usage mistakes (exit 2).
    let err = w.fails(&["score", "nope.csv"], 1);
    assert!(err.contains("nope.csv: no such file"), "{err}");
    w.fails(&["score"], 2);
    w.fails(&["score", "x.csv", "--format", "pdf"], 2);
    w.fails(&["assess", "--scores", "s.json"], 2);
}
