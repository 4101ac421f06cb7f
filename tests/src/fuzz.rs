//! Fuzz target bodies, shared by the cargo-fuzz targets in `fuzz/` and the stable corpus replay test, plus their seeds.
//!
//! Each `pub fn` here takes arbitrary bytes and must never panic, hang or allocate without bound
//! on them; the assertions inside are invariants that hold for every input.

use std::collections::HashMap;
use std::sync::OnceLock;

use custody_node::actions::{Action, CertRef, CertifyAction, Output};
use custody_node::net::{Head, SyncRequest, SyncResponse, MAX_SYNC_REQUEST, MAX_SYNC_RESPONSE};
use ledger_core::admission::{decode_event, verify_event, AdmissionError, VerifiedEvent};
use ledger_core::amount::Carats;
use ledger_core::audit::audit_parcel;
use ledger_core::bytes::{Digest, NetworkId, PublicKeyBytes};
use ledger_core::codec::{self, MAX_EVENT_BYTES};
use ledger_core::crypto::{KeyCache, SecretKey};
use ledger_core::dev::{dev_key, DevNetwork};
use ledger_core::event::{
    Body, Certify, Dispatch, Flag, FlagCode, FlagTarget, HsCode, NewParcel, ParcelRef, Receive,
    Register, Reject, Retire, RetireCause, Transform,
};
use ledger_core::export::{write_record, ExportReader};
use ledger_core::findings::{all_findings, parcel_findings};
use ledger_core::ledger::{Ledger, Limits};
use ledger_core::replay::{rebuild_ledger, replay_stream, ReplayOptions};
use ledger_core::rules::parcel_id;
use ledger_core::types::{Genesis, MemberId};
use ledger_core::writer::{FeedWriter, Signed};

/// The body of a fuzz target: takes any bytes, panics only on a bug.
pub type Target = fn(&[u8]);

/// The fuzz targets, by the name of their `fuzz/fuzz_targets/<name>.rs` and corpus directory.
pub const TARGETS: [(&str, Target); 5] = [
    ("event_admission", event_admission),
    ("ledger_rules", ledger_rules),
    ("sync_decode", sync_decode),
    ("export_reader", export_reader),
    ("action_parser", action_parser),
];

/// Most events one `event_admission` input is split into (the rest of the input is ignored).
pub const MAX_FUZZ_EVENTS: usize = 32;

/// The member whose node signs the actions of `action_parser`.
pub const ACTING_MEMBER: &str = "mine-bw";

/// Wall time (UNIX ms) of the events the fixtures and seeds sign.
pub const FUZZ_TIME_MS: u64 = 1_780_000_000_000;

/// The standard development network, its keys, and a ledger holding one registered parcel.
struct Fixture {
    genesis: Genesis,
    network: NetworkId,
    keys: KeyCache,
    /// The secret key of every member of the network, by its public key.
    signers: HashMap<PublicKeyBytes, SecretKey>,
    /// A ledger holding [`Fixture::parcel`], registered by [`ACTING_MEMBER`] as its event 1.
    ledger: Ledger,
    /// Event 1 of [`ACTING_MEMBER`]'s feed, which registered `ledger`'s parcel.
    registered: Signed,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dev = DevNetwork::standard();
        let genesis = dev.genesis();
        let network = dev.network();
        let keys = KeyCache::default();
        let signers = genesis
            .members
            .iter()
            .map(|m| {
                let key = dev_key(m.id.as_str());
                (key.public(), key)
            })
            .collect();
        let mut ledger = new_ledger(&genesis);
        let registered =
            writer(&dev, ACTING_MEMBER).append(register("jwaneng", 1_000), FUZZ_TIME_MS);
        let ev = verify_event(&registered.bytes, &network, &keys).expect("fixture event verifies");
        ledger.offer(ev).expect("an empty ledger has room");
        Fixture {
            genesis,
            network,
            keys,
            signers,
            ledger,
            registered,
        }
    })
}

fn new_ledger(genesis: &Genesis) -> Ledger {
    Ledger::new(genesis.clone(), Limits::default()).expect("the dev genesis is valid")
}

