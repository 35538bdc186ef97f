//! 输出: the score report as a terminal table and as CSV (one row per unit), with the
//! rules' rounding applied here and only here; the computation stays exact and the JSON
//! output keeps full precision.
//!
//! Rounding (published rates are rounded in different ways from region to region):
//! - [`round_half_up`]: 四舍五入, half away from zero;
//! - [`truncate`]: cut off after the last printed decimal;
//! - [`largest_remainder`]: a row of shares that sums to 1 is printed so that it sums to
//!   exactly 100%: every share is cut off, then the units of the last place still missing
//!   go to the largest remainders (Hamilton's method).
//!
//! Floating-point results such as 0.285 are stored a hair off their decimal value, so
//! both roundings first snap to the nearest 10⁻⁹ of the printed unit.
//!
//! The rules allow at most [`MAX_DECIMALS`] decimals; these functions print more as that
//! many, so that no setting can overflow a power of ten or ask for a gigabyte of digits.

use std::fmt::Write;

use crate::rules::{Output, Rounding, MAX_DECIMALS};
use crate::score::Report;

fn snap(y: f64) -> f64 {
    let s = (y * 1e9).round() / 1e9;
    if (s - y).abs() < 1e-6 {
        s
    } else {
        y
    }
}

/// 10^decimals, for decimals up to [`MAX_DECIMALS`].
fn scale_of(decimals: u32) -> f64 {
    10f64.powi(decimals.min(MAX_DECIMALS) as i32)
}

/// 四舍五入 to `decimals` places (at most [`MAX_DECIMALS`]).
pub fn round_half_up(x: f64, decimals: u32) -> f64 {
    let f = scale_of(decimals);
    snap(x * f).round() / f
}

/// Cuts `x` off after `decimals` places (at most [`MAX_DECIMALS`]).
pub fn truncate(x: f64, decimals: u32) -> f64 {
    let f = scale_of(decimals);
    snap(x * f).trunc() / f
}

/// Shares (fractions summing to 1) as percentages with `decimals` places (at most
/// [`MAX_DECIMALS`]) that sum to exactly 100 (largest remainder). `None` when the shares
/// do not sum to 1.
pub fn largest_remainder(shares: &[f64], decimals: u32) -> Option<Vec<f64>> {
    let decimals = decimals.min(MAX_DECIMALS);
    let total: f64 = shares.iter().sum();
    if shares.is_empty() || (total - 1.0).abs() > 1e-9 {
        return None;
    }
    let units = 100 * 10u64.pow(decimals);
    let exact: Vec<f64> = shares.iter().map(|s| snap(s * units as f64)).collect();
    let mut floors: Vec<u64> = exact.iter().map(|x| x.floor() as u64).collect();
    let mut left = units.saturating_sub(floors.iter().sum());
    let mut order: Vec<usize> = (0..shares.len()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (exact[a] - exact[a].floor(), exact[b] - exact[b].floor());
        rb.total_cmp(&ra).then(a.cmp(&b))
    });
    for i in order {
        if left == 0 {
            break;
        }
        floors[i] += 1;
        left -= 1;
    }
    let f = scale_of(decimals);
    Some(floors.iter().map(|u| *u as f64 / f).collect())
}

/// A rate (0..1) as a percentage string under the output settings (a single rate under
/// largest remainder is rounded half-up).
pub fn percent(x: f64, out: &Output) -> String {
    let d = out.rate_decimals.min(MAX_DECIMALS);
    let v = match out.rounding {
        Rounding::Truncate => truncate(x * 100.0, d),
        _ => round_half_up(x * 100.0, d),
    };
    format!("{v:.*}", d as usize)
}

/// A score under the output settings.
pub fn number(x: f64, out: &Output) -> String {
    let d = out.score_decimals.min(MAX_DECIMALS);
    let v = match out.rounding {
        Rounding::Truncate => truncate(x, d),
        _ => round_half_up(x, d),
    };
    format!("{v:.*}", d as usize)
}

fn opt(x: Option<f64>, f: impl Fn(f64) -> String) -> String {
    x.map(f).unwrap_or_default()
}

/// The option shares of one unit as printed percentages, in scale order (largest
/// remainder when the rules ask for it and the shares sum to 1).
pub fn option_percents(unit: &crate::score::UnitReport, out: &Output) -> Vec<String> {
    let shares: Vec<Option<f64>> = unit.options.iter().map(|o| o.share).collect();
    if out.rounding == Rounding::LargestRemainder {
        let counted: Vec<f64> = shares.iter().flatten().copied().collect();
        if let Some(p) = largest_remainder(&counted, out.rate_decimals) {
            let mut it = p.into_iter();
            return shares
                .iter()
                .map(|s| {
                    s.and_then(|_| it.next())
                        .map(|v| format!("{v:.*}", out.rate_decimals.min(MAX_DECIMALS) as usize))
                        .unwrap_or_default()
                })
                .collect();
        }
    }
    shares
        .iter()
        .map(|s| opt(*s, |v| percent(v, out)))
        .collect()
}

