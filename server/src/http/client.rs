//! Who is at the other end of a request: the TCP peer's address and whether the
//! connection is TLS, put on every request by the accept loop ([`crate::server`]). The
//! address is the TCP peer's own; behind a reverse proxy every request comes from the
//! proxy (headers such as X-Forwarded-For are not trusted: any client can send them).

use std::net::{IpAddr, SocketAddr};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;

/// The connection a request came on, as a request extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub addr: SocketAddr,
    pub tls: bool,
}

/// The client's IP address (the TCP peer), for the audit log, sign-in throttling and the
/// ballots' sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientAddr, ApiError> {
        peer(parts).map(|p| ClientAddr(p.addr.ip()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, ApiError> {
        peer(parts)
    }
}

fn peer(parts: &Parts) -> Result<Peer, ApiError> {
    parts.extensions.get::<Peer>().copied().ok_or_else(|| {
        ApiError::Internal(
            "the request carries no client address (it did not come through the server's \
             accept loop)"
                .to_string(),
        )
    })
}
