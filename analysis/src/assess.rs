//! 年度考核: the annual assessment, where the appraisal result is one weighted component
//! beside others.
//!
//! Inputs: the score report (`pingyi score --format json`), a components CSV
//! (`unit,component,value`), optionally a deductions CSV (`unit,kind,count`), and the
//! `[assessment]` section of the rules. For every unit:
//!
//! `total = appraisal points + Σ min(weight · value, max) + rank bonus − min(Σ count · points, cap)`
//!
//! The appraisal points come from a lookup table (e.g. the share of 优秀 votes → 200, 190,
//! 180, 170, 160, with 130 when 基本称职 + 不称职 reach one third: Rui'an 2012), from
//! relative points (score ÷ best score in the ranking pool × P) or from rank points (first
//! place P, each lower place `step`·P less). Totals are ranked (ties share a rank) and
//! graded by bands or quota.
//!
//! Values in the two CSV files lie within ±[`MAX_VALUE`] and every setting within the
//! ranges of [`crate::rules`], so every total is a finite number; one that is not (a
//! score report edited by hand) is an error naming the unit, never ranked.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use serde::{Deserialize, Serialize};

use crate::csv_lines::LineCounted;
use crate::error::{quoted, InputError};
use crate::rules::{AppraisalPoints, Assessment, Band, Grading, Measure, Within, MAX_DECIMALS};

/// The largest value (in size) of a component or a deduction count in the CSV files.
pub const MAX_VALUE: f64 = 1e12;
use crate::score::{Report, UnitReport};
use crate::wide_csv::{csv_error, next_row};

/// One deduction kind for one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deduction {
    /// How many (e.g. 督办 notices).
    pub count: f64,
    /// Points taken: count × points each.
    pub points: f64,
}

/// One unit's annual assessment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessUnit {
    /// Unit id.
    pub unit: String,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: Option<String>,
    /// What the appraisal lookup looked at (score, 满意率 or a share), if a lookup.
    pub appraisal_measure: Option<f64>,
    /// The appraisal's points.
    pub appraisal_points: f64,
    /// Each other component, weighted and capped.
    pub components: BTreeMap<String, f64>,
    /// Deductions by kind.
    pub deductions: BTreeMap<String, Deduction>,
    /// All deductions (after the cap).
    pub deduction_total: f64,
    /// Bonus or malus by external rank.
    pub bonus: f64,
    /// The total.
    pub total: f64,
    /// Rank of the total (1 = best) within the pool.
    pub rank: u64,
    /// The ranking pool.
    pub pool: String,
    /// The grade.
    pub grade: Option<String>,
}

/// The annual assessment of every unit in the score report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AssessReport {
    /// The name of the appraisal component.
    pub appraisal_name: String,
    /// Units in the score report's order (those with an appraisal score).
    pub units: Vec<AssessUnit>,
    /// Units of the score report left out because nobody rated them.
    pub skipped: Vec<String>,
    /// Groups whose vote was void in the score report (quorum not met, more returned
    /// than issued), with why: the appraisal was scored without them.
    #[serde(default)]
    pub void_groups: Vec<crate::score::VoidGroup>,
}

