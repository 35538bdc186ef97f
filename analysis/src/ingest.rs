//! 计票: turning ballots (wide CSV rows or JSON ballots) into an [`Aggregate`].
//!
//! The CSV path streams: the header is resolved to column meanings once ([`CsvLayout`]),
//! each row is read into one reused `ByteRecord`, its cells are checked against the form
//! exactly as [`Ballot::problems`] checks a ballot (same messages, with file, line and
//! column), and the row is folded into the histograms and moments. Nothing per ballot is
//! kept but a 16-byte fingerprint for duplicate detection ([`Dedup`]).
//!
//! What happens to a row, in order, each outcome counted in [`crate::aggregate::Accounting`]:
//! 1. a response_id already read with the same content is a duplicate (kept once); with
//!    other content it is an error naming both places;
//! 2. a ballot with no counted answer in the grid is invalid (`blank`), then the rules'
//!    validity checks (`all_same`, `all_top`, caps by name);
//! 3. empty cells of a ballot that is not blank take the rules' default for a missing
//!    rating, if there is one;
//! 4. careless flags: straight-lining (two or more answered cells, all one option) and
//!    too fast (faster than the threshold, when it is known while reading); with
//!    `careless.exclude` a flagged ballot is counted as excluded and not folded;
//! 5. every answered cell is counted; counted answers add to the moments.
//!
//! Content identity: two rows are "the same ballot" when every column but `duration_s`
//! (which is derived) holds the same value, with text compared after undoing the
//! spreadsheet neutralization and numbers compared as numbers, so a ballot exported once
//! as CSV and once as JSON is recognized as one.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::sync::Mutex;

use xxhash_rust::xxh3::xxh3_64;

use crate::aggregate::Aggregate;
use crate::ballot::{answer_problems, Answer, Ballot};
use crate::csv_lines::LineCounted;
use crate::error::{quoted, InputError};
use crate::form::{Form, Item, ItemKind};
use crate::rules::{Resolved, TooFast};
use crate::time::parse_rfc3339;
use crate::wide_csv::{columns, csv_error, resolve_header, unneutralize, Column, META_COLUMNS};

/// Marks an empty grid cell in a decoded row.
const EMPTY: u8 = u8::MAX;

/// A hasher for keys that are already hashes.
#[derive(Default)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = x;
    }
}

/// What [`Dedup::check`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// A new response_id.
    New,
    /// Seen before with the same content.
    Duplicate,
    /// Seen before with other content.
    Conflict,
}

/// 重复票检测: response_id fingerprint → content fingerprint, shared by the threads of one
/// run. 16 bytes per ballot (64-bit hashes; two different ids collide with probability
/// about n²/2⁶⁵, 3·10⁻⁸ for a million ballots).
#[derive(Default)]
pub struct Dedup {
    seen: Mutex<HashMap<u64, u64, BuildHasherDefault<PassThrough>>>,
}

impl Dedup {
    /// Records a ballot and says whether it was seen before.
    pub fn check(&self, id_hash: u64, content_hash: u64) -> Seen {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        match seen.get(&id_hash) {
            None => {
                seen.insert(id_hash, content_hash);
                Seen::New
            }
            Some(h) if *h == content_hash => Seen::Duplicate,
            Some(_) => Seen::Conflict,
        }
    }
}

/// The fingerprint of a response_id.
pub fn id_hash(id: &str) -> u64 {
    xxh3_64(id.as_bytes())
}

/// What a reading pass does with the ballots that pass the checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Only note completion times (to find the median before excluding too-fast ballots).
    Durations,
    /// Fold everything.
    Fold,
}

/// One ballot decoded for folding; buffers are reused from row to row.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The response_id.
    pub id: String,
    /// Its fingerprint.
    pub id_hash: u64,
    /// The fingerprint of everything but duration_s.
    pub content_hash: u64,
    /// The group's index.
    pub group: usize,
    /// Completion time in whole seconds (rounded), when both times are valid.
    pub duration: Option<u64>,
    /// Option index per unit × criterion of the scored grid, or `u8::MAX` when empty.
    pub cells: Vec<u8>,
    /// The canonical content that `content_hash` is the fingerprint of (a reused buffer).
    canon: Vec<u8>,
}

/// A conflicting duplicate: the same response_id with other content.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    /// The response_id.
    pub id: String,
}

