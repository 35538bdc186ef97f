//! What the command line refuses to read, run on the real binary: a quote that never
//! closes, files in encodings other than UTF-8 and UTF-16, and a header too long to echo,
//! each with a short message naming the file and line.

mod common;

use common::{fixture, rules, Work};

#[test]
fn a_huge_header_cell_gives_a_short_message_naming_the_file() {
    let w = Work::new();
    let ballots = std::fs::read_to_string(fixture("haochaping.csv")).unwrap();
    let huge = "列".repeat(5 << 20) + "," + ballots.trim_start_matches('\u{feff}');
    w.write("huge.csv", &huge);
    let err = w.fails(&["score", "huge.csv"], 1);
    assert!(err.len() < 2000, "stderr is {} bytes", err.len());
    assert!(err.contains("huge.csv:1:1: header \"列列"), "{err}");
    assert!(err.contains(&format!("({} characters)", 5 << 20)), "{err}");
    assert!(err.contains("unknown column, expected one of"), "{err}");
}

#[test]
fn an_unterminated_quote_is_an_error_at_the_line_it_opens() {
    let w = Work::new();
    let text = std::fs::read_to_string(fixture("haochaping.csv")).unwrap();
    let mut lines: Vec<String> = text.split('\n').map(String::from).collect();
    // Line 6's last cell (the suggestion) opens a quote that is never closed: before, the
    // last two ballots became its text and the run said nothing.
    let cut = lines[5].rfind(',').unwrap();
    lines[5] = format!("{}\"unclosed", &lines[5][..=cut]);
    w.write("open.csv", &lines.join("\n"));
    let hc = rules("haochaping.toml");
    for threads in ["1", "2"] {
        let err = w.fails(
            &["score", "open.csv", "--rules", &hc, "--threads", threads],
            1,
        );
        assert!(
            err.contains("open.csv:6: a quoted field opens on this line"),
            "{err}"
        );
        assert!(err.contains("expected a closing `\"`"), "{err}");
    }
}

#[test]
fn utf16_files_are_read_and_gb18030_files_are_refused_with_the_fix() {
    let w = Work::new();
    let text = std::fs::read_to_string(fixture("haochaping.csv")).unwrap();
    let text = text.trim_start_matches('\u{feff}');
    let hc = rules("haochaping.toml");
    let utf8 = w.json(&["score", &fixture("haochaping.csv"), "--rules", &hc]);
    // Excel's "Unicode text" (UTF-16 LE with a BOM) and BOM-less UTF-16 BE.
    let le: Vec<u8> = "\u{feff}"
        .encode_utf16()
        .chain(text.encode_utf16())
        .flat_map(u16::to_le_bytes)
        .collect();
    let be: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    std::fs::write(w.path("le.csv"), le).unwrap();
    std::fs::write(w.path("be.csv"), be).unwrap();
    for name in ["le.csv", "be.csv"] {
        let got = w.json(&["score", name, "--rules", &hc]);
        assert_eq!(got, utf8, "{name} scores as the UTF-8 file does");
    }
    // Older Excel and WPS on Chinese Windows save CSV in GB18030/GBK.
    let with_chinese = text.replacen(",\r\n", ",窗口服务很好\r\n", 1);
    assert_ne!(with_chinese, text, "a suggestion in Chinese on line 2");
    let (gbk, _, _) = encoding_rs::GB18030.encode(&with_chinese);
    std::fs::write(w.path("old-excel.csv"), &gbk).unwrap();
    let err = w.fails(&["score", "old-excel.csv", "--rules", &hc], 1);
    assert!(err.contains("old-excel.csv:2: byte"), "{err}");
    assert!(err.contains("looks like GB18030/GBK"), "{err}");
    assert!(
        err.contains("iconv -f GB18030 -t UTF-8 old-excel.csv > old-excel-utf8.csv"),
        "{err}"
    );
}

#[test]
fn the_result_does_not_depend_on_the_number_of_threads() {
    let w = Work::new();
    w.ok(&[
        "generate",
        "--ballots",
        "25000",
        "--seed",
        "3",
        "-o",
        "big.csv",
    ]);
    let text = std::fs::read_to_string(w.path("big.csv")).unwrap();
    assert!(
        text.len() > 4 << 20,
        "large enough for the multi-core reader"
    );
    let mut lines: Vec<String> = text.split("\r\n").map(String::from).collect();
    // A `"` inside an unquoted cell is a plain character; a line break inside a quoted
    // cell is not a record's end. Counting quotes to cut the file into blocks took the
    // line break on line 22 for a record end, and `--threads 2` failed where one thread
    // read the file.
    assert!(
        lines[10].ends_with(','),
        "the suggestion is the last, empty, column"
    );
    lines[10].push_str("5寸\"屏幕");
    for i in (21..lines.len() - 1).step_by(5000) {
        lines[i].push_str("\"第一行\r\n第二行\"");
    }
    w.write("big.csv", &lines.join("\r\n"));
    let one = w.json(&["score", "big.csv", "--threads", "1"]);
    assert_eq!(one["ballots"]["total"], 25000);
    for threads in ["2", "3"] {
        assert_eq!(
            w.json(&["score", "big.csv", "--threads", threads]),
            one,
            "--threads {threads}"
        );
    }
}

#[test]
fn parts_add_their_completion_times_with_checked_counts() {
    let w = Work::new();
    let ballots = fixture("haochaping.csv");
    // Excluding too-fast ballots against half the median reads the times first: a part
    // read with ballots was taken for a ballot CSV there.
    w.write("exclude.toml", "[careless]\nexclude = true\n");
    w.ok(&[
        "aggregate",
        &ballots,
        "--rules",
        "exclude.toml",
        "-o",
        "part.json",
    ]);
    let both = w.json(&["score", "part.json", &ballots, "--rules", "exclude.toml"]);
    assert_eq!(both["ballots"]["total"], 14);
    // A part whose count of ballots at one completion time cannot be added to.
    let mut part: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(w.path("part.json")).unwrap()).unwrap();
    part["durations"] = serde_json::json!({ "300": u64::MAX });
    w.write("huge.json", &part.to_string());
    let err = w.fails(
        &["score", "huge.json", &ballots, "--rules", "exclude.toml"],
        1,
    );
    assert!(
        err.contains(
            "huge.json: durations.300: 18446744073709551615 ballots taking 300 s overflow"
        ),
        "{err}"
    );
}
