//! Benchmark of auditing one parcel from its proof bundle (docs/bundle.md) in a log of 1,000,000
//! events on a real node over loopback, next to `--full` on the same log; offline verification
//! against `verify_strict` on the bundle's signatures alone; checkpoint production and the
//! witness check with 100 feeds, against one `verify_strict`. Every ratio is to a reference
//! measured in the same run.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use custody_tests::workload::{chains, network};
use custody_tests::{cli_binary, node_binary, NodeSpec, TestNode};
use ledger_core::admission::verify_event;
use ledger_core::bundle::{Bundle, BundleVerifier};
use ledger_core::bytes::ParcelId;
use ledger_core::checkpoint::{checkpoint_at, feed_heads_at, feeds_root};
use ledger_core::crypto::KeyCache;
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Flag, FlagCode, FlagTarget, Register, Witness};
use ledger_core::ledger::Limits;
use ledger_core::merkle::verify_consistency;
use ledger_core::rules::parcel_id;
use ledger_core::store::{Durability, Store, MAX_GROUP};
use ledger_core::types::{Chamber, Role};
use ledger_core::witness::{check, replica_proofs, WitnessState};

/// The median of `rounds` timings of `f`.
fn median(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Writes a store of `n` chain events at `path`, then a checkpoint of it cosigned by the
/// monitor; returns a parcel from the middle of the log whose ancestry is a whole chain.
fn prepare_store(dev: &DevNetwork, n: usize, path: &std::path::Path) -> ParcelId {
    let mut store = Store::open_or_create(path, &dev.genesis(), Limits::default()).expect("store");
    store.set_durability(Durability::FlushOnly);
    let mut events = Vec::with_capacity(n);
    let mut mixes = Vec::new();
    let mut last_time = 0;
    chains(dev, n, |e| {
        let v = verify_event(&e.bytes, &dev.network(), &KeyCache::default()).expect("valid");
        if matches!(v.body(), Body::Transform(_)) {
            mixes.push(parcel_id(&e.id, 0));
        }
        last_time = last_time.max(v.header().time_ms);
        events.push(e.bytes);
    });
    let groups = events.chunks(MAX_GROUP).map(<[Vec<u8>]>::to_vec);
    store
        .ingest(groups, |results| assert!(results.iter().all(Result::is_ok)))
        .expect("ingest");
    let cutoff = last_time + 1;
    let t = Instant::now();
    let (cp, heads) = checkpoint_at(store.ledger(), cutoff, |_| None);
    println!(
        "checkpoint of {n} events ({} feeds, {} parcels): {:.1} ms",
        cp.feeds,
        cp.parcels,
        t.elapsed().as_secs_f64() * 1e3
    );
    let mut monitor = dev.writer("monitor").expect("member");
    let witness = monitor.append(
        Body::Witness(Witness {
            checkpoint: cp.clone(),
            cosignatures: Vec::new(),
        }),
        cutoff + 1,
    );
    assert!(store.append(&witness.bytes).expect("store").is_ok());
    store.keep_checkpoint(&cp, &heads).expect("keep");
    mixes[mixes.len() / 2]
}

/// Runs the CLI; returns its JSON output and how long the whole process took.
fn audit(node: &TestNode, parcel: &ParcelId, extra: &[&str]) -> (serde_json::Value, Duration) {
    let t = Instant::now();
    let out = Command::new(cli_binary!())
        .args(["--json", "--node", &format!("http://{}", node.http)])
        .args(["audit", "parcel", &parcel.to_hex()])
        .args(extra)
        .output()
        .expect("run custody");
    let took = t.elapsed();
    assert!(
        out.status.success(),
        "audit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).expect("json"), took)
}

/// The explorer's parcel page at the node (HTTP over loopback), against the node's JSON of the
/// same parcel (`GET /v1/parcels/{id}`) as the reference.
fn explorer(node: &TestNode, parcel: &ParcelId, n: usize, rounds: usize) {
    let page = format!("/parcel/{}", parcel.to_hex());
    let json = format!("/v1/parcels/{}", parcel.to_hex());
    let first = Instant::now();
    let html = node.get(&page);
    let first = first.elapsed();
    assert_eq!(html.status, 200, "the parcel page");
    let took = median(rounds, || assert_eq!(node.get(&page).status, 200));
    let reference = median(rounds, || assert_eq!(node.get(&json).status, 200));
    println!(
        "explorer parcel page ({} history rows) in a log of {n} events: {:.1} ms at the node over loopback, median of {rounds} (target < 200 ms; first {:.1} ms); GET /v1/parcels/{{id}} {:.2} ms; ratio {:.1}",
        String::from_utf8_lossy(&html.body).matches("data-event=").count(),
        took.as_secs_f64() * 1e3,
        first.as_secs_f64() * 1e3,
        reference.as_secs_f64() * 1e3,
        took.as_secs_f64() / reference.as_secs_f64()
    );
}

/// One audit from the bundle and one with `--full` on a node serving `n` events.
fn loopback(dev: &DevNetwork, n: usize, rounds: usize) {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("node");
    let t = Instant::now();
    let parcel = prepare_store(dev, n, &home.join("data/store"));
    println!("log of {n} events written in {:.1?}", t.elapsed());
    let spec = NodeSpec {
        genesis: Some(dev.genesis()),
        ..NodeSpec::default()
    };
    let node = TestNode::start(&node_binary!(), &home, &spec);
    explorer(&node, &parcel, n, rounds);
    let rss_before = node.rss_kib();
    let state = dir.path().join("state.json");
    let state_args = ["--state", state.to_str().expect("path")];
    // The first bundle of a checkpoint the node kept before it started builds its parcel index
    // (a witness or an adopting node keeps the one it built with the checkpoint).
    let (_, first) = audit(&node, &parcel, &state_args);
    println!(
        "first audit after the node started (builds the checkpoint's parcel index): {:.0} ms",
        first.as_secs_f64() * 1e3
    );
    let mut bundled = serde_json::Value::Null;
    let took = median(rounds, || bundled = audit(&node, &parcel, &state_args).0);
    let size = bundled["proof"]["bytes"].as_u64().expect("size");
    let rss_after = node.rss_kib();
    println!(
        "node RSS {:.1} MiB before the first bundle, {:.1} MiB after (the checkpoint's parcel index, cached)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0
    );
    let (full, full_took) = audit(&node, &parcel, &["--full"]);
    for field in ["state", "origin", "ancestry", "history"] {
        assert_eq!(bundled[field], full[field], "{field}");
    }
    println!(
        "audit parcel ({} history events, {} proven, {} ancestry parcels) in a log of {n} events: bundle {size} bytes (target < 65,536); from the bundle {:.1} ms whole process (target < 100 ms), --full {:.0} ms; ratio {:.4}",
        bundled["history"].as_array().map_or(0, Vec::len),
        bundled["proof"]["proven_events"],
        bundled["ancestry"].as_array().map_or(0, Vec::len),
        took.as_secs_f64() * 1e3,
        full_took.as_secs_f64() * 1e3,
        took.as_secs_f64() / full_took.as_secs_f64()
    );
    offline(dev, &node, &parcel, rounds);
}

/// Offline verification of the node's bundle against `verify_strict` of its signatures alone.
fn offline(dev: &DevNetwork, node: &TestNode, parcel: &ParcelId, rounds: usize) {
    let reply = node.get(&format!("/v1/parcels/{}/bundle", parcel.to_hex()));
    assert_eq!(reply.status, 200);
    let bundle = Bundle::decode(&reply.body).expect("bundle");
    let genesis = dev.genesis();
    let network = dev.network();
    let t = Instant::now();
    let verifier = BundleVerifier::new(&genesis).expect("genesis");
    let setup = t.elapsed();
    let verify = median(rounds * 4, || {
        black_box(verifier.verify(&bundle, Some(1)).expect("verifies"));
    });
    let signatures = median(rounds * 4, || {
        let keys = KeyCache::default();
        for b in bundle
            .events
            .iter()
            .map(|e| &e.bytes)
            .chain(&bundle.witnesses)
        {
            black_box(verify_event(b, &network, &keys).expect("valid"));
        }
    });
    println!(
        "offline verification of the bundle ({} events, {} witnesses): {:.2} ms (after checking the genesis once, {:.2} ms); verify_strict of its signatures alone {:.2} ms; ratio {:.3} (target <= 1.25)",
        bundle.events.len(),
        bundle.witnesses.len(),
        verify.as_secs_f64() * 1e3,
        setup.as_secs_f64() * 1e3,
        signatures.as_secs_f64() * 1e3,
        verify.as_secs_f64() / signatures.as_secs_f64()
    );
}

/// Checkpoint production and the witness check with 100 feeds of `per_feed` events each.
fn hundred_feeds(per_feed: u64) {
    let mut dev = DevNetwork::new();
    for i in 0..100 {
        dev = dev.member(
            &format!("mine-{i}"),
            Chamber::Industry,
            "BW",
            &[Role::Mine],
            &["pit"],
        );
    }
    let dev = dev.member(
        "monitor",
        Chamber::CivilSociety,
        "ZA",
        &[Role::Monitor],
        &[],
    );
    let mut ledger =
        ledger_core::ledger::Ledger::new(dev.genesis(), Limits::default()).expect("genesis");
    let mut first: Option<Vec<u8>> = None;
    let keys = KeyCache::default();
    let t0 = 1_780_000_000_000;
    for i in 0..100 {
        let mut w = dev.writer(&format!("mine-{i}")).expect("member");
        for k in 0..per_feed {
            let e = w.append(
                Body::Register(Register {
                    site: "pit".parse().expect("slug"),
                    carats: 100 + k,
                    stones: 1,
                    value_cents: None,
                    seal: String::new(),
                    extracted_on: "2026-01-01".parse().expect("date"),
                }),
                t0 + k * 1000,
            );
            let v = verify_event(&e.bytes, &dev.network(), &keys).expect("valid");
            ledger.offer(v).expect("room");
            first.get_or_insert(e.bytes);
        }
    }
    let half = t0 + per_feed / 2 * 1000;
    let end = t0 + per_feed * 1000;
    let (old, old_heads) = checkpoint_at(&ledger, half, |_| None);
    let state = check(
        &WitnessState::default(),
        ledger.network(),
        &old,
        &old_heads,
        &Default::default(),
        verify_consistency,
    )
    .expect("first");
    let produce = median(9, || {
        black_box(checkpoint_at(&ledger, end, |_| None));
    });
    let feeds_only = median(9, || {
        let heads = feed_heads_at(&ledger, end);
        black_box(feeds_root(&heads));
    });
    let (new, heads) = checkpoint_at(&ledger, end, |_| None);
    let witness = median(9, || {
        let proofs = replica_proofs(&ledger, &state, &heads);
        black_box(
            check(
                &state,
                ledger.network(),
                &new,
                &heads,
                &proofs,
                verify_consistency,
            )
            .expect("extends"),
        );
    });
    let first = first.expect("an event");
    let one = median(99, || {
        black_box(verify_event(&first, ledger.network(), &KeyCache::default()).expect("valid"));
    });
    println!(
        "100 feeds of {per_feed} events ({} parcels): checkpoint production {:.2} ms, of which the feed heads {:.2} ms (the rest is the parcel index); witness check with consistency proofs {:.2} ms; one event's verify_strict {:.3} ms; ratios {:.0} and {:.0} signature checks",
        new.parcels,
        produce.as_secs_f64() * 1e3,
        feeds_only.as_secs_f64() * 1e3,
        witness.as_secs_f64() * 1e3,
        one.as_secs_f64() * 1e3,
        produce.as_secs_f64() / one.as_secs_f64(),
        witness.as_secs_f64() / one.as_secs_f64()
    );
    // The parcel index's slow path: a monitor's flag on every member and every mine site, so
    // that every parcel's leaf names two flags (D51).
    let mut monitor = dev.writer("monitor").expect("member");
    for i in 0..100 {
        let member: ledger_core::types::MemberId = format!("mine-{i}").parse().expect("member");
        for target in [
            FlagTarget::Member(member.clone()),
            FlagTarget::Site {
                member,
                site: "pit".parse().expect("slug"),
            },
        ] {
            let body = Body::Flag(Flag {
                target,
                code: FlagCode::Other,
                text: String::new(),
            });
            let e = monitor.append(body, t0 + i);
            let v = verify_event(&e.bytes, &dev.network(), &keys).expect("valid");
            ledger.offer(v).expect("room");
        }
    }
    let flagged = median(9, || {
        black_box(checkpoint_at(&ledger, end, |_| None));
    });
    println!(
        "with a flag on every member and every site: checkpoint production {:.2} ms, {:.3} times as long",
        flagged.as_secs_f64() * 1e3,
        flagged.as_secs_f64() / produce.as_secs_f64()
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 100_000 } else { 1_000_000 };
    println!(
        "custody bundle benchmark ({} cores{})",
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        if quick { ", quick" } else { "" }
    );
    hundred_feeds(if quick { 100 } else { 1000 });
    loopback(&network(), n, if quick { 3 } else { 5 });
}
