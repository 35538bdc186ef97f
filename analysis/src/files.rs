//! Reading scoring inputs from files (native builds only): which kind each file is, the
//! two-core CSV path, the second pass for excluding too-fast ballots, and the error for a
//! conflicting duplicate that names both places.
//!
//! Large wide CSV files are cut into blocks of whole records on one thread and folded on
//! the others. A line break ends a record exactly when an even number of `"` came before
//! it in the data (RFC 4180 doubles every quote inside a quoted field), so the cut needs
//! only a quote count, not a parse. A hand-edited file with a stray quote inside an
//! unquoted field could fool that count; any error in the parallel path is therefore
//! checked again by the plain one-thread streaming reader, whose message is the one shown.
//!
//! Excluding too-fast ballots against half the median needs the median first: then the
//! ballot files are read twice, once for the completion times and once to fold. Saved
//! parts (`pingyi aggregate`) applied their own threshold when they were made; their
//! completion times still join the median used for the files read now.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, sync_channel};
use std::sync::Mutex;

use crate::aggregate::Aggregate;
use crate::error::InputError;
use crate::form::Form;
use crate::ingest::{fold_ballots, fold_csv, fold_csv_block, CsvLayout, FoldError, Pass, Session};
use crate::rules::{Resolved, TooFast, TooFastName};
use crate::tally::{fold_tally, is_tally_header};

/// Files smaller than this are read on one thread.
const PARALLEL_FROM: u64 = 4 << 20;
/// The size of a block of records handed to a folding thread.
const BLOCK: usize = 1 << 20;

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
    let mut head = vec![0u8; 64 << 10];
    let mut f =
        File::open(path).map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) => return Err(InputError::new(&name, format!("cannot read: {e}"))),
        }
    }
    let text = String::from_utf8_lossy(&head[..n]);
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

