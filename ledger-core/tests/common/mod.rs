//! Shared helpers for ledger-core's integration tests: a development network, event builders and a scenario generator.
#![allow(dead_code)]

pub mod stories;

use std::collections::HashMap;

use ledger_core::admission::{verify_event, VerifiedEvent};
use ledger_core::bytes::Digest;
use ledger_core::bytes::{EventId, ParcelId};
use ledger_core::crypto::KeyCache;
use ledger_core::dev::dev_key;
use ledger_core::dev::DevNetwork;
use ledger_core::event::*;
use ledger_core::ledger::{Knowledge, Ledger, Limits, Step};
use ledger_core::record::{endorse, record_id};
use ledger_core::rules::{parcel_id, ParcelState, Verdict};
use ledger_core::types::{Country, Date, MemberId, Role};
use ledger_core::writer::{FeedWriter, Signed};

pub const T0: u64 = 1_780_000_000_000;

pub fn mid(s: &str) -> MemberId {
    s.parse().expect("member id")
}

pub fn date(s: &str) -> Date {
    s.parse().expect("date")
}

/// A development network with one feed writer per member and a clock.
pub struct Net {
    pub dev: DevNetwork,
    writers: HashMap<String, FeedWriter>,
    pub time: u64,
    pub keys: KeyCache,
}

impl Net {
    pub fn new(dev: DevNetwork) -> Net {
        Net {
            dev,
            writers: HashMap::new(),
            time: T0,
            keys: KeyCache::default(),
        }
    }

    pub fn standard() -> Net {
        Net::new(DevNetwork::standard())
    }

    pub fn ledger(&self) -> Ledger {
        Ledger::new(self.dev.genesis(), Limits::default()).expect("genesis")
    }

    pub fn writer(&mut self, who: &str) -> &mut FeedWriter {
        let dev = &self.dev;
        self.writers
            .entry(who.to_owned())
            .or_insert_with(|| dev.writer(who).expect("member"))
    }

    /// Signs `body` as `who`'s next event.
    pub fn sign(&mut self, who: &str, body: Body) -> Signed {
        self.time += 1000;
        let t = self.time;
        self.writer(who).append(body, t)
    }

    pub fn verify(&self, s: &Signed) -> VerifiedEvent {
        verify_event(&s.bytes, &self.dev.network(), &self.keys).expect("admissible")
    }
}

/// Offers `s` to `ledger` and returns the verdict of that event (panics if it was not stored).
pub fn apply(net: &Net, ledger: &mut Ledger, s: &Signed) -> Verdict {
    let processed = ledger.offer(net.verify(s)).expect("pending has room");
    match &processed[0].outcome {
        Ok(Step::Stored { verdict, .. }) => *verdict,
        other => panic!("event not stored: {other:?}"),
    }
}

pub fn pref(parcel: ParcelId, head: EventId) -> ParcelRef {
    ParcelRef { parcel, head }
}

pub fn register(site: &str, carats: u64) -> Body {
    Body::Register(Register {
        site: site.parse().expect("site"),
        carats,
        stones: 10,
        value_cents: Some(carats * 100),
        seal: "S-1".into(),
        extracted_on: date("2026-05-25"),
    })
}

pub fn transform(inputs: &[ParcelRef], outputs: &[u64]) -> Body {
    Body::Transform(Transform {
        inputs: inputs.to_vec(),
        outputs: outputs
            .iter()
            .map(|c| NewParcel {
                carats: *c,
                stones: 1,
                value_cents: None,
                seal: "S-T".into(),
            })
            .collect(),
    })
}

pub fn dispatch(r: ParcelRef, to: &str, certificate: Option<EventId>) -> Body {
    Body::Dispatch(Dispatch {
        parcel: r,
        to: mid(to),
        certificate,
        seal: "S-D".into(),
        deadline_ms: None,
    })
}

