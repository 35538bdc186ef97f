//! Reading a form from JSON: a walk over the JSON value that builds the model and
//! collects every problem with its path instead of stopping at the first one.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Map, Value};

use super::{Choice, Criterion, Form, Group, Item, ItemKind, Scale, ScaleOption, Section, Unit};
use crate::error::{json_message, quoted, Problem, Problems};
use crate::expr::Expression;
use crate::label::Label;
use crate::wide_csv::META_COLUMNS;

pub(super) fn parse_form(source: &str, text: &str) -> Result<Form, Problems> {
    let root: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Err(Problems {
                source: source.to_string(),
                problems: vec![Problem::new(
                    format!("line {}, column {}", e.line(), e.column()),
                    format!("not valid JSON: {}", json_message(&e)),
                )],
            });
        }
    };
    let mut w = Walker::default();
    let form = w.form(&root);
    if w.problems.is_empty() {
        Ok(form)
    } else {
        Err(Problems {
            source: source.to_string(),
            problems: w.problems,
        })
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => quoted(s),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// The longest id, version or code: they go into every stored ballot's key, export file
/// names and CSV column names.
const LONGEST_KEY_PART: usize = 64;

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What is wrong with a text that becomes part of a storage key, a file name or a CSV
/// column or cell (a version, a code, a category), if anything: a control character (a
/// tab separates the form key from the device in a stored chunk, a line break separates
/// stored ballots), a Unicode line or paragraph separator, space at either end (two
/// versions that look alike would be two keys), or more than [`LONGEST_KEY_PART`]
/// characters.
fn key_part_problem(s: &str) -> Option<String> {
    let n = s.chars().count();
    if n > LONGEST_KEY_PART {
        return Some(format!(
            "{} is {n} characters long, expected at most {LONGEST_KEY_PART}",
            quoted(s)
        ));
    }
    if let Some((i, c)) = s
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}'))
    {
        let name = match c {
            '\t' => "a tab".to_string(),
            '\n' | '\r' | '\u{2028}' | '\u{2029}' => "a line break".to_string(),
            _ => "a control character".to_string(),
        };
        return Some(format!(
            "{} holds {name} (U+{:04X}) at character {}, expected printable text without tabs or line breaks",
            quoted(s),
            c as u32,
            i + 1
        ));
    }
    if s.trim() != s {
        return Some(format!(
            "{} begins or ends with a space, expected none",
            quoted(s)
        ));
    }
    None
}

/// A language tag (BCP 47 style): letters, digits and `-`, as in `zh-CN`.
fn valid_language_tag(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= LONGEST_KEY_PART
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

#[derive(Default)]
struct Walker {
    problems: Vec<Problem>,
    languages: Vec<String>,
    /// Ids of items written in the form, including ones that had problems of their own,
    /// so a reference to a broken item is not reported a second time.
    written_items: HashSet<String>,
}

/// An object being read: remembers which keys were used so unknown ones can be reported.
struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    allowed: &'static [&'static str],
}

impl<'a> Obj<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        debug_assert!(self.allowed.contains(&key), "{key} not in allowed list");
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn at(&self, key: &str) -> String {
        join(&self.path, key)
    }
}

