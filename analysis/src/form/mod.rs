//! The form definition: scales, appraised units, respondent groups, sections and items.
//!
//! A [`Form`] can only be had through [`Form::from_json`], which checks everything and
//! lists every problem with its JSON path, so code that holds a `Form` may rely on it:
//! ids are unique, scales exist, expressions parse and name existing items, weights are
//! finite and not negative, every label has every declared language.

mod parse;

use crate::error::Problems;
use crate::expr::{Expression, Reference};
use crate::label::Label;

/// The embedded default form: a 民主评议 questionnaire on eight city departments.
pub const DEFAULT_FORM_JSON: &str = include_str!("default_form.json");

/// A questionnaire that has passed every check.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    /// Stable identifier, stored in every ballot.
    pub id: String,
    /// Version, stored in every ballot.
    pub version: String,
    /// Title shown on the start screen.
    pub title: Label,
    /// Declared languages, first is the default (`zh-CN`, then `en`).
    pub languages: Vec<String>,
    /// 说明: the privacy and anonymity notice shown before the first question.
    pub description: Option<Label>,
    /// Named answer scales.
    pub scales: Vec<Scale>,
    /// 被评议单位: the appraised units.
    pub units: Vec<Unit>,
    /// 评议主体: the respondent groups.
    pub groups: Vec<Group>,
    /// Pages of questions, in order.
    pub sections: Vec<Section>,
}

/// A named answer scale (e.g. 非常满意 … 非常不满意 plus 不了解).
#[derive(Debug, Clone, PartialEq)]
pub struct Scale {
    /// Name that items refer to.
    pub id: String,
    /// Options in the order shown.
    pub options: Vec<ScaleOption>,
}

/// One answer on a scale.
#[derive(Debug, Clone, PartialEq)]
pub struct ScaleOption {
    /// What is stored in ballots and exports.
    pub code: String,
    /// What people see.
    pub label: Label,
    /// Points for scoring, on the scale's own range (e.g. 0–100).
    pub score: Option<f64>,
    /// Whether it counts toward 满意率.
    pub satisfied: bool,
    /// False for 不了解 / 不评价: excluded from every denominator.
    pub counted: bool,
}

/// 被评议单位: a unit being appraised.
#[derive(Debug, Clone, PartialEq)]
pub struct Unit {
    /// Identifier used in exports (`appr.gaj.attitude`).
    pub id: String,
    /// Display name.
    pub name: Label,
    /// Optional category (窗口单位 / 非窗口单位) for separate rankings.
    pub category: Option<String>,
}

/// 评议主体: a respondent group.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// Identifier stored in ballots.
    pub id: String,
    /// Display label.
    pub label: Label,
    /// Each respondent needs a one-time 投票码 (JSON `"code_required": true`; absent is
    /// false). The app asks for it; only the server checks whether it was issued and unused.
    pub code_required: bool,
}

/// A page of items.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    /// Identifier (optional in the JSON; `s1`, `s2` … when absent).
    pub id: String,
    /// Page title.
    pub title: Label,
    /// Questions on this page, in order.
    pub items: Vec<Item>,
}

/// A question.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Identifier, unique in the form, used in expressions and exports.
    pub id: String,
    /// The question.
    pub label: Label,
    /// A help line under the question.
    pub hint: Option<Label>,
    /// Must be answered when relevant (for a grid: every cell).
    pub required: bool,
    /// Shown only when this is true.
    pub relevant: Option<Expression>,
    /// The answer must make this true (`.` is the answer).
    pub constraint: Option<Expression>,
    /// Shown when the constraint fails.
    pub constraint_message: Option<Label>,
    /// The item type and its own settings.
    pub kind: ItemKind,
}

/// An option of a single or multi choice item.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    /// What is stored.
    pub code: String,
    /// What people see.
    pub label: Label,
}

/// A criterion of an appraisal grid (服务态度, 办事效率 …).
#[derive(Debug, Clone, PartialEq)]
pub struct Criterion {
    /// Identifier used in exports.
    pub id: String,
    /// Display label.
    pub label: Label,
    /// Weight when criteria are combined; finite and ≥ 0.
    pub weight: f64,
}

/// Item types.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    /// One choice among options.
    Single {
        /// Options, inline or copied from a named scale.
        choices: Vec<Choice>,
    },
    /// Any number of choices.
    Multi {
        /// Options, inline or copied from a named scale.
        choices: Vec<Choice>,
    },
    /// Free text.
    Text {
        /// Several lines (意见建议) rather than one.
        multiline: bool,
        /// Longest answer accepted, in characters.
        max_length: Option<usize>,
    },
    /// A number.
    Number {
        /// Smallest accepted.
        min: Option<f64>,
        /// Largest accepted.
        max: Option<f64>,
        /// Whole numbers only.
        integer: bool,
    },
    /// One question answered on a named scale.
    Rating {
        /// The scale's id.
        scale: String,
    },
    /// A grid: for every listed unit, one answer per criterion on a named scale.
    Appraisal {
        /// The scale's id.
        scale: String,
        /// Unit ids, resolved from "all", a list or a category.
        units: Vec<String>,
        /// Criteria with weights.
        criteria: Vec<Criterion>,
    },
}

