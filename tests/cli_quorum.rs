//! 法定人数 with the real binary: `pingyi score` with quorum rules says in every format
//! why a group is not graded; head counts come from the rules or from the collection
//! database's attendance (and the console's dashboard shows exactly what `pingyi score`
//! prints for that database), on SQLite and on PostgreSQL (a fresh database through
//! PINGYI_TEST_POSTGRES, which ./test.sh sets); counts that differ are refused.

mod common;

use std::time::Duration;

use analysis::synth::Generator;
use analysis::Form;
use common::{rules, Work};
use pingyi_server::auth::hash_password;
use pingyi_server::config::{DashboardSettings, RulesFile};
use pingyi_server::store::{Database, Store};
use pingyi_server::{Config, Limits, Server};
use serde_json::{json, Value};

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// Government staff (机关干部) are graded only when more than half of them were present;
/// their head counts are left to the database.
const QUORUM: &str = "name = \"会议评议\"\n[quorum]\ngroups = [\"cadre\"]\n";

#[test]
fn every_output_of_score_says_why_a_group_below_its_quorum_is_not_graded() {
    let w = Work::new();
    w.ok(&[
        "generate",
        "--ballots",
        "400",
        "--seed",
        "5",
        "-o",
        "b.json",
    ]);
    let r = rules("congress-quorum.toml");
    let why = "人大代表: 实到 30 人，应到 70 人，未超过半数，不计分";
    let table = w.ok(&["score", "b.json", "--rules", &r]);
    assert!(table.contains(why), "{table}");
    let report = w.json(&["score", "b.json", "--rules", &r]);
    let void = &report["void_groups"][0];
    assert_eq!(void["group"], "npc");
    assert!(void["reason"].as_str().unwrap().starts_with(why), "{void}");
    assert!(void["ballots"].as_u64().unwrap() > 0);
    assert_eq!(
        report["ballots"]["invalid_by_reason"]["void:npc"],
        void["ballots"]
    );
    // 政协委员: 41 of 60 present is more than half, so they are graded.
    assert_eq!(report["void_groups"].as_array().unwrap().len(), 1);
    let rows = w.csv_rows(&["score", "b.json", "--rules", &r]);
    assert!(
        rows.iter()
            .all(|row| row["flags"].contains("void_group:npc")),
        "{rows:?}"
    );

    let bad = w.write(
        "bad.toml",
        "[quorum]\ngroups = [\"deputies\"]\nshare = \"3/2\"\n",
    );
    let err = w.fails(&["score", "b.json", "--rules", bad.to_str().unwrap()], 1);
    assert!(err.contains("bad.toml") && err.contains("\"3/2\""), "{err}");
}

