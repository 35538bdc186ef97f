//! Ballot storage: one interface ([`Store`]) over two backends, an embedded SQLite file
//! (the default) and PostgreSQL (for a city or a province). This module owns what
//! "stored" means: a ballot is acknowledged only after the transaction that holds it is
//! committed durably, an id is stored once, a repeat is counted, and a conflicting
//! arrival (same id, other content) is kept with its content and counted.
//!
//! The schema lives in `server/migrations/<backend>/`, applied at open and recorded in
//! the `schema_version` table; docs/database.md describes it.

mod admin;
pub mod arrivals;
mod codes;
mod postgres;
mod read;

mod sqlite;

pub use admin::{AuditEntry, Closing, Closure, User, CLOSE_LOCK};
pub use codes::{
    AddressSource, Attendance, CodeCount, DeviceSource, Heartbeat, Issued, Reason, ReasonCount,
    Sources,
};
pub use read::{ReadError, Reader, StoredForm};

pub use crate::config::RateLimits;

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use analysis::error::quoted;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Where the ballots live, as given to `--database`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file (created on first open by [`Store::open`]).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://…` or `postgresql://…`).
    Postgres(String),
}

impl Database {
    /// Reads a `--database` value: `sqlite:PATH`, a plain file path, or
    /// `postgres://…` / `postgresql://…`.
    pub fn parse(s: &str) -> Result<Database, StoreError> {
        let expected = "expected sqlite:PATH, a file path, or postgres://USER@HOST:PORT/DATABASE";
        if s.trim().is_empty() {
            return Err(StoreError::Invalid(format!(
                "the database is empty, {expected}"
            )));
        }
        if let Some(path) = s.strip_prefix("sqlite:") {
            // `sqlite:///abs/path` and `sqlite://rel/path` are common spellings of a path.
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "the database {} names no file, {expected}",
                    quoted(s)
                )));
            }
            return Ok(Database::Sqlite(PathBuf::from(path)));
        }
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return match s.parse::<tokio_postgres::Config>() {
                Ok(_) => Ok(Database::Postgres(s.to_string())),
                Err(e) => Err(StoreError::Invalid(format!(
                    "the database {} is not a PostgreSQL URL ({e}), {expected}",
                    quoted(&redact(s))
                ))),
            };
        }
        if let Some((scheme, _)) = s.split_once("://") {
            let is_scheme = !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
            if is_scheme {
                return Err(StoreError::Invalid(format!(
                    "the database {} has the scheme {}, which Pingyi does not store in; {expected}",
                    quoted(&redact(s)),
                    quoted(scheme)
                )));
            }
        }
        Ok(Database::Sqlite(PathBuf::from(s)))
    }

    /// The backend's name: "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }
}

impl fmt::Display for Database {
    /// The database as a user would name it, with any password hidden.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Database::Sqlite(path) => write!(f, "sqlite:{}", path.display()),
            Database::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some(at) = rest.rfind('@') else {
        return url.to_string();
    };
    let (user_info, host) = rest.split_at(at);
    match user_info.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{host}"),
        None => url.to_string(),
    }
}

/// A form definition the server collects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormRecord {
    pub id: String,
    pub version: String,
    /// The form definition's JSON, as loaded.
    pub json: String,
}

/// A ballot that passed every check, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub response_id: String,
    pub form_id: String,
    pub form_version: String,
    /// Canonical JSON: `serde_json::to_string(&ballot)`.
    pub ballot_json: String,
    /// Hex SHA-256 of `ballot_json`: two arrivals with the same id are the same ballot
    /// exactly when their hashes agree.
    pub content_hash: String,
    /// The campaign's rules this ballot is admitted by, beyond its form's checks.
    pub admission: Admission,
}

/// What decides whether a well-formed ballot is taken by its campaign: the access code
/// of a restricted group, and the rate limits of open groups. [`Admission::default`]
/// (no code needed, no address, no limits) is how the CLI and tests bring ballots in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// The ballot's group needs an access code (the form marks it `code_required`).
    pub code_required: bool,
    /// The code it carried. Only its keyed hash is ever looked up; it is never stored.
    pub code: Option<analysis::access_code::AccessCode>,
    /// The client address it came from; "" when not over HTTP (no source is recorded).
    pub address: String,
    /// Ballots per source and hour taken for open groups.
    pub limits: RateLimits,
}

impl Default for Admission {
    fn default() -> Admission {
        Admission {
            code_required: false,
            code: None,
            address: String::new(),
            limits: RateLimits::OFF,
        }
    }
}

impl Incoming {
    pub fn from_ballot(b: &analysis::Ballot) -> Incoming {
        let ballot_json =
            serde_json::to_string(b).expect("a ballot is plain data and always serializes");
        let content_hash = Sha256::digest(ballot_json.as_bytes()).iter().fold(
            String::with_capacity(64),
            |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            },
        );
        Incoming {
            response_id: b.id.clone(),
            form_id: b.form_id.clone(),
            form_version: b.form_version.clone(),
            ballot_json,
            content_hash,
            admission: Admission::default(),
        }
    }
}

/// What became of one ballot brought to its campaign: an [`Outcome`], or refused by the
/// campaign's rules (kept in `refusals` with the reason and counted).
pub type Verdict = Result<Outcome, Reason>;

