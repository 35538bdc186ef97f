//! Offline: after one visit the service worker serves the app, and ballots are taken and
//! kept with the server gone.

use std::time::{Duration, Instant};

use crate::flows;
use crate::harness::{Session, StaticSite};

/// Opens the app served from `pkg` and waits until the service worker controls the page
/// (it has cached the whole app).
///
/// Now and then (a few runs in ten of the whole suite, never when a test runs alone)
/// Chromium leaves a first install in `installing` with its cache open, while the server
/// answered every request within milliseconds; the cause is not known yet (issue 8 replaces
/// the server). A person's next visit would simply install again, so a stalled first
/// install is retried with a fresh browser and server, at most three times in all, and each
/// stall is printed with its diagnosis so it stays visible in the test log.
pub async fn open_offline_ready(pkg: &std::path::Path) -> Session {
    const TRIES: usize = 3;
    for attempt in 1..=TRIES {
        let s = Session::open_with(pkg, &[]).await;
        s.find("start").await;
        match controlled_within(&s, Duration::from_secs(30)).await {
            Ok(()) => return s,
            Err(diagnosis) if attempt < TRIES => {
                eprintln!(
                    "service worker stalled on try {attempt} of {TRIES}, retrying: {diagnosis}"
                );
                s.close().await;
            }
            Err(diagnosis) => panic!(
                "the service worker did not take control in {TRIES} tries of 30 s: {diagnosis}"
            ),
        }
    }
    unreachable!("the last try returns or panics")
}