fn writer(dev: &DevNetwork, member: &str) -> FeedWriter {
    dev.writer(member)
        .unwrap_or_else(|| panic!("{member} is in the standard dev network"))
}

/// Splits `data` into frames of a 2-byte little-endian length and that many bytes (the last one
/// may be shorter than its length says).
fn frames(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if data.len() < 2 {
            return None;
        }
        let len = usize::from(u16::from_le_bytes([data[0], data[1]]));
        let (frame, rest) = data[2..].split_at(len.min(data.len() - 2));
        data = rest;
        Some(frame)
    })
}

/// Frames events for [`event_admission`].
pub fn frame_events<'a>(events: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        let len = u16::try_from(e.len()).expect("seed events are shorter than 64 KiB");
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(e);
    }
    out
}

/// Admits `bytes` as the network would. An event that decodes and has a valid shape but whose
/// signature fails is signed again by the member key its header names (or by its author's dev
/// key), as a member with that key could: so the ledger sees every body an insider can write.
fn admit(bytes: &[u8], fx: &Fixture) -> Option<VerifiedEvent> {
    match verify_event(bytes, &fx.network, &fx.keys) {
        Ok(ev) => Some(ev),
        Err(AdmissionError::BadSignature | AdmissionError::BadKey) => {
            let decoded = decode_event(bytes, &fx.network).expect("it decoded before its key");
            let mut header = decoded.header().clone();
            let fallback;
            let key = match fx.signers.get(&header.key) {
                Some(k) => k,
                None => {
                    fallback = dev_key(header.author.as_str());
                    &fallback
                }
            };
            header.key = key.public();
            let signed = ledger_core::writer::sign(header, decoded.body().clone(), key);
            let ev = verify_event(&signed.bytes, &fx.network, &fx.keys);
            Some(ev.expect("a decodable event signed by the key it names is admitted"))
        }
        Err(_) => None,
    }
}

/// Event decode and admission, then the ledger: `data` is up to [`MAX_FUZZ_EVENTS`] events,
/// each framed by a 2-byte length. Events admitted are offered to a fresh dev ledger in input
/// order; the state must not depend on that order.
pub fn event_admission(data: &[u8]) {
    let fx = fixture();
    let mut ledger = new_ledger(&fx.genesis);
    let mut admitted = Vec::new();
    for bytes in frames(data).take(MAX_FUZZ_EVENTS) {
        let Some(ev) = admit(bytes, fx) else { continue };
        admitted.push(ev.clone());
        // The default pending bounds hold far more than MAX_FUZZ_EVENTS.
        ledger.offer(ev).expect("the pending set has room");
    }
    judge(&ledger, &admitted);
}

/// Everything computed from a ledger of `admitted` must complete, and a ledger of the same events
/// in reverse order must reach the same state.
fn judge(ledger: &Ledger, admitted: &[VerifiedEvent]) {
    let fx = fixture();
    let _ = (
        ledger.state_root(),
        ledger.pending_report(),
        ledger.totals(),
    );
    reports(ledger);
    if admitted.len() < 2 {
        return;
    }
    let rebuilt = |reverse: bool| {
        let (ledger, _) = rebuild_ledger(&fx.genesis, &[], || {
            let mut evs = admitted.to_vec();
            if reverse {
                evs.reverse();
            }
            evs
        })
        .expect("the dev genesis is valid");
        ledger.state_root()
    };
    assert_eq!(
        rebuilt(false),
        rebuilt(true),
        "the ledger state depends on the order its events arrived in"
    );
}

