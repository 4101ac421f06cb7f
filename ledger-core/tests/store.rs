//! The sled store: durable appends, reopen, rebuild of derived trees, pending persistence and corruption checks.

mod common;

use common::*;
use ledger_core::dev::DevNetwork;
use ledger_core::export::ExportReader;
use ledger_core::ledger::{Limits, Missing};
use ledger_core::replay::{replay_stream, ReplayError, ReplayOptions};
use ledger_core::rules::Verdict;
use ledger_core::store::{Refusal, Status, Store, StoreError};

fn open(dir: &std::path::Path, net: &Net) -> Store {
    Store::open_or_create(dir, &net.dev.genesis(), Limits::default()).expect("store opens")
}

#[test]
fn reopen_and_rebuild_give_the_same_state() {
    let (net, events) = scenario(7, 120);
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, rows) = {
        let mut store = open(dir.path(), &net);
        // Half one by one, half as group commits.
        let (singles, groups) = events.split_at(events.len() / 2);
        for s in singles {
            let out = store.append(&s.bytes).expect("no fault").expect("admitted");
            assert!(matches!(out.status, Status::Stored(_)));
            // Readable as soon as append returned.
            assert_eq!(
                store.event_bytes(&s.id).expect("read"),
                Some(s.bytes.clone())
            );
        }
        for chunk in groups.chunks(16) {
            let bytes: Vec<Vec<u8>> = chunk.iter().map(|s| s.bytes.clone()).collect();
            for r in store.append_batch(&bytes).expect("no fault") {
                assert!(
                    matches!(r, Ok(ref o) if matches!(o.status, Status::Stored(_))),
                    "{r:?}"
                );
            }
        }
        assert_eq!(store.len(), events.len() as u64);
        (
            store.ledger().state_root(),
            store.derived_rows().expect("rows"),
        )
    };
    let mut store = Store::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(store.ledger().state_root(), root);
    assert_eq!(store.derived_rows().expect("rows"), rows);
    for s in &events {
        assert_eq!(
            store.event_bytes(&s.id).expect("read"),
            Some(s.bytes.clone()),
            "after reopen"
        );
    }
    store.rebuild().expect("rebuild");
    for s in &events {
        assert_eq!(
            store.event_bytes(&s.id).expect("read"),
            Some(s.bytes.clone()),
            "after rebuild"
        );
    }
    assert_eq!(store.ledger().state_root(), root);
    assert_eq!(
        store.derived_rows().expect("rows"),
        rows,
        "rebuild reproduces every derived row"
    );
    drop(store);
    let store = Store::open(dir.path(), Limits::default()).expect("reopen after rebuild");
    assert_eq!(store.ledger().state_root(), root);
}

#[test]
fn export_replays_to_the_same_state() {
    let (net, events) = scenario(11, 80);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), &net);
    let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
    store.append_batch(&bytes).expect("no fault");
    let mut export = Vec::new();
    assert_eq!(
        store.export(&mut export).expect("export"),
        events.len() as u64
    );
    let replayed = replay_stream(&net.dev.genesis(), ReplayOptions::default(), || {
        Ok::<_, ReplayError>(ExportReader::new(&export[..]))
    })
    .expect("replay");
    assert!(replayed.report.intact());
    assert_eq!(replayed.report.state_root, store.ledger().state_root());
}

#[test]
fn pending_events_survive_a_reopen_and_apply_when_the_gap_fills() {
    let mut net = Net::standard();
    let e1 = net.sign("mine-bw", register("jwaneng", 1));
    let e2 = net.sign("mine-bw", register("jwaneng", 2));
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = open(dir.path(), &net);
        let out = store.append(&e2.bytes).expect("no fault").expect("kept");
        assert_eq!(out.status, Status::Pending(vec![Missing::Event(e1.id)]));
    }
    let mut store = open(dir.path(), &net);
    assert_eq!(store.ledger().pending_len(), 1);
    let out = store
        .append(&e1.bytes)
        .expect("no fault")
        .expect("admitted");
    assert_eq!(out.status, Status::Stored(Verdict::Applied));
    assert_eq!(out.unblocked, vec![e2.id]);
    drop(store);
    let store = open(dir.path(), &net);
    assert_eq!(store.ledger().pending_len(), 0);
    assert_eq!(store.len(), 2);
}

