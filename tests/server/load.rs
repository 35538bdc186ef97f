//! `cargo bench --bench server_load`: the collection server under load, over real HTTP.
//!
//! Starts the optimized `pingyi serve` on SQLite (a temporary file) and on PostgreSQL (a
//! fresh database in the cluster PINGYI_TEST_POSTGRES names, or in one started here with
//! tests/postgres.sh and stopped at the end). For each it drives two modes with C
//! concurrent keep-alive clients for S seconds: batches of 100 ballots (POST), and one
//! ballot per request (PUT). It prints sustained ballots/s and requests/s, latency
//! percentiles, the server's peak memory and the database's bytes per ballot, and checks
//! that the server holds exactly the ballots it acknowledged (a FAILED line and exit code 1
//! if not). It asserts nothing about speed.
//!
//! PINGYI_LOAD_CLIENTS (default 32) and PINGYI_LOAD_SECONDS (default 15) change C and S.

#[allow(dead_code)] // the drills use other parts of the harness
mod harness;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use analysis::synth::Generator;
use harness::{Db, Server};

/// How requests carry ballots.
#[derive(Clone, Copy)]
enum Mode {
    /// POST /api/v1/ballots with this many ballots.
    Batch(usize),
    /// PUT /api/v1/ballots/{id}, one ballot.
    Single,
}

impl Mode {
    fn name(self) -> String {
        match self {
            Mode::Batch(n) => format!("batches of {n}"),
            Mode::Single => "one per request".into(),
        }
    }

    /// Ballots made before the clock starts: more than the server could take in the run
    /// at several times the goal's rate.
    fn supply(self, seconds: u64) -> usize {
        match self {
            Mode::Batch(_) => seconds as usize * 16_000,
            Mode::Single => seconds as usize * 8_000,
        }
    }
}

/// One request ready to send: its path, method and body.
struct Request {
    put: Option<String>,
    body: Vec<u8>,
    ballots: u64,
}

/// What the clients measured in one run.
#[derive(Default)]
struct Measured {
    requests: u64,
    acked: u64,
    failures: u64,
    first_failure: Option<String>,
    latencies: Vec<Duration>,
    ran_out: bool,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let clients = env_number("PINGYI_LOAD_CLIENTS", 32) as usize;
    let seconds = env_number("PINGYI_LOAD_SECONDS", 15);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("Collection server load: {clients} keep-alive clients, {seconds} s per mode, default-form ballots.");
    println!(
        "Clients and server share this machine's {cores} cores, so the server gets less than all of them."
    );
    println!(
        "Goals on a 2-core machine: at least 2,000 ballots/s in batches, 500/s one per request, p99 under 100 ms."
    );
    let cluster = Cluster::ensure();
    let mut ok = true;
    for backend in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            "sqlite" => Db::sqlite(dir.path(), "load"),
            _ => Db::postgres_at(&cluster.url, "load").await,
        };
        ok &= bench_backend(backend, &db, dir.path(), clients, seconds).await;
        db.remove().await;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Both modes on one database; false when the server's count disagrees with the acks.
async fn bench_backend(
    backend: &str,
    db: &Db,
    dir: &std::path::Path,
    clients: usize,
    seconds: u64,
) -> bool {
    let mut server = Server::start(&db.url, dir, &[]);
    let http = harness::http_client(Duration::from_secs(60));
    let health = harness::get(&http, &server.url, "/api/v1/health").await;
    assert!(
        health.as_ref().is_ok_and(|h| h.status == 200),
        "{backend}: /api/v1/health: {health:?}"
    );
    let empty_size = db.size().await;
    println!("\n{backend} ({}):", db.url);
    let mut acked = 0;
    for (seed, mode) in [(1, Mode::Batch(100)), (2, Mode::Single)] {
        let work = prepare(mode, seed, clients, seconds);
        let started = Instant::now();
        let m = drive(&http, &server.url, work, seconds).await;
        report(mode, &m, started.elapsed());
        acked += m.acked;
    }
    let status = harness::status(&http, &server.url).await;
    let held = status["ballots"].as_u64().unwrap_or(0);
    let size = db.size().await;
    println!(
        "  server peak memory (VmHWM): {}",
        peak_rss(server.pid()).unwrap_or_else(|| "unknown".into())
    );
    println!(
        "  database: {:.1} MB for {held} ballots, {:.0} bytes per ballot",
        size as f64 / 1e6,
        size.saturating_sub(empty_size) as f64 / held.max(1) as f64
    );
    server.kill();
    if held == acked && status["repeats"] == 0 && status["conflicts"] == 0 {
        println!("  ok: the server holds {held} ballots, exactly the {acked} it acknowledged");
        true
    } else {
        println!(
            "  FAILED: the server holds {held} ballots but acknowledged {acked} (status {status})"
        );
        false
    }
}

/// Makes the ballots and splits them into each client's requests, serialized already.
fn prepare(mode: Mode, seed: u64, clients: usize, seconds: u64) -> Vec<Vec<Request>> {
    let form = analysis::Form::default_form();
    let mut make = Generator::new(&form, seed);
    let mut ids = HashSet::new();
    let mut ballot = || {
        let b = make.ballot();
        assert!(
            ids.insert(b.id.clone()),
            "the generator repeated id {}",
            b.id
        );
        b
    };
    let per_request = match mode {
        Mode::Batch(n) => n,
        Mode::Single => 1,
    };
    let mut per_client: Vec<Vec<Request>> = (0..clients).map(|_| Vec::new()).collect();
    for i in 0..mode.supply(seconds) / per_request {
        let request = match mode {
            Mode::Batch(n) => {
                let batch: Vec<_> = (0..n).map(|_| ballot()).collect();
                Request {
                    put: None,
                    body: serde_json::to_vec(&serde_json::json!({ "ballots": batch })).unwrap(),
                    ballots: n as u64,
                }
            }
            Mode::Single => {
                let b = ballot();
                Request {
                    put: Some(b.id.clone()),
                    body: serde_json::to_vec(&b).unwrap(),
                    ballots: 1,
                }
            }
        };
        per_client[i % clients].push(request);
    }
    // Each client pops from the end; keep the order they were made in.
    per_client.iter_mut().for_each(|q| q.reverse());
    per_client
}

