//! Reading scoring inputs from files (native builds only): which encoding and kind each
//! file is, the multi-core CSV path, the second pass for excluding too-fast ballots, and
//! the error for a conflicting duplicate that names both places.
//!
//! Encodings: every file Pingyi reads goes through [`open_text`] or [`read_text`]. UTF-8
//! (with or without a BOM) is read as it is; UTF-16 (little or big endian, with a BOM or
//! recognised by its zero bytes) is transcoded to UTF-8; anything else is refused by name
//! (GB18030/GBK from older Excel and WPS, Latin-1) with the command that converts it,
//! rather than misread as unknown columns or bad options.
//!
//! Large wide CSV files are cut into blocks of whole records on one thread and folded on
//! the others. The cut follows the csv crate's own quoting ([`QuoteTracker`]), so each
//! block holds exactly the records the one-thread reader reads; a quoted field still open
//! at the end of the file is an error naming the line where it opened, in both readers.
//! Any error found on the multi-core path makes the whole run read again on one thread,
//! whose result (its first error in file order) is the one given: the two paths cannot
//! disagree about what is wrong.
//!
//! Excluding too-fast ballots against half the median needs the median first: then the
//! ballot files are read twice, once for the completion times and once to fold. Saved
//! parts (`pingyi aggregate`) applied their own threshold when they were made; their
//! completion times still join the median used for the files read now.
//!
//! Ballots may also come from a [`BallotSource`] (the command line reads a collection
//! database through one; this library stays free of database code). A source is read
//! like a JSON export: each ballot checked against the form, folded with the same
//! duplicate accounting, and read again for the durations pass when that is needed.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Mutex;

use encoding_rs_io::DecodeReaderBytesBuilder;

use crate::aggregate::Aggregate;
use crate::ballot::Ballot;
use crate::csv_lines::{QuoteTracker, UNTERMINATED_QUOTE};
use crate::error::{quoted, InputError};
use crate::form::Form;
use crate::ingest::{fold_ballots, fold_csv, fold_csv_block, CsvLayout, FoldError, Pass, Session};
use crate::rules::{Resolved, TooFast, TooFastName};
use crate::tally::{fold_tally, is_tally_header};

/// Where the multi-core path starts and how it cuts: fixed for the command line, small in
/// tests so that small generated files exercise every cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// CSV files smaller than this are read on one thread.
    pub parallel_from: u64,
    /// The size of a block of records handed to a folding thread (a block holds at least
    /// one whole record, so it may be larger).
    pub block: usize,
}

impl Default for Tuning {
    fn default() -> Tuning {
        Tuning {
            parallel_from: 4 << 20,
            block: 1 << 20,
        }
    }
}

/// How many bytes of a file decide its encoding and kind.
const HEAD: usize = 64 << 10;

/// The encoding of a text input, as far as Pingyi reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// UTF-8, with or without a BOM: read as it is.
    Utf8,
    /// UTF-16 little endian (Windows' "Unicode text"), with or without a BOM: transcoded.
    Utf16Le,
    /// UTF-16 big endian, with or without a BOM: transcoded.
    Utf16Be,
}

/// Tells the encoding of a file from its first bytes, refusing what cannot be read with
/// a message that names the encoding it looks like and the fix.
pub fn detect_encoding(name: &str, head: &[u8]) -> Result<Encoding, InputError> {
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Ok(Encoding::Utf8);
    }
    if head.starts_with(b"\xFF\xFE") {
        return Ok(Encoding::Utf16Le);
    }
    if head.starts_with(b"\xFE\xFF") {
        return Ok(Encoding::Utf16Be);
    }
    if head.starts_with(b"PK\x03\x04") {
        return Err(InputError::new(
            name,
            "is a spreadsheet workbook (.xlsx), not a text file; expected CSV: in Excel or WPS use File › Save As › \"CSV UTF-8\"",
        ));
    }
    // Text in UTF-16 without a BOM: CSV is mostly ASCII (separators, codes, digits),
    // whose UTF-16 form has a zero byte in every other place.
    let pairs = head.len() / 2;
    let zeros_at = |parity: usize| {
        head.iter()
            .skip(parity)
            .step_by(2)
            .take(pairs)
            .filter(|b| **b == 0)
            .count()
    };
    let (even, odd) = (zeros_at(0), zeros_at(1));
    if pairs >= 1 && odd * 4 >= pairs && even * 16 <= odd {
        return Ok(Encoding::Utf16Le);
    }
    if pairs >= 1 && even * 4 >= pairs && odd * 16 <= even {
        return Ok(Encoding::Utf16Be);
    }
    if let Some(at) = memchr::memchr(0, head) {
        return Err(InputError::new(
            name,
            format!("holds a zero byte (at byte {at}), expected a text file (CSV or JSON saved as UTF-8)"),
        )
        .at_line(line_of(head, at)));
    }
    match std::str::from_utf8(head) {
        Ok(_) => Ok(Encoding::Utf8),
        // A character cut by the end of the head is not a fault of the file.
        Err(e) if e.error_len().is_none() => Ok(Encoding::Utf8),
        Err(e) => Err(not_utf8(name, head, e.valid_up_to())),
    }
}