impl ItemKind {
    /// The type name as written in the JSON.
    pub fn type_name(&self) -> &'static str {
        match self {
            ItemKind::Single { .. } => "single",
            ItemKind::Multi { .. } => "multi",
            ItemKind::Text { .. } => "text",
            ItemKind::Number { .. } => "number",
            ItemKind::Rating { .. } => "rating",
            ItemKind::Appraisal { .. } => "appraisal",
        }
    }
}

/// What a `${…}` reference points at, once resolved against the form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target<'a> {
    /// A whole item (for a grid: every cell).
    Item(&'a Item),
    /// One unit's row of a grid.
    Unit(&'a Item, &'a str),
    /// One criterion's column of a grid.
    Criterion(&'a Item, &'a str),
    /// One cell of a grid.
    Cell(&'a Item, &'a str, &'a str),
}

impl Form {
    /// Parses and checks a form; on failure every problem is listed with its JSON path,
    /// and JSON syntax errors keep their line and column.
    pub fn from_json(source_name: &str, text: &str) -> Result<Form, Problems> {
        parse::parse_form(source_name, text)
    }

    /// The embedded default 民主评议 form.
    pub fn default_form() -> Form {
        // The default form is checked by a unit test, so this cannot fail in a build that passed.
        Form::from_json("default form", DEFAULT_FORM_JSON)
            .expect("the embedded default form is valid")
    }

    /// Every item in form order.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.sections.iter().flat_map(|s| s.items.iter())
    }

    /// The item with this id.
    pub fn item(&self, id: &str) -> Option<&Item> {
        self.items().find(|i| i.id == id)
    }

    /// The scale with this id.
    pub fn scale(&self, id: &str) -> Option<&Scale> {
        self.scales.iter().find(|s| s.id == id)
    }

    /// The unit with this id.
    pub fn unit(&self, id: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == id)
    }

    /// The group with this id.
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups.iter().find(|g| g.id == id)
    }

    /// Resolves a reference: `${item}`, `${grid.unit}`, `${grid.criterion}`, `${grid.unit.criterion}`.
    pub fn resolve<'a>(&'a self, r: &'a Reference) -> Result<Target<'a>, String> {
        let item = self
            .item(&r.item)
            .ok_or_else(|| format!("{r} names no item of this form"))?;
        match (&item.kind, r.parts.as_slice()) {
            (_, []) => Ok(Target::Item(item)),
            (
                ItemKind::Appraisal {
                    units, criteria, ..
                },
                [one],
            ) => {
                let is_unit = units.iter().any(|u| u == one);
                let is_crit = criteria.iter().any(|c| &c.id == one);
                match (is_unit, is_crit) {
                    (true, false) => Ok(Target::Unit(item, one)),
                    (false, true) => Ok(Target::Criterion(item, one)),
                    (true, true) => Err(format!(
                        "{r} is ambiguous: \"{one}\" is both a unit and a criterion of {}",
                        item.id
                    )),
                    (false, false) => Err(format!(
                        "{r}: \"{one}\" is neither a unit nor a criterion of appraisal item {}",
                        item.id
                    )),
                }
            }
            (
                ItemKind::Appraisal {
                    units, criteria, ..
                },
                [u, c],
            ) => {
                if !units.iter().any(|x| x == u) {
                    return Err(format!(
                        "{r}: \"{u}\" is not a unit of appraisal item {}",
                        item.id
                    ));
                }
                if !criteria.iter().any(|x| &x.id == c) {
                    return Err(format!(
                        "{r}: \"{c}\" is not a criterion of appraisal item {}",
                        item.id
                    ));
                }
                Ok(Target::Cell(item, u, c))
            }
            (kind, _) => Err(format!(
                "{r}: only appraisal items have parts after a dot, {} is a {} item",
                item.id,
                kind.type_name()
            )),
        }
    }
}

impl Item {
    /// The options an answer may take: choices, or the codes of the item's scale.
    pub fn codes<'a>(&'a self, form: &'a Form) -> Vec<&'a str> {
        match &self.kind {
            ItemKind::Single { choices } | ItemKind::Multi { choices } => {
                choices.iter().map(|c| c.code.as_str()).collect()
            }
            ItemKind::Rating { scale } | ItemKind::Appraisal { scale, .. } => form
                .scale(scale)
                .map(|s| s.options.iter().map(|o| o.code.as_str()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }
}

impl Scale {
    /// The option with this code.
    pub fn option(&self, code: &str) -> Option<&ScaleOption> {
        self.options.iter().find(|o| o.code == code)
    }
}

#[cfg(test)]
mod tests;
