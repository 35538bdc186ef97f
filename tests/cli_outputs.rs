//! What the command line writes, run on the real binary: outputs never replace an input
//! and appear only when complete, and a killed run's temporary is cleaned up.

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{fixture, pingyi, rules, Work};

fn copy_fixture(w: &Work, fixture_name: &str, as_name: &str) -> Vec<u8> {
    let bytes = std::fs::read(fixture(fixture_name)).unwrap();
    std::fs::write(w.path(as_name), &bytes).unwrap();
    bytes
}

fn assert_refused(w: &Work, args: &[&str], output: &str, input: &str, before: &[u8]) {
    let err = w.fails(args, 1);
    assert!(
        err.contains(&format!("{output}: is also an input")),
        "pingyi {args:?}: {err}"
    );
    assert_eq!(
        std::fs::read(w.path(input)).unwrap(),
        before,
        "pingyi {args:?} left {input} as it was"
    );
}

#[test]
fn score_and_aggregate_never_write_over_an_input() {
    let w = Work::new();
    let ballots = copy_fixture(&w, "haochaping.csv", "a.csv");
    let hc = rules("haochaping.toml");
    assert_refused(
        &w,
        &["score", "a.csv", "--rules", &hc, "-o", "a.csv"],
        "a.csv",
        "a.csv",
        &ballots,
    );
    assert_refused(
        &w,
        &["aggregate", "a.csv", "--rules", &hc, "-o", "a.csv"],
        "a.csv",
        "a.csv",
        &ballots,
    );
    // The same file by another path, by a hard link and by a symbolic link.
    std::fs::create_dir(w.path("sub")).unwrap();
    assert_refused(
        &w,
        &["score", "a.csv", "-o", "sub/../a.csv"],
        "sub/../a.csv",
        "a.csv",
        &ballots,
    );
    std::fs::hard_link(w.path("a.csv"), w.path("hard.csv")).unwrap();
    assert_refused(
        &w,
        &["score", "a.csv", "-o", "hard.csv"],
        "hard.csv",
        "a.csv",
        &ballots,
    );
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(w.path("a.csv"), w.path("soft.json")).unwrap();
        assert_refused(
            &w,
            &["aggregate", "a.csv", "-o", "soft.json"],
            "soft.json",
            "a.csv",
            &ballots,
        );
    }
    // The rules and the form are inputs too.
    let rules_bytes = std::fs::read(&hc).unwrap();
    std::fs::write(w.path("r.toml"), &rules_bytes).unwrap();
    assert_refused(
        &w,
        &["score", "a.csv", "--rules", "r.toml", "-o", "r.toml"],
        "r.toml",
        "r.toml",
        &rules_bytes,
    );
    let form = w.ok(&["form", "default"]);
    std::fs::write(w.path("f.json"), &form).unwrap();
    assert_refused(
        &w,
        &["generate", "--form", "f.json", "-o", "f.json"],
        "f.json",
        "f.json",
        form.as_bytes(),
    );
    // A new name works, and writes the whole report.
    w.ok(&["score", "a.csv", "--rules", &hc, "-o", "scores.json"]);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.path("scores.json")).unwrap()).unwrap();
    assert_eq!(report["ballots"]["total"], 7);
}

#[test]
fn merge_reads_an_input_named_like_its_output_plus_partial() {
    let w = Work::new();
    let kiosk = copy_fixture(&w, "kiosk-a.csv", "x.csv.partial");
    let out = w.run(&["merge", "x.csv.partial", "-o", "x.csv"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(w.path("x.csv.partial")).unwrap(),
        kiosk,
        "the input is untouched"
    );
    let merged = std::fs::read_to_string(w.path("x.csv")).unwrap();
    let rows = |t: &str| t.trim_end().split("\r\n").count();
    assert_eq!(rows(&merged), rows(&String::from_utf8(kiosk).unwrap()));
    let log = w.fails(&["merge", "x.csv.partial", "-o", "x.csv.partial"], 1);
    assert!(log.contains("x.csv.partial: is also an input"), "{log}");
}

/// Pingyi's temporaries in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with('.') && n.contains(".pingyi-") && n.ends_with(".tmp"))
        .collect()
}

/// A child process that is killed when the test ends, passed or failed.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_file_is_replaced_only_when_the_new_one_is_complete_and_a_killed_run_is_cleaned_up() {
    let w = Work::new();
    let old = "the old file, kept until the new one is whole\n";
    w.write("existing.csv", old);
    let mut child = Running(
        pingyi()
            .args(["generate", "--ballots", "1000000000", "-o", "existing.csv"])
            .current_dir(w.dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Wait until the run has written a good deal (or, before the fix, touched the file).
    let written = loop {
        let changed = std::fs::read_to_string(w.path("existing.csv"))
            .ok()
            .as_deref()
            != Some(old);
        let big = temporaries(w.dir())
            .iter()
            .any(|t| std::fs::metadata(w.path(t)).is_ok_and(|m| m.len() > 2 << 20));
        if changed || big {
            break !changed;
        }
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "generate stopped early"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(
        std::fs::read_to_string(w.path("existing.csv")).unwrap(),
        old,
        "the old file is intact while the new one is written"
    );
    assert!(written);
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    assert_eq!(
        std::fs::read_to_string(w.path("existing.csv")).unwrap(),
        old
    );
    assert_eq!(
        temporaries(w.dir()).len(),
        1,
        "the killed run left its temporary"
    );
    // The next run writing into the folder removes it.
    w.ok(&["generate", "--ballots", "3", "-o", "other.csv"]);
    assert_eq!(temporaries(w.dir()), Vec::<String>::new());
    assert_eq!(
        std::fs::read_to_string(w.path("existing.csv")).unwrap(),
        old
    );
}
