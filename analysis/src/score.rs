//! 计分: from an [`Aggregate`] and the [`Resolved`] rules to the score report (README, "Output").
//!
//! Everything is computed from the counts and moments, exactly, in the order below; the
//! statistical methods themselves live in [`crate::stats`].
//!
//! 1. **Void groups.** When a group's returned ballots exceed the ballots issued, or a group
//!    under `[quorum]` had too few members present (or no attendance recorded), its vote
//!    is void: its valid ballots are counted as invalid (`void:GROUP`) and left out.
//! 2. **Unit × group × criterion**: n (counted answers), mean, sample SD, the trimmed mean
//!    (`[trim]`: k or a fraction from each side, only when n ≥ `min_n`), and the standard
//!    error of the mean used for the score: `s/√n` untrimmed, Tukey–McLaughlin
//!    `s_w/((1−2γ)√n)` with n − 2g − 1 degrees of freedom when trimmed (s_w the winsorized SD).
//! 3. **Unit × group score**: criteria combined by their weights, renormalized over the
//!    criteria answered. Its variance is `Σᵢⱼ wᵢwⱼ σᵢⱼ nᵢⱼ/(nᵢnⱼ)` with pairwise covariances
//!    from the ballot moments (answers on one ballot are correlated). For tallies or trimmed
//!    means, whose covariances are unknown, the conservative bound `(Σ wᵢ seᵢ)²` (perfect
//!    correlation) is used. Degrees of freedom: the smallest criterion's n − 1.
//! 4. **Unit score**: groups combined by their weights, renormalized over the groups that
//!    rated the unit; a weighted group that did not is flagged `missing_group:ID`. Groups
//!    are independent samples, so the variance is `Σ vg² var_g` and the t-interval uses
//!    Welch–Satterthwaite degrees of freedom.
//! 5. **满意率** of a unit: satisfied answers over the rates' basis (votes, or the head counts
//!    of the rules) on the rates' criteria and groups, with Wilson's interval.
//! 6. **Rank** (competition ranking, ties share a rank) within all units or a category;
//!    adjacent units are compared by Welch's t-test on their scores and standard errors
//!    ([`crate::stats::welch`]); when p ≥ 1 − confidence the two cannot be told apart and
//!    both are marked (`indistinct`). A unit rated by fewer than `min_n` ballots is flagged
//!    `low_n`.
//! 7. **Grades** by bands, majority or quota, then naming of the top and bottom units.
//! 8. **Reliability**: Cronbach's alpha over the criteria, subjects being ballot × unit
//!    rows, with Feldt's interval and the chosen missing-answer handling, and corrected
//!    item-total correlations. Feldt's n is the rows the covariances rest on: complete rows
//!    (listwise), every row (median-filled), or the smallest pairwise n (pairwise).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::aggregate::{tri, Accounting, Aggregate, PatternMoments};
use crate::careless;
use crate::form::Form;
use crate::rules::{
    grades_of, Basis, Grading, HeadCounts, Missing, Resolved, TooFast, TooFastName, Within,
};
use crate::stats::{self, ConfidenceLevel, Estimate, Interval, Method};

/// 选票统计 as printed: what happened to every ballot row read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BallotReport {
    /// Ballot rows read, duplicates included.
    pub total: u64,
    /// Ballots that passed validity (before careless exclusion, after void groups).
    pub valid: u64,
    /// Invalid ballots.
    pub invalid: u64,
    /// Rows whose id was read before with the same content (kept once).
    pub duplicates: u64,
    /// Invalid ballots by reason.
    pub invalid_by_reason: BTreeMap<String, u64>,
    /// Careless-answer flags and exclusions.
    pub careless: CarelessReport,
    /// Ballots that went into the scores (valid − excluded).
    pub used: u64,
    /// Votes read from tally files (not ballots).
    pub tally_votes: u64,
}

/// Careless-answer accounting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CarelessReport {
    /// Median completion time of the valid ballots, seconds.
    pub median_s: Option<f64>,
    /// The too-fast threshold, seconds.
    pub too_fast_threshold_s: Option<f64>,
    /// Valid ballots faster than the threshold.
    pub too_fast: u64,
    /// Valid ballots with every answered cell the same option.
    pub straight_lining: u64,
    /// Valid ballots left out as careless.
    pub excluded: u64,
    /// Left out, by reason.
    pub excluded_by_reason: BTreeMap<String, u64>,
}

/// One criterion's statistics for a unit (over the groups pooled, or one group).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CriterionReport {
    /// Counted answers.
    pub n: u64,
    /// Mean points.
    pub mean: Option<f64>,
    /// Sample standard deviation.
    pub sd: Option<f64>,
    /// Mean after the rules' trimming (the mean when nothing is trimmed).
    pub trimmed_mean: Option<f64>,
    /// Answers trimmed from each side.
    pub trimmed: u64,
    /// t-interval of the mean.
    pub ci: Option<[f64; 2]>,
    /// 满意率 on this criterion (satisfied / counted).
    pub satisfaction: Option<f64>,
    /// Wilson interval of that 满意率.
    pub satisfaction_ci: Option<[f64; 2]>,
}

/// One respondent group's result for a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupReport {
    /// Ballots of the group that rated the unit.
    pub n: u64,
    /// The group's score of the unit.
    pub score: Option<f64>,
    /// Its interval.
    pub score_ci: Option<[f64; 2]>,
    /// 满意率 of the group for the unit.
    pub satisfaction: Option<f64>,
    /// The group's weight after renormalization (0 if it did not count).
    pub weight: f64,
    /// Per criterion.
    pub criteria: BTreeMap<String, CriterionReport>,
}

/// One option's votes for a unit (on the rates' criteria and groups).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionShare {
    /// The option code.
    pub code: String,
    /// Answers.
    pub count: u64,
    /// Share of the rates' basis (none for options that are not votes).
    pub share: Option<f64>,
}

