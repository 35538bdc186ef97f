//! Pingyi's form app: renders any valid form from the `analysis` model, keeps every
//! answer and every submitted ballot on the device, works offline, has a kiosk mode and an
//! administrator panel. Logic lives in plain structs ([`model`], [`store`]); the
//! components in [`ui`] stay thin and reach shared state through one [`Ctx`].

pub mod i18n;
pub mod model;
pub mod outbox;
pub mod platform;
pub mod store;
mod ui;

pub use ui::App;

use std::sync::Arc;

use analysis::form::Form;

/// Where the form in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormSource {
    /// `form.json` next to the app (from the server, or the service worker's copy).
    Server,
    /// Loaded by an administrator on this device.
    Admin,
    /// The built-in default, when neither of the others could be read.
    BuiltIn,
}

/// A checked form with its text (stored beside ballots) and key.
#[derive(Debug, Clone)]
pub struct LoadedForm {
    /// The form.
    pub form: Form,
    /// Its JSON text, stored with the ballots taken on it.
    pub json: String,
    /// `id@version`.
    pub key: String,
    /// Where it came from.
    pub source: FormSource,
}

impl LoadedForm {
    /// Parses and checks `json`.
    pub fn parse(
        name: &str,
        json: String,
        source: FormSource,
    ) -> Result<Arc<LoadedForm>, analysis::error::Problems> {
        let form = Form::from_json(name, &json)?;
        let key = store::form_key(&form);
        Ok(Arc::new(LoadedForm {
            form,
            json,
            key,
            source,
        }))
    }
}
