//! What the drills and the load benchmark share: the real `pingyi serve` as a child
//! process on a free port, the database it stores into (a SQLite file, or a fresh
//! PostgreSQL database in the test cluster), plain HTTP calls to its API, and valid
//! ballots of the default form with unique ids.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use analysis::synth::Generator;
use analysis::{Ballot, Form};
use serde_json::Value;

/// The `pingyi` binary Cargo built for this test or benchmark.
pub fn pingyi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pingyi"))
}

/// The checkout's site folder (./test.sh builds it before the tests run).
pub fn pkg_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg")
}

/// reqwest is built without a TLS provider of its own; every client needs ring installed
/// first, even for plain HTTP.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(timeout)
        .pool_max_idle_per_host(256)
        .build()
        .expect("an HTTP client")
}

/// `n` valid ballots of the default form from `seed`, each with its own id.
pub fn ballots(seed: u64, n: usize) -> Vec<Ballot> {
    let form = Form::default_form();
    let mut g = Generator::new(&form, seed).open_groups_only();
    let out: Vec<Ballot> = (0..n).map(|_| g.ballot()).collect();
    let ids: std::collections::HashSet<&str> = out.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(ids.len(), n, "the generator repeated an id for seed {seed}");
    out
}

/// A database for one server: a SQLite file in a folder of its own, or a fresh
/// PostgreSQL database made through PINGYI_TEST_POSTGRES.
pub struct Db {
    /// What `--database` is given.
    pub url: String,
    /// The SQLite file, when it is one.
    pub file: Option<PathBuf>,
    postgres: Option<(String, String)>,
}

impl Db {
    /// `sqlite:DIR/NAME.db`.
    pub fn sqlite(dir: &Path, name: &str) -> Db {
        let file = dir.join(format!("{name}.db"));
        Db {
            url: format!("sqlite:{}", file.display()),
            file: Some(file),
            postgres: None,
        }
    }

    /// A new, empty PostgreSQL database `pingyi_<name>_<pid>_<n>` in the test cluster
    /// that PINGYI_TEST_POSTGRES names.
    pub async fn postgres(name: &str) -> Db {
        let admin = std::env::var("PINGYI_TEST_POSTGRES").unwrap_or_else(|_| {
            panic!(
                "PINGYI_TEST_POSTGRES is not set: this test needs a PostgreSQL cluster. \
                 Run ./test.sh, or first: eval \"$(tests/postgres.sh start)\""
            )
        });
        Db::postgres_at(&admin, name).await
    }

