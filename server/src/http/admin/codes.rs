//! Access codes of a campaign: issuing a batch (admin; the only time the codes are
//! seen, as JSON, the printable PDF sheet or CSV) and the counts issued and used per
//! group (viewer).

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit, Admin, AdminError, Viewer};
use crate::codes::{self, font, sheet};
use crate::forms::HeldForm;
use crate::http::body::{parse, JsonBody};
use crate::http::client::Peer;
use crate::http::error::ApiError;
use crate::http::AppState;

/// The campaign (collected form version) a route names; 404 when there is none.
pub(super) fn campaign<'s>(
    state: &'s AppState,
    id: &str,
    version: &str,
) -> Result<&'s HeldForm, ApiError> {
    state.forms().find(id, version).map_err(ApiError::NotFound)
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/campaigns/{id}/{version}/codes", get(counts).post(issue))
}

#[derive(Deserialize)]
struct IssueRequest {
    group: String,
    count: usize,
}

#[derive(Deserialize)]
struct FormatQuery {
    format: Option<String>,
}

/// How the issued codes are answered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Pdf,
    Csv,
}

impl Format {
    fn parse(given: Option<&str>) -> Result<Format, ApiError> {
        match given {
            None | Some("json") => Ok(Format::Json),
            Some("pdf") => Ok(Format::Pdf),
            Some("csv") => Ok(Format::Csv),
            Some(other) => Err(ApiError::BadRequest(format!(
                "the format is {}, expected json, pdf or csv",
                analysis::error::quoted(other)
            ))),
        }
    }
}

/// Codes issued and used per group that votes with codes.
async fn counts(
    State(state): State<AppState>,
    Viewer(_): Viewer,
    Path((id, version)): Path<(String, String)>,
) -> Result<Json<Value>, AdminError> {
    let held = campaign(&state, &id, &version)?;
    let counted = state.store().code_counts(&id, &version).await?;
    let mut names = codes::code_groups(&held.form);
    // Codes of a group the form does not mark stay visible.
    for c in &counted {
        if !names.contains(&c.group) {
            names.push(c.group.clone());
        }
    }
    let groups: Vec<Value> = names
        .into_iter()
        .map(|group| {
            let c = counted.iter().find(|c| c.group == group);
            json!({
                "group": group,
                "issued": c.map_or(0, |c| c.issued),
                "used": c.map_or(0, |c| c.used),
            })
        })
        .collect();
    Ok(Json(json!({ "groups": groups })))
}

/// Issues a batch of codes and answers them once.
async fn issue(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((id, version)): Path<(String, String)>,
    Query(query): Query<FormatQuery>,
    peer: Peer,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<Response, AdminError> {
    let format = Format::parse(query.format.as_deref())?;
    let held = campaign(&state, &id, &version)?;
    let request: IssueRequest = parse(&body, r#"a request {"group": "npc", "count": 60}"#)?;
    let label = codes::check_request(&held.form, &request.group, request.count)
        .map_err(ApiError::Unprocessable)?;
    let public_url = public_url(&headers, peer);
    // Everything that could fail after issuing is tried first: codes issued and never
    // seen would be lost.
    let fonts = match format {
        Format::Pdf => Some(
            tokio::task::spawn_blocking(|| font::find(None))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(ApiError::Internal)?,
        ),
        _ => None,
    };
    sheet::check_url(&public_url, &request.group).map_err(ApiError::Unprocessable)?;
    let issued = state
        .store()
        .issue_codes(&id, &version, &request.group, request.count)
        .await
        .map_err(ApiError::storing)?;
    let detail = format!(
        "form {id} version {version}: {} codes for group {} (batch {}) as {}",
        issued.codes.len(),
        request.group,
        issued.batch,
        query.format.as_deref().unwrap_or("json")
    );
    audit(&state, &who, "issue_codes", &detail).await?;
    let answer = Answer {
        title: held.form.title.get("zh-CN").to_string(),
        group: request.group,
        label,
        public_url,
        issued,
    };
    match (format, fonts) {
        (Format::Pdf, Some(fonts)) => {
            let pdf = tokio::task::spawn_blocking(move || {
                sheet::pdf(&answer.sheet(), &fonts).map(|pdf| (pdf, answer.file_name("pdf")))
            })
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .map_err(ApiError::Internal)?;
            Ok(attachment(pdf.0, "application/pdf", &pdf.1))
        }
        (Format::Csv, _) => {
            let csv = sheet::csv(&answer.sheet());
            Ok(attachment(
                csv,
                "text/csv; charset=utf-8",
                &answer.file_name("csv"),
            ))
        }
        _ => Ok(Json(json!({
            "group": answer.group,
            "batch": answer.issued.batch,
            "codes": answer.issued.codes.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
        .into_response()),
    }
}

/// What the issued codes are answered with.
struct Answer {
    title: String,
    group: String,
    label: String,
    public_url: String,
    issued: crate::store::Issued,
}

impl Answer {
    fn sheet(&self) -> sheet::Sheet<'_> {
        sheet::Sheet {
            title: &self.title,
            group: &self.group,
            group_label: &self.label,
            public_url: &self.public_url,
            batch: self.issued.batch,
            codes: &self.issued.codes,
        }
    }

    fn file_name(&self, extension: &str) -> String {
        let safe: String = self
            .group
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!("codes-{safe}-batch{}.{extension}", self.issued.batch)
    }
}

/// The address the app is reached at, as the official's browser reached this server.
fn public_url(headers: &HeaderMap, peer: Peer) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let scheme = if peer.tls { "https" } else { "http" };
    format!("{scheme}://{host}/")
}

fn attachment(bytes: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response()
}
