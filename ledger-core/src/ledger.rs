//! The ledger state machine: feeds, parcels, verdicts, forks and the pending set, fed one verified event at a time.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::admission::{AdmissionError, VerifiedEvent};
use crate::bytes::{Digest, EventId, NetworkId, ParcelId};
use crate::codec;
use crate::event::{Body, Certify, Flag, Kind, RetireCause};
use crate::governance::{network_id, GenesisError, Governance};
use crate::merkle::{self, Frontier};
use crate::origin::Origin;
use crate::rules::{self, Creation, Effect, ParcelState, Verdict, VoidReason};
use crate::types::{Genesis, MemberId};

/// Default most events waiting for a dependency.
pub const MAX_PENDING_EVENTS: usize = 65_536;
/// Default most bytes of events waiting for a dependency.
pub const MAX_PENDING_BYTES: usize = 64 * 1024 * 1024;
/// Default most events of one author waiting for a dependency: one member (or a thief of one
/// member's key) can take at most this share of the pending set.
pub const MAX_PENDING_PER_AUTHOR: usize = 4096;
/// Default most bytes of one author's events waiting for a dependency.
pub const MAX_PENDING_BYTES_PER_AUTHOR: usize = 8 * 1024 * 1024;

/// Bounds of the pending set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_pending_events: usize,
    pub max_pending_bytes: usize,
    pub max_pending_per_author: usize,
    pub max_pending_bytes_per_author: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_pending_events: MAX_PENDING_EVENTS,
            max_pending_bytes: MAX_PENDING_BYTES,
            max_pending_per_author: MAX_PENDING_PER_AUTHOR,
            max_pending_bytes_per_author: MAX_PENDING_BYTES_PER_AUTHOR,
        }
    }
}

impl Limits {
    /// No bounds (for events that were in the pending set already).
    const UNBOUNDED: Limits = Limits {
        max_pending_events: usize::MAX,
        max_pending_bytes: usize::MAX,
        max_pending_per_author: usize::MAX,
        max_pending_bytes_per_author: usize::MAX,
    };
}

/// What an event waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    Event(EventId),
    Gov(u64),
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Missing::Event(id) => write!(f, "event {id}"),
            Missing::Gov(v) => write!(f, "governance version {v}"),
        }
    }
}

/// The pending set (or its author's share of it) is full; the event was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("pending set is full{} ({events} events, {bytes} bytes); the event was not kept", if *.author_quota { " for this author" } else { "" })]
pub struct PendingFull {
    pub events: usize,
    pub bytes: usize,
    /// True when the author's own quota was reached, not the whole set.
    pub author_quota: bool,
}

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

/// Why [`Ledger::preview`] has no verdict for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Preview {
    Refused(AdmissionError),
    Duplicate,
    Waiting(Vec<Missing>),
}

/// What became of one offered (or woken) event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Stored with a verdict. `fork` is set when this event proved a fork; `recompute` when that
    /// fork voids events that were already applied, so the state must be rebuilt with it known.
    Stored {
        verdict: Verdict,
        fork: Option<Fork>,
        recompute: bool,
    },
    /// Already known.
    Duplicate,
    /// Waiting in the pending set.
    Pending(Vec<Missing>),
}

/// One processed event and its outcome.
#[derive(Debug, Clone)]
pub struct Processed {
    pub event: VerifiedEvent,
    pub outcome: Result<Step, AdmissionError>,
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
    frontier: Frontier,
    /// The feed is void from this seq on (a proven fork).
    pub forked_at: Option<u64>,
}

impl Feed {
    /// The head: (seq, id) of the last slot.
    pub fn head(&self) -> Option<(u64, EventId)> {
        self.ids.last().map(|id| (self.ids.len() as u64, *id))
    }
    /// The RFC 6962 root of the feed's slots.
    pub fn root(&self) -> Digest {
        self.frontier.root()
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
    Held(MemberId),
    InTransit(MemberId, MemberId),
    Consumed,
    Retired(RetireCause),
}

impl Transition {
    fn new(event: EventId, state: ParcelState) -> Transition {
        let step = match state {
            ParcelState::Held { by } => Where::Held(by),
            ParcelState::InTransit { from, to, .. } => Where::InTransit(from, to),
            ParcelState::Consumed { .. } => Where::Consumed,
            ParcelState::Retired { cause } => Where::Retired(cause),
        };
        Transition { event, step }
    }

