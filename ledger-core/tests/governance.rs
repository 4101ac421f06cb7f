//! Governance as an adversary tries to capture it: blocs endorsing alone, quorums one short, keys
//! counted twice, suspended members and revoked keys endorsing, old records replayed, stale
//! records, and two records for one version.

mod common;

use common::*;
use ledger_core::admission::{verify_event, AdmissionError};
use ledger_core::audit::audit_parcel;
use ledger_core::dev::{dev_key, DevNetwork};
use ledger_core::event::{Body, EmbargoTarget, Endorse, GovAction};
use ledger_core::findings::{parcel_findings, FindingCode};
use ledger_core::ledger::{Ledger, Limits, Step};
use ledger_core::record::{endorse, record_id};
use ledger_core::replay::{replay_events, ReplayOptions};
use ledger_core::rules::{Verdict, VoidReason};
use ledger_core::types::{Chamber, Role};
use ledger_core::writer::Signed;

const GOVERNMENTS: [&str; 3] = ["authority-zw", "authority-bw", "authority-be"];

fn embargo_zw() -> GovAction {
    GovAction::SetEmbargo {
        target: EmbargoTarget::Country("ZW".parse().expect("country")),
        from: date("2026-01-01"),
        until: None,
        reason: "Marange".into(),
    }
}

fn suspend(member: &str) -> GovAction {
    GovAction::Suspend {
        member: mid(member),
        last_valid_seq: 0,
        reason: "left".into(),
    }
}

/// Offers `s` and asserts its verdict and the newest version afterwards.
fn expect(net: &Net, ledger: &mut Ledger, s: &Signed, verdict: Verdict, latest: u64) {
    assert_eq!(apply(net, ledger, s), verdict);
    assert_eq!(ledger.governance().latest(), latest);
}

fn no_quorum() -> Verdict {
    Verdict::Void(VoidReason::NoQuorum)
}

#[test]
fn every_government_endorsing_alone_is_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let g = next_record(&net, &l, embargo_zw(), &GOVERNMENTS);
    let tally = {
        let s = submit(&mut net, "authority-zw", g);
        expect(&net, &mut l, &s, no_quorum(), 0);
        let rec = l.governance().records().next().expect("record kept");
        l.governance().tally(rec).expect("tally")
    };
    assert_eq!(tally.government, 3);
    assert_eq!(tally.shortfall(), "industry 0 of 1, civil society 0 of 1");
}

#[test]
fn industry_and_civil_society_without_two_thirds_of_governments_are_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let by = [
        "mine-zw",
        "mine-bw",
        "sorter-bw",
        "exporter-bw",
        "importer-be",
        "monitor",
        "authority-zw",
    ];
    let g = next_record(&net, &l, embargo_zw(), &by);
    let s = submit(&mut net, "monitor", g);
    expect(&net, &mut l, &s, no_quorum(), 0);
}

/// Six governments: two thirds is four.
fn six_governments() -> Net {
    let mut dev = DevNetwork::new()
        .member("mine", Chamber::Industry, "ZW", &[Role::Mine], &["pit"])
        .member(
            "monitor",
            Chamber::CivilSociety,
            "ZA",
            &[Role::Monitor],
            &[],
        );
    for i in 0..6 {
        dev = dev.member(
            &format!("gov-{i}"),
            Chamber::Government,
            "ZW",
            &[Role::Authority],
            &[],
        );
    }
    Net::new(dev)
}

#[test]
fn exactly_two_thirds_of_governments_passes_and_one_short_does_not() {
    for (governments, verdict, latest) in [(3, no_quorum(), 0), (4, Verdict::Applied, 1)] {
        let mut net = six_governments();
        let mut l = net.ledger();
        let mut by: Vec<String> = (0..governments).map(|i| format!("gov-{i}")).collect();
        by.extend(["mine".to_owned(), "monitor".to_owned()]);
        let by: Vec<&str> = by.iter().map(String::as_str).collect();
        let g = next_record(&net, &l, embargo_zw(), &by);
        let s = submit(&mut net, "mine", g);
        expect(&net, &mut l, &s, verdict, latest);
    }
}

