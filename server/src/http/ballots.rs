//! `POST /api/v1/ballots` (a batch) and `PUT /api/v1/ballots/{id}` (one ballot).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::body::{parse, JsonBody};
use super::client::ClientAddr;
use super::error::ApiError;
use super::AppState;
use crate::intake::{self, Arrival, Status};

/// Where the request came from and the rate limits it is under.
fn arrival(state: &AppState, ClientAddr(address): ClientAddr) -> Arrival {
    Arrival {
        address: address.to_string(),
        limits: state.limits().rates,
    }
}

#[derive(Deserialize)]
struct Batch {
    ballots: Vec<Value>,
}

/// Checks and stores a batch; one result per ballot, in the order sent.
pub async fn post(
    State(state): State<AppState>,
    client: ClientAddr,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let batch: Batch = parse(&body, r#"a batch {"ballots": [ballot, …]}"#)?;
    let max = state.limits().max_ballots;
    if batch.ballots.is_empty() {
        return Err(ApiError::Unprocessable(format!(
            "the batch holds no ballots; send 1 to {max}"
        )));
    }
    if batch.ballots.len() > max {
        return Err(ApiError::Unprocessable(format!(
            "at most {max} ballots per batch, got {}",
            batch.ballots.len()
        )));
    }
    let from = arrival(&state, client);
    let result = intake::take(state.store(), state.forms(), batch.ballots, true, &from)
        .await
        .map_err(ApiError::storing)?;
    Ok(Json(result).into_response())
}

/// Stores one ballot under the id its URL names: 201 stored, 200 already stored,
/// 409 another ballot holds the id, 422 refused (its `reason` says why).
pub async fn put(
    State(state): State<AppState>,
    client: ClientAddr,
    Path(id): Path<String>,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let from = arrival(&state, client);
    put_one(state, from, id, body).await
}

/// `PUT /api/v1/ballots/` names the empty id: answered like any other id (a ballot with
/// an empty id is refused), not as a missing route.
pub async fn put_without_id(
    State(state): State<AppState>,
    client: ClientAddr,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let from = arrival(&state, client);
    put_one(state, from, String::new(), body).await
}

async fn put_one(
    state: AppState,
    from: Arrival,
    id: String,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let value: Value = parse(&body, "a ballot")?;
    if let Some(body_id) = value.get("id").and_then(Value::as_str) {
        if body_id != id {
            return Err(ApiError::BadRequest(format!(
                "the URL names ballot {} but the body's id is {}",
                analysis::error::quoted(&id),
                analysis::error::quoted(body_id)
            )));
        }
    }
    let mut batch = intake::take(state.store(), state.forms(), vec![value], false, &from)
        .await
        .map_err(ApiError::storing)?;
    let result = batch.results.remove(0);
    let answer = |status: StatusCode, body: Value| (status, Json(body)).into_response();
    let mut body = serde_json::to_value(&result).map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(match result.status {
        Status::Stored => answer(StatusCode::CREATED, body),
        Status::AlreadyStored => answer(StatusCode::OK, body),
        Status::Conflict => {
            body["error"] = json!(intake::conflict_message(&result.id));
            answer(StatusCode::CONFLICT, body)
        }
        Status::Refused => {
            body["error"] = json!("the ballot is refused; see problems");
            answer(StatusCode::UNPROCESSABLE_ENTITY, body)
        }
    })
}