/// The rules and reports on every body a member can sign: `data` is up to [`MAX_FUZZ_EVENTS`]
/// frames (2-byte length each) of a member index byte (into the standard network's members) and
/// an encoded `Body`, which that member's feed writer signs as its next event. A digest in the
/// body whose last 30 bytes are zero names an earlier event of the input (see [`reference`]), so
/// mutated events keep their links. Events that admit go to a fresh ledger, then as in
/// [`event_admission`].
pub fn ledger_rules(data: &[u8]) {
    let fx = fixture();
    let dev = DevNetwork::standard();
    let mut writers: Vec<Option<FeedWriter>> = fx.genesis.members.iter().map(|_| None).collect();
    let mut ledger = new_ledger(&fx.genesis);
    let (mut ids, mut admitted) = (Vec::new(), Vec::new());
    for (frame, time) in frames(data).take(MAX_FUZZ_EVENTS).zip(FUZZ_TIME_MS..) {
        let Some((&who, body)) = frame.split_first() else {
            continue;
        };
        let Ok(mut body) = codec::decode::<Body>(body, MAX_EVENT_BYTES) else {
            continue;
        };
        resolve(&mut body, &ids);
        let who = usize::from(who) % writers.len();
        let member = fx.genesis.members[who].id.as_str();
        let feed = writers[who].get_or_insert_with(|| writer(&dev, member));
        let signed = feed.append(body, time);
        ids.push(signed.id);
        if let Ok(ev) = verify_event(&signed.bytes, &fx.network, &fx.keys) {
            admitted.push(ev.clone());
            ledger.offer(ev).expect("the pending set has room");
        }
    }
    judge(&ledger, &admitted);
}

/// The digest an input of [`ledger_rules`] writes to name event `event` of the input (`None`)
/// or output `parcel` of that event.
pub fn reference(event: u8, parcel: Option<u8>) -> Digest {
    let mut d = [0u8; 32];
    d[0] = event;
    d[1] = parcel.map_or(0, |p| p.saturating_add(1));
    Digest(d)
}

/// Replaces every reference (see [`reference`]) to an earlier event of the input in `body`.
fn resolve(body: &mut Body, ids: &[Digest]) {
    let fix = |d: &mut Digest| {
        if d.0[2..].iter().any(|b| *b != 0) {
            return;
        }
        let Some(event) = ids.get(usize::from(d.0[0])) else {
            return;
        };
        *d = match d.0[1] {
            0 => *event,
            p => parcel_id(event, u32::from(p - 1)),
        };
    };
    let fix_ref = |r: &mut ParcelRef| {
        fix(&mut r.parcel);
        fix(&mut r.head);
    };
    match body {
        Body::Transform(t) => t.inputs.iter_mut().for_each(fix_ref),
        Body::Dispatch(d) => {
            fix_ref(&mut d.parcel);
            d.certificate.iter_mut().for_each(fix);
        }
        Body::Receive(Receive { parcel, .. })
        | Body::Reject(Reject { parcel, .. })
        | Body::Retire(Retire { parcel, .. }) => fix_ref(parcel),
        Body::Certify(c) => c.parcels.iter_mut().for_each(fix_ref),
        Body::ConfirmImport(c) => fix(&mut c.certificate),
        Body::Flag(Flag {
            target: FlagTarget::Parcel(d) | FlagTarget::Event(d),
            ..
        }) => fix(d),
        _ => {}
    }
}

/// What `custody replay` and `custody audit parcel` compute from a ledger.
fn reports(ledger: &Ledger) {
    let _ = all_findings(ledger);
    for p in ledger.parcels() {
        let audit = audit_parcel(ledger, &p.id).expect("a parcel of the ledger has an audit");
        let _ = parcel_findings(ledger, &audit);
    }
}

/// Sync message decoding: `data` as an encoded `SyncRequest` and as a `SyncResponse`, within
/// their limits; the events of a response go through event decoding as the node does.
pub fn sync_decode(data: &[u8]) {
    if let Ok(request) = codec::decode::<SyncRequest>(data, MAX_SYNC_REQUEST) {
        assert_eq!(
            codec::encode(&request),
            data,
            "a decoded request re-encodes exactly"
        );
    }
    if let Ok(response) = codec::decode::<SyncResponse>(data, MAX_SYNC_RESPONSE) {
        assert_eq!(
            codec::encode(&response),
            data,
            "a decoded response re-encodes exactly"
        );
        if let SyncResponse::Events(events) = response {
            let network = fixture().network;
            for e in &events {
                let _ = decode_event(e, &network);
            }
        }
    }
}