    /// The parcel's state right after this transition.
    pub fn state(&self) -> ParcelState {
        match &self.step {
            Where::Held(by) => ParcelState::Held { by: by.clone() },
            Where::InTransit(from, to) => ParcelState::InTransit {
                from: from.clone(),
                to: to.clone(),
                dispatch: self.event,
            },
            Where::Consumed => ParcelState::Consumed { by: self.event },
            Where::Retired(cause) => ParcelState::Retired { cause: *cause },
        }
    }
}

/// A parcel and everything the ledger knows of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parcel {
    pub id: ParcelId,
    pub carats: u64,
    pub stones: u32,
    pub value_cents: Option<u64>,
    pub seal: String,
    /// Parcels consumed by the transform that made this one (empty for a registration).
    pub parents: Vec<ParcelId>,
    pub origin: Origin,
    /// Every applied change, the creation first: never empty. The last one is the parcel's
    /// state and head.
    transitions: Vec<Transition>,
    /// Void events that cite this parcel at a head, sorted by id (applied ones are transitions).
    void_events: Vec<EventId>,
    /// The last weight measured on receipt.
    pub measured_carats: Option<u64>,
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
    /// Applied receipts whose measured weight differs from the parcel's: (parcel, declared, measured).
    pub receipt_mismatches: BTreeMap<EventId, (ParcelId, u64, u64)>,
    /// Applied receipts that found the seal broken, with the parcel.
    pub broken_seals: BTreeMap<EventId, ParcelId>,
    /// Applied dispatches that name their own deadline (UNIX ms).
    pub deadlines: HashMap<EventId, u64>,
    /// Applied import confirmations, by the certificate they confirm.
    pub confirmations: BTreeMap<EventId, Vec<EventId>>,
}

/// Carat totals for the mass-balance invariant. 128 bits wide: a log of many parcels near
/// `MAX_CARATS` each cannot overflow them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MassTotals {
    pub registered: u128,
    pub transform_loss: u128,
    pub retired: u128,
}

#[derive(Debug, Default)]
struct PendingSet {
    /// Each waiting event and what it was registered as waiting for.
    events: HashMap<EventId, (VerifiedEvent, Vec<Missing>)>,
    /// For each missing dependency, the events waiting for it (every id in here is in `events`).
    waiting: HashMap<Missing, Vec<EventId>>,
    bytes: usize,
    /// Events and bytes waiting, per author (an author is removed when it has none).
    per_author: HashMap<MemberId, (usize, usize)>,
}

/// The in-memory ledger: a pure function of the set of events offered to it.
#[derive(Debug)]
pub struct Ledger {
    genesis: Genesis,
    network: NetworkId,
    gov: Governance,
    limits: Limits,
    events: HashMap<EventId, EventMeta>,
    feeds: BTreeMap<MemberId, Feed>,
    /// Boxed: a parcel record is large, and the table's spare slots and its growth copies should
    /// cost a pointer each, not a whole record.
    parcels: HashMap<ParcelId, Box<Parcel>>,
    certificates: HashMap<EventId, Certify>,
    forks: BTreeMap<(MemberId, u64), Fork>,
    /// For every stored event that holds no feed slot (a fork's second event, or an event on a
    /// void branch after it): the Merkle frontier of its own chain, itself included, so that an
    /// event extending it is checked against its own `prev` chain in any delivery order.
    branches: HashMap<EventId, Frontier>,
    /// The events that hold no feed slot, by author and seq (empty unless the author forked).
    off_slot: HashMap<MemberId, OffSlot>,
    pending: PendingSet,
    totals: MassTotals,
    notes: Notes,
    stale: bool,
}

impl Ledger {
    /// An empty ledger for the network founded by `genesis`.
    pub fn new(genesis: Genesis, limits: Limits) -> Result<Ledger, GenesisError> {
        let gov = Governance::from_genesis(&genesis)?;
        Ok(Ledger {
            network: network_id(&genesis),
            genesis,
            gov,
            limits,
            events: HashMap::new(),
            feeds: BTreeMap::new(),
            parcels: HashMap::new(),
            certificates: HashMap::new(),
            forks: BTreeMap::new(),
            branches: HashMap::new(),
            off_slot: HashMap::new(),
            pending: PendingSet::default(),
            totals: MassTotals::default(),
            notes: Notes::default(),
            stale: false,
        })
    }

    /// An empty ledger that already knows of these forks (from an earlier pass over the same events),
    /// so feeds are void from their fork on from the start.
    pub fn with_known_forks(
        genesis: Genesis,
        limits: Limits,
        forks: &[Fork],
    ) -> Result<Ledger, GenesisError> {
        let mut ledger = Ledger::new(genesis, limits)?;
        for f in forks {
            let feed = ledger.feeds.entry(f.author.clone()).or_default();
            feed.forked_at = Some(feed.forked_at.map_or(f.seq, |s| s.min(f.seq)));
        }
        Ok(ledger)
    }

