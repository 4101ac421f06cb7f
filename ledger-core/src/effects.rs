//! Effects: storing a judged event in the state (feed slot or branch, fork evidence, verdict) and
//! applying what an applied event changes (parcels, certificates, notes, totals).

use crate::admission::VerifiedEvent;
use crate::bytes::{EventId, ParcelId};
use crate::event::{Body, Flag, FlagTarget};
use crate::governance::Governance;
use crate::merkle::{self, Frontier};
use crate::rules::{self, Creation, Effect};
use crate::state::{EventMeta, Fork, Parcel, State, Transition};
use crate::types::MemberId;
use crate::verdict::{ParcelState, Verdict, VoidReason};
use crate::view::CitedView;

/// What storing one event did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) verdict: Verdict,
    /// Set when this event proved a fork (or changed the two events a fork record names).
    pub(crate) fork: Option<Fork>,
    /// Set when that fork voids events that were already applied.
    pub(crate) recompute: bool,
}

/// Where a stored event goes in its author's feed.
#[derive(Debug, Clone)]
pub(crate) enum Slot {
    /// The next slot.
    Holds,
    /// No slot: a fork's other event or a void branch after it; the frontier of its own chain.
    Forked(Frontier),
    /// No slot: signed with a key revoked for its seq; the frontier of its own chain.
    Revoked(Frontier),
    /// Its slot, proven by an inclusion proof in a checkpointed feed (a proof bundle's ledger).
    Proven,
}

