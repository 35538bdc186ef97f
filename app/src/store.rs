//! The device's ballot store: where a submitted ballot lives until an official exports it.
//!
//! It sits on a plain key–value interface ([`KeyValue`]), which is the browser's
//! `localStorage` in the app and a map with a quota in the tests. The layout:
//!
//! - `pingyi.v1.b.<writer>.<n>` chunks: the first line is the form key (`id@version`), a
//!   tab and the device id; then one ballot per line in [`analysis::compact`] form, at
//!   most [`CHUNK_BALLOTS`] per chunk. Appending rewrites one chunk with a single
//!   `setItem`, which the browser applies whole or not at all, so a crash never leaves
//!   half a ballot. `<writer>` is random and new for every page load (every tab), and a
//!   writer only ever rewrites its own chunks, so two tabs can never overwrite each
//!   other's ballots. (Devices that stored ballots before this layout have chunks named
//!   `pingyi.v1.b.000001`; they are read and never appended to.)
//! - `pingyi.v1.forms.<form key>`: the form definition the ballots of that key were
//!   taken with, so they can be exported after the device has moved on to another form.
//! - `pingyi.v1.damaged.<what>.<time>`: entries the app could not read and set aside raw
//!   (a garbled settings record), kept until they have been exported.
//! - `pingyi.v1.sent.<writer>.<n>`: which lines of that chunk the server has answered for
//!   (see [`crate::outbox`]); removed with the chunk.
//! - `pingyi.v1.code.<writer>.<n>.<line>`: the 投票码 of that line's ballot, while the
//!   server has not answered for it. Never part of the ballot line, so no export can carry
//!   it; removed once the server answers (see [`crate::outbox::apply`]) and with the chunk.
//!   Each is written once by the tab that stored the ballot and removed once, so two tabs
//!   never race over one record.
//!
//! A write is read back before it counts as done; only then does the app thank the
//! respondent. Nothing that cannot be read is ever rewritten or deleted before it has been
//! exported: a line that does not decode, a chunk whose first line is damaged, a form
//! definition that no longer parses are each reported as a [`Damaged`] entry holding the
//! raw text, and the store appends to a fresh chunk instead of rewriting a damaged one.
//!
//! Space is counted the way Chromium counts it: in UTF-16 units of keys and values
//! (Chromium allows 5,242,880 per site, 10 MiB), whatever the characters are.

use std::collections::BTreeMap;

use analysis::compact;
use analysis::error::quoted;
use analysis::form::Form;
use analysis::Ballot;
use sha2::{Digest, Sha256};

/// Ballots per chunk: small enough that rewriting a chunk on every submit is cheap.
pub const CHUNK_BALLOTS: usize = 200;

/// Every chunk key begins with this.
pub const CHUNK_PREFIX: &str = "pingyi.v1.b.";
/// Stored form definitions: this, then the form key.
pub const FORM_PREFIX: &str = "pingyi.v1.forms.";
/// Entries set aside raw because they could not be read (see [`quarantine`]).
pub const QUARANTINE_PREFIX: &str = "pingyi.v1.damaged.";
/// Access codes of ballots the server has not answered for: this, the chunk key's tail,
/// and the line.
pub const CODE_PREFIX: &str = "pingyi.v1.code.";

/// Where the access code of line `line` of chunk `chunk_key` is kept.
pub fn code_key(chunk_key: &str, line: usize) -> String {
    format!("{}{line}", codes_of(chunk_key))
}

/// The start shared by the keys of every access code of chunk `chunk_key`.
fn codes_of(chunk_key: &str) -> String {
    let rest = chunk_key.strip_prefix(CHUNK_PREFIX).unwrap_or(chunk_key);
    format!("{CODE_PREFIX}{rest}.")
}

/// A string store with a quota, such as `localStorage`.
pub trait KeyValue {
    /// The value at `key`.
    fn get(&self, key: &str) -> Option<String>;
    /// Stores `value` at `key`; an error (e.g. the quota) leaves the old value in place.
    fn set(&self, key: &str, value: &str) -> Result<(), String>;
    /// Removes `key`.
    fn remove(&self, key: &str);
    /// Every key.
    fn keys(&self) -> Vec<String>;
}

/// A filler value that holds back room for the settings (see [`set_vital`]).
pub const RESERVE_KEY: &str = "pingyi.v1.reserve";
/// Room held back: enough for the settings with a PIN and export marks of many forms.
pub const RESERVE_UNITS: usize = 4096;

/// Holds back [`RESERVE_UNITS`] of room, if it is not held already and there is room.
pub fn keep_reserve(kv: &dyn KeyValue) {
    if kv.get(RESERVE_KEY).is_none() {
        let _ = kv.set(RESERVE_KEY, &"0".repeat(RESERVE_UNITS));
    }
}

