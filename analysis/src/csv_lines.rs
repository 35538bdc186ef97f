//! True line numbers for CSV errors, and the quotes the csv crate lets slip.
//!
//! The csv crate's `Position::line` runs one line short on CRLF files (the line ends
//! that Excel, WPS and our own exports write), so readers wrap their input in
//! [`LineCounted`], which notes where each `\n` is as bytes stream through, and ask
//! [`Lines::line_at`] for the line of a record's start byte. Memory stays bounded:
//! offsets are forgotten once a later record has passed them.
//!
//! The csv crate also ends a quoted field silently at the end of the input, so one
//! unterminated `"` swallows the rest of a file into a single cell. [`QuoteTracker`]
//! follows the csv crate's quoting exactly (its reader's state machine, reduced to what
//! decides whether a byte is inside quotes), and [`LineCounted`] fails the read with an
//! [`UnterminatedQuote`] naming the line where the quote opened. The multi-core reader
//! cuts files into records with the same tracker, so both readers see the same records.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::io::Read;
use std::rc::Rc;

/// Follows the csv crate's reader (RFC 4180: `,` between fields, `"` quotes, a doubled `""`
/// inside quotes, `\r`, `\n` or `\r\n` ending a record) through a byte stream fed in
/// pieces, to tell which line breaks end records and whether the input ends inside quotes.
///
/// A `"` opens a quoted field only as the first byte of a field (at the start of the input
/// or right after `,`, `\r` or `\n` outside quotes); anywhere else outside quotes it is a
/// plain character, as the csv crate reads it. Inside quotes, `""` is one quote and any
/// other `"` closes the field.
#[derive(Debug, Clone, Default)]
pub struct QuoteTracker {
    in_quotes: bool,
    /// Inside quotes, the last byte fed was a `"`: it closes the field unless the next
    /// byte is another `"`.
    quote_last: bool,
    /// The last byte fed, `None` before the first.
    prev: Option<u8>,
    /// `\n` bytes fed so far.
    newlines: u64,
    /// The 1-based line of the `"` that opened the current quoted field.
    opened_on: u64,
}

impl QuoteTracker {
    /// Feeds the next bytes of the input and calls `record_end(i)` for every `\n` at index
    /// `i` of `bytes` that lies outside quotes (it ends a record, or is a blank line that
    /// the csv crate skips).
    pub fn feed(&mut self, bytes: &[u8], mut record_end: impl FnMut(usize)) {
        let Some(&last) = bytes.last() else {
            return;
        };
        let mut from = 0;
        if std::mem::take(&mut self.quote_last) {
            if bytes[0] == b'"' {
                from = 1;
            } else {
                self.in_quotes = false;
            }
        }
        let mut escaped = None;
        for i in memchr::memchr2_iter(b'"', b'\n', &bytes[from..]) {
            let i = from + i;
            if bytes[i] == b'\n' {
                if !self.in_quotes {
                    record_end(i);
                }
                self.newlines += 1;
            } else if escaped == Some(i) {
                // The second quote of a `""` pair inside quotes.
            } else if self.in_quotes {
                match bytes.get(i + 1) {
                    Some(b'"') => escaped = Some(i + 1),
                    Some(_) => self.in_quotes = false,
                    None => self.quote_last = true,
                }
            } else {
                let before = if i == 0 {
                    self.prev
                } else {
                    Some(bytes[i - 1])
                };
                if matches!(before, None | Some(b',' | b'\r' | b'\n')) {
                    self.in_quotes = true;
                    self.opened_on = self.newlines + 1;
                }
            }
        }
        self.prev = Some(last);
    }

    /// At the end of the input: the line where a quoted field opened that never closed.
    pub fn unterminated(&self) -> Option<u64> {
        (self.in_quotes && !self.quote_last).then_some(self.opened_on)
    }

    /// `\n` bytes fed so far.
    pub fn newlines(&self) -> u64 {
        self.newlines
    }
}

/// A quoted field that the end of the input cut off: the read error [`LineCounted`]
/// gives instead of handing the csv crate the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnterminatedQuote {
    /// The 1-based line where the `"` that opened the field is.
    pub line: u64,
}