/// One unit's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitReport {
    /// Unit id.
    pub unit: String,
    /// Display name (the form's first language).
    pub name: String,
    /// Category, for rankings within a category.
    pub category: Option<String>,
    /// Ballots (or tally raters) that rated the unit.
    pub n: u64,
    /// Valid ballots with no counted answer on the unit (不了解 / empty).
    pub excluded: u64,
    /// The score, on the scale's points.
    pub score: Option<f64>,
    /// t-interval of the score.
    pub score_ci: Option<[f64; 2]>,
    /// Standard error of the score.
    pub se: Option<f64>,
    /// Degrees of freedom of that standard error.
    pub df: Option<f64>,
    /// 满意率, 0..1.
    pub satisfaction: Option<f64>,
    /// Wilson interval of 满意率.
    pub satisfaction_ci: Option<[f64; 2]>,
    /// The rates' denominator.
    pub satisfaction_base: f64,
    /// Rank (1 = best) within the ranking pool.
    pub rank: Option<u64>,
    /// The ranking pool (`all` or the category).
    pub pool: String,
    /// The grade.
    pub grade: Option<String>,
    /// Flags: `low_n`, `missing_group:ID`, `void_group:ID` (the group's vote is void, see
    /// the report's `void_groups`), `indistinct`, `no_score`, `named:TITLE`.
    pub flags: Vec<String>,
    /// Neighbours in the ranking this unit cannot be told apart from.
    pub indistinct_from: Vec<String>,
    /// Votes per option.
    pub options: Vec<OptionShare>,
    /// Per respondent group.
    pub groups: BTreeMap<String, GroupReport>,
    /// Per criterion, over the groups pooled.
    pub criteria: BTreeMap<String, CriterionReport>,
}

/// Scale reliability.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReliabilityReport {
    /// Cronbach's alpha over the criteria.
    pub cronbach_alpha: Option<f64>,
    /// Feldt's interval.
    pub ci: Option<Interval>,
    /// The missing-answer handling used.
    pub missing: Missing,
    /// Rows (ballot × unit) used.
    pub n: u64,
    /// Criteria.
    pub k: usize,
    /// Corrected item-total correlation per criterion.
    pub item_total: BTreeMap<String, Option<f64>>,
    /// Why alpha is unavailable, or what it was computed on.
    pub note: Option<String>,
}

/// The whole score report (`pingyi score --format json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The form's id.
    pub form_id: String,
    /// The rules' name.
    pub rules: Option<String>,
    /// The confidence level of every interval.
    pub confidence: f64,
    /// Ballot accounting.
    pub ballots: BallotReport,
    /// Units in form order.
    pub units: Vec<UnitReport>,
    /// Reliability.
    pub reliability: ReliabilityReport,
    /// Groups whose vote is void (more returned than issued, quorum not met), with why.
    #[serde(default)]
    pub void_groups: Vec<VoidGroup>,
    /// Things a reader should know (void groups, tallies, per-part thresholds).
    pub notes: Vec<String>,
}

/// A respondent group whose vote is not graded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoidGroup {
    /// The group's id.
    pub group: String,
    /// Its valid ballots, counted as invalid (`void:GROUP`) instead.
    pub ballots: u64,
    /// Why, in Chinese and English (e.g. "人大代表: 实到 30 人，应到 70 人，未超过半数，不计分 (…)").
    pub reason: String,
}

/// Statistics of one histogram under the rules.
#[derive(Debug, Clone, Copy, Default)]
struct HistStats {
    n: u64,
    mean: Option<f64>,
    sd: Option<f64>,
    trimmed_mean: Option<f64>,
    trimmed: u64,
    /// The estimate used for the score (trimmed mean when trimming applies).
    est: Option<f64>,
    /// Its standard error and degrees of freedom.
    se: Option<f64>,
    df: Option<f64>,
    satisfied: u64,
}

fn hist_stats(counts: &[u64], r: &Resolved) -> HistStats {
    // (points, count) ascending by points.
    let mut values: Vec<(f64, u64)> = Vec::new();
    let mut satisfied = 0;
    for (o, opt) in r.options.iter().enumerate() {
        if opt.counted && counts[o] > 0 {
            values.push((opt.points, counts[o]));
            if opt.satisfied {
                satisfied += counts[o];
            }
        }
    }
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n: u64 = values.iter().map(|v| v.1).sum();
    let mut s = HistStats {
        n,
        satisfied,
        ..HistStats::default()
    };
    if n == 0 {
        return s;
    }
    let nf = n as f64;
    let mean = values.iter().map(|(p, c)| p * *c as f64).sum::<f64>() / nf;
    s.mean = Some(mean);
    if n >= 2 {
        let ss: f64 = values
            .iter()
            .map(|(p, c)| (p - mean).powi(2) * *c as f64)
            .sum();
        s.sd = Some((ss / (nf - 1.0)).sqrt());
    }
    s.trimmed_mean = Some(mean);
    s.est = Some(mean);
    s.se = s.sd.map(|sd| sd / nf.sqrt());
    s.df = (n >= 2).then_some(nf - 1.0);
    if let Some(t) = &r.rules.trim {
        let g = match (t.k, t.fraction) {
            (Some(k), _) => k,
            (None, Some(f)) => (f * nf).floor() as u64,
            _ => 0,
        };
        if n >= t.min_n && g > 0 && n > 2 * g {
            s.trimmed = g;
            // Expand lazily: walk the sorted values with per-rank weights.
            let (lo_val, hi_val) = (nth_value(&values, g), nth_value(&values, n - g - 1));
            let mut kept_sum = 0.0;
            let mut wins_sum = 0.0;
            let mut wins_sq = 0.0;
            let mut rank = 0u64;
            for &(p, c) in &values {
                let (start, end) = (rank, rank + c);
                let kept = end.min(n - g).saturating_sub(start.max(g));
                kept_sum += p * kept as f64;
                let below = g.min(end).saturating_sub(start);
                let above = end.saturating_sub((n - g).max(start));
                let w = kept as f64 * p + below as f64 * lo_val + above as f64 * hi_val;
                let w2 = kept as f64 * p * p
                    + below as f64 * lo_val * lo_val
                    + above as f64 * hi_val * hi_val;
                wins_sum += w;
                wins_sq += w2;
                rank = end;
            }
            let h = (n - 2 * g) as f64;
            let tmean = kept_sum / h;
            s.trimmed_mean = Some(tmean);
            s.est = Some(tmean);
            let wmean = wins_sum / nf;
            let wvar = ((wins_sq - nf * wmean * wmean) / (nf - 1.0)).max(0.0);
            // Tukey & McLaughlin (1963): se = s_w / ((1 − 2γ)√n), γ = g/n.
            s.se = Some(wvar.sqrt() / ((h / nf) * nf.sqrt()));
            s.df = (h >= 2.0).then_some(h - 1.0);
        }
    }
    s
}

