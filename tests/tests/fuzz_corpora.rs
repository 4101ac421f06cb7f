//! Replays every committed fuzz corpus and crash input through its target on stable, so a regression fails CI.
//!
//! `cargo test -p custody-tests --test fuzz_corpora -- --ignored write_seeds` rewrites the seeds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use custody_tests::fuzz::{seeds, TARGETS};
use ledger_core::admission::verify_event;
use ledger_core::crypto::KeyCache;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{
    Body, NewParcel, ParcelRef, Register, Retire, RetireCause, Transform, MAX_CARATS,
    MAX_VALUE_CENTS,
};
use ledger_core::export::ExportReader;
use ledger_core::findings::{all_findings, Finding, FindingCode};
use ledger_core::ledger::{Ledger, Limits};
use ledger_core::replay::{replay_events, replay_stream, ReplayOptions};
use ledger_core::rules::{parcel_id, Verdict};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Runs every file under `fuzz/<kind>/<target>/` through its target; returns (target, files run)
/// and the files that panicked.
fn replay(kind: &str) -> (Vec<(&'static str, usize)>, Vec<String>) {
    let (mut counts, mut failures) = (Vec::new(), Vec::new());
    for (name, target) in TARGETS {
        let inputs = files(&fuzz_dir().join(kind).join(name));
        for path in &inputs {
            let data = std::fs::read(path).expect("readable corpus file");
            if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
                failures.push(path.display().to_string());
            }
        }
        counts.push((name, inputs.len()));
    }
    (counts, failures)
}

#[test]
fn every_corpus_input_runs_without_a_panic() {
    let (counts, failures) = replay("corpus");
    for (name, n) in &counts {
        assert!(*n > 0, "fuzz/corpus/{name} is empty or missing");
    }
    assert!(failures.is_empty(), "inputs that panic: {failures:#?}");
}

#[test]
fn every_regression_input_runs_without_a_panic() {
    let (_, failures) = replay("regressions");
    assert!(
        failures.is_empty(),
        "crash inputs that panic again: {failures:#?}"
    );
}

#[test]
fn fresh_seeds_run_without_a_panic() {
    for (target, name, bytes) in seeds() {
        let (_, run) = TARGETS
            .iter()
            .find(|(t, _)| *t == target)
            .expect("seeds name a target");
        run(&bytes);
        assert!(
            !bytes.is_empty() || name == "export-0",
            "seed {target}/{name} is empty"
        );
    }
}

#[test]
fn the_seed_story_is_valid_so_mutants_start_deep_in_the_rules() {
    let (_, _, export) = seeds()
        .into_iter()
        .find(|(t, n, _)| *t == "export_reader" && n == "export-7")
        .expect("the whole story is a seed");
    let genesis = DevNetwork::standard().genesis();
    let replayed = replay_stream(&genesis, ReplayOptions::default(), || {
        Ok(ExportReader::new(&export[..]))
    })
    .expect("dev genesis");
    assert!(replayed.report.intact(), "{:?}", replayed.report);
    assert_eq!(replayed.report.applied, 7, "{:?}", replayed.report);
}

#[test]
#[ignore = "writes the seed files into fuzz/corpus"]
fn write_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create corpus directory");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    }
}

/// A mine registers `n` parcels of `carats` each declared at `value`, merges them into one
/// parcel of `out_carats` declared at `out_value`, and `custody replay` computes its findings.
fn merge_findings(
    n: usize,
    carats: u64,
    value: u64,
    out_carats: u64,
    out_value: u64,
) -> Vec<Finding> {
    let dev = DevNetwork::standard();
    let mut mine = dev.writer("mine-bw").expect("dev member");
    let mut events = Vec::new();
    let mut inputs = Vec::new();
    for t in 0..n as u64 {
        let reg = mine.append(
            Body::Register(Register {
                site: "jwaneng".parse().expect("site"),
                carats,
                stones: 1,
                value_cents: Some(value),
                seal: String::new(),
                extracted_on: "2026-01-15".parse().expect("date"),
            }),
            t,
        );
        inputs.push(ParcelRef {
            parcel: parcel_id(&reg.id, 0),
            head: reg.id,
        });
        events.push(reg.bytes);
    }
    let outputs = vec![NewParcel {
        carats: out_carats,
        stones: 2,
        value_cents: Some(out_value),
        seal: String::new(),
    }];
    let merge = mine.append(Body::Transform(Transform { inputs, outputs }), n as u64);
    events.push(merge.bytes);
    let replayed = replay_events(&dev.genesis(), &events, ReplayOptions::default()).expect("dev");
    assert_eq!(
        replayed.report.applied,
        n as u64 + 1,
        "{:?}",
        replayed.report
    );
    all_findings(&replayed.ledger)
}

