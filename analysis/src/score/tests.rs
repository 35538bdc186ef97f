use super::*;
use crate::ballot::{Answer, Ballot, Grid};
use crate::ingest::{fold_ballots, Pass, Session};
use crate::rules::Rules;
use crate::synth::Generator;

fn rules(text: &str) -> (Form, Resolved) {
    let form = Form::default_form();
    let r = Rules::from_toml("r.toml", text, &form).unwrap();
    (form, r)
}

/// Ballots of `group` rating unit `unit`, one row of (criterion, code) pairs each.
fn ballots(form: &Form, group: &str, unit: &str, rows: &[&[(&str, &str)]]) -> Vec<Ballot> {
    let mut g = Generator::new(form, rows.len() as u64 + unit.len() as u64);
    rows.iter()
        .enumerate()
        .map(|(i, cells)| {
            let mut b = g.ballot();
            b.id = format!("{group}-{unit}-{i}");
            b.group = group.into();
            let mut grid = Grid::new();
            for (c, code) in cells.iter() {
                grid.entry(unit.to_string())
                    .or_default()
                    .insert(c.to_string(), code.to_string());
            }
            b.answers.insert("appr".into(), Answer::Grid(grid));
            b
        })
        .collect()
}

fn fold(form: &Form, r: &Resolved, bs: &[Ballot]) -> Aggregate {
    let session = Session::new(form, r, Pass::Fold, None);
    let mut agg = session.empty();
    fold_ballots(&session, "t.json", bs, &mut agg).unwrap();
    agg
}

fn unit<'a>(rep: &'a Report, id: &str) -> &'a UnitReport {
    rep.units.iter().find(|u| u.unit == id).unwrap()
}

#[test]
fn trimmed_mean_and_its_tukey_mclaughlin_error() {
    let (_, r) = rules("[trim]\nk = 1\nmin_n = 6\n");
    // Options 5 4 3 2 1 9 = 100 80 60 30 0 (9 not counted). Answers 100 100 80 80 60 30 0.
    let s = hist_stats(&[2, 2, 1, 1, 1, 3], &r);
    assert_eq!(s.n, 7);
    // Mean 450 / 7 = 64.2857; trimmed (drop 0 and one 100): 350 / 5 = 70.
    assert!((s.mean.unwrap() - 450.0 / 7.0).abs() < 1e-12);
    assert_eq!(s.trimmed, 1);
    assert!((s.trimmed_mean.unwrap() - 70.0).abs() < 1e-12);
    // Winsorized: 100 100 80 80 60 30 30, mean 480/7 = 68.5714; squared deviations
    // 2·31.4286² + 2·11.4286² + 8.5714² + 2·38.5714² = 5285.714; s_w² = 5285.714/6 = 880.952,
    // s_w = 29.6809. SE = s_w / ((1 − 2/7)·√7) = 29.6809 / 1.889822 = 15.7056, df 7 − 2 − 1 = 4.
    assert!((s.se.unwrap() - 15.7056).abs() < 1e-3, "{s:?}");
    assert_eq!(s.df, Some(4.0));
    // Five or fewer answers: a plain mean.
    let few = hist_stats(&[1, 1, 1, 1, 1, 0], &r);
    assert_eq!(few.trimmed, 0);
    assert!((few.trimmed_mean.unwrap() - 54.0).abs() < 1e-12);
}

#[test]
fn a_weighted_score_uses_the_covariance_of_answers_on_one_ballot() {
    let (form, r) = rules(
        "[criteria]\nattitude = 0.5\nefficiency = 0\nlawful = 0\nintegrity = 0\noverall = 0.5\n[groups]\npublic = 1\n",
    );
    // Three ballots on gaj (attitude, overall): (100, 80), (80, 80), (60, 30).
    let bs = ballots(
        &form,
        "public",
        "gaj",
        &[
            &[("attitude", "5"), ("overall", "4")],
            &[("attitude", "4"), ("overall", "4")],
            &[("attitude", "3"), ("overall", "2")],
        ],
    );
    let rep = score(&form, &r, &fold(&form, &r, &bs));
    let u = unit(&rep, "gaj");
    // Each ballot's own score: 90, 80, 45 → mean 71.6667; their variance
    // (18.333² + 8.333² + 26.667²)/2 = 558.333, so the score's variance is 558.333/3 =
    // 186.111 (the covariance formula gives the same: 0.25·400/3 + 0.25·833.33/3 +
    // 2·0.25·500/3 = 33.333 + 69.444 + 83.333).
    assert!((u.score.unwrap() - 71.666_667).abs() < 1e-5);
    assert!((u.se.unwrap() - 186.111_11f64.sqrt()).abs() < 1e-4, "{u:?}");
    assert_eq!(u.df, Some(2.0));
    // t(0.975; 2) = 4.303: 71.667 ± 4.303 · 13.642 = 12.96 … 130.37, cut to the scale's 100.
    let ci = u.score_ci.unwrap();
    assert!((ci[0] - 12.96).abs() < 0.02, "{ci:?}");
    assert_eq!(ci[1], 100.0);
    assert_eq!(u.n, 3);
    assert!(u.flags.is_empty(), "{:?}", u.flags);
}

