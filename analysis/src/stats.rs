//! Every statistical method of the scorer, and the only module that calls `statrs`.
//!
//! Each function checks its inputs before a distribution is built (statrs' constructors
//! refuse bad parameters and `inverse_cdf` panics outside [0, 1]), and returns `Option`:
//! `None` means "cannot be computed from these numbers" (too few answers, no variance),
//! never NaN. Intervals are our own [`Interval`], tagged with the method that made them.
//!
//! - [`t_interval`] / [`mean_interval`]: Student's t-interval of a mean, `x̄ ± t(1−γ/2; n−1)·s/√n`
//!   (Student 1908; any textbook, e.g. Moore & McCabe, *Introduction to the Practice of
//!   Statistics*, §7.1).
//! - [`wilson`]: Wilson's score interval of a proportion (Wilson 1927), recommended over the
//!   plain normal ("Wald") interval by Agresti & Coull (1998) and Newcombe (1998, method 3),
//!   because it stays inside [0, 1] and keeps its coverage for small n.
//! - [`cronbach_alpha`]: Cronbach's alpha from an item covariance matrix (Cronbach 1951),
//!   `α = k/(k−1)·(1 − Σσ²ᵢ / σ²ₜₒₜₐₗ)`; [`feldt_interval`] its interval from
//!   `(1−α)/(1−α̂) ~ F(n−1, (n−1)(k−1))` (Feldt 1965; Feldt, Woodruff & Salih 1987).
//! - [`item_total_correlations`]: corrected item-total correlations, each item against the
//!   sum of the others, from the same covariance matrix.
//! - [`welch`]: Welch's two-sample t-test on two estimates with their standard errors and
//!   degrees of freedom, with the Welch–Satterthwaite degrees of freedom (Welch 1947;
//!   Satterthwaite 1946). The scorer uses it to mark a unit whose score cannot be told apart
//!   from its neighbour's in the ranking.
//! - [`satterthwaite_df`]: the effective degrees of freedom of a weighted sum of independent
//!   means.

use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, FisherSnedecor, Normal, StudentsT};

/// 置信水平: a confidence level strictly between 0 and 1 (0.95 for 95%).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ConfidenceLevel(f64);

impl ConfidenceLevel {
    /// A level in (0, 1); anything else (including NaN) is refused with a message.
    pub fn new(level: f64) -> Result<ConfidenceLevel, String> {
        if level > 0.0 && level < 1.0 {
            Ok(ConfidenceLevel(level))
        } else {
            Err(format!(
                "{level} is not a confidence level, expected a number between 0 and 1 such as 0.95"
            ))
        }
    }

    /// The level as a number in (0, 1).
    pub fn value(self) -> f64 {
        self.0
    }

    /// The upper tail probability on each side, `(1 − level) / 2`.
    fn tail(self) -> f64 {
        (1.0 - self.0) / 2.0
    }
}

impl Default for ConfidenceLevel {
    fn default() -> ConfidenceLevel {
        ConfidenceLevel(0.95)
    }
}

impl TryFrom<f64> for ConfidenceLevel {
    type Error = String;
    fn try_from(x: f64) -> Result<ConfidenceLevel, String> {
        ConfidenceLevel::new(x)
    }
}

impl From<ConfidenceLevel> for f64 {
    fn from(c: ConfidenceLevel) -> f64 {
        c.0
    }
}

/// How an [`Interval`] was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Student's t-interval of a mean (or of a weighted sum of means, with
    /// Welch–Satterthwaite degrees of freedom).
    StudentT,
    /// Tukey–McLaughlin interval of a trimmed mean: winsorized standard error, t with
    /// n − 2g − 1 degrees of freedom.
    TrimmedT,
    /// Wilson's score interval of a proportion.
    Wilson,
    /// Feldt's F-based interval of Cronbach's alpha.
    Feldt,
}

/// 置信区间: an interval estimate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower end.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// The confidence level it was computed at.
    pub level: f64,
    /// The method.
    pub method: Method,
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Degrees of freedom from which Student's t is taken as the normal distribution: their
/// quantiles differ by about z(1 + z²)/4df, under 0.00001 at 99.9 %, and statrs's inverse
/// of t does not come back for df in the hundreds of millions (a tally with a huge count).
const NORMAL_FROM_DF: f64 = 1e6;

