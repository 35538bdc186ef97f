//! `cargo bench --bench server_load`: the collection server under load, over real HTTP.
//!
//! Starts the optimized `pingyi serve` on SQLite (a temporary file) and on PostgreSQL (a
//! fresh database in the cluster PINGYI_TEST_POSTGRES names, or in one started here with
//! tests/postgres.sh and stopped at the end). For each database and each mode — batches
//! of 100 ballots (POST), and one ballot per request (PUT) — it runs two phases of S
//! seconds:
//!
//! - **paced** (open loop): requests leave on a fixed schedule at the goal's rate
//!   (2,000 ballots/s in batches, 500/s one per request), whether or not earlier ones
//!   have been answered, and latency counts from the scheduled send time, so a server
//!   that stalls shows up as latency instead of as fewer requests sent (no coordinated
//!   omission). This is what the goal "p99 under 100 ms" is about.
//! - **saturation** (closed loop): C keep-alive clients each keep one request in flight
//!   as fast as the server answers; this shows the ceiling, and its latency is queueing.
//!
//! It prints ballots/s and requests/s, latency percentiles, whether the goals are met,
//! the server's peak memory and the database's bytes per ballot, and after every phase
//! checks that the server holds exactly the ballots it acknowledged (a FAILED line and
//! exit code 1 if not). It asserts nothing about speed.
//!
//! PINGYI_LOAD_CLIENTS (default 32) and PINGYI_LOAD_SECONDS (default 15) change C and S;
//! PINGYI_LOAD_RATE_BATCHED (default 2000) and PINGYI_LOAD_RATE_SINGLE (default 500) the
//! paced phases' rates in ballots per second.

#[allow(dead_code)] // the drills use other parts of the harness
mod harness;

use std::collections::HashSet;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::time::{Duration, Instant};

use analysis::synth::Generator;
use harness::{Db, Server};

/// The goals on a 2-core machine.
const GOAL_BATCHED: f64 = 2_000.0;
const GOAL_SINGLE: f64 = 500.0;
const GOAL_P99_MS: f64 = 100.0;

/// Paced requests in flight at once, at most: far above what a healthy server needs at
/// the goal's rates, and below the open-file limit. A send held back by it still counts
/// its latency from its scheduled time.
const MAX_IN_FLIGHT: usize = 1_000;

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

    fn per_request(self) -> usize {
        match self {
            Mode::Batch(n) => n,
            Mode::Single => 1,
        }
    }

    /// Ballots made for the saturation phase before the clock starts: more than the
    /// server could take in the run at several times the goal's rate.
    fn supply(self, seconds: u64) -> usize {
        match self {
            Mode::Batch(_) => seconds as usize * 25_000,
            Mode::Single => seconds as usize * 8_000,
        }
    }

    /// The goal's rate in ballots per second.
    fn goal(self) -> f64 {
        match self {
            Mode::Batch(_) => GOAL_BATCHED,
            Mode::Single => GOAL_SINGLE,
        }
    }
}

/// One request ready to send: its path, method and body.
struct Request {
    put: Option<String>,
    body: Vec<u8>,
    ballots: u64,
}

/// What the clients measured in one phase.
#[derive(Default)]
struct Measured {
    requests: u64,
    acked: u64,
    failures: u64,
    first_failure: Option<String>,
    latencies: Vec<Duration>,
    ran_out: bool,
}