/// The export reader, then a replay of the same stream: every record is read until the end or
/// the first error, and the replay must count the same records and the same break.
pub fn export_reader(data: &[u8]) {
    let mut offset = 0u64;
    let (mut records, mut broken) = (0u64, false);
    for (i, r) in ExportReader::new(data).enumerate() {
        match r {
            Ok(rec) => {
                assert_eq!(
                    (rec.index, rec.offset),
                    (i as u64, offset),
                    "record position"
                );
                offset += 4 + rec.bytes.len() as u64;
                records += 1;
            }
            Err(_) => broken = true,
        }
    }
    assert!(offset <= data.len() as u64, "records read past the stream");
    let fx = fixture();
    let replayed = replay_stream(&fx.genesis, ReplayOptions::default(), || {
        Ok(ExportReader::new(data))
    })
    .expect("the dev genesis is valid");
    assert_eq!(
        replayed.report.events, records,
        "replay counts the records read"
    );
    assert_eq!(
        replayed.report.stream_error.is_some(),
        broken,
        "replay sees the break"
    );
}

/// The HTTP action parser: `data` as the JSON body of `POST /v1/actions`, turned into a body
/// against a ledger holding one parcel, shape-checked, signed by [`ACTING_MEMBER`]'s node,
/// admitted and previewed as the node does before it stores its own event.
pub fn action_parser(data: &[u8]) {
    let Ok(action) = serde_json::from_slice::<Action>(data) else {
        return;
    };
    let fx = fixture();
    let member = MemberId::new(ACTING_MEMBER).expect("literal member");
    let Ok(body) = action.body(&fx.ledger, &member) else {
        return;
    };
    if body.check_shape().is_err() {
        return;
    }
    let mut feed = FeedWriter::new(fx.network, member, dev_key(ACTING_MEMBER));
    feed.resync(&[fx.registered.id], 0, FUZZ_TIME_MS);
    let draft = feed.draft(body, FUZZ_TIME_MS + 1);
    if let Ok(ev) = verify_event(&draft.bytes, &fx.network, &fx.keys) {
        let _ = fx.ledger.preview(&ev);
    }
}

fn register(site: &str, carats: u64) -> Body {
    Body::Register(Register {
        site: site.parse().expect("literal site"),
        carats,
        stones: 3,
        value_cents: Some(carats * 100),
        seal: "S1".into(),
        extracted_on: "2026-01-15".parse().expect("literal date"),
    })
}

/// Seeds for every target, as (target, seed name, bytes): valid inputs of each kind.
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let story = sign_script(&story_script());
    let bytes: Vec<&[u8]> = story.iter().map(|s| s.bytes.as_slice()).collect();
    let frame = |events: &[Signed]| frame_events(events.iter().map(|s| s.bytes.as_slice()));
    for n in [1, 3, story.len()] {
        out.push(("event_admission", format!("story-{n}"), frame(&story[..n])));
    }
    out.push(("event_admission", "fork".into(), frame(&fork_events())));
    out.push((
        "event_admission",
        "merge".into(),
        frame(&sign_script(&merge_script())),
    ));
    for (name, script) in [("story", story_script()), ("merge", merge_script())] {
        out.push(("ledger_rules", name.into(), frame_script(&script)));
    }
    for (i, msg) in sync_messages(&story).into_iter().enumerate() {
        out.push(("sync_decode", format!("message-{i}"), msg));
    }
    for n in [0, 1, bytes.len()] {
        let mut stream = Vec::new();
        for b in &bytes[..n] {
            write_record(&mut stream, b).expect("writing to a Vec");
        }
        out.push(("export_reader", format!("export-{n}"), stream));
    }
    for (i, a) in actions().iter().enumerate() {
        let json = serde_json::to_vec(a).expect("actions serialise");
        out.push(("action_parser", format!("action-{i}"), json));
    }
    out
}

/// Events as a [`ledger_rules`] input describes them: the member's index in the standard
/// network and a body whose references to earlier events are [`reference`]s.
type Script = Vec<(usize, Body)>;

/// Signs a script as [`ledger_rules`] does.
fn sign_script(script: &Script) -> Vec<Signed> {
    let dev = DevNetwork::standard();
    let members = dev.genesis().members;
    let mut writers: HashMap<usize, FeedWriter> = HashMap::new();
    let mut out: Vec<Signed> = Vec::new();
    for ((who, body), time) in script.iter().zip(FUZZ_TIME_MS..) {
        let mut body = body.clone();
        resolve(&mut body, &out.iter().map(|s| s.id).collect::<Vec<_>>());
        let feed = writers
            .entry(*who)
            .or_insert_with(|| writer(&dev, members[*who].id.as_str()));
        out.push(feed.append(body, time));
    }
    out
}

