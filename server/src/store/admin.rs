//! What the campaign console keeps, on both backends: officials (users) and their
//! sessions, the audit log, and closed campaigns; and the stream of a campaign's stored
//! ballots that its export is written from.
//!
//! Writes to SQLite go through the writer thread ([`super::sqlite::SqliteStore::exec`]),
//! so they never race the ballots' group commits.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now, Backend, Store, StoreError};

/// An official's account, without the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub name: String,
    /// `admin` or `viewer`.
    pub role: String,
    pub created_at: String,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    pub address: String,
    pub action: String,
    pub detail: String,
}

/// A closed campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Closure {
    #[serde(skip)]
    pub form_id: String,
    #[serde(skip)]
    pub form_version: String,
    pub closed_at: String,
    pub closed_by: String,
    pub ballots: u64,
    /// Hex SHA-256 of the final CSV export; empty until it is computed (right after the
    /// closure is recorded).
    pub sha256: String,
}

/// What [`Store::close`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closing {
    /// Recorded now.
    Closed(Closure),
    /// It was closed before; nothing changed.
    AlreadyClosed(Closure),
}

/// Any number, the same in every Pingyi: a closure takes it exclusively on PostgreSQL, so
/// a ballot transaction that takes it shared (before it checks `closures`) either commits
/// before the closure counts the ballots or sees the closure.
pub const CLOSE_LOCK: i64 = 0x5069_6e67_7943;

const SQL_CLOSURE: &str = "SELECT form_id, form_version, closed_at, closed_by, ballots, sha256 \
                           FROM closures";

/// The same order as `Reader::ballots` (received, then id), so an export made by the
/// server has the bytes `pingyi export` writes.
const SQL_BALLOTS: &str = "SELECT ballot FROM ballots WHERE form_id = $1 AND form_version = $2 \
                           ORDER BY received_at, response_id";

fn closure_of_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Closure> {
    Ok(Closure {
        form_id: r.get(0)?,
        form_version: r.get(1)?,
        closed_at: r.get(2)?,
        closed_by: r.get(3)?,
        ballots: r.get::<_, i64>(4)? as u64,
        sha256: r.get(5)?,
    })
}

fn closure_of_pg(r: &tokio_postgres::Row) -> Closure {
    Closure {
        form_id: r.get(0),
        form_version: r.get(1),
        closed_at: r.get(2),
        closed_by: r.get(3),
        ballots: r.get::<_, i64>(4) as u64,
        sha256: r.get(5),
    }
}

