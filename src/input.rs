//! Reading the user's files with errors that name the file.

use std::path::Path;

use anyhow::{bail, Context};

/// Reads a UTF-8 text file (a leading BOM is dropped), naming the file in every error.
pub fn read_text(path: &Path) -> anyhow::Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            Ok(s)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let line = e.as_bytes()[..at].iter().filter(|b| **b == b'\n').count() + 1;
            bail!(
                "{}:{line}: byte {at} is not UTF-8 text, expected a UTF-8 file (in Excel or WPS save as \"CSV UTF-8\")",
                path.display()
            )
        }
    }
}
