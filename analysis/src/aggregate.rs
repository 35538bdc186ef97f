//! 汇总状态: the serializable, mergeable state that ballots and tallies are folded into.
//!
//! For every unit × group × criterion × option it holds a count (the histogram of
//! DESIGN.md), and beside it the additive sufficient statistics that per-ballot methods
//! need: for every unit × group, the number, sums and cross-product sums of the criterion
//! scores of the ballot rows, kept separately for each pattern of answered criteria
//! ([`PatternMoments`]). From those, pairwise, listwise and median-filled covariances are
//! all exact (Cronbach's alpha, the standard error of a weighted score). Its size depends
//! on the form (units, groups, criteria, options, at most 2^criteria patterns) and on how
//! many distinct completion seconds were seen, never on the number of ballots.
//!
//! Two states merge by adding every number ([`Aggregate::merge`]), so `pingyi aggregate`
//! on many machines and `pingyi score part1.json part2.json` on one give the same result
//! as one run over every file. The rules that decide what is folded (points, validity,
//! careless exclusion) are recorded as a key; states made under other rules do not merge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{json_error, InputError};
use crate::rules::Resolved;

/// The format tag written into every saved state.
pub const FORMAT: &str = "pingyi-aggregate/1";

/// Sums over the ballot rows (one ballot's answers on one unit) that answered exactly one
/// set of criteria.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Moments {
    /// Rows.
    pub n: u64,
    /// Σ x_c per criterion (0 for criteria not in the pattern).
    pub sum: Vec<f64>,
    /// Σ x_i·x_j for i ≤ j, row-major upper triangle (k(k+1)/2 entries).
    pub cross: Vec<f64>,
}

/// Index of (i, j), i ≤ j, in a row-major upper triangle of a k × k matrix.
pub fn tri(k: usize, i: usize, j: usize) -> usize {
    let (i, j) = if i <= j { (i, j) } else { (j, i) };
    i * k - i * (i + 1) / 2 + j
}

impl Moments {
    fn new(k: usize) -> Moments {
        Moments {
            n: 0,
            sum: vec![0.0; k],
            cross: vec![0.0; k * (k + 1) / 2],
        }
    }

    /// Adds `other`; `None` when the row counts add up to more than a u64 holds.
    fn add(&mut self, other: &Moments) -> Option<()> {
        self.n = self.n.checked_add(other.n)?;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.cross.iter_mut().zip(&other.cross) {
            *a += b;
        }
        Some(())
    }
}

/// `a += b`, `None` (and `a` unchanged) when the sum does not fit.
pub(crate) fn add(a: &mut u64, b: u64) -> Option<()> {
    *a = a.checked_add(b)?;
    Some(())
}

/// `a[i] += b[i]` for every i, `None` at the first sum that does not fit.
pub(crate) fn add_all(a: &mut [u64], b: &[u64]) -> Option<()> {
    a.iter_mut().zip(b).try_for_each(|(x, y)| add(x, *y))
}

/// Moments per pattern of answered criteria (bit c set = criterion c answered).
pub type PatternMoments = BTreeMap<u32, Moments>;

/// 选票统计: what happened to every ballot row read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Accounting {
    /// Ballot rows read (including duplicates).
    pub total: u64,
    /// Rows whose response_id was already read with the same content (kept once).
    pub duplicates: u64,
    /// Invalid ballots by reason (blank, all_same, all_top, a cap's name, void:GROUP).
    pub invalid: BTreeMap<String, u64>,
    /// Valid ballots flagged as straight-lining.
    pub straight_lining: u64,
    /// Valid ballots flagged as too fast (when the threshold was known while reading).
    pub too_fast: u64,
    /// Valid ballots left out as careless, by reason (too_fast, straight_lining).
    pub excluded: BTreeMap<String, u64>,
    /// Too-fast thresholds (seconds) that were applied while reading, one per run.
    pub thresholds: Vec<f64>,
    /// Votes read from tally files (they are not ballots).
    pub tally_votes: u64,
}