fn direct_cov(rows: &[[f64; 5]]) -> Vec<f64> {
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..5)
        .map(|c| rows.iter().map(|r| r[c]).sum::<f64>() / n)
        .collect();
    let mut cov = vec![0.0; 25];
    for r in rows {
        for i in 0..5 {
            for j in 0..5 {
                cov[i * 5 + j] += (r[i] - mean[i]) * (r[j] - mean[j]) / (n - 1.0);
            }
        }
    }
    cov
}

#[test]
fn alpha_from_moments_matches_the_direct_computation() {
    let codes = |v: [&'static str; 5]| -> Vec<(&'static str, &'static str)> {
        ["attitude", "efficiency", "lawful", "integrity", "overall"]
            .into_iter()
            .zip(v)
            .collect()
    };
    let full = [
        codes(["5", "4", "4", "5", "4"]),
        codes(["4", "4", "3", "4", "4"]),
        codes(["3", "2", "3", "3", "2"]),
        codes(["2", "1", "2", "2", "1"]),
        codes(["5", "5", "4", "5", "5"]),
    ];
    // One more ballot without an answer on 廉洁自律 (integrity).
    let mut partial = codes(["4", "3", "3", "4", "3"]);
    partial.retain(|(c, _)| *c != "integrity");
    let mut rows: Vec<&[(&str, &str)]> = full.iter().map(|r| r.as_slice()).collect();
    rows.push(&partial);
    let points = |c: &str| match c {
        "5" => 100.0,
        "4" => 80.0,
        "3" => 60.0,
        "2" => 30.0,
        _ => 0.0,
    };
    let numeric: Vec<[f64; 5]> = full
        .iter()
        .map(|r| {
            let mut x = [0.0; 5];
            for (i, (_, code)) in r.iter().enumerate() {
                x[i] = points(code);
            }
            x
        })
        .collect();
    let form = Form::default_form();
    for (missing, expected_rows) in [("listwise", 5u64), ("median", 6)] {
        let r = Rules::from_toml(
            "r.toml",
            &format!("[reliability]\nmissing = \"{missing}\"\n"),
            &form,
        )
        .unwrap();
        let rep = score(
            &form,
            &r,
            &fold(&form, &r, &ballots(&form, "public", "gaj", &rows)),
        );
        let rel = &rep.reliability;
        assert_eq!(rel.n, expected_rows, "{missing}");
        let mut data = numeric.clone();
        if missing == "median" {
            // integrity answers 100 80 60 30 100 → median 80 fills the sixth row.
            data.push([80.0, 60.0, 60.0, 80.0, 60.0]);
        }
        let want = stats::cronbach_alpha(&direct_cov(&data), 5).unwrap();
        let got = rel.cronbach_alpha.unwrap();
        assert!((got - want).abs() < 1e-9, "{missing}: {got} vs {want}");
        assert!(rel.ci.unwrap().lower < got && got < rel.ci.unwrap().upper);
    }
    let r = Rules::from_toml("r.toml", "", &form).unwrap();
    let rep = score(
        &form,
        &r,
        &fold(&form, &r, &ballots(&form, "public", "gaj", &rows)),
    );
    assert_eq!(rep.reliability.missing, Missing::Pairwise);
    assert_eq!(
        rep.reliability.n, 5,
        "the smallest pairwise n (pairs with integrity)"
    );
}

