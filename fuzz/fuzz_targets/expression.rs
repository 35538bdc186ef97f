#![no_main]
//! See `pingyi_fuzz::checks::expression` for what this target reads and asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| pingyi_fuzz::checks::expression(data));
