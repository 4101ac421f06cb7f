//! Determinism and mass balance: any delivery order and a replay from scratch give the same state.

mod common;

use std::collections::{HashMap, HashSet};

use common::stories::{equivocations, governed};
use common::{scenario, settled, Net, Rng};
use ledger_core::audit::audit_parcel;
use ledger_core::bytes::EventId;
use ledger_core::event::{Body, ParcelRef};
use ledger_core::findings::all_findings;
use ledger_core::ledger::Ledger;
use ledger_core::replay::{replay_events, ReplayOptions, SignatureCheck};
use ledger_core::rules::{ParcelState, Verdict};
use ledger_core::writer::Signed;
use proptest::prelude::*;

/// Feeds events in the given order; every event must end up stored.
fn ledger_in_order(net: &Net, events: &[&Signed]) -> Ledger {
    let mut l = net.ledger();
    for s in events {
        l.offer(net.verify(s)).expect("pending has room");
    }
    assert_eq!(l.pending_len(), 0, "everything resolves");
    assert!(!l.needs_recompute(), "no forks in these scenarios");
    l
}

fn shuffled<'a>(events: &'a [Signed], rng: &mut Rng) -> Vec<&'a Signed> {
    let mut v: Vec<&Signed> = events.iter().collect();
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

/// A random order in which every event comes after what it depends on.
fn topological<'a>(net: &Net, events: &'a [Signed], rng: &mut Rng) -> Vec<&'a Signed> {
    let deps: Vec<Vec<EventId>> = events
        .iter()
        .map(|s| {
            let v = net.verify(s);
            let mut d = v.body().dependencies();
            if v.header().seq > 1 {
                d.push(v.header().prev);
            }
            d
        })
        .collect();
    let mut done: HashSet<EventId> = HashSet::new();
    let mut left: Vec<usize> = (0..events.len()).collect();
    let mut out = Vec::new();
    while !left.is_empty() {
        let ready: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&i| deps[i].iter().all(|d| done.contains(d)))
            .collect();
        let pick = ready[rng.below(ready.len() as u64) as usize];
        left.retain(|&i| i != pick);
        done.insert(events[pick].id);
        out.push(&events[pick]);
    }
    out
}

