//! The campaign console's API over real HTTP on a real port, on SQLite and on PostgreSQL
//! (a fresh database through PINGYI_TEST_POSTGRES, which ./test.sh sets): signing in and
//! out, the cookie's flags, wrong passwords and the throttle, roles, the audit log,
//! closing a campaign and its final export.

mod common;

use std::time::Duration;

use analysis::synth::Generator;
use analysis::Form;
use pingyi_server::auth::hash_password;
use pingyi_server::store::{Database, Store};
use pingyi_server::{Config, Limits, Server, TlsFiles};
use reqwest::header::{HeaderMap, COOKIE, RETRY_AFTER, SET_COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

struct TestServer {
    url: String,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start(database: Option<Database>, tls: Option<TlsFiles>) -> (TestServer, Store) {
        let dir = tempfile::tempdir().unwrap();
        let site = common::placeholder_site(dir.path());
        let database = database.unwrap_or_else(|| Database::Sqlite(dir.path().join("ballots.db")));
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: Vec::new(),
            database: database.clone(),
            site,
            tls,
            limits: Limits::default(),
            dashboard: Default::default(),
        };
        let server = Server::bind(config).await.expect("the server starts");
        let url = server.url().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        // The same database as the server, as `pingyi user add` would open it.
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
    Database::Postgres(common::fresh_postgres_url(&format!("admin_{test}")).await)
}

async fn add_user(store: &Store, name: &str, role: &str, password: &str) {
    let hash = hash_password(password).unwrap();
    assert!(store.add_user(name, role, &hash).await.unwrap());
}

/// Signs in; the cookie header to send back, and the Set-Cookie as received.
async fn sign_in(
    c: &reqwest::Client,
    s: &TestServer,
    name: &str,
    password: &str,
) -> (String, String) {
    let r = c
        .post(s.admin("session"))
        .json(&json!({ "name": name, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "{name} signs in");
    let set = r.headers()[SET_COOKIE].to_str().unwrap().to_string();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["name"], name);
    let cookie = set.split(';').next().unwrap().to_string();
    (cookie, set)
}

async fn send(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    cookie: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut r = c.request(method, url);
    if let Some(cookie) = cookie {
        r = r.header(COOKIE, cookie);
    }
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.bytes().await.unwrap().to_vec())
}

async fn get_json(c: &reqwest::Client, url: &str, cookie: Option<&str>) -> (StatusCode, Value) {
    let (status, _, body) = send(c, reqwest::Method::GET, url, cookie, None).await;
    (status, serde_json::from_slice(&body).unwrap())
}

async fn audit(c: &reqwest::Client, s: &TestServer, cookie: &str) -> Vec<Value> {
    let (status, body) = get_json(c, &s.admin("audit?limit=50"), Some(cookie)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["entries"].as_array().unwrap().clone()
}

fn has_entry(entries: &[Value], user: &str, action: &str, detail_part: &str) -> bool {
    entries.iter().any(|e| {
        e["user"] == user
            && e["action"] == action
            && e["address"] == "127.0.0.1"
            && e["detail"].as_str().unwrap().contains(detail_part)
            && e["at"].as_str().unwrap().ends_with('Z')
    })
}

async fn signing_in_and_out(database: Option<Database>) {
    let (s, store) = TestServer::start(database, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    let c = client();

    for (name, password) in [("wang", "wrong horse"), ("nobody", "correct horse")] {
        let (status, body) = {
            let (status, _, body) = send(
                &c,
                reqwest::Method::POST,
                &s.admin("session"),
                None,
                Some(json!({ "name": name, "password": password })),
            )
            .await;
            (status, serde_json::from_slice::<Value>(&body).unwrap())
        };
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{name}");
        assert_eq!(
            body,
            json!({"error": "wrong name or password"}),
            "the same answer for an unknown name and a wrong password"
        );
    }

    let (cookie, set) = sign_in(&c, &s, "wang", "correct horse").await;
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.split("; ").any(|f| f == flag), "{flag} in {set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie: {set}"
    );
    let token = cookie.strip_prefix("pingyi_session=").unwrap();
    assert!(token.len() >= 43, "32 random bytes in base64url: {token}");

    let (status, body) = get_json(&c, &s.admin("session"), Some(&cookie)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, json!({"name": "wang", "role": "admin"}))
    );
    let (status, body) = get_json(&c, &s.admin("session"), None).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}))
    );
    let (status, _) = get_json(&c, &s.admin("session"), Some("pingyi_session=forged")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let entries = audit(&c, &s, &cookie).await;
    assert!(
        has_entry(&entries, "wang", "sign_in_failed", "wrong name or password"),
        "{entries:?}"
    );
    assert!(
        has_entry(&entries, "nobody", "sign_in_failed", ""),
        "the name tried: {entries:?}"
    );
    assert!(
        has_entry(&entries, "wang", "sign_in", "admin"),
        "{entries:?}"
    );
    assert_eq!(entries[0]["action"], "sign_in", "newest first: {entries:?}");
    // The server's first start added the built-in form to the database: a change to what
    // is collected, logged as such (and only once: restarts add nothing).
    let added: Vec<&Value> = entries
        .iter()
        .filter(|e| e["action"] == "form_added")
        .collect();
    assert_eq!(added.len(), 1, "{entries:?}");
    assert_eq!(added[0]["user"], "pingyi serve", "{entries:?}");
    assert!(
        added[0]["detail"]
            .as_str()
            .unwrap()
            .starts_with("form minzhu-pingyi version 2026.1 from the built-in form"),
        "{entries:?}"
    );

    let (status, headers, _) = send(
        &c,
        reqwest::Method::DELETE,
        &s.admin("session"),
        Some(&cookie),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let (status, _) = get_json(&c, &s.admin("session"), Some(&cookie)).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the session ended with sign-out"
    );

    // Removing an official ends their sessions at once.
    let (cookie, _) = sign_in(&c, &s, "wang", "correct horse").await;
    assert!(has_entry(
        &audit(&c, &s, &cookie).await,
        "wang",
        "sign_out",
        ""
    ));
    assert!(store.remove_user("wang").await.unwrap());
    let (status, _) = get_json(&c, &s.admin("session"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_out_on_sqlite() {
    signing_in_and_out(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_in_and_out_on_postgres() {
    signing_in_and_out(Some(fresh_postgres("session").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_session_is_refused() {
    let (s, store) = TestServer::start(None, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    let c = client();
    let token = pingyi_server::auth::new_token();
    let hash = pingyi_server::auth::token_hash(&token);
    let past = analysis::time::format_rfc3339(1_000_000);
    store
        .add_session(&hash, "wang", &past, "127.0.0.1")
        .await
        .unwrap();
    let cookie = format!("pingyi_session={token}");
    let (status, body) = get_json(&c, &s.admin("session"), Some(&cookie)).await;
    assert_eq!(
        (status, body),
        (StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}))
    );
    // A token whose session ends in the future is let in (so the refusal was the time).
    let token = pingyi_server::auth::new_token();
    let future = analysis::time::format_rfc3339(4_102_444_800_000);
    let hash = pingyi_server::auth::token_hash(&token);
    store
        .add_session(&hash, "wang", &future, "127.0.0.1")
        .await
        .unwrap();
    let cookie = format!("pingyi_session={token}");
    let (status, _) = get_json(&c, &s.admin("session"), Some(&cookie)).await;
    assert_eq!(status, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_wrong_passwords_are_refused_with_retry_after() {
    let (s, store) = TestServer::start(None, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    add_user(&store, "li", "viewer", "battery staple").await;
    let c = client();
    let attempt = |password: &'static str, name: &'static str| {
        let c = c.clone();
        let url = s.admin("session");
        async move {
            c.post(url)
                .json(&json!({ "name": name, "password": password }))
                .send()
                .await
                .unwrap()
        }
    };
    let mut refused = None;
    for _ in 0..10 {
        let r = attempt("guess", "wang").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(r);
            break;
        }
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = refused.expect("guessing is refused after a few failures");
    let wait: u64 = refused.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(wait >= 1, "Retry-After {wait}");
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("try again in"),
        "{body}"
    );
    // Even the right password waits: the lock is on the name, whatever is tried.
    assert_eq!(
        attempt("correct horse", "wang").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Another official signs in from the same address meanwhile.
    assert_eq!(
        attempt("battery staple", "li").await.status(),
        StatusCode::OK
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guesses_sent_all_at_once_get_no_more_tries() {
    let (s, store) = TestServer::start(None, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    let c = client();
    let attempts: Vec<_> = (0..30)
        .map(|i| {
            let (c, url) = (c.clone(), s.admin("session"));
            tokio::spawn(async move {
                let password = format!("guess {i}");
                c.post(url)
                    .json(&json!({ "name": "wang", "password": password }))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    let mut checked = 0;
    for a in attempts {
        match a.await.unwrap() {
            StatusCode::UNAUTHORIZED => checked += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("{other}"),
        }
    }
    // 5 free failures, and at most one more from the check running beside the fifth.
    assert!(checked <= 6, "{checked} of 30 guesses were checked");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_from_another_site_cannot_change_anything() {
    let (s, store) = TestServer::start(None, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    let c = client();
    let r = c
        .post(s.admin("session"))
        .header("Origin", "http://evil.example")
        .json(&json!({ "name": "wang", "password": "correct horse" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("\"http://evil.example\""),
        "{body}"
    );
    let own = s.url.trim_end_matches('/').to_string();
    let r = c
        .post(s.admin("session"))
        .header("Origin", own)
        .json(&json!({ "name": "wang", "password": "correct horse" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "the console's own page may");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_the_session_cookie_is_secure() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let (cert, key) = (keys.path().join("cert.pem"), keys.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let (s, store) = TestServer::start(None, Some(TlsFiles { cert, key })).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let (cookie, set) = sign_in(&c, &s, "wang", "correct horse").await;
    assert!(set.split("; ").any(|f| f == "Secure"), "{set}");
    // Over HTTP/2 there is no Host header; the Origin check uses the request's authority.
    let origin = s.url.trim_end_matches('/').to_string();
    let r = c
        .delete(s.admin("session"))
        .header(COOKIE, cookie)
        .header("Origin", origin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    s.stop().await;
}

/// Stores `n` ballots of the built-in form through the public API.
async fn post_ballots(c: &reqwest::Client, s: &TestServer, n: usize, seed: u64) {
    let form = Form::default_form();
    let mut g = Generator::new(&form, seed).open_groups_only();
    let ballots: Vec<_> = (0..n).map(|_| g.ballot()).collect();
    let r = c
        .post(format!("{}api/v1/ballots", s.url))
        .json(&json!({ "ballots": ballots }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["stored"], n, "{body}");
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn roles_closing_and_the_final_export(database: Option<Database>) {
    let (s, store) = TestServer::start(database, None).await;
    add_user(&store, "wang", "admin", "correct horse").await;
    add_user(&store, "li", "viewer", "battery staple").await;
    let c = client();
    post_ballots(&c, &s, 7, 3).await;
    let form = Form::default_form();
    let campaign = format!("campaigns/{}/{}", form.id, form.version);
    let (admin, _) = sign_in(&c, &s, "wang", "correct horse").await;
    let (viewer, _) = sign_in(&c, &s, "li", "battery staple").await;

    for path in ["campaigns", "audit"] {
        let (status, body) = get_json(&c, &s.admin(path), None).await;
        assert_eq!(
            (status, body),
            (StatusCode::UNAUTHORIZED, json!({"error": "sign in first"}))
        );
    }
    let (status, list) = get_json(&c, &s.admin("campaigns"), Some(&viewer)).await;
    assert_eq!(status, StatusCode::OK);
    let one = &list["campaigns"][0];
    assert_eq!(
        (
            &one["form_id"],
            &one["ballots"],
            &one["served"],
            &one["closed"]
        ),
        (&json!(form.id), &json!(7), &json!(true), &Value::Null)
    );
    assert_eq!(one["title"]["zh-CN"], form.title.get("zh-CN"));

    let refused = json!({"error": "this needs the admin role; li is a viewer"});
    for (method, path) in [
        (reqwest::Method::POST, format!("{campaign}/close")),
        (
            reqwest::Method::GET,
            format!("{campaign}/export?format=csv"),
        ),
        (reqwest::Method::GET, "audit".to_string()),
    ] {
        let (status, _, body) = send(&c, method, &s.admin(&path), Some(&viewer), None).await;
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (status, body),
            (StatusCode::FORBIDDEN, refused.clone()),
            "{path}"
        );
    }

    let export = |format: &'static str| {
        let (c, url, admin) = (
            c.clone(),
            s.admin(&format!("{campaign}/export?format={format}")),
            admin.clone(),
        );
        async move { send(&c, reqwest::Method::GET, &url, Some(&admin), None).await }
    };
    let (status, headers, before) = export("csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        headers["x-pingyi-sha256"].to_str().unwrap(),
        sha256(&before)
    );
    assert!(headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename="));
    let (status, _, json_export) = export("json").await;
    assert_eq!(status, StatusCode::OK);
    let exported: Vec<Value> = serde_json::from_slice(&json_export).unwrap();
    assert_eq!(exported.len(), 7);
    let (status, _, body) = export("xml").await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&body)
    );

    let (status, _, body) = send(
        &c,
        reqwest::Method::POST,
        &s.admin(&format!("{campaign}/close")),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let closed: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (&closed["closed_by"], &closed["ballots"]),
        (&json!("wang"), &json!(7))
    );
    let (status, headers, after) = export("csv").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        after, before,
        "no ballot came in: the final export is the export before"
    );
    assert_eq!(
        closed["sha256"],
        sha256(&after),
        "the closure's checksum is the export's"
    );
    assert_eq!(headers["x-pingyi-sha256"].to_str().unwrap(), sha256(&after));
    let (_, _, again) = export("csv").await;
    assert_eq!(
        again, after,
        "a closed campaign's export is byte-identical every time"
    );

    let (status, _, body) = send(
        &c,
        reqwest::Method::POST,
        &s.admin(&format!("{campaign}/close")),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("was closed at"));
    let (_, list) = get_json(&c, &s.admin("campaigns"), Some(&viewer)).await;
    assert_eq!(list["campaigns"][0]["closed"]["sha256"], closed["sha256"]);
    assert_eq!(list["campaigns"][0]["closed"]["closed_by"], "wang");

    let (status, _, _) = send(
        &c,
        reqwest::Method::GET,
        &s.admin(&format!("campaigns/{}/0.0/export", form.id)),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let entries = audit(&c, &s, &admin).await;
    let detail = format!(
        "form {} version {} as csv: 7 ballots",
        form.id, form.version
    );
    assert!(
        has_entry(&entries, "wang", "export", &detail),
        "{entries:?}"
    );
    assert!(
        has_entry(&entries, "wang", "export", "as json"),
        "{entries:?}"
    );
    let sum = closed["sha256"].as_str().unwrap();
    assert!(has_entry(&entries, "wang", "close", sum), "{entries:?}");
    assert!(
        !entries
            .iter()
            .any(|e| e["user"] == "li" && e["action"] == "export"),
        "a refused export is not an export"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_closing_and_the_final_export_on_sqlite() {
    roles_closing_and_the_final_export(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_closing_and_the_final_export_on_postgres() {
    roles_closing_and_the_final_export(Some(fresh_postgres("close").await)).await;
}
