//! `pingyi build`: build the form app (and the officials' console under `admin/`) into a
//! folder ready for any static web server.

use std::path::PathBuf;

use analysis::form::{Form, DEFAULT_FORM_JSON};

use crate::site;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  pingyi build                        build pkg/ with the default 民主评议 form
  pingyi build --form my-form.json    build pkg/ that starts with your own form")]
pub struct Args {
    /// The form the app starts with (default: the built-in 民主评议 questionnaire).
    #[arg(long, value_name = "FILE")]
    pub form: Option<PathBuf>,
    /// The site folder to write into.
    #[arg(long, value_name = "DIR")]
    pub pkg: Option<PathBuf>,
}

/// Reads and checks the chosen form, returning its text.
pub fn form_text(form: Option<&PathBuf>) -> anyhow::Result<String> {
    match form {
        None => Ok(DEFAULT_FORM_JSON.to_string()),
        Some(path) => {
            let text = crate::input::read_text(path)?;
            Form::from_json(&path.display().to_string(), &text)
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            Ok(text)
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let text = form_text(args.form.as_ref())?;
    let pkg = args.pkg.unwrap_or_else(site::default_pkg_dir);
    site::build(&pkg, &text)?;
    println!(
        "pingyi: the app is ready in {} (the officials' console in {})",
        pkg.display(),
        pkg.join("admin").display()
    );
    Ok(())
}