#[test]
fn one_key_counted_twice_counts_once() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let mut g = next_record(
        &net,
        &l,
        embargo_zw(),
        &["authority-zw", "mine-zw", "monitor"],
    );
    g.endorsements.push(g.endorsements[0].clone());
    let s = submit(&mut net, "monitor", g);
    expect(&net, &mut l, &s, no_quorum(), 0);
    let rec = l.governance().records().next().expect("record kept");
    assert_eq!(l.governance().tally(rec).expect("tally").government, 1);
}

/// Applies `action` as the next version with every member endorsing.
fn enact(net: &mut Net, l: &mut Ledger, action: GovAction) {
    let everyone = [
        "authority-zw",
        "authority-bw",
        "authority-be",
        "mine-zw",
        "mine-bw",
        "monitor",
    ];
    let latest = l.governance().latest();
    let g = next_record(net, l, action, &everyone);
    let s = submit(net, "monitor", g);
    expect(net, l, &s, Verdict::Applied, latest + 1);
}

#[test]
fn a_suspended_members_endorsement_counts_for_nothing() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    enact(&mut net, &mut l, suspend("authority-zw"));
    // Two governments may endorse now, so two are needed; the suspended one does not count.
    let by = ["authority-zw", "authority-bw", "mine-zw", "monitor"];
    let g = next_record(&net, &l, embargo_zw(), &by);
    let s = submit(&mut net, "monitor", g);
    expect(&net, &mut l, &s, no_quorum(), 1);
}

#[test]
fn a_revoked_keys_endorsement_counts_for_nothing() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let new_key = dev_key("authority-bw/2");
    enact(
        &mut net,
        &mut l,
        GovAction::RotateKey {
            member: mid("authority-bw"),
            key: new_key.public(),
            last_valid_seq: 10,
        },
    );
    let by = ["authority-zw", "authority-bw", "mine-zw", "monitor"];
    let g = next_record(&net, &l, embargo_zw(), &by);
    let s = submit(&mut net, "monitor", g);
    expect(&net, &mut l, &s, no_quorum(), 1);
    // The same members with authority-bw's new key pass.
    let mut g = next_record(
        &net,
        &l,
        embargo_zw(),
        &["authority-zw", "mine-zw", "monitor"],
    );
    let id = record_id(&net.dev.network(), g.version, &g.prev, &g.action);
    g.endorsements
        .push(endorse(&new_key, mid("authority-bw"), &id));
    let s = submit(&mut net, "monitor", g);
    expect(&net, &mut l, &s, Verdict::Applied, 2);
}

#[test]
fn a_replayed_old_record_changes_nothing() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    enact(&mut net, &mut l, suspend("mine-zw"));
    let everyone = [
        "authority-zw",
        "authority-bw",
        "authority-be",
        "mine-bw",
        "monitor",
    ];
    let reinstate = GovAction::Reinstate {
        member: mid("mine-zw"),
        reason: "cleared".into(),
    };
    let back = next_record(&net, &l, reinstate, &everyone);
    let s = submit(&mut net, "monitor", back.clone());
    expect(&net, &mut l, &s, Verdict::Applied, 2);
    enact(&mut net, &mut l, suspend("mine-zw"));
    // The reinstatement (version 2) again, by a member acting under version 3: refused.
    net.writer("authority-be").set_gov(3);
    let replay = net.sign("authority-be", Body::Govern(back));
    expect(
        &net,
        &mut l,
        &replay,
        Verdict::Void(VoidReason::GovWrongVersion),
        3,
    );
    assert!(l.governance().latest_state().is_suspended(&mid("mine-zw")));
}

#[test]
fn a_record_extending_a_superseded_version_is_refused() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    enact(&mut net, &mut l, suspend("mine-zw"));
    let v1 = l.governance().version(1).expect("v1").id;
    enact(&mut net, &mut l, embargo_zw());
    // Version 3, but extending version 1 instead of version 2.
    let everyone = ["authority-zw", "authority-bw", "mine-bw", "monitor"];
    let g = endorsed(&net, 3, v1, suspend("mine-bw"), &everyone);
    let s = submit(&mut net, "monitor", g);
    expect(
        &net,
        &mut l,
        &s,
        Verdict::Void(VoidReason::GovSuperseded),
        2,
    );
}

