//! Drills: requests a careless or hostile client sends. A ballot of a form the server does
//! not collect, a body that is not JSON or not a batch, a 50 MB body and 10,000 ballots in
//! one batch are each refused with a message saying what was wrong; the good ballots of
//! a batch are kept; and `/api/v1/health` answers 200 after each.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::{json, Value};

use crate::harness::{self, Db, Server};
use crate::{count, one_drill_at_a_time};

struct Fixture {
    server: Server,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

fn start() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::sqlite(dir.path(), "campaign");
    Fixture {
        server: Server::start(&db.url, dir.path(), &[]),
        http: harness::http_client(Duration::from_secs(120)),
        _dir: dir,
    }
}

impl Fixture {
    async fn post(&self, content_type: &str, body: impl Into<Vec<u8>>) -> harness::Reply {
        harness::post_raw(&self.http, &self.server.url, content_type, body.into())
            .await
            .expect("the server answers")
    }

    async fn still_healthy(&mut self, after: &str) {
        assert!(self.server.alive(), "the server died after {after}");
        let r = harness::get(&self.http, &self.server.url, "/api/v1/health")
            .await
            .unwrap_or_else(|e| panic!("/api/v1/health after {after}: {e}"));
        assert_eq!(r.status, 200, "/api/v1/health after {after}: {r:?}");
    }

    async fn ballots_stored(&self) -> u64 {
        count(
            &harness::status(&self.http, &self.server.url).await,
            "ballots",
        )
    }
}

fn contains_all(message: &str, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "{message:?} does not say {p:?}");
    }
}

#[tokio::test]
async fn ballot_of_an_unknown_form_is_refused_and_the_rest_of_the_batch_kept() {
    let _turn = one_drill_at_a_time().await;
    let mut f = start();
    let good = harness::ballots(41, 3);
    let mut stranger = harness::ballots(42, 1).remove(0);
    stranger.form_id = "no-such-form".into();
    stranger.form_version = "9".into();
    let batch = json!({ "ballots": [good[0], stranger, good[1], 42, good[2]] });
    let r = f.post("application/json", batch.to_string()).await;
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(
        r.statuses(),
        ["stored", "refused", "stored", "refused", "stored"],
        "{r:?}"
    );
    let results = &r.body["results"];
    assert_eq!(results[1]["id"], stranger.id.as_str());
    let why = results[1]["problems"][0]["message"]
        .as_str()
        .unwrap_or_default();
    contains_all(why, &["no-such-form", "not collected", "minzhu-pingyi"]);
    // Not a ballot at all: refused with its place in the batch, with no id to give.
    assert_eq!(results[3]["id"], "", "{r:?}");
    let path = results[3]["problems"][0]["path"]
        .as_str()
        .unwrap_or_default();
    assert!(
        path.starts_with("[3]"),
        "the refusal names [3], not {path:?}"
    );
    assert_eq!(
        (count(&r.body, "stored"), count(&r.body, "refused")),
        (3, 2)
    );
    let status = harness::status(&f.http, &f.server.url).await;
    assert_eq!(count(&status, "ballots"), 3, "{status}");
    assert_eq!(count(&status, "refused"), 2, "{status}");
    f.still_healthy("a batch with refused ballots").await;
}

