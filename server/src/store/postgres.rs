//! The PostgreSQL backend: a pool of connections (deadpool-postgres), one transaction
//! per request with `synchronous_commit` on, so a commit is durable before it returns.
//! Two servers (or two requests) submitting the same id at once are settled by the
//! primary key: `INSERT … ON CONFLICT DO NOTHING` waits for the other transaction, then
//! the stored hash tells a repeat from a conflict; never an error, never two rows.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::codes::{self, sources};
use super::{
    now, redact, Columns, Counts, FormCount, FormRecord, Incoming, Outcome, Reason, Refusal,
    StoreError, Verdict,
};

/// Each migration with the schema version it brings the database to, oldest first.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_campaign.sql"),
    ),
];

/// Any number, the same in every Pingyi: serializes migrations of servers starting at once.
const MIGRATION_LOCK: i64 = 0x5069_6e67_7969;

/// How often a transaction that PostgreSQL aborted to break a deadlock is tried again.
const TRIES: usize = 3;

pub(super) struct PgStore {
    pool: Pool,
    /// The URL with its password hidden, for messages.
    shown: String,
}

impl PgStore {
    pub(super) async fn open(url: &str) -> Result<PgStore, StoreError> {
        let shown = redact(url);
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Invalid(format!("{shown} is not a PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("pingyi");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(16)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(30)))
            .create_timeout(Some(Duration::from_secs(15)))
            .build()
            .map_err(|e| StoreError::Other(format!("cannot set up {shown}: {e}")))?;
        let store = PgStore { pool, shown };
        store.migrate().await?;
        Ok(store)
    }

    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.error(e),
            PoolError::Timeout(_) => StoreError::Unavailable(format!(
                "no connection to {} could be had in time",
                self.shown
            )),
            other => StoreError::Unavailable(format!("{}: {other}", self.shown)),
        })
    }

    /// Brings the schema to the newest version, in one transaction that holds an advisory
    /// lock so that two servers starting at once do not both apply a migration.
    async fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let fail = |e| self.error(e);
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(fail)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version \
             (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
        )
        .await
        .map_err(fail)?;
        let current: i32 = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(fail)?
            .get(0);
        let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
        if current > newest {
            return Err(StoreError::Invalid(format!(
                "{} has schema version {current}, written by a newer Pingyi; this one knows up \
                 to version {newest}",
                self.shown
            )));
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            tx.batch_execute(sql).await.map_err(fail)?;
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES ($1, $2)",
                &[version, &now()],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    pub(super) async fn add_form(&self, f: &FormRecord) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(|e| self.error(e))?;
        let fail = |e| self.error(e);
        tx.execute(
            "INSERT INTO forms (id, version, json, added_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (id, version) DO NOTHING",
            &[&f.id, &f.version, &f.json, &now()],
        )
        .await
        .map_err(fail)?;
        let stored: String = tx
            .query_one(
                "SELECT json FROM forms WHERE id = $1 AND version = $2",
                &[&f.id, &f.version],
            )
            .await
            .map_err(fail)?
            .get(0);
        if stored != f.json {
            return Err(StoreError::FormChanged {
                id: f.id.clone(),
                version: f.version.clone(),
            });
        }
        tx.commit().await.map_err(fail)
    }

    pub(super) async fn forms(&self) -> Result<Vec<FormRecord>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT id, version, json FROM forms ORDER BY id, version",
                &[],
            )
            .await
            .map_err(|e| self.error(e))?;
        Ok(rows
            .iter()
            .map(|r| FormRecord {
                id: r.get(0),
                version: r.get(1),
                json: r.get(2),
            })
            .collect())
    }

    pub(super) async fn submit(&self, batch: Vec<Incoming>) -> Result<Vec<Verdict>, StoreError> {
        // Ids are inserted in sorted order, so two transactions never wait for each other
        // in a circle; the outcomes go back in input order.
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| batch[a].response_id.cmp(&batch[b].response_id));
        let mut tries = 0;
        loop {
            tries += 1;
            let mut client = self.client().await?;
            match submit_once(&mut client, &batch, &order).await {
                Err(e) if tries < TRIES && retryable(&e) => {
                    tracing::info!(database = %self.shown, "submit tried again: {e}");
                }
                result => return result.map_err(|e| self.error(e)),
            }
        }
    }

    pub(super) async fn refuse(&self, refused: Vec<Refusal>) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let fail = |e| self.error(e);
        let tx = client.transaction().await.map_err(fail)?;
        tx.batch_execute("SET LOCAL synchronous_commit = on")
            .await
            .map_err(fail)?;
        let insert = tx
            .prepare_cached(
                "INSERT INTO refusals (response_id, form_id, form_version, reason, raw, \
                 received_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .await
            .map_err(fail)?;
        let at = now();
        for r in &refused {
            tx.execute(
                &insert,
                &[
                    &r.response_id,
                    &r.form_id,
                    &r.form_version,
                    &r.reason,
                    &r.raw,
                    &at,
                ],
            )
            .await
            .map_err(fail)?;
        }
        tx.commit().await.map_err(fail)
    }

    pub(super) async fn counts(&self) -> Result<Counts, StoreError> {
        let mut client = self.client().await?;
        let fail = |e| self.error(e);
        // One snapshot, so the numbers agree with each other.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(fail)?;
        let totals = tx
            .query_one(
                "SELECT (SELECT count(*) FROM ballots), \
                        (SELECT value FROM counters WHERE name = 'repeats'), \
                        (SELECT count(*) FROM conflicts), \
                        (SELECT count(*) FROM refusals)",
                &[],
            )
            .await
            .map_err(fail)?;
        let by_form = tx
            .query(
                "SELECT form_id, form_version, count(*) FROM ballots \
                 GROUP BY form_id, form_version ORDER BY form_id, form_version",
                &[],
            )
            .await
            .map_err(fail)?
            .iter()
            .map(|r| FormCount {
                id: r.get(0),
                version: r.get(1),
                ballots: r.get::<_, i64>(2) as u64,
            })
            .collect();
        tx.commit().await.map_err(fail)?;
        let n = |i: usize| totals.get::<_, i64>(i) as u64;
        Ok(Counts {
            ballots: n(0),
            repeats: n(1),
            conflicts: n(2),
            refused: n(3),
            by_form,
        })
    }

    pub(super) async fn check(&self) -> Result<(), StoreError> {
        let client = self.client().await?;
        client
            .query_one("SELECT count(*) FROM schema_version", &[])
            .await
            .map(drop)
            .map_err(|e| self.error(e))
    }

    pub(super) fn error(&self, e: tokio_postgres::Error) -> StoreError {
        error(&self.shown, e)
    }
}