/// The value at 0-based rank `k` of a sorted (value, count) list.
fn nth_value(values: &[(f64, u64)], k: u64) -> f64 {
    let mut seen = 0;
    for &(p, c) in values {
        seen += c;
        if k < seen {
            return p;
        }
    }
    values.last().map(|v| v.0).unwrap_or(0.0)
}

fn median_of(values: &mut [(f64, u64)]) -> Option<f64> {
    values.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n: u64 = values.iter().map(|v| v.1).sum();
    if n == 0 {
        return None;
    }
    Some((nth_value(values, (n - 1) / 2) + nth_value(values, n / 2)) / 2.0)
}

/// A combined estimate with its variance and degrees of freedom.
#[derive(Debug, Clone, Copy)]
struct Combined {
    value: f64,
    var: f64,
    df: Option<f64>,
}

/// Pairwise n, covariance between criteria i and j from pattern moments.
fn pairwise(pm: &PatternMoments, k: usize, i: usize, j: usize) -> (u64, Option<f64>) {
    let (mut n, mut si, mut sj, mut sij) = (0u64, 0.0, 0.0, 0.0);
    for (mask, m) in pm {
        if mask & (1 << i) != 0 && mask & (1 << j) != 0 {
            n += m.n;
            si += m.sum[i];
            sj += m.sum[j];
            sij += m.cross[tri(k, i, j)];
        }
    }
    if n < 2 {
        return (n, None);
    }
    let nf = n as f64;
    (n, Some((sij - si * sj / nf) / (nf - 1.0)))
}

fn combine_criteria(
    stats: &[HistStats],
    weights: &[f64],
    pm: &PatternMoments,
    exact_cov: bool,
) -> Option<Combined> {
    let k = stats.len();
    let used: Vec<usize> = (0..k)
        .filter(|&c| weights[c] > 0.0 && stats[c].est.is_some())
        .collect();
    let w_total: f64 = used.iter().map(|&c| weights[c]).sum();
    if used.is_empty() || w_total <= 0.0 {
        return None;
    }
    let value = used
        .iter()
        .map(|&c| weights[c] * stats[c].est.unwrap_or(0.0))
        .sum::<f64>()
        / w_total;
    let df = used
        .iter()
        .map(|&c| stats[c].df)
        .try_fold(f64::INFINITY, |acc, d| d.map(|d| acc.min(d)));
    let conservative = || -> Option<f64> {
        let mut se = 0.0;
        for &c in &used {
            se += weights[c] / w_total * stats[c].se?;
        }
        Some(se * se)
    };
    let var = if exact_cov {
        let mut var = Some(0.0);
        for &i in &used {
            for &j in &used {
                let term = if i == j {
                    stats[i].se.map(|se| se * se)
                } else {
                    let (nij, cov) = pairwise(pm, k, i, j);
                    Some(cov.unwrap_or(0.0) * nij as f64 / (stats[i].n as f64 * stats[j].n as f64))
                };
                var = match (var, term) {
                    // Normalized one at a time: the square of a tiny total would underflow.
                    (Some(v), Some(t)) => {
                        Some(v + weights[i] / w_total * (weights[j] / w_total) * t)
                    }
                    _ => None,
                };
            }
        }
        match var {
            Some(v) if v >= 0.0 => Some(v),
            _ => conservative(),
        }
    } else {
        conservative()
    };
    Some(Combined {
        value,
        var: var.unwrap_or(f64::NAN),
        df: df.filter(|d| d.is_finite()),
    })
}

/// The lowest and highest points of a counted option: a t-interval is cut to this range,
/// since no mean can leave it.
fn points_range(r: &Resolved) -> (f64, f64) {
    r.options
        .iter()
        .filter(|o| o.counted)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), o| {
            (lo.min(o.points), hi.max(o.points))
        })
}

fn clamp(i: [f64; 2], range: (f64, f64)) -> [f64; 2] {
    if range.0 <= range.1 {
        [i[0].clamp(range.0, range.1), i[1].clamp(range.0, range.1)]
    } else {
        i
    }
}

fn interval_of(c: &Combined, level: ConfidenceLevel, range: (f64, f64)) -> Option<[f64; 2]> {
    if !c.var.is_finite() {
        return None;
    }
    if c.var == 0.0 {
        return c.df.map(|_| [c.value, c.value]);
    }
    stats::mean_interval(c.value, c.var.sqrt(), c.df?, level, Method::StudentT)
        .map(|i| clamp([i.lower, i.upper], range))
}

/// What every step of [`score`] looks at: the inputs, and which groups' votes count.
struct Scoring<'a> {
    form: &'a Form,
    r: &'a Resolved,
    agg: &'a Aggregate,
    level: ConfidenceLevel,
    /// The lowest and highest points of a counted option (see [`points_range`]).
    range: (f64, f64),
    /// Per group: false when its vote is void.
    active: Vec<bool>,
}

