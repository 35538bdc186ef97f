//! `pingyi user` with the real binary: officials added from the command line (password
//! on standard input), listed, refused clearly when the name is taken or the password
//! short, and able to sign in to a real server; and the console's export, which must be
//! byte for byte what `pingyi export` writes from the same database, also after closing
//! (the closure's checksum is the file's), on SQLite and on PostgreSQL (a fresh database
//! through PINGYI_TEST_POSTGRES, which ./test.sh sets).

mod common;

use std::io::Write;
use std::process::{Output, Stdio};
use std::time::Duration;

use analysis::synth::Generator;
use analysis::Form;
use common::{pingyi, Work};
use pingyi_server::store::{Database, FormRecord, Incoming, Store};
use pingyi_server::{Config, Limits, Server};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// Runs `pingyi ARGS` in `w` with `stdin` as its standard input.
fn run_with_input(w: &Work, args: &[&str], stdin: &str) -> Output {
    let mut child = pingyi()
        .args(args)
        .current_dir(w.dir())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pingyi runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn officials_are_added_listed_and_refused_clearly() {
    let w = Work::new();
    let db = format!("sqlite:{}", w.path("campaign.db").display());
    let add = |name: &str, role: &str, password: &str| {
        run_with_input(
            &w,
            &[
                "user",
                "add",
                name,
                "--role",
                role,
                "--database",
                &db,
                "--password-stdin",
            ],
            password,
        )
    };
    let out = add("wang.fang", "admin", "correct horse\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("wang.fang added as admin"),
        "{}",
        stderr(&out)
    );
    let out = add("王芳", "viewer", "评议评议评议评议");
    assert!(out.status.success(), "{}", stderr(&out));

    let out = add("wang.fang", "viewer", "another password\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("there is already an official named wang.fang"),
        "{}",
        stderr(&out)
    );
    let out = add("li.lei", "admin", "short\n");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("the password has 5 characters, expected at least 8"),
        "{}",
        stderr(&out)
    );
    let out = add("li.lei", "boss", "long enough\n");
    assert_eq!(out.status.code(), Some(2), "clap refuses the role");
    assert!(stderr(&out).contains("admin") && stderr(&out).contains("viewer"));
    // Without a terminal and without --password-stdin nothing is asked or added.
    let out = run_with_input(
        &w,
        &["user", "add", "zhao", "--role", "admin", "--database", &db],
        "",
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--password-stdin"),
        "{}",
        stderr(&out)
    );

    let listed = w.ok(&["user", "list", "--database", &db]);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 2, "{listed}");
    assert!(lines[0].starts_with("wang.fang\tadmin\tadded "), "{listed}");
    assert!(lines[1].starts_with("王芳\tviewer\tadded "), "{listed}");

    let out = run_with_input(
        &w,
        &[
            "user",
            "passwd",
            "wang.fang",
            "--database",
            &db,
            "--password-stdin",
        ],
        "a new password\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let gone = w.fails(&["user", "remove", "nobody", "--database", &db], 1);
    let missing = w.fails(&["user", "list", "--database", "campain.db"], 1);
    assert!(
        missing.contains("campain.db: no such database"),
        "{missing}"
    );
    assert!(
        !w.path("campain.db").exists(),
        "a mistyped path is not made"
    );
    assert!(gone.contains("there is no official named nobody"), "{gone}");
    w.ok(&["user", "remove", "王芳", "--database", &db]);
    assert_eq!(
        w.ok(&["user", "list", "--database", &db]).lines().count(),
        1
    );

    let entries = common::runtime().block_on(async {
        let store = Store::open(&Database::parse(&db).unwrap()).await.unwrap();
        store.audit_entries(10).await.unwrap()
    });
    let actions: Vec<(&str, &str, &str)> = entries
        .iter()
        .map(|e| (e.action.as_str(), e.detail.as_str(), e.address.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user_removed", "王芳", "cli"),
            ("password_changed", "wang.fang", "cli"),
            ("user_added", "王芳 as viewer", "cli"),
            ("user_added", "wang.fang as admin", "cli"),
        ]
    );
}

