//! Fuzz target: sync request and response decoding (body in custody_tests::fuzz::sync_decode).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_tests::fuzz::sync_decode(data));
