//! Expressions at the nesting limit in the browser: the deepest `relevant` that
//! `form check` accepts still shows and hides its question in the app, and a deeper one is
//! refused with its path instead of exhausting the wasm stack (the app used to stay on
//! its loading text).

use analysis::expr::MAX_DEPTH;
use analysis::form::{Form, DEFAULT_FORM_JSON};

use crate::harness::Session;
use crate::offline::site_copy;

const CHANNELS_RELEVANT: &str = "${contact} != 'never'";

/// The default form with the `channels` question's `relevant` wrapped in `depth` calls of
/// `not(…)`; `depth` is even, so the expression means what it meant.
fn form_with_nested_relevant(depth: usize) -> String {
    assert_eq!(depth % 2, 0);
    let nested = format!(
        "{}{CHANNELS_RELEVANT}{}",
        "not(".repeat(depth),
        ")".repeat(depth)
    );
    let form = DEFAULT_FORM_JSON.replacen(
        &format!("\"relevant\": \"{CHANNELS_RELEVANT}\""),
        &format!("\"relevant\": \"{nested}\""),
        1,
    );
    assert_ne!(form, DEFAULT_FORM_JSON);
    form
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relevant_at_the_nesting_limit_works_and_a_deeper_one_is_refused() {
    // The premise, checked with the same code as `pingyi form check`.
    let at_limit = form_with_nested_relevant(MAX_DEPTH);
    Form::from_json("at-limit", &at_limit).expect("the limit itself is accepted");
    let too_deep = form_with_nested_relevant(20_000);
    let refused = Form::from_json("too-deep", &too_deep)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("relevant"), "{refused}");

    let dir = tempfile::tempdir().unwrap();
    let at_limit_file = dir.path().join("at-limit.json");
    std::fs::write(&at_limit_file, &at_limit).unwrap();
    let s = Session::open_with(
        &crate::harness::pkg_dir(),
        &["--form", &at_limit_file.display().to_string()],
    )
    .await;
    s.click("group-public").await;
    s.click("start-button").await;
    s.find("page-about").await;
    s.click("opt-contact-never").await;
    s.wait_shown("item-channels", false).await;
    s.click("opt-contact-often").await;
    s.wait_shown("item-channels", true).await;
    s.close().await;

    // `pingyi serve` refuses such a form; another web server serves it as it is.
    let site = site_copy();
    let mut s = Session::start(site.path(), &[]).await;
    std::fs::write(site.path().join("form.json"), &too_deep).unwrap();
    s.server.stop();
    let _site = crate::harness::StaticSite::start(site.path(), s.server.port());
    s.goto("").await;
    let shown = s.find("form-refused").await.text().await.unwrap();
    assert!(shown.contains("问卷定义有误"), "{shown}");
    assert!(
        shown.contains("sections[0].items[1].relevant") && shown.contains(&MAX_DEPTH.to_string()),
        "the problem names the path and the limit: {shown}"
    );
    assert!(
        shown.len() < 2_000,
        "the 20,000-deep source is cut in the message: {} bytes",
        shown.len()
    );
    assert!(!s.shown("start-button").await);
    s.close().await;
}
