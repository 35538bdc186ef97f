use super::*;
use crate::rules::Rules;
use crate::synth::Generator;

fn setup() -> (Form, Resolved) {
    let form = Form::default_form();
    let rules = Rules::default().resolve("test", &form).unwrap();
    (form, rules)
}

/// Ballots with texts that stress the CSV: quotes, line breaks, formulas.
fn ballots(form: &Form, n: usize, seed: u64) -> Vec<Ballot> {
    let mut g = Generator::new(form, seed);
    (0..n)
        .map(|i| {
            let mut b = g.ballot();
            if i % 3 == 0 {
                b.answers.insert(
                    "suggestion".into(),
                    Answer::Str(format!("=\"第{i}条\",\r\n换行 \"引号\"")),
                );
            }
            if i % 4 == 0 {
                b.answers.insert("times".into(), Answer::Number(12.0));
                b.answers
                    .insert("channels".into(), Answer::Codes(vec!["online".into()]));
            }
            b
        })
        .collect()
}

fn fold_text(session: &Session<'_>, text: &str) -> Aggregate {
    let mut agg = session.empty();
    fold_csv(session, "t.csv", text.as_bytes(), &mut agg).unwrap();
    agg.sources.clear();
    agg
}

#[test]
fn the_same_ballot_as_csv_and_as_json_is_one_ballot() {
    let (form, rules) = setup();
    let bs = ballots(&form, 40, 3);
    let session = Session::new(&form, &rules, Pass::Fold, None);
    let mut agg = session.empty();
    fold_csv(
        &session,
        "a.csv",
        crate::wide_csv::to_string(&form, &bs).as_bytes(),
        &mut agg,
    )
    .unwrap();
    let once = agg.clone();
    fold_ballots(&session, "b.json", &bs, &mut agg).unwrap();
    assert_eq!(agg.ballots.total, 80);
    assert_eq!(
        agg.ballots.duplicates, 40,
        "every JSON ballot is a duplicate"
    );
    assert_eq!(agg.counts, once.counts, "duplicates add nothing");
    assert_eq!(agg.moments, once.moments);
}

#[test]
fn a_changed_ballot_under_a_known_id_is_a_conflict() {
    let (form, rules) = setup();
    let bs = ballots(&form, 5, 4);
    let mut changed = bs[2].clone();
    changed.lang = "en".into();
    let session = Session::new(&form, &rules, Pass::Fold, None);
    let mut agg = session.empty();
    fold_ballots(&session, "a.json", &bs, &mut agg).unwrap();
    let err = fold_ballots(&session, "b.json", &[changed.clone()], &mut agg).unwrap_err();
    assert_eq!(
        err,
        FoldError::Conflict {
            id: changed.id.clone(),
            source: "b.json".into(),
            place: "[0]".into()
        }
    );
}

#[test]
fn blocks_fold_like_the_stream() {
    // Cut the data rows at line breaks outside quotes (as the parallel reader does) and
    // fold the blocks one by one: the result must equal the one-stream fold.
    let (form, rules) = setup();
    let text = crate::wide_csv::to_string(&form, &ballots(&form, 60, 5));
    let stream = fold_text(&Session::new(&form, &rules, Pass::Fold, None), &text);

    let session = Session::new(&form, &rules, Pass::Fold, None);
    let bytes = text.as_bytes();
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes);
    let mut header = csv::ByteRecord::new();
    rdr.read_byte_record(&mut header).unwrap();
    let layout = CsvLayout::new(&session, "t.csv", &header).unwrap();
    let mut start = rdr.position().byte() as usize;
    let mut agg = session.empty();
    let mut row = session.row();
    let (mut quotes, mut line) = (0usize, 1 + text[..start].matches('\n').count() as u64);
    let mut cuts = 0;
    for (i, b) in bytes.iter().enumerate().skip(start) {
        quotes += usize::from(*b == b'"');
        if *b == b'\n' && quotes % 2 == 0 && (i - start > 700 || i + 1 == bytes.len()) {
            let block = &bytes[start..=i];
            fold_csv_block(&session, &layout, block, line, &mut agg, &mut row).unwrap();
            line += block.iter().filter(|b| **b == b'\n').count() as u64;
            start = i + 1;
            cuts += 1;
        }
    }
    assert!(cuts > 5, "the test cut the file into {cuts} blocks");
    assert_eq!(start, bytes.len());
    assert_eq!(agg, stream);
}

