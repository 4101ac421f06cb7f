//! Fuzz target: event bytes through admission (decode, shape, signature) into a dev ledger (body in custody_tests::fuzz::event_admission).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_tests::fuzz::event_admission(data));
