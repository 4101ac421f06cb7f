//! Every admission failure: what cannot be stored is refused with a clear reason, and nothing panics.

mod common;

use common::*;
use ledger_core::admission::{verify_event, AdmissionError};
use ledger_core::bytes::Digest;
use ledger_core::codec::{DecodeError, MAX_EVENT_BYTES};
use ledger_core::crypto::SecretKey;
use ledger_core::event::Body;
use ledger_core::ledger::{Ledger, Limits, Missing, Step};
use ledger_core::rules::Verdict;
use ledger_core::writer::sign;
use proptest::prelude::*;

fn refused(net: &Net, bytes: &[u8]) -> AdmissionError {
    verify_event(bytes, &net.dev.network(), &net.keys).expect_err("must be refused")
}

fn offer_err(
    net: &Net,
    l: &mut ledger_core::ledger::Ledger,
    s: &ledger_core::writer::Signed,
) -> AdmissionError {
    let p = l.offer(net.verify(s)).expect("room");
    match &p[0].outcome {
        Err(e) => e.clone(),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_flipped_bit_anywhere_is_refused() {
    let mut net = Net::standard();
    let s = net.sign("mine-bw", register("jwaneng", 100));
    assert!(verify_event(&s.bytes, &net.dev.network(), &net.keys).is_ok());
    for byte in 0..s.bytes.len() {
        for bit in 0..8 {
            let mut b = s.bytes.clone();
            b[byte] ^= 1 << bit;
            assert!(
                verify_event(&b, &net.dev.network(), &net.keys).is_err(),
                "flip of bit {bit} of byte {byte} accepted"
            );
        }
    }
}

#[test]
fn wrong_network_is_refused() {
    let mut net = Net::standard();
    let s = net.sign("mine-bw", register("jwaneng", 100));
    let other = Digest([9; 32]);
    let err = verify_event(&s.bytes, &other, &net.keys).expect_err("other network");
    assert!(
        matches!(err, AdmissionError::WrongNetwork { .. }),
        "{err:?}"
    );
    // Signed for another network but carrying this network's id: the signature fails.
    let mut header = net.writer("mine-bw").next_header(T0);
    header.network = other;
    let foreign = net
        .writer("mine-bw")
        .sign_raw(header, register("jwaneng", 1));
    assert!(matches!(
        refused(&net, &foreign.bytes),
        AdmissionError::WrongNetwork { .. }
    ));
}

#[test]
fn keys_that_are_not_the_members_are_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let stranger = SecretKey::from_bytes(&[42; 32]);
    // A member's name with a stranger's key: signature valid, key wrong.
    let mut header = net.writer("mine-bw").next_header(T0);
    header.key = stranger.public();
    let forged = sign(header.clone(), register("jwaneng", 1), &stranger);
    assert_eq!(offer_err(&net, &mut l, &forged), AdmissionError::WrongKey);
    // Not a member at all.
    header.author = mid("smuggler");
    let outsider = sign(header, register("jwaneng", 1), &stranger);
    assert!(matches!(
        offer_err(&net, &mut l, &outsider),
        AdmissionError::NotAMember(_)
    ));
    // Another member's key.
    let mut header = net.writer("mine-bw").next_header(T0);
    header.key = ledger_core::dev::dev_key("mine-zw").public();
    let wrong = sign(
        header,
        register("jwaneng", 1),
        &ledger_core::dev::dev_key("mine-zw"),
    );
    assert_eq!(offer_err(&net, &mut l, &wrong), AdmissionError::WrongKey);
    assert!(l.events().is_empty());
}

#[test]
fn broken_prev_is_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 1));
    let z = net.sign("mine-zw", register("marange", 1));
    apply(&net, &mut l, &a);
    apply(&net, &mut l, &z);
    // seq 2 of mine-bw whose prev is mine-zw's event.
    let mut h = net.writer("mine-bw").next_header(T0 + 10_000);
    h.prev = z.id;
    let bad = net.writer("mine-bw").sign_raw(h, register("jwaneng", 1));
    assert_eq!(offer_err(&net, &mut l, &bad), AdmissionError::BrokenPrev);
    // seq 3 whose prev is seq 1.
    let mut h = net.writer("mine-bw").next_header(T0 + 10_000);
    h.seq = 3;
    let skip = net.writer("mine-bw").sign_raw(h, register("jwaneng", 1));
    assert_eq!(offer_err(&net, &mut l, &skip), AdmissionError::BrokenPrev);
    // seq 1 with a non-zero prev is malformed.
    let mut h = net.writer("sorter-bw").next_header(T0);
    h.prev = a.id;
    let first = net.writer("sorter-bw").sign_raw(h, register("jwaneng", 1));
    assert!(matches!(
        refused(&net, &first.bytes),
        AdmissionError::Shape(_)
    ));
}

