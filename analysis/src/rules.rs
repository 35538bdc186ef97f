//! 评分规则: the rules file (TOML) that says how ballots become scores, ranks and grades,
//! and how the annual assessment adds the appraisal to other parts.
//!
//! No two regions score alike (README, "The rules file"), so every number is a setting. A rules
//! file is read with [`Rules::from_toml`], which refuses unknown keys and checks every
//! option code, group, criterion and number against the form, listing each problem with
//! its TOML path (`grading.bands[2].min`). Anything left out takes its default from the
//! form's scale (points, 满意 set, 不了解) or the documented default below.
//!
//! Shares such as "30%", "half" or "one third" are read as exact fractions ([`Share`]):
//! `0.3` means 3/10 and `"1/3"` means one third, so "exactly half" is decided exactly.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::{quoted, Problem, Problems};
use crate::form::{Form, Item, ItemKind, Scale};
use crate::stats::ConfidenceLevel;

/// The range of points: an option's (`scale.points`, or the form's scale), a cap's
/// `points_at_least` and `points_below`, and the assessment's points, bonuses and component
/// weights. Wide enough for every published scheme (10/8/6/3/0, 100-point scales,
/// 1000-point assessments) and narrow enough that the points of 2⁶⁴ answers, and their
/// squares, add up to finite numbers: no score can become infinite or NaN.
pub const POINTS: (f64, f64) = (-1e6, 1e6);

/// The range of a criterion or group weight. Weights are relative (they are renormalized
/// over what was answered), so the bound only keeps their sums finite; 0 leaves one out.
pub const WEIGHTS: (f64, f64) = (0.0, 1e6);

/// The range of `careless.too_fast` in seconds: up to a day, beyond which every ballot
/// would be "too fast".
pub const TOO_FAST_SECONDS: (f64, f64) = (0.0, 86_400.0);

/// The most answers `trim.k` may drop from each side.
pub const MAX_TRIM_K: u64 = 1000;

/// The most decimals `output.rate_decimals` and `output.score_decimals` may ask for: a
/// score of up to 10⁶ points times 10⁶ is still a whole number a float holds exactly, so
/// rounding stays exact, and a rate of 10⁻⁶ % is finer than any published one.
pub const MAX_DECIMALS: u32 = 6;

/// The range of an assessment component's `max` (its values may be up to 10¹² in the CSV).
pub const COMPONENT_MAX: (f64, f64) = (-1e18, 1e18);

/// A number as a message shows it: plainly, or with an exponent when plain digits would
/// run long (`1e308`, not 309 digits).
fn shown(x: f64) -> String {
    if x != 0.0 && x.is_finite() && !(1e-6..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Whether a sum of weights is above 0 (NaN is not).
fn positive(sum: f64) -> bool {
    sum > 0.0
}

/// Whether `x` lies in `range`, ends included (NaN never does).
fn in_range(x: f64, range: (f64, f64)) -> bool {
    x >= range.0 && x <= range.1
}

/// A rules file, as written. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rules {
    /// A name shown in reports (e.g. "2026 好差评").
    pub name: Option<String>,
    /// The appraisal item to score; may be left out when the form has exactly one.
    pub item: Option<String>,
    /// 置信水平 for every interval and for the "cannot be told apart" mark (default 0.95).
    pub confidence: ConfidenceLevel,
    /// Option points, the 满意 set, 不了解, and the default for a missing rating.
    pub scale: ScaleRules,
    /// 有效票: which ballots count.
    pub validity: Validity,
    /// Careless answering: too fast, straight-lining.
    pub careless: Careless,
    /// 去掉最高分和最低分: trimming per unit × group × criterion.
    pub trim: Option<Trim>,
    /// Criterion weights, overriding the form's (criterion id → weight).
    pub criteria: BTreeMap<String, f64>,
    /// 评议主体权重: respondent-group weights (group id → weight); default all equal.
    pub groups: BTreeMap<String, f64>,
    /// Which answers the 满意率 and option shares are computed on.
    pub rates: Rates,
    /// 基数: the denominator of rates, and the void rule.
    pub denominator: Denominator,
    /// 法定人数: groups whose vote counts only when enough members were present.
    pub quorum: Option<Quorum>,
    /// 排名: ranking and the minimum n.
    pub ranking: Ranking,
    /// 等次: how grades are given.
    pub grading: Grading,
    /// Naming the top and bottom units (满意单位 / 不满意单位).
    pub naming: Option<Naming>,
    /// Cronbach's alpha settings.
    pub reliability: Reliability,
    /// Rounding of printed numbers.
    pub output: Output,
    /// 年度考核: the annual assessment (`pingyi assess`).
    pub assessment: Option<Assessment>,
}

/// Option points and classes; each left out comes from the form's scale.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScaleRules {
    /// Points per option code (e.g. 好差评 `{"5" = 10, "4" = 8, "3" = 6, "2" = 3, "1" = 0}`).
    pub points: BTreeMap<String, f64>,
    /// The codes that count toward 满意率.
    pub satisfied: Option<Vec<String>>,
    /// The codes that are no vote at all (不了解 / 不评价), excluded from every denominator.
    pub not_counted: Option<Vec<String>>,
    /// What an empty cell on an otherwise answered ballot counts as: an option code (Guangxi
    /// counts an unrated service as 非常满意) or, by default, not counted.
    pub missing: Option<String>,
}

/// Ballot validity rules. A blank ballot (no counted answer) is always invalid.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Validity {
    /// A ballot whose counted answers are all the same option is invalid.
    pub all_same: bool,
    /// A ballot that gives every counted answer the highest-scoring option is invalid.
    pub all_top: bool,
    /// Caps per ballot (优秀 to at most 30% of units; at most 3 people ≥ 90 …).
    pub caps: Vec<Cap>,
}

/// A cap on one ballot: how many units may (or must) get certain answers on one criterion.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Cap {
    /// A name for the reason counted in the accounting (default `cap1`, `cap2` …).
    pub name: Option<String>,
    /// The criterion looked at; may be left out when the grid has one criterion.
    pub criterion: Option<String>,
    /// Answers that match: these option codes …
    pub options: Vec<String>,
    /// … or options worth at least this many points …
    pub points_at_least: Option<f64>,
    /// … or options worth fewer points than this.
    pub points_below: Option<f64>,
    /// At most this many units may get a matching answer.
    pub at_most: Option<u64>,
    /// At most this share of the units rated on the criterion may get a matching answer.
    pub at_most_share: Option<Share>,
    /// At least this many units must get a matching answer.
    pub at_least: Option<u64>,
}

/// When a ballot is too fast.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(untagged)]
pub enum TooFast {
    /// `"half_median"` (faster than half the median completion time) or `"off"`.
    Named(TooFastName),
    /// Faster than this many seconds.
    Seconds(f64),
}

/// The named settings of [`TooFast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TooFastName {
    /// Faster than half the median completion time of the valid ballots.
    HalfMedian,
    /// No speed check.
    Off,
}

/// Careless-answer flags (always counted) and whether they exclude.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Careless {
    /// The speed check (default `"half_median"`).
    pub too_fast: TooFast,
    /// Flag a ballot whose answered grid cells (two or more) are all the same option.
    pub straight_lining: bool,
    /// Exclude flagged ballots from the scores (default: flag and count only).
    pub exclude: bool,
}

