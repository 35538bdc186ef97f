//! The console's live dashboard over real HTTP on a real port, on SQLite and on
//! PostgreSQL (a fresh database through PINGYI_TEST_POSTGRES, which ./test.sh sets):
//! its scores equal scoring the same ballots from a file, it follows new ballots, a
//! quorum (法定人数) met or not shows, and only signed-in officials see it.

mod common;

use std::time::Duration;

use analysis::files::{aggregate_inputs, Input, Options};
use analysis::rules::Rules;
use analysis::synth::Generator;
use analysis::{Ballot, Form};
use pingyi_server::auth::hash_password;
use pingyi_server::config::{DashboardSettings, RulesFile};
use pingyi_server::store::{Database, Store};
use pingyi_server::{Config, Limits, Server};
use reqwest::header::{COOKIE, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::oneshot;

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// Government staff (机关干部) vote only with more than half of their 70 present.
const NOT_MET: &str = "name = \"会议评议\"\n[quorum]\ngroups = [\"cadre\"]\nshare = \"1/2\"\n\
                       [denominator.groups.cadre]\npresent = 35\nmembers = 70\n";
const MET: &str = "[quorum]\ngroups = [\"cadre\"]\nshare = \"1/2\"\nmore_than = false\n\
                   [denominator.groups.cadre]\npresent = 35\nmembers = 70\n";

struct TestServer {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start(database: Option<Database>) -> (TestServer, Store) {
        let dir = tempfile::tempdir().unwrap();
        let site = common::placeholder_site(dir.path());
        let database = database.unwrap_or_else(|| Database::Sqlite(dir.path().join("ballots.db")));
        let rules = |name: &str, text: &str| RulesFile {
            source: format!("{name}.toml"),
            name: name.to_string(),
            text: text.to_string(),
        };
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: Vec::new(),
            database: database.clone(),
            site,
            tls: None,
            limits: Limits::default(),
            dashboard: DashboardSettings {
                rules: vec![rules("not-met", NOT_MET), rules("met", MET)],
                public_url: Some("http://kiosk.example:8080/".into()),
            },
        };
        let server = Server::bind(config).await.expect("the server starts");
        let url = server.url().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        let store = Store::open(&database).await.unwrap();
        let s = TestServer {
            url,
            _dir: dir,
            stop: Some(stop),
            task: Some(task),
        };
        (s, store)
    }

    fn admin(&self, path: &str) -> String {
        format!("{}api/v1/admin/{path}", self.url)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(PATIENCE, self.task.take().unwrap())
            .await
            .expect("the server stops")
            .unwrap();
    }
}

fn client() -> reqwest::Client {
    common::client(PATIENCE)
}

/// A fresh PostgreSQL database of this test's own.
async fn fresh_postgres(test: &str) -> Database {
    Database::Postgres(common::fresh_postgres_url(&format!("dashboard_{test}")).await)
}

/// Ballots of the public and of government staff (groups that need no access code).
fn ballots(n: usize, seed: u64) -> Vec<Ballot> {
    let form = Form::default_form();
    let mut g = Generator::new(&form, seed);
    (0..n)
        .map(|i| {
            let mut b = g.ballot();
            b.group = if i % 3 == 0 { "cadre" } else { "public" }.into();
            b
        })
        .collect()
}

/// What `pingyi score ballots.json --rules RULES --format json` gives for these ballots.
fn scored_from_a_file(all: &[Ballot], rules: &str) -> Value {
    let form = Form::default_form();
    let r = Rules::from_toml("r.toml", rules, &form).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ballots.json");
    std::fs::write(&file, serde_json::to_vec(all).unwrap()).unwrap();
    let opts = Options {
        threads: 1,
        progress: &|_| {},
    };
    let agg = aggregate_inputs(&form, &r, &[Input::File(&file)], &opts).unwrap();
    serde_json::to_value(analysis::score::score(&form, &r, &agg)).unwrap()
}

/// Whether two reports agree: equal, numbers within a relative 1e-9 (the file and the
/// database hand the ballots over in different orders, and sums of floats depend on order).
fn same(a: &Value, b: &Value, path: &str) {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
            assert!(
                (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                "{path}: {x} vs {y}"
            );
        }
        (Value::Array(x), Value::Array(y)) => {
            assert_eq!(x.len(), y.len(), "{path}: lengths");
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                same(x, y, &format!("{path}[{i}]"));
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            assert_eq!(
                x.keys().collect::<Vec<_>>(),
                y.keys().collect::<Vec<_>>(),
                "{path}: keys"
            );
            for (k, v) in x {
                same(v, &y[k], &format!("{path}.{k}"));
            }
        }
        _ => assert_eq!(a, b, "{path}"),
    }
}

