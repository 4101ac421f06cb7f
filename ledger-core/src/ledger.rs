//! The ledger: the state machine fed one verified event at a time; it places each event, judges
//! it against the state it cites, and keeps what waits in the pending set.

use std::collections::{BTreeMap, HashMap, VecDeque};

use crate::admission::{AdmissionError, VerifiedEvent};
use crate::bytes::{Digest, EventId, NetworkId, ParcelId};
use crate::effects::Slot;
use crate::event::{Body, Certify};
use crate::governance::{network_id, Change, GenesisError, Governance};
use crate::pending::PendingSet;
pub use crate::placement::ProvenSlots;
use crate::placement::{locate, locate_proven, Place};
use crate::proposals::Proposals;
use crate::rules::{self, Verdict, VoidReason};
use crate::state::State;
use crate::types::{Genesis, MemberId};
use crate::view::CitedView;

pub use crate::pending::{
    Limits, Missing, PendingFull, MAX_PENDING_BYTES, MAX_PENDING_BYTES_PER_AUTHOR,
    MAX_PENDING_EVENTS, MAX_PENDING_PER_AUTHOR,
};
pub use crate::state::{EventMeta, Feed, Fork, MassTotals, Notes, Parcel, Transition};

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

/// What a pass over a set of events found, for the next pass over the same set to know from
/// the start: forks and the governance chain.
#[derive(Debug, Clone, Default)]
pub struct Knowledge {
    pub forks: Vec<Fork>,
    pub governance: Option<Governance>,
}

impl Knowledge {
    /// What the next pass should know after a pass that started knowing `self` and ended with
    /// `ledger`. Forks found while the governance chain was still changing may rest on key
    /// cuts not known yet (a thief's event and its owner's at one seq), so when the chain
    /// changed they are found again in the next pass, which knows the chain from the start.
    pub fn after(&self, ledger: &Ledger) -> Knowledge {
        let now = ledger.governance();
        let before: Vec<Digest> = match &self.governance {
            Some(g) => g.versions().iter().map(|v| v.id).collect(),
            None => vec![*ledger.network()],
        };
        let same = before.iter().eq(now.versions().iter().map(|v| &v.id));
        Knowledge {
            forks: if same {
                ledger.forks().cloned().collect()
            } else {
                Vec::new()
            },
            governance: Some(now.clone()),
        }
    }
}

/// The in-memory ledger: a pure function of the set of events offered to it.
#[derive(Debug)]
pub struct Ledger {
    genesis: Genesis,
    network: NetworkId,
    gov: Governance,
    limits: Limits,
    state: State,
    proposals: Proposals,
    pending: PendingSet,
    stale: bool,
    /// Replay mode: a member's event signed with a key no record has granted yet may wait.
    any_key: bool,
    /// A proof bundle's ledger: events are placed by their proofs, not by their feed's prefix.
    proven: Option<ProvenSlots>,
}

impl Ledger {
    /// An empty ledger for the network founded by `genesis`.
    pub fn new(genesis: Genesis, limits: Limits) -> Result<Ledger, GenesisError> {
        let gov = Governance::from_genesis(&genesis)?;
        Ok(Ledger::assemble(genesis, limits, gov))
    }

    /// An empty ledger under `gov`, a chain made from `genesis` (so the genesis was checked).
    fn assemble(genesis: Genesis, limits: Limits, gov: Governance) -> Ledger {
        Ledger {
            network: network_id(&genesis),
            genesis,
            gov,
            limits,
            state: State::default(),
            proposals: Proposals::default(),
            pending: PendingSet::default(),
            stale: false,
            any_key: false,
            proven: None,
        }
    }

    /// An empty ledger that already knows of these forks (from an earlier pass over the same events),
    /// so feeds are void from their fork on from the start.
    pub fn with_known_forks(
        genesis: Genesis,
        limits: Limits,
        forks: &[Fork],
    ) -> Result<Ledger, GenesisError> {
        Ledger::with_knowledge(genesis, limits, forks, None)
    }

