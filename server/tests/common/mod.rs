//! What the server's test files share: a fresh PostgreSQL database for each test, made
//! through `PINGYI_TEST_POSTGRES`, and an HTTP client.
#![allow(dead_code)] // each test file uses its own part

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// The URL of the PostgreSQL server the tests make their databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("PINGYI_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "PINGYI_TEST_POSTGRES is not set: these tests need a PostgreSQL server. Run ./test.sh, \
             or start a throw-away one with: eval \"$(tests/postgres.sh start)\""
        )
    })
}

/// `url` with its database name replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[after_scheme..]
        .find('/')
        .map_or(base.len(), |i| after_scheme + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// A new, empty PostgreSQL database of this test's own (`pingyi_<test>_<pid>_<n>`); its URL.
pub async fn fresh_postgres_url(test: &str) -> String {
    let admin = postgres_admin_url();
    let name = format!(
        "pingyi_{test}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, Ordering::SeqCst)
    );
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach PINGYI_TEST_POSTGRES={admin}: {e}"));
    tokio::spawn(connection);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    with_database(&admin, &name)
}

/// An HTTP client (rustls with ring) that gives up on a request after `patience`.
pub fn client(patience: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(patience)
        .build()
        .unwrap()
}

/// A site folder in `dir` with every file `serve` needs, each a placeholder: the
/// admin, codes and dashboard tests talk to the API, never to the app.
pub fn placeholder_site(dir: &std::path::Path) -> std::path::PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(&site).unwrap();
    for name in [
        "index.html",
        "style.css",
        "pingyi_app.js",
        "pingyi_app_bg.wasm",
        "manifest.webmanifest",
        "icon.svg",
        "sw.js",
    ] {
        std::fs::write(site.join(name), b"x").unwrap();
    }
    site
}
