//! 计票表: the tally CSV of hand-counted paper ballots, `unit,group,criterion,option,count`,
//! one row per counted cell, folded into an [`Aggregate`] like ballots are.
//!
//! A tally is a histogram already, so it adds to the counts directly. It has no ballots:
//! nothing per ballot can be checked (validity caps, careless flags) or computed (Cronbach's
//! alpha, covariances between criteria); the scorer says so where it matters. For the
//! number of raters of a unit, a tally counts the criterion with the most votes.
//!
//! Counts are whole numbers from 0 to [`MAX_COUNT`], and the votes of every file read
//! together may add up to no more than that (the state's invariant, see
//! [`crate::aggregate`]): the row that would pass it is refused with its line.

use std::collections::HashMap;
use std::io::Read;

use crate::aggregate::{wide_sum, Aggregate, MAX_COUNT};
use crate::csv_lines::LineCounted;
use crate::error::{quoted, InputError};
use crate::rules::Resolved;
use crate::wide_csv::{csv_error, next_row};

/// The tally header, in this order.
pub const TALLY_COLUMNS: [&str; 5] = ["unit", "group", "criterion", "option", "count"];

/// Whether a CSV header row is a tally's (the same five names, in any order).
pub fn is_tally_header(names: &[&str]) -> bool {
    names.len() == TALLY_COLUMNS.len()
        && TALLY_COLUMNS.iter().all(|c| {
            names
                .iter()
                .any(|n| n.trim_start_matches('\u{feff}').trim() == *c)
        })
}

/// Reads a tally CSV into `agg`. Every problem names the file, line, column, the value and
/// what was expected; a cell counted twice in one file is an error.
pub fn fold_tally<R: Read>(
    rules: &Resolved,
    source: &str,
    input: R,
    agg: &mut Aggregate,
) -> Result<(), InputError> {
    let (input, lines) = LineCounted::new(input);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rec = csv::StringRecord::new();
    let at = header(&mut csv, &mut rec, source, &lines)?;
    let mut rows = TallyRows {
        rules,
        source,
        at,
        // Votes already in the state, then those of this file too (never past MAX_COUNT).
        votes_so_far: wide_sum(&agg.counts),
        first_line: HashMap::new(),
        local: vec![0u64; agg.counts.len()],
    };
    while let Some(line) = next_row(&mut csv, &mut rec, source, &lines, 5)? {
        rows.add(&rec, line)?;
    }
    credit(rules, &rows.local, agg);
    agg.sources.push(source.to_string());
    Ok(())
}

/// The column of each of [`TALLY_COLUMNS`], from the header row.
fn header<R: Read>(
    csv: &mut csv::Reader<R>,
    rec: &mut csv::StringRecord,
    source: &str,
    lines: &crate::csv_lines::Lines,
) -> Result<[usize; 5], InputError> {
    if !csv
        .read_record(rec)
        .map_err(|e| csv_error(source, lines, e))?
    {
        return Err(InputError::new(
            source,
            "is empty, expected the header unit,group,criterion,option,count",
        ));
    }
    let mut at = [usize::MAX; 5];
    for (i, name) in rec.iter().enumerate() {
        let name = name.trim_start_matches('\u{feff}').trim();
        match TALLY_COLUMNS.iter().position(|c| *c == name) {
            Some(k) if at[k] == usize::MAX => at[k] = i,
            _ => {
                return Err(InputError::new(
                    source,
                    format!("{} is not a tally column (or appears twice), expected the header unit,group,criterion,option,count", quoted(name)),
                )
                .at_line(1)
                .at_column(i as u64 + 1))
            }
        }
    }
    if let Some(k) = at.iter().position(|i| *i == usize::MAX) {
        return Err(InputError::new(
            source,
            format!(
                "column {:?} is missing, expected the header unit,group,criterion,option,count",
                TALLY_COLUMNS[k]
            ),
        )
        .at_line(1));
    }
    Ok(at)
}

