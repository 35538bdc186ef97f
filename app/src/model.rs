//! The app's persisted state as plain, versioned structs: device settings, the draft
//! being filled in, and the administrator PIN. The UI wraps them in signals; nothing here
//! touches the browser, so it is tested natively.

use std::collections::{BTreeMap, BTreeSet};

use analysis::ballot::{self, Answer, Issue};
use analysis::form::{Form, Item};
use analysis::Ballot;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// localStorage keys (ballot chunks and stored forms are in [`crate::store`]).
pub mod keys {
    pub const SETTINGS: &str = "pingyi.v1.settings";
    pub const DRAFT: &str = "pingyi.v1.draft";
    /// The form a draft was started on, when the store holds no copy of it yet: if the
    /// served form changes before the draft is submitted, it is finished on this one.
    pub const DRAFT_FORM: &str = "pingyi.v1.draft.form";
    pub const ACTIVE_FORM: &str = "pingyi.v1.form.active";
    pub const CAPACITY: &str = "pingyi.v1.capacity";
    /// Failed PIN attempts and the lockout, kept so that neither cancel nor reload resets them.
    pub const PIN_LOCK: &str = "pingyi.v1.pin_lock";
    pub const LAST_SUBMIT: &str = "pingyi.v1.last_submit";
    /// When the app last heard from the collection server, and what it said.
    pub const LAST_CONTACT: &str = "pingyi.v1.last_contact";
}

/// Kiosk behaviour (自助终端模式), set by an administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Kiosk {
    /// Kiosk mode on.
    pub enabled: bool,
    /// After the thank-you screen, back to the start after this many seconds.
    pub return_after_s: u32,
    /// Seconds without input before the "are you still there" countdown.
    pub idle_after_s: u32,
    /// Length of that countdown; at its end the partial answers are discarded.
    pub countdown_s: u32,
    /// Shortest time between two ballots.
    pub min_interval_s: u32,
    /// A respondent group fixed for this device (the start screen then skips the choice).
    pub fixed_group: Option<String>,
    /// Ask for full screen when a ballot starts.
    pub fullscreen: bool,
}

impl Default for Kiosk {
    fn default() -> Kiosk {
        Kiosk {
            enabled: false,
            return_after_s: 10,
            idle_after_s: 90,
            countdown_s: 20,
            min_interval_s: 0,
            fixed_group: None,
            fullscreen: true,
        }
    }
}

/// A salted, iterated SHA-256 of the administrator PIN; the PIN itself is never stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PinHash {
    /// Random salt, hex.
    pub salt: String,
    /// Iterations of SHA-256.
    pub rounds: u32,
    /// The final digest, hex.
    pub hash: String,
}

/// Rounds of SHA-256 for a PIN: slows guessing down without a noticeable wait on a kiosk.
pub const PIN_ROUNDS: u32 = 20_000;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl PinHash {
    /// Hashes `pin` with `salt` bytes.
    pub fn new(pin: &str, salt: &[u8]) -> PinHash {
        let salt = hex(salt);
        PinHash {
            hash: digest(&salt, pin, PIN_ROUNDS),
            salt,
            rounds: PIN_ROUNDS,
        }
    }

    /// Whether `pin` is the PIN this hash was made from.
    pub fn matches(&self, pin: &str) -> bool {
        digest(&self.salt, pin, self.rounds) == self.hash
    }
}

fn digest(salt: &str, pin: &str, rounds: u32) -> String {
    let mut h: [u8; 32] = Sha256::new()
        .chain_update(salt)
        .chain_update(pin)
        .finalize()
        .into();
    for _ in 1..rounds {
        h = Sha256::new()
            .chain_update(h)
            .chain_update(salt)
            .finalize()
            .into();
    }
    hex(&h)
}

/// A PIN is at least 4 digits.
pub fn pin_is_acceptable(pin: &str) -> bool {
    pin.len() >= 4 && pin.chars().all(|c| c.is_ascii_digit())
}