/// The 1-based line of byte `at`.
fn line_of(bytes: &[u8], at: usize) -> u64 {
    1 + memchr::memchr_iter(b'\n', &bytes[..at]).count() as u64
}

/// The error for bytes that are not UTF-8 from byte `at` on: named as GB18030/GBK when
/// they read as Chinese in it, as Latin-1 otherwise, each with the command that converts.
pub fn not_utf8(name: &str, bytes: &[u8], at: usize) -> InputError {
    // Whole lines only, so that no character is cut ('\n' is never inside a GB18030 one).
    let end = memchr::memrchr(b'\n', bytes)
        .map(|i| i + 1)
        .filter(|end| *end > at)
        .unwrap_or(bytes.len());
    let looks_chinese = encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(&bytes[..end])
        .is_some_and(|text| {
            let (mut wide, mut cjk) = (0usize, 0usize);
            for c in text.chars().filter(|c| !c.is_ascii()) {
                wide += 1;
                cjk += usize::from(matches!(c, '\u{3000}'..='\u{303f}' | '\u{4e00}'..='\u{9fff}' | '\u{ff00}'..='\u{ffef}'));
            }
            wide > 0 && cjk * 2 >= wide
        });
    let (encoding, from) = if looks_chinese {
        (
            "GB18030/GBK, as older Excel and WPS save CSV on Chinese Windows",
            "GB18030",
        )
    } else {
        ("Latin-1 (ISO 8859-1 / Windows-1252)", "WINDOWS-1252")
    };
    let converted = Path::new(name)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "converted".into());
    let ext = Path::new(name)
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    InputError::new(
        name,
        format!(
            "byte {at} is not UTF-8 text; the file looks like {encoding}. Expected UTF-8: convert it with `iconv -f {from} -t UTF-8 {name} > {converted}-utf8{ext}`, or in Excel or WPS save it again as \"CSV UTF-8\""
        ),
    )
    .at_line(line_of(bytes, at))
}

fn cannot_read(name: &str, e: std::io::Error) -> InputError {
    InputError::new(name, format!("cannot read: {e}"))
}

/// The first bytes of a file (up to [`HEAD`]).
fn head_of(path: &Path, name: &str) -> Result<Vec<u8>, InputError> {
    let f = File::open(path).map_err(|e| cannot_read(name, e))?;
    let mut head = Vec::with_capacity(HEAD);
    f.take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|e| cannot_read(name, e))?;
    Ok(head)
}

/// The encoding of a file (see [`detect_encoding`]).
pub fn encoding_of(path: &Path) -> Result<Encoding, InputError> {
    let name = path.display().to_string();
    detect_encoding(&name, &head_of(path, &name)?)
}

/// Opens a text file for reading as UTF-8: as it is, or transcoded from UTF-16; refused
/// with the fix when it is in another encoding. A UTF-8 BOM is passed through (the
/// readers drop it); a UTF-16 one is dropped.
pub fn open_text(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    let name = path.display().to_string();
    let encoding = encoding_of(path)?;
    let f = File::open(path).map_err(|e| cannot_read(&name, e))?;
    Ok(match encoding {
        Encoding::Utf8 => Box::new(f),
        Encoding::Utf16Le | Encoding::Utf16Be => Box::new(
            DecodeReaderBytesBuilder::new()
                .encoding(Some(if encoding == Encoding::Utf16Le {
                    encoding_rs::UTF_16LE
                } else {
                    encoding_rs::UTF_16BE
                }))
                .bom_override(true)
                .strip_bom(true)
                .build(f),
        ),
    })
}

/// Reads a whole text file (forms, rules, JSON exports, parts) as UTF-8 without a BOM,
/// in the encodings [`open_text`] reads; bytes that are not UTF-8 further on are an error
/// naming the line, the encoding they look like and the fix.
pub fn read_text(path: &Path) -> Result<String, InputError> {
    let name = path.display().to_string();
    let mut bytes = Vec::new();
    open_text(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| cannot_read(&name, e))?;
    let mut text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        not_utf8(&name, e.as_bytes(), at)
    })?;
    if text.starts_with('\u{feff}') {
        text.drain(..3);
    }
    Ok(text)
}

/// What a scoring input holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A wide CSV export of ballots.
    BallotsCsv,
    /// A JSON export of ballots.
    BallotsJson,
    /// A tally CSV (`unit,group,criterion,option,count`).
    Tally,
    /// A saved state from `pingyi aggregate`.
    Part,
}

