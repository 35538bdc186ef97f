//! The SQLite backend: one file in WAL mode with `synchronous=FULL`, so a commit is on
//! disk before it returns. Every write goes through one writer thread that commits
//! every request waiting in its queue in one transaction (group commit: a burst of 500
//! one-ballot requests costs a handful of fsyncs, not 500). Reads use connections of
//! their own and, thanks to WAL, never wait for the writer.

use std::any::Any;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::codes::{self, sources};
use super::{
    now, shown, Columns, Counts, FormCount, FormRecord, Incoming, Outcome, Reason, Refusal,
    StoreError, Verdict,
};

/// Each migration with the schema version it brings the file to, oldest first.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_campaign.sql")),
];

/// How long a statement waits for a lock held by another program (a backup, the
/// `sqlite3` shell) before the request is answered "unavailable".
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this many ballots go into one group commit, so one commit stays short.
const MAX_GROUP_BALLOTS: usize = 10_000;

pub(super) struct SqliteStore {
    path: PathBuf,
    /// The writer thread's queue; the thread ends when the last store is dropped.
    jobs: Mutex<mpsc::Sender<Job>>,
    /// Idle reading connections, opened on demand.
    readers: Arc<Mutex<Vec<Connection>>>,
}

/// One write request and where its answer goes.
enum Job {
    Submit(
        Vec<Incoming>,
        oneshot::Sender<Result<Vec<Verdict>, StoreError>>,
    ),
    Refuse(Vec<Refusal>, oneshot::Sender<Result<(), StoreError>>),
    AddForm(FormRecord, oneshot::Sender<Result<(), StoreError>>),
    /// Any other write (users, codes, closures…), run inside the group's transaction.
    Exec(
        Exec,
        oneshot::Sender<Result<Box<dyn Any + Send>, StoreError>>,
    ),
}

/// A write given as a closure: it gets the connection and the group's time, and may run
/// again if its group is retried, so it must only depend on what it captured.
type Exec = Box<dyn Fn(&Connection, &str) -> rusqlite::Result<Box<dyn Any + Send>> + Send>;

/// What a job did inside the group's transaction, sent once the group is committed.
enum Done {
    Outcomes(Vec<Verdict>),
    Value(Box<dyn Any + Send>),
    Nothing,
}

impl Job {
    fn size(&self) -> usize {
        match self {
            Job::Submit(batch, _) => batch.len(),
            Job::Refuse(rows, _) => rows.len(),
            Job::AddForm(..) | Job::Exec(..) => 1,
        }
    }

    fn apply(&self, conn: &Connection, at: &str) -> rusqlite::Result<Done> {
        match self {
            Job::Submit(batch, _) => submit_in(conn, batch, at).map(Done::Outcomes),
            Job::Refuse(rows, _) => refuse_in(conn, rows, at).map(|()| Done::Nothing),
            Job::AddForm(form, _) => add_form_in(conn, form, at).map(|()| Done::Nothing),
            Job::Exec(f, _) => f(conn, at).map(Done::Value),
        }
    }

    fn answer(self, result: Result<Done, StoreError>) {
        // A requester that went away (its client disconnected) needs no answer.
        match self {
            Job::Submit(_, reply) => {
                let _ = reply.send(result.map(|done| match done {
                    Done::Outcomes(outcomes) => outcomes,
                    _ => Vec::new(),
                }));
            }
            Job::Exec(_, reply) => {
                let _ = reply.send(result.map(|done| match done {
                    Done::Value(v) => v,
                    _ => Box::new(()),
                }));
            }
            Job::Refuse(_, reply) | Job::AddForm(_, reply) => {
                let _ = reply.send(result.map(drop));
            }
        }
    }
}

