//! Checkpoints: one feeds root for one set of events in any order, head proofs that fail when
//! anything in them is changed, and cosignatures that sign exactly one checkpoint.

mod common;

use common::*;
use ledger_core::bytes::Digest;
use ledger_core::checkpoint::{
    checkpoint, cosign, feeds_root, head_proof, verify_cosignature, verify_head, HeadProofError,
};
use ledger_core::crypto::KeyCache;
use ledger_core::dev::dev_key;

fn story() -> (Net, Vec<ledger_core::writer::Signed>) {
    scenario(11, 80)
}

#[test]
fn one_set_of_events_gives_one_feeds_root_in_any_order() {
    let (net, events) = story();
    let mut a = net.ledger();
    for s in &events {
        a.offer(net.verify(s)).expect("room");
    }
    let mut b = net.ledger();
    for s in events.iter().rev() {
        b.offer(net.verify(s)).expect("room");
    }
    let (ca, ha) = checkpoint(&a, 1);
    let (cb, hb) = checkpoint(&b, 1);
    assert_eq!(ca, cb);
    assert_eq!(ha, hb);
    assert_eq!(ca.feeds_root, feeds_root(&ha));
    assert_eq!(ca.feeds as usize, a.feeds().len());
    // One more event moves the root.
    let mut c = net.ledger();
    for s in &events[..events.len() - 1] {
        c.offer(net.verify(s)).expect("room");
    }
    assert_ne!(checkpoint(&c, 1).0.feeds_root, ca.feeds_root);
}

#[test]
fn every_heads_proof_verifies_and_every_change_to_one_is_refused() {
    let (net, events) = story();
    let mut l = net.ledger();
    for s in &events {
        l.offer(net.verify(s)).expect("room");
    }
    let (cp, heads) = checkpoint(&l, 5);
    let network = net.dev.network();
    for h in &heads {
        let proof = head_proof(&heads, &h.author).expect("proof");
        assert_eq!(verify_head(&network, &cp, &proof), Ok(()));
        let mut changed = Vec::new();
        let mut p = proof.clone();
        p.head.seq += 1;
        changed.push(p);
        let mut p = proof.clone();
        p.head.head.0[0] ^= 1;
        changed.push(p);
        let mut p = proof.clone();
        p.head.root.0[31] ^= 1;
        changed.push(p);
        let mut p = proof.clone();
        p.index = (p.index + 1) % cp.feeds;
        changed.push(p);
        for i in 0..proof.path.len() {
            let mut p = proof.clone();
            p.path[i].0[i % 32] ^= 0x80;
            changed.push(p);
        }
        let mut p = proof.clone();
        p.path.push(Digest([7; 32]));
        changed.push(p);
        if !proof.path.is_empty() {
            let mut p = proof.clone();
            p.path.pop();
            changed.push(p);
        }
        for p in changed {
            assert_eq!(
                verify_head(&network, &cp, &p),
                Err(HeadProofError::NotIncluded(h.author.clone())),
                "{p:?}"
            );
        }
    }
    let mut other = cp.clone();
    other.network.0[0] ^= 1;
    let proof = head_proof(&heads, &heads[0].author).expect("proof");
    assert!(matches!(
        verify_head(&network, &other, &proof),
        Err(HeadProofError::WrongNetwork { .. })
    ));
    assert!(matches!(
        head_proof(&heads, &mid("nobody")),
        Err(HeadProofError::NoFeed(_))
    ));
}

#[test]
fn a_cosignature_signs_exactly_one_checkpoint() {
    let (net, events) = story();
    let mut l = net.ledger();
    for s in &events {
        l.offer(net.verify(s)).expect("room");
    }
    let keys = KeyCache::default();
    let (cp, _) = checkpoint(&l, 5);
    let c = cosign(&dev_key("monitor"), mid("monitor"), &cp);
    assert_eq!(verify_cosignature(&cp, &c, &keys), Ok(()));
    let mut later = cp.clone();
    later.time_ms += 1;
    assert!(verify_cosignature(&later, &c, &keys).is_err());
    let mut other_root = cp.clone();
    other_root.feeds_root.0[0] ^= 1;
    assert!(verify_cosignature(&other_root, &c, &keys).is_err());
    let mut forged = c.clone();
    forged.signature.0[10] ^= 1;
    assert!(verify_cosignature(&cp, &forged, &keys).is_err());
    let mut wrong_key = c.clone();
    wrong_key.key = dev_key("mine-bw").public();
    assert!(verify_cosignature(&cp, &wrong_key, &keys).is_err());
}