    /// True once a fork was found that voids events this ledger already applied: its state is then
    /// out of date until it is rebuilt with [`Ledger::with_known_forks`] (the store and replay do this).
    pub fn needs_recompute(&self) -> bool {
        self.stale
    }

    /// Makes room for `events` more events at once (for a replay that knows its size).
    pub fn reserve(&mut self, events: usize) {
        self.events.reserve(events);
    }

    /// Changes the pending-set bounds (for events offered from now on).
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// The network id.
    pub fn network(&self) -> &NetworkId {
        &self.network
    }
    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }
    /// The governance chain.
    pub fn governance(&self) -> &Governance {
        &self.gov
    }
    /// A stored event's metadata and verdict.
    pub fn event(&self, id: &EventId) -> Option<&EventMeta> {
        self.events.get(id)
    }
    /// All stored events.
    pub fn events(&self) -> &HashMap<EventId, EventMeta> {
        &self.events
    }
    /// A feed.
    pub fn feed(&self, author: &MemberId) -> Option<&Feed> {
        self.feeds.get(author)
    }
    /// All feeds, by author.
    pub fn feeds(&self) -> &BTreeMap<MemberId, Feed> {
        &self.feeds
    }
    /// A parcel.
    pub fn parcel(&self, id: &ParcelId) -> Option<&Parcel> {
        self.parcels.get(id).map(|p| &**p)
    }
    /// All parcels, in no particular order.
    pub fn parcels(&self) -> impl ExactSizeIterator<Item = &Parcel> {
        self.parcels.values().map(|p| &**p)
    }
    /// An applied certificate.
    pub fn certificate(&self, id: &EventId) -> Option<&Certify> {
        self.certificates.get(id)
    }
    /// Applied certificates, in no particular order.
    pub fn certificates(&self) -> impl Iterator<Item = (&EventId, &Certify)> {
        self.certificates.iter()
    }
    /// The stored events of `author` that hold no feed slot (its forks' other events and their
    /// void branches), by seq and then id.
    pub fn off_slot(&self, author: &MemberId) -> impl Iterator<Item = &EventId> {
        self.off_slot
            .get(author)
            .into_iter()
            .flat_map(|a| a.by_seq.values().flatten())
    }
    /// How many stored events of `author` hold no feed slot.
    pub fn off_slot_len(&self, author: &MemberId) -> u64 {
        self.off_slot.get(author).map_or(0, |a| a.len)
    }
    /// How many forks are proven.
    pub fn fork_count(&self) -> usize {
        self.forks.len()
    }
    /// Proven forks.
    pub fn forks(&self) -> impl Iterator<Item = &Fork> {
        self.forks.values()
    }
    /// Flags, receipt notes and deadlines of applied events.
    pub fn notes(&self) -> &Notes {
        &self.notes
    }
    /// Carat totals.
    pub fn totals(&self) -> MassTotals {
        self.totals
    }
    /// Events waiting for a dependency.
    pub fn pending(&self) -> impl Iterator<Item = &VerifiedEvent> {
        self.pending.events.values().map(|(ev, _)| ev)
    }
    /// Removes a waiting event (an expired one); returns it if it was waiting.
    pub fn drop_pending(&mut self, id: &EventId) -> Option<VerifiedEvent> {
        self.pending.take(id)
    }
    /// Number of events waiting for a dependency.
    pub fn pending_len(&self) -> usize {
        self.pending.events.len()
    }
    /// True when `author`'s feed is void at `seq`.
    pub fn is_forked_at(&self, author: &MemberId, seq: u64) -> bool {
        self.feeds
            .get(author)
            .and_then(|f| f.forked_at)
            .is_some_and(|f| seq >= f)
    }
    /// What offering `ev` would give, without changing anything: its verdict if it would be
    /// stored now, or why it would not be.
    pub fn preview(&self, ev: &VerifiedEvent) -> Result<Verdict, Preview> {
        match self.locate(ev).map_err(Preview::Refused)? {
            Place::Duplicate => Err(Preview::Duplicate),
            Place::Wait(missing) => Err(Preview::Waiting(missing)),
            Place::Fork { .. } | Place::Branch { .. } => {
                Ok(Verdict::Void(VoidReason::AuthorForked))
            }
            Place::Next => {
                let gov = self
                    .gov
                    .at(ev.header().gov)
                    .ok_or(Preview::Waiting(vec![Missing::Gov(ev.header().gov)]))?;
                Ok(match rules::judge(self, gov, ev) {
                    Ok(_) => Verdict::Applied,
                    Err(reason) => Verdict::Void(reason),
                })
            }
        }
    }

    /// Offers one verified event. Returns the outcome for it, followed by the outcomes of any
    /// pending events it unblocked, in the order they were processed.
    pub fn offer(&mut self, ev: VerifiedEvent) -> Result<Vec<Processed>, PendingFull> {
        let mut out = Vec::new();
        let first = self.process(ev, false)?;
        let mut queue: VecDeque<EventId> = VecDeque::new();
        if let Ok(Step::Stored { .. }) = &first.outcome {
            queue.push_back(*first.event.id());
        }
        out.push(first);
        while let Some(done) = queue.pop_front() {
            for id in self
                .pending
                .waiting
                .remove(&Missing::Event(done))
                .unwrap_or_default()
            {
                let Some(ev) = self.pending.take(&id) else {
                    continue;
                };
                let p = self.process(ev, true)?;
                if let Ok(Step::Stored { .. }) = &p.outcome {
                    queue.push_back(*p.event.id());
                }
                out.push(p);
            }
        }
        Ok(out)
    }

    /// `woken` events were in the pending set already, so keeping them again cannot overflow it.
    fn process(&mut self, ev: VerifiedEvent, woken: bool) -> Result<Processed, PendingFull> {
        let outcome = match self.locate(&ev) {
            Err(e) => Err(e),
            Ok(Place::Duplicate) => Ok(Step::Duplicate),
            Ok(Place::Wait(missing)) => {
                let limits = if woken {
                    Limits::UNBOUNDED
                } else {
                    self.limits
                };
                self.pending.put(ev.clone(), &missing, limits)?;
                Ok(Step::Pending(missing))
            }
            Ok(Place::Next) => Ok(self.store(&ev, None)),
            Ok(Place::Fork { chain } | Place::Branch { chain }) => Ok(self.store(&ev, Some(chain))),
        };
        Ok(Processed { event: ev, outcome })
    }

    /// Where an event goes: admission checks that need the ledger (membership, key, feed links,
    /// time, governance version, feed root) and dependencies.
    fn locate(&self, ev: &VerifiedEvent) -> Result<Place, AdmissionError> {
        let h = ev.header();
        if self.events.contains_key(ev.id()) {
            return Ok(Place::Duplicate);
        }
        if h.gov > self.gov.latest() {
            // Only a member, signing with one of its keys, may wait for a governance version.
            self.check_author(self.gov.latest(), h, false)?;
            return Ok(Place::Wait(vec![Missing::Gov(h.gov)]));
        }
        self.check_author(h.gov, h, true)?;
        let prev_meta = if h.seq == 1 {
            None
        } else {
            match self.events.get(&h.prev) {
                Some(m) if m.author == h.author && m.seq == h.seq - 1 => Some(m),
                Some(_) => return Err(AdmissionError::BrokenPrev),
                None => return Ok(Place::Wait(vec![Missing::Event(h.prev)])),
            }
        };
        if let Some(p) = prev_meta {
            if h.time_ms < p.time_ms {
                return Err(AdmissionError::TimeBackwards);
            }
            if h.gov < p.gov {
                return Err(AdmissionError::GovBackwards);
            }
        }
        let place = self.place_in_feed(h)?;
        let missing: Vec<Missing> = ev
            .body()
            .dependencies()
            .into_iter()
            .filter(|d| !self.events.contains_key(d))
            .map(Missing::Event)
            .collect();
        if !missing.is_empty() {
            return Ok(Place::Wait(missing));
        }
        Ok(place)
    }

    /// The author must be a member at governance version `gov`, signing with the key assigned to
    /// it for this seq (`exact`), or with any of its keys (for an event citing a later version).
    fn check_author(
        &self,
        gov: u64,
        h: &crate::event::Header,
        exact: bool,
    ) -> Result<(), AdmissionError> {
        let gov = self.gov.at(gov).ok_or(AdmissionError::GovBackwards)?;
        let member = gov
            .members
            .get(&h.author)
            .ok_or_else(|| AdmissionError::NotAMember(h.author.to_string()))?;
        let ok = if exact {
            member.key_for_seq(h.seq) == Some(&h.key)
        } else {
            member.keys.iter().any(|g| g.key == h.key)
        };
        if ok {
            Ok(())
        } else {
            Err(AdmissionError::WrongKey)
        }
    }

    /// Where an event whose `prev` is stored goes in its author's feed, after checking its
    /// `feed_root` against its own `prev` chain (the slots, or the void branch it extends).
    fn place_in_feed(&self, h: &crate::event::Header) -> Result<Place, AdmissionError> {
        let empty = Feed::default();
        let feed = self.feeds.get(&h.author).unwrap_or(&empty);
        let len = feed.ids.len() as u64;
        let on_main_branch = h.seq == 1 || feed.ids.get((h.seq - 2) as usize) == Some(&h.prev);
        if !on_main_branch {
            // prev is a stored event of this author at seq - 1 that holds no slot: it is on a void
            // branch after a proven fork, and so is this event.
            let chain = self
                .branches
                .get(&h.prev)
                .ok_or(AdmissionError::BrokenPrev)?;
            if h.feed_root != chain.root() {
                return Err(AdmissionError::BadFeedRoot);
            }
            return Ok(Place::Branch {
                chain: chain.clone(),
            });
        }
        if h.seq - 1 == len {
            if h.feed_root != feed.frontier.root() {
                return Err(AdmissionError::BadFeedRoot);
            }
            return Ok(Place::Next);
        }
        // A second event at a held slot: its chain is the slots before it.
        let mut chain = Frontier::default();
        for id in &feed.ids[..(h.seq - 1) as usize] {
            chain.push(merkle::feed_leaf(id));
        }
        if h.feed_root != chain.root() {
            return Err(AdmissionError::BadFeedRoot);
        }
        Ok(Place::Fork { chain })
    }

    /// Stores an admitted event: judges it, applies its effect and records it in its feed (or,
    /// for an event that holds no slot, records the chain it extends, `off_slot`).
    fn store(&mut self, ev: &VerifiedEvent, off_slot: Option<Frontier>) -> Step {
        let h = ev.header();
        let holds_slot = off_slot.is_none();
        // Before judging: an event that proves a fork is itself void.
        let (fork, recompute) = self.note_equivocation(ev, holds_slot);
        let verdict = if !holds_slot {
            Err(VoidReason::AuthorForked)
        } else {
            match self.gov.at(h.gov) {
                Some(gov) => rules::judge(self, gov, ev),
                None => Err(VoidReason::UnknownMember),
            }
        };
        let verdict = match verdict {
            Ok(effect) => {
                self.apply(ev, effect);
                Verdict::Applied
            }
            Err(reason) => Verdict::Void(reason),
        };
        if let Verdict::Void(_) = verdict {
            for p in &ev.body().parcel_refs() {
                if let Some(parcel) = self.parcels.get_mut(&p.parcel) {
                    // Kept sorted by id so the state does not depend on delivery order.
                    if let Err(at) = parcel.void_events.binary_search(ev.id()) {
                        parcel.void_events.insert(at, *ev.id());
                    }
                }
            }
        }
        match off_slot {
            None => {
                let feed = self.feeds.entry(h.author.clone()).or_default();
                feed.ids.push(*ev.id());
                feed.frontier.push(merkle::feed_leaf(ev.id()));
            }
            Some(mut chain) => {
                chain.push(merkle::feed_leaf(ev.id()));
                self.branches.insert(*ev.id(), chain);
            }
        }
        let author = self.intern(h.gov, &h.author);
        self.events.insert(
            *ev.id(),
            EventMeta {
                author,
                seq: h.seq,
                kind: ev.body().kind(),
                time_ms: h.time_ms,
                gov: h.gov,
                verdict,
            },
        );
        Step::Stored {
            verdict,
            fork,
            recompute,
        }
    }

    /// Records `ev` among the events at its (author, seq). Two or more different events there are
    /// a fork, wherever they are (slots or void branches): the fork record names the two smallest
    /// ids, so it does not depend on arrival order, and the feed is void from the lowest forked
    /// seq. Returns the fork if `ev` proved or changed one, and whether events already applied
    /// became void (the state must then be recomputed).
    fn note_equivocation(&mut self, ev: &VerifiedEvent, holds_slot: bool) -> (Option<Fork>, bool) {
        let h = ev.header();
        // The two smallest ids among the others at this seq are all a fork record needs, so an
        // author piling events on one seq costs a logarithmic step each, not a copy of the pile.
        let (mut others, mut smallest) =
            self.off_slot.get(&h.author).map_or((0, Vec::new()), |a| {
                a.at(h.seq).map_or((0, Vec::new()), |set| {
                    (set.len(), set.iter().take(2).copied().collect())
                })
            });
        if !holds_slot {
            let holder = self
                .feeds
                .get(&h.author)
                .and_then(|f| f.ids.get((h.seq - 1) as usize));
            others += usize::from(holder.is_some());
            smallest.extend(holder);
            self.off_slot
                .entry(h.author.clone())
                .or_default()
                .insert(h.seq, *ev.id());
        }
        if others == 0 {
            return (None, false);
        }
        smallest.push(*ev.id());
        smallest.sort_unstable();
        let fork = Fork {
            author: h.author.clone(),
            seq: h.seq,
            first: smallest[0],
            second: smallest[1],
        };
        let feed = self.feeds.entry(h.author.clone()).or_default();
        let recompute = feed.forked_at.is_none_or(|f| h.seq < f);
        if recompute {
            feed.forked_at = Some(h.seq);
            self.stale = true;
        }
        let known = self.forks.insert((h.author.clone(), h.seq), fork.clone());
        let changed = known.as_ref() != Some(&fork);
        (changed.then_some(fork), recompute)
    }

    fn apply(&mut self, ev: &VerifiedEvent, effect: Effect) {
        let id = *ev.id();
        let author = self.intern(ev.header().gov, &ev.header().author);
        match ev.body() {
            Body::Flag(f) => {
                self.notes.flags.insert(id, f.clone());
            }
            Body::Receive(r) => {
                let declared = self.parcels.get(&r.parcel.parcel).map_or(0, |p| p.carats);
                if r.measured_carats != declared {
                    self.notes
                        .receipt_mismatches
                        .insert(id, (r.parcel.parcel, declared, r.measured_carats));
                }
                if !r.seal_intact {
                    self.notes.broken_seals.insert(id, r.parcel.parcel);
                }
            }
            Body::Dispatch(d) => {
                if let Some(deadline) = d.deadline_ms {
                    self.notes.deadlines.insert(id, deadline);
                }
            }
            Body::ConfirmImport(c) => {
                let confirmed = self.notes.confirmations.entry(c.certificate).or_default();
                if let Err(at) = confirmed.binary_search(&id) {
                    confirmed.insert(at, id);
                }
            }
            _ => {}
        }
        match effect {
            Effect::Record => {}
            Effect::Certificate => {
                if let Body::Certify(c) = ev.body() {
                    let gov = ev.header().gov;
                    let mut c = c.clone();
                    c.exporter = self.intern(gov, &c.exporter);
                    c.importer = self.intern(gov, &c.importer);
                    self.certificates.insert(id, c);
                }
            }
            Effect::Create(created) => {
                self.totals.registered +=
                    created.iter().map(|c| u128::from(c.carats)).sum::<u128>();
                for c in created {
                    self.create(id, &author, c);
                }
            }
            Effect::Transform {
                consumed,
                created,
                loss,
            } => {
                self.totals.transform_loss += u128::from(loss);
                for p in &consumed {
                    self.move_parcel(p, id, ParcelState::Consumed { by: id }, None);
                }
                for c in created {
                    self.create(id, &author, c);
                }
            }
            Effect::Move {
                parcel,
                state,
                measured_carats,
            } => {
                if let ParcelState::Retired { .. } = state {
                    self.totals.retired += self
                        .parcels
                        .get(&parcel)
                        .map_or(0, |p| u128::from(p.carats));
                }
                // Kept for the parcel's life: share the governance state's copies of member ids
                // instead of the ones decoded with this event.
                let gov = ev.header().gov;
                let state = match state {
                    ParcelState::Held { by } => ParcelState::Held {
                        by: self.intern(gov, &by),
                    },
                    ParcelState::InTransit { from, to, dispatch } => ParcelState::InTransit {
                        from: self.intern(gov, &from),
                        to: self.intern(gov, &to),
                        dispatch,
                    },
                    other => other,
                };
                self.move_parcel(&parcel, id, state, measured_carats);
            }
        }
    }

    /// The governance state's own copy of a member id: one allocation per member, not per event.
    fn intern(&self, gov: u64, id: &MemberId) -> MemberId {
        self.gov
            .at(gov)
            .and_then(|g| g.members.get_key_value(id))
            .map_or_else(|| id.clone(), |(k, _)| k.clone())
    }

    fn create(&mut self, event: EventId, author: &MemberId, c: Creation) {
        let state = ParcelState::Held { by: author.clone() };
        let parcel = Parcel {
            id: c.id,
            carats: c.carats,
            stones: c.stones,
            value_cents: c.value_cents,
            seal: c.seal,
            parents: c.parents,
            origin: c.origin,
            transitions: vec![Transition::new(event, state)],
            void_events: Vec::new(),
            measured_carats: None,
        };
        self.parcels.insert(c.id, Box::new(parcel));
    }

    fn move_parcel(
        &mut self,
        parcel: &ParcelId,
        event: EventId,
        state: ParcelState,
        measured: Option<u64>,
    ) {
        if let Some(p) = self.parcels.get_mut(parcel) {
            p.transitions.push(Transition::new(event, state));
            if measured.is_some() {
                p.measured_carats = measured;
            }
        }
    }

    /// A digest of the whole state: every event's metadata and verdict, every parcel, certificate
    /// and fork, each feed up to its fork, and the carat totals. Two ledgers with equal state roots
    /// hold the same state; this is what replays compare.
    pub fn state_root(&self) -> Digest {
        // The two largest parts are hashed on two threads; the root is the hash of the parts.
        let (events_root, parcels_root) = std::thread::scope(|scope| {
            let events = scope.spawn(|| {
                let mut h = Sha256::new();
                let mut buf = Vec::with_capacity(256);
                // Ids only (a pointer each), sorted; each one's metadata looked up in turn.
                let mut ids: Vec<&EventId> = self.events.keys().collect();
                ids.sort_unstable();
                for id in ids {
                    h.update(id.as_bytes());
                    if let Some(meta) = self.events.get(id) {
                        codec::encode_into(meta, &mut buf);
                        h.update(&buf);
                    }
                }
                h.finalize()
            });
            let mut h = Sha256::new();
            let mut buf = Vec::with_capacity(1024);
            let mut parcels: Vec<&Parcel> = self.parcels().collect();
            parcels.sort_unstable_by_key(|p| p.id);
            for p in parcels {
                codec::encode_into(p, &mut buf);
                h.update(&buf);
            }
            let parcels = h.finalize();
            match events.join() {
                Ok(events) => (events, parcels),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        });
        let mut h = Sha256::new();
        h.update(events_root);
        h.update(parcels_root);
        let mut buf = Vec::with_capacity(256);
        let mut certs: Vec<&EventId> = self.certificates.keys().collect();
        certs.sort_unstable();
        for c in certs {
            h.update(c.as_bytes());
        }
        for (author, feed) in &self.feeds {
            h.update(author.as_str().as_bytes());
            // Beyond a fork, which branch holds the slots depends on arrival; all of it is void.
            let upto = feed
                .forked_at
                .map_or(feed.ids.len(), |f| feed.ids.len().min((f - 1) as usize));
            h.update((upto as u64).to_le_bytes());
            for id in &feed.ids[..upto] {
                h.update(id.as_bytes());
            }
            codec::encode_into(&feed.forked_at, &mut buf);
            h.update(&buf);
        }
        for fork in self.forks.values() {
            codec::encode_into(fork, &mut buf);
            h.update(&buf);
        }
        codec::encode_into(&self.totals, &mut buf);
        h.update(&buf);
        Digest(h.finalize().into())
    }

    /// Every event id waiting in the pending set and what it waits for, for reports.
    pub fn pending_report(&self) -> Vec<(EventId, Vec<Missing>)> {
        let mut out: Vec<(EventId, Vec<Missing>)> = self
            .pending
            .events
            .iter()
            .map(|(id, (_, missing))| (*id, missing.clone()))
            .collect();
        out.sort_by_key(|(id, _)| *id);
        out
    }
}