/// Reads every input (ballot CSV and JSON, tallies, parts, in any mix) into one state.
pub fn aggregate_files(
    form: &Form,
    rules: &Resolved,
    paths: &[&Path],
    opts: &Options<'_>,
) -> Result<Aggregate, InputError> {
    let kinds: Vec<Kind> = paths.iter().map(|p| sniff(p)).collect::<Result<_, _>>()?;
    let mut parts = Vec::new();
    for (p, k) in paths.iter().zip(&kinds) {
        if *k == Kind::Part {
            let name = p.display().to_string();
            let text = std::fs::read_to_string(p)
                .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
            parts.push((name, Aggregate::from_json(&p.display().to_string(), &text)?));
        }
    }
    let has_ballots = kinds
        .iter()
        .any(|k| matches!(k, Kind::BallotsCsv | Kind::BallotsJson));
    let careless = &rules.rules.careless;
    let mut threshold = None;
    if careless.exclude
        && careless.too_fast == TooFast::Named(TooFastName::HalfMedian)
        && has_ballots
    {
        let first = Session::new(form, rules, Pass::Durations, None);
        let mut durations = first.empty();
        for (p, k) in paths.iter().zip(&kinds) {
            read_ballots(&first, p, *k, paths, opts, &mut durations)?;
        }
        for (_, part) in &parts {
            for (s, n) in &part.durations {
                *durations.durations.entry(*s).or_default() += n;
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
    for (p, k) in paths.iter().zip(&kinds) {
        let name = p.display().to_string();
        match k {
            Kind::Part => {}
            Kind::Tally => {
                let f = File::open(p)
                    .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
                fold_tally(rules, &name, BufReader::new(f), &mut agg)?;
                (opts.progress)(file_len(p));
            }
            _ => read_ballots(&session, p, *k, paths, opts, &mut agg)?,
        }
    }
    for (name, part) in &parts {
        agg.merge(part).map_err(|m| InputError::new(name, m))?;
        (opts.progress)(file_len(Path::new(name)));
    }
    Ok(agg)
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
    agg: &mut Aggregate,
) -> Result<(), InputError> {
    let name = path.display().to_string();
    let result = match kind {
        Kind::BallotsJson => {
            let f = File::open(path)
                .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
            let ballots = crate::json::read_all(session.form, &name, BufReader::new(f))?;
            let r = fold_ballots(session, &name, &ballots, agg);
            (opts.progress)(file_len(path));
            r
        }
        Kind::BallotsCsv if opts.threads > 1 && file_len(path) >= PARALLEL_FROM => {
            match fold_csv_parallel(session, path, opts, agg) {
                Ok(()) => Ok(()),
                Err(parallel_err) => {
                    // The authoritative error is the first one in file order.
                    let fresh =
                        Session::new(session.form, session.rules, Pass::Fold, session.threshold());
                    let mut scratch = fresh.empty();
                    let f = File::open(path)
                        .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
                    match fold_csv(
                        &fresh,
                        &name,
                        BufReader::with_capacity(1 << 16, f),
                        &mut scratch,
                    ) {
                        Err(FoldError::Input(e)) => Err(FoldError::Input(e)),
                        _ => Err(parallel_err),
                    }
                }
            }
        }
        _ => {
            let f = File::open(path)
                .map_err(|e| InputError::new(&name, format!("cannot read: {e}")))?;
            let r = fold_csv(session, &name, BufReader::with_capacity(1 << 16, f), agg);
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
            "{id:?} was read before with different answers (at {other}), expected one set of answers per ballot id; keep the right one and remove the other"
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
            let f = File::open(path).ok()?;
            let ballots = crate::json::read_all(form, &name, BufReader::new(f)).ok()?;
            ballots
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("[{i}]"), b))
                .find(|(p, b)| b.id == id && !(name == source && p == place))
                .map(|(p, _)| format!("{name}: {p}"))
        }
        Kind::BallotsCsv => {
            let f = File::open(path).ok()?;
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
    agg: &mut Aggregate,
) -> Result<(), FoldError> {
    let name = path.display().to_string();
    let io =
        |e: std::io::Error| FoldError::Input(InputError::new(&name, format!("cannot read: {e}")));
    let mut file = File::open(path).map_err(io)?;
    let mut chunk = vec![0u8; 256 << 10];
    let mut pending: Vec<u8> = Vec::with_capacity(BLOCK + chunk.len());
    let mut eof = false;
    // The header: read until a line break outside quotes.
    let header_end = loop {
        if let Some(end) = first_record_end(&pending) {
            break end;
        }
        if eof {
            break pending.len();
        }
        let n = file.read(&mut chunk).map_err(io)?;
        eof = n == 0;
        pending.extend_from_slice(&chunk[..n]);
    };
    let layout = {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&pending[..header_end]);
        let mut rec = csv::ByteRecord::new();
        if !csv
            .read_byte_record(&mut rec)
            .map_err(|e| InputError::new(&name, e.to_string()).at_line(1))?
        {
            return Err(InputError::new(&name, "is empty, expected a header row").into());
        }
        CsvLayout::new(session, &name, &rec)?
    };
    let mut line = 1 + memchr::memchr_iter(b'\n', &pending[..header_end]).count() as u64;
    pending.drain(..header_end);
    (opts.progress)(header_end as u64);

    let threads = opts.threads.max(1);
    let stop = AtomicBool::new(false);
    let first_error: Mutex<Option<(u64, FoldError)>> = Mutex::new(None);
    let (tx, rx) = sync_channel::<(Vec<u8>, u64)>(threads);
    let rx = Mutex::new(rx);
    let (pool_tx, pool_rx) = channel::<Vec<u8>>();
    let results: Vec<Aggregate> = std::thread::scope(|s| -> Result<Vec<Aggregate>, FoldError> {
        let mut handles = Vec::new();
        for _ in 0..threads {
            let (rx, pool_tx, stop, first_error, layout) =
                (&rx, pool_tx.clone(), &stop, &first_error, &layout);
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
                            stop.store(true, Ordering::Relaxed);
                            let mut slot = first_error.lock().unwrap_or_else(|e| e.into_inner());
                            if slot.as_ref().is_none_or(|(l, _)| first_line < *l) {
                                *slot = Some((first_line, e));
                            }
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
        let mut in_quotes = false;
        let mut scanned = 0usize;
        let mut last_safe: Option<usize> = None;
        loop {
            for i in memchr::memchr2_iter(b'"', b'\n', &pending[scanned..]) {
                let i = scanned + i;
                if pending[i] == b'"' {
                    in_quotes = !in_quotes;
                } else if !in_quotes {
                    last_safe = Some(i);
                }
            }
            scanned = pending.len();
            let cut = if eof {
                Some(pending.len())
            } else if pending.len() >= BLOCK {
                last_safe.map(|i| i + 1)
            } else {
                None
            };
            if let Some(cut) = cut.filter(|c| *c > 0) {
                let mut block = pool_rx
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BLOCK + chunk.len()));
                block.extend_from_slice(&pending[..cut]);
                pending.drain(..cut);
                scanned = pending.len();
                last_safe = None;
                let lines_in = memchr::memchr_iter(b'\n', &block).count() as u64;
                if tx.send((block, line)).is_err() || stop.load(Ordering::Relaxed) {
                    break;
                }
                line += lines_in;
            }
            if eof {
                break;
            }
            let n = file.read(&mut chunk).map_err(io)?;
            eof = n == 0;
            pending.extend_from_slice(&chunk[..n]);
        }
        drop(tx);
        Ok(handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect())
    })?;
    if let Some((_, e)) = first_error.into_inner().unwrap_or_else(|e| e.into_inner()) {
        return Err(e);
    }
    for r in &results {
        agg.merge(r).map_err(|m| InputError::new(&name, m))?;
    }
    agg.sources.push(name);
    Ok(())
}

/// The end of the first record (after its line break), if a line break outside quotes is
/// in `bytes`.
fn first_record_end(bytes: &[u8]) -> Option<usize> {
    let mut in_quotes = false;
    for i in memchr::memchr2_iter(b'"', b'\n', bytes) {
        if bytes[i] == b'"' {
            in_quotes = !in_quotes;
        } else if !in_quotes {
            return Some(i + 1);
        }
    }
    None
}
