//! `pingyi assess`: the annual assessment (年度考核) from a score report, other components,
//! deductions and the `[assessment]` section of the rules.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analysis::assess::{assess, read_components, read_deductions};
use analysis::score::Report;
use anyhow::bail;

use super::score::{format_of, load_form, load_rules, write_output, Format};

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The score report written by `pingyi score --format json`.
    #[arg(long)]
    scores: PathBuf,
    /// Other components, a CSV `unit,component,value`.
    #[arg(long)]
    components: PathBuf,
    /// The rules file with an [assessment] section.
    #[arg(long)]
    rules: PathBuf,
    /// Deductions, a CSV `unit,kind,count` (督办, 催办, 查办 … as named in the rules).
    #[arg(long)]
    deductions: Option<PathBuf>,
    /// The form definition (JSON); the built-in 民主评议 form if left out.
    #[arg(long)]
    form: Option<PathBuf>,
    /// Output format; guessed from the extension of -o, else a table.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
}

const EXAMPLES: &str = "Examples:
  pingyi score ballots.csv --rules analysis/rules/annual-1000.toml -o scores.json
  pingyi assess --scores scores.json --components components.csv --rules analysis/rules/annual-1000.toml
  pingyi assess --scores scores.json --components c.csv --deductions d.csv --rules r.toml -o total.csv";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.output {
        let mut read: Vec<&Path> = vec![
            args.scores.as_path(),
            args.components.as_path(),
            args.rules.as_path(),
        ];
        read.extend(args.deductions.as_deref());
        read.extend(args.form.as_deref());
        crate::output::refuse_inputs(out, &read)?;
    }
    let form = load_form(args.form.as_deref())?;
    let rules = load_rules(Some(&args.rules), &form)?;
    let Some(a) = &rules.rules.assessment else {
        bail!(
            "{}: has no [assessment] section, expected one saying how the appraisal becomes points",
            args.rules.display()
        );
    };
    let scores_name = args.scores.display().to_string();
    let text = crate::input::read_text(&args.scores)?;
    let report: Report = serde_json::from_str(&text).map_err(|e| {
        anyhow::anyhow!(
            "{scores_name}:{}:{}: {}; expected the JSON written by `pingyi score --format json`",
            e.line(),
            e.column(),
            analysis::error::json_message(&e)
        )
    })?;
    if report.form_id != form.id {
        bail!(
            "{scores_name}: scores of form {}, expected form {} (give the form with --form)",
            analysis::error::quoted(&report.form_id),
            analysis::error::quoted(&form.id)
        );
    }
    let comp_name = args.components.display().to_string();
    let f = crate::input::open_text(&args.components)?;
    let components = read_components(&comp_name, f, a, &report)?;
    let deductions = match &args.deductions {
        None => Default::default(),
        Some(p) => {
            let name = p.display().to_string();
            let f = crate::input::open_text(p)?;
            read_deductions(&name, f, a, &report)?
        }
    };
    let result = assess(&report, a, &components, &deductions, &comp_name)?;
    let decimals = rules.rules.output.score_decimals;
    let text = match format_of(args.format, args.output.as_deref(), Format::Table) {
        Format::Json => serde_json::to_string_pretty(&result)? + "\n",
        Format::Csv => analysis::assess::to_csv(&result, decimals),
        Format::Table => analysis::assess::to_table(&result, decimals),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