impl fmt::Display for UnterminatedQuote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(UNTERMINATED_QUOTE)
    }
}

impl std::error::Error for UnterminatedQuote {}

/// What is wrong when a quoted field never closes, and what was expected.
pub const UNTERMINATED_QUOTE: &str = "a quoted field opens on this line with `\"` and is never closed, so the rest of the file would be read as one cell; expected a closing `\"` (a `\"` inside a quoted field is written twice: `\"\"`)";

/// The [`UnterminatedQuote`] inside an I/O error, if that is what it is.
pub fn unterminated_quote(e: &std::io::Error) -> Option<UnterminatedQuote> {
    e.get_ref()?.downcast_ref::<UnterminatedQuote>().copied()
}

#[derive(Default)]
struct State {
    /// Offsets of `\r` and `\n` bytes not yet passed by a query, with whether each is `\n`.
    pending: VecDeque<(u64, bool)>,
    /// How many `\n` bytes lie before the last record asked about.
    passed: u64,
    /// Bytes read so far.
    offset: u64,
    /// Where the bytes read so far leave the quoting.
    quotes: QuoteTracker,
}

/// Answers "which line is this byte on" for a [`LineCounted`] reader.
#[derive(Clone, Default)]
pub struct Lines(Rc<RefCell<State>>);

/// A reader that records where its line breaks are.
pub struct LineCounted<R> {
    inner: R,
    lines: Lines,
}

impl<R: Read> LineCounted<R> {
    /// Wraps `inner`; keep the returned [`Lines`] to ask for line numbers.
    pub fn new(inner: R) -> (LineCounted<R>, Lines) {
        let lines = Lines::default();
        (
            LineCounted {
                inner,
                lines: lines.clone(),
            },
            lines,
        )
    }
}

impl<R: Read> Read for LineCounted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut st = self.lines.0.borrow_mut();
        if n == 0 && !buf.is_empty() {
            if let Some(line) = st.quotes.unterminated() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    UnterminatedQuote { line },
                ));
            }
            return Ok(0);
        }
        st.quotes.feed(&buf[..n], |_| {});
        let base = st.offset;
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' || *b == b'\r' {
                st.pending.push_back((base + i as u64, *b == b'\n'));
            }
        }
        st.offset += n as u64;
        Ok(n)
    }
}

