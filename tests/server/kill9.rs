//! Drill: kill -9 the server in the middle of a burst of submissions, then restart it.
//!
//! Eight clients send the campaign's ballots as batches of 1–40 and as single PUTs, the
//! way devices sync their outboxes. Once 800 ballots are acknowledged the server gets
//! SIGKILL with requests in flight. The database as the crash left it must hold every
//! acknowledged ballot exactly once (ballots committed whose answer was lost may be there
//! too); after the restart the clients' retries fill in the rest, and the final count is
//! the number of distinct ballots.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use analysis::synth::SplitMix64;
use analysis::Ballot;

use crate::harness::{self, Db, Server};
use crate::{by_id, check_export, count, export, one_drill_at_a_time, wait_until};

const BALLOTS: usize = 2400;
const CLIENTS: usize = 8;
const KILL_AFTER_ACKS: usize = 800;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_burst_loses_no_acknowledged_ballot_sqlite() {
    let _turn = one_drill_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path(), "campaign");
    drill(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_mid_burst_loses_no_acknowledged_ballot_postgres() {
    let _turn = one_drill_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::postgres("kill9").await;
    drill(&db, dir.path()).await;
    db.remove().await;
}

/// What the clients and the drill share.
struct Burst {
    /// The server's current base URL (a restart gets a new port).
    url: RwLock<String>,
    /// Every id the server answered `stored` or `already_stored` for.
    acked: Mutex<HashSet<String>>,
    acks: AtomicUsize,
    /// Requests sent and not yet answered.
    in_flight: AtomicUsize,
    /// `already_stored` answers the clients received.
    repeats: AtomicU64,
    /// Set once the server is killed; then each client notes that it saw it gone.
    killed: AtomicBool,
    saw_down: Vec<AtomicBool>,
    finished: AtomicUsize,
}

async fn drill(db: &Db, dir: &std::path::Path) {
    let mut server = Server::start(&db.url, dir, &[]);
    let ballots = harness::ballots(9, BALLOTS);
    let sent = by_id(&ballots);
    let burst = Arc::new(Burst {
        url: RwLock::new(server.url.clone()),
        acked: Mutex::new(HashSet::new()),
        acks: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        repeats: AtomicU64::new(0),
        killed: AtomicBool::new(false),
        saw_down: (0..CLIENTS).map(|_| AtomicBool::new(false)).collect(),
        finished: AtomicUsize::new(0),
    });
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let queue: VecDeque<Ballot> = ballots.iter().skip(c).step_by(CLIENTS).cloned().collect();
        clients.spawn(client(c, queue, burst.clone()));
    }

    let acked_before_kill = kill_mid_burst(&mut server, &burst).await;
    let after_crash = export(&db.url, dir, "after-crash");
    check_after_crash(&after_crash, &sent, &acked_before_kill);

    server.restart();
    *burst.url.write().unwrap() = server.url.clone();
    while let Some(done) = tokio::time::timeout(Duration::from_secs(600), clients.join_next())
        .await
        .expect("the clients finish within 10 minutes of the restart")
    {
        done.expect("a client failed");
    }
    check_status(&server, &burst).await;
    server.kill();
    let at_end = export(&db.url, dir, "at-end");
    let ids = check_export(&at_end, &sent);
    assert_eq!(ids.len(), BALLOTS, "the export holds every ballot once");
    assert_eq!(burst.acked.lock().unwrap().len(), BALLOTS);
}

/// SIGKILL once 800 ballots are acknowledged, with requests in flight; returns the ids
/// acknowledged during the server's life.
async fn kill_mid_burst(server: &mut Server, burst: &Burst) -> HashSet<String> {
    let limit = Duration::from_secs(300);
    wait_until(
        "800 ballots are acknowledged and requests are in flight",
        limit,
        || {
            burst.acks.load(Ordering::SeqCst) >= KILL_AFTER_ACKS
                && burst.in_flight.load(Ordering::SeqCst) > 0
                || burst_over(burst)
        },
    )
    .await;
    assert!(
        !burst_over(burst),
        "the clients finished before {KILL_AFTER_ACKS} acknowledgements"
    );
    let in_flight = burst.in_flight.load(Ordering::SeqCst);
    server.kill();
    burst.killed.store(true, Ordering::SeqCst);
    // Answers already on their way may still be read; once every client has seen the
    // server gone, the set of acknowledged ids is final for this server's life.
    wait_until("every client has seen the server gone", limit, || {
        burst.saw_down.iter().all(|d| d.load(Ordering::SeqCst))
    })
    .await;
    let acked = burst.acked.lock().unwrap().clone();
    assert!(acked.len() >= KILL_AFTER_ACKS);
    eprintln!(
        "killed with {in_flight} requests in flight after {} acknowledgements",
        acked.len()
    );
    acked
}

