//! `pingyi serve`: build the form app and serve pkg/ over HTTP on this machine.
//!
//! 127.0.0.1 is a secure context, so the service worker registers and the app keeps
//! working offline after one visit. Every response says `Cache-Control: no-cache`: the
//! service worker, not the HTTP cache, decides what is kept.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};

use crate::site;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  pingyi serve                         build, then serve on http://127.0.0.1:8080/
  pingyi serve --port 9000 --form my-form.json
  pingyi serve --host 0.0.0.0          let kiosks on the local network connect
                                       (offline mode needs HTTPS or 127.0.0.1)
  pingyi serve --no-build --port 0     serve what pkg/ already holds on a free port")]
pub struct Args {
    /// Port to listen on; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
    /// The form the app starts with (default: the built-in 民主评议 questionnaire).
    #[arg(long, value_name = "FILE")]
    form: Option<PathBuf>,
    /// Serve pkg/ as it is, without building the app first.
    #[arg(long)]
    no_build: bool,
    /// The site folder to serve.
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let form = super::build::form_text(args.form.as_ref())?;
    let pkg = args.pkg.unwrap_or_else(site::default_pkg_dir);
    if args.no_build {
        site::write_form(&pkg, &form)?;
    } else {
        site::build(&pkg, &form)?;
    }
    let addr = SocketAddr::new(args.host, args.port);
    let server =
        tiny_http::Server::http(addr).map_err(|e| anyhow!("cannot listen on {addr}: {e}"))?;
    let bound = server
        .server_addr()
        .to_ip()
        .context("the server is not listening on an IP address")?;
    let shown = if bound.ip().is_unspecified() {
        SocketAddr::new([127, 0, 0, 1].into(), bound.port())
    } else {
        bound
    };
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "Pingyi 评议 is served at http://{shown}/ (Ctrl-C to stop)"
    )?;
    out.flush()?;
    drop(out);
    let server = std::sync::Arc::new(server);
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let server = server.clone();
            let pkg = pkg.clone();
            std::thread::spawn(move || {
                while let Ok(request) = server.recv() {
                    respond(&pkg, request);
                }
            })
        })
        .collect();
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "wasm" => "application/wasm",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json; charset=utf-8",
        "webmanifest" => "application/manifest+json; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// The file under `pkg` that a URL path names, refusing anything that could leave it.
fn resolve(pkg: &Path, url: &str) -> Option<PathBuf> {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let rel = path.trim_start_matches('/');
    let rel = if rel.is_empty() { "index.html" } else { rel };
    let safe = rel.split('/').all(|seg| {
        !seg.is_empty()
            && seg != ".."
            && seg != "."
            && seg
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
    });
    safe.then(|| pkg.join(rel)).filter(|p| p.is_file())
}

fn respond(pkg: &Path, request: tiny_http::Request) {
    let header = |name: &str, value: &str| {
        tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes())
            .expect("static header is valid")
    };
    let method_ok = matches!(
        request.method(),
        tiny_http::Method::Get | tiny_http::Method::Head
    );
    let response = match (method_ok, resolve(pkg, request.url())) {
        (false, _) => {
            tiny_http::Response::from_string("only GET and HEAD are served\n").with_status_code(405)
        }
        (true, None) => tiny_http::Response::from_string("not found\n").with_status_code(404),
        (true, Some(path)) => match std::fs::read(&path) {
            Ok(bytes) => tiny_http::Response::from_data(bytes)
                .with_header(header("Content-Type", content_type(&path))),
            Err(_) => {
                tiny_http::Response::from_string("cannot read the file\n").with_status_code(500)
            }
        },
    };
    let response = response
        .with_header(header("Cache-Control", "no-cache"))
        .with_header(header("X-Content-Type-Options", "nosniff"));
    // A client that went away is not the server's problem.
    let _ = request.respond(response);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_cannot_leave_the_site() {
        let dir = site::default_pkg_dir();
        assert_eq!(resolve(&dir, "/"), Some(dir.join("index.html")));
        assert_eq!(
            resolve(&dir, "/index.html?v=2"),
            Some(dir.join("index.html"))
        );
        assert_eq!(resolve(&dir, "/../Cargo.toml"), None);
        assert_eq!(resolve(&dir, "/%2e%2e/Cargo.toml"), None);
        assert_eq!(resolve(&dir, "/missing.js"), None);
    }
}