/// Maps PostgreSQL's errors to what the caller can do about them; every message names
/// the database (`db`, its URL without the password).
pub(super) fn error(db: &str, e: tokio_postgres::Error) -> StoreError {
    let Some(state) = e.code() else {
        // No SQL state: the connection could not be made or was lost.
        return StoreError::Unavailable(format!("cannot reach {db}: {}", describe(&e)));
    };
    let unavailable = [
        SqlState::DISK_FULL,
        SqlState::OUT_OF_MEMORY,
        SqlState::READ_ONLY_SQL_TRANSACTION,
        SqlState::ADMIN_SHUTDOWN,
        SqlState::CRASH_SHUTDOWN,
        SqlState::CANNOT_CONNECT_NOW,
        SqlState::TOO_MANY_CONNECTIONS,
        SqlState::CONNECTION_FAILURE,
        SqlState::CONNECTION_EXCEPTION,
        SqlState::LOCK_NOT_AVAILABLE,
        SqlState::T_R_DEADLOCK_DETECTED,
        SqlState::T_R_SERIALIZATION_FAILURE,
        SqlState::IO_ERROR,
        SqlState::INSUFFICIENT_RESOURCES,
    ];
    if unavailable.contains(state) || e.is_closed() {
        StoreError::Unavailable(format!("{db}: {}", describe(&e)))
    } else if *state == SqlState::INVALID_CATALOG_NAME
        || *state == SqlState::INVALID_PASSWORD
        || *state == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        StoreError::Invalid(format!("{db}: {}", describe(&e)))
    } else {
        StoreError::Other(format!("{db}: {}", describe(&e)))
    }
}

