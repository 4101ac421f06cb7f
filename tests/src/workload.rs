//! Benchmark workloads: the benchmarks' network of members and whole custody chains.

use ledger_core::bytes::{Digest, ParcelId};
use ledger_core::dev::DevNetwork;
use ledger_core::event::{
    Body, Certify, ConfirmImport, Dispatch, NewParcel, ParcelRef, Receive, Register, Transform,
};
use ledger_core::rules::parcel_id;
use ledger_core::types::{Chamber, MemberId, Role};
use ledger_core::writer::{FeedWriter, Signed};

pub const MINES: usize = 8;
pub const SORTERS: usize = 4;
pub const EXPORTERS: usize = 2;
pub const IMPORTERS: usize = 2;

pub fn network() -> DevNetwork {
    let mut dev = DevNetwork::new();
    let roles: [(&str, usize, &str, Role); 4] = [
        ("mine", MINES, "BW", Role::Mine),
        ("sorter", SORTERS, "BW", Role::Sorter),
        ("exporter", EXPORTERS, "BW", Role::Exporter),
        ("importer", IMPORTERS, "BE", Role::Importer),
    ];
    for (name, count, country, role) in roles {
        for i in 0..count {
            let sites: &[&str] = if role == Role::Mine { &["pit"] } else { &[] };
            dev = dev.member(
                &format!("{name}-{i}"),
                Chamber::Industry,
                country,
                &[role],
                sites,
            );
        }
    }
    dev.member(
        "authority",
        Chamber::Government,
        "BW",
        &[Role::Authority],
        &[],
    )
    .member(
        "authority-be",
        Chamber::Government,
        "BE",
        &[Role::Authority],
        &[],
    )
    .member(
        "monitor",
        Chamber::CivilSociety,
        "ZA",
        &[Role::Monitor],
        &[],
    )
}

fn dispatch(parcel: ParcelId, head: Digest, to: &MemberId, certificate: Option<Digest>) -> Body {
    Body::Dispatch(Dispatch {
        parcel: ParcelRef { parcel, head },
        to: to.clone(),
        certificate,
        seal: "D".into(),
        deadline_ms: None,
    })
}

fn receive(parcel: ParcelId, head: Digest, carats: u64) -> Body {
    Body::Receive(Receive {
        parcel: ParcelRef { parcel, head },
        measured_carats: carats,
        seal_intact: true,
        note: String::new(),
    })
}

fn register(carats: u64, seal: String) -> Body {
    Body::Register(Register {
        site: "pit".parse().expect("slug"),
        carats,
        stones: 12,
        value_cents: Some(carats * 100),
        seal,
        extracted_on: "2026-01-01".parse().expect("date"),
    })
}

/// Whole custody chains: four mines' parcels each registered, dispatched to a sorter and
/// received; the sorter mixes the four into one (0.5% loss) and dispatches the mix to an
/// exporter, who receives it; the authority certifies it; the exporter ships it to an importer
/// abroad, who receives it; the importing country's authority confirms the import. 19 events and
/// 5 parcels per chain.
pub fn chains(dev: &DevNetwork, n: usize, mut out: impl FnMut(Signed)) {
    let w = |name: String| dev.writer(&name).expect("member");
    let mut mines: Vec<FeedWriter> = (0..MINES).map(|i| w(format!("mine-{i}"))).collect();
    let mut sorters: Vec<FeedWriter> = (0..SORTERS).map(|i| w(format!("sorter-{i}"))).collect();
    let mut exporters: Vec<FeedWriter> =
        (0..EXPORTERS).map(|i| w(format!("exporter-{i}"))).collect();
    let mut importers: Vec<FeedWriter> =
        (0..IMPORTERS).map(|i| w(format!("importer-{i}"))).collect();
    let mut authority = w("authority".into());
    let mut authority_be = w("authority-be".into());
    let mut left = n;
    let mut put = |e: Signed| {
        if left > 0 {
            out(e);
            left -= 1;
        }
        left > 0
    };
    let mut t = 1_780_000_000_000u64;
    for chain in 0.. {
        t += 10;
        let s = chain % SORTERS;
        let sorter = sorters[s].author().clone();
        let (mut inputs, mut total) = (Vec::new(), 0u64);
        for k in 0..4 {
            let m = (chain * 4 + k) % MINES;
            let carats = 1_000 + ((chain * 4 + k) % 500) as u64;
            let reg = mines[m].append(register(carats, format!("S{chain}-{k}")), t);
            let parcel = parcel_id(&reg.id, 0);
            let dis = mines[m].append(dispatch(parcel, reg.id, &sorter, None), t + 1);
            let rec = sorters[s].append(receive(parcel, dis.id, carats), t + 2);
            inputs.push(ParcelRef {
                parcel,
                head: rec.id,
            });
            total += carats;
            for e in [reg, dis, rec] {
                if !put(e) {
                    return;
                }
            }
        }
        let mixed = total - total / 200;
        let mix = sorters[s].append(
            Body::Transform(Transform {
                inputs,
                outputs: vec![NewParcel {
                    carats: mixed,
                    stones: 40,
                    value_cents: Some(total * 100),
                    seal: format!("M{chain}"),
                }],
            }),
            t + 3,
        );
        let parcel = parcel_id(&mix.id, 0);
        let (x, i) = (chain % EXPORTERS, chain % IMPORTERS);
        let exporter = exporters[x].author().clone();
        let importer = importers[i].author().clone();
        let d1 = sorters[s].append(dispatch(parcel, mix.id, &exporter, None), t + 4);
        let r1 = exporters[x].append(receive(parcel, d1.id, mixed), t + 5);
        let cert = authority.append(
            Body::Certify(Certify {
                number: format!("BW-{chain}"),
                exporter,
                importer: importer.clone(),
                destination: "BE".parse().expect("country"),
                parcels: vec![ParcelRef {
                    parcel,
                    head: r1.id,
                }],
                total_carats: mixed,
                value_cents: total * 100,
                origins: vec!["BW".parse().expect("country")],
                issued_on: "2026-05-01".parse().expect("date"),
                expires_on: "2026-12-31".parse().expect("date"),
            }),
            t + 6,
        );
        let d2 = exporters[x].append(dispatch(parcel, r1.id, &importer, Some(cert.id)), t + 7);
        let r2 = importers[i].append(receive(parcel, d2.id, mixed), t + 8);
        let confirm = authority_be.append(
            Body::ConfirmImport(ConfirmImport {
                certificate: cert.id,
                note: String::new(),
            }),
            t + 9,
        );
        for e in [mix, d1, r1, cert, d2, r2, confirm] {
            if !put(e) {
                return;
            }
        }
    }
}
