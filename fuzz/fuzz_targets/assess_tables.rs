#![no_main]
//! See `pingyi_fuzz::checks::assess_tables` for what this target reads and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pingyi_fuzz::checks::assess_tables(data));