#[test]
fn endorsements_gathered_before_a_member_left_do_not_carry_over() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    // Endorsements gathered at version 0 for an embargo, with authority-zw among them.
    let by = ["authority-zw", "authority-bw", "mine-zw", "monitor"];
    let stale = next_record(&net, &l, embargo_zw(), &by);
    // authority-zw leaves (version 1).
    enact(&mut net, &mut l, suspend("authority-zw"));
    // The old signatures on a record for version 2 do not verify: refused at admission.
    let mut moved = next_record(&net, &l, embargo_zw(), &[]);
    moved.endorsements = stale.endorsements.clone();
    net.writer("importer-be").set_gov(1);
    let s = net.sign("importer-be", Body::Govern(moved));
    assert!(matches!(
        verify_event(&s.bytes, &net.dev.network(), &net.keys),
        Err(AdmissionError::Endorsement(_))
    ));
    // Gathered again at version 1, authority-zw's endorsement counts for nothing.
    let again = next_record(&net, &l, embargo_zw(), &by);
    let s = submit(&mut net, "monitor", again);
    expect(&net, &mut l, &s, no_quorum(), 1);
}

/// Final verdicts of a set of events, whatever the order: a replay (which recomputes when a
/// late record reaches back).
fn replayed(net: &Net, events: &[Signed]) -> Ledger {
    let bytes: Vec<Vec<u8>> = events.iter().map(|s| s.bytes.clone()).collect();
    replay_events(&net.dev.genesis(), &bytes, ReplayOptions::default())
        .expect("replay")
        .ledger
}

#[test]
fn two_quorate_records_for_one_version_are_a_governance_fork_naming_the_double_endorsers() {
    let mut net = Net::standard();
    let l = net.ledger();
    let a = next_record(
        &net,
        &l,
        embargo_zw(),
        &["authority-zw", "authority-bw", "mine-zw", "monitor"],
    );
    let b = next_record(
        &net,
        &l,
        suspend("mine-zw"),
        &["authority-bw", "authority-be", "mine-bw", "monitor"],
    );
    let sa = submit(&mut net, "mine-zw", a);
    let sb = submit(&mut net, "mine-bw", b);
    let mut roots = Vec::new();
    for order in [[&sa, &sb], [&sb, &sa]] {
        let events: Vec<Signed> = order.iter().map(|s| (*s).clone()).collect();
        let l = replayed(&net, &events);
        assert_eq!(l.governance().latest(), 0, "neither record is in force");
        for s in [&sa, &sb] {
            assert_eq!(
                l.event(&s.id).map(|m| m.verdict),
                Some(Verdict::Void(VoidReason::GovForked))
            );
        }
        let forks: Vec<_> = l.governance().forks().cloned().collect();
        assert_eq!(forks.len(), 1);
        assert_eq!(
            forks[0].double_endorsers,
            vec![mid("authority-bw"), mid("monitor")]
        );
        roots.push(l.state_root());
    }
    assert_eq!(roots[0], roots[1]);
}

/// Every order of `items` (Heap's algorithm).
fn permutations<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    fn go<T: Clone>(k: usize, a: &mut Vec<T>, out: &mut Vec<Vec<T>>) {
        if k <= 1 {
            out.push(a.clone());
            return;
        }
        for i in 0..k {
            go(k - 1, a, out);
            let j = if k.is_multiple_of(2) { i } else { 0 };
            a.swap(j, k - 1);
        }
    }
    let mut a = items.to_vec();
    let mut out = Vec::new();
    go(a.len(), &mut a, &mut out);
    out
}

