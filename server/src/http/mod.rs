//! The HTTP side: one [`AppState`], the router of the API (/api/v1/…) and the site, and
//! the tower layers that apply the limits (body size, time per request), compression,
//! CORS for devices on other origins, and request logs.

pub mod admin;
pub mod ballots;
pub mod body;
pub mod client;
pub mod devices;
pub mod error;
pub mod forms;
pub mod site;
pub mod status;

use std::sync::Arc;

use tokio::sync::Semaphore;

use axum::extract::{OriginalUri, Request};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{Any, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultMakeSpan, DefaultOnResponse, TraceLayer};
use tracing::Level;

use crate::config::Limits;
use crate::forms::HeldForms;
use crate::site::Site;
use crate::store::Store;
use error::ApiError;

/// What every handler sees: the store, the collected forms, the site, the limits.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    store: Store,
    forms: HeldForms,
    site: Site,
    limits: Limits,
    /// Permits for the ballot submissions handled at once (`Limits::max_submissions`).
    submissions: Arc<Semaphore>,
}

impl AppState {
    pub fn new(store: Store, forms: HeldForms, site: Site, limits: Limits) -> AppState {
        let submissions = Arc::new(Semaphore::new(limits.max_submissions));
        AppState(Arc::new(Inner {
            store,
            forms,
            site,
            limits,
            submissions,
        }))
    }
    pub fn store(&self) -> &Store {
        &self.0.store
    }
    pub fn forms(&self) -> &HeldForms {
        &self.0.forms
    }
    pub fn site(&self) -> &Site {
        &self.0.site
    }
    pub fn limits(&self) -> &Limits {
        &self.0.limits
    }
}

/// The whole application: API under /api/v1/, the site everywhere else.
pub fn router(state: AppState) -> Router {
    let limits = state.limits().clone();
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST, Method::PUT, Method::OPTIONS])
        .allow_headers([header::CONTENT_TYPE]);
    let submissions = Router::new()
        .route("/ballots", post(ballots::post))
        .route("/ballots/{id}", put(ballots::put))
        .route("/ballots/", put(ballots::put_without_id))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            shed_submissions,
        ));
    let api = Router::new()
        .route("/health", get(status::health))
        .route("/status", get(status::status))
        .route("/openapi.json", get(status::openapi))
        .route("/forms", get(forms::list))
        .route("/forms/{id}/{version}", get(forms::get))
        .route("/devices/{device_id}", put(devices::put))
        .merge(submissions)
        .nest("/admin", admin::routes())
        .layer(RequestBodyLimitLayer::new(limits.max_body_bytes))
        .layer(cors)
        .fallback(api_not_found);
    Router::new()
        .nest("/api/v1", api)
        .fallback(site::serve)
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(middleware::from_fn_with_state(limits.clone(), json_errors))
        .layer(CompressionLayer::new().gzip(true))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(DefaultMakeSpan::new().level(Level::INFO))
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
}

/// Past `max_submissions` ballot requests in progress, the next is answered 503 with
/// Retry-After at once, before its body is read: under a flood memory stays bounded and
/// devices come back later (their back-off spreads them out) instead of every request
/// waiting in memory for the database.
async fn shed_submissions(
    axum::extract::State(state): axum::extract::State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    match state.0.submissions.clone().try_acquire_owned() {
        // The permit is held until the response is made.
        Ok(_permit) => next.run(request).await,
        Err(_) => ApiError::Unavailable(format!(
            "the server is busy with {} ballot requests, nothing of this request was stored; try again later",
            state.limits().max_submissions
        ))
        .into_response(),
    }
}

async fn api_not_found(method: Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::NotFound(format!(
        "no API route {method} {}; see /api/v1/openapi.json",
        uri.path()
    ))
}

/// Answers of the layers below (413 from the body limit, 405 from routing, 408 from the
/// timeout) come without a body; on the API every error carries `{"error": …}`.
async fn json_errors(
    axum::extract::State(limits): axum::extract::State<Limits>,
    request: Request,
    next: Next,
) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => body::too_large(limits.max_body_bytes),
        StatusCode::METHOD_NOT_ALLOWED => {
            ApiError::BadRequest(format!("{method} is not allowed on {path}"))
        }
        StatusCode::REQUEST_TIMEOUT => ApiError::BadRequest(format!(
            "the request took longer than {} s",
            limits.request_timeout.as_secs()
        )),
        other => ApiError::BadRequest(other.canonical_reason().unwrap_or("error").to_string()),
    };
    let mut r = error.into_response();
    *r.status_mut() = status;
    if let Some(allow) = response.headers().get(header::ALLOW) {
        r.headers_mut().insert(header::ALLOW, allow.clone());
    }
    r
}
