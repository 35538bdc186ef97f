//! The browser test harness: the real `pingyi serve` on a free port with a database of
//! its own in a temporary folder, chromedriver, and a headless Chromium with a fresh
//! profile. Everything is torn down on drop, so a failing test leaves no process behind.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use thirtyfour::prelude::*;
use thirtyfour::ChromiumLikeCapabilities;
use tokio::sync::{Mutex, MutexGuard};

/// The repository's site folder, built once per test run.
pub fn pkg_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg")
}

fn pingyi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pingyi"))
}

/// Builds the app into pkg/ once for this test binary (incremental when nothing changed),
/// so the tests never run against a stale build.
pub fn ensure_built() {
    static BUILD: Once = Once::new();
    BUILD.call_once(|| {
        let status = pingyi().arg("build").status().expect("run pingyi build");
        assert!(status.success(), "pingyi build failed");
    });
}

/// One Chromium at a time: two cores are not enough for parallel browsers to stay reliable.
/// (An async mutex: each test has its own runtime, and the turn is held across awaits.)
async fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::const_new(());
    LOCK.lock().await
}

/// Gives rustls (under thirtyfour's and the tests' HTTP clients) its crypto provider:
/// the workspace builds reqwest without one, and a client built before this panics.
fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `pingyi serve --no-build` on a free port, collecting into `<tempdir>/ballots.db` (never
/// into the checkout), stopped on drop. A restart keeps the port and the database.
pub struct Server {
    child: Option<Child>,
    /// e.g. `http://127.0.0.1:41234/`
    pub url: String,
    port: u16,
    pkg: PathBuf,
    extra: Vec<String>,
    database: tempfile::TempDir,
}

impl Server {
    /// Serves `pkg` with extra `serve` arguments (e.g. `--form f.json`).
    pub fn start(pkg: &Path, extra: &[&str]) -> Server {
        let mut s = Server {
            child: None,
            url: String::new(),
            port: 0,
            pkg: pkg.to_path_buf(),
            extra: extra.iter().map(|s| s.to_string()).collect(),
            database: tempfile::tempdir().expect("a temporary database folder"),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let mut child = pingyi()
            .args([
                "serve",
                "--no-build",
                "--port",
                &self.port.to_string(),
                "--pkg",
            ])
            .arg(&self.pkg)
            .arg("--database")
            .arg(self.database())
            .args(&self.extra)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start pingyi serve");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout is piped"))
            .read_line(&mut line)
            .expect("read the served URL");
        let start = line
            .find("http://")
            .unwrap_or_else(|| panic!("no URL in {line:?}"));
        self.url = line[start..].split_whitespace().next().unwrap().to_string();
        self.port = self
            .url
            .trim_end_matches('/')
            .rsplit(':')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        self.child = Some(child);
    }

    /// Stops the server (the page stays open: this is "the network went away").
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts it again on the same port and database with other `serve` arguments (e.g.
    /// `--form new.json`: the officials publish a new form).
    pub fn restart_with(&mut self, extra: &[&str]) {
        self.extra = extra.iter().map(|s| s.to_string()).collect();
        self.restart();
    }

    /// The database file it collects into (for the CLI: `pingyi codes --database …`).
    pub fn database(&self) -> PathBuf {
        self.database.path().join("ballots.db")
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's own count of what it holds: `GET /api/v1/status`
    /// (`{"ballots", "repeats", "conflicts", "refused", "by_form"}`).
    pub async fn status(&self) -> serde_json::Value {
        install_crypto();
        let url = format!("{}api/v1/status", self.url);
        let resp = reqwest::get(&url)
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert_eq!(resp.status(), 200, "GET {url}");
        resp.json().await.expect("the status is JSON")
    }

    /// Waits (up to 60 s) until the server's status satisfies `check`; returns it.
    pub async fn wait_status(
        &self,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.status().await;
            if check(&status) {
                return status;
            }
            if Instant::now() > deadline {
                panic!("waited 60 s for {what}; the server's status is {status}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Another web server than `pingyi serve`: serves the files of a folder as they are on
/// disk at each request (GET only; 404 for anything missing), on a given port, until
/// dropped. For what `pingyi serve` never does: serve a site missing a file (a
/// deployment cut off half way) or a `form.json` that does not pass the checks.
pub struct StaticSite {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StaticSite {
    /// Serves `dir` on 127.0.0.1:`port`.
    pub fn start(dir: &Path, port: u16) -> StaticSite {
        use std::sync::atomic::{AtomicBool, Ordering};
        let listener = TcpListener::bind(("127.0.0.1", port))
            .unwrap_or_else(|e| panic!("cannot serve the site on port {port}: {e}"));
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let (dir, stopped) = (dir.to_path_buf(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    let dir = dir.clone();
                    std::thread::spawn(move || serve_file(conn, &dir));
                }
            }
        });
        StaticSite {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Answers one request on `conn` with a file of `dir` (then closes the connection).
fn serve_file(mut conn: std::net::TcpStream, dir: &Path) {
    use std::io::{Read, Write};
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let path = path
        .split('?')
        .next()
        .unwrap_or("/")
        .trim_start_matches('/');
    let name = if path.is_empty() { "index.html" } else { path };
    let file = dir.join(name);
    let found = (!name.contains(".."))
        .then(|| std::fs::read(&file).ok())
        .flatten();
    let kind = match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("webmanifest") => "application/manifest+json",
        _ => "application/octet-stream",
    };
    let (status, body) = match found {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\ncontent-type: {kind}\r\ncontent-length: {}\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(&body);
}

/// A browser session on a served app. Field order matters for drop: the WebDriver
/// session goes first, then chromedriver and any Chromium it left, then the server.
pub struct Session {
    pub driver: Option<WebDriver>,
    chromedriver: Child,
    profile: tempfile::TempDir,
    /// Where the browser saves downloads (exports).
    pub downloads: tempfile::TempDir,
    pub server: Server,
    _turn: MutexGuard<'static, ()>,
}

impl Session {
    /// Serves the repository's pkg/ with the default form and opens it.
    pub async fn open() -> Session {
        Session::open_with(&pkg_dir(), &[]).await
    }

    /// Serves `pkg` with extra serve arguments and opens the app.
    pub async fn open_with(pkg: &Path, extra: &[&str]) -> Session {
        let s = Session::start(pkg, extra).await;
        s.goto("").await;
        s
    }

    /// Serves `pkg` and starts the browser on a blank page, so a test can change the
    /// served files (after `pingyi serve` wrote its form.json) before the app first loads.
    pub async fn start(pkg: &Path, extra: &[&str]) -> Session {
        let turn = one_at_a_time().await;
        install_crypto();
        ensure_built();
        let server = Server::start(pkg, extra);
        let profile = tempfile::tempdir().expect("a temporary profile folder");
        let downloads = tempfile::tempdir().expect("a temporary download folder");
        let port = free_port();
        let chromedriver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver (apt-get install chromium-driver; ./test.sh does it)");
        let webdriver_url = format!("http://127.0.0.1:{port}");
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary("/usr/bin/chromium").unwrap();
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", profile.path().display()),
        ] {
            caps.add_arg(arg).unwrap();
        }
        caps.set_browser_log_level(thirtyfour::LoggingPrefsLogLevel::All)
            .unwrap();
        caps.add_experimental_option(
            "prefs",
            serde_json::json!({
                "download.default_directory": downloads.path().display().to_string(),
                "download.prompt_for_download": false,
                "download.directory_upgrade": true,
            }),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        let driver = loop {
            match WebDriver::new(&webdriver_url, caps.clone()).await {
                Ok(d) => break d,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("cannot start a Chromium session: {e}"),
            }
        };
        Session {
            driver: Some(driver),
            chromedriver,
            profile,
            downloads,
            server,
            _turn: turn,
        }
    }

    /// The WebDriver.
    pub fn d(&self) -> &WebDriver {
        self.driver.as_ref().expect("the session is open")
    }

    /// Navigates to a path under the served app.
    pub async fn goto(&self, path: &str) {
        self.d()
            .goto(format!("{}{}", self.server.url, path))
            .await
            .expect("navigate");
    }

    /// Waits (up to 30 s) for an element with this `data-testid`.
    pub async fn find(&self, testid: &str) -> WebElement {
        match self
            .d()
            .query(By::Css(format!("[data-testid='{testid}']")))
            .wait(Duration::from_secs(30), Duration::from_millis(100))
            .first()
            .await
        {
            Ok(el) => el,
            Err(e) => panic!(
                "no element [data-testid='{testid}']: {e}\n{}",
                self.report().await
            ),
        }
    }

    /// What the browser shows and logged, for a failure message: the address, the page's
    /// text, the service worker's state and the console (errors and warnings included).
    pub async fn report(&self) -> String {
        let url = match self.d().current_url().await {
            Ok(u) => u.to_string(),
            Err(e) => format!("(unknown: {e})"),
        };
        let page = self
            .d()
            .execute(
                "return JSON.stringify({ready: document.readyState, \
                 controlled: !!(navigator.serviceWorker && navigator.serviceWorker.controller), \
                 text: (document.body ? document.body.innerText : '').slice(0, 600)})",
                Vec::new(),
            )
            .await
            .map(|r| r.json().to_string())
            .unwrap_or_else(|e| format!("(no script: {e})"));
        let log = match self.d().browser_log().await {
            Ok(entries) => entries
                .iter()
                .map(|e| format!("  {} {}", e.level, e.message))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("  (no log: {e})"),
        };
        format!("page at {url}: {page}\nbrowser console:\n{log}")
    }

    /// Clicks the element with this `data-testid` (waiting for it first).
    pub async fn click(&self, testid: &str) {
        let el = self.find(testid).await;
        el.scroll_into_view().await.ok();
        el.click()
            .await
            .unwrap_or_else(|e| panic!("cannot click [data-testid='{testid}']: {e}"));
    }

    /// Types into the input with this `data-testid`.
    pub async fn type_into(&self, testid: &str, text: &str) {
        let el = self.find(testid).await;
        el.scroll_into_view().await.ok();
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("cannot type into [data-testid='{testid}']: {e}"));
    }

    /// Whether an element with this `data-testid` exists and is displayed (no waiting).
    pub async fn shown(&self, testid: &str) -> bool {
        match self
            .d()
            .find(By::Css(format!("[data-testid='{testid}']")))
            .await
        {
            Ok(el) => el.is_displayed().await.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Waits (up to 30 s) until the element is displayed (`true`) or not (`false`).
    pub async fn wait_shown(&self, testid: &str, want: bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.shown(testid).await != want {
            if Instant::now() > deadline {
                panic!(
                    "waited 30 s for [data-testid='{testid}'] to be {}\n{}",
                    if want { "shown" } else { "hidden" },
                    self.report().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the control with this `data-testid` is disabled.
    pub async fn disabled(&self, testid: &str) -> bool {
        self.find(testid)
            .await
            .prop("disabled")
            .await
            .unwrap()
            .as_deref()
            == Some("true")
    }

    /// Runs JavaScript in the page and returns its JSON result.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.d()
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
            .json()
            .clone()
    }

    /// Makes the collection API unreachable from this browser (`true`), or reachable again,
    /// through Chromium's own request blocking: for tests of a device whose ballots must
    /// stay waiting (clearing only after an export, a full store).
    pub async fn block_api(&self, blocked: bool) {
        self.cdp("Network.enable", serde_json::json!({})).await;
        let urls: Vec<&str> = if blocked { vec!["*/api/v1/*"] } else { vec![] };
        self.cdp(
            "Network.setBlockedURLs",
            serde_json::json!({ "urls": urls }),
        )
        .await;
    }

    /// Sends a Chrome DevTools Protocol command to the current tab.
    pub async fn cdp(&self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.d()
            .cdp()
            .send_raw(method, params)
            .await
            .unwrap_or_else(|e| panic!("CDP {method}: {e}"))
    }

    /// Reloads the page.
    pub async fn reload(&self) {
        self.d().refresh().await.expect("reload");
    }

    /// Waits (up to 60 s) for a finished download whose name ends with `ext`.
    pub async fn download(&self, ext: &str) -> PathBuf {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = std::fs::read_dir(self.downloads.path())
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .find(|p| p.to_string_lossy().ends_with(ext));
            if let Some(p) = found {
                return p;
            }
            if Instant::now() > deadline {
                panic!("no {ext} download appeared in 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Saves a screenshot for a person to look at (under target/screenshots/).
    pub async fn screenshot(&self, name: &str) {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("target")
            .join("screenshots");
        std::fs::create_dir_all(&dir).ok();
        let _ = self.d().screenshot(&dir.join(format!("{name}.png"))).await;
    }

    /// Visible text of the whole page.
    pub async fn page_text(&self) -> String {
        self.d()
            .find(By::Tag("body"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits (up to 30 s) until `check` holds for the page text; returns it.
    pub async fn wait_for_text(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let text = self.page_text().await;
            if check(&text) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("waited 30 s for {what}; the page shows:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Ends the browser session cleanly (drop does it too, less politely).
    pub async fn close(mut self) {
        if let Some(d) = self.driver.take() {
            let _ = d.quit().await;
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // If the test failed before close(), the session is still open: kill chromedriver
        // and every Chromium started with this profile.
        self.driver.take();
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
        let _ = Command::new("pkill")
            .arg("-KILL")
            .arg("-f")
            .arg(self.profile.path().as_os_str())
            .status();
    }
}