pub fn receive(r: ParcelRef, measured: u64) -> Body {
    Body::Receive(Receive {
        parcel: r,
        measured_carats: measured,
        seal_intact: true,
        note: String::new(),
    })
}

pub fn reject(r: ParcelRef) -> Body {
    Body::Reject(Reject {
        parcel: r,
        reason: "seal broken".into(),
    })
}

pub fn retire(r: ParcelRef) -> Body {
    Body::Retire(Retire {
        parcel: r,
        cause: RetireCause::Cut,
        note: String::new(),
    })
}

pub fn certify(
    number: &str,
    exporter: &str,
    importer: &str,
    dest: &str,
    parcels: &[ParcelRef],
    total: u64,
) -> Body {
    Body::Certify(Certify {
        number: number.into(),
        exporter: mid(exporter),
        importer: mid(importer),
        destination: dest.parse::<Country>().expect("country"),
        parcels: parcels.to_vec(),
        total_carats: total,
        value_cents: total * 100,
        origins: vec!["BW".parse().expect("country")],
        issued_on: date("2026-01-01"),
        expires_on: date("2026-07-01"),
    })
}

/// `body` (a certificate) declaring `origins` as its parcels' origin countries.
pub fn with_origins(mut body: Body, origins: &[&str]) -> Body {
    if let Body::Certify(c) = &mut body {
        c.origins = origins
            .iter()
            .map(|o| o.parse().expect("country"))
            .collect();
    }
    body
}

/// The parcel created by a registration event.
pub fn registered(s: &Signed) -> ParcelRef {
    pref(parcel_id(&s.id, 0), s.id)
}

/// Output `i` of a transform event.
pub fn output(s: &Signed, i: u32) -> ParcelRef {
    pref(parcel_id(&s.id, i), s.id)
}

/// A tiny deterministic generator (SplitMix64), so scenarios are reproducible from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            None
        } else {
            items.get(self.below(items.len() as u64) as usize)
        }
    }
}

/// The cast of generated scenarios: several mines, sorters, exporters, importers and authorities.
pub fn scenario_network() -> DevNetwork {
    use ledger_core::types::Chamber::*;
    use Role::*;
    DevNetwork::new()
        .member(
            "mine-zw",
            Industry,
            "ZW",
            &[Mine],
            &["marange", "zvishavane"],
        )
        .member("mine-bw", Industry, "BW", &[Mine], &["jwaneng"])
        .member("mine-bw2", Industry, "BW", &[Mine, Sorter], &["orapa"])
        .member("sorter-zw", Industry, "ZW", &[Sorter], &[])
        .member("sorter-bw", Industry, "BW", &[Sorter], &[])
        .member("exporter-zw", Industry, "ZW", &[Exporter], &[])
        .member("exporter-bw", Industry, "BW", &[Exporter], &[])
        .member("importer-be", Industry, "BE", &[Importer, Sorter], &[])
        .member("importer-ae", Industry, "AE", &[Importer], &[])
        .member("authority-zw", Government, "ZW", &[Authority], &[])
        .member("authority-bw", Government, "BW", &[Authority], &[])
        .member("authority-be", Government, "BE", &[Authority], &[])
        .member("authority-ae", Government, "AE", &[Authority], &[])
        .member("monitor", CivilSociety, "ZA", &[Monitor], &[])
}

const MINES: [(&str, &[&str]); 3] = [
    ("mine-zw", &["marange", "zvishavane"]),
    ("mine-bw", &["jwaneng"]),
    ("mine-bw2", &["orapa"]),
];

fn country_of(m: &str) -> &'static str {
    match m.split('-').nth(1).map(|c| c.trim_end_matches('2')) {
        Some("zw") => "ZW",
        Some("bw") => "BW",
        Some("be") => "BE",
        _ => "AE",
    }
}

