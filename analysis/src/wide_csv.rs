//! The wide CSV export: one row per ballot, one column per answer, as README's "Exports" fixes it.
//!
//! `response_id,form_id,form_version,device_id,group,lang,started_at,submitted_at,duration_s`,
//! then the items in form order: `single`/`rating`/`text`/`number` → the item id; `multi` →
//! the item id with codes joined by a space; `appraisal` → one column `ITEM.UNIT.CRITERION`
//! per cell. Cells hold codes, not labels. UTF-8 with a BOM so that Excel and WPS show
//! Chinese right; RFC 4180 quoting with CRLF line ends.
//!
//! Spreadsheet safety (OWASP "CSV injection"): a text cell that begins with `=`, `+`, `-`,
//! `@`, tab or CR would be run as a formula, so it is written with a `'` in front. To keep
//! the export exactly reversible, a cell that already begins with one or more `'` followed
//! by one of those characters gets one more `'`; the reader removes exactly one `'` from a
//! cell of the form `'…'X` where X is a trigger, and leaves every other cell alone.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use crate::ballot::{Answer, Ballot, Grid};
use crate::csv_lines::{LineCounted, Lines};
use crate::error::{quoted, InputError};
use crate::form::{Form, Item, ItemKind};

/// The fixed columns before the answers.
pub const META_COLUMNS: [&str; 9] = [
    "response_id",
    "form_id",
    "form_version",
    "device_id",
    "group",
    "lang",
    "started_at",
    "submitted_at",
    "duration_s",
];

const UTF8_BOM: &str = "\u{feff}";

/// What one CSV column holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Column<'f> {
    /// One of [`META_COLUMNS`], by index.
    Meta(usize),
    /// A whole item's answer (single, multi, text, number, rating).
    Item(&'f Item),
    /// One cell of an appraisal grid.
    Cell {
        /// The appraisal item.
        item: &'f Item,
        /// The unit id.
        unit: &'f str,
        /// The criterion id.
        criterion: &'f str,
    },
}

impl Column<'_> {
    /// Whether the column holds numbers, which are written as they are.
    fn numeric(&self) -> bool {
        match self {
            Column::Meta(i) => META_COLUMNS[*i] == "duration_s",
            Column::Item(item) => matches!(item.kind, ItemKind::Number { .. }),
            Column::Cell { .. } => false,
        }
    }
}

/// The columns of `form`'s export, in order, with their header names.
pub fn columns(form: &Form) -> Vec<(String, Column<'_>)> {
    let mut out: Vec<(String, Column)> = META_COLUMNS
        .iter()
        .enumerate()
        .map(|(i, n)| (n.to_string(), Column::Meta(i)))
        .collect();
    for item in form.items() {
        match &item.kind {
            ItemKind::Appraisal {
                units, criteria, ..
            } => {
                for unit in units {
                    for c in criteria {
                        out.push((
                            format!("{}.{}.{}", item.id, unit, c.id),
                            Column::Cell {
                                item,
                                unit,
                                criterion: &c.id,
                            },
                        ));
                    }
                }
            }
            _ => out.push((item.id.clone(), Column::Item(item))),
        }
    }
    out
}

fn is_trigger(c: char) -> bool {
    matches!(c, '=' | '+' | '-' | '@' | '\t' | '\r')
}

/// Makes a text cell safe to open in a spreadsheet (see the module doc).
pub fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    let rest = cell.trim_start_matches('\'');
    if rest.chars().next().is_some_and(is_trigger) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// Undoes [`neutralize`] exactly.
pub fn unneutralize(cell: &str) -> &str {
    let rest = cell.trim_start_matches('\'');
    if rest.len() < cell.len() && rest.chars().next().is_some_and(is_trigger) {
        &cell[1..]
    } else {
        cell
    }
}

fn format_number(x: f64) -> String {
    // Rust prints the shortest text that parses back to the same f64.
    format!("{x}")
}

/// Writes ballots as wide CSV, one row at a time.
pub struct Writer<'f, W: Write> {
    form: &'f Form,
    columns: Vec<(String, Column<'f>)>,
    csv: csv::Writer<W>,
    row: Vec<String>,
}