#[test]
fn a_thiefs_dispatches_with_a_stolen_mine_key_are_void_once_governance_rotates_it() {
    let mut net = Net::standard();
    let p = net.sign("mine-bw", register("jwaneng", 500));
    let q = net.sign("mine-bw", register("jwaneng", 700));
    // The thief holds mine-zw's key and signs seq 3 and 4: both parcels dispatched away.
    let mut thief = net.dev.writer("mine-bw").expect("member");
    thief.resync(&[p.id, q.id], 0, net.time);
    let stolen_p = thief.append(dispatch(registered(&p), "sorter-bw", None), net.time + 1);
    let stolen_q = thief.append(dispatch(registered(&q), "sorter-bw", None), net.time + 2);
    let received = net.sign(
        "sorter-bw",
        receive(pref(registered(&p).parcel, stolen_p.id), 500),
    );
    // Governance rotates the key: valid up to seq 2, before the theft.
    let new_key = dev_key("mine-bw/2");
    let l0 = net.ledger();
    let rotate = next_record(
        &net,
        &l0,
        GovAction::RotateKey {
            member: mid("mine-bw"),
            key: new_key.public(),
            last_valid_seq: 2,
        },
        &["authority-zw", "authority-bw", "mine-zw", "monitor"],
    );
    let rotation = submit(&mut net, "monitor", rotate);
    // The mine goes on from seq 3 under its new key and the new version.
    let mut honest = net.dev.writer("mine-bw").expect("member");
    honest.resync(&[p.id, q.id], 1, net.time);
    honest.set_key(new_key);
    let next = honest.append(register("jwaneng", 300), net.time + 10);
    let events = [p, q, stolen_p, stolen_q, received, rotation, next];
    let mut roots = std::collections::BTreeSet::new();
    for order in permutations(&events.iter().collect::<Vec<_>>()) {
        let l = settled(&net, &order);
        assert_eq!(l.pending_len(), 0);
        let verdict = |s: &Signed| l.event(&s.id).map(|m| m.verdict);
        for s in [&events[2], &events[3]] {
            assert_eq!(verdict(s), Some(Verdict::Void(VoidReason::RevokedKey)));
        }
        assert_eq!(
            verdict(&events[4]),
            Some(Verdict::Void(VoidReason::UnknownParcel))
        );
        assert_eq!(verdict(&events[6]), Some(Verdict::Applied));
        // Custody is back where the honest feed left it, and the feed is whole, unforked.
        for s in [&events[0], &events[1]] {
            let parcel = l.parcel(&registered(s).parcel).expect("parcel");
            assert_eq!(parcel.state().custodian(), Some(&mid("mine-bw")));
        }
        let feed = l.feed(&mid("mine-bw")).expect("feed");
        assert_eq!(feed.ids, vec![events[0].id, events[1].id, events[6].id]);
        assert_eq!(l.fork_count(), 0);
        assert_eq!(l.off_slot_len(&mid("mine-bw")), 2);
        roots.insert(l.state_root());
    }
    assert_eq!(roots.len(), 1, "one state in all {} orders", 5040);
    // The audit of a stolen parcel shows the rotation, and the thief's dispatch void
    // `revoked-key`, signed by a key governance no longer assigns to that seq.
    let l = settled(&net, &events.iter().collect::<Vec<_>>());
    let audit = audit_parcel(&l, &registered(&events[0]).parcel).expect("audit");
    let thief_entry = audit
        .history
        .iter()
        .find(|h| h.event == events[2].id)
        .expect("the thief's dispatch is in the history");
    assert_eq!(thief_entry.verdict, Verdict::Void(VoidReason::RevokedKey));
    let key = audit
        .governance
        .keys
        .iter()
        .find(|k| k.event == events[2].id)
        .expect("its key");
    assert!(!key.valid);
    let mine = audit
        .governance
        .authors
        .iter()
        .find(|a| a.member == mid("mine-bw"))
        .expect("the mine");
    assert_eq!(mine.admitted_in, Some(0));
    assert_eq!(mine.key_cuts.len(), 1);
    assert_eq!(mine.key_cuts[0].1.last_valid_seq, 2);
    let bytes: Vec<Vec<u8>> = events.iter().rev().map(|s| s.bytes.clone()).collect();
    let replay =
        replay_events(&net.dev.genesis(), &bytes, ReplayOptions::default()).expect("replay");
    assert_eq!(Some(&replay.ledger.state_root()), roots.first());
}

