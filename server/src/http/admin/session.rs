//! `/api/v1/admin/session`: sign in (POST), who am I (GET), sign out (DELETE).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{AdminError, Viewer, COOKIE};
use crate::auth::sign_in::{SignInError, SignIns};
use crate::auth::{token_hash, SESSION_HOURS};
use crate::http::body::{parse, JsonBody};
use crate::http::client::Peer;
use crate::http::error::ApiError;
use crate::http::AppState;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/session", post(sign_in).get(who).delete(sign_out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    name: String,
    password: String,
}

async fn sign_in(
    State(state): State<AppState>,
    Extension(sign_ins): Extension<Arc<SignIns>>,
    peer: Peer,
    JsonBody(body): JsonBody,
) -> Result<Response, AdminError> {
    let c: Credentials = parse(&body, r#"{"name": "…", "password": "…"}"#)?;
    let session = sign_ins
        .sign_in(state.store(), &c.name, &c.password, peer.addr.ip())
        .await
        .map_err(|e| match e {
            SignInError::Wrong => AdminError::Unauthorized(e.to_string()),
            SignInError::Throttled(wait) => AdminError::TooManyRequests {
                message: e.to_string(),
                retry_after: wait.as_secs().max(1),
            },
            SignInError::Store(e) => e.into(),
            SignInError::Internal(m) => ApiError::Internal(m).into(),
        })?;
    let cookie = format!(
        "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        session.token,
        SESSION_HOURS * 3600,
        if peer.tls { "; Secure" } else { "" }
    );
    let mut response = Json(json!({ "name": session.name, "role": session.role })).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}

async fn who(Viewer(official): Viewer) -> Json<serde_json::Value> {
    Json(json!({ "name": official.name, "role": official.role }))
}

/// Ends the session named by the cookie (if it is still one) and clears the cookie.
async fn sign_out(
    State(state): State<AppState>,
    peer: Peer,
    viewer: Result<Viewer, AdminError>,
    headers: axum::http::HeaderMap,
) -> Result<Response, AdminError> {
    if let Some(token) = super::token_in(&headers) {
        state.store().remove_session(&token_hash(&token)).await?;
    }
    if let Ok(Viewer(official)) = viewer {
        super::audit(&state, &official, "sign_out", "").await?;
    }
    let cleared = format!(
        "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if peer.tls { "; Secure" } else { "" }
    );
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cleared).map_err(|e| ApiError::Internal(e.to_string()))?,
    );
    Ok(response)
}