/// Writes a small record that must not fail for want of room: the settings, which hold
/// the administrator PIN and the export marks. On a full device (ballots can fill it to
/// the last line) the official must still be able to set a PIN, export and clear, so the
/// reserve is given up for it when the plain write is refused.
pub fn set_vital(kv: &dyn KeyValue, key: &str, value: &str) -> Result<(), String> {
    match kv.set(key, value) {
        Ok(()) => Ok(()),
        Err(e) if kv.get(RESERVE_KEY).is_none() => Err(e),
        Err(_) => {
            kv.remove(RESERVE_KEY);
            kv.set(key, value)
        }
    }
}

/// Sets an unreadable record aside raw under [`QUARANTINE_PREFIX`]`<what>.<at_ms>`, so it
/// is reported and exported as a [`Damaged`] entry and kept until then. The same text set
/// aside before is not stored twice.
pub fn quarantine(kv: &dyn KeyValue, what: &str, raw: &str, at_ms: u64) -> Result<(), String> {
    let prefix = format!("{QUARANTINE_PREFIX}{what}.");
    let kept = kv
        .keys()
        .into_iter()
        .filter(|k| k.starts_with(&prefix))
        .any(|k| kv.get(&k).as_deref() == Some(raw));
    if kept {
        return Ok(());
    }
    set_vital(kv, &format!("{prefix}{at_ms}"), raw)
}

/// Free room left (UTF-16 units, within [`PROBE_STEP`] plus a key), found by filling it
/// with scratch values, large ones first and then smaller, and removing them again. That
/// writes about as much as the room left, once; the app does it rarely and remembers the
/// total.
pub fn probe_free(kv: &dyn KeyValue) -> u64 {
    let mut written = Vec::new();
    let mut free = 0u64;
    let mut size = PROBE_STEP << 8;
    while free < 1 << 31 {
        let key = format!("pingyi.v1.probe.{}", written.len());
        if kv.set(&key, &"0".repeat(size)).is_ok() {
            free += cost(&key) + size as u64;
            written.push(key);
        } else if size > PROBE_STEP {
            size /= 4;
        } else {
            break;
        }
    }
    for key in written {
        kv.remove(&key);
    }
    free
}

/// The smallest scratch value [`probe_free`] tries.
pub const PROBE_STEP: usize = 1024;

/// Room a string takes in local storage: its UTF-16 units (see the module doc).
pub fn cost(s: &str) -> u64 {
    s.encode_utf16().count() as u64
}

/// Room every key and value in `kv` takes, in UTF-16 units.
pub fn used(kv: &dyn KeyValue) -> u64 {
    kv.keys()
        .iter()
        .map(|k| cost(k) + kv.get(k).map(|v| cost(&v)).unwrap_or(0))
        .sum()
}

/// The key of a form: `id@version`.
pub fn form_key(form: &Form) -> String {
    format!("{}@{}", form.id, form.version)
}

/// A writer id for one page load: lowercase letters and digits from random bytes.
pub fn writer_id(random: &[u8]) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuv";
    random
        .iter()
        .map(|b| DIGITS[usize::from(b % 32)] as char)
        .collect()
}

/// A chunk's first line: the form key and the device, if it reads as one.
fn parse_header(first: &str) -> Option<(String, String)> {
    let (form_key, device) = first.split_once('\t')?;
    let well_formed = form_key.contains('@')
        && !device.is_empty()
        && !form_key.chars().any(char::is_control)
        && !device.chars().any(char::is_control);
    well_formed.then(|| (form_key.to_string(), device.to_string()))
}

/// Ballot lines of a chunk value (everything after the first line, empty lines skipped).
fn ballot_lines(value: &str) -> impl Iterator<Item = (usize, &str)> {
    value
        .split('\n')
        .enumerate()
        .skip(1)
        .filter(|(_, l)| !l.is_empty())
}

#[derive(Debug, Clone)]
struct Chunk {
    key: String,
    /// The form key and device from the first line; `None` when that line is damaged.
    header: Option<(String, String)>,
    /// Ballot lines in it (decoded or not).
    count: usize,
    /// Room the key and value take, kept so the start screen need not re-read megabytes.
    size: u64,
    /// A short hash of its first ballot line (see [`first_line_hash`]).
    first: String,
}

/// A chunk as the outbox sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkInfo {
    /// Its storage key.
    pub key: String,
    /// The form key and device from its first line; `None` when that line is damaged.
    pub header: Option<(String, String)>,
    /// Ballot lines in it.
    pub count: usize,
    /// A short hash of its first ballot line: tells this chunk from one stored under the
    /// same key after a clear.
    pub first: String,
}

/// Where a ballot was stored: the chunk's key and the line's index in its value (the
/// chunk's first line, the header, is index 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub key: String,
    pub line: usize,
}