/// Domestic next holders a member may dispatch to.
fn domestic_targets(from: &str) -> Vec<&'static str> {
    let all = [
        "sorter-zw",
        "sorter-bw",
        "exporter-zw",
        "exporter-bw",
        "mine-bw2",
        "importer-be",
    ];
    all.into_iter()
        .filter(|t| *t != from && country_of(t) == country_of(from))
        .collect()
}

/// A random custody story of about `steps` events, valid for the most part, with some attempts the
/// rules must void (double dispatch, mass gain, wrong role, uncertified export, receipt by a
/// stranger). Returns the events in signing order (a dependency-respecting order).
pub fn scenario(seed: u64, steps: usize) -> (Net, Vec<Signed>) {
    let mut net = Net::new(scenario_network());
    let mut rng = Rng(seed);
    let mut ledger = net.ledger();
    let mut out: Vec<Signed> = Vec::new();
    let emit =
        |net: &mut Net, ledger: &mut Ledger, who: &str, body: Body, out: &mut Vec<Signed>| {
            let s = net.sign(who, body);
            apply(net, ledger, &s);
            out.push(s);
        };
    let mut cert_no = 0u32;
    let mut last_number: HashMap<String, String> = HashMap::new();
    while out.len() < steps {
        // Live parcels and who may act on them.
        let mut live: Vec<(ParcelId, ParcelState, EventId, u64)> = ledger
            .parcels()
            .filter(|p| {
                matches!(
                    p.state(),
                    ParcelState::Held { .. } | ParcelState::InTransit { .. }
                )
            })
            .map(|p| (p.id, p.state().clone(), *p.head(), p.mass()))
            .collect();
        live.sort_by_key(|l| l.0);
        let action = rng.below(100);
        if live.is_empty() || action < 18 {
            let (mine, sites) = MINES[rng.below(3) as usize];
            let site = *rng.pick(sites).unwrap_or(&sites[0]);
            emit(
                &mut net,
                &mut ledger,
                mine,
                register(site, 100 + rng.below(10_000)),
                &mut out,
            );
            continue;
        }
        let Some((parcel, state, head, carats)) = rng.pick(&live).cloned() else {
            continue;
        };
        let r = pref(parcel, head);
        match state {
            ParcelState::InTransit { from, to, .. } => {
                let to = to.as_str().to_owned();
                if rng.chance(5) {
                    // A stranger tries to take it.
                    emit(
                        &mut net,
                        &mut ledger,
                        "monitor",
                        receive(r, carats),
                        &mut out,
                    );
                } else if rng.chance(15) {
                    emit(&mut net, &mut ledger, &to, reject(r), &mut out);
                } else {
                    // Scales disagree now and then, either way.
                    let measured = match rng.below(20) {
                        0 => carats.saturating_sub(1),
                        1 => carats + 1,
                        _ => carats,
                    };
                    emit(&mut net, &mut ledger, &to, receive(r, measured), &mut out);
                }
                let _ = from;
            }
            ParcelState::Held { by } => {
                let by = by.as_str().to_owned();
                let roll = rng.below(100);
                let holder_can_transform = by.starts_with("sorter")
                    || by.starts_with("exporter")
                    || by.starts_with("mine")
                    || by == "importer-be";
                if roll < 25 && holder_can_transform {
                    // Merge up to three of the holder's parcels and split into up to three outputs.
                    let mut inputs = vec![r];
                    let mut total = carats;
                    for (p, st, h, c) in &live {
                        if inputs.len() < 3
                            && *p != parcel
                            && st == &(ParcelState::Held { by: mid(&by) })
                            && rng.chance(50)
                        {
                            inputs.push(pref(*p, *h));
                            total += c;
                        }
                    }
                    let gain = rng.chance(5);
                    let kept = if gain {
                        total + 1
                    } else {
                        total - rng.below(total / 10 + 1)
                    };
                    let n = 1 + rng.below(3);
                    let mut outputs: Vec<u64> = (0..n).map(|_| kept / n).collect();
                    outputs[0] += kept - kept / n * n;
                    outputs.retain(|c| *c > 0);
                    if outputs.is_empty() {
                        outputs.push(1);
                    }
                    emit(
                        &mut net,
                        &mut ledger,
                        &by,
                        transform(&inputs, &outputs),
                        &mut out,
                    );
                } else if roll < 35 {
                    emit(&mut net, &mut ledger, &by, retire(r), &mut out);
                } else if roll < 60 && (by.starts_with("exporter") || by.starts_with("importer")) {
                    // A certified export from the holder's country to a foreign importer.
                    let importer = if country_of(&by) == "BE" {
                        "importer-ae"
                    } else {
                        "importer-be"
                    };
                    let dest = country_of(importer);
                    let authority = format!("authority-{}", country_of(&by).to_lowercase());
                    if rng.chance(10) {
                        emit(
                            &mut net,
                            &mut ledger,
                            &by,
                            dispatch(r, importer, None),
                            &mut out,
                        );
                    } else {
                        cert_no += 1;
                        let previous = last_number.get(&authority).map(String::as_str);
                        let (body, number) = certificate_for(
                            &ledger,
                            &mut rng,
                            (cert_no, previous),
                            (&by, importer, dest),
                            r,
                        );
                        last_number.insert(authority.clone(), number);
                        let c = net.sign(&authority, body);
                        apply(&net, &mut ledger, &c);
                        let cid = c.id;
                        out.push(c);
                        emit(
                            &mut net,
                            &mut ledger,
                            &by,
                            dispatch(r, importer, Some(cid)),
                            &mut out,
                        );
                    }
                } else {
                    let targets = domestic_targets(&by);
                    match rng.pick(&targets) {
                        Some(to) => {
                            let to = *to;
                            emit(&mut net, &mut ledger, &by, dispatch(r, to, None), &mut out);
                            if rng.chance(10) {
                                // A double dispatch citing the same head.
                                let other =
                                    targets.iter().find(|t| **t != to).copied().unwrap_or(to);
                                emit(
                                    &mut net,
                                    &mut ledger,
                                    &by,
                                    dispatch(r, other, None),
                                    &mut out,
                                );
                            }
                        }
                        None => emit(&mut net, &mut ledger, &by, retire(r), &mut out),
                    }
                }
                if rng.chance(4) {
                    // An authority declares its country's production for the year, or a site's.
                    let body = declaration(&mut rng);
                    let authority = if rng.chance(50) {
                        "authority-zw"
                    } else {
                        "authority-bw"
                    };
                    emit(&mut net, &mut ledger, authority, body, &mut out);
                }
                if rng.chance(3) {
                    // A monitor flags the parcel; the sorter tries to register (wrong role).
                    emit(
                        &mut net,
                        &mut ledger,
                        "monitor",
                        Body::Flag(Flag {
                            target: FlagTarget::Parcel(parcel),
                            code: FlagCode::Other,
                            text: "check".into(),
                        }),
                        &mut out,
                    );
                    emit(
                        &mut net,
                        &mut ledger,
                        "sorter-bw",
                        register("jwaneng", 5),
                        &mut out,
                    );
                }
            }
            _ => {}
        }
    }
    (net, out)
}

