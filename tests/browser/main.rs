//! End-to-end tests of the form app in a real headless Chromium, driven through the same
//! controls a citizen or an official uses (elements found by `data-testid`).

mod access_codes;
mod admin;
mod console;
mod device_store;
mod expressions;
mod flows;
mod harness;
mod kiosk;
mod offline;
mod storage;
mod sync;

use std::time::Duration;

use analysis::form::Form;
use analysis::wide_csv;
use harness::Session;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_form_renders_title_unit_and_criterion() {
    let s = Session::open().await;
    let title = s.find("form-title").await.text().await.unwrap();
    assert_eq!(title, "2026年度市直单位民主评议满意度测评问卷");
    assert!(s.page_text().await.contains("服务对象/群众"));
    flows::to_grid(&s, "public").await;
    let text = s
        .wait_for_text("the grid", |t| {
            t.contains("公安局") && t.contains("服务态度")
        })
        .await;
    assert!(
        text.contains("依法行政") && text.contains("不了解"),
        "{text}"
    );
    s.screenshot("grid-wide").await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn citizen_submits_and_admin_export_reads_back_unchanged() {
    let s = Session::open().await;
    let answers = flows::complete_ballot(&s).await;
    s.screenshot("thanks").await;
    let shown_id = s
        .find("ballot-id")
        .await
        .attr("data-ballot-id")
        .await
        .unwrap()
        .unwrap();

    // A reload neither loses the stored ballot nor brings back the submitted draft.
    s.reload().await;
    s.find("start").await;
    assert!(s
        .find("start-button")
        .await
        .text()
        .await
        .unwrap()
        .contains("开始填写"));

    flows::open_admin(&s, "2468", true).await;
    assert_eq!(flows::admin_total(&s).await, 1);
    assert_eq!(s.find("count-public").await.text().await.unwrap(), "1");
    s.click("export-csv-0").await;
    let path = s.download(".csv").await;
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.starts_with(b"\xEF\xBB\xBF"),
        "the export starts with a UTF-8 BOM"
    );
    let text = String::from_utf8(bytes).unwrap();
    assert!(
        text.contains(",\"'=1+1 "),
        "the formula-like answer is neutralized: {text}"
    );
    let form = Form::default_form();
    let ballots = wide_csv::read_all(&form, &path.display().to_string(), text.as_bytes()).unwrap();
    assert_eq!(ballots.len(), 1);
    let b = &ballots[0];
    assert_eq!(b.id, shown_id);
    assert_eq!(b.group, "public");
    assert_eq!(b.lang, "zh-CN");
    assert!(b.device_id.starts_with("kiosk-"), "{}", b.device_id);
    assert!(b.duration_s().unwrap() >= 0.0);
    assert_eq!(b.answers, answers);

    let from_json = flows::export(&s, false).await;
    assert_eq!(from_json, ballots);

    // Exported, so it may be cleared, after typing the confirmation word.
    flows::clear_device(&s).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clearing_needs_an_export_of_everything_first() {
    let s = Session::open().await;
    // The ballots stay waiting (delivered ones would need no export: see sync.rs).
    s.block_api(true).await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    flows::open_admin(&s, "1357", true).await;
    assert!(s.shown("clear-needs-export").await);
    assert!(
        !s.shown("clear-word").await,
        "no way to clear before an export"
    );
    assert_eq!(flows::export(&s, false).await.len(), 1);
    s.wait_shown("clear-word", true).await;
    s.click("admin-close").await;
    // One more ballot after the export: clearing is locked again.
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;
    flows::open_admin(&s, "1357", false).await;
    assert_eq!(flows::admin_total(&s).await, 2);
    assert!(s.shown("clear-needs-export").await);
    assert!(!s.shown("clear-word").await);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_brings_the_draft_back() {
    let s = Session::open().await;
    flows::to_grid(&s, "cadre").await;
    s.click("opt-appr-gaj-attitude-5").await;
    s.click("opt-appr-jyj-overall-9").await;
    s.reload().await;
    s.find("page-appraisal").await;
    let checked = s
        .js("return [...document.querySelectorAll('input:checked')].map(i => i.name + '=' + i.value).sort()")
        .await;
    assert_eq!(
        checked,
        serde_json::json!(["q-appr-gaj-attitude=5", "q-appr-jyj-overall=9"])
    );
    s.click("back").await;
    s.find("page-about").await;
    let times = s
        .find("input-times")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(times, "12");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_why_question_appears_only_after_a_dissatisfied_overall() {
    let s = Session::open().await;
    flows::to_grid(&s, "public").await;
    flows::grid_then_last_page(&s, &flows::grid_answers("5", "5")).await;
    assert!(s.shown("item-suggestion").await);
    assert!(
        !s.shown("item-why").await,
        "everyone satisfied: no follow-up"
    );
    s.click("back").await;
    s.click("opt-appr-mzj-overall-1").await;
    s.click("next").await;
    s.wait_shown("item-why", true).await;
    s.click("back").await;
    s.click("opt-appr-mzj-overall-3").await;
    s.click("next").await;
    s.wait_shown("item-why", false).await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_required_answer_blocks_and_focuses_the_first_problem() {
    let s = Session::open().await;
    flows::start(&s, "public").await;
    // Next without answering the required "contact" question.
    s.click("next").await;
    s.wait_shown("page-problems", true).await;
    assert!(s
        .find("error-contact")
        .await
        .text()
        .await
        .unwrap()
        .contains("此题为必答题"));
    let focused = s
        .js("return document.activeElement && document.activeElement.id")
        .await;
    assert_eq!(focused, "q-contact-0");
    assert!(s.shown("page-about").await, "still on the first page");

    flows::fill_about(&s).await;
    // Leave one grid cell empty and try to go on.
    let mut grid = flows::grid_answers("3", "3");
    grid.get_mut("scjgj").unwrap().remove("lawful");
    flows::fill_grid(&s, &grid).await;
    s.click("next").await;
    s.wait_shown("page-problems", true).await;
    let msg = s.find("error-appr").await.text().await.unwrap();
    assert!(msg.contains("还有 1 项未评价"), "{msg}");
    let cell = s
        .find("cell-appr-scjgj-lawful")
        .await
        .class_name()
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(cell.contains("missing"), "{cell}");
    let focused = s
        .js("return document.activeElement && document.activeElement.name")
        .await;
    assert_eq!(focused, "q-appr-scjgj-lawful");
    s.click("opt-appr-scjgj-lawful-3").await;
    s.wait_shown("page-problems", false).await;
    s.click("next").await;
    s.find("page-opinions").await;
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_number_is_kept_and_refused_with_a_message() {
    let s = Session::open().await;
    flows::start(&s, "public").await;
    s.click("opt-contact-often").await;
    s.type_into("input-times", "1000").await;
    s.click("next").await;
    s.wait_shown("page-problems", true).await;
    assert!(s
        .find("error-times")
        .await
        .text()
        .await
        .unwrap()
        .contains("请填写0到999之间的整数"));
    let input = s.find("input-times").await;
    input.clear().await.unwrap();
    input.send_keys("十二").await.unwrap();
    s.wait_for_text("the not-a-number message", |t| t.contains("请输入数字"))
        .await;
    s.reload().await;
    let kept = s
        .find("input-times")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept, "十二", "what was typed survives a reload");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_tap_on_submit_stores_one_ballot() {
    let s = Session::open().await;
    flows::to_grid(&s, "cadre").await;
    flows::grid_then_last_page(&s, &flows::grid_answers("4", "4")).await;
    // Two clicks in the same task, as a double tap delivers them.
    s.js("const b = document.querySelector(\"[data-testid='submit']\"); b.click(); b.click(); return true").await;
    s.find("thanks").await;
    s.click("new-ballot").await;
    flows::open_admin(&s, "9999", true).await;
    assert_eq!(flows::admin_total(&s).await, 1);
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn english_switch_and_large_text_stay_on() {
    let s = Session::open().await;
    s.click("lang-en").await;
    s.wait_for_text("English", |t| t.contains("Which of these are you?"))
        .await;
    assert_eq!(s.js("return document.documentElement.lang").await, "en");
    s.click("large-text").await;
    flows::start(&s, "public").await;
    let large = s
        .js("return document.querySelector('.app').classList.contains('large')")
        .await;
    assert_eq!(large, true);
    flows::fill_about(&s).await;
    let text = s.page_text().await;
    assert!(
        text.contains("Public Security Bureau") && text.contains("Service attitude"),
        "{text}"
    );
    s.click("lang-zh").await;
    s.wait_for_text("Chinese", |t| t.contains("公安局")).await;
    assert_eq!(s.js("return document.documentElement.lang").await, "zh-CN");
    assert_eq!(
        s.js("return document.querySelector('.app').classList.contains('large')")
            .await,
        true
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_grid_is_one_card_per_unit_on_a_phone() {
    let s = Session::open().await;
    s.d().set_window_rect(0, 0, 360, 800).await.unwrap();
    flows::to_grid(&s, "public").await;
    let layout = s
        .js("const r = document.querySelector(\"[data-testid='row-appr-gaj']\"); \
             const cells = [...r.querySelectorAll('.cell')].map(c => c.getBoundingClientRect()); \
             return { display: getComputedStyle(r).display, stacked: cells.every((c, i) => i == 0 || c.top > cells[i-1].top), \
                      fits: r.getBoundingClientRect().right <= window.innerWidth, legend: getComputedStyle(r.querySelector('legend')).position }")
        .await;
    assert_eq!(layout["display"], "block");
    assert_eq!(
        layout["stacked"], true,
        "criteria stack inside the unit's card"
    );
    assert_eq!(layout["fits"], true, "no sideways scrolling");
    assert_ne!(
        layout["legend"], "absolute",
        "each criterion is labelled inside the card"
    );
    s.screenshot("grid-phone").await;
    s.d().set_window_rect(0, 0, 1920, 1080).await.unwrap();
    let wide = s
        .js("const r = document.querySelector(\"[data-testid='row-appr-gaj']\"); \
             const cells = [...r.querySelectorAll('.cell')].map(c => c.getBoundingClientRect()); \
             return { display: getComputedStyle(r).display, one_line: cells.every(c => Math.abs(c.top - cells[0].top) < 2) }")
        .await;
    assert_eq!(wide["display"], "grid");
    assert_eq!(
        wide["one_line"], true,
        "a unit's criteria side by side on a kiosk"
    );
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_is_labelled_and_reachable_by_keyboard() {
    let s = Session::open().await;
    flows::to_grid(&s, "public").await;
    let audit = s
        .js("const radios = [...document.querySelectorAll('input[type=radio]')]; \
             const groups = new Set(radios.map(r => r.name)); \
             const unlabelled = [...groups].filter(n => { const f = document.querySelector(`input[name='${n}']`).closest('fieldset'); \
                 return !f || !f.querySelector('legend') || !f.querySelector('legend').textContent.trim(); }); \
             const nameless = radios.filter(r => !r.closest('label') || !r.closest('label').textContent.trim()); \
             return { groups: groups.size, unlabelled, nameless: nameless.length, tabbable: radios.every(r => r.tabIndex >= 0) }")
        .await;
    assert_eq!(audit["groups"], 40);
    assert_eq!(audit["unlabelled"], serde_json::json!([]));
    assert_eq!(audit["nameless"], 0);
    assert_eq!(audit["tabbable"], true);
    // Keyboard only: Tab into the grid, arrows pick an option, Space on a radio selects.
    let first = s.find("opt-appr-zwfw-attitude-5").await;
    first
        .find(thirtyfour::By::Tag("input"))
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    assert_eq!(
        s.js("return document.querySelector(\"input[name='q-appr-zwfw-attitude']:checked\").value")
            .await,
        "5"
    );
    s.d()
        .active_element()
        .await
        .unwrap()
        .send_keys(thirtyfour::Key::Right)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        s.js("return document.querySelector(\"input[name='q-appr-zwfw-attitude']:checked\").value")
            .await,
        "4"
    );
    s.close().await;
}

/// WCAG 2.1 contrast ratio of each selector's first element against its nearest opaque
/// background (relative luminance per WCAG's definition).
async fn contrast(s: &Session, selectors: &[(&str, &str)]) -> Vec<(String, f64)> {
    let map: serde_json::Map<String, serde_json::Value> = selectors
        .iter()
        .map(|(n, sel)| (n.to_string(), (*sel).into()))
        .collect();
    let script = format!(
        r#"
        const lum = (c) => {{ const [r, g, b] = c.match(/[\d.]+/g).slice(0, 3).map(Number).map(v => v / 255)
            .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)); return 0.2126 * r + 0.7152 * g + 0.0722 * b; }};
        const bg = (el) => {{ for (let e = el; e; e = e.parentElement) {{ const c = getComputedStyle(e).backgroundColor;
            const a = c.match(/[\d.]+/g); if (a && (a.length < 4 || Number(a[3]) > 0.5)) return c; }} return 'rgb(255, 255, 255)'; }};
        const out = {{}};
        for (const [name, sel] of Object.entries({selectors})) {{
            const el = document.querySelector(sel);
            if (!el) {{ out[name] = null; continue; }}
            const l1 = lum(getComputedStyle(el).color), l2 = lum(bg(el));
            out[name] = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
        }}
        return out;"#,
        selectors = serde_json::Value::Object(map)
    );
    let v = s.js(&script).await;
    selectors
        .iter()
        .map(|(n, _)| {
            (
                n.to_string(),
                v[n].as_f64()
                    .unwrap_or_else(|| panic!("{n}: no element to measure")),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_contrast_meets_wcag_aa() {
    let s = Session::open().await;
    s.find("start").await;
    let mut measured = contrast(
        &s,
        &[
            ("title", "h1"),
            ("privacy", "[data-testid=privacy]"),
            ("group", ".opt span"),
            ("start", "[data-testid=start-button]"),
            ("admin link", "[data-testid=open-admin]"),
        ],
    )
    .await;
    flows::start(&s, "public").await;
    s.click("next").await; // an error, so its colours are measured too
    s.wait_shown("page-problems", true).await;
    s.click("opt-contact-often").await;
    measured.extend(
        contrast(
            &s,
            &[
                ("question", ".q-label"),
                ("hint", ".hint"),
                ("progress", ".progress p"),
                ("error", ".error.summary"),
                ("required", ".req"),
                ("option", ".opt input:not(:checked) + span"),
                ("chosen", ".opt input:checked + span"),
                ("next", "[data-testid=next]"),
                ("top bar", ".tool[aria-pressed=false]"),
                ("top bar on", ".tool[aria-pressed=true]"),
            ],
        )
        .await,
    );
    flows::fill_about(&s).await;
    s.click("opt-appr-gaj-overall-9").await;
    measured.extend(
        contrast(
            &s,
            &[
                ("don't know", ".opt.aside input:not(:checked) + span"),
                ("don't know chosen", ".opt.aside input:checked + span"),
                ("unit", ".unit-name"),
                ("grid head", ".grid-head span"),
                ("back", "[data-testid=back]"),
            ],
        )
        .await,
    );
    for (name, r) in measured {
        assert!(
            r >= 4.5,
            "{name}: contrast {r:.2}:1 is below WCAG AA (4.5:1)"
        );
    }
    s.close().await;
}