/// One reading run: the form, the rules, and the duplicate set shared by every input and
/// thread of the run.
pub struct Session<'a> {
    /// The form.
    pub form: &'a Form,
    /// The rules.
    pub rules: &'a Resolved,
    pass: Pass,
    too_fast: Option<f64>,
    dedup: Dedup,
    top: Option<usize>,
}

impl<'a> Session<'a> {
    /// A run; `too_fast` is the threshold in seconds when it is known before reading.
    pub fn new(form: &'a Form, rules: &'a Resolved, pass: Pass, too_fast: Option<f64>) -> Self {
        let top = rules
            .options
            .iter()
            .enumerate()
            .filter(|(_, o)| o.counted)
            .max_by(|a, b| a.1.points.total_cmp(&b.1.points))
            .map(|(i, _)| i);
        Session {
            form,
            rules,
            pass,
            too_fast,
            dedup: Dedup::default(),
            top,
        }
    }

    /// The too-fast threshold known while reading: a fixed number of seconds from the
    /// rules, or the one passed in (half the median from an earlier pass).
    pub fn threshold(&self) -> Option<f64> {
        match self.rules.rules.careless.too_fast {
            TooFast::Seconds(s) => Some(s),
            TooFast::Named(_) => self.too_fast,
        }
    }

    /// An empty state for this run.
    pub fn empty(&self) -> Aggregate {
        Aggregate::new(&self.form.id, &self.form.version, self.rules)
    }

    /// A fresh row buffer.
    pub fn row(&self) -> Row {
        Row {
            cells: vec![EMPTY; self.rules.units.len() * self.rules.criteria.len()],
            ..Row::default()
        }
    }

    /// Decodes a checked [`Ballot`] (from a JSON export) into `row`.
    pub fn decode_ballot(&self, b: &Ballot, row: &mut Row) {
        let form = self.form;
        let mut h = std::mem::take(&mut row.canon);
        h.clear();
        row.cells.fill(EMPTY);
        let nc = self.rules.criteria.len();
        for (_, col) in columns(form) {
            match col {
                Column::Meta(i) => {
                    let v = match i {
                        0 => &b.id,
                        1 => &b.form_id,
                        2 => &b.form_version,
                        3 => &b.device_id,
                        4 => &b.group,
                        5 => &b.lang,
                        6 => &b.started_at,
                        7 => &b.submitted_at,
                        _ => continue,
                    };
                    field(&mut h, v.as_bytes());
                }
                Column::Item(item) => {
                    let text = match b.answers.get(&item.id) {
                        None => String::new(),
                        Some(Answer::Str(s)) => s.clone(),
                        Some(Answer::Number(x)) => format!("{x}"),
                        Some(Answer::Codes(c)) => c.join(" "),
                        Some(Answer::Grid(_)) => String::new(),
                    };
                    field(&mut h, text.as_bytes());
                }
                Column::Cell {
                    item,
                    unit,
                    criterion,
                } => {
                    let code = match b.answers.get(&item.id) {
                        Some(Answer::Grid(g)) => g.get(unit).and_then(|r| r.get(criterion)),
                        _ => None,
                    };
                    let code = code.map(String::as_str).unwrap_or("");
                    field(&mut h, code.as_bytes());
                    if item.id == self.rules.item && !code.is_empty() {
                        let u = self.rules.units.iter().position(|x| x == unit);
                        let c = self.rules.criteria.iter().position(|x| x == criterion);
                        let o = self.rules.options.iter().position(|o| o.code == code);
                        if let (Some(u), Some(c), Some(o)) = (u, c, o) {
                            row.cells[u * nc + c] = o as u8;
                        }
                    }
                }
            }
        }
        row.id.clear();
        row.id.push_str(&b.id);
        row.id_hash = id_hash(&b.id);
        row.content_hash = xxh3_64(&h);
        row.canon = h;
        row.group = self
            .rules
            .groups
            .iter()
            .position(|g| *g == b.group)
            .unwrap_or(0);
        row.duration = b.duration_s().map(|d| d.round().max(0.0) as u64);
    }

