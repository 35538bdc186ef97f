//! Offline: after one visit the service worker serves the app, and ballots are taken and
//! kept with the server gone.

use std::time::{Duration, Instant};

use crate::flows;
use crate::harness::Session;

/// Waits until the service worker controls the page (it has cached the whole app).
pub async fn wait_for_service_worker(s: &Session) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.js("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)").await != true {
        assert!(Instant::now() < deadline, "the service worker did not take control in 30 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_stopped_the_app_reloads_and_stores_a_ballot() {
    let mut s = Session::open().await;
    s.find("start").await;
    wait_for_service_worker(&s).await;
    s.server.stop();
    s.reload().await;
    let title = s.find("form-title").await.text().await.unwrap();
    assert_eq!(title, "2026年度市直单位民主评议满意度测评问卷");
    assert!(!s.shown("notice").await, "the cached form.json is used, not the fallback");
    let answers = flows::complete_ballot(&s).await;
    s.reload().await;
    s.find("start").await;
    flows::open_admin(&s, "8642", true).await;
    assert_eq!(flows::admin_total(&s).await, 1);
    s.click("export-csv-0").await;
    let path = s.download(".csv").await;
    let ballots = analysis::wide_csv::read_all(&analysis::Form::default_form(), "x.csv", std::fs::File::open(path).unwrap()).unwrap();
    assert_eq!(ballots[0].answers, answers);
    s.close().await;
}
