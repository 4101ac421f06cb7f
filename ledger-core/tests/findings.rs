//! Findings: each kind appears exactly when its condition holds, and a parcel's audit gets only the findings that concern its ancestry.

mod common;

use std::collections::BTreeMap;

use common::*;
use ledger_core::audit::audit_parcel;
use ledger_core::event::{Body, Flag, FlagCode, FlagTarget, NewParcel, Receive, Transform};
use ledger_core::findings::{all_findings, parcel_findings, FindingCode};
use ledger_core::ledger::Ledger;
use ledger_core::rules::Verdict;

const DAY_MS: u64 = 86_400_000;

fn codes(findings: &[ledger_core::findings::Finding]) -> BTreeMap<FindingCode, usize> {
    let mut out = BTreeMap::new();
    for f in findings {
        *out.entry(f.code).or_default() += 1;
    }
    out
}

fn ok(net: &Net, ledger: &mut Ledger, s: &ledger_core::writer::Signed) {
    assert_eq!(apply(net, ledger, s), Verdict::Applied);
}

#[test]
fn every_kind_of_finding_is_found_and_scoped_to_the_audited_parcel() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    assert!(all_findings(&l).is_empty());

    // A: received 1% light, then transformed with a 10% loss (tolerance 5%).
    let a = net.sign("mine-bw", register("jwaneng", 1000));
    ok(&net, &mut l, &a);
    let da = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    ok(&net, &mut l, &da);
    let ra = net.sign(
        "sorter-bw",
        receive(pref(registered(&a).parcel, da.id), 990),
    );
    ok(&net, &mut l, &ra);
    let ta = net.sign(
        "sorter-bw",
        transform(&[pref(registered(&a).parcel, ra.id)], &[900]),
    );
    ok(&net, &mut l, &ta);

    // B: received with a broken seal (weight right), transformed with 1% loss into an output
    // declared at four times its input's value per carat.
    let b = net.sign("mine-bw", register("orapa", 1000));
    ok(&net, &mut l, &b);
    let db = net.sign("mine-bw", dispatch(registered(&b), "sorter-bw", None));
    ok(&net, &mut l, &db);
    let rb = net.sign(
        "sorter-bw",
        Body::Receive(Receive {
            parcel: pref(registered(&b).parcel, db.id),
            measured_carats: 1000,
            seal_intact: false,
            note: "tape cut".into(),
        }),
    );
    ok(&net, &mut l, &rb);
    let tb = net.sign(
        "sorter-bw",
        Body::Transform(Transform {
            inputs: vec![pref(registered(&b).parcel, rb.id)],
            outputs: vec![NewParcel {
                carats: 990,
                stones: 1,
                value_cents: Some(400_000),
                seal: String::new(),
            }],
        }),
    );
    ok(&net, &mut l, &tb);

    // C: dispatched and never received; D: dispatched with its own deadline far ahead.
    let c = net.sign("mine-bw", register("jwaneng", 500));
    ok(&net, &mut l, &c);
    let dc = net.sign("mine-bw", dispatch(registered(&c), "sorter-bw", None));
    ok(&net, &mut l, &dc);
    let d = net.sign("mine-bw", register("jwaneng", 500));
    ok(&net, &mut l, &d);
    let mut far = dispatch(registered(&d), "sorter-bw", None);
    if let Body::Dispatch(x) = &mut far {
        x.deadline_ms = Some(net.time + 365 * DAY_MS);
    }
    let dd = net.sign("mine-bw", far);
    ok(&net, &mut l, &dd);
    assert!(
        !codes(&all_findings(&l)).contains_key(&FindingCode::OverdueDispatch),
        "nothing is overdue yet"
    );

    // Two certificates with one number, by authorities of two countries (one authority using a
    // number twice is void, not a finding).
    let c1 = net.sign(
        "authority-bw",
        certify(
            "BW-9",
            "exporter-bw",
            "importer-be",
            "BE",
            &[registered(&c)],
            500,
        ),
    );
    ok(&net, &mut l, &c1);
    let c2 = net.sign(
        "authority-zw",
        certify(
            "BW-9",
            "mine-zw",
            "importer-be",
            "BE",
            &[registered(&d)],
            500,
        ),
    );
    ok(&net, &mut l, &c2);

    // An equivocating mine: two different events for seq 1.
    let mut first = net.dev.writer("mine-zw").expect("member");
    let mut second = net.dev.writer("mine-zw").expect("member");
    let e1 = first.append(register("marange", 10), net.time + 1);
    let e2 = second.append(register("marange", 20), net.time + 2);
    apply(&net, &mut l, &e1);
    apply(&net, &mut l, &e2);

    // Flags, 31 days later: one on a member that is in no audited history, one on A's site.
    net.time += 31 * DAY_MS;
    let flag = |target: FlagTarget| {
        Body::Flag(Flag {
            target,
            code: FlagCode::Smuggling,
            text: "tip-off".into(),
        })
    };
    let f1 = net.sign("monitor", flag(FlagTarget::Member(mid("exporter-bw"))));
    ok(&net, &mut l, &f1);
    let f2 = net.sign(
        "monitor",
        flag(FlagTarget::Site {
            member: mid("mine-bw"),
            site: "jwaneng".parse().expect("site"),
        }),
    );
    ok(&net, &mut l, &f2);

    let all = all_findings(&l);
    let expected: BTreeMap<FindingCode, usize> = [
        (FindingCode::Flagged, 2),
        (FindingCode::MassLoss, 1),
        (FindingCode::ReceiptMismatch, 1),
        (FindingCode::BrokenSeal, 1),
        (FindingCode::OverdueDispatch, 1),
        (FindingCode::ValueJump, 1),
        (FindingCode::DuplicateCertificate, 1),
        (FindingCode::Equivocation, 1),
    ]
    .into();
    assert_eq!(codes(&all), expected, "{all:#?}");
    let overdue = all
        .iter()
        .find(|f| f.code == FindingCode::OverdueDispatch)
        .expect("overdue");
    assert_eq!(
        overdue.event,
        Some(dc.id),
        "the dispatch without a deadline is overdue, not the other"
    );
    let mass = all
        .iter()
        .find(|f| f.code == FindingCode::MassLoss)
        .expect("mass loss");
    assert_eq!(mass.event, Some(ta.id));

    // A's output: its own transform's loss, A's light receipt and the flag on A's site.
    let out_a = output(&ta, 0).parcel;
    let audit = audit_parcel(&l, &out_a).expect("audit");
    let scoped = codes(&parcel_findings(&l, &audit));
    assert_eq!(
        scoped,
        [
            (FindingCode::Flagged, 1),
            (FindingCode::MassLoss, 1),
            (FindingCode::ReceiptMismatch, 1)
        ]
        .into()
    );
    // B's output: the broken seal and the value jump; orapa is not flagged.
    let out_b = output(&tb, 0).parcel;
    let audit = audit_parcel(&l, &out_b).expect("audit");
    let scoped = codes(&parcel_findings(&l, &audit));
    assert_eq!(
        scoped,
        [(FindingCode::BrokenSeal, 1), (FindingCode::ValueJump, 1)].into()
    );
}

