//! Where a campaign's ballots came from (viewer): each device with its last contact,
//! waiting ballots and counts, each client address with its counts, and the refused
//! ballots by reason, so an official can see stuffing.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::codes::campaign;
use super::{AdminError, Viewer};
use crate::http::AppState;
use crate::store::Sources;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/campaigns/{id}/{version}/sources", get(sources))
}

async fn sources(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Sources>, AdminError> {
    campaign(&state, &id, &version)?;
    Ok(Json(state.store().sources(&id, &version).await?))
}
