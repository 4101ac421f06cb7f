//! Throughput benchmark: ingest (flush per event, group commit) and replay from an export, as ratios to ed25519 rates measured in the same run.
//!
//! Run: `cargo bench -p ledger-core --bench throughput` (add `-- --quick` for a smaller run).

use std::hint::black_box;
use std::time::Instant;

use ledger_core::admission::{decode_event, verify_event};
use ledger_core::bytes::Digest;
use ledger_core::crypto::{verify_many, KeyCache, SecretKey};
use ledger_core::dev::{split_cycles, DevNetwork, SignatureSample};
use ledger_core::export::{write_record, ExportReader};
use ledger_core::ledger::Limits;
use ledger_core::replay::{replay_stream, ReplayError, ReplayOptions};
use ledger_core::store::{Durability, Store};
use ledger_core::types::{Chamber, Role};
use ledger_core::writer::Signed;

const MINES: usize = 8;
const SORTERS: usize = 4;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn rate(n: usize, f: impl FnOnce()) -> f64 {
    let t = Instant::now();
    f();
    n as f64 / t.elapsed().as_secs_f64()
}

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
}

/// `n` valid events in a dependency-respecting order: cycles of register, dispatch, receive, split.
fn events(dev: &DevNetwork, n: usize) -> Vec<Signed> {
    let mines: Vec<String> = (0..MINES).map(|i| format!("mine-{i}")).collect();
    let sorters: Vec<String> = (0..SORTERS).map(|i| format!("sorter-{i}")).collect();
    let mines: Vec<&str> = mines.iter().map(String::as_str).collect();
    let sorters: Vec<&str> = sorters.iter().map(String::as_str).collect();
    let mut out = Vec::with_capacity(n);
    split_cycles(dev, &mines, &sorters, n, |e| out.push(e));
    out
}

/// Reference ed25519 rates over a signature sample.
struct Sigs(SignatureSample);

impl Sigs {
    fn new(n: usize) -> Sigs {
        Sigs(SignatureSample::new(n))
    }

    /// `verify_strict` on one core, per second.
    fn strict_1core(&self) -> f64 {
        let s = &self.0;
        rate(s.messages.len(), || {
            for (m, sig) in s.messages.iter().zip(&s.signatures) {
                let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
                black_box(s.key.verify_strict(m, &sig).is_ok());
            }
        })
    }

    /// `verify_batch` in batches of 256 on all cores, per second.
    fn batch_all_cores(&self) -> f64 {
        let items = self.0.items();
        rate(items.len(), || {
            assert!(verify_many(&items).iter().all(|ok| *ok))
        })
    }
}

/// Runs `work` (which returns events/s) `rounds` times, each right after measuring `reference`,
/// and returns the medians of the rates, the reference and their ratio.
fn measured(
    rounds: usize,
    mut reference: impl FnMut() -> f64,
    mut work: impl FnMut() -> f64,
) -> (f64, f64, f64) {
    let (mut rates, mut refs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let r = reference();
        let w = work();
        rates.push(w);
        refs.push(r);
        ratios.push(w / r);
    }
    (median(rates), median(refs), median(ratios))
}

fn reference(sigs: &Sigs) {
    let strict = median((0..3).map(|_| sigs.strict_1core()).collect());
    let batch = median((0..3).map(|_| sigs.batch_all_cores()).collect());
    let key = SecretKey::from_bytes(&[5; 32]);
    let net = Digest([1; 32]);
    let sign = rate(2_000, || {
        for m in &sigs.0.messages[..2_000] {
            black_box(key.sign_event(&net, m));
        }
    });
    let big = vec![3u8; 64 << 20];
    let sha = rate(big.len(), || {
        black_box(ledger_core::crypto::sha256(&[&big]));
    });
    println!("reference  verify_strict, 1 core            {strict:>10.0} /s");
    println!("reference  verify_batch(256), all cores     {batch:>10.0} /s");
    println!("reference  sign                             {sign:>10.0} /s");
    println!(
        "reference  sha256                           {:>10.0} MB/s",
        sha / 1e6
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "custody throughput benchmark ({cores} cores{})",
        if quick { ", quick" } else { "" }
    );
    let only: Option<String> = std::env::args().skip_while(|a| a != "--only").nth(1);
    let run = |part: &str| only.as_deref().is_none_or(|o| o == part);
    let sigs = Sigs::new(if quick { 4_000 } else { 16_000 });
    reference(&sigs);
    let dev = network();
    let keys = KeyCache::default();
    let network = dev.network();

    if run("components") {
        components(&dev, &network, &keys);
    }
    if run("ingest") {
        ingest(&dev, &sigs, quick);
    }
    if run("replay") {
        replay(&dev, &sigs, quick);
    }
}

