//! True line numbers for CSV errors.
//!
//! The csv crate's `Position::line` runs one line short on CRLF files (the line ends
//! that Excel, WPS and our own exports write), so readers wrap their input in
//! [`LineCounted`], which notes where each `\n` is as bytes stream through, and ask
//! [`Lines::line_at`] for the line of a record's start byte. Memory stays bounded:
//! offsets are forgotten once a later record has passed them.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::Read;
use std::rc::Rc;

#[derive(Default)]
struct State {
    /// Offsets of `\r` and `\n` bytes not yet passed by a query, with whether each is `\n`.
    pending: VecDeque<(u64, bool)>,
    /// How many `\n` bytes lie before the last record asked about.
    passed: u64,
    /// Bytes read so far.
    offset: u64,
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
