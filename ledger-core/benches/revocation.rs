//! Late revocation benchmark: a key rotation arriving after a log of 1,000,000 events, whose cut
//! voids the last 10,000 events of one mine's feed, applied by the store (recompute and commit),
//! as a ratio to a full replay of the same log (`custody replay`: signature checks on all cores).
//!
//! Run: `cargo bench -p ledger-core --bench revocation` (add `-- --quick` for 100,000 events and
//! 1,000 revoked).

use std::time::Instant;

use ledger_core::dev::{dev_key, split_cycles, DevNetwork};
use ledger_core::event::{Body, GovAction, Govern};
use ledger_core::export::ExportReader;
use ledger_core::ledger::Limits;
use ledger_core::record::{endorse, record_id};
use ledger_core::replay::{replay_stream, ReplayError, ReplayOptions};
use ledger_core::rules::{Verdict, VoidReason};
use ledger_core::store::{Durability, Store};
use ledger_core::types::{Chamber, MemberId, Role};

const MINES: usize = 8;
const SORTERS: usize = 4;
/// Events per group commit while the log is built.
const GROUP: usize = 1024;

fn network() -> DevNetwork {
    let mut dev = DevNetwork::new();
    for i in 0..MINES {
        let name = format!("mine-{i}");
        dev = dev.member(&name, Chamber::Industry, "BW", &[Role::Mine], &["pit"]);
    }
    for i in 0..SORTERS {
        let name = format!("sorter-{i}");
        dev = dev.member(&name, Chamber::Industry, "BW", &[Role::Sorter], &[]);
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

fn member(s: &str) -> MemberId {
    s.parse().expect("literal member id")
}

/// The rotation of mine-0's key with `last_valid_seq`, endorsed by every chamber, as the
/// monitor's first event.
fn rotation(dev: &DevNetwork, last_valid_seq: u64) -> Vec<u8> {
    let network = dev.network();
    let action = GovAction::RotateKey {
        member: member("mine-0"),
        key: dev_key("mine-0/2").public(),
        last_valid_seq,
    };
    let id = record_id(&network, 1, &network, &action);
    let endorsements = ["authority", "mine-1", "monitor"]
        .iter()
        .map(|m| endorse(&dev_key(m), member(m), &id))
        .collect();
    let body = Body::Govern(Govern {
        version: 1,
        prev: network,
        action,
        endorsements,
    });
    let mut monitor = dev.writer("monitor").expect("member");
    monitor.append(body, 1_790_000_000_000).bytes
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (n, revoked) = if quick {
        (100_000, 1_000)
    } else {
        (1_000_000, 10_000)
    };
    let dev = network();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        Store::open_or_create(dir.path(), &dev.genesis(), Limits::default()).expect("store");
    store.set_durability(Durability::FlushOnly);
    let mines: Vec<String> = (0..MINES).map(|i| format!("mine-{i}")).collect();
    let sorters: Vec<String> = (0..SORTERS).map(|i| format!("sorter-{i}")).collect();
    let mines: Vec<&str> = mines.iter().map(String::as_str).collect();
    let sorters: Vec<&str> = sorters.iter().map(String::as_str).collect();
    let mut group: Vec<Vec<u8>> = Vec::with_capacity(GROUP);
    let t = Instant::now();
    split_cycles(&dev, &mines, &sorters, n, |s| {
        group.push(s.bytes);
        if group.len() == GROUP {
            store.append_batch(&group).expect("no fault");
            group.clear();
        }
    });
    store.append_batch(&group).expect("no fault");
    store.set_durability(Durability::Fsync);
    eprintln!(
        "log of {} events built in {:.1} s",
        store.len(),
        t.elapsed().as_secs_f64()
    );
    let feed = store
        .ledger()
        .feed(&member("mine-0"))
        .expect("feed")
        .ids
        .len() as u64;
    let cut = feed - revoked;

    let mut export = Vec::new();
    store.export(&mut export).expect("export");
    let t = Instant::now();
    let replayed = replay_stream(&dev.genesis(), ReplayOptions::default(), || {
        Ok::<_, ReplayError>(ExportReader::new(&export[..]))
    })
    .expect("replay");
    let replay = t.elapsed().as_secs_f64();
    assert_eq!(replayed.report.stored, n as u64);
    drop(replayed);
    drop(export);

    let bytes = rotation(&dev, cut);
    let t = Instant::now();
    store.append(&bytes).expect("no fault").expect("admitted");
    let late = t.elapsed().as_secs_f64();
    let count = |r: VoidReason| {
        store
            .ledger()
            .events()
            .values()
            .filter(|m| m.verdict == Verdict::Void(r))
            .count()
    };
    let (cut_events, downstream) = (
        count(VoidReason::RevokedKey),
        count(VoidReason::UnknownParcel),
    );
    assert_eq!(cut_events as u64, revoked);
    println!(
        "late revocation: {n} events, {cut_events} void revoked-key (and {downstream} void \
         unknown-parcel downstream): applied in {late:.2} s; full replay {replay:.2} s; \
         ratio {:.3}",
        late / replay
    );
}
