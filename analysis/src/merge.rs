//! 合并: exports from many devices into one, each ballot once.
//!
//! A ballot id read a second time with the same content (every field equal) is a
//! duplicate: kept once and counted. The same id with other content is an error naming
//! both places, because only a person can tell which one is right. A summary counts the
//! ballots of every device in every file.

use std::collections::{BTreeMap, HashMap};

use xxhash_rust::xxh3::xxh3_64;

use crate::ballot::Ballot;
use crate::error::{quoted, InputError};

/// Ballots of one device in one file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCount {
    /// Ballots read.
    pub read: u64,
    /// Of those, kept (first seen).
    pub kept: u64,
    /// Of those, duplicates of a ballot already kept.
    pub duplicates: u64,
}

/// Merges ballots, remembering where each id was first seen.
#[derive(Debug, Default)]
pub struct Merger {
    seen: HashMap<String, (u64, String)>,
    /// (file, device_id) → counts, in file then device order.
    pub summary: BTreeMap<(usize, String), DeviceCount>,
    /// The files, in the order given.
    pub files: Vec<String>,
}

impl Merger {
    /// An empty merge.
    pub fn new() -> Merger {
        Merger::default()
    }

    /// Starts the next file; returns its index.
    pub fn file(&mut self, name: &str) -> usize {
        self.files.push(name.to_string());
        self.files.len() - 1
    }

    /// Adds one ballot read from file `file` at `place` (`file.csv:12` or `file.json: [3]`).
    /// `Ok(true)`: keep it; `Ok(false)`: a duplicate; `Err`: the same id with other content.
    pub fn add(&mut self, file: usize, place: &str, b: &Ballot) -> Result<bool, InputError> {
        let hash = xxh3_64(
            serde_json::to_string(b)
                .expect("a ballot always serializes")
                .as_bytes(),
        );
        let entry = self.summary.entry((file, b.device_id.clone())).or_default();
        entry.read += 1;
        match self.seen.get(&b.id) {
            None => {
                self.seen.insert(b.id.clone(), (hash, place.to_string()));
                entry.kept += 1;
                Ok(true)
            }
            Some((h, _)) if *h == hash => {
                entry.duplicates += 1;
                Ok(false)
            }
            Some((_, first)) => Err(InputError::new(
                place,
                format!(
                    "response_id {} was read before with different answers (at {first}), expected one set of answers per ballot id; keep the right one and remove the other",
                    quoted(&b.id)
                ),
            )),
        }
    }

    /// Ballots kept.
    pub fn kept(&self) -> u64 {
        self.summary.values().map(|c| c.kept).sum()
    }

    /// Duplicates dropped.
    pub fn duplicates(&self) -> u64 {
        self.summary.values().map(|c| c.duplicates).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::Form;

    fn ballot(id: &str, device: &str) -> Ballot {
        let form = Form::default_form();
        let mut b = crate::synth::Generator::new(&form, 3).ballot();
        b.id = id.into();
        b.device_id = device.into();
        b
    }

    #[test]
    fn duplicates_are_counted_and_conflicts_name_both_places() {
        let mut m = Merger::new();
        let f1 = m.file("a.csv");
        let f2 = m.file("b.json");
        assert!(m.add(f1, "a.csv:2", &ballot("x", "k1")).unwrap());
        assert!(m.add(f1, "a.csv:3", &ballot("y", "k1")).unwrap());
        assert!(!m.add(f2, "b.json: [0]", &ballot("x", "k1")).unwrap());
        let mut other = ballot("y", "k1");
        other.lang = "en".into();
        let e = m.add(f2, "b.json: [1]", &other).unwrap_err().to_string();
        assert!(e.starts_with("b.json: [1]: response_id \"y\" was read before with different answers (at a.csv:3)"), "{e}");
        assert_eq!((m.kept(), m.duplicates()), (2, 1));
        assert_eq!(m.summary[&(0, "k1".to_string())].read, 2);
        assert_eq!(m.summary[&(1, "k1".to_string())].duplicates, 1);
    }
}
