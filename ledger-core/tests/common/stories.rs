//! Stories for property tests: equivocations and governance mixed into a generated custody story.

use std::collections::BTreeMap;

use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::dev::dev_key;
use ledger_core::event::{
    Body, Certify, ConfirmImport, EmbargoTarget, Flag, FlagCode, FlagTarget, GovAction, Govern,
    ParcelRef,
};
use ledger_core::ledger::Ledger;
use ledger_core::record::{endorse, record_id};
use ledger_core::types::Date;
use ledger_core::writer::{FeedWriter, Signed};

use super::{certify, date, mid, pref, Net, Rng, T0};

/// Equivocations added to a scenario: for a few members, a second event at a random held seq,
/// sometimes continued on its branch, and events whose `feed_root` is wrong, on a branch or at the
/// next slot. Returns the forks' events (which every order must store) and the bad-root events
/// (which every order must refuse).
pub fn equivocations(net: &Net, events: &[Signed], rng: &mut Rng) -> (Vec<Signed>, Vec<Signed>) {
    let mut feeds: std::collections::BTreeMap<String, Vec<(EventId, u64)>> = Default::default();
    for s in events {
        let h = net.verify(s).header().clone();
        feeds
            .entry(h.author.to_string())
            .or_default()
            .push((s.id, h.time_ms));
    }
    let (mut forks, mut bad) = (Vec::new(), Vec::new());
    let authors: Vec<String> = feeds.keys().cloned().collect();
    for _ in 0..1 + rng.below(3) {
        let Some(author) = rng.pick(&authors) else {
            break;
        };
        let feed = &feeds[author];
        let k = 1 + rng.below(feed.len() as u64) as usize;
        let ids: Vec<EventId> = feed[..k - 1].iter().map(|(id, _)| *id).collect();
        let time = feed[..k - 1].last().map_or(T0, |(_, t)| *t);
        let mut w = FeedWriter::resume(
            net.dev.network(),
            mid(author),
            dev_key(author),
            &ids,
            0,
            time,
        );
        forks.push(w.append(flag(rng.next()), time + 1));
        if rng.chance(70) {
            bad.push(bad_root(&w, time + 7, rng.next()));
            forks.push(w.append(flag(rng.next()), time + 2));
        }
        bad.push(bad_root(&w, time + 7, rng.next()));
    }
    (forks, bad)
}

/// The writer's next event, with a wrong `feed_root`.
fn bad_root(w: &FeedWriter, time: u64, n: u64) -> Signed {
    let mut h = w.next_header(time);
    h.feed_root.0[0] ^= 1;
    w.sign_raw(h, flag(n))
}

fn flag(n: u64) -> Body {
    Body::Flag(Flag {
        target: FlagTarget::Member(mid("mine-bw")),
        code: FlagCode::Other,
        text: format!("equivocation {n}"),
    })
}

/// Governance mixed into a custody story: a mine's key rotated with a cut inside its feed (its
/// later events signed with the old key are now a thief's) and the mine going on under its new
/// key; another member suspended from some seq; sometimes a third member's key revoked. Each
/// record is endorsed by a quorum and submitted by the monitor.
pub fn governed(net: &mut Net, events: &[Signed], rng: &mut Rng) -> Vec<Signed> {
    let mut feeds: BTreeMap<String, Vec<(EventId, u64)>> = BTreeMap::new();
    for s in events {
        let h = net.verify(s).header().clone();
        feeds
            .entry(h.author.to_string())
            .or_default()
            .push((s.id, h.time_ms));
    }
    let mines: Vec<&str> = ["mine-zw", "mine-bw", "mine-bw2"]
        .into_iter()
        .filter(|m| feeds.contains_key(*m))
        .collect();
    let others: Vec<&str> = [
        "sorter-zw",
        "sorter-bw",
        "exporter-zw",
        "exporter-bw",
        "importer-be",
    ]
    .into_iter()
    .chain(mines.iter().copied())
    .collect();
    let mut out = Vec::new();
    let mut prev = net.dev.network();
    let mut enact = |net: &mut Net, version: u64, action: GovAction| {
        let id = record_id(&net.dev.network(), version, &prev, &action);
        let by = [
            "authority-zw",
            "authority-bw",
            "authority-be",
            "importer-ae",
            "monitor",
        ];
        let g = Govern {
            version,
            prev,
            action,
            endorsements: by
                .iter()
                .map(|m| endorse(&dev_key(m), mid(m), &id))
                .collect(),
        };
        prev = id;
        net.writer("monitor").set_gov(version - 1);
        out.push(net.sign("monitor", Body::Govern(g)));
    };
    let Some(&m) = rng.pick(&mines) else {
        return out;
    };
    let feed = &feeds[m];
    let k = rng.below(feed.len() as u64 + 1) as usize;
    let new_key = dev_key(&format!("{m}/2"));
    let action = GovAction::RotateKey {
        member: mid(m),
        key: new_key.public(),
        last_valid_seq: k as u64,
    };
    enact(net, 1, action);
    let ids: Vec<EventId> = feed[..k].iter().map(|(id, _)| *id).collect();
    let time = feed[..k].last().map_or(T0, |(_, t)| *t);
    let mut honest = FeedWriter::resume(net.dev.network(), mid(m), new_key, &ids, 1, time);
    let site = if m == "mine-zw" {
        "marange"
    } else if m == "mine-bw" {
        "jwaneng"
    } else {
        "orapa"
    };
    let mut continued = Vec::new();
    for i in 0..1 + rng.below(2) {
        continued.push(honest.append(super::register(site, 100 + i), time + 1 + i));
    }
    let s = *rng.pick(&others).unwrap_or(&"sorter-bw");
    let cut = rng.below(feeds.get(s).map_or(0, Vec::len) as u64 + 1);
    enact(
        net,
        2,
        GovAction::Suspend {
            member: mid(s),
            last_valid_seq: cut,
            reason: "audit".into(),
        },
    );
    let mut version = 3;
    if rng.chance(50) {
        let r = *rng.pick(&others).unwrap_or(&"exporter-bw");
        if r != m {
            let cut = rng.below(feeds.get(r).map_or(0, Vec::len) as u64 + 1);
            let key = dev_key(r).public();
            enact(
                net,
                version,
                GovAction::RevokeKey {
                    member: mid(r),
                    key,
                    last_valid_seq: cut,
                },
            );
            version += 1;
        }
    }
    if rng.chance(60) {
        // A country embargo from a day around the story's (it voids certificates and exports
        // already applied when it reaches back).
        let country = if rng.chance(50) { "ZW" } else { "BW" };
        let from = Date(date("2026-05-20").0 + rng.below(16) as u32);
        let action = GovAction::SetEmbargo {
            target: EmbargoTarget::Country(country.parse().expect("country")),
            from,
            until: None,
            reason: "property".into(),
        };
        enact(net, version, action);
    }
    out.extend(continued);
    out
}