/// One submit in one transaction.
async fn submit_once(
    client: &mut deadpool_postgres::Object,
    batch: &[Incoming],
    order: &[usize],
) -> Result<Vec<Verdict>, tokio_postgres::Error> {
    let mut tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL synchronous_commit = on")
        .await?;
    let insert = tx
        .prepare_cached(
            "INSERT INTO ballots (response_id, form_id, form_version, device_id, \"group\", \
             submitted_at, received_at, content_hash, ballot) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (response_id) DO NOTHING",
        )
        .await?;
    let stored_hash = tx
        .prepare_cached("SELECT content_hash FROM ballots WHERE response_id = $1")
        .await?;
    let conflict = tx
        .prepare_cached(
            "INSERT INTO conflicts (response_id, form_id, form_version, content_hash, ballot, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    // Held shared until the commit: closing a campaign takes it exclusively, so a closure
    // waits for the ballots under way and no ballot slips in after it.
    tx.execute(
        "SELECT pg_advisory_xact_lock_shared($1)",
        &[&super::CLOSE_LOCK],
    )
    .await?;
    let key: Option<String> = tx.query_opt(codes::SQL_KEY, &[]).await?.map(|r| r.get(0));
    let at = now();
    let mut verdicts = vec![Ok(Outcome::Stored); batch.len()];
    let mut inserted = vec![false; batch.len()];
    let mut repeats = 0i64;
    // The ballots are inserted first, in sorted order (see `submit`), so an id decides
    // before anything else: a resent ballot never needs its code again, even while its
    // first sending is under way (the insert waits for it).
    for &i in order {
        let b = &batch[i];
        let columns = Columns::of(&b.ballot_json);
        let n = tx
            .execute(
                &insert,
                &[
                    &b.response_id,
                    &b.form_id,
                    &b.form_version,
                    &columns.device_id,
                    &columns.group,
                    &columns.submitted_at,
                    &at,
                    &b.content_hash,
                    &b.ballot_json,
                ],
            )
            .await?;
        if n == 1 {
            inserted[i] = true;
            continue;
        }
        let hash: String = tx.query_one(&stored_hash, &[&b.response_id]).await?.get(0);
        if hash == b.content_hash {
            repeats += 1;
            verdicts[i] = Ok(Outcome::AlreadyStored);
        } else {
            tx.execute(
                &conflict,
                &[
                    &b.response_id,
                    &b.form_id,
                    &b.form_version,
                    &b.content_hash,
                    &b.ballot_json,
                    &at,
                ],
            )
            .await?;
            verdicts[i] = Ok(Outcome::Conflict);
        }
    }
    lock_counted_rows(&tx, batch, &inserted, &at).await?;
    // Then the campaign's rules, in the order sent (the first ballot with a code takes
    // it); a savepoint undoes what a refused ballot's checks counted.
    for (i, b) in batch.iter().enumerate().filter(|(i, _)| inserted[*i]) {
        let columns = Columns::of(&b.ballot_json);
        let checks = tx.savepoint("ballot").await?;
        match decide(&checks, b, &columns, &at, key.as_deref()).await? {
            None => checks.commit().await?,
            Some(reason) => {
                checks.rollback().await?;
                tx.execute(
                    "DELETE FROM ballots WHERE response_id = $1",
                    &[&b.response_id],
                )
                .await?;
                refused_in(&tx, b, &columns, &at, reason).await?;
                verdicts[i] = Err(reason);
            }
        }
    }
    if repeats > 0 {
        tx.execute(
            "UPDATE counters SET value = value + $1 WHERE name = 'repeats'",
            &[&repeats],
        )
        .await?;
    }
    tx.commit().await?;
    Ok(verdicts)
}

/// The campaign's rules for a ballot just inserted: closed, its code (marked used here;
/// the row lock makes a second ballot with the same code wait and then find it used),
/// the rate limits of open groups (counted here, under the source row's lock). `None`
/// keeps it.
async fn decide(
    tx: &tokio_postgres::Transaction<'_>,
    b: &Incoming,
    columns: &Columns,
    at: &str,
    key: Option<&str>,
) -> Result<Option<Reason>, tokio_postgres::Error> {
    let closed: i64 = tx
        .query_one(codes::SQL_CLOSED, &[&b.form_id, &b.form_version])
        .await?
        .get(0);
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
        let args: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
            [&hash, &b.form_id, &b.form_version, &columns.group];
        if tx.execute(codes::SQL_USE_CODE, &args).await? == 0 {
            let issued: i64 = tx.query_one(codes::SQL_CODE_ISSUED, &args).await?.get(0);
            return Ok(Some(if issued > 0 {
                Reason::CodeUsed
            } else {
                Reason::CodeInvalid
            }));
        }
    }
    let hour = codes::counted_hour(&columns.submitted_at, at);
    for (kind, key) in sources(b, columns) {
        let count: i64 = tx
            .query_one(
                codes::SQL_SOURCE_BALLOT,
                &[&b.form_id, &b.form_version, &kind, &key, &hour],
            )
            .await?
            .get(0);
        let limit = codes::limit_of(&rules.limits, kind);
        if !rules.code_required && limit > 0 && count > limit {
            return Ok(Some(Reason::RateLimited));
        }
    }
    seen(tx, b, columns, at).await?;
    Ok(None)
}