/// UNIX milliseconds at noon of `day`.
fn noon(day: &str) -> u64 {
    u64::from(date(day).0) * 86_400_000 + 43_200_000
}

#[test]
fn an_embargoed_sites_parcels_mixed_at_a_sorter_cannot_be_certified_until_the_lift() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 600));
    let b = net.sign("mine-bw", register("orapa", 400));
    let da = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    let db = net.sign("mine-bw", dispatch(registered(&b), "sorter-bw", None));
    for s in [&a, &b, &da, &db] {
        assert_eq!(apply(&net, &mut l, s), Verdict::Applied);
    }
    // While both parcels are in transit, governance embargoes the Jwaneng site. Governments
    // alone cannot; with every chamber it binds.
    let site = EmbargoTarget::Site {
        member: mid("mine-bw"),
        site: "jwaneng".parse().expect("site"),
    };
    let set = GovAction::SetEmbargo {
        target: site.clone(),
        from: date("2026-05-01"),
        until: None,
        reason: "forced labour reported".into(),
    };
    let alone = next_record(&net, &l, set.clone(), &GOVERNMENTS);
    let s = submit(&mut net, "authority-zw", alone);
    expect(&net, &mut l, &s, no_quorum(), 0);
    enact(&mut net, &mut l, set);
    // The sorter receives both and mixes them; the exporter takes the mix.
    let ra = net.sign(
        "sorter-bw",
        receive(pref(registered(&a).parcel, da.id), 600),
    );
    let rb = net.sign(
        "sorter-bw",
        receive(pref(registered(&b).parcel, db.id), 400),
    );
    let inputs = [
        pref(registered(&a).parcel, ra.id),
        pref(registered(&b).parcel, rb.id),
    ];
    let mix = net.sign("sorter-bw", transform(&inputs, &[1000]));
    let to_exporter = net.sign("sorter-bw", dispatch(output(&mix, 0), "exporter-bw", None));
    let taken = net.sign(
        "exporter-bw",
        receive(pref(output(&mix, 0).parcel, to_exporter.id), 1000),
    );
    for s in [&ra, &rb, &mix, &to_exporter, &taken] {
        assert_eq!(apply(&net, &mut l, s), Verdict::Applied);
    }
    let held = pref(output(&mix, 0).parcel, taken.id);
    let during = net.sign(
        "authority-bw",
        certify("KP-BW-1", "exporter-bw", "importer-be", "BE", &[held], 1000),
    );
    assert_eq!(
        apply(&net, &mut l, &during),
        Verdict::Void(VoidReason::Embargoed)
    );
    // A lift by industry alone fails; with every chamber it ends the embargo on June 10.
    let lift = GovAction::LiftEmbargo {
        target: site,
        on: date("2026-06-10"),
        reason: "independent audit cleared the site".into(),
    };
    let industry = [
        "mine-zw",
        "mine-bw",
        "sorter-bw",
        "exporter-bw",
        "importer-be",
    ];
    let g = next_record(&net, &l, lift.clone(), &industry);
    let s = submit(&mut net, "mine-zw", g);
    expect(&net, &mut l, &s, no_quorum(), 1);
    enact(&mut net, &mut l, lift);
    net.time = noon("2026-06-15");
    let after = net.sign(
        "authority-bw",
        certify("KP-BW-2", "exporter-bw", "importer-be", "BE", &[held], 1000),
    );
    assert_eq!(apply(&net, &mut l, &after), Verdict::Applied);
    let export = net.sign("exporter-bw", dispatch(held, "importer-be", Some(after.id)));
    assert_eq!(apply(&net, &mut l, &export), Verdict::Applied);
    // The exported mix's audit shows the embargoed share, with the embargo's dates and reason.
    let audit = audit_parcel(&l, &held.parcel).expect("audit");
    let found: Vec<_> = parcel_findings(&l, &audit)
        .into_iter()
        .filter(|f| f.code == FindingCode::EmbargoedOrigin)
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    let share = found[0].embargo.as_ref().expect("embargo");
    assert_eq!(share.share_units, 600_000_000, "60% from Jwaneng");
    assert_eq!(share.embargo.from, date("2026-05-01"));
    assert_eq!(share.embargo.end(), Some(date("2026-06-10")));
    assert!(found[0].detail.contains("60%") && found[0].detail.contains("forced labour"));
    // The Orapa-only parcel has no such finding.
    let orapa = audit_parcel(&l, &registered(&b).parcel).expect("audit");
    assert!(parcel_findings(&l, &orapa)
        .iter()
        .all(|f| f.code != FindingCode::EmbargoedOrigin));
}