impl Scoring<'_> {
    fn head(&self, g: usize) -> HeadCounts {
        self.r
            .rules
            .denominator
            .groups
            .get(&self.r.groups[g])
            .copied()
            .unwrap_or_default()
    }

    /// 收回票数: from the rules when given (tallies), else the ballots read.
    fn returned(&self, g: usize) -> u64 {
        self.head(g).returned.unwrap_or(self.agg.returned[g])
    }

    /// The rates' denominator for group `g` under the basis (`None` for counted votes, or
    /// when the rules lack the head count).
    fn base_of(&self, g: usize) -> Option<f64> {
        let h = self.head(g);
        match self.r.rules.denominator.basis {
            Basis::Votes => None,
            Basis::Returned => Some(self.returned(g) as f64),
            Basis::Issued => h.issued.map(|x| x as f64),
            Basis::Present => h.present.map(|x| x as f64),
            Basis::Members => h.members.map(|x| x as f64),
        }
    }

    /// The active groups, in form order.
    fn groups(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.r.groups.len()).filter(|&g| self.active[g])
    }
}

/// Scores an aggregate under the rules. Pure: the same inputs always give the same report.
///
/// Checked rules ([`Rules::resolve`](crate::rules::Rules::resolve)) and a checked state
/// ([`Aggregate::from_json`], [`Aggregate::merge`]) keep every score finite; should one
/// still not be (rules built by hand), the unit gets no score and no rank, and a note says
/// why.
pub fn score(form: &Form, r: &Resolved, agg: &Aggregate) -> Report {
    let mut notes = Vec::new();
    let mut void = Vec::new();
    let active = void_groups(form, r, agg, &mut void, &mut notes);
    let s = Scoring {
        form,
        r,
        agg,
        level: r.rules.confidence,
        range: points_range(r),
        active,
    };
    let ballots = ballot_report(&s, &mut notes);
    let (mut units, estimates): (Vec<UnitReport>, Vec<Option<Combined>>) = (0..r.units.len())
        .map(|u| unit_report(&s, u, &mut notes))
        .unzip();
    rank_grade_and_name(&s, &mut units, &estimates);
    Report {
        form_id: form.id.clone(),
        rules: r.rules.name.clone(),
        confidence: s.level.value(),
        ballots,
        units,
        reliability: reliability(r, agg, &s.active, s.level),
        void_groups: void,
        notes,
    }
}

/// Step 1, void groups: a group that returned more ballots than were issued does not count.
/// Also void: a group under `[quorum]` whose members present do not reach the quorum,
/// or whose attendance is not known. Each void group gets an entry in `void` with the
/// reason in words, and a note.
fn void_groups(
    form: &Form,
    r: &Resolved,
    agg: &Aggregate,
    void: &mut Vec<VoidGroup>,
    notes: &mut Vec<String>,
) -> Vec<bool> {
    let heads = &r.rules.denominator.groups;
    (0..r.groups.len())
        .map(|g| {
            let id = &r.groups[g];
            let head = heads.get(id).copied().unwrap_or_default();
            let returned = head.returned.unwrap_or(agg.returned[g]);
            let reason = match head.issued {
                Some(issued) if returned > issued => Some(format!(
                    "group {id:?}: {returned} ballots returned but {issued} issued, so its vote is void and left out"
                )),
                _ => r.rules.quorum.as_ref().and_then(|q| {
                    let label = form.groups.iter().find(|x| &x.id == id).map(|x| &x.label);
                    let zh = label.map_or(id.as_str(), |l| l.get("zh-CN"));
                    let en = label.map_or(id.as_str(), |l| l.get("en"));
                    q.unmet(id, zh, en, &head)
                }),
            };
            match reason {
                Some(reason) => {
                    notes.push(reason.clone());
                    void.push(VoidGroup {
                        group: id.clone(),
                        ballots: agg.valid[g],
                        reason,
                    });
                    false
                }
                None => true,
            }
        })
        .collect()
}

/// The ballot accounting, void groups' valid ballots counted as invalid, with the
/// careless-answer counts.
fn ballot_report(s: &Scoring<'_>, notes: &mut Vec<String>) -> BallotReport {
    let (r, agg) = (s.r, s.agg);
    let mut ballots = agg.ballots.clone();
    for g in (0..r.groups.len()).filter(|&g| !s.active[g]) {
        *ballots
            .invalid
            .entry(format!("void:{}", r.groups[g]))
            .or_default() += agg.valid[g];
    }
    let void_excluded: u64 = (0..r.groups.len())
        .filter(|&g| !s.active[g])
        .map(|g| agg.excluded[g])
        .sum();
    let careless = careless_report(r, agg, &ballots, void_excluded, notes);
    let invalid = ballots.invalid_total();
    let valid = ballots
        .total
        .saturating_sub(ballots.duplicates)
        .saturating_sub(invalid);
    if ballots.tally_votes > 0 {
        notes.push(format!(
            "{} votes came from tallies: validity and careless checks apply to ballots only",
            ballots.tally_votes
        ));
    }
    BallotReport {
        total: ballots.total,
        valid,
        invalid,
        duplicates: ballots.duplicates,
        used: valid - careless.excluded.min(valid),
        invalid_by_reason: ballots.invalid,
        careless,
        tally_votes: ballots.tally_votes,
    }
}

