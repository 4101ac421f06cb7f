//! A full disk: the write is refused with a clear error, leaves no trace, loses nothing acknowledged, and the store or node resumes by itself when space returns.

use custody_tests::disk::{fill, Tmpfs};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{Body, Register};
use ledger_core::ledger::Limits;
use ledger_core::store::{Status, Store};
use ledger_core::writer::Signed;

fn register(i: u64) -> Body {
    Body::Register(Register {
        site: "jwaneng".parse().expect("site"),
        carats: 100 + i,
        stones: 1,
        value_cents: None,
        // Large events fill the disk sooner.
        seal: "s".repeat(900),
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

fn events(n: u64) -> Vec<Signed> {
    let dev = DevNetwork::standard();
    let mut w = dev.writer("mine-bw").expect("member");
    (0..n)
        .map(|i| w.append(register(i), 1_780_000_000_000 + i))
        .collect()
}

/// Appends `events` one by one until the store refuses one for a full disk; the ones before are
/// acknowledged. Returns the refused one.
fn append_until_refused(store: &mut Store, events: &[Signed], acked: &mut Vec<Signed>) -> Signed {
    for s in events {
        match store.append(&s.bytes) {
            Ok(r) => {
                assert!(matches!(r.expect("admitted").status, Status::Stored(_)));
                acked.push(s.clone());
            }
            Err(e) => {
                assert!(e.is_disk_full(), "a full disk is named as such: {e}");
                return s.clone();
            }
        }
    }
    panic!("the disk never filled up");
}

/// Attack: fill the disk under a store, keep writing. Before the fix the failed commit had
/// already applied the event in memory, so it was served (and later contradicted by a new event
/// at the same seq).
#[test]
fn a_full_disk_refuses_the_write_leaves_no_trace_and_resumes() {
    let Some(fs) = Tmpfs::mount("64m") else {
        return;
    };
    let dev = DevNetwork::standard();
    let dir = fs.path().join("store");
    let mut store = Store::open_or_create(&dir, &dev.genesis(), Limits::default()).expect("open");
    let all = events(4000);
    let mut acked = Vec::new();
    for s in &all[..20] {
        store.append(&s.bytes).expect("room").expect("admitted");
        acked.push(s.clone());
    }
    let filler = fill(fs.path());
    let refused = append_until_refused(&mut store, &all[20..], &mut acked);
    // No trace of the refused write, in memory or on disk.
    assert!(store.ledger().event(&refused.id).is_none());
    assert_eq!(store.event_bytes(&refused.id).ok().flatten(), None);
    assert_eq!(store.len(), acked.len() as u64);
    for s in &acked {
        assert_eq!(
            store.event_bytes(&s.id).expect("read"),
            Some(s.bytes.clone())
        );
    }
    // Still full: still refused, still no trace.
    let again = store.append(&refused.bytes);
    assert!(again.as_ref().is_err_and(|e| e.is_disk_full()), "{again:?}");
    assert_eq!(store.len(), acked.len() as u64);
    // Space returns: the store resumes by itself.
    std::fs::remove_file(filler).expect("free space");
    let out = store
        .append(&refused.bytes)
        .expect("resumed")
        .expect("admitted");
    assert!(matches!(out.status, Status::Stored(_)));
    acked.push(refused);
    drop(store);
    let store = Store::open(&dir, Limits::default()).expect("reopen");
    assert_eq!(store.len(), acked.len() as u64);
    for s in &acked {
        assert_eq!(
            store.event_bytes(&s.id).expect("read"),
            Some(s.bytes.clone())
        );
    }
}

/// The same attack when the free-space check is passed (another process takes the last bytes
/// between the check and the write): sled's write itself fails with `ENOSPC`. The failed write
/// is rolled back by reopening the store from disk; nothing of it is kept or served, nothing
/// acknowledged is lost, and the store resumes when space returns.
#[test]
fn a_write_that_hits_enospc_is_rolled_back() {
    let Some(fs) = Tmpfs::mount("24m") else {
        return;
    };
    let dev = DevNetwork::standard();
    let dir = fs.path().join("store");
    let mut store = Store::open_or_create(&dir, &dev.genesis(), Limits::default()).expect("open");
    store.set_min_free(0);
    let all = events(4000);
    let mut acked = Vec::new();
    for s in &all[..20] {
        store.append(&s.bytes).expect("room").expect("admitted");
        acked.push(s.clone());
    }
    let filler = fill(fs.path());
    let refused = append_until_refused(&mut store, &all[20..], &mut acked);
    assert!(
        store.ledger().event(&refused.id).is_none(),
        "no trace in memory"
    );
    assert!(
        store.len() <= acked.len() as u64,
        "nothing beyond what was acknowledged"
    );
    std::fs::remove_file(filler).expect("free space");
    let out = store
        .append(&refused.bytes)
        .expect("resumed")
        .expect("admitted");
    assert!(matches!(out.status, Status::Stored(_)));
    acked.push(refused);
    for s in &acked {
        assert_eq!(
            store.event_bytes(&s.id).expect("read"),
            Some(s.bytes.clone())
        );
    }
    drop(store);
    let store = Store::open(&dir, Limits::default()).expect("reopen");
    assert_eq!(store.len(), acked.len() as u64);
}

/// The attack on a whole node: its disk fills up while it acts. Before the fix the refused event
/// was served (status, events, feeds, export, sync) and, after a restart, contradicted by a new
/// event at the same seq: the node forked its own member's feed.
#[test]
fn a_node_with_a_full_disk_answers_507_serves_nothing_unwritten_and_resumes() {
    use custody_tests::{node_binary, register, NodeSpec, TestNode};
    let Some(fs) = Tmpfs::mount("96m") else {
        return;
    };
    let spec = NodeSpec {
        member: Some("mine-bw".into()),
        bootstrap: vec![],
        sync_secs: 1,
        ..NodeSpec::default()
    };
    let mut node = TestNode::start(&node_binary!(), &fs.path().join("n"), &spec);
    let first = node.act_ok(&register("jwaneng", 100));
    let filler = fill(fs.path());
    let export_before = node.get("/v1/export").body;
    let r = node.act(&register("jwaneng", 101));
    assert_eq!(r.status, 507, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.json()["code"], "disk-full");
    // Nothing of the refused write is served anywhere.
    let status = node.status();
    assert_eq!(status["events"], 1);
    let feed = node.get_json("/v1/feeds/mine-bw");
    assert_eq!(feed["seq"], 1);
    assert_eq!(node.get("/v1/export").body, export_before);
    assert!(node.has_event(&first));
    // Space returns: the node resumes by itself.
    std::fs::remove_file(filler).expect("free space");
    let second = node.act_ok(&register("jwaneng", 102));
    node.kill();
    node.restart();
    assert_eq!(
        node.status()["forks"],
        0,
        "the node never forked its own feed"
    );
    assert_eq!(node.status()["events"], 2);
    for id in [&first, &second] {
        assert!(node.has_event(id));
    }
    let third = node.act_ok(&register("jwaneng", 103));
    assert_eq!(
        node.get_json(&format!("/v1/events/{third}"))["verdict"],
        "applied"
    );
}
