//! Every void reason of the custody rules, and the applied paths around them.

mod common;

use common::*;
use ledger_core::audit::audit_parcel;
use ledger_core::origin::SHARE_UNITS;
use ledger_core::rules::{ParcelState, Verdict, VoidReason};

fn void(r: VoidReason) -> Verdict {
    Verdict::Void(r)
}

#[test]
fn a_full_story_applies_and_mixes_origins_by_weight() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-zw", register("marange", 300));
    let b = net.sign("mine-bw", register("jwaneng", 100));
    let da = net.sign("mine-zw", dispatch(registered(&a), "sorter-bw", None));
    let db = net.sign("mine-bw", dispatch(registered(&b), "sorter-bw", None));
    // mine-zw is in ZW, sorter-bw in BW: the first dispatch is cross-border and uncertified.
    for s in [&a, &b] {
        assert_eq!(apply(&net, &mut l, s), Verdict::Applied);
    }
    assert_eq!(apply(&net, &mut l, &da), void(VoidReason::Uncertified));
    assert_eq!(apply(&net, &mut l, &db), Verdict::Applied);
    let rb = net.sign(
        "sorter-bw",
        receive(pref(registered(&b).parcel, db.id), 100),
    );
    assert_eq!(apply(&net, &mut l, &rb), Verdict::Applied);
    // A ZW certificate lets mine-zw ship to the BW sorter.
    let cert = net.sign(
        "authority-zw",
        with_origins(
            certify(
                "KP-ZW-1",
                "mine-zw",
                "sorter-bw",
                "BW",
                &[registered(&a)],
                300,
            ),
            &["ZW"],
        ),
    );
    assert_eq!(apply(&net, &mut l, &cert), Verdict::Applied);
    let da2 = net.sign(
        "mine-zw",
        dispatch(registered(&a), "sorter-bw", Some(cert.id)),
    );
    assert_eq!(apply(&net, &mut l, &da2), Verdict::Applied);
    let ra = net.sign(
        "sorter-bw",
        receive(pref(registered(&a).parcel, da2.id), 300),
    );
    assert_eq!(apply(&net, &mut l, &ra), Verdict::Applied);
    let mix = net.sign(
        "sorter-bw",
        transform(
            &[
                pref(registered(&a).parcel, ra.id),
                pref(registered(&b).parcel, rb.id),
            ],
            &[250, 140],
        ),
    );
    assert_eq!(apply(&net, &mut l, &mix), Verdict::Applied);
    let out = output(&mix, 0);
    let audit = audit_parcel(&l, &out.parcel).expect("parcel exists");
    let shares: Vec<(String, u64)> = audit
        .origin
        .iter()
        .map(|s| (s.site.to_string(), s.units))
        .collect();
    assert_eq!(
        shares,
        vec![
            ("jwaneng".into(), 250_000_000),
            ("marange".into(), 750_000_000)
        ]
    );
    assert_eq!(
        audit.origin_countries.iter().map(|c| c.1).sum::<u64>(),
        SHARE_UNITS
    );
    assert_eq!(audit.ancestry.len(), 3);
    assert_eq!(audit.custodian, Some(mid("sorter-bw")));
    // The history shows the void uncertified attempt as well as what applied.
    assert!(audit
        .history
        .iter()
        .any(|h| h.event == da.id && h.verdict == void(VoidReason::Uncertified)));
    assert_eq!(l.totals().transform_loss, 10);
}

#[test]
fn wrong_role_is_void() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    // A sorter cannot register, an importer cannot transform, a mine cannot certify or flag.
    let s = net.sign("sorter-bw", register("jwaneng", 10));
    assert_eq!(apply(&net, &mut l, &s), void(VoidReason::WrongRole));
    let c = net.sign(
        "mine-bw",
        certify(
            "KP-1",
            "exporter-bw",
            "importer-be",
            "BE",
            &[registered(&s)],
            10,
        ),
    );
    assert_eq!(apply(&net, &mut l, &c), void(VoidReason::WrongRole));
    let a = net.sign("mine-bw", register("jwaneng", 10));
    assert_eq!(apply(&net, &mut l, &a), Verdict::Applied);
    let t = net.sign("importer-be", transform(&[registered(&a)], &[5]));
    assert_eq!(apply(&net, &mut l, &t), void(VoidReason::WrongRole));
    let flag = net.sign(
        "mine-bw",
        ledger_core::event::Body::Flag(ledger_core::event::Flag {
            target: ledger_core::event::FlagTarget::Member(mid("mine-zw")),
            code: ledger_core::event::FlagCode::Smuggling,
            text: String::new(),
        }),
    );
    assert_eq!(apply(&net, &mut l, &flag), void(VoidReason::WrongRole));
    let not_own = net.sign("mine-bw", register("marange", 10));
    assert_eq!(apply(&net, &mut l, &not_own), void(VoidReason::NotOwnSite));
}

