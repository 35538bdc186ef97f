//! 计票表: the tally CSV of hand-counted paper ballots, `unit,group,criterion,option,count`,
//! one row per counted cell, folded into an [`Aggregate`] like ballots are.
//!
//! A tally is a histogram already, so it adds to the counts directly. It has no ballots:
//! nothing per ballot can be checked (validity caps, careless flags) or computed (Cronbach's
//! alpha, covariances between criteria); the scorer says so where it matters. For the
//! number of raters of a unit, a tally counts the criterion with the most votes.

use std::collections::HashMap;
use std::io::Read;

use crate::aggregate::{add, add_all, Aggregate};
use crate::csv_lines::LineCounted;
use crate::error::InputError;
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
    if !csv
        .read_record(&mut rec)
        .map_err(|e| csv_error(source, &lines, e))?
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
                    format!("{name:?} is not a tally column (or appears twice), expected the header unit,group,criterion,option,count"),
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
    let (nu, ng, nc, no) = (
        rules.units.len(),
        rules.groups.len(),
        rules.criteria.len(),
        rules.options.len(),
    );
    let mut local = vec![0u64; nu * ng * nc * no];
    // Every sum below is at most the file's total, so checking the total keeps them all
    // from wrapping.
    let mut total = 0u64;
    let mut first_line: HashMap<usize, u64> = HashMap::new();
    while let Some(line) = next_row(&mut csv, &mut rec, source, &lines, 5)? {
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
                    format!("{v:?} is not {what}, expected one of: {}", list.join(", ")),
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
                format!("{:?} is not a count, expected a whole number ≥ 0", cell(4)),
            )
        })?;
        let idx = ((u * ng + g) * nc + c) * no + o;
        if let Some(prev) = first_line.insert(idx, line) {
            return Err(err(
                0,
                format!(
                    "{}/{}/{}/{} is counted twice (first on line {prev}), expected each cell once per file",
                    cell(0),
                    cell(1),
                    cell(2),
                    cell(3)
                ),
            ));
        }
        total = total.checked_add(count).ok_or_else(|| {
            err(
                4,
                format!(
                    "{count} brings the file's votes past {}, expected counts that add up to less",
                    u64::MAX
                ),
            )
        })?;
        local[idx] += count;
    }
    let (mut rated, mut unrated, mut tally_votes) = (vec![], vec![], vec![]);
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
            rated.push(most_counted);
            unrated.push(most_other);
            tally_votes.push(votes);
        }
    }
    // Added into a copy: a state whose counts add up past u64::MAX is refused whole (the
    // scorer sums them in many ways, and a saved part holding it would not read back).
    let mut sum = agg.clone();
    add_all(&mut sum.counts, &local)
        .and_then(|()| add_all(&mut sum.rated, &rated))
        .and_then(|()| add_all(&mut sum.unrated, &unrated))
        .and_then(|()| add_all(&mut sum.tally_votes, &tally_votes))
        .and_then(|()| add(&mut sum.ballots.tally_votes, total))
        .and_then(|()| sum.grand_total())
        .ok_or_else(|| {
            InputError::new(
                source,
                format!(
                    "its votes and the counts of the inputs before it add up to more than {}, expected fewer",
                    u64::MAX
                ),
            )
        })?;
    *agg = sum;
    agg.sources.push(source.to_string());
    Ok(())
}
