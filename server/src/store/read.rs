//! Reading a campaign back, for the command line (`pingyi export`, `score`, `aggregate`):
//! blocking calls, a database that must already exist (nothing is created or migrated),
//! one snapshot for the reader's life (a server may go on collecting meanwhile), and
//! ballots handed over one row at a time, never collected (SQLite statement iteration;
//! PostgreSQL a row stream), so a province's millions fit in any memory.

use std::collections::BTreeMap;
use std::path::Path;

use analysis::rules::HeadCounts;

use futures_util::{pin_mut, TryStreamExt};
use rusqlite::{Connection, OpenFlags};

use super::codes::{self, Attendance, CodeCount};
use super::{redact, shown, Database, FormRecord, StoreError};

/// A form the database holds, with the number of ballots stored for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredForm {
    pub form: FormRecord,
    pub ballots: u64,
}

/// Why reading the ballots stopped: the database failed, or the caller's `each` did.
#[derive(Debug)]
pub enum ReadError<E> {
    Store(StoreError),
    Stopped(E),
}

/// An open database, read-only in intent (it never writes).
pub struct Reader {
    shown: String,
    inner: Inner,
}

enum Inner {
    Sqlite {
        conn: Connection,
        path: std::path::PathBuf,
    },
    Postgres {
        runtime: tokio::runtime::Runtime,
        client: tokio_postgres::Client,
    },
}

/// Ballots of one form version in the order they were received.
const SQL_BALLOTS: &str = "SELECT ballot FROM ballots WHERE form_id = $1 AND form_version = $2 \
                           ORDER BY received_at, response_id";

const SQL_FORMS: &str = "SELECT f.id, f.version, f.json, \
     (SELECT count(*) FROM ballots b WHERE b.form_id = f.id AND b.form_version = f.version) \
     FROM forms f ORDER BY f.id, f.version";

impl Reader {
    /// Opens an existing Pingyi database. Must not be called from inside a tokio runtime
    /// (it runs one of its own for PostgreSQL).
    pub fn open(db: &Database) -> Result<Reader, StoreError> {
        match db {
            Database::Sqlite(path) => open_sqlite(path),
            Database::Postgres(url) => open_postgres(url),
        }
    }

    /// The database as messages name it (`sqlite:PATH`, or the URL without its password).
    pub fn name(&self) -> &str {
        &self.shown
    }

    /// Every form the database holds, by id then version, with its ballot count.
    pub fn forms(&mut self) -> Result<Vec<StoredForm>, StoreError> {
        let shown = self.shown.clone();
        match &mut self.inner {
            Inner::Sqlite { conn, path } => {
                let sql = SQL_FORMS.replace('$', "?");
                let rows = (|| {
                    let mut stmt = conn.prepare(&sql)?;
                    let rows = stmt.query_map([], |r| {
                        Ok(StoredForm {
                            form: FormRecord {
                                id: r.get(0)?,
                                version: r.get(1)?,
                                json: r.get(2)?,
                            },
                            ballots: r.get::<_, i64>(3)? as u64,
                        })
                    })?;
                    rows.collect::<rusqlite::Result<Vec<_>>>()
                })();
                rows.map_err(|e| super::sqlite::error(path, e))
            }
            Inner::Postgres { runtime, client } => runtime
                .block_on(client.query(SQL_FORMS, &[]))
                .map(|rows| {
                    rows.iter()
                        .map(|r| StoredForm {
                            form: FormRecord {
                                id: r.get(0),
                                version: r.get(1),
                                json: r.get(2),
                            },
                            ballots: r.get::<_, i64>(3) as u64,
                        })
                        .collect()
                })
                .map_err(|e| pg_error(&shown, e)),
        }
    }

    /// Calls `each` with the canonical JSON of every ballot of `form_id` `form_version`,
    /// in the order they were received, one row at a time.
    pub fn ballots<E>(
        &mut self,
        form_id: &str,
        form_version: &str,
        mut each: impl FnMut(&str) -> Result<(), E>,
    ) -> Result<(), ReadError<E>> {
        let shown = self.shown.clone();
        match &mut self.inner {
            Inner::Sqlite { conn, path } => {
                let fail = |e| ReadError::Store(super::sqlite::error(path, e));
                let sql = SQL_BALLOTS.replace('$', "?");
                let mut stmt = conn.prepare(&sql).map_err(fail)?;
                let mut rows = stmt.query([form_id, form_version]).map_err(fail)?;
                while let Some(row) = rows.next().map_err(fail)? {
                    let json = row.get_ref(0).map_err(fail)?;
                    let text = json.as_str().map_err(|e| fail(e.into()))?;
                    each(text).map_err(ReadError::Stopped)?;
                }
                Ok(())
            }
            Inner::Postgres { runtime, client } => runtime.block_on(async {
                let fail = |e| ReadError::Store(pg_error(&shown, e));
                let rows = client
                    .query_raw(SQL_BALLOTS, [form_id, form_version])
                    .await
                    .map_err(fail)?;
                pin_mut!(rows);
                while let Some(row) = rows.try_next().await.map_err(fail)? {
                    each(row.get::<_, &str>(0)).map_err(ReadError::Stopped)?;
                }
                Ok(())
            }),
        }
    }
}

