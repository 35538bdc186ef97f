//! The campaign's own records, on both backends: access codes (issued, used), the
//! decisions of the ballot intake beyond the form's checks (closed campaign, codes, rate
//! limits), arrivals per source, devices' heartbeats, meeting attendance, and the head
//! counts the scoring rules take as their denominators.
//!
//! The submit path itself (`submit_in` in sqlite.rs, `submit_once` in postgres.rs) runs
//! the SQL kept here, so both backends decide alike.

use std::collections::BTreeMap;

use analysis::access_code::AccessCode;
use analysis::rules::HeadCounts;
use rusqlite::params;
use serde::Serialize;

use super::{now, Backend, Store, StoreError};

/// Why the campaign refused a ballot (the `reason` of its result, and
/// `refusals.reason_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    /// It failed its form's checks (or was not a ballot).
    Invalid,
    /// Its campaign is closed.
    Closed,
    /// Its group needs an access code and it carried none.
    CodeMissing,
    /// Its code was not issued for this campaign and group.
    CodeInvalid,
    /// Its code was already used by another ballot.
    CodeUsed,
    /// Its device or client address delivered more ballots of open groups in the hour
    /// than allowed.
    RateLimited,
}

impl Reason {
    /// Every reason, in the order the API documents them.
    pub const ALL: [Reason; 6] = [
        Reason::Invalid,
        Reason::Closed,
        Reason::CodeMissing,
        Reason::CodeInvalid,
        Reason::CodeUsed,
        Reason::RateLimited,
    ];

    /// The machine-readable name: `invalid`, `closed`, `code_missing`, …
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Invalid => "invalid",
            Reason::Closed => "closed",
            Reason::CodeMissing => "code_missing",
            Reason::CodeInvalid => "code_invalid",
            Reason::CodeUsed => "code_used",
            Reason::RateLimited => "rate_limited",
        }
    }

    /// The reason named `name`, if any.
    pub fn parse(name: &str) -> Option<Reason> {
        Reason::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// The field of the ballot the refusal is about.
    pub fn path(self) -> &'static str {
        match self {
            Reason::Invalid => "",
            Reason::Closed => "form_version",
            Reason::CodeMissing | Reason::CodeInvalid | Reason::CodeUsed => "access_code",
            Reason::RateLimited => "device_id",
        }
    }

    /// What a person is told.
    pub fn message(self) -> &'static str {
        match self {
            Reason::Invalid => "the ballot failed its form's checks",
            Reason::Closed => {
                "this campaign is closed: the officials no longer take ballots for it; keep the \
                 ballot on the device and tell them"
            }
            Reason::CodeMissing => {
                "this group votes with an access code (投票码) and the ballot carries none; \
                 enter the code from your slip"
            }
            Reason::CodeInvalid => {
                "this access code was not issued for this form and group; check the code on \
                 your slip and the group chosen"
            }
            Reason::CodeUsed => {
                "this access code was already used: each code takes one ballot; ask the \
                 officials for help if you did not vote"
            }
            Reason::RateLimited => {
                "too many ballots came from this device or network address in this hour; the \
                 ballot is kept on the device, send it again later"
            }
        }
    }
}

/// Hours a ballot's claimed time may lie before its arrival and still count in its own
/// hour for the rate limits (see [`crate::config::RateLimits`]).
const HOURS_BACK: i64 = 48;

/// The hour (`YYYY-MM-DDTHH`, UTC) a ballot submitted at `submitted_at` and arriving at
/// `arrival` counts in for the rate limits: its own hour, kept within the two days before
/// its arrival.
pub(super) fn counted_hour(submitted_at: &str, arrival: &str) -> String {
    const HOUR: i64 = 3_600_000;
    let now = analysis::time::parse_rfc3339(arrival).unwrap_or(0);
    let claimed = analysis::time::parse_rfc3339(submitted_at).unwrap_or(now);
    let at = claimed.clamp(now - HOURS_BACK * HOUR, now);
    let hour = at - at.rem_euclid(HOUR);
    analysis::time::format_rfc3339(hour)[..13].to_string()
}

pub(super) const SQL_CLOSED: &str =
    "SELECT count(*) FROM closures WHERE form_id = $1 AND form_version = $2";

