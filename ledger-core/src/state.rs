//! The ledger's data model: event metadata, feeds, parcels and their transitions, notes, totals and forks.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, ParcelId};
use crate::event::{Certify, Declare, Flag, GovAction, Kind, RetireCause};
use crate::feed_tree::FeedTree;
use crate::merkle::Frontier;
use crate::origin::Origin;
use crate::types::{Date, MemberId, SiteId};
use crate::verdict::{ParcelState, Verdict};

/// Two different events by one author at one seq: portable evidence of equivocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fork {
    pub author: MemberId,
    pub seq: u64,
    /// The smaller of the two event ids (so the proof does not depend on arrival order).
    pub first: EventId,
    /// The larger of the two event ids.
    pub second: EventId,
}

/// What the ledger keeps of every stored event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventMeta {
    pub author: MemberId,
    pub seq: u64,
    pub kind: Kind,
    pub time_ms: u64,
    pub gov: u64,
    pub verdict: Verdict,
}

/// One member's feed.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    /// Ids by seq - 1: the events holding the feed's slots.
    pub ids: Vec<EventId>,
    /// The RFC 6962 tree over the slots (leaf `seq - 1` is `merkle::feed_leaf` of its id): roots
    /// at every size and proofs from stored hashes.
    pub(crate) tree: FeedTree,
    /// The feed is void from this seq on (a proven fork).
    pub forked_at: Option<u64>,
    /// Slots held by events proven in place by inclusion proofs, by seq (a proof bundle's
    /// ledger, which holds a few events of a feed and not its prefix; empty otherwise).
    pub(crate) proven: BTreeMap<u64, EventId>,
}

impl Feed {
    /// The head: (seq, id) of the last slot.
    pub fn head(&self) -> Option<(u64, EventId)> {
        self.ids.last().map(|id| (self.ids.len() as u64, *id))
    }
    /// The RFC 6962 root of the feed's slots.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }
    /// The tree over the feed's slots.
    pub fn tree(&self) -> &FeedTree {
        &self.tree
    }
    /// Fills a slot: the next seq is held by event `id`.
    pub(crate) fn hold(&mut self, id: EventId) {
        self.ids.push(id);
        self.tree.push(crate::merkle::feed_leaf(&id));
    }
    /// The event holding slot `seq`, in the feed's prefix or proven in place.
    pub fn slot(&self, seq: u64) -> Option<&EventId> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.ids.get(index).or_else(|| self.proven.get(&seq))
    }
    /// The highest seq held, in the prefix or proven in place.
    pub(crate) fn last_seq(&self) -> u64 {
        let proven = self.proven.keys().next_back().copied().unwrap_or(0);
        (self.ids.len() as u64).max(proven)
    }
}

/// An applied state change of a parcel: the event and where it left the parcel.
///
/// Kept compact (every parcel keeps all of its transitions): the dispatch of an in-transit state
/// and the transform of a consumed one are the transition's own event, so they are not stored
/// twice; [`Transition::state`] puts the full state back together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub event: EventId,
    step: Where,
}

/// A [`ParcelState`] without the event ids its transition already holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Where {
    /// Held, with the weight measured when this transition is a receipt (hundredths of a carat).
    Held(MemberId, Option<u64>),
    InTransit(MemberId, MemberId),
    Consumed,
    Retired(RetireCause),
}

impl Transition {
    pub(crate) fn new(event: EventId, state: ParcelState) -> Transition {
        Transition::weighed(event, state, None)
    }

    /// A transition that measured the parcel's weight (a receipt): `carats` is kept only when
    /// the parcel ends up held.
    pub(crate) fn weighed(event: EventId, state: ParcelState, carats: Option<u64>) -> Transition {
        let step = match state {
            ParcelState::Held { by } => Where::Held(by, carats),
            ParcelState::InTransit { from, to, .. } => Where::InTransit(from, to),
            ParcelState::Consumed { .. } => Where::Consumed,
            ParcelState::Retired { cause } => Where::Retired(cause),
        };
        Transition { event, step }
    }

    /// The parcel's state right after this transition.
    pub fn state(&self) -> ParcelState {
        match &self.step {
            Where::Held(by, _) => ParcelState::Held { by: by.clone() },
            Where::InTransit(from, to) => ParcelState::InTransit {
                from: from.clone(),
                to: to.clone(),
                dispatch: self.event,
            },
            Where::Consumed => ParcelState::Consumed { by: self.event },
            Where::Retired(cause) => ParcelState::Retired { cause: *cause },
        }
    }

    /// The weight this transition measured (a receipt), in hundredths of a carat.
    pub fn weight(&self) -> Option<u64> {
        match self.step {
            Where::Held(_, carats) => carats,
            _ => None,
        }
    }
}

