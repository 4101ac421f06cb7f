//! Benchmark of `custody replay --file` on exports of 1,000,000 events: events/s as a ratio to 2-core batch verification measured in the same run, and peak RSS.

use std::hint::black_box;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use custody_tests::cli_binary;
use ledger_core::bytes::{Digest, ParcelId};
use ledger_core::codec;
use ledger_core::crypto::verify_many;
use ledger_core::dev::{split_cycles, DevNetwork, SignatureSample};
use ledger_core::event::{
    Body, Certify, ConfirmImport, Dispatch, NewParcel, ParcelRef, Receive, Register, Transform,
};
use ledger_core::export::write_record;
use ledger_core::rules::parcel_id;
use ledger_core::types::{Chamber, MemberId, Role};
use ledger_core::writer::FeedWriter;

const MINES: usize = 8;
const SORTERS: usize = 4;
const EXPORTERS: usize = 2;
const IMPORTERS: usize = 2;

fn network() -> DevNetwork {
    let mut dev = DevNetwork::new();
    let roles: [(&str, usize, &str, Role); 4] = [
        ("mine", MINES, "BW", Role::Mine),
        ("sorter", SORTERS, "BW", Role::Sorter),
        ("exporter", EXPORTERS, "BW", Role::Exporter),
        ("importer", IMPORTERS, "BE", Role::Importer),
    ];
    for (name, count, country, role) in roles {
        for i in 0..count {
            let sites: &[&str] = if role == Role::Mine { &["pit"] } else { &[] };
            dev = dev.member(
                &format!("{name}-{i}"),
                Chamber::Industry,
                country,
                &[role],
                sites,
            );
        }
    }
    dev.member(
        "authority",
        Chamber::Government,
        "BW",
        &[Role::Authority],
        &[],
    )
    .member(
        "authority-be",
        Chamber::Government,
        "BE",
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

/// Writes records until `n` are written; `put` returns false once the export is full.
struct Sink<'a> {
    out: &'a mut dyn Write,
    left: usize,
}

impl Sink<'_> {
    fn put(&mut self, bytes: &[u8]) -> bool {
        if self.left > 0 {
            write_record(&mut self.out, bytes).expect("write");
            self.left -= 1;
        }
        self.left > 0
    }
}

fn dispatch(parcel: ParcelId, head: Digest, to: &MemberId, certificate: Option<Digest>) -> Body {
    Body::Dispatch(Dispatch {
        parcel: ParcelRef { parcel, head },
        to: to.clone(),
        certificate,
        seal: "D".into(),
        deadline_ms: None,
    })
}

fn receive(parcel: ParcelId, head: Digest, carats: u64) -> Body {
    Body::Receive(Receive {
        parcel: ParcelRef { parcel, head },
        measured_carats: carats,
        seal_intact: true,
        note: String::new(),
    })
}

fn register(carats: u64, seal: String) -> Body {
    Body::Register(Register {
        site: "pit".parse().expect("slug"),
        carats,
        stones: 12,
        value_cents: Some(carats * 100),
        seal,
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// Whole custody chains: four mines' parcels each registered, dispatched to a sorter and
/// received; the sorter mixes the four into one (0.5% loss) and dispatches the mix to an
/// exporter, who receives it; the authority certifies it; the exporter ships it to an importer
/// abroad, who receives it; the importing country's authority confirms the import. 19 events and
/// 5 parcels per chain.
fn write_chains(dev: &DevNetwork, n: usize, out: &mut dyn Write) {
    let w = |name: String| dev.writer(&name).expect("member");
    let mut mines: Vec<FeedWriter> = (0..MINES).map(|i| w(format!("mine-{i}"))).collect();
    let mut sorters: Vec<FeedWriter> = (0..SORTERS).map(|i| w(format!("sorter-{i}"))).collect();
    let mut exporters: Vec<FeedWriter> =
        (0..EXPORTERS).map(|i| w(format!("exporter-{i}"))).collect();
    let mut importers: Vec<FeedWriter> =
        (0..IMPORTERS).map(|i| w(format!("importer-{i}"))).collect();
    let mut authority = w("authority".into());
    let mut authority_be = w("authority-be".into());
    let mut sink = Sink { out, left: n };
    let mut t = 1_780_000_000_000u64;
    for chain in 0.. {
        t += 10;
        let s = chain % SORTERS;
        let sorter = sorters[s].author().clone();
        let (mut inputs, mut total) = (Vec::new(), 0u64);
        for k in 0..4 {
            let m = (chain * 4 + k) % MINES;
            let carats = 1_000 + ((chain * 4 + k) % 500) as u64;
            let reg = mines[m].append(register(carats, format!("S{chain}-{k}")), t);
            let parcel = parcel_id(&reg.id, 0);
            let dis = mines[m].append(dispatch(parcel, reg.id, &sorter, None), t + 1);
            let rec = sorters[s].append(receive(parcel, dis.id, carats), t + 2);
            inputs.push(ParcelRef {
                parcel,
                head: rec.id,
            });
            total += carats;
            for e in [reg, dis, rec] {
                if !sink.put(&e.bytes) {
                    return;
                }
            }
        }
        let mixed = total - total / 200;
        let mix = sorters[s].append(
            Body::Transform(Transform {
                inputs,
                outputs: vec![NewParcel {
                    carats: mixed,
                    stones: 40,
                    value_cents: Some(total * 100),
                    seal: format!("M{chain}"),
                }],
            }),
            t + 3,
        );
        let parcel = parcel_id(&mix.id, 0);
        let (x, i) = (chain % EXPORTERS, chain % IMPORTERS);
        let exporter = exporters[x].author().clone();
        let importer = importers[i].author().clone();
        let d1 = sorters[s].append(dispatch(parcel, mix.id, &exporter, None), t + 4);
        let r1 = exporters[x].append(receive(parcel, d1.id, mixed), t + 5);
        let cert = authority.append(
            Body::Certify(Certify {
                number: format!("BW-{chain}"),
                exporter,
                importer: importer.clone(),
                destination: "BE".parse().expect("country"),
                parcels: vec![ParcelRef {
                    parcel,
                    head: r1.id,
                }],
                total_carats: mixed,
                value_cents: total * 100,
                origins: vec!["BW".parse().expect("country")],
                issued_on: "2026-05-01".parse().expect("date"),
                expires_on: "2026-12-31".parse().expect("date"),
            }),
            t + 6,
        );
        let d2 = exporters[x].append(dispatch(parcel, r1.id, &importer, Some(cert.id)), t + 7);
        let r2 = importers[i].append(receive(parcel, d2.id, mixed), t + 8);
        let confirm = authority_be.append(
            Body::ConfirmImport(ConfirmImport {
                certificate: cert.id,
                note: String::new(),
            }),
            t + 9,
        );
        for e in [mix, d1, r1, cert, d2, r2, confirm] {
            if !sink.put(&e.bytes) {
                return;
            }
        }
    }
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
