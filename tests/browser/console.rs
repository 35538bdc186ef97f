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
    // The console came from the network: the citizens' cache holds none of its files.
    let cached = s
        .js("return await caches.keys().then(async (keys) => { const urls = []; \
             for (const k of keys) { for (const r of await (await caches.open(k)).keys()) urls.push(r.url); } \
             return urls; })")
        .await;
    let cached: Vec<&str> = cached
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    assert!(
        cached.iter().any(|u| u.ends_with("/pingyi_app_bg.wasm")),
        "{cached:?}"
    );
    assert!(!cached.iter().any(|u| u.contains("/admin")), "{cached:?}");

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

/// Prints the current page to PDF through Chromium's own printing (CSS page size, as a
/// person printing it gets), into `path`.
async fn print_to_pdf(s: &Session, path: &Path) {
    let answer = s
        .cdp(
            "Page.printToPDF",
            serde_json::json!({"preferCSSPageSize": true, "printBackground": true}),
        )
        .await;
    let data = answer["data"]
        .as_str()
        .expect("printToPDF answers base64 data");
    let b64 = path.with_extension("b64");
    std::fs::write(&b64, data).unwrap();
    let out = Command::new("base64")
        .arg("-d")
        .arg(&b64)
        .output()
        .expect("run base64");
    assert!(out.status.success(), "base64 -d failed");
    std::fs::write(path, out.stdout).unwrap();
}