/// A parcel and everything the ledger knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub id: ParcelId,
    /// The weight declared when the parcel was made; [`Parcel::mass`] is what it weighs now.
    pub carats: u64,
    pub stones: u32,
    pub value_cents: Option<u64>,
    pub seal: String,
    /// Parcels consumed by the transform that made this one (empty for a registration).
    pub parents: Vec<ParcelId>,
    pub origin: Origin,
    /// Every applied change, the creation first: never empty. The last one is the parcel's
    /// state and head.
    pub(crate) transitions: Vec<Transition>,
    /// Void events that cite this parcel at a head, sorted by id (applied ones are transitions).
    pub(crate) void_events: Vec<EventId>,
    /// The extraction date its registration declared (registered parcels only).
    pub extracted_on: Option<Date>,
}

impl Parcel {
    fn last(&self) -> &Transition {
        // A parcel is created with its first transition and only ever gains more.
        #[allow(clippy::expect_used)]
        self.transitions.last().expect("a parcel has its creation")
    }
    /// Where the parcel is now.
    pub fn state(&self) -> ParcelState {
        self.last().state()
    }
    /// The last applied event on this parcel.
    pub fn head(&self) -> &EventId {
        &self.last().event
    }
    /// The event that created it.
    pub fn created_by(&self) -> &EventId {
        &self.transitions[0].event
    }
    /// Every applied change, the creation first.
    pub fn transitions(&self) -> &[Transition] {
        &self.transitions
    }
    /// Every stored event that cites this parcel at a head, applied or void, sorted by id.
    pub fn events(&self) -> Vec<EventId> {
        let mut out: Vec<EventId> = self.transitions[1..]
            .iter()
            .map(|t| t.event)
            .chain(self.void_events.iter().copied())
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
    /// The last weight measured on receipt, if the parcel was ever received.
    pub fn measured_carats(&self) -> Option<u64> {
        self.transitions.iter().rev().find_map(Transition::weight)
    }
    /// What the parcel weighs now: the last weight measured on receipt, else the declared one.
    pub fn mass(&self) -> u64 {
        self.measured_carats().unwrap_or(self.carats)
    }
    /// What the parcel weighed right after applied event `event` (the last receipt up to it, else
    /// the declared weight), if that event changed this parcel.
    pub fn mass_at(&self, event: &EventId) -> Option<u64> {
        let at = self.transitions.iter().rposition(|t| &t.event == event)?;
        let weighed = self.transitions[..=at]
            .iter()
            .rev()
            .find_map(Transition::weight);
        Some(weighed.unwrap_or(self.carats))
    }
    /// The state right after applied event `event`, if that event changed this parcel.
    pub fn state_at(&self, event: &EventId) -> Option<ParcelState> {
        self.transitions
            .iter()
            .rev()
            .find(|t| &t.event == event)
            .map(Transition::state)
    }
}

/// What applied events said that the parcel states do not keep, for findings: flags, receipts
/// that disagree with the declared weight or found the seal broken, and explicit dispatch deadlines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notes {
    /// Applied flags, by event.
    pub flags: BTreeMap<EventId, Flag>,
    /// Applied receipts whose measured weight differs from what the parcel weighed when it was
    /// dispatched (declared, or last weighed): (parcel, expected, measured).
    pub receipt_mismatches: BTreeMap<EventId, (ParcelId, u64, u64)>,
    /// Applied receipts that found the seal broken, with the parcel.
    pub broken_seals: BTreeMap<EventId, ParcelId>,
    /// Applied dispatches that name their own deadline (UNIX ms).
    pub deadlines: HashMap<EventId, u64>,
    /// Applied import confirmations, by the certificate they confirm.
    pub confirmations: BTreeMap<EventId, Vec<EventId>>,
}

/// Carat totals for the mass-balance invariant: registered + receipt_gain = the mass of live
/// parcels + transform_loss + retired + receipt_loss. 128 bits wide: a log of many parcels near
/// `MAX_CARATS` each cannot overflow them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassTotals {
    pub registered: u128,
    pub transform_loss: u128,
    pub retired: u128,
    /// What receipts weighed above what their parcels weighed when dispatched.
    pub receipt_gain: u128,
    /// What receipts weighed below what their parcels weighed when dispatched.
    pub receipt_loss: u128,
}

/// One author's events that hold no feed slot, by seq and id, and how many there are.
#[derive(Debug, Default)]
pub(crate) struct OffSlot {
    pub(crate) by_seq: BTreeMap<u64, BTreeSet<EventId>>,
    pub(crate) len: u64,
}

impl OffSlot {
    pub(crate) fn at(&self, seq: u64) -> Option<&BTreeSet<EventId>> {
        self.by_seq.get(&seq)
    }

    pub(crate) fn insert(&mut self, seq: u64, id: EventId) {
        if self.by_seq.entry(seq).or_default().insert(id) {
            self.len += 1;
        }
    }
}

