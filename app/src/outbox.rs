//! The outbox: which stored ballots the collection server has answered for, which to send
//! next, and what to do with its answer. Plain logic over the [`BallotStore`]; the loop
//! that sends (timers, fetch, the browser's events) is in the UI's sync module.
//!
//! A ballot is never copied for sending and never removed because it was sent: the
//! chunks stay as they are, and beside each chunk a small record
//! (`pingyi.v1.sent.<writer>.<n>`, [`Marks`]) holds the ranges of its lines the server
//! acknowledged (`stored` or `already_stored`) and those it refused (`conflict` or
//! `refused`, with its reason). Every other line is waiting. A record is only ever a
//! summary of the server's answers: if it is lost or cannot be written, the ballots are
//! sent again and the server, which keeps each ballot id once, answers `already_stored`.
//! A record holds the hash of its chunk's first line, so a record left from a chunk that
//! was cleared never speaks for a new chunk stored under the same key.
//!
//! A ballot of a group that votes with a 投票码 goes out with the code kept beside its
//! line ([`crate::store::code_key`]); once the server has answered for it, either way,
//! the code is removed from the device.

use std::collections::BTreeMap;

use analysis::compact;
use analysis::error::cut;
use analysis::Ballot;
use serde::{Deserialize, Serialize};

use crate::store::{code_key, first_line_hash, BallotStore, ChunkInfo, KeyValue, CHUNK_PREFIX};

/// Every record of the server's answers begins with this.
pub const MARKS_PREFIX: &str = "pingyi.v1.sent.";

/// Ballots per request unless the administrator sets fewer (the server takes up to 1,000).
pub const BATCH_MAX: u32 = 100;

/// The path of the batch endpoint under a server address.
pub const BALLOTS_PATH: &str = "api/v1/ballots";

/// The record key for a chunk key.
pub fn marks_key(chunk_key: &str) -> String {
    let rest = chunk_key.strip_prefix(CHUNK_PREFIX).unwrap_or(chunk_key);
    format!("{MARKS_PREFIX}{rest}")
}

/// The server's answers for one chunk's lines, as inclusive ranges of line indexes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Marks {
    /// [`first_line_hash`] of the chunk these marks belong to.
    pub h: String,
    /// Acknowledged lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub a: Vec<[usize; 2]>,
    /// Refused lines with the server's reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub r: Vec<(usize, usize, String)>,
}

/// Where one stored ballot stands.
#[derive(Debug, Clone, PartialEq)]
pub enum LineState {
    /// Not yet answered for by the server.
    Waiting,
    /// The server has it.
    Sent,
    /// The server refused it (the reason); it is kept and not sent again.
    Refused(String),
}

impl Marks {
    /// Where line `line` stands.
    pub fn state(&self, line: usize) -> LineState {
        if self
            .a
            .iter()
            .any(|[from, to]| (*from..=*to).contains(&line))
        {
            return LineState::Sent;
        }
        match self
            .r
            .iter()
            .find(|(from, to, _)| (*from..=*to).contains(&line))
        {
            Some((_, _, why)) => LineState::Refused(why.clone()),
            None => LineState::Waiting,
        }
    }

    /// Lines acknowledged.
    pub fn sent(&self) -> usize {
        self.a.iter().map(|[from, to]| to + 1 - from).sum()
    }

    /// Lines refused (and not acknowledged since).
    pub fn refused(&self) -> usize {
        self.r
            .iter()
            .flat_map(|(from, to, _)| *from..=*to)
            .filter(|l| self.state(*l) != LineState::Sent)
            .count()
    }

    /// Marks `line` acknowledged.
    pub fn mark_sent(&mut self, line: usize) {
        if self.state(line) == LineState::Sent {
            return;
        }
        self.a.push([line, line]);
        self.a.sort_unstable();
        let mut merged: Vec<[usize; 2]> = Vec::with_capacity(self.a.len());
        for [from, to] in self.a.drain(..) {
            match merged.last_mut() {
                Some(last) if from <= last[1] + 1 => last[1] = last[1].max(to),
                _ => merged.push([from, to]),
            }
        }
        self.a = merged;
    }

