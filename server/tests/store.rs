//! The storage interface against real databases: every case runs on an SQLite file and
//! on a fresh PostgreSQL database (PINGYI_TEST_POSTGRES, which ./test.sh sets); the disk
//! full and read-only cases run on SQLite on a small tmpfs.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use analysis::synth::Generator;
use analysis::{Ballot, Form};
use pingyi_server::store::{
    Counts, Database, FormCount, FormRecord, Incoming, Outcome, Refusal, Store, StoreError,
};

/// A database for one test, removed at the end (the SQLite folder with it).
struct TestDb {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

async fn fresh_postgres(test: &str) -> TestDb {
    TestDb {
        db: Database::Postgres(common::fresh_postgres_url(test).await),
        _dir: None,
    }
}

fn fresh_sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temp dir");
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

fn form_record(form: &Form) -> FormRecord {
    FormRecord {
        id: form.id.clone(),
        version: form.version.clone(),
        json: analysis::form::DEFAULT_FORM_JSON.to_string(),
    }
}

fn ballots(n: usize, seed: u64) -> Vec<Ballot> {
    let form = form();
    let mut generator = Generator::new(&form, seed);
    (0..n).map(|_| generator.ballot()).collect()
}

/// The same ballot id with other content.
fn changed(b: &Ballot) -> Ballot {
    let mut other = b.clone();
    other.device_id = format!("{}-other", b.device_id);
    other
}

fn incoming(ballots: &[Ballot]) -> Vec<Incoming> {
    ballots.iter().map(Incoming::from_ballot).collect()
}

async fn open_with_form(db: &Database) -> Store {
    let store = Store::open(db)
        .await
        .unwrap_or_else(|e| panic!("open {db}: {e}"));
    store
        .add_form(&form_record(&form()))
        .await
        .expect("add form");
    store
}

fn one_form_count(n: u64) -> Vec<FormCount> {
    let form = form();
    vec![FormCount {
        id: form.id.clone(),
        version: form.version.clone(),
        ballots: n,
    }]
}

/// The stored ballots' ids, read straight from the database.
async fn stored_ids(db: &Database) -> BTreeSet<String> {
    rows(db, "SELECT response_id FROM ballots")
        .await
        .into_iter()
        .map(|mut r| r.remove(0))
        .collect()
}

/// Text columns of `sql`'s rows, read with the database's own client.
async fn rows(db: &Database, sql: &str) -> Vec<Vec<String>> {
    match db {
        Database::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).expect("open sqlite");
            let mut stmt = conn.prepare(sql).expect("prepare");
            let n = stmt.column_count();
            stmt.query_map([], |r| (0..n).map(|i| r.get::<_, String>(i)).collect())
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        }
        Database::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect");
            tokio::spawn(connection);
            client
                .query(sql, &[])
                .await
                .expect("query")
                .iter()
                .map(|r| (0..r.len()).map(|i| r.get::<_, String>(i)).collect())
                .collect()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stored_then_repeated_then_conflicting_is_counted_once_each() {
    for t in both("outcomes").await {
        let store = open_with_form(&t.db).await;
        let b = ballots(2, 1);
        let first = store.submit(incoming(&b)).await.expect("submit");
        assert_eq!(first, vec![Outcome::Stored, Outcome::Stored], "{}", t.db);
        let again = store.submit(incoming(&b[..1])).await.expect("resubmit");
        assert_eq!(again, vec![Outcome::AlreadyStored], "{}", t.db);
        let other = store
            .submit(incoming(&[changed(&b[0])]))
            .await
            .expect("conflict");
        assert_eq!(other, vec![Outcome::Conflict], "{}", t.db);
        assert_eq!(
            store.counts().await.expect("counts"),
            Counts {
                ballots: 2,
                repeats: 1,
                conflicts: 1,
                refused: 0,
                by_form: one_form_count(2),
            },
            "{}",
            t.db
        );
        // The first content stays the stored one; the conflicting one is kept apart, whole.
        let stored = rows(
            &t.db,
            &format!(
                "SELECT ballot FROM ballots WHERE response_id = '{}'",
                b[0].id
            ),
        )
        .await;
        assert_eq!(stored, vec![vec![serde_json::to_string(&b[0]).unwrap()]]);
        let kept = rows(
            &t.db,
            "SELECT response_id, ballot, content_hash FROM conflicts",
        )
        .await;
        let conflicting = Incoming::from_ballot(&changed(&b[0]));
        assert_eq!(
            kept,
            vec![vec![
                b[0].id.clone(),
                conflicting.ballot_json,
                conflicting.content_hash
            ]],
            "{}: the conflicting arrival is kept with its content",
            t.db
        );
        assert_eq!(store.backend(), t.db.backend());
        store.check().await.expect("check");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_mixing_new_repeated_and_conflicting_ids_answers_in_order() {
    for t in both("mixed").await {
        let store = open_with_form(&t.db).await;
        let old = ballots(3, 2);
        store.submit(incoming(&old)).await.expect("first batch");
        let new = ballots(2, 3);
        // new, repeat, conflict, new, repeat, the first new again within the batch.
        let batch = vec![
            new[0].clone(),
            old[0].clone(),
            changed(&old[1]),
            new[1].clone(),
            old[2].clone(),
            new[0].clone(),
        ];
        let outcomes = store.submit(incoming(&batch)).await.expect("mixed batch");
        use Outcome::*;
        assert_eq!(
            outcomes,
            vec![
                Stored,
                AlreadyStored,
                Conflict,
                Stored,
                AlreadyStored,
                AlreadyStored
            ],
            "{}",
            t.db
        );
        let counts = store.counts().await.expect("counts");
        assert_eq!(
            (counts.ballots, counts.repeats, counts.conflicts),
            (5, 3, 1),
            "{}",
            t.db
        );
        let expected: BTreeSet<String> = old.iter().chain(&new).map(|b| b.id.clone()).collect();
        assert_eq!(stored_ids(&t.db).await, expected, "{}", t.db);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_batch_from_eight_tasks_at_once_is_stored_once() {
    for t in both("concurrent").await {
        let store = open_with_form(&t.db).await;
        let batch = ballots(60, 4);
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (store, batch) = (store.clone(), incoming(&batch));
                tokio::spawn(async move { store.submit(batch).await })
            })
            .collect();
        let mut stored = vec![0usize; batch.len()];
        for task in tasks {
            let outcomes = task.await.expect("task").expect("submit");
            assert_eq!(outcomes.len(), batch.len());
            for (i, outcome) in outcomes.iter().enumerate() {
                match outcome {
                    Outcome::Stored => stored[i] += 1,
                    Outcome::AlreadyStored => {}
                    Outcome::Conflict => panic!("{}: same content answered conflict", t.db),
                }
            }
        }
        assert!(
            stored.iter().all(|&n| n == 1),
            "{}: each ballot must be Stored exactly once, got {stored:?}",
            t.db
        );
        let counts = store.counts().await.expect("counts");
        assert_eq!(
            (counts.ballots, counts.repeats, counts.conflicts),
            (60, 7 * 60, 0),
            "{}",
            t.db
        );
        assert_eq!(stored_ids(&t.db).await.len(), 60);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forms_are_listed_and_a_changed_definition_is_refused() {
    for t in both("forms").await {
        let store = Store::open(&t.db).await.expect("open");
        assert_eq!(store.forms().await.expect("forms"), vec![]);
        let v1 = form_record(&form());
        store.add_form(&v1).await.expect("add");
        store
            .add_form(&v1)
            .await
            .expect("the same form again is fine");
        let v2 = FormRecord {
            version: format!("{}-2", v1.version),
            json: v1.json.replace(&v1.version, &format!("{}-2", v1.version)),
            ..v1.clone()
        };
        store.add_form(&v2).await.expect("add a newer version");
        let changed = FormRecord {
            json: format!("{} ", v1.json),
            ..v1.clone()
        };
        assert_eq!(
            store.add_form(&changed).await,
            Err(StoreError::FormChanged {
                id: v1.id.clone(),
                version: v1.version.clone()
            }),
            "{}",
            t.db
        );
        assert_eq!(
            store.forms().await.expect("forms"),
            vec![v1.clone(), v2.clone()],
            "{}",
            t.db
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refused_ballots_are_kept_with_their_reason_and_counted() {
    for t in both("refused").await {
        let store = open_with_form(&t.db).await;
        let refusal = Refusal {
            response_id: "r-1".into(),
            form_id: "nope".into(),
            form_version: "9".into(),
            reason: "form nope version 9 is not collected here".into(),
            raw: "{\"id\":\"r-1\",\"form_id\":\"nope\"}".into(),
        };
        let nameless = Refusal {
            response_id: String::new(),
            reason: "not a ballot".into(),
            raw: "[1,2]".into(),
            ..refusal.clone()
        };
        store
            .refuse(vec![refusal.clone(), nameless.clone()])
            .await
            .expect("refuse");
        assert_eq!(store.counts().await.expect("counts").refused, 2);
        let kept = rows(
            &t.db,
            "SELECT response_id, reason, raw FROM refusals ORDER BY seq",
        )
        .await;
        assert_eq!(
            kept,
            vec![
                vec![refusal.response_id, refusal.reason, refusal.raw],
                vec![nameless.response_id, nameless.reason, nameless.raw],
            ],
            "{}",
            t.db
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reopened_database_keeps_everything() {
    for t in both("reopen").await {
        let b = ballots(20, 5);
        let before = {
            let store = open_with_form(&t.db).await;
            store.submit(incoming(&b)).await.expect("submit");
            store.submit(incoming(&b[..3])).await.expect("repeat");
            store
                .submit(incoming(&[changed(&b[4])]))
                .await
                .expect("conflict");
            store.counts().await.expect("counts")
        };
        let store = Store::open(&t.db).await.expect("reopen");
        assert_eq!(store.counts().await.expect("counts"), before, "{}", t.db);
        assert_eq!(
            store.forms().await.expect("forms"),
            vec![form_record(&form())]
        );
        assert_eq!(
            store.submit(incoming(&b[..1])).await.expect("after reopen"),
            vec![Outcome::AlreadyStored]
        );
        assert_eq!(
            rows(
                &t.db,
                "SELECT CAST(max(version) AS TEXT) FROM schema_version"
            )
            .await,
            vec![vec!["2".to_string()]]
        );
    }
}

#[test]
fn database_values_are_read_with_clear_refusals() {
    let sqlite = |p: &str| Ok(Database::Sqlite(PathBuf::from(p)));
    assert_eq!(Database::parse("sqlite:x.db"), sqlite("x.db"));
    assert_eq!(Database::parse("sqlite:///tmp/x.db"), sqlite("/tmp/x.db"));
    assert_eq!(Database::parse("data/x.db"), sqlite("data/x.db"));
    let pg = "postgresql://pingyi:secret@db.example:5432/campaign";
    assert_eq!(Database::parse(pg), Ok(Database::Postgres(pg.into())));
    assert_eq!(
        Database::Postgres(pg.into()).to_string(),
        "postgresql://pingyi:***@db.example:5432/campaign",
        "the password is never shown"
    );
    for (bad, says) in [
        ("", "empty"),
        ("sqlite:", "names no file"),
        ("mysql://root@localhost/x", "\"mysql\""),
        ("postgres://host:notaport/db", "not a PostgreSQL URL"),
    ] {
        match Database::parse(bad) {
            Err(StoreError::Invalid(message)) => assert!(
                message.contains(says) && message.contains("sqlite:PATH"),
                "{bad:?}: {message}"
            ),
            other => panic!("{bad:?} gave {other:?}, expected Invalid"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_postgres_is_unavailable_and_names_the_server() {
    // A port nobody listens on: bind one, note it, close it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let url = format!("postgres://pingyi:secret@127.0.0.1:{port}/campaign");
    match Store::open(&Database::Postgres(url)).await {
        Err(StoreError::Unavailable(message)) => {
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        Ok(_) => panic!("opened a database nobody serves"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_file_of_another_program_is_refused_not_changed() {
    let dir = tempfile::tempdir().expect("dir");
    let text = dir.path().join("notes.db");
    std::fs::write(&text, "these are my notes, not a database\n".repeat(200)).unwrap();
    match Store::open(&Database::Sqlite(text.clone())).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("notes.db"), "{m}"),
        Err(other) => panic!("expected Invalid, got {other:?}"),
        Ok(_) => panic!("opened a text file as a database"),
    }
    let other = dir.path().join("other.db");
    rusqlite::Connection::open(&other)
        .unwrap()
        .execute_batch("CREATE TABLE t (x); INSERT INTO t VALUES (1);")
        .unwrap();
    match Store::open(&Database::Sqlite(other.clone())).await {
        Err(StoreError::Invalid(m)) => assert!(m.contains("another program"), "{m}"),
        Err(e) => panic!("expected Invalid, got {e:?}"),
        Ok(_) => panic!("took over another program's database"),
    }
    let tables = rows(
        &Database::Sqlite(other),
        "SELECT name FROM sqlite_master WHERE type = 'table'",
    )
    .await;
    assert_eq!(tables, vec![vec!["t".to_string()]]);
}

/// A tmpfs of `size` mounted on a fresh folder, unmounted when dropped (also when the
/// test fails half-way).
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("dir");
        mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir.path(),
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, how: &str) {
        mount(&["-o", &format!("remount,{how}")], self.path());
    }
}

fn mount(args: &[&str], dir: &Path) {
    let out = Command::new("mount")
        .args(args)
        .arg(dir)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount {args:?} {} failed (this test needs root, to put a database on a small tmpfs): {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Writes zeros into `path` until the disk is full.
fn fill(path: &Path) {
    use std::io::Write;
    let mut file = std::fs::File::create(path).expect("filler");
    let block = vec![0u8; 64 * 1024];
    while file.write_all(&block).is_ok() {}
    let _ = file.sync_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_makes_submits_unavailable_until_space_returns() {
    let disk = Tmpfs::mount("4m");
    let db = Database::Sqlite(disk.path().join("campaign.db"));
    let store = open_with_form(&db).await;
    let mut acknowledged = BTreeSet::new();
    let first = ballots(50, 6);
    store
        .submit(incoming(&first))
        .await
        .expect("room for the first ballots");
    acknowledged.extend(first.iter().map(|b| b.id.clone()));
    fill(&disk.path().join("filler"));
    // WAL space already allocated may take a few more; bigger batches soon find no room.
    let mut refused = None;
    for seed in 100..200 {
        let batch = ballots(400, seed);
        match store.submit(incoming(&batch)).await {
            Ok(outcomes) => {
                assert!(outcomes.iter().all(|o| *o == Outcome::Stored));
                acknowledged.extend(batch.iter().map(|b| b.id.clone()));
            }
            Err(e) => {
                refused = Some((e, batch));
                break;
            }
        }
    }
    let (error, refused_batch) = refused.expect("a full disk must refuse a submit");
    match &error {
        StoreError::Unavailable(m) => {
            assert!(m.contains("campaign.db") && m.contains("full"), "{m}")
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    // Reads go on while the disk is full.
    assert_eq!(
        store.counts().await.expect("counts").ballots,
        acknowledged.len() as u64
    );
    std::fs::remove_file(disk.path().join("filler")).expect("free space");
    let outcomes = store
        .submit(incoming(&refused_batch))
        .await
        .expect("space is back");
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Stored),
        "nothing of the refused batch was kept"
    );
    acknowledged.extend(refused_batch.iter().map(|b| b.id.clone()));
    drop(store);
    let reopened = Store::open(&db).await.expect("reopen");
    assert_eq!(
        reopened.counts().await.unwrap().ballots,
        acknowledged.len() as u64
    );
    assert_eq!(stored_ids(&db).await, acknowledged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_read_only_disk_makes_the_database_unavailable_until_writable_again() {
    let disk = Tmpfs::mount("16m");
    let db = Database::Sqlite(disk.path().join("campaign.db"));
    let b = ballots(30, 7);
    {
        let store = open_with_form(&db).await;
        store.submit(incoming(&b)).await.expect("submit");
    }
    // The store's writer thread closes its file shortly after the store is dropped; a
    // file system with files open for writing cannot be made read-only.
    remount_when_idle(&disk, "ro");
    match Store::open(&db).await {
        Err(StoreError::Unavailable(m)) => assert!(m.contains("campaign.db"), "{m}"),
        Err(other) => panic!("expected Unavailable, got {other:?}"),
        Ok(store) => match store.submit(incoming(&ballots(1, 8))).await {
            Err(StoreError::Unavailable(m)) => assert!(m.contains("campaign.db"), "{m}"),
            other => panic!("a read-only file took a ballot: {other:?}"),
        },
    }
    remount_when_idle(&disk, "rw");
    let store = Store::open(&db).await.expect("writable again");
    let more = ballots(5, 9);
    assert!(store
        .submit(incoming(&more))
        .await
        .expect("submit")
        .iter()
        .all(|o| *o == Outcome::Stored));
    let expected: BTreeSet<String> = b.iter().chain(&more).map(|b| b.id.clone()).collect();
    assert_eq!(stored_ids(&db).await, expected);
}

/// Remounts, trying again for up to a minute while files are still being closed.
fn remount_when_idle(disk: &Tmpfs, how: &str) {
    for _ in 0..600 {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(disk.path())
            .output()
            .expect("run mount")
            .status
            .success();
        if ok {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    disk.remount(how); // fails with mount's own message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_reads_one_snapshot_while_the_store_goes_on_collecting() {
    use pingyi_server::store::Reader;
    for t in both("reader").await {
        let store = open_with_form(&t.db).await;
        let first = ballots(40, 10);
        store.submit(incoming(&first)).await.expect("submit");
        let db = t.db.clone();
        let mut reader = tokio::task::spawn_blocking(move || Reader::open(&db))
            .await
            .unwrap()
            .expect("reader");
        // Collected after the reader opened: not part of its snapshot.
        store
            .submit(incoming(&ballots(10, 11)))
            .await
            .expect("submit more");
        let f = form();
        let read = tokio::task::spawn_blocking(move || {
            let forms = reader.forms().expect("forms");
            let mut seen = Vec::new();
            reader
                .ballots(&f.id, &f.version, |json| -> Result<(), String> {
                    seen.push(serde_json::from_str::<Ballot>(json).map_err(|e| e.to_string())?);
                    Ok(())
                })
                .map_err(|e| format!("{e:?}"))
                .expect("ballots");
            (forms, seen)
        })
        .await
        .unwrap();
        assert_eq!(read.0.len(), 1);
        assert_eq!(read.0[0].ballots, 40, "{}", t.db);
        let mut seen = read.1;
        seen.sort_by(|a, b| a.id.cmp(&b.id));
        let mut expected = first.clone();
        expected.sort_by(|a, b| a.id.cmp(&b.id));
        assert_eq!(seen, expected, "{}", t.db);
    }
    let missing = Database::Sqlite(std::env::temp_dir().join("pingyi-no-such-dir/x.db"));
    let opened = tokio::task::spawn_blocking(move || Reader::open(&missing).map(drop))
        .await
        .unwrap();
    assert!(
        matches!(&opened, Err(StoreError::Invalid(m)) if m.contains("no such file")),
        "{opened:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_connections_cut_by_the_server_are_unavailable_then_replaced() {
    let t = fresh_postgres("cut").await;
    let Database::Postgres(url) = &t.db else {
        unreachable!("fresh_postgres gives a PostgreSQL database")
    };
    let store = open_with_form(&t.db).await;
    let mut acknowledged = BTreeSet::new();
    let (admin, connection) =
        tokio_postgres::connect(&common::postgres_admin_url(), tokio_postgres::NoTls)
            .await
            .expect("admin connection");
    tokio::spawn(connection);
    let database = url.rsplit('/').next().expect("a database name").to_string();
    for round in 0..5u64 {
        let batch = ballots(20, 300 + round);
        match store.submit(incoming(&batch)).await {
            Ok(outcomes) => {
                assert!(outcomes.iter().all(|o| *o == Outcome::Stored));
                acknowledged.extend(batch.iter().map(|b| b.id.clone()));
            }
            Err(StoreError::Unavailable(m)) => {
                eprintln!("round {round}: {m}");
                assert!(m.contains(&database), "{m}")
            }
            Err(other) => panic!("a cut connection must be Unavailable, got {other:?}"),
        }
        // Every connection of the store is cut, as a restarted or failed-over server would.
        admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                &[&database],
            )
            .await
            .expect("terminate");
    }
    // The pool opens new connections: within a few tries a submit succeeds again.
    let last = ballots(20, 400);
    let mut stored = false;
    for _ in 0..10 {
        if store.submit(incoming(&last)).await.is_ok() {
            stored = true;
            break;
        }
    }
    assert!(stored, "the store never recovered from cut connections");
    acknowledged.extend(last.iter().map(|b| b.id.clone()));
    let held = stored_ids(&t.db).await;
    assert!(
        acknowledged.is_subset(&held),
        "every acknowledged ballot is stored"
    );
}

/// A log buffer that a test reads back.
#[derive(Clone, Default)]
struct Log(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_single_ballot_submits_shares_commits() {
    let log = Log::default();
    let writer = log.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .expect("the only test that installs a subscriber");
    let t = fresh_sqlite();
    let store = open_with_form(&t.db).await;
    let burst = ballots(500, 12);
    // join_all polls every submit once before waiting on any: all 500 are queued at once,
    // as when 500 devices send at the same moment.
    let outcomes = futures_util::future::join_all(
        burst
            .iter()
            .map(|b| store.submit(incoming(std::slice::from_ref(b)))),
    )
    .await;
    assert!(outcomes
        .iter()
        .all(|o| o.as_deref() == Ok(&[Outcome::Stored][..])));
    assert_eq!(store.counts().await.unwrap().ballots, 500);
    let Database::Sqlite(path) = &t.db else {
        unreachable!()
    };
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let commits = text
        .lines()
        .filter(|l| l.contains("group committed") && l.contains(&path.display().to_string()))
        .count();
    // One for the form, then the burst: far fewer commits (and fsyncs) than requests.
    assert!(
        (2..=100).contains(&commits),
        "500 one-ballot submits took {commits} commits"
    );
    eprintln!("500 one-ballot submits: {commits} commits");
}

#[test]
fn an_incoming_ballot_is_its_canonical_json_and_that_json_s_sha256() {
    use std::io::Write;
    let b = &ballots(1, 13)[0];
    let incoming = Incoming::from_ballot(b);
    assert_eq!(incoming.ballot_json, serde_json::to_string(b).unwrap());
    assert_eq!(
        (
            incoming.response_id.as_str(),
            incoming.form_id.as_str(),
            incoming.form_version.as_str()
        ),
        (b.id.as_str(), b.form_id.as_str(), b.form_version.as_str())
    );
    let mut sha = Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum (coreutils)");
    sha.stdin
        .take()
        .unwrap()
        .write_all(incoming.ballot_json.as_bytes())
        .unwrap();
    let out = String::from_utf8(sha.wait_with_output().unwrap().stdout).unwrap();
    assert_eq!(
        incoming.content_hash,
        out.split_whitespace().next().unwrap()
    );
}
