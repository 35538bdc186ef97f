//! `pingyi merge` on fixture exports: the CLI round trip of the CSV and JSON codecs.

mod common;

use analysis::{json, wide_csv, Ballot, Form};
use common::{fixture, Work};

fn read_csv(path: &str) -> Vec<Ballot> {
    let text = std::fs::read_to_string(path).unwrap();
    wide_csv::read_all(&Form::default_form(), path, text.as_bytes()).unwrap()
}

fn read_json(path: &str) -> Vec<Ballot> {
    let text = std::fs::read_to_string(path).unwrap();
    json::read_all(&Form::default_form(), path, text.as_bytes()).unwrap()
}

#[test]
fn merged_exports_read_back_to_the_same_ballots_each_once() {
    let w = Work::new();
    let a = read_csv(&fixture("kiosk-a.csv"));
    let b = read_json(&fixture("kiosk-b.json"));
    // kiosk-b.json carries one ballot that kiosk-a.csv has too (the same in every field).
    let shared: Vec<&Ballot> = b.iter().filter(|x| a.contains(x)).collect();
    assert_eq!(shared.len(), 1);
    let mut expected = a.clone();
    expected.extend(b.iter().filter(|x| !a.contains(x)).cloned());

    for out in ["all.csv", "all.json"] {
        let o = w.run(&[
            "merge",
            &fixture("kiosk-a.csv"),
            &fixture("kiosk-b.json"),
            "-o",
            out,
        ]);
        assert!(o.status.success(), "{o:?}");
        let path = w.dir().join(out).display().to_string();
        let merged = if out.ends_with(".csv") {
            read_csv(&path)
        } else {
            read_json(&path)
        };
        assert_eq!(merged, expected, "{out}");
        // The summary by device: kiosk-a's 5 in the CSV; in the JSON tablet-b's 3 and the
        // one kiosk-a ballot that came along, counted as a duplicate.
        let err = String::from_utf8(o.stderr).unwrap();
        let line = |file: &str, device: &str| {
            err.lines()
                .find(|l| l.contains(file) && l.contains(device))
                .unwrap_or_else(|| panic!("{file} {device} in {err}"))
                .split_whitespace()
                .skip(2)
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(line("kiosk-a.csv", "kiosk-a"), "5 5 0");
        assert_eq!(line("kiosk-b.json", "tablet-b"), "3 3 0");
        assert_eq!(line("kiosk-b.json", "kiosk-a"), "1 0 1");
        assert!(
            err.contains(&format!("{out}: 8 ballots written, 1 duplicates left out")),
            "{err}"
        );
    }
    // The merged CSV keeps formula-like text safe for spreadsheets and gives it back unchanged.
    let csv = std::fs::read_to_string(w.dir().join("all.csv")).unwrap();
    assert!(csv.starts_with('\u{feff}'));
    assert!(
        csv.contains("\"'=HYPERLINK("),
        "the suggestion is neutralized"
    );
    assert!(expected.iter().any(|b| matches!(b.answers.get("suggestion"), Some(analysis::Answer::Str(s)) if s.starts_with("=HYPERLINK("))));
}

#[test]
fn the_same_id_with_other_answers_names_both_files_and_lines() {
    let w = Work::new();
    let conflict = read_json(&fixture("conflict.json"));
    let text = std::fs::read_to_string(fixture("kiosk-a.csv")).unwrap();
    // Its line in kiosk-a.csv, counted independently (a quoted cell spans two lines there).
    let line = text
        .lines()
        .position(|l| l.starts_with(&conflict[0].id))
        .unwrap()
        + 1;
    let o = w.run(&[
        "merge",
        &fixture("kiosk-a.csv"),
        &fixture("conflict.json"),
        "-o",
        "all.csv",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8(o.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "conflict.json: [0]: response_id {:?} was read before with different answers (at {}:{line})",
            conflict[0].id,
            fixture("kiosk-a.csv")
        )),
        "{err}"
    );
    assert!(!w.dir().join("all.csv").exists(), "no output on error");
    assert!(
        std::fs::read_dir(w.dir()).unwrap().next().is_none(),
        "no partial file left behind"
    );
}

#[test]
fn usage_mistakes() {
    let w = Work::new();
    let o = w.run(&["merge", &fixture("kiosk-a.csv"), "-o", "all.txt"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("expected a name ending in .csv or .json"));
    let o = w.run(&["merge", &fixture("tally.csv"), "-o", "all.csv"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is a tally or a part, not ballots"));
    let o = w.run(&["merge", &fixture("kiosk-a.csv")]);
    assert_eq!(o.status.code(), Some(2), "-o is required");
}