#[test]
fn a_seq_gap_waits_in_pending_and_applies_when_the_gap_fills() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let e1 = net.sign("mine-bw", register("jwaneng", 1));
    let e2 = net.sign("mine-bw", register("jwaneng", 2));
    let e3 = net.sign("mine-bw", register("jwaneng", 3));
    apply(&net, &mut l, &e1);
    let p = l.offer(net.verify(&e3)).expect("room");
    assert_eq!(p[0].outcome, Ok(Step::Pending(vec![Missing::Event(e2.id)])));
    assert_eq!(l.pending_len(), 1);
    let p = l.offer(net.verify(&e2)).expect("room");
    assert_eq!(p.len(), 2, "e2 and the unblocked e3");
    assert!(p.iter().all(|p| matches!(
        p.outcome,
        Ok(Step::Stored {
            verdict: Verdict::Applied,
            ..
        })
    )));
    assert_eq!(l.pending_len(), 0);
    assert_eq!(l.feed(&mid("mine-bw")).map(|f| f.ids.len()), Some(3));
}

#[test]
fn time_going_backwards_is_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 1));
    apply(&net, &mut l, &a);
    let mut h = net.writer("mine-bw").next_header(0);
    h.time_ms = T0 - 1;
    let back = net.writer("mine-bw").sign_raw(h, register("jwaneng", 1));
    assert_eq!(
        offer_err(&net, &mut l, &back),
        AdmissionError::TimeBackwards
    );
}

#[test]
fn an_unknown_governance_version_waits() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let mut h = net.writer("mine-bw").next_header(T0);
    h.gov = 3;
    let future = net.writer("mine-bw").sign_raw(h, register("jwaneng", 1));
    let p = l.offer(net.verify(&future)).expect("room");
    assert_eq!(p[0].outcome, Ok(Step::Pending(vec![Missing::Gov(3)])));
}

/// Defect: events citing a governance version not yet known were parked before membership was
/// checked, so anyone could fill the pending set with self-signed events that never wake.
#[test]
fn strangers_citing_a_future_governance_version_are_refused_not_parked() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let stranger = SecretKey::from_bytes(&[42; 32]);
    let mut h = net.writer("mine-bw").next_header(T0);
    h.gov = 1_000;
    h.key = stranger.public();
    let forged = sign(h.clone(), register("jwaneng", 1), &stranger);
    assert_eq!(offer_err(&net, &mut l, &forged), AdmissionError::WrongKey);
    h.author = mid("smuggler");
    for i in 0..100 {
        let outsider = sign(h.clone(), register("jwaneng", 1 + i), &stranger);
        let e = offer_err(&net, &mut l, &outsider);
        assert!(matches!(e, AdmissionError::NotAMember(_)), "{e:?}");
        assert!(e.blames_sender());
    }
    assert_eq!(l.pending_len(), 0, "nothing parked");
}

