//! The officials' console at /admin/ in a real Chromium against the real server: sign-in
//! and its refusals, what a viewer may not do, closing a campaign with its checksum.
//! Officials are added with `pingyi user add` before the server starts.

use std::path::Path;
use std::process::Command;

use crate::harness::{add_user, pkg_dir, Session};

const ADMIN: (&str, &str) = ("wang.fang", "correct horse 42");
const VIEWER: (&str, &str) = ("li.lei", "battery staple 7");
const TITLE: &str = "2026年度市直单位民主评议满意度测评问卷";
const CAMPAIGN: &str = "campaign-minzhu-pingyi-2026.1";

/// A session whose server knows one admin and one viewer.
async fn with_officials() -> Session {
    Session::start_after(&pkg_dir(), &[], |db: &Path| {
        add_user(db, ADMIN.0, "admin", ADMIN.1);
        add_user(db, VIEWER.0, "viewer", VIEWER.1);
    })
    .await
}

async fn sign_in(s: &Session, (name, password): (&str, &str)) {
    s.find("signin-name").await.clear().await.unwrap();
    s.type_into("signin-name", name).await;
    s.find("signin-password").await.clear().await.unwrap();
    s.type_into("signin-password", password).await;
    s.click("signin-submit").await;
}

/// `count` synthetic ballots of groups that need no code, from `pingyi generate`, posted
/// to the server as a device would; returns how many the server stored.
pub async fn post_ballots(s: &Session, count: usize) -> u64 {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ballots.json");
    let status = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args([
            "generate",
            "--ballots",
            &(count * 3).to_string(),
            "--seed",
            "11",
            "-o",
        ])
        .arg(&file)
        .status()
        .expect("run pingyi generate");
    assert!(status.success(), "pingyi generate failed");
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let open: Vec<serde_json::Value> = all
        .into_iter()
        .filter(|b| !["npc", "cppcc"].contains(&b["group"].as_str().unwrap()))
        .take(count)
        .collect();
    assert_eq!(open.len(), count, "enough ballots of open groups");
    let resp = reqwest::Client::new()
        .post(format!("{}api/v1/ballots", s.server.url))
        .json(&serde_json::json!({ "ballots": open }))
        .send()
        .await
        .expect("POST the ballots");
    assert_eq!(resp.status(), 200, "POST /api/v1/ballots");
    let status = s
        .server
        .wait_status("the posted ballots", |st| {
            st["ballots"].as_u64() == Some(count as u64)
        })
        .await;
    status["ballots"].as_u64().unwrap()
}