/// Too fast (against the rules' threshold or half the median) and straight-lining.
fn careless_report(
    r: &Resolved,
    agg: &Aggregate,
    ballots: &Accounting,
    void_excluded: u64,
    notes: &mut Vec<String>,
) -> CarelessReport {
    let rules = &r.rules;
    let median_s = careless::median(&agg.durations);
    let (threshold, too_fast) = match rules.careless.too_fast {
        TooFast::Seconds(s) => (Some(s), ballots.too_fast),
        TooFast::Named(TooFastName::Off) => (None, 0),
        TooFast::Named(TooFastName::HalfMedian) => {
            let t = median_s.map(|m| m / 2.0);
            if rules.careless.exclude {
                (t, ballots.too_fast)
            } else {
                (
                    t,
                    t.map(|t| careless::count_below(&agg.durations, t))
                        .unwrap_or(0),
                )
            }
        }
    };
    let mut distinct_thresholds = ballots.thresholds.clone();
    distinct_thresholds.sort_by(f64::total_cmp);
    distinct_thresholds.dedup();
    if distinct_thresholds.len() > 1 {
        notes.push(format!(
            "too-fast ballots were excluded against different thresholds in different parts ({} s): each part used the median of its own ballots",
            distinct_thresholds.iter().map(|t| format!("{t}")).collect::<Vec<_>>().join(", ")
        ));
    }
    CarelessReport {
        median_s,
        too_fast_threshold_s: threshold,
        too_fast,
        straight_lining: ballots.straight_lining,
        excluded: ballots.excluded_total().saturating_sub(void_excluded),
        excluded_by_reason: ballots.excluded.clone(),
    }
}

/// Steps 2–5 for one unit: its groups, their combination, the pooled criteria and the rates.
fn unit_report(
    s: &Scoring<'_>,
    u: usize,
    notes: &mut Vec<String>,
) -> (UnitReport, Option<Combined>) {
    let (r, agg, rules) = (s.r, s.agg, &s.r.rules);
    let (name, category) = match s.form.unit(&r.units[u]) {
        Some(unit) => (unit.name.to_string(), unit.category.clone()),
        None => (r.units[u].clone(), None),
    };
    let mut flags = Vec::new();
    let UnitGroups {
        reports: mut groups,
        pieces,
        missing,
    } = group_reports(s, u);
    if !pieces.is_empty() {
        flags.extend(missing);
    }
    let mut combined = combine_groups(r, &pieces, &mut groups);
    if let Some(c) = combined.filter(|c| !c.value.is_finite()) {
        notes.push(format!(
            "unit {:?}: the score came out as {}, not a number, so it has no score and no rank; check the points and weights of the rules",
            r.units[u], c.value
        ));
        combined = None;
    }
    let rates = unit_rates(s, u);
    flags.extend(rates.flags.iter().cloned());
    let n: u64 = s.groups().map(|g| agg.rated[agg.ug(u, g)]).sum();
    if n < rules.ranking.min_n {
        flags.push("low_n".into());
    }
    if combined.is_none() {
        flags.push("no_score".into());
    }
    let pool = match (rules.ranking.within, &category) {
        (Within::Category, Some(c)) => c.clone(),
        (Within::Category, None) => "(none)".into(),
        (Within::All, _) => "all".into(),
    };
    let report = UnitReport {
        unit: r.units[u].clone(),
        name,
        category,
        n,
        excluded: s.groups().map(|g| agg.unrated[agg.ug(u, g)]).sum(),
        score: combined.map(|c| c.value),
        score_ci: combined
            .as_ref()
            .and_then(|c| interval_of(c, s.level, s.range)),
        se: combined.and_then(|c| c.var.is_finite().then(|| c.var.sqrt())),
        df: combined.and_then(|c| c.df),
        satisfaction: rates.satisfaction,
        satisfaction_ci: rates.satisfaction_ci,
        satisfaction_base: rates.base,
        rank: None,
        pool,
        grade: None,
        flags,
        indistinct_from: Vec::new(),
        options: rates.options,
        groups,
        criteria: pooled_criteria(s, u),
    };
    (report, combined)
}

/// One unit's groups: their reports, the estimates of the weighted groups that scored it,
/// and a `missing_group:ID` flag for each weighted group that did not.
struct UnitGroups {
    reports: BTreeMap<String, GroupReport>,
    pieces: Vec<(usize, Combined)>,
    missing: Vec<String>,
}

/// Steps 2–3, per active group: the criteria's statistics and the group's score.
fn group_reports(s: &Scoring<'_>, u: usize) -> UnitGroups {
    let (r, agg) = (s.r, s.agg);
    let nc = r.criteria.len();
    let mut groups = BTreeMap::new();
    let mut pieces = Vec::new();
    let mut missing_groups = Vec::new();
    for g in s.groups() {
        let ug = agg.ug(u, g);
        let st: Vec<HistStats> = (0..nc)
            .map(|c| hist_stats(agg.histogram(u, g, c), r))
            .collect();
        let trimmed = st.iter().any(|x| x.trimmed > 0);
        let exact = agg.tally_votes[ug] == 0 && !trimmed;
        let comb = combine_criteria(&st, &r.criterion_weights, &agg.moments[ug], exact);
        let (sat, votes): (u64, u64) = st
            .iter()
            .fold((0, 0), |(a, b), x| (a + x.satisfied, b + x.n));
        let criteria = (0..nc)
            .map(|c| {
                (
                    r.criteria[c].clone(),
                    criterion_report(&st[c], s.level, s.range),
                )
            })
            .collect();
        if r.group_weights[g] > 0.0 {
            match comb {
                Some(cb) => pieces.push((g, cb)),
                None => missing_groups.push(format!("missing_group:{}", r.groups[g])),
            }
        }
        groups.insert(
            r.groups[g].clone(),
            GroupReport {
                n: agg.rated[ug],
                score: comb.map(|c| c.value),
                score_ci: comb.as_ref().and_then(|c| interval_of(c, s.level, s.range)),
                satisfaction: (votes > 0).then(|| sat as f64 / votes as f64),
                weight: 0.0,
                criteria,
            },
        );
    }
    // A void group is named on every unit, so that the CSV (one row per unit) says so too.
    for g in (0..r.groups.len()).filter(|&g| !s.active[g] && r.group_weights[g] > 0.0) {
        missing_groups.push(format!("void_group:{}", r.groups[g]));
    }
    UnitGroups {
        reports: groups,
        pieces,
        missing: missing_groups,
    }
}

