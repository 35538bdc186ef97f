use super::*;
use crate::time::format_rfc3339;
use proptest::prelude::*;

fn ballot(form: &Form, id: &str) -> Ballot {
    Ballot {
        id: id.into(),
        form_id: form.id.clone(),
        form_version: form.version.clone(),
        device_id: "kiosk-1".into(),
        group: "public".into(),
        lang: "zh-CN".into(),
        started_at: "2026-11-22T09:00:00.000+08:00".into(),
        submitted_at: "2026-11-22T09:04:30.500+08:00".into(),
        answers: BTreeMap::new(),
        access_code: None,
    }
}

#[test]
fn export_starts_with_bom_and_design_header() {
    let form = Form::default_form();
    let text = to_string(&form, &[]);
    assert!(text.starts_with('\u{feff}'));
    let header = text.trim_start_matches('\u{feff}').lines().next().unwrap();
    assert!(header.starts_with(
        "response_id,form_id,form_version,device_id,group,lang,started_at,submitted_at,duration_s,contact,channels,times,appr.zwfw.attitude,"
    ));
    assert!(header.ends_with("appr.mzj.overall,environment,why,suggestion"));
}

#[test]
fn formula_text_is_neutralized_and_read_back_unchanged() {
    let form = Form::default_form();
    let mut b = ballot(&form, "b1");
    b.answers
        .insert("suggestion".into(), Answer::Str("=1+1".into()));
    b.answers.insert(
        "why".into(),
        Answer::Str("@SUM(A1)，\"引号\",\n换行".into()),
    );
    b.answers.insert(
        "channels".into(),
        Answer::Codes(vec!["online".into(), "window".into()]),
    );
    b.answers.insert("times".into(), Answer::Number(12.0));
    let text = to_string(&form, std::slice::from_ref(&b));
    let row = text.split("\r\n").nth(1).unwrap();
    assert!(row.contains(",'=1+1"), "{row}");
    assert!(row.contains(",\"'@SUM(A1)，\"\"引号\"\","), "{row}");
    assert!(
        row.contains(",271,"),
        "duration 270.5 s printed rounded half away from zero: {row}"
    );
    let back = read_all(&form, "t.csv", text.as_bytes()).unwrap();
    assert_eq!(back, vec![b]);
}

#[test]
fn neutralize_is_exactly_reversible() {
    for s in [
        "=x",
        "'=x",
        "''=x",
        "'x",
        "x'",
        "",
        "'",
        "+1",
        "-",
        "\tA",
        "\rA",
        "普通文本",
        "a=b",
    ] {
        let n = neutralize(s);
        assert!(
            !n.starts_with(is_trigger),
            "{s:?} → {n:?} would run as a formula"
        );
        assert_eq!(unneutralize(&n), s, "{s:?} → {n:?}");
    }
}

#[test]
fn bad_cells_are_named_with_line_and_column() {
    let form = Form::default_form();
    let mut b = ballot(&form, "b1");
    b.answers
        .insert("contact".into(), Answer::Str("often".into()));
    let text = to_string(&form, &[b.clone(), b]);
    let broken = text
        .replacen(",often,", ",daily,", 2)
        .replacen(",daily,", ",often,", 1);
    let err = read_all(&form, "k1.csv", broken.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("k1.csv:3: column \"contact\": \"daily\" is not an option"),
        "{err}"
    );

    let broken = text.replacen("appr.gaj.lawful", "appr.gaj.lawfull", 1);
    let err = read_all(&form, "k1.csv", broken.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("k1.csv:1:"), "{err}");
    assert!(
        err.contains("header \"appr.gaj.lawfull\": unknown column"),
        "{err}"
    );

    let mut lines: Vec<&str> = text.split("\r\n").collect();
    let short = lines[2].rsplit_once(',').unwrap().0.to_string();
    lines[2] = &short;
    let err = read_all(&form, "k1.csv", lines.join("\r\n").as_bytes())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("k1.csv:3: the row has"), "{err}");
}