impl Store {
    /// Adds an official; `false` when the name is taken (nothing changed).
    pub async fn add_user(
        &self,
        name: &str,
        role: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let (name, role, hash) = (
            name.to_string(),
            role.to_string(),
            password_hash.to_string(),
        );
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    conn.execute(
                        "INSERT INTO users (name, role, password_hash, created_at) \
                         VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING",
                        params![name, role, hash, at],
                    )
                    .map(|n| n == 1)
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .execute(
                        "INSERT INTO users (name, role, password_hash, created_at) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING",
                        &[&name, &role, &hash, &now()],
                    )
                    .await
                    .map(|n| n == 1)
                    .map_err(|e| s.error(e))
            }
        }
    }

    /// Every official, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        const SQL: &str = "SELECT name, role, created_at FROM users ORDER BY name";
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(|conn| {
                    let mut stmt = conn.prepare_cached(SQL)?;
                    let rows = stmt.query_map([], |r| {
                        Ok(User {
                            name: r.get(0)?,
                            role: r.get(1)?,
                            created_at: r.get(2)?,
                        })
                    })?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let rows = client.query(SQL, &[]).await.map_err(|e| s.error(e))?;
                Ok(rows
                    .iter()
                    .map(|r| User {
                        name: r.get(0),
                        role: r.get(1),
                        created_at: r.get(2),
                    })
                    .collect())
            }
        }
    }

    /// Removes an official and their sessions; `false` when there was none of that name.
    pub async fn remove_user(&self, name: &str) -> Result<bool, StoreError> {
        self.change_user(name, None).await
    }

    /// Replaces an official's password and ends their sessions; `false` when there is
    /// none of that name.
    pub async fn set_password(&self, name: &str, password_hash: &str) -> Result<bool, StoreError> {
        self.change_user(name, Some(password_hash.to_string()))
            .await
    }

    /// Ends the user's sessions, then sets the password (`Some`) or removes the user.
    async fn change_user(&self, name: &str, hash: Option<String>) -> Result<bool, StoreError> {
        let name = name.to_string();
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, _| {
                    conn.execute("DELETE FROM sessions WHERE user_name = ?1", [&name])?;
                    let n = match &hash {
                        Some(hash) => conn.execute(
                            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                            params![name, hash],
                        )?,
                        None => conn.execute("DELETE FROM users WHERE name = ?1", [&name])?,
                    };
                    Ok(n == 1)
                })
                .await
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let tx = client.transaction().await.map_err(fail)?;
                tx.execute("DELETE FROM sessions WHERE user_name = $1", &[&name])
                    .await
                    .map_err(fail)?;
                let n = match &hash {
                    Some(hash) => tx
                        .execute(
                            "UPDATE users SET password_hash = $2 WHERE name = $1",
                            &[&name, hash],
                        )
                        .await
                        .map_err(fail)?,
                    None => tx
                        .execute("DELETE FROM users WHERE name = $1", &[&name])
                        .await
                        .map_err(fail)?,
                };
                tx.commit().await.map_err(fail)?;
                Ok(n == 1)
            }
        }
    }

    /// The role and password hash (PHC string) of the official `name`, if there is one.
    pub async fn credentials(&self, name: &str) -> Result<Option<(String, String)>, StoreError> {
        const SQL: &str = "SELECT role, password_hash FROM users WHERE name = $1";
        let name = name.to_string();
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    conn.query_row(&SQL.replace('$', "?"), [&name], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let row = client
                    .query_opt(SQL, &[&name])
                    .await
                    .map_err(|e| s.error(e))?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            }
        }
    }

    /// Records a session (only its token's hash), removing sessions that have expired.
    pub async fn add_session(
        &self,
        token_hash: &str,
        name: &str,
        expires_at: &str,
        address: &str,
    ) -> Result<(), StoreError> {
        let (token, name, expires, address) = (
            token_hash.to_string(),
            name.to_string(),
            expires_at.to_string(),
            address.to_string(),
        );
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    conn.execute("DELETE FROM sessions WHERE expires_at <= ?1", [at])?;
                    conn.execute(
                        "INSERT INTO sessions (token_hash, user_name, created_at, expires_at, \
                         address) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![token, name, at, expires, address],
                    )
                    .map(drop)
                })
                .await
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let at = now();
                let tx = client.transaction().await.map_err(fail)?;
                tx.execute("DELETE FROM sessions WHERE expires_at <= $1", &[&at])
                    .await
                    .map_err(fail)?;
                tx.execute(
                    "INSERT INTO sessions (token_hash, user_name, created_at, expires_at, \
                     address) VALUES ($1, $2, $3, $4, $5)",
                    &[&token, &name, &at, &expires, &address],
                )
                .await
                .map_err(fail)?;
                tx.commit().await.map_err(fail)
            }
        }
    }

    /// The name and role of the session whose token hashes to `token_hash`, unless it has
    /// expired or its user was removed.
    pub async fn session(&self, token_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        const SQL: &str = "SELECT u.name, u.role FROM sessions s JOIN users u \
                           ON u.name = s.user_name WHERE s.token_hash = $1 AND s.expires_at > $2";
        let (token, at) = (token_hash.to_string(), now());
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    conn.query_row(&SQL.replace('$', "?"), [&token, &at], |r| {
                        Ok((r.get(0)?, r.get(1)?))
                    })
                    .optional()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let row = client
                    .query_opt(SQL, &[&token, &at])
                    .await
                    .map_err(|e| s.error(e))?;
                Ok(row.map(|r| (r.get(0), r.get(1))))
            }
        }
    }

    /// Ends a session (sign-out); nothing happens when there is none.
    pub async fn remove_session(&self, token_hash: &str) -> Result<(), StoreError> {
        let token = token_hash.to_string();
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, _| {
                    conn.execute("DELETE FROM sessions WHERE token_hash = ?1", [&token])
                        .map(drop)
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .execute("DELETE FROM sessions WHERE token_hash = $1", &[&token])
                    .await
                    .map(drop)
                    .map_err(|e| s.error(e))
            }
        }
    }

    /// Appends a line to the audit log, stamped with the current time.
    pub async fn audit(
        &self,
        user: &str,
        address: &str,
        action: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        let (user, address, action, detail) = (
            user.to_string(),
            address.to_string(),
            action.to_string(),
            detail.to_string(),
        );
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    conn.execute(
                        "INSERT INTO audit (at, user_name, address, action, detail) \
                         VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![at, user, address, action, detail],
                    )
                    .map(drop)
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .execute(
                        "INSERT INTO audit (at, user_name, address, action, detail) \
                         VALUES ($1, $2, $3, $4, $5)",
                        &[&now(), &user, &address, &action, &detail],
                    )
                    .await
                    .map(drop)
                    .map_err(|e| s.error(e))
            }
        }
    }

    /// The newest `limit` lines of the audit log, newest first.
    pub async fn audit_entries(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        const SQL: &str = "SELECT at, user_name, address, action, detail FROM audit \
                           ORDER BY seq DESC LIMIT $1";
        let limit = i64::from(limit);
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    let mut stmt = conn.prepare_cached(&SQL.replace('$', "?"))?;
                    let rows = stmt.query_map([limit], |r| {
                        Ok(AuditEntry {
                            at: r.get(0)?,
                            user: r.get(1)?,
                            address: r.get(2)?,
                            action: r.get(3)?,
                            detail: r.get(4)?,
                        })
                    })?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let rows = client.query(SQL, &[&limit]).await.map_err(|e| s.error(e))?;
                Ok(rows
                    .iter()
                    .map(|r| AuditEntry {
                        at: r.get(0),
                        user: r.get(1),
                        address: r.get(2),
                        action: r.get(3),
                        detail: r.get(4),
                    })
                    .collect())
            }
        }
    }

    /// Every closed campaign.
    pub async fn closures(&self) -> Result<Vec<Closure>, StoreError> {
        let sql = format!("{SQL_CLOSURE} ORDER BY form_id, form_version");
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    let mut stmt = conn.prepare_cached(&sql)?;
                    let rows = stmt.query_map([], closure_of_sqlite)?;
                    rows.collect()
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let rows = client.query(&sql, &[]).await.map_err(|e| s.error(e))?;
                Ok(rows.iter().map(closure_of_pg).collect())
            }
        }
    }

    /// Closes a campaign in one write: the closure with the ballots stored at that
    /// moment. Its `sha256` is empty until [`Store::set_closure_sha256`].
    pub async fn close(
        &self,
        form_id: &str,
        form_version: &str,
        by: &str,
    ) -> Result<Closing, StoreError> {
        let (id, version, by) = (
            form_id.to_string(),
            form_version.to_string(),
            by.to_string(),
        );
        let existing = format!("{SQL_CLOSURE} WHERE form_id = $1 AND form_version = $2");
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    let sql = existing.replace('$', "?");
                    if let Some(c) = conn
                        .query_row(&sql, [&id, &version], closure_of_sqlite)
                        .optional()?
                    {
                        return Ok(Closing::AlreadyClosed(c));
                    }
                    conn.execute(
                        "INSERT INTO closures (form_id, form_version, closed_at, closed_by, \
                         ballots, sha256) SELECT ?1, ?2, ?3, ?4, count(*), '' FROM ballots \
                         WHERE form_id = ?1 AND form_version = ?2",
                        params![id, version, at, by],
                    )?;
                    conn.query_row(&sql, [&id, &version], closure_of_sqlite)
                        .map(Closing::Closed)
                })
                .await
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let tx = client.transaction().await.map_err(fail)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLOSE_LOCK])
                    .await
                    .map_err(fail)?;
                if let Some(r) = tx
                    .query_opt(&existing, &[&id, &version])
                    .await
                    .map_err(fail)?
                {
                    return Ok(Closing::AlreadyClosed(closure_of_pg(&r)));
                }
                tx.execute(
                    "INSERT INTO closures (form_id, form_version, closed_at, closed_by, \
                     ballots, sha256) SELECT $1, $2, $3, $4, count(*), '' FROM ballots \
                     WHERE form_id = $1 AND form_version = $2",
                    &[&id, &version, &now(), &by],
                )
                .await
                .map_err(fail)?;
                let row = tx
                    .query_one(&existing, &[&id, &version])
                    .await
                    .map_err(fail)?;
                tx.commit().await.map_err(fail)?;
                Ok(Closing::Closed(closure_of_pg(&row)))
            }
        }
    }

    /// Stores the final export's checksum of a closed campaign whose checksum is still
    /// empty (a closure's checksum never changes once set).
    pub async fn set_closure_sha256(
        &self,
        form_id: &str,
        form_version: &str,
        sha256: &str,
    ) -> Result<(), StoreError> {
        let (id, version, sha) = (
            form_id.to_string(),
            form_version.to_string(),
            sha256.to_string(),
        );
        const SQL: &str = "UPDATE closures SET sha256 = $3 \
                           WHERE form_id = $1 AND form_version = $2 AND sha256 = ''";
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, _| {
                    conn.execute(&SQL.replace('$', "?"), params![id, version, sha])
                        .map(drop)
                })
                .await
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .execute(SQL, &[&id, &version, &sha])
                    .await
                    .map(drop)
                    .map_err(|e| s.error(e))
            }
        }
    }

    /// Calls `each` with `acc` and the canonical JSON of every stored ballot of the
    /// campaign, in the order `pingyi export` writes them, one row at a time, in one
    /// snapshot; returns `acc`. A failure of `each` stops the reading: `Err(Ok(e))`.
    pub async fn each_ballot<T, E>(
        &self,
        form_id: &str,
        form_version: &str,
        mut acc: T,
        each: impl Fn(&mut T, &str) -> Result<(), E> + Send + 'static,
    ) -> Result<T, Result<E, StoreError>>
    where
        T: Send + 'static,
        E: Send + 'static,
    {
        let (id, version) = (form_id.to_string(), form_version.to_string());
        match &*self.backend {
            Backend::Sqlite(s) => {
                let read = s
                    .read(move |conn| {
                        // One read transaction: one snapshot, however long the reading.
                        let tx = conn.unchecked_transaction()?;
                        let mut stmt = tx.prepare(&SQL_BALLOTS.replace('$', "?"))?;
                        let mut rows = stmt.query([&id, &version])?;
                        while let Some(row) = rows.next()? {
                            let json: String = row.get(0)?;
                            if let Err(e) = each(&mut acc, &json) {
                                return Ok(Err(e));
                            }
                        }
                        Ok(Ok(acc))
                    })
                    .await;
                match read {
                    Ok(Ok(acc)) => Ok(acc),
                    Ok(Err(e)) => Err(Ok(e)),
                    Err(e) => Err(Err(e)),
                }
            }
            Backend::Postgres(s) => {
                use futures_util::{pin_mut, TryStreamExt};
                let mut client = s.client().await.map_err(Err)?;
                let fail = |e| Err(s.error(e));
                // One snapshot for the whole read, as `pingyi export` has.
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(fail)?;
                let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, &version];
                {
                    let rows = tx.query_raw(SQL_BALLOTS, params).await.map_err(fail)?;
                    pin_mut!(rows);
                    while let Some(row) = rows.try_next().await.map_err(fail)? {
                        let json: &str = row.get(0);
                        each(&mut acc, json).map_err(Ok)?;
                    }
                }
                tx.commit().await.map_err(fail)?;
                Ok(acc)
            }
        }
    }
}
