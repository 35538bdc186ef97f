//! Everything outside /api/: the site's files, `/form.json` and `/build.js`. GET and HEAD
//! only; `Cache-Control: no-cache` because the service worker, not the HTTP cache,
//! decides what is kept.

use axum::extract::State;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::AppState;

pub async fn serve(State(state): State<AppState>, method: Method, uri: Uri) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "GET, HEAD")],
            "only GET and HEAD are served here\n",
        )
            .into_response();
    }
    let Some(file) = state.site().get(uri.path()) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let mut response = file.bytes.clone().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(file.content_type),
    );
    response
}