#[test]
fn a_full_pending_set_refuses_with_a_clear_error() {
    let mut net = Net::standard();
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = Limits {
        max_pending_events: 2,
        max_pending_bytes: 1 << 20,
        ..Limits::default()
    };
    let mut store = Store::open_or_create(dir.path(), &net.dev.genesis(), limits).expect("store");
    let _first = net.sign("mine-bw", register("jwaneng", 1));
    let later: Vec<_> = (0..3)
        .map(|i| net.sign("mine-bw", register("jwaneng", 2 + i)))
        .collect();
    for s in &later[..2] {
        assert!(matches!(
            store.append(&s.bytes).expect("no fault"),
            Ok(Outcome {
                status: Status::Pending(_),
                ..
            })
        ));
    }
    let err = store
        .append(&later[2].bytes)
        .expect("no fault")
        .expect_err("full");
    assert!(matches!(err, Refusal::PendingFull(_)), "{err:?}");
    assert!(err.to_string().contains("pending set is full"));
}
use ledger_core::store::Outcome;

/// Opens the store's sled directly, waiting (with a deadline) for the dropped store's lock.
fn open_raw(path: &std::path::Path) -> sled::Db {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match sled::Config::new().path(path).flush_every_ms(None).open() {
            Ok(db) => return db,
            Err(e) if std::time::Instant::now() < deadline => {
                assert!(e.to_string().contains("lock"), "{e}");
                std::thread::yield_now();
            }
            Err(e) => panic!("cannot open sled: {e}"),
        }
    }
}

#[test]
fn a_corrupted_event_is_caught_on_open() {
    let (net, events) = scenario(3, 30);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = open(dir.path(), &net);
        let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
        for r in store.append_batch(&bytes).expect("no fault") {
            assert!(
                matches!(
                    r,
                    Ok(Outcome {
                        status: Status::Stored(_),
                        ..
                    })
                ),
                "{r:?}"
            );
        }
    }
    {
        // Flip one byte of one stored event, behind the store's back.
        let db = open_raw(dir.path());
        let log = db.open_tree("log").expect("tree");
        // The sixth entry of the log keyspace (prefix `l`).
        let (k, v) = log
            .scan_prefix(b"l")
            .nth(5)
            .expect("present")
            .expect("read");
        let mut v = v.to_vec();
        v[20] ^= 0x40;
        log.insert(k, v).expect("write");
        db.flush().expect("flush");
    }
    let err = Store::open(dir.path(), Limits::default()).expect_err("corruption must be caught");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn a_changed_byte_in_the_last_logged_event_is_caught_on_open() {
    // No later event cites the last one, so only its own signature can give it away.
    let (net, events) = scenario(4, 20);
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut store = open(dir.path(), &net);
        let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
        store.append_batch(&bytes).expect("no fault");
    }
    {
        let db = open_raw(dir.path());
        let log = db.open_tree("log").expect("tree");
        let (k, v) = log
            .scan_prefix(b"l")
            .last()
            .expect("present")
            .expect("read");
        let mut v = v.to_vec();
        let at = v.len() - 80; // inside the body, before the signature
        v[at] ^= 0x01;
        log.insert(k, v).expect("write");
        db.flush().expect("flush");
    }
    let err = Store::open(dir.path(), Limits::default()).expect_err("corruption must be caught");
    assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
}

#[test]
fn a_store_of_another_network_is_refused() {
    let net = Net::standard();
    let dir = tempfile::tempdir().expect("tempdir");
    drop(open(dir.path(), &net));
    let other = DevNetwork::new().member(
        "solo",
        ledger_core::types::Chamber::Government,
        "ZW",
        &[ledger_core::types::Role::Authority],
        &[],
    );
    let err = Store::open_or_create(dir.path(), &other.genesis(), Limits::default())
        .expect_err("other network");
    assert!(matches!(err, StoreError::WrongNetwork { .. }), "{err}");
    let missing =
        Store::open(&dir.path().join("nothing-here"), Limits::default()).expect_err("missing");
    assert!(matches!(missing, StoreError::Missing(_)));
}

#[test]
fn a_group_cut_between_its_sled_batches_reopens_as_a_log_prefix() {
    let (net, events) = scenario(9, 200);
    assert!(events.len() > 2 * ledger_core::store::SLED_BATCH_EVENTS);
    let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
    let landed = 2 * ledger_core::store::SLED_BATCH_EVENTS;
    let dir = tempfile::tempdir().expect("tempdir");
    drop({
        let mut store = open(dir.path(), &net);
        store.append_batch(&bytes).expect("no fault");
        store
    });
    {
        // What a crash after the group's first two sled batches leaves: later events absent
        // from the log.
        let db = open_raw(dir.path());
        let log = db.open_tree("log").expect("tree");
        for (pos, _) in events.iter().enumerate().skip(landed) {
            let mut l = b"l".to_vec();
            l.extend_from_slice(&(pos as u64).to_be_bytes());
            log.remove(l).expect("remove");
        }
        db.flush().expect("flush");
    }
    let store = Store::open(dir.path(), Limits::default()).expect("a log prefix opens");
    assert_eq!(store.len(), landed as u64);
    let reference_dir = tempfile::tempdir().expect("tempdir");
    let mut reference = open(reference_dir.path(), &net);
    reference.append_batch(&bytes[..landed]).expect("no fault");
    assert_eq!(store.ledger().state_root(), reference.ledger().state_root());
    assert_eq!(
        store.derived_rows().expect("rows"),
        reference.derived_rows().expect("rows")
    );
}