impl Lines {
    /// The 1-based line of a record whose csv `Position::byte` is `byte`. Offsets must be
    /// asked in increasing order (as records come). The csv crate may place a record's start
    /// on the line break before it (CRLF input, blank lines), so line breaks at and right
    /// after `byte` are passed too: a record's first byte is never a line break.
    pub fn line_at(&self, byte: u64) -> u64 {
        let mut st = self.0.borrow_mut();
        let mut pos = byte;
        while let Some(&(at, is_lf)) = st.pending.front() {
            if at <= pos {
                if at == pos {
                    pos += 1;
                }
                st.pending.pop_front();
                st.passed += u64::from(is_lf);
            } else {
                break;
            }
        }
        st.passed + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The csv crate's reader state machine (csv-core's `transition_nfa` for RFC 4180 with
    /// CRLF terminators), byte by byte: whether each byte leaves the reader inside quotes.
    fn reference(bytes: &[u8]) -> (Vec<usize>, bool) {
        #[derive(Clone, Copy, PartialEq)]
        enum S {
            FieldStart,
            InField,
            Quoted,
            QuoteInQuoted,
        }
        let mut s = S::FieldStart;
        let mut ends = Vec::new();
        for (i, &b) in bytes.iter().enumerate() {
            let term = b == b'\r' || b == b'\n';
            if b == b'\n' && s != S::Quoted {
                ends.push(i);
            }
            s = match (s, b) {
                (S::FieldStart, b'"') => S::Quoted,
                (S::FieldStart | S::InField | S::QuoteInQuoted, b',') => S::FieldStart,
                (S::FieldStart | S::InField | S::QuoteInQuoted, _) if term => S::FieldStart,
                (S::FieldStart | S::InField, _) => S::InField,
                (S::Quoted, b'"') => S::QuoteInQuoted,
                (S::Quoted, _) => S::Quoted,
                (S::QuoteInQuoted, b'"') => S::Quoted,
                (S::QuoteInQuoted, _) => S::InField,
            };
        }
        (ends, s == S::Quoted)
    }

    fn tracked(bytes: &[u8], cuts: &[usize]) -> (Vec<usize>, bool) {
        let mut t = QuoteTracker::default();
        let mut ends = Vec::new();
        let mut from = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
        cuts.push(bytes.len());
        cuts.sort_unstable();
        for to in cuts {
            t.feed(&bytes[from..to], |i| ends.push(from + i));
            from = to;
        }
        (ends, t.unterminated().is_some())
    }

    fn records(bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes);
        r.byte_records()
            .map(|rec| rec.unwrap().iter().map(<[u8]>::to_vec).collect())
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The tracker agrees with the csv crate's state machine, however the input is cut
        /// into pieces, and cutting after the line breaks it reports gives the csv crate's
        /// own records.
        #[test]
        fn the_tracker_follows_the_csv_crate(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'a'), Just(b','), Just(b'"'), Just(b'\n'), Just(b'\r'), Just(b' ')],
                0..60,
            ),
            cuts in proptest::collection::vec(0usize..100, 0..4),
        ) {
            let (ends, open) = reference(&bytes);
            prop_assert_eq!(tracked(&bytes, &cuts), (ends.clone(), open));
            let mut pieces = Vec::new();
            let mut from = 0;
            for e in ends {
                pieces.extend(records(&bytes[from..=e]));
                from = e + 1;
            }
            pieces.extend(records(&bytes[from..]));
            prop_assert_eq!(pieces, records(&bytes));
        }
    }

    #[test]
    fn an_unterminated_quote_fails_the_read_at_its_line() {
        let text = "a,b\r\n1,\"ok\"\"\"\r\nstill\"\r\n2,\"open\r\n3,4\r\n";
        let (input, _) = LineCounted::new(text.as_bytes());
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut rec = csv::ByteRecord::new();
        let mut read = 0;
        let err = loop {
            match r.read_byte_record(&mut rec) {
                Ok(true) => read += 1,
                Ok(false) => panic!("read to the end without an error"),
                Err(e) => break e,
            }
        };
        assert_eq!(read, 3, "the rows before the open quote are read");
        let csv::ErrorKind::Io(io) = err.kind() else {
            panic!("{err}")
        };
        assert_eq!(unterminated_quote(io), Some(UnterminatedQuote { line: 4 }));
        // A closed quote at the very end is fine.
        let (input, _) = LineCounted::new("a\r\n\"x\"".as_bytes());
        let n = csv::ReaderBuilder::new()
            .has_headers(false)
            .from_reader(input)
            .byte_records()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
            .len();
        assert_eq!(n, 2);
    }

    fn record_lines(text: &str) -> Vec<u64> {
        let (input, lines) = LineCounted::new(text.as_bytes());
        let mut r = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(input);
        let mut rec = csv::StringRecord::new();
        let mut out = Vec::new();
        while r.read_record(&mut rec).unwrap() {
            out.push(lines.line_at(rec.position().unwrap().byte()));
        }
        out
    }

    #[test]
    fn lf_crlf_quoted_breaks_and_blank_lines() {
        assert_eq!(record_lines("a,b\n1,2\n3,4\n"), [1, 2, 3]);
        assert_eq!(record_lines("a,b\r\n1,2\r\n3,4\r\n"), [1, 2, 3]);
        assert_eq!(record_lines("a,b\r\n\"x\r\ny\",2\r\n3,4"), [1, 2, 4]);
        assert_eq!(record_lines("a,b\n\n1,2\n\n\n3,4\n"), [1, 3, 6]);
        assert_eq!(record_lines("a,b\r\n\r\n1,2\r\n"), [1, 3]);
    }
}