fn assert_same_state(a: &Ledger, b: &Ledger) {
    assert_eq!(a.forks().collect::<Vec<_>>(), b.forks().collect::<Vec<_>>());
    assert_eq!(a.totals(), b.totals());
    let mut ea: Vec<_> = a.events().iter().collect();
    ea.sort_by_key(|e| *e.0);
    let mut eb: Vec<_> = b.events().iter().collect();
    eb.sort_by_key(|e| *e.0);
    assert_eq!(ea, eb);
    let mut pa: Vec<_> = a.parcels().collect();
    pa.sort_by_key(|p| p.id);
    let mut pb: Vec<_> = b.parcels().collect();
    pb.sort_by_key(|p| p.id);
    assert_eq!(pa, pb);
    assert_eq!(a.state_root(), b.state_root());
    let verdicts = |l: &Ledger| -> HashMap<EventId, Verdict> {
        l.events().iter().map(|(k, m)| (*k, m.verdict)).collect()
    };
    assert_eq!(verdicts(a), verdicts(b));
    assert_eq!(a.parcels().len(), b.parcels().len());
    for id in a.parcels().map(|p| &p.id) {
        assert_eq!(audit_parcel(a, id), audit_parcel(b, id), "audit of {id}");
        assert_eq!(a.parcel(id), b.parcel(id));
    }
    assert_eq!(a.totals(), b.totals());
    assert_eq!(a.notes(), b.notes());
    assert_eq!(all_findings(a), all_findings(b));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn any_delivery_order_and_a_replay_give_the_same_state(seed in any::<u64>(), order_seed in any::<u64>(), steps in 20usize..70) {
        let (net, events) = scenario(seed, steps);
        let live: Vec<&Signed> = events.iter().collect();
        let reference = ledger_in_order(&net, &live);
        let mut rng = Rng(order_seed);
        let any_order = ledger_in_order(&net, &shuffled(&events, &mut rng));
        assert_same_state(&reference, &any_order);
        let topo = ledger_in_order(&net, &topological(&net, &events, &mut rng));
        assert_same_state(&reference, &topo);
        let bytes: Vec<Vec<u8>> = shuffled(&events, &mut rng).into_iter().map(|s| s.bytes.clone()).collect();
        let signatures = if rng.chance(50) { SignatureCheck::Batch } else { SignatureCheck::Strict };
        let replayed = replay_events(&net.dev.genesis(), &bytes, ReplayOptions { signatures, ..ReplayOptions::default() }).expect("replay");
        prop_assert!(replayed.report.intact(), "{:?}", replayed.report);
        prop_assert_eq!(replayed.report.stored, events.len() as u64);
        assert_same_state(&reference, &replayed.ledger);
    }

    #[test]
    fn mass_never_grows(seed in any::<u64>(), steps in 20usize..90) {
        let (net, events) = scenario(seed, steps);
        let l = ledger_in_order(&net, &events.iter().collect::<Vec<_>>());
        // Recompute every term from the events and parcels, independently of the ledger's totals:
        // registered + weighed above dispatch = live + transform loss + retired + weighed below.
        let (mut registered, mut loss, mut gain, mut shortfall) = (0u64, 0u64, 0u64, 0u64);
        let mass_at = |r: &ParcelRef, at: &EventId| l.parcel(&r.parcel).and_then(|p| p.mass_at(at)).unwrap_or(0);
        for s in &events {
            let v = net.verify(s);
            if l.event(v.id()).map(|m| m.verdict) != Some(Verdict::Applied) {
                continue;
            }
            match v.body() {
                Body::Register(r) => registered += r.carats,
                Body::Transform(t) => {
                    // Inputs weigh what they were last weighed before the transform.
                    let inputs: u64 = t.inputs.iter().map(|r| mass_at(r, v.id())).sum();
                    let outputs: u64 = t.outputs.iter().map(|o| o.carats).sum();
                    prop_assert!(outputs <= inputs, "an applied transform gained mass");
                    loss += inputs - outputs;
                }
                Body::Receive(r) => {
                    let dispatched = mass_at(&r.parcel, &r.parcel.head);
                    gain += r.measured_carats.saturating_sub(dispatched);
                    shortfall += dispatched.saturating_sub(r.measured_carats);
                }
                _ => {}
            }
        }
        let mut live = 0u64;
        let mut retired = 0u64;
        for p in l.parcels() {
            match p.state() {
                ParcelState::Held { .. } | ParcelState::InTransit { .. } => live += p.mass(),
                ParcelState::Retired { .. } => retired += p.mass(),
                ParcelState::Consumed { .. } => {}
            }
        }
        prop_assert_eq!(live + loss + retired + shortfall, registered + gain);
        let t = l.totals();
        prop_assert_eq!(
            (t.registered, t.transform_loss, t.retired, t.receipt_gain, t.receipt_loss),
            (registered.into(), loss.into(), retired.into(), gain.into(), shortfall.into())
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn rotations_revocations_and_suspensions_give_one_state_in_every_order(seed in any::<u64>(), order_seed in any::<u64>(), steps in 20usize..60) {
        governed_in_every_order(seed, order_seed, steps);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn forks_and_bad_roots_on_branches_give_one_state_in_every_order(seed in any::<u64>(), order_seed in any::<u64>(), steps in 20usize..60) {
        let (net, mut events) = scenario(seed, steps);
        let mut rng = Rng(order_seed);
        let (forks, bad) = equivocations(&net, &events, &mut rng);
        prop_assert!(!forks.is_empty());
        events.extend(forks);
        let all: Vec<Signed> = events.iter().chain(&bad).cloned().collect();
        let reference = settled(&net, &shuffled(&all, &mut rng));
        prop_assert!(reference.forks().count() >= 1, "a fork is proven");
        for s in &events {
            prop_assert!(reference.event(&s.id).is_some(), "stored: {}", s.id);
        }
        for s in &bad {
            prop_assert!(reference.event(&s.id).is_none(), "a bad feed root is never stored: {}", s.id);
        }
        prop_assert_eq!(reference.pending_len(), 0);
        for _ in 0..2 {
            let other = settled(&net, &shuffled(&all, &mut rng));
            assert_same_state(&reference, &other);
        }
        // Late-arriving forks: every honest event first, then the equivocations.
        let late: Vec<&Signed> = all.iter().collect();
        assert_same_state(&reference, &settled(&net, &late));
        let bytes: Vec<Vec<u8>> = shuffled(&all, &mut rng).into_iter().map(|s| s.bytes.clone()).collect();
        let replayed = replay_events(&net.dev.genesis(), &bytes, ReplayOptions::default()).expect("replay");
        assert_same_state(&reference, &replayed.ledger);
    }
}

#[test]
fn scenarios_exercise_the_void_rules() {
    // The generator must produce void attempts, or the properties above prove little about them.
    // The Kimberley Process kinds too: declarations and certificates with an HS code applied, and
    // certificates void for their carats, their origins or a reused number.
    let mut reasons = HashSet::new();
    for seed in 0..60 {
        let (net, events) = scenario(seed, 80);
        let l = ledger_in_order(&net, &events.iter().collect::<Vec<_>>());
        for s in &events {
            let v = net.verify(s);
            match (v.body(), l.event(v.id()).map(|m| m.verdict)) {
                (_, Some(Verdict::Void(r))) => reasons.insert(r.name()),
                (Body::Declare(_), Some(Verdict::Applied)) => reasons.insert("applied declare"),
                (Body::KpCertificate(_), Some(Verdict::Applied)) => {
                    reasons.insert("applied kp-certificate")
                }
                _ => false,
            };
        }
    }
    for r in [
        "conflict",
        "mass-gain",
        "wrong-role",
        "uncertified",
        "not-recipient",
        "certificate-carats",
        "certificate-origin",
        "certificate-number-reused",
        "applied declare",
        "applied kp-certificate",
    ] {
        assert!(
            reasons.contains(r),
            "no {r} in generated scenarios: {reasons:?}"
        );
    }
}

#[test]
fn governed_scenarios_exercise_the_binding_rules() {
    // Key cuts and suspensions must void events in the generated stories, or the property
    // above proves little about them.
    let mut reasons = HashSet::new();
    for seed in 0..30 {
        let (mut net, mut events) = scenario(seed, 60);
        let governance = governed(&mut net, &events, &mut Rng(seed));
        events.extend(governance);
        let l = settled(&net, &events.iter().collect::<Vec<_>>());
        for m in l.events().values() {
            if let Verdict::Void(r) = m.verdict {
                reasons.insert(r.name());
            }
        }
    }
    for r in ["revoked-key", "suspended", "unknown-parcel", "embargoed"] {
        assert!(
            reasons.contains(r),
            "no {r} in governed scenarios: {reasons:?}"
        );
    }
}

/// Governance mixed into a custody story: one state in random orders, late, early, and replayed.
fn governed_in_every_order(seed: u64, order_seed: u64, steps: usize) {
    let (mut net, mut events) = scenario(seed, steps);
    let mut rng = Rng(order_seed);
    let custody = events.len();
    let governance = governed(&mut net, &events, &mut rng);
    events.extend(governance);
    let reference = settled(&net, &shuffled(&events, &mut rng));
    assert!(
        reference.governance().latest() >= 2,
        "the records are in force"
    );
    assert_eq!(reference.pending_len(), 0);
    for s in &events {
        assert!(reference.event(&s.id).is_some(), "stored: {}", s.id);
    }
    for _ in 0..2 {
        assert_same_state(&reference, &settled(&net, &shuffled(&events, &mut rng)));
    }
    // Late governance: the whole custody story first, then the records that reach back.
    let late: Vec<&Signed> = events.iter().collect();
    assert_same_state(&reference, &settled(&net, &late));
    // Governance first: the records bind from the start.
    let early: Vec<&Signed> = events[custody..].iter().chain(&events[..custody]).collect();
    assert_same_state(&reference, &settled(&net, &early));
    let bytes: Vec<Vec<u8>> = shuffled(&events, &mut rng)
        .into_iter()
        .map(|s| s.bytes.clone())
        .collect();
    let replayed =
        replay_events(&net.dev.genesis(), &bytes, ReplayOptions::default()).expect("replay");
    assert!(replayed.report.intact(), "{:?}", replayed.report);
    assert_same_state(&reference, &replayed.ledger);
}

#[test]
fn governed_regression_a_cut_that_reaches_pending_events() {
    governed_in_every_order(688_389_096_234_702_051, 394_719_779_946_493_684, 21);
}