async fn get(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> (StatusCode, Value) {
    let mut r = c.get(url);
    if let Some(cookie) = cookie {
        r = r.header(COOKIE, cookie);
    }
    let r = r.send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn post_ballots(c: &reqwest::Client, s: &TestServer, batch: &[Ballot]) {
    let r = c
        .post(format!("{}api/v1/ballots", s.url))
        .json(&json!({ "ballots": batch }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    for result in body["results"].as_array().unwrap() {
        assert_eq!(result["status"], "stored", "{result}");
    }
}

async fn viewer_cookie(c: &reqwest::Client, s: &TestServer, store: &Store) -> String {
    let hash = hash_password("battery staple").unwrap();
    assert!(store.add_user("li", "viewer", &hash).await.unwrap());
    let r = c
        .post(s.admin("session"))
        .json(&json!({ "name": "li", "password": "battery staple" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    set.split(';').next().unwrap().to_string()
}

async fn dashboard_follows_the_ballots(database: Option<Database>) {
    let (s, store) = TestServer::start(database).await;
    let c = client();
    let form = Form::default_form();
    let path = format!("campaigns/{}/{}/dashboard", form.id, form.version);

    let (code, body) = get(&c, &s.admin(&format!("{path}?rules=met")), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{body}");
    let (code, _) = get(&c, &s.admin("info"), None).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let cookie = viewer_cookie(&c, &s, &store).await;

    let (code, info) = get(&c, &s.admin("info"), Some(&cookie)).await;
    assert_eq!(code, StatusCode::OK, "{info}");
    assert_eq!(
        info,
        json!({"public_url": "http://kiosk.example:8080/", "rules": [
            {"name": "not-met", "title": "会议评议"}, {"name": "met", "title": "met"}]})
    );

    let first = ballots(45, 7);
    post_ballots(&c, &s, &first).await;
    let (code, dash) = get(
        &c,
        &s.admin(&format!("{path}?rules=not-met")),
        Some(&cookie),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{dash}");
    assert_eq!(dash["ballots"], 45);
    assert_eq!(dash["rules"], "not-met");
    let hours = dash["per_hour"].as_array().unwrap();
    let per_hour: u64 = hours.iter().map(|h| h["ballots"].as_u64().unwrap()).sum();
    assert_eq!(per_hour, 45);
    assert!(
        hours[0]["hour"].as_str().unwrap().ends_with(":00:00Z"),
        "{hours:?}"
    );
    same(
        &dash["scores"],
        &scored_from_a_file(&first, NOT_MET),
        "scores",
    );
    // 35 of 70 is not more than half: the staff's 15 ballots are void, and it says why.
    let void = &dash["scores"]["void_groups"][0];
    assert_eq!(
        (void["group"].as_str(), void["ballots"].as_u64()),
        (Some("cadre"), Some(15))
    );
    assert!(void["reason"]
        .as_str()
        .unwrap()
        .starts_with("机关干部: 实到 35 人，应到 70 人，未超过半数，不计分"));
    let groups: Vec<&str> = dash["by_unit_group"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["group"].as_str().unwrap())
        .collect();
    assert!(
        !groups.is_empty() && groups.iter().all(|g| *g == "public"),
        "{groups:?}"
    );

    // At least half is met: the staff count, and the numbers per unit × group are the
    // scoring's own.
    let (_, met) = get(&c, &s.admin(&format!("{path}?rules=met")), Some(&cookie)).await;
    assert_eq!(met["scores"]["void_groups"], json!([]));
    for cell in met["by_unit_group"].as_array().unwrap() {
        let unit = met["scores"]["units"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["unit"] == cell["unit"])
            .unwrap();
        assert_eq!(
            unit["groups"][cell["group"].as_str().unwrap()]["n"],
            cell["n"]
        );
    }
    assert!(met["by_unit_group"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["group"] == "cadre"));

    // More ballots arrive: the next look shows them.
    let more = ballots(30, 8)
        .into_iter()
        .enumerate()
        .map(|(i, mut b)| {
            b.id = format!("more-{i}-{}", b.id);
            b
        })
        .collect::<Vec<_>>();
    post_ballots(&c, &s, &more).await;
    let (_, after) = get(
        &c,
        &s.admin(&format!("{path}?rules=not-met")),
        Some(&cookie),
    )
    .await;
    assert_eq!(after["ballots"], 75);
    let all: Vec<Ballot> = first.iter().chain(&more).cloned().collect();
    same(
        &after["scores"],
        &scored_from_a_file(&all, NOT_MET),
        "scores",
    );
    assert_ne!(after["scores"], dash["scores"]);

    let (code, body) = get(&c, &s.admin(&format!("{path}?rules=nope")), Some(&cookie)).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        body["error"].as_str().unwrap().contains("not-met, met"),
        "{body}"
    );
    let (code, _) = get(&c, &s.admin("campaigns/nope/1/dashboard"), Some(&cookie)).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_scores_what_is_stored_and_follows_new_ballots_sqlite() {
    dashboard_follows_the_ballots(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_scores_what_is_stored_and_follows_new_ballots_postgres() {
    dashboard_follows_the_ballots(Some(fresh_postgres("follows").await)).await;
}
