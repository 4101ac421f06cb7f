//! Proof bundles: a bundle audit equals the full replay's audit as of the checkpoint, or is
//! refused with a named reason; tampered bundles are refused.

mod common;

use std::collections::HashMap;

use common::stories::{equivocations, extras, governed};
use common::{scenario, settled, Net, Rng};
use ledger_core::audit::audit_parcel;
use ledger_core::bundle::{build, verify_bundle, Bundle, BundleError};
use ledger_core::bundle_select::SelectError;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::checkpoint::checkpoint;
use ledger_core::event::{Body, Checkpoint, FlagTarget, Witness};
use ledger_core::findings::{latest_time, parcel_findings_at, LOG_WIDE};
use ledger_core::ledger::Ledger;
use ledger_core::parcel_index::ParcelIndex;
use ledger_core::rules::{Verdict, VoidReason};
use ledger_core::writer::Signed;
use proptest::prelude::*;

/// A story: custody, then equivocations and governance mixed in, settled in one ledger.
fn story(seed: u64, steps: usize) -> (Net, Vec<Signed>, Ledger) {
    let (mut net, mut events) = scenario(seed, steps);
    let mut rng = Rng(seed ^ 0x5eed);
    if rng.chance(50) {
        let (forks, _) = equivocations(&net, &events, &mut rng);
        events.extend(forks);
    }
    if rng.chance(50) {
        let records = governed(&mut net, &events, &mut rng);
        events.extend(records);
    }
    let ledger = settled(&net, &events.iter().collect::<Vec<_>>());
    let more = extras(&mut net, &ledger, &mut rng);
    events.extend(more);
    let ledger = settled(&net, &events.iter().collect::<Vec<_>>());
    (net, events, ledger)
}

/// The ledger's checkpoint an hour after its last event, cosigned by the monitor (a witness).
fn cosigned(
    net: &mut Net,
    ledger: &Ledger,
) -> (Checkpoint, Vec<ledger_core::checkpoint::FeedHead>, Signed) {
    let (cp, heads) = checkpoint(ledger, latest_time(ledger) + 3_600_000);
    let w = net.sign(
        "monitor",
        Body::Witness(Witness {
            checkpoint: cp.clone(),
            cosignatures: Vec::new(),
        }),
    );
    (cp, heads, w)
}

/// How many bundles were verified, refused at build, and carried evidence.
#[derive(Default)]
struct Counts {
    verified: usize,
    refused: usize,
    with_evidence: usize,
    governed: usize,
}

/// Checks every parcel's bundle against the full audit.
fn check_every_parcel(seed: u64, steps: usize) -> Counts {
    let (mut net, events, ledger) = story(seed, steps);
    let bytes: HashMap<EventId, Vec<u8>> = events.iter().map(|s| (s.id, s.bytes.clone())).collect();
    let (cp, heads, witness) = cosigned(&mut net, &ledger);
    let genesis = net.dev.genesis();
    let index = ParcelIndex::build(&ledger, &heads);
    let mut n = Counts::default();
    let mut parcels: Vec<_> = ledger.parcels().map(|p| p.id).collect();
    parcels.sort();
    for p in parcels {
        let bundle = match build(
            &ledger,
            &cp,
            &heads,
            &index,
            vec![witness.bytes.clone()],
            &p,
            |id| bytes.get(id).cloned(),
        ) {
            Ok(b) => b,
            Err(ledger_core::bundle::BuildError::Select(SelectError::NotCovered(_))) => {
                n.refused += 1;
                continue;
            }
            Err(e) => panic!("seed {seed}: bundle of {p}: {e}"),
        };
        let decoded = Bundle::decode(&bundle.encode()).expect("a bundle decodes");
        assert_eq!(decoded, bundle);
        let (got, _) = verify_bundle(&genesis, &decoded, Some(1))
            .unwrap_or_else(|e| panic!("seed {seed}: bundle of {p} refused: {e}"));
        let full = audit_parcel(&ledger, &p).expect("parcel");
        // A bundle carries one parcel's evidence, not every certificate of a period.
        let mut findings = parcel_findings_at(&ledger, &full, cp.time_ms);
        findings.retain(|f| !LOG_WIDE.contains(&f.code));
        assert_eq!(got.audit, full, "seed {seed}: audit of {p}");
        assert_eq!(got.findings, findings, "seed {seed}: findings of {p}");
        assert_eq!(got.cosigners.len(), 1);
        n.verified += 1;
        n.with_evidence += usize::from(got.evidence > 0);
        n.governed += usize::from(got.checkpoint.gov > 0);
    }
    n
}

