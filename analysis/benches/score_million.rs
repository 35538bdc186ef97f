//! Benchmark: score 1,000,000 synthetic default-form ballots from one wide CSV, print the
//! wall time and the peak memory (getrusage's maximum resident set size), and, when the
//! `duckdb` Python package is installed (`pip install duckdb`), the time DuckDB takes for
//! the same group-by (unit × group × criterion × option → count) on the same file.
//!
//! ```sh
//! cargo bench -p pingyi-analysis --bench score_million
//! PINGYI_BENCH_BALLOTS=200000 cargo bench -p pingyi-analysis --bench score_million
//! ```
//!
//! The CSV is generated once into the system's temp folder (about 230 MB for a million
//! ballots) by a child process, so that the measured process only scores.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use analysis::files::{aggregate_files, Options};
use analysis::rules::Rules;
use analysis::synth::Generator;
use analysis::{wide_csv, Form};

const DUCKDB: &str = r#"
import sys, time, duckdb
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
t = time.time()
rows = con.execute("""
SELECT split_part(col, '.', 2) AS unit, "group", split_part(col, '.', 3) AS criterion,
       option, count(*) AS count
FROM (UNPIVOT (SELECT * FROM read_csv(?, all_varchar = true, header = true))
      ON COLUMNS('^appr\\.') INTO NAME col VALUE option)
GROUP BY ALL
""", [sys.argv[1]]).fetchall()
print(f"{time.time() - t:.3f} {len(rows)}")
"#;

fn peak_rss_mib() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    // Linux reports kilobytes.
    usage.ru_maxrss as f64 / 1024.0
}

fn generate(path: &Path, n: u64) {
    let form = Form::default_form();
    let mut g = Generator::new(&form, 1);
    let tmp = path.with_extension("partial");
    let out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&tmp).expect("temp file"));
    let mut w = wide_csv::Writer::new(&form, out).expect("write");
    for _ in 0..n {
        w.write(&g.ballot()).expect("write");
    }
    w.finish().expect("write").flush().expect("write");
    std::fs::rename(&tmp, path).expect("rename");
}

fn main() {
    let n: u64 = std::env::var("PINGYI_BENCH_BALLOTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let path: PathBuf = std::env::temp_dir().join(format!("pingyi-bench-{n}.csv"));
    if std::env::args().nth(1).as_deref() == Some("--generate") {
        generate(&path, n);
        return;
    }
    if !path.exists() {
        let t = Instant::now();
        let status = Command::new(std::env::current_exe().expect("own path"))
            .arg("--generate")
            .env("PINGYI_BENCH_BALLOTS", n.to_string())
            .status()
            .expect("the generator runs");
        assert!(status.success(), "generating {} failed", path.display());
        println!(
            "generated {} ({n} ballots) in {:.2} s",
            path.display(),
            t.elapsed().as_secs_f64()
        );
    }
    let size = std::fs::metadata(&path).expect("the CSV").len();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);

    let form = Form::default_form();
    let rules = Rules::default()
        .resolve("default", &form)
        .expect("default rules");
    let t = Instant::now();
    let opts = Options {
        threads,
        progress: &|_| {},
    };
    let agg = aggregate_files(&form, &rules, &[path.as_path()], &opts).expect("the CSV scores");
    let report = analysis::score::score(&form, &rules, &agg);
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(report.ballots.total, n);
    println!(
        "pingyi: scored {n} ballots ({:.0} MB) in {secs:.2} s on {threads} threads ({:.0} MB/s), peak RSS {:.1} MiB",
        size as f64 / 1e6,
        size as f64 / 1e6 / secs,
        peak_rss_mib()
    );

    match Command::new("python3")
        .args(["-c", DUCKDB])
        .arg(&path)
        .output()
    {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let mut parts = text.lines().last().unwrap_or("").split_whitespace();
            let duck: f64 = parts
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(f64::NAN);
            let groups = parts.next().unwrap_or("?");
            println!(
                "duckdb: the same group-by ({groups} unit × group × criterion × option counts) in {duck:.2} s; pingyi is {:.1}× faster",
                duck / secs
            );
        }
        Ok(out) => println!(
            "duckdb: not measured ({}); `pip install duckdb` to compare",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("python3 failed")
        ),
        Err(e) => println!("duckdb: not measured (python3: {e})"),
    }
}
