//! Benchmark of `custody replay --file` on exports of 1,000,000 events: events/s as a ratio to 2-core batch verification measured in the same run, and peak RSS.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use custody_tests::cli_binary;
use custody_tests::workload::{chains, network, MINES, SORTERS};
use ledger_core::codec;
use ledger_core::crypto::verify_many;
use ledger_core::dev::{split_cycles, DevNetwork, SignatureSample};
use ledger_core::export::write_record;

/// Whole custody chains, as export records.
fn write_chains(dev: &DevNetwork, n: usize, out: &mut dyn Write) {
    chains(dev, n, |e| {
        write_record(&mut &mut *out, &e.bytes).expect("write")
    });
}

/// A parcel-heavy stress case (the throughput benchmark's workload): cycles of register,
/// dispatch, receive and a split in two (1% loss), 0.75 parcels per event.
fn write_splits(dev: &DevNetwork, n: usize, out: &mut dyn Write) {
    let mines: Vec<String> = (0..MINES).map(|i| format!("mine-{i}")).collect();
    let sorters: Vec<String> = (0..SORTERS).map(|i| format!("sorter-{i}")).collect();
    let mines: Vec<&str> = mines.iter().map(String::as_str).collect();
    let sorters: Vec<&str> = sorters.iter().map(String::as_str).collect();
    split_cycles(dev, &mines, &sorters, n, |e| {
        write_record(&mut &mut *out, &e.bytes).expect("write")
    });
}

/// `verify_batch` in batches of 256 on both cores, signatures per second (median of 3).
fn batch_all_cores() -> f64 {
    let sample = SignatureSample::new(50_000);
    let items = sample.items();
    let mut rates: Vec<f64> = (0..3)
        .map(|_| {
            let t = Instant::now();
            assert!(black_box(verify_many(&items)).iter().all(|ok| *ok));
            items.len() as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

/// Replays `export` with the CLI `rounds` times, each right after measuring the reference rate;
/// prints every round and the median.
fn run(name: &str, n: usize, export: &Path, genesis: &Path, rounds: usize) {
    let mut results = Vec::new();
    for round in 0..rounds {
        let reference = batch_all_cores();
        let t = Instant::now();
        let out = Command::new(cli_binary!())
            .args(["--json", "--stats", "replay", "--file"])
            .arg(export)
            .arg("--genesis")
            .arg(genesis)
            .output()
            .expect("run custody");
        let secs = t.elapsed().as_secs_f64();
        assert!(
            out.status.success(),
            "replay failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary: serde_json::Value = serde_json::from_slice(&out.stdout).expect("summary");
        assert_eq!(summary["events"], n as u64);
        assert_eq!(summary["intact"], true);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let peak = stderr
            .lines()
            .find_map(|l| l.split("peak RSS ").nth(1))
            .and_then(|v| v.trim_end_matches(" MiB").parse::<f64>().ok())
            .expect("peak RSS in --stats");
        let per_s = n as f64 / secs;
        println!(
            "{name} round {round}: {per_s:.0} events/s (whole process, {secs:.2} s), verify_batch 2 cores {reference:.0}/s, ratio {:.3}, peak RSS {peak:.1} MiB; parcels {}, findings {}",
            per_s / reference,
            summary["parcels"],
            summary["findings"]
        );
        results.push((per_s / reference, per_s, reference, peak));
    }
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, per_s, reference, peak) = results[results.len() / 2];
    println!(
        "replay       {name}, {n} events: {per_s:.0} events/s, ratio {ratio:.3} to verify_batch 2 cores ({reference:.0}/s) (target >= 0.6); peak RSS {peak:.1} MiB (target < 500 MiB)"
    );
}

type Workload = fn(&DevNetwork, usize, &mut dyn Write);

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let n = if quick { 100_000 } else { 1_000_000 };
    // CUSTODY_BENCH_DIR keeps the exports (and reuses them) for profiling; a temporary directory otherwise.
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("CUSTODY_BENCH_DIR")
        .map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);
    let dev = network();
    let genesis = dir.join("genesis.bin");
    std::fs::write(&genesis, codec::encode(&dev.genesis())).expect("genesis");
    println!(
        "custody replay benchmark ({} cores{})",
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        if quick { ", quick" } else { "" }
    );
    let workloads: [(&str, Workload); 2] = [("chains", write_chains), ("splits", write_splits)];
    for (name, write) in workloads {
        if only.as_deref().is_some_and(|o| o != name) {
            continue;
        }
        let export = dir.join(format!("{name}-{n}.export"));
        let t = Instant::now();
        if !export.exists() {
            let mut out = BufWriter::new(std::fs::File::create(&export).expect("export"));
            write(&dev, n, &mut out);
            out.flush().expect("flush");
        }
        let size = std::fs::metadata(&export).expect("export").len();
        println!(
            "{name}: export of {n} events, {:.1} MiB, ready in {:.1?}",
            size as f64 / 1048576.0,
            t.elapsed()
        );
        run(name, n, &export, &genesis, if quick { 1 } else { 3 });
    }
}
