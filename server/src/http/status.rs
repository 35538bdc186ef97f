//! `GET /api/v1/health` and `GET /api/v1/status`: is the database there, what it holds.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::AppState;

/// 200 when the database answers, 503 (with Retry-After) when it does not.
pub async fn health(State(state): State<AppState>) -> Response {
    let database = state.store().backend();
    match state.store().check().await {
        Ok(()) => Json(json!({ "status": "ok", "database": database })).into_response(),
        Err(e) => ApiError::Unavailable(format!("the {database} database does not answer: {e}"))
            .into_response(),
    }
}

/// The counts: ballots stored, repeats, conflicts, refusals, ballots by form.
pub async fn status(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.store().counts().await?).into_response())
}

/// The OpenAPI document of this API.
pub async fn openapi() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )],
        include_str!("../../../docs/openapi.json"),
    )
        .into_response()
}