/// Rows `unit,KEY,value` of a small CSV (components or deductions), checked.
fn read_triples<R: Read>(
    source: &str,
    input: R,
    key: &str,
    value: &str,
    known_units: &[String],
    known_keys: &dyn Fn(&str) -> bool,
    keys_hint: &str,
) -> Result<BTreeMap<(String, String), f64>, InputError> {
    let (input, lines) = LineCounted::new(input);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rec = csv::StringRecord::new();
    let header = format!("unit,{key},{value}");
    if !csv
        .read_record(&mut rec)
        .map_err(|e| csv_error(source, &lines, e))?
    {
        return Err(InputError::new(
            source,
            format!("is empty, expected the header {header}"),
        ));
    }
    let names: Vec<String> = rec
        .iter()
        .map(|s| s.trim_start_matches('\u{feff}').trim().to_string())
        .collect();
    if names != ["unit", key, value] {
        return Err(InputError::new(
            source,
            format!(
                "the header is {}, expected {header}",
                crate::error::quoted(&names.join(","))
            ),
        )
        .at_line(1));
    }
    let mut out = BTreeMap::new();
    let mut first: HashMap<(String, String), u64> = HashMap::new();
    while let Some(line) = next_row(&mut csv, &mut rec, source, &lines, 3)? {
        let err = |col: usize, msg: String| {
            InputError::new(source, msg)
                .at_line(line)
                .at_column(col as u64 + 1)
                .in_field(format!("column {:?}", ["unit", key, value][col]))
        };
        let unit = rec[0].trim().to_string();
        let k = rec[1].trim().to_string();
        if !known_units.contains(&unit) {
            return Err(err(
                0,
                format!(
                    "{} is not a unit of the score report, expected one of: {}",
                    quoted(&unit),
                    known_units.join(", ")
                ),
            ));
        }
        if !known_keys(&k) {
            return Err(err(1, format!("{} is not {keys_hint}", quoted(&k))));
        }
        let v: f64 = match rec[2].trim().parse::<f64>() {
            Ok(v) if v.abs() <= MAX_VALUE => v,
            _ => {
                return Err(err(
                    2,
                    format!(
                        "{} is not a number from -{MAX_VALUE} to {MAX_VALUE}, expected a number such as 12.5",
                        quoted(&rec[2])
                    ),
                ))
            }
        };
        if let Some(prev) = first.insert((unit.clone(), k.clone()), line) {
            return Err(err(
                1,
                format!("{unit}/{k} appears twice (first on line {prev}), expected it once"),
            ));
        }
        out.insert((unit, k), v);
    }
    Ok(out)
}

/// Reads the components CSV (`unit,component,value`) against the rules and the report.
pub fn read_components<R: Read>(
    source: &str,
    input: R,
    a: &Assessment,
    report: &Report,
) -> Result<BTreeMap<(String, String), f64>, InputError> {
    let units: Vec<String> = report.units.iter().map(|u| u.unit.clone()).collect();
    let mut names: Vec<String> = a.components.keys().cloned().collect();
    if let Some(rb) = &a.rank_bonus {
        names.push(rb.component.clone());
    }
    let hint = format!(
        "a component of [assessment.components], expected one of: {}",
        names.join(", ")
    );
    read_triples(
        source,
        input,
        "component",
        "value",
        &units,
        &|k| names.iter().any(|n| n == k),
        &hint,
    )
}

/// Reads the deductions CSV (`unit,kind,count`) against the rules and the report.
pub fn read_deductions<R: Read>(
    source: &str,
    input: R,
    a: &Assessment,
    report: &Report,
) -> Result<BTreeMap<(String, String), f64>, InputError> {
    let units: Vec<String> = report.units.iter().map(|u| u.unit.clone()).collect();
    let kinds: Vec<String> = a.deductions.keys().cloned().collect();
    let hint = format!(
        "a kind of [assessment.deductions], expected one of: {}",
        kinds.join(", ")
    );
    let rows = read_triples(
        source,
        input,
        "kind",
        "count",
        &units,
        &|k| kinds.iter().any(|n| n == k),
        &hint,
    )?;
    if let Some(((u, k), v)) = rows.iter().find(|(_, v)| **v < 0.0) {
        return Err(InputError::new(
            source,
            format!("{u}/{k}: {v} is negative, expected a count ≥ 0"),
        ));
    }
    Ok(rows)
}

fn share_of(u: &UnitReport, codes: &[String]) -> (u64, f64) {
    let count = u
        .options
        .iter()
        .filter(|o| codes.contains(&o.code))
        .map(|o| o.count)
        .sum();
    (count, u.satisfaction_base)
}

