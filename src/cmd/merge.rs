//! `pingyi merge`: exports from many devices (CSV and JSON, in any mix) into one file,
//! each ballot once, with a summary by device on standard error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analysis::files::{sniff, Kind};
use analysis::merge::Merger;
use analysis::{wide_csv, Form};
use anyhow::bail;
use pingyi_server::export::{Export, Format};

use super::score::load_form;

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Exports to merge: wide CSV (.csv) or JSON (.json), told apart by their content.
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    /// The merged file: CSV when it ends in .csv, JSON when it ends in .json.
    #[arg(short, long)]
    output: PathBuf,
    /// The form definition (JSON); the built-in 民主评议 form if left out.
    #[arg(long)]
    form: Option<PathBuf>,
}

const EXAMPLES: &str = "Examples:
  pingyi merge kiosk1.csv kiosk2.csv tablet.json -o all.csv
  pingyi merge day1.json day2.json -o week.json --form my-form.json";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut read: Vec<&Path> = args.files.iter().map(PathBuf::as_path).collect();
    read.extend(args.form.as_deref());
    crate::output::refuse_inputs(&args.output, &read)?;
    let form = load_form(args.form.as_deref())?;
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let format = match ext.as_deref() {
        Some("csv") => Format::Csv,
        Some("json") => Format::Json,
        _ => bail!(
            "{}: cannot tell the output format, expected a name ending in .csv or .json",
            args.output.display()
        ),
    };
    let merger = crate::output::write_atomically(&args.output, |w| {
        let name = args.output.display().to_string();
        let mut out = Export::new(&form, format, w, &name)?;
        let merger = merge_into(&form, &args.files, &mut out)?;
        out.finish()?;
        Ok(merger)
    })?;
    eprint!("{}", summary(&merger));
    eprintln!(
        "{}: {} ballots written, {} duplicates left out",
        args.output.display(),
        merger.kept(),
        merger.duplicates()
    );
    Ok(ExitCode::SUCCESS)
}

fn merge_into<W: Write>(
    form: &Form,
    files: &[PathBuf],
    out: &mut Export<'_, W>,
) -> anyhow::Result<Merger> {
    let mut merger = Merger::new();
    for path in files {
        let name = path.display().to_string();
        let idx = merger.file(&name);
        match sniff(path)? {
            Kind::BallotsCsv => {
                let f = crate::input::open_text(path)?;
                let mut reader = wide_csv::Reader::new(form, &name, f)?;
                while let Some(b) = reader.next_ballot() {
                    let b = b?;
                    let place = format!("{name}:{}", reader.line());
                    if merger.add(idx, &place, &b)? {
                        out.write(&b)?;
                    }
                }
            }
            Kind::BallotsJson => {
                let f = crate::input::open_text(path)?;
                let ballots = analysis::json::read_all(form, &name, f)?;
                for (i, b) in ballots.iter().enumerate() {
                    if merger.add(idx, &format!("{name}: [{i}]"), b)? {
                        out.write(b)?;
                    }
                }
            }
            Kind::Tally | Kind::Part => bail!(
                "{name}: is a tally or a part, not ballots; expected CSV or JSON exports (score tallies and parts with `pingyi score`)"
            ),
        }
    }
    Ok(merger)
}

fn summary(m: &Merger) -> String {
    let mut rows = vec![vec![
        "file".to_string(),
        "device".into(),
        "ballots".into(),
        "kept".into(),
        "duplicates".into(),
    ]];
    for ((file, device), c) in &m.summary {
        rows.push(vec![
            m.files[*file].clone(),
            device.clone(),
            c.read.to_string(),
            c.kept.to_string(),
            c.duplicates.to_string(),
        ]);
    }
    analysis::render::columns(&rows, &[false, false, true, true, true])
}
