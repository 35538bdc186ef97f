//! The collection server over real HTTP on a real port, with a real SQLite file in a temp
//! folder: every route and status of the API, the site, the limits that keep bad or
//! stalled clients from hurting others, CORS, and HTTPS.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use analysis::synth::Generator;
use analysis::{Ballot, Form};
use pingyi_server::store::Database;
use pingyi_server::{Config, FormFile, Limits, Server, TlsFiles};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// Guard against a hang; never an assertion about speed.
const PATIENCE: Duration = Duration::from_secs(120);

/// A site folder with every file a built site has (small stand-ins for the wasm and JS).
fn write_site(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let css = "body { margin: 0 }\n".repeat(400);
    let files: &[(&str, &[u8])] = &[
        ("index.html", b"<!doctype html><title>Pingyi</title>"),
        ("style.css", css.as_bytes()),
        ("pingyi_app.js", b"export default function init() {}"),
        ("pingyi_app_bg.wasm", b"\0asm\x01\0\0\0"),
        ("manifest.webmanifest", b"{}"),
        ("icon.svg", b"<svg/>"),
        ("sw.js", b"importScripts('build.js');"),
    ];
    for (name, bytes) in files {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Large enough to fill a client's socket buffers many times over.
    std::fs::write(dir.join("big.bin"), vec![7u8; 4 * 1024 * 1024]).unwrap();
}

struct TestServer {
    url: String,
    dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
struct Options {
    forms: Vec<FormFile>,
    database: Option<Database>,
    tls: Option<TlsFiles>,
    limits: Limits,
}

impl TestServer {
    async fn start() -> TestServer {
        TestServer::with(Options::default()).await
    }

    async fn with(options: Options) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        write_site(&dir.path().join("site"));
        let database = options
            .database
            .unwrap_or_else(|| Database::Sqlite(dir.path().join("ballots.db")));
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            forms: options.forms,
            database,
            site: dir.path().join("site"),
            tls: options.tls,
            limits: options.limits,
            dashboard: Default::default(),
        };
        let server = Server::bind(config).await.expect("the server starts");
        let url = server.url().to_string();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(async move {
            let _ = stopped.await;
        }));
        TestServer {
            url,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn api(&self, path: &str) -> String {
        format!("{}api/v1/{path}", self.url)
    }

    fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_string()
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

fn ballots(n: usize, seed: u64) -> Vec<Ballot> {
    let form = Form::default_form();
    let mut g = Generator::new(&form, seed).open_groups_only();
    (0..n).map(|_| g.ballot()).collect()
}

async fn post_batch(c: &reqwest::Client, s: &TestServer, ballots: Value) -> (StatusCode, Value) {
    let r = c
        .post(s.api("ballots"))
        .json(&json!({ "ballots": ballots }))
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn get_json(c: &reqwest::Client, url: &str) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn status(c: &reqwest::Client, s: &TestServer) -> Value {
    let (code, body) = get_json(c, &s.api("status")).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_forms_status_and_the_openapi_document_answer() {
    let s = TestServer::start().await;
    let c = client();
    let (code, body) = get_json(&c, &s.api("health")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body, json!({"status": "ok", "database": "sqlite"}));

    let (code, body) = get_json(&c, &s.api("forms")).await;
    assert_eq!(code, StatusCode::OK);
    let form = Form::default_form();
    assert_eq!(
        body,
        json!({"forms": [{"id": form.id, "version": form.version,
                          "title": form.title.to_string(), "served": true}]})
    );
    let r = c
        .get(s.api(&format!("forms/{}/{}", form.id, form.version)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.text().await.unwrap(),
        analysis::form::DEFAULT_FORM_JSON,
        "the form definition comes back exactly as collected"
    );
    let (code, body) = get_json(&c, &s.api(&format!("forms/{}/0.0", form.id))).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("\"0.0\" is not collected here") && error.contains(&form.version),
        "{error}"
    );

    assert_eq!(
        status(&c, &s).await,
        json!({"ballots": 0, "repeats": 0, "conflicts": 0, "refused": 0, "by_form": []})
    );
    let (code, doc) = get_json(&c, &s.api("openapi.json")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    for path in [
        "/health",
        "/status",
        "/forms",
        "/forms/{id}/{version}",
        "/ballots",
        "/ballots/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }

    let (code, body) = get_json(&c, &s.api("nothing-here")).await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    assert!(body["error"]
        .as_str()
        .unwrap()
        .contains("/api/v1/nothing-here"));
    let r = c.delete(s.api("status")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("DELETE"), "{body}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_site_form_and_build_are_served_with_their_headers() {
    let s = TestServer::start().await;
    let c = client();
    let r = c.get(&s.url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(r.headers()["cache-control"], "no-cache");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.text().await.unwrap().contains("<title>Pingyi</title>"));

    let r = c
        .get(format!("{}pingyi_app_bg.wasm", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/wasm");
    let form = c.get(format!("{}form.json", s.url)).send().await.unwrap();
    assert_eq!(
        form.text().await.unwrap(),
        analysis::form::DEFAULT_FORM_JSON
    );
    let build = c.get(format!("{}build.js", s.url)).send().await.unwrap();
    let build = build.text().await.unwrap();
    assert!(
        build.contains("self.PINGYI_BUILD = \"") && build.contains("\"form.json\""),
        "{build}"
    );

    // Compressed for a client that asks.
    let r = c
        .get(format!("{}style.css", s.url))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-encoding"], "gzip");

    let r = c.post(&s.url).body("x").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    for missing in [
        "missing.js",
        "..%2fballots.db",
        "site/index.html",
        ".hidden",
    ] {
        let r = c.get(format!("{}{missing}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{missing}");
    }
    // The site folder is never written by the server.
    assert!(!s.dir.path().join("site/form.json").exists());
    assert!(!s.dir.path().join("site/build.js").exists());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_form_makes_a_new_build_id() {
    let form_b = analysis::form::DEFAULT_FORM_JSON.replacen("\"2026.1\"", "\"2026.2\"", 1);
    assert_ne!(
        form_b,
        analysis::form::DEFAULT_FORM_JSON,
        "the version is replaced"
    );
    let mut ids = Vec::new();
    for forms in [
        vec![],
        vec![FormFile {
            source: "b.json".into(),
            json: form_b.clone(),
        }],
    ] {
        let s = TestServer::with(Options {
            forms,
            ..Options::default()
        })
        .await;
        let c = client();
        let js = c.get(format!("{}build.js", s.url)).send().await.unwrap();
        ids.push(js.text().await.unwrap());
        s.stop().await;
    }
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_keeps_its_good_ballots_and_refuses_the_rest_with_their_paths() {
    let s = TestServer::start().await;
    let c = client();
    let b = ballots(4, 11);
    let mut bad_group = serde_json::to_value(&b[1]).unwrap();
    bad_group["group"] = json!("nobody");
    let mut unknown_form = serde_json::to_value(&b[2]).unwrap();
    unknown_form["form_version"] = json!("1999");
    let mut bad_answer = serde_json::to_value(&b[3]).unwrap();
    bad_answer["answers"]["q_overall"] = json!(["not", "a", "code"]);
    let batch = json!([
        b[0],
        bad_group,
        unknown_form,
        42,
        {"id": "half", "form_id": "x"},
        bad_answer,
    ]);
    let (code, body) = post_batch(&c, &s, batch).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<&str> = results
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["stored", "refused", "refused", "refused", "refused", "refused"]
    );
    let ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [&*b[0].id, &*b[1].id, &*b[2].id, "", "half", &*b[3].id]
    );
    let first = |i: usize| &results[i]["problems"][0];
    assert!(results[0].get("problems").is_none());
    assert_eq!(first(1)["path"], "[1].group");
    assert!(first(1)["message"].as_str().unwrap().contains("\"nobody\""));
    assert_eq!(first(2)["path"], "[2].form_id");
    assert!(first(2)["message"].as_str().unwrap().contains(
        "version \"1999\" is not collected here; forms collected: minzhu-pingyi version 2026.1"
    ));
    assert_eq!(first(3)["path"], "[3]");
    assert!(first(3)["message"]
        .as_str()
        .unwrap()
        .contains("integer `42`"));
    assert_eq!(first(4)["path"], "[4]");
    assert!(first(4)["message"]
        .as_str()
        .unwrap()
        .contains("missing field"));
    let path5 = first(5)["path"].as_str().unwrap();
    assert!(path5.starts_with("[5].answers"), "{path5}");
    assert_eq!(
        (
            &body["stored"],
            &body["already_stored"],
            &body["conflicts"],
            &body["refused"]
        ),
        (&json!(1), &json!(0), &json!(0), &json!(5))
    );
    let counts = status(&c, &s).await;
    assert_eq!(counts["ballots"], 1);
    assert_eq!(counts["refused"], 5);
    assert_eq!(
        counts["by_form"],
        json!([{"id": "minzhu-pingyi", "version": "2026.1", "ballots": 1}])
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_is_acknowledged_again_and_a_conflict_is_named_and_both_are_counted() {
    let s = TestServer::start().await;
    let c = client();
    let b = ballots(3, 12);
    let batch = json!([b[0], b[1]]);
    let (_, first) = post_batch(&c, &s, batch.clone()).await;
    assert_eq!(first["stored"], 2);
    let (code, again) = post_batch(&c, &s, batch).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(again["already_stored"], 2);
    assert_eq!(again["stored"], 0);

    let put = |ballot: Value, id: String| {
        let c = c.clone();
        let url = s.api(&format!("ballots/{id}"));
        async move {
            let r = c.put(url).json(&ballot).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let (code, body) = put(json!(b[2]), b[2].id.clone()).await;
    assert_eq!(
        (code, &body["status"]),
        (StatusCode::CREATED, &json!("stored"))
    );
    let (code, body) = put(json!(b[2]), b[2].id.clone()).await;
    assert_eq!(
        (code, &body["status"]),
        (StatusCode::OK, &json!("already_stored"))
    );

    let mut other = b[0].clone();
    other.lang = if other.lang == "en" {
        "zh-CN".into()
    } else {
        "en".into()
    };
    let (code, body) = put(json!(other), other.id.clone()).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    assert_eq!(
        body["error"],
        format!(
            "a different ballot with id \"{}\" is already stored",
            b[0].id
        )
    );
    let (code, body) = post_batch(&c, &s, json!([other])).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(body["results"][0]["status"], "conflict");
    assert_eq!(body["results"][0]["problems"][0]["path"], "[0].id");

    let (code, body) = put(json!(b[1]), "another-id".into()).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap().contains("\"another-id\""));
    let mut refused = json!(b[1]);
    refused["id"] = json!("refused-1");
    refused["group"] = json!("");
    let (code, body) = put(refused, "refused-1".into()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["status"], "refused");
    assert_eq!(body["problems"][0]["path"], "group");

    // The empty id is answered like any other: a ballot without an id is refused.
    let mut no_id = json!(b[1]);
    no_id["id"] = json!("");
    let (code, body) = put(no_id, String::new()).await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["problems"][0]["path"], "id");

    let counts = status(&c, &s).await;
    assert_eq!(counts["ballots"], 3, "{counts}");
    assert_eq!(counts["repeats"], 3, "{counts}");
    assert_eq!(counts["conflicts"], 2, "{counts}");
    assert_eq!(counts["refused"], 2, "{counts}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_request_errors_are_clear_and_the_server_stays_up() {
    let s = TestServer::start().await;
    let c = client();
    let send = |body: Vec<u8>, content_type: &'static str| {
        let c = c.clone();
        let url = s.api("ballots");
        async move {
            let r = c
                .post(url)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    };
    let error = |v: &Value| v["error"].as_str().unwrap().to_string();
    let (code, body) = send(
        b"{\"ballots\": [\n  {\"id\": }]}".to_vec(),
        "application/json",
    )
    .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("line 2, column 10"), "{body}");
    let (code, body) = send(b"{\"votes\": []}".to_vec(), "application/json").await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(error(&body).contains("missing field `ballots`"), "{body}");
    let (code, body) = send(b"{\"ballots\": []}".to_vec(), "text/plain").await;
    assert_eq!(code, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(error(&body).contains("application/json"), "{body}");
    let (code, body) = send(b"{\"ballots\": []}".to_vec(), "application/json").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error(&body).contains("no ballots"), "{body}");

    // Ballots with their answers left out, so that 10,000 stay under the size limit.
    let many: Vec<Ballot> = ballots(10_000, 13)
        .into_iter()
        .map(|mut b| {
            b.answers.clear();
            b
        })
        .collect();
    let body = serde_json::to_vec(&json!({ "ballots": many })).unwrap();
    assert!(
        body.len() < 8 * 1024 * 1024,
        "under the size limit, over the count"
    );
    let (code, body) = send(body, "application/json").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error(&body), "at most 1000 ballots per batch, got 10000");

    // 50 MB announced by Content-Length, and 50 MB in chunks with no length to check up front.
    let mib = vec![b' '; 1024 * 1024];
    let chunk = [b"100000\r\n".as_slice(), &mib, b"\r\n"].concat();
    let requests = [
        ("Content-Length: 52428800", vec![mib.clone(); 50]),
        ("Transfer-Encoding: chunked", vec![chunk; 50]),
    ];
    for (framing, body) in requests {
        let head = format!(
            "POST /api/v1/ballots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
        );
        let answer = raw_exchange(&s.addr(), head.as_bytes(), body).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{framing}: {answer}");
        assert!(answer.contains("larger than 8 MiB"), "{framing}: {answer}");
    }

    let (code, _) = get_json(&c, &s.api("health")).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(status(&c, &s).await["ballots"], 0, "nothing was stored");
    s.stop().await;
}

/// Sends a request head, then the body's pieces while reading the answer at the same time
/// (the server may answer and close before the body is all sent); returns the answer.
async fn raw_exchange(addr: &str, head: &[u8], body: Vec<Vec<u8>>) -> String {
    let (mut reader, mut writer) = TcpStream::connect(addr).await.unwrap().into_split();
    let head = head.to_vec();
    let sending = tokio::spawn(async move {
        for piece in std::iter::once(head).chain(body) {
            if writer.write_all(&piece).await.is_err() {
                break;
            }
        }
        // Kept open (no FIN) until the answer is read.
        writer
    });
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(PATIENCE, reader.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => panic!(
                "no answer, got so far: {}",
                String::from_utf8_lossy(&answer)
            ),
        }
    }
    sending.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_gb_content_length_is_refused_without_reading_the_body() {
    let s = TestServer::start().await;
    // Only the headers are sent: an answer proves the server did not wait for the body.
    let answer = raw_exchange(
        &s.addr(),
        b"POST /api/v1/ballots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n",
        vec![],
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("larger than 8 MiB"), "{answer}");
    let c = client();
    assert_eq!(get_json(&c, &s.api("health")).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_or_too_large_headers_are_refused_with_431() {
    let s = TestServer::start().await;
    let many: String = (0..150).map(|i| format!("X-H{i}: v\r\n")).collect();
    let large = format!("X-Big: {}\r\n", "a".repeat(200_000));
    for headers in [many, large] {
        let head = format!("GET /api/v1/health HTTP/1.1\r\nHost: x\r\n{headers}\r\n");
        let answer = raw_exchange(&s.addr(), head.as_bytes(), vec![]).await;
        assert!(
            answer.starts_with("HTTP/1.1 431"),
            "{}",
            &answer[..answer.len().min(200)]
        );
    }
    let c = client();
    assert_eq!(get_json(&c, &s.api("health")).await.0, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_and_half_finished_connections_do_not_hold_up_other_clients() {
    // A long header timeout, so the stalled connections surely stay open during the checks.
    let limits = Limits {
        header_read_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let s = TestServer::with(Options {
        limits,
        ..Options::default()
    })
    .await;
    let mut stalled = Vec::new();
    for i in 0..100 {
        let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
        let half: &[u8] = if i % 2 == 0 {
            b"POST /api/v1/ballots HTTP/1.1\r\nHost: x\r\nContent-Ty"
        } else {
            b"POST /api/v1/ballots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"ballots\": ["
        };
        tcp.write_all(half).await.unwrap();
        stalled.push(tcp);
    }
    // One client asks for a large file many times over and never reads the answers.
    let mut deaf = TcpStream::connect(s.addr()).await.unwrap();
    for _ in 0..32 {
        deaf.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
    }
    let c = client();
    for _ in 0..5 {
        assert_eq!(get_json(&c, &s.api("health")).await.0, StatusCode::OK);
        let big = c.get(format!("{}big.bin", s.url)).send().await.unwrap();
        assert_eq!(big.bytes().await.unwrap().len(), 4 * 1024 * 1024);
    }
    let (code, body) = post_batch(&c, &s, json!(ballots(1, 14))).await;
    assert_eq!((code, &body["stored"]), (StatusCode::OK, &json!(1)));
    drop(stalled);
    drop(deaf);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_submission_cap_ballots_are_refused_503_unread_and_taken_once_room_returns() {
    // One submission at a time; a request's time limit long enough to hold it open.
    let limits = Limits {
        max_submissions: 1,
        request_timeout: Duration::from_secs(600),
        ..Limits::default()
    };
    let s = TestServer::with(Options {
        limits,
        ..Options::default()
    })
    .await;
    // A device whose batch is still arriving holds the only place.
    let mut slow = TcpStream::connect(s.addr()).await.unwrap();
    slow.write_all(b"POST /api/v1/ballots HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"ballots\": [")
        .await
        .unwrap();
    let c = client();
    let batch = json!(ballots(3, 31));
    // Once the slow request has its place, the next is turned away at once.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let busy = loop {
        let r = c
            .post(s.api("ballots"))
            .json(&json!({ "ballots": batch }))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never refused while the slow request held the only place: {}",
            r.status()
        );
        // Taken before the slow request got its place: stored, and a repeat later.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(busy.headers()["retry-after"], "5");
    let message = busy.json::<Value>().await.unwrap()["error"].to_string();
    assert!(message.contains("busy"), "{message}");
    assert!(
        message.contains("nothing of this request was stored"),
        "{message}"
    );
    // Reading other things is not held up.
    assert_eq!(get_json(&c, &s.api("health")).await.0, StatusCode::OK);
    // The slow device goes away; its place is free again and the retry is stored.
    drop(slow);
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (code, body) = post_batch(&c, &s, batch.clone()).await;
        if code == StatusCode::OK {
            assert_eq!(
                body["stored"].as_u64().unwrap() + body["already_stored"].as_u64().unwrap(),
                3,
                "{body}"
            );
            break;
        }
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came free"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(status(&c, &s).await["ballots"], json!(3));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let limits = Limits {
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let s = TestServer::with(Options {
        limits,
        ..Options::default()
    })
    .await;
    // Half the headers, one byte, and nothing at all.
    for sent in [&b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "[..], b"P", b""] {
        let mut tcp = TcpStream::connect(s.addr()).await.unwrap();
        tcp.write_all(sent).await.unwrap();
        let mut rest = Vec::new();
        // The server closes the connection (it may say 408 first); this read ends then.
        let read = tokio::time::timeout(PATIENCE, tcp.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "the connection that sent {sent:?} was still open"
        );
        let rest = String::from_utf8_lossy(&rest);
        assert!(
            rest.is_empty() || rest.starts_with("HTTP/1.1 408"),
            "{rest}"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_outside_the_site_folder_are_never_served() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret.txt"), "the office's secret").unwrap();
    std::fs::create_dir(outside.path().join("dir")).unwrap();
    std::fs::write(outside.path().join("dir/inner.txt"), "also secret").unwrap();
    // A site with symlinks pointing out of it.
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    write_site(&site);
    std::os::unix::fs::symlink(outside.path().join("secret.txt"), site.join("secret.txt")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("dir"), site.join("linked")).unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        forms: vec![],
        database: Database::Sqlite(dir.path().join("b.db")),
        site: site.clone(),
        tls: None,
        limits: Limits::default(),
        dashboard: Default::default(),
    };
    let server = Server::bind(config).await.unwrap();
    let url = server.url().to_string();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(async move {
        let _ = stopped.await;
    }));
    let c = client();
    for path in [
        "secret.txt",
        "linked/inner.txt",
        "../secret.txt",
        "%2e%2e/b.db",
    ] {
        let r = c.get(format!("{url}{path}")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(!r.text().await.unwrap().contains("secret"));
    }
    assert_eq!(c.get(&url).send().await.unwrap().status(), StatusCode::OK);
    let _ = stop.send(());
    task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_on_another_origin_may_send_ballots() {
    let s = TestServer::start().await;
    let c = client();
    let r = c
        .request(reqwest::Method::OPTIONS, s.api("ballots"))
        .header("origin", "https://kiosk.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    let methods = h["access-control-allow-methods"].to_str().unwrap();
    for m in ["GET", "POST", "PUT", "OPTIONS"] {
        assert!(methods.contains(m), "{methods}");
    }
    assert_eq!(h["access-control-allow-headers"], "content-type");
    assert!(h.get("access-control-allow-credentials").is_none());
    let r = c
        .post(s.api("ballots"))
        .header("origin", "https://kiosk.example")
        .json(&json!({ "ballots": ballots(1, 15) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_in_the_database_stay_collected_and_a_changed_form_needs_a_new_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("campaign.db");
    let v2 = analysis::form::DEFAULT_FORM_JSON.replacen("\"2026.1\"", "\"2026.2\"", 1);
    let first = TestServer::with(Options {
        database: Some(Database::Sqlite(db.clone())),
        ..Options::default()
    })
    .await;
    first.stop().await;
    let s = TestServer::with(Options {
        database: Some(Database::Sqlite(db.clone())),
        forms: vec![FormFile {
            source: "v2.json".into(),
            json: v2.clone(),
        }],
        ..Options::default()
    })
    .await;
    let c = client();
    let (_, body) = get_json(&c, &s.api("forms")).await;
    let listed: Vec<(String, bool)> = body["forms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["version"].as_str().unwrap().to_string(),
                f["served"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [("2026.1".to_string(), false), ("2026.2".to_string(), true)]
    );
    let old = ballots(1, 16);
    let (_, body) = post_batch(&c, &s, json!(old)).await;
    assert_eq!(
        body["stored"], 1,
        "a ballot of the older version is still taken: {body}"
    );
    let served = c.get(format!("{}form.json", s.url)).send().await.unwrap();
    assert_eq!(served.text().await.unwrap(), v2);
    s.stop().await;

    // The same id and version with other content is refused at start.
    let changed = v2.replacen("\"zh-CN\"", "\"zh-CN\" ", 1);
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        forms: vec![FormFile {
            source: "v2-edited.json".into(),
            json: changed,
        }],
        database: Database::Sqlite(db),
        site: {
            let site = dir.path().join("site");
            write_site(&site);
            site
        },
        tls: None,
        limits: Limits::default(),
        dashboard: Default::default(),
    };
    let error = Server::bind(config)
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(
        error.contains("v2-edited.json") && error.contains("new \"version\""),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate_serves_the_app_and_takes_ballots() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let cert = keys.path().join("cert.pem");
    let key = keys.path().join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let s = TestServer::with(Options {
        tls: Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        ..Options::default()
    })
    .await;
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let root = reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap();
    let c = reqwest::Client::builder()
        .tls_certs_only([root])
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let r = c.get(&s.url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.version(),
        reqwest::Version::HTTP_2,
        "HTTP/2 is offered over TLS"
    );
    assert!(r.text().await.unwrap().contains("<title>Pingyi</title>"));
    let (code, body) = post_batch(&c, &s, json!(ballots(2, 17))).await;
    assert_eq!((code, &body["stored"]), (StatusCode::OK, &json!(2)));
    assert_eq!(status(&c, &s).await["ballots"], 2);
    // A plain-HTTP/1.1-only client is served too.
    let h1 = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(certified.cert.pem().as_bytes()).unwrap()])
        .http1_only()
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let r = h1.get(s.api("health")).send().await.unwrap();
    assert_eq!(
        (r.status(), r.version()),
        (StatusCode::OK, reqwest::Version::HTTP_11)
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_named_at_start() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let one = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("other-key.pem");
    let not_pem = dir.path().join("notes.txt");
    std::fs::write(&cert, one.cert.pem()).unwrap();
    std::fs::write(&key, other.signing_key.serialize_pem()).unwrap();
    std::fs::write(&not_pem, "hello").unwrap();
    let start = |cert: PathBuf, key: PathBuf| {
        let db = dir.path().join("b.db");
        let site = dir.path().join("site");
        async move {
            write_site(&site);
            let config = Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                forms: vec![],
                database: Database::Sqlite(db),
                site,
                tls: Some(TlsFiles { cert, key }),
                limits: Limits::default(),
                dashboard: Default::default(),
            };
            Server::bind(config)
                .await
                .err()
                .expect("refused")
                .to_string()
        }
    };
    let missing = dir.path().join("missing.pem");
    let e = start(missing.clone(), key.clone()).await;
    assert!(
        e.contains("missing.pem") && e.contains("certificate"),
        "{e}"
    );
    let e = start(not_pem.clone(), key.clone()).await;
    assert!(
        e.contains("notes.txt") && e.contains("BEGIN CERTIFICATE"),
        "{e}"
    );
    let e = start(cert.clone(), not_pem.clone()).await;
    assert!(e.contains("notes.txt") && e.contains("private key"), "{e}");
    let e = start(cert.clone(), key.clone()).await;
    assert!(
        e.contains("other-key.pem") && e.contains("cert.pem") && e.contains("does not fit"),
        "{e}"
    );
}

/// A tmpfs of `size` on a fresh folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "mount failed (this test needs root, to put the database on a small tmpfs): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_answers_503_with_retry_after_and_the_retry_is_stored() {
    let disk = Tmpfs::mount("4m");
    let s = TestServer::with(Options {
        database: Some(Database::Sqlite(disk.dir.path().join("campaign.db"))),
        ..Options::default()
    })
    .await;
    let c = client();
    let (_, body) = post_batch(&c, &s, json!(ballots(20, 18))).await;
    assert_eq!(body["stored"], 20);
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(disk.dir.path().join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while filler.write_all(&block).is_ok() {}
        let _ = filler.sync_all();
    }
    let mut acknowledged = 20;
    let mut refused_batch = None;
    for seed in 100..200 {
        let batch = ballots(400, seed);
        let r = c
            .post(s.api("ballots"))
            .json(&json!({ "ballots": batch }))
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::SERVICE_UNAVAILABLE {
            assert_eq!(r.headers()["retry-after"], "5");
            let body: Value = r.json().await.unwrap();
            let error = body["error"].as_str().unwrap();
            assert!(
                error.contains("nothing of this request was stored"),
                "{error}"
            );
            refused_batch = Some(batch);
            break;
        }
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["stored"], 400);
        acknowledged += 400;
    }
    let refused_batch = refused_batch.expect("a full disk gives 503");
    std::fs::remove_file(disk.dir.path().join("filler")).unwrap();
    let (code, body) = post_batch(&c, &s, json!(refused_batch)).await;
    assert_eq!(code, StatusCode::OK);
    assert_eq!(
        body["stored"], 400,
        "nothing of the refused batch had been kept"
    );
    acknowledged += 400;
    assert_eq!(status(&c, &s).await["ballots"], acknowledged);
    s.stop().await;
}

/// A fresh PostgreSQL database of this test's own.
async fn fresh_postgres(test: &str) -> String {
    common::fresh_postgres_url(&format!("http_{test}")).await
}

/// `host:port` of a `postgres://user@host:port/db` URL.
fn url_host(url: &str) -> String {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    after_at.split('/').next().unwrap().to_string()
}

/// A TCP forwarder to `target`; sending `true` closes it and every connection through it.
async fn start_proxy(target: &str) -> (String, tokio::sync::watch::Sender<bool>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (cut, cut_seen) = tokio::sync::watch::channel(false);
    let target = target.to_string();
    tokio::spawn(async move {
        loop {
            let mut seen = cut_seen.clone();
            let (mut inbound, _) = tokio::select! {
                a = listener.accept() => a.unwrap(),
                _ = seen.wait_for(|c| *c) => return,
            };
            let target = target.clone();
            tokio::spawn(async move {
                let Ok(mut outbound) = TcpStream::connect(&target).await else {
                    return;
                };
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                    _ = seen.wait_for(|c| *c) => {}
                }
            });
        }
    });
    (addr, cut)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_stores_ballots_in_postgresql_too() {
    let url = fresh_postgres("api").await;
    let s = TestServer::with(Options {
        database: Some(Database::Postgres(url.clone())),
        ..Options::default()
    })
    .await;
    let c = client();
    let (code, body) = get_json(&c, &s.api("health")).await;
    assert_eq!(
        (code, body),
        (
            StatusCode::OK,
            json!({"status": "ok", "database": "postgres"})
        )
    );
    let b = ballots(3, 31);
    let (_, body) = post_batch(&c, &s, json!(b)).await;
    assert_eq!(body["stored"], 3, "{body}");
    let (_, body) = post_batch(&c, &s, json!([b[0]])).await;
    assert_eq!(body["already_stored"], 1, "{body}");
    let mut other = b[1].clone();
    other.device_id = "another-device".into();
    let r = c
        .put(s.api(&format!("ballots/{}", other.id)))
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let counts = status(&c, &s).await;
    assert_eq!(
        (&counts["ballots"], &counts["repeats"], &counts["conflicts"]),
        (&json!(3), &json!(1), &json!(1))
    );

    s.stop().await;

    // Through a connection that can be cut, as a network between two machines is.
    let target = url_host(&url);
    let (proxy, cut) = start_proxy(&target).await;
    let s = TestServer::with(Options {
        database: Some(Database::Postgres(url.replace(&target, &proxy))),
        ..Options::default()
    })
    .await;
    assert_eq!(get_json(&c, &s.api("health")).await.0, StatusCode::OK);
    let _ = cut.send(true);
    let r = c.get(s.api("health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("postgres"),
        "{body}"
    );
    let r = c
        .post(s.api("ballots"))
        .json(&json!({ "ballots": ballots(1, 32) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "5");
    let body: Value = r.json().await.unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("nothing of this request was stored"),
        "{error}"
    );
    s.stop().await;
}