/// Device settings, kept in localStorage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Format version of this struct.
    pub version: u32,
    /// Written into every ballot; an administrator may rename it (e.g. 政务大厅-1).
    pub device_id: String,
    /// Kiosk behaviour.
    pub kiosk: Kiosk,
    /// The administrator PIN's hash, once chosen.
    pub pin: Option<PinHash>,
    /// How many ballots of each form key had been exported at the last export, with the
    /// newest ballot id then: clearing is allowed only when this matches the store.
    pub exported: BTreeMap<String, ExportMark>,
    /// The fingerprint ([`crate::store::Contents::damaged_fingerprint`]) of the damaged
    /// entries at their last export: clearing also needs this to match.
    pub damaged_exported: Option<String>,
    /// The settings record was damaged and its PIN could not be read: the admin screen
    /// offers only the recovery (a typed word and a new PIN), never the first-use PIN choice.
    pub pin_lost: bool,
    /// Parts of a damaged settings record that could not be read (names of the fields),
    /// shown to the official until acknowledged.
    pub repaired: Vec<String>,
    /// Where and how ballots are sent to the collection server.
    pub sync: SyncSettings,
}

/// Sending to the collection server (see [`crate::outbox`]), set by an administrator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncSettings {
    /// The server's address (checked by [`crate::outbox::check_server`]); `None` sends to
    /// the server the app itself came from.
    pub server: Option<String>,
    /// Ballots per request, 1 to [`crate::outbox::BATCH_MAX`].
    pub batch: u32,
}

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            server: None,
            batch: crate::outbox::BATCH_MAX,
        }
    }
}

/// What an export covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportMark {
    /// Ballots exported.
    pub count: usize,
    /// The newest exported ballot's id.
    pub last_id: String,
    /// When (RFC 3339).
    pub at: String,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            version: 1,
            device_id: String::new(),
            kiosk: Kiosk::default(),
            pin: None,
            exported: BTreeMap::new(),
            damaged_exported: None,
            pin_lost: false,
            repaired: Vec::new(),
            sync: SyncSettings::default(),
        }
    }
}

/// Settings read from their stored text, and what could not be read of it.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsRead {
    /// Whatever could be read, the rest at its default.
    pub settings: Settings,
    /// Names of the fields that could not be read; empty when the record was whole.
    pub lost: Vec<String>,
}

/// The settings fields a record must have read for it to count as whole.
const SETTINGS_FIELDS: [&str; 5] = ["device_id", "kiosk", "pin", "exported", "sync"];

/// Reads a stored settings record, failing closed: a record that is not whole keeps every
/// field that can still be read (even from a record cut short), and lists the others. A
/// PIN that cannot be read sets [`Settings::pin_lost`] (the device is not treated as new),
/// and export marks that cannot be trusted are dropped, so clearing needs a new export.
pub fn read_settings(raw: &str) -> SettingsRead {
    if let Ok(settings) = serde_json::from_str::<Settings>(raw) {
        return SettingsRead {
            settings,
            lost: Vec::new(),
        };
    }
    let mut s = Settings::default();
    let mut lost = Vec::new();
    let whole: Option<serde_json::Map<String, serde_json::Value>> = serde_json::from_str(raw).ok();
    for name in SETTINGS_FIELDS {
        let value = match &whole {
            Some(map) => map.get(name).cloned(),
            None => salvage_field(raw, name),
        };
        let read = value.is_some_and(|v| match name {
            "device_id" => set_from(v, &mut s.device_id),
            "kiosk" => set_from(v, &mut s.kiosk),
            "pin" => set_from(v, &mut s.pin),
            "sync" => set_from(v, &mut s.sync),
            _ => set_from(v, &mut s.exported),
        });
        if !read {
            lost.push(name.to_string());
        }
    }
    if lost.iter().any(|f| f == "pin") {
        s.pin = None;
        s.pin_lost = true;
    }
    // Marks are trusted only from a whole record: a wrong one could allow a clear.
    s.exported.clear();
    if !lost.iter().any(|f| f == "exported") {
        lost.push("exported".into());
    }
    s.repaired = lost.clone();
    SettingsRead { settings: s, lost }
}