    /// Applies duplicate detection, validity, careless flags, and folds the row.
    pub fn accept(&self, row: &mut Row, agg: &mut Aggregate) -> Result<(), Conflict> {
        agg.ballots.total += 1;
        match self.dedup.check(row.id_hash, row.content_hash) {
            Seen::New => {}
            Seen::Duplicate => {
                agg.ballots.duplicates += 1;
                return Ok(());
            }
            Seen::Conflict => {
                return Err(Conflict { id: row.id.clone() });
            }
        }
        let g = row.group;
        agg.returned[g] += 1;
        if let Some(reason) = self.invalid_reason(row) {
            *agg.ballots.invalid.entry(reason).or_default() += 1;
            return Ok(());
        }
        agg.valid[g] += 1;
        if let Some(d) = row.duration {
            *agg.durations.entry(d).or_default() += 1;
        }
        if self.pass == Pass::Durations {
            return Ok(());
        }
        let careless = &self.rules.rules.careless;
        let straight = careless.straight_lining && self.straight_lined(row);
        let fast = match (self.threshold(), row.duration) {
            (Some(t), Some(d)) => (d as f64) < t,
            _ => false,
        };
        agg.ballots.straight_lining += u64::from(straight);
        agg.ballots.too_fast += u64::from(fast);
        if careless.exclude && (straight || fast) {
            let reason = if fast { "too_fast" } else { "straight_lining" };
            *agg.ballots.excluded.entry(reason.into()).or_default() += 1;
            agg.excluded[g] += 1;
            return Ok(());
        }
        if let Some(m) = self.rules.missing {
            for cell in row.cells.iter_mut() {
                if *cell == EMPTY {
                    *cell = m as u8;
                }
            }
        }
        self.fold(row, agg);
        Ok(())
    }

    fn counted(&self, o: u8) -> bool {
        o != EMPTY && self.rules.options[o as usize].counted
    }

    fn invalid_reason(&self, row: &Row) -> Option<String> {
        let v = &self.rules.rules.validity;
        let mut counted = row.cells.iter().copied().filter(|&o| self.counted(o));
        let Some(first) = counted.next() else {
            return Some("blank".into());
        };
        let nc = self.rules.criteria.len();
        let n_counted = 1 + counted.clone().count();
        if v.all_same && n_counted >= 2 && counted.clone().all(|o| o == first) {
            return Some("all_same".into());
        }
        if v.all_top
            && n_counted >= 2
            && Some(first as usize) == self.top
            && counted.all(|o| o == first)
        {
            return Some("all_top".into());
        }
        for (i, cap) in v.caps.iter().enumerate() {
            let c = match &cap.criterion {
                Some(id) => self.rules.criteria.iter().position(|x| x == id)?,
                None => 0,
            };
            let (mut rated, mut matching) = (0u64, 0u64);
            for u in 0..self.rules.units.len() {
                let o = row.cells[u * nc + c];
                if !self.counted(o) {
                    continue;
                }
                rated += 1;
                let opt = &self.rules.options[o as usize];
                let hit = if !cap.options.is_empty() {
                    cap.options.contains(&opt.code)
                } else if let Some(p) = cap.points_at_least {
                    opt.points >= p
                } else if let Some(p) = cap.points_below {
                    opt.points < p
                } else {
                    false
                };
                matching += u64::from(hit);
            }
            let over = cap.at_most.is_some_and(|m| matching > m)
                || cap
                    .at_most_share
                    .is_some_and(|s| matching > s.floor_of(rated))
                || cap.at_least.is_some_and(|m| matching < m);
            if over {
                return Some(cap.name.clone().unwrap_or_else(|| format!("cap{}", i + 1)));
            }
        }
        None
    }

    fn straight_lined(&self, row: &Row) -> bool {
        let mut answered = row.cells.iter().copied().filter(|&o| o != EMPTY);
        let Some(first) = answered.next() else {
            return false;
        };
        let mut n = 1;
        for o in answered {
            if o != first {
                return false;
            }
            n += 1;
        }
        n >= 2
    }

