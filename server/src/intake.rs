//! Taking ballots in: each element of a batch is read as a ballot on its own, checked
//! against its form with the same `analysis` code as the CLI's readers, and the good ones
//! of the batch are brought to their campaign in one durable transaction, which decides
//! (closed, access code, rate limit: see [`Store::admit`]) and stores. Refused ones are
//! kept (raw, with the reason) and counted. One result per element, in the order sent.
//!
//! A ballot's access code is read here and handed to the store beside the ballot, never
//! in it: the stored ballot, its hash and any refusal kept never hold the code.

use analysis::access_code::AccessCode;
use analysis::ballot::Ballot;
use analysis::error::cut_quoted;
use serde::Serialize;
use serde_json::Value;

use crate::config::RateLimits;
use crate::forms::HeldForms;
use crate::store::{Admission, Incoming, Outcome, Reason, Refusal, Store, StoreError};

/// The ballot field that carries an access code.
const CODE_FIELD: &str = "access_code";

/// Where a batch came from and the limits it is under.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The client's address (the TCP peer).
    pub address: String,
    /// The rate limits of open groups.
    pub limits: RateLimits,
}

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
    /// Why a refused ballot was refused: `invalid`, `closed`, `code_missing`,
    /// `code_invalid`, `code_used` or `rate_limited`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
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
    arrival: &Arrival,
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
            Ok((ballot, admission)) => {
                let mut incoming = Incoming::from_ballot(&ballot);
                incoming.admission = Admission {
                    address: arrival.address.clone(),
                    limits: arrival.limits,
                    ..admission
                };
                good.push((i, incoming));
                results.push(BallotResult {
                    id,
                    status: Status::Stored,
                    reason: None,
                    problems: vec![],
                });
            }
            Err(problems) => {
                refusals.push(refusal(value, &id, &problems));
                results.push(BallotResult {
                    id,
                    status: Status::Refused,
                    reason: Some(Reason::Invalid.as_str()),
                    problems,
                });
            }
        }
    }
    let (places, incoming): (Vec<usize>, Vec<Incoming>) = good.into_iter().unzip();
    if !incoming.is_empty() {
        let verdicts = store.admit(incoming).await?;
        for (i, verdict) in places.into_iter().zip(verdicts) {
            let at = if prefixed {
                format!("[{i}]")
            } else {
                String::new()
            };
            let result = &mut results[i];
            match verdict {
                Ok(Outcome::Stored) => {}
                Ok(Outcome::AlreadyStored) => result.status = Status::AlreadyStored,
                Ok(Outcome::Conflict) => {
                    result.status = Status::Conflict;
                    result.problems.push(Problem {
                        path: join(&at, "id"),
                        message: conflict_message(&result.id),
                    });
                }
                Err(reason) => {
                    result.status = Status::Refused;
                    result.reason = Some(reason.as_str());
                    result.problems.push(Problem {
                        path: join(&at, reason.path()),
                        message: reason.message().to_string(),
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

/// Reads one element as a ballot and checks it against its form; answers the ballot
/// (without its access code) and what its campaign admits it by.
fn check(forms: &HeldForms, value: &Value, at: &str) -> Result<(Ballot, Admission), Vec<Problem>> {
    let problem = |path: &str, message: String| {
        vec![Problem {
            path: join(at, path),
            message,
        }]
    };
    let ballot: Ballot = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let path = if path == "." { String::new() } else { path };
        problem(&path, cut_quoted(&e.into_inner().to_string()))
    })?;
    let held = forms
        .find(&ballot.form_id, &ballot.form_version)
        .map_err(|message| problem("form_id", message))?;
    let problems: Vec<Problem> = ballot
        .problems(&held.form)
        .into_iter()
        .map(|p| Problem {
            message: if p.path == CODE_FIELD {
                // Said without the typed code, which the refusal kept would otherwise hold.
                ballot
                    .access_code
                    .as_deref()
                    .and_then(|typed| AccessCode::parse(typed).err())
                    .map_or(p.message, |e| e.to_string())
            } else {
                p.message
            },
            path: join(at, &p.path),
        })
        .collect();
    if !problems.is_empty() {
        return Err(problems);
    }
    let code = ballot
        .access_code
        .as_deref()
        .and_then(|typed| AccessCode::parse(typed).ok());
    let admission = Admission {
        code_required: held
            .form
            .groups
            .iter()
            .any(|g| g.id == ballot.group && g.code_required),
        code,
        ..Admission::default()
    };
    Ok((without_code(ballot), admission))
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
        raw: without_code_field(value).to_string(),
    }
}

/// The ballot as stored: its access code is taken out, so neither the stored JSON nor
/// its hash holds it, and a resent ballot is the same ballot with or without its code.
fn without_code(ballot: Ballot) -> Ballot {
    Ballot {
        access_code: None,
        ..ballot
    }
}

/// A refused ballot's text as kept: as it came, less any access code (the database
/// never holds a code in clear, not even a mistyped one).
fn without_code_field(value: &Value) -> Value {
    let mut value = value.clone();
    if let Some(fields) = value.as_object_mut() {
        fields.remove(CODE_FIELD);
    }
    value
}

/// `[3]` + `answers.x` → `[3].answers.x`; either side may be empty.
fn join(at: &str, path: &str) -> String {
    match (at.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => at.to_string(),
        (false, false) => format!("{at}.{path}"),
    }
}