impl Accounting {
    /// Invalid ballots of every reason.
    pub fn invalid_total(&self) -> u64 {
        self.invalid.values().sum()
    }

    /// Ballots that passed validity (read − duplicates − invalid).
    pub fn valid(&self) -> u64 {
        self.total
            .saturating_sub(self.duplicates)
            .saturating_sub(self.invalid_total())
    }

    /// Valid ballots excluded as careless.
    pub fn excluded_total(&self) -> u64 {
        self.excluded.values().sum()
    }
}

/// The mergeable state (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    /// Always [`FORMAT`].
    pub format: String,
    /// The form's id.
    pub form_id: String,
    /// The form's version.
    pub form_version: String,
    /// The rules that decided what was folded; see [`rules_key`].
    pub rules_key: String,
    /// Unit ids (the grid's), in order.
    pub units: Vec<String>,
    /// Group ids, in order.
    pub groups: Vec<String>,
    /// Criterion ids, in order.
    pub criteria: Vec<String>,
    /// Option codes of the scale, in order.
    pub options: Vec<String>,
    /// counts[((u·G + g)·C + c)·O + o]: answers per unit × group × criterion × option.
    pub counts: Vec<u64>,
    /// Per unit × group: ballots (or, for tallies, the largest count of votes over the
    /// criteria) with at least one counted answer on the unit.
    pub rated: Vec<u64>,
    /// Per unit × group: valid ballots with no counted answer on the unit (不了解 / empty).
    pub unrated: Vec<u64>,
    /// Per unit × group: votes that came from tallies (no per-ballot moments for them).
    pub tally_votes: Vec<u64>,
    /// Per unit × group: moments of the criterion scores by answered pattern.
    pub moments: Vec<PatternMoments>,
    /// Per group: ballot rows read once (valid or not), for 收回票数 and the void rule.
    pub returned: Vec<u64>,
    /// Per group: valid ballots.
    pub valid: Vec<u64>,
    /// Per group: valid ballots excluded as careless.
    pub excluded: Vec<u64>,
    /// The ballot accounting.
    pub ballots: Accounting,
    /// Completion time of valid ballots, whole seconds → ballots.
    pub durations: BTreeMap<u64, u64>,
    /// The inputs that went in (file names).
    pub sources: Vec<String>,
}

/// The part of the rules that decides what is folded: states must agree on it to merge.
pub fn rules_key(r: &Resolved) -> String {
    let key = serde_json::json!({
        "item": r.item,
        "points": r.options.iter().map(|o| (o.code.clone(), o.points, o.satisfied, o.counted)).collect::<Vec<_>>(),
        "missing": r.missing,
        "validity": r.rules.validity,
        "careless": r.rules.careless,
    });
    key.to_string()
}

impl Aggregate {
    /// An empty state for these rules.
    pub fn new(form_id: &str, form_version: &str, r: &Resolved) -> Aggregate {
        let (u, g, c, o) = (
            r.units.len(),
            r.groups.len(),
            r.criteria.len(),
            r.options.len(),
        );
        Aggregate {
            format: FORMAT.into(),
            form_id: form_id.into(),
            form_version: form_version.into(),
            rules_key: rules_key(r),
            units: r.units.clone(),
            groups: r.groups.clone(),
            criteria: r.criteria.clone(),
            options: r.options.iter().map(|o| o.code.clone()).collect(),
            counts: vec![0; u * g * c * o],
            rated: vec![0; u * g],
            unrated: vec![0; u * g],
            tally_votes: vec![0; u * g],
            moments: vec![PatternMoments::new(); u * g],
            returned: vec![0; g],
            valid: vec![0; g],
            excluded: vec![0; g],
            ballots: Accounting::default(),
            durations: BTreeMap::new(),
            sources: Vec::new(),
        }
    }

    /// Index of a unit × group pair.
    pub fn ug(&self, u: usize, g: usize) -> usize {
        u * self.groups.len() + g
    }

