//! Forks: two events at one (author, seq) give a fork proof and void the feed from there, in every delivery order.

mod common;

use common::*;
use ledger_core::bytes::EventId;
use ledger_core::dev::dev_key;
use ledger_core::evidence::{ForkProof, ForkProofError};
use ledger_core::ledger::{Ledger, Limits};
use ledger_core::replay::{replay_events, ReplayOptions};
use ledger_core::rules::{Verdict, VoidReason};
use ledger_core::store::Store;
use ledger_core::writer::FeedWriter;
use ledger_core::writer::Signed;

/// mine-bw registers a parcel, then signs two different seq-2 events (dispatches of the same parcel
/// to two buyers), continues on one branch, and both buyers receive.
fn equivocation() -> (Net, Vec<Signed>) {
    let mut net = Net::standard();
    let e1 = net.sign("mine-bw", register("jwaneng", 100));
    let header2 = net.writer("mine-bw").next_header(T0 + 50_000);
    let e2 = net.sign("mine-bw", dispatch(registered(&e1), "sorter-bw", None));
    let e2b = net
        .writer("mine-bw")
        .sign_raw(header2, dispatch(registered(&e1), "exporter-bw", None));
    let e3 = net.sign("mine-bw", register("orapa", 7));
    let r = net.sign(
        "sorter-bw",
        receive(pref(registered(&e1).parcel, e2.id), 100),
    );
    let rb = net.sign(
        "exporter-bw",
        receive(pref(registered(&e1).parcel, e2b.id), 100),
    );
    let z = net.sign("mine-zw", register("marange", 5));
    (net, vec![e1, e2, e2b, e3, r, rb, z])
}

fn permutations(n: usize) -> Vec<Vec<usize>> {
    if n == 0 {
        return vec![vec![]];
    }
    let mut out = Vec::new();
    for p in permutations(n - 1) {
        for i in 0..=p.len() {
            let mut q = p.clone();
            q.insert(i, n - 1);
            out.push(q);
        }
    }
    out
}

#[test]
fn a_fork_is_proven_and_voids_the_feed_in_every_delivery_order() {
    let (net, events) = equivocation();
    let genesis = net.dev.genesis();
    let mut first_root = None;
    let perms = permutations(events.len());
    assert_eq!(perms.len(), 5040);
    for order in perms {
        let bytes: Vec<Vec<u8>> = order.iter().map(|&i| events[i].bytes.clone()).collect();
        let r = replay_events(&genesis, &bytes, ReplayOptions::default()).expect("replay");
        let l = &r.ledger;
        assert_eq!(r.report.forks.len(), 1, "order {order:?}");
        let fork = &r.report.forks[0];
        assert_eq!((fork.author.as_str(), fork.seq), ("mine-bw", 2));
        let mut pair = [events[1].id, events[2].id];
        pair.sort();
        assert_eq!([fork.first, fork.second], pair);
        let verdict = |i: usize| l.event(&events[i].id).map(|m| m.verdict);
        assert_eq!(
            verdict(0),
            Some(Verdict::Applied),
            "before the fork stays applied"
        );
        for i in [1, 2, 3] {
            assert_eq!(
                verdict(i),
                Some(Verdict::Void(VoidReason::AuthorForked)),
                "order {order:?} event {i}"
            );
        }
        for i in [4, 5] {
            assert_eq!(
                verdict(i),
                Some(Verdict::Void(VoidReason::UnknownParcel)),
                "receipts of void dispatches"
            );
        }
        assert_eq!(
            verdict(6),
            Some(Verdict::Applied),
            "other feeds are unaffected"
        );
        // The parcel never left the mine.
        let parcel = l.parcel(&registered(&events[0]).parcel).expect("parcel");
        assert_eq!(parcel.state().custodian(), Some(&mid("mine-bw")));
        assert!(r.report.intact());
        match first_root {
            None => first_root = Some(r.report.state_root),
            Some(root) => assert_eq!(root, r.report.state_root, "order {order:?}"),
        }
    }
}

#[test]
fn the_store_proves_a_fork_found_late_and_recomputes_durably() {
    let (net, events) = equivocation();
    let dir = tempfile::tempdir().expect("tempdir");
    let genesis = net.dev.genesis();
    let expected = replay_events(
        &genesis,
        &events.iter().map(|e| e.bytes.clone()).collect::<Vec<_>>(),
        ReplayOptions::default(),
    )
    .expect("replay")
    .report
    .state_root;
    {
        let mut store =
            Store::open_or_create(dir.path(), &genesis, Limits::default()).expect("store");
        // Everything on the sorter branch first: it applies, then the fork arrives and voids it.
        for i in [0, 1, 3, 4, 6] {
            store
                .append(&events[i].bytes)
                .expect("no fault")
                .expect("admitted");
        }
        assert_eq!(
            store.ledger().event(&events[4].id).map(|m| m.verdict),
            Some(Verdict::Applied)
        );
        let outcome = store
            .append(&events[2].bytes)
            .expect("no fault")
            .expect("admitted");
        assert!(outcome.fork.is_some());
        store
            .append(&events[5].bytes)
            .expect("no fault")
            .expect("admitted");
        assert_eq!(
            store.ledger().event(&events[4].id).map(|m| m.verdict),
            Some(Verdict::Void(VoidReason::UnknownParcel))
        );
        assert_eq!(store.ledger().state_root(), expected);
    }
    let store = Store::open(dir.path(), Limits::default()).expect("reopen passes the chain check");
    assert_eq!(store.ledger().state_root(), expected);
    let fork = store.ledger().forks().next().cloned().expect("one fork");
    // The proof travels: both events' bytes, checkable offline against the governance state.
    let proof = store
        .fork_proof(&fork)
        .expect("read")
        .expect("both events stored");
    let gov = store.ledger().governance();
    assert_eq!(proof.verify(&net.dev.network(), gov), Ok(fork.clone()));
    let same = ForkProof {
        first: proof.first.clone(),
        second: proof.first.clone(),
    };
    assert_eq!(
        same.verify(&net.dev.network(), gov),
        Err(ForkProofError::SameEvent)
    );
    let unrelated = ForkProof {
        first: proof.first.clone(),
        second: events[6].bytes.clone(),
    };
    assert_eq!(
        unrelated.verify(&net.dev.network(), gov),
        Err(ForkProofError::DifferentSlots)
    );
    let mut forged = proof.clone();
    forged.second[30] ^= 1;
    assert!(matches!(
        forged.verify(&net.dev.network(), gov),
        Err(ForkProofError::Event(_))
    ));
}

