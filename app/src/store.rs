//! The device's ballot store: where a submitted ballot lives until an official exports it.
//!
//! It sits on a plain key–value interface ([`KeyValue`]), which is the browser's
//! `localStorage` in the app and a map with a quota in the tests. The layout:
//!
//! - `pingyi.v1.b.000001` … chunks: the first line is the form key (`id@version`), a tab
//!   and the device id; then one ballot per line in [`analysis::compact`] form, at most
//!   [`CHUNK_BALLOTS`] per chunk.
//!   Appending rewrites one chunk with a single `setItem`, which the browser applies
//!   whole or not at all, so a crash never leaves half a ballot.
//! - `pingyi.v1.forms.<form key>`: the form definition the ballots of that key were
//!   taken with, so they can be exported after the device has moved on to another form.
//!
//! A write is read back before it counts as done; only then does the app thank the
//! respondent. A line that cannot be decoded is never deleted by the store: it is counted
//! and reported, and stays where it is.
//!
//! Space is counted the way Chromium counts it: in UTF-16 units of keys and values
//! (Chromium allows 5,242,880 per site, 10 MiB), whatever the characters are.

use std::collections::BTreeMap;

use analysis::compact;
use analysis::form::Form;
use analysis::Ballot;

/// Ballots per chunk: small enough that rewriting a chunk on every submit is cheap.
pub const CHUNK_BALLOTS: usize = 200;

const CHUNK_PREFIX: &str = "pingyi.v1.b.";
const FORM_PREFIX: &str = "pingyi.v1.forms.";

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

#[derive(Debug, Clone)]
struct Chunk {
    key: String,
    form_key: String,
    device: String,
    count: usize,
    /// Room the key and value take, kept so the start screen need not re-read megabytes.
    size: u64,
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
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Refused(e) => write!(f, "the browser refused to store it ({e})"),
            StoreError::NotReadBack(k) => write!(f, "{k} did not read back as written"),
            StoreError::Encode(e) => write!(f, "it could not be encoded ({e})"),
        }
    }
}

/// Ballots of one form, read back from the store.
#[derive(Debug, Default)]
pub struct Stored {
    /// The decoded ballots, oldest first.
    pub ballots: Vec<Ballot>,
    /// Lines that could not be decoded (kept in storage, never deleted by the store).
    pub damaged: usize,
}

/// The ballot store over a [`KeyValue`].
pub struct BallotStore<S: KeyValue> {
    kv: S,
    chunks: Vec<Chunk>,
    /// The longest stored line (UTF-16 units): the room one more ballot needs.
    largest_line: u64,
}

impl<S: KeyValue> BallotStore<S> {
    /// Opens the store, finding the chunks already there.
    pub fn open(kv: S) -> BallotStore<S> {
        let mut keys: Vec<String> = kv
            .keys()
            .into_iter()
            .filter(|k| k.starts_with(CHUNK_PREFIX))
            .collect();
        keys.sort();
        let mut largest_line = 0;
        let chunks = keys
            .into_iter()
            .filter_map(|key| {
                let value = kv.get(&key)?;
                let size = cost(&key) + cost(&value);
                let mut lines = value.split('\n');
                let (form_key, device) = lines.next()?.split_once('\t')?;
                let (form_key, device) = (form_key.to_string(), device.to_string());
                let mut count = 0;
                for line in lines.filter(|l| !l.is_empty()) {
                    count += 1;
                    largest_line = largest_line.max(cost(line) + 1);
                }
                Some(Chunk {
                    key,
                    form_key,
                    device,
                    count,
                    size,
                })
            })
            .collect();
        BallotStore {
            kv,
            chunks,
            largest_line,
        }
    }

    /// The key–value store underneath.
    pub fn kv(&self) -> &S {
        &self.kv
    }

    /// Stores a ballot of `form` (whose definition text is `form_json`) and reads it back.
    pub fn append(
        &mut self,
        form: &Form,
        form_json: &str,
        ballot: &Ballot,
    ) -> Result<(), StoreError> {
        let line = compact::encode(form, ballot).map_err(StoreError::Encode)?;
        let fkey = form_key(form);
        let form_slot = format!("{FORM_PREFIX}{fkey}");
        if self.kv.get(&form_slot).as_deref() != Some(form_json) {
            self.kv
                .set(&form_slot, form_json)
                .map_err(StoreError::Refused)?;
        }
        let device = ballot.device_id.replace(['\t', '\n', '\r'], " ");
        let open = self
            .chunks
            .iter()
            .rposition(|c| c.form_key == fkey && c.device == device && c.count < CHUNK_BALLOTS);
        let (key, value) = match open {
            Some(i) => {
                let key = self.chunks[i].key.clone();
                let old = self
                    .kv
                    .get(&key)
                    .unwrap_or_else(|| format!("{fkey}\t{device}"));
                (key, format!("{old}\n{line}"))
            }
            None => {
                let next = self
                    .chunks
                    .iter()
                    .filter_map(|c| c.key[CHUNK_PREFIX.len()..].parse::<u64>().ok())
                    .max()
                    .map_or(1, |n| n + 1);
                (
                    format!("{CHUNK_PREFIX}{next:06}"),
                    format!("{fkey}\t{device}\n{line}"),
                )
            }
        };
        self.kv.set(&key, &value).map_err(StoreError::Refused)?;
        if self.kv.get(&key).as_deref() != Some(value.as_str()) {
            return Err(StoreError::NotReadBack(key));
        }
        let size = cost(&key) + cost(&value);
        match open {
            Some(i) => {
                self.chunks[i].count += 1;
                self.chunks[i].size = size;
            }
            None => self.chunks.push(Chunk {
                key,
                form_key: fkey,
                device,
                count: 1,
                size,
            }),
        }
        self.largest_line = self.largest_line.max(cost(&line) + 1);
        Ok(())
    }

