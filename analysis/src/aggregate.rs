//! 汇总状态: the serializable, mergeable state that ballots and tallies are folded into.
//!
//! For every unit × group × criterion × option it holds a count (the histogram of
//! README's "Scoring"), and beside it the additive sufficient statistics that per-ballot methods
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
//!
//! Every sum the scorer makes is a sum of counters of one family (the counts, the rated
//! ballots, the completion times …), so a state is kept to the invariant that each
//! family adds up to at most [`MAX_COUNT`]: a saved state that breaks it is refused with
//! the field, and a merge that would break it is refused before anything is added. No
//! count can then wrap around, however the parts are combined.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{json_error, InputError};
use crate::rules::Resolved;

/// The format tag written into every saved state.
pub const FORMAT: &str = "pingyi-aggregate/1";

/// The most that one family of counters (see the module doc) may add up to.
pub const MAX_COUNT: u64 = u64::MAX;

/// The sum of some counters, wide enough that adding 2⁶⁴ of them cannot overflow.
pub fn wide_sum<'a>(counters: impl IntoIterator<Item = &'a u64>) -> u128 {
    counters.into_iter().map(|&c| u128::from(c)).sum()
}

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

    fn add(&mut self, other: &Moments) {
        self.n += other.n;
        for (a, b) in self.sum.iter_mut().zip(&other.sum) {
            *a += b;
        }
        for (a, b) in self.cross.iter_mut().zip(&other.cross) {
            *a += b;
        }
    }
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

    /// Each family of counters with its field name and what it adds up to.
    fn totals(&self) -> [(&'static str, u128); 12] {
        let b = &self.ballots;
        [
            ("counts", wide_sum(&self.counts)),
            ("rated", wide_sum(&self.rated)),
            ("unrated", wide_sum(&self.unrated)),
            ("tally_votes", wide_sum(&self.tally_votes)),
            ("returned", wide_sum(&self.returned)),
            ("valid", wide_sum(&self.valid)),
            ("excluded", wide_sum(&self.excluded)),
            (
                "moments",
                wide_sum(self.moments.iter().flat_map(|pm| pm.values().map(|m| &m.n))),
            ),
            ("durations", wide_sum(self.durations.values())),
            (
                "ballots",
                u128::from(b.total).max(
                    u128::from(b.duplicates) + wide_sum(b.invalid.values()) + wide_sum(&self.valid),
                ),
            ),
            ("ballots.tally_votes", u128::from(b.tally_votes)),
            (
                "ballots.straight_lining",
                u128::from(b.straight_lining) + u128::from(b.too_fast),
            ),
        ]
    }

    /// Σ |x| over every moment sum: when finite, every sum of moments the scorer makes is.
    fn moments_magnitude(&self) -> f64 {
        self.moments
            .iter()
            .flat_map(|pm| pm.values())
            .flat_map(|m| m.sum.iter().chain(&m.cross))
            .map(|x| x.abs())
            .sum()
    }

    /// Refuses a merge with `other` that would take a family of counters past
    /// [`MAX_COUNT`] or the moments past the largest finite number.
    fn check_room_for(&self, other: &Aggregate) -> Result<(), String> {
        for ((field, mine), (_, theirs)) in self.totals().into_iter().zip(other.totals()) {
            if mine + theirs > u128::from(MAX_COUNT) {
                return Err(format!(
                    "{field}: this part's {theirs} added to the {mine} read before make {}, more than the {MAX_COUNT} a count can hold; expected parts that add up to fewer",
                    mine + theirs
                ));
            }
        }
        if !(self.moments_magnitude() + other.moments_magnitude()).is_finite() {
            return Err("moments: this part's sums added to those read before are too large for a number, expected the sums of points of real ballots".into());
        }
        Ok(())
    }

    /// Adds `other` into this state. Both must come from the same form and rules, and
    /// together stay within [`MAX_COUNT`] (checked before anything is added).
    pub fn merge(&mut self, other: &Aggregate) -> Result<(), String> {
        if other.format != FORMAT {
            return Err(format!(
                "format {} is not {FORMAT:?}, expected a state written by this version of pingyi",
                crate::error::quoted(&other.format)
            ));
        }
        if (&other.form_id, &other.form_version) != (&self.form_id, &self.form_version) {
            return Err(format!(
                "was made for form {} version {}, expected form {:?} version {:?}",
                crate::error::quoted(&other.form_id),
                crate::error::quoted(&other.form_version),
                self.form_id,
                self.form_version
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
        self.check_room_for(other)?;
        let add = |a: &mut Vec<u64>, b: &Vec<u64>| {
            for (x, y) in a.iter_mut().zip(b) {
                *x += y;
            }
        };
        add(&mut self.counts, &other.counts);
        add(&mut self.rated, &other.rated);
        add(&mut self.unrated, &other.unrated);
        add(&mut self.tally_votes, &other.tally_votes);
        add(&mut self.returned, &other.returned);
        add(&mut self.valid, &other.valid);
        add(&mut self.excluded, &other.excluded);
        for (a, b) in self.moments.iter_mut().zip(&other.moments) {
            for (mask, m) in b {
                let k = m.sum.len();
                a.entry(*mask).or_insert_with(|| Moments::new(k)).add(m);
            }
        }
        let (a, b) = (&mut self.ballots, &other.ballots);
        a.total += b.total;
        a.duplicates += b.duplicates;
        for (k, v) in &b.invalid {
            *a.invalid.entry(k.clone()).or_default() += v;
        }
        a.straight_lining += b.straight_lining;
        a.too_fast += b.too_fast;
        for (k, v) in &b.excluded {
            *a.excluded.entry(k.clone()).or_default() += v;
        }
        a.thresholds.extend(&b.thresholds);
        a.tally_votes += b.tally_votes;
        for (s, n) in &other.durations {
            *self.durations.entry(*s).or_default() += n;
        }
        self.sources.extend(other.sources.iter().cloned());
        Ok(())
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
        for (field, total) in agg.totals() {
            if total > u128::from(MAX_COUNT) {
                return Err(InputError::new(
                    source,
                    format!("adds up to {total}, more than the {MAX_COUNT} a count can hold; expected a state written by `pingyi aggregate`"),
                )
                .in_field(field));
            }
        }
        let b = &agg.ballots;
        let accounted = u128::from(b.duplicates)
            + wide_sum(b.invalid.values())
            + wide_sum(&agg.valid).max(wide_sum(b.excluded.values()));
        if u128::from(b.total) < accounted {
            return Err(InputError::new(
                source,
                format!(
                    "counts {} ballots but {accounted} duplicates, invalid or valid, expected no more than were read",
                    b.total
                ),
            )
            .in_field("ballots"));
        }
        if !agg.moments_magnitude().is_finite() {
            return Err(InputError::new(
                source,
                "hold sums too large for a number, expected the sums of points of real ballots",
            )
            .in_field("moments"));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::Form;
    use crate::rules::Rules;

    fn empty() -> Aggregate {
        let form = Form::default_form();
        let r = Rules::default().resolve("default rules", &form).unwrap();
        Aggregate::new(&form.id, &form.version, &r)
    }

    #[test]
    fn a_part_whose_counts_add_up_past_u64_is_refused_with_the_field() {
        // Each count fits a u64, their sum does not: a sum the scorer makes would wrap.
        let mut a = empty();
        a.counts[0] = u64::MAX;
        a.counts[1] = 1;
        let e = Aggregate::from_json("p.json", &a.to_json()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("counts"), "{e}");
        assert!(
            e.to_string()
                .starts_with("p.json: counts: adds up to 18446744073709551616, more than the 18446744073709551615"),
            "{e}"
        );
        let mut a = empty();
        a.durations.insert(10, u64::MAX);
        a.durations.insert(20, u64::MAX);
        let e = Aggregate::from_json("p.json", &a.to_json()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("durations"), "{e}");
    }

    #[test]
    fn a_part_with_more_valid_ballots_than_read_is_refused() {
        let mut a = empty();
        a.ballots.total = 3;
        a.valid[0] = u64::MAX;
        let e = Aggregate::from_json("p.json", &a.to_json()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("ballots"), "{e}");
    }

    #[test]
    fn merging_past_u64_is_refused_before_anything_is_added() {
        let mut a = empty();
        a.counts[0] = u64::MAX - 1;
        let mut b = empty();
        b.counts[0] = 2;
        let before = a.clone();
        let e = a.merge(&b).unwrap_err();
        assert!(
            e.starts_with("counts: this part's 2 added to the 18446744073709551614 read before make 18446744073709551616"),
            "{e}"
        );
        assert_eq!(a, before, "nothing was added");
        // Just fitting is fine.
        b.counts[0] = 1;
        a.merge(&b).unwrap();
        assert_eq!(a.counts[0], u64::MAX);
    }

    #[test]
    fn moments_too_large_for_a_number_are_refused() {
        let mut a = empty();
        let m = Moments {
            n: 1,
            sum: vec![1e308; 5],
            cross: vec![0.0; 15],
        };
        a.moments[0].insert(1, m);
        a.rated[0] = 1;
        let e = Aggregate::from_json("p.json", &a.to_json()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("moments"), "{e}");
        a.moments[0].get_mut(&1).unwrap().sum = vec![1e308, 0.0, 0.0, 0.0, 0.0];
        let b = a.clone();
        assert!(a.merge(&b).unwrap_err().starts_with("moments:"));
    }
}