#[test]
fn bad_cells_are_named_by_line_and_column() {
    let (form, rules) = setup();
    let bs = ballots(&form, 3, 6);
    let text = crate::wide_csv::to_string(&form, &bs);
    let session = Session::new(&form, &rules, Pass::Fold, None);
    let gaj = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .position(|h| h == "appr.gaj.lawful")
        .unwrap();
    // Ballot 2 is on line 3 unless ballot 1 has a text with a line break.
    let mut lines: Vec<String> = text.split("\r\n").map(str::to_string).collect();
    let target = lines.iter().position(|l| l.starts_with(&bs[1].id)).unwrap();
    let mut cells: Vec<String> = lines[target].split(',').map(str::to_string).collect();
    cells[gaj] = "7".into();
    lines[target] = cells.join(",");
    let bad = lines.join("\r\n");
    let mut agg = session.empty();
    let err = fold_csv(&session, "t.csv", bad.as_bytes(), &mut agg).unwrap_err();
    let FoldError::Input(e) = err else {
        panic!("{err:?}")
    };
    assert_eq!(e.line, Some(target as u64 + 1));
    assert_eq!(e.column, Some(gaj as u64 + 1));
    assert_eq!(
        e.to_string(),
        format!(
            "t.csv:{}:{}: column \"appr.gaj.lawful\": \"7\" is not an option, expected one of: 5, 4, 3, 2, 1, 9",
            target + 1,
            gaj + 1
        )
    );
}

#[test]
fn validity_then_careless_then_fold() {
    let form = Form::default_form();
    let rules = Rules::from_toml(
        "r.toml",
        r#"
[validity]
all_same = true
[careless]
too_fast = 60
exclude = true
"#,
        &form,
    )
    .unwrap();
    let session = Session::new(&form, &rules, Pass::Fold, None);
    let mut g = Generator::new(&form, 9);
    let cell = |b: &mut Ballot, cells: &[(&str, &str, &str)]| {
        let mut grid = crate::ballot::Grid::new();
        for (u, c, code) in cells {
            grid.entry(u.to_string())
                .or_default()
                .insert(c.to_string(), code.to_string());
        }
        b.answers.insert("appr".into(), Answer::Grid(grid));
    };
    let mut same = g.ballot();
    cell(
        &mut same,
        &[("gaj", "overall", "4"), ("jyj", "overall", "4")],
    );
    let mut blank = g.ballot();
    blank.answers.remove("appr");
    let mut unknown_only = g.ballot();
    cell(&mut unknown_only, &[("gaj", "overall", "9")]);
    let mut fast = g.ballot();
    cell(
        &mut fast,
        &[("gaj", "overall", "4"), ("jyj", "overall", "2")],
    );
    fast.submitted_at =
        crate::time::format_rfc3339(crate::time::parse_rfc3339(&fast.started_at).unwrap() + 30_000);
    let mut good = g.ballot();
    cell(
        &mut good,
        &[("gaj", "overall", "5"), ("jyj", "overall", "9")],
    );
    let mut agg = session.empty();
    fold_ballots(
        &session,
        "x.json",
        &[same, blank, unknown_only, fast, good],
        &mut agg,
    )
    .unwrap();
    let b = &agg.ballots;
    assert_eq!(b.total, 5);
    assert_eq!(b.invalid.get("all_same"), Some(&1));
    assert_eq!(
        b.invalid.get("blank"),
        Some(&2),
        "no answer, or only 不了解"
    );
    assert_eq!(b.too_fast, 1);
    assert_eq!(b.excluded.get("too_fast"), Some(&1));
    // Only `good` is folded: gaj overall 5 once, jyj overall 9 (counted, not a vote).
    let r = &rules;
    let (u_gaj, u_jyj) = (
        r.units.iter().position(|u| u == "gaj").unwrap(),
        r.units.iter().position(|u| u == "jyj").unwrap(),
    );
    let overall = r.criteria.iter().position(|c| c == "overall").unwrap();
    let total: u64 = agg.counts.iter().sum();
    assert_eq!(total, 2);
    let good_group = (0..agg.groups.len())
        .find(|&g| agg.histogram(u_gaj, g, overall)[0] == 1)
        .expect("the 5 on gaj is counted");
    assert_eq!(agg.histogram(u_jyj, good_group, overall)[5], 1);
    assert_eq!(agg.rated[agg.ug(u_gaj, good_group)], 1);
    assert_eq!(agg.unrated[agg.ug(u_jyj, good_group)], 1);
}