fn appraisal_points(
    u: &UnitReport,
    pool: &[&UnitReport],
    how: &AppraisalPoints,
) -> (Option<f64>, f64) {
    match how {
        AppraisalPoints::Lookup {
            measure,
            options,
            table,
            overrides,
        } => {
            let m = match measure {
                Measure::Score => u.score,
                Measure::Satisfaction => u.satisfaction,
                Measure::Share => {
                    let (count, base) = share_of(u, options);
                    (base > 0.0).then(|| count as f64 / base)
                }
            };
            let mut rows: Vec<_> = table.iter().collect();
            rows.sort_by(|a, b| b.min.total_cmp(&a.min));
            let mut points = m
                .and_then(|m| rows.iter().find(|r| m >= r.min).map(|r| r.points))
                .or_else(|| rows.last().map(|r| r.points))
                .unwrap_or(0.0);
            for o in overrides {
                let (count, base) = share_of(u, &o.options);
                let applies = o.when_points.is_none_or(|p| p == points);
                if applies && base > 0.0 && o.share_at_least.reached(count as f64, base, true) {
                    points = o.points;
                    break;
                }
            }
            (m, points)
        }
        AppraisalPoints::Relative { points } => {
            let best = pool
                .iter()
                .filter_map(|x| x.score)
                .fold(f64::NEG_INFINITY, f64::max);
            let p = match u.score {
                Some(s) if best > 0.0 => s / best * points,
                _ => 0.0,
            };
            (u.score, p)
        }
        AppraisalPoints::Rank { points, step } => {
            let p = u
                .rank
                .map(|r| (points * (1.0 - step * (r as f64 - 1.0))).max(0.0))
                .unwrap_or(0.0);
            (u.rank.map(|r| r as f64), p)
        }
    }
}

fn band(bands: &[Band], x: f64) -> Option<String> {
    bands.iter().find(|b| x >= b.min).map(|b| b.grade.clone())
}

/// Runs the assessment. Components named in the rules but missing for a unit are an error
/// unless marked optional.
pub fn assess(
    report: &Report,
    a: &Assessment,
    components: &BTreeMap<(String, String), f64>,
    deductions: &BTreeMap<(String, String), f64>,
    components_source: &str,
) -> Result<AssessReport, InputError> {
    let inputs = Inputs {
        a,
        components,
        deductions,
        source: components_source,
    };
    let mut units = Vec::new();
    let mut skipped = Vec::new();
    for u in &report.units {
        if u.score.is_none() {
            skipped.push(u.unit.clone());
            continue;
        }
        units.push(inputs.unit(u, report)?);
    }
    rank_and_grade(&mut units, a);
    Ok(AssessReport {
        appraisal_name: a.appraisal_name.clone(),
        units,
        skipped,
        void_groups: report.void_groups.clone(),
    })
}

/// What a unit's total is made of, beside its score report.
struct Inputs<'a> {
    a: &'a Assessment,
    components: &'a BTreeMap<(String, String), f64>,
    deductions: &'a BTreeMap<(String, String), f64>,
    /// The components file, named in errors.
    source: &'a str,
}

