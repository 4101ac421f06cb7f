//! Proof bundles: one parcel's audit as of a cosigned checkpoint, in a file that verifies offline
//! with only the genesis (DESIGN.md section 7; format in docs/bundle.md).
//!
//! A bundle carries the checkpoint, the `Witness` events cosigning it, the proof that each
//! author's feed head is in it, and the events that bear on the parcel's audit, each with an
//! inclusion proof in its author's feed at the checkpoint (or none, for evidence that needs no
//! checkpoint: a fork's events, events void by a fork or a revoked key). Verifying replays them
//! in a ledger that places each event by its proof, then audits the parcel there.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::admission::{verify_event, AdmissionError, VerifiedEvent};
use crate::audit::{audit_parcel, Audit};
use crate::bundle_select::{by_author, select, SelectError, Selection, MAX_BUNDLE_EVENTS};
use crate::bytes::{Digest, EventId, NetworkId, ParcelId};
use crate::checkpoint::{checkpoint_id, head_proof, verify_head, FeedHead, HeadProof};
use crate::codec::{self, DecodeError, MAX_BUNDLE_BYTES};
use crate::crypto::KeyCache;
use crate::event::{Body, Checkpoint, Flag, FlagTarget};
use crate::feed_tree::{feed_inclusion, InclusionProof};
use crate::findings::{first_forks, parcel_findings_at, Finding};
use crate::governance::{network_id, Governance};
use crate::ledger::{Ledger, Missing, Processed, ProvenSlots};
use crate::parcel_index::{subject_flags, Certificates, ParcelIndex, ParcelProof};
use crate::replay::rebuild_proven;
use crate::rules::{parcel_id, Verdict, VoidReason};
use crate::surfaced::{surfaced_late, Surfaced};
use crate::types::{Genesis, MemberId};
use crate::witness::has_witness_duty;

/// The bundle format's version; a verifier refuses any other.
pub const BUNDLE_VERSION: u32 = 1;
/// Most `Witness` events one bundle carries.
pub const MAX_BUNDLE_WITNESSES: usize = 64;

/// One event of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleEvent {
    /// The signed event, as stored.
    pub bytes: Vec<u8>,
    /// Its inclusion in its author's feed at the checkpoint; `None` for evidence.
    pub proof: Option<InclusionProof>,
}

/// A parcel's proof bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    pub version: u32,
    pub parcel: ParcelId,
    pub checkpoint: Checkpoint,
    /// `Witness` events whose checkpoint is this one: each one's signature is a cosignature.
    pub witnesses: Vec<Vec<u8>>,
    /// The head of every feed an event is proven in.
    pub heads: Vec<HeadProof>,
    pub events: Vec<BundleEvent>,
    /// For every parcel walked, the proof of its covered events in `parcels_root`.
    pub parcels: Vec<ParcelProof>,
    /// Registrations of the ancestry that an earlier cosigned checkpoint proves surfaced late.
    pub surfaced: Vec<Surfaced>,
}

impl Bundle {
    /// The bundle's canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }
    /// Decodes a bundle of at most [`MAX_BUNDLE_BYTES`].
    pub fn decode(bytes: &[u8]) -> Result<Bundle, BundleError> {
        codec::decode(bytes, MAX_BUNDLE_BYTES).map_err(BundleError::Malformed)
    }
}

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Select(#[from] SelectError),
    #[error("feed proof of {author} at seq {seq}: {detail}")]
    Proof {
        author: MemberId,
        seq: u64,
        detail: String,
    },
}

