//! Amounts at and past their bounds: refused at admission with the field and the limit named, or judged and reported without overflow.

mod common;

use common::*;
use ledger_core::admission::{verify_event, AdmissionError, VerifiedEvent};
use ledger_core::audit::audit_parcel;
use ledger_core::event::ParcelRef;
use ledger_core::event::{
    Body, Certify, NewParcel, Receive, Register, ShapeError, Transform, MAX_CARATS,
    MAX_TRANSFORM_PARCELS, MAX_VALUE_CENTS,
};
use ledger_core::findings::{all_findings, value_jumps, FindingCode};
use ledger_core::ledger::{Ledger, Step};
use ledger_core::rules::{parcel_id, Verdict, VoidReason};
use ledger_core::writer::Signed;

/// Admission of `s`: the event, or the shape error it was refused with (any other refusal fails the test).
fn admit(net: &Net, s: &Signed) -> Result<VerifiedEvent, ShapeError> {
    match verify_event(&s.bytes, &net.dev.network(), &net.keys) {
        Ok(ev) => Ok(ev),
        Err(AdmissionError::Shape(e)) => Err(e),
        Err(other) => panic!("refused for another reason than its shape: {other}"),
    }
}

/// `s` is refused with `expected`, and the message names the field and the limit.
fn refused(net: &Net, s: &Signed, expected: ShapeError, field: &str, limit: u64) {
    let e = admit(net, s)
        .map(|ev| *ev.id())
        .expect_err("admission refuses it");
    assert_eq!(e, expected);
    let text = e.to_string();
    assert!(
        text.contains(field) && text.contains(&limit.to_string()),
        "{text:?} should name {field} and {limit}"
    );
}

fn register_worth(carats: u64, value_cents: Option<u64>) -> Body {
    Body::Register(Register {
        site: "jwaneng".parse().expect("site"),
        carats,
        stones: 1,
        value_cents,
        seal: String::new(),
        extracted_on: date("2026-01-15"),
    })
}

fn output(carats: u64, value_cents: Option<u64>) -> NewParcel {
    NewParcel {
        carats,
        stones: 1,
        value_cents,
        seal: String::new(),
    }
}

fn certificate(parcels: &[ParcelRef], total_carats: u64, value_cents: u64) -> Body {
    Body::Certify(Certify {
        number: "KP-BW-1".into(),
        exporter: mid("exporter-bw"),
        importer: mid("importer-be"),
        destination: "BE".parse().expect("country"),
        parcels: parcels.to_vec(),
        total_carats,
        value_cents,
        origins: vec!["BW".parse().expect("country")],
        issued_on: date("2026-01-01"),
        expires_on: date("2026-07-01"),
    })
}

fn value_error(field: &'static str, value: u64) -> ShapeError {
    ShapeError::ValueCents {
        field,
        value,
        max: MAX_VALUE_CENTS,
    }
}

fn carats_error(field: &'static str, value: u64, min: u64) -> ShapeError {
    ShapeError::Carats {
        field,
        value,
        min,
        max: MAX_CARATS,
    }
}

/// Offers `ev` and returns its verdict if it was stored.
fn offer(ledger: &mut Ledger, ev: VerifiedEvent) -> Option<Verdict> {
    let processed = ledger.offer(ev).expect("pending has room");
    match processed.first().map(|p| &p.outcome) {
        Some(Ok(Step::Stored { verdict, .. })) => Some(*verdict),
        _ => None,
    }
}

#[test]
fn parcels_declared_at_u64_max_cents_cannot_crash_the_audit_of_a_merge() {
    // A mine declares two parcels at u64::MAX cents each and merges them: summing the inputs'
    // values for the value-per-carat finding would overflow.
    let mut net = Net::standard();
    let mut ledger = net.ledger();
    let a = net.sign("mine-bw", register_worth(100, Some(u64::MAX)));
    let b = net.sign("mine-bw", register_worth(100, Some(u64::MAX)));
    let merge = net.sign(
        "mine-bw",
        Body::Transform(Transform {
            inputs: vec![registered(&a), registered(&b)],
            outputs: vec![output(200, Some(u64::MAX))],
        }),
    );
    let mut refusals = Vec::new();
    for s in [&a, &b, &merge] {
        match admit(&net, s) {
            Ok(ev) => {
                offer(&mut ledger, ev);
            }
            Err(e) => refusals.push(e),
        }
    }
    // Whatever got in, the audit and the findings are computed without a panic.
    let _ = all_findings(&ledger);
    let _ = audit_parcel(&ledger, &parcel_id(&merge.id, 0));
    assert_eq!(
        refusals,
        vec![
            value_error("value_cents", u64::MAX),
            value_error("value_cents", u64::MAX),
            value_error("outputs.value_cents", u64::MAX),
        ]
    );
}