/// Starts a real server on `db` with the quorum rules, posts ballots of the public and
/// of government staff, signs in a viewer; then for each attendance recorded in the
/// database, `pingyi score DB --format json` equals the dashboard's scores.
fn head_counts_from_the_database(db: &str) {
    let w = Work::new();
    let rules_file = w.write("meeting.toml", QUORUM);
    let rules_arg = rules_file.to_str().unwrap().to_string();
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
    let form = Form::default_form();
    let database = Database::parse(db).unwrap();
    let rt = common::runtime();
    let (url, stop, task, store) = rt.block_on(async {
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: Vec::new(),
            database: database.clone(),
            site: site.clone(),
            tls: None,
            limits: Limits::default(),
            dashboard: DashboardSettings {
                rules: vec![RulesFile {
                    source: rules_arg.clone(),
                    name: "meeting".into(),
                    text: QUORUM.into(),
                }],
                public_url: None,
            },
        };
        let server = Server::bind(config).await.expect("the server starts");
        let url = server.url().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let store = Store::open(&database).await.unwrap();
        let hash = hash_password("battery staple").unwrap();
        assert!(store.add_user("li", "viewer", &hash).await.unwrap());
        (url, stop, task, store)
    });
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let mut g = Generator::new(&form, 11);
    let ballots: Vec<_> = (0..60)
        .map(|i| {
            let mut b = g.ballot();
            b.group = if i % 2 == 0 { "cadre" } else { "public" }.into();
            b
        })
        .collect();
    let dashboard_url = format!(
        "{url}api/v1/admin/campaigns/{}/{}/dashboard?rules=meeting",
        form.id, form.version
    );
    // Three deputies vote with three of the five codes issued to their group.
    let issued = rt
        .block_on(store.issue_codes(&form.id, &form.version, "npc", 5))
        .unwrap();
    let deputies: Vec<_> = issued.codes[..3]
        .iter()
        .map(|code| {
            let mut b = g.ballot();
            b.group = "npc".into();
            b.access_code = Some(code.to_string());
            b
        })
        .collect();
    let ballots: Vec<_> = ballots.into_iter().chain(deputies).collect();
    let dashboard = rt.block_on(async {
        let r = c
            .post(format!("{url}api/v1/ballots"))
            .json(&json!({ "ballots": ballots }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        for result in body["results"].as_array().unwrap() {
            assert_eq!(result["status"], "stored", "{result}");
        }
        let r = c
            .post(format!("{url}api/v1/admin/session"))
            .json(&json!({"name": "li", "password": "battery staple"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_string()
    });
    let look = |rt: &tokio::runtime::Runtime| -> Value {
        rt.block_on(async {
            let r = c
                .get(&dashboard_url)
                .header("cookie", &dashboard)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json().await.unwrap()
        })
    };
    let score = |args: &[&str]| -> Value {
        let mut all = vec!["score", db, "--rules", &rules_arg];
        all.extend(args);
        w.json(&all)
    };

    // No attendance recorded: the staff's vote cannot be confirmed, in both.
    let cli = score(&[]);
    let dash = look(&rt);
    assert_eq!(dash["scores"], cli);
    assert!(cli["void_groups"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("未记录实到人数和应到人数"));

    // 36 of 70 present: more than half, graded; the note says where the counts came from.
    rt.block_on(store.record_attendance(&form.id, &form.version, "cadre", 36, Some(70), "li"))
        .unwrap();
    let cli = score(&[]);
    let dash = look(&rt);
    assert_eq!(dash["scores"], cli);
    assert_eq!(cli["void_groups"], json!([]));
    assert_eq!(
        dash["head_counts"]["cadre"],
        json!({"issued": null, "returned": null, "present": 36, "members": 70})
    );
    let notes: Vec<&str> = cli["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.contains(
            &"head counts of group \"cadre\": present 36 (the database), members 70 (the database)"
        ),
        "{notes:?}"
    );
    assert_eq!(
        dash["head_counts"]["npc"],
        json!({"issued": 5, "returned": 3, "present": null, "members": null})
    );
    assert!(
        notes.contains(
            &"head counts of group \"npc\": issued 5 (the database), returned 3 (the database)"
        ),
        "{notes:?}"
    );

    // 35 of 70: not more than half; the dashboard follows the attendance, not only ballots.
    rt.block_on(store.record_attendance(&form.id, &form.version, "cadre", 35, Some(70), "li"))
        .unwrap();
    let cli = score(&[]);
    let dash = look(&rt);
    assert_eq!(dash["scores"], cli);
    assert!(cli["void_groups"][0]["reason"]
        .as_str()
        .unwrap()
        .starts_with("机关干部: 实到 35 人，应到 70 人，未超过半数，不计分"));

    // The same count in the rules agrees; a different one is refused naming both.
    let agree = w.write(
        "agree.toml",
        &format!("{QUORUM}[denominator.groups.cadre]\nmembers = 70\n"),
    );
    let agreed = w.json(&["score", db, "--rules", agree.to_str().unwrap()]);
    assert!(agreed["notes"][0]
        .as_str()
        .unwrap()
        .contains("members 70 (rules)"));
    let differ = w.write(
        "differ.toml",
        &format!("{QUORUM}[denominator.groups.cadre]\npresent = 40\n"),
    );
    let err = w.fails(&["score", db, "--rules", differ.to_str().unwrap()], 1);
    assert!(
        err.contains("differ.toml")
            && err.contains("denominator.groups.cadre.present")
            && err.contains("is 40 in the rules but 35 in the database"),
        "{err}"
    );

    rt.block_on(async {
        let _ = stop.send(());
        tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    });
}

#[test]
fn head_counts_come_from_the_database_and_the_dashboard_equals_score_sqlite() {
    let w = Work::new();
    let db = format!("sqlite:{}", w.path("campaign.db").display());
    head_counts_from_the_database(&db);
}

#[test]
fn head_counts_come_from_the_database_and_the_dashboard_equals_score_postgres() {
    head_counts_from_the_database(&common::fresh_postgres("quorum_heads"));
}

/// `pingyi serve --rules` checks the rules against the served form before anything
/// starts, and prints the public address and its QR code after its first line.
#[test]
fn serve_checks_its_rules_and_prints_the_public_address_with_a_qr_code() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let w = Work::new();
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
    let site = site.to_str().unwrap().to_string();
    let bad = w.write("bad.toml", "[quorum]\ngroups = [\"deputies\"]\n");
    let err = w.fails(
        &[
            "serve",
            "--no-build",
            "--pkg",
            &site,
            "--port",
            "0",
            "--rules",
            bad.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        err.contains("bad.toml")
            && err.contains("quorum.groups[0]")
            && err.contains("\"deputies\""),
        "{err}"
    );
    assert!(
        !w.path("pingyi.db").exists(),
        "no database is made for a refused start"
    );

    let good = rules("congress-quorum.toml");
    let mut child = common::pingyi()
        .args([
            "serve",
            "--no-build",
            "--pkg",
            &site,
            "--port",
            "0",
            "--rules",
            &good,
        ])
        .args(["--public-url", "http://192.168.1.20:8080/"])
        .current_dir(w.dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.starts_with("Pingyi 评议 is served at http://127.0.0.1:")
            && first.ends_with(" (Ctrl-C to stop)"),
        "{first}"
    );
    let second = lines.next().unwrap().unwrap();
    assert_eq!(
        second,
        "Respondents open http://192.168.1.20:8080/ (scan the QR code with a phone):"
    );
    // A QR code of half blocks: square rows, 4 modules of quiet zone each side.
    let qr: Vec<String> = (0..10).map(|_| lines.next().unwrap().unwrap()).collect();
    let width = qr[0].chars().count();
    assert!(width >= 29, "{qr:?}");
    assert!(
        qr.iter()
            .all(|l| l.chars().count() == width && l.chars().all(|c| " ▀▄█".contains(c))),
        "{qr:?}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