/// The database as the crash left it holds every acknowledged ballot, each once and as
/// sent (ballots committed whose answer was lost may be there too).
fn check_after_crash(exported: &[Ballot], sent: &HashMap<String, Ballot>, acked: &HashSet<String>) {
    let held: HashSet<String> = check_export(exported, sent).into_iter().collect();
    eprintln!(
        "the crashed database holds {} ballots, {} of them committed but never acknowledged",
        held.len(),
        held.difference(acked).count()
    );
    let lost: Vec<&String> = acked.difference(&held).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged ballots are missing after kill -9, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
}

/// After the retries: the server counts every distinct ballot once, no conflict or
/// refusal, and every repeat the clients were told of.
async fn check_status(server: &Server, burst: &Burst) {
    let http = harness::http_client(Duration::from_secs(60));
    let status = harness::status(&http, &server.url).await;
    assert_eq!(count(&status, "ballots"), BALLOTS as u64, "{status}");
    assert_eq!(count(&status, "conflicts"), 0, "{status}");
    assert_eq!(count(&status, "refused"), 0, "{status}");
    // Repeats answered just before the kill may have been lost with their answer, so
    // the server may count more than the clients heard.
    assert!(count(&status, "repeats") >= burst.repeats.load(Ordering::SeqCst));
    let by_form: u64 = status["by_form"]
        .as_array()
        .expect("by_form")
        .iter()
        .map(|f| f["ballots"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(by_form, BALLOTS as u64, "{status}");
}

fn burst_over(burst: &Burst) -> bool {
    burst.finished.load(Ordering::SeqCst) == CLIENTS
}

/// One device syncing its outbox: batches of 1–40 and single PUTs (every third send),
/// retrying with back-off whatever was not acknowledged.
async fn client(me: usize, mut outbox: VecDeque<Ballot>, burst: Arc<Burst>) {
    let http = harness::http_client(Duration::from_secs(60));
    let mut rng = SplitMix64::new(me as u64 + 1);
    let mut backoff = Duration::from_millis(20);
    let mut round = 0usize;
    while !outbox.is_empty() {
        round += 1;
        let single = round % 3 == 0;
        let take = if single { 1 } else { 1 + rng.below(40) };
        let chunk: Vec<Ballot> = outbox.drain(..take.min(outbox.len())).collect();
        let url = burst.url.read().unwrap().clone();
        burst.in_flight.fetch_add(1, Ordering::SeqCst);
        let answer = if single {
            harness::put(&http, &url, &chunk[0])
                .await
                .map(|r| match r.status {
                    201 => vec!["stored".to_string()],
                    200 => vec!["already_stored".to_string()],
                    503 => vec![String::new()],
                    _ => panic!("PUT {}: {r:?}", chunk[0].id),
                })
        } else {
            harness::submit(&http, &url, &chunk)
                .await
                .map(|r| match r.status {
                    200 => r.statuses(),
                    503 => vec![String::new(); chunk.len()],
                    _ => panic!("POST of {} ballots: {r:?}", chunk.len()),
                })
        };
        burst.in_flight.fetch_sub(1, Ordering::SeqCst);
        let statuses = match answer {
            Ok(s) => s,
            Err(_) => {
                if burst.killed.load(Ordering::SeqCst) {
                    burst.saw_down[me].store(true, Ordering::SeqCst);
                }
                vec![String::new(); chunk.len()]
            }
        };
        assert_eq!(statuses.len(), chunk.len(), "one result per ballot");
        let mut retry = Vec::new();
        for (b, s) in chunk.into_iter().zip(statuses) {
            match s.as_str() {
                "stored" | "already_stored" => {
                    if s == "already_stored" {
                        burst.repeats.fetch_add(1, Ordering::SeqCst);
                    }
                    burst.acked.lock().unwrap().insert(b.id.clone());
                    burst.acks.fetch_add(1, Ordering::SeqCst);
                }
                "" => retry.push(b),
                other => panic!("ballot {} was answered {other:?}", b.id),
            }
        }
        if retry.is_empty() {
            backoff = Duration::from_millis(20);
        } else {
            for b in retry.into_iter().rev() {
                outbox.push_front(b);
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(500));
        }
    }
    burst.saw_down[me].store(true, Ordering::SeqCst);
    burst.finished.fetch_add(1, Ordering::SeqCst);
}