/// Waits up to `limit` until a service worker controls the page; else what the page and
/// its registration looked like.
async fn controlled_within(s: &Session, limit: Duration) -> Result<(), String> {
    let deadline = Instant::now() + limit;
    while s
        .js("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)")
        .await
        != true
    {
        if Instant::now() > deadline {
            let reg = s
                .js("return navigator.serviceWorker.getRegistration().then(r => r ? JSON.stringify({ \
                     installing: r.installing && r.installing.state, waiting: r.waiting && r.waiting.state, \
                     active: r.active && r.active.state }) : 'no registration').then(async (x) => \
                     x + ' caches: ' + JSON.stringify(await caches.keys()))")
                .await;
            return Err(format!("{reg}\n{}", s.report().await));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_server_stopped_the_app_reloads_and_stores_a_ballot() {
    let mut s = open_offline_ready(&crate::harness::pkg_dir()).await;
    s.server.stop();
    s.reload().await;
    let title = s.find("form-title").await.text().await.unwrap();
    assert_eq!(title, "2026年度市直单位民主评议满意度测评问卷");
    assert!(
        !s.shown("notice").await,
        "the cached form.json is used, not the fallback"
    );
    let answers = flows::complete_ballot(&s).await;
    s.reload().await;
    s.find("start").await;
    flows::open_admin(&s, "8642", true).await;
    assert_eq!(flows::admin_total(&s).await, 1);
    let ballots = flows::export(&s, true).await;
    assert_eq!(ballots[0].answers, answers);
    s.close().await;
}

/// A copy of the built site in a folder of its own, so a test can "deploy" into it.
pub fn site_copy() -> tempfile::TempDir {
    crate::harness::ensure_built();
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(crate::harness::pkg_dir()).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    dir
}

async fn cache_names(s: &Session) -> Vec<String> {
    let v = s.js("return caches.keys()").await;
    serde_json::from_value(v).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_is_used_only_once_it_has_arrived_whole() {
    let site = site_copy();
    let mut s = open_offline_ready(site.path()).await;
    let old = cache_names(&s).await;
    assert_eq!(old.len(), 1, "{old:?}");
    let build_js = std::fs::read_to_string(site.path().join("build.js")).unwrap();

    // A new version is deployed but its wasm never arrives (the connection drops): the
    // site is served, at the same address, by a web server whose copy lacks the wasm
    // (`pingyi serve` refuses to start on such a folder).
    s.server.stop();
    std::fs::write(
        site.path().join("build.js"),
        build_js.replace("PINGYI_BUILD = \"", "PINGYI_BUILD = \"broken-"),
    )
    .unwrap();
    let wasm = std::fs::read(site.path().join("pingyi_app_bg.wasm")).unwrap();
    std::fs::remove_file(site.path().join("pingyi_app_bg.wasm")).unwrap();
    let broken = StaticSite::start(site.path(), s.server.port());
    s.js("return navigator.serviceWorker.getRegistration().then(r => r.update()).then(() => true, () => true)").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.js("return navigator.serviceWorker.getRegistration().then(r => !!(r.installing || r.waiting))").await == true {
        assert!(Instant::now() < deadline, "the failed install never finished");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        cache_names(&s).await,
        old,
        "the old version's cache is untouched"
    );
    let active = s.js("return navigator.serviceWorker.getRegistration().then(r => r.active && r.active.state)").await;
    assert_eq!(active, "activated", "the old worker is still in charge");
    drop(broken);
    s.reload().await;
    assert_eq!(
        s.find("form-title").await.text().await.unwrap(),
        "2026年度市直单位民主评议满意度测评问卷"
    );
    flows::complete_ballot(&s).await;

    // The next deployment arrives whole (a changed style sheet gives it a new build id):
    // it takes over, and the idle page reloads into it.
    std::fs::write(site.path().join("pingyi_app_bg.wasm"), wasm).unwrap();
    let css = std::fs::read_to_string(site.path().join("style.css")).unwrap();
    std::fs::write(site.path().join("style.css"), css + "\n/* next */\n").unwrap();
    s.server.restart();
    s.click("new-ballot").await;
    s.js("return navigator.serviceWorker.getRegistration().then(r => r.update()).then(() => 'ok')")
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let names = cache_names(&s).await;
        if names.len() == 1 && names != old {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new version did not replace the old: {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.find("start").await;
    flows::open_admin(&s, "7777", true).await;
    assert_eq!(
        flows::admin_total(&s).await,
        1,
        "ballots survive the update"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ballot_begun_before_the_form_changed_is_finished_on_its_own_form() {
    let site = site_copy();
    let s = Session::open_with(site.path(), &[]).await;
    flows::to_grid(&s, "public").await;

    // The officials publish a new version of the form while this person is on page 2, and
    // the page is reloaded (by the person, or a kiosk restarting). No service worker or
    // cache stands in the way: the reload reads the new form.json.
    s.js("return navigator.serviceWorker.getRegistrations() \
          .then(rs => Promise.all(rs.map(r => r.unregister()))) \
          .then(() => caches.keys()).then(ks => Promise.all(ks.map(k => caches.delete(k)))) \
          .then(() => true)")
        .await;
    let mut form: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path().join("form.json")).unwrap())
            .unwrap();
    form["version"] = "2026.2".into();
    form["title"]["zh-CN"] = "2026年度民主评议问卷（修订版）".into();
    let new_form = site.path().join("new-form.json");
    std::fs::write(&new_form, form.to_string()).unwrap();
    let mut s = s;
    s.server
        .restart_with(&["--form", &new_form.display().to_string()]);
    s.reload().await;

    // The answers given so far are all there, on the form they were given on.
    s.find("page-appraisal").await;
    s.click("back").await;
    s.find("page-about").await;
    assert!(
        s.find("opt-contact-often")
            .await
            .find(thirtyfour::By::Css("input"))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap(),
        "the page-1 answer survived the reload"
    );
    s.click("next").await;
    let grid = flows::grid_answers("4", "2");
    flows::grid_then_last_page(&s, &grid).await;
    s.click("opt-environment-4").await;
    s.type_into("input-why", "窗口排队太久").await;
    s.click("submit").await;
    s.find("thanks").await;

    // The next person gets the new version.
    s.click("new-ballot").await;
    assert_eq!(
        s.find("form-title").await.text().await.unwrap(),
        "2026年度民主评议问卷（修订版）"
    );
    flows::open_admin(&s, "1357", true).await;
    let ballots = flows::export(&s, true).await;
    assert_eq!(ballots.len(), 1);
    assert_eq!(ballots[0].form_version, "2026.1");
    let mut expected = flows::about_answers();
    expected.insert("appr".into(), analysis::ballot::Answer::Grid(grid));
    expected.insert(
        "environment".into(),
        analysis::ballot::Answer::Str("4".into()),
    );
    expected.insert(
        "why".into(),
        analysis::ballot::Answer::Str("窗口排队太久".into()),
    );
    assert_eq!(ballots[0].answers, expected);
    s.close().await;
}