/// Step 4, the unit's score: groups combined by their weights, renormalized over the groups
/// that rated it (their reports get the weight used); Welch–Satterthwaite df.
fn combine_groups(
    r: &Resolved,
    pieces: &[(usize, Combined)],
    groups: &mut BTreeMap<String, GroupReport>,
) -> Option<Combined> {
    let v_total: f64 = pieces.iter().map(|(g, _)| r.group_weights[*g]).sum();
    if pieces.is_empty() || v_total <= 0.0 {
        return None;
    }
    let value = pieces
        .iter()
        .map(|(g, c)| r.group_weights[*g] * c.value)
        .sum::<f64>()
        / v_total;
    let var_pieces: Vec<(f64, f64)> = pieces
        .iter()
        .map(|(g, c)| {
            let v = (r.group_weights[*g] / v_total).powi(2) * c.var;
            (v, c.df.unwrap_or(0.0))
        })
        .collect();
    let var: f64 = var_pieces.iter().map(|p| p.0).sum();
    let df = stats::satterthwaite_df(&var_pieces).or_else(|| {
        pieces
            .iter()
            .map(|(_, c)| c.df)
            .try_fold(f64::INFINITY, |a, d| d.map(|d| a.min(d)))
            .filter(|d| d.is_finite())
    });
    for (g, _) in pieces {
        if let Some(gr) = groups.get_mut(&r.groups[*g]) {
            gr.weight = r.group_weights[*g] / v_total;
        }
    }
    Some(Combined { value, var, df })
}

/// Each criterion over the active groups pooled.
fn pooled_criteria(s: &Scoring<'_>, u: usize) -> BTreeMap<String, CriterionReport> {
    let (r, agg) = (s.r, s.agg);
    (0..r.criteria.len())
        .map(|c| {
            let mut pooled = vec![0u64; r.options.len()];
            for g in s.groups() {
                for (p, x) in pooled.iter_mut().zip(agg.histogram(u, g, c)) {
                    *p += x;
                }
            }
            (
                r.criteria[c].clone(),
                criterion_report(&hist_stats(&pooled, r), s.level, s.range),
            )
        })
        .collect()
}

/// A unit's 满意率 with its interval and base, and the option shares.
struct UnitRates {
    satisfaction: Option<f64>,
    satisfaction_ci: Option<[f64; 2]>,
    base: f64,
    options: Vec<OptionShare>,
    flags: Vec<String>,
}

/// Step 5, 满意率: satisfied answers on the rates' criteria and groups over the basis.
fn unit_rates(s: &Scoring<'_>, u: usize) -> UnitRates {
    let (r, agg) = (s.r, s.agg);
    let no = r.options.len();
    let basis = r.rules.denominator.basis;
    let mut option_counts = vec![0u64; no];
    let mut base = 0.0;
    let mut base_known = true;
    for &g in r.rate_groups.iter().filter(|&&g| s.active[g]) {
        for &c in &r.rate_criteria {
            for (x, y) in option_counts.iter_mut().zip(agg.histogram(u, g, c)) {
                *x += y;
            }
        }
        match s.base_of(g) {
            Some(b) => base += b * r.rate_criteria.len() as f64,
            None => base_known = basis == Basis::Votes,
        }
    }
    let votes: u64 = (0..no)
        .filter(|&o| r.options[o].counted)
        .map(|o| option_counts[o])
        .sum();
    let sat: u64 = (0..no)
        .filter(|&o| r.options[o].satisfied)
        .map(|o| option_counts[o])
        .sum();
    if basis == Basis::Votes {
        base = votes as f64;
    }
    let mut flags = Vec::new();
    if base_known && base < votes as f64 {
        flags.push("more_votes_than_base".into());
    }
    let satisfaction = (base_known && base > 0.0 && votes > 0).then(|| sat as f64 / base);
    UnitRates {
        satisfaction,
        satisfaction_ci: satisfaction
            .and_then(|_| stats::wilson(sat as f64, base, s.level))
            .map(|i| [i.lower, i.upper]),
        base,
        options: (0..no)
            .map(|o| OptionShare {
                code: r.options[o].code.clone(),
                count: option_counts[o],
                share: (r.options[o].counted && base > 0.0).then(|| option_counts[o] as f64 / base),
            })
            .collect(),
        flags,
    }
}

/// Steps 6–7, per ranking pool: ranks, the "cannot be told apart" marks, grades and naming.
fn rank_grade_and_name(s: &Scoring<'_>, units: &mut [UnitReport], estimates: &[Option<Combined>]) {
    let mut pools: Vec<String> = units.iter().map(|u| u.pool.clone()).collect();
    pools.sort();
    pools.dedup();
    for pool in &pools {
        let order = rank_pool(units, pool);
        mark_indistinct(units, &order, estimates, s.level);
        let members: Vec<usize> = (0..units.len())
            .filter(|&u| &units[u].pool == pool)
            .collect();
        grade_pool(units, &members, &order, s);
        name_pool(units, &order, s.r);
    }
    for u in units.iter_mut() {
        if !u.indistinct_from.is_empty() {
            u.flags.push("indistinct".into());
        }
    }
}

/// Whether two scores are equal up to rounding (ties share a rank).
fn same(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// Competition ranks within `pool`; returns the pool's scored units best first. Only
/// finite scores are ranked.
fn rank_pool(units: &mut [UnitReport], pool: &str) -> Vec<usize> {
    let score = |u: &UnitReport| u.score.filter(|x| x.is_finite());
    let mut order: Vec<usize> = (0..units.len())
        .filter(|&u| units[u].pool == pool && score(&units[u]).is_some())
        .collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (
            score(&units[a]).unwrap_or(0.0),
            score(&units[b]).unwrap_or(0.0),
        );
        y.total_cmp(&x).then(a.cmp(&b))
    });
    for (pos, &u) in order.iter().enumerate() {
        let tied = pos > 0
            && same(
                score(&units[order[pos - 1]]).unwrap_or(0.0),
                score(&units[u]).unwrap_or(0.0),
            );
        units[u].rank = if tied {
            units[order[pos - 1]].rank
        } else {
            Some(pos as u64 + 1)
        };
    }
    order
}