fn set_from<T: serde::de::DeserializeOwned>(v: serde_json::Value, slot: &mut T) -> bool {
    match serde_json::from_value(v) {
        Ok(x) => {
            *slot = x;
            true
        }
        Err(_) => false,
    }
}

/// The value of `"name":` in a record that is not valid JSON as a whole (cut short, or
/// garbled further on): the first JSON value after it, if that much is intact.
fn salvage_field(raw: &str, name: &str) -> Option<serde_json::Value> {
    let at = raw.find(&format!("\"{name}\":"))? + name.len() + 3;
    serde_json::Deserializer::from_str(&raw[at..])
        .into_iter::<serde_json::Value>()
        .next()?
        .ok()
}

/// Failed PIN attempts before a lockout.
pub const PIN_ATTEMPTS: u32 = 5;
/// How long a lockout lasts.
pub const PIN_LOCKOUT_MS: f64 = 60_000.0;

/// Failed PIN attempts and the lockout, stored on their own (see [`keys::PIN_LOCK`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PinLock {
    /// Wrong PINs since the last right one or the last lockout.
    pub failures: u32,
    /// Until when (ms since the epoch) no PIN is taken.
    pub locked_until_ms: f64,
}

impl PinLock {
    /// Reads the stored record; one that cannot be read locks for a full period from
    /// `now_ms` (failing closed: guessing must not get easier by damaging it).
    pub fn read(raw: Option<&str>, now_ms: f64) -> PinLock {
        match raw {
            None => PinLock::default(),
            Some(raw) => serde_json::from_str(raw).unwrap_or(PinLock {
                failures: 0,
                locked_until_ms: now_ms + PIN_LOCKOUT_MS,
            }),
        }
    }

    /// Whole seconds left of a lockout at `now_ms`, if one is on.
    pub fn seconds_left(&self, now_ms: f64) -> Option<i64> {
        let left = ((self.locked_until_ms - now_ms) / 1000.0).ceil() as i64;
        (left > 0).then_some(left)
    }

    /// Counts a wrong PIN; the [`PIN_ATTEMPTS`]th starts a lockout.
    pub fn failed(&mut self, now_ms: f64) {
        self.failures += 1;
        if self.failures >= PIN_ATTEMPTS {
            self.failures = 0;
            self.locked_until_ms = now_ms + PIN_LOCKOUT_MS;
        }
    }
}

/// Whether everything in the store has been exported, as the settings' marks record:
/// every form's ballots (count and newest id) and the damaged entries (their fingerprint).
pub fn everything_exported(contents: &crate::store::Contents, s: &Settings) -> bool {
    clearable(contents, s, &crate::outbox::Tally::default())
}

/// Whether the device may be cleared: every form's ballots were exported (as
/// [`everything_exported`] checks) or every one of them was acknowledged by the server
/// (none waiting, none refused), and the unreadable entries were exported.
pub fn clearable(
    contents: &crate::store::Contents,
    s: &Settings,
    tally: &crate::outbox::Tally,
) -> bool {
    let forms = contents.forms.iter().all(|(fkey, ballots)| {
        let exported = s.exported.get(fkey).is_some_and(|m| {
            m.count == ballots.len() && ballots.last().is_some_and(|b| b.id == m.last_id)
        });
        let delivered = tally
            .by_form
            .get(fkey)
            .is_some_and(|(sent, waiting, refused)| {
                *waiting == 0 && *refused == 0 && *sent >= ballots.len()
            });
        ballots.is_empty() || exported || delivered
    });
    let damaged = contents.damaged.is_empty()
        || s.damaged_exported.as_deref() == Some(contents.damaged_fingerprint().as_str());
    forms && damaged
}

/// A device id for a new device: `kiosk-` and eight hex digits.
pub fn new_device_id(random: &[u8]) -> String {
    format!("kiosk-{}", hex(&random[..4.min(random.len())]))
}