#[test]
fn a_value_one_past_the_bound_is_refused_in_every_field_naming_it_and_the_limit() {
    let mut net = Net::standard();
    let over = MAX_VALUE_CENTS + 1;
    let reg = net.sign("mine-bw", register_worth(100, Some(over)));
    refused(
        &net,
        &reg,
        value_error("value_cents", over),
        "value_cents",
        MAX_VALUE_CENTS,
    );
    let split = net.sign(
        "mine-bw",
        Body::Transform(Transform {
            inputs: vec![registered(&reg)],
            outputs: vec![output(50, Some(1)), output(50, Some(over))],
        }),
    );
    refused(
        &net,
        &split,
        value_error("outputs.value_cents", over),
        "outputs.value_cents",
        MAX_VALUE_CENTS,
    );
    let cert = net.sign("authority-bw", certificate(&[registered(&reg)], 100, over));
    refused(
        &net,
        &cert,
        value_error("value_cents", over),
        "value_cents",
        MAX_VALUE_CENTS,
    );
    // At the bound, each is admitted.
    let reg = net.sign("mine-bw", register_worth(100, Some(MAX_VALUE_CENTS)));
    let cert = net.sign(
        "authority-bw",
        certificate(&[registered(&reg)], 100, MAX_VALUE_CENTS),
    );
    for s in [&reg, &cert] {
        assert!(admit(&net, s).is_ok(), "a value at the bound is admitted");
    }
}

#[test]
fn certificates_whose_totals_together_overflow_a_u64_are_refused() {
    let mut net = Net::standard();
    let half = u64::MAX / 2 + 1;
    let reg = net.sign("mine-bw", register_worth(1, None));
    let parcel = pref(parcel_id(&reg.id, 0), reg.id);
    let value = net.sign("authority-bw", certificate(&[parcel], 100, half));
    refused(
        &net,
        &value,
        value_error("value_cents", half),
        "value_cents",
        MAX_VALUE_CENTS,
    );
    let weight = net.sign("authority-bw", certificate(&[parcel], half, 100));
    refused(
        &net,
        &weight,
        carats_error("total_carats", half, 1),
        "total_carats",
        MAX_CARATS,
    );
}

#[test]
fn carats_one_past_the_bound_are_refused_in_every_field_naming_it_and_the_limit() {
    let mut net = Net::standard();
    let over = MAX_CARATS + 1;
    for carats in [over, u64::MAX, 0] {
        let s = net.sign("mine-bw", register_worth(carats, None));
        refused(
            &net,
            &s,
            carats_error("carats", carats, 1),
            "carats",
            MAX_CARATS,
        );
    }
    let reg = net.sign("mine-bw", register_worth(MAX_CARATS, None));
    assert!(
        admit(&net, &reg).is_ok(),
        "carats at the bound are admitted"
    );
    let split = net.sign(
        "mine-bw",
        Body::Transform(Transform {
            inputs: vec![registered(&reg)],
            outputs: vec![output(over, None)],
        }),
    );
    refused(
        &net,
        &split,
        carats_error("outputs.carats", over, 1),
        "outputs.carats",
        MAX_CARATS,
    );
    let weighed = net.sign(
        "sorter-bw",
        Body::Receive(Receive {
            parcel: registered(&reg),
            measured_carats: over,
            seal_intact: true,
            note: String::new(),
        }),
    );
    refused(
        &net,
        &weighed,
        carats_error("measured_carats", over, 0),
        "measured_carats",
        MAX_CARATS,
    );
    let cert = net.sign("authority-bw", certificate(&[registered(&reg)], over, 1));
    refused(
        &net,
        &cert,
        carats_error("total_carats", over, 1),
        "total_carats",
        MAX_CARATS,
    );
}