    /// Marks `line` refused for `why` (kept short: the same reason usually covers many).
    pub fn mark_refused(&mut self, line: usize, why: &str) {
        if self.state(line) != LineState::Waiting {
            return;
        }
        let why = cut(why);
        self.r.push((line, line, why));
        self.r.sort();
        let mut merged: Vec<(usize, usize, String)> = Vec::with_capacity(self.r.len());
        for (from, to, why) in self.r.drain(..) {
            match merged.last_mut() {
                Some(last) if from <= last.1 + 1 && last.2 == why => last.1 = last.1.max(to),
                _ => merged.push((from, to, why)),
            }
        }
        self.r = merged;
    }
}

/// The marks stored for a chunk whose first line hashes to `first`; empty when there are
/// none, they belong to an earlier chunk under that key, or they cannot be read (then the
/// lines are sent again and the server answers `already_stored`).
pub fn read_marks(kv: &dyn KeyValue, chunk_key: &str, first: &str) -> Marks {
    kv.get(&marks_key(chunk_key))
        .and_then(|raw| serde_json::from_str::<Marks>(&raw).ok())
        .filter(|m| m.h == first)
        .unwrap_or_else(|| Marks {
            h: first.to_string(),
            ..Marks::default()
        })
}

/// Where the ballot stored at `line` of chunk `chunk_key` stands now.
pub fn line_state(kv: &dyn KeyValue, chunk_key: &str, line: usize) -> LineState {
    match kv.get(chunk_key) {
        Some(value) => read_marks(kv, chunk_key, &first_line_hash(&value)).state(line),
        None => LineState::Waiting,
    }
}

/// Ballots by state, in all and by form key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub sent: usize,
    pub waiting: usize,
    pub refused: usize,
    /// Form key → (sent, waiting, refused).
    pub by_form: BTreeMap<String, (usize, usize, usize)>,
    /// The server's reasons for the refused ballots, each once, with how many it covers.
    pub reasons: BTreeMap<String, usize>,
}

/// Counts the store's ballots by state. Lines of a chunk whose first line is damaged
/// cannot be sent and are listed with the unreadable records instead; a line that does not
/// decode stays waiting.
pub fn tally<S: KeyValue>(store: &BallotStore<S>) -> Tally {
    let mut t = Tally::default();
    for c in store.chunks() {
        let Some((fkey, _)) = &c.header else {
            continue;
        };
        let m = read_marks(store.kv(), &c.key, &c.first);
        let (sent, refused) = (m.sent(), m.refused());
        let waiting = c.count.saturating_sub(sent + refused);
        for (from, to, why) in &m.r {
            let n = (*from..=*to)
                .filter(|l| m.state(*l) != LineState::Sent)
                .count();
            if n > 0 {
                *t.reasons.entry(why.clone()).or_insert(0) += n;
            }
        }
        let f = t.by_form.entry(fkey.clone()).or_default();
        *f = (f.0 + sent, f.1 + waiting, f.2 + refused);
        t.sent += sent;
        t.waiting += waiting;
        t.refused += refused;
    }
    t
}

/// A ballot on its way: where it is stored, and the ballot itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub chunk: String,
    /// The chunk's [`first_line_hash`] when the ballot was read.
    pub first: String,
    pub line: usize,
    pub ballot: Ballot,
}

/// Up to `limit` waiting ballots, oldest chunks first. Lines that do not decode are left
/// out (they are listed with the unreadable records and exported raw).
pub fn next_batch<S: KeyValue>(store: &BallotStore<S>, limit: usize) -> Vec<Pending> {
    let mut out = Vec::new();
    let mut forms = BTreeMap::new();
    for c in store.chunks() {
        if out.len() >= limit {
            break;
        }
        let ChunkInfo {
            key,
            header: Some((fkey, device)),
            count,
            first,
        } = c
        else {
            continue;
        };
        let marks = read_marks(store.kv(), &key, &first);
        if marks.sent() + marks.refused() >= count {
            continue;
        }
        let Some(value) = store.kv().get(&key) else {
            continue;
        };
        if first_line_hash(&value) != first {
            continue; // replaced since the store was read: the next round sees it
        }
        let form = forms
            .entry(fkey.clone())
            .or_insert_with(|| store.stored_form(&fkey));
        let Ok(form) = form else {
            continue;
        };
        for (line, text) in value.split('\n').enumerate().skip(1) {
            if out.len() >= limit {
                break;
            }
            if text.is_empty() || marks.state(line) != LineState::Waiting {
                continue;
            }
            if let Ok(mut ballot) = compact::decode(form, &device, text) {
                ballot.access_code = store.kv().get(&code_key(&key, line));
                out.push(Pending {
                    chunk: key.clone(),
                    first: first.clone(),
                    line,
                    ballot,
                });
            }
        }
    }
    out
}

