//! GET /admin/campaigns/{id}/{version}/dashboard?rules=NAME (viewer): the live
//! dashboard's numbers, computed by [`crate::dashboard::Dashboard`].

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{AdminError, Viewer};
use crate::dashboard::{Dashboard, DashboardError};
use crate::http::error::ApiError;
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/campaigns/{id}/{version}/dashboard", get(dashboard))
}

#[derive(Deserialize)]
struct Asked {
    rules: Option<String>,
}

async fn dashboard(
    State(state): State<AppState>,
    Extension(dash): Extension<Arc<Dashboard>>,
    Viewer(_): Viewer,
    Path((id, version)): Path<(String, String)>,
    Query(asked): Query<Asked>,
) -> Result<Json<Value>, AdminError> {
    let form = &state
        .forms()
        .find(&id, &version)
        .map_err(ApiError::NotFound)?
        .form;
    let per_hour = state.store().arrivals_per_hour(&id, &version).await?;
    let heads = state.store().head_counts(&id, &version).await?;
    let body = dash
        .compute(form, asked.rules.as_deref(), per_hour, heads)
        .await
        .map_err(|e| match e {
            DashboardError::UnknownRules(m) => ApiError::BadRequest(m),
            DashboardError::Failed(m) => ApiError::Unprocessable(m),
        })?;
    Ok(Json(body))
}
