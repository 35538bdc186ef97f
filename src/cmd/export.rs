//! `pingyi export`: the ballots a collection server stored, written back out as one
//! export file, the same wide CSV or JSON that a device and `pingyi merge` write.
//! Rows are read and written one at a time (never collected), so a campaign of any
//! size exports in little memory; the file appears only when complete. The writing is
//! the server's (`pingyi_server::export`), so the console's export has the same bytes.

use std::path::PathBuf;
use std::process::ExitCode;

use analysis::Form;
use anyhow::bail;
use pingyi_server::export::{Export, ExportError, Format};
use pingyi_server::store::{Database, ReadError, Reader, StoredForm};

use super::score::load_form;

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The database `pingyi serve` stored the ballots in: sqlite:PATH, a file path, or
    /// postgres://USER@HOST:PORT/DATABASE.
    #[arg(long, value_name = "URL")]
    database: String,
    /// The file to write: CSV when it ends in .csv, JSON when it ends in .json.
    #[arg(short, long)]
    output: PathBuf,
    /// The form definition (JSON): exports the ballots of its id and version, in its
    /// columns. Without it, the form as the database holds it.
    #[arg(long)]
    form: Option<PathBuf>,
    /// Which form, when the database collects several.
    #[arg(long, value_name = "ID")]
    form_id: Option<String>,
    /// Which version, when the database holds ballots of several versions of the form.
    #[arg(long, value_name = "VERSION")]
    form_version: Option<String>,
}

const EXAMPLES: &str = "Examples:
  pingyi export --database sqlite:campaign.db -o all.csv
  pingyi export --database campaign.db -o all.json --form-id minzhu-pingyi --form-version 2
  pingyi export --database postgres://pingyi@db.example/campaign -o all.csv --form my-form.json";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let db = Database::parse(&args.database)?;
    if let Database::Sqlite(path) = &db {
        let mut read = vec![path.as_path()];
        read.extend(args.form.as_deref());
        crate::output::refuse_inputs(&args.output, &read)?;
    }
    let json = match args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase())
        .as_deref()
    {
        Some("csv") => false,
        Some("json") => true,
        _ => bail!(
            "{}: cannot tell the output format, expected a name ending in .csv or .json",
            args.output.display()
        ),
    };
    let mut reader = Reader::open(&db)?;
    let stored = reader.forms()?;
    let form = choose_form(&args, reader.name(), &stored)?;
    let format = if json { Format::Json } else { Format::Csv };
    let written = crate::output::write_atomically(&args.output, |w| {
        let name = reader.name().to_string();
        let mut export = Export::new(&form, format, w, &name)?;
        copy_ballots(&mut reader, &mut export, args.form.is_some())?;
        let (_, n) = export.finish()?;
        Ok(n)
    })?;
    eprintln!(
        "{}: {written} ballots of form {} version {} written from {}",
        args.output.display(),
        form.id,
        form.version,
        reader.name()
    );
    let others: Vec<String> = stored
        .iter()
        .filter(|f| f.ballots > 0 && !(f.form.id == form.id && f.form.version == form.version))
        .map(|f| {
            format!(
                "--form-id {} --form-version {} ({} ballots)",
                f.form.id, f.form.version, f.ballots
            )
        })
        .collect();
    if !others.is_empty() {
        eprintln!(
            "{}: also holds ballots of other forms or versions, each exported on its own: {}",
            reader.name(),
            others.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Streams the ballots of the export's form from the database into it. A ballot that
/// does not fit the form given with --form is refused (its answers would be lost).
fn copy_ballots(
    reader: &mut Reader,
    export: &mut Export<'_, &mut dyn std::io::Write>,
    form_given: bool,
) -> anyhow::Result<()> {
    let (id, version) = (export.form().id.clone(), export.form().version.clone());
    let copied = reader.ballots(&id, &version, |json| -> anyhow::Result<()> {
        export.ballot(json).map_err(|e| match e {
            ExportError::Misfit { .. } if form_given => anyhow::anyhow!(
                "{e} (the form given does not fit the ballots stored for it; export with the \
                 form as the database holds it, without --form)"
            ),
            other => other.into(),
        })
    });
    match copied {
        Ok(()) => Ok(()),
        Err(ReadError::Store(e)) => Err(e.into()),
        Err(ReadError::Stopped(e)) => Err(e),
    }
}

/// The form to export: the one given with --form, else the one the database holds
/// (narrowed by --form-id / --form-version when it holds several).
fn choose_form(args: &Args, db: &str, stored: &[StoredForm]) -> anyhow::Result<Form> {
    let listed = |forms: &[&StoredForm]| {
        forms
            .iter()
            .map(|f| {
                format!(
                    "{} version {} ({} ballots)",
                    f.form.id, f.form.version, f.ballots
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(path) = &args.form {
        let form = load_form(Some(path))?;
        for (flag, given, actual) in [
            ("--form-id", &args.form_id, &form.id),
            ("--form-version", &args.form_version, &form.version),
        ] {
            if let Some(given) = given.as_ref().filter(|g| *g != actual) {
                bail!(
                    "{flag} {given} disagrees with {} ({actual}); give one or the other",
                    path.display()
                );
            }
        }
        if !stored
            .iter()
            .any(|f| f.form.id == form.id && f.form.version == form.version)
        {
            bail!(
                "{db}: does not collect form {} version {} (from {}); it holds: {}",
                form.id,
                form.version,
                path.display(),
                listed(&stored.iter().collect::<Vec<_>>())
            );
        }
        return Ok(form);
    }
    let fits = |f: &&StoredForm| {
        args.form_id.as_ref().is_none_or(|id| *id == f.form.id)
            && args
                .form_version
                .as_ref()
                .is_none_or(|v| *v == f.form.version)
    };
    let candidates: Vec<&StoredForm> = stored.iter().filter(fits).collect();
    let chosen = match candidates.as_slice() {
        [one] => *one,
        [] if stored.is_empty() => {
            bail!("{db}: holds no form yet, expected a database that `pingyi serve` collected into")
        }
        [] => bail!(
            "{db}: holds no form{}{}; it holds: {}",
            args.form_id
                .as_ref()
                .map(|id| format!(" {id}"))
                .unwrap_or_default(),
            args.form_version
                .as_ref()
                .map(|v| format!(" version {v}"))
                .unwrap_or_default(),
            listed(&stored.iter().collect::<Vec<_>>())
        ),
        several => {
            let ids: std::collections::BTreeSet<&str> =
                several.iter().map(|f| f.form.id.as_str()).collect();
            let flag = if ids.len() > 1 {
                "--form-id ID"
            } else {
                "--form-version VERSION"
            };
            bail!(
                "{db}: holds several forms, expected {flag} to choose one (each version is \
                 exported on its own, in its own columns): {}",
                listed(several)
            )
        }
    };
    let source = format!(
        "{db}: form {} version {}",
        chosen.form.id, chosen.form.version
    );
    Ok(Form::from_json(&source, &chosen.form.json)?)
}