/// A random (version 4) UUID from 16 random bytes.
pub fn uuid_v4(random: &[u8; 16]) -> String {
    let mut b = *random;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The ballot being filled in, saved on every answer so a reload brings it back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Draft {
    /// The form key (`id@version`) it belongs to.
    pub form_key: String,
    /// 评议主体.
    pub group: String,
    /// Language chosen.
    pub lang: String,
    /// When the respondent pressed start (RFC 3339).
    pub started_at: String,
    /// The page (section index) shown.
    pub page: usize,
    /// Answers given so far.
    pub answers: BTreeMap<String, Answer>,
    /// Number fields whose text is not (yet) a number, kept so nothing typed is lost.
    #[serde(default)]
    pub unparsed: BTreeMap<String, String>,
    /// The 投票码 typed on the start screen (well-formed, shown as `K7QM-3XWD`) when the
    /// group needs one; it goes into the ballot and is checked by the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_code: Option<String>,
}

impl Draft {
    /// A fresh draft.
    pub fn new(form_key: String, group: String, lang: String, started_at: String) -> Draft {
        Draft {
            form_key,
            group,
            lang,
            started_at,
            page: 0,
            answers: BTreeMap::new(),
            unparsed: BTreeMap::new(),
            access_code: None,
        }
    }

    /// Sets or clears one answer.
    pub fn set(&mut self, item: &str, answer: Option<Answer>) {
        match answer {
            Some(a) => self.answers.insert(item.to_string(), a),
            None => self.answers.remove(item),
        };
    }

    /// Sets one grid cell (`None` clears it).
    pub fn set_cell(&mut self, item: &str, unit: &str, criterion: &str, code: Option<&str>) {
        let entry = self
            .answers
            .entry(item.to_string())
            .or_insert_with(|| Answer::Grid(Default::default()));
        if let Answer::Grid(g) = entry {
            match code {
                Some(c) => {
                    g.entry(unit.to_string())
                        .or_default()
                        .insert(criterion.to_string(), c.to_string());
                }
                None => {
                    if let Some(row) = g.get_mut(unit) {
                        row.remove(criterion);
                        if row.is_empty() {
                            g.remove(unit);
                        }
                    }
                }
            }
            if g.is_empty() {
                self.answers.remove(item);
            }
        }
    }

    /// Toggles one code of a multi answer.
    pub fn toggle(&mut self, item: &str, code: &str, on: bool) {
        let mut codes = match self.answers.get(item) {
            Some(Answer::Codes(c)) => c.clone(),
            _ => Vec::new(),
        };
        codes.retain(|c| c != code);
        if on {
            codes.push(code.to_string());
        }
        self.set(item, (!codes.is_empty()).then_some(Answer::Codes(codes)));
    }

    /// Records what was typed into a number field.
    pub fn set_number_text(&mut self, item: &str, text: &str) {
        let t = text.trim();
        self.unparsed.remove(item);
        if t.is_empty() {
            self.set(item, None);
        } else if let Some(x) = t.parse::<f64>().ok().filter(|x| x.is_finite()) {
            self.set(item, Some(Answer::Number(x)));
        } else {
            self.set(item, None);
            self.unparsed.insert(item.to_string(), text.to_string());
        }
    }

    /// The problems of the items on `items`, in order: the form's own rules, plus number
    /// fields holding text that is not a number.
    pub fn problems<'f>(
        &self,
        form: &'f Form,
        items: impl Iterator<Item = &'f Item>,
    ) -> Vec<(&'f Item, Problem)> {
        let answers = ballot::relevant_answers(form, &self.answers);
        items
            .filter(|item| ballot::is_relevant(form, &answers, item))
            .filter_map(|item| {
                if self.unparsed.contains_key(&item.id) {
                    return Some((item, Problem::NotANumber));
                }
                ballot::item_issue(form, &answers, item).map(|i| (item, Problem::Rule(i)))
            })
            .collect()
    }

    /// Turns the draft into a ballot: only relevant answers are kept.
    pub fn to_ballot(
        &self,
        form: &Form,
        id: String,
        device_id: String,
        submitted_at: String,
    ) -> Ballot {
        Ballot {
            id,
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            device_id,
            group: self.group.clone(),
            lang: self.lang.clone(),
            started_at: self.started_at.clone(),
            submitted_at,
            answers: ballot::relevant_answers(form, &self.answers),
            access_code: self.access_code.clone(),
        }
    }
}