/// Frames a script as a [`ledger_rules`] input.
fn frame_script(script: &Script) -> Vec<u8> {
    let mut out = Vec::new();
    for (who, body) in script {
        let mut frame = vec![u8::try_from(*who).expect("a standard member index")];
        frame.extend_from_slice(&codec::encode(body));
        out.extend_from_slice(&frame_events([frame.as_slice()]));
    }
    out
}

/// The index of a member of the standard development network.
fn member_index(name: &str) -> usize {
    let genesis = DevNetwork::standard().genesis();
    let index = genesis.members.iter().position(|m| m.id.as_str() == name);
    index.unwrap_or_else(|| panic!("{name} is in the standard dev network"))
}

/// A parcel's way from a Botswana mine through a sorter, split, one half certified for export,
/// the other lost and flagged.
fn story_script() -> Script {
    let (mine, sorter) = (member_index("mine-bw"), member_index("sorter-bw"));
    let authority = member_index("authority-bw");
    let r = |event: u8, parcel: u8| ParcelRef {
        parcel: reference(event, Some(parcel)),
        head: reference(event, None),
    };
    let to: MemberId = "sorter-bw".parse().expect("literal member");
    let received = ParcelRef {
        parcel: reference(0, Some(0)),
        head: reference(1, None),
    };
    let outputs = [1_200, 780].map(|carats| NewParcel {
        carats,
        stones: 1,
        value_cents: None,
        seal: "A".into(),
    });
    vec![
        (mine, register("jwaneng", 2_000)),
        (mine, dispatch(r(0, 0), to)),
        (sorter, receive(received, 2_000)),
        (
            sorter,
            transform(
                vec![ParcelRef {
                    head: reference(2, None),
                    ..received
                }],
                outputs.to_vec(),
            ),
        ),
        (
            authority,
            Body::Certify(certificate(vec![ParcelRef {
                parcel: reference(3, Some(0)),
                head: reference(3, None),
            }])),
        ),
        (sorter, retire(r(3, 1))),
        (authority, flag(reference(3, Some(1)))),
    ]
}

/// Two parcels registered with declared values, merged into one by their mine.
fn merge_script() -> Script {
    let mine = member_index("mine-bw");
    let input = |event: u8| ParcelRef {
        parcel: reference(event, Some(0)),
        head: reference(event, None),
    };
    let output = NewParcel {
        carats: 1_000,
        stones: 6,
        value_cents: Some(100_000),
        seal: "M".into(),
    };
    vec![
        (mine, register("jwaneng", 700)),
        (mine, register("orapa", 300)),
        (mine, transform(vec![input(0), input(1)], vec![output])),
    ]
}

fn dispatch(parcel: ParcelRef, to: MemberId) -> Body {
    Body::Dispatch(Dispatch {
        parcel,
        to,
        certificate: None,
        seal: "D".into(),
        deadline_ms: None,
    })
}

fn receive(parcel: ParcelRef, measured_carats: u64) -> Body {
    Body::Receive(Receive {
        parcel,
        measured_carats,
        seal_intact: true,
        note: String::new(),
    })
}

fn transform(inputs: Vec<ParcelRef>, outputs: Vec<NewParcel>) -> Body {
    Body::Transform(Transform { inputs, outputs })
}

fn retire(parcel: ParcelRef) -> Body {
    Body::Retire(Retire {
        parcel,
        cause: RetireCause::Lost,
        note: "fell".into(),
    })
}

fn flag(parcel: Digest) -> Body {
    Body::Flag(Flag {
        target: FlagTarget::Parcel(parcel),
        code: FlagCode::MassDiscrepancy,
        text: "where".into(),
    })
}

