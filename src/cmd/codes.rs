//! `pingyi codes`: issues one-time access codes (投票码) for a group that votes with
//! codes, and writes them as the printable slip sheet (PDF) and/or as CSV. Only the
//! codes' keyed hashes are stored, in the database `pingyi serve` collects into, which
//! is how the server knows them; the files written are the only place the codes exist.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use analysis::form::{Form, DEFAULT_FORM_JSON};
use anyhow::{bail, Context};
use pingyi_server::codes::{self, font, sheet};
use pingyi_server::store::{Database, FormRecord, Store, StoreError};

#[derive(clap::Args)]
#[command(after_help = EXAMPLES)]
pub struct Args {
    /// The group the codes are for; the form must mark it "code_required": true.
    #[arg(long)]
    group: String,
    /// How many codes (1 to 2000).
    #[arg(long)]
    count: usize,
    /// The form the codes are for (default: the built-in 民主评议 questionnaire).
    #[arg(long, value_name = "FILE")]
    form: Option<PathBuf>,
    /// The database `pingyi serve` collects into: sqlite:PATH, a file path, or
    /// postgres://… (default: the form's name with .db beside it, or ./pingyi.db with the
    /// built-in form, as `pingyi serve`).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Where to write the codes: a .pdf sheet of slips or a .csv file; repeat to write
    /// the same codes to both.
    #[arg(short, long = "output", value_name = "FILE", required = true)]
    output: Vec<PathBuf>,
    /// The address citizens open the form at, for the slips' QR codes (what `pingyi
    /// serve` prints, e.g. http://192.168.1.20:8080/); needed for a PDF.
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// A font file with Chinese characters for the PDF (default: one found on the system).
    #[arg(long, value_name = "FILE")]
    font: Option<PathBuf>,
}

const EXAMPLES: &str = "Examples:
  pingyi codes --group npc --count 60 --public-url http://192.168.1.20:8080/ -o npc.pdf
  pingyi codes --group cppcc --count 40 -o cppcc.csv
  pingyi codes --group npc --count 60 --form my-form.json --database postgres://pingyi@db/campaign \\
      --public-url https://pingyi.example.gov.cn/ -o npc.pdf -o npc.csv";

/// The kinds of file written.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pdf,
    Csv,
}

fn kind(path: &Path) -> anyhow::Result<Kind> {
    match path
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase())
        .as_deref()
    {
        Some("pdf") => Ok(Kind::Pdf),
        Some("csv") => Ok(Kind::Csv),
        _ => bail!(
            "-o {}: the file name must end in .pdf (the sheet of slips) or .csv",
            path.display()
        ),
    }
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (source, json) = match &args.form {
        Some(path) => (
            path.display().to_string(),
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the form {}", path.display()))?,
        ),
        None => (
            "the built-in form".to_string(),
            DEFAULT_FORM_JSON.to_string(),
        ),
    };
    let form = Form::from_json(&source, &json).map_err(|p| anyhow::anyhow!("{p}"))?;
    let label = codes::check_request(&form, &args.group, args.count)
        .map_err(|e| anyhow::anyhow!("{source}: {e}"))?;
    let kinds = args
        .output
        .iter()
        .map(|p| kind(p))
        .collect::<anyhow::Result<Vec<Kind>>>()?;
    // Everything that could fail after issuing is tried first: codes issued and never
    // written would be lost.
    let pdf = if kinds.contains(&Kind::Pdf) {
        let Some(url) = &args.public_url else {
            bail!(
                "the sheet's QR codes need the address citizens open the form at: give \
                 --public-url, e.g. --public-url http://192.168.1.20:8080/ (what `pingyi serve` \
                 prints), or write -o codes.csv"
            );
        };
        sheet::check_url(url, &args.group).map_err(anyhow::Error::msg)?;
        Some(font::find(args.font.as_deref()).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let mut files = Vec::new();
    for path in &args.output {
        files.push(File::create(path).with_context(|| format!("cannot write {}", path.display()))?);
    }
    let db = database(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let issued = runtime.block_on(async {
        let store = Store::open(&db)
            .await
            .with_context(|| format!("cannot open the database {db}"))?;
        let record = FormRecord {
            id: form.id.clone(),
            version: form.version.clone(),
            json: json.clone(),
        };
        store.add_form(&record).await.map_err(|e| match e {
            StoreError::FormChanged { .. } => anyhow::anyhow!(
                "{source}: {e}; the codes must be issued for the form the server collects"
            ),
            other => anyhow::anyhow!("{db}: {other}"),
        })?;
        let issued = store
            .issue_codes(&form.id, &form.version, &args.group, args.count)
            .await
            .with_context(|| format!("{db}: cannot issue the codes"))?;
        let detail = format!(
            "form {} version {}: {} codes for group {} (batch {}) into {}",
            form.id,
            form.version,
            issued.codes.len(),
            args.group,
            issued.batch,
            args.output
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        store
            .audit(&operator(), "cli", "issue_codes", &detail)
            .await?;
        anyhow::Ok(issued)
    })?;
    let public_url = args.public_url.clone().unwrap_or_default();
    let title = form.title.get("zh-CN").to_string();
    let slips = sheet::Sheet {
        title: &title,
        group: &args.group,
        group_label: &label,
        public_url: &public_url,
        batch: issued.batch,
        codes: &issued.codes,
    };
    for ((path, kind), mut file) in args.output.iter().zip(kinds).zip(files) {
        let bytes = match (kind, &pdf) {
            (Kind::Pdf, Some(fonts)) => sheet::pdf(&slips, fonts).map_err(anyhow::Error::msg)?,
            _ => sheet::csv(&slips),
        };
        file.write_all(&bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "{db}: issued {} codes for group {} ({label}) of form {} version {}, batch {}; wrote {}",
        issued.codes.len(),
        args.group,
        form.id,
        form.version,
        issued.batch,
        args.output
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" and ")
    );
    Ok(ExitCode::SUCCESS)
}

/// The database named by --database, or the SQLite file `pingyi serve` would use.
fn database(args: &Args) -> anyhow::Result<Database> {
    Ok(match (&args.database, &args.form) {
        (Some(url), _) => Database::parse(url).map_err(|e| anyhow::anyhow!("--database: {e}"))?,
        (None, Some(form)) => Database::Sqlite(form.with_extension("db")),
        (None, None) => Database::Sqlite(PathBuf::from("pingyi.db")),
    })
}

/// Who ran the command, for the audit log (the audit's address is "cli").
fn operator() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .map(|u| format!("{u} (cli)"))
        .unwrap_or_else(|_| "cli".to_string())
}