    fn fold(&self, row: &Row, agg: &mut Aggregate) {
        let (nu, nc) = (self.rules.units.len(), self.rules.criteria.len());
        let no = self.rules.options.len();
        let ng = self.rules.groups.len();
        let g = row.group;
        let mut scores = [None; 32];
        for u in 0..nu {
            let ug = u * ng + g;
            let mut any = false;
            for (c, score) in scores.iter_mut().enumerate().take(nc) {
                let o = row.cells[u * nc + c];
                *score = None;
                if o == EMPTY {
                    continue;
                }
                agg.counts[(ug * nc + c) * no + o as usize] += 1;
                let opt = &self.rules.options[o as usize];
                if opt.counted {
                    *score = Some(opt.points);
                    any = true;
                }
            }
            if any {
                agg.rated[ug] += 1;
                agg.add_row(ug, &scores[..nc]);
            } else {
                agg.unrated[ug] += 1;
            }
        }
    }
}

/// Adds one length-prefixed field to a content fingerprint.
fn field(h: &mut Vec<u8>, bytes: &[u8]) {
    h.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    h.extend_from_slice(bytes);
}

/// What one CSV column holds, for the scorer.
#[derive(Debug, Clone, Copy)]
enum Col<'f> {
    Meta(usize),
    Scored { cell: usize },
    OtherCell(&'f Item),
    Item(&'f Item),
}

/// A wide CSV header resolved once against the form and rules.
pub struct CsvLayout<'f> {
    source: String,
    names: Vec<String>,
    cols: Vec<Col<'f>>,
    /// The CSV index of each of the form's columns, in form order.
    form_order: Vec<usize>,
}