/// The `p` quantile of Student's t with `df` degrees of freedom (`df` > 0, `p` in (0, 1)).
fn t_quantile(df: f64, p: f64) -> Option<f64> {
    if !(df > 0.0 && df.is_finite() && p > 0.0 && p < 1.0) {
        return None;
    }
    if df >= NORMAL_FROM_DF {
        return z_quantile(p);
    }
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    finite(t.inverse_cdf(p))
}

/// The `p` quantile of the standard normal distribution (`p` in (0, 1)).
fn z_quantile(p: f64) -> Option<f64> {
    if !(p > 0.0 && p < 1.0) {
        return None;
    }
    finite(Normal::new(0.0, 1.0).ok()?.inverse_cdf(p))
}

/// The interval `estimate ± t(1−γ/2; df)·se` (Student's t). `None` when `se` is not a
/// finite non-negative number or `df` is not positive.
pub fn mean_interval(
    estimate: f64,
    se: f64,
    df: f64,
    level: ConfidenceLevel,
    method: Method,
) -> Option<Interval> {
    if !(estimate.is_finite() && se.is_finite() && se >= 0.0) {
        return None;
    }
    let t = t_quantile(df, 1.0 - level.tail())?;
    Some(Interval {
        lower: estimate - t * se,
        upper: estimate + t * se,
        level: level.value(),
        method,
    })
}

/// Student's t-interval of a mean from `n` answers with standard deviation `sd`:
/// `x̄ ± t(1−γ/2; n−1)·s/√n`. Needs n ≥ 2.
pub fn t_interval(mean: f64, sd: f64, n: u64, level: ConfidenceLevel) -> Option<Interval> {
    if n < 2 {
        return None;
    }
    let nf = n as f64;
    mean_interval(mean, sd / nf.sqrt(), nf - 1.0, level, Method::StudentT)
}

/// Wilson's score interval for `successes` out of `n` (Wilson 1927; Newcombe 1998,
/// method 3): `(p̂ + z²/2n ± z·√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)`. Needs n ≥ 1 and
/// successes ≤ n. The ends are clamped to [0, 1] against rounding.
pub fn wilson(successes: f64, n: f64, level: ConfidenceLevel) -> Option<Interval> {
    if !(n >= 1.0 && n.is_finite() && successes >= 0.0 && successes <= n) {
        return None;
    }
    let z = z_quantile(1.0 - level.tail())?;
    let p = successes / n;
    let z2 = z * z;
    let centre = p + z2 / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let denom = 1.0 + z2 / n;
    Some(Interval {
        lower: ((centre - half) / denom).clamp(0.0, 1.0),
        upper: ((centre + half) / denom).clamp(0.0, 1.0),
        level: level.value(),
        method: Method::Wilson,
    })
}

/// Cronbach's alpha of `k` items from their covariance matrix (row-major, k × k):
/// `α = k/(k−1)·(1 − Σ σ²ᵢ / Σᵢⱼ σᵢⱼ)`. Needs k ≥ 2 and a positive total variance.
pub fn cronbach_alpha(cov: &[f64], k: usize) -> Option<f64> {
    if k < 2 || cov.len() != k * k || cov.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let item_var: f64 = (0..k).map(|i| cov[i * k + i]).sum();
    let total_var: f64 = cov.iter().sum();
    if total_var <= 0.0 {
        return None;
    }
    let kf = k as f64;
    finite(kf / (kf - 1.0) * (1.0 - item_var / total_var))
}