#[test]
fn reads_without_bom_too() {
    let form = Form::default_form();
    let text = to_string(&form, &[ballot(&form, "x")]);
    let plain = text.trim_start_matches('\u{feff}');
    assert_eq!(read_all(&form, "t", plain.as_bytes()).unwrap().len(), 1);
}

fn text_strategy() -> impl Strategy<Value = String> {
    // Formula starters, quotes, separators, line breaks, Chinese and leading apostrophes.
    proptest::string::string_regex("['=+@\\t\\r-]{0,2}[a-z 满意，,\"\n\r'=]{1,12}").unwrap()
}

fn ballot_strategy(form: &'static Form) -> impl Strategy<Value = Ballot> {
    let ItemKind::Appraisal {
        units, criteria, ..
    } = &form.item("appr").unwrap().kind
    else {
        unreachable!()
    };
    let cells = units.len() * criteria.len();
    let codes = form.item("appr").unwrap().codes(form);
    let codes: Vec<String> = codes.iter().map(|s| s.to_string()).collect();
    (
        "[a-f0-9]{8}",
        prop::sample::select(form.groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>()),
        prop::sample::select(vec!["zh-CN".to_string(), "en".to_string()]),
        0i64..4_000_000_000_000,
        0i64..10_000_000,
        prop::option::of(prop::sample::select(vec!["often", "sometimes", "never"])),
        prop::option::of(
            prop::sample::subsequence(vec!["window", "online", "phone", "other"], 1..=4)
                .prop_shuffle(),
        ),
        prop::option::of((0u32..1000).prop_map(f64::from)),
        prop::collection::vec(prop::option::of(prop::sample::select(codes)), cells),
        prop::option::of(text_strategy()),
        prop::option::of(text_strategy()),
        "[a-zA-Z0-9=+@-]{1,10}",
    )
        .prop_map(
            move |(
                id,
                group,
                lang,
                start,
                dur,
                contact,
                channels,
                times,
                grid,
                why,
                sugg,
                device,
            )| {
                let mut b = ballot(form, &id);
                b.group = group;
                b.lang = lang;
                b.device_id = device;
                b.started_at = format_rfc3339(start);
                b.submitted_at = format_rfc3339(start + dur);
                if let Some(c) = contact {
                    b.answers.insert("contact".into(), Answer::Str(c.into()));
                }
                if let Some(ch) = channels {
                    b.answers.insert(
                        "channels".into(),
                        Answer::Codes(ch.into_iter().map(String::from).collect()),
                    );
                }
                if let Some(t) = times {
                    b.answers.insert("times".into(), Answer::Number(t));
                }
                let ItemKind::Appraisal {
                    units, criteria, ..
                } = &form.item("appr").unwrap().kind
                else {
                    unreachable!()
                };
                let mut g = Grid::new();
                for (k, code) in grid.into_iter().enumerate() {
                    if let Some(code) = code {
                        let (u, c) = (&units[k / criteria.len()], &criteria[k % criteria.len()].id);
                        g.entry(u.clone()).or_default().insert(c.clone(), code);
                    }
                }
                if !g.is_empty() {
                    b.answers.insert("appr".into(), Answer::Grid(g));
                }
                if let Some(w) = why {
                    b.answers.insert("why".into(), Answer::Str(w));
                }
                if let Some(s) = sugg {
                    b.answers.insert("suggestion".into(), Answer::Str(s));
                }
                b
            },
        )
}

fn default_form() -> &'static Form {
    static FORM: std::sync::OnceLock<Form> = std::sync::OnceLock::new();
    FORM.get_or_init(Form::default_form)
}

proptest! {
    #[test]
    fn any_valid_ballots_survive_csv_and_json(ballots in prop::collection::vec(ballot_strategy(default_form()), 0..8)) {
        let form = default_form();
        for b in &ballots {
            prop_assert!(b.problems(form).is_empty(), "generator made an invalid ballot: {:?}", b.problems(form));
        }
        let csv = to_string(form, &ballots);
        let back = read_all(form, "p.csv", csv.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(&back, &ballots);
        let json = crate::json::to_string(&ballots);
        let back = crate::json::read_all(form, "p.json", json.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(back, ballots);
    }
}
