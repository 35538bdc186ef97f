//! A campaign's export file: the stored ballots written as the wide CSV or the JSON array
//! that a device and `pingyi merge` write. One implementation for `pingyi export` and
//! the console's export, so both give the same bytes for the same database (a closed
//! campaign's checksum can be checked with either).

use std::io::Write;

use analysis::error::{cut, quoted};
use analysis::{wide_csv, Ballot, Form};
use sha2::Digest;

/// CSV or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

impl Format {
    /// `csv` or `json` (any case); the error says what was expected.
    pub fn parse(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            _ => Err(format!(
                "the format {} is not known, expected csv or json",
                quoted(s)
            )),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json => "application/json; charset=utf-8",
        }
    }
}

/// Why a stored ballot could not be exported.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The stored text is not a ballot.
    #[error("{source_name}: a stored ballot is not a ballot ({error}): {text}")]
    NotABallot {
        source_name: String,
        error: String,
        text: String,
    },
    /// The ballot does not fit the form it is exported with (an answer would be lost).
    #[error("{source_name}: ballot {id}: {path}: {message}")]
    Misfit {
        source_name: String,
        id: String,
        path: String,
        message: String,
    },
    #[error("cannot write the export: {0}")]
    Io(#[from] std::io::Error),
}

enum Out<'f, W: Write> {
    Csv(Box<wide_csv::Writer<'f, W>>),
    Json { w: W, first: bool },
}

/// An export being written, one ballot at a time.
pub struct Export<'f, W: Write> {
    form: &'f Form,
    out: Out<'f, W>,
    source_name: String,
    written: u64,
}

impl<'f, W: Write> Export<'f, W> {
    /// Starts an export of `form`'s ballots into `w`; `source_name` names the database
    /// in messages.
    pub fn new(form: &'f Form, format: Format, w: W, source_name: &str) -> std::io::Result<Self> {
        let out = match format {
            Format::Csv => Out::Csv(Box::new(wide_csv::Writer::new(form, w)?)),
            Format::Json => Out::Json { w, first: true },
        };
        Ok(Export {
            form,
            out,
            source_name: source_name.to_string(),
            written: 0,
        })
    }

    /// The form whose ballots are exported.
    pub fn form(&self) -> &'f Form {
        self.form
    }

    /// Writes one stored ballot (its canonical JSON), checked against the form so that
    /// no answer is dropped by columns that do not hold it.
    pub fn ballot(&mut self, json: &str) -> Result<(), ExportError> {
        let b: Ballot = serde_json::from_str(json).map_err(|e| ExportError::NotABallot {
            source_name: self.source_name.clone(),
            error: e.to_string(),
            text: cut(json),
        })?;
        if let Some(p) = b.problems(self.form).into_iter().next() {
            return Err(ExportError::Misfit {
                source_name: self.source_name.clone(),
                id: quoted(&b.id),
                path: p.path.to_string(),
                message: p.message.to_string(),
            });
        }
        self.write(&b)?;
        Ok(())
    }

    /// Writes a ballot already parsed and checked.
    pub fn write(&mut self, b: &Ballot) -> std::io::Result<()> {
        match &mut self.out {
            Out::Csv(w) => w.write(b)?,
            Out::Json { w, first } => {
                w.write_all(if *first { b"[\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer_pretty(&mut *w, b)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Ends the file; returns the writer and the number of ballots written.
    pub fn finish(self) -> std::io::Result<(W, u64)> {
        let w = match self.out {
            Out::Csv(w) => (*w).finish()?,
            Out::Json { mut w, first } => {
                w.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                w
            }
        };
        let mut w = w;
        w.flush()?;
        Ok((w, self.written))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_export_is_a_header_or_an_empty_array() {
        let form = Form::default_form();
        let (json, n) = Export::new(&form, Format::Json, Vec::new(), "test")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!((json.as_slice(), n), (&b"[]\n"[..], 0));
        let (csv, _) = Export::new(&form, Format::Csv, Vec::new(), "test")
            .unwrap()
            .finish()
            .unwrap();
        assert_eq!(
            csv.iter().filter(|&&b| b == b'\n').count(),
            1,
            "one header line"
        );
    }

    #[test]
    fn a_stored_text_that_is_no_ballot_is_named() {
        let form = Form::default_form();
        let mut e = Export::new(&form, Format::Csv, Vec::new(), "sqlite:x.db").unwrap();
        let err = e.ballot("{\"id\": 5}").unwrap_err().to_string();
        assert!(
            err.starts_with("sqlite:x.db: a stored ballot is not a ballot"),
            "{err}"
        );
        assert!(err.contains("{\"id\": 5}"), "{err}");
    }
}

/// A campaign's export as the console gets it.
#[derive(Debug, Clone)]
pub struct Made {
    pub bytes: Vec<u8>,
    /// Hex SHA-256 of `bytes`.
    pub sha256: String,
    pub ballots: u64,
}

/// The whole export of a campaign, made by the server for the console: the ballots are
/// read in one snapshot, then written in a blocking thread. It is held in memory (the
/// checksum goes in a header, before the body): about twice the size of the file.
pub async fn campaign(
    store: &crate::store::Store,
    form: &Form,
    format: Format,
) -> Result<Made, String> {
    let source_name = format!("the {} database", store.backend());
    let texts = store
        .each_ballot(
            &form.id,
            &form.version,
            Vec::new(),
            |texts: &mut Vec<String>, json: &str| -> Result<(), String> {
                texts.push(json.to_string());
                Ok(())
            },
        )
        .await
        .map_err(|e| match e {
            Ok(e) => e,
            Err(e) => format!("cannot read the ballots: {e}"),
        })?;
    let form = form.clone();
    tokio::task::spawn_blocking(move || -> Result<Made, String> {
        let fail = |e: ExportError| e.to_string();
        let mut export =
            Export::new(&form, format, Vec::new(), &source_name).map_err(|e| fail(e.into()))?;
        for json in &texts {
            export.ballot(json).map_err(fail)?;
        }
        let (bytes, ballots) = export.finish().map_err(|e| fail(e.into()))?;
        let sha256 = crate::auth::hex(&sha2::Sha256::digest(&bytes));
        Ok(Made {
            bytes,
            sha256,
            ballots,
        })
    })
    .await
    .map_err(|e| format!("the export failed: {e}"))?
}