/// Feldt's interval of Cronbach's alpha from `n` respondents and `k` items (Feldt 1965):
/// with F ~ F(n−1, (n−1)(k−1)), the interval is
/// `[1 − (1−α̂)·F(1−γ/2), 1 − (1−α̂)·F(γ/2)]`. Needs n ≥ 2, k ≥ 2 and α̂ < 1.
pub fn feldt_interval(alpha: f64, n: u64, k: usize, level: ConfidenceLevel) -> Option<Interval> {
    if n < 2 || k < 2 || !alpha.is_finite() || alpha >= 1.0 {
        return None;
    }
    let d1 = n as f64 - 1.0;
    let d2 = d1 * (k as f64 - 1.0);
    let f = FisherSnedecor::new(d1, d2).ok()?;
    let hi_q = finite(f.inverse_cdf(1.0 - level.tail()))?;
    let lo_q = finite(f.inverse_cdf(level.tail()))?;
    Some(Interval {
        lower: 1.0 - (1.0 - alpha) * hi_q,
        upper: 1.0 - (1.0 - alpha) * lo_q,
        level: level.value(),
        method: Method::Feldt,
    })
}

/// Corrected item-total correlations from a k × k covariance matrix: for each item i,
/// `corr(xᵢ, Σⱼ≠ᵢ xⱼ) = (Σⱼ≠ᵢ σᵢⱼ) / √(σ²ᵢ · Σⱼ≠ᵢ Σₗ≠ᵢ σⱼₗ)`. An item (or rest) with no
/// variance gives `None` in its place.
pub fn item_total_correlations(cov: &[f64], k: usize) -> Vec<Option<f64>> {
    if cov.len() != k * k || k < 2 {
        return vec![None; k];
    }
    (0..k)
        .map(|i| {
            let var_i = cov[i * k + i];
            let cov_rest: f64 = (0..k).filter(|&j| j != i).map(|j| cov[i * k + j]).sum();
            let var_rest: f64 = (0..k)
                .filter(|&j| j != i)
                .flat_map(|j| (0..k).filter(move |&l| l != i).map(move |l| (j, l)))
                .map(|(j, l)| cov[j * k + l])
                .sum();
            if var_i > 0.0 && var_rest > 0.0 {
                finite(cov_rest / (var_i * var_rest).sqrt()).map(|r| r.clamp(-1.0, 1.0))
            } else {
                None
            }
        })
        .collect()
}

/// An estimate with its squared standard error and degrees of freedom, as a two-sample
/// test needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The estimate (a mean or weighted sum of means).
    pub value: f64,
    /// Its variance (squared standard error).
    pub var: f64,
    /// Degrees of freedom of that variance.
    pub df: f64,
}

/// The result of [`welch`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TwoSample {
    /// The t statistic `(a − b) / √(va + vb)`.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Welch's two-sample t-test (Welch 1947): `t = (a − b)/√(va + vb)`,
/// `df = (va + vb)² / (va²/dfa + vb²/dfb)`, two-sided p from Student's t. `None` when
/// both variances are zero or a df is not positive.
pub fn welch(a: Estimate, b: Estimate) -> Option<TwoSample> {
    let var = a.var + b.var;
    if !(var > 0.0 && var.is_finite() && a.df > 0.0 && b.df > 0.0) {
        return None;
    }
    let t = (a.value - b.value) / var.sqrt();
    let df = var * var / (a.var * a.var / a.df + b.var * b.var / b.df);
    if !(t.is_finite() && df.is_finite() && df > 0.0) {
        return None;
    }
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p = (2.0 * (1.0 - dist.cdf(t.abs()))).clamp(0.0, 1.0);
    Some(TwoSample { t, df, p })
}

