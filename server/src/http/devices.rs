//! `PUT /api/v1/devices/{device_id}`: a device's heartbeat, saying how many ballots wait
//! on it, so the console shows devices that have stopped delivering.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;

use super::body::{parse, JsonBody};
use super::client::ClientAddr;
use super::error::ApiError;
use super::AppState;
use crate::store::Heartbeat;

/// Longest device id taken (devices make a UUID).
const MAX_ID: usize = 200;

#[derive(Deserialize)]
struct Beat {
    waiting: u64,
    form_id: String,
    form_version: String,
}

/// Records the heartbeat: 204.
pub async fn put(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    Path(device_id): Path<String>,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let beat: Beat = parse(
        &body,
        r#"a heartbeat {"waiting": 0, "form_id": "…", "form_version": "…"}"#,
    )?;
    if device_id.trim().is_empty() || device_id.chars().count() > MAX_ID {
        return Err(ApiError::BadRequest(format!(
            "the device id {} is not one, expected 1 to {MAX_ID} characters",
            analysis::error::quoted(&device_id)
        )));
    }
    state
        .forms()
        .find(&beat.form_id, &beat.form_version)
        .map_err(ApiError::Unprocessable)?;
    state
        .store()
        .heartbeat(Heartbeat {
            device_id,
            address: address.to_string(),
            waiting: beat.waiting,
            form_id: beat.form_id,
            form_version: beat.form_version,
        })
        .await
        .map_err(ApiError::storing)?;
    Ok(StatusCode::NO_CONTENT)
}
