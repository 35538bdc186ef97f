//! `pingyi codes` with the real binary: the codes written to a PDF sheet and a CSV are
//! the same, the sheet's text (pdftotext) holds the form's title, the group and every
//! code, its QR codes (the first page rendered with pdftoppm, decoded with rqrr) open
//! the form with the group and code filled in, the database knows the codes only by
//! their keyed hashes; and bad requests, a missing font, are refused clearly before any
//! code is issued.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use analysis::access_code::AccessCode;
use common::{pingyi, Work};
use pingyi_server::store::{Database, Reader};

const URL: &str = "http://192.168.1.20:8080/";
const TITLE: &str = "2026年度市直单位民主评议满意度测评问卷";

/// The codes of a CSV written by `pingyi codes`, checking its rows.
fn csv_codes(path: &Path, group: &str) -> Vec<AccessCode> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("group,code,slip"));
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 3, "{line}");
            assert_eq!(fields[0], group, "{line}");
            assert_eq!(fields[2], (i + 1).to_string(), "{line}");
            assert_eq!(fields[1].len(), 9, "shown as XXXX-XXXX: {line}");
            AccessCode::parse(fields[1]).unwrap_or_else(|e| panic!("{line}: {e}"))
        })
        .collect()
}

fn tool(name: &str, args: &[&str]) -> Vec<u8> {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} runs (poppler-utils is installed): {e}"));
    assert!(
        out.status.success(),
        "{name} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Reads a binary PGM (P5) as written by `pdftoppm -gray`: width, height, pixels.
fn pgm(bytes: &[u8]) -> (usize, usize, Vec<u8>) {
    let mut fields = Vec::new();
    let mut at = 0;
    while fields.len() < 4 {
        while bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        let start = at;
        while !bytes[at].is_ascii_whitespace() {
            at += 1;
        }
        fields.push(String::from_utf8_lossy(&bytes[start..at]).to_string());
    }
    assert_eq!(fields[0], "P5", "a binary grey map");
    let (w, h): (usize, usize) = (fields[1].parse().unwrap(), fields[2].parse().unwrap());
    let pixels = bytes[at + 1..].to_vec();
    assert_eq!(pixels.len(), w * h);
    (w, h, pixels)
}

#[test]
fn the_sheet_and_the_csv_hold_the_same_codes_and_the_qr_codes_open_the_form_with_them() {
    let w = Work::new();
    let out = w.run(&[
        "codes",
        "--group",
        "npc",
        "--count",
        "10",
        "--public-url",
        URL,
        "-o",
        "npc.pdf",
        "-o",
        "npc.csv",
    ]);
    let said = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("issued 10 codes for group npc (人大代表)"),
        "{said}"
    );
    let codes = csv_codes(&w.path("npc.csv"), "npc");
    assert_eq!(codes.len(), 10);
    assert_eq!(
        codes.iter().collect::<BTreeSet<_>>().len(),
        10,
        "all different"
    );

    let pdf = w.path("npc.pdf");
    let pdf = pdf.to_str().unwrap();
    let info = String::from_utf8(tool("pdfinfo", &[pdf])).unwrap();
    assert!(
        info.contains("Pages:           2"),
        "8 slips a page: {info}"
    );
    assert!(
        info.contains("595.28 x 841.89 pts (A4)") || info.contains("(A4)"),
        "{info}"
    );
    let text = String::from_utf8(tool("pdftotext", &[pdf, "-"])).unwrap();
    assert!(text.contains(TITLE), "{text}");
    assert!(text.contains("人大代表"), "{text}");
    assert!(text.contains(URL), "{text}");
    for code in &codes {
        assert!(
            text.contains(&code.to_string()),
            "{code} is on the sheet: {text}"
        );
    }

    let image = w.path("page");
    tool(
        "pdftoppm",
        &[
            "-r",
            "150",
            "-gray",
            "-f",
            "1",
            "-l",
            "1",
            pdf,
            image.to_str().unwrap(),
        ],
    );
    let rendered = std::fs::read_dir(w.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pgm"))
        .expect("pdftoppm wrote the page");
    let (width, height, pixels) = pgm(&std::fs::read(rendered).unwrap());
    // Each slip on its own (two across, four down), as a person scans one slip.
    let (slip_w, slip_h) = (width / 2, height / 4);
    let mut opened = BTreeSet::new();
    for (slip, expected) in codes[..8].iter().enumerate() {
        let (x0, y0) = ((slip % 2) * slip_w, (slip / 2) * slip_h);
        let mut prepared = rqrr::PreparedImage::prepare_from_greyscale(slip_w, slip_h, |x, y| {
            pixels[(y0 + y) * width + x0 + x]
        });
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "slip {}: one QR code", slip + 1);
        let (_, content) = grids[0].decode().expect("the QR code decodes");
        let code = content
            .strip_prefix(&format!("{URL}?group=npc&code="))
            .unwrap_or_else(|| panic!("the QR code opens the form: {content}"));
        let code = AccessCode::parse(code).unwrap();
        assert_eq!(&code, expected, "slip {} holds its own code", slip + 1);
        opened.insert(code);
    }
    let first_page: BTreeSet<AccessCode> = codes[..8].iter().cloned().collect();
    assert_eq!(opened, first_page, "each slip's QR code holds its own code");

    // The database the server collects into knows them, by keyed hash only.
    let mut reader = Reader::open(&Database::Sqlite(w.path("pingyi.db"))).unwrap();
    let heads = reader.head_counts("minzhu-pingyi", "2026.1").unwrap();
    assert_eq!(
        (heads["npc"].issued, heads["npc"].returned),
        (Some(10), Some(0))
    );
    drop(reader);
    let mut stored = Vec::new();
    for name in ["pingyi.db", "pingyi.db-wal"] {
        stored.extend(std::fs::read(w.path(name)).unwrap_or_default());
    }
    let stored = String::from_utf8_lossy(&stored);
    for code in &codes {
        assert!(
            !stored.contains(code.as_str()),
            "{code} is in the database in clear"
        );
    }
}