impl Default for Careless {
    fn default() -> Careless {
        Careless {
            too_fast: TooFast::Named(TooFastName::HalfMedian),
            straight_lining: true,
            exclude: false,
        }
    }
}

/// 去掉最高分和最低分: trimming of each unit × group × criterion's answers.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Trim {
    /// Drop this many highest and this many lowest answers …
    pub k: Option<u64>,
    /// … or this fraction from each side (rounded down to whole answers).
    pub fraction: Option<f64>,
    /// Trim only when there are at least this many answers (published rules say "more than 5" raters → 6).
    pub min_n: u64,
}

/// Which answers rates are computed on.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Rates {
    /// Criteria pooled for 满意率 and option shares (default: all).
    pub criteria: Option<Vec<String>>,
    /// Groups pooled (default: all).
    pub groups: Option<Vec<String>>,
}

/// What a rate is divided by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The counted votes (不了解 left out). The default.
    #[default]
    Votes,
    /// 收回票数: ballots returned (read, valid or not) in the group.
    Returned,
    /// 发出票数: ballots issued (given in the rules).
    Issued,
    /// 实到人数: members present (given in the rules).
    Present,
    /// 应到人数: all members of the body (given in the rules).
    Members,
}

/// Head counts of one respondent group, for the denominator and the void rule.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HeadCounts {
    /// Ballots issued.
    pub issued: Option<u64>,
    /// Ballots returned, when not counted from ballot files (tallies).
    pub returned: Option<u64>,
    /// Members present.
    pub present: Option<u64>,
    /// All members.
    pub members: Option<u64>,
}

/// 基数 and the void rule: when more ballots come back than were issued, the group's vote
/// is void (its ballots are counted as `void` and left out).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Denominator {
    /// The basis of every rate (default: counted votes).
    pub basis: Basis,
    /// Head counts per group id.
    pub groups: BTreeMap<String, HeadCounts>,
}

/// 法定人数: for the listed groups (a congress's deputies, a committee's members), the vote
/// is graded only when the members present (`present`) reach `share` of all members
/// (`members`), both from `[denominator.groups.G]` or the collection database's
/// attendance. Otherwise, or without those counts, the group's ballots are void.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quorum {
    /// The group ids the quorum applies to.
    pub groups: Vec<String>,
    /// The share of members that must be present (default one half).
    #[serde(default = "Share::half")]
    pub share: Share,
    /// `true` (default): strictly more than the share (超过半数); `false`: at least (达到).
    #[serde(default = "more_than_default")]
    pub more_than: bool,
}

fn more_than_default() -> bool {
    true
}

impl Quorum {
    /// Why group `id` (shown as `zh` / `en`) is not graded under this quorum with head
    /// counts `h`, in Chinese and in English; `None` when the quorum is met or does not
    /// apply to the group.
    pub fn unmet(&self, id: &str, zh: &str, en: &str, h: &HeadCounts) -> Option<String> {
        if !self.groups.iter().any(|g| g == id) {
            return None;
        }
        let (Some(present), Some(members)) = (h.present, h.members) else {
            return Some(format!(
                "{zh}: 未记录实到人数和应到人数，无法确认达到法定人数，不计分 \
                 ({en}: members present and all members not recorded, so the quorum cannot be confirmed and the vote is not graded)"
            ));
        };
        if present > members {
            return Some(format!(
                "{zh}: 实到 {present} 人多于应到 {members} 人，人数有误，不计分 \
                 ({en}: {present} present but only {members} members, the head counts are wrong and the vote is not graded)"
            ));
        }
        if members > 0
            && self
                .share
                .reached(present as f64, members as f64, !self.more_than)
        {
            return None;
        }
        let (zh_share, en_share) = self.words();
        Some(format!(
            "{zh}: 实到 {present} 人，应到 {members} 人，未{zh_share}，不计分 \
             ({en}: {present} of {members} members present, not {en_share}, so the vote is not graded)"
        ))
    }

    /// The rule in words: "超过半数" / "more than half".
    pub fn words(&self) -> (String, String) {
        let s = self.share;
        let (zh, en) = match (s.num, s.den) {
            (n, d) if n * 2 == d => ("半数".to_string(), "half".to_string()),
            (n, d) if n * 3 == d * 2 => ("三分之二".to_string(), "two thirds".to_string()),
            (n, d) if n == d => ("全体".to_string(), "all".to_string()),
            (n, d) => (format!("{d}分之{n}"), format!("{n}/{d}")),
        };
        if self.more_than {
            (format!("超过{zh}"), format!("more than {en}"))
        } else {
            (format!("达到{zh}"), format!("at least {en}"))
        }
    }
}

/// Whom a unit is ranked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Within {
    /// All units together.
    #[default]
    All,
    /// Within the unit's category (窗口单位 / 非窗口单位).
    Category,
}

/// Ranking settings.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Ranking {
    /// All units, or within each category.
    pub within: Within,
    /// A unit rated by fewer ballots is flagged `low_n` (default 0: never).
    pub min_n: u64,
}

/// A score band: units scoring at least `min` get `grade` (bands are tried in order).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// The grade's name.
    pub grade: String,
    /// The lowest score in the band.
    pub min: f64,
}

/// A majority level: `grade` if the votes for `options` reach `share` of the denominator.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MajorityLevel {
    /// The grade's name.
    pub grade: String,
    /// The option codes whose votes count.
    pub options: Vec<String>,
    /// The share to reach (default one half).
    #[serde(default = "Share::half")]
    pub share: Share,
}

/// A quota: at most `share` of the ranked units (rounded down) get `grade`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    /// The grade's name.
    pub grade: String,
    /// The share of units.
    pub share: Share,
}

/// 等次: how grades are given.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum Grading {
    /// No grades.
    #[default]
    None,
    /// By score bands, first band whose `min` the score reaches.
    Bands {
        /// Bands from the highest down.
        bands: Vec<Band>,
    },
    /// By majority of votes on one criterion (congress style).
    Majority {
        /// The criterion voted on; may be left out when the grid has one.
        criterion: Option<String>,
        /// Levels from the highest down.
        levels: Vec<MajorityLevel>,
        /// The grade when no level is reached.
        fallback: String,
        /// Whether exactly reaching the share passes (达到半数 vs 超过半数).
        exactly_half_passes: bool,
    },
    /// By quota in rank order, then by bands (or `rest`) for the others.
    Quota {
        /// Quotas from the highest grade down.
        quotas: Vec<Quota>,
        /// Bands for the units no quota took.
        #[serde(default)]
        bands: Vec<Band>,
        /// The grade for the units no quota or band took.
        rest: Option<String>,
    },
}

/// Naming the top and bottom units; ties at the edge are all named.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Naming {
    /// How many from the top.
    pub top: u64,
    /// Their title (e.g. 满意单位).
    pub top_label: String,
    /// How many from the bottom.
    pub bottom: u64,
    /// Their title (e.g. 不满意单位).
    pub bottom_label: String,
    /// The bottom units are picked only among those scoring below this line.
    pub bottom_below: Option<f64>,
    /// A bottom-named unit cannot hold this grade; it gets the next one down.
    pub bottom_not_grade: Option<String>,
}

impl Default for Naming {
    fn default() -> Naming {
        Naming {
            top: 0,
            top_label: "满意单位".into(),
            bottom: 0,
            bottom_label: "不满意单位".into(),
            bottom_below: None,
            bottom_not_grade: None,
        }
    }
}

