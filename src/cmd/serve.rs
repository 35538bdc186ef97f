//! `pingyi serve`: serve the form app and collect ballots through the API into SQLite
//! (default) or PostgreSQL. In a checkout the app is built first; in a release folder
//! made by `pingyi package` the `site/` beside the executable is served as it is.
//!
//! The first line on stdout is always `Pingyi 评议 is served at URL (Ctrl-C to stop)`;
//! scripts and tests read the URL from it. Then the public address respondents open and
//! its QR code. Logs go to stderr (RUST_LOG tunes them).

use std::io::{IsTerminal, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use pingyi_server::config::{DashboardSettings, RulesFile};
use pingyi_server::store::{Database, RateLimits};
use pingyi_server::{Config, FormFile, Limits, Server, TlsFiles};

use crate::site;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  pingyi serve                         build, then serve on http://127.0.0.1:8080/,
                                       ballots into ./pingyi.db
  pingyi serve --form my-form.json     serve your form, ballots into my-form.db
  pingyi serve --form v2.json --form v1.json
                                       serve v2, keep collecting v1 ballots too
  pingyi serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
                                       HTTPS for kiosks on the office network
  pingyi serve --database postgres://pingyi@db.example/campaign
  pingyi serve --host 0.0.0.0 --rules analysis/rules/congress-quorum.toml
                                       on the LAN, the dashboard scores with these rules
  pingyi serve --no-build --port 0     serve what pkg/ already holds on a free port")]
pub struct Args {
    /// A form to collect; repeat for several. The first is served to the app
    /// (default: the built-in 民主评议 questionnaire).
    #[arg(long, value_name = "FILE")]
    form: Vec<PathBuf>,
    /// Where ballots are stored: sqlite:PATH, a plain PATH, or postgres://… (default: the
    /// first form's name with .db beside it, or ./pingyi.db with the built-in form).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Address and port to listen on, e.g. 0.0.0.0:8443 (instead of --host and --port).
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["host", "port"])]
    listen: Option<SocketAddr>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Port to listen on; 0 picks a free one (the URL is printed).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// TLS certificate chain (PEM) for HTTPS; needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) for HTTPS; needs --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve the site folder as it is, without building the app first.
    #[arg(long)]
    no_build: bool,
    /// The site folder to serve (default: pkg/ of the checkout, or site/ of a release folder).
    #[arg(long, value_name = "DIR")]
    pkg: Option<PathBuf>,
    /// A rules file the console's live dashboard can score with (its name is the file's
    /// stem); repeat for several. Checked against the served form at start.
    #[arg(long, value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// The address respondents open, printed with its QR code and put on posters
    /// (default: the listen address; a LAN address of this machine when listening on
    /// 0.0.0.0 or ::).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Ballots of open groups (no access code) taken per device and hour; 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = RateLimits::default().per_device)]
    limit_device: u32,
    /// Ballots of open groups taken per client address and hour; 0 = no limit.
    #[arg(long, value_name = "N", default_value_t = RateLimits::default().per_address)]
    limit_address: u32,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    init_logs();
    let config = config(&args)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let server = Server::bind(config).await?;
        let qr = qr_text(server.public_url())?;
        let mut out = std::io::stdout().lock();
        // Only for the person who started the server: once it serves, a closed or full
        // standard output (a terminal closed, a reader that took the first line and left)
        // must not stop it, so failed writes are ignored rather than returned.
        let _ = writeln!(
            out,
            "Pingyi 评议 is served at {} (Ctrl-C to stop)",
            server.url()
        )
        .and_then(|()| out.flush())
        .and_then(|()| {
            writeln!(
                out,
                "Respondents open {} (scan the QR code with a phone):",
                server.public_url()
            )
        })
        .and_then(|()| out.write_all(qr.as_bytes()))
        .and_then(|()| out.flush());
        drop(out);
        server.serve(shutdown_signal()).await;
        Ok(())
    })
}