    /// An empty ledger that already knows what an earlier pass over the same events found: forks
    /// (feeds are void from them on from the start) and the governance chain (key cuts,
    /// suspensions and embargoes bind from the start). Taking in the same records again changes
    /// nothing, so a second pass agrees with the first on governance.
    pub fn with_knowledge(
        genesis: Genesis,
        limits: Limits,
        forks: &[Fork],
        governance: Option<&Governance>,
    ) -> Result<Ledger, GenesisError> {
        // A chain known already was made from this genesis, which was checked then.
        let gov = match governance {
            Some(g) if g.versions().first().map(|v| v.id) == Some(network_id(&genesis)) => {
                g.clone()
            }
            _ => Governance::from_genesis(&genesis)?,
        };
        let mut ledger = Ledger::assemble(genesis, limits, gov);
        for f in forks {
            let feed = ledger.state.feeds.entry(f.author.clone()).or_default();
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
        self.state.events.reserve(events);
    }

    /// Replay mode: an event of a member signed with a key that no known record grants yet, and
    /// citing a governance version not known yet, waits for it instead of being refused (a
    /// replay takes a set in any order; a node refuses it, and sync brings it again later).
    pub fn set_replay_mode(&mut self) {
        self.any_key = true;
    }

    /// Proof-bundle mode: events are placed in the slots their inclusion proofs proved, without
    /// their feeds' prefixes; any other event offered is evidence and holds no slot (implies
    /// replay mode).
    pub fn set_proven_slots(&mut self, slots: ProvenSlots) {
        self.any_key = true;
        self.proven = Some(slots);
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
    /// Governance proposals, endorsements gathered and objections, as the log holds them.
    pub fn proposals(&self) -> &Proposals {
        &self.proposals
    }
    /// The stored state (events, feeds, parcels, certificates, forks).
    pub fn state(&self) -> &State {
        &self.state
    }
    /// A stored event's metadata and verdict.
    pub fn event(&self, id: &EventId) -> Option<&EventMeta> {
        self.state.events.get(id)
    }
    /// All stored events.
    pub fn events(&self) -> &HashMap<EventId, EventMeta> {
        &self.state.events
    }
    /// A feed.
    pub fn feed(&self, author: &MemberId) -> Option<&Feed> {
        self.state.feeds.get(author)
    }
    /// All feeds, by author.
    pub fn feeds(&self) -> &BTreeMap<MemberId, Feed> {
        &self.state.feeds
    }
    /// A parcel.
    pub fn parcel(&self, id: &ParcelId) -> Option<&Parcel> {
        self.state.parcel(id)
    }
    /// All parcels, in no particular order.
    pub fn parcels(&self) -> impl ExactSizeIterator<Item = &Parcel> {
        self.state.parcels.values().map(|p| &**p)
    }
    /// An applied certificate.
    pub fn certificate(&self, id: &EventId) -> Option<&Certify> {
        self.state.certificates.get(id)
    }
    /// Applied certificates, in no particular order.
    pub fn certificates(&self) -> impl Iterator<Item = (&EventId, &Certify)> {
        self.state.certificates.iter()
    }
    /// The stored events of `author` that hold no feed slot (its forks' other events and their
    /// void branches, by seq and then id; then the events signed with a revoked key, likewise).
    pub fn off_slot(&self, author: &MemberId) -> impl Iterator<Item = &EventId> {
        let forked = self.state.off_slot.get(author);
        let revoked = self.state.revoked.get(author);
        forked
            .into_iter()
            .chain(revoked)
            .flat_map(|a| a.by_seq.values().flatten())
    }
    /// How many stored events of `author` hold no feed slot.
    pub fn off_slot_len(&self, author: &MemberId) -> u64 {
        let forked = self.state.off_slot.get(author).map_or(0, |a| a.len);
        forked + self.state.revoked.get(author).map_or(0, |a| a.len)
    }
    /// How many forks are proven.
    pub fn fork_count(&self) -> usize {
        self.state.forks.len()
    }
    /// Proven forks.
    pub fn forks(&self) -> impl Iterator<Item = &Fork> {
        self.state.forks.values()
    }
    /// Flags, receipt notes and deadlines of applied events.
    pub fn notes(&self) -> &Notes {
        &self.state.notes
    }
    /// Carat totals.
    pub fn totals(&self) -> MassTotals {
        self.state.totals
    }
    /// A digest of the whole state (see [`State::state_root`]).
    pub fn state_root(&self) -> Digest {
        self.state.state_root()
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
        self.state.is_forked_at(author, seq)
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

    /// What offering `ev` would give, without changing anything: its verdict if it would be
    /// stored now, or why it would not be.
    pub fn preview(&self, ev: &VerifiedEvent) -> Result<Verdict, Preview> {
        match locate(&self.state, &self.gov, &self.proposals, self.any_key, ev)
            .map_err(Preview::Refused)?
        {
            Place::Duplicate => Err(Preview::Duplicate),
            Place::Wait(missing) => Err(Preview::Waiting(missing)),
            Place::Fork { .. } | Place::Branch { .. } => {
                Ok(Verdict::Void(VoidReason::AuthorForked))
            }
            Place::Revoked { .. } => Ok(Verdict::Void(VoidReason::RevokedKey)),
            Place::Next | Place::Proven => {
                // A governance record is taken into the chain before its event is judged, as
                // storing it would: judge against a copy of the chain that holds it.
                let with_record;
                let chain = match ev.body() {
                    Body::Govern(g) => {
                        let mut copy = self.gov.clone();
                        copy.offer(*ev.id(), ev.header().gov, g, |_| false);
                        with_record = copy;
                        &with_record
                    }
                    _ => &self.gov,
                };
                let Some(view) = CitedView::new(&self.state, chain, ev.header().gov) else {
                    // Placed although its version is missing: a governance fork voided it.
                    return Ok(Verdict::Void(VoidReason::GovForked));
                };
                Ok(match rules::judge(&view, ev) {
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
        let mut queue: VecDeque<Missing> = VecDeque::new();
        let first = self.process(ev, false, &mut queue)?;
        out.push(first);
        while let Some(done) = queue.pop_front() {
            for id in self.pending.waiting.remove(&done).unwrap_or_default() {
                let Some(ev) = self.pending.take(&id) else {
                    continue;
                };
                out.push(self.process(ev, true, &mut queue)?);
            }
        }
        Ok(out)
    }

    /// Queues what a stored event can wake: events waiting for it and, when it advanced the
    /// governance chain, events waiting for a version the chain now has.
    fn wake(&self, ev: &VerifiedEvent, advanced: bool, queue: &mut VecDeque<Missing>) {
        queue.push_back(Missing::Event(*ev.id()));
        if advanced {
            let latest = self.gov.latest();
            let mut versions: Vec<Missing> = self
                .pending
                .waiting
                .keys()
                .filter(|m| matches!(m, Missing::Gov(v) if *v <= latest))
                .copied()
                .collect();
            versions.sort_by_key(|m| match m {
                Missing::Gov(v) => *v,
                Missing::Event(_) => 0,
            });
            queue.extend(versions);
        }
    }

    /// `woken` events were in the pending set already, so keeping them again cannot overflow it.
    fn process(
        &mut self,
        ev: VerifiedEvent,
        woken: bool,
        queue: &mut VecDeque<Missing>,
    ) -> Result<Processed, PendingFull> {
        let located = match &self.proven {
            Some(slots) => locate_proven(&self.state, &self.gov, &self.proposals, slots, &ev),
            None => locate(&self.state, &self.gov, &self.proposals, self.any_key, &ev),
        };
        let slot = match located {
            Err(e) => {
                return Ok(Processed {
                    event: ev,
                    outcome: Err(e),
                })
            }
            Ok(Place::Duplicate) => {
                return Ok(Processed {
                    event: ev,
                    outcome: Ok(Step::Duplicate),
                })
            }
            Ok(Place::Wait(missing)) => {
                let limits = if woken {
                    Limits::UNBOUNDED
                } else {
                    self.limits
                };
                self.pending.put(ev.clone(), &missing, limits)?;
                return Ok(Processed {
                    event: ev,
                    outcome: Ok(Step::Pending(missing)),
                });
            }
            Ok(Place::Next) => Slot::Holds,
            Ok(Place::Proven) => Slot::Proven,
            Ok(Place::Fork { chain } | Place::Branch { chain }) => Slot::Forked(chain),
            Ok(Place::Revoked { chain }) => Slot::Revoked(chain),
        };
        let step = self.store(&ev, slot, queue);
        Ok(Processed {
            event: ev,
            outcome: Ok(step),
        })
    }

    /// Stores an admitted event in the state. A governance record it carries is taken in
    /// first, whatever the event's own verdict (a record's force comes from its endorsements).
    /// A fork or governance change that reaches events already stored marks the ledger as
    /// needing a recompute.
    fn store(&mut self, ev: &VerifiedEvent, slot: Slot, queue: &mut VecDeque<Missing>) -> Step {
        let change = match ev.body() {
            Body::Govern(g) => {
                let state = &self.state;
                self.gov
                    .offer(*ev.id(), ev.header().gov, g, |a| state.reaches_back(a))
            }
            _ => Change::default(),
        };
        self.proposals
            .note(&self.network, *ev.id(), &ev.header().author, ev.body());
        let stored = self.state.store(&self.gov, ev, slot);
        let recompute = stored.recompute || change.retroactive;
        self.stale |= recompute;
        self.wake(ev, change.advanced, queue);
        Step::Stored {
            verdict: stored.verdict,
            fork: stored.fork,
            recompute,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admission::verify_event;
    use crate::crypto::KeyCache;
    use crate::dev::DevNetwork;
    use crate::event::{Body, Flag, FlagCode, FlagTarget};

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