    /// A new, empty PostgreSQL database `pingyi_<name>_<pid>_<n>` made through `admin`
    /// (a URL whose user may create databases).
    pub async fn postgres_at(admin: &str, name: &str) -> Db {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = admin.to_string();
        let db = format!(
            "pingyi_{name}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        admin_sql(&admin, &format!("CREATE DATABASE {db}")).await;
        Db {
            url: with_database(&admin, &db),
            file: None,
            postgres: Some((admin, db)),
        }
    }

    /// Bytes the database takes on disk now (SQLite: the file and its WAL; PostgreSQL:
    /// `pg_database_size`, tables, indexes and TOAST).
    pub async fn size(&self) -> u64 {
        if let Some(file) = &self.file {
            let wal = PathBuf::from(format!("{}-wal", file.display()));
            [file.as_path(), wal.as_path()]
                .iter()
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .sum()
        } else {
            let client = connect(&self.url).await;
            let row = client
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .expect("pg_database_size");
            row.get::<_, i64>(0) as u64
        }
    }

    /// Drops a PostgreSQL database (once its server has stopped); nothing for SQLite,
    /// whose folder goes with its temporary directory.
    pub async fn remove(self) {
        if let Some((admin, db)) = &self.postgres {
            admin_sql(admin, &format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")).await;
        }
    }
}

fn with_database(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_part = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{host_part}/{db}{query}")
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(conn);
    client
}

async fn admin_sql(admin: &str, sql: &str) {
    connect(admin)
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// `pingyi serve --no-build --port 0 --database …`, its stderr (the log) kept in a file
/// and printed when a test fails; killed on drop.
pub struct Server {
    child: Option<Child>,
    /// e.g. `http://127.0.0.1:41234`, without the final slash.
    pub url: String,
    database: String,
    extra: Vec<String>,
    log: PathBuf,
}

impl Server {
    /// Starts the server on `database` and waits until it has printed its URL.
    pub fn start(database: &str, log_dir: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            database: database.to_string(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            log: log_dir.join("server.log"),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log file");
        let mut child = pingyi()
            .args(["serve", "--no-build", "--port", "0", "--database"])
            .arg(&self.database)
            .arg("--pkg")
            .arg(pkg_dir())
            // The drills send thousands of ballots from one address within minutes, which
            // the open groups' hourly limits rightly refuse; what they prove is durability.
            .args(["--limit-device", "0", "--limit-address", "0"])
            .args(&self.extra)
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start pingyi serve");
        let mut out = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let mut line = String::new();
        out.read_line(&mut line).expect("read the served URL");
        let Some(start) = line.find("http://").or_else(|| line.find("https://")) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pingyi serve printed no URL (first line {line:?}); its log:\n{}",
                self.log_tail()
            );
        };
        let url = line[start..].split_whitespace().next().unwrap_or_default();
        self.url = url.trim_end_matches('/').to_string();
        // Whatever else comes on stdout must not fill the pipe and stall the server.
        std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
        self.child = Some(child);
    }

    /// The server's process id (for /proc/PID/status).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server is running").id()
    }

    /// Whether the process is still running (it did not crash).
    pub fn alive(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no shutdown code of the server runs.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same database (on a new free port: see `url`).
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- the server's log ({}):\n{}", self.url, self.log_tail());
        }
    }
}

/// One HTTP answer: its status, its Retry-After header and its body (JSON when it is
/// JSON, else the text as a JSON string).
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: Value,
}

impl Reply {
    async fn read(r: reqwest::Response) -> Result<Reply, reqwest::Error> {
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        let text = r.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    /// The `error` message of a whole-request refusal.
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no \"error\" message in {}", self.body))
    }

    /// The status of each ballot (`stored`, `already_stored`, …), in request order.
    pub fn statuses(&self) -> Vec<String> {
        self.body["results"]
            .as_array()
            .unwrap_or_else(|| panic!("no \"results\" in {}", self.body))
            .iter()
            .map(|r| r["status"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// POST /api/v1/ballots with `{"ballots": […]}`.
pub async fn submit(
    http: &reqwest::Client,
    base: &str,
    ballots: &[Ballot],
) -> Result<Reply, reqwest::Error> {
    let body = serde_json::to_vec(&serde_json::json!({ "ballots": ballots })).unwrap();
    post_raw(http, base, "application/json", body).await
}

/// POST /api/v1/ballots with any body and content type.
pub async fn post_raw(
    http: &reqwest::Client,
    base: &str,
    content_type: &str,
    body: Vec<u8>,
) -> Result<Reply, reqwest::Error> {
    let r = http
        .post(format!("{base}/api/v1/ballots"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await?;
    Reply::read(r).await
}

/// PUT /api/v1/ballots/{id} with one ballot.
pub async fn put(
    http: &reqwest::Client,
    base: &str,
    ballot: &Ballot,
) -> Result<Reply, reqwest::Error> {
    let r = http
        .put(format!("{base}/api/v1/ballots/{}", ballot.id))
        .json(ballot)
        .send()
        .await?;
    Reply::read(r).await
}

/// GET a path of the API (e.g. `/api/v1/health`).
pub async fn get(http: &reqwest::Client, base: &str, path: &str) -> Result<Reply, reqwest::Error> {
    Reply::read(http.get(format!("{base}{path}")).send().await?).await
}

/// GET /api/v1/status, which must answer 200.
pub async fn status(http: &reqwest::Client, base: &str) -> Value {
    let r = get(http, base, "/api/v1/status")
        .await
        .expect("GET /api/v1/status answers");
    assert_eq!(r.status, 200, "GET /api/v1/status: {r:?}");
    r.body
}
