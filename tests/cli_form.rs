//! The real `pingyi` binary on form definitions, and `pingyi serve` over HTTP.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Output, Stdio};

use common::fixture;

fn pingyi(args: &[&str]) -> Output {
    common::pingyi().args(args).output().expect("run pingyi")
}

fn form(name: &str) -> String {
    fixture(&format!("forms/{name}"))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_valid_form_is_reported_valid() {
    let o = pingyi(&["form", "check", &form("hall.json")]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    assert!(
        out.contains("valid form \"hall-survey\" version 3"),
        "{out}"
    );
    assert!(out.contains("2 units, 1 respondent groups"), "{out}");
}

#[test]
fn the_default_form_is_valid() {
    let o = pingyi(&["form", "check", "--default"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("valid form \"minzhu-pingyi\""),
        "{}",
        stdout(&o)
    );
}

#[test]
fn five_mistakes_are_five_problems_with_paths_and_exit_1() {
    let path = form("five-mistakes.json");
    let o = pingyi(&["form", "check", &path]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    let problems: Vec<&str> = out.lines().skip(1).map(str::trim).collect();
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("five-mistakes.json: 5 problems found"),
        "{out}"
    );
    assert_eq!(problems.len(), 5, "{out}");
    let expected = [
        r#"units[1].id: duplicate unit id "hall""#,
        r#"groups[0].label: has no "en" text"#,
        r#"sections[0].items[0].scale: unknown scale "s5", expected one of: s3"#,
        "sections[0].items[0].criteria[0].weight: -2 is negative, expected a weight ≥ 0",
        r#"sections[0].items[1].relevant: "selected(${grid.attitude}, '3'" does not parse"#,
    ];
    for e in expected {
        assert!(
            problems.iter().any(|p| p.starts_with(e)),
            "missing {e:?} in:\n{out}"
        );
    }
}

#[test]
fn a_json_syntax_error_keeps_line_and_column() {
    let o = pingyi(&["form", "check", &form("syntax-error.json")]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains("line 4, column 3: not valid JSON: expected `,` or `}`"),
        "{out}"
    );
}

#[test]
fn a_missing_file_is_named_and_a_usage_mistake_exits_2() {
    let o = pingyi(&["form", "check", "no-such-form.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("cannot read no-such-form.json"));
    let o = pingyi(&["form", "check"]);
    assert_eq!(o.status.code(), Some(2));
    let o = pingyi(&["form", "check", "--help"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains("Examples:"));
}

#[test]
fn the_default_form_written_out_checks_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.json");
    let o = pingyi(&["form", "default", "-o", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    let o = pingyi(&["form", "check", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// A version holding a line break or a tab passed `form check`; served, the first made each
/// page load overwrite the earlier ballots and the second hid them from the count.
#[test]
fn form_check_refuses_a_version_with_a_line_break_or_a_tab() {
    let hall = std::fs::read_to_string(form("hall.json")).unwrap();
    assert!(hall.contains(r#""version": "3""#));
    let dir = tempfile::tempdir().unwrap();
    for (escaped, shown) in [
        (r"3\n1", r#""3\n1" holds a line break"#),
        (r"3\t1", r#""3\t1" holds a tab"#),
    ] {
        let path = dir.path().join("bad-version.json");
        std::fs::write(
            &path,
            hall.replace(r#""version": "3""#, &format!(r#""version": "{escaped}""#)),
        )
        .unwrap();
        let o = pingyi(&["form", "check", path.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
        let out = stdout(&o);
        assert!(out.contains(&format!("version: {shown}")), "{out}");
        assert!(
            out.contains("expected printable text without tabs or line breaks"),
            "{out}"
        );
    }
}

/// A site folder with stand-in files, so serving can be tested without building the app.
fn stand_in_site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in [
        ("index.html", "<!doctype html><title>t</title>"),
        ("style.css", "body{}"),
        ("pingyi_app.js", "export default function init() {}"),
        ("pingyi_app_bg.wasm", "\0asm\u{1}\0\0\0"),
        ("manifest.webmanifest", "{}"),
        ("icon.svg", "<svg/>"),
        ("sw.js", "importScripts('./build.js');"),
    ] {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    dir
}

struct Served(Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(site: &Path, extra: &[&str]) -> Served {
    let mut child = common::pingyi()
        .args([
            "serve",
            "--no-build",
            "--port",
            "0",
            "--pkg",
            site.to_str().unwrap(),
        ])
        .args(extra)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .expect("a URL")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    Served(child, addr)
}

/// A plain HTTP/1.1 GET: (status line, headers, body).
fn get(addr: &str, path: &str) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (
        status.to_string(),
        headers.to_ascii_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn serve_gives_content_types_the_form_and_nothing_outside_the_site() {
    let site = stand_in_site();
    let db = site.path().join("ballots.db");
    let served = serve(
        site.path(),
        &[
            "--form",
            &form("hall.json"),
            "--database",
            db.to_str().unwrap(),
        ],
    );
    let (status, headers, _) = get(&served.1, "/");
    assert!(status.contains("200"), "{status}");
    assert!(
        headers.contains("content-type: text/html; charset=utf-8"),
        "{headers}"
    );
    let (_, headers, body) = get(&served.1, "/pingyi_app_bg.wasm");
    assert!(
        headers.contains("content-type: application/wasm"),
        "{headers}"
    );
    assert!(body.starts_with(b"\0asm"));
    assert!(get(&served.1, "/pingyi_app.js")
        .1
        .contains("content-type: text/javascript"));
    let (_, headers, body) = get(&served.1, "/form.json");
    assert!(headers.contains("application/json"));
    assert!(
        String::from_utf8(body).unwrap().contains("hall-survey"),
        "--form is what the app starts with"
    );
    let (_, _, build) = get(&served.1, "/build.js");
    assert!(
        String::from_utf8(build).unwrap().contains("PINGYI_FILES"),
        "sw.js gets its file list"
    );
    assert!(get(&served.1, "/../Cargo.toml").0.contains("404"));
    assert!(get(&served.1, "/missing.js").0.contains("404"));
}

#[test]
fn serve_refuses_a_broken_form_before_listening() {
    let site = stand_in_site();
    let o = pingyi(&[
        "serve",
        "--no-build",
        "--port",
        "0",
        "--pkg",
        site.path().to_str().unwrap(),
        "--form",
        &form("five-mistakes.json"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("5 problems found"));
    // The default database would go beside the form: none is left there for a form that
    // was refused.
    let beside = std::path::Path::new(&form("five-mistakes.json")).with_extension("db");
    assert!(!beside.exists(), "{} was created", beside.display());
}
