//! `pingyi generate`: synthetic ballots for trying the scorer and for benchmarks.

use std::path::PathBuf;
use std::process::ExitCode;

use analysis::synth::Generator;
use analysis::wide_csv;

use super::score::load_form;

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// How many ballots.
    #[arg(long, default_value_t = 1000)]
    ballots: u64,
    /// Where to write: CSV when the name ends in .csv, JSON when it ends in .json.
    #[arg(short, long)]
    output: PathBuf,
    /// The seed; the same seed gives the same ballots.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The form definition (JSON); the built-in 民主评议 form if left out.
    #[arg(long)]
    form: Option<PathBuf>,
}

const EXAMPLES: &str = "Examples:
  pingyi generate --ballots 1000000 -o big.csv
  pingyi generate --ballots 50 --seed 7 -o sample.json";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let read: Vec<&std::path::Path> = args.form.as_deref().into_iter().collect();
    crate::output::refuse_inputs(&args.output, &read)?;
    let form = load_form(args.form.as_deref())?;
    let mut g = Generator::new(&form, args.seed);
    let name = args.output.display().to_string();
    let json = args
        .output
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    crate::output::write_atomically(&args.output, |out| {
        if json {
            out.write_all(b"[")?;
            for i in 0..args.ballots {
                out.write_all(if i == 0 { b"\n" } else { b",\n" })?;
                serde_json::to_writer_pretty(&mut *out, &g.ballot())?;
            }
            out.write_all(b"\n]\n")?;
        } else {
            let mut w = wide_csv::Writer::new(&form, out)?;
            for _ in 0..args.ballots {
                w.write(&g.ballot())?;
            }
            w.finish()?;
        }
        Ok(())
    })?;
    eprintln!(
        "{name}: {} ballots of form {}",
        args.ballots,
        analysis::error::quoted(&form.id)
    );
    Ok(ExitCode::SUCCESS)
}
