//! End-to-end tests of the form app in a real headless Chromium.

mod harness;

use harness::Session;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_form_renders_title_unit_and_criterion() {
    let s = Session::open().await;
    let title = s.find("form-title").await.text().await.unwrap();
    assert_eq!(title, "2026年度市直单位民主评议满意度测评问卷");
    let text = s
        .wait_for_text("a unit and a criterion", |t| {
            t.contains("公安局") && t.contains("服务态度")
        })
        .await;
    assert!(text.contains("依法行政"), "{text}");
    s.close().await;
}