/// A short hash (12 hex digits of SHA-256) of a chunk value's first ballot line; each line
/// holds a random ballot id, so a chunk stored again under the same key hashes otherwise.
pub fn first_line_hash(value: &str) -> String {
    let first = value.split('\n').nth(1).unwrap_or_default();
    Sha256::digest(first.as_bytes())
        .iter()
        .take(6)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a ballot was not stored.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// The browser refused the write (usually: storage is full).
    Refused(String),
    /// The write seemed to succeed but reading it back gave something else.
    NotReadBack(String),
    /// The ballot could not be encoded (a bug, reported rather than hidden).
    Encode(String),
    /// The form key or device id holds a character that separates parts of the stored
    /// chunk (a tab or a line break); storing it would hide or overwrite ballots.
    UnsafeKey(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Refused(e) => write!(f, "the browser refused to store it ({e})"),
            StoreError::NotReadBack(k) => write!(f, "{k} did not read back as written"),
            StoreError::Encode(e) => write!(f, "it could not be encoded ({e})"),
            StoreError::UnsafeKey(k) => write!(
                f,
                "{k} holds a tab, a line break or another control character, which would break the device's storage"
            ),
        }
    }
}

/// A stored entry that could not be read, with its raw text: reported, exported raw, and
/// kept until exported.
#[derive(Debug, Clone, PartialEq)]
pub struct Damaged {
    /// The storage key it is under.
    pub key: String,
    /// Its 1-based line in that value; `None` when the whole value is the entry.
    pub line: Option<usize>,
    /// The form key it belongs to, when known.
    pub form_key: Option<String>,
    /// Why it cannot be read.
    pub reason: String,
    /// The text as stored.
    pub raw: String,
}

/// Everything in the store, read back.
#[derive(Debug, Default, PartialEq)]
pub struct Contents {
    /// Decoded ballots (oldest first) by form key, for every form key whose definition
    /// can be read.
    pub forms: BTreeMap<String, Vec<Ballot>>,
    /// Entries that could not be read, in key order.
    pub damaged: Vec<Damaged>,
}

impl Contents {
    /// A fingerprint of the damaged entries, to tell whether an export of them is still
    /// complete: it changes whenever an entry is added, changed or removed.
    pub fn damaged_fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for d in &self.damaged {
            h.update(d.key.as_bytes());
            h.update([0]);
            h.update(d.line.unwrap_or(0).to_le_bytes());
            h.update(d.raw.as_bytes());
            h.update([0]);
        }
        h.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The ballot store over a [`KeyValue`].
pub struct BallotStore<S: KeyValue> {
    kv: S,
    /// This page load's writer id: the only chunks it rewrites are `CHUNK_PREFIX<writer>.*`.
    writer: String,
    chunks: Vec<Chunk>,
    /// The longest stored line (UTF-16 units): the room one more ballot needs.
    largest_line: u64,
}

impl<S: KeyValue> BallotStore<S> {
    /// Opens the store for the writer `writer` (see [`writer_id`]; letters and digits),
    /// finding the chunks already there.
    pub fn open(kv: S, writer: &str) -> BallotStore<S> {
        let writer: String = writer.chars().filter(char::is_ascii_alphanumeric).collect();
        let mut store = BallotStore {
            kv,
            writer: if writer.is_empty() {
                "w".into()
            } else {
                writer
            },
            chunks: Vec::new(),
            largest_line: 0,
        };
        store.refresh();
        store
    }

    /// Reads the list of chunks again: other tabs may have added or removed some.
    pub fn refresh(&mut self) {
        let mut keys: Vec<String> = self
            .kv
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(CHUNK_PREFIX))
            .collect();
        keys.sort();
        let mut largest_line = 0;
        self.chunks = keys
            .into_iter()
            .filter_map(|key| {
                let value = self.kv.get(&key)?;
                let size = cost(&key) + cost(&value);
                let header = parse_header(value.split('\n').next().unwrap_or_default());
                let mut count = 0;
                for (_, line) in ballot_lines(&value) {
                    count += 1;
                    largest_line = largest_line.max(cost(line) + 1);
                }
                Some(Chunk {
                    first: first_line_hash(&value),
                    key,
                    header,
                    count,
                    size,
                })
            })
            .collect();
        self.largest_line = largest_line;
    }

    /// The key–value store underneath.
    pub fn kv(&self) -> &S {
        &self.kv
    }

    fn own_prefix(&self) -> String {
        format!("{CHUNK_PREFIX}{}.", self.writer)
    }