fn certificate(parcels: Vec<ParcelRef>) -> Certify {
    Certify {
        number: "BW-1".into(),
        exporter: "exporter-bw".parse().expect("literal member"),
        importer: "importer-be".parse().expect("literal member"),
        destination: "BE".parse().expect("literal country"),
        parcels,
        total_carats: 1_200,
        value_cents: 120_000,
        origins: vec!["BW".parse().expect("literal country")],
        issued_on: "2026-02-01".parse().expect("literal date"),
        expires_on: "2026-05-01".parse().expect("literal date"),
    }
}

/// Two different events 2 of one feed.
fn fork_events() -> Vec<Signed> {
    let dev = DevNetwork::standard();
    let mut mine = writer(&dev, "mine-zw");
    let first = mine.append(register("marange", 500), FUZZ_TIME_MS);
    let a = mine.draft(register("marange", 600), FUZZ_TIME_MS + 1);
    let b = mine.draft(register("marange", 700), FUZZ_TIME_MS + 1);
    vec![first, a, b]
}

fn sync_messages(story: &[Signed]) -> Vec<Vec<u8>> {
    let member: MemberId = "mine-bw".parse().expect("literal member");
    vec![
        codec::encode(&SyncRequest::Heads),
        codec::encode(&SyncRequest::Feed {
            author: member.clone(),
            from: 1,
            limit: 256,
        }),
        codec::encode(&SyncRequest::Events {
            ids: story.iter().map(|s| s.id).collect(),
        }),
        codec::encode(&SyncResponse::Heads {
            heads: vec![Head {
                author: member.clone(),
                seq: 2,
                id: story[1].id,
                off_slot: 1,
            }],
            forks: vec![ledger_core::ledger::Fork {
                author: member.clone(),
                seq: 2,
                first: story[0].id,
                second: story[1].id,
            }],
        }),
        codec::encode(&SyncRequest::OffSlot {
            author: member,
            from: 0,
            limit: 256,
        }),
        codec::encode(&SyncResponse::Events(
            story.iter().map(|s| s.bytes.clone()).collect(),
        )),
        codec::encode(&SyncResponse::Refused("more than 256 ids".into())),
    ]
}

/// One action of every kind, citing the fixture's parcel where they cite one.
fn actions() -> Vec<Action> {
    let parcel = parcel_id(&fixture().registered.id, 0);
    let member = |m: &str| -> MemberId { m.parse().expect("literal member") };
    vec![
        Action::Register {
            site: "jwaneng".parse().expect("literal site"),
            carats: Carats(1_234),
            stones: 2,
            value_cents: Some(5),
            seal: "S".into(),
            extracted_on: "2026-01-15".parse().expect("literal date"),
        },
        Action::Transform {
            inputs: vec![parcel],
            outputs: vec![Output {
                carats: Carats(990),
                stones: 3,
                value_cents: None,
                seal: "T".into(),
            }],
        },
        Action::Dispatch {
            parcel,
            to: member("sorter-bw"),
            certificate: None,
            seal: "D".into(),
            deadline_ms: Some(FUZZ_TIME_MS + 86_400_000),
        },
        Action::Receive {
            parcel,
            measured_carats: Carats(1_000),
            seal_intact: false,
            note: "n".into(),
        },
        Action::Reject {
            parcel,
            reason: "r".into(),
        },
        Action::Certify(CertifyAction {
            number: "BW-1".into(),
            exporter: "exporter-bw".parse().expect("literal member"),
            importer: "importer-be".parse().expect("literal member"),
            destination: "BE".parse().expect("literal country"),
            parcels: vec![parcel],
            hs_code: HsCode::Unsorted,
            total_carats: Some(Carats(1_200)),
            value_cents: Some(120_000),
            origins: vec!["BW".parse().expect("literal country")],
            issued_on: "2026-02-01".parse().expect("literal date"),
            expires_on: "2026-05-01".parse().expect("literal date"),
        }),
        Action::ConfirmImport {
            certificate: CertRef::Id(fixture().registered.id),
            note: String::new(),
        },
        Action::Retire {
            parcel,
            cause: RetireCause::Cut,
            note: String::new(),
        },
        Action::Flag {
            target: FlagTarget::Site {
                member: member("mine-zw"),
                site: "marange".parse().expect("literal site"),
            }
            .into(),
            code: FlagCode::Smuggling,
            text: "t".into(),
        },
    ]
}