impl<'f, W: Write> Writer<'f, W> {
    /// Starts an export: writes the BOM and the header row.
    pub fn new(form: &'f Form, mut out: W) -> std::io::Result<Writer<'f, W>> {
        out.write_all(UTF8_BOM.as_bytes())?;
        let csv = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(out);
        let columns = columns(form);
        let mut w = Writer {
            form,
            row: Vec::with_capacity(columns.len()),
            columns,
            csv,
        };
        let header: Vec<String> = w
            .columns
            .iter()
            .map(|(n, _)| neutralize(n).into_owned())
            .collect();
        w.csv.write_record(&header).map_err(into_io)?;
        Ok(w)
    }

    /// Writes one ballot's row.
    pub fn write(&mut self, b: &Ballot) -> std::io::Result<()> {
        self.row.clear();
        for (_, col) in &self.columns {
            let raw = match col {
                Column::Meta(i) => match META_COLUMNS[*i] {
                    "response_id" => b.id.clone(),
                    "form_id" => b.form_id.clone(),
                    "form_version" => b.form_version.clone(),
                    "device_id" => b.device_id.clone(),
                    "group" => b.group.clone(),
                    "lang" => b.lang.clone(),
                    "started_at" => b.started_at.clone(),
                    "submitted_at" => b.submitted_at.clone(),
                    _ => b
                        .duration_s()
                        .map(|d| format_number(d.round()))
                        .unwrap_or_default(),
                },
                Column::Item(item) => match b.answers.get(&item.id) {
                    None => String::new(),
                    Some(Answer::Str(s)) => s.clone(),
                    Some(Answer::Number(x)) => format_number(*x),
                    Some(Answer::Codes(codes)) => codes.join(" "),
                    Some(Answer::Grid(_)) => String::new(),
                },
                Column::Cell {
                    item,
                    unit,
                    criterion,
                } => match b.answers.get(&item.id) {
                    Some(Answer::Grid(g)) => g
                        .get(*unit)
                        .and_then(|row| row.get(*criterion))
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                },
            };
            let cell = if col.numeric() {
                raw
            } else {
                neutralize(&raw).into_owned()
            };
            self.row.push(cell);
        }
        self.csv.write_record(&self.row).map_err(into_io)
    }

    /// Flushes and gives the output back.
    pub fn finish(self) -> std::io::Result<W> {
        self.csv.into_inner().map_err(|e| e.into_error())
    }

    /// The form this writer exports.
    pub fn form(&self) -> &'f Form {
        self.form
    }
}

fn into_io(e: csv::Error) -> std::io::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

/// The whole export as a string (what the app offers for download).
pub fn to_string(form: &Form, ballots: &[Ballot]) -> String {
    let mut w = Writer::new(form, Vec::new()).expect("writing to memory cannot fail");
    for b in ballots {
        w.write(b).expect("writing to memory cannot fail");
    }
    let bytes = w.finish().expect("writing to memory cannot fail");
    String::from_utf8(bytes).expect("the writer only writes UTF-8")
}