/// One author's events that hold no feed slot, by seq and id, and how many there are.
#[derive(Debug, Default)]
struct OffSlot {
    by_seq: BTreeMap<u64, std::collections::BTreeSet<EventId>>,
    len: u64,
}

impl OffSlot {
    fn at(&self, seq: u64) -> Option<&std::collections::BTreeSet<EventId>> {
        self.by_seq.get(&seq)
    }

    fn insert(&mut self, seq: u64, id: EventId) {
        if self.by_seq.entry(seq).or_default().insert(id) {
            self.len += 1;
        }
    }
}

enum Place {
    Duplicate,
    Wait(Vec<Missing>),
    Next,
    /// A second event at a held slot; `chain` is the frontier of the slots before it.
    Fork {
        chain: Frontier,
    },
    /// An event extending a void branch; `chain` is the frontier of the branch up to its prev.
    Branch {
        chain: Frontier,
    },
}

impl PendingSet {
    /// Keeps `ev` until `missing` arrives. An event already waiting keeps its registration.
    fn put(
        &mut self,
        ev: VerifiedEvent,
        missing: &[Missing],
        limits: Limits,
    ) -> Result<(), PendingFull> {
        let id = *ev.id();
        if self.events.contains_key(&id) {
            return Ok(());
        }
        let size = ev.bytes().len();
        let (mine, my_bytes) = self
            .per_author
            .get(&ev.header().author)
            .copied()
            .unwrap_or((0, 0));
        let author_quota = mine >= limits.max_pending_per_author
            || my_bytes + size > limits.max_pending_bytes_per_author;
        if author_quota
            || self.events.len() >= limits.max_pending_events
            || self.bytes + size > limits.max_pending_bytes
        {
            return Err(PendingFull {
                events: self.events.len(),
                bytes: self.bytes,
                author_quota,
            });
        }
        self.bytes += size;
        let entry = self
            .per_author
            .entry(ev.header().author.clone())
            .or_default();
        entry.0 += 1;
        entry.1 += size;
        for m in missing {
            self.waiting.entry(*m).or_default().push(id);
        }
        self.events.insert(id, (ev, missing.to_vec()));
        Ok(())
    }

