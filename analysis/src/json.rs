//! The JSON export: the list of ballots, exactly as the [`Ballot`] struct serializes.

use std::io::Read;

use crate::ballot::Ballot;
use crate::error::{json_error, InputError};
use crate::form::Form;

/// The ballots as pretty-printed JSON (what the app offers for download).
pub fn to_string(ballots: &[Ballot]) -> String {
    serde_json::to_string_pretty(ballots).expect("ballots always serialize")
}

/// Reads a JSON export and checks every ballot against `form`. Errors name the file, the
/// line and column of a syntax error, or the JSON path of a bad ballot (`[3].answers.appr`).
pub fn read_all(form: &Form, source: &str, input: impl Read) -> Result<Vec<Ballot>, InputError> {
    let mut de = serde_json::Deserializer::from_reader(input);
    let ballots: Vec<Ballot> =
        serde_path_to_error::deserialize(&mut de).map_err(|e| json_error(source, e, ""))?;
    for (i, b) in ballots.iter().enumerate() {
        if let Some(p) = b.problems(form).into_iter().next() {
            return Err(InputError::new(source, p.message).in_field(format!("[{i}].{}", p.path)));
        }
    }
    Ok(ballots)
}