/// The report as CSV, one row per unit (rates in percent, rounded as the rules say).
pub fn to_csv(report: &Report, out: &Output) -> String {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let groups: Vec<String> = report
        .units
        .first()
        .map(|u| u.groups.keys().cloned().collect())
        .unwrap_or_default();
    let codes: Vec<String> = report
        .units
        .first()
        .map(|u| u.options.iter().map(|o| o.code.clone()).collect())
        .unwrap_or_default();
    let mut header: Vec<String> = [
        "unit",
        "name",
        "category",
        "n",
        "excluded",
        "score",
        "score_lo",
        "score_hi",
        "satisfaction_pct",
        "satisfaction_lo_pct",
        "satisfaction_hi_pct",
        "rank",
        "grade",
        "flags",
        "indistinct_from",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for g in &groups {
        header.push(format!("{g}.n"));
        header.push(format!("{g}.score"));
    }
    for c in &codes {
        header.push(format!("option.{c}_pct"));
    }
    let _ = w.write_record(&header);
    for u in &report.units {
        let mut row = vec![
            u.unit.clone(),
            crate::wide_csv::neutralize(&u.name).into_owned(),
            u.category.clone().unwrap_or_default(),
            u.n.to_string(),
            u.excluded.to_string(),
            opt(u.score, |x| number(x, out)),
            opt(u.score_ci.map(|c| c[0]), |x| number(x, out)),
            opt(u.score_ci.map(|c| c[1]), |x| number(x, out)),
            opt(u.satisfaction, |x| percent(x, out)),
            opt(u.satisfaction_ci.map(|c| c[0]), |x| percent(x, out)),
            opt(u.satisfaction_ci.map(|c| c[1]), |x| percent(x, out)),
            u.rank.map(|r| r.to_string()).unwrap_or_default(),
            u.grade.clone().unwrap_or_default(),
            u.flags.join(" "),
            u.indistinct_from.join(" "),
        ];
        for g in &groups {
            let gr = u.groups.get(g);
            row.push(gr.map(|g| g.n.to_string()).unwrap_or_default());
            row.push(opt(gr.and_then(|g| g.score), |x| number(x, out)));
        }
        row.extend(option_percents(u, out));
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&bytes))
}

/// Display width of a string in a terminal (CJK characters take two columns).
pub fn width(s: &str) -> usize {
    s.chars()
        .map(|c| {
            let c = c as u32;
            if (0x1100..=0x115F).contains(&c)
                || (0x2E80..=0xA4CF).contains(&c)
                || (0xAC00..=0xD7A3).contains(&c)
                || (0xF900..=0xFAFF).contains(&c)
                || (0xFE30..=0xFE4F).contains(&c)
                || (0xFF00..=0xFF60).contains(&c)
                || (0xFFE0..=0xFFE6).contains(&c)
            {
                2
            } else {
                1
            }
        })
        .sum()
}