/// How Cronbach's alpha handles missing answers (不了解 or empty cells).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Each covariance from the rows answering both criteria.
    #[default]
    Pairwise,
    /// Only rows answering every criterion.
    Listwise,
    /// Missing answers filled with the criterion's median.
    Median,
}

/// Reliability settings.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Reliability {
    /// The missing-answer handling.
    pub missing: Missing,
}

/// How printed numbers are rounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// 四舍五入: half away from zero.
    #[default]
    HalfUp,
    /// 截断: cut off.
    Truncate,
    /// 最大余额法: round down, then give the remaining units of the last place to the
    /// largest remainders, so that a row of shares sums to exactly 100%.
    LargestRemainder,
}

/// Output settings: applied only when printing; computation stays exact.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Output {
    /// Decimals of printed rates, in percent (2 → 95.24%).
    pub rate_decimals: u32,
    /// Decimals of printed scores.
    pub score_decimals: u32,
    /// How rates are rounded (largest remainder applies to rows of option shares; a single
    /// rate is rounded half-up then).
    pub rounding: Rounding,
}

impl Default for Output {
    fn default() -> Output {
        Output {
            rate_decimals: 2,
            score_decimals: 2,
            rounding: Rounding::HalfUp,
        }
    }
}

/// What a lookup table looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The unit's score.
    #[default]
    Score,
    /// The unit's 满意率.
    Satisfaction,
    /// The share of votes for `options` (e.g. the share of 优秀).
    Share,
}

/// A row of a lookup table: a measure of at least `min` gives `points`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// The lowest measure of the row (shares as fractions: 0.9 for 90%).
    pub min: f64,
    /// The points.
    pub points: f64,
}

/// An exception to a lookup: when the share of votes for `options` reaches `share_at_least`
/// and the table gave `when_points` (or always, if left out), the points are `points`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// The option codes.
    pub options: Vec<String>,
    /// The share that triggers it (reached or passed).
    pub share_at_least: Share,
    /// Applies only when the table gave these points.
    pub when_points: Option<f64>,
    /// The points instead.
    pub points: f64,
}

/// How the appraisal result becomes assessment points.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum AppraisalPoints {
    /// A lookup table (e.g. share of 优秀 → 200/190/180/170/160, with 130 as an override).
    Lookup {
        /// What is looked up.
        #[serde(default)]
        measure: Measure,
        /// Codes for the `share` measure.
        #[serde(default)]
        options: Vec<String>,
        /// Rows; the first whose `min` the measure reaches applies (checked highest first).
        table: Vec<Step>,
        /// Exceptions, tried in order after the table.
        #[serde(default)]
        overrides: Vec<Override>,
    },
    /// 相对分: score ÷ the best unit's score × `points`.
    Relative {
        /// The points of the best unit.
        points: f64,
    },
    /// 名次分: first place `points`, each lower place `step` × `points` less.
    Rank {
        /// The points of the first place.
        points: f64,
        /// The fraction of `points` lost per place (0.02 for 2%).
        step: f64,
    },
}

/// One component read from the components CSV.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Component {
    /// The component's value is multiplied by this.
    pub weight: f64,
    /// The weighted value is capped at this.
    pub max: Option<f64>,
    /// A unit without this component is an error unless this is true (then it counts 0).
    pub optional: bool,
}

impl Default for Component {
    fn default() -> Component {
        Component {
            weight: 1.0,
            max: None,
            optional: false,
        }
    }
}

/// Bonus or malus by an external rank (e.g. the provincial rank): the top places get
/// `top[0]`, `top[1]` …; the last place gets `bottom[0]`, the one before `bottom[1]` ….
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RankBonus {
    /// The component in the components CSV holding the rank (1 = first).
    pub component: String,
    /// How many were ranked (the field size).
    pub field: u64,
    /// Points for the first places.
    #[serde(default)]
    pub top: Vec<f64>,
    /// Points for the last places, from the last one up (usually negative).
    #[serde(default)]
    pub bottom: Vec<f64>,
}

/// 年度考核: how `pingyi assess` builds the annual total.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Assessment {
    /// The name of the appraisal component in the output (default 民主测评).
    #[serde(default = "default_appraisal_name")]
    pub appraisal_name: String,
    /// How the appraisal result becomes points.
    pub appraisal: AppraisalPoints,
    /// The other components, by the names used in the components CSV.
    #[serde(default)]
    pub components: BTreeMap<String, Component>,
    /// Points per deduction (督办 0.5, 催办 1, 查办 1.5), by the kinds in the deductions CSV.
    #[serde(default)]
    pub deductions: BTreeMap<String, f64>,
    /// The most points deductions may take in all.
    pub deduction_cap: Option<f64>,
    /// Bonus or malus by an external rank.
    pub rank_bonus: Option<RankBonus>,
    /// Grades of the total.
    #[serde(default)]
    pub grading: Grading,
    /// Ranking of the total.
    #[serde(default)]
    pub within: Within,
}

fn default_appraisal_name() -> String {
    "民主测评".into()
}

/// A share as an exact fraction `num/den`: written as a number (`0.3` is 3/10, taken from
/// its shortest decimal form) or as a string `"1/3"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Numerator.
    pub num: u64,
    /// Denominator (> 0).
    pub den: u64,
}

impl Share {
    /// One half.
    pub fn half() -> Share {
        Share { num: 1, den: 2 }
    }

    /// The share as a float (for printing).
    pub fn value(self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Reads `0.3`, `30%` is not accepted; `"2/3"` is.
    pub fn parse(text: &str) -> Result<Share, String> {
        let bad = || {
            format!("{} is not a share, expected a number from 0 to 1 such as 0.3, or a fraction such as \"1/3\"", quoted(text))
        };
        let text = text.trim();
        let share = if let Some((a, b)) = text.split_once('/') {
            let num: u64 = a.trim().parse().map_err(|_| bad())?;
            let den: u64 = b.trim().parse().map_err(|_| bad())?;
            Share { num, den }
        } else {
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            if frac.len() > 12 || !frac.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            let int: u64 = int.parse().map_err(|_| bad())?;
            let den = 10u64.pow(frac.len() as u32);
            let f: u64 = if frac.is_empty() {
                0
            } else {
                frac.parse().map_err(|_| bad())?
            };
            // A huge whole part must not wrap around into a small share.
            let num = int
                .checked_mul(den)
                .and_then(|n| n.checked_add(f))
                .ok_or_else(bad)?;
            Share { num, den }
        };
        if share.den == 0 || share.num > share.den {
            return Err(bad());
        }
        Ok(share)
    }

    /// Whether `count` out of `total` reaches this share (`inclusive`: exactly reaching
    /// counts), decided in whole numbers.
    pub fn reached(self, count: f64, total: f64, inclusive: bool) -> bool {
        let lhs = count * self.den as f64;
        let rhs = self.num as f64 * total;
        if inclusive {
            lhs >= rhs
        } else {
            lhs > rhs
        }
    }

    /// The largest whole count not above this share of `total` (for "at most 30% of 8").
    pub fn floor_of(self, total: u64) -> u64 {
        ((total as u128 * self.num as u128) / self.den as u128) as u64
    }
}

impl Serialize for Share {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}/{}", self.num, self.den))
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Share, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Num(f64),
            Text(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::Num(x) => format!("{x}"),
            Raw::Text(t) => t,
        };
        Share::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One option of the scored scale with the rules applied.
#[derive(Debug, Clone, PartialEq)]
pub struct OptionRule {
    /// The code.
    pub code: String,
    /// Points (present for every counted option).
    pub points: f64,
    /// Counts toward 满意率.
    pub satisfied: bool,
    /// A vote at all (false for 不了解).
    pub counted: bool,
}

/// Rules checked against a form, with everything the scorer looks up resolved.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// The rules as written.
    pub rules: Rules,
    /// The appraisal item's id.
    pub item: String,
    /// Unit ids of the grid, in form order.
    pub units: Vec<String>,
    /// Criterion ids of the grid, in form order.
    pub criteria: Vec<String>,
    /// Criterion weights, in `criteria` order.
    pub criterion_weights: Vec<f64>,
    /// Group ids, in form order.
    pub groups: Vec<String>,
    /// Group weights, in `groups` order.
    pub group_weights: Vec<f64>,
    /// The options of the grid's scale, in form order.
    pub options: Vec<OptionRule>,
    /// The option index an empty cell counts as, if any.
    pub missing: Option<usize>,
    /// Criteria pooled for rates (indexes).
    pub rate_criteria: Vec<usize>,
    /// Groups pooled for rates (indexes).
    pub rate_groups: Vec<usize>,
}