/// Why an item blocks moving on.
#[derive(Debug, Clone, PartialEq)]
pub enum Problem {
    /// A rule of the form (required, constraint, a bad answer).
    Rule(Issue),
    /// A number field holds text that is not a number.
    NotANumber,
}

/// The pages (section indexes) that have at least one relevant item.
pub fn visible_pages(form: &Form, answers: &BTreeMap<String, Answer>) -> Vec<usize> {
    let answers = ballot::relevant_answers(form, answers);
    form.sections
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            s.items
                .iter()
                .any(|i| ballot::is_relevant(form, &answers, i))
        })
        .map(|(i, _)| i)
        .collect()
}

/// Ids of the items whose problems are shown (after a refused Next or Submit).
pub type Shown = BTreeSet<String>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_hash_matches_only_its_pin_and_does_not_contain_it() {
        let h = PinHash::new("246810", &[7; 16]);
        assert!(h.matches("246810"));
        assert!(!h.matches("246811"));
        let stored = serde_json::to_string(&h).unwrap();
        assert!(!stored.contains("246810"), "{stored}");
        assert_ne!(
            PinHash::new("246810", &[8; 16]).hash,
            h.hash,
            "the salt changes the hash"
        );
        assert!(
            pin_is_acceptable("0000") && !pin_is_acceptable("123") && !pin_is_acceptable("12a4")
        );
    }

    /// A garbled settings record failed open: a new PIN could be chosen and the device id
    /// and export marks were lost without a word.
    #[test]
    fn damaged_settings_fail_closed_and_keep_what_can_be_read() {
        let mut s = Settings {
            device_id: "政务大厅-1".into(),
            pin: Some(PinHash::new("2468", &[1; 16])),
            ..Settings::default()
        };
        s.exported.insert(
            "f@1".into(),
            ExportMark {
                count: 3,
                last_id: "x".into(),
                at: "t".into(),
            },
        );
        let whole = serde_json::to_string(&s).unwrap();
        assert_eq!(
            read_settings(&whole),
            SettingsRead {
                settings: s.clone(),
                lost: vec![]
            }
        );

        // Cut short inside the PIN: the device id (written before it) is still read.
        let cut = &whole[..whole.find("\"salt\"").unwrap() + 12];
        let read = read_settings(cut);
        assert_eq!(read.settings.device_id, "政务大厅-1");
        assert!(
            read.settings.pin.is_none() && read.settings.pin_lost,
            "{read:?}"
        );
        assert!(read.lost.contains(&"pin".to_string()), "{:?}", read.lost);
        assert!(read.settings.exported.is_empty(), "marks are not trusted");
        assert_eq!(read.settings.repaired, read.lost);

        // Valid JSON with one field of the wrong shape: the rest, PIN included, is kept.
        let wrong_kiosk = whole
            .replace("\"kiosk\":{", "\"kiosk\":[{")
            .replace("},\"pin\"", "}],\"pin\"");
        let read = read_settings(&wrong_kiosk);
        assert_eq!(read.settings.pin, s.pin, "{wrong_kiosk}");
        assert!(!read.settings.pin_lost);
        assert_eq!(read.lost, ["kiosk", "exported"]);

        // Nothing readable at all: still not a new device.
        let read = read_settings("\u{0}\u{0}garbage");
        assert!(read.settings.pin_lost && read.settings.device_id.is_empty());
    }

    /// The PIN lockout reset on cancel and reload: it lives in storage, and a damaged
    /// record locks rather than unlocks.
    #[test]
    fn the_pin_lockout_survives_a_round_trip_through_storage() {
        let mut lock = PinLock::read(None, 0.0);
        for _ in 0..PIN_ATTEMPTS - 1 {
            lock.failed(1_000.0);
        }
        assert_eq!(lock.seconds_left(1_000.0), None);
        lock.failed(1_000.0);
        let stored = serde_json::to_string(&lock).unwrap();
        let again = PinLock::read(Some(&stored), 2_000.0);
        assert_eq!(again.seconds_left(2_000.0), Some(59));
        assert_eq!(again.seconds_left(61_000.0), None);
        let garbled = PinLock::read(Some("{\"failures\":"), 5_000.0);
        assert_eq!(garbled.seconds_left(5_000.0), Some(60));
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let u = uuid_v4(&[0xff; 16]);
        assert_eq!(u, "ffffffff-ffff-4fff-bfff-ffffffffffff");
        assert_eq!(u.len(), 36);
    }

    #[test]
    fn draft_edits_and_hidden_answers() {
        let form = Form::default_form();
        let mut d = Draft::new(
            "k".into(),
            "public".into(),
            "zh-CN".into(),
            "2026-11-22T01:00:00.000Z".into(),
        );
        d.toggle("channels", "online", true);
        d.toggle("channels", "phone", true);
        d.toggle("channels", "online", false);
        assert_eq!(d.answers["channels"], Answer::Codes(vec!["phone".into()]));
        d.set_cell("appr", "gaj", "overall", Some("2"));
        d.set_cell("appr", "gaj", "overall", None);
        assert!(!d.answers.contains_key("appr"));
        d.set_number_text("times", "12x");
        assert!(d
            .problems(&form, form.items())
            .iter()
            .any(|(i, p)| i.id == "times" && *p == Problem::NotANumber));
        d.set_number_text("times", " 12 ");
        assert_eq!(d.answers["times"], Answer::Number(12.0));
        d.set("contact", Some(Answer::Str("never".into())));
        let b = d.to_ballot(
            &form,
            "id".into(),
            "dev".into(),
            "2026-11-22T01:05:00.000Z".into(),
        );
        assert!(
            !b.answers.contains_key("channels") && !b.answers.contains_key("times"),
            "hidden answers are not submitted"
        );
    }

    #[test]
    fn pages_without_relevant_items_are_skipped() {
        let form = Form::default_form();
        assert_eq!(visible_pages(&form, &BTreeMap::new()), vec![0, 1, 2]);
    }

    #[test]
    fn a_form_clears_when_exported_or_all_delivered_never_with_any_waiting_or_refused() {
        use crate::outbox::Tally;
        use crate::store::Contents;
        let ballot = |id: &str| analysis::Ballot {
            id: id.into(),
            form_id: "f".into(),
            form_version: "1".into(),
            device_id: "d".into(),
            group: "g".into(),
            lang: "zh-CN".into(),
            started_at: String::new(),
            submitted_at: String::new(),
            answers: BTreeMap::new(),
            access_code: None,
        };
        let mut c = Contents::default();
        c.forms.insert("f@1".into(), vec![ballot("a"), ballot("b")]);
        c.forms.insert("f@2".into(), vec![ballot("c")]);
        let mut s = Settings::default();
        let tally = |f1: (usize, usize, usize), f2: (usize, usize, usize)| Tally {
            by_form: [("f@1".to_string(), f1), ("f@2".to_string(), f2)].into(),
            ..Tally::default()
        };
        assert!(
            clearable(&c, &s, &tally((2, 0, 0), (1, 0, 0))),
            "all delivered"
        );
        assert!(
            !clearable(&c, &s, &tally((1, 1, 0), (1, 0, 0))),
            "one waiting"
        );
        assert!(
            !clearable(&c, &s, &tally((1, 0, 1), (1, 0, 0))),
            "one refused"
        );
        assert!(!everything_exported(&c, &s));
        // Form 1 exported, form 2 delivered: each form is covered one way or the other.
        s.exported.insert(
            "f@1".into(),
            ExportMark {
                count: 2,
                last_id: "b".into(),
                at: String::new(),
            },
        );
        assert!(clearable(&c, &s, &tally((0, 1, 1), (1, 0, 0))));
        assert!(!clearable(&c, &s, &tally((0, 1, 1), (0, 1, 0))));
    }
}