/// Lays out rows as aligned columns (first row is the header); `right[i]` right-aligns
/// column i.
pub fn columns(rows: &[Vec<String>], right: &[bool]) -> String {
    let n = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..n)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|s| width(s))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (k, r) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            let pad = widths[i] - width(cell);
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&" ".repeat(pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if k == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * n.saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

/// The report as a terminal table: accounting, one line per unit in rank order, reliability.
pub fn to_table(report: &Report, out: &Output) -> String {
    let mut s = String::new();
    let b = &report.ballots;
    let _ = writeln!(
        s,
        "{}form {}: ballots read {}, valid {}, invalid {}{}, duplicates {}, excluded as careless {}, used {}{}",
        report
            .rules
            .as_ref()
            .map(|r| format!("{r} · "))
            .unwrap_or_default(),
        report.form_id,
        b.total,
        b.valid,
        b.invalid,
        if b.invalid_by_reason.is_empty() {
            String::new()
        } else {
            format!(
                " ({})",
                b.invalid_by_reason
                    .iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
        b.duplicates,
        b.careless.excluded,
        b.used,
        if b.tally_votes > 0 {
            format!(", tally votes {}", b.tally_votes)
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        s,
        "careless: too fast {} (threshold {}), straight-lining {}",
        b.careless.too_fast,
        b.careless
            .too_fast_threshold_s
            .map(|t| format!("{t} s, median {} s", b.careless.median_s.unwrap_or(0.0)))
            .unwrap_or_else(|| "off".into()),
        b.careless.straight_lining
    );
    s.push('\n');
    let level = format!("{}%", report.confidence * 100.0);
    let mut rows = vec![vec![
        "rank".to_string(),
        "unit".into(),
        "name".into(),
        "n".into(),
        "score".into(),
        format!("{level} CI"),
        "满意率%".into(),
        format!("{level} CI"),
        "grade".into(),
        "flags".into(),
    ]];
    let mut order: Vec<&crate::score::UnitReport> = report.units.iter().collect();
    order.sort_by(|a, b| {
        a.pool
            .cmp(&b.pool)
            .then(a.rank.unwrap_or(u64::MAX).cmp(&b.rank.unwrap_or(u64::MAX)))
    });
    let pools = order
        .iter()
        .map(|u| &u.pool)
        .collect::<std::collections::BTreeSet<_>>();
    for u in order {
        let rank = match u.rank {
            Some(r) if pools.len() > 1 => format!("{}#{r}", u.pool),
            Some(r) => r.to_string(),
            None => "-".into(),
        };
        rows.push(vec![
            rank,
            u.unit.clone(),
            u.name.clone(),
            u.n.to_string(),
            opt(u.score, |x| number(x, out)),
            u.score_ci
                .map(|c| format!("{}–{}", number(c[0], out), number(c[1], out)))
                .unwrap_or_default(),
            opt(u.satisfaction, |x| percent(x, out)),
            u.satisfaction_ci
                .map(|c| format!("{}–{}", percent(c[0], out), percent(c[1], out)))
                .unwrap_or_default(),
            u.grade.clone().unwrap_or_default(),
            u.flags.join(" "),
        ]);
    }
    s.push_str(&columns(
        &rows,
        &[
            true, false, false, true, true, true, true, true, false, false,
        ],
    ));
    s.push('\n');
    let r = &report.reliability;
    match r.cronbach_alpha {
        Some(a) => {
            let _ = write!(
                s,
                "Cronbach's alpha {:.3} (missing answers: {}, n {}, k {})",
                a,
                format!("{:?}", r.missing).to_lowercase(),
                r.n,
                r.k
            );
            if let Some(ci) = r.ci {
                let _ = write!(s, ", Feldt {level} CI {:.3}–{:.3}", ci.lower, ci.upper);
            }
            s.push('\n');
            if let Some(note) = &r.note {
                let _ = writeln!(s, "  {note}");
            }
        }
        None => {
            let _ = writeln!(
                s,
                "Cronbach's alpha: {}",
                r.note.clone().unwrap_or_else(|| "unavailable".into())
            );
        }
    }
    if report.units.iter().any(|u| !u.indistinct_from.is_empty()) {
        let _ = writeln!(
            s,
            "indistinct: the unit's score cannot be told apart from its neighbour's at {level} (Welch's t-test)"
        );
    }
    for n in &report.notes {
        let _ = writeln!(s, "note: {n}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundings() {
        // 2/3 = 66.666…%: half-up 66.67, truncated 66.66.
        assert_eq!(round_half_up(200.0 / 3.0, 2), 66.67);
        assert_eq!(truncate(200.0 / 3.0, 2), 66.66);
        // 0.285 is stored as 0.28499999999999998; it is still printed as 28.5 half-up.
        assert_eq!(round_half_up(0.285 * 100.0, 1), 28.5);
        assert_eq!(round_half_up(1.005, 2), 1.01);
        assert_eq!(round_half_up(-2.5, 0), -3.0);
    }

    #[test]
    fn largest_remainder_sums_to_100() {
        // Three equal shares: 33.333…% each; cut off 33.33 ×3 = 99.99, the one missing
        // 0.01 goes to the first of the equal remainders: 33.34, 33.33, 33.33.
        let p = largest_remainder(&[1.0 / 3.0; 3], 2).unwrap();
        assert_eq!(p, vec![33.34, 33.33, 33.33]);
        // 1/7, 2/7, 4/7 = 14.2857…, 28.5714…, 57.1428… → floors 14.28, 28.57, 57.14 (99.99);
        // remainders .57, .14, .28 → the first gets the 0.01: 14.29, 28.57, 57.14.
        let p = largest_remainder(&[1.0 / 7.0, 2.0 / 7.0, 4.0 / 7.0], 2).unwrap();
        assert_eq!(p, vec![14.29, 28.57, 57.14]);
        assert_eq!(largest_remainder(&[0.5, 0.4], 2), None);
        // Half-up would give 14.29 + 28.57 + 57.14 = 100 here too, but for thirds it gives 99.99.
        let half_up: f64 = [1.0 / 3.0; 3]
            .iter()
            .map(|s| round_half_up(s * 100.0, 2))
            .sum();
        assert!((half_up - 99.99).abs() < 1e-9);
    }

    #[test]
    fn cjk_width() {
        assert_eq!(width("公安局"), 6);
        assert_eq!(width("gaj"), 3);
        let t = columns(
            &[
                vec!["a".into(), "b".into()],
                vec!["公安局".into(), "1".into()],
            ],
            &[false, true],
        );
        assert_eq!(t, "a       b\n---------\n公安局  1\n");
    }
}