/// Resolves a header row against the form's columns (`known`, from [`columns`]): for each
/// CSV column in order, its index in `known`. A leading BOM is dropped and spreadsheet
/// neutralization undone. Unknown, repeated and missing columns are errors at line 1 that
/// name the column and what was expected. Every CSV reader of ballots resolves its header
/// here, once, before the rows.
pub fn resolve_header(
    form: &Form,
    known: &[(String, Column<'_>)],
    source: &str,
    header: &[&str],
) -> Result<Vec<usize>, InputError> {
    let mut seen = vec![false; known.len()];
    let mut order = Vec::with_capacity(header.len());
    for (i, raw) in header.iter().enumerate() {
        // csv strips a leading BOM from the first header; strip it again in case a
        // tool doubled it.
        let name = unneutralize(if i == 0 {
            raw.trim_start_matches('\u{feff}')
        } else {
            raw
        });
        let err = |msg: String| {
            InputError::new(source, msg)
                .at_line(1)
                .at_column(i as u64 + 1)
                .in_field(format!("header {}", quoted(name)))
        };
        let Some(k) = known.iter().position(|(n, _)| n == name) else {
            return Err(err(format!(
                "unknown column, expected one of the {} columns of form {} version {} ({}, …)",
                known.len(),
                quoted(&form.id),
                quoted(&form.version),
                known
                    .iter()
                    .take(12)
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        if std::mem::replace(&mut seen[k], true) {
            return Err(err(
                "the column appears twice, expected each column once".into()
            ));
        }
        order.push(k);
    }
    let missing: Vec<&str> = known
        .iter()
        .zip(&seen)
        .filter(|(_, seen)| !**seen)
        .map(|((n, _), _)| n.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(InputError::new(
            source,
            format!(
                "{} column{} of form {} missing from the header: {}",
                missing.len(),
                if missing.len() == 1 { " is" } else { "s are" },
                quoted(&form.id),
                missing.join(", ")
            ),
        )
        .at_line(1));
    }
    Ok(order)
}

/// Reads wide CSV ballots one at a time, checking every cell against the form.
pub struct Reader<'f, R: Read> {
    form: &'f Form,
    source: String,
    csv: csv::Reader<LineCounted<R>>,
    lines: Lines,
    map: Vec<(String, Column<'f>)>,
    record: csv::StringRecord,
    line: u64,
}

impl<'f, R: Read> Reader<'f, R> {
    /// Reads the header and resolves every column once; `source` names the input in errors.
    pub fn new(form: &'f Form, source: &str, input: R) -> Result<Reader<'f, R>, InputError> {
        let (input, lines) = LineCounted::new(input);
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(input);
        let headers = csv
            .headers()
            .map_err(|e| csv_error(source, &lines, e))?
            .clone();
        let known = columns(form);
        let names: Vec<&str> = headers.iter().collect();
        let map = resolve_header(form, &known, source, &names)?
            .into_iter()
            .map(|k| known[k].clone())
            .collect();
        Ok(Reader {
            form,
            source: source.to_string(),
            csv,
            lines,
            map,
            record: csv::StringRecord::new(),
            line: 1,
        })
    }

    /// The next ballot, `None` at the end. Errors carry the file, line and column name.
    pub fn next_ballot(&mut self) -> Option<Result<Ballot, InputError>> {
        match self.csv.read_record(&mut self.record) {
            Err(e) => Some(Err(csv_error(&self.source, &self.lines, e))),
            Ok(false) => None,
            Ok(true) => {
                let line = self
                    .lines
                    .line_at(self.record.position().map(|p| p.byte()).unwrap_or(0));
                self.line = line;
                Some(self.parse_row(line))
            }
        }
    }

    /// The 1-based line of the row last returned by [`Reader::next_ballot`] (1 before any).
    pub fn line(&self) -> u64 {
        self.line
    }

    fn parse_row(&self, line: u64) -> Result<Ballot, InputError> {
        let form = self.form;
        let mut b = Ballot {
            id: String::new(),
            form_id: String::new(),
            form_version: String::new(),
            device_id: String::new(),
            group: String::new(),
            lang: String::new(),
            started_at: String::new(),
            submitted_at: String::new(),
            answers: BTreeMap::new(),
            access_code: None,
        };
        for ((name, col), raw) in self.map.iter().zip(self.record.iter()) {
            let cell = if col.numeric() {
                raw
            } else {
                unneutralize(raw)
            };
            let err = |msg: String| {
                InputError::new(&self.source, msg)
                    .at_line(line)
                    .in_field(format!("column {}", quoted(name)))
            };
            match col {
                Column::Meta(i) => {
                    let slot = match META_COLUMNS[*i] {
                        "response_id" => &mut b.id,
                        "form_id" => &mut b.form_id,
                        "form_version" => &mut b.form_version,
                        "device_id" => &mut b.device_id,
                        "group" => &mut b.group,
                        "lang" => &mut b.lang,
                        "started_at" => &mut b.started_at,
                        "submitted_at" => &mut b.submitted_at,
                        // duration_s is derived from the two times; a spreadsheet may reformat it.
                        _ => continue,
                    };
                    *slot = cell.to_string();
                }
                _ if cell.is_empty() => {}
                Column::Item(item) => {
                    let answer = match &item.kind {
                        ItemKind::Multi { .. } => {
                            Answer::Codes(cell.split(' ').map(str::to_string).collect())
                        }
                        ItemKind::Number { .. } => match cell.trim().parse::<f64>() {
                            Ok(x) if x.is_finite() => Answer::Number(x),
                            _ => {
                                return Err(err(format!(
                                    "{} is not a number, expected a number such as 12",
                                    quoted(cell)
                                )))
                            }
                        },
                        _ => Answer::Str(cell.to_string()),
                    };
                    b.answers.insert(item.id.clone(), answer);
                }
                Column::Cell {
                    item,
                    unit,
                    criterion,
                } => {
                    let entry = b
                        .answers
                        .entry(item.id.clone())
                        .or_insert_with(|| Answer::Grid(Grid::new()));
                    if let Answer::Grid(g) = entry {
                        g.entry(unit.to_string())
                            .or_default()
                            .insert(criterion.to_string(), cell.to_string());
                    }
                }
            }
        }
        if let Some(p) = b.problems(form).into_iter().next() {
            let column = column_of(&p.path);
            return Err(InputError::new(&self.source, p.message)
                .at_line(line)
                .in_field(format!("column {}", quoted(&column))));
        }
        Ok(b)
    }
}

/// The CSV column that a ballot problem path (`answers.appr: gaj.overall: …`) points at.
fn column_of(path: &str) -> String {
    match path {
        "id" => "response_id".into(),
        p => p.strip_prefix("answers.").unwrap_or(p).to_string(),
    }
}

impl<R: Read> Iterator for Reader<'_, R> {
    type Item = Result<Ballot, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ballot()
    }
}

/// Reads the next row of a small fixed-width table (tallies, components, deductions) into
/// `rec`: `Some(line)` with its true line, `None` at the end; a csv error or a row that is
/// not `width` fields wide is an error naming the file and the line.
pub fn next_row<R: Read>(
    csv: &mut csv::Reader<LineCounted<R>>,
    rec: &mut csv::StringRecord,
    source: &str,
    lines: &Lines,
    width: usize,
) -> Result<Option<u64>, InputError> {
    if !csv
        .read_record(rec)
        .map_err(|e| csv_error(source, lines, e))?
    {
        return Ok(None);
    }
    let line = lines.line_at(rec.position().map(|p| p.byte()).unwrap_or(0));
    if rec.len() != width {
        return Err(InputError::new(
            source,
            format!(
                "the row has {} fields, expected {width} like the header",
                rec.len()
            ),
        )
        .at_line(line));
    }
    Ok(Some(line))
}

/// A csv crate error as an [`InputError`] with the true line.
pub fn csv_error(source: &str, lines: &Lines, e: csv::Error) -> InputError {
    if let csv::ErrorKind::Io(io) = e.kind() {
        if let Some(q) = crate::csv_lines::unterminated_quote(io) {
            return InputError::new(source, crate::csv_lines::UNTERMINATED_QUOTE).at_line(q.line);
        }
    }
    let line = e.position().map(|p| lines.line_at(p.byte()));
    let msg = match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => {
            format!("the row has {len} fields, expected {expected_len} like the header")
        }
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "field {} is not UTF-8 text ({err}); save the file as \"CSV UTF-8\"",
            err.field() + 1
        ),
        _ => e.to_string(),
    };
    let err = InputError::new(source, msg);
    match line {
        Some(l) => err.at_line(l),
        None => err,
    }
}

/// Reads a whole wide CSV into memory (for small files; stream with [`Reader`] otherwise).
pub fn read_all(form: &Form, source: &str, input: impl Read) -> Result<Vec<Ballot>, InputError> {
    Reader::new(form, source, input)?.collect()
}

#[cfg(test)]
mod tests;