/// What became of one submitted ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// New: stored now.
    Stored,
    /// The same id with the same content was stored before; counted as a repeat.
    AlreadyStored,
    /// The same id with other content was stored before; this arrival is kept apart and counted.
    Conflict,
}

/// A ballot refused by the checks, kept as it came with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The id, or "" when the ballot had none.
    pub response_id: String,
    pub form_id: String,
    pub form_version: String,
    pub reason: String,
    /// The ballot's text as it arrived.
    pub raw: String,
}

/// What the store holds, for `/api/v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub ballots: u64,
    pub repeats: u64,
    pub conflicts: u64,
    pub refused: u64,
    pub by_form: Vec<FormCount>,
}

/// Ballots stored for one form version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FormCount {
    pub id: String,
    pub version: String,
    pub ballots: u64,
}

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database cannot take writes or answer now (disk full, read-only file, locked
    /// too long, connection lost); nothing of the request was stored. HTTP 503.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// A form with this id and version is already stored with another definition.
    #[error("form {id} version {version} is already collected with a different definition; give the changed form a new version")]
    FormChanged { id: String, version: String },
    /// A bad `--database` value or a file that is not a Pingyi database.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

/// The ballot store. Cheap to clone: every clone shares one backend.
#[derive(Clone)]
pub struct Store {
    backend: Arc<Backend>,
}

enum Backend {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

impl Store {
    /// Opens the database, creating the SQLite file and the schema when missing and
    /// applying any newer migration.
    pub async fn open(db: &Database) -> Result<Store, StoreError> {
        let backend = match db {
            Database::Sqlite(path) => Backend::Sqlite(sqlite::SqliteStore::open(path).await?),
            Database::Postgres(url) => Backend::Postgres(postgres::PgStore::open(url).await?),
        };
        Ok(Store {
            backend: Arc::new(backend),
        })
    }

    /// "sqlite" or "postgres".
    pub fn backend(&self) -> &'static str {
        match &*self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Records a form to collect; the same id and version again with the same JSON is a
    /// no-op, with other JSON [`StoreError::FormChanged`].
    pub async fn add_form(&self, f: &FormRecord) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.add_form(f).await,
            Backend::Postgres(s) => s.add_form(f).await,
        }
    }

    /// Every form collected, by id then version.
    pub async fn forms(&self) -> Result<Vec<FormRecord>, StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.forms().await,
            Backend::Postgres(s) => s.forms().await,
        }
    }

    /// One durable transaction: returns only after the commit is on disk (SQLite WAL with
    /// synchronous=FULL, PostgreSQL synchronous_commit on). Verdicts in input order. Each
    /// ballot is decided in this order: an id already stored is a repeat or a conflict (so
    /// a resent ballot never needs its code again); a closed campaign refuses it; a group
    /// that needs a code refuses it without one, with one not issued for the campaign and
    /// group, or with one already used; an open group refuses it past a rate limit; else it
    /// is stored and its code marked used, in this same transaction. A conflict is recorded
    /// (with its content) and counted; a repeat is counted; a refusal is kept with its reason.
    pub async fn admit(&self, batch: Vec<Incoming>) -> Result<Vec<Verdict>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        match &*self.backend {
            Backend::Sqlite(s) => s.submit(batch).await,
            Backend::Postgres(s) => s.submit(batch).await,
        }
    }

    /// [`Store::admit`] for callers whose ballots the campaign's rules should never refuse
    /// (the CLI's imports, tests). A ballot refused all the same (its campaign is closed)
    /// is kept and counted like any refusal, and the answer is an error naming it.
    pub async fn submit(&self, batch: Vec<Incoming>) -> Result<Vec<Outcome>, StoreError> {
        let ids: Vec<String> = batch.iter().map(|b| b.response_id.clone()).collect();
        let verdicts = self.admit(batch).await?;
        ids.iter()
            .zip(verdicts)
            .map(|(id, verdict)| {
                verdict.map_err(|reason| {
                    StoreError::Other(format!(
                        "ballot {} was refused: {}",
                        quoted(id),
                        reason.message()
                    ))
                })
            })
            .collect()
    }

    /// Keeps refused ballots (raw text + reason) and counts them, durably.
    pub async fn refuse(&self, refused: Vec<Refusal>) -> Result<(), StoreError> {
        if refused.is_empty() {
            return Ok(());
        }
        match &*self.backend {
            Backend::Sqlite(s) => s.refuse(refused).await,
            Backend::Postgres(s) => s.refuse(refused).await,
        }
    }

    pub async fn counts(&self) -> Result<Counts, StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.counts().await,
            Backend::Postgres(s) => s.counts().await,
        }
    }

    /// Succeeds when the database answers a query (for `/api/v1/health`).
    pub async fn check(&self) -> Result<(), StoreError> {
        match &*self.backend {
            Backend::Sqlite(s) => s.check().await,
            Backend::Postgres(s) => s.check().await,
        }
    }
}

/// The current time as stored in `added_at` / `received_at`.
fn now() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    analysis::time::format_rfc3339(millis)
}

/// The fields of a stored ballot kept in columns of their own, read from its canonical JSON.
#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Columns {
    device_id: String,
    group: String,
    submitted_at: String,
}

impl Columns {
    fn of(ballot_json: &str) -> Columns {
        serde_json::from_str(ballot_json).unwrap_or_default()
    }
}

/// Names a path in messages.
fn shown(path: &Path) -> String {
    path.display().to_string()
}
