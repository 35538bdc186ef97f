//! `GET /api/v1/forms` and `GET /api/v1/forms/{id}/{version}`: the collected forms.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::ApiError;
use super::AppState;

/// Every collected form, and which one the app is served.
pub async fn list(State(state): State<AppState>) -> Json<Value> {
    let forms: Vec<Value> = state
        .forms()
        .iter()
        .map(|(held, served)| {
            json!({
                "id": held.form.id,
                "version": held.form.version,
                "title": held.form.title.to_string(),
                "served": served,
            })
        })
        .collect();
    Json(json!({ "forms": forms }))
}

/// One form's definition, exactly as collected.
pub async fn get(
    State(state): State<AppState>,
    Path((id, version)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let held = state
        .forms()
        .find(&id, &version)
        .map_err(ApiError::NotFound)?;
    Ok((
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        held.json.clone(),
    )
        .into_response())
}
