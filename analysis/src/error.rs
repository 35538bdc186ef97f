//! The two shapes of "your input is wrong": a [`Problem`] found while checking a whole
//! document (many are collected and shown together), and an [`InputError`] that stops
//! reading a file at one place. Both always say where, what was found and what was expected.

use std::fmt;

/// One problem found in a document, at a JSON path such as `sections[1].items[3].scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the document: a JSON path, or a CSV column name.
    pub path: String,
    /// What is wrong, naming the bad value and what was expected.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// An error reading one input, with as much of its place as is known:
/// `ballots.csv:14: column "appr.gaj.attitude": "7" is not an option of scale "sat5"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `<stdin>`, or a name the caller chose).
    pub source: String,
    /// 1-based line, when the input is text with lines.
    pub line: Option<u64>,
    /// 1-based column (characters), when known.
    pub column: Option<u64>,
    /// The field: a JSON path or a CSV column name.
    pub field: Option<String>,
    /// What was found and what was expected.
    pub message: String,
}

impl InputError {
    /// An error in `source` with no finer place yet.
    pub fn new(source: impl Into<String>, message: impl Into<String>) -> InputError {
        InputError {
            source: source.into(),
            line: None,
            column: None,
            field: None,
            message: message.into(),
        }
    }

    /// Adds the 1-based line.
    pub fn at_line(mut self, line: u64) -> InputError {
        self.line = Some(line);
        self
    }

    /// Adds the 1-based column.
    pub fn at_column(mut self, column: u64) -> InputError {
        self.column = Some(column);
        self
    }

    /// Adds the field (JSON path or CSV column name).
    pub fn in_field(mut self, field: impl Into<String>) -> InputError {
        self.field = Some(field.into());
        self
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        f.write_str(": ")?;
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for InputError {}

/// Every problem found in one document, shown one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problems {
    /// The document's name (file path, or a caller's name for it).
    pub source: String,
    /// Each problem, in document order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(
            f,
            "{}: {} problem{} found",
            self.source,
            n,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A JSON reading error (with the JSON path serde_path_to_error found) as an
/// [`InputError`]: file, line and column of the place, the path, and serde's message
/// without its own " at line …" tail (the place is already said).
pub fn json_error(
    source: &str,
    e: serde_path_to_error::Error<serde_json::Error>,
    expected: &str,
) -> InputError {
    let path = e.path().to_string();
    let inner = e.into_inner();
    let mut err = InputError::new(source, format!("{}{expected}", json_message(&inner)));
    if inner.line() > 0 {
        err = err
            .at_line(inner.line() as u64)
            .at_column(inner.column() as u64);
    }
    if path != "." && !path.is_empty() {
        err = err.in_field(path);
    }
    err
}

/// serde_json's message without the " at line L column C" it appends, with the values it
/// quotes cut to a readable length ([`cut_quoted`]).
pub fn json_message(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map(|(m, _)| m)
        .unwrap_or(&message);
    cut_quoted(message)
}

/// A message written by another library with every value it quotes (between `"` or
/// `` ` ``) cut to [`SHOWN_CHARS`] characters plus its length when longer, so that
/// `invalid type: string "…50 MB…", expected u64` stays one readable line.
pub fn cut_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut rest = message;
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        let inside = &rest[open + 1..];
        // A `"` escaped with a backslash does not close a Debug-quoted value.
        let mut close = None;
        let mut escaped = false;
        for (i, c) in inside.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && quote == "\"" {
                escaped = true;
            } else if inside[i..].starts_with(quote) {
                close = Some(i);
                break;
            }
        }
        let (value, after) = match close {
            Some(i) => (&inside[..i], Some(&inside[i + 1..])),
            None => (inside, None),
        };
        let n = value.chars().count();
        if n > SHOWN_CHARS {
            out.extend(value.chars().take(SHOWN_CHARS));
            out.push('…');
        } else {
            out.push_str(value);
        }
        let length = if n > SHOWN_CHARS {
            format!(" ({n} characters)")
        } else {
            String::new()
        };
        let Some(after) = after else {
            out.push_str(&length);
            return out;
        };
        out.push_str(quote);
        out.push_str(&length);
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Characters of a value that a message shows before cutting it (see [`quoted`]).
pub const SHOWN_CHARS: usize = 60;

/// Quotes a value for a message, showing control characters visibly and cutting a long
/// value to its first [`SHOWN_CHARS`] characters with its full length:
/// `"aaaa…" (52428800 characters)`. A 50 MB header must not come back as 50 MB of stderr.
pub fn quoted(value: &str) -> String {
    let n = value.chars().count();
    if n <= SHOWN_CHARS {
        return format!("{value:?}");
    }
    let head: String = value.chars().take(SHOWN_CHARS).collect();
    let quoted = format!("{head:?}");
    format!("{}…\" ({n} characters)", &quoted[..quoted.len() - 1])
}

/// [`quoted`] without the quotes' escaping rules for display in a sentence: a value cut to
/// [`SHOWN_CHARS`] characters with `…` and its length when longer, as it is otherwise.
pub fn cut(value: &str) -> String {
    let n = value.chars().count();
    if n <= SHOWN_CHARS {
        return value.to_string();
    }
    let head: String = value.chars().take(SHOWN_CHARS).collect();
    format!("{head}… ({n} characters)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_with_their_length() {
        assert_eq!(quoted("a\tb"), "\"a\\tb\"");
        let long = "x".repeat(1_000_000);
        let q = quoted(&long);
        assert!(q.len() < 100, "{q}");
        assert!(
            q.starts_with("\"xxx") && q.ends_with("…\" (1000000 characters)"),
            "{q}"
        );
        assert_eq!(cut("短"), "短");
        assert_eq!(
            cut(&"满".repeat(61)),
            format!("{}… (61 characters)", "满".repeat(60))
        );
    }

    #[test]
    fn values_quoted_by_other_libraries_are_cut() {
        let long = "y".repeat(5000);
        let m = format!("invalid type: string \"{long}\", expected u64");
        assert_eq!(
            cut_quoted(&m),
            format!(
                "invalid type: string \"{}…\" (5000 characters), expected u64",
                "y".repeat(60)
            )
        );
        let m = format!("unknown field `{long}`, expected `id` or `name`");
        assert_eq!(
            cut_quoted(&m),
            format!(
                "unknown field `{}…` (5000 characters), expected `id` or `name`",
                "y".repeat(60)
            )
        );
        assert_eq!(cut_quoted("a \"b\\\"c\" d"), "a \"b\\\"c\" d");
        assert_eq!(cut_quoted("open \"abc"), "open \"abc");
    }
}