impl Reader {
    /// Head counts per group of a campaign, as [`super::Store::head_counts`] gives them:
    /// issued = codes issued, returned = codes used, present and members from attendance.
    /// A database older than the access codes has none.
    pub fn head_counts(
        &mut self,
        form_id: &str,
        form_version: &str,
    ) -> Result<BTreeMap<String, HeadCounts>, StoreError> {
        let shown = self.shown.clone();
        let (codes, attendance) = match &mut self.inner {
            Inner::Sqlite { conn, path } => {
                let read = || -> rusqlite::Result<(Vec<CodeCount>, Vec<Attendance>)> {
                    let has_codes: bool = conn.query_row(
                        "SELECT count(*) = 1 FROM sqlite_master WHERE name = 'access_codes'",
                        [],
                        |r| r.get(0),
                    )?;
                    if !has_codes {
                        return Ok((Vec::new(), Vec::new()));
                    }
                    let args = [form_id, form_version];
                    let codes = conn
                        .prepare(&codes::sqlite(codes::SQL_CODE_COUNTS))?
                        .query_map(args, |r| {
                            Ok(CodeCount {
                                group: r.get(0)?,
                                issued: codes::count(r.get(1)?),
                                used: codes::count(r.get(2)?),
                            })
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let attendance = conn
                        .prepare(&codes::sqlite(codes::SQL_ATTENDANCE))?
                        .query_map(args, |r| {
                            Ok(Attendance {
                                group: r.get(0)?,
                                present: codes::count(r.get(1)?),
                                members: r.get::<_, Option<i64>>(2)?.map(codes::count),
                                recorded_at: r.get(3)?,
                                recorded_by: r.get(4)?,
                            })
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    Ok((codes, attendance))
                };
                read().map_err(|e| super::sqlite::error(path, e))?
            }
            Inner::Postgres { runtime, client } => runtime
                .block_on(async {
                    let has_codes: bool = client
                        .query_one("SELECT to_regclass('access_codes') IS NOT NULL", &[])
                        .await?
                        .get(0);
                    if !has_codes {
                        return Ok((Vec::new(), Vec::new()));
                    }
                    let codes = client
                        .query(codes::SQL_CODE_COUNTS, &[&form_id, &form_version])
                        .await?
                        .iter()
                        .map(|r| CodeCount {
                            group: r.get(0),
                            issued: codes::count(r.get(1)),
                            used: codes::count(r.get(2)),
                        })
                        .collect();
                    let attendance = client
                        .query(codes::SQL_ATTENDANCE, &[&form_id, &form_version])
                        .await?
                        .iter()
                        .map(|r| Attendance {
                            group: r.get(0),
                            present: codes::count(r.get(1)),
                            members: r.get::<_, Option<i64>>(2).map(codes::count),
                            recorded_at: r.get(3),
                            recorded_by: r.get(4),
                        })
                        .collect();
                    Ok((codes, attendance))
                })
                .map_err(|e| pg_error(&shown, e))?,
        };
        Ok(codes::head_counts(&codes, &attendance))
    }
}

fn open_sqlite(path: &Path) -> Result<Reader, StoreError> {
    let shown_path = shown(path);
    if !path.is_file() {
        return Err(StoreError::Invalid(format!(
            "sqlite:{shown_path}: no such file, expected a database written by `pingyi serve`"
        )));
    }
    // Read-write without create: WAL readers need the -shm file, and a missing file must
    // not be made here.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let fail = |e| super::sqlite::error(path, e);
    let conn = Connection::open_with_flags(path, flags).map_err(fail)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(fail)?;
    conn.pragma_update(None, "query_only", "ON").map_err(fail)?;
    // One read transaction for the reader's life: every pass (scoring reads twice) sees
    // the same ballots, even while a server goes on collecting.
    conn.execute_batch("BEGIN").map_err(fail)?;
    let pingyi: bool = conn
        .query_row(
            "SELECT count(*) = 1 FROM sqlite_master WHERE name = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .map_err(fail)?;
    if !pingyi {
        return Err(StoreError::Invalid(format!(
            "sqlite:{shown_path} is not a Pingyi database (it has no schema_version table), \
             expected a database written by `pingyi serve`"
        )));
    }
    Ok(Reader {
        shown: format!("sqlite:{shown_path}"),
        inner: Inner::Sqlite {
            conn,
            path: path.to_path_buf(),
        },
    })
}

fn open_postgres(url: &str) -> Result<Reader, StoreError> {
    let shown = redact(url);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Other(format!("cannot start a runtime to read {shown}: {e}")))?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| StoreError::Invalid(format!("{shown} is not a PostgreSQL URL: {e}")))?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(std::time::Duration::from_secs(10));
    }
    config.application_name("pingyi");
    let client = runtime.block_on(async {
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| pg_error(&shown, e))?;
        tokio::spawn(connection);
        // One snapshot for the reader's life, as for SQLite.
        client
            .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .map_err(|e| pg_error(&shown, e))?;
        let pingyi: bool = client
            .query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])
            .await
            .map_err(|e| pg_error(&shown, e))?
            .get(0);
        if !pingyi {
            return Err(StoreError::Invalid(format!(
                "{shown} is not a Pingyi database (it has no schema_version table), expected \
                 a database written by `pingyi serve --database {shown}`"
            )));
        }
        Ok(client)
    })?;
    Ok(Reader {
        shown,
        inner: Inner::Postgres { runtime, client },
    })
}

fn pg_error(shown: &str, e: tokio_postgres::Error) -> StoreError {
    super::postgres::error(shown, e)
}