pub(super) const SQL_KEY: &str = "SELECT value FROM secrets WHERE name = 'code_key'";

/// Marks a code used; no row changed means it is unknown or already used.
pub(super) const SQL_USE_CODE: &str = "UPDATE access_codes SET used = 1 \
     WHERE code_hash = $1 AND form_id = $2 AND form_version = $3 AND \"group\" = $4 AND used = 0";

pub(super) const SQL_CODE_ISSUED: &str = "SELECT count(*) FROM access_codes \
     WHERE code_hash = $1 AND form_id = $2 AND form_version = $3 AND \"group\" = $4";

/// Counts a stored ballot for a source and hour, answering the count.
pub(super) const SQL_SOURCE_BALLOT: &str =
    "INSERT INTO sources (form_id, form_version, kind, key, hour, ballots, refused) \
     VALUES ($1, $2, $3, $4, $5, 1, 0) \
     ON CONFLICT (form_id, form_version, kind, key, hour) \
     DO UPDATE SET ballots = sources.ballots + 1 RETURNING ballots";

/// Makes a source's row if it is missing and locks it, changing nothing (PostgreSQL: an
/// upsert's update takes the row's lock).
pub(super) const SQL_SOURCE_LOCK: &str =
    "INSERT INTO sources (form_id, form_version, kind, key, hour, ballots, refused) \
     VALUES ($1, $2, $3, $4, $5, 0, 0) \
     ON CONFLICT (form_id, form_version, kind, key, hour) \
     DO UPDATE SET ballots = sources.ballots";

pub(super) const SQL_SOURCE_REFUSED: &str =
    "INSERT INTO sources (form_id, form_version, kind, key, hour, ballots, refused) \
     VALUES ($1, $2, $3, $4, $5, 0, 1) \
     ON CONFLICT (form_id, form_version, kind, key, hour) \
     DO UPDATE SET refused = sources.refused + 1";

/// A ballot's arrival is a contact of its device.
pub(super) const SQL_DEVICE_SEEN: &str =
    "INSERT INTO devices (device_id, last_contact, address, waiting) VALUES ($1, $2, $3, 0) \
     ON CONFLICT (device_id) DO UPDATE SET last_contact = excluded.last_contact, \
     address = excluded.address";

pub(super) const SQL_REFUSAL: &str =
    "INSERT INTO refusals (response_id, form_id, form_version, reason, raw, received_at, \
     reason_code) VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// `$1` → `?1`: SQLite's numbered parameters.
pub(super) fn sqlite(sql: &str) -> String {
    sql.replace('$', "?")
}

/// The rate limit a source kind is under, 0 for none.
pub(super) fn limit_of(limits: &super::RateLimits, kind: &str) -> i64 {
    i64::from(match kind {
        "device" => limits.per_device,
        _ => limits.per_address,
    })
}

/// The sources a ballot is counted for: its device and its client address. A ballot not
/// brought over HTTP (the CLI's imports) has no address and is counted for neither.
pub(super) fn sources<'a>(
    b: &'a super::Incoming,
    columns: &'a super::Columns,
) -> Vec<(&'static str, &'a str)> {
    let address = b.admission.address.as_str();
    if address.is_empty() {
        return Vec::new();
    }
    let mut kinds = Vec::with_capacity(2);
    if !columns.device_id.is_empty() {
        kinds.push(("device", columns.device_id.as_str()));
    }
    kinds.push(("address", address));
    kinds
}

/// Codes just issued: the only time they exist in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issued {
    /// The batch number, counted per campaign from 1.
    pub batch: i64,
    pub codes: Vec<AccessCode>,
}

/// Codes issued and used for one group of a campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CodeCount {
    pub group: String,
    pub issued: u64,
    pub used: u64,
}

/// A group's attendance at its meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attendance {
    pub group: String,
    /// Members present (实到).
    pub present: u64,
    /// All members (应到), when known.
    pub members: Option<u64>,
    pub recorded_at: String,
    pub recorded_by: String,
}

/// Where a campaign's ballots came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sources {
    pub devices: Vec<DeviceSource>,
    pub addresses: Vec<AddressSource>,
    pub refused_by_reason: Vec<ReasonCount>,
}