impl SqliteStore {
    pub(super) async fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let path = path.to_path_buf();
        let opened = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection, StoreError> {
            let mut conn = connect(&opened)?;
            migrate(&mut conn, &opened)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Other(format!("opening {}: {e}", shown(&path))))??;
        let (jobs, queue) = mpsc::channel();
        let writer_path = path.clone();
        std::thread::Builder::new()
            .name("pingyi-sqlite-writer".into())
            .spawn(move || run_writer(writer_path, conn, queue))
            .map_err(|e| StoreError::Other(format!("cannot start the database writer: {e}")))?;
        Ok(SqliteStore {
            path,
            jobs: Mutex::new(jobs),
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Queues a write for the writer thread and waits for its answer.
    async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> Job,
    ) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        let sent = self.jobs.lock().expect("queue lock").send(job(reply));
        let stopped =
            || StoreError::Unavailable(format!("the writer of {} has stopped", shown(&self.path)));
        sent.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    pub(super) async fn add_form(&self, f: &FormRecord) -> Result<(), StoreError> {
        let form = f.clone();
        self.write(|reply| Job::AddForm(form, reply)).await
    }

    pub(super) async fn submit(&self, batch: Vec<Incoming>) -> Result<Vec<Verdict>, StoreError> {
        self.write(|reply| Job::Submit(batch, reply)).await
    }

    pub(super) async fn refuse(&self, refused: Vec<Refusal>) -> Result<(), StoreError> {
        self.write(|reply| Job::Refuse(refused, reply)).await
    }

    /// Runs `f` in the writer's next group transaction and returns what it returned; a
    /// failure of `f` rolls back only `f`'s own writes (a savepoint).
    pub(super) async fn exec<T: Send + 'static>(
        &self,
        f: impl Fn(&Connection, &str) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let job: Exec = Box::new(move |conn: &Connection, at: &str| {
            f(conn, at).map(|v| Box::new(v) as Box<dyn Any + Send>)
        });
        let value = self.write(|reply| Job::Exec(job, reply)).await?;
        Ok(*value
            .downcast::<T>()
            .expect("an exec job answers with the type its closure returns"))
    }

