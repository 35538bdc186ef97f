-- Pingyi 评议 collection store, SQLite, schema version 1.
-- Times are RFC 3339 text in UTC with milliseconds (2026-11-23T09:30:00.000Z).

-- A form definition the server collects, exactly as it was loaded.
CREATE TABLE forms (
    id       TEXT NOT NULL,
    version  TEXT NOT NULL,
    json     TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (id, version)
);

-- One row per accepted ballot, keyed by the id the device made. `ballot` is the
-- canonical JSON (analysis::Ballot); `content_hash` its hex SHA-256.
CREATE TABLE ballots (
    response_id  TEXT PRIMARY KEY,
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    device_id    TEXT NOT NULL,
    "group"      TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ballot       TEXT NOT NULL,
    FOREIGN KEY (form_id, form_version) REFERENCES forms (id, version)
);
CREATE INDEX ballots_by_form ON ballots (form_id, form_version);

-- Every arrival of an id already stored with other content, kept with its content.
CREATE TABLE conflicts (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id  TEXT NOT NULL,
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    ballot       TEXT NOT NULL,
    received_at  TEXT NOT NULL
);
CREATE INDEX conflicts_by_id ON conflicts (response_id);

-- Every refused ballot: the text as it came and why it was refused.
CREATE TABLE refusals (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id  TEXT NOT NULL,
    form_id      TEXT NOT NULL,
    form_version TEXT NOT NULL,
    reason       TEXT NOT NULL,
    raw          TEXT NOT NULL,
    received_at  TEXT NOT NULL
);

-- Running totals that have no rows of their own: 'repeats' counts already-stored answers.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('repeats', 0);