/// Builds the bundle of `parcel` as of the checkpoint `cp` whose heads are `heads` and whose
/// parcel index is `index`, from `ledger` (whose feeds extend the checkpoint's), cosigned by the
/// `witnesses` events; `bytes` reads a stored event.
pub fn build(
    ledger: &Ledger,
    cp: &Checkpoint,
    heads: &[FeedHead],
    index: &ParcelIndex,
    witnesses: Vec<Vec<u8>>,
    parcel: &ParcelId,
    bytes: impl Fn(&EventId) -> Option<Vec<u8>>,
) -> Result<Bundle, BuildError> {
    let network = *ledger.network();
    let body = |id: &EventId| {
        let b = bytes(id)?;
        crate::admission::decode_event(&b, &network)
            .ok()
            .map(|d| d.body().clone())
    };
    let Selection {
        proven,
        evidence,
        parcels,
    } = select(ledger, heads, parcel, body)?;
    let parcels = parcels.iter().filter_map(|p| index.proof(p)).collect();
    let mut events = Vec::with_capacity(proven.len() + evidence.len());
    let mut proof_heads = Vec::new();
    for (author, seqs) in by_author(ledger, &proven) {
        let size = heads
            .iter()
            .find(|h| h.author == author)
            .map_or(0, |h| h.seq);
        let fail = |seq: u64, detail: String| BuildError::Proof {
            author: author.clone(),
            seq,
            detail,
        };
        let head = head_proof(heads, &author).map_err(|e| fail(0, e.to_string()))?;
        proof_heads.push(head);
        let tree = ledger.feed(&author).map(|f| f.tree());
        for (seq, id) in seqs {
            let tree = tree.ok_or_else(|| fail(seq, "no feed".into()))?;
            let proof =
                feed_inclusion(&author, tree, seq, size).map_err(|e| fail(seq, e.to_string()))?;
            let b = bytes(&id).ok_or_else(|| fail(seq, format!("event {id} unreadable")))?;
            events.push(BundleEvent {
                bytes: b,
                proof: Some(proof),
            });
        }
    }
    for id in evidence {
        let b = bytes(&id).ok_or(SelectError::Unreadable(id))?;
        events.push(BundleEvent {
            bytes: b,
            proof: None,
        });
    }
    Ok(Bundle {
        version: BUNDLE_VERSION,
        parcel: *parcel,
        checkpoint: cp.clone(),
        witnesses,
        heads: proof_heads,
        events,
        parcels,
        surfaced: Vec::new(),
    })
}

/// Why a bundle was refused. Each has a stable name ([`BundleError::reason`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the bundle is malformed: {0}")]
    Malformed(DecodeError),
    #[error(
        "bundle format version {0} is not supported (this verifier reads version {BUNDLE_VERSION})"
    )]
    Version(u32),
    #[error("the checkpoint is of another network than the genesis given")]
    WrongNetwork,
    #[error("the bundle carries {0} events or witnesses, more than a bundle may")]
    TooLarge(usize),
    #[error("event {index} of the bundle: {error}")]
    BadEvent { index: usize, error: AdmissionError },
    #[error("event {0} is in the bundle twice")]
    DuplicateEvent(EventId),
    #[error("a feed head proof does not hold: {0}")]
    BadHead(String),
    #[error("the feed head of {0} is given twice")]
    DuplicateHead(MemberId),
    #[error("event {event} claims a proof, but the bundle proves no head of {author}'s feed")]
    NoHead { event: EventId, author: MemberId },
    #[error("event {0} is not at its seq in its author's feed at the checkpoint (inclusion proof fails)")]
    NotIncluded(EventId),
    #[error("event {event} was refused: {error}")]
    Refused {
        event: EventId,
        error: AdmissionError,
    },
    #[error("event {event} waits for {missing}, which the bundle lacks")]
    Missing { event: EventId, missing: String },
    #[error("event {0} carries no proof and is not void by a fork or a revoked key: it needs an inclusion proof")]
    Unproven(EventId),
    #[error("event {0} ({1}) carries no proof and neither cites a parcel, nor is cited, nor carries a governance record, nor is one of the two events of its author's first fork: it has no place in the bundle")]
    Unneeded(EventId, &'static str),
    #[error("the bundle's governance records make version {got}, the checkpoint states {stated}: records are missing or extra")]
    Governance { got: u64, stated: u64 },
    #[error("witness event {index}: {detail}")]
    BadCosignature { index: usize, detail: String },
    #[error("the checkpoint has {got} witness cosignatures, {need} are required")]
    TooFewCosignatures { got: usize, need: usize },
    #[error("the bundle holds no parcel {0}")]
    UnknownParcel(ParcelId),
    #[error("parcel {0} has no proof of its events in the checkpoint's parcel index")]
    NoParcelProof(ParcelId),
    #[error("the events of parcel {0} in the bundle are not those the checkpoint's parcel index commits to: some are left out (or added)")]
    IncompleteParcel(ParcelId),
    #[error("the genesis is invalid: {0}")]
    Genesis(String),
    #[error("evidence of a late registration {index}: {detail}")]
    BadSurfaced { index: usize, detail: String },
}