/// Neighbours in the ranking whose scores Welch's t-test cannot tell apart list each other.
fn mark_indistinct(
    units: &mut [UnitReport],
    order: &[usize],
    estimates: &[Option<Combined>],
    level: ConfidenceLevel,
) {
    for w in order.windows(2) {
        let (a, b) = (w[0], w[1]);
        let (Some(ea), Some(eb)) = (estimates[a], estimates[b]) else {
            continue;
        };
        let apart = match (ea.df, eb.df) {
            (Some(da), Some(db)) if ea.var.is_finite() && eb.var.is_finite() => {
                match stats::welch(
                    Estimate {
                        value: ea.value,
                        var: ea.var,
                        df: da,
                    },
                    Estimate {
                        value: eb.value,
                        var: eb.var,
                        df: db,
                    },
                ) {
                    Some(t) => t.p < 1.0 - level.value(),
                    // Both without spread: apart exactly when the scores differ.
                    None => !same(ea.value, eb.value),
                }
            }
            _ => false,
        };
        if !apart {
            let (ia, ib) = (units[a].unit.clone(), units[b].unit.clone());
            units[a].indistinct_from.push(ib);
            units[b].indistinct_from.push(ia);
        }
    }
}

fn criterion_report(s: &HistStats, level: ConfidenceLevel, range: (f64, f64)) -> CriterionReport {
    let ci = match (s.mean, s.sd) {
        (Some(m), Some(sd)) => {
            stats::t_interval(m, sd, s.n, level).map(|i| clamp([i.lower, i.upper], range))
        }
        _ => None,
    };
    CriterionReport {
        n: s.n,
        mean: s.mean,
        sd: s.sd,
        trimmed_mean: s.trimmed_mean,
        trimmed: s.trimmed,
        ci,
        satisfaction: (s.n > 0).then(|| s.satisfied as f64 / s.n as f64),
        satisfaction_ci: stats::wilson(s.satisfied as f64, s.n as f64, level)
            .map(|i| [i.lower, i.upper]),
    }
}

fn band_grade(bands: &[crate::rules::Band], score: Option<f64>) -> Option<String> {
    let s = score?;
    bands.iter().find(|b| s >= b.min).map(|b| b.grade.clone())
}

fn grade_pool(units: &mut [UnitReport], members: &[usize], order: &[usize], s: &Scoring<'_>) {
    let (r, agg) = (s.r, s.agg);
    match &r.rules.grading {
        Grading::None => {}
        Grading::Bands { bands } => {
            for &u in order {
                units[u].grade = band_grade(bands, units[u].score);
            }
        }
        Grading::Majority {
            criterion,
            levels,
            fallback,
            exactly_half_passes,
        } => {
            let c = criterion
                .as_ref()
                .and_then(|id| r.criteria.iter().position(|x| x == id))
                .unwrap_or(0);
            for &u in members {
                let ui = r
                    .units
                    .iter()
                    .position(|x| *x == units[u].unit)
                    .unwrap_or(u);
                let mut counts = vec![0u64; r.options.len()];
                let mut base = 0.0;
                for &g in r.rate_groups.iter().filter(|&&g| s.active[g]) {
                    for (x, y) in counts.iter_mut().zip(agg.histogram(ui, g, c)) {
                        *x += y;
                    }
                    base += s.base_of(g).unwrap_or(0.0);
                }
                if r.rules.denominator.basis == Basis::Votes {
                    base = (0..counts.len())
                        .filter(|&o| r.options[o].counted)
                        .map(|o| counts[o] as f64)
                        .sum();
                }
                if counts.iter().all(|x| *x == 0) {
                    continue;
                }
                let grade = levels
                    .iter()
                    .find(|l| {
                        let votes: u64 = l
                            .options
                            .iter()
                            .filter_map(|code| r.options.iter().position(|o| &o.code == code))
                            .map(|o| counts[o])
                            .sum();
                        base > 0.0 && l.share.reached(votes as f64, base, *exactly_half_passes)
                    })
                    .map(|l| l.grade.clone())
                    .unwrap_or_else(|| fallback.clone());
                units[u].grade = Some(grade);
            }
        }
        Grading::Quota {
            quotas,
            bands,
            rest,
        } => {
            let total = order.len() as u64;
            let mut next = 0usize;
            for q in quotas {
                let cap = q.share.floor_of(total) as usize;
                let mut given = 0usize;
                while next < order.len() {
                    // The run of units tied with order[next].
                    let rank = units[order[next]].rank;
                    let run = order[next..]
                        .iter()
                        .take_while(|&&u| units[u].rank == rank)
                        .count();
                    if given + run > cap {
                        break;
                    }
                    for &u in &order[next..next + run] {
                        units[u].grade = Some(q.grade.clone());
                    }
                    given += run;
                    next += run;
                }
            }
            for &u in &order[next..] {
                units[u].grade = band_grade(bands, units[u].score).or_else(|| rest.clone());
            }
        }
    }
}

fn name_pool(units: &mut [UnitReport], order: &[usize], r: &Resolved) {
    let Some(naming) = &r.rules.naming else {
        return;
    };
    if naming.top > 0 {
        for &u in order {
            if units[u].rank.is_some_and(|k| k <= naming.top) {
                units[u].flags.push(format!("named:{}", naming.top_label));
            }
        }
    }
    if naming.bottom > 0 {
        let eligible: Vec<usize> = order
            .iter()
            .rev()
            .copied()
            .filter(|&u| match (naming.bottom_below, units[u].score) {
                (Some(line), Some(s)) => s < line,
                _ => true,
            })
            .collect();
        // Competition ranking from the bottom, so ties at the edge are all named.
        let mut bottom_rank = 0u64;
        let grades = grades_of(&r.rules.grading);
        for (pos, &u) in eligible.iter().enumerate() {
            if pos == 0 || units[u].score != units[eligible[pos - 1]].score {
                bottom_rank = pos as u64 + 1;
            }
            if bottom_rank > naming.bottom {
                break;
            }
            units[u]
                .flags
                .push(format!("named:{}", naming.bottom_label));
            if let (Some(not), Some(g)) = (&naming.bottom_not_grade, units[u].grade.clone()) {
                if &g == not {
                    let next = grades
                        .iter()
                        .position(|x| *x == g)
                        .and_then(|i| grades.get(i + 1));
                    units[u].grade = next.cloned().or(Some(g));
                }
            }
        }
    }
}