#[test]
fn the_largest_merge_the_bounds_allow_is_judged_and_reported_without_overflow() {
    // The most inputs a transform may take, each at the largest weight and value, merged into the
    // most outputs at the largest weight and value; then certified at the largest totals, twice.
    let mut net = Net::standard();
    let mut ledger = net.ledger();
    let mut inputs = Vec::new();
    for _ in 0..MAX_TRANSFORM_PARCELS {
        let s = net.sign("mine-bw", register_worth(MAX_CARATS, Some(MAX_VALUE_CENTS)));
        assert_eq!(apply(&net, &mut ledger, &s), Verdict::Applied);
        inputs.push(registered(&s));
    }
    let merge = net.sign(
        "mine-bw",
        Body::Transform(Transform {
            inputs: inputs.clone(),
            outputs: vec![output(MAX_CARATS, Some(MAX_VALUE_CENTS)); MAX_TRANSFORM_PARCELS],
        }),
    );
    assert_eq!(apply(&net, &mut ledger, &merge), Verdict::Applied);
    // Every output (a certificate covers only parcels that exist at the heads it cites).
    let parcels: Vec<ParcelRef> = (0..MAX_TRANSFORM_PARCELS as u32)
        .map(|i| pref(parcel_id(&merge.id, i), merge.id))
        .collect();
    // All of them weigh far more than any certificate may declare: their mass is summed without
    // overflow and the certificate is void for its carats.
    let all = net.sign(
        "authority-bw",
        certificate(&parcels, MAX_CARATS, MAX_VALUE_CENTS),
    );
    assert_eq!(
        apply(&net, &mut ledger, &all),
        Verdict::Void(VoidReason::CertificateCarats)
    );
    // One of them, at the largest totals; then its number again, for another: void.
    for (parcel, verdict) in [
        (parcels[0], Verdict::Applied),
        (
            parcels[1],
            Verdict::Void(VoidReason::CertificateNumberReused),
        ),
    ] {
        let cert = net.sign(
            "authority-bw",
            certificate(&[parcel], MAX_CARATS, MAX_VALUE_CENTS),
        );
        assert_eq!(apply(&net, &mut ledger, &cert), verdict);
    }
    // The most outputs at the largest weight from one input at the largest weight: a mass gain.
    let more = vec![output(MAX_CARATS, None); MAX_TRANSFORM_PARCELS];
    let gain = net.sign(
        "mine-bw",
        Body::Transform(Transform {
            inputs: vec![parcels[0]],
            outputs: more,
        }),
    );
    assert_eq!(
        apply(&net, &mut ledger, &gain),
        Verdict::Void(VoidReason::MassGain)
    );
    let findings = all_findings(&ledger);
    assert!(
        findings
            .iter()
            .all(|f| f.code != FindingCode::MassLoss && f.code != FindingCode::ValueJump),
        "no loss and no value jump: {findings:?}"
    );
    // The reused number is void, so no two applied certificates share it.
    assert!(findings
        .iter()
        .all(|f| f.code != FindingCode::DuplicateCertificate));
}

#[test]
fn value_per_carat_is_compared_without_overflow_at_the_extremes() {
    let max = u64::MAX;
    // An output of one hundredth of a carat at u64::MAX cents, from inputs worth one cent for
    // u64::MAX hundredths: the largest possible jump.
    assert!(value_jumps(max, 1, 1, max, u32::MAX));
    assert!(value_jumps(max, 1, 1, max, 300));
    // The same value per carat as its inputs is no jump, at every scale.
    assert!(!value_jumps(max, max, max, max, 300));
    assert!(!value_jumps(max, max, max, max, u32::MAX));
    assert!(!value_jumps(1, 1, 1, 1, 100));
    // Nothing per carat: no jump, and no division by zero.
    assert!(!value_jumps(max, 0, max, max, 300));
    assert!(!value_jumps(max, max, max, 0, 300));
    // Three times the inputs' value per carat is exactly at a 300% limit, one cent more is over.
    assert!(!value_jumps(300, 100, 100, 100, 300));
    assert!(value_jumps(301, 100, 100, 100, 300));
}