impl<'f> CsvLayout<'f> {
    /// Resolves a header row; errors name the file, line 1, the column and what was expected.
    pub fn new(
        session: &Session<'f>,
        source: &str,
        header: &csv::ByteRecord,
    ) -> Result<CsvLayout<'f>, InputError> {
        let form = session.form;
        let rules = session.rules;
        let known = columns(form);
        let raw: Vec<String> = header
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        let raw: Vec<&str> = raw.iter().map(String::as_str).collect();
        let order = resolve_header(form, &known, source, &raw)?;
        let mut names = Vec::with_capacity(order.len());
        let mut cols = Vec::with_capacity(order.len());
        let mut form_order = vec![usize::MAX; known.len()];
        for (i, &k) in order.iter().enumerate() {
            form_order[k] = i;
            let name = known[k].0.clone();
            let col = match known[k].1 {
                Column::Meta(m) => Col::Meta(m),
                Column::Item(item) => Col::Item(item),
                Column::Cell {
                    item,
                    unit,
                    criterion,
                } if item.id == rules.item => {
                    let u = rules.units.iter().position(|x| x == unit).unwrap_or(0);
                    let c = rules
                        .criteria
                        .iter()
                        .position(|x| x == criterion)
                        .unwrap_or(0);
                    Col::Scored {
                        cell: u * rules.criteria.len() + c,
                    }
                }
                Column::Cell { item, .. } => Col::OtherCell(item),
            };
            names.push(name);
            cols.push(col);
        }
        Ok(CsvLayout {
            source: source.to_string(),
            names,
            cols,
            form_order,
        })
    }

    /// How many fields every row must have.
    pub fn width(&self) -> usize {
        self.cols.len()
    }

    /// The file name used in errors.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Decodes one CSV row into `row`, checking every cell as [`Ballot::problems`] does.
    pub fn decode(
        &self,
        session: &Session<'_>,
        rec: &csv::ByteRecord,
        line: u64,
        row: &mut Row,
    ) -> Result<(), InputError> {
        if rec.len() != self.cols.len() {
            return Err(InputError::new(
                &self.source,
                format!(
                    "the row has {} fields, expected {} like the header",
                    rec.len(),
                    self.cols.len()
                ),
            )
            .at_line(line));
        }
        let form = session.form;
        let rules = session.rules;
        let err = |i: usize, msg: String| {
            InputError::new(&self.source, msg)
                .at_line(line)
                .at_column(i as u64 + 1)
                .in_field(format!("column {}", quoted(&self.names[i])))
        };
        let text = |i: usize| -> Result<&str, InputError> {
            let raw = &rec[i];
            std::str::from_utf8(raw).map_err(|e| {
                err(
                    i,
                    format!("is not UTF-8 text ({e}); expected a file saved as \"CSV UTF-8\""),
                )
            })
        };
        row.cells.fill(EMPTY);
        let mut h = std::mem::take(&mut row.canon);
        h.clear();
        let (mut started, mut submitted) = (None, None);
        for &i in &self.form_order {
            match self.cols[i] {
                Col::Meta(m) => {
                    if m == 8 {
                        // duration_s is derived from the two times.
                        continue;
                    }
                    let v = unneutralize(text(i)?);
                    field(&mut h, v.as_bytes());
                    match META_COLUMNS[m] {
                        "response_id" => {
                            if v.trim().is_empty() {
                                return Err(err(
                                    i,
                                    "is empty, expected the ballot's unique id".into(),
                                ));
                            }
                            row.id.clear();
                            row.id.push_str(v);
                            row.id_hash = id_hash(v);
                        }
                        "form_id" if v != form.id => {
                            return Err(err(
                                i,
                                format!(
                                    "{} is not this form, expected {}",
                                    quoted(v),
                                    quoted(&form.id)
                                ),
                            ))
                        }
                        "form_version" if v != form.version => {
                            return Err(err(
                                i,
                                format!(
                                    "{} is not this form's version, expected {}",
                                    quoted(v),
                                    quoted(&form.version)
                                ),
                            ))
                        }
                        "device_id" if v.trim().is_empty() => {
                            return Err(err(i, "is empty, expected the device's id".into()))
                        }
                        "group" => match rules.groups.iter().position(|g| g == v) {
                            Some(g) => row.group = g,
                            None => {
                                return Err(err(
                                    i,
                                    format!(
                                        "{} is not a respondent group, expected one of: {}",
                                        quoted(v),
                                        rules.groups.join(", ")
                                    ),
                                ))
                            }
                        },
                        "lang" if !form.languages.iter().any(|l| l == v) => {
                            return Err(err(
                                i,
                                format!(
                                    "{} is not a language of the form, expected one of: {}",
                                    quoted(v),
                                    form.languages.join(", ")
                                ),
                            ))
                        }
                        "started_at" | "submitted_at" => {
                            let Some(t) = parse_rfc3339(v) else {
                                return Err(err(
                                    i,
                                    format!(
                                        "{} is not an RFC 3339 time such as 2026-11-22T09:30:00+08:00",
                                        quoted(v)
                                    ),
                                ));
                            };
                            if m == 6 {
                                started = Some(t);
                            } else {
                                submitted = Some((t, i));
                            }
                        }
                        _ => {}
                    }
                }
                Col::Scored { cell } => {
                    let raw = &rec[i];
                    if raw.is_empty() {
                        field(&mut h, b"");
                        continue;
                    }
                    let code: &[u8] = if raw[0] == b'\'' {
                        unneutralize(text(i)?).as_bytes()
                    } else {
                        raw
                    };
                    field(&mut h, code);
                    match rules.options.iter().position(|o| o.code.as_bytes() == code) {
                        Some(o) => row.cells[cell] = o as u8,
                        None => {
                            let codes: Vec<&str> =
                                rules.options.iter().map(|o| o.code.as_str()).collect();
                            return Err(err(
                                i,
                                format!(
                                    "{} is not an option, expected one of: {}",
                                    quoted(&String::from_utf8_lossy(code)),
                                    codes.join(", ")
                                ),
                            ));
                        }
                    }
                }
                Col::OtherCell(item) => {
                    let v = unneutralize(text(i)?);
                    field(&mut h, v.as_bytes());
                    let codes = item.codes(form);
                    if !v.is_empty() && !codes.contains(&v) {
                        return Err(err(
                            i,
                            format!(
                                "{} is not an option, expected one of: {}",
                                quoted(v),
                                codes.join(", ")
                            ),
                        ));
                    }
                }
                Col::Item(item) => {
                    let numeric = matches!(item.kind, ItemKind::Number { .. });
                    let raw = text(i)?;
                    let v = if numeric { raw } else { unneutralize(raw) };
                    if v.is_empty() {
                        field(&mut h, b"");
                        continue;
                    }
                    let answer = match &item.kind {
                        ItemKind::Multi { .. } => {
                            Answer::Codes(v.split(' ').map(str::to_string).collect())
                        }
                        ItemKind::Number { .. } => match v.trim().parse::<f64>() {
                            Ok(x) if x.is_finite() => Answer::Number(x),
                            _ => {
                                return Err(err(
                                    i,
                                    format!(
                                        "{} is not a number, expected a number such as 12",
                                        quoted(v)
                                    ),
                                ))
                            }
                        },
                        _ => Answer::Str(v.to_string()),
                    };
                    if let Answer::Number(x) = answer {
                        field(&mut h, format!("{x}").as_bytes());
                    } else {
                        field(&mut h, v.as_bytes());
                    }
                    if let Some(p) = answer_problems(form, item, &answer).into_iter().next() {
                        return Err(err(i, p));
                    }
                }
            }
        }
        row.content_hash = xxh3_64(&h);
        row.canon = h;
        row.duration = None;
        if let (Some(a), Some((b, i))) = (started, submitted) {
            if b < a {
                return Err(err(
                    i,
                    "is before started_at, expected a later time".to_string(),
                ));
            }
            row.duration = Some(((b - a) as f64 / 1000.0).round() as u64);
        }
        Ok(())
    }
}

