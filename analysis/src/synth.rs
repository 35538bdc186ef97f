//! 模拟选票: synthetic ballots for benchmarks and demonstrations, made deterministically
//! from a seed (SplitMix64, Steele, Lea & Flood 2014), so the same seed always gives the
//! same file.
//!
//! Each unit has a quality and each respondent a leniency; a cell's option is the scale
//! position nearest to their sum plus noise. About 8% of unit rows are 不了解 (when the
//! scale has an option that is not counted), 2% of ballots straight-line, 3% are filled
//! in under 30 seconds, and single-choice and rating items get a random answer. Other
//! item types are left unanswered.

use std::collections::BTreeMap;

use crate::ballot::{Answer, Ballot, Grid};
use crate::form::{Form, ItemKind};
use crate::time::format_rfc3339;

/// SplitMix64: a small, fast, well-mixed generator.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from a seed.
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// An integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
}

/// Makes ballots for `form`, one at a time.
pub struct Generator<'f> {
    form: &'f Form,
    rng: SplitMix64,
    quality: Vec<f64>,
    next: u64,
    start_ms: i64,
    /// Draw respondents only from groups that vote without an access code.
    open_only: bool,
}

impl<'f> Generator<'f> {
    /// A generator for `form` from `seed`.
    pub fn new(form: &'f Form, seed: u64) -> Generator<'f> {
        let mut rng = SplitMix64::new(seed);
        let quality = form.units.iter().map(|_| rng.unit() * 1.6 - 0.3).collect();
        Generator {
            form,
            rng,
            quality,
            next: 0,
            // 2026-11-01T09:00:00+08:00
            start_ms: 1_793_494_800_000,
            open_only: false,
        }
    }

    /// Makes ballots only of the groups that vote without an access code (a server
    /// refuses the others' ballots unless each carries an issued code): for load tests
    /// and demonstrations against a server. A form whose groups all need codes keeps
    /// drawing from all of them.
    pub fn open_groups_only(mut self) -> Generator<'f> {
        self.open_only = self.form.groups.iter().any(|g| !g.code_required);
        self
    }

    /// The next ballot.
    pub fn ballot(&mut self) -> Ballot {
        let form = self.form;
        let rng = &mut self.rng;
        let i = self.next;
        self.next += 1;
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            rng.next_u64() as u32,
            rng.next_u64() as u16,
            rng.next_u64() as u16 & 0xfff,
            (rng.next_u64() as u16 & 0x3fff) | 0x8000,
            rng.next_u64() & 0xffff_ffff_ffff
        );
        let open_only = self.open_only;
        let groups: Vec<&crate::form::Group> = form
            .groups
            .iter()
            .filter(|g| !(open_only && g.code_required))
            .collect();
        let group = groups[if rng.unit() < 0.6 {
            0
        } else {
            rng.below(groups.len())
        }];
        let leniency = rng.unit() * 1.2 - 0.6;
        let straight = rng.unit() < 0.02;
        let fast = rng.unit() < 0.03;
        let duration_s = if fast {
            10 + rng.below(20) as i64
        } else {
            240 + rng.below(300) as i64
        };
        let started = self.start_ms + i as i64 * 7_000 + rng.below(5_000) as i64;
        let mut answers = BTreeMap::new();
        for item in form.items() {
            match &item.kind {
                ItemKind::Appraisal {
                    scale,
                    units,
                    criteria,
                } => {
                    let Some(scale) = form.scale(scale) else {
                        continue;
                    };
                    // Counted options from the worst to the best.
                    let mut ladder: Vec<(f64, &str)> = scale
                        .options
                        .iter()
                        .filter(|o| o.counted)
                        .map(|o| (o.score.unwrap_or(0.0), o.code.as_str()))
                        .collect();
                    ladder.sort_by(|a, b| a.0.total_cmp(&b.0));
                    let dont_know = scale.options.iter().find(|o| !o.counted);
                    if ladder.is_empty() {
                        continue;
                    }
                    let top = ladder.len() - 1;
                    let fixed = ladder[rng.below(ladder.len())].1;
                    let mut grid = Grid::new();
                    for unit in units {
                        let q = form
                            .units
                            .iter()
                            .position(|u| &u.id == unit)
                            .map(|k| self.quality[k])
                            .unwrap_or(0.5);
                        let row = grid.entry(unit.clone()).or_default();
                        let unknown = !straight && dont_know.is_some() && rng.unit() < 0.08;
                        for c in criteria {
                            let code = if straight {
                                fixed
                            } else if unknown {
                                dont_know.map(|o| o.code.as_str()).unwrap_or(fixed)
                            } else {
                                let x = (q + leniency + (rng.unit() - 0.5) * 0.9).clamp(0.0, 1.0);
                                ladder[(x * top as f64).round() as usize].1
                            };
                            row.insert(c.id.clone(), code.to_string());
                        }
                    }
                    answers.insert(item.id.clone(), Answer::Grid(grid));
                }
                ItemKind::Single { choices } if !choices.is_empty() => {
                    let c = &choices[rng.below(choices.len())];
                    answers.insert(item.id.clone(), Answer::Str(c.code.clone()));
                }
                ItemKind::Rating { scale } => {
                    if let Some(s) = form.scale(scale) {
                        if !s.options.is_empty() {
                            let o = &s.options[rng.below(s.options.len())];
                            answers.insert(item.id.clone(), Answer::Str(o.code.clone()));
                        }
                    }
                }
                _ => {}
            }
        }
        Ballot {
            id,
            form_id: form.id.clone(),
            form_version: form.version.clone(),
            device_id: format!("kiosk-{}", 1 + rng.below(5)),
            group: group.id.clone(),
            lang: form.languages[0].clone(),
            started_at: format_rfc3339(started),
            submitted_at: format_rfc3339(started + duration_s * 1000),
            answers,
            access_code: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ballots_are_valid_and_repeatable() {
        let form = Form::default_form();
        let mut a = Generator::new(&form, 7);
        let mut b = Generator::new(&form, 7);
        for _ in 0..200 {
            let x = a.ballot();
            assert!(x.problems(&form).is_empty(), "{:?}", x.problems(&form));
            assert_eq!(x, b.ballot());
        }
        let mut c = Generator::new(&form, 8);
        assert_ne!(a.ballot(), c.ballot());
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = SplitMix64::new(1);
        for n in [1, 2, 3, 7, 100] {
            for _ in 0..1000 {
                assert!(r.below(n) < n);
            }
        }
    }
}