/// Cases of the property test: 40 in CI, more by hand (`CUSTODY_BUNDLE_CASES`).
fn cases() -> u32 {
    std::env::var("CUSTODY_BUNDLE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn a_bundle_audit_equals_the_full_audit(seed in any::<u64>(), steps in 20usize..60) {
        check_every_parcel(seed, steps);
    }
}

#[test]
fn stories_give_bundles_to_verify() {
    // The stories must give bundles with forks' evidence and with governance, or the property
    // above proves little about them.
    let mut total = Counts::default();
    for seed in 0..10 {
        let n = check_every_parcel(seed, 50);
        total.verified += n.verified;
        total.refused += n.refused;
        total.with_evidence += n.with_evidence;
        total.governed += n.governed;
    }
    assert!(
        total.verified > 100,
        "{} verified, {} refused",
        total.verified,
        total.refused
    );
    assert!(
        total.with_evidence > 10,
        "{} bundles with evidence",
        total.with_evidence
    );
    assert!(
        total.governed > 10,
        "{} bundles under governance",
        total.governed
    );
}

/// The bundle of `parcel` in `ledger` (made of `events`), of the ledger's checkpoint an hour
/// after its last event, cosigned by the monitor.
fn bundle_of(
    net: &mut Net,
    events: &[Signed],
    ledger: &Ledger,
    parcel: &ParcelId,
) -> Result<Bundle, ledger_core::bundle::BuildError> {
    let bytes: HashMap<EventId, Vec<u8>> = events.iter().map(|s| (s.id, s.bytes.clone())).collect();
    let (cp, heads, witness) = cosigned(net, ledger);
    let index = ParcelIndex::build(ledger, &heads);
    build(
        ledger,
        &cp,
        &heads,
        &index,
        vec![witness.bytes.clone()],
        parcel,
        |id| bytes.get(id).cloned(),
    )
}

/// The lowest transform output of `ledger`.
fn first_output(ledger: &Ledger) -> ParcelId {
    ledger
        .parcels()
        .filter(|p| !p.parents.is_empty())
        .map(|p| p.id)
        .min()
        .expect("a transform output")
}

/// The events a bundle carries, decoded.
fn decoded(net: &Net, bundle: &Bundle) -> Vec<ledger_core::admission::DecodedEvent> {
    let network = net.dev.network();
    bundle
        .events
        .iter()
        .map(|e| ledger_core::admission::decode_event(&e.bytes, &network).expect("event"))
        .collect()
}

/// A small bundle and what it verifies to.
fn small_bundle() -> (Net, Bundle) {
    let (mut net, events, ledger) = story(7, 30);
    let target = first_output(&ledger);
    let bundle = bundle_of(&mut net, &events, &ledger, &target).expect("bundle");
    verify_bundle(&net.dev.genesis(), &bundle, Some(1)).expect("the untouched bundle verifies");
    (net, bundle)
}

#[test]
fn every_byte_flip_is_refused() {
    let (net, bundle) = small_bundle();
    let genesis = net.dev.genesis();
    let bytes = bundle.encode();
    let mut reasons: HashMap<&'static str, usize> = HashMap::new();
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x01;
        let outcome = Bundle::decode(&b).and_then(|x| verify_bundle(&genesis, &x, Some(1)));
        match outcome {
            Err(e) => *reasons.entry(e.reason()).or_default() += 1,
            Ok(_) => panic!("a flip at byte {i} of {} was accepted", bytes.len()),
        }
    }
    assert!(reasons.len() >= 4, "{reasons:?}");
}

