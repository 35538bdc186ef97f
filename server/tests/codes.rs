//! Access codes, the campaign's intake rules and its records, on SQLite and on
//! PostgreSQL (a fresh database through PINGYI_TEST_POSTGRES, which ./test.sh sets):
//! codes taken once, refusals with their reasons, rate limits, the codes never kept in
//! clear, head counts; and the console's codes, attendance and sources routes and the
//! devices' heartbeat over real HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use analysis::access_code::AccessCode;
use analysis::synth::Generator;
use analysis::{Ballot, Form};
use pingyi_server::store::{
    Admission, Database, FormRecord, Incoming, Outcome, RateLimits, Reason, Store,
};

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A database for one test (the SQLite folder removed at the end).
struct TestDb {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh_postgres(test: &str) -> TestDb {
    let admin = std::env::var("PINGYI_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "PINGYI_TEST_POSTGRES is not set: these tests need a PostgreSQL server. Run ./test.sh, \
             or start a throw-away one with: eval \"$(tests/postgres.sh start)\""
        )
    });
    let name = format!(
        "pingyi_codes_{test}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PINGYI_TEST_POSTGRES={admin}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    let base = admin.split('?').next().unwrap();
    let after_scheme = base.find("://").unwrap() + 3;
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    TestDb {
        db: Database::Postgres(format!("{}/{name}", &base[..host_end])),
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