/// Runs every client until `seconds` have passed (each finishes the request it is in).
async fn drive(
    http: &reqwest::Client,
    url: &str,
    work: Vec<Vec<Request>>,
    seconds: u64,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let url: Arc<str> = url.into();
    let mut tasks = tokio::task::JoinSet::new();
    for queue in work {
        tasks.spawn(client(http.clone(), url.clone(), queue, deadline));
    }
    let mut all = Measured::default();
    while let Some(m) = tasks.join_next().await {
        let m = m.expect("a client panicked");
        all.requests += m.requests;
        all.acked += m.acked;
        all.failures += m.failures;
        all.first_failure = all.first_failure.or(m.first_failure);
        all.latencies.extend(m.latencies);
        all.ran_out |= m.ran_out;
    }
    all
}

async fn client(
    http: reqwest::Client,
    url: Arc<str>,
    mut queue: Vec<Request>,
    deadline: Instant,
) -> Measured {
    let mut m = Measured::default();
    while Instant::now() < deadline {
        let Some(r) = queue.pop() else {
            m.ran_out = true;
            break;
        };
        let request = match &r.put {
            Some(id) => http.put(format!("{url}/api/v1/ballots/{id}")),
            None => http.post(format!("{url}/api/v1/ballots")),
        };
        let sent = Instant::now();
        let answer = request
            .header("content-type", "application/json")
            .body(r.body)
            .send()
            .await;
        let outcome = match answer {
            Ok(a) => {
                let code = a.status().as_u16();
                let text = a.text().await.unwrap_or_default();
                acknowledged(code, &text, r.put.is_some()).ok_or(format!("{code} {text}"))
            }
            Err(e) => Err(e.to_string()),
        };
        m.latencies.push(sent.elapsed());
        m.requests += 1;
        match outcome {
            Ok(n) if n == r.ballots => m.acked += n,
            Ok(n) => {
                m.acked += n;
                m.failures += 1;
                m.first_failure
                    .get_or_insert(format!("{n} of {} ballots acknowledged", r.ballots));
            }
            Err(e) => {
                m.failures += 1;
                m.first_failure.get_or_insert(e);
            }
        }
    }
    m
}

/// How many ballots an answer acknowledges as newly stored.
fn acknowledged(code: u16, body: &str, single: bool) -> Option<u64> {
    match (single, code) {
        (true, 201) => Some(1),
        (false, 200) => serde_json::from_str::<serde_json::Value>(body)
            .ok()?
            .get("stored")?
            .as_u64(),
        _ => None,
    }
}

fn report(mode: Mode, m: &Measured, elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let mut lat = m.latencies.clone();
    lat.sort();
    let pct = |p: f64| -> String {
        if lat.is_empty() {
            return "-".into();
        }
        let i = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len()) - 1;
        format!("{:.1}", lat[i].as_secs_f64() * 1000.0)
    };
    println!(
        "  {:<16} {:>8.0} ballots/s {:>7.0} requests/s   latency ms p50 {} p90 {} p99 {} max {}   ({} ballots in {:.1} s)",
        mode.name(),
        m.acked as f64 / secs,
        m.requests as f64 / secs,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat.last().map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1000.0)),
        m.acked,
        secs
    );
    if m.failures > 0 {
        println!(
            "  {:<16} {} requests not (fully) acknowledged, e.g. {}",
            "",
            m.failures,
            analysis::error::cut(m.first_failure.as_deref().unwrap_or(""))
        );
    }
    if m.ran_out {
        println!(
            "  {:<16} a client used up the ballots made for it before the time was up",
            ""
        );
    }
}

/// The server's peak resident memory, from /proc/PID/status.
fn peak_rss(pid: u32) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(format!("{:.1} MB", kb / 1024.0))
}

/// The PostgreSQL cluster: PINGYI_TEST_POSTGRES's, or one started with tests/postgres.sh
/// and stopped on drop.
struct Cluster {
    url: String,
    started: Option<String>,
}

impl Cluster {
    fn ensure() -> Cluster {
        if let Ok(url) = std::env::var("PINGYI_TEST_POSTGRES") {
            return Cluster { url, started: None };
        }
        println!("PINGYI_TEST_POSTGRES is not set: starting a cluster with tests/postgres.sh.");
        let out = Command::new(script())
            .arg("start")
            .output()
            .expect("run tests/postgres.sh");
        assert!(
            out.status.success(),
            "tests/postgres.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let value = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .map(String::from)
                .unwrap_or_else(|| panic!("tests/postgres.sh printed no {name}: {text}"))
        };
        Cluster {
            url: value("PINGYI_TEST_POSTGRES"),
            started: Some(value("PINGYI_TEST_PGDATA")),
        }
    }
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/postgres.sh")
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(data) = &self.started {
            let _ = Command::new(script()).args(["stop", data]).status();
        }
    }
}
