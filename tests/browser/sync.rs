//! Offline sync against the real server: ballots taken with the server gone arrive once it
//! is back, a sync cut off between batches resumes without loss or doubles, two tabs
//! sending at once store each ballot once, a refused ballot stays on the device, and a
//! device whose ballots were all delivered is cleared without an export.

use std::time::{Duration, Instant};

use crate::flows;
use crate::harness::{self, Session};
use crate::offline::open_offline_ready;

/// The `data-state` of the thank-you screen's delivery line.
/// Server flags for the tests that copy one ballot hundreds of times on one device: all
/// the copies carry the same submission minute, far more than the per-device hourly limit
/// lets through (docs/codes.md), and what these tests check is delivery, not the limit.
const UNLIMITED: &[&str] = &["--limit-device", "0", "--limit-address", "0"];

async fn delivery(s: &Session) -> String {
    s.find("delivery-status")
        .await
        .attr("data-state")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// Waits (up to 90 s: the app may be in its back-off wait) until the delivery line says `want`.
async fn wait_delivery(s: &Session, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while delivery(s).await != want {
        if Instant::now() > deadline {
            panic!(
                "the thank-you screen never said {want}\n{}",
                s.report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A number the admin screen shows under `testid`.
async fn shown_number(s: &Session, testid: &str) -> u64 {
    let text = s.find(testid).await.text().await.unwrap();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("[data-testid='{testid}'] shows {text:?}"))
}

/// Waits (up to 90 s) until the open admin screen counts (sent, waiting, refused) as `want`.
async fn wait_counts(s: &Session, want: (u64, u64, u64)) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = (
            shown_number(s, "sync-sent").await,
            shown_number(s, "sync-waiting").await,
            shown_number(s, "sync-refused").await,
        );
        if got == want {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "the admin screen counts (sent, waiting, refused) {got:?}, not {want:?}\n{}",
                s.report().await
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Tells the app the network is back (as the browser does), so it sends at once instead of
/// finishing its back-off wait.
async fn online(s: &Session) {
    s.js("window.dispatchEvent(new Event('online')); return true")
        .await;
}

/// Adds `n` copies of the first stored ballot (fresh random ids, same answers) in chunks of
/// 200 under the store's older key layout, which it still reads. Returns the ids.
async fn seed_copies(s: &Session, n: usize) -> Vec<String> {
    let v = s
        .js(&format!(
            r#"
            const prefix = 'pingyi.v1.b.';
            const keys = Object.keys(localStorage).filter(k => k.startsWith(prefix)).sort();
            const [header, line] = localStorage.getItem(keys[0]).split('\n');
            const row = JSON.parse(line);
            const ids = [];
            for (let c = 0; c * 200 < {n}; c++) {{
              const lines = [];
              for (let j = c * 200; j < Math.min({n}, (c + 1) * 200); j++) {{
                row[0] = crypto.randomUUID(); ids.push(row[0]); lines.push(JSON.stringify(row));
              }}
              localStorage.setItem(prefix + String(c + 1).padStart(6, '0'), header + '\n' + lines.join('\n'));
            }}
            return ids;"#
        ))
        .await;
    serde_json::from_value(v).unwrap()
}

/// Sets the server address (empty: the app's own) and the ballots per request on the open
/// admin screen.
async fn set_sync(s: &Session, server: &str, batch: u32) {
    let field = s.find("sync-server").await;
    field.clear().await.unwrap();
    if !server.is_empty() {
        field.send_keys(server).await.unwrap();
    }
    let field = s.find("sync-batch").await;
    field.clear().await.unwrap();
    field.send_keys(batch.to_string()).await.unwrap();
    s.click("sync-save").await;
    s.wait_for_text("the settings saved", |t| t.contains("已保存"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_taken_offline_arrives_once_when_the_server_is_back() {
    let mut s = open_offline_ready(&crate::harness::pkg_dir()).await;
    s.server.stop();
    s.reload().await;
    flows::complete_ballot(&s).await;
    let id = s
        .find("ballot-id")
        .await
        .attr("data-ballot-id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery(&s).await, "waiting");
    let said = s.find("delivery-status").await.text().await.unwrap();
    assert!(said.contains("已保存在本设备，联网后自动发送"), "{said}");

    // The server comes back (same address, same database): the screen updates itself.
    s.server.restart();
    online(&s).await;
    wait_delivery(&s, "delivered").await;
    let said = s.find("delivery-status").await.text().await.unwrap();
    assert!(said.contains("已送达"), "{said}");
    let status = s
        .server
        .wait_status("one ballot", |st| st["ballots"] == 1)
        .await;
    assert_eq!(status["repeats"], 0, "{status}");

    // A reload starts another round, and the official's "send now" a third: nothing is
    // sent again, the ballot stays on the device, the admin screen counts it delivered.
    s.reload().await;
    s.find("start").await;
    flows::open_admin(&s, "8642", true).await;
    wait_counts(&s, (1, 0, 0)).await;
    s.click("sync-now").await;
    let contact = s.find("sync-last-contact").await.text().await.unwrap();
    assert!(contact.contains("最近一次联系"), "{contact}");
    assert_eq!(flows::admin_total(&s).await, 1);
    let status = s.server.status().await;
    assert_eq!(
        (status["ballots"].as_u64(), status["repeats"].as_u64()),
        (Some(1), Some(0)),
        "{status}"
    );
    let exported = flows::export(&s, false).await;
    assert_eq!(exported[0].id, id);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_cut_off_between_batches_resumes_and_delivers_each_ballot_once() {
    let mut s = Session::open_with(&harness::pkg_dir(), UNLIMITED).await;
    // Nothing leaves while the device is being filled.
    s.block_api(true).await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    let ids = seed_copies(&s, 300).await;
    let total = ids.len() as u64 + 1;
    s.reload().await;
    flows::open_admin(&s, "8642", true).await;
    set_sync(&s, "", 20).await;
    wait_counts(&s, (0, total, 0)).await;

    // Every request takes a second on the way, so the test can stop the server between
    // two batches.
    s.cdp(
        "Network.emulateNetworkConditions",
        serde_json::json!({"offline": false, "latency": 1000, "downloadThroughput": -1, "uploadThroughput": -1}),
    )
    .await;
    s.block_api(false).await;
    s.click("sync-now").await;
    let first = s
        .server
        .wait_status("the first batch", |st| st["ballots"].as_u64() >= Some(20))
        .await;
    s.server.stop();
    let arrived = first["ballots"].as_u64().unwrap();
    assert!(
        arrived < total,
        "the server was stopped before everything arrived: {first}"
    );
    println!("the server was stopped with {arrived} of {total} ballots in");
    // The app notices (a failed request) and keeps the rest waiting.
    s.wait_for_text("a failed contact", |t| t.contains("未成功"))
        .await;
    assert!(shown_number(&s, "sync-waiting").await > 0);
    assert_eq!(flows::admin_total(&s).await as u64, total);

    s.cdp(
        "Network.emulateNetworkConditions",
        serde_json::json!({"offline": false, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1}),
    )
    .await;
    s.server.restart();
    online(&s).await;
    let status = s
        .server
        .wait_status("every ballot", |st| st["ballots"].as_u64() == Some(total))
        .await;
    wait_counts(&s, (total, 0, 0)).await;
    let status_after = s.server.status().await;
    assert_eq!(status_after["ballots"].as_u64(), Some(total), "{status}");
    assert_eq!(status_after["conflicts"], 0, "{status_after}");
    assert_eq!(
        flows::admin_total(&s).await as u64,
        total,
        "nothing left the device"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_sending_at_once_store_each_ballot_once() {
    let s = Session::open_with(&harness::pkg_dir(), UNLIMITED).await;
    s.block_api(true).await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    let ids = seed_copies(&s, 400).await;
    let total = ids.len() as u64 + 1;
    s.reload().await;
    s.find("start").await;
    let first = s.d().window().await.unwrap();

    // A second tab on the same device, kept offline too until both are ready.
    let second = s.d().new_tab().await.unwrap();
    s.d().switch_to_window(second.clone()).await.unwrap();
    s.block_api(true).await;
    s.goto("").await;
    s.find("start").await;

    // Both are told at once that the network is back.
    for w in [&first, &second] {
        s.d().switch_to_window(w.clone()).await.unwrap();
        s.block_api(false).await;
    }
    for w in [&first, &second] {
        s.d().switch_to_window(w.clone()).await.unwrap();
        online(&s).await;
    }
    let status = s
        .server
        .wait_status("every ballot", |st| st["ballots"].as_u64() == Some(total))
        .await;
    assert_eq!(status["conflicts"], 0, "{status}");
    // Both tabs see every ballot delivered; the server still holds each once.
    for (w, first_time) in [(&first, true), (&second, false)] {
        s.d().switch_to_window(w.clone()).await.unwrap();
        flows::open_admin(&s, "8642", first_time).await;
        wait_counts(&s, (total, 0, 0)).await;
        assert_eq!(flows::admin_total(&s).await as u64, total);
    }
    let status = s.server.status().await;
    assert_eq!(status["ballots"].as_u64(), Some(total), "{status}");
    println!(
        "two tabs, {total} ballots: the server answered already_stored {} times",
        status["repeats"]
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_the_server_refuses_is_counted_refused_and_kept_on_the_device() {
    let s = Session::open().await;
    // The official loads a version of the form this server does not collect.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("next-year.json");
    std::fs::write(
        &path,
        analysis::form::DEFAULT_FORM_JSON.replace("\"2026.1\"", "\"2099.1\""),
    )
    .unwrap();
    flows::open_admin(&s, "8642", true).await;
    s.find("form-file")
        .await
        .send_keys(path.display().to_string())
        .await
        .unwrap();
    s.wait_for_text("the new form in use", |t| t.contains("2099.1"))
        .await;
    s.click("admin-close").await;

    flows::complete_ballot(&s).await;
    wait_delivery(&s, "refused").await;
    let said = s.find("delivery-status").await.text().await.unwrap();
    assert!(said.contains("已保存在本设备"), "{said}");
    s.click("new-ballot").await;

    flows::open_admin(&s, "8642", false).await;
    wait_counts(&s, (0, 0, 1)).await;
    let reason = s.find("sync-reason").await.text().await.unwrap();
    assert!(
        reason.contains("2099.1"),
        "the server's reason is shown: {reason}"
    );
    assert_eq!(flows::admin_total(&s).await, 1, "kept on the device");
    assert!(
        s.shown("clear-needs-export").await,
        "a refused ballot still needs an export"
    );
    let status = s.server.status().await;
    assert_eq!(
        (status["ballots"].as_u64(), status["refused"].as_u64()),
        (Some(0), Some(1)),
        "{status}"
    );
    // Not sent again: "send now" finds nothing waiting.
    s.click("sync-now").await;
    assert_eq!(s.server.status().await["refused"].as_u64(), Some(1));
    // It exports as before, on its own version of the form.
    s.click("export-json-0").await;
    let file = s.download(".json").await;
    let form =
        analysis::form::Form::from_json("next-year.json", &std::fs::read_to_string(&path).unwrap())
            .unwrap();
    let name = file.display().to_string();
    let back = analysis::json::read_all(&form, &name, std::fs::File::open(&file).unwrap()).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].form_version, "2099.1");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_whose_ballots_were_all_delivered_clears_without_an_export() {
    let s = Session::open().await;
    flows::complete_ballot(&s).await;
    wait_delivery(&s, "delivered").await;
    s.click("new-ballot").await;
    flows::open_admin(&s, "8642", true).await;
    wait_counts(&s, (1, 0, 0)).await;
    assert!(!s.shown("clear-needs-export").await);
    flows::clear_device(&s).await;
    assert_eq!(
        s.server.status().await["ballots"].as_u64(),
        Some(1),
        "the server keeps it"
    );
    s.close().await;
}