#[test]
fn swapped_proofs_and_stripped_cosignatures_are_refused() {
    let (net, bundle) = small_bundle();
    let genesis = net.dev.genesis();
    let proven: Vec<usize> = (0..bundle.events.len())
        .filter(|i| bundle.events[*i].proof.is_some())
        .collect();
    for pair in proven.windows(2) {
        let mut b = bundle.clone();
        let (x, y) = (pair[0], pair[1]);
        let px = b.events[x].proof.take();
        b.events[x].proof = b.events[y].proof.take();
        b.events[y].proof = px;
        let e = verify_bundle(&genesis, &b, Some(1)).expect_err("swapped proofs");
        assert_eq!(e.reason(), "not-included", "{e}");
    }
    let mut b = bundle.clone();
    b.witnesses.clear();
    let e = verify_bundle(&genesis, &b, Some(1)).expect_err("stripped");
    assert!(
        matches!(e, BundleError::TooFewCosignatures { got: 0, need: 1 }),
        "{e}"
    );
    let e = verify_bundle(&genesis, &bundle, Some(2)).expect_err("one witness, two required");
    assert!(
        matches!(e, BundleError::TooFewCosignatures { got: 1, need: 2 }),
        "{e}"
    );
    // A proof stripped makes the event evidence it is not.
    for i in &proven {
        let mut b = bundle.clone();
        b.events[*i].proof = None;
        let e = verify_bundle(&genesis, &b, Some(1)).expect_err("stripped proof");
        assert_eq!(e.reason(), "unproven-event", "{e}");
    }
}

/// What a verified bundle shows of its parcel: the audit and the findings.
fn shown(bundle: &Bundle, genesis: &ledger_core::types::Genesis) -> Option<String> {
    let (audit, _) = verify_bundle(genesis, bundle, Some(1)).ok()?;
    Some(format!("{:?} {:?}", audit.audit, audit.findings))
}

#[test]
fn every_dropped_event_is_refused() {
    // An event left out is refused: one that another carried event cites, as a missing
    // dependency; one the checkpoint's parcel index names, as an incomplete parcel; one of a
    // fork's two events, as evidence left without a place. The one exception: when an author
    // signed three or more events at one seq, any two prove that fork, so one of them left out
    // changes nothing the audit shows but which two the fork record names.
    let (net, bundle) = small_bundle();
    let genesis = net.dev.genesis();
    let decoded = decoded(&net, &bundle);
    let mut at_slot: HashMap<(String, u64), usize> = HashMap::new();
    for d in &decoded {
        *at_slot
            .entry((d.header().author.to_string(), d.header().seq))
            .or_default() += 1;
    }
    let mut reasons: HashMap<&'static str, usize> = HashMap::new();
    let mut third = 0;
    let mut uncommitted = 0;
    let mut withheld = 0;
    let (_, whole) = verify_bundle(&genesis, &bundle, Some(1)).expect("the bundle verifies");
    let before = shown(&bundle, &genesis);
    let revoked: Vec<EventId> = decoded
        .iter()
        .map(|d| *d.id())
        .filter(|id| {
            whole.event(id).map(|m| m.verdict) == Some(Verdict::Void(VoidReason::RevokedKey))
        })
        .collect();
    for (i, d) in decoded.iter().enumerate() {
        let mut b = bundle.clone();
        b.events.remove(i);
        match verify_bundle(&genesis, &b, Some(1)) {
            Err(e) => *reasons.entry(e.reason()).or_default() += 1,
            // A flag the parcel's audit does not show (on a governance record, or on a member
            // who authored none of the parcel's events) is committed nowhere: leaving it out
            // changes nothing shown (docs/bundle.md, limits).
            Ok(_) if matches!(d.body(), Body::Flag(_)) && shown(&b, &genesis) == before => {
                uncommitted += 1
            }
            // Evidence signed with a revoked key holds no feed slot, so no checkpoint commits to
            // it; one that no carried event cites can be left out (docs/bundle.md, limits).
            Ok(_) if bundle.events[i].proof.is_none() && revoked.contains(d.id()) => withheld += 1,
            Ok(_) => {
                let h = d.header();
                let others = at_slot[&(h.author.to_string(), h.seq)];
                assert!(
                    others >= 3 && bundle.events[i].proof.is_none(),
                    "dropping event {i} ({:?}) was not refused",
                    d.body()
                );
                third += 1;
            }
        }
    }
    assert!(reasons.contains_key("incomplete-parcel"), "{reasons:?}");
    eprintln!(
        "drops refused: {reasons:?}; a fork's third event: {third}; flags the audit does not show: {uncommitted}; revoked-key evidence: {withheld}"
    );
    // And a parcel proof dropped, or swapped for another parcel's.
    for i in 0..bundle.parcels.len() {
        let mut b = bundle.clone();
        b.parcels.remove(i);
        let e = verify_bundle(&genesis, &b, Some(1)).expect_err("a parcel proof dropped");
        assert_eq!(e.reason(), "no-parcel-proof", "{e}");
    }
    for pair in (0..bundle.parcels.len()).collect::<Vec<_>>().windows(2) {
        let mut b = bundle.clone();
        let (x, y) = (pair[0], pair[1]);
        let path = b.parcels[x].path.clone();
        b.parcels[x].path = b.parcels[y].path.clone();
        b.parcels[y].path = path;
        if b.parcels[x].path != b.parcels[y].path {
            verify_bundle(&genesis, &b, Some(1)).expect_err("swapped parcel paths");
        }
    }
}

