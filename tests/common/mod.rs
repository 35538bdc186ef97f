//! Helpers shared by the CLI test binaries: the real `pingyi` binary, a scratch folder to
//! run it in, and paths to the repository's fixtures and example rules.
// Each test binary uses its own subset of these.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The `pingyi` binary built for these tests.
pub fn pingyi() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pingyi"))
}

/// A file under tests/fixtures (e.g. `haochaping.csv`, `forms/hall.json`).
pub fn fixture(name: &str) -> String {
    repo_file(&format!("tests/fixtures/{name}"))
}

/// An example rules file under analysis/rules.
pub fn rules(name: &str) -> String {
    repo_file(&format!("analysis/rules/{name}"))
}

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .display()
        .to_string()
}

/// A scratch folder that `pingyi` runs in, removed at the end of the test.
pub struct Work {
    dir: tempfile::TempDir,
}

impl Work {
    pub fn new() -> Work {
        Work {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// The folder itself.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn run(&self, args: &[&str]) -> Output {
        pingyi()
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .expect("pingyi runs")
    }

    /// Runs and asserts success; returns standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "pingyi {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--format json` and parses the output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    /// Runs with `-o out.csv` and reads the CSV back: one map of column → cell per row.
    /// (The cells of these reports hold no commas, so a plain split is enough.)
    pub fn csv_rows(&self, args: &[&str]) -> Vec<BTreeMap<String, String>> {
        let mut all = args.to_vec();
        all.extend(["-o", "out.csv"]);
        self.ok(&all);
        let text = std::fs::read_to_string(self.path("out.csv")).unwrap();
        let mut lines = text.trim_start_matches('\u{feff}').lines();
        let header: Vec<&str> = lines.next().expect("a header").split(',').collect();
        lines
            .map(|l| {
                let cells = l.split(',').map(String::from);
                header.iter().map(|h| h.to_string()).zip(cells).collect()
            })
            .collect()
    }

    /// Runs, asserts the exit code; returns standard error.
    pub fn fails(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "pingyi {args:?}: {out:?}");
        String::from_utf8(out.stderr).unwrap()
    }
}

/// A small async runtime for the tests that talk to PostgreSQL or a server themselves.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

static NEXT_DB: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A fresh PostgreSQL database of this test's own, made through `PINGYI_TEST_POSTGRES`
/// (`pingyi_<test>_<pid>_<n>`); the URL to it.
pub fn fresh_postgres(test: &str) -> String {
    let admin = std::env::var("PINGYI_TEST_POSTGRES").unwrap_or_else(|_| {
        panic!(
            "PINGYI_TEST_POSTGRES is not set: these tests need a PostgreSQL server. Run ./test.sh, \
             or start a throw-away one with: eval \"$(tests/postgres.sh start)\""
        )
    });
    let name = format!(
        "pingyi_{test}_{}_{}",
        std::process::id(),
        NEXT_DB.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    );
    runtime().block_on(async {
        let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach PINGYI_TEST_POSTGRES={admin}: {e}"));
        tokio::spawn(connection);
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
    });
    let base = admin.split('?').next().unwrap_or(&admin);
    let server = &base[..base.rfind('/').expect("a URL with a database")];
    format!("{server}/{name}")
}