impl Measured {
    /// Counts one answered (or failed) request.
    fn record(&mut self, outcome: Result<u64, String>, latency: Duration, ballots: u64) {
        self.latencies.push(latency);
        self.requests += 1;
        match outcome {
            Ok(n) if n == ballots => self.acked += n,
            Ok(n) => {
                self.acked += n;
                self.failures += 1;
                self.first_failure
                    .get_or_insert(format!("{n} of {ballots} ballots acknowledged"));
            }
            Err(e) => {
                self.failures += 1;
                self.first_failure.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, m: Measured) {
        self.requests += m.requests;
        self.acked += m.acked;
        self.failures += m.failures;
        self.first_failure = self.first_failure.take().or(m.first_failure);
        self.latencies.extend(m.latencies);
        self.ran_out |= m.ran_out;
    }
}

/// What one run of the benchmark is asked to do.
struct Settings {
    clients: usize,
    seconds: u64,
    rate_batched: f64,
    rate_single: f64,
}

impl Settings {
    /// The paced phase's rate for `mode`, in ballots per second.
    fn rate(&self, mode: Mode) -> f64 {
        match mode {
            Mode::Batch(_) => self.rate_batched,
            Mode::Single => self.rate_single,
        }
    }
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
    let settings = Settings {
        clients: env_number("PINGYI_LOAD_CLIENTS", 32).max(1) as usize,
        seconds: env_number("PINGYI_LOAD_SECONDS", 15).max(1),
        rate_batched: env_number("PINGYI_LOAD_RATE_BATCHED", GOAL_BATCHED as u64).max(1) as f64,
        rate_single: env_number("PINGYI_LOAD_RATE_SINGLE", GOAL_SINGLE as u64).max(1) as f64,
    };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "Collection server load: default-form ballots, {} s per phase; paced at {:.0} ballots/s in batches and {:.0}/s one per request; saturation with {} keep-alive clients.",
        settings.seconds, settings.rate_batched, settings.rate_single, settings.clients
    );
    println!(
        "Clients and server share this machine's {cores} cores, so the server gets less than all of them."
    );
    println!(
        "Goals on a 2-core machine: at least {GOAL_BATCHED:.0} ballots/s in batches and {GOAL_SINGLE:.0}/s one per request, p99 under {GOAL_P99_MS:.0} ms, at those rates."
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("Load average before the run: {}", load.join(" "));
    }
    let cluster = Cluster::ensure();
    let mut ok = true;
    for backend in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        let db = match backend {
            "sqlite" => Db::sqlite(dir.path(), "load"),
            _ => Db::postgres_at(&cluster.url, "load").await,
        };
        ok &= bench_backend(backend, &db, dir.path(), &settings).await;
        db.remove().await;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The paced then the saturation phase of both modes on one database; false when the
/// server's count disagrees with the acknowledgements after any phase.
async fn bench_backend(backend: &str, db: &Db, dir: &std::path::Path, s: &Settings) -> bool {
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
    let mut ok = true;
    let phases = [
        (1, Mode::Batch(100), true),
        (2, Mode::Single, true),
        (3, Mode::Batch(100), false),
        (4, Mode::Single, false),
    ];
    for (seed, mode, paced) in phases {
        let label = format!(
            "{} {}",
            if paced { "paced" } else { "saturation" },
            mode.name()
        );
        let (m, elapsed) = if paced {
            let rate = s.rate(mode);
            let count = ((rate * s.seconds as f64) / mode.per_request() as f64).round();
            let work = requests(mode, seed, (count as usize).max(1));
            let (m, elapsed) =
                pace(&http, &server.url, work, rate / mode.per_request() as f64).await;
            (m, elapsed.max(Duration::from_secs(s.seconds)))
        } else {
            let work = split(
                requests(mode, seed, mode.supply(s.seconds) / mode.per_request()),
                s.clients,
            );
            let started = Instant::now();
            let m = drive(&http, &server.url, work, s.seconds).await;
            (m, started.elapsed())
        };
        report(&label, &m, elapsed, paced.then_some(mode));
        acked += m.acked;
        let status = harness::status(&http, &server.url).await;
        let held = status["ballots"].as_u64().unwrap_or(0);
        if held != acked || status["repeats"] != 0 || status["conflicts"] != 0 {
            println!(
                "  FAILED after {label}: the server holds {held} ballots but acknowledged {acked} (status {status})"
            );
            ok = false;
        }
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
    if ok {
        println!(
            "  ok: after every phase the server held exactly the ballots it had acknowledged ({held} in the end)"
        );
    }
    ok
}

/// `count` requests of fresh ballots (ids unique within the seed), serialized already.
fn requests(mode: Mode, seed: u64, count: usize) -> Vec<Request> {
    let form = analysis::Form::default_form();
    let mut make = Generator::new(&form, seed).open_groups_only();
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
    (0..count)
        .map(|_| match mode {
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
        })
        .collect()
}

/// Deals the requests out to `clients` queues; each client pops from the end, so the
/// queues are reversed to keep the order the ballots were made in.
fn split(all: Vec<Request>, clients: usize) -> Vec<Vec<Request>> {
    let mut per_client: Vec<Vec<Request>> = (0..clients).map(|_| Vec::new()).collect();
    for (i, r) in all.into_iter().enumerate() {
        per_client[i % clients].push(r);
    }
    per_client.iter_mut().for_each(|q| q.reverse());
    per_client
}

/// The open loop: request i leaves at start + i / `per_second`, whatever became of the
/// earlier ones, and its latency runs from that scheduled time (so time spent waiting
/// for the scheduler, a connection or a slot counts too). Returns the measurements and
/// the time from the start until the last answer.
async fn pace(
    http: &reqwest::Client,
    url: &str,
    work: Vec<Request>,
    per_second: f64,
) -> (Measured, Duration) {
    let url: Arc<str> = url.into();
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let start = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for (i, r) in work.into_iter().enumerate() {
        let scheduled = start + Duration::from_secs_f64(i as f64 / per_second);
        tokio::time::sleep_until(scheduled).await;
        let slot = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let (http, url) = (http.clone(), url.clone());
        tasks.spawn(async move {
            let ballots = r.ballots;
            let outcome = send(&http, &url, r).await;
            drop(slot);
            (outcome, scheduled.elapsed(), ballots)
        });
    }
    let mut m = Measured::default();
    while let Some(done) = tasks.join_next().await {
        let (outcome, latency, ballots) = done.expect("a request task panicked");
        m.record(outcome, latency, ballots);
    }
    (m, start.elapsed())
}

/// The closed loop: every client keeps one request in flight until `seconds` have
/// passed (each finishes the request it is in).
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
        all.merge(m.expect("a client panicked"));
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
        let ballots = r.ballots;
        let sent = Instant::now();
        let outcome = send(&http, &url, r).await;
        m.record(outcome, sent.elapsed(), ballots);
    }
    m
}

/// Sends one request and reads its whole answer: the ballots it acknowledges as newly
/// stored, or what went wrong.
async fn send(http: &reqwest::Client, url: &str, r: Request) -> Result<u64, String> {
    let request = match &r.put {
        Some(id) => http.put(format!("{url}/api/v1/ballots/{id}")),
        None => http.post(format!("{url}/api/v1/ballots")),
    };
    let answer = request
        .header("content-type", "application/json")
        .body(r.body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let code = answer.status().as_u16();
    let text = answer.text().await.unwrap_or_default();
    acknowledged(code, &text, r.put.is_some()).ok_or(format!("{code} {text}"))
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

/// The latency at quantile `p` of `sorted`, in milliseconds.
fn percentile(sorted: &[Duration], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((p * sorted.len() as f64).ceil() as usize).clamp(1, last + 1) - 1;
    Some(sorted[i].as_secs_f64() * 1000.0)
}

/// Prints one phase's line; for a paced phase of `goal_mode` also whether the goal is met.
fn report(label: &str, m: &Measured, elapsed: Duration, goal_mode: Option<Mode>) {
    let secs = elapsed.as_secs_f64();
    let mut lat = m.latencies.clone();
    lat.sort();
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let rate = m.acked as f64 / secs;
    let p99 = percentile(&lat, 0.99);
    println!(
        "  {label:<30} {rate:>8.0} ballots/s {:>7.0} requests/s   latency ms p50 {} p90 {} p99 {} max {}   ({} ballots in {secs:.1} s)",
        m.requests as f64 / secs,
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.90)),
        ms(p99),
        ms(lat.last().map(|d| d.as_secs_f64() * 1000.0)),
        m.acked,
    );
    if m.failures > 0 {
        println!(
            "  {:<30} {} requests not (fully) acknowledged, e.g. {}",
            "",
            m.failures,
            analysis::error::cut(m.first_failure.as_deref().unwrap_or(""))
        );
    }
    if m.ran_out {
        println!(
            "  {:<30} a client used up the ballots made for it before the time was up",
            ""
        );
    }
    if let Some(mode) = goal_mode {
        let goal = mode.goal();
        // The schedule spans the phase, and the last answer comes a latency after the
        // last send: a server that keeps up acknowledges everything offered at the
        // offered rate to within that last latency.
        let rate_met = m.failures == 0 && rate >= goal * 0.98;
        let p99_met = p99.is_some_and(|p| p < GOAL_P99_MS);
        let verdict = |met: bool| if met { "met" } else { "NOT met" };
        println!(
            "  {:<30} goal {goal:.0} ballots/s: {}; p99 under {GOAL_P99_MS:.0} ms: {}",
            "",
            verdict(rate_met),
            verdict(p99_met)
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
