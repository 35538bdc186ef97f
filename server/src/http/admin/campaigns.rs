//! The campaigns (one per collected form version): the list with their ballots and
//! closures (viewer), closing one (admin), and its export (admin). Closing records the
//! closure in one write (from then on the ballot intake refuses the campaign), then makes
//! the final CSV export and keeps its SHA-256; every later CSV export of a closed
//! campaign has exactly those bytes.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{audit, Admin, AdminError, Official, Viewer};
use crate::export::{self, Format, Made};
use crate::forms::HeldForm;
use crate::http::error::ApiError;
use crate::http::AppState;
use crate::store::Closing;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/campaigns", get(list))
        .route("/campaigns/{id}/{version}/close", post(close))
        .route("/campaigns/{id}/{version}/export", get(download))
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

/// The collected form a campaign's path names, or 404.
fn held<'s>(state: &'s AppState, id: &str, version: &str) -> Result<&'s HeldForm, ApiError> {
    state.forms().find(id, version).map_err(ApiError::NotFound)
}

async fn close(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let form = &held(&state, &id, &version)?.form;
    let closure = match state.store().close(&id, &version, &who.name).await? {
        Closing::Closed(c) => c,
        Closing::AlreadyClosed(c) => {
            return Err(AdminError::Conflict(format!(
            "form {id} version {version} was closed at {} by {}; a closed campaign stays closed",
            c.closed_at, c.closed_by
        )))
        }
    };
    let made = final_export(&state, form).await?;
    audit(
        &state,
        &who,
        "close",
        &format!(
            "form {id} version {version}: {} ballots, final CSV sha256 {}",
            closure.ballots, made.sha256
        ),
    )
    .await?;
    Ok(Json(json!({
        "closed_at": closure.closed_at,
        "closed_by": closure.closed_by,
        "ballots": closure.ballots,
        "sha256": made.sha256,
    })))
}

/// The CSV export of a closed campaign, whose checksum is stored with the closure if it
/// is not yet (right after closing, or when the server stopped in between).
async fn final_export(state: &AppState, form: &analysis::Form) -> Result<Made, ApiError> {
    let made = export::campaign(state.store(), form, Format::Csv)
        .await
        .map_err(ApiError::Internal)?;
    state
        .store()
        .set_closure_sha256(&form.id, &form.version, &made.sha256)
        .await?;
    Ok(made)
}

async fn download(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, version)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, AdminError> {
    let format = format_in(query.as_deref().unwrap_or(""))?;
    let form = &held(&state, &id, &version)?.form;
    let closed = state
        .store()
        .closures()
        .await?
        .into_iter()
        .find(|c| c.form_id == id && c.form_version == version);
    let made = match &closed {
        Some(c) if c.sha256.is_empty() && format == Format::Csv => {
            final_export(&state, form).await?
        }
        _ => export::campaign(state.store(), form, format)
            .await
            .map_err(ApiError::Internal)?,
    };
    if let Some(c) = closed.filter(|c| format == Format::Csv && !c.sha256.is_empty()) {
        if c.sha256 != made.sha256 {
            // The stored ballots of a closed campaign changed: say so loudly, keep serving.
            tracing::error!(
                "form {id} version {version} was closed with sha256 {}, its export now has {}",
                c.sha256,
                made.sha256
            );
        }
    }
    record_export(&state, &who, &id, &version, format, &made).await?;
    attachment(&id, &version, format, made)
}

async fn record_export(
    state: &AppState,
    who: &Official,
    id: &str,
    version: &str,
    format: Format,
    made: &Made,
) -> Result<(), ApiError> {
    let detail = format!(
        "form {id} version {version} as {}: {} ballots, sha256 {}",
        format.extension(),
        made.ballots,
        made.sha256
    );
    audit(state, who, "export", &detail).await
}

/// The file as a download named after the campaign, with its checksum in a header.
fn attachment(id: &str, version: &str, format: Format, made: Made) -> Result<Response, AdminError> {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "._-".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    let name = format!("{}-{}.{}", safe(id), safe(version), format.extension());
    let header =
        |v: String| HeaderValue::from_str(&v).map_err(|e| ApiError::Internal(e.to_string()));
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (
                header::CONTENT_DISPOSITION,
                header(format!("attachment; filename=\"{name}\""))?,
            ),
            (
                HeaderName::from_static("x-pingyi-sha256"),
                header(made.sha256)?,
            ),
        ],
        made.bytes,
    )
        .into_response())
}

/// Reads `format=csv|json` (CSV when absent) from the query.
fn format_in(query: &str) -> Result<Format, ApiError> {
    let mut format = Format::Csv;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "format" {
            return Err(ApiError::BadRequest(format!(
                "the query parameter {} is not known, expected format=csv or format=json",
                analysis::error::quoted(key)
            )));
        }
        format = Format::parse(value).map_err(ApiError::BadRequest)?;
    }
    Ok(format)
}
