//! `GET /api/v1/admin/audit?limit=N` (admin): the audit log, newest first.

use axum::extract::{RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{Admin, AdminError};
use crate::http::error::ApiError;
use crate::http::AppState;

/// Lines answered when no limit is asked for, and the most that may be asked for.
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 10_000;

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/audit", get(list))
}

async fn list(
    State(state): State<AppState>,
    Admin(_): Admin,
    RawQuery(query): RawQuery,
) -> Result<Json<Value>, AdminError> {
    let limit = limit(query.as_deref().unwrap_or(""))?;
    let entries = state.store().audit_entries(limit).await?;
    Ok(Json(json!({ "entries": entries })))
}

/// Reads `limit=N` (1..=MAX_LIMIT) from the query; other parameters are refused by name.
fn limit(query: &str) -> Result<u32, ApiError> {
    let mut limit = DEFAULT_LIMIT;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "limit" {
            return Err(ApiError::BadRequest(format!(
                "the query parameter {} is not known, expected limit=N",
                analysis::error::quoted(key)
            )));
        }
        limit = value
            .parse()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "limit is {}, expected a whole number from 1 to {MAX_LIMIT}",
                    analysis::error::quoted(value)
                ))
            })?;
    }
    Ok(limit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_and_bad_ones_named() {
        assert_eq!(limit("").unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit("limit=5").unwrap(), 5);
        let e = limit("limit=0").unwrap_err().to_string();
        assert!(e.contains("\"0\"") && e.contains("1 to"), "{e}");
        let e = limit("limt=5").unwrap_err().to_string();
        assert!(e.contains("\"limt\""), "{e}");
    }
}
