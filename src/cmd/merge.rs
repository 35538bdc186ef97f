//! `pingyi merge`: exports from many devices (CSV and JSON, in any mix) into one file,
//! each ballot once, with a summary by device on standard error.

use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analysis::files::{sniff, Kind};
use analysis::merge::Merger;
use analysis::{wide_csv, Ballot, Form};
use anyhow::{bail, Context};

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

enum Out<'f> {
    Csv(Box<wide_csv::Writer<'f, BufWriter<File>>>),
    Json { w: BufWriter<File>, first: bool },
}

impl Out<'_> {
    fn write(&mut self, b: &Ballot) -> std::io::Result<()> {
        match self {
            Out::Csv(w) => w.write(b),
            Out::Json { w, first } => {
                w.write_all(if *first { b"[\n" } else { b",\n" })?;
                *first = false;
                serde_json::to_writer_pretty(&mut *w, b)?;
                Ok(())
            }
        }
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Out::Csv(w) => (*w).finish()?.flush(),
            Out::Json { mut w, first } => {
                w.write_all(if first { b"[]\n" } else { b"\n]\n" })?;
                w.flush()
            }
        }
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let form = load_form(args.form.as_deref())?;
    let ext = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(|e| e.to_ascii_lowercase());
    let json = match ext.as_deref() {
        Some("csv") => false,
        Some("json") => true,
        _ => bail!(
            "{}: cannot tell the output format, expected a name ending in .csv or .json",
            args.output.display()
        ),
    };
    for f in &args.files {
        if same_file(f, &args.output) {
            bail!(
                "{}: is both an input and the output, expected a new file for -o",
                f.display()
            );
        }
    }
    let tmp = args
        .output
        .with_extension(format!("{}.partial", ext.as_deref().unwrap_or("out")));
    let file = File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    let mut out = if json {
        Out::Json {
            w: BufWriter::new(file),
            first: true,
        }
    } else {
        Out::Csv(Box::new(wide_csv::Writer::new(
            &form,
            BufWriter::new(file),
        )?))
    };
    let result = merge_into(&form, &args.files, &mut out);
    let merger = match result {
        Ok(m) => m,
        Err(e) => {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
    };
    out.finish()
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.output)
        .with_context(|| format!("cannot write {}", args.output.display()))?;
    eprint!("{}", summary(&merger));
    eprintln!(
        "{}: {} ballots written, {} duplicates left out",
        args.output.display(),
        merger.kept(),
        merger.duplicates()
    );
    Ok(ExitCode::SUCCESS)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

fn merge_into(form: &Form, files: &[PathBuf], out: &mut Out<'_>) -> anyhow::Result<Merger> {
    let mut merger = Merger::new();
    for path in files {
        let name = path.display().to_string();
        let idx = merger.file(&name);
        match sniff(path)? {
            Kind::BallotsCsv => {
                let f = File::open(path).with_context(|| format!("cannot read {name}"))?;
                let mut reader = wide_csv::Reader::new(form, &name, BufReader::new(f))?;
                while let Some(b) = reader.next_ballot() {
                    let b = b?;
                    let place = format!("{name}:{}", reader.line());
                    if merger.add(idx, &place, &b)? {
                        out.write(&b)?;
                    }
                }
            }
            Kind::BallotsJson => {
                let f = File::open(path).with_context(|| format!("cannot read {name}"))?;
                let ballots = analysis::json::read_all(form, &name, BufReader::new(f))?;
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
