//! The administrator's screen: the PIN, loading a new form definition (refused with every
//! problem by path, or taken into use), and ballots of two forms kept apart.

use crate::flows;
use crate::harness::Session;

const CUSTOM_FORM: &str = r#"{
  "id": "hall-survey", "version": "3",
  "title": {"zh-CN": "办事大厅满意度调查", "en": "Service hall survey"},
  "languages": ["zh-CN", "en"],
  "scales": [{"id": "s3", "options": [
    {"code": "1", "label": {"zh-CN": "满意", "en": "Satisfied"}, "score": 100, "satisfied": true},
    {"code": "2", "label": {"zh-CN": "基本满意", "en": "Fairly satisfied"}, "score": 60, "satisfied": true},
    {"code": "3", "label": {"zh-CN": "不满意", "en": "Dissatisfied"}, "score": 0}]}],
  "units": [{"id": "hall", "name": {"zh-CN": "办事大厅", "en": "Service hall"}}],
  "groups": [{"id": "visitor", "label": {"zh-CN": "办事群众", "en": "Visitor"}}],
  "sections": [{"title": {"zh-CN": "评价", "en": "Rating"}, "items": [
    {"id": "q", "type": "rating", "scale": "s3", "required": true, "label": {"zh-CN": "您对今天的办事体验满意吗？", "en": "Were you satisfied today?"}},
    {"id": "age", "type": "number", "label": {"zh-CN": "年龄", "en": "Age"}, "constraint": ". >= 18", "constraint_message": {"zh-CN": "须年满18岁", "en": "You must be 18 or over"}}
  ]}]
}"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_form_is_checked_and_ballots_of_both_forms_are_kept() {
    let s = Session::open().await;
    flows::complete_ballot(&s).await;
    s.click("new-ballot").await;

    flows::open_admin(&s, "11223344", true).await;
    let dir = tempfile::tempdir().unwrap();
    let broken = CUSTOM_FORM
        .replace(r#""scale": "s3""#, r#""scale": "s5""#)
        .replace(r#""en": "Visitor""#, r#""fr": "Visiteur""#);
    s.find("form-file")
        .await
        .send_keys(write(dir.path(), "broken.json", &broken))
        .await
        .unwrap();
    let problems = s.find("form-problems").await.text().await.unwrap();
    assert!(
        problems.contains(r#"sections[0].items[0].scale: unknown scale "s5""#),
        "{problems}"
    );
    assert!(
        problems.contains(r#"groups[0].label.fr: language "fr" is not declared"#),
        "{problems}"
    );
    assert!(problems.contains("3 处问题"), "{problems}");
    assert!(
        s.find("current-form")
            .await
            .text()
            .await
            .unwrap()
            .contains("minzhu-pingyi"),
        "the old form stays in use"
    );

    s.find("form-file")
        .await
        .send_keys(write(dir.path(), "hall.json", CUSTOM_FORM))
        .await
        .unwrap();
    s.wait_for_text("the new form in use", |t| {
        t.contains("新问卷已启用") && t.contains("hall-survey")
    })
    .await;
    s.click("admin-close").await;
    assert_eq!(
        s.find("form-title").await.text().await.unwrap(),
        "办事大厅满意度调查"
    );
    s.click("group-visitor").await;
    s.click("start-button").await;
    s.click("opt-q-1").await;
    s.type_into("input-age", "16").await;
    s.click("submit").await;
    s.wait_for_text("the form's own constraint message", |t| {
        t.contains("须年满18岁")
    })
    .await;
    let age = s.find("input-age").await;
    age.clear().await.unwrap();
    age.send_keys("40").await.unwrap();
    s.click("submit").await;
    s.find("thanks").await;
    s.click("new-ballot").await;

    // A reload keeps the administrator's form.
    s.reload().await;
    assert_eq!(
        s.find("form-title").await.text().await.unwrap(),
        "办事大厅满意度调查"
    );
    flows::open_admin(&s, "11223344", false).await;
    assert_eq!(flows::admin_total(&s).await, 2);
    let text = s.page_text().await;
    assert!(
        text.contains("问卷 hall-survey@3：1 份")
            && text.contains("问卷 minzhu-pingyi@2026.1：1 份"),
        "{text}"
    );
    // Each form exports with its own columns.
    s.click("export-csv-0").await;
    let path = s.download(".csv").await;
    let csv = std::fs::read_to_string(path).unwrap();
    assert!(csv.lines().next().unwrap().ends_with(",q,age"), "{csv}");
    s.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_keeps_the_panel_closed_and_the_pin_is_not_stored_in_clear() {
    let s = Session::open().await;
    flows::open_admin(&s, "5555", true).await;
    s.click("admin-close").await;
    s.click("open-admin").await;
    s.type_into("pin", "5556").await;
    s.click("pin-ok").await;
    s.wait_for_text("the wrong PIN message", |t| t.contains("密码错误"))
        .await;
    assert!(!s.shown("admin-panel").await);
    let everything = s
        .js("return JSON.stringify(Object.assign({}, localStorage))")
        .await;
    assert!(
        !everything.as_str().unwrap().contains("5555"),
        "the PIN is only kept hashed"
    );
    s.close().await;
}
