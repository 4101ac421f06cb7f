//! The parcel index a checkpoint commits to (`parcels_root`): for every parcel the checkpoint
//! covers, the set of covered events that name it (its creation and every event citing it), so
//! a proof bundle that leaves one out is refused (D39), with the flags on them, on their
//! authors and on the parcel's mine site (D48, D51).
//!
//! Membership is by citation, not by verdict: an event citing a parcel is in its set whether it
//! was applied or void, so the set of a checkpoint is the same computed now or later, from any
//! replica that holds the checkpoint's feed prefixes.

use std::collections::{BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, ParcelId};
use crate::checkpoint::{covered, FeedHead};
use crate::event::Kind;
use crate::feed_tree::FeedTree;
use crate::ledger::{Ledger, Parcel};
use crate::merkle;
use crate::types::MemberId;

/// Domain separation of a parcel's leaf in `parcels_root`.
pub const PARCEL_LEAF_CONTEXT: &[u8] = b"custody/parcel-events/v1\0";

/// The leaf of a parcel whose named events (sorted, no repeats) are `events`.
pub fn parcel_leaf(parcel: &ParcelId, events: &[EventId]) -> Digest {
    let mut bytes = Vec::with_capacity(PARCEL_LEAF_CONTEXT.len() + 40 + 32 * events.len());
    bytes.extend_from_slice(PARCEL_LEAF_CONTEXT);
    bytes.extend_from_slice(parcel.as_bytes());
    bytes.extend_from_slice(&(events.len() as u64).to_le_bytes());
    for e in events {
        bytes.extend_from_slice(e.as_bytes());
    }
    merkle::leaf_hash(&bytes)
}

/// That one parcel's leaf is in a checkpoint's `parcels_root`: its index and audit path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParcelProof {
    pub parcel: ParcelId,
    pub index: u64,
    pub path: Vec<Digest>,
}

impl ParcelProof {
    /// True when the parcel's named events are exactly `events` (sorted) in the index of `size`
    /// parcels whose root is `root`.
    pub fn verify(&self, events: &[EventId], size: u64, root: &Digest) -> bool {
        merkle::verify_inclusion(
            &parcel_leaf(&self.parcel, events),
            self.index,
            size,
            &self.path,
            root,
        )
    }
}

/// A checkpoint's parcel index: the covered parcels, sorted, and the tree over their leaves
/// (every complete subtree kept, so a proof costs a logarithmic number of stored hashes).
#[derive(Debug, Default)]
pub struct ParcelIndex {
    parcels: Vec<ParcelId>,
    tree: FeedTree,
}

impl ParcelIndex {
    /// The index of the checkpoint whose heads are `heads`, from `ledger` (whose feeds extend
    /// those heads).
    pub fn build(ledger: &Ledger, heads: &[FeedHead]) -> ParcelIndex {
        let certs = Certificates::of(ledger);
        let mut parcels: Vec<ParcelId> = ledger
            .parcels()
            .filter(|p| covered(ledger, heads, p.created_by()))
            .map(|p| p.id)
            .collect();
        parcels.sort_unstable();
        // One parcel's events at a time: no copy of every parcel's list at once.
        let mut tree = FeedTree::new();
        for id in &parcels {
            if let Some(p) = ledger.parcel(id) {
                tree.push(parcel_leaf(id, &named_events(ledger, heads, p, &certs)));
            }
        }
        ParcelIndex { parcels, tree }
    }
    /// The root (`parcels_root`).
    pub fn root(&self) -> Digest {
        self.tree.root()
    }
    /// How many parcels it holds.
    pub fn len(&self) -> u64 {
        self.parcels.len() as u64
    }
    /// True when it holds no parcel.
    pub fn is_empty(&self) -> bool {
        self.parcels.is_empty()
    }
    /// The proof of `parcel`'s leaf, if the index holds it.
    pub fn proof(&self, parcel: &ParcelId) -> Option<ParcelProof> {
        let index = self.parcels.binary_search(parcel).ok()? as u64;
        let path = self.tree.inclusion(index, self.len()).ok()?;
        Some(ParcelProof {
            parcel: *parcel,
            index,
            path,
        })
    }
}

