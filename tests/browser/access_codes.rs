//! 投票码 in the app against the real server: a deputy's code counts once and a second
//! ballot with it is refused `code_used` and kept; a deputy's ballot that reaches the
//! server without a code is refused and kept; a typo is caught on the device before a
//! ballot starts; a code slip's link fills in group and code and leaves the address bar.

use std::process::Command;
use std::time::{Duration, Instant};

use analysis::access_code::AccessCode;
use analysis::form::DEFAULT_FORM_JSON;

use crate::flows;
use crate::harness::{pkg_dir, Session};

/// Issues `count` codes for `group` into the session's database with `pingyi codes`, as
/// an official does before the campaign (the server is stopped meanwhile and started
/// again on the same port and database); returns them as printed.
fn issue_codes(s: &mut Session, group: &str, count: usize) -> Vec<String> {
    s.server.stop();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("codes.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args(["codes", "--group", group, "--count", &count.to_string()])
        .arg("--database")
        .arg(s.server.database_path())
        .arg("-o")
        .arg(&csv)
        .output()
        .expect("run pingyi codes");
    assert!(
        out.status.success(),
        "pingyi codes failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.server.restart();
    let text = std::fs::read_to_string(&csv).unwrap();
    let codes: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    assert_eq!(codes.len(), count, "{text}");
    codes
}

/// The thank-you screen's delivery line: (`data-state`, `data-reason`, its text).
async fn delivery(s: &Session) -> (String, String, String) {
    let el = s.find("delivery-status").await;
    let attr = |name: &'static str| {
        let el = el.clone();
        async move { el.attr(name).await.unwrap().unwrap_or_default() }
    };
    (
        attr("data-state").await,
        attr("data-reason").await,
        el.text().await.unwrap(),
    )
}

/// Waits (up to 90 s: the app may be in its back-off wait) until the delivery line's
/// state is `want`; returns the line.
async fn wait_delivery(s: &Session, want: &str) -> (String, String, String) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let d = delivery(s).await;
        if d.0 == want {
            return d;
        }
        if Instant::now() > deadline {
            panic!(
                "the thank-you screen never said {want}: {d:?}\n{}",
                s.report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// From the start screen, with the group already chosen (and its code typed): answers
/// every page and submits.
async fn answer_and_submit(s: &Session) {
    s.click("start-button").await;
    s.find("page-about").await;
    flows::fill_about(s).await;
    flows::grid_then_last_page(s, &flows::grid_answers("4", "4")).await;
    s.click("submit").await;
    s.find("thanks").await;
}

/// The text of the element with this `data-testid`.
async fn text(s: &Session, testid: &str) -> String {
    s.find(testid).await.text().await.unwrap()
}

/// Waits (up to 90 s) until the open admin screen counts (sent, waiting, refused) as `want`.
async fn wait_counts(s: &Session, want: [&str; 3]) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = [
            text(s, "sync-sent").await,
            text(s, "sync-waiting").await,
            text(s, "sync-refused").await,
        ];
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "the admin screen counts {got:?}, not {want:?}\n{}",
                s.report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The device's JSON export, raw, from the open admin screen.
async fn export_json_text(s: &Session) -> String {
    s.click("export-json-0").await;
    let path = s.download(".json").await;
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputys_code_counts_once_and_a_second_ballot_with_it_is_refused_and_kept() {
    let mut s = Session::start(&pkg_dir(), &[]).await;
    let codes = issue_codes(&mut s, "npc", 3);
    s.goto("").await;

    // The deputy types the slip's code the way people do: lower case, a space for the hyphen.
    s.click("group-npc").await;
    let typed = codes[0].to_lowercase().replace('-', " ");
    s.type_into("access-code", &typed).await;
    s.wait_shown("code-ok", true).await;
    answer_and_submit(&s).await;
    let (_, _, said) = wait_delivery(&s, "delivered").await;
    assert!(said.contains("已送达"), "{said}");
    let status = s
        .server
        .wait_status("the deputy's ballot", |st| st["ballots"] == 1)
        .await;
    assert_eq!(status["refused"], 0, "{status}");

    // The same code again (a second person with a copied slip): refused, and kept.
    s.click("new-ballot").await;
    s.click("group-npc").await;
    s.type_into("access-code", &codes[0]).await;
    answer_and_submit(&s).await;
    let (_, reason, said) = wait_delivery(&s, "refused").await;
    assert_eq!(reason, "code_used");
    assert!(
        said.contains("投票码已被使用") && said.contains("已保存在本设备"),
        "{said}"
    );
    let status = s
        .server
        .wait_status("the refusal", |st| st["refused"] == 1)
        .await;
    assert_eq!(
        status["ballots"], 1,
        "the second ballot is not counted: {status}"
    );

    s.click("new-ballot").await;
    flows::open_admin(&s, "1357", true).await;
    wait_counts(&s, ["1", "0", "1"]).await;
    let why = text(&s, "sync-reason").await;
    assert!(why.contains("投票码已被使用"), "{why}");
    assert_eq!(
        flows::admin_total(&s).await,
        2,
        "both ballots stay on the device"
    );
    let export = export_json_text(&s).await;
    let ballots: Vec<analysis::Ballot> = serde_json::from_str(&export).unwrap();
    assert_eq!(ballots.len(), 2);
    assert!(ballots.iter().all(|b| b.group == "npc"));
    for code in &codes {
        let bare = code.replace('-', "");
        assert!(
            !export.contains(code.as_str()) && !export.contains(&bare),
            "the export holds a code: {export}"
        );
    }
    assert!(!export.contains("access_code"), "{export}");
    // Once answered, the codes have left the device too.
    let left = s
        .js("return Object.keys(localStorage).filter(k => k.startsWith('pingyi.v1.code.'))")
        .await;
    assert_eq!(left, serde_json::json!([]));
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deputys_ballot_without_a_code_is_refused_at_the_server_and_kept_on_the_device() {
    let mut s = Session::start(&pkg_dir(), &[]).await;
    issue_codes(&mut s, "npc", 2);
    s.goto("").await;
    s.find("start").await;
    // The device was given the same form version without the mark (an official loaded an
    // old copy of the file): it never asks for a code, but the server knows better.
    let unmarked = DEFAULT_FORM_JSON.replace(",\n      \"code_required\": true", "");
    assert_ne!(unmarked, DEFAULT_FORM_JSON, "the test's edit must apply");
    s.js(&format!(
        "localStorage.setItem('pingyi.v1.form.active', {}); return true",
        serde_json::to_string(&unmarked).unwrap()
    ))
    .await;
    s.reload().await;
    s.click("group-npc").await;
    assert!(
        !s.shown("access-code").await,
        "this device's form asks for no code"
    );
    answer_and_submit(&s).await;
    let (_, reason, said) = wait_delivery(&s, "refused").await;
    assert_eq!(reason, "code_missing");
    assert!(
        said.contains("没有投票码") && said.contains("已保存在本设备"),
        "{said}"
    );
    let status = s
        .server
        .wait_status("the refusal", |st| st["refused"] == 1)
        .await;
    assert_eq!(status["ballots"], 0, "{status}");

    s.click("new-ballot").await;
    flows::open_admin(&s, "2468", true).await;
    wait_counts(&s, ["0", "0", "1"]).await;
    assert!(text(&s, "sync-reason").await.contains("缺少投票码"));
    let ballots = flows::export(&s, false).await;
    assert_eq!(
        ballots.len(),
        1,
        "the refused ballot is exported with the rest"
    );
    assert_eq!(ballots[0].group, "npc");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_is_caught_on_the_device_and_a_slip_link_fills_the_code_and_leaves_the_address_bar()
{
    let s = Session::start(&pkg_dir(), &[]).await;
    let code = AccessCode::from_random([5, 17, 2, 30, 9, 11, 26]).to_string();
    s.goto(&format!("?group=npc&code={code}")).await;
    s.find("start").await;
    // The slip's QR link: the group chosen, the code filled in, and gone from the address.
    let field = s.find("access-code").await;
    let filled = field.prop("value").await.unwrap().unwrap_or_default();
    assert_eq!(filled, code);
    s.wait_shown("code-ok", true).await;
    let href = s.js("return location.href").await;
    let href = href.as_str().unwrap();
    assert!(!href.contains("code=") && !href.contains(&code), "{href}");
    let chosen = s
        .js("return document.querySelector('input[name=group]:checked').value")
        .await;
    assert_eq!(chosen, "npc");

    // With no network at all, one mistyped character is caught before the ballot starts.
    s.block_api(true).await;
    let mut typo: Vec<char> = code.chars().collect();
    typo[2] = if typo[2] == 'A' { 'B' } else { 'A' };
    let typo: String = typo.into_iter().collect();
    field.clear().await.unwrap();
    s.type_into("access-code", &typo).await;
    let said = s
        .wait_for_text("the typo's message", |t| t.contains("投票码中有一位输错了"))
        .await;
    assert!(said.contains("请对照纸条"), "{said}");
    s.click("start-button").await;
    assert!(
        !s.shown("page-about").await,
        "no ballot starts on a mistyped code"
    );
    let focused = s.js("return document.activeElement.id").await;
    assert_eq!(focused, "access-code");

    // A look-alike is named as soon as it is typed, in words.
    field.clear().await.unwrap();
    s.type_into("access-code", "K7Q0").await;
    s.wait_for_text("the look-alike's message", |t| {
        t.contains("第 4 位“0”不会出现在投票码中")
    })
    .await;
    field.clear().await.unwrap();
    s.type_into("access-code", &code).await;
    s.wait_shown("code-ok", true).await;
    s.click("start-button").await;
    s.find("page-about").await;
    let draft = s
        .js("return JSON.parse(localStorage.getItem('pingyi.v1.draft')).access_code")
        .await;
    assert_eq!(
        draft,
        serde_json::json!(code),
        "the code waits in the draft"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_deputies_kiosk_each_person_types_their_own_code() {
    let mut s = Session::start(&pkg_dir(), &[]).await;
    let codes = issue_codes(&mut s, "npc", 2);
    s.goto("").await;
    // Kiosk mode with the group fixed to 人大代表, back to the start 4 s after thanks.
    flows::open_admin(&s, "4321", true).await;
    s.click("kiosk-enabled").await;
    let back = s.find("kiosk-return").await;
    back.clear().await.unwrap();
    back.send_keys("4").await.unwrap();
    s.find("kiosk-group")
        .await
        .find(thirtyfour::By::Css("option[value='npc']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    s.click("kiosk-save").await;
    s.wait_for_text("saved", |t| t.contains("已保存")).await;
    s.click("admin-close").await;
    s.find("start").await;

    for (n, code) in codes.iter().enumerate() {
        let field = s.find("access-code").await;
        let left = field.prop("value").await.unwrap().unwrap_or_default();
        assert_eq!(left, "", "person {} finds an empty code field", n + 1);
        assert!(
            !s.shown("group-npc").await,
            "the group is fixed, not chosen"
        );
        s.type_into("access-code", code).await;
        answer_and_submit(&s).await;
        // The kiosk goes back to the start by itself for the next person (the ballot is
        // delivered meanwhile or later: the server's count below says it arrived).
        s.find("start").await;
    }
    let status = s
        .server
        .wait_status("both deputies", |st| st["ballots"] == 2)
        .await;
    assert_eq!(status["refused"], 0, "{status}");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_tells_the_server_how_many_ballots_wait_even_when_they_cannot_get_through() {
    use std::io::Write;
    let mut s = Session::start(&pkg_dir(), &[]).await;
    s.server.stop();
    let mut add = Command::new(env!("CARGO_BIN_EXE_pingyi"))
        .args(["user", "add", "ops", "--role", "viewer", "--password-stdin"])
        .arg("--database")
        .arg(s.server.database_path())
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("run pingyi user add");
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a long enough password\n")
        .unwrap();
    assert!(add.wait().unwrap().success(), "pingyi user add failed");
    s.server.restart();
    s.goto("").await;
    flows::complete_ballot(&s).await;
    wait_delivery(&s, "delivered").await;
    let device = s
        .js("return JSON.parse(localStorage.getItem('pingyi.v1.settings')).device_id")
        .await;
    // The batch endpoint goes away (the heartbeat's does not): the next ballot waits.
    s.cdp("Network.enable", serde_json::json!({})).await;
    s.cdp(
        "Network.setBlockedURLs",
        serde_json::json!({ "urls": ["*/api/v1/ballots*"] }),
    )
    .await;
    s.click("new-ballot").await;
    flows::complete_ballot(&s).await;

    let client = reqwest::Client::new();
    let signed_in = client
        .post(format!("{}api/v1/admin/session", s.server.url))
        .json(&serde_json::json!({"name": "ops", "password": "a long enough password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 200);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let url = format!(
        "{}api/v1/admin/campaigns/minzhu-pingyi/2026.1/sources",
        s.server.url
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sources: serde_json::Value = client
            .get(&url)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // A ballot's arrival records the device with nothing waiting; only the heartbeat
        // knows of the ballot that cannot get through.
        let seen = sources["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|d| d["device_id"] == device && d["waiting"] == 1);
        if seen.is_some() {
            break;
        }
        if Instant::now() > deadline {
            panic!("the server never heard the device {device}'s heartbeat: {sources}");
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    s.close().await;
}