/// Welch–Satterthwaite degrees of freedom of a sum of independent variance pieces
/// `vᵢ` with `dfᵢ` each: `(Σ vᵢ)² / Σ (vᵢ² / dfᵢ)` (Satterthwaite 1946). Pieces with zero
/// variance carry no weight; `None` if all are zero or a df is not positive.
pub fn satterthwaite_df(pieces: &[(f64, f64)]) -> Option<f64> {
    let total: f64 = pieces.iter().map(|(v, _)| v).sum();
    let mut denom = 0.0;
    for &(v, df) in pieces {
        if v > 0.0 {
            if df <= 0.0 {
                return None;
            }
            denom += v * v / df;
        }
    }
    if total > 0.0 && denom > 0.0 {
        finite(total * total / denom)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L95: ConfidenceLevel = ConfidenceLevel(0.95);

    #[test]
    fn wilson_matches_newcombe_1998_table_i() {
        // Newcombe RG (1998), "Two-sided confidence intervals for the single proportion:
        // comparison of seven methods", Statistics in Medicine 17:857–872, Table I,
        // method 3 (score interval without continuity correction), 95%, to 4 decimals.
        let cases = [
            (81.0, 263.0, 0.2553, 0.3662),
            (15.0, 148.0, 0.0624, 0.1605),
            (0.0, 20.0, 0.0000, 0.1611),
            (1.0, 29.0, 0.0061, 0.1718),
        ];
        for (x, n, lo, hi) in cases {
            let i = wilson(x, n, L95).unwrap();
            assert!((i.lower - lo).abs() < 6e-5, "{x}/{n}: {i:?}");
            assert!((i.upper - hi).abs() < 6e-5, "{x}/{n}: {i:?}");
            assert_eq!(i.method, Method::Wilson);
        }
    }

    #[test]
    fn wilson_refuses_what_it_cannot_compute() {
        assert_eq!(wilson(0.0, 0.0, L95), None);
        assert_eq!(wilson(5.0, 4.0, L95), None);
        assert_eq!(wilson(f64::NAN, 4.0, L95), None);
        let all = wilson(10.0, 10.0, L95).unwrap();
        assert_eq!(all.upper, 1.0);
        assert!(all.lower > 0.6 && all.lower < 0.75, "{all:?}");
    }

    #[test]
    fn t_interval_matches_the_t_table() {
        // n = 10, x̄ = 5, s = 2: t(0.975; 9) = 2.262 (any t table), half width
        // 2.262 · 2 / √10 = 2.262 · 0.632456 = 1.4306.
        let i = t_interval(5.0, 2.0, 10, L95).unwrap();
        assert!((i.upper - 5.0 - 1.4306).abs() < 2e-4, "{i:?}");
        assert!((5.0 - i.lower - 1.4306).abs() < 2e-4, "{i:?}");
        // n = 1 has no spread to speak of.
        assert_eq!(t_interval(5.0, 0.0, 1, L95), None);
        // No variance: a zero-width interval, not NaN.
        let z = t_interval(80.0, 0.0, 3, L95).unwrap();
        assert_eq!((z.lower, z.upper), (80.0, 80.0));
        // 90%: t(0.95; 9) = 1.833 → half width 1.833 · 0.632456 = 1.1593.
        let i90 = t_interval(5.0, 2.0, 10, ConfidenceLevel::new(0.9).unwrap()).unwrap();
        assert!((i90.upper - 6.1593).abs() < 2e-4, "{i90:?}");
    }

    #[test]
    fn confidence_level_is_checked() {
        assert!(ConfidenceLevel::new(1.0).is_err());
        assert!(ConfidenceLevel::new(0.0).is_err());
        assert!(ConfidenceLevel::new(f64::NAN).is_err());
        assert_eq!(ConfidenceLevel::new(0.9).unwrap().value(), 0.9);
    }

    #[test]
    fn alpha_by_hand() {
        // Three items, four respondents: (1,2,2) (2,2,3) (3,4,3) (4,4,4).
        // Item means 2.5, 3, 3; sample variances (n−1 = 3):
        //   x1: (2.25+0.25+0.25+2.25)/3 = 5/3; x2: (1+1+1+1)/3 = 4/3; x3: (1+0+0+1)/3 = 2/3.
        // Totals 5, 7, 10, 12 (mean 8.5): variance (12.25+2.25+2.25+12.25)/3 = 29/3.
        // α = 3/2 · (1 − (5/3+4/3+2/3)/(29/3)) = 1.5 · (1 − 11/29) = 1.5 · 18/29 = 0.931034…
        let rows = [
            [1.0, 2.0, 2.0],
            [2.0, 2.0, 3.0],
            [3.0, 4.0, 3.0],
            [4.0, 4.0, 4.0],
        ];
        let mut cov = [0.0; 9];
        let means = [2.5, 3.0, 3.0];
        for r in &rows {
            for i in 0..3 {
                for j in 0..3 {
                    cov[i * 3 + j] += (r[i] - means[i]) * (r[j] - means[j]) / 3.0;
                }
            }
        }
        let a = cronbach_alpha(&cov, 3).unwrap();
        assert!((a - 27.0 / 29.0).abs() < 1e-12, "{a}");
        // Item-total, item 2 vs x1+x3 = (3,5,6,8): cov(x2, x1+x3) = cov12 + cov23.
        // cov12 = ((-1.5)(-1)+(-0.5)(-1)+(0.5)(1)+(1.5)(1))/3 = 4/3;
        // cov23 = ((-1)(-1)+(-1)(0)+(1)(0)+(1)(1))/3 = 2/3; sum 2.
        // var(x1+x3) = 5/3 + 2/3 + 2·cov13, cov13 = ((-1.5)(-1)+0+0+(1.5)(1))/3 = 1 → 13/3.
        // r = 2 / √(4/3 · 13/3) = 2 / (√52/3) = 6/√52 = 0.83205.
        let r = item_total_correlations(&cov, 3);
        assert!((r[1].unwrap() - 6.0 / 52f64.sqrt()).abs() < 1e-12, "{r:?}");
        assert_eq!(cronbach_alpha(&[0.0; 4], 2), None, "no variance, no alpha");
        assert_eq!(cronbach_alpha(&[1.0], 1), None, "one item, no alpha");
    }

    #[test]
    fn feldt_matches_f_tables() {
        // n = 11 respondents, k = 5 items: F(10, 40). Upper 2.5% points from the F table
        // (NIST/SEMATECH e-Handbook of Statistical Methods, §1.3.6.7.3, α = 0.025):
        // F(0.975; 10, 40) = 2.388 and F(0.975; 40, 10) = 3.255, so F(0.025; 10, 40) =
        // 1/3.255 = 0.3072. With α̂ = 0.8:
        // lower = 1 − 0.2 · 2.388 = 0.5224; upper = 1 − 0.2 · 0.3072 = 0.9386.
        let i = feldt_interval(0.8, 11, 5, L95).unwrap();
        assert!((i.lower - 0.5224).abs() < 1e-3, "{i:?}");
        assert!((i.upper - 0.9386).abs() < 1e-3, "{i:?}");
        assert_eq!(feldt_interval(1.0, 11, 5, L95), None);
        assert_eq!(feldt_interval(0.8, 1, 5, L95), None);
    }

    #[test]
    fn welch_by_hand() {
        // a = 80 with s²/n = 4 (df 9), b = 74 with s²/n = 5 (df 14):
        // t = 6 / √9 = 2; df = 81 / (16/9 + 25/14) = 81 / (1.77778 + 1.78571) = 22.731.
        // Two-sided p for t = 2 at df ≈ 22.7: between the t-table's 0.0577 (df 22) and
        // 0.0573 (df 24), about 0.0576.
        let r = welch(
            Estimate {
                value: 80.0,
                var: 4.0,
                df: 9.0,
            },
            Estimate {
                value: 74.0,
                var: 5.0,
                df: 14.0,
            },
        )
        .unwrap();
        assert!((r.t - 2.0).abs() < 1e-12);
        assert!((r.df - 22.731).abs() < 1e-3, "{r:?}");
        assert!((r.p - 0.0576).abs() < 5e-4, "{r:?}");
        assert_eq!(
            welch(
                Estimate {
                    value: 1.0,
                    var: 0.0,
                    df: 3.0
                },
                Estimate {
                    value: 2.0,
                    var: 0.0,
                    df: 3.0
                }
            ),
            None
        );
    }

    #[test]
    fn satterthwaite_by_hand() {
        // (4, 9) and (5, 14) as in welch_by_hand: 81 / (16/9 + 25/14) = 22.731.
        let df = satterthwaite_df(&[(4.0, 9.0), (5.0, 14.0)]).unwrap();
        assert!((df - 22.731).abs() < 1e-3);
        // One piece: its own df.
        assert!((satterthwaite_df(&[(3.0, 7.0), (0.0, 0.0)]).unwrap() - 7.0).abs() < 1e-12);
        assert_eq!(satterthwaite_df(&[(0.0, 7.0)]), None);
    }
}