/// One device: its last contact and its counts for the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceSource {
    pub device_id: String,
    /// The address it last came from; null when it never came over HTTP.
    pub address: Option<String>,
    pub last_contact: Option<String>,
    /// Ballots it said were waiting on it at its last heartbeat.
    pub waiting: Option<u64>,
    pub ballots: u64,
    pub refused: u64,
}

/// One client address and its counts for the campaign.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressSource {
    pub address: String,
    pub ballots: u64,
    pub refused: u64,
}

/// Refused ballots of a campaign with one reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReasonCount {
    pub reason: &'static str,
    pub count: u64,
}

/// A device's heartbeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub device_id: String,
    pub address: String,
    pub waiting: u64,
    pub form_id: String,
    pub form_version: String,
}

/// Any number, the same in every Pingyi: serializes issuing on PostgreSQL, so two batches
/// issued at once get different numbers.
const ISSUE_LOCK: i64 = 0x5069_6e67_7949;

/// Tries to find a code whose hash is not taken before giving up (each try fails with a
/// chance of (codes issued) / 3.4 × 10¹⁰).
const TRIES_PER_CODE: usize = 20;

const SQL_NEW_KEY: &str =
    "INSERT INTO secrets (name, value) VALUES ('code_key', $1) ON CONFLICT (name) DO NOTHING";

const SQL_NEXT_BATCH: &str = "SELECT coalesce(max(batch), 0) + 1 FROM access_codes \
     WHERE form_id = $1 AND form_version = $2";

const SQL_NEW_CODE: &str = "INSERT INTO access_codes \
     (code_hash, form_id, form_version, \"group\", batch, issued_at, used) \
     VALUES ($1, $2, $3, $4, $5, $6, 0) ON CONFLICT (code_hash) DO NOTHING";

pub(super) const SQL_CODE_COUNTS: &str = "SELECT \"group\", count(*), CAST(sum(used) AS BIGINT) \
     FROM access_codes WHERE form_id = $1 AND form_version = $2 \
     GROUP BY \"group\" ORDER BY \"group\"";

pub(super) const SQL_ATTENDANCE: &str =
    "SELECT \"group\", present, members, recorded_at, recorded_by \
     FROM attendance WHERE form_id = $1 AND form_version = $2 ORDER BY \"group\"";

const SQL_RECORD_ATTENDANCE: &str = "INSERT INTO attendance \
     (form_id, form_version, \"group\", present, members, recorded_at, recorded_by) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (form_id, form_version, \"group\") DO UPDATE SET present = excluded.present, \
     members = excluded.members, recorded_at = excluded.recorded_at, \
     recorded_by = excluded.recorded_by";

const SQL_DEVICES: &str = "SELECT s.key, d.address, d.last_contact, d.waiting, \
     CAST(sum(s.ballots) AS BIGINT), CAST(sum(s.refused) AS BIGINT) \
     FROM sources s LEFT JOIN devices d ON d.device_id = s.key \
     WHERE s.form_id = $1 AND s.form_version = $2 AND s.kind = 'device' \
     GROUP BY s.key, d.address, d.last_contact, d.waiting ORDER BY s.key";

const SQL_ADDRESSES: &str = "SELECT key, CAST(sum(ballots) AS BIGINT), \
     CAST(sum(refused) AS BIGINT) FROM sources \
     WHERE form_id = $1 AND form_version = $2 AND kind = 'address' \
     GROUP BY key ORDER BY 2 DESC, key";

const SQL_REFUSED_BY_REASON: &str = "SELECT reason_code, count(*) FROM refusals \
     WHERE form_id = $1 AND form_version = $2 GROUP BY reason_code";

const SQL_HEARTBEAT: &str =
    "INSERT INTO devices (device_id, last_contact, address, waiting) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (device_id) DO UPDATE SET last_contact = excluded.last_contact, \
     address = excluded.address, waiting = excluded.waiting";

/// A heartbeat makes its device a source of the campaign it collects for, with no ballot
/// yet, so a device that cannot deliver is seen.
const SQL_HEARTBEAT_SOURCE: &str =
    "INSERT INTO sources (form_id, form_version, kind, key, hour, ballots, refused) \
     VALUES ($1, $2, 'device', $3, $4, 0, 0) \
     ON CONFLICT (form_id, form_version, kind, key, hour) DO NOTHING";