/// The rows of one tally file, checked and counted into `local` (laid out as the
/// state's counts).
struct TallyRows<'a> {
    rules: &'a Resolved,
    source: &'a str,
    at: [usize; 5],
    votes_so_far: u128,
    first_line: HashMap<usize, u64>,
    local: Vec<u64>,
}

impl TallyRows<'_> {
    fn add(&mut self, rec: &csv::StringRecord, line: u64) -> Result<(), InputError> {
        let (rules, source, at) = (self.rules, self.source, self.at);
        let cell = |k: usize| rec.get(at[k]).unwrap_or("").trim();
        let err = |k: usize, msg: String| {
            InputError::new(source, msg)
                .at_line(line)
                .at_column(at[k] as u64 + 1)
                .in_field(format!("column {:?}", TALLY_COLUMNS[k]))
        };
        let find = |k: usize, list: &[String], what: &str| -> Result<usize, InputError> {
            let v = cell(k);
            list.iter().position(|x| x == v).ok_or_else(|| {
                err(
                    k,
                    format!(
                        "{} is not {what}, expected one of: {}",
                        quoted(v),
                        list.join(", ")
                    ),
                )
            })
        };
        let u = find(0, &rules.units, "a unit of the grid")?;
        let g = find(1, &rules.groups, "a respondent group")?;
        let c = find(2, &rules.criteria, "a criterion of the grid")?;
        let codes: Vec<String> = rules.options.iter().map(|o| o.code.clone()).collect();
        let o = find(3, &codes, "an option of the scale")?;
        let count: u64 = cell(4).parse().map_err(|_| {
            err(
                4,
                format!(
                    "{} is not a count, expected a whole number ≥ 0 (at most {MAX_COUNT})",
                    quoted(cell(4))
                ),
            )
        })?;
        self.votes_so_far += u128::from(count);
        if self.votes_so_far > u128::from(MAX_COUNT) {
            return Err(err(
                4,
                format!(
                    "{count} makes the votes read so far add up to {}, expected a total of at most {MAX_COUNT}",
                    self.votes_so_far
                ),
            ));
        }
        let (ng, nc, no) = (rules.groups.len(), rules.criteria.len(), codes.len());
        let idx = ((u * ng + g) * nc + c) * no + o;
        if let Some(prev) = self.first_line.insert(idx, line) {
            return Err(err(
                0,
                format!(
                    "{}/{}/{}/{} is counted twice (first on line {prev}), expected each cell once per file",
                    rules.units[u], rules.groups[g], rules.criteria[c], codes[o]
                ),
            ));
        }
        self.local[idx] = count;
        Ok(())
    }
}

/// Adds a file's counts to the state, with its raters: per unit × group, the most votes
/// on one criterion (and the most 不了解), and every counted vote.
fn credit(rules: &Resolved, local: &[u64], agg: &mut Aggregate) {
    let (nu, ng, nc, no) = (
        rules.units.len(),
        rules.groups.len(),
        rules.criteria.len(),
        rules.options.len(),
    );
    for u in 0..nu {
        for g in 0..ng {
            let (mut most_counted, mut most_other, mut votes) = (0u64, 0u64, 0u64);
            for c in 0..nc {
                let base = ((u * ng + g) * nc + c) * no;
                let (mut counted, mut other) = (0u64, 0u64);
                for (o, opt) in rules.options.iter().enumerate() {
                    if opt.counted {
                        counted += local[base + o];
                    } else {
                        other += local[base + o];
                    }
                }
                most_counted = most_counted.max(counted);
                most_other = most_other.max(other);
                votes += counted;
            }
            let ug = u * ng + g;
            agg.rated[ug] += most_counted;
            agg.unrated[ug] += most_other;
            agg.tally_votes[ug] += votes;
        }
    }
    for (a, b) in agg.counts.iter_mut().zip(local) {
        *a += b;
    }
    agg.ballots.tally_votes += local.iter().sum::<u64>();
}
