//! The campaigns (one per collected form version): the list with their ballots and
//! closures (viewer), closing one (admin), and its export (admin).

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{AdminError, Viewer};
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/campaigns", get(list))
}

async fn list(State(state): State<AppState>, Viewer(_): Viewer) -> Result<Json<Value>, AdminError> {
    let counts = state.store().counts().await?;
    let closures = state.store().closures().await?;
    let campaigns: Vec<Value> = state
        .forms()
        .iter()
        .map(|(held, served)| {
            let form = &held.form;
            let ballots = counts
                .by_form
                .iter()
                .find(|c| c.id == form.id && c.version == form.version)
                .map_or(0, |c| c.ballots);
            let closed = closures
                .iter()
                .find(|c| c.form_id == form.id && c.form_version == form.version);
            json!({
                "form_id": form.id,
                "form_version": form.version,
                "title": { "zh-CN": form.title.get("zh-CN"), "en": form.title.get("en") },
                "served": served,
                "ballots": ballots,
                "closed": closed,
            })
        })
        .collect();
    Ok(Json(json!({ "campaigns": campaigns })))
}
