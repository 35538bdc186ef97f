//! The admin API as the console sees it: the answers' shapes (only the fields shown) and
//! one error type that says in words why the server refused. Every call is same-origin,
//! so the session cookie goes along by itself.

use gloo_net::http::{Request, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::i18n::{fill, Texts};

/// Where the admin API lives.
pub const ADMIN: &str = "/api/v1/admin";

/// Why a call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No answer at all.
    Network(String),
    /// An answer with an error status and the server's `error` text.
    Status {
        status: u16,
        error: String,
        retry_after: Option<u64>,
    },
}

impl ApiError {
    /// The message shown to the official.
    pub fn words(&self, t: &Texts) -> String {
        match self {
            ApiError::Network(e) => fill(t.network_failed, &[("e", e)]),
            ApiError::Status { status: 401, .. } => t.sign_in_first.to_string(),
            ApiError::Status { status: 403, .. } => t.forbidden.to_string(),
            ApiError::Status { status: 404, .. } => t.not_found.to_string(),
            ApiError::Status {
                status: 429,
                retry_after,
                ..
            } => fill(
                t.too_many_tries,
                &[("n", &retry_after.unwrap_or(60).to_string())],
            ),
            ApiError::Status { error, .. } => fill(t.server_said, &[("e", error)]),
        }
    }

    /// Whether the session is gone (the console goes back to sign-in).
    pub fn signed_out(&self) -> bool {
        matches!(self, ApiError::Status { status: 401, .. })
    }
}

/// The signed-in official (`GET /admin/session`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Me {
    pub name: String,
    pub role: String,
}