#[test]
fn not_the_custodian_is_void() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 10));
    apply(&net, &mut l, &a);
    let steal = net.sign("sorter-bw", dispatch(registered(&a), "exporter-bw", None));
    assert_eq!(apply(&net, &mut l, &steal), void(VoidReason::NotCustodian));
    let retire_other = net.sign("exporter-bw", retire(registered(&a)));
    assert_eq!(
        apply(&net, &mut l, &retire_other),
        void(VoidReason::NotCustodian)
    );
    // The recipient of a dispatch cannot act as holder before receiving it.
    let d = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    apply(&net, &mut l, &d);
    let early = net.sign("sorter-bw", retire(pref(registered(&a).parcel, d.id)));
    assert_eq!(apply(&net, &mut l, &early), void(VoidReason::NotCustodian));
    assert_eq!(
        l.parcel(&registered(&a).parcel).map(|p| p.state().name()),
        Some("in-transit")
    );
}

#[test]
fn double_dispatch_voids_the_later_event_of_the_feed() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 10));
    let d1 = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    let d2 = net.sign("mine-bw", dispatch(registered(&a), "exporter-bw", None));
    apply(&net, &mut l, &a);
    assert_eq!(apply(&net, &mut l, &d1), Verdict::Applied);
    assert_eq!(apply(&net, &mut l, &d2), void(VoidReason::Conflict));
    // The second recipient cannot receive what was never validly sent to it.
    let r2 = net.sign(
        "exporter-bw",
        receive(pref(registered(&a).parcel, d2.id), 10),
    );
    assert_eq!(apply(&net, &mut l, &r2), void(VoidReason::UnknownParcel));
    let r1 = net.sign("sorter-bw", receive(pref(registered(&a).parcel, d1.id), 10));
    assert_eq!(apply(&net, &mut l, &r1), Verdict::Applied);
}

#[test]
fn mass_gain_is_void() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    apply(&net, &mut l, &a);
    let gain = net.sign("mine-bw", transform(&[registered(&a)], &[60, 41]));
    assert_eq!(apply(&net, &mut l, &gain), void(VoidReason::MassGain));
    let ok = net.sign("mine-bw", transform(&[registered(&a)], &[60, 40]));
    assert_eq!(apply(&net, &mut l, &ok), Verdict::Applied);
    assert_eq!(l.totals().transform_loss, 0);
}

#[test]
fn uncertified_cross_border_dispatch_is_void() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    apply(&net, &mut l, &a);
    let d = net.sign("mine-bw", dispatch(registered(&a), "importer-be", None));
    assert_eq!(apply(&net, &mut l, &d), void(VoidReason::Uncertified));
    // A certificate naming another exporter does not cover it either.
    let c = net.sign(
        "authority-bw",
        certify(
            "KP-2",
            "exporter-bw",
            "importer-be",
            "BE",
            &[registered(&a)],
            100,
        ),
    );
    assert_eq!(apply(&net, &mut l, &c), Verdict::Applied);
    let d2 = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(c.id)),
    );
    assert_eq!(apply(&net, &mut l, &d2), void(VoidReason::Uncertified));
    // A certificate for other parcels does not cover it.
    let c2 = net.sign(
        "authority-bw",
        certify(
            "KP-3",
            "mine-bw",
            "importer-be",
            "BE",
            &[pref(c.id, c.id)],
            100,
        ),
    );
    apply(&net, &mut l, &c2);
    let d3 = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(c2.id)),
    );
    assert_eq!(apply(&net, &mut l, &d3), void(VoidReason::Uncertified));
}