#[test]
fn a_group_that_holds_a_fork_reports_final_verdicts() {
    let (net, events) = equivocation();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        Store::open_or_create(dir.path(), &net.dev.genesis(), Limits::default()).expect("store");
    // The branch applies first within the group; the fork later in the same group voids it.
    let order = [0, 1, 4, 3, 2, 5, 6];
    let group: Vec<Vec<u8>> = order.iter().map(|&i| events[i].bytes.clone()).collect();
    let results = store.append_batch(&group).expect("no fault");
    let verdict_of = |i: usize| {
        let pos = order.iter().position(|&o| o == i).expect("in group");
        match &results[pos] {
            Ok(o) => o.status.clone(),
            Err(e) => panic!("{e}"),
        }
    };
    use ledger_core::store::Status;
    assert_eq!(
        verdict_of(1),
        Status::Stored(Verdict::Void(VoidReason::AuthorForked))
    );
    assert_eq!(
        verdict_of(4),
        Status::Stored(Verdict::Void(VoidReason::UnknownParcel))
    );
    assert_eq!(verdict_of(0), Status::Stored(Verdict::Applied));
}

/// Defect: an event on a fork's branch was not checked against its own `prev` chain, so a wrong
/// `feed_root` was stored (void) in one delivery order and refused (lost) in another.
#[test]
fn a_bad_feed_root_on_a_fork_branch_is_refused_in_every_order() {
    let mut net = Net::standard();
    let e1 = net.sign("mine-bw", register("jwaneng", 100));
    let x = net.sign("mine-bw", register("jwaneng", 5));
    let mut w = FeedWriter::resume(
        net.dev.network(),
        mid("mine-bw"),
        dev_key("mine-bw"),
        &[e1.id],
        0,
        T0 + 1_000_000,
    );
    let x2 = w.append(register("jwaneng", 6), T0 + 1_000_001);
    let mut h = w.next_header(T0 + 1_000_002);
    h.feed_root.0[3] ^= 0x40;
    let x3_bad = w.sign_raw(h, register("jwaneng", 7));
    let x3 = w.append(register("jwaneng", 8), T0 + 1_000_002);
    let all = [&e1, &x, &x2, &x3_bad, &x3];
    let mut roots = Vec::new();
    for order in permutations(all.len()) {
        let mut l = net.ledger();
        for &i in &order {
            let _ = l.offer(net.verify(all[i])).expect("room");
        }
        assert!(
            l.event(&x3_bad.id).is_none(),
            "order {order:?} stored a bad root"
        );
        for s in [&e1, &x, &x2, &x3] {
            assert!(l.event(&s.id).is_some(), "order {order:?} lost {}", s.id);
        }
        assert_eq!(l.pending_len(), 0);
        let forks: Vec<_> = l.forks().cloned().collect();
        let mut settled = Ledger::with_known_forks(net.dev.genesis(), Limits::default(), &forks)
            .expect("genesis");
        for &i in &order {
            let _ = settled.offer(net.verify(all[i])).expect("room");
        }
        roots.push(settled.state_root());
    }
    roots.dedup();
    assert_eq!(roots.len(), 1, "one state in every order");
}

/// Defect: a member equivocating twice (a fork, then another fork on the branch) was proven to
/// fork at the second seq only in the orders where both of those events landed on slots.
#[test]
fn a_second_equivocation_on_a_branch_is_proven_in_every_order() {
    let mut net = Net::standard();
    let e1 = net.sign("mine-bw", register("jwaneng", 100));
    let e2 = net.sign("mine-bw", register("jwaneng", 2));
    let e3 = net.sign("mine-bw", register("jwaneng", 3));
    let writer_at = |ids: &[EventId]| {
        FeedWriter::resume(
            net.dev.network(),
            mid("mine-bw"),
            dev_key("mine-bw"),
            ids,
            0,
            T0 + 1_000_000,
        )
    };
    let b2 = writer_at(&[e1.id]).append(register("jwaneng", 20), T0 + 1_000_001);
    let c3 = writer_at(&[e1.id, e2.id]).append(register("jwaneng", 30), T0 + 1_000_002);
    let all = [&e1, &e2, &e3, &b2, &c3];
    for order in permutations(all.len()) {
        let mut l = net.ledger();
        for &i in &order {
            let _ = l.offer(net.verify(all[i])).expect("room");
        }
        let seqs: Vec<u64> = l.forks().map(|f| f.seq).collect();
        assert_eq!(seqs, vec![2, 3], "order {order:?}");
    }
}
