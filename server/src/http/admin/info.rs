//! GET /admin/info (viewer): what the console shows on posters and offers for scoring,
//! the public address respondents open and the rules files `serve` was given.

use std::sync::Arc;

use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{json, Value};

use super::{AdminError, Viewer};
use crate::dashboard::Dashboard;
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/info", get(info))
}

async fn info(
    Extension(dash): Extension<Arc<Dashboard>>,
    Viewer(_): Viewer,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(json!({
        "public_url": dash.public_url(),
        "rules": dash.rules(),
    })))
}
