//! Reading a campaign back from the collection database with the real `pingyi` binary:
//! `pingyi export` gives back exactly the ballots a device exported, and `pingyi score` /
//! `pingyi aggregate` of the database give the numbers the device's file gives, on
//! SQLite and on PostgreSQL (a fresh database through PINGYI_TEST_POSTGRES, which
//! ./test.sh sets). The databases are filled through the server's own `Store`.

mod common;

use std::path::Path;

use analysis::{wide_csv, Ballot, Form};
use common::{rules, Work};
use pingyi_server::store::{Database, FormRecord, Incoming, Store};
use serde_json::Value;

/// The `--database` values of both backends for one test, SQLite first.
fn both(w: &Work, test: &str) -> Vec<String> {
    vec![
        format!("sqlite:{}", w.path("campaign.db").display()),
        common::fresh_postgres(&format!("cli_{}", test)),
    ]
}

/// Stores `ballots` (and the built-in form) as the server would.
fn fill(database: &str, form_json: &str, ballots: &[Ballot]) {
    let db = Database::parse(database).expect("a database value");
    common::runtime().block_on(async {
        let store = Store::open(&db).await.expect("open the store");
        let form = Form::from_json("form", form_json).expect("form");
        store
            .add_form(&FormRecord {
                id: form.id.clone(),
                version: form.version.clone(),
                json: form_json.to_string(),
            })
            .await
            .expect("add form");
        for batch in ballots.chunks(1000) {
            let incoming = batch.iter().map(Incoming::from_ballot).collect();
            store.submit(incoming).await.expect("submit");
        }
    });
}

fn read_csv(form: &Form, path: &Path) -> Vec<Ballot> {
    let text = std::fs::read_to_string(path).expect("read csv");
    wide_csv::read_all(form, &path.display().to_string(), text.as_bytes()).expect("a CSV export")
}

fn read_json(form: &Form, path: &Path) -> Vec<Ballot> {
    let text = std::fs::read_to_string(path).expect("read json");
    analysis::json::read_all(form, &path.display().to_string(), text.as_bytes())
        .expect("a JSON export")
}

/// The ballots as one comparable set: sorted by id.
fn sorted(mut ballots: Vec<Ballot>) -> Vec<Ballot> {
    ballots.sort_by(|a, b| a.id.cmp(&b.id));
    ballots
}

/// A device's export: `pingyi generate` writes the device CSV format.
fn device_csv(w: &Work, n: usize, seed: u64) -> (Form, Vec<Ballot>) {
    w.ok(&[
        "generate",
        "--ballots",
        &n.to_string(),
        "--seed",
        &seed.to_string(),
        "-o",
        "device.csv",
    ]);
    let form = Form::default_form();
    let ballots = read_csv(&form, &w.path("device.csv"));
    assert_eq!(ballots.len(), n);
    (form, ballots)
}