/// The request body for a batch: `{"ballots":[…]}`.
pub fn request_body(batch: &[Pending]) -> String {
    let ballots: Vec<&Ballot> = batch.iter().map(|p| &p.ballot).collect();
    // Written directly rather than through serde_json::Value: less code in the wasm.
    let list = serde_json::to_string(&ballots).expect("ballots serialize");
    format!("{{\"ballots\":{list}}}")
}

/// The server's answer for one ballot.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// `stored` or `already_stored`.
    Sent,
    /// `conflict` or `refused`, with why: the server's reason code when it is one of
    /// [`WORDED_REASONS`], else its problems.
    Refused(String),
}

/// What to do after a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The server answered for every ballot, in order.
    Answered(Vec<Verdict>),
    /// The whole batch was refused for its size (413, 422): send fewer at once.
    Smaller,
    /// Try again later (network, 5xx, 429, an answer that cannot be read…): why, and the
    /// server's `Retry-After` in seconds when it gave one.
    Later(Failure, Option<u32>),
}

/// Why a round stopped before everything was sent (the screen words it, see `i18n`).
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No answer: the browser's own message (offline, refused connection, timeout).
    Network(String),
    /// An error status, with the server's `error` message when it gave one.
    Status(u16, Option<String>),
    /// A 200 answer that is not the results document (the parser's message).
    Unreadable(String),
    /// Results that do not answer for the ballots sent, one for one and in order.
    Mismatch,
    /// The answers could not be written down on the device (the browser's message).
    Storage(String),
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    status: String,
    #[serde(default)]
    problems: Vec<Problem>,
    /// Why it was refused: `invalid`, `closed`, `code_missing`, `code_invalid`,
    /// `code_used` or `rate_limited` (servers before access codes give none).
    #[serde(default)]
    reason: Option<String>,
}

/// The server's reasons for a refusal that the app words itself (see [`Verdict::Refused`]);
/// any other refusal (`invalid`, `conflict`) keeps the server's problems as its reason.
pub const WORDED_REASONS: [&str; 5] = [
    "closed",
    "code_missing",
    "code_invalid",
    "code_used",
    "rate_limited",
];

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    path: String,
    message: String,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// Reads the server's answer to a batch request (status, body, `Retry-After`).
pub fn read_reply(batch: &[Pending], status: u16, body: &str, retry_after: Option<&str>) -> Reply {
    let after = retry_after.and_then(|s| s.trim().parse::<u32>().ok());
    if status == 200 {
        return match serde_json::from_str::<Answer>(body) {
            Ok(a) => verdicts(batch, a),
            Err(e) => Reply::Later(Failure::Unreadable(cut(&e.to_string())), after),
        };
    }
    if (status == 413 || status == 422) && batch.len() > 1 {
        return Reply::Smaller;
    }
    let said = serde_json::from_str::<ErrorBody>(body)
        .ok()
        .map(|e| cut(&e.error));
    Reply::Later(Failure::Status(status, said), after)
}

fn verdicts(batch: &[Pending], a: Answer) -> Reply {
    if a.results.len() != batch.len() {
        return Reply::Later(Failure::Mismatch, None);
    }
    let mut out = Vec::with_capacity(batch.len());
    for (p, r) in batch.iter().zip(a.results) {
        if r.id != p.ballot.id {
            return Reply::Later(Failure::Mismatch, None);
        }
        let worded = r
            .reason
            .as_deref()
            .filter(|why| r.status == "refused" && WORDED_REASONS.contains(why));
        out.push(match r.status.as_str() {
            "stored" | "already_stored" => Verdict::Sent,
            "refused" if worded.is_some() => {
                Verdict::Refused(worded.unwrap_or_default().to_string())
            }
            "conflict" | "refused" => {
                let why: Vec<String> = r
                    .problems
                    .iter()
                    .map(|p| {
                        if p.path.is_empty() {
                            p.message.clone()
                        } else {
                            format!("{}: {}", p.path, p.message)
                        }
                    })
                    .collect();
                Verdict::Refused(if why.is_empty() {
                    r.status
                } else {
                    why.join("; ")
                })
            }
            _ => return Reply::Later(Failure::Mismatch, None),
        });
    }
    Reply::Answered(out)
}