    /// Removes a waiting event and every registration of it, so nothing stale is left behind.
    fn take(&mut self, id: &EventId) -> Option<VerifiedEvent> {
        let (ev, missing) = self.events.remove(id)?;
        let size = ev.bytes().len();
        self.bytes -= size;
        let author = &ev.header().author;
        if let Some(entry) = self.per_author.get_mut(author) {
            entry.0 -= 1;
            entry.1 -= size;
            if entry.0 == 0 {
                self.per_author.remove(author);
            }
        }
        for m in missing {
            if let Some(list) = self.waiting.get_mut(&m) {
                list.retain(|w| w != id);
                if list.is_empty() {
                    self.waiting.remove(&m);
                }
            }
        }
        Some(ev)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::verify_event;
    use crate::crypto::KeyCache;
    use crate::dev::DevNetwork;
    use crate::event::{Flag, FlagCode, FlagTarget};

    fn flag() -> Body {
        Body::Flag(Flag {
            target: FlagTarget::Member("mine-bw".parse().expect("slug")),
            code: FlagCode::Other,
            text: String::new(),
        })
    }

    #[test]
    fn governance_version_going_backwards_is_refused() {
        let dev = DevNetwork::standard();
        let mut ledger = Ledger::new(dev.genesis(), Limits::default()).expect("genesis");
        ledger.gov.push_copy_for_tests();
        let w = dev.writer("monitor").expect("member");
        let keys = KeyCache::default();
        let mut h1 = w.next_header(1_000);
        h1.gov = 1;
        let e1 = w.sign_raw(h1, flag());
        let out = ledger
            .offer(verify_event(&e1.bytes, &dev.network(), &keys).expect("valid"))
            .expect("room");
        assert!(
            matches!(
                out[0].outcome,
                Ok(Step::Stored {
                    verdict: Verdict::Applied,
                    ..
                })
            ),
            "{:?}",
            out[0].outcome
        );
        let mut w = crate::writer::FeedWriter::resume(
            dev.network(),
            "monitor".parse().expect("slug"),
            crate::dev::dev_key("monitor"),
            &[e1.id],
            1,
            1_000,
        );
        let mut h2 = w.next_header(2_000);
        h2.gov = 0;
        let e2 = w.sign_raw(h2, flag());
        let out = ledger
            .offer(verify_event(&e2.bytes, &dev.network(), &keys).expect("valid"))
            .expect("room");
        assert_eq!(out[0].outcome, Err(AdmissionError::GovBackwards));
        // The same event under version 1 is fine.
        let e3 = w.append(flag(), 2_000);
        let out = ledger
            .offer(verify_event(&e3.bytes, &dev.network(), &keys).expect("valid"))
            .expect("room");
        assert!(matches!(out[0].outcome, Ok(Step::Stored { .. })));
    }

    #[test]
    fn an_event_leaving_the_pending_set_leaves_no_registration_behind() {
        use crate::event::{Dispatch, ParcelRef, Register};
        let dev = DevNetwork::standard();
        let keys = KeyCache::default();
        let verify = |b: &[u8]| verify_event(b, &dev.network(), &keys).expect("valid");
        let mut ledger = Ledger::new(dev.genesis(), Limits::default()).expect("genesis");
        let mut mine = dev.writer("mine-bw").expect("member");
        let register = Body::Register(Register {
            site: "jwaneng".parse().expect("slug"),
            carats: 5,
            stones: 1,
            value_cents: None,
            seal: String::new(),
            extracted_on: crate::types::Date(1),
        });
        let e1 = mine.append(register, 10_000);
        // seq 2 claims an earlier time than seq 1 and cites a head no one will ever send.
        let mut h = mine.next_header(0);
        h.time_ms = 5_000;
        let never = Digest([9; 32]);
        let dispatch = Body::Dispatch(Dispatch {
            parcel: ParcelRef {
                parcel: never,
                head: never,
            },
            to: "sorter-bw".parse().expect("slug"),
            certificate: None,
            seal: String::new(),
            deadline_ms: None,
        });
        let e2 = mine.sign_raw(h, dispatch);
        let out = ledger.offer(verify(&e2.bytes)).expect("room");
        assert!(
            matches!(&out[0].outcome, Ok(Step::Pending(m)) if m.len() == 1),
            "{:?}",
            out[0].outcome
        );
        // Its prev arrives; it is then refused for its time, and must vanish from every list.
        let out = ledger.offer(verify(&e1.bytes)).expect("room");
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].outcome, Err(AdmissionError::TimeBackwards));
        assert_eq!(ledger.pending_len(), 0);
        assert!(
            ledger.pending.waiting.is_empty(),
            "{:?}",
            ledger.pending.waiting
        );
    }
}