#[test]
fn a_device_export_put_into_the_database_exports_back_ballot_for_ballot() {
    let w = Work::new();
    let (form, ballots) = device_csv(&w, 700, 21);
    for database in both(&w, "export") {
        fill(&database, analysis::form::DEFAULT_FORM_JSON, &ballots);
        // Sent twice (a device retrying): still each ballot once.
        fill(
            &database,
            analysis::form::DEFAULT_FORM_JSON,
            &ballots[..100],
        );
        let out = w.run(&["export", "--database", &database, "-o", "all.csv"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{database}: {stderr}");
        assert!(
            stderr.contains("700 ballots of form minzhu-pingyi"),
            "{stderr}"
        );
        assert_eq!(
            sorted(read_csv(&form, &w.path("all.csv"))),
            sorted(ballots.clone()),
            "{database}: CSV"
        );
        w.ok(&["export", "--database", &database, "-o", "all.json"]);
        assert_eq!(
            sorted(read_json(&form, &w.path("all.json"))),
            sorted(ballots.clone()),
            "{database}: JSON"
        );
        // The CSV a server export writes is read by `pingyi merge` like a device's.
        w.ok(&["merge", "all.csv", "device.csv", "-o", "merged.csv"]);
        assert_eq!(read_csv(&form, &w.path("merged.csv")).len(), 700);
    }
}

/// Every number of two JSON score reports agrees within 1e-9; everything else is equal.
fn same_numbers(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!((x - y).abs() <= 1e-9, "{path}: {x} vs {y}");
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}"
            );
            for (k, v) in x {
                same_numbers(v, &y[k], &format!("{path}.{k}"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}");
            for (i, (v, u)) in x.iter().zip(y).enumerate() {
                same_numbers(v, u, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

fn score_json(w: &Work, inputs: &[&str]) -> Value {
    let mut args = vec!["score"];
    args.extend(inputs);
    args.extend(["--rules", "rules.toml", "--format", "json"]);
    serde_json::from_str(&w.ok(&args)).expect("a JSON report")
}

#[test]
fn scoring_the_database_gives_the_numbers_of_the_device_file() {
    let w = Work::new();
    let (_, ballots) = device_csv(&w, 600, 22);
    // Too-fast ballots excluded against half the median: the database is read twice.
    let haochaping = std::fs::read_to_string(rules("haochaping.toml")).unwrap();
    w.write(
        "rules.toml",
        &format!("{haochaping}\n[careless]\ntoo_fast = \"half_median\"\nexclude = true\n"),
    );
    let from_file = score_json(&w, &["device.csv"]);
    let too_fast = from_file["ballots"]["careless"]["excluded"]
        .as_u64()
        .expect("ballots.careless.excluded");
    assert!(
        too_fast > 0,
        "the example must exclude some too-fast ballots"
    );
    for database in both(&w, "score") {
        fill(&database, analysis::form::DEFAULT_FORM_JSON, &ballots);
        same_numbers(&score_json(&w, &[&database]), &from_file, &database);
        // The database and the file together: every ballot is a duplicate once.
        let both = score_json(&w, &[&database, "device.csv"]);
        assert_eq!(both["ballots"]["duplicates"], 600, "{database}");
        same_numbers(&both["units"], &from_file["units"], &database);
        // A part made from the database scores the same.
        let out = w.run(&[
            "aggregate",
            &database,
            "-o",
            "part.json",
            "--rules",
            "rules.toml",
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            stderr.contains("600 ballots of form minzhu-pingyi version"),
            "the summary names the database and what was read: {stderr}"
        );
        same_numbers(&score_json(&w, &["part.json"]), &from_file, &database);
    }
    // A plain path to an SQLite file is read as the database it is.
    same_numbers(&score_json(&w, &["campaign.db"]), &from_file, "campaign.db");
}

fn fails(w: &Work, args: &[&str]) -> String {
    let out = w.run(args);
    assert!(!out.status.success(), "pingyi {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_database_values_are_refused_clearly_and_nothing_is_created() {
    let w = Work::new();
    for args in [
        &["export", "--database", "sqlite:missing.db", "-o", "all.csv"][..],
        &["export", "--database", "missing.db", "-o", "all.csv"],
        &["score", "sqlite:missing.db"],
        &["aggregate", "sqlite:missing.db", "-o", "part.json"],
    ] {
        let err = fails(&w, args);
        assert!(
            err.contains("missing.db") && err.contains("no such file"),
            "{args:?}: {err}"
        );
        assert!(
            !w.path("missing.db").exists(),
            "{args:?} created the database"
        );
        assert!(!w.path("all.csv").exists() && !w.path("part.json").exists());
    }
    let err = fails(
        &w,
        &[
            "export",
            "--database",
            "mysql://root@localhost/x",
            "-o",
            "a.csv",
        ],
    );
    assert!(
        err.contains("\"mysql\"") && err.contains("sqlite:PATH"),
        "{err}"
    );
    let err = fails(&w, &["score", "postgres://host:notaport/db"]);
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let unreachable = format!("postgres://pingyi:secret@127.0.0.1:{port}/campaign");
    for args in [
        &["export", "--database", &unreachable, "-o", "a.csv"][..],
        &["score", &unreachable],
    ] {
        let err = fails(&w, args);
        assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
        assert!(
            !err.contains("secret"),
            "the password is never shown: {err}"
        );
    }
    w.write("notes.db", "not a database\n");
    let err = fails(&w, &["export", "--database", "notes.db", "-o", "a.csv"]);
    assert!(
        err.contains("notes.db") && err.contains("not an SQLite database"),
        "{err}"
    );
    let err = fails(
        &w,
        &[
            "export",
            "--database",
            "sqlite:campaign.db",
            "-o",
            "campaign.db",
        ],
    );
    assert!(!err.is_empty());
    let err = fails(
        &w,
        &["export", "--database", "campaign.db", "-o", "all.txt"],
    );
    assert!(err.contains(".csv or .json"), "{err}");
}

#[test]
fn a_database_with_several_form_versions_exports_and_scores_one_at_a_time() {
    let w = Work::new();
    let (form, ballots) = device_csv(&w, 300, 23);
    let database = format!("sqlite:{}", w.path("campaign.db").display());
    fill(
        &database,
        analysis::form::DEFAULT_FORM_JSON,
        &ballots[..200],
    );
    // Version 2 of the same form, with the rest of the ballots.
    let v2_json = analysis::form::DEFAULT_FORM_JSON.replacen(
        &format!("\"version\": \"{}\"", form.version),
        "\"version\": \"v2\"",
        1,
    );
    let v2 = Form::from_json("v2", &v2_json).expect("v2 form");
    assert_eq!(
        v2.version, "v2",
        "the test's form edit must change the version"
    );
    let later: Vec<Ballot> = ballots[200..]
        .iter()
        .map(|b| Ballot {
            form_version: "v2".into(),
            ..b.clone()
        })
        .collect();
    fill(&database, &v2_json, &later);
    w.write("v2.json", &v2_json);

    let err = fails(&w, &["export", "--database", &database, "-o", "all.csv"]);
    assert!(
        err.contains("--form-version")
            && err.contains("(200 ballots)")
            && err.contains("(100 ballots)"),
        "{err}"
    );
    let out = w.run(&[
        "export",
        "--database",
        &database,
        "-o",
        "v2.csv",
        "--form-version",
        "v2",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        sorted(read_csv(&v2, &w.path("v2.csv"))),
        sorted(later.clone())
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("--form-version {} (200 ballots)", form.version)),
        "{stderr}"
    );
    w.ok(&[
        "export",
        "--database",
        &database,
        "-o",
        "v2-again.json",
        "--form",
        "v2.json",
    ]);
    assert_eq!(read_json(&v2, &w.path("v2-again.json")).len(), 100);

    let other = analysis::form::DEFAULT_FORM_JSON.replacen(
        &format!("\"version\": \"{}\"", form.version),
        "\"version\": \"v9\"",
        1,
    );
    w.write("v9.json", &other);
    let err = fails(
        &w,
        &[
            "export",
            "--database",
            &database,
            "-o",
            "v9.csv",
            "--form",
            "v9.json",
        ],
    );
    assert!(
        err.contains("does not collect form minzhu-pingyi version v9")
            && err.contains("v2 (100 ballots)"),
        "{err}"
    );
    assert!(!w.path("v9.csv").exists());

    let out = w.run(&["score", &database]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("200 ballots of form minzhu-pingyi") && stderr.contains("v2 (100)"),
        "what was not read is said: {stderr}"
    );
}
