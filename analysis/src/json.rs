//! The JSON export: the list of ballots, exactly as the [`Ballot`] struct serializes.

use std::io::Read;

use crate::ballot::Ballot;
use crate::error::{json_error, InputError};
use crate::form::Form;

/// The ballots as pretty-printed JSON (what the app offers for download).
///
/// Access codes are never written: an export is read by people who must not be able to
/// tie a code (and so the person it was handed to) to the answers beside it.
pub fn to_string(ballots: &[Ballot]) -> String {
    if ballots.iter().all(|b| b.access_code.is_none()) {
        return serde_json::to_string_pretty(ballots).expect("ballots always serialize");
    }
    let without: Vec<Ballot> = ballots
        .iter()
        .map(|b| Ballot {
            access_code: None,
            ..b.clone()
        })
        .collect();
    serde_json::to_string_pretty(&without).expect("ballots always serialize")
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Generator;

    #[test]
    fn an_export_never_holds_an_access_code() {
        let form = Form::default_form();
        let mut g = Generator::new(&form, 3);
        let mut ballots: Vec<Ballot> = (0..3).map(|_| g.ballot()).collect();
        let plain = to_string(&ballots);
        ballots[1].access_code = Some("K7QM-3XWD".into());
        let text = to_string(&ballots);
        assert!(
            !text.contains("K7QM") && !text.contains("access_code"),
            "{text}"
        );
        assert_eq!(text, plain);
    }
}