#[test]
fn ties_share_a_rank_and_quota_never_splits_a_tie() {
    let (form, r) = rules(
        r#"
[groups]
public = 1
[grading]
method = "quota"
quotas = [{ grade = "优秀", share = 0.25 }]
rest = "合格"
"#,
    );
    // gaj and jyj both 80 (tied first), rsj 60, zwfw 30: a quarter of 4 units is 1, and
    // the tie of two cannot fit, so nobody is 优秀.
    let mut bs = ballots(
        &form,
        "public",
        "gaj",
        &[&[("overall", "4")], &[("overall", "4")]],
    );
    bs.extend(ballots(
        &form,
        "public",
        "jyj",
        &[
            &[("overall", "4")],
            &[("overall", "4")],
            &[("overall", "4")],
        ],
    ));
    bs.extend(ballots(
        &form,
        "public",
        "rsj",
        &[
            &[("overall", "3")],
            &[("overall", "3")],
            &[("overall", "3")],
            &[("overall", "3")],
        ],
    ));
    bs.extend(ballots(&form, "public", "zwfw", &[&[("overall", "2")]]));
    let rep = score(&form, &r, &fold(&form, &r, &bs));
    let ranks: Vec<(String, Option<u64>, Option<String>)> = ["gaj", "jyj", "rsj", "zwfw"]
        .iter()
        .map(|id| {
            let u = unit(&rep, id);
            (u.unit.clone(), u.rank, u.grade.clone())
        })
        .collect();
    assert_eq!(
        ranks,
        vec![
            ("gaj".into(), Some(1), Some("合格".into())),
            ("jyj".into(), Some(1), Some("合格".into())),
            ("rsj".into(), Some(3), Some("合格".into())),
            ("zwfw".into(), Some(4), Some("合格".into())),
        ]
    );
    // No spread within gaj, jyj: equal scores cannot be told apart; rsj differs exactly.
    assert_eq!(unit(&rep, "gaj").indistinct_from, vec!["jyj".to_string()]);
    assert!(
        unit(&rep, "rsj").indistinct_from.is_empty()
            || unit(&rep, "rsj").indistinct_from == vec!["zwfw".to_string()]
    );
}

#[test]
fn parts_merged_by_addition_score_like_one_run() {
    let form = Form::default_form();
    let r = Rules::from_toml("r.toml", "", &form).unwrap();
    let mut g = Generator::new(&form, 21);
    let all: Vec<Ballot> = (0..300).map(|_| g.ballot()).collect();
    let whole = fold(&form, &r, &all);
    let mut a = fold(&form, &r, &all[..120]);
    let b = fold(&form, &r, &all[120..]);
    let b = Aggregate::from_json("b.json", &b.to_json()).unwrap();
    a.merge(&b).unwrap();
    let (x, y) = (score(&form, &r, &whole), score(&form, &r, &a));
    for (u, v) in x.units.iter().zip(&y.units) {
        assert_eq!(u.n, v.n);
        assert_eq!(u.rank, v.rank);
        assert!((u.score.unwrap() - v.score.unwrap()).abs() < 1e-9);
        assert!((u.se.unwrap() - v.se.unwrap()).abs() < 1e-9);
    }
    assert!(
        (x.reliability.cronbach_alpha.unwrap() - y.reliability.cronbach_alpha.unwrap()).abs()
            < 1e-9
    );
    assert_eq!(x.ballots, y.ballots);
    // Parts made under other rules do not merge.
    let other = Rules::from_toml("o.toml", "[scale]\npoints = { \"5\" = 10 }\n", &form).unwrap();
    let c = fold(&form, &other, &all[..5]);
    assert!(a.merge(&c).unwrap_err().contains("other scoring rules"));
}

#[test]
fn a_score_that_is_not_finite_gets_no_rank() {
    // Rules built by hand, past the checks of Rules::resolve: points of 1e308 make the
    // mean of two such answers infinite. Such a score was ranked first before.
    let (form, mut r) = rules("[groups]\npublic = 1\n");
    r.options[0].points = 1e308;
    let bs = [
        ballots(
            &form,
            "public",
            "gaj",
            &[&[("overall", "5")], &[("overall", "5")]],
        ),
        ballots(
            &form,
            "public",
            "jyj",
            &[&[("overall", "4")], &[("overall", "3")]],
        ),
    ]
    .concat();
    let rep = score(&form, &r, &fold(&form, &r, &bs));
    let gaj = unit(&rep, "gaj");
    assert_eq!((gaj.score, gaj.rank), (None, None), "{gaj:?}");
    assert!(gaj.flags.contains(&"no_score".to_string()), "{gaj:?}");
    assert!(
        rep.notes
            .iter()
            .any(|n| n.starts_with("unit \"gaj\": the score came out as inf")),
        "{:?}",
        rep.notes
    );
    // The finite one is ranked first, alone.
    let jyj = unit(&rep, "jyj");
    assert_eq!((jyj.score, jyj.rank), (Some(70.0), Some(1)));
}