/// A member declares the largest values on parcels and merges them: the value-per-carat finding
/// of `custody replay` summed values near `u64::MAX` in a `u64` and panicked on the overflow
/// (found in review while adding the reports to the fuzz targets; values are now also bounded
/// by `MAX_VALUE_CENTS`, and the sums saturate).
#[test]
fn huge_declared_values_merged_do_not_crash_the_findings() {
    let findings = merge_findings(2, 500, MAX_VALUE_CENTS, 1_000, MAX_VALUE_CENTS);
    assert!(
        !findings.iter().any(|f| f.code == FindingCode::ValueJump),
        "equal value per carat in and out is no jump: {findings:?}"
    );
}

/// 200 parcels of the most carats a field allows, merged into one declared at the largest value:
/// the value-per-carat comparison multiplied past `u128::MAX` and panicked; the jump is reported.
#[test]
fn huge_carats_and_values_merged_do_not_crash_the_findings() {
    let findings = merge_findings(200, MAX_CARATS, 1, MAX_CARATS, MAX_VALUE_CENTS);
    assert!(
        findings.iter().any(|f| f.code == FindingCode::ValueJump),
        "a parcel declared at MAX_VALUE_CENTS out of inputs worth 200 cents is a jump: {findings:?}"
    );
}

/// One mine registers the most carats a field allows, over and over, and either retires each
/// parcel or transforms it into one of a hundredth of a carat: the ledger's carat totals passed
/// `u64::MAX` and panicked (found in review of what the fuzz targets reach; 32 events per input
/// cannot). The totals are now 128 bits wide.
#[test]
fn registering_and_losing_the_largest_parcels_over_and_over_does_not_crash_the_ledger() {
    let dev = DevNetwork::standard();
    let mut mine = dev.writer("mine-bw").expect("dev member");
    let (network, keys) = (dev.network(), KeyCache::default());
    let mut ledger = Ledger::new(dev.genesis(), Limits::default()).expect("dev genesis");
    let mut offer = |body: Body, t: u64| {
        let e = mine.append(body, t);
        let ev = verify_event(&e.bytes, &network, &keys).expect("a valid event");
        ledger.offer(ev).expect("nothing pends");
        e.id
    };
    let cycles = 2 * (u64::MAX / MAX_CARATS + 50);
    for t in 0..cycles {
        let reg = offer(
            Body::Register(Register {
                site: "jwaneng".parse().expect("site"),
                carats: MAX_CARATS,
                stones: 1,
                value_cents: None,
                seal: String::new(),
                extracted_on: "2026-01-15".parse().expect("date"),
            }),
            t,
        );
        let parcel = ParcelRef {
            parcel: parcel_id(&reg, 0),
            head: reg,
        };
        let body = if t % 2 == 0 {
            Body::Retire(Retire {
                parcel,
                cause: RetireCause::Lost,
                note: String::new(),
            })
        } else {
            let dust = NewParcel {
                carats: 1,
                stones: 1,
                value_cents: None,
                seal: String::new(),
            };
            Body::Transform(Transform {
                inputs: vec![parcel],
                outputs: vec![dust],
            })
        };
        offer(body, t);
    }
    // The totals are 128 bits wide: exact, past where 64 bits overflowed.
    let totals = ledger.totals();
    let (n, max) = (u128::from(cycles), u128::from(MAX_CARATS));
    assert_eq!(totals.registered, n * max);
    assert!(totals.registered > u128::from(u64::MAX));
    assert_eq!(totals.retired, n / 2 * max);
    assert_eq!(totals.transform_loss, n / 2 * (max - 1));
    let events = ledger.events();
    assert!(
        events.values().all(|m| m.verdict == Verdict::Applied),
        "every event is applied"
    );
    assert_eq!(events.len() as u64, 2 * cycles);
}