/// Locks every row the checks of this batch's new ballots will count in (their sources
/// and their devices), in one sorted order, before any of them is changed. Batches sent at
/// once from devices behind one address otherwise take the same rows in different orders,
/// and PostgreSQL breaks the cycle by aborting one of them as a deadlock, over and over
/// under a burst. The ballots' own ids are taken before (sorted too), so every
/// transaction takes its locks in the same order: ids, then sources, then devices.
async fn lock_counted_rows(
    tx: &tokio_postgres::Transaction<'_>,
    batch: &[Incoming],
    inserted: &[bool],
    at: &str,
) -> Result<(), tokio_postgres::Error> {
    let mut rows = std::collections::BTreeSet::new();
    let mut devices = std::collections::BTreeSet::new();
    for (b, _) in batch.iter().zip(inserted).filter(|(_, new)| **new) {
        let columns = Columns::of(&b.ballot_json);
        let hour = codes::counted_hour(&columns.submitted_at, at);
        for (kind, key) in sources(b, &columns) {
            rows.insert((
                b.form_id.clone(),
                b.form_version.clone(),
                kind,
                key.to_string(),
                hour.clone(),
            ));
        }
        if !b.admission.address.is_empty() && !columns.device_id.is_empty() {
            devices.insert((columns.device_id.clone(), b.admission.address.clone()));
        }
    }
    for (form_id, version, kind, key, hour) in &rows {
        tx.execute(codes::SQL_SOURCE_LOCK, &[form_id, version, kind, key, hour])
            .await?;
    }
    for (device, address) in &devices {
        tx.execute(codes::SQL_DEVICE_SEEN, &[device, &at, address])
            .await?;
    }
    Ok(())
}

/// Records the arrival of a ballot as a contact of its device.
async fn seen(
    tx: &tokio_postgres::Transaction<'_>,
    b: &Incoming,
    columns: &Columns,
    at: &str,
) -> Result<(), tokio_postgres::Error> {
    if !b.admission.address.is_empty() && !columns.device_id.is_empty() {
        tx.execute(
            codes::SQL_DEVICE_SEEN,
            &[&columns.device_id, &at, &b.admission.address],
        )
        .await?;
    }
    Ok(())
}

/// Keeps a ballot the campaign refused, with its reason, and counts it for its sources.
async fn refused_in(
    tx: &tokio_postgres::Transaction<'_>,
    b: &Incoming,
    columns: &Columns,
    at: &str,
    reason: Reason,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        codes::SQL_REFUSAL,
        &[
            &b.response_id,
            &b.form_id,
            &b.form_version,
            &reason.message(),
            &b.ballot_json,
            &at,
            &reason.as_str(),
        ],
    )
    .await?;
    let hour = codes::counted_hour(&columns.submitted_at, at);
    for (kind, key) in sources(b, columns) {
        tx.execute(
            codes::SQL_SOURCE_REFUSED,
            &[&b.form_id, &b.form_version, &kind, &key, &hour],
        )
        .await?;
    }
    seen(tx, b, columns, at).await
}

/// A deadlock or serialization failure: PostgreSQL undid the transaction and it may simply
/// be run again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(s) if *s == SqlState::T_R_DEADLOCK_DETECTED || *s == SqlState::T_R_SERIALIZATION_FAILURE
    )
}

/// The error with its cause: tokio-postgres's own message is often just "error connecting
/// to server" or "db error", the cause says why.
fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return db.message().to_string();
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