    /// Runs `f` on a reading connection in the blocking pool.
    pub(super) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let path = self.path.clone();
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let idle = readers.lock().expect("readers lock").pop();
            let conn = match idle {
                Some(conn) => conn,
                None => connect(&path)?,
            };
            let result = f(&conn).map_err(|e| error(&path, e));
            // A connection that failed for a reason of the file's is not kept for the next read.
            if !matches!(result, Err(StoreError::Unavailable(_))) {
                readers.lock().expect("readers lock").push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Other(format!("reading {}: {e}", shown(&self.path))))?
    }

    pub(super) async fn forms(&self) -> Result<Vec<FormRecord>, StoreError> {
        self.read(|conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, version, json FROM forms ORDER BY id, version")?;
            let rows = stmt.query_map([], |r| {
                Ok(FormRecord {
                    id: r.get(0)?,
                    version: r.get(1)?,
                    json: r.get(2)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    pub(super) async fn counts(&self) -> Result<Counts, StoreError> {
        self.read(|conn| {
            // One read transaction, so the numbers agree with each other.
            let tx = conn.unchecked_transaction()?;
            let count = |sql: &str| tx.query_row(sql, [], |r| r.get::<_, i64>(0));
            let ballots = count("SELECT count(*) FROM ballots")?;
            let repeats = count("SELECT value FROM counters WHERE name = 'repeats'")?;
            let conflicts = count("SELECT count(*) FROM conflicts")?;
            let refused = count("SELECT count(*) FROM refusals")?;
            let by_form = {
                let mut stmt = tx.prepare_cached(
                    "SELECT form_id, form_version, count(*) FROM ballots \
                     GROUP BY form_id, form_version ORDER BY form_id, form_version",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok(FormCount {
                        id: r.get(0)?,
                        version: r.get(1)?,
                        ballots: r.get::<_, i64>(2)? as u64,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(Counts {
                ballots: ballots as u64,
                repeats: repeats as u64,
                conflicts: conflicts as u64,
                refused: refused as u64,
                by_form,
            })
        })
        .await
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        self.read(|conn| conn.query_row("SELECT count(*) FROM schema_version", [], |_| Ok(())))
            .await
    }
}

/// Opens a connection with the settings every connection needs: WAL, FULL sync,
/// foreign keys, and a busy timeout.
pub(super) fn connect(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| error(path, e))?;
    configure(&conn).map_err(|e| error(path, e))?;
    Ok(conn)
}

/// The settings every connection needs: WAL, FULL sync, foreign keys, and a busy timeout.
pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            Some(format!(
                "the file cannot use write-ahead logging (got {mode})"
            )),
        ));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Brings the file's schema to the newest version, in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let fail = |e| error(path, e);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(fail)?;
    let has_version: bool = tx
        .query_row(
            "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let others: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
        .map_err(fail)?;
    if !has_version && others > 0 {
        return Err(StoreError::Invalid(format!(
            "{} is an SQLite database of another program (it has tables but no schema_version), \
             expected a Pingyi database or a new file",
            shown(path)
        )));
    }
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version \
         (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(fail)?;
    let current: i64 = tx
        .query_row(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(StoreError::Invalid(format!(
            "{} has schema version {current}, written by a newer Pingyi; this one knows up to \
             version {newest}",
            shown(path)
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(fail)?;
        tx.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
            params![version, now()],
        )
        .map_err(fail)?;
    }
    tx.commit().map_err(fail)
}

/// The writer thread: takes every job waiting, runs them in one transaction, commits,
/// then answers each. Ends when every store handle is gone.
fn run_writer(path: PathBuf, conn: Connection, queue: mpsc::Receiver<Job>) {
    let mut conn = Some(conn);
    while let Ok(first) = queue.recv() {
        let mut size = first.size();
        let mut group = vec![first];
        while size < MAX_GROUP_BALLOTS {
            match queue.try_recv() {
                Ok(job) => {
                    size += job.size();
                    group.push(job);
                }
                Err(_) => break,
            }
        }
        // After a failure the connection is opened afresh, so a file that is writable
        // again (space freed, remounted read-write) is used as it is now.
        if conn.is_none() {
            match connect(&path) {
                Ok(fresh) => conn = Some(fresh),
                Err(e) => {
                    group.into_iter().for_each(|job| job.answer(Err(e.clone())));
                    continue;
                }
            }
        }
        let open = conn.as_mut().expect("connected above");
        if let Err(e) = run_group(open, &path, group) {
            tracing::warn!(database = %path.display(), "write failed, rolled back: {e}");
            conn = None;
        }
    }
}

/// Runs one group in one transaction. Each job has a savepoint, so a job refused on its
/// own (a changed form) is undone alone; a failure of the file (full, read-only, I/O)
/// undoes the whole group, answers every job "unavailable" and is returned.
fn run_group(conn: &mut Connection, path: &Path, group: Vec<Job>) -> Result<(), StoreError> {
    let at = now();
    let mut results = Vec::with_capacity(group.len());
    let outcome = (|| {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| error(path, e))?;
        for job in &group {
            let savepoint = tx.savepoint().map_err(|e| error(path, e))?;
            let result = match job {
                Job::AddForm(form, _) => check_form(&savepoint, form, path),
                _ => Ok(()),
            }
            .and_then(|()| job.apply(&savepoint, &at).map_err(|e| error(path, e)));
            match result {
                Err(e @ StoreError::Unavailable(_)) => return Err(e),
                Err(e) => results.push(Err(e)), // the savepoint rolls back when dropped
                Ok(done) => {
                    savepoint.commit().map_err(|e| error(path, e))?;
                    results.push(Ok(done));
                }
            }
        }
        tx.commit().map_err(|e| error(path, e))
    })();
    match outcome {
        Ok(()) => {
            tracing::debug!(
                database = %path.display(),
                requests = group.len(),
                rows = group.iter().map(Job::size).sum::<usize>(),
                "group committed"
            );
            group
                .into_iter()
                .zip(results)
                .for_each(|(job, r)| job.answer(r));
            Ok(())
        }
        Err(e) => {
            group.into_iter().for_each(|job| job.answer(Err(e.clone())));
            Err(e)
        }
    }
}

fn submit_in(conn: &Connection, batch: &[Incoming], at: &str) -> rusqlite::Result<Vec<Verdict>> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO ballots (response_id, form_id, form_version, device_id, \"group\", \
         submitted_at, received_at, content_hash, ballot) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (response_id) DO NOTHING",
    )?;
    let mut stored_hash =
        conn.prepare_cached("SELECT content_hash FROM ballots WHERE response_id = ?1")?;
    let mut conflict = conn.prepare_cached(
        "INSERT INTO conflicts (response_id, form_id, form_version, content_hash, ballot, \
         received_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    let key: Option<String> = conn
        .query_row(&codes::sqlite(codes::SQL_KEY), [], |r| r.get(0))
        .optional()?;
    let mut repeats = 0i64;
    let mut verdicts = Vec::with_capacity(batch.len());
    for b in batch {
        let columns = Columns::of(&b.ballot_json);
        // The ballot is inserted first, so its id decides before anything else (a resent
        // ballot never needs its code again); the savepoint undoes it when refused.
        conn.execute_batch("SAVEPOINT ballot")?;
        let inserted = insert.execute(params![
            b.response_id,
            b.form_id,
            b.form_version,
            columns.device_id,
            columns.group,
            columns.submitted_at,
            at,
            b.content_hash,
            b.ballot_json
        ])?;
        if inserted == 1 {
            let refused = decide(conn, b, &columns, at, key.as_deref())?;
            if let Some(reason) = refused {
                conn.execute_batch("ROLLBACK TO ballot")?;
                refused_in(conn, b, &columns, at, reason)?;
            }
            conn.execute_batch("RELEASE ballot")?;
            verdicts.push(refused.map_or(Ok(Outcome::Stored), Err));
            continue;
        }
        conn.execute_batch("RELEASE ballot")?;
        let hash: String = stored_hash.query_row([&b.response_id], |r| r.get(0))?;
        if hash == b.content_hash {
            repeats += 1;
            verdicts.push(Ok(Outcome::AlreadyStored));
        } else {
            conflict.execute(params![
                b.response_id,
                b.form_id,
                b.form_version,
                b.content_hash,
                b.ballot_json,
                at
            ])?;
            verdicts.push(Ok(Outcome::Conflict));
        }
    }
    if repeats > 0 {
        conn.prepare_cached("UPDATE counters SET value = value + ?1 WHERE name = 'repeats'")?
            .execute([repeats])?;
    }
    Ok(verdicts)
}

/// The campaign's rules for a ballot just inserted: closed, its code (marked used here),
/// the rate limits of open groups (counted here). `None` keeps it.
fn decide(
    conn: &Connection,
    b: &Incoming,
    columns: &Columns,
    at: &str,
    key: Option<&str>,
) -> rusqlite::Result<Option<Reason>> {
    let closed: i64 = conn
        .prepare_cached(&codes::sqlite(codes::SQL_CLOSED))?
        .query_row([&b.form_id, &b.form_version], |r| r.get(0))?;
    if closed > 0 {
        return Ok(Some(Reason::Closed));
    }
    let rules = &b.admission;
    if rules.code_required {
        let Some(code) = &rules.code else {
            return Ok(Some(Reason::CodeMissing));
        };
        let Some(key) = key else {
            return Ok(Some(Reason::CodeInvalid));
        };
        let hash = crate::codes::keyed_hash(key, code);
        let args = params![hash, b.form_id, b.form_version, columns.group];
        if conn
            .prepare_cached(&codes::sqlite(codes::SQL_USE_CODE))?
            .execute(args)?
            == 0
        {
            let issued: i64 = conn
                .prepare_cached(&codes::sqlite(codes::SQL_CODE_ISSUED))?
                .query_row(args, |r| r.get(0))?;
            return Ok(Some(if issued > 0 {
                Reason::CodeUsed
            } else {
                Reason::CodeInvalid
            }));
        }
    }
    let hour = codes::counted_hour(&columns.submitted_at, at);
    for (kind, key) in sources(b, columns) {
        let count: i64 = conn
            .prepare_cached(&codes::sqlite(codes::SQL_SOURCE_BALLOT))?
            .query_row(params![b.form_id, b.form_version, kind, key, hour], |r| {
                r.get(0)
            })?;
        let limit = codes::limit_of(&rules.limits, kind);
        if !rules.code_required && limit > 0 && count > limit {
            return Ok(Some(Reason::RateLimited));
        }
    }
    seen(conn, b, columns, at)
}

/// Records the arrival of a ballot as a contact of its device.
fn seen(
    conn: &Connection,
    b: &Incoming,
    columns: &Columns,
    at: &str,
) -> rusqlite::Result<Option<Reason>> {
    if !b.admission.address.is_empty() && !columns.device_id.is_empty() {
        conn.prepare_cached(&codes::sqlite(codes::SQL_DEVICE_SEEN))?
            .execute(params![columns.device_id, at, b.admission.address])?;
    }
    Ok(None)
}

/// Keeps a ballot the campaign refused, with its reason, and counts it for its sources.
fn refused_in(
    conn: &Connection,
    b: &Incoming,
    columns: &Columns,
    at: &str,
    reason: Reason,
) -> rusqlite::Result<()> {
    conn.prepare_cached(&codes::sqlite(codes::SQL_REFUSAL))?
        .execute(params![
            b.response_id,
            b.form_id,
            b.form_version,
            reason.message(),
            b.ballot_json,
            at,
            reason.as_str()
        ])?;
    let hour = codes::counted_hour(&columns.submitted_at, at);
    for (kind, key) in sources(b, columns) {
        conn.prepare_cached(&codes::sqlite(codes::SQL_SOURCE_REFUSED))?
            .execute(params![b.form_id, b.form_version, kind, key, hour])?;
    }
    seen(conn, b, columns, at).map(drop)
}

fn refuse_in(conn: &Connection, rows: &[Refusal], at: &str) -> rusqlite::Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO refusals (response_id, form_id, form_version, reason, raw, received_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in rows {
        insert.execute(params![
            r.response_id,
            r.form_id,
            r.form_version,
            r.reason,
            r.raw,
            at
        ])?;
    }
    Ok(())
}

/// Refuses a form whose id and version are stored with another definition.
fn check_form(conn: &Connection, form: &FormRecord, path: &Path) -> Result<(), StoreError> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT json FROM forms WHERE id = ?1 AND version = ?2",
            [&form.id, &form.version],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| error(path, e))?;
    match stored {
        Some(json) if json != form.json => Err(StoreError::FormChanged {
            id: form.id.clone(),
            version: form.version.clone(),
        }),
        _ => Ok(()),
    }
}

fn add_form_in(conn: &Connection, form: &FormRecord, at: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "INSERT INTO forms (id, version, json, added_at) VALUES (?1, ?2, ?3, ?4) \
         ON CONFLICT (id, version) DO NOTHING",
    )?
    .execute(params![form.id, form.version, form.json, at])?;
    Ok(())
}

/// Maps SQLite's errors to what the caller can do about them; every message names the file.
pub(super) fn error(path: &Path, e: rusqlite::Error) -> StoreError {
    let file = shown(path);
    let code = match &e {
        rusqlite::Error::SqliteFailure(failure, _) => Some(failure.code),
        _ => None,
    };
    match code {
        Some(ErrorCode::DiskFull) => {
            StoreError::Unavailable(format!("the disk holding {file} is full"))
        }
        Some(ErrorCode::ReadOnly) => {
            StoreError::Unavailable(format!("{file} cannot be written (read-only): {e}"))
        }
        Some(ErrorCode::SystemIoFailure) => {
            StoreError::Unavailable(format!("reading or writing {file} failed: {e}"))
        }
        Some(ErrorCode::CannotOpen) | Some(ErrorCode::PermissionDenied) => {
            StoreError::Unavailable(format!("cannot open {file}: {e}"))
        }
        Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
            StoreError::Unavailable(format!(
                "{file} stayed locked by another program for more than {} s",
                BUSY_TIMEOUT.as_secs()
            ))
        }
        Some(ErrorCode::NotADatabase) => StoreError::Invalid(format!(
            "{file} is not an SQLite database, expected a Pingyi database or a new file"
        )),
        Some(ErrorCode::DatabaseCorrupt) => {
            StoreError::Other(format!("{file} is damaged: {e}; restore it from a backup"))
        }
        _ => StoreError::Other(format!("{file}: {e}")),
    }
}