impl Inputs<'_> {
    /// One unit's points, components, deductions, bonus and total (not yet ranked).
    fn unit(&self, u: &UnitReport, report: &Report) -> Result<AssessUnit, InputError> {
        let a = self.a;
        let pool: Vec<&UnitReport> = report.units.iter().filter(|x| x.pool == u.pool).collect();
        let (measure, points) = appraisal_points(u, &pool, &a.appraisal);
        let comps = self.components_of(u)?;
        let (deds, ded_total) = self.deductions_of(u);
        let bonus = self.bonus_of(u)?;
        let total = points + comps.values().sum::<f64>() + bonus - ded_total;
        if !total.is_finite() {
            return Err(InputError::new(
                self.source,
                format!(
                    "unit {:?}: the total came out as {total} (appraisal {points}, components {:?}, bonus {bonus}, deductions {ded_total}), expected a finite number; check the score report and the rules' points",
                    u.unit, comps
                ),
            ));
        }
        Ok(AssessUnit {
            unit: u.unit.clone(),
            name: u.name.clone(),
            category: u.category.clone(),
            appraisal_measure: measure,
            appraisal_points: points,
            components: comps,
            deductions: deds,
            deduction_total: ded_total,
            bonus,
            total,
            rank: 0,
            pool: match (a.within, &u.category) {
                (Within::Category, Some(c)) => c.clone(),
                (Within::Category, None) => "(none)".into(),
                (Within::All, _) => "all".into(),
            },
            grade: None,
        })
    }

    /// Each component weighted and capped; a missing one is an error unless optional.
    fn components_of(&self, u: &UnitReport) -> Result<BTreeMap<String, f64>, InputError> {
        let mut comps = BTreeMap::new();
        for (name, c) in &self.a.components {
            let v = match self.components.get(&(u.unit.clone(), name.clone())) {
                Some(v) => *v,
                None if c.optional => 0.0,
                None => {
                    return Err(InputError::new(
                        self.source,
                        format!(
                            "unit {:?} has no row for component {name:?}, expected one (or mark the component `optional = true`)",
                            u.unit
                        ),
                    ))
                }
            };
            let w = c.weight * v;
            comps.insert(name.clone(), c.max.map_or(w, |m| w.min(m)));
        }
        Ok(comps)
    }

    /// The deductions by kind, and their total after the cap.
    fn deductions_of(&self, u: &UnitReport) -> (BTreeMap<String, Deduction>, f64) {
        let mut deds = BTreeMap::new();
        let mut total = 0.0;
        for (kind, each) in &self.a.deductions {
            let count = self
                .deductions
                .get(&(u.unit.clone(), kind.clone()))
                .copied()
                .unwrap_or(0.0);
            if count > 0.0 {
                total += count * each;
                deds.insert(
                    kind.clone(),
                    Deduction {
                        count,
                        points: count * each,
                    },
                );
            }
        }
        if let Some(cap) = self.a.deduction_cap {
            total = total.min(cap);
        }
        (deds, total)
    }

    /// The bonus or malus of the unit's external rank (0 without one).
    fn bonus_of(&self, u: &UnitReport) -> Result<f64, InputError> {
        let Some(rb) = &self.a.rank_bonus else {
            return Ok(0.0);
        };
        let Some(&r) = self.components.get(&(u.unit.clone(), rb.component.clone())) else {
            return Ok(0.0);
        };
        if r < 1.0 || r > rb.field as f64 || r.fract() != 0.0 {
            return Err(InputError::new(
                self.source,
                format!(
                    "unit {:?}: rank {r} of component {:?} is not a place from 1 to {}",
                    u.unit, rb.component, rb.field
                ),
            ));
        }
        let r = r as u64;
        let from_bottom = rb.field - r;
        Ok(if let Some(b) = rb.top.get(r as usize - 1) {
            *b
        } else if let Some(b) = rb.bottom.get(from_bottom as usize) {
            *b
        } else {
            0.0
        })
    }
}

/// Ranks the totals within each pool (ties share a rank) and grades them.
fn rank_and_grade(units: &mut [AssessUnit], a: &Assessment) {
    let mut pools: Vec<String> = units.iter().map(|u| u.pool.clone()).collect();
    pools.sort();
    pools.dedup();
    for pool in pools {
        let mut order: Vec<usize> = (0..units.len())
            .filter(|&i| units[i].pool == pool)
            .collect();
        order.sort_by(|&x, &y| units[y].total.total_cmp(&units[x].total).then(x.cmp(&y)));
        for (pos, &i) in order.iter().enumerate() {
            units[i].rank =
                if pos > 0 && (units[order[pos - 1]].total - units[i].total).abs() < 1e-9 {
                    units[order[pos - 1]].rank
                } else {
                    pos as u64 + 1
                };
        }
        match &a.grading {
            Grading::None | Grading::Majority { .. } => {}
            Grading::Bands { bands } => {
                for &i in &order {
                    units[i].grade = band(bands, units[i].total);
                }
            }
            Grading::Quota {
                quotas,
                bands,
                rest,
            } => {
                let mut next = 0;
                for q in quotas {
                    let cap = q.share.floor_of(order.len() as u64) as usize;
                    let mut given = 0;
                    while next < order.len() {
                        let rank = units[order[next]].rank;
                        let run = order[next..]
                            .iter()
                            .take_while(|&&i| units[i].rank == rank)
                            .count();
                        if given + run > cap {
                            break;
                        }
                        for &i in &order[next..next + run] {
                            units[i].grade = Some(q.grade.clone());
                        }
                        given += run;
                        next += run;
                    }
                }
                for &i in &order[next..] {
                    units[i].grade = band(bands, units[i].total).or_else(|| rest.clone());
                }
            }
        }
    }
}

