//! The campaign's own records, on both backends: access codes (issued, used), the
//! decisions of the ballot intake beyond the form's checks (closed campaign, codes, rate
//! limits), arrivals per source, devices' heartbeats, meeting attendance, and the head
//! counts the scoring rules take as their denominators.
//!
//! The submit path itself (`submit_in` in sqlite.rs, `submit_once` in postgres.rs) runs
//! the SQL kept here, so both backends decide alike.

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
