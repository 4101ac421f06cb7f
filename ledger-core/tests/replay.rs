//! Replay of export streams: tampering is caught and located; reordering and duplication change nothing.

mod common;

use common::{scenario, Rng};
use ledger_core::export::{write_record, ExportReader};
use ledger_core::replay::{replay_stream, ReplayError, ReplayOptions, Replayed};

fn export(events: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        write_record(&mut out, e).expect("write to vec");
    }
    out
}

fn replay(genesis: &ledger_core::types::Genesis, stream: &[u8]) -> Replayed {
    replay_stream(genesis, ReplayOptions::default(), || {
        Ok::<_, ReplayError>(ExportReader::new(stream))
    })
    .expect("replay runs")
}

#[test]
fn tampering_is_caught_and_located() {
    let (net, events) = scenario(21, 300);
    let genesis = net.dev.genesis();
    let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
    let clean = replay(&genesis, &export(&bytes));
    assert!(clean.report.intact());
    assert_eq!(clean.report.stored, 300);

    // A flipped byte inside record 120.
    let mut flipped = bytes.clone();
    flipped[120][40] ^= 0x01;
    let r = replay(&genesis, &export(&flipped)).report;
    assert!(!r.intact());
    let first = r.first_failure.expect("located");
    assert_eq!(first.index, 120, "{first:?}");

    // A dropped event: the log no longer holds together, and the first event that needed it is named.
    let mut dropped = bytes.clone();
    dropped.remove(50);
    let r = replay(&genesis, &export(&dropped)).report;
    assert!(!r.intact());
    let first = r.first_failure.expect("located");
    assert_eq!(first.reason, "missing-dependency");
    assert!(first.index >= 50, "{first:?}");
    assert!(r.admission_failures["missing-dependency"] >= 1);

    // A truncated tail.
    let whole = export(&bytes);
    let r = replay(&genesis, &whole[..whole.len() - 10]).report;
    assert!(!r.intact());
    assert!(r.stream_error.is_some());
    let first = r.first_failure.expect("located");
    assert_eq!((first.index, first.reason.as_str()), (299, "truncated"));
    assert_eq!(r.stored, 299);
}

#[test]
fn reordered_and_duplicated_exports_give_the_same_summary() {
    let (net, events) = scenario(22, 200);
    let genesis = net.dev.genesis();
    let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
    let clean = replay(&genesis, &export(&bytes)).report;
    let mut rng = Rng(5);
    let mut messy = bytes.clone();
    for i in (1..messy.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        messy.swap(i, j);
    }
    for i in 0..20 {
        messy.push(bytes[i * 7].clone());
    }
    let r = replay(&genesis, &export(&messy)).report;
    assert!(r.intact(), "{r:?}");
    assert_eq!(r.duplicates, 20);
    assert_eq!(
        (r.stored, r.applied, &r.void, r.state_root),
        (clean.stored, clean.applied, &clean.void, clean.state_root)
    );
}
