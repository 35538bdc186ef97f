//! One module per subcommand, each with its `Args` and `run`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod aggregate;
pub mod assess;
pub mod build;
pub mod codes;
pub mod export;
pub mod form;
pub mod generate;
pub mod merge;
pub mod package;
pub mod score;
pub mod serve;
pub mod user;

/// Pingyi 评议: offline 民主评议 / 满意度测评 questionnaires, from form to score.
#[derive(Parser)]
#[command(name = "pingyi", version, about, long_about = None, after_help = EXAMPLES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

const EXAMPLES: &str = "Examples:
  pingyi serve                        build the form app, serve it on http://127.0.0.1:8080/
                                      and collect ballots into ./pingyi.db
  pingyi package -o dist/pingyi       a release folder that runs without Rust
  pingyi form check my-form.json      list every problem of a form definition
  pingyi form default -o my-form.json start a new form from the built-in 民主评议 questionnaire
  pingyi merge *.csv -o all.csv       merge exports from many devices, each ballot once
  pingyi score all.csv --rules r.toml scores, intervals, ranks and grades
  pingyi export --database sqlite:campaign.db -o all.csv   the ballots a server collected";

#[derive(Subcommand)]
enum Command {
    /// Check a form definition, or print the built-in default form.
    Form(form::Args),
    /// Build the form app into pkg/ (wasm + JS), ready to copy to a web server.
    Build(build::Args),
    /// Serve the form app and collect ballots (API under /api/v1/) into SQLite or PostgreSQL.
    Serve(serve::Args),
    /// Make a release folder (program + built site) that runs where there is no Rust.
    Package(package::Args),
    /// Merge exports (CSV, JSON) from many devices into one file, each ballot once.
    Merge(merge::Args),
    /// Write the ballots a collection database holds as one export file (CSV or JSON).
    Export(export::Args),
    /// Fold ballots or tallies into a part that `pingyi score` merges with others.
    Aggregate(aggregate::Args),
    /// Score ballots, tallies and parts: scores, intervals, ranks, grades.
    Score(score::Args),
    /// The annual assessment: the appraisal score beside other components and deductions.
    Assess(assess::Args),
    /// Write synthetic ballots (for trying things out and for benchmarks).
    Generate(generate::Args),
    /// Officials who sign in to the campaign console: add, list, remove, passwd.
    User(user::Args),
    /// Issue one-time access codes (投票码) for a group: a printable PDF sheet or CSV.
    Codes(codes::Args),
}

/// Runs the chosen subcommand; `Ok` carries the exit code for results such as "form has problems".
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Form(args) => form::run(args),
        Command::Build(args) => build::run(args).map(|_| ExitCode::SUCCESS),
        Command::Serve(args) => serve::run(args).map(|_| ExitCode::SUCCESS),
        Command::Package(args) => package::run(args).map(|_| ExitCode::SUCCESS),
        Command::Merge(args) => merge::run(args),
        Command::Export(args) => export::run(args),
        Command::Aggregate(args) => aggregate::run(args),
        Command::Score(args) => score::run(args),
        Command::Assess(args) => assess::run(args),
        Command::Generate(args) => generate::run(args),
        Command::User(args) => user::run(args),
        Command::Codes(args) => codes::run(args),
    }
}