#[test]
fn stores_of_schemas_1_and_2_are_migrated_on_open() {
    for old in [1u32, 2] {
        let (net, events) = scenario(5, 60);
        let dir = tempfile::tempdir().expect("tempdir");
        let (root, rows) = {
            let mut store = open(dir.path(), &net);
            let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
            store.append_batch(&bytes).expect("no fault");
            (
                store.ledger().state_root(),
                store.derived_rows().expect("rows"),
            )
        };
        {
            // Schema 1 kept feed slots, parcel rows, an event index and a marker while a group
            // landed; schema 2 the event index.
            let db = open_raw(dir.path());
            let log = db.open_tree("log").expect("tree");
            log.insert(b"mschema", &old.to_le_bytes()[..])
                .expect("write");
            log.insert(b"mgroup-open", &[1u8][..]).expect("write");
            log.insert(b"fmine\0\0\0\0\0\0\0\0\x01", &[7u8; 32][..])
                .expect("write");
            log.insert([b'p'; 33], &b"old parcel row"[..])
                .expect("write");
            log.insert([b'e'; 33], &b"old index row"[..])
                .expect("write");
            db.flush().expect("flush");
        }
        let store = Store::open(dir.path(), Limits::default()).expect("an old schema opens");
        assert_eq!(store.ledger().state_root(), root);
        assert_eq!(store.derived_rows().expect("rows"), rows);
        for s in &events {
            assert_eq!(
                store.event_bytes(&s.id).expect("read"),
                Some(s.bytes.clone())
            );
        }
        drop(store);
        let db = open_raw(dir.path());
        let log = db.open_tree("log").expect("tree");
        for prefix in [b"f", b"p", b"e"] {
            assert_eq!(
                log.scan_prefix(prefix).count(),
                0,
                "schema {old}: {prefix:?} rows left"
            );
        }
        assert_eq!(log.get(b"mgroup-open").expect("read"), None);
        assert_eq!(
            log.get(b"mschema").expect("read").as_deref(),
            Some(&3u32.to_le_bytes()[..])
        );
    }
}

/// Attack: a member parks events that wait for something that never comes. They expire after
/// their time, on disk first, and do not come back when the store is reopened.
#[test]
fn pending_events_that_never_wake_expire() {
    let mut net = Net::standard();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), &net);
    let _never_sent = net.sign("mine-bw", register("jwaneng", 1));
    let waiting: Vec<_> = (0..5)
        .map(|i| net.sign("mine-bw", register("jwaneng", 2 + i)))
        .collect();
    for s in &waiting {
        let out = store.append(&s.bytes).expect("no fault").expect("kept");
        assert!(matches!(out.status, Status::Pending(_)));
    }
    assert_eq!(store.ledger().pending_len(), 5);
    let long = std::time::Duration::from_secs(3600);
    assert_eq!(store.expire_pending(long).expect("expire"), 0, "not yet");
    assert_eq!(
        store
            .expire_pending(std::time::Duration::ZERO)
            .expect("expire"),
        5
    );
    assert_eq!(store.ledger().pending_len(), 0);
    drop(store);
    let store = Store::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(store.ledger().pending_len(), 0, "gone from disk too");
}

