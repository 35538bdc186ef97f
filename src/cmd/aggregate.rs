//! `pingyi aggregate`: fold inputs into a part (histograms and moments) that
//! `pingyi score` merges by addition with other parts and files.

use std::path::PathBuf;
use std::process::ExitCode;

use super::score::{inputs, load_form, load_rules, read_inputs, write_output};

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Ballots (wide CSV or JSON), tally CSV files, other parts, or collection databases
    /// (sqlite:PATH, a .db file, postgres://…).
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    /// Where to write the part (JSON).
    #[arg(short, long)]
    output: PathBuf,
    /// The form definition (JSON); the built-in 民主评议 form if left out.
    #[arg(long)]
    form: Option<PathBuf>,
    /// The rules file (TOML): the part records the points, validity and careless settings
    /// it was made under, and `pingyi score` needs the same ones.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Threads for large CSV files (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

const EXAMPLES: &str = "Examples:
  pingyi aggregate district1/*.csv -o part1.json --rules rules.toml
  pingyi aggregate district2/*.csv -o part2.json --rules rules.toml
  pingyi aggregate sqlite:county.db -o county-part.json --rules rules.toml
  pingyi score part1.json part2.json --rules rules.toml";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let read = inputs(&args.files, args.form.as_deref(), args.rules.as_deref());
    crate::output::refuse_inputs(&args.output, &read)?;
    let form = load_form(args.form.as_deref())?;
    let rules = load_rules(args.rules.as_deref(), &form)?;
    let agg = read_inputs(&form, &rules, &args.files, args.threads)?;
    write_output(Some(&args.output), &agg.to_json())?;
    let b = &agg.ballots;
    eprintln!(
        "{}: {} ballot rows ({} duplicates, {} invalid), {} tally votes",
        args.output.display(),
        b.total,
        b.duplicates,
        b.invalid_total(),
        b.tally_votes
    );
    Ok(ExitCode::SUCCESS)
}