#[test]
fn without_a_chinese_font_the_sheet_is_refused_clearly_before_any_code_is_issued() {
    let w = Work::new();
    let empty = w.path("no-fonts");
    std::fs::create_dir(&empty).unwrap();
    let out = pingyi()
        .args([
            "codes",
            "--group",
            "npc",
            "--count",
            "5",
            "--public-url",
            URL,
            "-o",
            "npc.pdf",
        ])
        .env("PINGYI_FONT_DIRS", &empty)
        .current_dir(w.dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    for part in [
        "no font with Chinese characters",
        empty.to_str().unwrap(),
        "apt install fonts-noto-cjk",
        "--font FILE",
        "-o codes.csv",
    ] {
        assert!(said.contains(part), "{part}: {said}");
    }
    assert!(!w.path("pingyi.db").exists(), "no code was issued");

    let not_a_font = w.write("notes.ttf", "not a font");
    let said = w.fails(
        &[
            "codes",
            "--group",
            "npc",
            "--count",
            "5",
            "--public-url",
            URL,
            "--font",
            not_a_font.to_str().unwrap(),
            "-o",
            "npc.pdf",
        ],
        1,
    );
    assert!(
        said.contains("has no face with Chinese characters"),
        "{said}"
    );
    assert!(!w.path("pingyi.db").exists(), "no code was issued");
}

#[test]
fn bad_requests_are_refused_clearly_before_any_code_is_issued() {
    let w = Work::new();
    let cases: [(&[&str], &str); 6] = [
        (
            &["--group", "npc", "--count", "0", "-o", "c.csv"],
            "the count is 0, expected 1 to 2000",
        ),
        (
            &["--group", "npc", "--count", "2001", "-o", "c.csv"],
            "the count is 2001",
        ),
        (
            &["--group", "public", "--count", "5", "-o", "c.csv"],
            "group \"public\" votes without codes",
        ),
        (
            &["--group", "nobody", "--count", "5", "-o", "c.csv"],
            "has no group \"nobody\"",
        ),
        (
            &["--group", "npc", "--count", "5", "-o", "c.txt"],
            "must end in .pdf",
        ),
        (
            &["--group", "npc", "--count", "5", "-o", "c.pdf"],
            "give --public-url",
        ),
    ];
    for (args, expected) in cases {
        let mut all = vec!["codes"];
        all.extend_from_slice(args);
        let said = w.fails(&all, 1);
        assert!(said.contains(expected), "{args:?}: {said}");
        assert!(
            !w.path("pingyi.db").exists(),
            "{args:?}: no code was issued"
        );
    }
    let said = w.fails(
        &["codes", "--group", "nobody", "--count", "5", "-o", "c.csv"],
        1,
    );
    assert!(
        said.contains("npc, cppcc"),
        "names the groups that vote with codes: {said}"
    );
}
