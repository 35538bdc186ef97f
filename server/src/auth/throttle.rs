//! Slowing down password guessing, in memory: failed sign-ins are counted per name tried
//! and per client address. Each failure's answer is delayed a little more than the last;
//! past a few failures the name (or address) is locked for a time that doubles with each
//! further failure, and attempts meanwhile are answered 429 with Retry-After without
//! checking the password. The table is bounded: records forget after a quiet spell, and
//! when it is full the oldest record makes room.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures of one name allowed before it is locked.
pub const FREE_PER_NAME: u32 = 5;
/// Failures from one address allowed before it is locked (an office may share one).
pub const FREE_PER_ADDRESS: u32 = 20;
/// The first lock; each further failure doubles it, up to [`LONGEST_LOCK`].
const FIRST_LOCK: Duration = Duration::from_secs(30);
const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
/// A record with no failure for this long is forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(30 * 60);
/// Each failure delays its answer by this much per failure so far, up to [`LONGEST_DELAY`].
const DELAY_STEP: Duration = Duration::from_millis(200);
const LONGEST_DELAY: Duration = Duration::from_secs(2);
/// The most records kept (names and addresses together).
const MAX_RECORDS: usize = 10_000;
/// Names are kept cut to this many characters, so long names cannot fill memory.
const NAME_CHARS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Name(String),
    Address(IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

/// The failed sign-ins of one server.
#[derive(Debug, Default)]
pub struct Throttle {
    records: Mutex<HashMap<Key, Record>>,
}

fn name_key(name: &str) -> Key {
    Key::Name(name.chars().take(NAME_CHARS).collect())
}

impl Throttle {
    pub fn new() -> Throttle {
        Throttle::default()
    }

    /// `Err(wait)` when the name or the address is locked now: try again after `wait`.
    pub fn check(&self, name: &str, address: IpAddr) -> Result<(), Duration> {
        let now = Instant::now();
        let records = self.records.lock().expect("throttle lock");
        let wait = [name_key(name), Key::Address(address)]
            .iter()
            .filter_map(|k| records.get(k)?.locked_until)
            .filter_map(|until| until.checked_duration_since(now))
            .max();
        match wait {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a failed sign-in; returns how long to hold back its answer.
    pub fn failed(&self, name: &str, address: IpAddr) -> Duration {
        let now = Instant::now();
        let mut records = self.records.lock().expect("throttle lock");
        let mut most = 0;
        for (key, free) in [
            (name_key(name), FREE_PER_NAME),
            (Key::Address(address), FREE_PER_ADDRESS),
        ] {
            if !records.contains_key(&key) && records.len() >= MAX_RECORDS {
                make_room(&mut records, now);
            }
            let record = records.entry(key).or_insert(Record {
                failures: 0,
                last: now,
                locked_until: None,
            });
            if now.duration_since(record.last) > FORGET_AFTER {
                record.failures = 0;
            }
            record.failures += 1;
            record.last = now;
            if record.failures >= free {
                let doublings = (record.failures - free).min(16);
                let lock = FIRST_LOCK.saturating_mul(1 << doublings).min(LONGEST_LOCK);
                record.locked_until = Some(now + lock);
            }
            most = most.max(record.failures);
        }
        DELAY_STEP.saturating_mul(most).min(LONGEST_DELAY)
    }

    /// A successful sign-in clears the name's failures (not the address's: one account
    /// must not let its holder go on guessing others' passwords from the same machine).
    pub fn succeeded(&self, name: &str) {
        self.records
            .lock()
            .expect("throttle lock")
            .remove(&name_key(name));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.records.lock().expect("throttle lock").len()
    }
}

/// Forgets quiet records; when none is quiet, the one whose last failure is oldest.
fn make_room(records: &mut HashMap<Key, Record>, now: Instant) {
    records.retain(|_, r| {
        now.duration_since(r.last) <= FORGET_AFTER || r.locked_until.is_some_and(|u| u > now)
    });
    if records.len() >= MAX_RECORDS {
        if let Some(oldest) = records
            .iter()
            .min_by_key(|(_, r)| r.last)
            .map(|(k, _)| k.clone())
        {
            records.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 20));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, 21));

    #[test]
    fn a_name_is_locked_after_its_free_failures_from_any_address() {
        let t = Throttle::new();
        let mut delays = Vec::new();
        for _ in 0..FREE_PER_NAME - 1 {
            assert!(t.check("wang", HOME).is_ok());
            delays.push(t.failed("wang", HOME));
        }
        assert!(delays.windows(2).all(|w| w[0] < w[1]), "{delays:?}");
        assert!(t.check("wang", OTHER).is_ok());
        t.failed("wang", OTHER);
        let wait = t.check("wang", OTHER).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= FIRST_LOCK);
        assert!(t.check("li", OTHER).is_ok(), "another name is not locked");
        t.succeeded("wang");
        assert!(t.check("wang", OTHER).is_ok());
    }

    #[test]
    fn an_address_is_locked_after_guessing_many_names() {
        let t = Throttle::new();
        for i in 0..FREE_PER_ADDRESS {
            assert!(t.check(&format!("user{i}"), HOME).is_ok());
            t.failed(&format!("user{i}"), HOME);
        }
        assert!(t.check("someone", HOME).is_err());
        assert!(t.check("someone", OTHER).is_ok());
    }

    #[test]
    fn the_table_stays_bounded() {
        let t = Throttle::new();
        for i in 0..MAX_RECORDS + 50 {
            t.failed(&format!("name-{i}"), HOME);
        }
        assert!(t.len() <= MAX_RECORDS, "{}", t.len());
        assert!(
            t.check("someone", HOME).is_err(),
            "the busy address stays locked"
        );
    }
}