/// Tells the kind of a file from its first bytes (a `[` or `{` opens JSON ballots or a
/// part; a CSV header of the five tally names is a tally; any other CSV is ballots).
pub fn sniff(path: &Path) -> Result<Kind, InputError> {
    let name = path.display().to_string();
    let mut head = Vec::with_capacity(HEAD);
    open_text(path)?
        .take(HEAD as u64)
        .read_to_end(&mut head)
        .map_err(|e| cannot_read(&name, e))?;
    let text = String::from_utf8_lossy(&head);
    let text = text.trim_start_matches('\u{feff}').trim_start();
    if text.starts_with('[') {
        return Ok(Kind::BallotsJson);
    }
    if text.starts_with('{') {
        return Ok(Kind::Part);
    }
    if text.is_empty() {
        return Err(InputError::new(
            &name,
            "is empty, expected ballots (CSV or JSON), a tally CSV or a part from `pingyi aggregate`",
        ));
    }
    let first = text.lines().next().unwrap_or("");
    let names: Vec<&str> = first
        .split(',')
        .map(|s| s.trim().trim_matches('"'))
        .collect();
    Ok(if is_tally_header(&names) {
        Kind::Tally
    } else {
        Kind::BallotsCsv
    })
}

/// How to read.
pub struct Options<'p> {
    /// Folding threads for large CSV files (at least 1).
    pub threads: usize,
    /// Called with the number of bytes just read.
    pub progress: &'p (dyn Fn(u64) + Sync),
}

/// Ballots that are not in a file: the command line reads a collection database through
/// this. Each ballot is handed over one at a time, never collected.
pub trait BallotSource {
    /// How messages and summaries name the source (`sqlite:campaign.db`).
    fn name(&self) -> &str;
    /// Calls `each` with every ballot of `form`'s id and version, in a stable order,
    /// stopping at the first error (the source's own, or the one `each` returns).
    /// Ballots of other forms or versions are not handed over; the source says so
    /// itself when it holds any.
    fn each_ballot(
        &self,
        form: &Form,
        each: &mut dyn FnMut(&Ballot) -> Result<(), InputError>,
    ) -> Result<(), InputError>;
}

/// One scoring input: a file (its kind told from its content) or a ballot source.
#[derive(Clone, Copy)]
pub enum Input<'a> {
    File(&'a Path),
    Ballots(&'a dyn BallotSource),
}

impl Input<'_> {
    fn file(&self) -> Option<&Path> {
        match self {
            Input::File(p) => Some(p),
            Input::Ballots(_) => None,
        }
    }
}

/// Reads every input (ballot CSV and JSON, tallies, parts, in any mix) into one state.
pub fn aggregate_files(
    form: &Form,
    rules: &Resolved,
    paths: &[&Path],
    opts: &Options<'_>,
) -> Result<Aggregate, InputError> {
    aggregate_files_tuned(form, rules, paths, opts, &Tuning::default())
}

