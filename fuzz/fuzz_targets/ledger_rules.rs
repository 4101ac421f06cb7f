//! Fuzz target: every body a member can sign, through its feed writer, into the ledger and the reports (body in custody_tests::fuzz::ledger_rules).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| custody_tests::fuzz::ledger_rules(data));