impl Walker {
    fn problem(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn object<'a>(
        &mut self,
        v: &'a Value,
        path: &str,
        what: &str,
        allowed: &'static [&'static str],
    ) -> Option<Obj<'a>> {
        let Value::Object(map) = v else {
            self.problem(
                path,
                format!("expected {what} (an object), found {}", describe(v)),
            );
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.problem(
                    join(path, key),
                    format!(
                        "unknown field \"{key}\", expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
        Some(Obj {
            map,
            path: path.to_string(),
            allowed,
        })
    }

    fn string(&mut self, o: &Obj, key: &str, required: bool) -> Option<String> {
        match o.get(key) {
            None => {
                if required {
                    self.problem(o.at(key), "missing, expected a text");
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(o.at(key), "is empty, expected a text");
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            // Officials write `"version": 2` or `"code": 5`; a whole number means its digits.
            Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
            Some(other) => {
                self.problem(
                    o.at(key),
                    format!("expected a text, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn id(&mut self, o: &Obj, key: &str) -> Option<String> {
        let s = self.string(o, key, true)?;
        if !valid_id(&s) {
            self.problem(
                o.at(key),
                format!("{} is not a valid id, expected letters, digits, '_' or '-' (no spaces or dots)", quoted(&s)),
            );
            None
        } else if let Some(problem) = key_part_problem(&s) {
            self.problem(o.at(key), problem);
            None
        } else {
            Some(s)
        }
    }

    /// A text that becomes part of keys, file names or CSV columns (see [`key_part_problem`]).
    fn key_part(&mut self, o: &Obj, key: &str, required: bool) -> Option<String> {
        let s = self.string(o, key, required)?;
        match key_part_problem(&s) {
            Some(problem) => {
                self.problem(o.at(key), problem);
                None
            }
            None => Some(s),
        }
    }

    fn boolean(&mut self, o: &Obj, key: &str, default: bool) -> bool {
        match o.get(key) {
            None => default,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                self.problem(
                    o.at(key),
                    format!("expected true or false, found {}", describe(other)),
                );
                default
            }
        }
    }

    fn number(&mut self, o: &Obj, key: &str) -> Option<f64> {
        match o.get(key) {
            None => None,
            Some(Value::Number(n)) => match n.as_f64() {
                Some(x) if x.is_finite() => Some(x),
                _ => {
                    self.problem(o.at(key), format!("{n} is not a finite number"));
                    None
                }
            },
            Some(other) => {
                self.problem(
                    o.at(key),
                    format!("expected a number, found {}", describe(other)),
                );
                None
            }
        }
    }

    fn array<'a>(&mut self, o: &Obj<'a>, key: &str, required: bool) -> &'a [Value] {
        match o.get(key) {
            None => {
                if required {
                    self.problem(o.at(key), "missing, expected a list");
                }
                &[]
            }
            Some(Value::Array(a)) => a,
            Some(other) => {
                self.problem(
                    o.at(key),
                    format!("expected a list, found {}", describe(other)),
                );
                &[]
            }
        }
    }

    fn label(&mut self, o: &Obj, key: &str, required: bool) -> Option<Label> {
        let path = o.at(key);
        match o.get(key) {
            None => {
                if required {
                    self.problem(path, "missing, expected a text or a map of language → text");
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.problem(path, "is empty, expected a text");
                None
            }
            Some(Value::String(s)) => Some(Label::Plain(s.clone())),
            Some(Value::Object(map)) => {
                let mut pairs = Vec::new();
                for (lang, text) in map {
                    let at = join(&path, lang);
                    if !self.languages.contains(lang) {
                        self.problem(
                            &at,
                            format!(
                                "language \"{lang}\" is not declared, expected one of: {}",
                                self.languages.join(", ")
                            ),
                        );
                        continue;
                    }
                    match text {
                        Value::String(s) if !s.trim().is_empty() => {
                            pairs.push((lang.clone(), s.clone()))
                        }
                        Value::String(_) => self.problem(&at, "is empty, expected a text"),
                        other => {
                            self.problem(&at, format!("expected a text, found {}", describe(other)))
                        }
                    }
                }
                for lang in self.languages.clone() {
                    if !map.contains_key(&lang) {
                        self.problem(
                            &path,
                            format!(
                                "has no \"{lang}\" text, expected one for every declared language ({})",
                                self.languages.join(", ")
                            ),
                        );
                    }
                }
                // Keep the form's language order so the first language is the fallback.
                pairs.sort_by_key(|(l, _)| self.languages.iter().position(|x| x == l));
                Some(Label::Translated(pairs))
            }
            Some(other) => {
                self.problem(
                    path,
                    format!(
                        "expected a text or a map of language → text, found {}",
                        describe(other)
                    ),
                );
                None
            }
        }
    }

    fn unique(
        &mut self,
        seen: &mut HashSet<String>,
        id: &Option<String>,
        path: String,
        what: &str,
    ) {
        if let Some(id) = id {
            if !seen.insert(id.clone()) {
                self.problem(
                    path,
                    format!("duplicate {what} \"{id}\", expected each to be used once"),
                );
            }
        }
    }

    fn form(&mut self, root: &Value) -> Form {
        const TOP: &[&str] = &[
            "id",
            "version",
            "title",
            "languages",
            "description",
            "scales",
            "units",
            "groups",
            "sections",
        ];
        let empty = Map::new();
        let o = self.object(root, "", "a form", TOP).unwrap_or(Obj {
            map: &empty,
            path: String::new(),
            allowed: TOP,
        });
        let id = self.id(&o, "id");
        let version = self.key_part(&o, "version", true);
        self.languages(&o);
        let title = self.label(&o, "title", true);
        let description = self.label(&o, "description", false);
        let scales = self.scales(&o);
        let units = self.units(&o);
        let groups = self.groups(&o);
        let sections = self.sections(&o, &scales, &units);
        let (sections, raws): (Vec<Section>, Vec<Vec<RawExprs>>) = sections.into_iter().unzip();
        let mut form = Form {
            id: id.unwrap_or_default(),
            version: version.unwrap_or_default(),
            title: title.unwrap_or(Label::Plain(String::new())),
            languages: self.languages.clone(),
            description,
            scales,
            units,
            groups,
            sections,
        };
        self.expressions(&mut form, raws);
        form
    }

    fn languages(&mut self, o: &Obj) {
        let list = self.array(o, "languages", true);
        if list.is_empty() && o.get("languages").is_some() {
            self.problem(
                o.at("languages"),
                "is empty, expected at least one language such as \"zh-CN\"",
            );
        }
        for (i, v) in list.iter().enumerate() {
            let at = format!("{}[{i}]", o.at("languages"));
            match v {
                Value::String(s) if !valid_language_tag(s) => self.problem(
                    at,
                    format!(
                        "{} is not a language tag, expected letters, digits and '-' such as \"zh-CN\"",
                        quoted(s)
                    ),
                ),
                Value::String(s) => {
                    if self.languages.contains(s) {
                        self.problem(at, format!("duplicate language \"{s}\""));
                    } else {
                        self.languages.push(s.clone());
                    }
                }
                other => self.problem(
                    at,
                    format!(
                        "expected a language tag such as \"zh-CN\", found {}",
                        describe(other)
                    ),
                ),
            }
        }
    }

    fn scales(&mut self, o: &Obj) -> Vec<Scale> {
        const SCALE: &[&str] = &["id", "label", "options"];
        const OPTION: &[&str] = &["code", "label", "score", "satisfied", "counted"];
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (i, v) in self.array(o, "scales", false).iter().enumerate() {
            let path = format!("{}[{i}]", o.at("scales"));
            let Some(so) = self.object(v, &path, "a scale", SCALE) else {
                continue;
            };
            let id = self.id(&so, "id");
            self.unique(&mut seen, &id, so.at("id"), "scale id");
            self.label(&so, "label", false);
            let mut options = Vec::new();
            let mut codes = HashSet::new();
            let list = self.array(&so, "options", true);
            if list.is_empty() && so.get("options").is_some() {
                self.problem(so.at("options"), "is empty, expected at least one option");
            }
            for (j, ov) in list.iter().enumerate() {
                let opath = format!("{}[{j}]", so.at("options"));
                let Some(oo) = self.object(ov, &opath, "an option", OPTION) else {
                    continue;
                };
                let code = self.code(&oo);
                self.unique(&mut codes, &code, oo.at("code"), "option code");
                let label = self.label(&oo, "label", true);
                let score = self.number(&oo, "score");
                let satisfied = self.boolean(&oo, "satisfied", false);
                let counted = self.boolean(&oo, "counted", true);
                if let (Some(code), Some(label)) = (code, label) {
                    options.push(ScaleOption {
                        code,
                        label,
                        score,
                        satisfied,
                        counted,
                    });
                }
            }
            if !list.is_empty()
                && !list
                    .iter()
                    .any(|v| v.get("counted") != Some(&Value::Bool(false)))
            {
                self.problem(
                    so.at("options"),
                    "every option has \"counted\": false, expected at least one counted option",
                );
            }
            if let Some(id) = id {
                out.push(Scale { id, options });
            }
        }
        out
    }

    fn code(&mut self, o: &Obj) -> Option<String> {
        let code = self.key_part(o, "code", true)?;
        if code.chars().any(char::is_whitespace) {
            self.problem(o.at("code"), format!("{} contains a space, expected a code without spaces (multi answers are joined with spaces)", quoted(&code)));
            return None;
        }
        Some(code)
    }

    fn units(&mut self, o: &Obj) -> Vec<Unit> {
        const UNIT: &[&str] = &["id", "name", "category"];
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (i, v) in self.array(o, "units", false).iter().enumerate() {
            let path = format!("{}[{i}]", o.at("units"));
            let Some(uo) = self.object(v, &path, "a unit", UNIT) else {
                continue;
            };
            let id = self.id(&uo, "id");
            self.unique(&mut seen, &id, uo.at("id"), "unit id");
            let name = self.label(&uo, "name", true);
            let category = self.key_part(&uo, "category", false);
            if let (Some(id), Some(name)) = (id, name) {
                out.push(Unit { id, name, category });
            }
        }
        out
    }

    fn groups(&mut self, o: &Obj) -> Vec<Group> {
        const GROUP: &[&str] = &["id", "label", "code_required"];
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let list = self.array(o, "groups", true);
        if list.is_empty() && o.get("groups").is_some() {
            self.problem(
                o.at("groups"),
                "is empty, expected at least one respondent group (评议主体)",
            );
        }
        for (i, v) in list.iter().enumerate() {
            let path = format!("{}[{i}]", o.at("groups"));
            let Some(go) = self.object(v, &path, "a respondent group", GROUP) else {
                continue;
            };
            let id = self.id(&go, "id");
            self.unique(&mut seen, &id, go.at("id"), "group id");
            let label = self.label(&go, "label", true);
            let code_required = self.boolean(&go, "code_required", false);
            if let (Some(id), Some(label)) = (id, label) {
                out.push(Group {
                    id,
                    label,
                    code_required,
                });
            }
        }
        out
    }

    fn sections(
        &mut self,
        o: &Obj,
        scales: &[Scale],
        units: &[Unit],
    ) -> Vec<(Section, Vec<RawExprs>)> {
        const SECTION: &[&str] = &["id", "title", "items"];
        let mut out = Vec::new();
        let mut section_ids = HashSet::new();
        let mut item_ids = HashSet::new();
        let list = self.array(o, "sections", true);
        if list.is_empty() && o.get("sections").is_some() {
            self.problem(o.at("sections"), "is empty, expected at least one section");
        }
        for (i, v) in list.iter().enumerate() {
            let path = format!("{}[{i}]", o.at("sections"));
            let Some(so) = self.object(v, &path, "a section", SECTION) else {
                continue;
            };
            let id = if so.get("id").is_some() {
                self.id(&so, "id")
            } else {
                Some(format!("s{}", i + 1))
            };
            self.unique(&mut section_ids, &id, so.at("id"), "section id");
            let title = self.label(&so, "title", true);
            let mut items = Vec::new();
            let mut raws = Vec::new();
            let list = self.array(&so, "items", true);
            if list.is_empty() && so.get("items").is_some() {
                self.problem(so.at("items"), "is empty, expected at least one item");
            }
            for (j, iv) in list.iter().enumerate() {
                let ipath = format!("{}[{j}]", so.at("items"));
                if let Some((item, raw)) = self.item(iv, &ipath, scales, units, &mut item_ids) {
                    items.push(item);
                    raws.push(raw);
                }
            }
            out.push((
                Section {
                    id: id.unwrap_or_default(),
                    title: title.unwrap_or(Label::Plain(String::new())),
                    items,
                },
                raws,
            ));
        }
        out
    }

    fn item(
        &mut self,
        v: &Value,
        path: &str,
        scales: &[Scale],
        units: &[Unit],
        item_ids: &mut HashSet<String>,
    ) -> Option<(Item, RawExprs)> {
        const ITEM: &[&str] = &[
            "id",
            "type",
            "label",
            "hint",
            "required",
            "relevant",
            "constraint",
            "constraint_message",
            "options",
            "scale",
            "multiline",
            "max_length",
            "min",
            "max",
            "integer",
            "units",
            "criteria",
        ];
        let io = self.object(v, path, "an item", ITEM)?;
        let id = self.id(&io, "id");
        self.unique(item_ids, &id, io.at("id"), "item id");
        if let Some(id) = id.as_deref().filter(|id| META_COLUMNS.contains(id)) {
            // The export would have two columns of that name and could not be read back.
            self.problem(
                io.at("id"),
                format!(
                    "\"{id}\" is a column of every export already, expected another id (not one of: {})",
                    META_COLUMNS.join(", ")
                ),
            );
        }
        if let Some(id) = &id {
            self.written_items.insert(id.clone());
        }
        let label = self.label(&io, "label", true);
        let hint = self.label(&io, "hint", false);
        let required = self.boolean(&io, "required", false);
        let raw = RawExprs {
            path: path.to_string(),
            relevant: self.string(&io, "relevant", false),
            constraint: self.string(&io, "constraint", false),
        };
        let constraint_message = self.label(&io, "constraint_message", false);
        let ty = self.string(&io, "type", true);
        let kind = match ty.as_deref() {
            None => None,
            Some("single") | Some("multi") => {
                let choices = self.choices(&io, scales);
                choices.map(|choices| {
                    if ty.as_deref() == Some("single") {
                        ItemKind::Single { choices }
                    } else {
                        ItemKind::Multi { choices }
                    }
                })
            }
            Some("text") => {
                let multiline = self.boolean(&io, "multiline", false);
                let max_length = match self.number(&io, "max_length") {
                    Some(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
                    Some(n) => {
                        self.problem(
                            io.at("max_length"),
                            format!("{n} is not a whole number of characters above 0"),
                        );
                        None
                    }
                    None => None,
                };
                Some(ItemKind::Text {
                    multiline,
                    max_length,
                })
            }
            Some("number") => {
                let min = self.number(&io, "min");
                let max = self.number(&io, "max");
                let integer = self.boolean(&io, "integer", false);
                if let (Some(lo), Some(hi)) = (min, max) {
                    if lo > hi {
                        self.problem(
                            io.at("min"),
                            format!("min {lo} is above max {hi}, expected min ≤ max"),
                        );
                    }
                }
                Some(ItemKind::Number { min, max, integer })
            }
            Some("rating") => self
                .scale_ref(&io, scales)
                .map(|scale| ItemKind::Rating { scale }),
            Some("appraisal") => {
                let scale = self.scale_ref(&io, scales);
                let unit_ids = self.appraisal_units(&io, units);
                let criteria = self.criteria(&io);
                match (scale, unit_ids, criteria) {
                    (Some(scale), Some(units), Some(criteria)) => Some(ItemKind::Appraisal {
                        scale,
                        units,
                        criteria,
                    }),
                    _ => None,
                }
            }
            Some(other) => {
                self.problem(
                    io.at("type"),
                    format!("unknown item type {}, expected one of: single, multi, text, number, rating, appraisal", quoted(other)),
                );
                None
            }
        };
        // Settings that belong to another type are mistakes worth naming.
        if let Some(kind) = &kind {
            let own: &[&str] = match kind {
                ItemKind::Single { .. } | ItemKind::Multi { .. } => &["options", "scale"],
                ItemKind::Text { .. } => &["multiline", "max_length"],
                ItemKind::Number { .. } => &["min", "max", "integer"],
                ItemKind::Rating { .. } => &["scale"],
                ItemKind::Appraisal { .. } => &["scale", "units", "criteria"],
            };
            for key in [
                "options",
                "scale",
                "multiline",
                "max_length",
                "min",
                "max",
                "integer",
                "units",
                "criteria",
            ] {
                if io.get(key).is_some() && !own.contains(&key) {
                    self.problem(
                        io.at(key),
                        format!("\"{key}\" does not apply to a {} item", kind.type_name()),
                    );
                }
            }
        }
        let (id, label, kind) = (id?, label?, kind?);
        Some((
            Item {
                id,
                label,
                hint,
                required,
                relevant: None,
                constraint: None,
                constraint_message,
                kind,
            },
            raw,
        ))
    }

    fn scale_ref(&mut self, io: &Obj, scales: &[Scale]) -> Option<String> {
        let name = self.string(io, "scale", true)?;
        if scales.iter().any(|s| s.id == name) {
            Some(name)
        } else {
            let known: Vec<&str> = scales.iter().map(|s| s.id.as_str()).collect();
            self.problem(
                io.at("scale"),
                format!(
                    "unknown scale {}, expected one of: {}",
                    quoted(&name),
                    if known.is_empty() {
                        "(no scales are defined)".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            );
            None
        }
    }

    fn choices(&mut self, io: &Obj, scales: &[Scale]) -> Option<Vec<Choice>> {
        const CHOICE: &[&str] = &["code", "label"];
        match (io.get("options"), io.get("scale")) {
            (Some(_), Some(_)) => {
                self.problem(
                    io.at("scale"),
                    "give either \"options\" or \"scale\", not both",
                );
                None
            }
            (None, Some(_)) => {
                let name = self.scale_ref(io, scales)?;
                let scale = scales.iter().find(|s| s.id == name)?;
                Some(
                    scale
                        .options
                        .iter()
                        .map(|o| Choice {
                            code: o.code.clone(),
                            label: o.label.clone(),
                        })
                        .collect(),
                )
            }
            (None, None) => {
                self.problem(
                    io.at("options"),
                    "missing, expected a list of options (or a \"scale\")",
                );
                None
            }
            (Some(_), None) => {
                let list = self.array(io, "options", true);
                if list.is_empty() {
                    self.problem(io.at("options"), "is empty, expected at least one option");
                    return None;
                }
                let mut out = Vec::new();
                let mut codes = HashSet::new();
                for (k, cv) in list.iter().enumerate() {
                    let cpath = format!("{}[{k}]", io.at("options"));
                    let Some(co) = self.object(cv, &cpath, "an option", CHOICE) else {
                        continue;
                    };
                    let code = self.code(&co);
                    self.unique(&mut codes, &code, co.at("code"), "option code");
                    let label = self.label(&co, "label", true);
                    if let (Some(code), Some(label)) = (code, label) {
                        out.push(Choice { code, label });
                    }
                }
                Some(out)
            }
        }
    }

    fn appraisal_units(&mut self, io: &Obj, units: &[Unit]) -> Option<Vec<String>> {
        let path = io.at("units");
        let all = || units.iter().map(|u| u.id.clone()).collect::<Vec<_>>();
        let ids = match io.get("units") {
            None => all(),
            Some(Value::String(s)) if s == "all" => all(),
            Some(Value::Array(list)) => {
                let mut ids = Vec::new();
                let mut seen = HashSet::new();
                for (k, v) in list.iter().enumerate() {
                    let at = format!("{path}[{k}]");
                    match v {
                        Value::String(s) if units.iter().any(|u| &u.id == s) => {
                            if seen.insert(s.clone()) {
                                ids.push(s.clone());
                            } else {
                                self.problem(
                                    at,
                                    format!("duplicate unit \"{s}\", expected each unit once"),
                                );
                            }
                        }
                        Value::String(s) => self.problem(
                            at,
                            format!("unknown unit {}, expected an id from \"units\"", quoted(s)),
                        ),
                        other => self
                            .problem(at, format!("expected a unit id, found {}", describe(other))),
                    }
                }
                ids
            }
            Some(Value::Object(map))
                if map.len() == 1 && map.get("category").is_some_and(Value::is_string) =>
            {
                let cat = map["category"].as_str().unwrap_or_default();
                let ids: Vec<String> = units
                    .iter()
                    .filter(|u| u.category.as_deref() == Some(cat))
                    .map(|u| u.id.clone())
                    .collect();
                if ids.is_empty() {
                    let cats: BTreeSet<&str> =
                        units.iter().filter_map(|u| u.category.as_deref()).collect();
                    self.problem(
                        format!("{path}.category"),
                        format!(
                            "no unit has category {}, expected one of: {}",
                            quoted(cat),
                            cats.into_iter().collect::<Vec<_>>().join(", ")
                        ),
                    );
                    return None;
                }
                ids
            }
            Some(other) => {
                self.problem(
                    &path,
                    format!(
                        "expected \"all\", a list of unit ids or {{\"category\": \"…\"}}, found {}",
                        describe(other)
                    ),
                );
                return None;
            }
        };
        if ids.is_empty() {
            self.problem(
                path,
                "the appraisal has no units, expected at least one unit to appraise",
            );
            return None;
        }
        Some(ids)
    }

    fn criteria(&mut self, io: &Obj) -> Option<Vec<Criterion>> {
        const CRIT: &[&str] = &["id", "label", "weight"];
        let list = self.array(io, "criteria", true);
        if list.is_empty() {
            if io.get("criteria").is_some() {
                self.problem(
                    io.at("criteria"),
                    "is empty, expected at least one criterion",
                );
            }
            return None;
        }
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for (k, cv) in list.iter().enumerate() {
            let cpath = format!("{}[{k}]", io.at("criteria"));
            let Some(co) = self.object(cv, &cpath, "a criterion", CRIT) else {
                continue;
            };
            let id = self.id(&co, "id");
            self.unique(&mut seen, &id, co.at("id"), "criterion id");
            let label = self.label(&co, "label", true);
            let weight = match co.get("weight") {
                None => Some(1.0),
                Some(_) => match self.number(&co, "weight") {
                    Some(w) if w >= 0.0 => Some(w),
                    Some(w) => {
                        self.problem(
                            co.at("weight"),
                            format!("{w} is negative, expected a weight ≥ 0"),
                        );
                        None
                    }
                    None => None,
                },
            };
            if let (Some(id), Some(label), Some(weight)) = (id, label, weight) {
                out.push(Criterion { id, label, weight });
            }
        }
        if !out.is_empty() && out.len() == list.len() && out.iter().all(|c| c.weight == 0.0) {
            self.problem(
                io.at("criteria"),
                "every weight is 0, expected at least one criterion with a weight above 0",
            );
        }
        Some(out)
    }

    fn expressions(&mut self, form: &mut Form, raws: Vec<Vec<RawExprs>>) {
        let mut parsed: Vec<Vec<(Option<Expression>, Option<Expression>)>> = Vec::new();
        for (section, raws) in form.sections.iter().zip(raws) {
            let mut row = Vec::new();
            for (item, raw) in section.items.iter().zip(raws) {
                let relevant = raw.relevant.as_ref().and_then(|src| {
                    let path = join(&raw.path, "relevant");
                    let e = self.expression(form, src, &path)?;
                    if e.uses_current() {
                        self.problem(
                            &path,
                            "'.' (the answer being checked) can only be used in a constraint",
                        );
                        return None;
                    }
                    if e.references().iter().any(|r| r.item == item.id) {
                        self.problem(
                            &path,
                            format!(
                                "refers to its own item ${{{}}}, expected other items only",
                                item.id
                            ),
                        );
                        return None;
                    }
                    Some(e)
                });
                let constraint = raw
                    .constraint
                    .as_ref()
                    .and_then(|src| self.expression(form, src, &join(&raw.path, "constraint")));
                row.push((relevant, constraint));
            }
            parsed.push(row);
        }
        for (section, row) in form.sections.iter_mut().zip(parsed) {
            for (item, (relevant, constraint)) in section.items.iter_mut().zip(row) {
                item.relevant = relevant;
                item.constraint = constraint;
            }
        }
    }

    fn expression(&mut self, form: &Form, src: &str, path: &str) -> Option<Expression> {
        let e = match Expression::parse(src) {
            Ok(e) => e,
            Err(err) => {
                self.problem(path, format!("{} does not parse: {err}", quoted(src)));
                return None;
            }
        };
        let mut ok = true;
        for r in e.references() {
            if let Err(msg) = form.resolve(r) {
                ok = false;
                if form.item(&r.item).is_some() || !self.written_items.contains(&r.item) {
                    self.problem(path, msg);
                }
            }
        }
        ok.then_some(e)
    }
}

/// Expression sources kept until every item id is known.
struct RawExprs {
    path: String,
    relevant: Option<String>,
    constraint: Option<String>,
}
