//! Taking ballots in: each element of a batch is read as a ballot on its own, checked
//! against its form with the same `analysis` code as the CLI's readers, and the good ones
//! of the batch are stored in one durable transaction. Refused ones are kept (raw, with
//! the reason) and counted. One result per element, in the order sent.

use analysis::ballot::Ballot;
use analysis::error::cut_quoted;
use serde::Serialize;
use serde_json::Value;

use crate::forms::HeldForms;
use crate::store::{Incoming, Outcome, Refusal, Store, StoreError};

/// What happened to one ballot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Stored,
    AlreadyStored,
    Conflict,
    Refused,
}

/// Where and why, for a refused or conflicting ballot.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub path: String,
    pub message: String,
}

/// The answer for one ballot.
#[derive(Debug, Clone, Serialize)]
pub struct BallotResult {
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<Problem>,
}

/// The answer for a batch: one result per ballot and the totals.
#[derive(Debug, Serialize)]
pub struct BatchResult {
    pub results: Vec<BallotResult>,
    pub stored: usize,
    pub already_stored: usize,
    pub conflicts: usize,
    pub refused: usize,
}

impl BatchResult {
    fn new(results: Vec<BallotResult>) -> BatchResult {
        let count = |s: Status| results.iter().filter(|r| r.status == s).count();
        BatchResult {
            stored: count(Status::Stored),
            already_stored: count(Status::AlreadyStored),
            conflicts: count(Status::Conflict),
            refused: count(Status::Refused),
            results,
        }
    }
}

/// Checks and stores a batch. `prefixed` puts `[i].` before every path (a batch); a
/// single ballot's paths start at the ballot. Fails only when the store does, and then
/// nothing of the batch is acknowledged.
pub async fn take(
    store: &Store,
    forms: &HeldForms,
    elements: Vec<Value>,
    prefixed: bool,
) -> Result<BatchResult, StoreError> {
    let mut results = Vec::with_capacity(elements.len());
    let mut good = Vec::new();
    let mut refusals = Vec::new();
    for (i, value) in elements.iter().enumerate() {
        let at = if prefixed {
            format!("[{i}]")
        } else {
            String::new()
        };
        let id = value
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        match check(forms, value, &at) {
            Ok(ballot) => {
                good.push((i, Incoming::from_ballot(&ballot)));
                results.push(BallotResult {
                    id,
                    status: Status::Stored,
                    problems: vec![],
                });
            }
            Err(problems) => {
                refusals.push(refusal(value, &id, &problems));
                results.push(BallotResult {
                    id,
                    status: Status::Refused,
                    problems,
                });
            }
        }
    }
    let (places, incoming): (Vec<usize>, Vec<Incoming>) = good.into_iter().unzip();
    if !incoming.is_empty() {
        let outcomes = store.submit(incoming).await?;
        for (i, outcome) in places.into_iter().zip(outcomes) {
            let result = &mut results[i];
            match outcome {
                Outcome::Stored => {}
                Outcome::AlreadyStored => result.status = Status::AlreadyStored,
                Outcome::Conflict => {
                    result.status = Status::Conflict;
                    result.problems.push(Problem {
                        path: join(
                            &if prefixed {
                                format!("[{i}]")
                            } else {
                                String::new()
                            },
                            "id",
                        ),
                        message: conflict_message(&result.id),
                    });
                }
            }
        }
    }
    if !refusals.is_empty() {
        store.refuse(refusals).await?;
    }
    Ok(BatchResult::new(results))
}

/// The message for a ballot whose id is already stored with other content.
pub fn conflict_message(id: &str) -> String {
    format!(
        "a different ballot with id {} is already stored",
        analysis::error::quoted(id)
    )
}

/// Reads one element as a ballot and checks it against its form.
fn check(forms: &HeldForms, value: &Value, at: &str) -> Result<Ballot, Vec<Problem>> {
    let ballot: Ballot = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        vec![Problem {
            path: join(at, &path),
            message: cut_quoted(&e.into_inner().to_string()),
        }]
    })?;
    let held = forms
        .find(&ballot.form_id, &ballot.form_version)
        .map_err(|message| {
            vec![Problem {
                path: join(at, "form_id"),
                message,
            }]
        })?;
    let problems: Vec<Problem> = ballot
        .problems(&held.form)
        .into_iter()
        .map(|p| Problem {
            path: join(at, &p.path),
            message: p.message,
        })
        .collect();
    if problems.is_empty() {
        Ok(ballot)
    } else {
        Err(problems)
    }
}

fn refusal(value: &Value, id: &str, problems: &[Problem]) -> Refusal {
    let field = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let reason: Vec<String> = problems
        .iter()
        .map(|p| {
            if p.path.is_empty() {
                p.message.clone()
            } else {
                format!("{}: {}", p.path, p.message)
            }
        })
        .collect();
    Refusal {
        response_id: id.to_string(),
        form_id: field("form_id"),
        form_version: field("form_version"),
        reason: reason.join("; "),
        raw: value.to_string(),
    }
}

/// `[3]` + `answers.x` → `[3].answers.x`; either side may be empty.
fn join(at: &str, path: &str) -> String {
    match (at.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => at.to_string(),
        (false, false) => format!("{at}.{path}"),
    }
}