#[test]
fn a_node_hiding_a_flag_on_a_member_or_a_mine_site_is_refused() {
    // A monitor flags a member who handled the parcel and the mine site it came from. A node
    // serving the parcel's bundle leaves a flag out, so the auditor would not see it: refused,
    // since the checkpoint's parcel index commits to both under the parcel (D51).
    let (mut net, mut events, ledger) = story(7, 30);
    let target = first_output(&ledger);
    let audit = audit_parcel(&ledger, &target).expect("audit");
    let handler = audit
        .history
        .iter()
        .map(|h| h.author.clone())
        .find(|a| a.as_str() != "monitor")
        .expect("an author");
    let site = audit.origin.first().expect("an origin").clone();
    let flags = [
        FlagTarget::Member(handler.clone()),
        FlagTarget::Site {
            member: site.member.clone(),
            site: site.site.clone(),
        },
    ]
    .map(|target| {
        net.sign(
            "monitor",
            Body::Flag(ledger_core::event::Flag {
                target,
                code: ledger_core::event::FlagCode::Laundering,
                text: "hidden from the auditor?".into(),
            }),
        )
    });
    events.extend(flags.iter().cloned());
    let ledger = common::settled(&net, &events.iter().collect::<Vec<_>>());
    let bundle = bundle_of(&mut net, &events, &ledger, &target).expect("bundle");
    let genesis = net.dev.genesis();
    let (audit, _) = verify_bundle(&genesis, &bundle, Some(1)).expect("the whole bundle verifies");
    for f in &flags {
        assert!(
            audit.findings.iter().any(|x| x.event == Some(f.id)),
            "the audit shows flag {}: {:?}",
            f.id,
            audit.findings
        );
        let mut hidden = bundle.clone();
        hidden.events.retain(|e| {
            ledger_core::admission::decode_event(&e.bytes, &net.dev.network())
                .map_or(true, |d| d.id() != &f.id)
        });
        assert_eq!(hidden.events.len(), bundle.events.len() - 1);
        let reason = refused(&genesis, &hidden, "a bundle hiding a flag");
        assert_eq!(reason, "incomplete-parcel");
    }
}

