//! Drill: the same batch sent several times at once (a device that resends before its
//! first answer came back, or two devices holding the same export). Each ballot must be
//! stored once: of the concurrent answers for it exactly one says `stored` and the others
//! `already_stored`, and the server's `repeats` counts those.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Barrier;

use crate::harness::{self, Db, Server};
use crate::{by_id, check_export, count, export, one_drill_at_a_time};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_batch_sent_concurrently_is_stored_once_sqlite() {
    let _turn = one_drill_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path(), "campaign");
    drill(&db, dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_batch_sent_concurrently_is_stored_once_postgres() {
    let _turn = one_drill_at_a_time().await;
    let dir = tempfile::tempdir().unwrap();
    let db = Db::postgres("dupes").await;
    drill(&db, dir.path()).await;
    db.remove().await;
}

const BATCH: usize = 50;

async fn drill(db: &Db, dir: &std::path::Path) {
    let mut server = Server::start(&db.url, dir, &[]);
    let http = harness::http_client(Duration::from_secs(120));
    let twice = harness::ballots(21, BATCH);
    let eight_times = harness::ballots(22, BATCH);
    let one = harness::ballots(23, 1).remove(0);

    same_batch_at_once(&http, &server.url, &twice, 2).await;
    same_batch_at_once(&http, &server.url, &eight_times, 8).await;
    same_ballot_put_at_once(&http, &server.url, &one, 8).await;

    let status = harness::status(&http, &server.url).await;
    assert_eq!(count(&status, "ballots"), 2 * BATCH as u64 + 1, "{status}");
    assert_eq!(
        count(&status, "repeats"),
        BATCH as u64 + 7 * BATCH as u64 + 7,
        "every already_stored answer is counted: {status}"
    );
    assert_eq!(count(&status, "conflicts"), 0, "{status}");

    server.kill();
    let all: Vec<_> = [twice, eight_times, vec![one]].concat();
    let ids = check_export(&export(&db.url, dir, "all"), &by_id(&all));
    assert_eq!(ids.len(), all.len(), "each ballot is stored once");
}

/// Sends `batch` `copies` times at once and checks that each ballot was stored by exactly
/// one of the requests.
async fn same_batch_at_once(
    http: &reqwest::Client,
    url: &str,
    batch: &[analysis::Ballot],
    copies: usize,
) {
    let start = Arc::new(Barrier::new(copies));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..copies {
        let (http, url, batch, start) =
            (http.clone(), url.to_string(), batch.to_vec(), start.clone());
        sends.spawn(async move {
            start.wait().await;
            harness::submit(&http, &url, &batch).await
        });
    }
    let mut replies = Vec::new();
    while let Some(r) = sends.join_next().await {
        let r = r.unwrap().expect("the server answers");
        assert_eq!(r.status, 200, "{r:?}");
        replies.push(r);
    }
    for (i, b) in batch.iter().enumerate() {
        let answers: Vec<String> = replies
            .iter()
            .map(|r| {
                assert_eq!(
                    r.body["results"][i]["id"],
                    b.id.as_str(),
                    "results keep request order"
                );
                r.statuses()[i].clone()
            })
            .collect();
        let stored = answers.iter().filter(|s| *s == "stored").count();
        let again = answers.iter().filter(|s| *s == "already_stored").count();
        assert_eq!(
            (stored, again),
            (1, copies - 1),
            "ballot {} sent {copies} times at once was answered {answers:?}",
            b.id
        );
    }
    let total = |field: &str| -> u64 { replies.iter().map(|r| count(&r.body, field)).sum() };
    assert_eq!(total("stored"), batch.len() as u64);
    assert_eq!(total("already_stored"), ((copies - 1) * batch.len()) as u64);
}

/// PUTs one ballot `copies` times at once: one 201 Created, the rest 200.
async fn same_ballot_put_at_once(
    http: &reqwest::Client,
    url: &str,
    ballot: &analysis::Ballot,
    copies: usize,
) {
    let start = Arc::new(Barrier::new(copies));
    let mut sends = tokio::task::JoinSet::new();
    for _ in 0..copies {
        let (http, url, b, start) = (http.clone(), url.to_string(), ballot.clone(), start.clone());
        sends.spawn(async move {
            start.wait().await;
            harness::put(&http, &url, &b).await
        });
    }
    let mut codes = Vec::new();
    while let Some(r) = sends.join_next().await {
        codes.push(r.unwrap().expect("the server answers").status);
    }
    codes.sort();
    let mut want = vec![200; copies - 1];
    want.push(201);
    assert_eq!(codes, want, "PUT of one ballot {copies} times at once");
}