/// One member (or a thief of its key) flooding events that cannot apply yet takes only its own
/// share of the pending set: another member's out-of-order events still wait.
#[test]
fn one_author_cannot_fill_the_pending_set() {
    let mut net = Net::standard();
    let limits = Limits {
        max_pending_events: 100,
        max_pending_per_author: 10,
        ..Limits::default()
    };
    let mut l = Ledger::new(net.dev.genesis(), limits).expect("genesis");
    let mut refused = 0;
    for i in 0..50u64 {
        let mut h = net.writer("mine-bw").next_header(T0 + i);
        h.gov = 7 + i;
        let future = net
            .writer("mine-bw")
            .sign_raw(h, register("jwaneng", 1 + i));
        match l.offer(net.verify(&future)) {
            Ok(p) => assert!(matches!(p[0].outcome, Ok(Step::Pending(_)))),
            Err(full) => {
                assert!(full.author_quota, "{full}");
                refused += 1;
            }
        }
    }
    assert_eq!((l.pending_len(), refused), (10, 40));
    // Another member's event waiting for its prev still finds room.
    let _first = net.sign("mine-zw", register("marange", 1));
    let second = net.sign("mine-zw", register("marange", 2));
    let p = l
        .offer(net.verify(&second))
        .expect("room for another author");
    assert!(matches!(p[0].outcome, Ok(Step::Pending(_))));
}

#[test]
fn a_wrong_feed_root_is_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 1));
    apply(&net, &mut l, &a);
    let mut h = net.writer("mine-bw").next_header(T0 + 5000);
    h.feed_root = Digest([1; 32]);
    let bad = net.writer("mine-bw").sign_raw(h, register("jwaneng", 1));
    assert_eq!(offer_err(&net, &mut l, &bad), AdmissionError::BadFeedRoot);
}

#[test]
fn oversized_truncated_and_trailing_input_is_refused() {
    let mut net = Net::standard();
    let s = net.sign("mine-bw", register("jwaneng", 1));
    let big = vec![0u8; MAX_EVENT_BYTES + 1];
    assert!(matches!(
        refused(&net, &big),
        AdmissionError::Decode(DecodeError::TooLarge { .. })
    ));
    for cut in [0, 1, 10, 64, 65, s.bytes.len() / 2, s.bytes.len() - 1] {
        let e = refused(&net, &s.bytes[..cut]);
        assert!(
            matches!(e, AdmissionError::TooShort(_) | AdmissionError::Decode(_)),
            "cut {cut}: {e:?}"
        );
    }
    let mut trailing = s.bytes.clone();
    trailing.extend_from_slice(&[0, 0, 0]);
    assert_eq!(refused(&net, &trailing).reason(), "trailing-bytes");
    // A text field longer than allowed, properly signed, is refused by shape.
    let long = Body::Reject(ledger_core::event::Reject {
        parcel: registered(&s),
        reason: "x".repeat(ledger_core::types::MAX_TEXT_LEN + 1),
    });
    let s2 = net.sign("mine-bw", long);
    assert!(matches!(refused(&net, &s2.bytes), AdmissionError::Shape(_)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let net = Net::standard();
        prop_assert!(verify_event(&bytes, &net.dev.network(), &net.keys).is_err());
    }

    #[test]
    fn mutated_events_are_refused(pos in any::<prop::sample::Index>(), value in any::<u8>(), cut in any::<prop::sample::Index>(), insert in any::<bool>()) {
        let mut net = Net::standard();
        let s = net.sign("exporter-bw", certify("KP-9", "exporter-bw", "importer-be", "BE", &[pref(Digest([3; 32]), Digest([4; 32]))], 5));
        let mut b = s.bytes.clone();
        let i = pos.index(b.len());
        if insert {
            b.insert(i, value);
        } else if b[i] != value {
            b[i] = value;
        } else {
            b.truncate(cut.index(b.len()));
        }
        prop_assert!(verify_event(&b, &net.dev.network(), &net.keys).is_err());
    }
}
