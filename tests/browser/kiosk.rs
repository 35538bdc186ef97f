//! Kiosk mode: an abandoned ballot is discarded for the next person's privacy, the thank-you
//! screen returns to the start on its own, a fixed group and a minimum interval hold.

use crate::flows;
use crate::harness::Session;

async fn set_field(s: &Session, testid: &str, value: &str) {
    let el = s.find(testid).await;
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

/// Turns kiosk mode on through the admin screen.
async fn kiosk_on(s: &Session, idle: &str, countdown: &str, interval: &str, group: Option<&str>) {
    flows::open_admin(s, "4321", true).await;
    s.click("kiosk-enabled").await;
    set_field(s, "kiosk-return", "4").await;
    set_field(s, "kiosk-idle", idle).await;
    set_field(s, "kiosk-countdown", countdown).await;
    set_field(s, "kiosk-interval", interval).await;
    if let Some(g) = group {
        s.find("kiosk-group")
            .await
            .find(thirtyfour::By::Css(format!("option[value='{g}']")))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
    }
    s.click("kiosk-save").await;
    s.wait_for_text("saved", |t| t.contains("已保存")).await;
    s.click("admin-close").await;
    s.find("start").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_timeout_discards_the_partial_ballot_and_keeps_submitted_ones() {
    let s = Session::open().await;
    kiosk_on(&s, "3", "8", "0", None).await;

    flows::complete_ballot(&s).await;
    // The thank-you screen goes back to the start by itself.
    s.find("return-countdown").await;
    s.find("start").await;

    // Someone starts, answers a little, walks away.
    flows::start(&s, "enterprise").await;
    s.click("opt-contact-sometimes").await;
    s.find("idle-warning").await;
    assert!(s.page_text().await.contains("您还在填写吗"));
    // "Keep going" keeps the answers.
    s.click("idle-continue").await;
    s.wait_shown("idle-warning", false).await;
    let kept = s
        .js("return document.querySelector(\"input[name='q-contact']:checked\").value")
        .await;
    assert_eq!(kept, "sometimes");
    // Walks away for good: the countdown ends, the answers are gone.
    s.find("idle-warning").await;
    s.find("start").await;
    assert_eq!(
        s.js("return localStorage.getItem('pingyi.v1.draft')").await,
        serde_json::Value::Null
    );
    assert!(
        s.find("start-button")
            .await
            .text()
            .await
            .unwrap()
            .contains("开始填写"),
        "no draft to resume"
    );
    let checked = s
        .js("return document.querySelectorAll('input:checked').length")
        .await;
    assert_eq!(checked, 0, "nothing of the last person is on the screen");

    flows::open_admin(&s, "4321", false).await;
    assert_eq!(
        flows::admin_total(&s).await,
        1,
        "the submitted ballot is kept"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_group_skips_the_choice_and_an_interval_separates_ballots() {
    let s = Session::open().await;
    kiosk_on(&s, "600", "20", "30", Some("supervisor")).await;
    assert!(
        !s.shown("group-public").await,
        "the group is fixed for this kiosk"
    );
    s.click("start-button").await;
    s.find("page-about").await;
    flows::fill_about(&s).await;
    flows::grid_then_last_page(&s, &flows::grid_answers("5", "5")).await;
    s.click("submit").await;
    s.find("thanks").await;
    s.find("start").await;
    s.find("wait-next").await;
    assert!(s.page_text().await.contains("请稍候"));
    assert!(s.disabled("start-button").await);
    flows::open_admin(&s, "4321", false).await;
    let ballots = flows::export(&s, false).await;
    assert_eq!(ballots.len(), 1);
    assert_eq!(ballots[0].group, "supervisor");
    s.close().await;
}
