//! Starting and running the server: everything is read and checked before the port is
//! bound; then an accept loop that caps the connections served at once, gives each its
//! own task (one client that never reads cannot stall another), applies hyper's header
//! limits and header read timeout, does the TLS handshake inside the connection's task
//! under a timeout, and on shutdown lets the requests under way finish.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::config::{Config, Limits};
use crate::dashboard::{public_url, Dashboard};
use crate::forms::HeldForms;
use crate::http::client::Peer;
use crate::http::{router, AppState};
use crate::site::Site;
use crate::store::Store;

/// Why the server could not start (the message names the file, address or database).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StartError(pub String);

/// A server whose port is bound, ready to [`Server::serve`].
pub struct Server {
    listener: TcpListener,
    app: Router,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    url: String,
    public_url: String,
    database: &'static str,
}

/// How long requests under way may take to finish after a shutdown is asked for.
const DRAIN: Duration = Duration::from_secs(10);

impl Server {
    /// Reads the TLS files, opens the database, adds and loads the forms, reads the site
    /// and binds the port, failing with a clear message at the first problem.
    pub async fn bind(config: Config) -> Result<Server, StartError> {
        let tls = match &config.tls {
            Some(files) => Some(crate::tls::acceptor(files).map_err(StartError)?),
            None => None,
        };
        // Everything that can be checked without the database first: a broken form or a
        // missing site must not leave a new, empty database file behind.
        let served = HeldForms::check(&config.forms).map_err(StartError)?;
        let site = Site::load(&config.site, &served).map_err(StartError)?;
        let store = Store::open(&config.database)
            .await
            .map_err(|e| StartError(format!("cannot open the database: {e}")))?;
        let forms = HeldForms::load(&config.forms, &store)
            .await
            .map_err(StartError)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|e| StartError(format!("cannot listen on {}: {e}", config.listen)))?;
        let bound = listener
            .local_addr()
            .map_err(|e| StartError(format!("cannot read the bound address: {e}")))?;
        let shown = if bound.ip().is_unspecified() {
            SocketAddr::new([127, 0, 0, 1].into(), bound.port())
        } else {
            bound
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let database = store.backend();
        let state = AppState::new(store, forms, site, config.limits.clone());
        let public_url = public_url(config.dashboard.public_url.as_deref(), bound, scheme);
        let dashboard = Dashboard::new(config.dashboard, public_url.clone(), config.database);
        Ok(Server {
            listener,
            app: router(state).layer(Extension(Arc::new(dashboard))),
            public_url,
            tls,
            limits: config.limits,
            url: format!("{scheme}://{shown}/"),
            database,
        })
    }

    /// The address to open (`http://127.0.0.1:8080/`; 127.0.0.1 when bound to all addresses).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address respondents open (`--public-url`, or a LAN address when bound to all).
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The database backend in use (`sqlite` or `postgres`).
    pub fn database(&self) -> &'static str {
        self.database
    }

    /// Serves until `shutdown` completes, then waits (at most 10 s) for requests under way.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) {
        let graceful = GracefulShutdown::new();
        let permits = Arc::new(Semaphore::new(self.limits.max_connections));
        let (h1, h2) = connection_builders(&self.limits);
        let handshake = self.limits.tls_handshake_timeout;
        tokio::pin!(shutdown);
        loop {
            let permit = tokio::select! {
                p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                () = &mut shutdown => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::warn!("cannot accept a connection: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            // Handlers learn the client's address and the scheme from this extension.
            let connection = Peer {
                addr: peer,
                tls: self.tls.is_some(),
            };
            let service = TowerToHyperService::new(self.app.clone().map_request(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(connection);
                    request
                },
            ));
            let (h1, h2) = (h1.clone(), h2.clone());
            let tls = self.tls.clone();
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let _permit = permit;
                // The protocol is known before the first byte (plain HTTP is HTTP/1.1, TLS
                // says by ALPN), so hyper's header read timeout covers a silent client too.
                let result = match tls {
                    None => {
                        let conn = h1.serve_connection(TokioIo::new(tcp), service);
                        watcher.watch(conn.into_owned()).await
                    }
                    Some(tls) => {
                        let Some(stream) = handshake_tls(&tls, tcp, peer, handshake).await else {
                            return;
                        };
                        let builder = if stream.get_ref().1.alpn_protocol() == Some(b"h2") {
                            h2
                        } else {
                            h1
                        };
                        let conn = builder.serve_connection(TokioIo::new(stream), service);
                        watcher.watch(conn.into_owned()).await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!("connection from {peer} ended: {e}");
                }
            });
        }
        drop(self.listener);
        tracing::info!("shutting down: finishing the requests under way");
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(DRAIN) => tracing::warn!("requests still under way after {} s were cut", DRAIN.as_secs()),
        }
    }
}

/// hyper's per-connection settings for HTTP/1.1 and for HTTP/2: header limits and timeouts.
fn connection_builders(
    limits: &Limits,
) -> (auto::Builder<TokioExecutor>, auto::Builder<TokioExecutor>) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(100)
        .keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(20));
    (builder.clone().http1_only(), builder.http2_only())
}

async fn handshake_tls(
    tls: &TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
    limit: Duration,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(limit, tls.accept(tcp)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!("TLS handshake with {peer} failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(
                "TLS handshake with {peer} took longer than {} s",
                limit.as_secs()
            );
            None
        }
    }
}