#[test]
fn a_forked_feed_is_stated_up_to_its_fork_whichever_branch_arrived_first() {
    use ledger_core::writer::FeedWriter;
    let mut net = Net::standard();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    let b = net.sign("mine-bw", register("jwaneng", 200));
    // A second event at seq 2, and one after each.
    let mut other = FeedWriter::resume(
        net.dev.network(),
        mid("mine-bw"),
        dev_key("mine-bw"),
        &[a.id],
        0,
        T0,
    );
    let b2 = other.append(register("orapa", 300), T0 + 5_000);
    let c2 = other.append(register("orapa", 400), T0 + 6_000);
    let c = net.sign("mine-bw", register("jwaneng", 500));
    let mut roots = Vec::new();
    for order in [[&a, &b, &c, &b2, &c2], [&a, &b2, &c2, &b, &c]] {
        let mut l = net.ledger();
        for s in order {
            l.offer(net.verify(s)).expect("room");
        }
        let (cp, heads) = checkpoint(&l, 1);
        let head = heads
            .iter()
            .find(|h| h.author == mid("mine-bw"))
            .expect("feed");
        assert_eq!((head.seq, head.head), (1, a.id), "stated up to the fork");
        roots.push(cp.feeds_root);
    }
    assert_eq!(roots[0], roots[1]);
}

#[test]
fn a_witness_event_with_a_forged_cosignature_or_a_foreign_checkpoint_is_refused_at_admission() {
    use ledger_core::admission::{verify_event, AdmissionError};
    use ledger_core::event::{Body, Witness};
    let (mut net, events) = story();
    let mut l = net.ledger();
    for s in &events {
        l.offer(net.verify(s)).expect("room");
    }
    let (cp, _) = checkpoint(&l, 5);
    let good = cosign(&dev_key("authority-bw"), mid("authority-bw"), &cp);
    let witness = |cp: &ledger_core::event::Checkpoint, c: Vec<ledger_core::event::Cosignature>| {
        Body::Witness(Witness {
            checkpoint: cp.clone(),
            cosignatures: c,
        })
    };
    let keys = KeyCache::default();
    let ok = net.sign("monitor", witness(&cp, vec![good.clone()]));
    assert!(verify_event(&ok.bytes, &net.dev.network(), &keys).is_ok());
    let mut forged = good.clone();
    forged.signature.0[3] ^= 1;
    let bad = net.sign("sorter-bw", witness(&cp, vec![good.clone(), forged]));
    assert!(matches!(
        verify_event(&bad.bytes, &net.dev.network(), &keys),
        Err(AdmissionError::Cosignature(_))
    ));
    let mut foreign = cp.clone();
    foreign.network.0[0] ^= 1;
    let bad = net.sign("exporter-bw", witness(&foreign, vec![]));
    assert!(matches!(
        verify_event(&bad.bytes, &net.dev.network(), &keys),
        Err(AdmissionError::Cosignature(_))
    ));
}

#[test]
fn replicas_holding_the_same_prefixes_make_one_checkpoint_of_a_cutoff() {
    // Two replicas: one holds the whole story, the other only the events claimed up to the
    // cutoff. Their checkpoints of that cutoff are one; a record claimed after it does not count.
    use ledger_core::checkpoint::checkpoint_at;
    use ledger_core::event::{Body, GovAction};
    let (mut net, mut events) = story();
    let whole = settled(&net, &events.iter().collect::<Vec<_>>());
    let g = next_record(
        &net,
        &whole,
        GovAction::Suspend {
            member: mid("sorter-bw"),
            last_valid_seq: 100,
            reason: "test".into(),
        },
        &[
            "authority-zw",
            "authority-bw",
            "authority-be",
            "importer-ae",
            "monitor",
        ],
    );
    let record = submit(&mut net, "monitor", g.clone());
    let cutoff = net.time - 1; // before the record
    events.push(record.clone());
    let bodies: std::collections::HashMap<_, _> = events
        .iter()
        .map(|s| (s.id, net.verify(s).body().clone()))
        .collect();
    let govern = |id: &ledger_core::bytes::EventId| match bodies.get(id) {
        Some(Body::Govern(g)) => Some(g.clone()),
        _ => None,
    };
    let all = settled(&net, &events.iter().collect::<Vec<_>>());
    assert_eq!(all.governance().latest(), 1, "the record is in force");
    let early: Vec<&ledger_core::writer::Signed> = events
        .iter()
        .filter(|s| net.verify(s).header().time_ms <= cutoff)
        .collect();
    assert!(early.len() < events.len());
    let part = settled(&net, &early);
    let (a, ha) = checkpoint_at(&all, cutoff, govern);
    let (b, hb) = checkpoint_at(&part, cutoff, govern);
    assert_eq!((a.clone(), ha), (b, hb));
    assert_eq!(
        a.gov, 0,
        "the record claimed after the cutoff does not count"
    );
    let (later, _) = checkpoint_at(&all, net.time, govern);
    assert_eq!(later.gov, 1);
    assert_ne!(later.feeds_root, a.feeds_root);
}