#[test]
fn a_registration_long_after_its_declared_extraction_is_late_and_one_within_tolerance_is_not() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    // The clock is T0 (2026-05-28); the policy tolerates 7 days.
    let on_time = net.sign("mine-bw", register("jwaneng", 100));
    ok(&net, &mut l, &on_time);
    assert!(!codes(&all_findings(&l)).contains_key(&FindingCode::LateRegistration));
    let stockpiled = net.sign(
        "mine-bw",
        Body::Register(ledger_core::event::Register {
            site: "orapa".parse().expect("site"),
            carats: 900,
            stones: 40,
            value_cents: None,
            seal: "S-9".into(),
            extracted_on: date("2026-01-15"),
        }),
    );
    ok(&net, &mut l, &stockpiled);
    let late: Vec<_> = all_findings(&l)
        .into_iter()
        .filter(|f| f.code == FindingCode::LateRegistration)
        .collect();
    assert_eq!(late.len(), 1, "{late:?}");
    assert_eq!(late[0].parcels, vec![registered(&stockpiled).parcel]);
    assert!(late[0].detail.contains("133 days"), "{}", late[0].detail);
    // It shows in that parcel's audit, not in the other's.
    let audit = audit_parcel(&l, &registered(&stockpiled).parcel).expect("audit");
    assert!(parcel_findings(&l, &audit)
        .iter()
        .any(|f| f.code == FindingCode::LateRegistration));
    let audit = audit_parcel(&l, &registered(&on_time).parcel).expect("audit");
    assert!(parcel_findings(&l, &audit)
        .iter()
        .all(|f| f.code != FindingCode::LateRegistration));
}

/// A parcel's findings are computed over its ancestry alone (so a page costs its ancestry, not
/// the log): they must equal the whole ledger's findings filtered to what concerns the audit.
#[test]
fn a_parcels_findings_equal_the_whole_ledgers_filtered_to_it() {
    use ledger_core::findings::{
        all_findings_at, embargo_findings, latest_time, parcel_findings_at,
    };
    use std::collections::BTreeSet;
    let mut compared = 0;
    for seed in 0..25 {
        let (mut net, mut events) = common::scenario(seed, 80);
        events.extend(common::stories::governed(
            &mut net,
            &events,
            &mut common::Rng(seed),
        ));
        let l = common::settled(&net, &events.iter().collect::<Vec<_>>());
        let now = latest_time(&l);
        let all = all_findings_at(&l, now);
        for p in l.parcels() {
            let audit = audit_parcel(&l, &p.id).expect("audit");
            let parcels: BTreeSet<_> = audit.ancestry.iter().map(|a| a.parcel).collect();
            let events: BTreeSet<_> = audit.history.iter().map(|h| h.event).collect();
            let members: BTreeSet<_> = audit.history.iter().map(|h| h.author.clone()).collect();
            let sites: BTreeSet<_> = audit
                .origin
                .iter()
                .map(|s| (s.member.clone(), s.site.clone()))
                .collect();
            let mut expected: Vec<_> = all
                .iter()
                .filter(|f| f.code != FindingCode::EmbargoedOrigin)
                .filter(|f| {
                    f.parcels.iter().any(|x| parcels.contains(x))
                        || f.event.is_some_and(|e| events.contains(&e))
                        || f.members.iter().any(|m| members.contains(m))
                        || f.sites.iter().any(|s| sites.contains(s))
                })
                .cloned()
                .collect();
            expected.extend(embargo_findings(&l, p));
            expected.sort_by(|a, b| (a.code, &a.detail).cmp(&(b.code, &b.detail)));
            assert_eq!(
                parcel_findings_at(&l, &audit, now),
                expected,
                "seed {seed}, parcel {}",
                p.id
            );
            compared += 1;
        }
    }
    assert!(compared > 500, "{compared} parcels compared");
}