impl BundleError {
    /// The stable name of the reason.
    pub fn reason(&self) -> &'static str {
        match self {
            BundleError::Malformed(_) => "malformed",
            BundleError::Version(_) => "unsupported-version",
            BundleError::WrongNetwork => "wrong-network",
            BundleError::TooLarge(_) => "too-large",
            BundleError::BadEvent { .. } => "bad-event",
            BundleError::DuplicateEvent(_) => "duplicate-event",
            BundleError::BadHead(_) => "bad-head-proof",
            BundleError::DuplicateHead(_) => "duplicate-head",
            BundleError::NoHead { .. } => "no-head",
            BundleError::NotIncluded(_) => "not-included",
            BundleError::Refused { .. } => "refused-event",
            BundleError::Missing { .. } => "missing-dependency",
            BundleError::Unproven(_) => "unproven-event",
            BundleError::Unneeded(..) => "unneeded-evidence",
            BundleError::Governance { .. } => "governance-mismatch",
            BundleError::BadCosignature { .. } => "bad-cosignature",
            BundleError::TooFewCosignatures { .. } => "too-few-cosignatures",
            BundleError::UnknownParcel(_) => "unknown-parcel",
            BundleError::NoParcelProof(_) => "no-parcel-proof",
            BundleError::IncompleteParcel(_) => "incomplete-parcel",
            BundleError::Genesis(_) => "bad-genesis",
            BundleError::BadSurfaced { .. } => "bad-late-evidence",
        }
    }
}

/// What a verified bundle proves: the parcel's audit and findings as of the checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleAudit {
    pub checkpoint: Checkpoint,
    pub checkpoint_id: Digest,
    /// Witnesses whose cosignature of the checkpoint counted, sorted.
    pub cosigners: Vec<MemberId>,
    /// Cosignatures that were required.
    pub required: usize,
    pub audit: Audit,
    /// Findings that concern the parcel, deadlines judged as of the checkpoint's time.
    pub findings: Vec<Finding>,
    /// Events proven by inclusion, and events carried as evidence.
    pub proven: usize,
    pub evidence: usize,
}

/// Verifies bundles of one network: its genesis checked once.
#[derive(Debug, Clone)]
pub struct BundleVerifier {
    genesis: Genesis,
    chain: Governance,
}

impl BundleVerifier {
    /// A verifier for the network of `genesis` (checked here, once).
    pub fn new(genesis: &Genesis) -> Result<BundleVerifier, BundleError> {
        let chain =
            Governance::from_genesis(genesis).map_err(|e| BundleError::Genesis(e.to_string()))?;
        Ok(BundleVerifier {
            genesis: genesis.clone(),
            chain,
        })
    }

    /// Verifies `bundle`, requiring `witnesses` cosignatures by members with the witness duty
    /// (by default the policy's `witnesses_required`), and audits its parcel. Returns the audit
    /// and the ledger of the bundle's events it was computed in.
    pub fn verify(
        &self,
        bundle: &Bundle,
        witnesses: Option<usize>,
    ) -> Result<(BundleAudit, Ledger), BundleError> {
        check_shape(bundle, &network_id(&self.genesis))?;
        let cp = &bundle.checkpoint;
        let keys = KeyCache::default();
        let heads = check_heads(bundle)?;
        let (events, slots) = check_events(bundle, &heads, &keys)?;
        let evidence = evidence_of(&events, &slots);
        let (ledger, order) = rebuild_proven(&self.genesis, &self.chain, &slots, || events.clone())
            .map_err(|e| BundleError::Genesis(e.to_string()))?;
        check_outcomes(&ledger, &order, &evidence)?;
        check_parcels(&ledger, bundle, &events, &slots)?;
        if ledger.governance().latest() != cp.gov {
            return Err(BundleError::Governance {
                got: ledger.governance().latest(),
                stated: cp.gov,
            });
        }
        let cosigners = count_cosigners(&ledger, bundle, &keys)?;
        let policy = &ledger.governance().latest_state().policy;
        let witnesses = witnesses.unwrap_or(policy.witnesses_required as usize);
        if cosigners.len() < witnesses {
            return Err(BundleError::TooFewCosignatures {
                got: cosigners.len(),
                need: witnesses,
            });
        }
        let audit = audit_parcel(&ledger, &bundle.parcel)
            .ok_or(BundleError::UnknownParcel(bundle.parcel))?;
        let mut findings = parcel_findings_at(&ledger, &audit, cp.time_ms);
        findings.extend(surfaced_late(
            &ledger,
            &bundle.surfaced,
            &slots,
            witnesses,
            &keys,
        )?);
        findings.sort_by(|a, b| (a.code, &a.detail).cmp(&(b.code, &b.detail)));
        let verified = BundleAudit {
            checkpoint: cp.clone(),
            checkpoint_id: checkpoint_id(cp),
            cosigners: cosigners.into_iter().collect(),
            required: witnesses,
            audit,
            findings,
            proven: slots.proven.len(),
            evidence: evidence.len(),
        };
        Ok((verified, ledger))
    }
}