    /// Stores a ballot of `form` (whose definition text is `form_json`), reads it back, and
    /// says where it went.
    pub fn append(
        &mut self,
        form: &Form,
        form_json: &str,
        ballot: &Ballot,
    ) -> Result<Stored, StoreError> {
        let fkey = form_key(form);
        if fkey.chars().any(char::is_control) {
            return Err(StoreError::UnsafeKey(format!(
                "the form key {}",
                quoted(&fkey)
            )));
        }
        let line = compact::encode(form, ballot).map_err(StoreError::Encode)?;
        let device = ballot.device_id.replace(char::is_control, " ");
        let form_slot = format!("{FORM_PREFIX}{fkey}");
        if self.kv.get(&form_slot).as_deref() != Some(form_json) {
            self.kv
                .set(&form_slot, form_json)
                .map_err(StoreError::Refused)?;
        }
        let (key, value, appended_to) = self.next_write(&fkey, &device, &line);
        let stored = Stored {
            key: key.clone(),
            line: value.split('\n').count() - 1,
        };
        // The code first: a ballot stored without the code its respondent typed would be
        // refused at the server. A record left at this line by an earlier chunk under the
        // same key is replaced or removed, so it never speaks for this ballot.
        let slot = code_key(&key, stored.line);
        match &ballot.access_code {
            Some(code) => self.kv.set(&slot, code).map_err(StoreError::Refused)?,
            None => self.kv.remove(&slot),
        }
        if self.kv.get(&slot) != ballot.access_code {
            self.kv.remove(&slot);
            return Err(StoreError::NotReadBack(slot));
        }
        if let Err(e) = self.kv.set(&key, &value) {
            self.kv.remove(&slot);
            return Err(StoreError::Refused(e));
        }
        if self.kv.get(&key).as_deref() != Some(value.as_str()) {
            return Err(StoreError::NotReadBack(key));
        }
        let size = cost(&key) + cost(&value);
        let count = ballot_lines(&value).count();
        match appended_to {
            Some(i) => {
                self.chunks[i].count = count;
                self.chunks[i].size = size;
            }
            None => {
                self.chunks.push(Chunk {
                    first: first_line_hash(&value),
                    key,
                    header: Some((fkey, device)),
                    count,
                    size,
                });
                self.chunks.sort_by(|a, b| a.key.cmp(&b.key));
            }
        }
        self.largest_line = self.largest_line.max(cost(&line) + 1);
        Ok(stored)
    }

    /// The chunks, in key order, as last read.
    pub fn chunks(&self) -> Vec<ChunkInfo> {
        self.chunks
            .iter()
            .map(|c| ChunkInfo {
                key: c.key.clone(),
                header: c.header.clone(),
                count: c.count,
                first: c.first.clone(),
            })
            .collect()
    }