#[test]
fn a_cross_border_dispatch_of_an_embargoed_origin_is_void_under_any_certificate() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 500));
    let cert = net.sign(
        "authority-bw",
        certify(
            "KP-BW-7",
            "mine-bw",
            "importer-be",
            "BE",
            &[registered(&a)],
            500,
        ),
    );
    for s in [&a, &cert] {
        assert_eq!(apply(&net, &mut l, s), Verdict::Applied);
    }
    // The certificate came first; then Botswana is embargoed, and the shipment may not leave.
    enact(
        &mut net,
        &mut l,
        GovAction::SetEmbargo {
            target: EmbargoTarget::Country("BW".parse().expect("country")),
            from: date("2026-05-01"),
            until: Some(date("2026-09-01")),
            reason: "test".into(),
        },
    );
    let ship = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(cert.id)),
    );
    assert_eq!(
        apply(&net, &mut l, &ship),
        Verdict::Void(VoidReason::Embargoed)
    );
    // A domestic dispatch is not an export.
    let home = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    assert_eq!(apply(&net, &mut l, &home), Verdict::Applied);
}

#[test]
fn a_suspended_members_later_events_are_void_and_its_parcels_stay_frozen() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 500));
    assert_eq!(apply(&net, &mut l, &a), Verdict::Applied);
    enact(
        &mut net,
        &mut l,
        GovAction::Suspend {
            member: mid("mine-bw"),
            last_valid_seq: 1,
            reason: "inquiry".into(),
        },
    );
    let ship = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    assert_eq!(
        apply(&net, &mut l, &ship),
        Verdict::Void(VoidReason::Suspended)
    );
    let parcel = l.parcel(&registered(&a).parcel).expect("parcel");
    assert_eq!(
        parcel.state().custodian(),
        Some(&mid("mine-bw")),
        "frozen where it was"
    );
    // Reinstated: events citing the reinstating version count again.
    enact(
        &mut net,
        &mut l,
        GovAction::Reinstate {
            member: mid("mine-bw"),
            reason: "cleared".into(),
        },
    );
    net.writer("mine-bw").set_gov(2);
    let again = net.sign("mine-bw", dispatch(registered(&a), "sorter-bw", None));
    assert_eq!(apply(&net, &mut l, &again), Verdict::Applied);
}

#[test]
fn an_action_that_cannot_apply_is_void_whatever_its_endorsements() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    // Reinstating a member that is not suspended.
    let g = next_record(
        &net,
        &l,
        GovAction::Reinstate {
            member: mid("mine-bw"),
            reason: "none".into(),
        },
        &[
            "authority-zw",
            "authority-bw",
            "authority-be",
            "mine-zw",
            "monitor",
        ],
    );
    let s = submit(&mut net, "monitor", g);
    expect(
        &net,
        &mut l,
        &s,
        Verdict::Void(VoidReason::GovInvalidAction),
        0,
    );
}