/// Where a conflicting duplicate was found (the caller looks up where it was first read).
#[derive(Debug, Clone, PartialEq)]
pub enum FoldError {
    /// A bad input.
    Input(InputError),
    /// A response_id read before with other content, found here.
    Conflict {
        /// The response_id.
        id: String,
        /// The file.
        source: String,
        /// The line (CSV) or the JSON path (`[3]`).
        place: String,
    },
}

impl From<InputError> for FoldError {
    fn from(e: InputError) -> FoldError {
        FoldError::Input(e)
    }
}

/// Reads a whole wide CSV from `input`, one row at a time, into `agg`.
pub fn fold_csv<R: Read>(
    session: &Session<'_>,
    source: &str,
    input: R,
    agg: &mut Aggregate,
) -> Result<(), FoldError> {
    let (input, lines) = LineCounted::new(input);
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(input);
    let mut rec = csv::ByteRecord::new();
    if !csv
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(source, &lines, e))?
    {
        return Err(InputError::new(source, "is empty, expected a header row").into());
    }
    let layout = CsvLayout::new(session, source, &rec)?;
    let mut row = session.row();
    while csv
        .read_byte_record(&mut rec)
        .map_err(|e| csv_error(source, &lines, e))?
    {
        let line = lines.line_at(rec.position().map(|p| p.byte()).unwrap_or(0));
        layout.decode(session, &rec, line, &mut row)?;
        session
            .accept(&mut row, agg)
            .map_err(|c| FoldError::Conflict {
                id: c.id,
                source: source.to_string(),
                place: line.to_string(),
            })?;
    }
    agg.sources.push(source.to_string());
    Ok(())
}

/// Folds a block of whole CSV records (no header) that starts on line `first_line`.
pub fn fold_csv_block(
    session: &Session<'_>,
    layout: &CsvLayout<'_>,
    block: &[u8],
    first_line: u64,
    agg: &mut Aggregate,
    row: &mut Row,
) -> Result<(), FoldError> {
    let mut csv = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(block);
    let mut rec = csv::ByteRecord::new();
    let (mut counted_to, mut line) = (0usize, first_line);
    loop {
        match csv.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                return Err(InputError::new(layout.source(), e.to_string())
                    .at_line(line)
                    .into())
            }
        }
        // The csv crate may place a record's start on the line break before it.
        let mut pos = rec.position().map(|p| p.byte() as usize).unwrap_or(0);
        while pos < block.len() && matches!(block[pos], b'\r' | b'\n') {
            pos += 1;
        }
        if pos > counted_to {
            line += memchr::memchr_iter(b'\n', &block[counted_to..pos]).count() as u64;
            counted_to = pos;
        }
        layout.decode(session, &rec, line, row)?;
        session.accept(row, agg).map_err(|c| FoldError::Conflict {
            id: c.id,
            source: layout.source().to_string(),
            place: line.to_string(),
        })?;
    }
    Ok(())
}

/// Folds checked ballots (a JSON export) into `agg`.
pub fn fold_ballots(
    session: &Session<'_>,
    source: &str,
    ballots: &[Ballot],
    agg: &mut Aggregate,
) -> Result<(), FoldError> {
    let mut row = session.row();
    for (i, b) in ballots.iter().enumerate() {
        session.decode_ballot(b, &mut row);
        session
            .accept(&mut row, agg)
            .map_err(|c| FoldError::Conflict {
                id: c.id,
                source: source.to_string(),
                place: format!("[{i}]"),
            })?;
    }
    agg.sources.push(source.to_string());
    Ok(())
}

#[cfg(test)]
mod tests;