/// A certificate for parcel `r`, as the authority of `by`'s country would issue it, and its
/// number: most are right (carats as weighed, every origin country, a fresh number, with or
/// without an HS code); some declare a rounded weight, the wrong origin, or the authority's
/// previous number again.
fn certificate_for(
    ledger: &Ledger,
    rng: &mut Rng,
    (fresh, previous): (u32, Option<&str>),
    (by, importer, dest): (&str, &str, &str),
    r: ParcelRef,
) -> (Body, String) {
    let p = ledger.parcel(&r.parcel).expect("live parcel");
    let mut origins: Vec<String> = p
        .origin
        .by_country()
        .iter()
        .map(|(c, _)| c.to_string())
        .collect();
    let mut carats = p.mass_at(&r.head).expect("head");
    let mut number = format!("KP-{fresh}");
    match (rng.below(20), previous) {
        (0, _) => carats = carats / 100 * 100 + 100,
        (1, _) if origins.len() > 1 => origins.truncate(1),
        (1, _) => origins = vec![if origins[0] == "ZW" { "BW" } else { "ZW" }.to_owned()],
        (2..=7, Some(previous)) => number = previous.to_owned(),
        _ => {}
    }
    let origins: Vec<&str> = origins.iter().map(String::as_str).collect();
    let body = with_origins(certify(&number, by, importer, dest, &[r], carats), &origins);
    let body = match (rng.below(3), body) {
        (0, Body::Certify(c)) => Body::KpCertificate(KpCertificate {
            certify: c,
            hs_code: HsCode::ALL[rng.below(3) as usize],
        }),
        (_, body) => body,
    };
    (body, number)
}