    /// Where the next ballot line goes: (key, the whole new value, the index of the chunk
    /// appended to). Only this writer's own chunks are appended to, and only when what is
    /// stored there still begins with the expected first line; otherwise a fresh key that
    /// holds nothing yet.
    fn next_write(
        &mut self,
        fkey: &str,
        device: &str,
        line: &str,
    ) -> (String, String, Option<usize>) {
        let own = self.own_prefix();
        let header = format!("{fkey}\t{device}");
        let open = self.chunks.iter().rposition(|c| {
            c.key.starts_with(&own)
                && c.header
                    .as_ref()
                    .is_some_and(|(f, d)| f == fkey && d == device)
                && c.count < CHUNK_BALLOTS
        });
        if let Some(i) = open {
            let key = self.chunks[i].key.clone();
            if let Some(old) = self.kv.get(&key) {
                let intact = old.split('\n').next() == Some(header.as_str())
                    && ballot_lines(&old).count() < CHUNK_BALLOTS;
                if intact {
                    return (key, format!("{old}\n{line}"), Some(i));
                }
            }
        }
        let mut n = self
            .chunks
            .iter()
            .filter_map(|c| c.key.strip_prefix(&own)?.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let key = loop {
            let key = format!("{own}{n:04}");
            if self.kv.get(&key).is_none() {
                break key;
            }
            n += 1;
        };
        (key, format!("{header}\n{line}"), None)
    }

    /// Number of stored ballot lines, decoded or not (a chunk whose first line is damaged
    /// counts its lines too).
    pub fn count(&self) -> usize {
        self.chunks.iter().map(|c| c.count).sum()
    }

    /// The form definition text stored for a form key.
    pub fn form_json(&self, fkey: &str) -> Option<String> {
        self.kv.get(&format!("{FORM_PREFIX}{fkey}"))
    }

    /// Everything stored: the ballots of every form whose definition can be read, and
    /// every entry that cannot be read, raw.
    pub fn contents(&self) -> Contents {
        let mut out = Contents::default();
        let mut forms: BTreeMap<String, Result<Form, String>> = BTreeMap::new();
        for c in &self.chunks {
            let Some(value) = self.kv.get(&c.key) else {
                continue;
            };
            let Some((fkey, device)) = &c.header else {
                out.damaged.push(Damaged {
                    key: c.key.clone(),
                    line: None,
                    form_key: None,
                    reason: format!(
                        "its first line (the form and the device) cannot be read, so its {} ballot lines cannot be decoded",
                        c.count
                    ),
                    raw: value,
                });
                continue;
            };
            let form = forms
                .entry(fkey.clone())
                .or_insert_with(|| self.stored_form(fkey));
            let ballots = out.forms.entry(fkey.clone()).or_default();
            for (i, line) in ballot_lines(&value) {
                let decoded = form
                    .as_ref()
                    .map_err(Clone::clone)
                    .and_then(|f| compact::decode(f, device, line));
                match decoded {
                    Ok(b) => ballots.push(b),
                    Err(reason) => out.damaged.push(Damaged {
                        key: c.key.clone(),
                        line: Some(i + 1),
                        form_key: Some(fkey.clone()),
                        reason,
                        raw: line.to_string(),
                    }),
                }
            }
        }
        for (fkey, form) in forms {
            if let Err(reason) = form {
                out.forms.remove(&fkey);
                let slot = format!("{FORM_PREFIX}{fkey}");
                if let Some(raw) = self.kv.get(&slot) {
                    out.damaged.push(Damaged {
                        key: slot,
                        line: None,
                        form_key: Some(fkey),
                        reason,
                        raw,
                    });
                }
            }
        }
        for key in self.kv.keys() {
            if let Some(what) = key.strip_prefix(QUARANTINE_PREFIX) {
                let raw = self.kv.get(&key).unwrap_or_default();
                let what = what.split('.').next().unwrap_or(what).to_string();
                out.damaged.push(Damaged {
                    key,
                    line: None,
                    form_key: None,
                    reason: format!("a {what} record that could not be read, set aside as it was"),
                    raw,
                });
            }
        }
        out.damaged
            .sort_by(|a, b| (&a.key, a.line).cmp(&(&b.key, b.line)));
        out
    }

    /// The form stored for `fkey`, or why it cannot be had.
    pub fn stored_form(&self, fkey: &str) -> Result<Form, String> {
        let json = self
            .form_json(fkey)
            .ok_or_else(|| format!("no form definition is stored for {}", quoted(fkey)))?;
        Form::from_json(fkey, &json).map_err(|p| {
            let first = p
                .problems
                .first()
                .map(|x| x.to_string())
                .unwrap_or_default();
            format!(
                "the form definition stored for {} cannot be read ({} problems, first: {})",
                quoted(fkey),
                p.problems.len(),
                analysis::error::cut(&first)
            )
        })
    }

    /// The largest stored line's room (UTF-16 units), to judge whether one more ballot fits.
    pub fn largest_line(&self) -> u64 {
        self.largest_line
    }

    /// Room everything in local storage takes (UTF-16 units): the chunks from what the store
    /// knows, every other key (settings, draft, forms) by reading it.
    pub fn used(&self) -> u64 {
        let chunks: u64 = self.chunks.iter().map(|c| c.size).sum();
        let others: u64 = self
            .kv
            .keys()
            .iter()
            .filter(|k| !k.starts_with(CHUNK_PREFIX))
            .map(|k| cost(k) + self.kv.get(k).map(|v| cost(&v)).unwrap_or(0))
            .sum();
        chunks + others
    }

    /// Removes every ballot, stored form and set-aside entry, and the server's marks on
    /// them, but only if `exported` says the store (read afresh: other tabs may have added
    /// some since the panel was drawn) and its contents have all been exported or
    /// delivered. An entry that changed between that reading and its removal is kept, and
    /// so are its marks. Returns whether the store was cleared.
    pub fn clear_if(&mut self, exported: impl FnOnce(&Self, &Contents) -> bool) -> bool {
        self.refresh();
        let read: Vec<(String, Option<String>)> = self
            .kv
            .keys()
            .into_iter()
            .filter(|k| {
                k.starts_with(CHUNK_PREFIX)
                    || k.starts_with(FORM_PREFIX)
                    || k.starts_with(QUARANTINE_PREFIX)
            })
            .map(|k| {
                let v = self.kv.get(&k);
                (k, v)
            })
            .collect();
        if !exported(self, &self.contents()) {
            return false;
        }
        for (key, value) in read {
            if self.kv.get(&key) == value {
                self.kv.remove(&key);
                if key.starts_with(CHUNK_PREFIX) {
                    self.kv.remove(&crate::outbox::marks_key(&key));
                    let codes = codes_of(&key);
                    for k in self.kv.keys() {
                        if k.starts_with(&codes) {
                            self.kv.remove(&k);
                        }
                    }
                }
            }
        }
        self.refresh();
        true
    }
}

#[cfg(test)]
pub mod memory {
    //! An in-memory [`KeyValue`] with a quota, counting like Chromium.

    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// A map with a byte quota; clones share the map (like two handles on localStorage).
    #[derive(Clone, Default)]
    pub struct Memory {
        pub map: Rc<RefCell<BTreeMap<String, String>>>,
        pub quota: u64,
    }