/// Waits (up to 60 s) until `script` returns true in the page.
pub async fn wait_js(s: &Session, what: &str, script: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.js(script).await != true {
        if std::time::Instant::now() > deadline {
            panic!("waited 60 s for {what}\n{}", s.report().await);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// The SHA-256 of a file, as `sha256sum` prints it.
fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_official_signs_in_after_a_wrong_password_and_signs_out() {
    let s = with_officials().await;
    // The citizens' app first: its service worker must not answer for the console.
    s.goto("").await;
    s.find("form-title").await;
    wait_js(
        &s,
        "a service worker controls the page",
        "return !!navigator.serviceWorker.controller",
    )
    .await;
    s.goto("admin/").await;
    sign_in(&s, (ADMIN.0, "not the password")).await;
    let error = s.find("signin-error").await.text().await.unwrap();
    assert_eq!(error, "用户名或密码错误。");
    assert!(!s.shown("who").await, "still signed out");

    sign_in(&s, ADMIN).await;
    let who = s.find("who").await.text().await.unwrap();
    assert_eq!(who, "已登录：wang.fang（管理员）");
    s.find(CAMPAIGN).await;
    s.click("lang").await;
    s.wait_for_text("English", |t| t.contains("Signed in: wang.fang (admin)"))
        .await;
    s.click("lang").await;

    // A reload keeps the session (the cookie), sign-out ends it.
    s.reload().await;
    s.find("who").await;
    s.click("sign-out").await;
    s.find("signin-name").await;
    s.reload().await;
    s.find("signin-name").await;
    assert!(!s.shown("who").await);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_wrong_passwords_say_how_long_to_wait() {
    let s = with_officials().await;
    s.goto("admin/").await;
    let mut last = String::new();
    for _ in 0..12 {
        sign_in(&s, (VIEWER.0, "wrong password!")).await;
        last = s.find("signin-error").await.text().await.unwrap();
        if last.contains("尝试次数过多") {
            break;
        }
        // Wait for the button again before the next try (the answer may be slowed).
        s.wait_shown("signin-submit", true).await;
        while s.disabled("signin-submit").await {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    assert!(
        last.starts_with("尝试次数过多，请 ") && last.ends_with(" 秒后再试。"),
        "{last}"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_admin_action_and_the_server_refuses_one_in_words() {
    let s = with_officials().await;
    s.goto("admin/").await;
    sign_in(&s, VIEWER).await;
    assert_eq!(
        s.find("who").await.text().await.unwrap(),
        "已登录：li.lei（查看者）"
    );
    s.click(CAMPAIGN).await;
    s.find("close-section").await;
    s.find("dash-ballots").await;
    for admin_only in ["nav-audit", "close-campaign", "export-csv", "issue-pdf"] {
        assert!(!s.shown(admin_only).await, "a viewer sees {admin_only}");
    }
    // Tried anyway, from the page: the server says no, in words.
    let answer = s
        .js(
            "return await fetch('/api/v1/admin/campaigns/minzhu-pingyi/2026.1/close', \
             {method: 'POST', headers: {'content-type': 'application/json'}, body: '{}'}) \
             .then(async (r) => ({status: r.status, body: await r.json()}))",
        )
        .await;
    assert_eq!(answer["status"], 403, "{answer}");
    assert_eq!(
        answer["body"]["error"], "this needs the admin role; li.lei is a viewer",
        "{answer}"
    );

    // An admin's page whose session became a viewer's (signed in again elsewhere in this
    // browser): the console shows the refusal in words.
    s.click("sign-out").await;
    sign_in(&s, ADMIN).await;
    s.click("nav-campaigns").await;
    s.click(CAMPAIGN).await;
    s.click("close-campaign").await;
    let viewer = format!(
        "return await fetch('/api/v1/admin/session', {{method: 'POST', \
         headers: {{'content-type': 'application/json'}}, \
         body: JSON.stringify({{name: '{}', password: '{}'}})}}).then((r) => r.status)",
        VIEWER.0, VIEWER.1
    );
    assert_eq!(s.js(&viewer).await, 200);
    s.click("close-yes").await;
    let error = s.find("close-error").await.text().await.unwrap();
    assert!(error.contains("需要管理员权限"), "{error}");
    assert!(!s.shown("closure-sha256").await, "nothing was closed");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_closes_a_campaign_and_its_export_matches_the_checksum() {
    let s = with_officials().await;
    let stored = post_ballots(&s, 6).await;
    s.goto("admin/").await;
    sign_in(&s, ADMIN).await;
    s.wait_for_text("the stored ballots in the campaigns list", |t| {
        t.contains(&format!("问卷数: {stored} · 收集中"))
    })
    .await;
    s.click(CAMPAIGN).await;
    s.click("close-campaign").await;
    let confirm = s.find("close-confirm").await.text().await.unwrap();
    assert!(
        confirm.contains(&format!("「{TITLE}」（minzhu-pingyi@2026.1）"))
            && confirm.contains("不可撤销"),
        "{confirm}"
    );
    s.screenshot("console-close-confirm").await;
    s.click("close-yes").await;
    let sha = s.find("closure-sha256").await.text().await.unwrap();
    assert_eq!(sha.len(), 64, "{sha}");
    assert!(!s.shown("close-campaign").await, "closed once only");
    let text = s.page_text().await;
    assert!(text.contains(&format!("已结束：{stored} 份问卷")), "{text}");

    s.click("export-csv").await;
    let csv = s.download(".csv").await;
    assert_eq!(sha256(&csv), sha, "the exported CSV is the closed one");
    assert_eq!(s.find("export-sha256").await.text().await.unwrap(), sha);
    s.screenshot("console-closed").await;
    s.close().await;
}
