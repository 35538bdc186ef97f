//! Meeting attendance of a campaign's groups (members present 实到, all members 应到):
//! recorded by an admin at the meeting, read by any official; the scoring rules take
//! them as head counts.

use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::codes::campaign;
use super::{audit, Admin, AdminError, Viewer};
use crate::http::body::{parse, JsonBody};
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::Attendance;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/campaigns/{id}/{version}/attendance", get(list))
        .route("/campaigns/{id}/{version}/attendance/{group}", put(record))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    present: u64,
    #[serde(default)]
    members: Option<u64>,
}

async fn list(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    campaign(&state, &id, &version)?;
    let groups = state.store().attendance(&id, &version).await?;
    Ok(Json(json!({ "groups": groups })))
}

async fn record(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, version, group)): Path<(String, String, String)>,
    JsonBody(body): JsonBody,
) -> Result<Json<Attendance>, AdminError> {
    let held = campaign(&state, &id, &version)?;
    let Record { present, members } = parse(&body, r#"attendance {"present": 45, "members": 60}"#)?;
    if !held.form.groups.iter().any(|g| g.id == group) {
        let groups: Vec<&str> = held.form.groups.iter().map(|g| g.id.as_str()).collect();
        return Err(ApiError::Unprocessable(format!(
            "form {} version {} has no group {}; its groups are {}",
            analysis::error::quoted(&id),
            analysis::error::quoted(&version),
            analysis::error::quoted(&group),
            groups.join(", ")
        ))
        .into());
    }
    if let Some(members) = members.filter(|m| present > *m) {
        return Err(ApiError::Unprocessable(format!(
            "present is {present}, more than the group's {members} members"
        ))
        .into());
    }
    let row = state
        .store()
        .record_attendance(&id, &version, &group, present, members, &who.name)
        .await
        .map_err(ApiError::storing)?;
    let of = members.map_or(String::new(), |m| format!(" of {m}"));
    let detail = format!("form {id} version {version}: group {group} present {present}{of}");
    audit(&state, &who, "attendance", &detail).await?;
    Ok(Json(row))
}
