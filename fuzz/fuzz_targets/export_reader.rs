//! Fuzz target: the export stream reader and a replay of what it reads (body in custody_tests::fuzz::export_reader).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_tests::fuzz::export_reader(data));
