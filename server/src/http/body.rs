//! The JSON body extractor of the API: content type checked (415), body read within the
//! limit (413; the body-limit layer refuses a too large Content-Length before this).

use axum::body::{Body, Bytes};
use axum::extract::FromRequest;
use axum::http::{header, Request};

use super::error::ApiError;
use super::AppState;

/// A request body declared as JSON, read whole.
pub struct JsonBody(pub Bytes);

impl FromRequest<AppState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request<Body>, state: &AppState) -> Result<JsonBody, ApiError> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let essence = content_type.split(';').next().unwrap_or("").trim();
        if !essence.eq_ignore_ascii_case("application/json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON with content-type application/json, got {}",
                if content_type.is_empty() {
                    "no content-type".to_string()
                } else {
                    analysis::error::quoted(content_type)
                }
            )));
        }
        let limit = state.limits().max_body_bytes;
        match axum::body::to_bytes(req.into_body(), usize::MAX).await {
            Ok(bytes) => Ok(JsonBody(bytes)),
            Err(e) if is_too_large(&e) => Err(too_large(limit)),
            Err(e) => Err(ApiError::BadRequest(format!(
                "the body could not be read: {e}"
            ))),
        }
    }
}

/// The 413 error for a body over `limit` bytes.
pub fn too_large(limit: usize) -> ApiError {
    ApiError::TooLarge(format!(
        "the body is larger than {} MiB ({limit} bytes); send fewer ballots per request",
        limit / (1024 * 1024)
    ))
}

fn is_too_large(e: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if c.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = c.source();
    }
    false
}

/// Parses a JSON body into `T`, naming line and column (and the path) when it does not fit.
pub fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, ApiError> {
    let bad = |inner: &serde_json::Error, path: &str| {
        let at = if path == "." || path.is_empty() {
            String::new()
        } else {
            format!(", at {path}")
        };
        ApiError::BadRequest(format!(
            "the body is not {expected}: {} (line {}, column {}{at})",
            analysis::error::json_message(inner),
            inner.line(),
            inner.column()
        ))
    };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        bad(e.inner(), &path)
    })?;
    de.end().map_err(|e| bad(&e, ""))?;
    Ok(value)
}
