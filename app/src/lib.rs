//! Pingyi's form app: renders a form from the `analysis` model, in the browser.

use analysis::form::{Form, ItemKind, Section, DEFAULT_FORM_JSON};
use leptos::prelude::*;

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let form = Form::from_json("default form", DEFAULT_FORM_JSON)
        .expect("the embedded default form is valid");
    let lang = "zh-CN".to_string();
    let title = form.title.get(&lang).to_string();
    let sections: Vec<_> = form
        .sections
        .iter()
        .map(|s| section_view(&form, s, &lang))
        .collect();
    view! {
        <main>
            <h1 data-testid="form-title">{title}</h1>
            {sections}
        </main>
    }
}

fn section_view(form: &Form, section: &Section, lang: &str) -> impl IntoView {
    let items: Vec<_> = section
        .items
        .iter()
        .map(|item| {
            let grid = match &item.kind {
                ItemKind::Appraisal { units, criteria, .. } => {
                    let head: Vec<_> = criteria.iter().map(|c| view! { <th>{c.label.get(lang).to_string()}</th> }).collect();
                    let rows: Vec<_> = units
                        .iter()
                        .filter_map(|u| form.unit(u))
                        .map(|u| view! { <tr><th>{u.name.get(lang).to_string()}</th></tr> })
                        .collect();
                    Some(view! { <table><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table> })
                }
                _ => None,
            };
            view! { <section><h3>{item.label.get(lang).to_string()}</h3>{grid}</section> }
        })
        .collect();
    view! { <h2>{section.title.get(lang).to_string()}</h2>{items} }
}