/// Ballots of the public and of NPC deputies on gaj, under a quorum on `npc` with the
/// given head counts.
fn quorum_report(heads: &str, quorum: &str) -> Report {
    let text = format!("[groups]\npublic = 1\nnpc = 1\n{quorum}\n{heads}");
    let (form, r) = rules(&text);
    let four: &[(&str, &str)] = &[("overall", "4")];
    let one: &[(&str, &str)] = &[("overall", "1")];
    let mut bs = ballots(&form, "public", "gaj", &[four; 3]);
    bs.extend(ballots(&form, "npc", "gaj", &[one; 2]));
    let agg = fold(&form, &r, &bs);
    score(&form, &r, &agg)
}

#[test]
fn a_group_below_its_quorum_is_not_graded_and_every_output_says_why() {
    let q = "[quorum]\ngroups = [\"npc\"]\nshare = \"1/2\"\n";
    let rep = quorum_report("[denominator.groups.npc]\npresent = 30\nmembers = 70\n", q);
    assert_eq!(rep.void_groups.len(), 1);
    let v = &rep.void_groups[0];
    assert_eq!((v.group.as_str(), v.ballots), ("npc", 2));
    assert!(
        v.reason
            .starts_with("人大代表: 实到 30 人，应到 70 人，未超过半数，不计分"),
        "{}",
        v.reason
    );
    assert!(v
        .reason
        .contains("30 of 70 members present, not more than half"));
    assert_eq!(rep.ballots.invalid_by_reason.get("void:npc"), Some(&2));
    let gaj = unit(&rep, "gaj");
    assert!(!gaj.groups.contains_key("npc"));
    assert!(gaj.flags.contains(&"void_group:npc".to_string()));
    // Only the public's 4s count.
    assert_eq!(gaj.n, 3);
    let out = &crate::rules::Output::default();
    assert!(crate::render::to_table(&rep, out).contains("未超过半数，不计分"));
    assert!(crate::render::to_csv(&rep, out).contains("void_group:npc"));
    let json = serde_json::to_string(&rep).unwrap();
    assert!(json.contains("未超过半数，不计分"));
    // pingyi assess reads this JSON back and says so too.
    let back: Report = serde_json::from_str(&json).unwrap();
    let assessed = crate::assess::AssessReport {
        appraisal_name: "民主测评".into(),
        units: Vec::new(),
        skipped: Vec::new(),
        void_groups: back.void_groups,
    };
    assert!(crate::assess::to_table(&assessed, 2).contains("not graded: 人大代表: 实到 30 人"));
    assert!(crate::assess::to_csv(&assessed, 2).contains(",void_groups"));
    assert!(serde_json::to_string(&assessed)
        .unwrap()
        .contains("未超过半数"));
}

#[test]
fn a_quorum_met_grades_the_group_and_exactly_half_depends_on_more_than() {
    let half = "[denominator.groups.npc]\npresent = 35\nmembers = 70\n";
    let strict = quorum_report(half, "[quorum]\ngroups = [\"npc\"]\n");
    assert_eq!(
        strict.void_groups.len(),
        1,
        "35 of 70 is not more than half"
    );
    let at_least = quorum_report(half, "[quorum]\ngroups = [\"npc\"]\nmore_than = false\n");
    assert!(
        at_least.void_groups.is_empty(),
        "{:?}",
        at_least.void_groups
    );
    assert_eq!(unit(&at_least, "gaj").groups["npc"].n, 2);
    assert_eq!(unit(&at_least, "gaj").n, 5);
    let two_thirds = quorum_report(
        "[denominator.groups.npc]\npresent = 47\nmembers = 70\n",
        "[quorum]\ngroups = [\"npc\"]\nshare = \"2/3\"\n",
    );
    assert!(two_thirds.void_groups.is_empty());
}

#[test]
fn a_quorum_without_attendance_voids_the_group() {
    let rep = quorum_report("", "[quorum]\ngroups = [\"npc\"]\n");
    assert_eq!(rep.void_groups.len(), 1);
    assert!(rep.void_groups[0]
        .reason
        .contains("未记录实到人数和应到人数"));
    assert!(rep
        .notes
        .iter()
        .any(|n| n.contains("quorum cannot be confirmed")));
    let wrong = quorum_report(
        "[denominator.groups.npc]\npresent = 80\nmembers = 70\n",
        "[quorum]\ngroups = [\"npc\"]\n",
    );
    assert!(wrong.void_groups[0]
        .reason
        .contains("实到 80 人多于应到 70 人"));
}