impl Me {
    pub fn is_admin(&self) -> bool {
        self.role == "admin"
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Closure {
    pub closed_at: String,
    pub closed_by: String,
    pub ballots: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Campaign {
    pub form_id: String,
    pub form_version: String,
    #[serde(default)]
    pub title: Value,
    #[serde(default)]
    pub served: bool,
    pub ballots: u64,
    pub closed: Option<Closure>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Campaigns {
    pub campaigns: Vec<Campaign>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct RuleName {
    pub name: String,
    #[serde(default)]
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Info {
    pub public_url: String,
    #[serde(default)]
    pub rules: Vec<RuleName>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cell {
    pub unit: String,
    pub group: String,
    pub n: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Hour {
    pub hour: String,
    pub ballots: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct HeadCount {
    #[serde(default)]
    pub issued: Option<u64>,
    #[serde(default)]
    pub returned: Option<u64>,
    #[serde(default)]
    pub present: Option<u64>,
    #[serde(default)]
    pub members: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Dashboard {
    pub ballots: u64,
    pub by_unit_group: Vec<Cell>,
    pub per_hour: Vec<Hour>,
    #[serde(default)]
    pub head_counts: std::collections::BTreeMap<String, HeadCount>,
    #[serde(default)]
    pub scores: Value,
    #[serde(default)]
    pub computed_at: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Device {
    pub device_id: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub last_contact: String,
    #[serde(default)]
    pub waiting: Option<u64>,
    #[serde(default)]
    pub ballots: u64,
    #[serde(default)]
    pub refused: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AddressCount {
    pub address: String,
    pub ballots: u64,
    pub refused: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReasonCount {
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Sources {
    pub devices: Vec<Device>,
    pub addresses: Vec<AddressCount>,
    pub refused_by_reason: Vec<ReasonCount>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CodeCount {
    pub group: String,
    pub issued: u64,
    pub used: u64,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CodeCounts {
    pub groups: Vec<CodeCount>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Attendance {
    pub group: String,
    pub present: u64,
    pub members: Option<u64>,
    #[serde(default)]
    pub recorded_at: String,
    #[serde(default)]
    pub recorded_by: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AttendanceList {
    pub groups: Vec<Attendance>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditEntry {
    pub at: String,
    pub user: String,
    #[serde(default)]
    pub address: String,
    pub action: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Audit {
    pub entries: Vec<AuditEntry>,
}

/// A downloaded file: its bytes, the name the server gave it and its checksum header.
#[derive(Debug, Clone, PartialEq)]
pub struct FileAnswer {
    pub bytes: Vec<u8>,
    pub mime: String,
    pub filename: Option<String>,
    pub sha256: Option<String>,
}

/// `/api/v1/admin/campaigns/{id}/{version}` + `rest`, with the path parts escaped.
pub fn campaign_url(id: &str, version: &str, rest: &str) -> String {
    format!(
        "{ADMIN}/campaigns/{}/{}{rest}",
        js_sys::encode_uri_component(id),
        js_sys::encode_uri_component(version)
    )
}

async fn send(req: Result<Request, gloo_net::Error>) -> Result<Response, ApiError> {
    let req = req.map_err(|e| ApiError::Network(e.to_string()))?;
    let resp = req
        .send()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    if resp.ok() {
        return Ok(resp);
    }
    let status = resp.status();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.trim().parse().ok());
    let text = resp.text().await.unwrap_or_default();
    let error = serde_json::from_str::<Value>(&text)
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| text.trim().chars().take(200).collect());
    Err(ApiError::Status {
        status,
        error,
        retry_after,
    })
}

async fn json<T: DeserializeOwned>(resp: Response) -> Result<T, ApiError> {
    resp.json()
        .await
        .map_err(|e| ApiError::Network(format!("unexpected answer: {e}")))
}

/// GET a JSON answer.
pub async fn get<T: DeserializeOwned>(url: &str) -> Result<T, ApiError> {
    json(send(Ok(Request::get(url).build().expect("a GET builds"))).await?).await
}

fn with_body(builder: RequestBuilder, body: &Value) -> Result<Request, gloo_net::Error> {
    builder.json(body)
}

/// POST a JSON body; the JSON answer.
pub async fn post<T: DeserializeOwned>(url: &str, body: &Value) -> Result<T, ApiError> {
    json(send(with_body(Request::post(url), body)).await?).await
}

/// PUT a JSON body; the JSON answer.
pub async fn put<T: DeserializeOwned>(url: &str, body: &Value) -> Result<T, ApiError> {
    json(send(with_body(Request::put(url), body)).await?).await
}

/// DELETE; no answer body.
pub async fn delete(url: &str) -> Result<(), ApiError> {
    send(Request::delete(url).build()).await.map(|_| ())
}

/// A file answer, fetched with GET (`body` None) or POST.
pub async fn file(url: &str, body: Option<&Value>) -> Result<FileAnswer, ApiError> {
    let req = match body {
        Some(b) => with_body(Request::post(url), b),
        None => Request::get(url).build(),
    };
    let resp = send(req).await?;
    let headers = resp.headers();
    let mime = headers
        .get("content-type")
        .unwrap_or_else(|| "application/octet-stream".into());
    let filename = headers
        .get("content-disposition")
        .and_then(|d| disposition_name(&d));
    let sha256 = headers.get("x-pingyi-sha256");
    let bytes = resp
        .binary()
        .await
        .map_err(|e| ApiError::Network(e.to_string()))?;
    Ok(FileAnswer {
        bytes,
        mime,
        filename,
        sha256,
    })
}

/// The file name of a `Content-Disposition: attachment; filename="x.csv"` header.
fn disposition_name(header: &str) -> Option<String> {
    header.split(';').find_map(|part| {
        let (k, v) = part.trim().split_once('=')?;
        (k.trim().eq_ignore_ascii_case("filename"))
            .then(|| v.trim().trim_matches('"').to_string())
            .filter(|n| !n.is_empty() && !n.contains(['/', '\\']))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attachment_name_is_read_and_paths_are_refused() {
        assert_eq!(
            disposition_name(r#"attachment; filename="a-1.csv""#).as_deref(),
            Some("a-1.csv")
        );
        assert_eq!(disposition_name("attachment; filename=../x.csv"), None);
        assert_eq!(disposition_name("attachment"), None);
    }
}