#[test]
fn caps_by_share_by_points_and_at_least() {
    let form = Form::default_form();
    let rules = Rules::from_toml(
        "r.toml",
        r#"
[validity]
all_top = true
[[validity.caps]]
name = "excellent_share"
criterion = "overall"
options = ["5"]
at_most_share = 0.3
[[validity.caps]]
name = "need_a_low_one"
criterion = "overall"
points_below = 70
at_least = 1
"#,
        &form,
    )
    .unwrap();
    let session = Session::new(&form, &rules, Pass::Fold, None);
    let mut g = Generator::new(&form, 10);
    let mut with = |cells: &[(&str, &str)]| {
        let mut b = g.ballot();
        let mut grid = crate::ballot::Grid::new();
        for (u, code) in cells {
            grid.entry(u.to_string())
                .or_default()
                .insert("overall".to_string(), code.to_string());
        }
        b.answers.insert("appr".into(), Answer::Grid(grid));
        b
    };
    let bs = vec![
        // Every answer the top option (5 = 100 points): all_top.
        with(&[("gaj", "5"), ("jyj", "5"), ("rsj", "5")]),
        // Four units rated, two 5s: 30% of 4 is 1.2, so at most 1 → excellent_share.
        with(&[("gaj", "5"), ("jyj", "5"), ("rsj", "3"), ("mzj", "2")]),
        // One 5 of four, but nothing under 70 points (100 80 80 80): need_a_low_one.
        with(&[("gaj", "5"), ("jyj", "4"), ("rsj", "4"), ("mzj", "4")]),
        // One 5 of four, and 60 and 30 points are under 70: valid.
        with(&[("gaj", "5"), ("jyj", "4"), ("rsj", "3"), ("mzj", "2")]),
    ];
    let mut agg = session.empty();
    fold_ballots(&session, "x.json", &bs, &mut agg).unwrap();
    let inv = &agg.ballots.invalid;
    assert_eq!(inv.get("all_top"), Some(&1));
    assert_eq!(inv.get("excellent_share"), Some(&1));
    assert_eq!(inv.get("need_a_low_one"), Some(&1));
    assert_eq!(agg.ballots.valid(), 1);
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Folding any split of the ballots into two parts and adding the parts gives the
        /// state of one fold over all of them, also through the saved JSON of a part.
        #[test]
        fn parts_add_up(seed in 0u64..1000, n in 1usize..60, cut in 0usize..60) {
            let (form, rules) = setup();
            let bs = ballots(&form, n, seed);
            let cut = cut.min(n);
            let one = Session::new(&form, &rules, Pass::Fold, None);
            let mut whole = one.empty();
            fold_ballots(&one, "x", &bs, &mut whole).unwrap();
            let two = Session::new(&form, &rules, Pass::Fold, None);
            let mut a = two.empty();
            fold_ballots(&two, "x", &bs[..cut], &mut a).unwrap();
            let three = Session::new(&form, &rules, Pass::Fold, None);
            let mut b = three.empty();
            fold_csv(&three, "y", crate::wide_csv::to_string(&form, &bs[cut..]).as_bytes(), &mut b).unwrap();
            let b = Aggregate::from_json("b", &b.to_json()).unwrap();
            a.merge(&b).unwrap();
            prop_assert_eq!(&a.counts, &whole.counts);
            prop_assert_eq!(&a.rated, &whole.rated);
            prop_assert_eq!(&a.ballots, &whole.ballots);
            prop_assert_eq!(&a.durations, &whole.durations);
            for (x, y) in a.moments.iter().zip(&whole.moments) {
                prop_assert_eq!(x.keys().collect::<Vec<_>>(), y.keys().collect::<Vec<_>>());
                for (m, w) in x.values().zip(y.values()) {
                    prop_assert_eq!(m.n, w.n);
                    for (p, q) in m.cross.iter().zip(&w.cross) {
                        prop_assert!((p - q).abs() <= 1e-9 * q.abs().max(1.0));
                    }
                }
            }
        }
    }
}
