//! Replays every input saved under fuzz/regressions/TARGET/ through that fuzz target's own
//! check, so a crash the fuzzer once found stays fixed in a plain `cargo test`, without
//! the fuzzer. The checks are fuzz/src/checks.rs itself, included here as a module; each
//! folder also holds at least one hand-made input that goes deep into its reader, so no
//! replay is ever empty. docs/fuzzing.md says how a new crash gets here.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[path = "../../fuzz/src/checks.rs"]
mod checks;

/// The saved inputs of one target, in name order.
fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("a readable folder entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "{} holds no input, expected at least the hand-made one",
        dir.display()
    );
    files
}

/// Runs `check` on every saved input of `target` and fails naming each input that panics.
fn replay(target: &str, check: fn(&[u8])) {
    let mut failed = Vec::new();
    for path in inputs(target) {
        let data = std::fs::read(&path).expect("a readable input");
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| check(&data))) {
            let why = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            failed.push(format!("{}: {why}", path.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{} input(s) of fuzz target {target} crash:\n{}",
        failed.len(),
        failed.join("\n")
    );
}

#[test]
fn form_json() {
    replay("form_json", checks::form_json);
}

#[test]
fn expression() {
    replay("expression", checks::expression);
}

#[test]
fn wide_csv() {
    replay("wide_csv", checks::wide_csv);
}

#[test]
fn json_ballots() {
    replay("json_ballots", checks::json_ballots);
}

#[test]
fn tally() {
    replay("tally", checks::tally);
}

#[test]
fn part() {
    replay("part", checks::part);
}

#[test]
fn rules_toml() {
    replay("rules_toml", checks::rules_toml);
}

#[test]
fn compact() {
    replay("compact", checks::compact);
}

#[test]
fn assess_tables() {
    replay("assess_tables", checks::assess_tables);
}