    /// Index of a unit × group × criterion × option count.
    pub fn cell(&self, u: usize, g: usize, c: usize, o: usize) -> usize {
        ((u * self.groups.len() + g) * self.criteria.len() + c) * self.options.len() + o
    }

    /// The counts of one unit × group × criterion, one per option.
    pub fn histogram(&self, u: usize, g: usize, c: usize) -> &[u64] {
        let start = self.cell(u, g, c, 0);
        &self.counts[start..start + self.options.len()]
    }

    /// Adds one ballot row's answered criterion scores (`None` = not answered) for unit
    /// × group `ug` to the moments.
    pub fn add_row(&mut self, ug: usize, scores: &[Option<f64>]) {
        let k = scores.len();
        let mut mask = 0u32;
        for (c, s) in scores.iter().enumerate() {
            if s.is_some() {
                mask |= 1 << c;
            }
        }
        if mask == 0 {
            return;
        }
        let m = self.moments[ug]
            .entry(mask)
            .or_insert_with(|| Moments::new(k));
        m.n += 1;
        for (i, x) in scores.iter().enumerate() {
            let Some(x) = x else { continue };
            m.sum[i] += x;
            for (j, y) in scores.iter().enumerate().skip(i) {
                if let Some(y) = y {
                    m.cross[tri(k, i, j)] += x * y;
                }
            }
        }
    }

    /// Adds `other` into this state. Both must come from the same form and rules.
    pub fn merge(&mut self, other: &Aggregate) -> Result<(), String> {
        if other.format != FORMAT {
            return Err(format!(
                "format {:?} is not {FORMAT:?}, expected a state written by this version of pingyi",
                other.format
            ));
        }
        if (&other.form_id, &other.form_version) != (&self.form_id, &self.form_version) {
            return Err(format!(
                "was made for form {:?} version {:?}, expected form {:?} version {:?}",
                other.form_id, other.form_version, self.form_id, self.form_version
            ));
        }
        if other.units != self.units
            || other.groups != self.groups
            || other.criteria != self.criteria
            || other.options != self.options
        {
            return Err("has other units, groups, criteria or options than this form's grid, expected the same form".into());
        }
        if other.rules_key != self.rules_key {
            return Err("was aggregated under other scoring rules (points, missing-answer default, validity or careless settings), expected the rules given now; run `pingyi aggregate --rules` with the same rules file".into());
        }
        // Added into a copy, so that counts too large to add leave this state as it was.
        let mut sum = self.clone();
        sum.add_counts(other)
            .and_then(|()| sum.grand_total())
            .ok_or_else(|| {
                format!(
                    "its counts and those read before it add up to more than {}, expected fewer",
                    u64::MAX
                )
            })?;
        *self = sum;
        self.sources.extend(other.sources.iter().cloned());
        Ok(())
    }

    /// Every count of the state added up, `None` past `u64::MAX`. The scorer sums counts
    /// in many ways (over options, groups, units); while this total fits, none can wrap.
    pub(crate) fn grand_total(&self) -> Option<u64> {
        let b = &self.ballots;
        let lists = [
            &self.counts,
            &self.rated,
            &self.unrated,
            &self.tally_votes,
            &self.returned,
            &self.valid,
            &self.excluded,
        ];
        lists
            .into_iter()
            .flatten()
            .copied()
            .chain(self.moments.iter().flat_map(|pm| pm.values().map(|m| m.n)))
            .chain([
                b.total,
                b.duplicates,
                b.straight_lining,
                b.too_fast,
                b.tally_votes,
            ])
            .chain(b.invalid.values().copied())
            .chain(b.excluded.values().copied())
            .chain(self.durations.values().copied())
            .try_fold(0u64, u64::checked_add)
    }

