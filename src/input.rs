//! Reading the user's files with errors that name the file.

use std::io::Read;
use std::path::Path;

use anyhow::Context;

/// Fails with "cannot read FILE: why" when the file cannot even be opened.
fn openable(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .map(drop)
        .with_context(|| format!("cannot read {}", path.display()))
}

/// Reads a text file as UTF-8 without its BOM: UTF-8 as it is, UTF-16 transcoded, any
/// other encoding refused with the fix ([`analysis::files::read_text`]).
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    openable(path)?;
    Ok(analysis::files::read_text(path)?)
}

/// Opens a text file for streaming as UTF-8 ([`analysis::files::open_text`]).
pub fn open_text(path: &Path) -> anyhow::Result<impl Read + Send> {
    openable(path)?;
    Ok(std::io::BufReader::new(analysis::files::open_text(path)?))
}
