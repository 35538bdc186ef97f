//! `pingyi form`: check a form definition, or write out the built-in default form.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use analysis::form::{Form, ItemKind, DEFAULT_FORM_JSON};

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

const EXAMPLES: &str = "Examples:
  pingyi form check my-form.json
  pingyi form check --default
  pingyi form default -o my-form.json";

#[derive(clap::Subcommand)]
enum Action {
    /// Check a form and list every problem with its JSON path (exit 1 when there are any).
    #[command(
        after_help = "Examples:\n  pingyi form check my-form.json\n  pingyi form check --default"
    )]
    Check {
        /// The form definition (JSON).
        #[arg(required_unless_present = "default", conflicts_with = "default")]
        file: Option<PathBuf>,
        /// Check the built-in default 民主评议 form instead of a file.
        #[arg(long)]
        default: bool,
    },
    /// Write the built-in default form, a starting point for your own.
    #[command(
        after_help = "Examples:\n  pingyi form default -o my-form.json\n  pingyi form default | less"
    )]
    Default {
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Check { file, default } => check(file, default),
        Action::Default { output } => {
            match output {
                Some(path) => crate::output::write_bytes(&path, DEFAULT_FORM_JSON.as_bytes())?,
                None => std::io::stdout().write_all(DEFAULT_FORM_JSON.as_bytes())?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn check(file: Option<PathBuf>, default: bool) -> anyhow::Result<ExitCode> {
    let (name, text) = match (file, default) {
        (_, true) => ("default form".to_string(), DEFAULT_FORM_JSON.to_string()),
        (Some(path), false) => {
            let text = crate::input::read_text(&path)?;
            (path.display().to_string(), text)
        }
        (None, false) => unreachable!("clap requires a file or --default"),
    };
    let mut out = std::io::stdout().lock();
    match Form::from_json(&name, &text) {
        Ok(form) => {
            let items = form.items().count();
            let grids = form
                .items()
                .filter(|i| matches!(i.kind, ItemKind::Appraisal { .. }))
                .count();
            writeln!(
                out,
                "{name}: valid form \"{}\" version {} ({}): {} sections, {} items ({} appraisal grid{}), {} units, {} respondent groups, languages {}",
                form.id,
                form.version,
                form.title,
                form.sections.len(),
                items,
                grids,
                if grids == 1 { "" } else { "s" },
                form.units.len(),
                form.groups.len(),
                form.languages.join(", ")
            )?;
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            write!(out, "{problems}")?;
            Ok(ExitCode::from(1))
        }
    }
}