/// The names of the other components, in column order (every unit has the same ones).
fn component_names(r: &AssessReport) -> Vec<String> {
    r.units
        .first()
        .map(|u| u.components.keys().cloned().collect())
        .unwrap_or_default()
}

/// The assessment as a terminal table in rank order.
pub fn to_table(r: &AssessReport, decimals: u32) -> String {
    let comps = component_names(r);
    let d = decimals.min(MAX_DECIMALS) as usize;
    let mut header = vec![
        "rank".to_string(),
        "unit".into(),
        "name".into(),
        r.appraisal_name.clone(),
    ];
    header.extend(comps.iter().cloned());
    header.extend([
        "bonus".into(),
        "deductions".into(),
        "total".into(),
        "grade".into(),
    ]);
    let mut rows = vec![header];
    let mut order: Vec<&AssessUnit> = r.units.iter().collect();
    order.sort_by(|a, b| a.pool.cmp(&b.pool).then(a.rank.cmp(&b.rank)));
    for u in order {
        let mut row = vec![
            if u.pool == "all" {
                u.rank.to_string()
            } else {
                format!("{}#{}", u.pool, u.rank)
            },
            u.unit.clone(),
            u.name.clone(),
            format!(
                "{:.d$}",
                crate::render::round_half_up(u.appraisal_points, decimals)
            ),
        ];
        for c in &comps {
            row.push(format!(
                "{:.d$}",
                crate::render::round_half_up(u.components[c], decimals)
            ));
        }
        row.push(format!(
            "{:.d$}",
            crate::render::round_half_up(u.bonus, decimals)
        ));
        row.push(format!(
            "{:.d$}",
            crate::render::round_half_up(-u.deduction_total, decimals) + 0.0
        ));
        row.push(format!(
            "{:.d$}",
            crate::render::round_half_up(u.total, decimals)
        ));
        row.push(u.grade.clone().unwrap_or_default());
        rows.push(row);
    }
    let right: Vec<bool> = (0..rows[0].len())
        .map(|i| i == 0 || (i >= 3 && i + 1 < rows[0].len()))
        .collect();
    let mut s = crate::render::columns(&rows, &right);
    if !r.skipped.is_empty() {
        s.push_str(&format!(
            "not assessed (no appraisal score): {}\n",
            r.skipped.join(", ")
        ));
    }
    for v in &r.void_groups {
        s.push_str(&format!("not graded: {}\n", v.reason));
    }
    s
}

/// The assessment as CSV, one row per unit.
pub fn to_csv(r: &AssessReport, decimals: u32) -> String {
    let comps = component_names(r);
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut header = vec![
        "unit".to_string(),
        "name".into(),
        "appraisal_measure".into(),
        r.appraisal_name.clone(),
    ];
    header.extend(comps.iter().cloned());
    header.extend([
        "bonus".into(),
        "deductions".into(),
        "total".into(),
        "rank".into(),
        "grade".into(),
    ]);
    // Only when some group was void, so that the usual file keeps its columns.
    let void: Vec<&str> = r.void_groups.iter().map(|v| v.group.as_str()).collect();
    if !void.is_empty() {
        header.push("void_groups".into());
    }
    let _ = w.write_record(&header);
    let f = |x: f64| {
        format!(
            "{:.*}",
            decimals.min(MAX_DECIMALS) as usize,
            crate::render::round_half_up(x, decimals)
        )
    };
    for u in &r.units {
        let mut row = vec![
            u.unit.clone(),
            crate::wide_csv::neutralize(&u.name).into_owned(),
            u.appraisal_measure
                .map(|m| format!("{m}"))
                .unwrap_or_default(),
            f(u.appraisal_points),
        ];
        for c in &comps {
            row.push(f(u.components[c]));
        }
        row.push(f(u.bonus));
        row.push(f(u.deduction_total));
        row.push(f(u.total));
        row.push(u.rank.to_string());
        row.push(u.grade.clone().unwrap_or_default());
        if !void.is_empty() {
            row.push(void.join(" "));
        }
        let _ = w.write_record(&row);
    }
    let bytes = w.into_inner().unwrap_or_default();
    format!("\u{feff}{}", String::from_utf8_lossy(&bytes))
}
