//! What `pingyi serve` hands the server: where to listen, which forms, which database,
//! which site folder, TLS files, and the limits that keep one client from hurting others.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::store::Database;

/// Everything the server needs to start.
pub struct Config {
    /// The address to listen on (port 0 picks a free one).
    pub listen: SocketAddr,
    /// The forms given on the command line, the first served to the app; empty means the
    /// built-in default form.
    pub forms: Vec<FormFile>,
    /// Where ballots are stored.
    pub database: Database,
    /// The built site (index.html, the wasm, the service worker…), read once at start.
    pub site: PathBuf,
    /// Certificate and key for HTTPS; plain HTTP without them.
    pub tls: Option<TlsFiles>,
    /// Body, header, connection and time limits.
    pub limits: Limits,
    /// The live dashboard's rules files and the public address.
    pub dashboard: DashboardSettings,
}

/// What the console's dashboard and posters need from the command line.
#[derive(Debug, Clone, Default)]
pub struct DashboardSettings {
    /// Rules files the dashboard can score with (`--rules`), by name.
    pub rules: Vec<RulesFile>,
    /// The address respondents open (`--public-url`); when left out, the listen address,
    /// or the first LAN address when listening on every address.
    pub public_url: Option<String>,
}

/// A rules file as read from a file, checked against the served form before start.
#[derive(Debug, Clone)]
pub struct RulesFile {
    /// The file's name, for messages (as `pingyi score --rules` names it).
    pub source: String,
    /// The name the dashboard asks for it by: the file's stem (`congress-quorum`).
    pub name: String,
    /// The rules file (TOML text).
    pub text: String,
}

/// A form definition as read from a file.
pub struct FormFile {
    /// The file's name, for messages.
    pub source: String,
    /// The form definition (JSON text).
    pub json: String,
}

/// PEM files for HTTPS.
pub struct TlsFiles {
    /// The certificate chain, server certificate first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The limits applied to every client.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body on the API; a larger Content-Length is refused unread.
    pub max_body_bytes: usize,
    /// Most ballots in one POST.
    pub max_ballots: usize,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Time a client has to send a request's headers (against slowloris).
    pub header_read_timeout: Duration,
    /// Time from a request's headers to its response's headers.
    pub request_timeout: Duration,
    /// Time a client has to finish the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Most bytes of headers in one request.
    pub max_header_bytes: usize,
    /// Ballot submissions (POST and PUT) handled at once; past it the server answers 503
    /// with Retry-After before reading the body, so a flood cannot grow its memory.
    pub max_submissions: usize,
    /// Ballots of open groups taken per device and per client address and hour.
    pub rates: RateLimits,
}

/// How many ballots of open groups (those that need no access code) one source may
/// deliver per hour; 0 turns a limit off. A ballot counts in the hour it was submitted on
/// its device (its `submitted_at`), moved into the two days before its arrival when it
/// claims an earlier time and into the hour of arrival when it claims a later one: a
/// kiosk that delivers a day kept offline is counted over the hours it took its ballots,
/// not all in the hour it came online, and a forged time cannot open more than two
/// days of hours. docs/codes.md explains the defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Per device (the ballot's `device_id`) and hour; default 120 (one citizen every
    /// 30 seconds, twice what one kiosk can take).
    pub per_device: u32,
    /// Per client address and hour; default 600 (several kiosks behind one router).
    pub per_address: u32,
}

impl RateLimits {
    /// No limits: how the CLI and tests bring ballots in.
    pub const OFF: RateLimits = RateLimits {
        per_device: 0,
        per_address: 0,
    };
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            per_device: 120,
            per_address: 600,
        }
    }
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_body_bytes: 8 * 1024 * 1024,
            max_ballots: 1000,
            max_connections: 2048,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            tls_handshake_timeout: Duration::from_secs(10),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            max_submissions: 128,
            rates: RateLimits::default(),
        }
    }
}
