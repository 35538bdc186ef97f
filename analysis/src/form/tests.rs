use super::*;

fn problems(json: &str) -> Vec<String> {
    match Form::from_json("t.json", json) {
        Ok(_) => Vec::new(),
        Err(p) => p.problems.iter().map(|p| p.to_string()).collect(),
    }
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|p| p.contains(needle))
}

const MINIMAL: &str = r#"{
  "id": "f", "version": "1", "title": {"zh-CN": "测评", "en": "Survey"},
  "languages": ["zh-CN", "en"],
  "scales": [{"id": "s3", "options": [
     {"code": "1", "label": {"zh-CN": "满意", "en": "Satisfied"}, "score": 100, "satisfied": true},
     {"code": "2", "label": {"zh-CN": "不满意", "en": "Dissatisfied"}, "score": 0},
     {"code": "9", "label": {"zh-CN": "不了解", "en": "Don't know"}, "counted": false}]}],
  "units": [{"id": "a", "name": "甲局", "category": "window"}, {"id": "b", "name": "乙局"}],
  "groups": [{"id": "public", "label": {"zh-CN": "群众", "en": "Citizens"}}],
  "sections": [{"title": "一", "items": [
    {"id": "q1", "type": "single", "label": "Q1", "options": [{"code": "y", "label": "是"}, {"code": "n", "label": "否"}]},
    {"id": "g", "type": "appraisal", "label": "G", "scale": "s3", "units": {"category": "window"},
     "criteria": [{"id": "att", "label": "态度", "weight": 2}]},
    {"id": "t", "type": "text", "label": "T", "relevant": "${q1} = 'n' and selected(${g.att}, '2')"}
  ]}]
}"#;

#[test]
fn default_form_is_valid_and_recognisable() {
    let form = Form::from_json("default", DEFAULT_FORM_JSON).unwrap_or_else(|p| panic!("{p}"));
    assert_eq!(form.languages, ["zh-CN", "en"]);
    assert!(form.units.len() >= 8);
    let cats: std::collections::BTreeSet<_> = form
        .units
        .iter()
        .filter_map(|u| u.category.clone())
        .collect();
    assert_eq!(cats.len(), 2);
    let grid = form
        .items()
        .find(|i| matches!(i.kind, ItemKind::Appraisal { .. }))
        .unwrap();
    let ItemKind::Appraisal {
        criteria,
        units,
        scale,
    } = &grid.kind
    else {
        unreachable!()
    };
    assert_eq!(units.len(), form.units.len());
    let names: Vec<&str> = criteria.iter().map(|c| c.label.get("zh-CN")).collect();
    assert_eq!(
        names,
        ["服务态度", "办事效率", "依法行政", "廉洁自律", "总体评价"]
    );
    let scale = form.scale(scale).unwrap();
    assert_eq!(scale.options.len(), 6);
    assert!(scale
        .options
        .iter()
        .any(|o| o.label.get("zh-CN") == "不了解" && !o.counted));
    let kinds: std::collections::BTreeSet<_> = form.items().map(|i| i.kind.type_name()).collect();
    assert_eq!(
        kinds.len(),
        6,
        "every item type is in the default form: {kinds:?}"
    );
    assert_eq!(form.groups.len(), 6);
    let coded: Vec<&str> = form
        .groups
        .iter()
        .filter(|g| g.code_required)
        .map(|g| g.id.as_str())
        .collect();
    assert_eq!(
        coded,
        ["npc", "cppcc"],
        "人大代表 and 政协委员 vote with a code"
    );
}

#[test]
fn a_group_needs_a_code_only_when_it_says_so() {
    let marked = MINIMAL.replace(
        r#""groups": [{"id": "public", "label": {"zh-CN": "群众", "en": "Citizens"}}]"#,
        r#""groups": [{"id": "public", "label": {"zh-CN": "群众", "en": "Citizens"}},
                    {"id": "npc", "label": "人大代表", "code_required": true},
                    {"id": "staff", "label": "干部", "code_required": false}]"#,
    );
    assert_ne!(marked, MINIMAL, "the test's edit must apply");
    let form = Form::from_json("t", &marked).unwrap_or_else(|p| panic!("{p}"));
    let flags: Vec<(&str, bool)> = form
        .groups
        .iter()
        .map(|g| (g.id.as_str(), g.code_required))
        .collect();
    assert_eq!(flags, [("public", false), ("npc", true), ("staff", false)]);

    let wrong = marked.replace(r#""code_required": true"#, r#""code_required": "yes""#);
    let p = problems(&wrong);
    assert!(
        has(
            &p,
            r#"groups[1].code_required: expected true or false, found "yes""#
        ),
        "{p:#?}"
    );
    assert_eq!(p.len(), 1, "{p:#?}");
}