/// A production declaration for 2026 of Zimbabwe, Botswana or one of their sites: some small
/// enough that the year's exports exceed them.
fn declaration(rng: &mut Rng) -> Body {
    let scope = match rng.below(4) {
        0 => DeclareScope::Country("ZW".parse().expect("country")),
        1 => DeclareScope::Country("BW".parse().expect("country")),
        2 => DeclareScope::Site {
            member: mid("mine-zw"),
            site: "marange".parse().expect("site"),
        },
        _ => DeclareScope::Site {
            member: mid("mine-bw"),
            site: "jwaneng".parse().expect("site"),
        },
    };
    Body::Declare(Declare {
        scope,
        from: date("2026-01-01"),
        to: date("2026-12-31"),
        carats: rng.below(40_000),
        value_cents: None,
        stock_carats: rng.below(2) * 5_000,
    })
}

/// A record making `action` version `version` after `prev`, endorsed by `by` with their keys.
pub fn endorsed(net: &Net, version: u64, prev: Digest, action: GovAction, by: &[&str]) -> Govern {
    let id = record_id(&net.dev.network(), version, &prev, &action);
    Govern {
        version,
        prev,
        action,
        endorsements: by
            .iter()
            .map(|m| endorse(&dev_key(m), mid(m), &id))
            .collect(),
    }
}

/// A record for the version after `ledger`'s newest.
pub fn next_record(net: &Net, ledger: &Ledger, action: GovAction, by: &[&str]) -> Govern {
    let gov = ledger.governance();
    let prev = gov.version(gov.latest()).expect("latest").id;
    endorsed(net, gov.latest() + 1, prev, action, by)
}

/// Signs `g` as `who`'s next event, acting under the version `g` extends.
pub fn submit(net: &mut Net, who: &str, g: Govern) -> Signed {
    net.writer(who).set_gov(g.version.saturating_sub(1));
    net.sign(who, Body::Govern(g))
}

/// Offers events in the given order, then rebuilds with what was learned (proven forks, the
/// governance chain) known from the start while a fork or a late record voided events already
/// applied (as the store and replay do).
pub fn settled(net: &Net, order: &[&Signed]) -> Ledger {
    let mut known = Knowledge::default();
    let mut l = net.ledger();
    loop {
        for s in order {
            l.offer(net.verify(s)).expect("pending has room");
        }
        // An event refused for what this node did not know yet (signed with a key a later
        // record grants) comes again, as sync brings it back, until nothing more is stored.
        loop {
            let before = l.events().len();
            let again: Vec<&&Signed> = order.iter().filter(|s| l.event(&s.id).is_none()).collect();
            for s in again {
                l.offer(net.verify(s)).expect("pending has room");
            }
            if l.events().len() == before {
                break;
            }
        }
        if !l.needs_recompute() {
            return l;
        }
        known = known.after(&l);
        l = Ledger::with_knowledge(
            net.dev.genesis(),
            Limits::default(),
            &known.forks,
            known.governance.as_ref(),
        )
        .expect("genesis");
    }
}