/// What a generated story lacks and a parcel's audit must still see: import confirmations,
/// certificate numbers used twice, certificates over several parcels (one of them in another
/// parcel's ancestry), and flags on parcels, events, members and sites.
pub fn extras(net: &mut Net, ledger: &Ledger, rng: &mut Rng) -> Vec<Signed> {
    let mut out = Vec::new();
    let mut certs: Vec<(EventId, Certify)> = ledger
        .certificates()
        .map(|(id, c)| (*id, c.clone()))
        .collect();
    certs.sort_by_key(|(id, _)| *id);
    for (id, c) in &certs {
        if rng.chance(60) {
            let authority = format!("authority-{}", c.destination.to_string().to_lowercase());
            out.push(net.sign(
                &authority,
                Body::ConfirmImport(ConfirmImport {
                    certificate: *id,
                    note: String::new(),
                }),
            ));
        }
    }
    let mut parcels: Vec<(ParcelId, EventId, u64)> = ledger
        .parcels()
        .map(|p| (p.id, *p.head(), p.carats))
        .collect();
    parcels.sort();
    for i in 0..4 {
        let mut picked: Vec<&(ParcelId, EventId, u64)> = (0..1 + rng.below(2))
            .filter_map(|_| rng.pick(&parcels))
            .collect();
        picked.sort();
        picked.dedup();
        if picked.is_empty() {
            continue; // a story without parcels
        }
        let number = match rng.pick(&certs) {
            Some((_, c)) if i % 2 == 0 => c.number.clone(),
            _ => format!("KP-extra-{}", rng.next()),
        };
        let refs: Vec<ParcelRef> = picked.iter().map(|(p, h, _)| pref(*p, *h)).collect();
        let total = picked.iter().map(|(_, _, c)| *c).sum();
        let body = certify(&number, "exporter-bw", "importer-be", "BE", &refs, total);
        out.push(net.sign("authority-bw", body));
    }
    let ids: Vec<EventId> = {
        let mut v: Vec<EventId> = ledger.events().keys().copied().collect();
        v.sort();
        v
    };
    let authors = ["mine-bw", "sorter-bw", "exporter-zw", "importer-be"];
    for i in 0..4 {
        let target = match rng.below(4) {
            0 => rng.pick(&parcels).map(|(p, _, _)| FlagTarget::Parcel(*p)),
            1 => rng.pick(&ids).map(|e| FlagTarget::Event(*e)),
            2 => rng.pick(&authors).map(|m| FlagTarget::Member(mid(m))),
            _ => Some(FlagTarget::Site {
                member: mid("mine-bw"),
                site: "jwaneng".parse().expect("slug"),
            }),
        };
        // The last flag is signed by a member who may not flag: stored void (wrong role), it
        // holds its slot, and a bundle must carry it as the checkpoint commits to it.
        let flagger = if i == 3 { "importer-ae" } else { "monitor" };
        if let Some(target) = target {
            out.push(net.sign(
                flagger,
                Body::Flag(Flag {
                    target,
                    code: FlagCode::Other,
                    text: "extra".into(),
                }),
            ));
        }
    }
    out
}