/// The applied certificates, by the parcels they cover, and by number those whose number more
/// than one applied certificate bears.
#[derive(Debug, Default)]
pub struct Certificates<'a> {
    by_parcel: HashMap<ParcelId, Vec<EventId>>,
    shared_numbers: HashMap<&'a str, Vec<EventId>>,
}

impl<'a> Certificates<'a> {
    /// Every stored `Certify` event applied in `ledger` (void ones cite their parcels as void
    /// events already).
    pub fn of(ledger: &'a Ledger) -> Certificates<'a> {
        let mut out = Certificates::default();
        let mut numbers: Vec<(&str, EventId)> = Vec::new();
        for (id, c) in ledger.certificates() {
            for r in &c.parcels {
                out.by_parcel.entry(r.parcel).or_default().push(*id);
            }
            numbers.push((c.number.as_str(), *id));
        }
        // Sorted, a number borne twice is a run: one table entry per shared number only.
        numbers.sort_unstable();
        for run in numbers.chunk_by(|a, b| a.0 == b.0).filter(|r| r.len() > 1) {
            out.shared_numbers
                .insert(run[0].0, run.iter().map(|(_, id)| *id).collect());
        }
        out
    }
    /// The applied certificates covering `parcel`.
    pub fn covering(&self, parcel: &ParcelId) -> &[EventId] {
        self.by_parcel.get(parcel).map_or(&[], Vec::as_slice)
    }
    /// The applied certificates sharing a number with an applied certificate in `events`,
    /// whoever issued them (the `duplicate-certificate` finding rests on them, D51).
    pub fn sharing_a_number(&self, ledger: &Ledger, events: &BTreeSet<EventId>) -> Vec<EventId> {
        if self.shared_numbers.is_empty() {
            return Vec::new();
        }
        events
            .iter()
            .filter_map(|e| ledger.certificate(e))
            .filter_map(|c| self.shared_numbers.get(c.number.as_str()))
            .flatten()
            .copied()
            .collect()
    }
}

/// The covered events naming parcel `p`: its creation, every stored event citing it at a head
/// (applied or void), the applied certificates covering it, their applied import confirmations
/// and the applied certificates sharing their numbers; and every flag on the parcel, on one of
/// those events, on their authors or on the parcel's mine site; sorted.
pub fn named_events(
    ledger: &Ledger,
    heads: &[FeedHead],
    p: &Parcel,
    certs: &Certificates<'_>,
) -> Vec<EventId> {
    let mut set: BTreeSet<EventId> = p.events().into_iter().collect();
    set.insert(*p.created_by());
    let covering = certs.covering(&p.id);
    let confirmations = covering
        .iter()
        .filter_map(|c| ledger.notes().confirmations.get(c))
        .flatten();
    set.extend(confirmations.copied());
    set.extend(covering.iter().copied());
    set.retain(|e| covered(ledger, heads, e));
    let state = ledger.state();
    let more: Vec<EventId> = std::iter::once(&p.id)
        .chain(&set)
        .flat_map(|target| state.flags_on(target).iter().copied())
        .chain(subject_flags(ledger, p, &set))
        .chain(certs.sharing_a_number(ledger, &set))
        .filter(|f| covered(ledger, heads, f))
        .collect();
    set.extend(more);
    set.into_iter().collect()
}

/// The stored flags (applied or void) on the members who authored `named` (the events naming
/// parcel `p`, flags aside) and, when a registration made `p`, on its mine site: what a parcel's
/// audit shows of flags on members and sites (D51).
pub fn subject_flags(ledger: &Ledger, p: &Parcel, named: &BTreeSet<EventId>) -> Vec<EventId> {
    let state = ledger.state();
    let mut out = Vec::new();
    // Flags on members and sites are rare: no lookups per event when there are none.
    if state.has_member_flags() {
        let authors: BTreeSet<&MemberId> = named
            .iter()
            .filter_map(|e| ledger.event(e))
            .filter(|m| m.kind != Kind::Flag)
            .map(|m| &m.author)
            .collect();
        for m in authors {
            out.extend_from_slice(state.flags_on_member(m));
        }
    }
    if p.parents.is_empty() {
        for s in p.origin.shares() {
            out.extend_from_slice(state.flags_on_site(&s.member, &s.site));
        }
    }
    out
}