    /// Number of stored ballots (lines), decoded or not.
    pub fn count(&self) -> usize {
        self.chunks.iter().map(|c| c.count).sum()
    }

    /// Number of stored ballots per form key.
    pub fn count_by_form(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for c in &self.chunks {
            *out.entry(c.form_key.clone()).or_insert(0) += c.count;
        }
        out
    }

    /// The form definition text stored for a form key.
    pub fn form_json(&self, fkey: &str) -> Option<String> {
        self.kv.get(&format!("{FORM_PREFIX}{fkey}"))
    }

    /// Every ballot of one form key, decoded with that form.
    pub fn ballots(&self, fkey: &str) -> Stored {
        let mut out = Stored::default();
        let form = self
            .form_json(fkey)
            .and_then(|json| Form::from_json(fkey, &json).ok());
        for c in self.chunks.iter().filter(|c| c.form_key == fkey) {
            let Some(value) = self.kv.get(&c.key) else {
                continue;
            };
            for line in value.split('\n').skip(1).filter(|l| !l.is_empty()) {
                match form.as_ref().map(|f| compact::decode(f, &c.device, line)) {
                    Some(Ok(b)) => out.ballots.push(b),
                    _ => out.damaged += 1,
                }
            }
        }
        out
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

    /// Removes every ballot and the stored forms (only after an export; the app checks).
    pub fn clear(&mut self) {
        self.largest_line = 0;
        for c in self.chunks.drain(..) {
            self.kv.remove(&c.key);
        }
        for key in self.kv.keys() {
            if key.starts_with(FORM_PREFIX) {
                self.kv.remove(&key);
            }
        }
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
mod tests {
    use super::memory::Memory;
    use super::*;
    use analysis::ballot::{Answer, Grid};
    use analysis::form::DEFAULT_FORM_JSON;

    fn ballot(form: &Form, n: usize) -> Ballot {
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
        }
    }

    #[test]
    fn ballots_come_back_across_chunks_and_reopen() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 10_000_000,
            ..Memory::default()
        };
        let mut store = BallotStore::open(kv.clone());
        for n in 0..(CHUNK_BALLOTS + 5) {
            store
                .append(&form, DEFAULT_FORM_JSON, &ballot(&form, n))
                .unwrap();
        }
        let reopened = BallotStore::open(kv.clone());
        assert_eq!(reopened.count(), CHUNK_BALLOTS + 5);
        assert_eq!(
            reopened.used(),
            used(&kv),
            "the kept sizes add up to what is stored"
        );
        assert_eq!(store.used(), used(&kv));
        assert_eq!(reopened.largest_line(), store.largest_line());
        let stored = reopened.ballots(&form_key(&form));
        assert_eq!(stored.damaged, 0);
        assert_eq!(stored.ballots.len(), CHUNK_BALLOTS + 5);
        assert_eq!(stored.ballots[7], ballot(&form, 7));
        assert_eq!(
            stored.ballots[CHUNK_BALLOTS + 4],
            ballot(&form, CHUNK_BALLOTS + 4)
        );
    }

    #[test]
    fn a_full_store_refuses_and_keeps_every_earlier_ballot() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 30_000,
            ..Memory::default()
        };
        let mut store = BallotStore::open(kv.clone());
        let mut stored = 0;
        let err = loop {
            match store.append(&form, DEFAULT_FORM_JSON, &ballot(&form, stored)) {
                Ok(()) => stored += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(err, StoreError::Refused(_)), "{err:?}");
        assert!(
            stored > 150,
            "only {stored} ballots fit in 30,000 characters"
        );
        let back = BallotStore::open(kv).ballots(&form_key(&form));
        assert_eq!(back.ballots.len(), stored);
        assert_eq!(back.ballots.last(), Some(&ballot(&form, stored - 1)));
    }

    #[test]
    fn settings_still_save_on_a_device_filled_to_the_last_unit() {
        let form = Form::default_form();
        let kv = Memory {
            quota: 60_000,
            ..Memory::default()
        };
        keep_reserve(&kv);
        let mut store = BallotStore::open(kv.clone());
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
        assert_eq!(BallotStore::open(kv.clone()).count(), n, "no ballot lost");
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
        let mut store = BallotStore::open(kv.clone());
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
        let store = BallotStore::open(kv.clone());
        assert_eq!(store.count(), 3);
        let back = store.ballots(&form_key(&form));
        assert_eq!((back.ballots.len(), back.damaged), (2, 1));
        assert!(kv.get(&key).unwrap().ends_with("[1,\"broken"));
    }

    #[test]
    fn costs_are_utf16_units_as_chromium_counts() {
        assert_eq!(cost("abc"), 3);
        assert_eq!(cost("满意a"), 3);
        assert_eq!(cost("𝄞"), 2);
    }
}
