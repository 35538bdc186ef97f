//! Access codes, the campaign's intake rules and its records, on SQLite and on
//! PostgreSQL (a fresh database through PINGYI_TEST_POSTGRES, which ./test.sh sets):
//! codes taken once, refusals with their reasons, rate limits, the codes never kept in
//! clear, head counts; and the console's codes, attendance and sources routes and the
//! devices' heartbeat over real HTTP.

mod common;

use std::time::Duration;

use analysis::access_code::AccessCode;
use analysis::synth::Generator;
use analysis::{Ballot, Form};
use pingyi_server::auth::hash_password;
use pingyi_server::store::{
    Admission, Database, FormRecord, Incoming, Outcome, RateLimits, Reason, Store,
};
use pingyi_server::{Config, Limits, Server};
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// A database for one test (the SQLite folder removed at the end).
struct TestDb {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh PostgreSQL database of this test's own.
async fn fresh_postgres(test: &str) -> TestDb {
    TestDb {
        db: Database::Postgres(common::fresh_postgres_url(&format!("codes_{test}")).await),
        _dir: None,
    }
}

fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    TestDb {
        db: Database::Sqlite(dir.path().join("campaign.db")),
        _dir: Some(dir),
    }
}

/// Both backends, SQLite first.
async fn both(test: &str) -> Vec<TestDb> {
    vec![fresh_sqlite(), fresh_postgres(test).await]
}

fn form() -> Form {
    Form::default_form()
}

async fn open_with_form(db: &Database) -> Store {
    let store = Store::open(db).await.unwrap();
    let form = form();
    store
        .add_form(&FormRecord {
            id: form.id.clone(),
            version: form.version.clone(),
            json: analysis::form::DEFAULT_FORM_JSON.to_string(),
        })
        .await
        .unwrap();
    store
}

/// `n` generated ballots of `group` (drawn from the generator, so they pass the form).
fn ballots_of(group: &str, n: usize, seed: u64) -> Vec<Ballot> {
    let form = form();
    let mut generator = Generator::new(&form, seed);
    let found: Vec<Ballot> = (0..50_000)
        .map(|_| generator.ballot())
        .filter(|b| b.group == group)
        .take(n)
        .collect();
    assert_eq!(found.len(), n, "the generator makes ballots of {group}");
    found
}

/// A ballot brought with a code (or none) to a group that needs one.
fn with_code(b: &Ballot, code: Option<&AccessCode>) -> Incoming {
    let mut incoming = Incoming::from_ballot(b);
    incoming.admission = Admission {
        code_required: true,
        code: code.cloned(),
        address: "10.0.0.9".to_string(),
        limits: RateLimits::OFF,
    };
    incoming
}

/// Every text in every table of the database, one string per row.
async fn all_text(db: &Database) -> Vec<String> {
    match db {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).unwrap();
            let tables: Vec<String> = conn
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            let mut rows = Vec::new();
            for table in tables {
                let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let n = stmt.column_count();
                let found: Vec<String> = stmt
                    .query_map([], |r| {
                        Ok((0..n)
                            .map(|i| match r.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Text(t) => {
                                    String::from_utf8_lossy(t).to_string()
                                }
                                rusqlite::types::ValueRef::Blob(b) => {
                                    String::from_utf8_lossy(b).to_string()
                                }
                                other => format!("{other:?}"),
                            })
                            .collect::<Vec<_>>()
                            .join("|"))
                    })
                    .unwrap()
                    .collect::<Result<_, _>>()
                    .unwrap();
                rows.extend(found.into_iter().map(|r| format!("{table}: {r}")));
            }
            rows
        }
        Database::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            let tables: Vec<String> = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables \
                     WHERE table_schema = 'public'",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut rows = Vec::new();
            for table in tables {
                let sql = format!("SELECT CAST(t AS TEXT) FROM \"{table}\" t");
                for r in client.query(&sql, &[]).await.unwrap() {
                    rows.push(format!("{table}: {}", r.get::<_, String>(0)));
                }
            }
            rows
        }
    }
}

