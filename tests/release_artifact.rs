//! The release folder runs where there is no Rust: `pingyi package` writes it, the test
//! copies it outside the checkout and runs `pingyi serve` there with a bare environment
//! (no cargo on the PATH, a fresh HOME), then uses it over HTTP like a county office would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The served process, killed on drop if the test ends before it stopped.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs the copied `pingyi serve --port 0` with a bare environment in `cwd`; returns it
/// and the URL it printed. Its logs go to `cwd/serve.log`.
fn serve_copied(release: &Path, cwd: &Path, home: &Path, extra: &[&str]) -> (Served, String) {
    let log_path = cwd.join("serve.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(release.join("pingyi"))
        .args(["serve", "--port", "0"])
        .args(extra)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", home)
        .current_dir(cwd)
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("start the copied pingyi");
    let stdout = child.stdout.take().unwrap();
    let served = Served(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    if !line.starts_with("Pingyi 评议 is served at http://127.0.0.1:") {
        let errors = std::fs::read_to_string(&log_path).unwrap_or_default();
        panic!("no URL from the copied pingyi: {line:?}; stderr: {errors}");
    }
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    (served, url)
}

/// Posts one ballot and returns the server's count of stored ballots.
async fn post_and_count(c: &reqwest::Client, url: &str, ballot: &analysis::Ballot) -> Value {
    let r = c
        .post(format!("{url}api/v1/ballots"))
        .json(&json!({ "ballots": [ballot] }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["stored"], 1, "{body}");
    let counts: Value = c
        .get(format!("{url}api/v1/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    counts["ballots"].clone()
}

#[test]
fn the_release_folder_serves_the_app_and_stores_ballots_without_a_toolchain() {
    let made = tempfile::tempdir().unwrap();
    let release = made.path().join("pingyi");
    let out = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args(["package", "-o"])
        .arg(&release)
        .output()
        .expect("run pingyi package");
    assert!(
        out.status.success(),
        "pingyi package failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for file in [
        "pingyi",
        "README.txt",
        "site/index.html",
        "site/pingyi_app_bg.wasm",
        "site/sw.js",
    ] {
        assert!(
            release.join(file).is_file(),
            "{file} is in the release folder"
        );
    }

    // Somewhere else entirely, as if copied to another machine.
    let elsewhere = tempfile::tempdir().unwrap();
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(!elsewhere.path().starts_with(checkout));
    let copied = elsewhere.path().join("pingyi-release");
    copy_dir(&release, &copied);
    drop(made);
    let home = elsewhere.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let (served, url) = serve_copied(&copied, elsewhere.path(), &home, &[]);

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let c = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let page = c.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains("pingyi_app"));
        let wasm = c
            .get(format!("{url}pingyi_app_bg.wasm"))
            .send()
            .await
            .unwrap();
        assert_eq!(wasm.headers()["content-type"], "application/wasm");
        assert!(wasm.bytes().await.unwrap().starts_with(b"\0asm"));
        let form = c.get(format!("{url}form.json")).send().await.unwrap();
        assert_eq!(
            form.text().await.unwrap(),
            analysis::form::DEFAULT_FORM_JSON
        );

        let form = analysis::Form::default_form();
        let ballot = analysis::synth::Generator::new(&form, 21)
            .open_groups_only()
            .ballot();
        assert_eq!(post_and_count(&c, &url, &ballot).await, 1);
    });
    assert!(
        elsewhere.path().join("pingyi.db").is_file(),
        "the ballots went into pingyi.db in the current folder"
    );
    assert!(
        !copied.join("site/form.json").exists(),
        "the site folder is not written by serve"
    );
    // SIGTERM (what a service manager sends) stops it cleanly.
    let mut served = served;
    let pid = served.0.id() as libc::pid_t;
    // SAFETY: signalling a child this test started and has not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let deadline = std::time::Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = served.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "pingyi serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        status.success(),
        "pingyi serve exited with {status} on SIGTERM"
    );

    // With a form of the office's own, the ballots go into a database beside the form.
    let forms = elsewhere.path().join("forms");
    std::fs::create_dir(&forms).unwrap();
    let own = analysis::form::DEFAULT_FORM_JSON.replacen("\"2026.1\"", "\"hall-1\"", 1);
    std::fs::write(forms.join("my-form.json"), &own).unwrap();
    let extra = ["--form", "forms/my-form.json"];
    let (served, url) = serve_copied(&copied, elsewhere.path(), &home, &extra);
    runtime.block_on(async {
        let c = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let form = analysis::Form::from_json("my-form.json", &own).unwrap();
        let served_form = c.get(format!("{url}form.json")).send().await.unwrap();
        assert_eq!(served_form.text().await.unwrap(), own);
        let ballot = analysis::synth::Generator::new(&form, 22)
            .open_groups_only()
            .ballot();
        assert_eq!(post_and_count(&c, &url, &ballot).await, 1);
    });
    drop(served);
    assert!(
        forms.join("my-form.db").is_file(),
        "the ballots went beside the form"
    );
}
