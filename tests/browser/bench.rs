//! `cargo bench --bench app`: what the browser downloads (gzip -9 sizes) and the time from
//! navigation to a usable default form in headless Chromium, first visit and with the
//! service worker's cache. Prints figures; asserts nothing about speed.

#[allow(dead_code)] // the benchmark uses only part of the test harness
mod harness;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use harness::Session;

fn gzip_size(path: &std::path::Path) -> usize {
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut gz = Command::new("gzip")
        .args(["-9", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    gz.stdin.take().unwrap().write_all(&data).unwrap();
    gz.wait_with_output().unwrap().stdout.len()
}

async fn interactive_ms(s: &Session) -> f64 {
    s.find("start-button").await;
    for _ in 0..100 {
        let v = s.js("const m = performance.getEntriesByName('pingyi-interactive')[0]; return m ? m.startTime : null").await;
        if let Some(ms) = v.as_f64() {
            return ms;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the app never marked itself interactive");
}

fn summary(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "median {:.0} ms (min {:.0}, max {:.0}, n = {})",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1],
        v.len()
    )
}

#[tokio::main]
async fn main() {
    harness::ensure_built();
    let pkg = harness::pkg_dir();
    println!("What the browser downloads (gzip -9):");
    let mut total = 0;
    for f in [
        "pingyi_app_bg.wasm",
        "pingyi_app.js",
        "style.css",
        "index.html",
        "sw.js",
        "build.js",
        "form.json",
    ] {
        let raw = std::fs::metadata(pkg.join(f)).unwrap().len();
        let gz = gzip_size(&pkg.join(f));
        total += gz;
        println!("  {f:<22} {raw:>9} B raw  {gz:>8} B gzip");
    }
    let core: usize = ["pingyi_app_bg.wasm", "pingyi_app.js", "style.css"]
        .iter()
        .map(|f| gzip_size(&pkg.join(f)))
        .sum();
    println!(
        "  wasm + JS + CSS        {core:>27} B gzip ({:.1} KB)",
        core as f64 / 1024.0
    );
    println!("  everything             {total:>27} B gzip");

    let runs = 8;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let s = Session::open().await;
        cold.push(interactive_ms(&s).await);
        // Let the service worker finish caching, then load again from its cache.
        for _ in 0..100 {
            if s.js("return !!navigator.serviceWorker.controller").await == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        s.reload().await;
        warm.push(interactive_ms(&s).await);
        s.close().await;
    }
    println!("Navigation to an interactive default form (headless Chromium, this machine):");
    println!("  first visit:              {}", summary(cold));
    println!("  from the service worker:  {}", summary(warm));
}
