//! Feed proofs benchmark: inclusion and consistency proofs of a 1,000,000-leaf feed from its stored
//! tree, as a ratio to recomputing them from the leaf list; and the memory a feed costs per event.
//!
//! Run: `cargo bench -p ledger-core --bench feed_proofs` (add `-- --quick` for a smaller run).

use std::hint::black_box;
use std::time::Instant;

use ledger_core::admission::verify_events;
use ledger_core::bytes::Digest;
use ledger_core::crypto::KeyCache;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Flag, FlagCode, FlagTarget};
use ledger_core::feed_tree::FeedTree;
use ledger_core::ledger::{Ledger, Limits};
use ledger_core::merkle::{consistency_proof, inclusion_proof, leaf_hash};

/// Events signed, verified and offered at a time while a feed is built.
const CHUNK: usize = 4096;

/// The resident set of this process, in bytes (Linux).
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// A ledger holding one feed of `events` flags (no parcels), built in chunks so that the events
/// in flight stay small; prints the resident set growth per event.
fn memory(events: usize) {
    let dev = DevNetwork::standard();
    let network = dev.network();
    let keys = KeyCache::default();
    let mut ledger = Ledger::new(dev.genesis(), Limits::default()).expect("dev genesis");
    let mut monitor = dev.writer("monitor").expect("member");
    let target = FlagTarget::Member("mine-zw".parse().expect("literal member id"));
    let before = rss_bytes();
    let mut done = 0;
    while done < events {
        let n = CHUNK.min(events - done);
        let bytes: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let body = Body::Flag(Flag {
                    target: target.clone(),
                    code: FlagCode::Other,
                    text: String::new(),
                });
                monitor
                    .append(body, 1_700_000_000_000 + (done + i) as u64)
                    .bytes
            })
            .collect();
        for ev in verify_events(&bytes, &network, &keys) {
            ledger
                .offer(ev.expect("admissible"))
                .expect("pending has room");
        }
        done += n;
    }
    let after = rss_bytes();
    let feed = ledger
        .feed(&"monitor".parse().expect("literal member id"))
        .expect("monitor's feed");
    assert_eq!(feed.ids.len(), events);
    println!(
        "memory     ledger with one feed of {events} events: {:.0} bytes/event (resident set growth), of which the feed tree {:.0}",
        after.saturating_sub(before) as f64 / events as f64,
        feed.tree().heap_bytes() as f64 / events as f64
    );
}

/// Spread, repeatable pseudo-random numbers below `n` (a fixed LCG: the same run each time).
fn picks(n: u64, count: usize) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (x >> 11) % n
        })
        .collect()
}

/// Seconds per call of `f` over `inputs`.
fn per_call<T>(inputs: &[T], mut f: impl FnMut(&T)) -> f64 {
    let t = Instant::now();
    for i in inputs {
        f(i);
    }
    t.elapsed().as_secs_f64() / inputs.len() as f64
}

/// Proof generation from the stored tree and from the leaf list, for a feed of `n` leaves.
fn proofs(n: u64) {
    let leaves: Vec<Digest> = (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect();
    let t = Instant::now();
    let mut tree = FeedTree::new();
    for l in &leaves {
        tree.push(*l);
    }
    let build = t.elapsed().as_secs_f64();
    println!(
        "tree       {n} leaves: built in {build:.3} s; {:.1} bytes/leaf held ({} digests of 32 bytes ~ {:.2} per leaf)",
        tree.heap_bytes() as f64 / n as f64,
        tree.heap_bytes() / 32,
        tree.heap_bytes() as f64 / 32.0 / n as f64
    );
    let (fast, slow) = (picks(n, 20_000), picks(n, 10));
    let usz = |i: u64| usize::try_from(i).expect("fits");
    let tree_inc = per_call(&fast, |i| {
        black_box(tree.inclusion(*i, n).expect("in range"));
    });
    let list_inc = per_call(&slow, |i| {
        black_box(inclusion_proof(&leaves, usz(*i)).expect("in range"));
    });
    let tree_con = per_call(&fast, |i| {
        black_box(tree.consistency(*i, n).expect("in range"));
    });
    let list_con = per_call(&slow, |i| {
        black_box(consistency_proof(&leaves, usz(*i)).expect("in range"));
    });
    let same = slow.iter().all(|i| {
        tree.inclusion(*i, n).ok() == inclusion_proof(&leaves, usz(*i))
            && tree.consistency(*i, n).ok() == consistency_proof(&leaves, usz(*i))
    });
    assert!(same, "the tree's proofs differ from the leaf list's");
    for (what, t, l) in [
        ("inclusion", tree_inc, list_inc),
        ("consistency", tree_con, list_con),
    ] {
        println!(
            "proof      {what:<11} of {n} leaves: tree {:>8.2} us, leaf list {:>10.0} us: {:>8.0}x faster",
            t * 1e6,
            l * 1e6,
            l / t
        );
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    proofs(if quick { 100_000 } else { 1_000_000 });
    memory(if quick { 20_000 } else { 100_000 });
}