#[test]
fn clean_custody_and_valid_governance_show_none_of_the_governance_voids_or_findings() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    enact(&mut net, &mut l, embargo_zw());
    let a = net.sign("mine-bw", register("jwaneng", 500));
    let cert = net.sign(
        "authority-bw",
        certify(
            "KP-BW-8",
            "mine-bw",
            "importer-be",
            "BE",
            &[registered(&a)],
            500,
        ),
    );
    let ship = net.sign(
        "mine-bw",
        dispatch(registered(&a), "importer-be", Some(cert.id)),
    );
    for s in [&a, &cert, &ship] {
        assert_eq!(apply(&net, &mut l, s), Verdict::Applied);
    }
    let governance_voids = [
        VoidReason::RevokedKey,
        VoidReason::Suspended,
        VoidReason::Embargoed,
        VoidReason::GovWrongVersion,
        VoidReason::GovSuperseded,
        VoidReason::GovInvalidAction,
        VoidReason::NoQuorum,
        VoidReason::GovForked,
    ];
    for m in l.events().values() {
        assert!(
            !matches!(m.verdict, Verdict::Void(r) if governance_voids.contains(&r)),
            "{m:?}"
        );
    }
    let audit = audit_parcel(&l, &registered(&a).parcel).expect("audit");
    assert!(parcel_findings(&l, &audit)
        .iter()
        .all(|f| f.code != FindingCode::EmbargoedOrigin));
}

/// The outcome of offering `s`.
fn offered(net: &Net, l: &mut Ledger, s: &Signed) -> Result<Step, AdmissionError> {
    l.offer(net.verify(s)).expect("room")[0].outcome.clone()
}

#[test]
fn the_subject_of_an_admit_proposal_may_wait_for_its_admission_and_strangers_may_not() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let newcomer = DevNetwork::new().member(
        "mine-cd",
        Chamber::Industry,
        "CD",
        &[Role::Mine],
        &["mbuji"],
    );
    let member = newcomer.genesis().members[0].clone();
    let mut w =
        ledger_core::writer::FeedWriter::new(net.dev.network(), mid("mine-cd"), dev_key("mine-cd"));
    w.set_gov(1);
    let first = w.append(register("mbuji", 250), T0 + 5_000);
    // No proposal names it yet: a stranger citing a future version is refused, not parked.
    assert!(matches!(
        offered(&net, &mut l, &first),
        Err(AdmissionError::NotAMember(_))
    ));
    // authority-zw proposes to admit it (an Endorse event): now its event may wait.
    let admit = GovAction::Admit(member);
    let id = record_id(&net.dev.network(), 1, &net.dev.network(), &admit);
    let proposal = net.sign(
        "authority-zw",
        Body::Endorse(Endorse {
            version: 1,
            prev: net.dev.network(),
            action: admit.clone(),
            endorsement: endorse(&dev_key("authority-zw"), mid("authority-zw"), &id),
        }),
    );
    assert_eq!(apply(&net, &mut l, &proposal), Verdict::Applied);
    assert!(matches!(
        offered(&net, &mut l, &first),
        Ok(Step::Pending(_))
    ));
    // Another key under the same name still may not.
    let mut thief =
        ledger_core::writer::FeedWriter::new(net.dev.network(), mid("mine-cd"), dev_key("someone"));
    thief.set_gov(1);
    let forged = thief.append(register("mbuji", 1), T0 + 5_000);
    assert!(offered(&net, &mut l, &forged).is_err());
    assert_eq!(l.pending_len(), 1);
    // Admitted: the waiting event is stored, applied.
    enact(&mut net, &mut l, admit);
    assert_eq!(l.pending_len(), 0);
    assert_eq!(
        l.event(&first.id).map(|m| m.verdict),
        Some(Verdict::Applied)
    );
}

#[test]
fn a_key_cut_that_reaches_no_stored_event_needs_no_recompute() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    let a = net.sign("mine-bw", register("jwaneng", 500));
    assert_eq!(apply(&net, &mut l, &a), Verdict::Applied);
    // Rotating after seq 1, the last stored event: nothing stored changes, no recompute.
    enact(
        &mut net,
        &mut l,
        GovAction::RotateKey {
            member: mid("mine-bw"),
            key: dev_key("mine-bw/2").public(),
            last_valid_seq: 1,
        },
    );
    assert!(!l.needs_recompute());
    // Suspending from seq 0 reaches the stored seq 1: recompute.
    enact(&mut net, &mut l, suspend("mine-bw"));
    assert!(l.needs_recompute());
}