impl Rules {
    /// Parses a rules file and checks it against `form`. Every problem is listed with its
    /// TOML path; a syntax error keeps its line and column.
    pub fn from_toml(source: &str, text: &str, form: &Form) -> Result<Resolved, Problems> {
        Rules::parse_toml(source, text)?.resolve(source, form)
    }

    /// Parses a rules file without checking it against a form (see [`Rules::from_toml`]).
    pub fn parse_toml(source: &str, text: &str) -> Result<Rules, Problems> {
        toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .map(|s| {
                    let before = &text[..s.start.min(text.len())];
                    let line = before.matches('\n').count() + 1;
                    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
                    format!("line {line}, column {col}")
                })
                .unwrap_or_default();
            Problems {
                source: source.to_string(),
                problems: vec![Problem::new(place, e.message().trim().to_string())],
            }
        })
    }

    /// Fills the head counts these rules leave out (`denominator.groups.G.issued`,
    /// `returned`, `present`, `members`) from `counted` (a collection database's codes and
    /// attendance, named `from`), for the groups in `groups`. A count given in both that
    /// differs is a problem naming both. Returns a note per group saying where each of
    /// its head counts came from.
    pub fn with_head_counts(
        &mut self,
        source: &str,
        groups: &[String],
        counted: &BTreeMap<String, HeadCounts>,
        from: &str,
    ) -> Result<Vec<String>, Problems> {
        let mut problems = Vec::new();
        let mut notes = Vec::new();
        for (group, db) in counted.iter().filter(|(g, _)| groups.contains(g)) {
            let given = self
                .denominator
                .groups
                .get(group)
                .copied()
                .unwrap_or_default();
            let mut merged = given;
            let mut said = Vec::new();
            for (name, rules, database, slot) in [
                ("issued", given.issued, db.issued, &mut merged.issued),
                (
                    "returned",
                    given.returned,
                    db.returned,
                    &mut merged.returned,
                ),
                ("present", given.present, db.present, &mut merged.present),
                ("members", given.members, db.members, &mut merged.members),
            ] {
                match (rules, database) {
                    (Some(r), Some(d)) if r != d => problems.push(Problem::new(
                        format!("denominator.groups.{group}.{name}"),
                        format!(
                            "is {r} in the rules but {d} in {from}; expected them to agree \
                             (leave it out of the rules to use the database's)"
                        ),
                    )),
                    (Some(r), _) => said.push(format!("{name} {r} (rules)")),
                    (None, Some(d)) => {
                        *slot = Some(d);
                        said.push(format!("{name} {d} ({from})"));
                    }
                    (None, None) => {}
                }
            }
            if !said.is_empty() {
                notes.push(format!(
                    "head counts of group {group:?}: {}",
                    said.join(", ")
                ));
            }
            self.denominator.groups.insert(group.clone(), merged);
        }
        if problems.is_empty() {
            Ok(notes)
        } else {
            Err(Problems {
                source: source.to_string(),
                problems,
            })
        }
    }

    /// Checks these rules against `form` (see [`Rules::from_toml`]).
    pub fn resolve(self, source: &str, form: &Form) -> Result<Resolved, Problems> {
        let mut c = Checker::default();
        let resolved = c.resolve(self, form);
        match resolved {
            Some(r) if c.problems.is_empty() => Ok(r),
            _ => Err(Problems {
                source: source.to_string(),
                problems: c.problems,
            }),
        }
    }
}