/// Reads every input (files of any kind and ballot sources, in any mix) into one state.
pub fn aggregate_inputs(
    form: &Form,
    rules: &Resolved,
    inputs: &[Input<'_>],
    opts: &Options<'_>,
) -> Result<Aggregate, InputError> {
    aggregate_inputs_tuned(form, rules, inputs, opts, &Tuning::default())
}

/// [`aggregate_files`] with the multi-core path's threshold and block size given.
pub fn aggregate_files_tuned(
    form: &Form,
    rules: &Resolved,
    paths: &[&Path],
    opts: &Options<'_>,
    tuning: &Tuning,
) -> Result<Aggregate, InputError> {
    let inputs: Vec<Input<'_>> = paths.iter().map(|p| Input::File(p)).collect();
    aggregate_inputs_tuned(form, rules, &inputs, opts, tuning)
}

/// [`aggregate_inputs`] with the multi-core path's threshold and block size given.
pub fn aggregate_inputs_tuned(
    form: &Form,
    rules: &Resolved,
    inputs: &[Input<'_>],
    opts: &Options<'_>,
    tuning: &Tuning,
) -> Result<Aggregate, InputError> {
    let parallel = opts.threads > 1
        && inputs
            .iter()
            .filter_map(Input::file)
            .any(|p| file_len(p) >= tuning.parallel_from);
    match read_all_inputs(form, rules, inputs, opts, tuning) {
        Err(_) if parallel => {
            // The one-thread reader is the reference: its first error in file order is
            // the one to show, and its duplicate set has seen exactly the rows before.
            let quiet = |_: u64| {};
            let one = Options {
                threads: 1,
                progress: &quiet,
            };
            read_all_inputs(form, rules, inputs, &one, tuning)
        }
        result => result,
    }
}

fn read_all_inputs(
    form: &Form,
    rules: &Resolved,
    inputs: &[Input<'_>],
    opts: &Options<'_>,
    tuning: &Tuning,
) -> Result<Aggregate, InputError> {
    let read: Vec<Sniffed<'_>> = inputs
        .iter()
        .map(|input| match input {
            Input::File(p) => sniff(p).map(|k| Sniffed::File(p, k)),
            Input::Ballots(source) => Ok(Sniffed::Source(*source)),
        })
        .collect::<Result<_, _>>()?;
    let files: Vec<&Path> = inputs.iter().filter_map(Input::file).collect();
    let mut parts = Vec::new();
    for r in &read {
        if let Sniffed::File(p, Kind::Part) = r {
            let name = p.display().to_string();
            let text = read_text(p)?;
            let part = Aggregate::from_json(&name, &text)?;
            parts.push((name, part));
        }
    }
    let has_ballots = read.iter().any(Sniffed::has_ballots);
    let careless = &rules.rules.careless;
    let mut threshold = None;
    if careless.exclude
        && careless.too_fast == TooFast::Named(TooFastName::HalfMedian)
        && has_ballots
    {
        let first = Session::new(form, rules, Pass::Durations, None);
        let mut durations = first.empty();
        for r in read.iter().filter(|r| r.has_ballots()) {
            read_input_ballots(&first, r, &files, opts, tuning, &mut durations)?;
        }
        for (name, part) in &parts {
            for (s, n) in &part.durations {
                let slot = durations.durations.entry(*s).or_default();
                *slot = slot.checked_add(*n).ok_or_else(|| {
                    InputError::new(
                        name,
                        format!("{n} ballots taking {s} s overflow the count of ballots, expected counts that add up to less than 2^64"),
                    )
                    .in_field(format!("durations.{s}"))
                })?;
            }
        }
        threshold = crate::careless::median(&durations.durations).map(|m| m / 2.0);
    }
    let session = Session::new(form, rules, Pass::Fold, threshold);
    let mut agg = session.empty();
    if let Some(t) = session
        .threshold()
        .filter(|_| has_ballots && careless.exclude)
    {
        agg.ballots.thresholds.push(t);
    }
    for r in &read {
        match r {
            Sniffed::File(_, Kind::Part) => {}
            Sniffed::File(p, Kind::Tally) => {
                let name = p.display().to_string();
                fold_tally(rules, &name, BufReader::new(open_text(p)?), &mut agg)?;
                (opts.progress)(file_len(p));
            }
            _ => read_input_ballots(&session, r, &files, opts, tuning, &mut agg)?,
        }
    }
    for (name, part) in &parts {
        agg.merge(part).map_err(|m| InputError::new(name, m))?;
        (opts.progress)(file_len(Path::new(name)));
    }
    Ok(agg)
}

/// An input with the kind of a file told.
enum Sniffed<'a> {
    File(&'a Path, Kind),
    Source(&'a dyn BallotSource),
}

impl Sniffed<'_> {
    fn has_ballots(&self) -> bool {
        matches!(
            self,
            Sniffed::Source(_) | Sniffed::File(_, Kind::BallotsCsv | Kind::BallotsJson)
        )
    }
}

/// Folds the ballots of one input: a ballot file, or a source.
fn read_input_ballots(
    session: &Session<'_>,
    input: &Sniffed<'_>,
    files: &[&Path],
    opts: &Options<'_>,
    tuning: &Tuning,
    agg: &mut Aggregate,
) -> Result<(), InputError> {
    match input {
        Sniffed::File(p, kind) => read_ballots(session, p, *kind, files, opts, tuning, agg),
        Sniffed::Source(source) => fold_source(session, *source, files, agg),
    }
}

/// Folds a source's ballots, each checked against the form like a JSON export's.
fn fold_source(
    session: &Session<'_>,
    source: &dyn BallotSource,
    files: &[&Path],
    agg: &mut Aggregate,
) -> Result<(), InputError> {
    let name = source.name();
    let mut row = session.row();
    source.each_ballot(session.form, &mut |b| {
        let at = || format!("ballot {}", quoted(&b.id));
        if let Some(p) = b.problems(session.form).into_iter().next() {
            return Err(InputError::new(name, p.message).in_field(format!("{}: {}", at(), p.path)));
        }
        session.decode_ballot(b, &mut row);
        session.accept(&mut row, agg).map_err(|c| {
            let mut err = conflict_error(session.form, files, &c.id, name, "");
            err.field = Some(format!("{}: response_id", at()));
            err
        })
    })?;
    agg.sources.push(name.to_string());
    Ok(())
}

fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Sum of the sizes of the inputs, for a progress bar.
pub fn total_bytes(paths: &[&Path]) -> u64 {
    paths.iter().map(|p| file_len(p)).sum()
}

fn read_ballots(
    session: &Session<'_>,
    path: &Path,
    kind: Kind,
    all: &[&Path],
    opts: &Options<'_>,
    tuning: &Tuning,
    agg: &mut Aggregate,
) -> Result<(), InputError> {
    let name = path.display().to_string();
    let result = match kind {
        Kind::BallotsJson => {
            let ballots =
                crate::json::read_all(session.form, &name, BufReader::new(open_text(path)?))?;
            let r = fold_ballots(session, &name, &ballots, agg);
            (opts.progress)(file_len(path));
            r
        }
        Kind::BallotsCsv
            if opts.threads > 1
                && file_len(path) >= tuning.parallel_from
                && encoding_of(path)? == Encoding::Utf8 =>
        {
            fold_csv_parallel(session, path, opts, tuning, agg)
        }
        _ => {
            let input = BufReader::with_capacity(1 << 16, open_text(path)?);
            let r = fold_csv(session, &name, input, agg);
            (opts.progress)(file_len(path));
            r
        }
    };
    result.map_err(|e| match e {
        FoldError::Input(e) => e,
        FoldError::Conflict { id, source, place } => {
            conflict_error(session.form, all, &id, &source, &place)
        }
    })
}

/// The error for a response_id read twice with different content, naming both places.
pub fn conflict_error(
    form: &Form,
    paths: &[&Path],
    id: &str,
    source: &str,
    place: &str,
) -> InputError {
    let other = paths
        .iter()
        .find_map(|p| find_id(form, p, id, source, place))
        .unwrap_or_else(|| "an earlier input".into());
    let err = InputError::new(
        source,
        format!(
            "{} was read before with different answers (at {other}), expected one set of answers per ballot id; keep the right one and remove the other",
            quoted(id)
        ),
    );
    let err = err.in_field("response_id");
    match place.parse::<u64>() {
        Ok(line) => err.at_line(line),
        Err(_) => InputError {
            field: Some(format!("{place}.id")),
            ..err
        },
    }
}

/// Where `id` appears in `path`, other than at (`source`, `place`): `file:line` or
/// `file: [i]`.
fn find_id(form: &Form, path: &Path, id: &str, source: &str, place: &str) -> Option<String> {
    let name = path.display().to_string();
    match sniff(path).ok()? {
        Kind::BallotsJson => {
            let f = open_text(path).ok()?;
            let ballots = crate::json::read_all(form, &name, BufReader::new(f)).ok()?;
            ballots
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("[{i}]"), b))
                .find(|(p, b)| b.id == id && !(name == source && p == place))
                .map(|(p, _)| format!("{name}: {p}"))
        }
        Kind::BallotsCsv => {
            let f = open_text(path).ok()?;
            let (input, lines) = crate::csv_lines::LineCounted::new(BufReader::new(f));
            let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(input);
            let col = csv.byte_headers().ok()?.iter().position(|h| {
                String::from_utf8_lossy(h).trim_start_matches('\u{feff}') == "response_id"
            })?;
            let mut rec = csv::ByteRecord::new();
            while csv.read_byte_record(&mut rec).ok()? {
                let line = lines.line_at(rec.position()?.byte());
                let cell = crate::wide_csv::unneutralize(std::str::from_utf8(rec.get(col)?).ok()?);
                if cell == id && !(name == source && line.to_string() == place) {
                    return Some(format!("{name}:{line}"));
                }
            }
            None
        }
        _ => None,
    }
}

/// Cuts a large CSV into blocks of whole records and folds them on `opts.threads` threads.
fn fold_csv_parallel(
    session: &Session<'_>,
    path: &Path,
    opts: &Options<'_>,
    tuning: &Tuning,
    agg: &mut Aggregate,
) -> Result<(), FoldError> {
    let name = path.display().to_string();
    let mut cutter = RecordCutter::open(&name, path, tuning.block)?;
    let header = cutter.header()?;
    let layout = {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&header[..]);
        let mut rec = csv::ByteRecord::new();
        if !csv
            .read_byte_record(&mut rec)
            .map_err(|e| InputError::new(&name, e.to_string()).at_line(1))?
        {
            return Err(InputError::new(&name, "is empty, expected a header row").into());
        }
        CsvLayout::new(session, &name, &rec)?
    };
    (opts.progress)(header.len() as u64);
    let results = fold_blocks(session, &layout, &mut cutter, opts)?;
    for r in &results {
        agg.merge(r).map_err(|m| InputError::new(&name, m))?;
    }
    agg.sources.push(name);
    Ok(())
}