/// Everything the ledger holds about stored events: a pure function of the set of them.
#[derive(Debug, Default)]
pub struct State {
    pub(crate) events: HashMap<EventId, EventMeta>,
    pub(crate) feeds: BTreeMap<MemberId, Feed>,
    /// Boxed: a parcel record is large, and the table's spare slots and its growth copies should
    /// cost a pointer each, not a whole record.
    pub(crate) parcels: HashMap<ParcelId, Box<Parcel>>,
    pub(crate) certificates: HashMap<EventId, Certify>,
    /// Applied certificates by issuing authority and number (a number is its issuer's once).
    pub(crate) certificate_numbers: HashMap<(MemberId, String), EventId>,
    /// Every stored flag on a parcel or an event, applied or void, by target, sorted by id.
    pub(crate) flags_on: HashMap<Digest, Vec<EventId>>,
    /// Every stored flag on a member, applied or void, by member, sorted by id.
    pub(crate) flags_on_member: HashMap<MemberId, Vec<EventId>>,
    /// Every stored flag on a mine site, applied or void, by member, then site, sorted by id.
    pub(crate) flags_on_site: HashMap<MemberId, HashMap<SiteId, Vec<EventId>>>,
    /// Applied production declarations, by event.
    pub(crate) declarations: BTreeMap<EventId, Declare>,
    pub(crate) forks: BTreeMap<(MemberId, u64), Fork>,
    /// For every stored event that holds no feed slot (a fork's second event, or an event on a
    /// void branch after it): the Merkle frontier of its own chain, itself included, so that an
    /// event extending it is checked against its own `prev` chain in any delivery order.
    pub(crate) branches: HashMap<EventId, Frontier>,
    /// The events that hold no feed slot, by author and seq (empty unless the author forked).
    pub(crate) off_slot: HashMap<MemberId, OffSlot>,
    /// The events signed with a key revoked for their seq, by author and seq: evidence only.
    pub(crate) revoked: HashMap<MemberId, OffSlot>,
    pub(crate) totals: MassTotals,
    pub(crate) notes: Notes,
}

impl State {
    /// A stored event's metadata and verdict.
    pub fn event(&self, id: &EventId) -> Option<&EventMeta> {
        self.events.get(id)
    }
    /// A feed.
    pub fn feed(&self, author: &MemberId) -> Option<&Feed> {
        self.feeds.get(author)
    }
    /// A parcel.
    pub fn parcel(&self, id: &ParcelId) -> Option<&Parcel> {
        self.parcels.get(id).map(|p| &**p)
    }
    /// An applied certificate.
    pub fn certificate(&self, id: &EventId) -> Option<&Certify> {
        self.certificates.get(id)
    }
    /// Every stored flag on parcel or event `id`, applied or void, sorted by id.
    pub fn flags_on(&self, id: &Digest) -> &[EventId] {
        self.flags_on.get(id).map_or(&[], Vec::as_slice)
    }
    /// True when any stored flag targets a member.
    pub fn has_member_flags(&self) -> bool {
        !self.flags_on_member.is_empty()
    }
    /// Every stored flag on `member`, applied or void, sorted by id.
    pub fn flags_on_member(&self, member: &MemberId) -> &[EventId] {
        self.flags_on_member.get(member).map_or(&[], Vec::as_slice)
    }
    /// Every stored flag on `site` of `member`, applied or void, sorted by id.
    pub fn flags_on_site(&self, member: &MemberId, site: &SiteId) -> &[EventId] {
        self.flags_on_site
            .get(member)
            .and_then(|sites| sites.get(site))
            .map_or(&[], Vec::as_slice)
    }
    /// The applied certificate `author` issued under `number`, if any.
    pub fn certificate_by_number(&self, author: &MemberId, number: &str) -> Option<&EventId> {
        self.certificate_numbers
            .get(&(author.clone(), number.to_owned()))
    }
    /// True when `author` has a stored event after `seq` (in a slot or not).
    pub fn has_events_after(&self, author: &MemberId, seq: u64) -> bool {
        let after = |m: &HashMap<MemberId, OffSlot>| {
            m.get(author)
                .is_some_and(|o| o.by_seq.range(seq.saturating_add(1)..).next().is_some())
        };
        self.feeds.get(author).is_some_and(|f| f.last_seq() > seq)
            || after(&self.off_slot)
            || after(&self.revoked)
    }

    /// True when a governance action changes the verdict of an event already stored: a key cut
    /// or suspension before a stored seq of its member, an embargo or lift while certificates or
    /// dispatches are stored (they bind by date).
    pub fn reaches_back(&self, action: &GovAction) -> bool {
        match action {
            GovAction::RotateKey {
                member,
                last_valid_seq,
                ..
            }
            | GovAction::RevokeKey {
                member,
                last_valid_seq,
                ..
            }
            | GovAction::Suspend {
                member,
                last_valid_seq,
                ..
            } => self.has_events_after(member, *last_valid_seq),
            GovAction::SetEmbargo { .. } | GovAction::LiftEmbargo { .. } => self
                .events
                .values()
                .any(|m| matches!(m.kind, Kind::Certify | Kind::Dispatch)),
            _ => false,
        }
    }

    /// True when `author`'s feed is void at `seq`.
    pub fn is_forked_at(&self, author: &MemberId, seq: u64) -> bool {
        self.feeds
            .get(author)
            .and_then(|f| f.forked_at)
            .is_some_and(|f| seq >= f)
    }
}
