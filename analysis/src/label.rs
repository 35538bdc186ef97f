//! Labels shown to people: one string for every language, or a map language → string.

use std::fmt;

/// A label: either the same text in every language, or one text per language
/// (`{"zh-CN": "服务态度", "en": "Service attitude"}`), kept in the order written.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// The same text whatever the language (proper names, numbers).
    Plain(String),
    /// Language tag → text, in the order the form gives them.
    Translated(Vec<(String, String)>),
}

impl Label {
    /// The text for `lang`; falls back to the first translation (the form's first language)
    /// so that a screen never shows an empty label.
    pub fn get(&self, lang: &str) -> &str {
        match self {
            Label::Plain(s) => s,
            Label::Translated(map) => map
                .iter()
                .find(|(l, _)| l == lang)
                .or_else(|| map.first())
                .map(|(_, s)| s.as_str())
                .unwrap_or(""),
        }
    }

    /// Whether the label has its own text for `lang` (a plain label has it for every language).
    pub fn has(&self, lang: &str) -> bool {
        match self {
            Label::Plain(_) => true,
            Label::Translated(map) => map.iter().any(|(l, _)| l == lang),
        }
    }

    /// Builds a label from pairs, for code that makes forms (tests, generators).
    pub fn translated(pairs: &[(&str, &str)]) -> Label {
        Label::Translated(
            pairs
                .iter()
                .map(|(l, s)| (l.to_string(), s.to_string()))
                .collect(),
        )
    }
}

impl fmt::Display for Label {
    /// Shows the first language's text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Plain(s) => f.write_str(s),
            Label::Translated(map) => {
                f.write_str(map.first().map(|(_, s)| s.as_str()).unwrap_or(""))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translated_label_falls_back_to_first_language() {
        let l = Label::translated(&[("zh-CN", "服务态度"), ("en", "Service attitude")]);
        assert_eq!(l.get("en"), "Service attitude");
        assert_eq!(l.get("fr"), "服务态度");
        assert!(l.has("zh-CN"));
        assert!(!l.has("fr"));
        assert!(Label::Plain("110".into()).has("fr"));
    }
}
