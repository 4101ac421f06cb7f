//! Replays every committed fuzz corpus and crash input through its target on stable, so a regression fails CI.
//!
//! `cargo test -p custody-tests --test fuzz_corpora -- --ignored write_seeds` rewrites the seeds.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use custody_tests::fuzz::{seeds, TARGETS};
use ledger_core::dev::DevNetwork;
use ledger_core::export::ExportReader;
use ledger_core::replay::{replay_stream, ReplayOptions};

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
fn every_crash_input_found_by_fuzzing_is_fixed() {
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