/// The reason `bundle` is refused (it must be: the message names `what` was accepted).
fn refused(genesis: &ledger_core::types::Genesis, bundle: &Bundle, what: &str) -> &'static str {
    match verify_bundle(genesis, bundle, Some(1)) {
        Ok(_) => panic!("{what} was accepted"),
        Err(e) => e.reason(),
    }
}

/// A story whose parcel's audit shows a `duplicate-certificate` finding that rests on a
/// certificate covering none of the parcel's ancestry, with that parcel, its bundle and the
/// other certificate's index in it.
fn a_number_used_twice() -> (Net, Bundle, usize) {
    for seed in 0..400u64 {
        let (mut net, events, ledger) = story(seed, 40);
        let time = latest_time(&ledger) + 3_600_000;
        let network = net.dev.network();
        for p in ledger.parcels().map(|p| p.id) {
            let audit = audit_parcel(&ledger, &p).expect("audit");
            let duplicate = parcel_findings_at(&ledger, &audit, time)
                .iter()
                .any(|f| f.code == ledger_core::findings::FindingCode::DuplicateCertificate);
            if !duplicate {
                continue;
            }
            let Ok(bundle) = bundle_of(&mut net, &events, &ledger, &p) else {
                continue;
            };
            let ancestry: Vec<_> = audit.ancestry.iter().map(|a| a.parcel).collect();
            // Another certificate, of other parcels, bearing the number of one of the
            // ancestry's certificates.
            let numbers: Vec<String> = ledger
                .certificates()
                .filter(|(_, c)| c.parcels.iter().any(|r| ancestry.contains(&r.parcel)))
                .map(|(_, c)| c.number.clone())
                .collect();
            let foreign = bundle.events.iter().position(|e| {
                let d = ledger_core::admission::decode_event(&e.bytes, &network).expect("event");
                matches!(d.body(), Body::Certify(c)
                    if c.parcels.iter().all(|r| !ancestry.contains(&r.parcel))
                        && numbers.contains(&c.number))
            });
            if let Some(i) = foreign {
                return (net, bundle, i);
            }
        }
    }
    panic!("no story with a certificate number used twice across parcels");
}

#[test]
fn a_node_hiding_a_certificate_that_shares_a_number_is_refused() {
    // Two authorities issued certificates under one number (a forged or copied certificate)
    // for different parcels. A node serving the bundle of a parcel one of them covers leaves
    // the other out, so the auditor would not see the `duplicate-certificate` finding: refused
    // (D51).
    let (net, bundle, other) = a_number_used_twice();
    let genesis = net.dev.genesis();
    let (audit, _) = verify_bundle(&genesis, &bundle, Some(1)).expect("the whole bundle verifies");
    assert!(audit
        .findings
        .iter()
        .any(|f| f.code == ledger_core::findings::FindingCode::DuplicateCertificate));
    // Hidden with every carried event that cites it, so that nothing left points at it.
    let decoded = decoded(&net, &bundle);
    let mut gone = vec![*decoded[other].id()];
    while let Some(next) = decoded.iter().find(|d| {
        !gone.contains(d.id()) && d.body().dependencies().iter().any(|x| gone.contains(x))
    }) {
        gone.push(*next.id());
    }
    let mut hidden = bundle.clone();
    hidden.events = (0..bundle.events.len())
        .filter(|i| !gone.contains(decoded[*i].id()))
        .map(|i| bundle.events[i].clone())
        .collect();
    // Refused for a parcel of the ancestry, whose certificate's number the hidden one bears.
    let (audit, _) = verify_bundle(&genesis, &bundle, Some(1)).expect("verifies");
    match verify_bundle(&genesis, &hidden, Some(1)) {
        Err(BundleError::IncompleteParcel(p)) => assert!(
            audit.audit.ancestry.iter().any(|a| a.parcel == p),
            "refused for {p}, outside the ancestry"
        ),
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a bundle hiding the other certificate was accepted"),
    }
}
