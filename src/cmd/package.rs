//! `pingyi package -o DIR`: a release folder that runs where there is no Rust toolchain
//! and no checkout: DIR/pingyi (this executable), DIR/site/ (the built app) and
//! DIR/README.txt. `DIR/pingyi serve` finds site/ beside itself and never builds.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::site;

#[derive(clap::Args)]
#[command(after_help = "Examples:
  cargo run --release -- package -o dist/pingyi
  dist/pingyi/pingyi serve --form my-form.json")]
pub struct Args {
    /// The folder to write (new, empty, or an earlier release folder to refresh).
    #[arg(short, long, value_name = "DIR")]
    output: PathBuf,
}

const README: &str = "Pingyi 评议: the form app and its collection server
================================================

Run it (no other software is needed):

  ./pingyi serve                       serves http://127.0.0.1:8080/ with the built-in form;
                                       ballots go into pingyi.db in the current folder
  ./pingyi serve --form my-form.json   your own form; ballots go into my-form.db beside it
  ./pingyi serve --listen 0.0.0.0:8443 --tls-cert cert.pem --tls-key key.pem
                                       HTTPS for kiosks and phones on the office network

The first line printed is the address to open. Stop with Ctrl-C; every ballot the server
acknowledged is already on disk.

  ./pingyi form check my-form.json     check a form definition before using it
  ./pingyi --help                      every command

This folder: pingyi (the program), site/ (the form app it serves; keep it beside the
program), README.txt (this file). Copy the whole folder to move it.
";

pub fn run(args: Args) -> anyhow::Result<()> {
    let out = &args.output;
    prepare(out)?;
    let pkg = site::default_pkg_dir();
    site::build_app(&pkg)?;
    let site_out = out.join("site");
    copy_site(&pkg, &site_out)?;
    let exe = running_executable()?;
    let name = if cfg!(windows) {
        "pingyi.exe"
    } else {
        "pingyi"
    };
    std::fs::copy(&exe, out.join(name)).with_context(|| {
        format!(
            "cannot copy {} to {}",
            exe.display(),
            out.join(name).display()
        )
    })?;
    crate::output::write_bytes(&out.join("README.txt"), README.as_bytes())?;
    println!(
        "pingyi: the release folder is ready in {}; run {} serve",
        out.display(),
        out.join(name).display()
    );
    Ok(())
}

/// The file of the running program. On Linux through /proc, which still reads it when
/// cargo has replaced the file since this run started.
fn running_executable() -> anyhow::Result<PathBuf> {
    let proc_exe = Path::new("/proc/self/exe");
    if cfg!(target_os = "linux") && proc_exe.exists() {
        return Ok(proc_exe.to_path_buf());
    }
    std::env::current_exe().context("cannot find the running executable")
}

/// What a release folder holds; an existing folder with nothing else is refreshed.
const RELEASE_ENTRIES: &[&str] = &["pingyi", "pingyi.exe", "site", "README.txt"];

/// Makes `out`, or clears an earlier (or half-made) release folder there; refuses any
/// other non-empty folder so nothing of the user's is overwritten.
fn prepare(out: &Path) -> anyhow::Result<()> {
    if out.exists() {
        let mut earlier = true;
        let entries =
            std::fs::read_dir(out).with_context(|| format!("cannot read {}", out.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("cannot read {}", out.display()))?;
            earlier &= RELEASE_ENTRIES.iter().any(|e| entry.file_name() == *e);
        }
        if earlier {
            if out.join("site").is_dir() {
                std::fs::remove_dir_all(out.join("site"))
                    .with_context(|| format!("cannot clear {}", out.join("site").display()))?;
            }
        } else {
            bail!(
                "{} exists and is not an earlier release folder; choose a new folder",
                out.display()
            );
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))
}

/// Copies the built site's regular files (not the per-form generated ones, which the
/// server makes in memory).
fn copy_site(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in
        std::fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))?
    {
        let entry = entry.with_context(|| format!("cannot read {}", from.display()))?;
        let kind = entry.file_type()?;
        let name = entry.file_name();
        let target = to.join(&name);
        if kind.is_dir() {
            copy_site(&entry.path(), &target)?;
        } else if kind.is_file()
            && !pingyi_server::site::GENERATED_FILES
                .iter()
                .any(|g| name == *g)
        {
            std::fs::copy(entry.path(), &target).with_context(|| {
                format!(
                    "cannot copy {} to {}",
                    entry.path().display(),
                    target.display()
                )
            })?;
        }
    }
    Ok(())
}