/// Writes the server's verdicts into the chunks' records, merged with what is stored there
/// now. Chunks that are gone or were replaced since are skipped. Returns how many lines
/// were newly marked and the first write error, if any (the ballots stay waiting).
pub fn apply(
    kv: &dyn KeyValue,
    batch: &[Pending],
    verdicts: &[Verdict],
) -> (usize, Option<String>) {
    let mut by_chunk: BTreeMap<&str, Vec<(&Pending, &Verdict)>> = BTreeMap::new();
    for (p, v) in batch.iter().zip(verdicts) {
        by_chunk.entry(p.chunk.as_str()).or_default().push((p, v));
    }
    let mut marked = 0;
    let mut error = None;
    for (chunk, items) in by_chunk {
        let first = &items[0].0.first;
        let current = kv.get(chunk).map(|v| first_line_hash(&v));
        if current.as_deref() != Some(first.as_str()) {
            continue;
        }
        // Read just before writing, so marks another tab wrote meanwhile are kept.
        let mut marks = read_marks(kv, chunk, first);
        let before = marks.clone();
        for (p, v) in &items {
            match v {
                Verdict::Sent => marks.mark_sent(p.line),
                Verdict::Refused(why) => marks.mark_refused(p.line, why),
            }
        }
        if marks == before {
            // Noted already (another tab had the same answers): only the codes may be left.
            for (p, _) in &items {
                kv.remove(&code_key(chunk, p.line));
            }
            continue;
        }
        let json = serde_json::to_string(&marks).expect("marks serialize");
        match kv.set(&marks_key(chunk), &json) {
            Ok(()) => {
                marked += (marks.sent() + marks.refused()) - (before.sent() + before.refused());
                // Answered either way: the code has done its work and leaves the device.
                for (p, _) in &items {
                    kv.remove(&code_key(chunk, p.line));
                }
            }
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    (marked, error)
}

/// Milliseconds to wait after `failures` failed tries in a row: exponential back-off with
/// full jitter (`random` in 0..1), base 2 s, doubling, capped at 60 s; at least the
/// server's `Retry-After` when it gave one (capped the same way).
pub fn backoff_ms(failures: u32, random: f64, retry_after_s: Option<u32>) -> f64 {
    let ceiling = (2000.0 * 2f64.powi(failures.saturating_sub(1).min(16) as i32)).min(60_000.0);
    let jittered = (random.clamp(0.0, 1.0) * ceiling).max(100.0);
    let asked = f64::from(retry_after_s.unwrap_or(0).min(60)) * 1000.0;
    jittered.max(asked)
}

/// Checks a server address typed by an administrator: `http://` or `https://`, a host,
/// no spaces, user, query or fragment. Returns it without a trailing slash, or `None`.
pub fn check_server(typed: &str) -> Option<String> {
    let s = typed.trim();
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    let clean = !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "?#@".contains(c));
    (clean && !host.is_empty() && !host.starts_with(':'))
        .then(|| s.trim_end_matches('/').to_string())
}

/// The heartbeat endpoint of device `device` (already encoded as a path segment), beside
/// the batch endpoint.
pub fn device_endpoint(server: Option<&str>, device: &str) -> String {
    let path = format!("api/v1/devices/{device}");
    match server {
        Some(base) if !base.is_empty() => format!("{base}/{path}"),
        _ => path,
    }
}

/// The heartbeat's body: how many ballots wait on this device, and the form it takes.
pub fn heartbeat_body(waiting: usize, form_id: &str, form_version: &str) -> String {
    serde_json::json!({"waiting": waiting, "form_id": form_id, "form_version": form_version})
        .to_string()
}

/// The batch endpoint: the same origin as the app (relative to the page) when no server
/// is set, else under the server address.
pub fn endpoint(server: Option<&str>) -> String {
    match server {
        Some(base) if !base.is_empty() => format!("{base}/{BALLOTS_PATH}"),
        _ => BALLOTS_PATH.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::Memory;
    use crate::store::tests::ballot;
    use analysis::form::{Form, DEFAULT_FORM_JSON};

    fn memory() -> Memory {
        Memory {
            quota: 10_000_000,
            ..Memory::default()
        }
    }

    fn fill(kv: &Memory, writer: &str, from: usize, n: usize) -> BallotStore<Memory> {
        let form = Form::default_form();
        let mut store = BallotStore::open(kv.clone(), writer);
        for i in from..from + n {
            store
                .append(&form, DEFAULT_FORM_JSON, &ballot(&form, i))
                .unwrap();
        }
        store
    }

    #[test]
    fn ranges_stay_compact_and_sent_wins_over_refused() {
        let mut m = Marks::default();
        for l in [3, 1, 2, 5, 4, 9] {
            m.mark_sent(l);
        }
        assert_eq!(m.a, [[1, 5], [9, 9]]);
        m.mark_refused(7, "form x version y is not collected here");
        m.mark_refused(8, "form x version y is not collected here");
        m.mark_refused(9, "ignored: already sent");
        assert_eq!(m.r.len(), 1);
        assert_eq!((m.sent(), m.refused()), (6, 2));
        assert_eq!(m.state(6), LineState::Waiting);
        assert!(matches!(m.state(8), LineState::Refused(w) if w.contains("not collected")));
        // A whole chunk of 200 acknowledged ballots is one range, whatever the order.
        let mut all = Marks::default();
        (1..=200).rev().for_each(|l| all.mark_sent(l));
        assert_eq!(
            serde_json::to_string(&all).unwrap(),
            r#"{"h":"","a":[[1,200]]}"#
        );
    }

    #[test]
    fn batches_cross_chunks_and_only_answered_ballots_leave_the_waiting_list() {
        let kv = memory();
        let store = fill(&kv, "w1", 0, crate::store::CHUNK_BALLOTS + 30);
        let t = tally(&store);
        assert_eq!((t.sent, t.waiting, t.refused), (0, 230, 0));

        let first = next_batch(&store, 100);
        assert_eq!(first.len(), 100);
        let body: serde_json::Value = serde_json::from_str(&request_body(&first)).unwrap();
        let sent: Vec<Ballot> = serde_json::from_value(body["ballots"].clone()).unwrap();
        assert_eq!(sent.len(), 100);
        assert_eq!(
            sent[42], first[42].ballot,
            "the request holds the ballots whole"
        );
        assert_eq!(first[0].ballot, ballot(&Form::default_form(), 0));
        // The server answered for all but the last two (a lost answer is no answer).
        let mut v = vec![Verdict::Sent; 98];
        v[5] = Verdict::Refused("[5].answers.appr: bad".into());
        let (marked, err) = apply(store.kv(), &first[..98], &v);
        assert_eq!((marked, err), (98, None));
        let t = tally(&store);
        assert_eq!((t.sent, t.waiting, t.refused), (97, 132, 1));
        assert_eq!(t.reasons.values().sum::<usize>(), 1);

        let next = next_batch(&store, 100);
        assert_eq!(
            next[0].ballot.id, first[98].ballot.id,
            "unanswered ones come again"
        );
        assert!(
            next.iter().all(|p| p.ballot.id != first[5].ballot.id),
            "refused ones stay"
        );
        // Sending everything empties the waiting list; the ballots all stay stored.
        loop {
            let b = next_batch(&store, 100);
            if b.is_empty() {
                break;
            }
            apply(store.kv(), &b, &vec![Verdict::Sent; b.len()]);
        }
        let t = tally(&store);
        assert_eq!((t.sent, t.waiting, t.refused), (229, 0, 1));
        assert_eq!(BallotStore::open(kv, "w9").count(), 230);
    }

    #[test]
    fn marks_of_a_cleared_chunk_never_speak_for_a_new_one_under_its_key() {
        let kv = memory();
        let mut store = fill(&kv, "w1", 0, 3);
        let b = next_batch(&store, 100);
        apply(store.kv(), &b, &vec![Verdict::Sent; 3]);
        let key = b[0].chunk.clone();
        // An old record survives beside a new chunk under the same key (a tab wrote it
        // while another cleared): the new ballots still wait.
        let old = kv.get(&marks_key(&key)).unwrap();
        assert!(store.clear_if(|_, _| true));
        assert_eq!(
            kv.get(&marks_key(&key)),
            None,
            "the clear removes the marks"
        );
        kv.set(&marks_key(&key), &old).unwrap();
        let form = Form::default_form();
        let at = store
            .append(&form, DEFAULT_FORM_JSON, &ballot(&form, 50))
            .unwrap();
        assert_eq!(at.key, key, "the same key again");
        assert_eq!(line_state(&kv, &at.key, at.line), LineState::Waiting);
        assert_eq!(tally(&store).waiting, 1);
        // An answer for the old chunk arriving late marks nothing in the new one.
        assert_eq!(apply(&kv, &b, &vec![Verdict::Sent; 3]).0, 0);
        assert_eq!(next_batch(&store, 10).len(), 1);
    }

    #[test]
    fn two_tabs_marking_at_once_keep_both_answers_and_a_failed_write_keeps_ballots_waiting() {
        let kv = memory();
        let store = fill(&kv, "w1", 0, 10);
        let b = next_batch(&store, 100);
        // Tab 1 and tab 2 got answers for different halves.
        apply(&kv, &b[..5], &vec![Verdict::Sent; 5]);
        apply(&kv, &b[5..], &vec![Verdict::Sent; 5]);
        assert_eq!(tally(&store).sent, 10);

        let full = Memory {
            quota: 0,
            map: Default::default(),
        };
        let mut s2 = BallotStore::open(memory(), "w2");
        let form = Form::default_form();
        s2.append(&form, DEFAULT_FORM_JSON, &ballot(&form, 1))
            .unwrap();
        // Copy the chunk and its form into a store that refuses every write.
        for (k, v) in s2.kv().map.borrow().iter() {
            full.map.borrow_mut().insert(k.clone(), v.clone());
        }
        let b = next_batch(&BallotStore::open(full.clone(), "w3"), 10);
        assert_eq!(b.len(), 1);
        let (marked, err) = apply(&full, &b, &[Verdict::Sent]);
        assert_eq!(marked, 0);
        assert!(err.is_some());
        assert_eq!(tally(&BallotStore::open(full, "w3")).waiting, 1);
    }

    #[test]
    fn replies_are_read_by_status_and_in_order() {
        let kv = memory();
        let store = fill(&kv, "w1", 0, 3);
        let b = next_batch(&store, 10);
        let ids: Vec<&str> = b.iter().map(|p| p.ballot.id.as_str()).collect();
        let body = serde_json::json!({"results": [
            {"id": ids[0], "status": "stored"},
            {"id": ids[1], "status": "already_stored"},
            {"id": ids[2], "status": "conflict", "problems": [{"path": "[2].id", "message": "a different ballot with this id is already stored"}]},
        ], "stored": 1, "already_stored": 1, "conflicts": 1, "refused": 0})
        .to_string();
        match read_reply(&b, 200, &body, None) {
            Reply::Answered(v) => {
                assert_eq!(v[..2], [Verdict::Sent, Verdict::Sent]);
                assert!(
                    matches!(&v[2], Verdict::Refused(w) if w.starts_with("[2].id: a different"))
                );
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(read_reply(&b, 413, "", None), Reply::Smaller);
        assert_eq!(
            read_reply(&b[..1], 413, "", None).clone(),
            Reply::Later(Failure::Status(413, None), None)
        );
        assert_eq!(
            read_reply(&b, 503, r#"{"error":"storage unavailable"}"#, Some("5")),
            Reply::Later(
                Failure::Status(503, Some("storage unavailable".into())),
                Some(5)
            )
        );
        // Answers out of order or missing one are not trusted: nothing is marked.
        let swapped = body.replace(ids[0], "x");
        assert!(matches!(
            read_reply(&b, 200, &swapped, None),
            Reply::Later(..)
        ));
        assert!(matches!(
            read_reply(&b[..2], 200, &body, None),
            Reply::Later(..)
        ));
    }

    #[test]
    fn a_code_goes_out_with_its_ballot_never_into_the_store_and_leaves_once_answered() {
        let kv = memory();
        let form = Form::default_form();
        let mut store = BallotStore::open(kv.clone(), "w1");
        let mut deputy = ballot(&form, 1);
        deputy.group = "npc".into();
        deputy.access_code = Some("K7QM-3XWD".into());
        for b in [ballot(&form, 0), deputy.clone(), ballot(&form, 2)] {
            store.append(&form, DEFAULT_FORM_JSON, &b).unwrap();
        }
        let lines = kv.get(&store.chunks()[0].key).unwrap();
        assert!(
            !lines.contains("K7QM"),
            "the code is not in the ballot line: {lines}"
        );
        let stored: Vec<Ballot> = store.contents().forms.into_values().flatten().collect();
        assert!(stored.iter().all(|b| b.access_code.is_none()), "{stored:?}");

        let batch = next_batch(&store, 10);
        let codes: Vec<Option<&str>> = batch
            .iter()
            .map(|p| p.ballot.access_code.as_deref())
            .collect();
        assert_eq!(codes, [None, Some("K7QM-3XWD"), None]);
        assert!(request_body(&batch).contains(r#""access_code":"K7QM-3XWD""#));

        let body = serde_json::json!({"results": [
            {"id": batch[0].ballot.id, "status": "stored"},
            {"id": batch[1].ballot.id, "status": "refused", "reason": "code_used",
             "problems": [{"path": "[1].access_code", "message": "this access code was already used"}]},
            {"id": batch[2].ballot.id, "status": "refused", "reason": "invalid",
             "problems": [{"path": "[2].answers.appr", "message": "bad"}]},
        ]})
        .to_string();
        let Reply::Answered(v) = read_reply(&batch, 200, &body, None) else {
            panic!("{body}")
        };
        assert_eq!(
            v,
            [
                Verdict::Sent,
                Verdict::Refused("code_used".into()),
                Verdict::Refused("[2].answers.appr: bad".into())
            ]
        );
        let code_slot = code_key(&batch[1].chunk, batch[1].line);
        assert_eq!(kv.get(&code_slot).as_deref(), Some("K7QM-3XWD"));
        apply(&kv, &batch, &v);
        assert_eq!(
            kv.get(&code_slot),
            None,
            "answered: the code leaves the device"
        );
        let t = tally(&store);
        assert_eq!((t.sent, t.waiting, t.refused), (1, 0, 2));
        assert_eq!(t.reasons.get("code_used"), Some(&1));

        // A waiting code goes with its chunk when the device is cleared.
        let mut next = ballot(&form, 3);
        next.access_code = Some("K7QM-3XWD".into());
        let at = store.append(&form, DEFAULT_FORM_JSON, &next).unwrap();
        assert!(kv.get(&code_key(&at.key, at.line)).is_some());
        assert!(store.clear_if(|_, _| true));
        assert!(
            kv.keys()
                .iter()
                .all(|k| !k.starts_with(crate::store::CODE_PREFIX)),
            "{:?}",
            kv.keys()
        );
    }

    #[test]
    fn backoff_doubles_from_two_seconds_to_a_minute_with_full_jitter() {
        assert_eq!(backoff_ms(1, 1.0, None), 2000.0);
        assert_eq!(backoff_ms(2, 1.0, None), 4000.0);
        assert_eq!(backoff_ms(5, 1.0, None), 32_000.0);
        assert_eq!(backoff_ms(6, 1.0, None), 60_000.0);
        assert_eq!(backoff_ms(40, 1.0, None), 60_000.0);
        assert_eq!(backoff_ms(3, 0.5, None), 4000.0);
        assert_eq!(backoff_ms(3, 0.0, None), 100.0);
        assert_eq!(backoff_ms(1, 0.1, Some(5)), 5000.0);
        assert_eq!(backoff_ms(1, 0.1, Some(3600)), 60_000.0);
    }

    #[test]
    fn server_addresses_are_checked() {
        assert_eq!(
            check_server(" https://pingyi.example.gov.cn:8443/ ").as_deref(),
            Some("https://pingyi.example.gov.cn:8443")
        );
        assert_eq!(
            check_server("http://10.0.0.5").as_deref(),
            Some("http://10.0.0.5")
        );
        for bad in [
            "pingyi.example",
            "ftp://x",
            "http://",
            "http://a b",
            "http://x/?q",
            "https://u@x",
        ] {
            assert_eq!(check_server(bad), None, "{bad}");
        }
        assert_eq!(endpoint(None), "api/v1/ballots");
        assert_eq!(device_endpoint(None, "kiosk-1"), "api/v1/devices/kiosk-1");
        assert_eq!(
            device_endpoint(Some("http://10.0.0.5"), "%E5%A4%A7%E5%8E%85"),
            "http://10.0.0.5/api/v1/devices/%E5%A4%A7%E5%8E%85"
        );
        // Compared as JSON: the key order depends on serde_json's features, which other
        // crates of the workspace can switch on (`cargo test --workspace`).
        let body: serde_json::Value =
            serde_json::from_str(&heartbeat_body(3, "minzhu-pingyi", "2026.1")).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"form_id": "minzhu-pingyi", "form_version": "2026.1", "waiting": 3})
        );
        assert_eq!(
            endpoint(Some("http://10.0.0.5")),
            "http://10.0.0.5/api/v1/ballots"
        );
    }
}
