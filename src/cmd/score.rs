//! `pingyi score`: ballots, tallies and parts in, scores, intervals, ranks and grades out.
//! Also home of the helpers the other scoring subcommands share: loading the form and
//! the rules, reading inputs with a progress bar, writing the output.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analysis::aggregate::Aggregate;
use analysis::files::{total_bytes, Input};
use analysis::rules::{Resolved, Rules};
use analysis::Form;

use crate::input::DatabaseSource;

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// Ballots (wide CSV or JSON exports), tally CSV files (unit,group,criterion,option,count),
    /// parts written by `pingyi aggregate`, and collection databases (sqlite:PATH, a .db
    /// file, postgres://…), in any mix.
    #[arg(required = true, value_name = "FILES")]
    files: Vec<PathBuf>,
    /// The form definition (JSON); the built-in 民主评议 form if left out.
    #[arg(long)]
    form: Option<PathBuf>,
    /// The rules file (TOML); defaults from the form's scale if left out.
    #[arg(long)]
    rules: Option<PathBuf>,
    /// Output format; guessed from the extension of -o, else a table.
    #[arg(long, value_enum)]
    format: Option<Format>,
    /// Write here instead of standard output.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Threads for large CSV files (default: every core).
    #[arg(long)]
    threads: Option<usize>,
}

const EXAMPLES: &str = "Examples:
  pingyi score ballots.csv
  pingyi score kiosk1.csv kiosk2.json paper-tally.csv --rules analysis/rules/haochaping.toml
  pingyi score part1.json part2.json --rules rules.toml --format json -o scores.json
  pingyi score ballots.csv --rules rules.toml -o scores.csv
  pingyi score sqlite:campaign.db --rules rules.toml
  pingyi score postgres://pingyi@db.example/campaign --form my-form.json";

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned table for the terminal.
    Table,
    /// One row per unit, rates in percent.
    Csv,
    /// Everything, full precision (the README's JSON score report).
    Json,
}

/// The format asked for, or the one -o's extension names, or `fallback`.
pub fn format_of(asked: Option<Format>, output: Option<&Path>, fallback: Format) -> Format {
    asked.unwrap_or_else(|| {
        match output
            .and_then(|p| p.extension())
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("json") => Format::Json,
            Some("csv") => Format::Csv,
            _ => fallback,
        }
    })
}

/// The form from a file, or the built-in one.
pub fn load_form(path: Option<&Path>) -> anyhow::Result<Form> {
    match path {
        None => Ok(Form::default_form()),
        Some(p) => {
            let text = crate::input::read_text(p)?;
            Ok(Form::from_json(&p.display().to_string(), &text)?)
        }
    }
}

/// The rules from a file (checked against the form), or the defaults.
pub fn load_rules(path: Option<&Path>, form: &Form) -> anyhow::Result<Resolved> {
    match path {
        None => Ok(Rules::default().resolve("default rules", form)?),
        Some(p) => {
            let text = crate::input::read_text(p)?;
            Ok(Rules::from_toml(&p.display().to_string(), &text, form)?)
        }
    }
}

/// The rules, with the head counts they leave out taken from the collection database
/// among the inputs (codes issued and used, attendance: [`pingyi_server::dashboard::database_rules`],
/// the code the console's dashboard runs), and notes saying where each came from.
/// Head counts from several databases are refused: they cannot be told apart.
pub fn rules_with_database(
    path: Option<&Path>,
    form: &Form,
    files: &[PathBuf],
) -> anyhow::Result<(Resolved, Vec<String>)> {
    let mut counted = Vec::new();
    for p in files {
        if let Some(db) = crate::input::database_of(p)? {
            let source = DatabaseSource::open(&db).map_err(anyhow::Error::msg)?;
            let heads = source.head_counts(form).map_err(anyhow::Error::msg)?;
            if !heads.is_empty() {
                counted.push((source.name().to_string(), heads));
            }
        }
    }
    match counted.as_slice() {
        [] => Ok((load_rules(path, form)?, Vec::new())),
        [(_, heads)] => {
            let file = match path {
                None => None,
                Some(p) => Some(pingyi_server::config::RulesFile {
                    source: p.display().to_string(),
                    name: String::new(),
                    text: crate::input::read_text(p)?,
                }),
            };
            pingyi_server::dashboard::database_rules(file.as_ref(), form, heads, "the database")
                .map_err(anyhow::Error::msg)
        }
        [(a, _), (b, _), ..] => anyhow::bail!(
            "{a} and {b} both hold head counts (access codes or attendance) of form {} version {}; \
             expected one database with them, or score each database on its own",
            form.id,
            form.version
        ),
    }
}

