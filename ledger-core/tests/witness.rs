//! The witness check as an adversary meets it: a log that rolls back, states a second root for one
//! feed size, rewrites a feed's prefix, lies about its heads, or backdates its checkpoint.

mod common;

use std::collections::BTreeMap;

use common::*;
use ledger_core::bytes::Digest;
use ledger_core::checkpoint::{checkpoint, feeds_root, FeedHead};
use ledger_core::event::Checkpoint;
use ledger_core::ledger::Ledger;
use ledger_core::merkle::{feed_leaf, root};
use ledger_core::witness::{check, Refusal, WitnessState};

/// A ledger of the first `n` events of a story.
fn first(net: &Net, events: &[ledger_core::writer::Signed], n: usize) -> Ledger {
    let mut l = net.ledger();
    for s in &events[..n] {
        l.offer(net.verify(s)).expect("room");
    }
    l
}

/// A replica witness's consistency check for tests: both roots are prefixes of one feed of the
/// full story.
fn replica(full: &Ledger) -> impl Fn(u64, u64, &Digest, &Digest, &[Digest]) -> bool + '_ {
    move |old, new, old_root, new_root, _proof| {
        full.feeds().values().any(|f| {
            let leaves: Vec<Digest> = f.ids.iter().map(feed_leaf).collect();
            new as usize <= leaves.len()
                && &root(&leaves[..old as usize]) == old_root
                && &root(&leaves[..new as usize]) == new_root
        })
    }
}

fn cosigned(
    state: &WitnessState,
    net: &Net,
    cp: &Checkpoint,
    heads: &[FeedHead],
    full: &Ledger,
) -> Result<WitnessState, Refusal> {
    check(
        state,
        &net.dev.network(),
        cp,
        heads,
        &BTreeMap::new(),
        replica(full),
    )
}

#[test]
fn a_witness_follows_a_growing_log_and_refuses_a_rollback() {
    let (net, events) = scenario(5, 60);
    let full = first(&net, &events, events.len());
    let (early, early_heads) = checkpoint(&first(&net, &events, 30), 1_000);
    let (late, late_heads) = checkpoint(&full, 2_000);
    let s1 = cosigned(&WitnessState::default(), &net, &early, &early_heads, &full).expect("first");
    let s2 = cosigned(&s1, &net, &late, &late_heads, &full).expect("grown");
    // The old view again, even dated later: a rollback.
    let mut old_again = early.clone();
    old_again.time_ms = 3_000;
    let refused = cosigned(&s2, &net, &old_again, &early_heads, &full);
    assert!(
        matches!(refused, Err(Refusal::Rollback { .. })),
        "{refused:?}"
    );
    // Dated before the last one cosigned: refused too.
    let mut backdated = late.clone();
    backdated.time_ms = 1_500;
    assert_eq!(
        cosigned(&s2, &net, &backdated, &late_heads, &full),
        Err(Refusal::Older)
    );
    // The same checkpoint again is fine (nothing rolled back).
    assert!(cosigned(&s2, &net, &late, &late_heads, &full).is_ok());
}

/// `heads` with one feed's head replaced, and the checkpoint that states them.
fn restated(
    cp: &Checkpoint,
    heads: &[FeedHead],
    i: usize,
    h: FeedHead,
) -> (Checkpoint, Vec<FeedHead>) {
    let mut heads = heads.to_vec();
    heads[i] = h;
    let mut cp = cp.clone();
    cp.feeds_root = feeds_root(&heads);
    cp.time_ms += 1;
    (cp, heads)
}

#[test]
fn a_second_root_at_one_size_or_a_rewritten_prefix_is_refused() {
    let (net, events) = scenario(6, 60);
    let full = first(&net, &events, events.len());
    let (cp, heads) = checkpoint(&full, 1_000);
    let state = cosigned(&WitnessState::default(), &net, &cp, &heads, &full).expect("first");
    // One feed, same size, another head and root: two heads for one seq.
    let mut other = heads[0].clone();
    other.head.0[0] ^= 1;
    other.root.0[0] ^= 1;
    let (split, split_heads) = restated(&cp, &heads, 0, other);
    let refused = cosigned(&state, &net, &split, &split_heads, &full);
    assert!(
        matches!(refused, Err(Refusal::SameSizeDifferentRoot { .. })),
        "{refused:?}"
    );
    // One feed grown by a head whose tree does not extend the cosigned one.
    let mut grown = heads[0].clone();
    grown.seq += 1;
    grown.root = Digest([9; 32]);
    let (rewritten, rewritten_heads) = restated(&cp, &heads, 0, grown);
    let refused = cosigned(&state, &net, &rewritten, &rewritten_heads, &full);
    assert!(
        matches!(refused, Err(Refusal::Inconsistent { .. })),
        "{refused:?}"
    );
    // A feed the witness cosigned, left out.
    let mut fewer = heads.clone();
    fewer.remove(0);
    let mut dropped = cp.clone();
    dropped.feeds = fewer.len() as u64;
    dropped.feeds_root = feeds_root(&fewer);
    dropped.time_ms += 1;
    let refused = cosigned(&state, &net, &dropped, &fewer, &full);
    assert!(
        matches!(refused, Err(Refusal::Rollback { offered: 0, .. })),
        "{refused:?}"
    );
}