/// A thief's events stored and applied, then the key rotation that voids them arrives: the
/// store recomputes at once, a reopen gives the same state, and so does a replay of its export.
#[test]
fn a_late_key_rotation_voids_a_thiefs_stored_events_durably() {
    use ledger_core::dev::dev_key;
    use ledger_core::event::GovAction;
    use ledger_core::rules::VoidReason;
    let mut net = Net::standard();
    let p = net.sign("mine-bw", register("jwaneng", 500));
    let mut thief = net.dev.writer("mine-bw").expect("member");
    thief.resync(&[p.id], 0, net.time);
    let stolen = thief.append(dispatch(registered(&p), "sorter-bw", None), net.time + 1);
    let taken = net.sign(
        "sorter-bw",
        receive(pref(registered(&p).parcel, stolen.id), 500),
    );
    let l0 = net.ledger();
    let new_key = dev_key("mine-bw/2");
    let rotate = next_record(
        &net,
        &l0,
        GovAction::RotateKey {
            member: mid("mine-bw"),
            key: new_key.public(),
            last_valid_seq: 1,
        },
        &["authority-zw", "authority-bw", "mine-zw", "monitor"],
    );
    let rotation = submit(&mut net, "monitor", rotate);
    let dir = tempfile::tempdir().expect("tempdir");
    let (root, rows) = {
        let mut store = open(dir.path(), &net);
        for s in [&p, &stolen, &taken] {
            let out = store.append(&s.bytes).expect("no fault").expect("admitted");
            assert_eq!(out.status, Status::Stored(Verdict::Applied));
        }
        store
            .append(&rotation.bytes)
            .expect("no fault")
            .expect("admitted");
        let verdict =
            |s: &ledger_core::writer::Signed| store.ledger().event(&s.id).map(|m| m.verdict);
        assert_eq!(
            verdict(&stolen),
            Some(Verdict::Void(VoidReason::RevokedKey))
        );
        assert_eq!(
            verdict(&taken),
            Some(Verdict::Void(VoidReason::UnknownParcel))
        );
        let parcel = store
            .ledger()
            .parcel(&registered(&p).parcel)
            .expect("parcel");
        assert_eq!(parcel.state().custodian(), Some(&mid("mine-bw")));
        (
            store.ledger().state_root(),
            store.derived_rows().expect("rows"),
        )
    };
    let store = Store::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(store.ledger().state_root(), root);
    assert_eq!(store.derived_rows().expect("rows"), rows);
    let mut export = Vec::new();
    store.export(&mut export).expect("export");
    let replayed = replay_stream(&net.dev.genesis(), ReplayOptions::default(), || {
        Ok::<_, ReplayError>(ExportReader::new(std::io::Cursor::new(export.clone())))
    })
    .expect("replay");
    assert_eq!(replayed.report.state_root, root);
}

#[test]
fn kept_checkpoints_survive_a_reopen_and_the_latest_is_the_newest() {
    use ledger_core::checkpoint::{checkpoint, checkpoint_id};
    let (net, events) = scenario(3, 40);
    let dir = tempfile::tempdir().expect("tempdir");
    let (early, late) = {
        let mut store = open(dir.path(), &net);
        for s in &events[..20] {
            store.append(&s.bytes).expect("no fault").expect("admitted");
        }
        let early = checkpoint(store.ledger(), 1_000);
        for s in &events[20..] {
            store.append(&s.bytes).expect("no fault").expect("admitted");
        }
        let late = checkpoint(store.ledger(), 2_000);
        // Kept out of time order: the latest is the newest by time, not the last kept.
        store.keep_checkpoint(&late.0, &late.1).expect("keep");
        store.keep_checkpoint(&early.0, &early.1).expect("keep");
        (early, late)
    };
    let store = Store::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(store.latest_checkpoint().expect("read"), Some(late.clone()));
    assert_eq!(
        store.checkpoint(&checkpoint_id(&early.0)).expect("read"),
        Some(early)
    );
    let mut unknown = late.0.clone();
    unknown.time_ms += 1;
    assert_eq!(
        store.checkpoint(&checkpoint_id(&unknown)).expect("read"),
        None
    );
}

#[test]
fn a_store_keeps_at_most_its_bound_of_checkpoints_dropping_the_oldest() {
    use ledger_core::checkpoint::{checkpoint, checkpoint_id};
    use ledger_core::store::{Durability, MAX_KEPT_CHECKPOINTS};
    let (net, events) = scenario(4, 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open(dir.path(), &net);
    store.set_durability(Durability::FlushOnly);
    for s in &events {
        store.append(&s.bytes).expect("no fault").expect("admitted");
    }
    let (cp, heads) = checkpoint(store.ledger(), 0);
    let at = |t: u64| {
        let mut c = cp.clone();
        c.time_ms = t;
        c
    };
    let extra = 3u64;
    for t in 0..MAX_KEPT_CHECKPOINTS as u64 + extra {
        store.keep_checkpoint(&at(t), &heads).expect("keep");
    }
    for t in 0..extra {
        assert_eq!(
            store.checkpoint(&checkpoint_id(&at(t))).expect("read"),
            None,
            "dropped {t}"
        );
    }
    let newest = MAX_KEPT_CHECKPOINTS as u64 + extra - 1;
    assert!(store
        .checkpoint(&checkpoint_id(&at(extra)))
        .expect("read")
        .is_some());
    assert_eq!(
        store
            .latest_checkpoint()
            .expect("read")
            .map(|k| k.0.time_ms),
        Some(newest)
    );
    // Counted again after a reopen, the bound still holds.
    drop(store);
    let mut store = Store::open(dir.path(), Limits::default()).expect("reopen");
    store.set_durability(Durability::FlushOnly);
    store
        .keep_checkpoint(&at(newest + 1), &heads)
        .expect("keep");
    assert_eq!(
        store.checkpoint(&checkpoint_id(&at(extra))).expect("read"),
        None
    );
}