    impl KeyValue for Memory {
        fn get(&self, key: &str) -> Option<String> {
            self.map.borrow().get(key).cloned()
        }
        fn set(&self, key: &str, value: &str) -> Result<(), String> {
            let old = self.get(key).map(|v| cost(key) + cost(&v)).unwrap_or(0);
            if used(self) - old + cost(key) + cost(value) > self.quota {
                return Err("QuotaExceededError".into());
            }
            self.map.borrow_mut().insert(key.into(), value.into());
            Ok(())
        }
        fn remove(&self, key: &str) {
            self.map.borrow_mut().remove(key);
        }
        fn keys(&self) -> Vec<String> {
            self.map.borrow().keys().cloned().collect()
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::memory::Memory;
    use super::*;
    use analysis::ballot::{Answer, Grid};
    use analysis::form::DEFAULT_FORM_JSON;

    /// A complete default-form ballot, its id and answers made from `n`.
    pub(crate) fn ballot(form: &Form, n: usize) -> Ballot {
        let mut g = Grid::new();
        for (i, u) in form.units.iter().enumerate() {
            for c in ["attitude", "efficiency", "lawful", "integrity", "overall"] {
                let code = ["5", "4", "3", "2", "1", "9"][(n + i) % 6];
                g.entry(u.id.clone())
                    .or_default()
                    .insert(c.into(), code.into());
            }
        }
        let mut answers = BTreeMap::new();
        answers.insert("contact".to_string(), Answer::Str("often".into()));
        answers.insert("appr".to_string(), Answer::Grid(g));
        Ballot {
            id: format!("00000000-0000-4000-8000-{n:012}"),
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            device_id: "kiosk-1".into(),
            group: "public".into(),
            lang: "zh-CN".into(),
            started_at: "2026-11-22T01:00:00.000Z".into(),
            submitted_at: "2026-11-22T01:03:00.000Z".into(),
            answers,
            access_code: None,
        }
    }

    #[test]
    fn ballots_come_back_across_chunks_and_reopen() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 10_000_000,
            ..Memory::default()
        };
        let mut store = BallotStore::open(kv.clone(), "w1");
        for n in 0..(CHUNK_BALLOTS + 5) {
            store
                .append(&form, DEFAULT_FORM_JSON, &ballot(&form, n))
                .unwrap();
        }
        let reopened = BallotStore::open(kv.clone(), "w1");
        assert_eq!(reopened.count(), CHUNK_BALLOTS + 5);
        assert_eq!(
            reopened.used(),
            used(&kv),
            "the kept sizes add up to what is stored"
        );
        assert_eq!(store.used(), used(&kv));
        assert_eq!(reopened.largest_line(), store.largest_line());
        let stored = reopened.contents();
        assert_eq!(stored.damaged, []);
        let ballots = &stored.forms[&form_key(&form)];
        assert_eq!(ballots.len(), CHUNK_BALLOTS + 5);
        assert_eq!(ballots[7], ballot(&form, 7));
        assert_eq!(ballots[CHUNK_BALLOTS + 4], ballot(&form, CHUNK_BALLOTS + 4));
    }

    #[test]
    fn a_full_store_refuses_and_keeps_every_earlier_ballot() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 30_000,
            ..Memory::default()
        };
        let mut store = BallotStore::open(kv.clone(), "w1");
        let mut stored = 0;
        let err = loop {
            match store.append(&form, DEFAULT_FORM_JSON, &ballot(&form, stored)) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
        assert!(
            stored > 150,
            "only {stored} ballots fit in 30,000 characters"
        );
        let back = BallotStore::open(kv, "w2").contents();
        let ballots = &back.forms[&form_key(&form)];
        assert_eq!(ballots.len(), stored);
        assert_eq!(ballots.last(), Some(&ballot(&form, stored - 1)));
    }