impl State {
    /// Stores an admitted event: judges it, applies its effect and records it in its feed (or,
    /// for an event that holds no slot, records the chain it extends, `off_slot`).
    pub(crate) fn store(&mut self, gov: &Governance, ev: &VerifiedEvent, slot: Slot) -> Stored {
        let h = ev.header();
        // Before judging: an event that proves a fork is itself void. Events signed with a
        // revoked key are evidence only: they prove no fork.
        let (fork, recompute) = match &slot {
            Slot::Revoked(_) => (None, false),
            Slot::Holds | Slot::Proven => self.note_equivocation(ev, true),
            Slot::Forked(_) => self.note_equivocation(ev, false),
        };
        let verdict = match &slot {
            Slot::Forked(_) => Err(VoidReason::AuthorForked),
            Slot::Revoked(_) => Err(VoidReason::RevokedKey),
            Slot::Holds | Slot::Proven => match CitedView::new(self, gov, h.gov) {
                Some(view) => rules::judge(&view, ev),
                // Only placed when a governance fork voided the version it cites.
                None => Err(VoidReason::GovForked),
            },
        };
        let verdict = match verdict {
            Ok(effect) => {
                self.apply(gov, ev, effect);
                Verdict::Applied
            }
            Err(reason) => Verdict::Void(reason),
        };
        if let Verdict::Void(_) = verdict {
            self.note_void(ev);
        }
        self.note_flag_target(ev);
        match slot {
            Slot::Holds => {
                let feed = self.feeds.entry(h.author.clone()).or_default();
                feed.hold(*ev.id());
            }
            Slot::Proven => {
                let feed = self.feeds.entry(h.author.clone()).or_default();
                feed.proven.insert(h.seq, *ev.id());
            }
            Slot::Forked(mut chain) => {
                chain.push(merkle::feed_leaf(ev.id()));
                self.branches.insert(*ev.id(), chain);
            }
            Slot::Revoked(mut chain) => {
                chain.push(merkle::feed_leaf(ev.id()));
                self.branches.insert(*ev.id(), chain);
                self.revoked
                    .entry(h.author.clone())
                    .or_default()
                    .insert(h.seq, *ev.id());
            }
        }
        let author = intern(gov, h.gov, &h.author);
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
        Stored {
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
    pub(crate) fn note_equivocation(
        &mut self,
        ev: &VerifiedEvent,
        holds_slot: bool,
    ) -> (Option<Fork>, bool) {
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
            let holder = self.feeds.get(&h.author).and_then(|f| f.slot(h.seq));
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
        }
        let known = self.forks.insert((h.author.clone(), h.seq), fork.clone());
        let changed = known.as_ref() != Some(&fork);
        (changed.then_some(fork), recompute)
    }

    fn apply(&mut self, gov: &Governance, ev: &VerifiedEvent, effect: Effect) {
        let id = *ev.id();
        let author = intern(gov, ev.header().gov, &ev.header().author);
        self.note(ev);
        match effect {
            Effect::Record => {}
            Effect::Certificate => {
                if let Some(c) = ev.body().certificate() {
                    let at = ev.header().gov;
                    let mut c = c.clone();
                    c.exporter = intern(gov, at, &c.exporter);
                    c.importer = intern(gov, at, &c.importer);
                    self.certificate_numbers
                        .insert((author.clone(), c.number.clone()), id);
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
                        .map_or(0, |p| u128::from(p.mass()));
                }
                // Kept for the parcel's life: share the governance state's copies of member ids
                // instead of the ones decoded with this event.
                let at = ev.header().gov;
                let state = match state {
                    ParcelState::Held { by } => ParcelState::Held {
                        by: intern(gov, at, &by),
                    },
                    ParcelState::InTransit { from, to, dispatch } => ParcelState::InTransit {
                        from: intern(gov, at, &from),
                        to: intern(gov, at, &to),
                        dispatch,
                    },
                    other => other,
                };
                self.move_parcel(&parcel, id, state, measured_carats);
            }
        }
    }

    /// Records a flag on a parcel, an event, a member or a site, applied or void, under its
    /// target (kept sorted by id): the parcel index commits to the flags on each parcel, on the
    /// events naming it, on their authors and on its mine site, so a proof bundle cannot leave
    /// one out.
    fn note_flag_target(&mut self, ev: &VerifiedEvent) {
        let Body::Flag(Flag { target, .. }) = ev.body() else {
            return;
        };
        let flags = match target {
            FlagTarget::Parcel(p) | FlagTarget::Event(p) => self.flags_on.entry(*p).or_default(),
            FlagTarget::Member(m) => self.flags_on_member.entry(m.clone()).or_default(),
            FlagTarget::Site { member, site } => self
                .flags_on_site
                .entry(member.clone())
                .or_default()
                .entry(site.clone())
                .or_default(),
        };
        if let Err(at) = flags.binary_search(ev.id()) {
            flags.insert(at, *ev.id());
        }
    }

    /// Records a void event on every parcel it cites (kept sorted by id, so the state does not
    /// depend on delivery order).
    fn note_void(&mut self, ev: &VerifiedEvent) {
        for p in &ev.body().parcel_refs() {
            if let Some(parcel) = self.parcels.get_mut(&p.parcel) {
                if let Err(at) = parcel.void_events.binary_search(ev.id()) {
                    parcel.void_events.insert(at, *ev.id());
                }
            }
        }
    }

    /// Keeps what an applied event says that the parcel states do not: flags, receipt notes,
    /// explicit deadlines, import confirmations.
    fn note(&mut self, ev: &VerifiedEvent) {
        let id = *ev.id();
        match ev.body() {
            Body::Flag(f) => {
                self.notes.flags.insert(id, f.clone());
            }
            Body::Receive(r) => {
                // What it weighed when dispatched: the cited head is the dispatch.
                let expected = self
                    .parcels
                    .get(&r.parcel.parcel)
                    .and_then(|p| p.mass_at(&r.parcel.head))
                    .unwrap_or(0);
                let measured = r.measured_carats;
                self.totals.receipt_gain += u128::from(measured.saturating_sub(expected));
                self.totals.receipt_loss += u128::from(expected.saturating_sub(measured));
                if measured != expected {
                    self.notes
                        .receipt_mismatches
                        .insert(id, (r.parcel.parcel, expected, measured));
                }
                if !r.seal_intact {
                    self.notes.broken_seals.insert(id, r.parcel.parcel);
                }
            }
            Body::Declare(d) => {
                self.declarations.insert(id, d.clone());
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
            extracted_on: c.extracted_on,
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
            p.transitions
                .push(Transition::weighed(event, state, measured));
        }
    }
}

/// The governance state's own copy of a member id: one allocation per member, not per event.
fn intern(gov: &Governance, version: u64, id: &MemberId) -> MemberId {
    gov.at(version)
        .and_then(|g| g.members.get_key_value(id))
        .map_or_else(|| id.clone(), |(k, _)| k.clone())
}