#[test]
fn certificate_from_the_wrong_country_is_void_and_certifies_nothing() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    apply(&net, &mut l, &a);
    // The Belgian authority certifies a Botswanan export: void, and the dispatch citing it too.
    let c = net.sign(
        "authority-be",
        certify(
            "KP-4",
            "mine-bw",
            "importer-be",
            "BE",
            &[registered(&a)],
            100,
        ),
    );
    assert_eq!(apply(&net, &mut l, &c), void(VoidReason::WrongCountry));
    let d = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(c.id)),
    );
    assert_eq!(apply(&net, &mut l, &d), void(VoidReason::Uncertified));
    // The right authority's certificate works.
    let good = net.sign(
        "authority-bw",
        certify(
            "KP-5",
            "mine-bw",
            "importer-be",
            "BE",
            &[registered(&a)],
            100,
        ),
    );
    assert_eq!(apply(&net, &mut l, &good), Verdict::Applied);
    let d2 = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(good.id)),
    );
    assert_eq!(apply(&net, &mut l, &d2), Verdict::Applied);
    // Import confirmation: only the destination's authority.
    let wrong = net.sign(
        "authority-zw",
        ledger_core::event::Body::ConfirmImport(ledger_core::event::ConfirmImport {
            certificate: good.id,
            note: String::new(),
        }),
    );
    assert_eq!(apply(&net, &mut l, &wrong), void(VoidReason::WrongCountry));
    let right = net.sign(
        "authority-be",
        ledger_core::event::Body::ConfirmImport(ledger_core::event::ConfirmImport {
            certificate: good.id,
            note: String::new(),
        }),
    );
    assert_eq!(apply(&net, &mut l, &right), Verdict::Applied);
}

#[test]
fn only_the_recipient_receives_or_rejects() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    let d = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    apply(&net, &mut l, &a);
    apply(&net, &mut l, &d);
    let head = pref(registered(&a).parcel, d.id);
    let thief = net.sign("exporter-bw", receive(head, 100));
    assert_eq!(apply(&net, &mut l, &thief), void(VoidReason::NotRecipient));
    let thief_reject = net.sign("exporter-bw", reject(head));
    assert_eq!(
        apply(&net, &mut l, &thief_reject),
        void(VoidReason::NotRecipient)
    );
    let rej = net.sign("sorter-bw", reject(head));
    assert_eq!(apply(&net, &mut l, &rej), Verdict::Applied);
    // Rejected: back with the sender, who can dispatch again.
    assert_eq!(
        l.parcel(&head.parcel).map(|p| p.state().clone()),
        Some(ParcelState::Held { by: mid("mine-bw") })
    );
    let again = net.sign(
        "mine-bw",
        dispatch(pref(head.parcel, rej.id), "exporter-bw", None),
    );
    assert_eq!(apply(&net, &mut l, &again), Verdict::Applied);
}

#[test]
fn consumed_and_retired_parcels_cannot_move() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    let b = net.sign("mine-bw", register("orapa", 50));
    apply(&net, &mut l, &a);
    apply(&net, &mut l, &b);
    let t = net.sign("mine-bw", transform(&[registered(&a)], &[100]));
    assert_eq!(apply(&net, &mut l, &t), Verdict::Applied);
    let after_consumed = net.sign(
        "mine-bw",
        dispatch(pref(registered(&a).parcel, t.id), "sorter-bw", None),
    );
    assert_eq!(
        apply(&net, &mut l, &after_consumed),
        void(VoidReason::ParcelClosed)
    );
    let r = net.sign("mine-bw", retire(registered(&b)));
    assert_eq!(apply(&net, &mut l, &r), Verdict::Applied);
    let after_retired = net.sign(
        "mine-bw",
        transform(&[pref(registered(&b).parcel, r.id)], &[10]),
    );
    assert_eq!(
        apply(&net, &mut l, &after_retired),
        void(VoidReason::ParcelClosed)
    );
    assert_eq!(l.totals().retired, 50);
}

#[test]
fn self_dispatch_and_unknown_recipient_are_void() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 100));
    apply(&net, &mut l, &a);
    let me = net.sign("mine-bw", dispatch(registered(&a), "mine-bw", None));
    assert_eq!(apply(&net, &mut l, &me), void(VoidReason::SelfDispatch));
    let nobody = net.sign("mine-bw", dispatch(registered(&a), "nobody", None));
    assert_eq!(
        apply(&net, &mut l, &nobody),
        void(VoidReason::UnknownMember)
    );
}
