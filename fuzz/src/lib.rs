//! The checks behind Pingyi's fuzz targets. Each target in fuzz_targets/ feeds its bytes to
//! one function of [`checks`]; analysis/tests/fuzz_regressions.rs includes the same file, so
//! a saved crash replays through exactly the code path that found it.

pub mod checks;