/// Verifies a bundle against `genesis` (see [`BundleVerifier::verify`]; a verifier made once
/// spares checking the genesis for every bundle).
pub fn verify_bundle(
    genesis: &Genesis,
    bundle: &Bundle,
    witnesses: Option<usize>,
) -> Result<(BundleAudit, Ledger), BundleError> {
    BundleVerifier::new(genesis)?.verify(bundle, witnesses)
}

/// The version, the network and the counts.
fn check_shape(bundle: &Bundle, network: &NetworkId) -> Result<(), BundleError> {
    if bundle.version != BUNDLE_VERSION {
        return Err(BundleError::Version(bundle.version));
    }
    if &bundle.checkpoint.network != network {
        return Err(BundleError::WrongNetwork);
    }
    if bundle.events.len() > MAX_BUNDLE_EVENTS || bundle.witnesses.len() > MAX_BUNDLE_WITNESSES {
        return Err(BundleError::TooLarge(
            bundle.events.len().max(bundle.witnesses.len()),
        ));
    }
    Ok(())
}

/// The events carried without a proof, each with whether it is needed on its own: it cites a
/// parcel, another carried event cites it, or it carries a governance record.
fn evidence_of(events: &[VerifiedEvent], slots: &ProvenSlots) -> Vec<(EventId, bool)> {
    let cited: HashSet<EventId> = events
        .iter()
        .flat_map(|e| e.body().dependencies())
        .collect();
    events
        .iter()
        .filter(|e| !slots.proven.contains(e.id()))
        .map(|e| {
            let needed = !e.body().parcel_refs().is_empty()
                || matches!(e.body(), Body::Govern(_))
                || cited.contains(e.id());
            (*e.id(), needed)
        })
        .collect()
}

/// Every head proof holds against the checkpoint, one per author.
fn check_heads(bundle: &Bundle) -> Result<BTreeMap<MemberId, FeedHead>, BundleError> {
    let mut heads = BTreeMap::new();
    for h in &bundle.heads {
        verify_head(&bundle.checkpoint.network, &bundle.checkpoint, h)
            .map_err(|e| BundleError::BadHead(e.to_string()))?;
        if heads
            .insert(h.head.author.clone(), h.head.clone())
            .is_some()
        {
            return Err(BundleError::DuplicateHead(h.head.author.clone()));
        }
    }
    Ok(heads)
}

/// Every event's signature, and every proof against its author's head; the proven events'
/// order in each feed.
fn check_events(
    bundle: &Bundle,
    heads: &BTreeMap<MemberId, FeedHead>,
    keys: &KeyCache,
) -> Result<(Vec<VerifiedEvent>, ProvenSlots), BundleError> {
    let network = bundle.checkpoint.network;
    let mut events = Vec::with_capacity(bundle.events.len());
    let mut seen = HashSet::new();
    let mut slots = ProvenSlots::default();
    let mut feeds: BTreeMap<MemberId, Vec<(u64, EventId)>> = BTreeMap::new();
    for (index, e) in bundle.events.iter().enumerate() {
        let ev = verify_event(&e.bytes, &network, keys)
            .map_err(|error| BundleError::BadEvent { index, error })?;
        let id = *ev.id();
        if !seen.insert(id) {
            return Err(BundleError::DuplicateEvent(id));
        }
        if let Some(proof) = &e.proof {
            let h = ev.header();
            let head = heads.get(&h.author).ok_or_else(|| BundleError::NoHead {
                event: id,
                author: h.author.clone(),
            })?;
            if proof.leaf_index != h.seq - 1 || !proof.verify(&id, head.seq, &head.root) {
                return Err(BundleError::NotIncluded(id));
            }
            slots.proven.insert(id);
            feeds.entry(h.author.clone()).or_default().push((h.seq, id));
        }
        events.push(ev);
    }
    for seqs in feeds.values_mut() {
        seqs.sort();
        for pair in seqs.windows(2) {
            slots.prior.insert(pair[1].1, pair[0].1);
        }
    }
    Ok((events, slots))
}