fn pdf_tool(tool: &str, pdf: &Path) -> String {
    let out = Command::new(tool)
        .arg(pdf)
        .args(if tool == "pdftotext" {
            &["-"][..]
        } else {
            &[][..]
        })
        .output()
        .unwrap_or_else(|e| panic!("run {tool} (poppler-utils): {e}"));
    assert!(out.status.success(), "{tool} failed on {}", pdf.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poster_prints_on_one_a4_page_with_the_title_and_the_qr_code() {
    let s = Session::start_after(
        &pkg_dir(),
        &["--public-url", "http://192.168.1.20:8080/"],
        |db: &Path| add_user(db, VIEWER.0, "viewer", VIEWER.1),
    )
    .await;
    s.goto("admin/#/poster/minzhu-pingyi/2026.1").await;
    sign_in(&s, VIEWER).await;
    assert_eq!(s.find("poster-title").await.text().await.unwrap(), TITLE);
    s.find("poster-qr").await;
    assert_eq!(
        s.find("poster-url").await.text().await.unwrap(),
        "http://192.168.1.20:8080/"
    );
    let svg = s
        .js("return document.querySelector(\"[data-testid='poster-qr'] svg\").outerHTML")
        .await;
    assert!(svg.as_str().unwrap().contains("<path") || svg.as_str().unwrap().contains("<rect"));

    let dir = tempfile::tempdir().unwrap();
    let pdf = dir.path().join("poster.pdf");
    print_to_pdf(&s, &pdf).await;
    let info = pdf_tool("pdfinfo", &pdf);
    assert!(
        info.lines()
            .any(|l| l.starts_with("Pages:") && l.ends_with(" 1")),
        "{info}"
    );
    assert!(
        info.lines()
            .any(|l| l.starts_with("Page size:") && l.ends_with("(A4)")),
        "A4: {info}"
    );
    let text = pdf_tool("pdftotext", &pdf);
    assert!(text.contains(TITLE), "{text}");
    assert!(
        text.contains("扫码参加评议") && text.contains("Scan to take part"),
        "{text}"
    );
    assert!(
        !text.contains("打印"),
        "the print button is not printed: {text}"
    );

    s.screenshot("console-poster-desktop").await;
    s.d().set_window_rect(0, 0, 390, 844).await.unwrap();
    s.screenshot("console-poster-phone").await;
    s.close().await;
}

/// The access codes (`K7QM-3XWD`) in a text.
fn codes_in(text: &str) -> Vec<String> {
    let mut codes: Vec<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| {
            w.len() == 9
                && w.as_bytes()[4] == b'-'
                && w.chars()
                    .all(|c| c == '-' || c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        .map(str::to_string)
        .collect();
    codes.dedup();
    codes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_issues_codes_as_a_pdf_sheet_sees_them_used_and_records_the_meeting() {
    let s = with_officials().await;
    s.goto("admin/").await;
    sign_in(&s, ADMIN).await;
    s.click(CAMPAIGN).await;
    s.find("codes-group").await;
    let note = s.page_text().await;
    assert!(note.contains("投票码只在发放时出现一次"), "{note}");
    let count = s.find("codes-count").await;
    count.clear().await.unwrap();
    count.send_keys("5").await.unwrap();
    s.click("issue-pdf").await;
    let pdf = s.download(".pdf").await;
    let done = s.find("codes-issued").await.text().await.unwrap();
    assert!(done.contains("已发放 5 个（人大代表）"), "{done}");
    let text = pdf_tool("pdftotext", &pdf);
    let codes = codes_in(&text);
    assert_eq!(codes.len(), 5, "five codes on the sheet: {text}");
    s.wait_for_text("the issued count", |t| {
        t.contains("人大代表: 已发 5 · 已用 0")
    })
    .await;

    // A deputy votes with one of them: the console counts it used.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ballots.json");
    let status = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args(["generate", "--ballots", "200", "--seed", "3", "-o"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let mut ballot = all
        .into_iter()
        .find(|b| b["group"] == "npc")
        .expect("a deputy's ballot");
    ballot["access_code"] = serde_json::Value::String(codes[0].clone());
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}api/v1/ballots", s.server.url))
        .json(&serde_json::json!({ "ballots": [ballot] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["results"][0]["status"], "stored", "{answer}");
    s.wait_for_text("the used code", |t| t.contains("人大代表: 已发 5 · 已用 1"))
        .await;
    wait_js(
        &s,
        "the used code in the unit × group table",
        "return document.querySelector(\"[data-testid='codes-used-npc']\")?.textContent === '1/5'",
    )
    .await;
    s.screenshot("console-codes").await;

    // The meeting: 40 of the 60 deputies are present.
    s.type_into("present-npc", "40").await;
    s.type_into("members-npc", "60").await;
    s.click("record-npc").await;
    s.wait_for_text("the recorded attendance", |t| t.contains("wang.fang 于 "))
        .await;
    let stored = s
        .js(
            "return await fetch('/api/v1/admin/campaigns/minzhu-pingyi/2026.1/attendance') \
             .then((r) => r.json())",
        )
        .await;
    let npc = stored["groups"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["group"] == "npc")
        .unwrap_or_else(|| panic!("no npc attendance in {stored}"));
    assert_eq!(
        (npc["present"].as_u64(), npc["members"].as_u64()),
        (Some(40), Some(60))
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_what_pingyi_score_computes_and_follows_new_ballots() {
    let s = with_officials().await;
    s.goto("admin/").await;
    sign_in(&s, VIEWER).await;
    s.click(CAMPAIGN).await;
    s.find("dash-ballots").await;
    // Ballots arrive while the dashboard is open: it follows without a reload.
    let stored = post_ballots(&s, 9).await;
    wait_js(
        &s,
        "the new ballots on the dashboard",
        &format!(
            "return document.querySelector(\"[data-testid='dash-ballots']\")?.textContent === '{stored}' \
             && !!document.querySelector(\"[data-testid='scores-table']\")"
        ),
    )
    .await;

    let db = format!("sqlite:{}", s.server.database_path().display());
    let out = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args(["score", &db, "--format", "json"])
        .output()
        .expect("run pingyi score");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let units = report["units"].as_array().unwrap();
    assert!(!units.is_empty());
    let s = &s;
    let shown = |testid: String| async move { s.find(&testid).await.text().await.unwrap() };
    let mut cells = 0;
    for u in units {
        let unit = u["unit"].as_str().unwrap();
        let score = u["score"]
            .as_f64()
            .map(|x| format!("{x:.2}"))
            .unwrap_or_else(|| "—".into());
        assert_eq!(shown(format!("score-value-{unit}")).await, score, "{unit}");
        assert_eq!(
            shown(format!("score-n-{unit}")).await,
            u["n"].to_string(),
            "{unit}"
        );
        for (group, g) in u["groups"].as_object().unwrap() {
            let n = g["n"].as_u64().unwrap();
            assert_eq!(
                shown(format!("cell-{unit}-{group}")).await,
                n.to_string(),
                "{unit} × {group}"
            );
            cells += n;
        }
    }
    assert!(cells > 0, "the table counted ballots");
    assert!(s.shown("per-hour-chart").await, "the hourly chart is drawn");
    s.screenshot("console-dashboard-desktop").await;
    s.d().set_window_rect(0, 0, 390, 844).await.unwrap();
    s.screenshot("console-dashboard-phone").await;
}