#[derive(Default)]
struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn bad(&mut self, path: impl Into<String>, msg: impl Into<String>) {
        self.problems.push(Problem::new(path, msg));
    }

    fn codes(&mut self, path: &str, codes: &[String], scale: &Scale) {
        for (i, code) in codes.iter().enumerate() {
            if scale.option(code).is_none() {
                self.not_an_option(format!("{path}[{i}]"), code, scale);
            }
        }
    }

    fn criterion(
        &mut self,
        path: &str,
        given: &Option<String>,
        criteria: &[String],
    ) -> Option<usize> {
        match given {
            Some(c) => match criteria.iter().position(|x| x == c) {
                Some(i) => Some(i),
                None => {
                    self.bad(
                        path,
                        format!(
                            "{} is not a criterion of the grid, expected one of: {}",
                            quoted(c),
                            criteria.join(", ")
                        ),
                    );
                    None
                }
            },
            None if criteria.len() == 1 => Some(0),
            None => {
                self.bad(
                    path,
                    format!(
                        "is missing, expected the criterion to look at (one of: {})",
                        criteria.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn weight(&mut self, path: String, w: f64) {
        self.number(path, w, WEIGHTS, "a weight");
    }

    /// A number setting within its documented range (NaN and infinities never are).
    fn number(&mut self, path: impl Into<String>, x: f64, range: (f64, f64), what: &str) {
        if !in_range(x, range) {
            self.bad(
                path,
                format!(
                    "{} is not {what}, expected a number from {} to {}",
                    shown(x),
                    shown(range.0),
                    shown(range.1)
                ),
            );
        }
    }

    fn not_an_option(&mut self, path: String, code: &str, scale: &Scale) {
        let known: Vec<&str> = scale.options.iter().map(|o| o.code.as_str()).collect();
        self.bad(
            path,
            format!(
                "{} is not an option of scale {:?}, expected one of: {}",
                quoted(code),
                scale.id,
                known.join(", ")
            ),
        );
    }

    /// The index of respondent group `id`, or a problem at `path`.
    fn group(&mut self, path: String, id: &str, group_ids: &[String]) -> Option<usize> {
        let i = group_ids.iter().position(|g| g == id);
        if i.is_none() {
            self.bad(
                path,
                format!(
                    "{} is not a respondent group of the form, expected one of: {}",
                    quoted(id),
                    group_ids.join(", ")
                ),
            );
        }
        i
    }

    fn bands(&mut self, path: &str, bands: &[Band]) {
        if bands.is_empty() {
            self.bad(path, "is empty, expected at least one band");
        }
        for (i, w) in bands.windows(2).enumerate() {
            if w[1].min >= w[0].min {
                self.bad(
                    format!("{path}[{}].min", i + 1),
                    format!(
                        "{} is not below the band before it ({}), expected bands from the highest down",
                        shown(w[1].min),
                        shown(w[0].min)
                    ),
                );
            }
        }
        for (i, b) in bands.iter().enumerate() {
            if !b.min.is_finite() {
                self.bad(
                    format!("{path}[{i}].min"),
                    format!("{} is not a score line, expected a finite number", b.min),
                );
            }
        }
    }

    fn grading(&mut self, path: &str, g: &Grading, criteria: &[String], scale: &Scale) {
        match g {
            Grading::None => {}
            Grading::Bands { bands } => self.bands(&format!("{path}.bands"), bands),
            Grading::Majority {
                criterion, levels, ..
            } => {
                self.criterion(&format!("{path}.criterion"), criterion, criteria);
                if levels.is_empty() {
                    self.bad(
                        format!("{path}.levels"),
                        "is empty, expected at least one level",
                    );
                }
                for (i, l) in levels.iter().enumerate() {
                    self.codes(&format!("{path}.levels[{i}].options"), &l.options, scale);
                    if l.options.is_empty() {
                        self.bad(
                            format!("{path}.levels[{i}].options"),
                            "is empty, expected the option codes whose votes count",
                        );
                    }
                }
            }
            Grading::Quota {
                quotas,
                bands,
                rest,
            } => {
                if quotas.is_empty() {
                    self.bad(
                        format!("{path}.quotas"),
                        "is empty, expected at least one quota",
                    );
                }
                if !bands.is_empty() {
                    self.bands(&format!("{path}.bands"), bands);
                }
                if bands.is_empty() && rest.is_none() {
                    self.bad(
                        path,
                        "gives no grade to units outside the quotas, expected `bands` or `rest`",
                    );
                }
            }
        }
    }

    fn resolve(&mut self, rules: Rules, form: &Form) -> Option<Resolved> {
        let (item, scale) = self.grid(&rules, form)?;
        let ItemKind::Appraisal {
            units, criteria, ..
        } = &item.kind
        else {
            return None;
        };
        let crit_ids: Vec<String> = criteria.iter().map(|c| c.id.clone()).collect();
        let group_ids: Vec<String> = form.groups.iter().map(|g| g.id.clone()).collect();
        let options = self.options(&rules.scale, scale);
        let missing = self.missing_option(&rules.scale, scale, &options);
        self.caps(&rules.validity, &crit_ids, scale);
        self.careless(&rules.careless);
        self.trim(rules.trim.as_ref());
        let form_weights: Vec<f64> = criteria.iter().map(|c| c.weight).collect();
        let criterion_weights = self.criterion_weights(&rules.criteria, &crit_ids, form_weights);
        let group_weights = self.group_weights(&rules.groups, &group_ids);
        self.denominator(&rules.denominator, &group_ids, &group_weights);
        if let Some(q) = &rules.quorum {
            self.quorum(q, &group_ids);
        }
        let (rate_criteria, rate_groups) = self.rate_pools(&rules.rates, &crit_ids, &group_ids);
        self.grading("grading", &rules.grading, &crit_ids, scale);
        self.naming(rules.naming.as_ref(), &rules.grading);
        self.output(&rules.output);
        if let Some(a) = &rules.assessment {
            self.assessment(a, scale);
        }
        Some(Resolved {
            item: item.id.clone(),
            units: units.clone(),
            criteria: crit_ids,
            criterion_weights,
            groups: group_ids,
            group_weights,
            options,
            missing,
            rate_criteria,
            rate_groups,
            rules,
        })
    }

    /// The appraisal item the rules score, and its scale.
    fn grid<'f>(&mut self, rules: &Rules, form: &'f Form) -> Option<(&'f Item, &'f Scale)> {
        let grids: Vec<&Item> = form
            .items()
            .filter(|i| matches!(i.kind, ItemKind::Appraisal { .. }))
            .collect();
        let ids = |list: &[&Item]| -> String {
            list.iter()
                .map(|i| i.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let item = match (&rules.item, grids.as_slice()) {
            (Some(id), _) => match grids.iter().find(|i| &i.id == id) {
                Some(i) => *i,
                None => {
                    self.bad(
                        "item",
                        format!(
                            "{} is not an appraisal item of form {:?}, expected one of: {}",
                            quoted(id),
                            form.id,
                            ids(&grids)
                        ),
                    );
                    return None;
                }
            },
            (None, [one]) => *one,
            (None, []) => {
                self.bad(
                    "item",
                    format!("form {:?} has no appraisal item to score", form.id),
                );
                return None;
            }
            (None, many) => {
                self.bad(
                    "item",
                    format!(
                        "is missing and the form has several appraisal items, expected one of: {}",
                        ids(many)
                    ),
                );
                return None;
            }
        };
        let ItemKind::Appraisal {
            scale, criteria, ..
        } = &item.kind
        else {
            return None;
        };
        let scale = form.scale(scale)?;
        if criteria.len() > 31 || scale.options.len() > 254 {
            self.bad(
                "item",
                format!(
                    "grid {:?} has {} criteria and {} options, expected at most 31 criteria and 254 options",
                    item.id,
                    criteria.len(),
                    scale.options.len()
                ),
            );
            return None;
        }
        Some((item, scale))
    }

    /// Every option of the scale with its points and classes under `[scale]`.
    fn options(&mut self, s: &ScaleRules, scale: &Scale) -> Vec<OptionRule> {
        for (code, p) in &s.points {
            let path = format!("scale.points.{code}");
            if scale.option(code).is_none() {
                self.not_an_option(path.clone(), code, scale);
            }
            self.number(path, *p, POINTS, "points");
        }
        if let Some(v) = &s.satisfied {
            self.codes("scale.satisfied", v, scale);
        }
        if let Some(v) = &s.not_counted {
            self.codes("scale.not_counted", v, scale);
        }
        let mut options = Vec::new();
        for o in &scale.options {
            let counted = match &s.not_counted {
                Some(list) => !list.contains(&o.code),
                None => o.counted,
            };
            let satisfied = match &s.satisfied {
                Some(list) => list.contains(&o.code),
                None => o.satisfied,
            };
            let points = s.points.get(&o.code).copied().or(o.score);
            let path = format!("scale.points.{}", o.code);
            match points {
                None if counted => self.bad(
                    path,
                    format!(
                        "option {:?} is counted but has no points in the form's scale, expected its points here",
                        o.code
                    ),
                ),
                // Points that come from the form are held to the same range as points set here.
                Some(p) if !s.points.contains_key(&o.code) && !in_range(p, POINTS) => self.bad(
                    path,
                    format!(
                        "the form's scale {:?} gives option {:?} {} points, expected points from {} to {} (set them here)",
                        scale.id, o.code, shown(p), shown(POINTS.0), shown(POINTS.1)
                    ),
                ),
                _ => {}
            }
            options.push(OptionRule {
                code: o.code.clone(),
                points: points.unwrap_or(0.0),
                satisfied: satisfied && counted,
                counted,
            });
        }
        options
    }

    /// The option an empty cell counts as (`scale.missing`).
    fn missing_option(
        &mut self,
        s: &ScaleRules,
        scale: &Scale,
        options: &[OptionRule],
    ) -> Option<usize> {
        let code = s.missing.as_ref()?;
        let found = options.iter().position(|o| &o.code == code);
        if found.is_none() {
            self.bad(
                "scale.missing",
                format!(
                    "{} is not an option of scale {:?}, expected an option code",
                    quoted(code),
                    scale.id
                ),
            );
        }
        found
    }

    fn caps(&mut self, validity: &Validity, crit_ids: &[String], scale: &Scale) {
        for (i, cap) in validity.caps.iter().enumerate() {
            let path = format!("validity.caps[{i}]");
            self.criterion(&format!("{path}.criterion"), &cap.criterion, crit_ids);
            self.codes(&format!("{path}.options"), &cap.options, scale);
            let selectors = usize::from(!cap.options.is_empty())
                + usize::from(cap.points_at_least.is_some())
                + usize::from(cap.points_below.is_some());
            if selectors != 1 {
                self.bad(
                    &path,
                    "expected exactly one of `options`, `points_at_least`, `points_below`",
                );
            }
            if let Some(p) = cap.points_at_least {
                self.number(format!("{path}.points_at_least"), p, POINTS, "points");
            }
            if let Some(p) = cap.points_below {
                self.number(format!("{path}.points_below"), p, POINTS, "points");
            }
            if cap.at_most.is_none() && cap.at_most_share.is_none() && cap.at_least.is_none() {
                self.bad(
                    &path,
                    "sets no limit, expected `at_most`, `at_most_share` or `at_least`",
                );
            }
            if let (Some(least), Some(most)) = (cap.at_least, cap.at_most) {
                if least > most {
                    self.bad(
                        format!("{path}.at_least"),
                        format!("{least} is above at_most ({most}), so every ballot would be invalid; expected at_least ≤ at_most"),
                    );
                }
            }
        }
    }

    fn careless(&mut self, careless: &Careless) {
        if let TooFast::Seconds(s) = careless.too_fast {
            if !(TOO_FAST_SECONDS.0..=TOO_FAST_SECONDS.1).contains(&s) {
                self.bad(
                    "careless.too_fast",
                    format!(
                        "{} is not a number of seconds, expected \"half_median\", \"off\" or seconds from {} to {}",
                        shown(s), TOO_FAST_SECONDS.0, TOO_FAST_SECONDS.1
                    ),
                );
            }
        }
    }

    fn trim(&mut self, trim: Option<&Trim>) {
        let Some(t) = trim else {
            return;
        };
        match (t.k, t.fraction) {
            (Some(k), None) if k <= MAX_TRIM_K => {}
            (Some(k), None) => self.bad(
                "trim.k",
                format!("{k} answers from each side is not a trim, expected a whole number from 0 to {MAX_TRIM_K}"),
            ),
            (None, Some(f)) if (0.0..0.5).contains(&f) => {}
            (None, Some(f)) => self.bad(
                "trim.fraction",
                format!(
                    "{} is not a fraction to trim from each side, expected 0 ≤ f < 0.5",
                    shown(f)
                ),
            ),
            _ => self.bad("trim", "expected exactly one of `k` and `fraction`"),
        }
    }

    /// The form's criterion weights with `[criteria]` applied.
    fn criterion_weights(
        &mut self,
        given: &BTreeMap<String, f64>,
        crit_ids: &[String],
        mut weights: Vec<f64>,
    ) -> Vec<f64> {
        for (id, w) in crit_ids.iter().zip(&weights) {
            if !given.contains_key(id) && !in_range(*w, WEIGHTS) {
                self.bad(
                    format!("criteria.{id}"),
                    format!(
                        "the form gives criterion {id:?} weight {}, expected a weight from {} to {} (set it here)",
                        shown(*w), shown(WEIGHTS.0), shown(WEIGHTS.1)
                    ),
                );
            }
        }
        for (id, w) in given {
            self.weight(format!("criteria.{id}"), *w);
            match crit_ids.iter().position(|c| c == id) {
                Some(i) => weights[i] = *w,
                None => self.bad(
                    format!("criteria.{id}"),
                    format!(
                        "{} is not a criterion of the grid, expected one of: {}",
                        quoted(id),
                        crit_ids.join(", ")
                    ),
                ),
            }
        }
        if !positive(weights.iter().sum()) {
            self.bad(
                "criteria",
                "the criterion weights add up to 0, expected a positive sum",
            );
        }
        weights
    }

    /// `[groups]`: all equal when left out.
    fn group_weights(&mut self, given: &BTreeMap<String, f64>, group_ids: &[String]) -> Vec<f64> {
        if given.is_empty() {
            return vec![1.0; group_ids.len()];
        }
        let mut weights = vec![0.0; group_ids.len()];
        let mut all_known = true;
        for (id, w) in given {
            self.weight(format!("groups.{id}"), *w);
            match self.group(format!("groups.{id}"), id, group_ids) {
                Some(i) => weights[i] = *w,
                None => all_known = false,
            }
        }
        // An unknown group is problem enough; a zero sum of known ones is another.
        if all_known && !positive(weights.iter().sum()) {
            self.bad(
                "groups",
                "the group weights add up to 0, expected a positive sum",
            );
        }
        weights
    }

    /// `[denominator]`: every group that counts has the head count the basis needs.
    fn denominator(&mut self, d: &Denominator, group_ids: &[String], group_weights: &[f64]) {
        for id in d.groups.keys() {
            self.group(format!("denominator.groups.{id}"), id, group_ids);
        }
        if d.basis == Basis::Votes {
            return;
        }
        let basis = format!("{:?}", d.basis).to_lowercase();
        for (g, id) in group_ids.iter().enumerate() {
            let hc = d.groups.get(id);
            let has = match d.basis {
                Basis::Votes | Basis::Returned => true,
                Basis::Issued => hc.and_then(|h| h.issued).is_some(),
                Basis::Present => hc.and_then(|h| h.present).is_some(),
                Basis::Members => hc.and_then(|h| h.members).is_some(),
            };
            if !has && group_weights[g] > 0.0 {
                self.bad(
                    format!("denominator.groups.{id}"),
                    format!(
                        "has no {basis:?} count, expected one for the basis {basis:?} (or give group {id:?} weight 0)"
                    ),
                );
            }
        }
    }

    /// `[quorum]`: known groups, and a share that some attendance can meet.
    fn quorum(&mut self, q: &Quorum, group_ids: &[String]) {
        if q.groups.is_empty() {
            self.bad(
                "quorum.groups".to_string(),
                format!(
                    "is empty, expected the groups the quorum applies to, some of: {}",
                    group_ids.join(", ")
                ),
            );
        }
        for (i, id) in q.groups.iter().enumerate() {
            self.group(format!("quorum.groups[{i}]"), id, group_ids);
        }
        if q.share.num == 0 {
            self.bad(
                "quorum.share".to_string(),
                "is 0, which any attendance meets; expected a share above 0 such as \"1/2\"",
            );
        }
        if q.more_than && q.share.num == q.share.den {
            self.bad(
                "quorum.share".to_string(),
                "is all members with more_than = true, which no attendance can meet; \
                 expected a share below 1, or more_than = false",
            );
        }
    }

    /// The criteria and groups (indexes) that rates pool.
    fn rate_pools(
        &mut self,
        rates: &Rates,
        crit_ids: &[String],
        group_ids: &[String],
    ) -> (Vec<usize>, Vec<usize>) {
        let criteria = match &rates.criteria {
            None => (0..crit_ids.len()).collect(),
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, c)| {
                    self.criterion(&format!("rates.criteria[{i}]"), &Some(c.clone()), crit_ids)
                })
                .collect(),
        };
        let groups = match &rates.groups {
            None => (0..group_ids.len()).collect(),
            Some(list) => list
                .iter()
                .enumerate()
                .filter_map(|(i, g)| self.group(format!("rates.groups[{i}]"), g, group_ids))
                .collect(),
        };
        (criteria, groups)
    }

    fn naming(&mut self, naming: Option<&Naming>, grading: &Grading) {
        let Some(n) = naming else {
            return;
        };
        if let Some(line) = n.bottom_below {
            if !line.is_finite() {
                self.bad(
                    "naming.bottom_below",
                    format!(
                        "{} is not a score line, expected a finite number",
                        shown(line)
                    ),
                );
            }
        }
        if let Some(g) = &n.bottom_not_grade {
            if grades_of(grading).iter().all(|x| x != g) {
                self.bad(
                    "naming.bottom_not_grade",
                    format!(
                        "{} is not a grade of [grading], expected one of its grades",
                        quoted(g)
                    ),
                );
            }
        }
    }

    fn output(&mut self, out: &Output) {
        for (path, d) in [
            ("output.rate_decimals", out.rate_decimals),
            ("output.score_decimals", out.score_decimals),
        ] {
            if d > MAX_DECIMALS {
                self.bad(
                    path,
                    format!("{d} is too many decimals, expected a whole number from 0 to {MAX_DECIMALS}"),
                );
            }
        }
    }

    fn assessment(&mut self, a: &Assessment, scale: &Scale) {
        self.appraisal_points(&a.appraisal, scale);
        for (k, p) in &a.deductions {
            self.number(
                format!("assessment.deductions.{k}"),
                *p,
                (0.0, POINTS.1),
                "points per notice",
            );
        }
        if let Some(cap) = a.deduction_cap {
            self.number(
                "assessment.deduction_cap",
                cap,
                (0.0, POINTS.1),
                "a cap on deductions",
            );
        }
        for (k, c) in &a.components {
            self.number(
                format!("assessment.components.{k}.weight"),
                c.weight,
                POINTS,
                "a weight",
            );
            if let Some(max) = c.max {
                self.number(
                    format!("assessment.components.{k}.max"),
                    max,
                    COMPONENT_MAX,
                    "a cap",
                );
            }
        }
        if let Some(rb) = &a.rank_bonus {
            if rb.field == 0 {
                self.bad(
                    "assessment.rank_bonus.field",
                    "is 0, expected how many were ranked",
                );
            }
            for (side, list) in [("top", &rb.top), ("bottom", &rb.bottom)] {
                for (i, p) in list.iter().enumerate() {
                    self.number(
                        format!("assessment.rank_bonus.{side}[{i}]"),
                        *p,
                        POINTS,
                        "points",
                    );
                }
            }
        }
        match &a.grading {
            Grading::Majority { .. } => self.bad(
                "assessment.grading.method",
                "\"majority\" grades votes, not totals, expected \"bands\", \"quota\" or \"none\"",
            ),
            g => self.grading("assessment.grading", g, &[], scale),
        }
    }

    fn appraisal_points(&mut self, how: &AppraisalPoints, scale: &Scale) {
        const PATH: &str = "assessment.appraisal";
        match how {
            AppraisalPoints::Lookup {
                measure,
                options,
                table,
                overrides,
            } => {
                if *measure == Measure::Share && options.is_empty() {
                    self.bad(
                        format!("{PATH}.options"),
                        "is empty, expected the option codes whose share is looked up",
                    );
                }
                self.codes(&format!("{PATH}.options"), options, scale);
                if table.is_empty() {
                    self.bad(format!("{PATH}.table"), "is empty, expected rows");
                }
                for (i, row) in table.iter().enumerate() {
                    if !row.min.is_finite() {
                        self.bad(
                            format!("{PATH}.table[{i}].min"),
                            format!(
                                "{} is not a threshold, expected a finite number",
                                shown(row.min)
                            ),
                        );
                    }
                    self.number(
                        format!("{PATH}.table[{i}].points"),
                        row.points,
                        POINTS,
                        "points",
                    );
                }
                for (i, o) in overrides.iter().enumerate() {
                    let path = format!("{PATH}.overrides[{i}]");
                    self.codes(&format!("{path}.options"), &o.options, scale);
                    self.number(format!("{path}.points"), o.points, POINTS, "points");
                    if let Some(p) = o.when_points {
                        self.number(format!("{path}.when_points"), p, POINTS, "points");
                    }
                }
            }
            AppraisalPoints::Relative { points } => {
                self.number(format!("{PATH}.points"), *points, (0.0, POINTS.1), "points")
            }
            AppraisalPoints::Rank { points, step } => {
                self.number(format!("{PATH}.points"), *points, (0.0, POINTS.1), "points");
                if !(0.0..1.0).contains(step) {
                    self.bad(
                        format!("{PATH}.step"),
                        format!(
                            "{} is not a step, expected a fraction from 0 to below 1 such as 0.02",
                            shown(*step)
                        ),
                    );
                }
            }
        }
    }
}

/// The grades a grading can give, from the highest down.
pub fn grades_of(g: &Grading) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |s: &String| {
        if !out.contains(s) {
            out.push(s.clone());
        }
    };
    match g {
        Grading::None => {}
        Grading::Bands { bands } => bands.iter().for_each(|b| push(&b.grade)),
        Grading::Majority {
            levels, fallback, ..
        } => {
            levels.iter().for_each(|l| push(&l.grade));
            push(fallback);
        }
        Grading::Quota {
            quotas,
            bands,
            rest,
        } => {
            quotas.iter().for_each(|q| push(&q.grade));
            bands.iter().for_each(|b| push(&b.grade));
            if let Some(r) = rest {
                push(r);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<Resolved, Vec<String>> {
        Rules::from_toml("r.toml", text, &Form::default_form())
            .map_err(|p| p.problems.iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn a_quorum_that_cannot_work_is_refused() {
        let e = check("[quorum]\ngroups = [\"npcc\"]\n").unwrap_err();
        assert!(
            e[0].contains("quorum.groups[0]")
                && e[0].contains("\"npcc\" is not a respondent group"),
            "{e:?}"
        );
        let e = check("[quorum]\ngroups = [\"npc\"]\nshare = 1.5\n").unwrap_err();
        assert!(
            e[0].contains("1.5") && e[0].contains("expected a number from 0 to 1"),
            "{e:?}"
        );
        let e = check("[quorum]\ngroups = [\"npc\"]\nshare = 0\n").unwrap_err();
        assert!(
            e[0].contains("quorum.share") && e[0].contains("above 0"),
            "{e:?}"
        );
        let e = check("[quorum]\ngroups = [\"npc\"]\nshare = 1\n").unwrap_err();
        assert!(e[0].contains("no attendance can meet"), "{e:?}");
        let e = check("[quorum]\ngroups = []\n").unwrap_err();
        assert!(
            e[0].contains("quorum.groups") && e[0].contains("is empty"),
            "{e:?}"
        );
        let ok =
            check("[quorum]\ngroups = [\"npc\", \"cppcc\"]\nshare = \"2/3\"\nmore_than = false\n");
        let q = ok.unwrap().rules.quorum.unwrap();
        assert_eq!(
            q.words(),
            (
                "达到三分之二".to_string(),
                "at least two thirds".to_string()
            )
        );
    }

    #[test]
    fn defaults_come_from_the_form_scale() {
        let r = check("").unwrap();
        assert_eq!(r.item, "appr");
        let pts: Vec<(&str, f64, bool, bool)> = r
            .options
            .iter()
            .map(|o| (o.code.as_str(), o.points, o.satisfied, o.counted))
            .collect();
        assert_eq!(
            pts,
            [
                ("5", 100.0, true, true),
                ("4", 80.0, true, true),
                ("3", 60.0, true, true),
                ("2", 30.0, false, true),
                ("1", 0.0, false, true),
                ("9", 0.0, false, false)
            ]
        );
        assert_eq!(r.group_weights, vec![1.0; 6]);
        assert_eq!(r.criterion_weights, vec![0.2; 5]);
        assert_eq!(r.rules.confidence.value(), 0.95);
    }

    #[test]
    fn every_problem_has_its_path() {
        let e = check(
            r#"
[scale]
points = { "7" = 1 }
satisfied = ["5", "x"]
[groups]
aliens = 1
[[validity.caps]]
options = ["5"]
at_most = 2
[grading]
method = "bands"
bands = [ { grade = "A", min = 80 }, { grade = "B", min = 90 } ]
[trim]
k = 1
fraction = 0.1
"#,
        )
        .unwrap_err();
        let has = |p: &str| e.iter().any(|m| m.starts_with(p));
        assert!(has("scale.points.7: \"7\" is not an option"), "{e:#?}");
        assert!(has("scale.satisfied[1]: \"x\" is not an option"), "{e:#?}");
        assert!(
            has("groups.aliens: \"aliens\" is not a respondent group"),
            "{e:#?}"
        );
        assert!(has("validity.caps[0].criterion: is missing"), "{e:#?}");
        assert!(has("grading.bands[1].min: 90 is not below"), "{e:#?}");
        assert!(has("trim: expected exactly one of"), "{e:#?}");
        assert_eq!(e.len(), 6, "{e:#?}");
    }

    #[test]
    fn syntax_and_unknown_keys_have_a_line() {
        let e =
            check("confidence = 0.95\n[grading]\nmethod = \"bands\"\nbandz = []\n").unwrap_err();
        // A tagged section is checked as a whole, so the place is its header.
        assert!(
            e[0].starts_with("line 2, column 1: unknown field `bandz`, expected `bands`"),
            "{e:?}"
        );
        let e = check("confidence = 1.5\n").unwrap_err();
        assert!(e[0].contains("1.5 is not a confidence level"), "{e:?}");
    }

    #[test]
    fn shares_are_exact_fractions() {
        let third = Share::parse("1/3").unwrap();
        assert!(third.reached(10.0, 30.0, true));
        assert!(!third.reached(10.0, 30.0, false));
        let s = Share::parse("0.3").unwrap();
        assert_eq!((s.num, s.den), (3, 10));
        assert!(s.reached(3.0, 10.0, true), "0.3 of 10 is exactly 3");
        assert_eq!(s.floor_of(8), 2, "30% of 8 units is at most 2");
        assert!(Share::parse("1.5").is_err());
        assert!(Share::parse("abc").is_err());
        assert!(Share::parse("1/0").is_err());
    }

    #[test]
    fn every_number_setting_outside_its_range_is_refused_with_path_value_and_range() {
        // Each of these was accepted before ranges were checked: they turned scores into
        // inf or NaN that were still ranked, or made printing panic or hang.
        let e = check(
            r#"
[scale]
points = { "5" = 1e308, "4" = inf, "3" = nan }
[[validity.caps]]
criterion = "overall"
points_at_least = nan
at_least = 5
at_most = 2
[careless]
too_fast = 1e300
[trim]
k = 9223372036854775807
[criteria]
overall = 1e308
attitude = -0.5
[groups]
public = nan
[grading]
method = "bands"
bands = [ { grade = "A", min = nan }, { grade = "B", min = 0 } ]
[naming]
bottom = 1
bottom_below = nan
[output]
rate_decimals = 4294967295
score_decimals = 7
"#,
        )
        .unwrap_err();
        let expected = [
            "scale.points.5: 1e308 is not points, expected a number from -1000000 to 1000000",
            "scale.points.4: inf is not points",
            "scale.points.3: NaN is not points",
            "validity.caps[0].points_at_least: NaN is not points",
            "validity.caps[0].at_least: 5 is above at_most (2)",
            "careless.too_fast: 1e300 is not a number of seconds, expected \"half_median\", \"off\" or seconds from 0 to 86400",
            "trim.k: 9223372036854775807 answers from each side is not a trim, expected a whole number from 0 to 1000",
            "criteria.overall: 1e308 is not a weight, expected a number from 0 to 1000000",
            "criteria.attitude: -0.5 is not a weight",
            "groups.public: NaN is not a weight",
            "groups: the group weights add up to 0",
            "grading.bands[0].min: NaN is not a score line, expected a finite number",
            "naming.bottom_below: NaN is not a score line, expected a finite number",
            "output.rate_decimals: 4294967295 is too many decimals, expected a whole number from 0 to 6",
            "output.score_decimals: 7 is too many decimals",
        ];
        for want in expected {
            assert!(
                e.iter().any(|m| m.starts_with(want)),
                "missing {want:?} in {e:#?}"
            );
        }
        // The edges of each range are accepted; -0 is a weight of 0.
        check(
            r#"
[scale]
points = { "5" = 1e6, "4" = -1e6, "3" = -0.0 }
[careless]
too_fast = 86400
[trim]
k = 1000
[criteria]
overall = 1e6
attitude = -0.0
[output]
rate_decimals = 6
score_decimals = 0
"#,
        )
        .unwrap();
    }

    #[test]
    fn assessment_numbers_are_checked_too() {
        let e = check(
            r#"
[assessment]
deduction_cap = nan
[assessment.appraisal]
method = "lookup"
measure = "score"
table = [ { min = nan, points = 1e300 } ]
overrides = [ { options = ["1"], share_at_least = "1/3", points = inf } ]
[assessment.components]
key_work = { weight = 1e300, max = nan }
[assessment.deductions]
"督办" = -1
[assessment.rank_bonus]
component = "rank"
field = 5
top = [ inf ]
"#,
        )
        .unwrap_err();
        for want in [
            "assessment.deduction_cap: NaN is not a cap on deductions",
            "assessment.appraisal.table[0].min: NaN is not a threshold",
            "assessment.appraisal.table[0].points: 1e300 is not points",
            "assessment.appraisal.overrides[0].points: inf is not points",
            "assessment.components.key_work.weight: 1e300 is not a weight",
            "assessment.components.key_work.max: NaN is not a cap",
            "assessment.deductions.督办: -1 is not points per notice, expected a number from 0 to 1000000",
            "assessment.rank_bonus.top[0]: inf is not points",
        ] {
            assert!(e.iter().any(|m| m.starts_with(want)), "missing {want:?} in {e:#?}");
        }
    }

    #[test]
    fn a_share_too_large_to_hold_is_refused_not_wrapped() {
        // 1844674407370955162 × 10 wraps around u64 to 4: this was read as the share 4/10.
        let e = Share::parse("1844674407370955162.0").unwrap_err();
        assert!(e.contains("is not a share"), "{e}");
        assert!(Share::parse("18446744073709551615.5").is_err());
        assert!(Share::parse("-0").is_err());
        let e = check("[[validity.caps]]\ncriterion = \"overall\"\noptions = [\"5\"]\nat_most_share = \"1844674407370955162.0\"\n").unwrap_err();
        assert!(e.iter().any(|m| m.contains("is not a share")), "{e:?}");
    }
}