/// A served database with ballots of the built-in form, an admin added by the CLI, and a
/// server on it; the console's CSV and JSON exports, before and after closing, must be
/// the bytes `pingyi export` writes.
fn the_consoles_export_is_pingyi_exports(w: &Work, database: &str) {
    let form = Form::default_form();
    let rt = common::runtime();
    let site = w.path("site");
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
    let db = Database::parse(database).unwrap();
    rt.block_on(async {
        let store = Store::open(&db).await.unwrap();
        store
            .add_form(&FormRecord {
                id: form.id.clone(),
                version: form.version.clone(),
                json: analysis::form::DEFAULT_FORM_JSON.to_string(),
            })
            .await
            .unwrap();
        let mut g = Generator::new(&form, 5).open_groups_only();
        // In several commits, so that arrival order and id order differ.
        for _ in 0..4 {
            let batch = (0..40)
                .map(|_| Incoming::from_ballot(&g.ballot()))
                .collect();
            store.submit(batch).await.unwrap();
        }
    });
    let out = run_with_input(
        w,
        &[
            "user",
            "add",
            "wang",
            "--role",
            "admin",
            "--database",
            database,
            "--password-stdin",
        ],
        "correct horse\n",
    );
    assert!(out.status.success(), "{}", stderr(&out));

    let cli_export = |name: &str| -> Vec<u8> {
        w.ok(&[
            "export",
            "--database",
            database,
            "--form-id",
            &form.id,
            "--form-version",
            &form.version,
            "-o",
            name,
        ]);
        std::fs::read(w.path(name)).unwrap()
    };
    let csv = cli_export("cli.csv");
    let json_file = cli_export("cli.json");

    rt.block_on(async {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: Vec::new(),
            database: db.clone(),
            site: site.clone(),
            tls: None,
            limits: Limits::default(),
            dashboard: Default::default(),
        };
        let server = Server::bind(config).await.expect("the server starts");
        let api = format!("{}api/v1/admin/", server.url());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let c = reqwest::Client::builder()
            .timeout(PATIENCE)
            .build()
            .unwrap();
        let r = c
            .post(format!("{api}session"))
            .json(&json!({"name": "wang", "password": "correct horse"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the official added by the CLI signs in");
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let campaign = format!("{api}campaigns/{}/{}", form.id, form.version);
        let export = |format: &'static str| {
            let (c, url, cookie) = (
                c.clone(),
                format!("{campaign}/export?format={format}"),
                cookie.clone(),
            );
            async move {
                let r = c.get(url).header("cookie", cookie).send().await.unwrap();
                assert_eq!(r.status(), 200);
                let sum = r.headers()["x-pingyi-sha256"].to_str().unwrap().to_string();
                (r.bytes().await.unwrap().to_vec(), sum)
            }
        };
        let (served_csv, sum) = export("csv").await;
        assert!(
            served_csv == csv,
            "{database}: the console's CSV is pingyi export's"
        );
        assert_eq!(sum, hex_sha256(&csv));
        let (served_json, _) = export("json").await;
        assert!(
            served_json == json_file,
            "{database}: the console's JSON is pingyi export's"
        );

        let r = c
            .post(format!("{campaign}/close"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let closed: Value = r.json().await.unwrap();
        assert_eq!(closed["ballots"], 160);
        assert_eq!(
            closed["sha256"],
            hex_sha256(&csv),
            "{database}: the closure's checksum is that of `pingyi export`'s CSV"
        );
        let (after, _) = export("csv").await;
        assert!(after == csv, "{database}: the final export did not change");
        let _ = stop.send(());
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    });
    // The CLI's export of the closed campaign has the closure's checksum too.
    assert_eq!(hex_sha256(&cli_export("after.csv")), hex_sha256(&csv));
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn the_consoles_export_is_pingyi_exports_on_sqlite() {
    let w = Work::new();
    let db = format!("sqlite:{}", w.path("campaign.db").display());
    the_consoles_export_is_pingyi_exports(&w, &db);
}

#[test]
fn the_consoles_export_is_pingyi_exports_on_postgres() {
    let w = Work::new();
    the_consoles_export_is_pingyi_exports(&w, &common::fresh_postgres("user_export"));
}