    /// Adds every number of `other` into this state; `None` when one overflows.
    fn add_counts(&mut self, other: &Aggregate) -> Option<()> {
        add_all(&mut self.counts, &other.counts)?;
        add_all(&mut self.rated, &other.rated)?;
        add_all(&mut self.unrated, &other.unrated)?;
        add_all(&mut self.tally_votes, &other.tally_votes)?;
        add_all(&mut self.returned, &other.returned)?;
        add_all(&mut self.valid, &other.valid)?;
        add_all(&mut self.excluded, &other.excluded)?;
        for (a, b) in self.moments.iter_mut().zip(&other.moments) {
            for (mask, m) in b {
                let k = m.sum.len();
                a.entry(*mask).or_insert_with(|| Moments::new(k)).add(m)?;
            }
        }
        let (a, b) = (&mut self.ballots, &other.ballots);
        add(&mut a.total, b.total)?;
        add(&mut a.duplicates, b.duplicates)?;
        for (k, v) in &b.invalid {
            add(a.invalid.entry(k.clone()).or_default(), *v)?;
        }
        add(&mut a.straight_lining, b.straight_lining)?;
        add(&mut a.too_fast, b.too_fast)?;
        for (k, v) in &b.excluded {
            add(a.excluded.entry(k.clone()).or_default(), *v)?;
        }
        a.thresholds.extend(&b.thresholds);
        add(&mut a.tally_votes, b.tally_votes)?;
        for (s, n) in &other.durations {
            add(self.durations.entry(*s).or_default(), *n)?;
        }
        Some(())
    }

    /// The state as JSON (what `pingyi aggregate -o part.json` writes).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an aggregate always serializes")
    }

    /// Reads a saved state, naming the place of any problem.
    pub fn from_json(source: &str, text: &str) -> Result<Aggregate, InputError> {
        let mut de = serde_json::Deserializer::from_str(text);
        let agg: Aggregate = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            json_error(
                source,
                e,
                "; expected a state written by `pingyi aggregate`",
            )
        })?;
        let (u, g, c, o) = (
            agg.units.len(),
            agg.groups.len(),
            agg.criteria.len(),
            agg.options.len(),
        );
        let sizes = [
            ("counts", agg.counts.len(), u * g * c * o),
            ("rated", agg.rated.len(), u * g),
            ("unrated", agg.unrated.len(), u * g),
            ("tally_votes", agg.tally_votes.len(), u * g),
            ("moments", agg.moments.len(), u * g),
            ("returned", agg.returned.len(), g),
            ("valid", agg.valid.len(), g),
            ("excluded", agg.excluded.len(), g),
        ];
        for (field, got, want) in sizes {
            if got != want {
                return Err(InputError::new(
                    source,
                    format!("has {got} entries, expected {want} for this many units, groups, criteria and options"),
                )
                .in_field(field));
            }
        }
        if agg.grand_total().is_none() {
            return Err(InputError::new(
                source,
                format!(
                    "its counts add up to more than {}, expected a state written by `pingyi aggregate`",
                    u64::MAX
                ),
            ));
        }
        let b = &agg.ballots;
        let set_aside = std::iter::once(b.duplicates)
            .chain(b.invalid.values().copied())
            .chain(b.excluded.values().copied())
            .try_fold(0u64, u64::checked_add);
        if set_aside.is_none_or(|n| b.total < n) {
            return Err(InputError::new(
                source,
                format!(
                    "counts {} ballots but {} duplicates, invalid or excluded, expected no more than were read",
                    b.total,
                    set_aside.map_or_else(|| format!("more than {}", u64::MAX), |n| n.to_string())
                ),
            )
            .in_field("ballots"));
        }
        for (i, pm) in agg.moments.iter().enumerate() {
            for (mask, m) in pm {
                if m.sum.len() != c || m.cross.len() != c * (c + 1) / 2 || *mask >> c != 0 {
                    return Err(InputError::new(
                        source,
                        format!("pattern {mask} has the wrong size, expected {c} criteria"),
                    )
                    .in_field(format!("moments[{i}]")));
                }
            }
        }
        Ok(agg)
    }
}