/// The rows of [`Store::sources`]: devices, addresses, refusals by reason.
type Device = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    i64,
    i64,
);
type Lists = (Vec<Device>, Vec<(String, i64, i64)>, Vec<(String, i64)>);

pub(super) fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// The head counts from codes (issued, used) and attendance (present, members).
pub(super) fn head_counts(
    codes: &[CodeCount],
    attendance: &[Attendance],
) -> BTreeMap<String, HeadCounts> {
    let mut heads: BTreeMap<String, HeadCounts> = BTreeMap::new();
    for c in codes {
        let h = heads.entry(c.group.clone()).or_default();
        h.issued = Some(c.issued);
        h.returned = Some(c.used);
    }
    for a in attendance {
        let h = heads.entry(a.group.clone()).or_default();
        h.present = Some(a.present);
        h.members = a.members;
    }
    heads
}

/// The refusals of a campaign, every reason listed (0 when none).
fn by_reason(rows: Vec<(String, i64)>) -> Vec<ReasonCount> {
    Reason::ALL
        .into_iter()
        .map(|reason| ReasonCount {
            reason: reason.as_str(),
            count: rows
                .iter()
                .filter(|(name, _)| name == reason.as_str())
                .map(|(_, n)| count(*n))
                .sum(),
        })
        .collect()
}

/// A random code, inside a write job (where errors are SQLite's).
fn fresh_code() -> rusqlite::Result<AccessCode> {
    crate::codes::new_code().map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
}

