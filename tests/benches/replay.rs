//! Benchmark of `custody replay --file` on an export of 1,000,000 events: events/s as a ratio to 2-core batch verification measured in the same run, and peak RSS.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::process::Command;
use std::time::Instant;

use custody_tests::cli_binary;
use ledger_core::bytes::Digest;
use ledger_core::codec;
use ledger_core::crypto::{event_message, verify_many, verifying_key, SecretKey, SignatureItem};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Dispatch, NewParcel, ParcelRef, Receive, Register, Transform};
use ledger_core::export::write_record;
use ledger_core::rules::parcel_id;
use ledger_core::types::{Chamber, Role};
use ledger_core::writer::FeedWriter;

const MINES: usize = 8;
const SORTERS: usize = 4;

fn network() -> DevNetwork {
    let mut dev = DevNetwork::new();
    for i in 0..MINES {
        dev = dev.member(
            &format!("mine-{i}"),
            Chamber::Industry,
            "BW",
            &[Role::Mine],
            &["pit"],
        );
    }
    for i in 0..SORTERS {
        dev = dev.member(
            &format!("sorter-{i}"),
            Chamber::Industry,
            "BW",
            &[Role::Sorter],
            &[],
        );
    }
    dev.member(
        "authority",
        Chamber::Government,
        "BW",
        &[Role::Authority],
        &[],
    )
    .member(
        "monitor",
        Chamber::CivilSociety,
        "ZA",
        &[Role::Monitor],
        &[],
    )
}

/// Writes `n` events (cycles of register, dispatch, receive, split in two) as an export.
fn write_events(dev: &DevNetwork, n: usize, out: &mut impl Write) {
    let mut mines: Vec<FeedWriter> = (0..MINES)
        .map(|i| dev.writer(&format!("mine-{i}")).expect("member"))
        .collect();
    let mut sorters: Vec<FeedWriter> = (0..SORTERS)
        .map(|i| dev.writer(&format!("sorter-{i}")).expect("member"))
        .collect();
    let mut t = 1_780_000_000_000u64;
    let mut written = 0usize;
    let mut cycle = 0usize;
    while written < n {
        let (m, s) = (cycle % MINES, cycle % SORTERS);
        t += 1;
        let reg = mines[m].append(
            Body::Register(Register {
                site: "pit".parse().expect("slug"),
                carats: 1_000 + cycle as u64 % 500,
                stones: 12,
                value_cents: Some(50_000),
                seal: format!("S{cycle}"),
                extracted_on: "2026-01-01".parse().expect("date"),
            }),
            t,
        );
        let parcel = parcel_id(&reg.id, 0);
        let to = sorters[s].author().clone();
        let dis = mines[m].append(
            Body::Dispatch(Dispatch {
                parcel: ParcelRef {
                    parcel,
                    head: reg.id,
                },
                to,
                certificate: None,
                seal: "D".into(),
                deadline_ms: None,
            }),
            t,
        );
        let rec = sorters[s].append(
            Body::Receive(Receive {
                parcel: ParcelRef {
                    parcel,
                    head: dis.id,
                },
                measured_carats: 1_000 + cycle as u64 % 500,
                seal_intact: true,
                note: String::new(),
            }),
            t,
        );
        let split = sorters[s].append(
            Body::Transform(Transform {
                inputs: vec![ParcelRef {
                    parcel,
                    head: rec.id,
                }],
                outputs: vec![
                    NewParcel {
                        carats: 500,
                        stones: 6,
                        value_cents: None,
                        seal: "A".into(),
                    },
                    NewParcel {
                        carats: 490,
                        stones: 6,
                        value_cents: None,
                        seal: "B".into(),
                    },
                ],
            }),
            t,
        );
        for e in [reg, dis, rec, split] {
            if written < n {
                write_record(out, &e.bytes).expect("write");
                written += 1;
            }
        }
        cycle += 1;
    }
}

/// `verify_batch` in batches of 256 on all cores, signatures per second (median of 3).
fn batch_all_cores() -> f64 {
    let key = SecretKey::from_bytes(&[5; 32]);
    let vk = verifying_key(&key.public()).expect("key");
    let net = Digest([1; 32]);
    let payloads: Vec<Vec<u8>> = (0..50_000u32)
        .map(|i| [i.to_le_bytes().to_vec(), vec![7u8; 280]].concat())
        .collect();
    let sigs: Vec<_> = payloads.iter().map(|p| key.sign_event(&net, p)).collect();
    let messages: Vec<Vec<u8>> = payloads.iter().map(|p| event_message(&net, p)).collect();
    let items: Vec<SignatureItem> = messages
        .iter()
        .zip(&sigs)
        .map(|(m, s)| SignatureItem {
            key: vk,
            message: m,
            signature: *s,
        })
        .collect();
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

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    // CUSTODY_BENCH_DIR keeps the export (and reuses it) for profiling; a temporary directory otherwise.
    let temp = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("CUSTODY_BENCH_DIR")
        .map_or_else(|| temp.path().to_owned(), std::path::PathBuf::from);
    let dev = network();
    let genesis = dir.join("genesis.bin");
    std::fs::write(&genesis, codec::encode(&dev.genesis())).expect("genesis");
    let export = dir.join(format!("log-{n}.export"));
    let t = Instant::now();
    if !export.exists() {
        let mut out = BufWriter::new(std::fs::File::create(&export).expect("export"));
        write_events(&dev, n, &mut out);
        out.flush().expect("flush");
    }
    let size = std::fs::metadata(&export).expect("export").len();
    println!(
        "custody replay benchmark ({} cores): export of {n} events, {:.1} MiB, written in {:.1?}",
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        size as f64 / 1048576.0,
        t.elapsed()
    );
    let rounds = if quick { 1 } else { 3 };
    let mut results = Vec::new();
    for round in 0..rounds {
        let reference = batch_all_cores();
        let t = Instant::now();
        let out = Command::new(cli_binary!())
            .args(["--json", "--stats", "replay", "--file"])
            .arg(&export)
            .arg("--genesis")
            .arg(&genesis)
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
            "round {round}: {per_s:.0} events/s (whole process, {secs:.2} s), verify_batch 2 cores {reference:.0}/s, ratio {:.3}, peak RSS {peak:.1} MiB",
            per_s / reference
        );
        results.push((per_s / reference, per_s, reference, peak));
    }
    results.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (ratio, per_s, reference, peak) = results[results.len() / 2];
    println!(
        "replay       {n} events: {per_s:.0} events/s, ratio {ratio:.3} to verify_batch 2 cores ({reference:.0}/s) (target >= 0.6); peak RSS {peak:.1} MiB (target < 500 MiB)"
    );
}
