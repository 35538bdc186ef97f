//! The device store under the ways it was found to lose or hide ballots: two tabs storing
//! at once, a damaged chunk, a garbled settings record or stored form, the PIN lockout,
//! and a served form whose version would break the storage keys.

use crate::flows;
use crate::harness::Session;

/// The chunk keys in local storage, sorted.
async fn chunk_keys(s: &Session) -> Vec<String> {
    let v = s
        .js("return Object.keys(localStorage).filter(k => k.startsWith('pingyi.v1.b.')).sort()")
        .await;
    serde_json::from_value(v).unwrap()
}

/// Waits (up to 30 s) until the element with this `data-testid` shows `needle`.
async fn wait_for_text_in(s: &Session, testid: &str, needle: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let text = s.find(testid).await.text().await.unwrap_or_default();
        if text.contains(needle) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "[data-testid='{testid}'] shows {text:?}, not {needle:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Exports the damaged entries from the open admin screen and returns the document.
async fn export_damaged(s: &Session) -> serde_json::Value {
    s.click("export-damaged").await;
    let path = s.download(".json").await;
    assert!(
        path.to_string_lossy().contains("-damaged-"),
        "{}",
        path.display()
    );
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Two tabs opened on a fresh device each stored their ballot under the same chunk key:
/// both respondents were thanked, and one ballot was gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_that_each_submit_keep_both_ballots() {
    let s = Session::open().await;
    s.find("start").await;
    let first = s.d().window().await.unwrap();
    let second = s.d().new_tab().await.unwrap();
    s.d().switch_to_window(second.clone()).await.unwrap();
    s.goto("").await;
    s.find("start").await;
    // Both tabs are open and neither has stored anything yet.
    s.d().switch_to_window(first.clone()).await.unwrap();
    let a = flows::complete_ballot(&s).await;
    let id_a = s
        .find("ballot-id")
        .await
        .attr("data-ballot-id")
        .await
        .unwrap();
    s.d().switch_to_window(second).await.unwrap();
    flows::complete_ballot(&s).await;
    let id_b = s
        .find("ballot-id")
        .await
        .attr("data-ballot-id")
        .await
        .unwrap();

    // The first tab learns of the second's ballot without a reload, and exports both.
    s.d().switch_to_window(first).await.unwrap();
    s.click("new-ballot").await;
    flows::open_admin(&s, "2580", true).await;
    assert_eq!(flows::admin_total(&s).await, 2);
    let ballots = flows::export(&s, false).await;
    let mut ids: Vec<Option<String>> = ballots.iter().map(|b| Some(b.id.clone())).collect();
    ids.sort();
    let mut want = vec![id_a, id_b];
    want.sort();
    assert_eq!(ids, want);
    assert!(ballots.iter().all(|b| b.answers == a));
    assert_eq!(chunk_keys(&s).await.len(), 2, "one chunk per tab");
    s.close().await;
}

/// A damaged first line hid its chunk's ballots from the count, the next ballot overwrote
/// the chunk, and a clear deleted what the panel said was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_chunk_is_counted_kept_exported_raw_and_cleared_only_after() {
    let s = Session::open().await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    let keys = chunk_keys(&s).await;
    assert_eq!(keys.len(), 1);
    let damaged = s
        .js(&format!(
            "const k = '{}'; const v = localStorage.getItem(k); \
             const bad = '\u{fffd}garbled' + v.slice(v.indexOf('\\n')); \
             localStorage.setItem(k, bad); return bad",
            keys[0]
        ))
        .await;
    let damaged = damaged.as_str().unwrap().to_string();
    s.reload().await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    let still = s
        .js(&format!("return localStorage.getItem('{}')", keys[0]))
        .await;
    assert_eq!(
        still.as_str(),
        Some(damaged.as_str()),
        "the next ballot did not overwrite it"
    );

    flows::open_admin(&s, "1470", true).await;
    assert_eq!(flows::admin_total(&s).await, 1);
    let total = s.find("damaged-total").await.text().await.unwrap();
    assert!(total.contains("共 1 条记录无法读取"), "{total}");
    let entry = s.find("damaged-entry").await.text().await.unwrap();
    assert!(
        entry.contains(&keys[0]) && entry.contains("garbled"),
        "{entry}"
    );
    assert_eq!(flows::export(&s, true).await.len(), 1);
    // The good ballot is exported, the damaged chunk not yet: no clearing.
    s.wait_shown("clear-needs-export", true).await;
    assert!(!s.shown("clear-word").await);
    let doc = export_damaged(&s).await;
    let entries = doc["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{doc}");
    assert_eq!(entries[0]["key"], keys[0].as_str());
    assert_eq!(
        entries[0]["raw"].as_str(),
        Some(damaged.as_str()),
        "exported whole, as stored"
    );
    s.wait_shown("clear-word", true).await;
    flows::clear_device(&s).await;
    assert_eq!(chunk_keys(&s).await, Vec::<String>::new());
    s.close().await;
}

