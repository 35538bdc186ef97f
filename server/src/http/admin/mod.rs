//! The campaign console's API under /api/v1/admin/: who is asking ([`Viewer`], [`Admin`],
//! from the session cookie), the audit log's writer ([`audit`]), the one error type of
//! these routes ([`AdminError`]), and the layers every admin route gets: an Origin check
//! on state-changing requests, `Cache-Control: no-store`, and the sign-in throttle.
//!
//! Each part of the console adds its routes in a module of its own, merged in [`routes`].

mod attendance;
mod audit;
mod campaigns;
mod codes;
mod dashboard;
mod info;
mod session;
mod sources;

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json, Router};
use serde::Serialize;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::auth::sign_in::SignIns;
pub use crate::auth::Role;
use crate::store::StoreError;

use super::client::ClientAddr;
use super::error::ApiError;
use super::AppState;

/// The cookie that carries the session token.
pub const COOKIE: &str = "pingyi_session";

/// A signed-in official making this request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Official {
    pub name: String,
    pub role: Role,
    /// The client's IP address, for the audit log.
    pub address: String,
}

/// Any signed-in official; otherwise 401.
#[derive(Debug, Clone)]
pub struct Viewer(pub Official);

/// A signed-in official with the admin role; 401 when not signed in, 403 for a viewer.
#[derive(Debug, Clone)]
pub struct Admin(pub Official);

/// Why an admin request failed; every answer is `{"error": "…"}`.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// 401: no session, or it has expired or was ended.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: signed in, but the role does not allow it (or the request came from another site).
    #[error("{0}")]
    Forbidden(String),
    /// 409: the campaign is already in the state asked for.
    #[error("{0}")]
    Conflict(String),
    /// 429: too many failed sign-ins; try again after `retry_after` seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after: u64 },
    /// Any other failure, answered as the rest of the API answers it.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> AdminError {
        AdminError::Api(ApiError::from(e))
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let status = match &self {
            AdminError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AdminError::Forbidden(_) => StatusCode::FORBIDDEN,
            AdminError::Conflict(_) => StatusCode::CONFLICT,
            AdminError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AdminError::Api(_) => {
                let AdminError::Api(e) = self else {
                    unreachable!()
                };
                return e.into_response();
            }
        };
        let mut response = (status, Json(json!({ "error": self.to_string() }))).into_response();
        if let AdminError::TooManyRequests { retry_after, .. } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

/// The session token in the request's cookies, if any.
fn token_in(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|token| !token.is_empty())
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Viewer, AdminError> {
        let ClientAddr(address) = ClientAddr::from_request_parts(parts, state).await?;
        let signed_out = || AdminError::Unauthorized("sign in first".to_string());
        let token = token_in(&parts.headers).ok_or_else(signed_out)?;
        let (name, role) = state
            .store()
            .session(&crate::auth::token_hash(&token))
            .await?
            .ok_or_else(signed_out)?;
        let role =
            Role::parse(&role).map_err(|e| ApiError::Internal(format!("user {name}: {e}")))?;
        Ok(Viewer(Official {
            name,
            role,
            address: address.to_string(),
        }))
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, AdminError> {
        let Viewer(official) = Viewer::from_request_parts(parts, state).await?;
        match official.role {
            Role::Admin => Ok(Admin(official)),
            Role::Viewer => Err(AdminError::Forbidden(format!(
                "this needs the admin role; {} is a viewer",
                official.name
            ))),
        }
    }
}

/// Appends to the audit log: `who` did `action` (`export`, `close`, …) from their
/// address; `detail` says on what (campaign, format, counts).
pub async fn audit(
    state: &AppState,
    who: &Official,
    action: &str,
    detail: &str,
) -> Result<(), ApiError> {
    state
        .store()
        .audit(&who.name, &who.address, action, detail)
        .await
        .map_err(ApiError::from)
}

/// Every admin route, with its layers. A part of the console adds its routes with one
/// `.merge(x::routes())` line here, above the layers (a layer covers only what was
/// merged before it).
pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(session::routes())
        .merge(audit::routes())
        .merge(campaigns::routes())
        .merge(dashboard::routes())
        .merge(info::routes())
        .merge(codes::routes())
        .merge(attendance::routes())
        .merge(sources::routes())
        .route_layer(middleware::from_fn(same_origin))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(Extension(Arc::new(SignIns::default())))
}

/// Refuses a state-changing request whose Origin header names another site than the
/// one it was sent to (a page elsewhere posting with the official's cookie). SameSite
/// cookies already stop this in current browsers; this is the second lock.
async fn same_origin(request: Request, next: Next) -> Response {
    let safe = [Method::GET, Method::HEAD, Method::OPTIONS];
    if safe.contains(request.method()) {
        return next.run(request).await;
    }
    let Some(origin) = request.headers().get(header::ORIGIN) else {
        return next.run(request).await;
    };
    let origin = origin.to_str().unwrap_or("");
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return next.run(request).await;
    }
    AdminError::Forbidden(format!(
        "the request comes from the page of another site (Origin {}), expected one of this \
         server ({}); open the console from this server's /admin/",
        analysis::error::quoted(origin),
        analysis::error::quoted(host)
    ))
    .into_response()
}