impl Store {
    /// Issues `count` new codes for `group` of a campaign, as one new batch: only their
    /// keyed hashes are stored, under the key made here the first time (in the same
    /// transaction, so a CLI and a running server agree on it). The caller checks that
    /// the group needs codes and the count is sensible.
    pub async fn issue_codes(
        &self,
        form_id: &str,
        version: &str,
        group: &str,
        count: usize,
    ) -> Result<Issued, StoreError> {
        let key = crate::codes::new_key().map_err(|e| StoreError::Other(e.to_string()))?;
        let (id, version, group) = (form_id.to_string(), version.to_string(), group.to_string());
        let exhausted = || {
            StoreError::Other(format!(
                "no unused code found in {TRIES_PER_CODE} tries; the codes are nearly exhausted"
            ))
        };
        match &*self.backend {
            Backend::Sqlite(s) => {
                let issued = s
                    .exec(move |conn, at| {
                        conn.execute(&sqlite(SQL_NEW_KEY), [&key])?;
                        let key: String = conn.query_row(&sqlite(SQL_KEY), [], |r| r.get(0))?;
                        let batch: i64 =
                            conn.query_row(&sqlite(SQL_NEXT_BATCH), [&id, &version], |r| r.get(0))?;
                        let mut insert = conn.prepare_cached(&sqlite(SQL_NEW_CODE))?;
                        let mut codes = Vec::with_capacity(count);
                        for _ in 0..count {
                            let mut found = None;
                            for _ in 0..TRIES_PER_CODE {
                                let code = fresh_code()?;
                                let hash = crate::codes::keyed_hash(&key, &code);
                                if insert.execute(params![hash, id, version, group, batch, at])?
                                    == 1
                                {
                                    found = Some(code);
                                    break;
                                }
                            }
                            match found {
                                Some(code) => codes.push(code),
                                None => return Ok(None),
                            }
                        }
                        Ok(Some(Issued { batch, codes }))
                    })
                    .await?;
                issued.ok_or_else(exhausted)
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let tx = client.transaction().await.map_err(fail)?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ISSUE_LOCK])
                    .await
                    .map_err(fail)?;
                tx.execute(SQL_NEW_KEY, &[&key]).await.map_err(fail)?;
                let key: String = tx.query_one(SQL_KEY, &[]).await.map_err(fail)?.get(0);
                let batch: i64 = tx
                    .query_one(SQL_NEXT_BATCH, &[&id, &version])
                    .await
                    .map_err(fail)?
                    .get(0);
                let insert = tx.prepare(SQL_NEW_CODE).await.map_err(fail)?;
                let at = now();
                let mut codes = Vec::with_capacity(count);
                for _ in 0..count {
                    let mut found = None;
                    for _ in 0..TRIES_PER_CODE {
                        let code = crate::codes::new_code()
                            .map_err(|e| StoreError::Other(e.to_string()))?;
                        let hash = crate::codes::keyed_hash(&key, &code);
                        let n = tx
                            .execute(&insert, &[&hash, &id, &version, &group, &batch, &at])
                            .await
                            .map_err(fail)?;
                        if n == 1 {
                            found = Some(code);
                            break;
                        }
                    }
                    codes.push(found.ok_or_else(exhausted)?);
                }
                tx.commit().await.map_err(fail)?;
                Ok(Issued { batch, codes })
            }
        }
    }

    /// Codes issued and used per group of a campaign, by group.
    pub async fn code_counts(
        &self,
        form_id: &str,
        version: &str,
    ) -> Result<Vec<CodeCount>, StoreError> {
        let (id, version) = (form_id.to_string(), version.to_string());
        let rows: Vec<(String, i64, i64)> = match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    let mut stmt = conn.prepare_cached(&sqlite(SQL_CODE_COUNTS))?;
                    let rows =
                        stmt.query_map([&id, &version], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
                    rows.collect()
                })
                .await?
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .query(SQL_CODE_COUNTS, &[&id, &version])
                    .await
                    .map_err(|e| s.error(e))?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect()
            }
        };
        Ok(rows
            .into_iter()
            .map(|(group, issued, used)| CodeCount {
                group,
                issued: count(issued),
                used: count(used),
            })
            .collect())
    }

    /// Records (or replaces) a group's attendance at its meeting; answers the row stored.
    pub async fn record_attendance(
        &self,
        form_id: &str,
        version: &str,
        group: &str,
        present: u64,
        members: Option<u64>,
        by: &str,
    ) -> Result<Attendance, StoreError> {
        let to_i64 = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let (present, members) = (to_i64(present), members.map(to_i64));
        let args = (
            form_id.to_string(),
            version.to_string(),
            group.to_string(),
            by.to_string(),
        );
        let at = match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    let (id, version, group, by) = &args;
                    conn.execute(
                        &sqlite(SQL_RECORD_ATTENDANCE),
                        params![id, version, group, present, members, at, by],
                    )?;
                    Ok(at.to_string())
                })
                .await?
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                let at = now();
                let (id, version, group, by) = &args;
                client
                    .execute(
                        SQL_RECORD_ATTENDANCE,
                        &[id, version, group, &present, &members, &at, by],
                    )
                    .await
                    .map_err(|e| s.error(e))?;
                at
            }
        };
        Ok(Attendance {
            group: group.to_string(),
            present: count(present),
            members: members.map(count),
            recorded_at: at,
            recorded_by: by.to_string(),
        })
    }

    /// The attendance recorded for a campaign, by group.
    pub async fn attendance(
        &self,
        form_id: &str,
        version: &str,
    ) -> Result<Vec<Attendance>, StoreError> {
        type Row = (String, i64, Option<i64>, String, String);
        let (id, version) = (form_id.to_string(), version.to_string());
        let rows: Vec<Row> = match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    let mut stmt = conn.prepare_cached(&sqlite(SQL_ATTENDANCE))?;
                    let rows = stmt.query_map([&id, &version], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                    })?;
                    rows.collect()
                })
                .await?
            }
            Backend::Postgres(s) => {
                let client = s.client().await?;
                client
                    .query(SQL_ATTENDANCE, &[&id, &version])
                    .await
                    .map_err(|e| s.error(e))?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                    .collect()
            }
        };
        Ok(rows
            .into_iter()
            .map(|(group, present, members, at, by)| Attendance {
                group,
                present: count(present),
                members: members.map(count),
                recorded_at: at,
                recorded_by: by,
            })
            .collect())
    }

    /// Head counts per group of a campaign, for the scoring rules' `denominator.groups`:
    /// issued = codes issued, returned = codes used, present and members from attendance.
    /// A group with neither codes nor attendance is absent.
    pub async fn head_counts(
        &self,
        form_id: &str,
        version: &str,
    ) -> Result<BTreeMap<String, HeadCounts>, StoreError> {
        let codes = self.code_counts(form_id, version).await?;
        let attendance = self.attendance(form_id, version).await?;
        Ok(head_counts(&codes, &attendance))
    }

    /// A device's heartbeat: its last contact, address and waiting ballots.
    pub async fn heartbeat(&self, beat: Heartbeat) -> Result<(), StoreError> {
        let waiting = i64::try_from(beat.waiting).unwrap_or(i64::MAX);
        match &*self.backend {
            Backend::Sqlite(s) => {
                s.exec(move |conn, at| {
                    let hour = &at[..13];
                    conn.execute(
                        &sqlite(SQL_HEARTBEAT),
                        params![beat.device_id, at, beat.address, waiting],
                    )?;
                    conn.execute(
                        &sqlite(SQL_HEARTBEAT_SOURCE),
                        params![beat.form_id, beat.form_version, beat.device_id, hour],
                    )?;
                    Ok(())
                })
                .await
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let tx = client.transaction().await.map_err(fail)?;
                let at = now();
                tx.execute(
                    SQL_HEARTBEAT,
                    &[&beat.device_id, &at, &beat.address, &waiting],
                )
                .await
                .map_err(fail)?;
                tx.execute(
                    SQL_HEARTBEAT_SOURCE,
                    &[
                        &beat.form_id,
                        &beat.form_version,
                        &beat.device_id,
                        &&at[..13],
                    ],
                )
                .await
                .map_err(fail)?;
                tx.commit().await.map_err(fail)
            }
        }
    }

    /// Where a campaign's ballots came from: devices, addresses, refusals by reason.
    pub async fn sources(&self, form_id: &str, version: &str) -> Result<Sources, StoreError> {
        let (id, version) = (form_id.to_string(), version.to_string());
        let (devices, addresses, reasons): Lists = match &*self.backend {
            Backend::Sqlite(s) => {
                s.read(move |conn| {
                    // One read transaction, so the three lists agree.
                    let tx = conn.unchecked_transaction()?;
                    let args = [&id, &version];
                    let devices = tx
                        .prepare_cached(&sqlite(SQL_DEVICES))?
                        .query_map(args, |r| {
                            Ok((
                                r.get(0)?,
                                r.get(1)?,
                                r.get(2)?,
                                r.get(3)?,
                                r.get(4)?,
                                r.get(5)?,
                            ))
                        })?
                        .collect::<rusqlite::Result<_>>()?;
                    let addresses = tx
                        .prepare_cached(&sqlite(SQL_ADDRESSES))?
                        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    let reasons = tx
                        .prepare_cached(&sqlite(SQL_REFUSED_BY_REASON))?
                        .query_map(args, |r| Ok((r.get(0)?, r.get(1)?)))?
                        .collect::<rusqlite::Result<_>>()?;
                    Ok((devices, addresses, reasons))
                })
                .await?
            }
            Backend::Postgres(s) => {
                let mut client = s.client().await?;
                let fail = |e| s.error(e);
                let tx = client
                    .build_transaction()
                    .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                    .read_only(true)
                    .start()
                    .await
                    .map_err(fail)?;
                let args: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&id, &version];
                let devices = tx
                    .query(SQL_DEVICES, &args)
                    .await
                    .map_err(fail)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
                    .collect();
                let addresses = tx
                    .query(SQL_ADDRESSES, &args)
                    .await
                    .map_err(fail)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2)))
                    .collect();
                let reasons = tx
                    .query(SQL_REFUSED_BY_REASON, &args)
                    .await
                    .map_err(fail)?
                    .iter()
                    .map(|r| (r.get(0), r.get(1)))
                    .collect();
                tx.commit().await.map_err(fail)?;
                (devices, addresses, reasons)
            }
        };
        Ok(Sources {
            devices: devices
                .into_iter()
                .map(
                    |(device_id, address, last_contact, waiting, ballots, refused)| DeviceSource {
                        device_id,
                        address,
                        last_contact,
                        waiting: waiting.map(count),
                        ballots: count(ballots),
                        refused: count(refused),
                    },
                )
                .collect(),
            addresses: addresses
                .into_iter()
                .map(|(address, ballots, refused)| AddressSource {
                    address,
                    ballots: count(ballots),
                    refused: count(refused),
                })
                .collect(),
            refused_by_reason: by_reason(reasons),
        })
    }
}
