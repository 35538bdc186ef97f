-- Pingyi 评议 collection store, SQLite, schema version 2: the campaign console.
-- Officials and their sessions, the audit log, access codes (投票码), meeting
-- attendance, closed campaigns, and arrivals per device and address.

-- An official who signs in to the console. `password_hash` is an argon2id PHC string.
CREATE TABLE users (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    password_hash TEXT NOT NULL,
    created_at    TEXT NOT NULL
);

-- A signed-in session. Only the hex SHA-256 of the cookie's token is stored.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    address    TEXT NOT NULL
);

-- Who did what, when, from where: sign-ins (also failed), exports, codes issued,
-- attendance recorded, campaigns closed, forms changed.
CREATE TABLE audit (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    at        TEXT NOT NULL,
    user_name TEXT NOT NULL,
    address   TEXT NOT NULL,
    action    TEXT NOT NULL,
    detail    TEXT NOT NULL
);

-- Server secrets made at first start (the key of the access codes' keyed hashes).
CREATE TABLE secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- One-time access codes of restricted groups, stored only as keyed hashes. `used` is
-- 0 or 1 and deliberately carries no time, so a code cannot be matched to a ballot by
-- its arrival.
CREATE TABLE access_codes (
    code_hash    TEXT PRIMARY KEY,
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    "group"      TEXT NOT NULL,
    batch        INTEGER NOT NULL,
    issued_at    TEXT NOT NULL,
    used         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX access_codes_by_group ON access_codes (form_id, form_version, "group");

-- Members present (实到) and all members (应到) of a group at its meeting.
CREATE TABLE attendance (
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    "group"      TEXT NOT NULL,
    present      INTEGER NOT NULL,
    members      INTEGER,
    recorded_at  TEXT NOT NULL,
    recorded_by  TEXT NOT NULL,
    PRIMARY KEY (form_id, form_version, "group")
);

-- A closed campaign: no ballot is taken after `closed_at`; its final export's SHA-256.
CREATE TABLE closures (
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    closed_at    TEXT NOT NULL,
    closed_by    TEXT NOT NULL,
    ballots      INTEGER NOT NULL,
    sha256       TEXT NOT NULL,
    PRIMARY KEY (form_id, form_version)
);

-- Arrivals per source and hour, for the rate limits of open groups and for the
-- dashboard's view of stuffing. `kind` is 'device' (the ballot's device_id) or
-- 'address' (the client address); `hour` is 'YYYY-MM-DDTHH'.
CREATE TABLE sources (
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('device', 'address')),
    key          TEXT NOT NULL,
    hour         TEXT NOT NULL,
    ballots      INTEGER NOT NULL DEFAULT 0,
    refused      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (form_id, form_version, kind, key, hour)
);

-- Each device's last contact with the server and the ballots it said were waiting.
CREATE TABLE devices (
    device_id    TEXT PRIMARY KEY,
    last_contact TEXT NOT NULL,
    address      TEXT NOT NULL,
    waiting      INTEGER NOT NULL
);

-- Refused ballots get a machine-readable reason beside the words: 'invalid' (failed the
-- form's checks), 'closed', 'code_missing', 'code_invalid', 'code_used', 'rate_limited'.
ALTER TABLE refusals ADD COLUMN reason_code TEXT NOT NULL DEFAULT 'invalid';
