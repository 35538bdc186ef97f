//! The deployable site in pkg/: builds the Leptos app for wasm32, runs wasm-bindgen as a
//! library (so no tool is downloaded), and writes the generated files beside the
//! committed ones (index.html, sw.js, style.css, manifest, icon).
//!
//! Generated: `pingyi_app.js`, `pingyi_app_bg.wasm`, and the officials' console in
//! `admin/` (`pingyi_console.js`, `pingyi_console_bg.wasm`: a bundle of its own, never
//! loaded or cached by the citizens' app); `pingyi build` adds `form.json` (the
//! form the app starts with) and `build.js`, which names this build and the files the
//! service worker must cache (`pingyi serve` makes those two in memory instead). `sw.js`
//! imports `build.js`, so a new build changes the worker's bytes and the browser installs
//! it, fetching every file before it replaces the old version.
//!
//! A release folder made by `pingyi package` holds the built site in `site/` beside the
//! executable; there nothing is built.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};

/// The wasm target the app is built for.
const WASM_TARGET: &str = "wasm32-unknown-unknown";

/// The workspace this binary was built from: the app's sources live there.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The default site folder.
pub fn default_pkg_dir() -> PathBuf {
    workspace_root().join("pkg")
}

/// The site folder of a release folder made by `pingyi package`: `site/` beside the
/// running executable, when it holds a built site.
pub fn release_site() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let site = exe.parent()?.join("site");
    site.join("index.html").is_file().then_some(site)
}

/// Builds the app and writes every generated file into `pkg`, `form.json` and `build.js`
/// included (for a static web server).
pub fn build(pkg: &Path, form_json: &str) -> anyhow::Result<()> {
    build_app(pkg)?;
    write_form(pkg, form_json)
}

/// The wasm bundles of the site: (package, its wasm file's stem, the folder under the
/// site, the name of the generated files).
const BUNDLES: &[(&str, &str, &str, &str)] = &[
    ("pingyi-app", "pingyi-app", "", "pingyi_app"),
    (
        "pingyi-console",
        "pingyi-console",
        "admin",
        "pingyi_console",
    ),
];

/// Builds the app and the console for wasm32 and writes each wasm and its JS bindings into
/// `pkg` (the console's into `pkg/admin/`).
pub fn build_app(pkg: &Path) -> anyhow::Result<()> {
    let root = workspace_root();
    if !root.join("Cargo.toml").is_file() {
        bail!(
            "cannot build the app: this pingyi was compiled from {}, which is not on this machine; \
             use a release folder made by `pingyi package` (its site/ beside the executable), \
             or serve a built site with --pkg DIR --no-build",
            root.display()
        );
    }
    ensure_wasm_target()?;
    // A target folder of its own: `cargo test` holds the main one's lock while the
    // browser tests build the app, and the wasm artifacts never mix with native ones.
    let target_dir = root.join("target").join("app");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("pingyi: building the form app and the console for {WASM_TARGET} (release)…");
    let mut args = vec![
        "build",
        "--profile",
        "wasm-release",
        "--target",
        WASM_TARGET,
    ];
    for (package, ..) in BUNDLES {
        args.extend(["-p", package]);
    }
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args(&args)
        .env("CARGO_TARGET_DIR", &target_dir)
        .status()
        .with_context(|| format!("cannot run {}", cargo.to_string_lossy()))?;
    if !status.success() {
        bail!("building the form app failed (cargo exited with {status}); see the messages above");
    }
    for (_, stem, folder, out_name) in BUNDLES {
        let wasm = target_dir
            .join(WASM_TARGET)
            .join("wasm-release")
            .join(format!("{stem}.wasm"));
        let out = pkg.join(folder);
        eprintln!("pingyi: generating JS bindings into {}", out.display());
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&wasm)
            .web(true)?
            .omit_default_module_path(false)
            .typescript(false)
            .remove_name_section(true)
            .remove_producers_section(true)
            .out_name(out_name)
            .generate(&out)
            .with_context(|| format!("wasm-bindgen failed on {}", wasm.display()))?;
    }
    Ok(())
}

/// Writes the form the app starts with, and `build.js` naming this build.
pub fn write_form(pkg: &Path, form_json: &str) -> anyhow::Result<()> {
    write_if_changed(&pkg.join("form.json"), form_json.as_bytes())?;
    write_build_js(pkg)
}

/// Writes through a temporary file and a rename, and only when the content changed, so a
/// server reading the folder at the same moment never sees a half-written file.
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    crate::output::write_bytes(path, bytes)
}

fn write_build_js(pkg: &Path) -> anyhow::Result<()> {
    let js = pingyi_server::site::build_js(|name| {
        let path = pkg.join(name);
        std::fs::read(&path).with_context(|| {
            format!(
                "{} is missing; run `pingyi build` (or `pingyi serve` without --no-build)",
                path.display()
            )
        })
    })?;
    write_if_changed(&pkg.join("build.js"), js.as_bytes())
}

/// Makes sure the wasm32 standard library is installed, installing it with rustup if not.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .context("cannot run rustc to find the installed targets")?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).is_dir() {
        return Ok(());
    }
    eprintln!(
        "pingyi: the {WASM_TARGET} target is missing; running `rustup target add {WASM_TARGET}`"
    );
    let status = Command::new("rustup")
        .args(["target", "add", WASM_TARGET])
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => bail!("the {WASM_TARGET} target is not installed and rustup could not add it; run `rustup target add {WASM_TARGET}` and try again"),
    }
}
