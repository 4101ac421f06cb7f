//! Fuzz target: the HTTP action parser, then body, shape check, signing and preview (body in custody_tests::fuzz::action_parser).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_tests::fuzz::action_parser(data));
