//! Golden bytes: the encoding of one sample of every body kind, and of one whole signed event, is frozen.
//!
//! Run with `CUSTODY_UPDATE_GOLDEN=1` only when a format change is intended (and versioned).

use std::fmt::Write as _;

use ledger_core::bytes::{Digest, PublicKeyBytes, SignatureBytes};
use ledger_core::codec::{self, MAX_EVENT_BYTES};
use ledger_core::dev::DevNetwork;
use ledger_core::event::*;
use ledger_core::types::*;

fn d(b: u8) -> Digest {
    Digest([b; 32])
}

fn m(s: &str) -> MemberId {
    s.parse().expect("slug")
}

fn c(s: &str) -> Country {
    s.parse().expect("country")
}

fn day(s: &str) -> Date {
    s.parse().expect("date")
}

fn member() -> Member {
    Member {
        id: m("mine-zw"),
        name: "Mine".into(),
        chamber: Chamber::Industry,
        country: c("ZW"),
        roles: vec![Role::Mine, Role::Sorter],
        sites: vec![Site {
            id: "marange".parse().expect("slug"),
            name: "Marange".into(),
            region: "Manicaland".into(),
            country: c("ZW"),
        }],
        keys: vec![KeyGrant {
            key: PublicKeyBytes([7; 32]),
            from_seq: 1,
        }],
    }
}

fn samples() -> Vec<Body> {
    let r = ParcelRef {
        parcel: d(1),
        head: d(2),
    };
    let endorsement = Endorsement {
        member: m("gov-zw"),
        key: PublicKeyBytes([8; 32]),
        signature: SignatureBytes([9; 64]),
    };
    vec![
        Body::Register(Register {
            site: "marange".parse().expect("slug"),
            carats: 12_345,
            stones: 17,
            value_cents: Some(99_000),
            seal: "SEAL-1".into(),
            extracted_on: day("2026-03-01"),
        }),
        Body::Transform(Transform {
            inputs: vec![r],
            outputs: vec![NewParcel {
                carats: 100,
                stones: 2,
                value_cents: None,
                seal: "S2".into(),
            }],
        }),
        Body::Dispatch(Dispatch {
            parcel: r,
            to: m("sorter-bw"),
            certificate: Some(d(3)),
            seal: "S3".into(),
            deadline_ms: Some(5),
        }),
        Body::Receive(Receive {
            parcel: r,
            measured_carats: 99,
            seal_intact: false,
            note: "wet".into(),
        }),
        Body::Reject(Reject {
            parcel: r,
            reason: "seal".into(),
        }),
        Body::Certify(certify_sample()),
        Body::ConfirmImport(ConfirmImport {
            certificate: d(6),
            note: String::new(),
        }),
        Body::Retire(Retire {
            parcel: r,
            cause: RetireCause::Lost,
            note: "fell".into(),
        }),
        Body::Flag(Flag {
            target: FlagTarget::Site {
                member: m("mine-zw"),
                site: "marange".parse().expect("slug"),
            },
            code: FlagCode::HumanRights,
            text: "army".into(),
        }),
        Body::Endorse(Endorse {
            version: 1,
            prev: d(10),
            action: GovAction::Admit(member()),
            endorsement: endorsement.clone(),
        }),
        Body::Object(Object {
            record: d(11),
            reason: "no".into(),
        }),
        Body::Govern(Govern {
            version: 1,
            prev: d(10),
            action: GovAction::SetEmbargo {
                target: EmbargoTarget::Country(c("ZW")),
                from: day("2009-11-05"),
                until: Some(day("2011-11-01")),
                reason: "Marange".into(),
            },
            endorsements: vec![endorsement],
        }),
        Body::Witness(Witness {
            checkpoint: Checkpoint {
                network: d(12),
                time_ms: 13,
                gov: 0,
                feeds_root: d(14),
                feeds: 15,
                parcels_root: d(18),
                parcels: 19,
            },
            cosignatures: vec![Cosignature {
                member: m("monitor"),
                key: PublicKeyBytes([16; 32]),
                signature: SignatureBytes([17; 64]),
            }],
        }),
        Body::Declare(Declare {
            scope: DeclareScope::Site {
                member: m("mine-zw"),
                site: "marange".parse().expect("slug"),
            },
            from: day("2026-01-01"),
            to: day("2026-12-31"),
            carats: 20,
            value_cents: Some(21),
            stock_carats: 22,
        }),
        Body::KpCertificate(KpCertificate {
            certify: certify_sample(),
            hs_code: HsCode::NonIndustrial,
        }),
    ]
}

/// The `Certify` sample (also inside the `KpCertificate` one).
fn certify_sample() -> Certify {
    Certify {
        number: "KP-ZW-0001".into(),
        exporter: m("exporter-zw"),
        importer: m("importer-be"),
        destination: c("BE"),
        parcels: vec![ParcelRef {
            parcel: d(4),
            head: d(5),
        }],
        total_carats: 1_000,
        value_cents: 2_000,
        origins: vec![c("ZW")],
        issued_on: day("2026-03-02"),
        expires_on: day("2026-06-02"),
    }
}

fn rendered() -> String {
    let mut out = String::new();
    for body in samples() {
        let bytes = codec::encode(&body);
        // Every sample decodes back to itself.
        assert_eq!(
            codec::decode::<Body>(&bytes, MAX_EVENT_BYTES).as_ref(),
            Ok(&body)
        );
        let name = match body {
            Body::KpCertificate(_) => "kp-certificate",
            _ => body.kind().name(),
        };
        let _ = writeln!(out, "{} {}", name, ledger_core::bytes::to_hex(&bytes));
    }
    // One whole signed event (ed25519 signatures are deterministic, so the bytes are too).
    let dev = DevNetwork::standard();
    let mut w = dev.writer("mine-bw").expect("member");
    let s = w.append(samples().remove(0), 1_780_000_000_000);
    let _ = writeln!(out, "event-id {}", s.id);
    let _ = writeln!(out, "event {}", ledger_core::bytes::to_hex(&s.bytes));
    let _ = writeln!(out, "network {}", dev.network());
    out
}

#[test]
fn encodings_match_the_frozen_golden_bytes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/encoding.txt");
    let now = rendered();
    if std::env::var_os("CUSTODY_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &now).expect("write golden file");
    }
    let frozen = std::fs::read_to_string(&path)
        .expect("golden file exists (CUSTODY_UPDATE_GOLDEN=1 creates it)");
    for (want, got) in frozen.lines().zip(now.lines()) {
        assert_eq!(
            got, want,
            "the encoding changed: this breaks every stored log and signature"
        );
    }
    assert_eq!(frozen.lines().count(), now.lines().count());
    assert_eq!(
        frozen.lines().count(),
        samples().len() + 3,
        "one line per body kind plus the event"
    );
}