/// Every event was placed, none waits, and every evidence event is void by a fork or a key cut.
fn check_outcomes(
    ledger: &Ledger,
    order: &[Processed],
    evidence: &[(EventId, bool)],
) -> Result<(), BundleError> {
    for p in order {
        if let Err(error) = &p.outcome {
            return Err(BundleError::Refused {
                event: *p.event.id(),
                error: error.clone(),
            });
        }
    }
    if let Some((event, missing)) = ledger.pending_report().into_iter().next() {
        let missing = missing
            .iter()
            .map(Missing::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        return Err(BundleError::Missing { event, missing });
    }
    let in_forks: HashSet<EventId> = first_forks(ledger)
        .flat_map(|f| [f.first, f.second])
        .collect();
    for (id, cites) in evidence {
        // Void by the evidence itself: signed with a key cut for its seq, or at or after a fork
        // of its author that the bundle proves (every event off the slots is stored void
        // `author-forked`, so that verdict alone proves nothing).
        let void = ledger.event(id).is_some_and(|m| match m.verdict {
            Verdict::Void(VoidReason::RevokedKey) => true,
            Verdict::Void(VoidReason::AuthorForked) => ledger.is_forked_at(&m.author, m.seq),
            _ => false,
        });
        if !void {
            return Err(BundleError::Unproven(*id));
        }
        // And needed: it cites a parcel (it is in the history), another carried event cites
        // it, it carries a governance record (whose force comes from its endorsements, whatever
        // its carrier's verdict), or it is one of the two events of its author's first fork.
        if !cites && !in_forks.contains(id) {
            let kind = ledger.event(id).map_or("?", |m| m.kind.name());
            return Err(BundleError::Unneeded(*id, kind));
        }
    }
    Ok(())
}

/// Every parcel of the target's ancestry, and every parcel a carried event cites, that a proven
/// event created: its proven events are exactly those the checkpoint's parcel index commits to.
/// Names, for each parcel, the proven events that the checkpoint's parcel index would name under
/// it (see `parcel_index::named_events`), and the parcels the bundle's events cite.
#[allow(clippy::type_complexity)]
fn named_in_bundle(
    ledger: &Ledger,
    events: &[VerifiedEvent],
    slots: &ProvenSlots,
) -> Result<(BTreeMap<ParcelId, BTreeSet<EventId>>, BTreeSet<ParcelId>), BundleError> {
    let mut named: BTreeMap<ParcelId, BTreeSet<EventId>> = BTreeMap::new();
    let mut required: BTreeSet<ParcelId> = BTreeSet::new();
    // The parcels each proven event names: those it cites, and those it created.
    let mut names: HashMap<EventId, Vec<ParcelId>> = HashMap::new();
    for ev in events {
        let cited = ev.body().parcel_refs();
        required.extend(cited.iter().map(|r| r.parcel));
        if slots.proven.contains(ev.id()) {
            let created = (0..created_count(ev.body())).map(|i| parcel_id(ev.id(), i));
            let parcels: Vec<ParcelId> = cited.iter().map(|r| r.parcel).chain(created).collect();
            for p in &parcels {
                named.entry(*p).or_default().insert(*ev.id());
            }
            names.insert(*ev.id(), parcels);
        }
    }
    // An applied import confirmation is named under the parcels its certificate covers.
    for ev in events.iter().filter(|e| slots.proven.contains(e.id())) {
        let applied = ledger.event(ev.id()).map(|m| m.verdict) == Some(Verdict::Applied);
        if let (Body::ConfirmImport(c), true) = (ev.body(), applied) {
            let parcels = names.get(&c.certificate).cloned().unwrap_or_default();
            for p in &parcels {
                named.entry(*p).or_default().insert(*ev.id());
            }
            names.insert(*ev.id(), parcels);
        }
    }
    // A proven flag on a parcel, or on an event naming one, is named under that parcel too.
    for ev in events.iter().filter(|e| slots.proven.contains(e.id())) {
        let target = match ev.body() {
            Body::Flag(Flag {
                target: FlagTarget::Parcel(p),
                ..
            }) => vec![*p],
            Body::Flag(Flag {
                target: FlagTarget::Event(e),
                ..
            }) => {
                // The flagged event comes with its flag: dropping it would hide what was flagged.
                if !events.iter().any(|x| x.id() == e) {
                    return Err(BundleError::Missing {
                        event: *ev.id(),
                        missing: format!("flagged event {e}"),
                    });
                }
                names.get(e).cloned().unwrap_or_default()
            }
            _ => continue,
        };
        for p in target {
            named.entry(p).or_default().insert(*ev.id());
        }
    }
    Ok((named, required))
}

fn check_parcels(
    ledger: &Ledger,
    bundle: &Bundle,
    events: &[VerifiedEvent],
    slots: &ProvenSlots,
) -> Result<(), BundleError> {
    let (mut named, mut required) = named_in_bundle(ledger, events, slots)?;
    let mut ancestry = BTreeSet::new();
    let mut queue = vec![bundle.parcel];
    while let Some(id) = queue.pop() {
        if ancestry.insert(id) {
            if let Some(p) = ledger.parcel(&id) {
                queue.extend(p.parents.iter().copied());
            }
        }
    }
    required.extend(ancestry);
    let proofs: BTreeMap<ParcelId, &ParcelProof> =
        bundle.parcels.iter().map(|p| (p.parcel, p)).collect();
    let cp = &bundle.checkpoint;
    let certs = Certificates::of(ledger);
    for id in required {
        let Some(p) = ledger.parcel(&id) else {
            continue;
        };
        if !slots.proven.contains(p.created_by()) {
            continue;
        }
        let proof = proofs.get(&id).ok_or(BundleError::NoParcelProof(id))?;
        let mut set = named.remove(&id).unwrap_or_default();
        set.insert(*p.created_by());
        let more: Vec<EventId> = subject_flags(ledger, p, &set)
            .into_iter()
            .chain(certs.sharing_a_number(ledger, &set))
            .filter(|f| slots.proven.contains(f))
            .collect();
        set.extend(more);
        let set: Vec<EventId> = set.into_iter().collect();
        if !proof.verify(&set, cp.parcels, &cp.parcels_root) {
            return Err(BundleError::IncompleteParcel(id));
        }
    }
    Ok(())
}

/// How many parcels a body creates if it applies (registrations and transforms).
fn created_count(body: &Body) -> u32 {
    match body {
        Body::Register(_) => 1,
        Body::Transform(t) => u32::try_from(t.outputs.len()).unwrap_or(u32::MAX),
        _ => 0,
    }
}

/// The members with the witness duty whose `Witness` events in the bundle cosign its checkpoint
/// with their current key (the event's own signature, and any cosignatures it carries).
fn count_cosigners(
    ledger: &Ledger,
    bundle: &Bundle,
    keys: &KeyCache,
) -> Result<BTreeSet<MemberId>, BundleError> {
    cosigners(ledger, &bundle.checkpoint, &bundle.witnesses, keys)
        .map_err(|(index, detail)| BundleError::BadCosignature { index, detail })
}

/// The members with the witness duty under `ledger`'s governance whose `Witness` events among
/// `witnesses` cosign `cp` with their current key; or the index of a bad one and why.
pub(crate) fn cosigners(
    ledger: &Ledger,
    cp: &Checkpoint,
    witnesses: &[Vec<u8>],
    keys: &KeyCache,
) -> Result<BTreeSet<MemberId>, (usize, String)> {
    let gov = ledger.governance().latest_state();
    let mut out = BTreeSet::new();
    for (index, bytes) in witnesses.iter().enumerate() {
        let ev = verify_event(bytes, &cp.network, keys).map_err(|e| (index, e.to_string()))?;
        let Body::Witness(w) = ev.body() else {
            return Err((index, "not a witness event".into()));
        };
        if &w.checkpoint != cp {
            return Err((index, "it cosigns another checkpoint".into()));
        }
        let h = ev.header();
        let current = |m: &MemberId, key| {
            gov.members
                .get(m)
                .is_some_and(|member| member.keys.iter().any(|g| &g.key == key))
        };
        if !has_witness_duty(gov, &h.author) || gov.key_for(&h.author, h.seq) != Some(&h.key) {
            return Err((
                index,
                format!(
                    "{} has no witness duty or signed with a key not its own",
                    h.author
                ),
            ));
        }
        out.insert(h.author.clone());
        for c in &w.cosignatures {
            if has_witness_duty(gov, &c.member) && current(&c.member, &c.key) {
                out.insert(c.member.clone());
            }
        }
    }
    Ok(out)
}