/// Reads the forms, picks the site (building it in a checkout) and the database.
fn config(args: &Args) -> anyhow::Result<Config> {
    let mut forms = Vec::new();
    for path in &args.form {
        forms.push(FormFile {
            source: path.display().to_string(),
            json: crate::input::read_text(path)?,
        });
    }
    let dashboard = DashboardSettings {
        rules: rules_files(args, &forms)?,
        public_url: public_url(args.public_url.as_deref())?,
    };
    let site = site_dir(args)?;
    let database = database(args)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
        }),
        _ => None,
    };
    Ok(Config {
        listen: args
            .listen
            .unwrap_or_else(|| SocketAddr::new(args.host, args.port)),
        forms,
        database,
        site,
        tls,
        limits: Limits {
            rates: RateLimits {
                per_device: args.limit_device,
                per_address: args.limit_address,
            },
            ..Limits::default()
        },
        dashboard,
    })
}

/// The --rules files, each checked against the served form with `pingyi score`'s messages.
fn rules_files(args: &Args, forms: &[FormFile]) -> anyhow::Result<Vec<RulesFile>> {
    if args.rules.is_empty() {
        return Ok(Vec::new());
    }
    let form = match forms.first() {
        Some(f) => analysis::Form::from_json(&f.source, &f.json)?,
        None => analysis::Form::default_form(),
    };
    let mut files: Vec<RulesFile> = Vec::new();
    for path in &args.rules {
        let source = path.display().to_string();
        let text = crate::input::read_text(path)?;
        pingyi_server::dashboard::resolve_rules(
            Some(&RulesFile {
                source: source.clone(),
                name: String::new(),
                text: text.clone(),
            }),
            &form,
        )
        .map_err(anyhow::Error::msg)?;
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(other) = files.iter().find(|f| f.name == name) {
            anyhow::bail!(
                "--rules {source}: has the name {} of --rules {} too, expected files with different names",
                analysis::error::quoted(&name),
                other.source
            );
        }
        files.push(RulesFile { source, name, text });
    }
    Ok(files)
}

/// --public-url checked: an http(s) address.
fn public_url(asked: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(url) = asked else { return Ok(None) };
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !url.chars().any(char::is_whitespace) => {
            Ok(Some(url.to_string()))
        }
        _ => anyhow::bail!(
            "--public-url {}: expected an address respondents can open, such as http://192.168.1.20:8080/",
            analysis::error::quoted(url)
        ),
    }
}

/// The URL as a QR code of Unicode half blocks (two modules a character, dark on light
/// with the quiet zone), which a phone scans off the terminal.
fn qr_text(url: &str) -> anyhow::Result<String> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M)
        .with_context(|| format!("cannot make a QR code of {url}"))?;
    let mut text = code
        .render::<qrcode::render::unicode::Dense1x2>()
        .dark_color(qrcode::render::unicode::Dense1x2::Light)
        .light_color(qrcode::render::unicode::Dense1x2::Dark)
        .quiet_zone(true)
        .build();
    text.push('\n');
    Ok(text)
}

/// The site folder: site/ of a release folder (never built), else --pkg or the
/// checkout's pkg/, built first unless --no-build.
fn site_dir(args: &Args) -> anyhow::Result<PathBuf> {
    if let Some(release) = site::release_site() {
        return Ok(args.pkg.clone().unwrap_or(release));
    }
    let pkg = args.pkg.clone().unwrap_or_else(site::default_pkg_dir);
    if !args.no_build {
        site::build_app(&pkg)?;
    }
    Ok(pkg)
}

/// The database named by --database, or the SQLite file beside the first form.
fn database(args: &Args) -> anyhow::Result<Database> {
    let database = match (&args.database, args.form.first()) {
        (Some(url), _) => Database::parse(url).map_err(|e| anyhow::anyhow!("--database: {e}"))?,
        (None, Some(form)) => Database::Sqlite(form.with_extension("db")),
        (None, None) => Database::Sqlite(PathBuf::from("pingyi.db")),
    };
    match &database {
        Database::Sqlite(path) => eprintln!("pingyi: ballots are stored in {}", shown(path)),
        Database::Postgres(_) => eprintln!("pingyi: ballots are stored in {database}"),
    }
    Ok(database)
}

/// A path as the user can find it: absolute when it can be made so.
fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Logs to stderr; RUST_LOG tunes them (default: info, one line per request).
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