/// Asserts that no row of the database holds a code, with or without its hyphen.
async fn no_code_in_clear(db: &Database, codes: &[AccessCode]) {
    let rows = all_text(db).await;
    assert!(
        rows.iter().any(|r| r.starts_with("ballots: ")),
        "{db}: the walk sees the ballots"
    );
    for code in codes {
        for shown in [code.as_str().to_string(), code.to_string()] {
            let lower = shown.to_lowercase();
            let hit = rows
                .iter()
                .find(|r| r.contains(&shown) || r.contains(&lower));
            assert!(
                hit.is_none(),
                "{db}: the code {shown} is kept in clear: {hit:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_code_takes_one_ballot_and_every_other_use_is_refused_with_its_reason() {
    for t in both("once").await {
        let store = open_with_form(&t.db).await;
        let form = form();
        let (id, v) = (form.id.as_str(), form.version.as_str());
        let npc = store.issue_codes(id, v, "npc", 3).await.unwrap();
        let cppcc = store.issue_codes(id, v, "cppcc", 2).await.unwrap();
        assert_eq!((npc.batch, cppcc.batch), (1, 2), "{}", t.db);
        assert_eq!(npc.codes.len(), 3);
        let b = ballots_of("npc", 6, 7);
        let made_up = (0..)
            .map(|i| AccessCode::from_random([i, 3, 5, 7, 11, 13, 17]))
            .find(|c| !npc.codes.contains(c) && !cppcc.codes.contains(c))
            .unwrap();
        let verdicts = store
            .admit(vec![
                with_code(&b[0], Some(&npc.codes[0])),
                with_code(&b[1], Some(&npc.codes[0])),
                with_code(&b[2], None),
                with_code(&b[3], Some(&made_up)),
                with_code(&b[4], Some(&cppcc.codes[0])),
            ])
            .await
            .unwrap();
        assert_eq!(
            verdicts,
            vec![
                Ok(Outcome::Stored),
                Err(Reason::CodeUsed),
                Err(Reason::CodeMissing),
                Err(Reason::CodeInvalid),
                Err(Reason::CodeInvalid),
            ],
            "{}",
            t.db
        );
        // Resent after delivery: the same ballot, its code used by itself.
        let again = store
            .admit(vec![with_code(&b[0], Some(&npc.codes[0]))])
            .await
            .unwrap();
        assert_eq!(again, vec![Ok(Outcome::AlreadyStored)], "{}", t.db);
        // The other codes still work once each.
        let later = store
            .admit(vec![
                with_code(&b[5], Some(&npc.codes[1])),
                with_code(&b[1], Some(&npc.codes[1])),
            ])
            .await
            .unwrap();
        assert_eq!(
            later,
            vec![Ok(Outcome::Stored), Err(Reason::CodeUsed)],
            "{}",
            t.db
        );

        let counts = store.counts().await.unwrap();
        assert_eq!(
            (counts.ballots, counts.repeats, counts.refused),
            (2, 1, 5),
            "{}",
            t.db
        );
        let sources = store.sources(id, v).await.unwrap();
        let refused: Vec<(&str, u64)> = sources
            .refused_by_reason
            .iter()
            .map(|r| (r.reason, r.count))
            .collect();
        assert_eq!(
            refused,
            vec![
                ("invalid", 0),
                ("closed", 0),
                ("code_missing", 1),
                ("code_invalid", 2),
                ("code_used", 2),
                ("rate_limited", 0),
            ],
            "{}",
            t.db
        );
        let heads = store.head_counts(id, v).await.unwrap();
        assert_eq!(heads["npc"].issued, Some(3), "{}", t.db);
        assert_eq!(heads["npc"].returned, Some(2), "{}", t.db);
        assert_eq!(heads["cppcc"].issued, Some(2), "{}", t.db);
        assert_eq!(heads["cppcc"].returned, Some(0), "{}", t.db);
        assert_eq!(heads["npc"].present, None, "{}", t.db);

        let all: Vec<AccessCode> = npc.codes.iter().chain(&cppcc.codes).cloned().collect();
        no_code_in_clear(&t.db, &all).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_ballots_sent_at_once_with_one_code_store_exactly_one() {
    for t in both("race").await {
        let store = open_with_form(&t.db).await;
        let form = form();
        let issued = store
            .issue_codes(&form.id, &form.version, "npc", 1)
            .await
            .unwrap();
        let code = issued.codes[0].clone();
        let ballots = ballots_of("npc", 8, 11);
        let tasks: Vec<_> = ballots
            .iter()
            .map(|b| {
                let store = store.clone();
                let incoming = with_code(b, Some(&code));
                tokio::spawn(async move { store.admit(vec![incoming]).await.unwrap() })
            })
            .collect();
        let mut verdicts = Vec::new();
        for task in tasks {
            verdicts.extend(tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap());
        }
        let stored = verdicts
            .iter()
            .filter(|v| **v == Ok(Outcome::Stored))
            .count();
        let used = verdicts
            .iter()
            .filter(|v| **v == Err(Reason::CodeUsed))
            .count();
        assert_eq!((stored, used), (1, 7), "{}: {verdicts:?}", t.db);
        assert_eq!(store.counts().await.unwrap().ballots, 1, "{}", t.db);
        let heads = store.head_counts(&form.id, &form.version).await.unwrap();
        assert_eq!(heads["npc"].returned, Some(1), "{}", t.db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_closed_campaign_refuses_new_ballots_but_answers_resent_ones() {
    for t in both("closed").await {
        let store = open_with_form(&t.db).await;
        let form = form();
        let b = ballots_of("public", 2, 3);
        let first = store
            .admit(vec![Incoming::from_ballot(&b[0])])
            .await
            .unwrap();
        assert_eq!(first, vec![Ok(Outcome::Stored)]);
        store.close(&form.id, &form.version, "wang").await.unwrap();
        let after = store
            .admit(vec![
                Incoming::from_ballot(&b[1]),
                Incoming::from_ballot(&b[0]),
            ])
            .await
            .unwrap();
        assert_eq!(
            after,
            vec![Err(Reason::Closed), Ok(Outcome::AlreadyStored)],
            "{}",
            t.db
        );
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.ballots, counts.refused), (1, 1), "{}", t.db);
    }
}

/// A public ballot from `device`, submitted at `submitted_at`, over HTTP from `address`.
fn public(b: &Ballot, device: &str, submitted_at: &str, limits: RateLimits) -> Incoming {
    let mut b = b.clone();
    b.device_id = device.to_string();
    b.submitted_at = submitted_at.to_string();
    let mut incoming = Incoming::from_ballot(&b);
    incoming.admission = Admission {
        address: "192.168.1.31".to_string(),
        limits,
        ..Admission::default()
    };
    incoming
}

fn hours_ago(hours: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    analysis::time::format_rfc3339(now - hours * 3_600_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn open_groups_are_limited_per_device_hour_and_a_day_kept_offline_is_not() {
    for t in both("limits").await {
        let store = open_with_form(&t.db).await;
        let form = form();
        let limits = RateLimits {
            per_device: 3,
            per_address: 0,
        };
        let b = ballots_of("public", 14, 5);
        // One device, five ballots submitted in the same hour: three taken.
        let same_hour = hours_ago(0);
        let burst: Vec<Incoming> = b[..5]
            .iter()
            .map(|b| public(b, "kiosk-a", &same_hour, limits))
            .collect();
        let verdicts = store.admit(burst).await.unwrap();
        assert_eq!(
            verdicts,
            vec![
                Ok(Outcome::Stored),
                Ok(Outcome::Stored),
                Ok(Outcome::Stored),
                Err(Reason::RateLimited),
                Err(Reason::RateLimited),
            ],
            "{}",
            t.db
        );
        // Another kiosk delivers a day kept offline at once: three ballots in each of
        // three hours, all taken, as each counts in the hour it was submitted.
        let day: Vec<Incoming> = b[5..14]
            .iter()
            .enumerate()
            .map(|(i, b)| public(b, "kiosk-b", &hours_ago(20 - (i / 3) as i64 * 3), limits))
            .collect();
        let verdicts = store.admit(day).await.unwrap();
        assert!(
            verdicts.iter().all(|v| *v == Ok(Outcome::Stored)),
            "{}: {verdicts:?}",
            t.db
        );
        let sources = store.sources(&form.id, &form.version).await.unwrap();
        let device = |id: &str| {
            sources
                .devices
                .iter()
                .find(|d| d.device_id == id)
                .map(|d| (d.ballots, d.refused, d.address.clone()))
        };
        let here = Some("192.168.1.31".to_string());
        assert_eq!(device("kiosk-a"), Some((3, 2, here.clone())), "{}", t.db);
        assert_eq!(device("kiosk-b"), Some((9, 0, here)), "{}", t.db);
        assert_eq!(sources.addresses.len(), 1, "{}", t.db);
        assert_eq!(
            (sources.addresses[0].ballots, sources.addresses[0].refused),
            (12, 2),
            "{}",
            t.db
        );
        let limited = sources
            .refused_by_reason
            .iter()
            .find(|r| r.reason == "rate_limited")
            .unwrap();
        assert_eq!(limited.count, 2, "{}", t.db);
        // A ballot of a code group is not limited.
        let issued = store
            .issue_codes(&form.id, &form.version, "npc", 1)
            .await
            .unwrap();
        let deputy = ballots_of("npc", 1, 9);
        let mut incoming = public(&deputy[0], "kiosk-a", &same_hour, limits);
        incoming.admission.code_required = true;
        incoming.admission.code = Some(issued.codes[0].clone());
        assert_eq!(
            store.admit(vec![incoming]).await.unwrap(),
            vec![Ok(Outcome::Stored)],
            "{}",
            t.db
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn attendance_is_recorded_replaced_and_read_as_head_counts_also_by_the_cli_reader() {
    for t in both("attendance").await {
        let store = open_with_form(&t.db).await;
        let form = form();
        let (id, v) = (form.id.as_str(), form.version.as_str());
        store
            .record_attendance(id, v, "npc", 40, Some(60), "wang")
            .await
            .unwrap();
        let row = store
            .record_attendance(id, v, "npc", 45, Some(60), "li")
            .await
            .unwrap();
        assert_eq!(
            (row.present, row.members, row.recorded_by.as_str()),
            (45, Some(60), "li")
        );
        store
            .record_attendance(id, v, "cppcc", 30, None, "li")
            .await
            .unwrap();
        store.issue_codes(id, v, "npc", 50).await.unwrap();
        let rows = store.attendance(id, v).await.unwrap();
        assert_eq!(rows.len(), 2, "{}", t.db);
        let heads = store.head_counts(id, v).await.unwrap();
        assert_eq!(heads["npc"].present, Some(45), "{}", t.db);
        assert_eq!(heads["npc"].members, Some(60), "{}", t.db);
        assert_eq!(heads["npc"].issued, Some(50), "{}", t.db);
        assert_eq!(heads["npc"].returned, Some(0), "{}", t.db);
        assert_eq!(heads["cppcc"].present, Some(30), "{}", t.db);
        assert_eq!(heads["cppcc"].issued, None, "{}", t.db);
        let db = t.db.clone();
        let (id, v) = (id.to_string(), v.to_string());
        let read = tokio::task::spawn_blocking(move || {
            let mut reader = pingyi_server::store::Reader::open(&db).unwrap();
            reader.head_counts(&id, &v).unwrap()
        })
        .await
        .unwrap();
        assert_eq!(read, heads, "{}", t.db);
    }
}

/// The real server on a free port, over the database given.
struct TestServer {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start(database: &Database, rates: RateLimits) -> (TestServer, Store) {
        let dir = tempfile::tempdir().unwrap();
        let site = common::placeholder_site(dir.path());
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: Vec::new(),
            database: database.clone(),
            site,
            tls: None,
            limits: Limits {
                rates,
                ..Limits::default()
            },
            dashboard: Default::default(),
        };
        let server = Server::bind(config).await.expect("the server starts");
        let url = server.url().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let store = Store::open(database).await.unwrap();
        let s = TestServer {
            url,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        };
        (s, store)
    }

    fn api(&self, path: &str) -> String {
        format!("{}api/v1/{path}", self.url)
    }

    fn campaign(&self, rest: &str) -> String {
        let form = form();
        self.api(&format!(
            "admin/campaigns/{}/{}/{rest}",
            form.id, form.version
        ))
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap();
    }
}

fn client() -> reqwest::Client {
    common::client(PATIENCE)
}

/// An official of `role` signed in; the cookie to send.
async fn official(
    c: &reqwest::Client,
    s: &TestServer,
    store: &Store,
    name: &str,
    role: &str,
) -> String {
    let hash = hash_password("correct horse").unwrap();
    assert!(store.add_user(name, role, &hash).await.unwrap());
    let r = c
        .post(s.api("admin/session"))
        .json(&json!({ "name": name, "password": "correct horse" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// Sends a request; the status, the content type and the body.
async fn send(
    c: &reqwest::Client,
    method: Method,
    url: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String, Vec<u8>) {
    let mut r = c.request(method, url);
    if let Some(cookie) = cookie {
        r = r.header(COOKIE, cookie);
    }
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    let kind = r
        .headers()
        .get(CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, r.bytes().await.unwrap().to_vec())
}

async fn send_json(
    c: &reqwest::Client,
    method: Method,
    url: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let (status, _, bytes) = send(c, method, url, cookie, body).await;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, value)
}

/// A ballot of `group` as JSON, with `code` as typed (or none), from `device`.
fn ballot_json(b: &Ballot, code: Option<&str>, device: &str) -> Value {
    let mut v = serde_json::to_value(b).unwrap();
    v["device_id"] = json!(device);
    if let Some(code) = code {
        v["access_code"] = json!(code);
    }
    v
}

async fn codes_over_http(t: TestDb) {
    let (s, store) = TestServer::start(&t.db, RateLimits::default()).await;
    let c = client();
    let admin = official(&c, &s, &store, "wang", "admin").await;
    let (status, issued) = send_json(
        &c,
        Method::POST,
        &s.campaign("codes"),
        Some(&admin),
        Some(json!({ "group": "npc", "count": 3 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}: {issued}", t.db);
    let codes: Vec<AccessCode> = issued["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| AccessCode::parse(c.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!((issued["group"].as_str(), codes.len()), (Some("npc"), 3));
    let (_, other) = send_json(
        &c,
        Method::POST,
        &s.campaign("codes"),
        Some(&admin),
        Some(json!({ "group": "cppcc", "count": 1 })),
    )
    .await;
    let cppcc_code = other["codes"][0].as_str().unwrap().to_string();

    let npc = ballots_of("npc", 6, 21);
    let cppcc = ballots_of("cppcc", 1, 22);
    // Typed as a person would: lower case, a space instead of the hyphen.
    let typed = codes[0].as_str().to_lowercase();
    let typed = format!("{} {}", &typed[..4], &typed[4..]);
    let batch = json!({ "ballots": [
        ballot_json(&npc[0], Some(&typed), "kiosk-1"),
        ballot_json(&npc[1], Some(&codes[0].to_string()), "kiosk-1"),
        ballot_json(&npc[2], None, "kiosk-1"),
        ballot_json(&npc[3], Some("HJKL-MNP"), "kiosk-1"),
        ballot_json(&cppcc[0], Some(&codes[1].to_string()), "kiosk-1"),
    ]});
    let (status, body) = send_json(&c, Method::POST, &s.api("ballots"), None, Some(batch)).await;
    assert_eq!(status, StatusCode::OK, "{}: {body}", t.db);
    let results = body["results"].as_array().unwrap();
    let seen: Vec<(&str, Option<&str>)> = results
        .iter()
        .map(|r| (r["status"].as_str().unwrap(), r["reason"].as_str()))
        .collect();
    assert_eq!(
        seen,
        vec![
            ("stored", None),
            ("refused", Some("code_used")),
            ("refused", Some("code_missing")),
            ("refused", Some("invalid")),
            ("refused", Some("code_invalid")),
        ],
        "{}: {body}",
        t.db
    );
    assert_eq!(results[1]["problems"][0]["path"], "[1].access_code");
    assert!(results[1]["problems"][0]["message"]
        .as_str()
        .unwrap()
        .contains("already used"));
    assert_eq!(results[3]["problems"][0]["path"], "[3].access_code");
    assert_eq!(
        (body["stored"].as_u64(), body["refused"].as_u64()),
        (Some(1), Some(4))
    );

    // Resent after delivery, with its code: already stored, not refused.
    let url = |b: &Ballot| s.api(&format!("ballots/{}", b.id));
    let (status, body) = send_json(
        &c,
        Method::PUT,
        &url(&npc[0]),
        None,
        Some(ballot_json(&npc[0], Some(&typed), "kiosk-1")),
    )
    .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("already_stored"))
    );
    // A refused ballot comes back with a good code: stored.
    let (status, _) = send_json(
        &c,
        Method::PUT,
        &url(&npc[1]),
        None,
        Some(ballot_json(&npc[1], Some(&codes[1].to_string()), "kiosk-1")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{}", t.db);
    let (status, body) = send_json(
        &c,
        Method::PUT,
        &url(&npc[4]),
        None,
        Some(ballot_json(&npc[4], Some(&codes[0].to_string()), "kiosk-1")),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{}: {body}", t.db);
    assert_eq!(body["reason"], "code_used", "{}: {body}", t.db);

    let viewer = official(&c, &s, &store, "li", "viewer").await;
    let (status, counts) =
        send_json(&c, Method::GET, &s.campaign("codes"), Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        counts["groups"],
        json!([
            { "group": "npc", "issued": 3, "used": 2 },
            { "group": "cppcc", "issued": 1, "used": 0 },
        ]),
        "{}",
        t.db
    );
    s.stop().await;

    let mut all = codes.clone();
    all.push(AccessCode::parse(&cppcc_code).unwrap());
    no_code_in_clear(&t.db, &all).await;
    let rows = all_text(&t.db).await;
    // The field in stored JSON (PostgreSQL's row text doubles the quotes), and the
    // mistyped code.
    for needle in [
        "\"access_code\":",
        "\"\"access_code\"\":",
        "HJKL-MNP",
        "hjkl-mnp",
    ] {
        let hit = rows.iter().find(|r| {
            (r.starts_with("ballots: ") || r.starts_with("refusals: ")) && r.contains(needle)
        });
        assert!(hit.is_none(), "{}: {needle} is kept: {hit:?}", t.db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_http_a_code_is_taken_once_refusals_say_why_and_no_code_is_kept_sqlite() {
    codes_over_http(fresh_sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn over_http_a_code_is_taken_once_refusals_say_why_and_no_code_is_kept_postgres() {
    codes_over_http(fresh_postgres("http").await).await;
}

async fn console_routes(t: TestDb) {
    let rates = RateLimits {
        per_device: 2,
        per_address: 0,
    };
    let (s, store) = TestServer::start(&t.db, rates).await;
    let c = client();
    let admin = official(&c, &s, &store, "wang", "admin").await;
    let viewer = official(&c, &s, &store, "li", "viewer").await;
    let issue = |count: i64, group: &str| json!({ "group": group, "count": count });

    // Who may issue, and what is refused.
    let (status, _) = send_json(
        &c,
        Method::POST,
        &s.campaign("codes"),
        None,
        Some(issue(2, "npc")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = send_json(
        &c,
        Method::POST,
        &s.campaign("codes"),
        Some(&viewer),
        Some(issue(2, "npc")),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for (body, expected) in [
        (issue(0, "npc"), "expected 1 to 2000"),
        (issue(2001, "npc"), "expected 1 to 2000"),
        (issue(2, "public"), "votes without codes"),
        (issue(2, "nobody"), "has no group"),
    ] {
        let (status, answer) = send_json(
            &c,
            Method::POST,
            &s.campaign("codes"),
            Some(&admin),
            Some(body),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert!(
            answer["error"].as_str().unwrap().contains(expected),
            "{answer}"
        );
    }
    let (status, body) = send_json(
        &c,
        Method::POST,
        &s.api("admin/campaigns/nothing/1/codes"),
        Some(&admin),
        Some(issue(2, "npc")),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // The CSV and the PDF sheet.
    let (status, kind, csv) = send(
        &c,
        Method::POST,
        &s.campaign("codes?format=csv"),
        Some(&admin),
        Some(issue(5, "npc")),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "text/csv; charset=utf-8")
    );
    let csv = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "group,code,slip");
    assert_eq!(lines.len(), 6, "{csv}");
    for (i, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[0], "npc");
        assert!(AccessCode::parse(fields[1]).is_ok(), "{line}");
        assert_eq!(fields[2], (i + 1).to_string());
    }
    let r = c
        .post(s.campaign("codes?format=pdf"))
        .header(COOKIE, &admin)
        .json(&issue(9, "cppcc"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/pdf");
    let disposition = r.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    let pdf = r.bytes().await.unwrap();
    assert!(pdf.starts_with(b"%PDF-"));
    let (_, counts) = send_json(&c, Method::GET, &s.campaign("codes"), Some(&viewer), None).await;
    assert_eq!(
        counts["groups"][0],
        json!({ "group": "npc", "issued": 5, "used": 0 })
    );
    assert_eq!(
        counts["groups"][1],
        json!({ "group": "cppcc", "issued": 9, "used": 0 })
    );
    let (_, audit) = send_json(
        &c,
        Method::GET,
        &s.api("admin/audit?limit=20"),
        Some(&admin),
        None,
    )
    .await;
    let issued: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "issue_codes" && e["user"] == "wang")
        .map(|e| e["detail"].as_str().unwrap())
        .collect();
    assert_eq!(issued.len(), 2, "{audit}");
    assert!(
        issued.iter().any(|d| d.contains("9 codes for group cppcc")),
        "{issued:?}"
    );

    // Attendance.
    let at = |group: &str| s.campaign(&format!("attendance/{group}"));
    let (status, row) = send_json(
        &c,
        Method::PUT,
        &at("npc"),
        Some(&admin),
        Some(json!({ "present": 45, "members": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    assert_eq!(
        (row["present"].as_u64(), row["members"].as_u64()),
        (Some(45), Some(60))
    );
    assert_eq!(row["recorded_by"], "wang");
    let (status, body) = send_json(
        &c,
        Method::PUT,
        &at("npc"),
        Some(&admin),
        Some(json!({ "present": 70, "members": 60 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = send_json(
        &c,
        Method::PUT,
        &at("npc"),
        Some(&viewer),
        Some(json!({ "present": 1 })),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = send_json(
        &c,
        Method::PUT,
        &at("nobody"),
        Some(&admin),
        Some(json!({ "present": 1 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, list) = send_json(
        &c,
        Method::GET,
        &s.campaign("attendance"),
        Some(&viewer),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["groups"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["groups"][0]["present"], 45);

    // A heartbeat, then public ballots past the device's hourly limit.
    let form = form();
    let beat = json!({ "waiting": 3, "form_id": form.id, "form_version": form.version });
    let (status, _, _) = send(&c, Method::PUT, &s.api("devices/kiosk-7"), None, Some(beat)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let wrong = json!({ "waiting": 3, "form_id": "nothing", "form_version": "1" });
    let (status, _) = send_json(
        &c,
        Method::PUT,
        &s.api("devices/kiosk-7"),
        None,
        Some(wrong),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let public = ballots_of("public", 3, 31);
    let batch = json!({ "ballots": public.iter().map(|b| ballot_json(b, None, "kiosk-7")).collect::<Vec<_>>() });
    let (_, body) = send_json(&c, Method::POST, &s.api("ballots"), None, Some(batch)).await;
    let reasons: Vec<Option<&str>> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        vec![None, None, Some("rate_limited")],
        "{}: {body}",
        t.db
    );
    let (status, sources) =
        send_json(&c, Method::GET, &s.campaign("sources"), Some(&viewer), None).await;
    assert_eq!(status, StatusCode::OK);
    let device = &sources["devices"][0];
    assert_eq!(device["device_id"], "kiosk-7", "{sources}");
    assert_eq!(device["address"], "127.0.0.1");
    assert_eq!(device["waiting"], 3);
    assert_eq!(
        (device["ballots"].as_u64(), device["refused"].as_u64()),
        (Some(2), Some(1))
    );
    assert!(device["last_contact"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        sources["addresses"],
        json!([{ "address": "127.0.0.1", "ballots": 2, "refused": 1 }])
    );
    let limited = sources["refused_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["reason"] == "rate_limited")
        .unwrap()
        .clone();
    assert_eq!(limited["count"], 1);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_issues_codes_records_attendance_and_shows_sources_sqlite() {
    console_routes(fresh_sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_issues_codes_records_attendance_and_shows_sources_postgres() {
    console_routes(fresh_postgres("console").await).await;
}