/// The lockout after five wrong PINs lasted only until cancel or a reload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pin_lockout_survives_cancel_and_reload() {
    let s = Session::open().await;
    flows::open_admin(&s, "8080", true).await;
    s.click("admin-close").await;
    s.click("open-admin").await;
    for _ in 0..5 {
        s.type_into("pin", "1111").await;
        s.click("pin-ok").await;
        wait_for_text_in(&s, "pin-error", "密码错误").await;
        // Taken: the field is emptied for the next try.
        for waited in 0.. {
            if s.find("pin").await.prop("value").await.unwrap().as_deref() == Some("") {
                break;
            }
            assert!(waited < 600, "the PIN field was not emptied after a try");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    s.click("pin-cancel").await;
    s.click("open-admin").await;
    s.type_into("pin", "8080").await;
    s.click("pin-ok").await;
    wait_for_text_in(&s, "pin-error", "错误次数过多").await;
    assert!(!s.shown("admin-panel").await);
    s.reload().await;
    s.click("open-admin").await;
    s.type_into("pin", "8080").await;
    s.click("pin-ok").await;
    wait_for_text_in(&s, "pin-error", "错误次数过多").await;
    assert!(!s.shown("admin-panel").await);
    s.close().await;
}

/// A garbled settings record let anyone choose a new PIN, and dropped the device id and
/// the export marks without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_settings_record_fails_closed_and_keeps_the_ballots() {
    let s = Session::open().await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    flows::open_admin(&s, "2468", true).await;
    assert_eq!(flows::export(&s, false).await.len(), 1);
    s.click("admin-close").await;
    let device = s
        .js("return JSON.parse(localStorage.getItem('pingyi.v1.settings')).device_id")
        .await;
    // Cut short inside the PIN's hash, as a write interrupted half way would leave it.
    let cut = s
        .js("const v = localStorage.getItem('pingyi.v1.settings'); \
             const c = v.slice(0, v.indexOf('\"salt\"') + 12); \
             localStorage.setItem('pingyi.v1.settings', c); return c")
        .await;
    s.reload().await;
    s.click("open-admin").await;
    let said = s.find("pin-lost").await.text().await.unwrap();
    assert!(said.contains("管理员密码记录已损坏"), "{said}");
    let lost = s.find("settings-damaged").await.text().await.unwrap();
    assert!(lost.contains("pin") && lost.contains("exported"), "{lost}");
    assert!(
        !s.page_text().await.contains("首次使用"),
        "not treated as a new device"
    );
    // The PIN cannot be replaced without the typed word.
    s.type_into("pin", "1357").await;
    s.type_into("pin-repeat", "1357").await;
    s.click("pin-ok").await;
    wait_for_text_in(&s, "pin-error", "以确认重设").await;
    assert!(!s.shown("admin-panel").await);
    s.type_into("reset-word", "重置").await;
    s.type_into("pin", "1357").await;
    s.type_into("pin-repeat", "1357").await;
    s.click("pin-ok").await;
    s.find("admin-panel").await;
    assert_eq!(
        flows::admin_total(&s).await,
        1,
        "every ballot is still there"
    );
    let kept = s.find("device-id").await.prop("value").await.unwrap();
    assert_eq!(
        kept.as_deref(),
        device.as_str(),
        "the device id was read from what was left"
    );
    // The damaged record is kept raw, and the old export no longer counts.
    let entry = s.find("damaged-entry").await.text().await.unwrap();
    assert!(entry.contains("pingyi.v1.damaged.settings."), "{entry}");
    assert!(s.shown("clear-needs-export").await);
    assert_eq!(flows::export(&s, false).await.len(), 1);
    let doc = export_damaged(&s).await;
    assert_eq!(doc["entries"][0]["raw"], cut);
    s.wait_shown("clear-word", true).await;
    s.close().await;
}

/// A garbled stored form made the export buttons do nothing, silently.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_stored_form_is_reported_and_its_ballots_exported_raw() {
    let s = Session::open().await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    let key = "pingyi.v1.forms.minzhu-pingyi@2026.1";
    let line = s
        .js(&format!(
            "localStorage.setItem('{key}', '{{\"id\": \"minzhu-pingyi\", garbled'); \
             const k = Object.keys(localStorage).find(k => k.startsWith('pingyi.v1.b.')); \
             return localStorage.getItem(k).split('\\n')[1]"
        ))
        .await;
    s.reload().await;
    flows::open_admin(&s, "3690", true).await;
    let total = s.find("damaged-total").await.text().await.unwrap();
    assert!(total.contains("共 2 条记录无法读取"), "{total}");
    let text = s.page_text().await;
    assert!(
        text.contains("minzhu-pingyi@2026.1") && text.contains("cannot be read"),
        "{text}"
    );
    let doc = export_damaged(&s).await;
    let entries = doc["entries"].as_array().unwrap();
    let ballot = entries
        .iter()
        .find(|e| e["line"] == 2)
        .unwrap_or_else(|| panic!("no ballot line in {doc}"));
    assert_eq!(ballot["form"], "minzhu-pingyi@2026.1");
    assert_eq!(ballot["raw"], line);
    assert!(
        entries.iter().any(|e| e["key"] == key),
        "the form text too: {doc}"
    );
    s.close().await;
}

/// A served form whose version held a line break made each page load overwrite the
/// earlier ballots: the app refuses it, with the problem and its path, and stores nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_served_form_with_a_line_break_in_its_version_is_refused() {
    let site = crate::offline::site_copy();
    let mut s = Session::start(site.path(), &[]).await;
    let form = analysis::form::DEFAULT_FORM_JSON
        .replace("\"version\": \"2026.1\"", "\"version\": \"2026.1\\n2\"");
    assert_ne!(form, analysis::form::DEFAULT_FORM_JSON);
    std::fs::write(site.path().join("form.json"), form).unwrap();
    // `pingyi serve` refuses such a form; another web server serves it as it is.
    s.server.stop();
    let _site = crate::harness::StaticSite::start(site.path(), s.server.port());
    s.goto("").await;
    let refused = s.find("form-refused").await.text().await.unwrap();
    assert!(refused.contains("问卷定义有误"), "{refused}");
    assert!(
        refused.contains(r#"version: "2026.1\n2" holds a line break"#),
        "{refused}"
    );
    assert!(!s.shown("start-button").await);
    assert_eq!(chunk_keys(&s).await, Vec::<String>::new());
    s.close().await;
}
