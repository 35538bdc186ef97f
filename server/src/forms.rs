//! The forms this server collects: those given at start (added to the database) and every
//! form the database already holds, so ballots of older versions keep being accepted.
//! The first form given (or the built-in one) is the one served to the app.

use std::collections::BTreeMap;

use analysis::error::quoted;
use analysis::form::{Form, DEFAULT_FORM_JSON};

use crate::config::FormFile;
use crate::store::{FormRecord, Store, StoreError};

/// One collected form: parsed for checking ballots, and its definition as stored.
pub struct HeldForm {
    pub form: Form,
    pub json: String,
}

/// The collected forms by (id, version), and which one is served.
pub struct HeldForms {
    forms: BTreeMap<(String, String), HeldForm>,
    served: (String, String),
}

impl HeldForms {
    /// Checks the given forms, adds them to the store, and loads every form it holds.
    /// Checks the given forms (or the built-in one) without touching any database, and
    /// returns the definition the app will be served, so that a broken form stops the
    /// server before a database file is created for it.
    pub fn check(given: &[FormFile]) -> Result<String, String> {
        for file in given {
            Form::from_json(&file.source, &file.json).map_err(|p| p.to_string())?;
        }
        Ok(given
            .first()
            .map_or(DEFAULT_FORM_JSON, |f| f.json.as_str())
            .to_string())
    }

    pub async fn load(given: &[FormFile], store: &Store) -> Result<HeldForms, String> {
        let default = [FormFile {
            source: "the built-in form".to_string(),
            json: DEFAULT_FORM_JSON.to_string(),
        }];
        let given = if given.is_empty() {
            &default[..]
        } else {
            given
        };
        let mut served = None;
        let known: Vec<(String, String)> = store
            .forms()
            .await
            .map_err(|e| format!("cannot read the forms of the database: {e}"))?
            .into_iter()
            .map(|f| (f.id, f.version))
            .collect();
        for file in given {
            let form = Form::from_json(&file.source, &file.json).map_err(|p| p.to_string())?;
            let record = FormRecord {
                id: form.id.clone(),
                version: form.version.clone(),
                json: file.json.clone(),
            };
            store.add_form(&record).await.map_err(|e| match e {
                StoreError::FormChanged { id, version } => format!(
                    "{}: form {} version {} is already collected in the database with a different definition; give the changed form a new \"version\" so both are kept apart",
                    file.source,
                    quoted(&id),
                    quoted(&version)
                ),
                other => format!("cannot add the form {} to the database: {other}", file.source),
            })?;
            // A form version new to this database is a change to what is collected: it
            // goes into the audit log beside the officials' actions.
            if !known.contains(&(form.id.clone(), form.version.clone())) {
                let detail = format!(
                    "form {} version {} from {}",
                    form.id, form.version, file.source
                );
                store
                    .audit("pingyi serve", "cli", "form_added", &detail)
                    .await
                    .map_err(|e| format!("cannot write the audit log: {e}"))?;
            }
            served.get_or_insert((form.id, form.version));
        }
        let mut forms = BTreeMap::new();
        let records = store
            .forms()
            .await
            .map_err(|e| format!("cannot read the forms of the database: {e}"))?;
        for record in records {
            let source = format!(
                "the database's form {} version {}",
                record.id, record.version
            );
            let form = Form::from_json(&source, &record.json).map_err(|p| p.to_string())?;
            forms.insert(
                (record.id, record.version),
                HeldForm {
                    form,
                    json: record.json,
                },
            );
        }
        let served = served.expect("at least one form is given");
        if !forms.contains_key(&served) {
            return Err(format!(
                "the database did not keep the form {} version {}",
                served.0, served.1
            ));
        }
        Ok(HeldForms { forms, served })
    }

    /// The form a ballot names, or why it is not collected here.
    pub fn find(&self, id: &str, version: &str) -> Result<&HeldForm, String> {
        self.get(id, version).ok_or_else(|| {
            let known: Vec<String> = self
                .forms
                .keys()
                .map(|(id, v)| format!("{id} version {v}"))
                .collect();
            format!(
                "form {} version {} is not collected here; forms collected: {}",
                quoted(id),
                quoted(version),
                known.join(", ")
            )
        })
    }

    /// The form with this id and version.
    pub fn get(&self, id: &str, version: &str) -> Option<&HeldForm> {
        self.forms.get(&(id.to_string(), version.to_string()))
    }

    /// The served form.
    pub fn served(&self) -> &HeldForm {
        &self.forms[&self.served]
    }

    /// Every form, with whether it is the served one.
    pub fn iter(&self) -> impl Iterator<Item = (&HeldForm, bool)> {
        self.forms
            .iter()
            .map(|(key, held)| (held, *key == self.served))
    }
}