/// The k × k covariance matrix under the missing-answer handling, and the rows it rests on.
fn covariance(
    pm: &PatternMoments,
    k: usize,
    missing: Missing,
    medians: &[f64],
) -> Option<(Vec<f64>, u64)> {
    let full = (1u32 << k) - 1;
    let mut cov = vec![0.0; k * k];
    match missing {
        Missing::Listwise | Missing::Median => {
            let (mut n, mut sum, mut cross) = (0u64, vec![0.0; k], vec![0.0; k * k]);
            for (&mask, m) in pm {
                if missing == Missing::Listwise && mask != full {
                    continue;
                }
                n += m.n;
                let nf = m.n as f64;
                let val = |i: usize| -> (bool, f64) {
                    if mask & (1 << i) != 0 {
                        (true, m.sum[i])
                    } else {
                        (false, nf * medians[i])
                    }
                };
                for i in 0..k {
                    sum[i] += val(i).1;
                    for j in 0..k {
                        let (oi, oj) = (mask & (1 << i) != 0, mask & (1 << j) != 0);
                        cross[i * k + j] += match (oi, oj) {
                            (true, true) => m.cross[tri(k, i, j)],
                            (true, false) => m.sum[i] * medians[j],
                            (false, true) => medians[i] * m.sum[j],
                            (false, false) => nf * medians[i] * medians[j],
                        };
                    }
                }
            }
            if n < 2 {
                return None;
            }
            let nf = n as f64;
            for i in 0..k {
                for j in 0..k {
                    cov[i * k + j] = (cross[i * k + j] - sum[i] * sum[j] / nf) / (nf - 1.0);
                }
            }
            Some((cov, n))
        }
        Missing::Pairwise => {
            let mut min_n = u64::MAX;
            for i in 0..k {
                for j in i..k {
                    let (n, c) = pairwise(pm, k, i, j);
                    min_n = min_n.min(n);
                    let c = c?;
                    cov[i * k + j] = c;
                    cov[j * k + i] = c;
                }
            }
            Some((cov, min_n))
        }
    }
}

fn reliability(
    r: &Resolved,
    agg: &Aggregate,
    active: &[bool],
    level: ConfidenceLevel,
) -> ReliabilityReport {
    let k = r.criteria.len();
    let missing = r.rules.reliability.missing;
    let mut pooled = PatternMoments::new();
    let mut tally = 0u64;
    for u in 0..r.units.len() {
        for g in (0..r.groups.len()).filter(|&g| active[g]) {
            let ug = agg.ug(u, g);
            tally += agg.tally_votes[ug];
            for (mask, m) in &agg.moments[ug] {
                let e = pooled
                    .entry(*mask)
                    .or_insert_with(|| crate::aggregate::Moments {
                        n: 0,
                        sum: vec![0.0; k],
                        cross: vec![0.0; k * (k + 1) / 2],
                    });
                e.n += m.n;
                for (a, b) in e.sum.iter_mut().zip(&m.sum) {
                    *a += b;
                }
                for (a, b) in e.cross.iter_mut().zip(&m.cross) {
                    *a += b;
                }
            }
        }
    }
    let rows: u64 = pooled.values().map(|m| m.n).sum();
    let unavailable = |why: String| ReliabilityReport {
        cronbach_alpha: None,
        ci: None,
        missing,
        n: rows,
        k,
        item_total: r.criteria.iter().map(|c| (c.clone(), None)).collect(),
        note: Some(why),
    };
    if k < 2 {
        return unavailable("unavailable: alpha needs at least two criteria".into());
    }
    if rows == 0 {
        return unavailable(if tally > 0 {
            "unavailable: tallies carry no per-ballot answers, and alpha needs each ballot's answers on every criterion".into()
        } else {
            "unavailable: no ballot rated any unit".into()
        });
    }
    let medians: Vec<f64> = (0..k)
        .map(|c| {
            let mut values: Vec<(f64, u64)> = Vec::new();
            for u in 0..r.units.len() {
                for g in (0..r.groups.len()).filter(|&g| active[g]) {
                    let ug = agg.ug(u, g);
                    if agg.tally_votes[ug] > 0 {
                        continue;
                    }
                    for (o, x) in agg.histogram(u, g, c).iter().enumerate() {
                        if r.options[o].counted && *x > 0 {
                            values.push((r.options[o].points, *x));
                        }
                    }
                }
            }
            median_of(&mut values).unwrap_or(0.0)
        })
        .collect();
    let Some((cov, n)) = covariance(&pooled, k, missing, &medians) else {
        return unavailable(format!(
            "unavailable: fewer than 2 ballot rows answer the criteria ({} handling)",
            format!("{missing:?}").to_lowercase()
        ));
    };
    let alpha = stats::cronbach_alpha(&cov, k);
    let ci = alpha.and_then(|a| stats::feldt_interval(a, n, k, level));
    let item_total = stats::item_total_correlations(&cov, k);
    let mut note = None;
    if tally > 0 {
        note = Some(format!(
            "computed on the {rows} ballot rows only: {tally} tally votes carry no per-ballot answers"
        ));
    } else if alpha.is_none() {
        note = Some("unavailable: the answers have no variance".into());
    }
    ReliabilityReport {
        cronbach_alpha: alpha,
        ci,
        missing,
        n,
        k,
        item_total: r.criteria.iter().cloned().zip(item_total).collect(),
        note,
    }
}

#[cfg(test)]
mod tests;