#[test]
fn heads_that_do_not_make_the_checkpoint_or_another_network_are_refused() {
    let (net, events) = scenario(7, 40);
    let full = first(&net, &events, events.len());
    let (cp, heads) = checkpoint(&full, 1_000);
    let mut lied = heads.clone();
    lied[0].seq += 1;
    assert_eq!(
        cosigned(&WitnessState::default(), &net, &cp, &lied, &full),
        Err(Refusal::HeadsMismatch)
    );
    let mut unsorted = heads.clone();
    unsorted.swap(0, 1);
    assert_eq!(
        cosigned(&WitnessState::default(), &net, &cp, &unsorted, &full),
        Err(Refusal::HeadsMismatch)
    );
    let mut foreign = cp.clone();
    foreign.network.0[0] ^= 1;
    assert!(matches!(
        cosigned(&WitnessState::default(), &net, &foreign, &heads, &full),
        Err(Refusal::WrongNetwork { .. })
    ));
}

#[test]
fn a_witness_checks_each_grown_feed_with_a_real_consistency_proof() {
    use ledger_core::merkle::verify_consistency;
    let (net, events) = scenario(8, 70);
    let early_ledger = first(&net, &events, 35);
    let full = first(&net, &events, events.len());
    let (early, early_heads) = checkpoint(&early_ledger, 1_000);
    let (late, late_heads) = checkpoint(&full, 2_000);
    let network = net.dev.network();
    let state = check(
        &WitnessState::default(),
        &network,
        &early,
        &early_heads,
        &BTreeMap::new(),
        verify_consistency,
    )
    .expect("first");
    // The proofs the producer serves: from each cosigned size to the new one.
    let proofs: BTreeMap<_, _> = early_heads
        .iter()
        .filter_map(|h| {
            let new = late_heads.iter().find(|n| n.author == h.author)?;
            let tree = full.feed(&h.author)?.tree();
            Some((h.author.clone(), tree.consistency(h.seq, new.seq).ok()?))
        })
        .collect();
    let grown = check(
        &state,
        &network,
        &late,
        &late_heads,
        &proofs,
        verify_consistency,
    );
    assert!(grown.is_ok(), "{grown:?}");
    // Without the proofs, or with one proof damaged, the grown feeds are refused.
    let refused = check(
        &state,
        &network,
        &late,
        &late_heads,
        &BTreeMap::new(),
        verify_consistency,
    );
    assert!(
        matches!(refused, Err(Refusal::Inconsistent { .. })),
        "{refused:?}"
    );
    let mut damaged = proofs.clone();
    if let Some(p) = damaged.values_mut().find(|p| !p.is_empty()) {
        p[0].0[0] ^= 1;
    }
    let refused = check(
        &state,
        &network,
        &late,
        &late_heads,
        &damaged,
        verify_consistency,
    );
    assert!(
        matches!(refused, Err(Refusal::Inconsistent { .. })),
        "{refused:?}"
    );
}

#[test]
fn a_replica_witness_agrees_only_with_its_own_slots_and_names_a_second_head() {
    use ledger_core::merkle::verify_consistency;
    use ledger_core::witness::{check_replica, replica_proofs, ReplicaCheck};
    let (net, events) = scenario(9, 60);
    let full = first(&net, &events, events.len());
    let behind = first(&net, &events, 20);
    let (cp, heads) = checkpoint(&full, 1_000);
    assert_eq!(check_replica(&full, &heads), ReplicaCheck::Agrees);
    assert!(matches!(
        check_replica(&behind, &heads),
        ReplicaCheck::Behind { .. }
    ));
    let mut other = heads.clone();
    other[0].head.0[0] ^= 1;
    assert!(
        matches!(check_replica(&full, &other), ReplicaCheck::Differs { seq, .. } if seq == heads[0].seq)
    );
    // A witness that cosigned an early view checks growth with proofs from its own replica.
    let (early, early_heads) = checkpoint(&behind, 500);
    let network = net.dev.network();
    let state = check(
        &WitnessState::default(),
        &network,
        &early,
        &early_heads,
        &BTreeMap::new(),
        verify_consistency,
    )
    .expect("first");
    let proofs = replica_proofs(&full, &state, &heads);
    assert!(check(&state, &network, &cp, &heads, &proofs, verify_consistency).is_ok());
}