#[test]
fn minimal_form_parses_with_category_units_and_grid_reference() {
    let form = Form::from_json("t", MINIMAL).unwrap_or_else(|p| panic!("{p}"));
    let ItemKind::Appraisal {
        units, criteria, ..
    } = &form.item("g").unwrap().kind
    else {
        panic!()
    };
    assert_eq!(units, &["a"]);
    assert_eq!(criteria[0].weight, 2.0);
    assert_eq!(form.sections[0].id, "s1");
    assert!(form.item("t").unwrap().relevant.is_some());
}

#[test]
fn five_mistakes_give_five_problems_with_paths() {
    let broken = MINIMAL
        .replace(r#""scale": "s3""#, r#""scale": "sat7""#)
        .replace(r#""id": "t""#, r#""id": "q1""#)
        .replace(r#""weight": 2"#, r#""weight": -1"#)
        .replace(r#""en": "Citizens""#, r#""fr": "Citoyens""#)
        .replace("${q1} = 'n'", "${q9} = 'n'");
    let p = problems(&broken);
    assert!(
        has(&p, r#"sections[0].items[1].scale: unknown scale "sat7""#),
        "{p:#?}"
    );
    assert!(
        has(&p, r#"sections[0].items[2].id: duplicate item id "q1""#),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "sections[0].items[1].criteria[0].weight: -1 is negative"
        ),
        "{p:#?}"
    );
    assert!(
        has(&p, "groups[0].label.fr: language \"fr\" is not declared"),
        "{p:#?}"
    );
    assert!(has(&p, "groups[0].label: has no \"en\" text"), "{p:#?}");
    assert!(
        has(&p, "sections[0].items[2].relevant: ${q9} names no item"),
        "{p:#?}"
    );
    assert_eq!(p.len(), 6, "{p:#?}");
}

#[test]
fn syntax_errors_keep_line_and_column() {
    let p = problems("{\n  \"id\": \"f\",\n  \"version\" 1\n}");
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with("line 3, column 13: not valid JSON: expected `:`"),
        "{p:?}"
    );
}

#[test]
fn empty_lists_and_unknown_fields_are_named() {
    let broken = MINIMAL
        .replace(
            r#""criteria": [{"id": "att", "label": "态度", "weight": 2}]"#,
            r#""criteria": []"#,
        )
        .replace(
            r#"{"code": "y", "label": "是"}, {"code": "n", "label": "否"}"#,
            "",
        )
        .replace(r#""type": "text","#, r#""type": "text", "lable": "x","#);
    let p = problems(&broken);
    assert!(has(&p, "sections[0].items[1].criteria: is empty"), "{p:#?}");
    assert!(has(&p, "sections[0].items[0].options: is empty"), "{p:#?}");
    assert!(
        has(&p, "sections[0].items[2].lable: unknown field \"lable\""),
        "{p:#?}"
    );
}

#[test]
fn appraisal_without_units_is_refused() {
    let broken = MINIMAL.replace(r#"{"category": "window"}"#, r#"{"category": "hall"}"#);
    let p = problems(&broken);
    assert!(
        has(
            &p,
            r#"sections[0].items[1].units.category: no unit has category "hall""#
        ),
        "{p:#?}"
    );
    let broken = MINIMAL.replace(r#"{"category": "window"}"#, "[]");
    let p = problems(&broken);
    assert!(
        has(&p, "sections[0].items[1].units: the appraisal has no units"),
        "{p:#?}"
    );
}

#[test]
fn expression_problems_name_the_place_and_the_reason() {
    let broken = MINIMAL.replace("${q1} = 'n' and selected(${g.att}, '2')", "${q1} = = 'n'");
    let p = problems(&broken);
    assert!(
        has(
            &p,
            "sections[0].items[2].relevant: \"${q1} = = 'n'\" does not parse: at character 9"
        ),
        "{p:#?}"
    );
    let broken = MINIMAL.replace("${g.att}", "${g.zzz}");
    let p = problems(&broken);
    assert!(
        has(&p, "\"zzz\" is neither a unit nor a criterion"),
        "{p:#?}"
    );
    let broken = MINIMAL.replace("${g.att}", "${q1.att}");
    let p = problems(&broken);
    assert!(
        has(&p, "only appraisal items have parts after a dot"),
        "{p:#?}"
    );
}

#[test]
fn wrong_types_are_described() {
    let broken = MINIMAL
        .replace(r#""satisfied": true"#, r#""satisfied": "yes""#)
        .replace(r#""type": "single""#, r#""type": "choice""#);
    let p = problems(&broken);
    assert!(
        has(
            &p,
            "scales[0].options[0].satisfied: expected true or false, found \"yes\""
        ),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "sections[0].items[0].type: unknown item type \"choice\""
        ),
        "{p:#?}"
    );
    // q1 is broken, so the relevant that names it is not reported a second time.
    assert!(!has(&p, "${q1} names no item"), "{p:#?}");
}

/// A version, code, category or language that would break a storage key, a file name or a
/// CSV column: refused with its path and the value shown visibly.
#[test]
fn key_parts_with_tabs_line_breaks_or_separators_are_refused() {
    let with = |from: &str, to: &str| {
        assert!(MINIMAL.contains(from), "{from}");
        problems(&MINIMAL.replacen(from, to, 1))
    };
    let p = with(r#""version": "1""#, r#""version": "1\n2""#);
    assert!(
        has(
            &p,
            r#"version: "1\n2" holds a line break (U+000A) at character 2"#
        ),
        "{p:?}"
    );
    let p = with(r#""version": "1""#, r#""version": "1\t2""#);
    assert!(has(&p, r#"version: "1\t2" holds a tab (U+0009)"#), "{p:?}");
    let p = with(r#""version": "1""#, r#""version": "1\r""#);
    assert!(has(&p, "version: \"1\\r\" holds a line break"), "{p:?}");
    let p = with(r#""version": "1""#, r#""version": "1\u2028""#);
    assert!(
        has(&p, "version: \"1\\u{2028}\" holds a line break"),
        "{p:?}"
    );
    let p = with(r#""version": "1""#, r#""version": " 1""#);
    assert!(
        has(&p, "version: \" 1\" begins or ends with a space"),
        "{p:?}"
    );
    let long = "9".repeat(200);
    let p = with(r#""version": "1""#, &format!(r#""version": "{long}""#));
    assert!(
        has(
            &p,
            "(200 characters) is 200 characters long, expected at most 64"
        ),
        "{p:?}"
    );
    assert!(p[0].len() < 160, "the long value is cut: {p:?}");
    let p = with(r#""code": "y""#, r#""code": "y\u0000""#);
    assert!(
        has(
            &p,
            "sections[0].items[0].options[0].code: \"y\\0\" holds a control character (U+0000)"
        ),
        "{p:?}"
    );
    let p = with(r#""category": "window""#, r#""category": "win\ndow""#);
    assert!(
        has(&p, "units[0].category: \"win\\ndow\" holds a line break"),
        "{p:?}"
    );
    let p = with(
        r#""languages": ["zh-CN", "en"]"#,
        r#""languages": ["zh-CN", "e\tn"]"#,
    );
    assert!(
        has(&p, r#"languages[1]: "e\tn" is not a language tag"#),
        "{p:?}"
    );
    let p = with(r#""id": "f""#, r#""id": "f@1""#);
    assert!(has(&p, r#"id: "f@1" is not a valid id"#), "{p:?}");
    // Dots and at signs are fine inside a version: only the id side of `id@version` is split.
    assert_eq!(
        with(r#""version": "1""#, r#""version": "2026.1@b""#),
        Vec::<String>::new()
    );
}