#[test]
fn events_acting_under_a_record_a_later_governance_fork_voids_stay_stored_void_everywhere() {
    use ledger_core::export::ExportReader;
    use ledger_core::replay::{replay_stream, ReplayError};
    use ledger_core::store::Store;
    let mut net = Net::standard();
    let l0 = net.ledger();
    let a = next_record(
        &net,
        &l0,
        embargo_zw(),
        &["authority-zw", "authority-bw", "mine-zw", "monitor"],
    );
    let b = next_record(
        &net,
        &l0,
        suspend("mine-zw"),
        &["authority-bw", "authority-be", "mine-bw", "monitor"],
    );
    let sa = submit(&mut net, "mine-zw", a);
    // mine-bw acts under version 1 while record A is the only one seen.
    net.writer("mine-bw").set_gov(1);
    let acted = net.sign("mine-bw", register("jwaneng", 400));
    let sb = submit(&mut net, "sorter-bw", b);
    let dir = tempfile::tempdir().expect("tempdir");
    let root = {
        let mut store = Store::open_or_create(dir.path(), &net.dev.genesis(), Limits::default())
            .expect("store");
        store
            .append(&sa.bytes)
            .expect("no fault")
            .expect("admitted");
        let out = store
            .append(&acted.bytes)
            .expect("no fault")
            .expect("admitted");
        assert_eq!(
            out.status,
            ledger_core::store::Status::Stored(Verdict::Applied)
        );
        store
            .append(&sb.bytes)
            .expect("no fault")
            .expect("admitted");
        let l = store.ledger();
        assert_eq!(l.governance().latest(), 0);
        assert_eq!(l.governance().forks().count(), 1);
        assert_eq!(
            l.event(&acted.id).map(|m| m.verdict),
            Some(Verdict::Void(VoidReason::GovForked))
        );
        assert_eq!(l.totals().registered, 0);
        l.state_root()
    };
    // The store opens again (its log holds an event citing a version the chain lost).
    let store = Store::open(dir.path(), Limits::default()).expect("reopen");
    assert_eq!(store.ledger().state_root(), root);
    let mut export = Vec::new();
    store.export(&mut export).expect("export");
    let replayed = replay_stream(&net.dev.genesis(), ReplayOptions::default(), || {
        Ok::<_, ReplayError>(ExportReader::new(&export[..]))
    })
    .expect("replay");
    assert_eq!(replayed.report.state_root, root);
    // In every order.
    for order in permutations(&[&sa, &acted, &sb]) {
        let l = settled(&net, &order);
        assert_eq!(l.state_root(), root);
        assert_eq!(l.pending_len(), 0);
    }
}

#[test]
fn a_preview_of_a_quorate_record_says_it_would_apply() {
    let mut net = Net::standard();
    let l = net.ledger();
    let by = ["authority-zw", "authority-bw", "mine-zw", "monitor"];
    let g = next_record(&net, &l, embargo_zw(), &by);
    let s = submit(&mut net, "monitor", g);
    assert_eq!(l.preview(&net.verify(&s)), Ok(Verdict::Applied));
    let g = next_record(&net, &l, embargo_zw(), &GOVERNMENTS);
    let s = submit(&mut net, "authority-zw", g);
    assert_eq!(l.preview(&net.verify(&s)), Ok(no_quorum()));
}

#[test]
fn a_member_piling_up_records_without_quorum_does_not_stop_a_valid_one() {
    let mut net = Net::standard();
    let mut l = net.ledger();
    // 500 different records for version 1, each endorsed by its submitter alone.
    for i in 0..500u32 {
        let action = GovAction::SetEmbargo {
            target: EmbargoTarget::Country("ZW".parse().expect("country")),
            from: date("2026-01-01"),
            until: None,
            reason: format!("junk {i}"),
        };
        let g = next_record(&net, &l, action, &["mine-zw"]);
        let s = submit(&mut net, "mine-zw", g);
        expect(&net, &mut l, &s, no_quorum(), 0);
    }
    assert_eq!(l.governance().records().count(), 500);
    enact(&mut net, &mut l, suspend("mine-zw"));
    assert_eq!(l.governance().forks().count(), 0);
}