/// Hands the cutter's blocks to `opts.threads` folding threads; each returns its own
/// state. The first error in file order wins.
fn fold_blocks(
    session: &Session<'_>,
    layout: &CsvLayout<'_>,
    cutter: &mut RecordCutter<'_>,
    opts: &Options<'_>,
) -> Result<Vec<Aggregate>, FoldError> {
    let threads = opts.threads.max(1);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<(u64, FoldError)>> = Mutex::new(None);
    let keep_first = |line: u64, e: FoldError| {
        stop.store(true, Ordering::Relaxed);
        let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
        if slot.as_ref().is_none_or(|(l, _)| line < *l) {
            *slot = Some((line, e));
        }
    };
    let (tx, rx) = sync_channel::<(Vec<u8>, u64)>(threads);
    let rx = Mutex::new(rx);
    let (pool_tx, pool_rx) = channel::<Vec<u8>>();
    let results: Vec<Aggregate> = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let (rx, pool_tx, stop, keep_first) = (&rx, pool_tx.clone(), &stop, &keep_first);
            handles.push(s.spawn(move || {
                let mut local = session.empty();
                let mut row = session.row();
                loop {
                    let msg = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                    let Ok((mut block, first_line)) = msg else {
                        break;
                    };
                    if !stop.load(Ordering::Relaxed) {
                        if let Err(e) = fold_csv_block(
                            session, layout, &block, first_line, &mut local, &mut row,
                        ) {
                            keep_first(first_line, e);
                        }
                    }
                    (opts.progress)(block.len() as u64);
                    block.clear();
                    let _ = pool_tx.send(block);
                }
                local
            }));
        }
        drop(pool_tx);
        loop {
            let mut block = pool_rx
                .try_recv()
                .unwrap_or_else(|_| Vec::with_capacity(cutter.block + cutter.chunk.len()));
            match cutter.next_block(&mut block) {
                Ok(Some(line)) => {
                    if tx.send((block, line)).is_err() || stop.load(Ordering::Relaxed) {
                        break;
                    }
                }
                Ok(None) => break,
                Err((line, e)) => {
                    keep_first(line, e);
                    break;
                }
            }
        }
        drop(tx);
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    match first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        Some((_, e)) => Err(e),
        None => Ok(results),
    }
}