#[tokio::test]
async fn malformed_bodies_are_refused_saying_where_and_what() {
    let _turn = one_drill_at_a_time().await;
    let mut f = start();
    let r = f
        .post(
            "application/json",
            "{\"ballots\": [\n  {\"id\": \"a\",, }\n]}",
        )
        .await;
    assert_eq!(r.status, 400, "{r:?}");
    contains_all(r.error(), &["line 2", "column"]);
    f.still_healthy("malformed JSON").await;

    let r = f.post("application/json", r#"{"votes": []}"#).await;
    assert_eq!(r.status, 400, "{r:?}");
    contains_all(r.error(), &["ballots"]);
    f.still_healthy("a body without ballots").await;

    let r = f.post("text/plain", "ballots, please").await;
    assert_eq!(r.status, 415, "{r:?}");
    assert!(r.error().to_lowercase().contains("json"), "{r:?}");
    f.still_healthy("a body that is not JSON").await;
    assert_eq!(f.ballots_stored().await, 0);
}

#[tokio::test]
async fn fifty_megabyte_body_is_refused_with_413_and_the_server_stays_up() {
    let _turn = one_drill_at_a_time().await;
    let mut f = start();
    let fifty_mb = 50 << 20;
    // A client that announces its body and waits for the go-ahead, as HTTP intends.
    let addr = f.server.url.trim_start_matches("http://").to_string();
    let (code, body) = tokio::task::spawn_blocking(move || announce_body(&addr, fifty_mb))
        .await
        .unwrap();
    assert_eq!(code, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    let message = body["error"].as_str().unwrap_or_default();
    contains_all(message, &["8 MiB"]);
    f.still_healthy("a 50 MB body announced").await;

    // A client that sends all 50 MB regardless: refused, or cut off when the server
    // stops reading; never stored, never the end of the server.
    let mut body = br#"{"ballots": [""#.to_vec();
    body.resize(fifty_mb, b'x');
    if let Ok(r) = harness::post_raw(&f.http, &f.server.url, "application/json", body).await {
        assert_eq!(r.status, 413, "{r:?}");
    }
    f.still_healthy("a 50 MB body sent").await;
    assert_eq!(f.ballots_stored().await, 0);
}

#[tokio::test]
async fn ten_thousand_ballots_in_one_batch_are_refused_with_422() {
    let _turn = one_drill_at_a_time().await;
    let mut f = start();
    // Without answers, so the 10,000 fit in the 8 MiB a body may have and the refusal is
    // about their number.
    let mut many = harness::ballots(43, 10_000);
    for b in &mut many {
        b.answers.clear();
    }
    let r = harness::submit(&f.http, &f.server.url, &many)
        .await
        .unwrap();
    assert_eq!(r.status, 422, "{r:?}");
    contains_all(r.error(), &["1000", "10000"]);
    f.still_healthy("10,000 ballots in one batch").await;

    let r = f.post("application/json", r#"{"ballots": []}"#).await;
    assert_eq!(r.status, 422, "{r:?}");
    assert!(!r.error().is_empty());
    f.still_healthy("an empty batch").await;
    assert_eq!(
        f.ballots_stored().await,
        0,
        "nothing of a refused batch is stored"
    );
}

/// POSTs `len` bytes with `Expect: 100-continue`: the body goes out only if the server
/// asks for it. Returns the final status and body.
fn announce_body(addr: &str, len: usize) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    write!(
        s,
        "POST /api/v1/ballots HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {len}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = Vec::new();
    loop {
        let (code, head_end, body_len) = read_head(&mut s, &mut buf);
        if code == 100 {
            buf.drain(..head_end);
            let chunk = vec![b' '; 1 << 20];
            for _ in 0..len >> 20 {
                if s.write_all(&chunk).is_err() {
                    break;
                }
            }
            continue;
        }
        while body_len.is_none_or(|n| buf.len() < head_end + n) {
            let mut more = [0u8; 4096];
            match s.read(&mut more) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&more[..n]),
            }
        }
        let end = body_len.map_or(buf.len(), |n| (head_end + n).min(buf.len()));
        return (
            code,
            String::from_utf8_lossy(&buf[head_end..end]).into_owned(),
        );
    }
}

/// Reads until a whole response head is in `buf`: its status, where the body starts, and
/// its Content-Length when it has one.
fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> (u16, usize, Option<usize>) {
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..i]).to_string();
            let code = head
                .split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
            let length = head.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            });
            return (code, i + 4, length);
        }
        let mut more = [0u8; 4096];
        let n = s.read(&mut more).expect("the server answers");
        assert!(n > 0, "the server closed the connection without an answer");
        buf.extend_from_slice(&more[..n]);
    }
}