    #[test]
    fn settings_still_save_on_a_device_filled_to_the_last_unit() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 60_000,
            ..Memory::default()
        };
        keep_reserve(&kv);
        let mut store = BallotStore::open(kv.clone(), "w1");
        let mut n = 0;
        while store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, n))
            .is_ok()
        {
            n += 1;
        }
        // Whatever room the last ballot left, fill it with one-unit values.
        let mut filler = 0;
        while kv.set(&format!("f{filler}"), "").is_ok() {
            filler += 1;
        }
        let settings = format!("{{\"pin\":\"{}\"}}", "a".repeat(300));
        assert!(kv.set("settings", &settings).is_err(), "the device is full");
        set_vital(&kv, "settings", &settings).unwrap();
        assert_eq!(kv.get("settings").as_deref(), Some(settings.as_str()));
        // The room the reserve freed is still there for the next settings write.
        let bigger = format!("{{\"pin\":\"{}\"}}", "a".repeat(2000));
        set_vital(&kv, "settings", &bigger).unwrap();
        assert_eq!(
            BallotStore::open(kv.clone(), "w1").count(),
            n,
            "no ballot lost"
        );
        // Without a reserve, a full device refuses: the error comes back, nothing is lost.
        let huge = "a".repeat(10_000);
        assert!(set_vital(&kv, "settings", &huge).is_err());
        assert_eq!(kv.get("settings").as_deref(), Some(bigger.as_str()));
    }

    #[test]
    fn the_probe_finds_the_free_room_and_leaves_nothing_behind() {
        for quota in [0, 900, 5_000, 1_000_000, 5_242_880] {
            let kv = Memory {
                quota,
                ..Memory::default()
            };
            kv.set("pingyi.v1.settings", "{}").unwrap_or(());
            let before: Vec<String> = kv.keys();
            let free = quota - used(&kv);
            let found = probe_free(&kv);
            assert!(
                found <= free && free - found < (PROBE_STEP + 40) as u64,
                "quota {quota}: {found} found, {free} free"
            );
            assert_eq!(kv.keys(), before, "the scratch values are gone");
        }
    }

    #[test]
    fn damaged_lines_are_counted_not_dropped() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 1_000_000,
            ..Memory::default()
        };
        let mut store = BallotStore::open(kv.clone(), "w1");
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 2))
            .unwrap();
        let key = kv
            .keys()
            .into_iter()
            .find(|k| k.starts_with(CHUNK_PREFIX))
            .unwrap();
        let v = kv.get(&key).unwrap();
        kv.set(&key, &format!("{v}\n[1,\"broken")).unwrap();
        let store = BallotStore::open(kv.clone(), "w2");
        assert_eq!(store.count(), 3);
        let back = store.contents();
        assert_eq!(back.forms[&form_key(&form)].len(), 2);
        assert_eq!(back.damaged.len(), 1);
        assert_eq!(
            (back.damaged[0].line, back.damaged[0].raw.as_str()),
            (Some(4), "[1,\"broken")
        );
        assert!(kv.get(&key).unwrap().ends_with("[1,\"broken"));
    }

    fn memory() -> Memory {
        Memory {
            quota: 10_000_000,
            ..Memory::default()
        }
    }

    fn chunk_keys(kv: &Memory) -> Vec<String> {
        kv.keys()
            .into_iter()
            .filter(|k| k.starts_with(CHUNK_PREFIX))
            .collect()
    }

    /// Two tabs opened on a fresh device each stored a ballot under the same chunk key;
    /// both respondents were thanked and one ballot was gone.
    #[test]
    fn two_tabs_opened_before_either_stores_keep_both_ballots() {
        let form = Form::default_form();
        let kv = memory();
        let mut tab1 = BallotStore::open(kv.clone(), &writer_id(&[1, 2, 3, 4, 5]));
        let mut tab2 = BallotStore::open(kv.clone(), &writer_id(&[9, 8, 7, 6, 5]));
        tab1.append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        tab2.append(&form, DEFAULT_FORM_JSON, &ballot(&form, 2))
            .unwrap();
        tab1.append(&form, DEFAULT_FORM_JSON, &ballot(&form, 3))
            .unwrap();
        let back = BallotStore::open(kv.clone(), "w3").contents();
        let mut ids: Vec<String> = back.forms[&form_key(&form)]
            .iter()
            .map(|b| b.id.clone())
            .collect();
        ids.sort();
        let want: Vec<String> = [1, 2, 3].iter().map(|n| ballot(&form, *n).id).collect();
        assert_eq!(ids, want);
        assert_eq!(chunk_keys(&kv).len(), 2, "one chunk per tab");
        // A tab learns of the other's ballots when it reads the store again.
        tab1.refresh();
        assert_eq!(tab1.count(), 3);
    }

    /// A damaged first line hid the chunk's ballots from the count, and the next ballot
    /// overwrote the chunk.
    #[test]
    fn a_damaged_first_line_hides_nothing_and_is_never_overwritten() {
        let form = Form::default_form();
        let kv = memory();
        let mut store = BallotStore::open(kv.clone(), "a");
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 2))
            .unwrap();
        let key = chunk_keys(&kv).remove(0);
        let value = kv.get(&key).unwrap();
        let damaged = value.replacen('\t', "\u{fffd}", 1);
        kv.set(&key, &damaged).unwrap();

        // The same tab (it still thinks the chunk is its own) and a new one both store more.
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 3))
            .unwrap();
        let mut reloaded = BallotStore::open(kv.clone(), "b");
        assert_eq!(
            reloaded.count(),
            3,
            "the damaged chunk's two lines are counted"
        );
        reloaded
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 4))
            .unwrap();

        assert_eq!(
            kv.get(&key).as_deref(),
            Some(damaged.as_str()),
            "left as it was"
        );
        let back = BallotStore::open(kv.clone(), "c").contents();
        assert_eq!(back.forms[&form_key(&form)].len(), 2, "ballots 3 and 4");
        assert_eq!(back.damaged.len(), 1);
        let d = &back.damaged[0];
        assert_eq!(
            (d.key.as_str(), d.line, d.raw.as_str()),
            (key.as_str(), None, damaged.as_str())
        );
        assert!(d.reason.contains("first line"), "{}", d.reason);
    }

    /// Clearing deleted lines the panel said were kept: a clear removes nothing unless
    /// everything, damaged entries included, has been exported, and then only what was read.
    #[test]
    fn a_clear_keeps_everything_until_the_damaged_entries_are_exported_too() {
        let form = Form::default_form();
        let kv = memory();
        let mut store = BallotStore::open(kv.clone(), "a");
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        let key = chunk_keys(&kv).remove(0);
        let v = kv.get(&key).unwrap();
        kv.set(&key, &format!("{v}\n[1,\"broken")).unwrap();
        quarantine(&kv, "settings", "{\"pin\":", 5).unwrap();
        quarantine(&kv, "settings", "{\"pin\":", 6).unwrap();

        let contents = store.contents();
        assert_eq!(contents.damaged.len(), 2, "{:?}", contents.damaged);
        let ballots_only = |c: &Contents| c.damaged.is_empty();
        assert!(!store.clear_if(|_, c| ballots_only(c)));
        assert_eq!(
            BallotStore::open(kv.clone(), "b").count(),
            2,
            "nothing removed"
        );

        let fingerprint = contents.damaged_fingerprint();
        // Another tab stores a ballot after the export: the clear is refused again.
        BallotStore::open(kv.clone(), "c")
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 2))
            .unwrap();
        let exported = |c: &Contents| {
            c.damaged_fingerprint() == fingerprint && c.forms.values().all(|b| b.len() == 1)
        };
        assert!(!store.clear_if(|_, c| exported(c)));
        assert_eq!(BallotStore::open(kv.clone(), "d").count(), 3);

        assert!(store.clear_if(|_, c| c.damaged_fingerprint() == fingerprint));
        assert_eq!(chunk_keys(&kv), Vec::<String>::new());
        assert!(kv.keys().iter().all(|k| !k.starts_with(QUARANTINE_PREFIX)));
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 5))
            .unwrap();
        assert_eq!(BallotStore::open(kv.clone(), "e").count(), 1);
    }

    /// A garbled stored form blocked the export silently: its ballots are reported raw and
    /// named by form, and the other forms read as before.
    #[test]
    fn a_garbled_stored_form_leaves_its_lines_raw_and_the_others_readable() {
        let form = Form::default_form();
        let mut other = form.clone();
        other.version = "2027.1".into();
        let kv = memory();
        let mut store = BallotStore::open(kv.clone(), "a");
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        let mut b = ballot(&other, 2);
        b.form_version = other.version.clone();
        store
            .append(&other, &DEFAULT_FORM_JSON.replace("2026.1", "2027.1"), &b)
            .unwrap();
        let slot = format!("{FORM_PREFIX}{}", form_key(&form));
        kv.set(&slot, "{\"id\": \"minzhu-pingyi\", garbled")
            .unwrap();

        let back = BallotStore::open(kv.clone(), "b").contents();
        assert_eq!(back.forms.keys().collect::<Vec<_>>(), [&form_key(&other)]);
        assert_eq!(back.forms[&form_key(&other)], [b]);
        let fkey = form_key(&form);
        let line = back
            .damaged
            .iter()
            .find(|d| d.line.is_some())
            .expect("the ballot line");
        assert_eq!(line.form_key.as_deref(), Some(fkey.as_str()));
        assert!(line.reason.contains("cannot be read"), "{}", line.reason);
        assert_eq!(line.raw, compact::encode(&form, &ballot(&form, 1)).unwrap());
        let def = back
            .damaged
            .iter()
            .find(|d| d.key == slot)
            .expect("the form text");
        assert!(def.raw.ends_with("garbled"));
    }

    /// A version with a line break made every page load overwrite the earlier ballots, a
    /// tab hid them: the store refuses such a key rather than corrupting itself.
    #[test]
    fn a_form_key_with_a_line_break_or_tab_is_refused_and_nothing_is_lost() {
        let form = Form::default_form();
        let kv = memory();
        let mut store = BallotStore::open(kv.clone(), "a");
        store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        let before: BTreeMap<String, String> = kv.map.borrow().clone();
        for version in ["1\n2", "1\t2", "1\r"] {
            let mut bad = form.clone();
            bad.version = version.into();
            for writer in ["a", "b"] {
                let err = BallotStore::open(kv.clone(), writer)
                    .append(&bad, DEFAULT_FORM_JSON, &ballot(&bad, 2))
                    .unwrap_err();
                assert!(matches!(err, StoreError::UnsafeKey(_)), "{err:?}");
                assert!(err.to_string().contains("line break"), "{err}");
            }
        }
        assert_eq!(*kv.map.borrow(), before, "nothing written");
        assert_eq!(
            BallotStore::open(kv, "c").contents().forms[&form_key(&form)].len(),
            1
        );
    }

    #[test]
    fn writer_ids_are_letters_and_digits() {
        let id = writer_id(&[0, 31, 32, 255, 100]);
        assert_eq!(id, "0v0v4");
    }

    #[test]
    fn costs_are_utf16_units_as_chromium_counts() {
        assert_eq!(cost("abc"), 3);
        assert_eq!(cost("满意a"), 3);
        assert_eq!(cost("𝄞"), 2);
    }
}
