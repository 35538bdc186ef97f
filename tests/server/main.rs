//! Fault drills of the collection server (`cargo test --test server`, docs/drills.md):
//! the real `pingyi serve` over real HTTP on a real SQLite file or PostgreSQL database,
//! killed, flooded with duplicates, starved of disk and fed bad requests. Each drill
//! checks what an official would notice: every acknowledged ballot is in the database
//! once, the server keeps answering, and refusals say what was wrong.
//!
//! Nothing here is timed: every wait is for a condition, with a generous limit.

mod bad_requests;
mod duplicates;
#[allow(dead_code)] // the load benchmark uses other parts of the harness
mod harness;
mod kill9;
mod storage_faults;

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use analysis::Ballot;
use tokio::sync::{Mutex, MutexGuard};

/// One drill at a time: several servers, their clients and a database on two shared
/// cores would only make each drill slower, not more thorough.
async fn one_drill_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// Waits until `done()` holds, checking every 50 ms; fails naming `what` after `limit`.
async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < limit,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `pingyi export --database URL -o DIR/name.json`, read back: every ballot the database
/// holds, as the campaign's export gives it.
fn export(database: &str, dir: &Path, name: &str) -> Vec<Ballot> {
    let out = dir.join(format!("{name}.json"));
    let run = harness::pingyi()
        .args(["export", "--database", database, "-o"])
        .arg(&out)
        .output()
        .expect("run pingyi export");
    assert!(
        run.status.success(),
        "pingyi export --database {database} failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&out).expect("the export file");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}

/// Checks an export against the ballots that were sent: no id twice, every ballot exactly
/// as it was sent. Returns the ids it holds.
fn check_export(exported: &[Ballot], sent: &HashMap<String, Ballot>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    for b in exported {
        assert!(
            seen.insert(b.id.as_str()),
            "ballot {} is stored twice",
            b.id
        );
        let original = sent
            .get(&b.id)
            .unwrap_or_else(|| panic!("the database holds ballot {} that nobody sent", b.id));
        assert_eq!(b, original, "ballot {} changed on its way in", b.id);
    }
    exported.iter().map(|b| b.id.clone()).collect()
}

fn by_id(ballots: &[Ballot]) -> HashMap<String, Ballot> {
    ballots.iter().map(|b| (b.id.clone(), b.clone())).collect()
}

/// A counter of `/api/v1/status`.
fn count(status: &serde_json::Value, name: &str) -> u64 {
    status[name]
        .as_u64()
        .unwrap_or_else(|| panic!("no number {name:?} in the status {status}"))
}