/// Reads every input into one state, with a progress bar when standard error is a
/// terminal and the inputs are large. Databases among the inputs are read row by row,
/// and a line for each says on standard error what was read from it.
pub fn read_inputs(
    form: &Form,
    rules: &Resolved,
    files: &[PathBuf],
    threads: Option<usize>,
) -> anyhow::Result<Aggregate> {
    let mut databases = Vec::with_capacity(files.len());
    for p in files {
        let database = match crate::input::database_of(p)? {
            Some(db) => Some(DatabaseSource::open(&db).map_err(anyhow::Error::msg)?),
            None if p.is_file() => None,
            None => anyhow::bail!(
                "{}: no such file, expected a ballot, tally or part file, or a database \
                 (sqlite:PATH, postgres://…)",
                p.display()
            ),
        };
        databases.push(database);
    }
    let inputs: Vec<Input<'_>> = files
        .iter()
        .zip(&databases)
        .map(|(p, db)| match db {
            Some(db) => Input::Ballots(db),
            None => Input::File(p),
        })
        .collect();
    let paths: Vec<&Path> = inputs
        .iter()
        .filter_map(|i| match i {
            Input::File(p) => Some(*p),
            Input::Ballots(_) => None,
        })
        .collect();
    let total = total_bytes(&paths);
    let bar = (std::io::stderr().is_terminal() && total > 16 << 20).then(|| {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} reading {bytes}/{total_bytes} {wide_bar} {bytes_per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |n: u64| {
        if let Some(b) = &bar {
            b.inc(n);
        }
    };
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let agg = pingyi_server::dashboard::aggregate(form, rules, &inputs, threads, &progress);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let agg = agg?;
    for db in databases.iter().flatten() {
        eprintln!("{}", db.summary(form).map_err(anyhow::Error::msg)?);
    }
    Ok(agg)
}

/// Writes `text` to the file (atomically, see [`crate::output`]), or to standard output.
pub fn write_output(output: Option<&Path>, text: &str) -> anyhow::Result<()> {
    match output {
        Some(p) => crate::output::write_bytes(p, text.as_bytes()),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())?;
            out.flush()?;
            Ok(())
        }
    }
}

/// The files a scoring run reads: the inputs (an SQLite database's file for
/// `sqlite:PATH`), the form and the rules.
pub fn inputs<'a>(
    files: &'a [PathBuf],
    form: Option<&'a Path>,
    rules: Option<&'a Path>,
) -> Vec<&'a Path> {
    let file_of = |p: &'a PathBuf| -> &'a Path {
        match p.to_str().and_then(|s| s.strip_prefix("sqlite:")) {
            Some(path) => Path::new(path.strip_prefix("//").unwrap_or(path)),
            None => p,
        }
    };
    let mut all: Vec<&Path> = files.iter().map(file_of).collect();
    all.extend(form);
    all.extend(rules);
    all
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.output {
        let read = inputs(&args.files, args.form.as_deref(), args.rules.as_deref());
        crate::output::refuse_inputs(out, &read)?;
    }
    let form = load_form(args.form.as_deref())?;
    let (rules, notes) = rules_with_database(args.rules.as_deref(), &form, &args.files)?;
    let agg = read_inputs(&form, &rules, &args.files, args.threads)?;
    let report =
        pingyi_server::dashboard::with_notes(analysis::score::score(&form, &rules, &agg), &notes);
    let out = &rules.rules.output;
    let text = match format_of(args.format, args.output.as_deref(), Format::Table) {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&report)?;
            s.push('\n');
            s
        }
        Format::Csv => analysis::render::to_csv(&report, out),
        Format::Table => analysis::render::to_table(&report, out),
    };
    write_output(args.output.as_deref(), &text)?;
    Ok(ExitCode::SUCCESS)
}