/// Reads a CSV file in chunks and hands it out in blocks of whole records, cut after the
/// line breaks where the csv crate's records end ([`QuoteTracker`]).
struct RecordCutter<'n> {
    name: &'n str,
    file: File,
    chunk: Vec<u8>,
    /// Read, not yet handed out.
    pending: Vec<u8>,
    /// Has been fed every byte read.
    quotes: QuoteTracker,
    eof: bool,
    /// Just past the last record end in `pending`.
    last_end: Option<usize>,
    /// Until the header is handed out: just past the first record end in `pending`
    /// that follows something other than blank lines.
    header_end: Option<usize>,
    header_done: bool,
    /// The 1-based line `pending` starts on.
    line: u64,
    /// The size from which a block is handed out.
    block: usize,
}

impl<'n> RecordCutter<'n> {
    fn open(name: &'n str, path: &Path, block: usize) -> Result<RecordCutter<'n>, FoldError> {
        let file = File::open(path).map_err(|e| cannot_read(name, e))?;
        let block = block.max(1);
        let chunk = vec![0u8; block.clamp(4 << 10, 256 << 10)];
        Ok(RecordCutter {
            name,
            file,
            pending: Vec::with_capacity(block + chunk.len()),
            chunk,
            quotes: QuoteTracker::default(),
            eof: false,
            last_end: None,
            header_end: None,
            header_done: false,
            line: 1,
            block,
        })
    }

    /// Reads the next chunk into `pending` and follows its quoting.
    fn fill(&mut self) -> Result<(), FoldError> {
        let n = self
            .file
            .read(&mut self.chunk)
            .map_err(|e| cannot_read(self.name, e))?;
        self.eof = n == 0;
        let from = self.pending.len();
        self.pending.extend_from_slice(&self.chunk[..n]);
        let (pending, last_end, header_end) =
            (&self.pending, &mut self.last_end, &mut self.header_end);
        let looking = !self.header_done;
        self.quotes.feed(&pending[from..], |i| {
            let end = from + i + 1;
            *last_end = Some(end);
            // The csv crate skips blank lines before the header.
            if looking
                && header_end.is_none()
                && pending[..end].iter().any(|b| !matches!(b, b'\r' | b'\n'))
            {
                *header_end = Some(end);
            }
        });
        Ok(())
    }

    fn unterminated(&self, line: u64) -> FoldError {
        InputError::new(self.name, UNTERMINATED_QUOTE)
            .at_line(line)
            .into()
    }

    /// The header record (with any blank lines before it).
    fn header(&mut self) -> Result<Vec<u8>, FoldError> {
        while self.header_end.is_none() && !self.eof {
            self.fill()?;
        }
        if let Some(open) = self
            .quotes
            .unterminated()
            .filter(|_| self.header_end.is_none())
        {
            return Err(self.unterminated(open));
        }
        let end = self.header_end.unwrap_or(self.pending.len());
        self.header_done = true;
        let header: Vec<u8> = self.pending.drain(..end).collect();
        self.last_end = self.last_end.filter(|e| *e > end).map(|e| e - end);
        self.line = line_of(&header, header.len());
        Ok(header)
    }

    /// Appends the next block of whole records to `block` and gives the line it starts
    /// on; `None` at the end of the file. An error comes with its line.
    fn next_block(&mut self, block: &mut Vec<u8>) -> Result<Option<u64>, (u64, FoldError)> {
        loop {
            if self.eof {
                if let Some(open) = self.quotes.unterminated() {
                    return Err((open, self.unterminated(open)));
                }
            }
            let cut = if self.eof {
                Some(self.pending.len())
            } else if self.pending.len() >= self.block {
                self.last_end
            } else {
                None
            };
            if let Some(cut) = cut.filter(|c| *c > 0) {
                block.extend_from_slice(&self.pending[..cut]);
                self.pending.drain(..cut);
                // `cut` was the last record end, or everything: no record end is left.
                self.last_end = None;
                let first = self.line;
                self.line += memchr::memchr_iter(b'\n', block).count() as u64;
                return Ok(Some(first));
            }
            if self.eof {
                return Ok(None);
            }
            let line = self.line;
            self.fill().map_err(|e| (line, e))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ballot::{Answer, Ballot};
    use crate::rules::Rules;
    use crate::synth::Generator;
    use proptest::prelude::*;

    fn setup() -> (Form, Resolved) {
        let form = Form::default_form();
        let rules = Rules::default().resolve("test", &form).unwrap();
        (form, rules)
    }

    /// Ballots whose texts are `texts` in turn (`None`: no answer), as a wide CSV export.
    fn export(form: &Form, texts: &[Option<String>], seed: u64) -> String {
        let mut g = Generator::new(form, seed);
        let ballots: Vec<Ballot> = texts
            .iter()
            .map(|t| {
                let mut b = g.ballot();
                b.answers.remove("suggestion");
                if let Some(t) = t {
                    b.answers
                        .insert("suggestion".into(), Answer::Str(t.clone()));
                }
                b
            })
            .collect();
        crate::wide_csv::to_string(form, &ballots)
    }

    /// Reads `bytes` as one file on one thread and on `threads` threads with the given
    /// block size (every file takes the multi-core path).
    fn both_ways(
        bytes: &[u8],
        threads: usize,
        block: usize,
    ) -> (Result<Aggregate, InputError>, Result<Aggregate, InputError>) {
        let (form, rules) = setup();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ballots.csv");
        std::fs::write(&path, bytes).unwrap();
        let quiet = |_: u64| {};
        let tuning = Tuning {
            parallel_from: 0,
            block,
        };
        let read = |threads| {
            let opts = Options {
                threads,
                progress: &quiet,
            };
            aggregate_files_tuned(&form, &rules, &[path.as_path()], &opts, &tuning)
        };
        (read(1), read(threads))
    }

    #[test]
    fn a_stray_quote_before_a_quoted_line_break_does_not_move_the_cut() {
        let (form, _) = setup();
        // A `"` inside an unquoted cell is a plain character for the csv crate; counting
        // quotes would take the line break inside the next quoted cell for a record end.
        let mut texts = vec![Some("5寸\"屏幕".to_string())];
        texts.extend((0..30).map(|i| Some(format!("第{i}行\r\n\"换行\""))));
        let text = export(&form, &texts, 9).replace("\"5寸\"\"屏幕\"", "5寸\"屏幕");
        assert!(
            text.contains(",5寸\"屏幕\r\n"),
            "the stray quote is in the file"
        );
        for block in [1, 50, 700, 2000] {
            let (one, many) = both_ways(text.as_bytes(), 3, block);
            let one = one.unwrap();
            assert_eq!(one.ballots.total, 31);
            assert_eq!(many, Ok(one), "block size {block}");
        }
    }

    #[test]
    fn an_unterminated_quote_is_an_error_at_its_line_on_every_path() {
        let (form, _) = setup();
        let texts: Vec<Option<String>> = (0..8).map(|i| Some(format!("意见{i}"))).collect();
        let text = export(&form, &texts, 4);
        let lines: Vec<&str> = text.split("\r\n").collect();
        // The suggestion is the last column: open a quote there on line 4 and never close it.
        let mut broken: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        broken[3] = format!(
            "{}\"unclosed",
            &broken[3][..broken[3].rfind(',').unwrap() + 1]
        );
        let broken = broken.join("\r\n");
        for block in [1, 300, 100_000] {
            let (one, many) = both_ways(broken.as_bytes(), 2, block);
            let err = one.unwrap_err();
            assert_eq!(err.line, Some(4), "{err}");
            assert!(err.message.contains("never closed"), "{err}");
            assert_eq!(many, Err(err));
        }
    }

    fn text_strategy() -> impl Strategy<Value = Option<String>> {
        prop::option::of(proptest::string::string_regex("[a-z 满,\"\r\n']{1,10}").unwrap())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// The multi-core reader gives exactly the one-thread reader's result or error on
        /// files with quotes, line breaks and separators in their texts, and with stray
        /// `"`, line breaks and commas put anywhere.
        #[test]
        fn the_multi_core_reader_agrees_with_the_one_thread_reader(
            texts in prop::collection::vec(text_strategy(), 1..14),
            seed in 0u64..1000,
            edits in prop::collection::vec(
                (0.0f64..1.0, prop::sample::select(vec![&b"\""[..], &b"\n"[..], &b"\r\n"[..], &b","[..], &b"\"\""[..]])),
                0..3,
            ),
            threads in 2usize..4,
            block in 1usize..1500,
        ) {
            let (form, _) = setup();
            let mut bytes = export(&form, &texts, seed).into_bytes();
            for (at, insert) in edits {
                let at = ((bytes.len() as f64) * at) as usize;
                bytes.splice(at..at, insert.iter().copied());
            }
            let (one, many) = both_ways(&bytes, threads, block);
            prop_assert_eq!(many, one);
        }
    }

    #[test]
    fn encodings_are_read_or_refused_by_name() {
        assert_eq!(
            detect_encoding("a.csv", b"\xEF\xBB\xBFa,b\r\n"),
            Ok(Encoding::Utf8)
        );
        assert_eq!(
            detect_encoding("a.csv", "评议,b\n".as_bytes()),
            Ok(Encoding::Utf8)
        );
        let utf16le: Vec<u8> = "response_id,评议\r\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let utf16be: Vec<u8> = "response_id,评议\r\n"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(detect_encoding("a.csv", &utf16le), Ok(Encoding::Utf16Le));
        assert_eq!(detect_encoding("a.csv", &utf16be), Ok(Encoding::Utf16Be));
        let (gbk, _, _) = encoding_rs::GB18030.encode("单位,评议主体\r\n公安局,群众\r\n");
        let e = detect_encoding("old.csv", &gbk).unwrap_err();
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("GB18030/GBK"), "{e}");
        assert!(
            e.message
                .contains("iconv -f GB18030 -t UTF-8 old.csv > old-utf8.csv"),
            "{e}"
        );
        let latin1 = b"unit,name\r\ngaj,Caf\xE9 de la Paix\r\n";
        let e = detect_encoding("fr.csv", latin1).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("Latin-1"), "{e}");
        assert!(
            e.message
                .contains("iconv -f WINDOWS-1252 -t UTF-8 fr.csv > fr-utf8.csv"),
            "{e}"
        );
        let e = detect_encoding("book.csv", b"PK\x03\x04rest").unwrap_err();
        assert!(e.message.contains(".xlsx"), "{e}");
    }

    /// Ballots held in memory, standing in for a database; counts how often it is read.
    struct Held {
        ballots: Vec<Ballot>,
        reads: std::cell::Cell<usize>,
    }

    impl BallotSource for Held {
        fn name(&self) -> &str {
            "sqlite:held.db"
        }

        fn each_ballot(
            &self,
            form: &Form,
            each: &mut dyn FnMut(&Ballot) -> Result<(), InputError>,
        ) -> Result<(), InputError> {
            self.reads.set(self.reads.get() + 1);
            self.ballots
                .iter()
                .filter(|b| b.form_id == form.id && b.form_version == form.version)
                .try_for_each(each)
        }
    }

    fn held(ballots: Vec<Ballot>) -> Held {
        Held {
            ballots,
            reads: std::cell::Cell::new(0),
        }
    }

    fn excluding_too_fast(form: &Form) -> Resolved {
        let toml = "[careless]\ntoo_fast = \"half_median\"\nexclude = true\n";
        Rules::from_toml("rules.toml", toml, form).unwrap()
    }

    #[test]
    fn a_source_is_counted_exactly_like_the_same_ballots_in_a_file() {
        let form = Form::default_form();
        let rules = excluding_too_fast(&form);
        let mut g = Generator::new(&form, 11);
        let mut ballots: Vec<Ballot> = (0..300).map(|_| g.ballot()).collect();
        // A duplicate and a ballot of another version, which the source does not hand over.
        ballots.push(ballots[3].clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.csv");
        std::fs::write(&path, crate::wide_csv::to_string(&form, &ballots)).unwrap();
        let mut other = g.ballot();
        other.form_version = "other".into();
        let source = held(ballots.iter().cloned().chain([other]).collect());
        let quiet = |_: u64| {};
        let opts = Options {
            threads: 1,
            progress: &quiet,
        };
        let from_file = aggregate_files(&form, &rules, &[path.as_path()], &opts).unwrap();
        let from_source =
            aggregate_inputs(&form, &rules, &[Input::Ballots(&source)], &opts).unwrap();
        assert_eq!(
            source.reads.get(),
            2,
            "read once for the median, once to fold"
        );
        assert_eq!(from_source.ballots.total, 301);
        assert_eq!(from_source.ballots.duplicates, 1);
        assert!(
            from_source.ballots.too_fast > 0,
            "the example must exclude some"
        );
        assert_eq!(from_source.sources, vec!["sqlite:held.db".to_string()]);
        let unnamed = |mut a: Aggregate| {
            a.sources.clear();
            a
        };
        assert_eq!(unnamed(from_source), unnamed(from_file));
    }

    #[test]
    fn a_bad_ballot_or_a_conflict_in_a_source_is_named() {
        let (form, rules) = setup();
        let mut g = Generator::new(&form, 12);
        let good = g.ballot();
        let mut bad = g.ballot();
        bad.group = "martians".into();
        let quiet = |_: u64| {};
        let opts = Options {
            threads: 1,
            progress: &quiet,
        };
        let source = held(vec![good.clone(), bad.clone()]);
        let e = aggregate_inputs(&form, &rules, &[Input::Ballots(&source)], &opts).unwrap_err();
        assert_eq!(e.source, "sqlite:held.db");
        assert_eq!(
            e.field.as_deref(),
            Some(format!("ballot \"{}\": group", bad.id).as_str())
        );
        assert!(e.message.contains("martians"), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("device.csv");
        let mut changed = good.clone();
        changed.device_id = "another-device".into();
        std::fs::write(&path, crate::wide_csv::to_string(&form, &[changed])).unwrap();
        let source = held(vec![good.clone()]);
        let inputs = [Input::File(&path), Input::Ballots(&source)];
        let e = aggregate_inputs(&form, &rules, &inputs, &opts).unwrap_err();
        assert_eq!(e.source, "sqlite:held.db");
        assert!(
            e.message.contains(&good.id) && e.message.contains("device.csv:2"),
            "names the id and the other place: {e}"
        );
    }
}