fn components(dev: &DevNetwork, network: &Digest, keys: &KeyCache) {
    let genesis = dev.genesis();
    // Admission alone (decode, shape, id, verify_strict) on one core, for context.
    let sample = events(dev, 4_000);
    let admit = rate(sample.len(), || {
        for s in &sample {
            black_box(verify_event(&s.bytes, network, keys).is_ok());
        }
    });
    println!("admission  decode+verify_strict, 1 core     {admit:>10.0} /s");
    let decode = rate(sample.len(), || {
        for s in &sample {
            black_box(decode_event(&s.bytes, network).is_ok());
        }
    });
    println!("component  decode+shape+id, 1 core          {decode:>10.0} /s");
    let verified: Vec<_> = sample
        .iter()
        .map(|s| verify_event(&s.bytes, network, keys).expect("valid"))
        .collect();
    let mut ledger =
        ledger_core::ledger::Ledger::new(genesis.clone(), Limits::default()).expect("genesis");
    let apply = rate(verified.len(), || {
        for v in verified {
            black_box(ledger.offer(v).expect("room"));
        }
    });
    println!("component  rules (Ledger::offer), 1 core    {apply:>10.0} /s");
}

/// An empty store in a new temporary directory (kept alive by the returned guard).
fn fresh_store(
    genesis: &ledger_core::types::Genesis,
    durability: Durability,
) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = Store::open_or_create(dir.path(), genesis, Limits::default()).expect("store");
    store.set_durability(durability);
    (dir, store)
}

fn ingest(dev: &DevNetwork, sigs: &Sigs, quick: bool) {
    let genesis = dev.genesis();
    let rounds = if quick { 1 } else { 3 };
    // (a) Ingest with a durable point (flush + fdatasync) per event; flush only for comparison.
    let singles = if quick { 300 } else { 2_000 };
    let evs = events(dev, singles);
    for durability in [Durability::Fsync, Durability::FlushOnly] {
        let (per_s, reference, ratio) = measured(
            rounds,
            || sigs.strict_1core(),
            || {
                let (_dir, mut store) = fresh_store(&genesis, durability);
                rate(evs.len(), || {
                    for s in &evs {
                        store.append(&s.bytes).expect("no fault").expect("admitted");
                    }
                })
            },
        );
        println!(
            "ingest     single event per commit, {:<9} {per_s:>8.0} events/s  ratio {ratio:.3} to verify_strict 1 core ({reference:.0}/s)",
            format!("{durability:?}"),
        );
    }
    // (a) Group commit: 256 events per durable point, the next group verified while one commits.
    let grouped = if quick { 10_240 } else { 51_200 };
    let evs: Vec<Vec<u8>> = events(dev, grouped).into_iter().map(|s| s.bytes).collect();
    for durability in [Durability::Fsync, Durability::FlushOnly] {
        let (per_s, reference, ratio) = measured(
            rounds,
            || sigs.strict_1core(),
            || {
                let (_dir, mut store) = fresh_store(&genesis, durability);
                rate(evs.len(), || {
                    let groups = evs.chunks(256).map(|c| c.to_vec());
                    store
                        .ingest(groups, |results| {
                            for res in results {
                                res.expect("admitted");
                            }
                        })
                        .expect("no fault");
                })
            },
        );
        println!(
            "ingest     group commit of 256, {:<9}     {per_s:>8.0} events/s  ratio {ratio:.3} to verify_strict 1 core ({reference:.0}/s), target >= 0.5",
            format!("{durability:?}"),
        );
    }
}

fn replay(dev: &DevNetwork, sigs: &Sigs, quick: bool) {
    let genesis = dev.genesis();
    // (b) Replay of 100,000 events from an export stream.
    let n = if quick { 20_000 } else { 100_000 };
    let mut export = Vec::new();
    for s in events(dev, n) {
        write_record(&mut export, &s.bytes).expect("write");
    }
    let (per_s, reference, ratio) = measured(
        if quick { 1 } else { 5 },
        || sigs.batch_all_cores(),
        || {
            let t = Instant::now();
            let replayed = replay_stream(&genesis, ReplayOptions::default(), || {
                Ok::<_, ReplayError>(ExportReader::new(&export[..]))
            })
            .expect("replay");
            let per_s = n as f64 / t.elapsed().as_secs_f64();
            assert!(
                replayed.report.intact() && replayed.report.applied == n as u64,
                "{:?}",
                replayed.report
            );
            per_s
        },
    );
    println!(
        "replay     {n} events from an export      {per_s:>8.0} events/s  ratio {ratio:.3} to verify_batch all cores ({reference:.0}/s), target >= 0.6"
    );
}
