//! Which events a parcel's proof bundle carries: every event that bears on the audit of the
//! parcel, as of a checkpoint (DESIGN.md section 7).
//!
//! The audit's state, history verdicts and findings depend on more than the parcel's ancestry:
//! a void event is judged against every parcel it cites, a certificate against all of its
//! parcels and their origins, a flag or a late registration at one of the origin's sites
//! concerns the parcel, a certificate number used twice names the other certificate, an
//! author's first fork voids its feed from there, and the governance chain binds everything. The selection is the closure
//! of the parcel under those relations, restricted to what the checkpoint covers (the slots its
//! feed heads state) plus evidence that needs no checkpoint (a fork's events, events void by a
//! proven fork or a revoked key).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::bytes::{EventId, ParcelId};
use crate::checkpoint::FeedHead;
use crate::event::Body;
use crate::findings::first_forks;
use crate::ledger::Ledger;
use crate::types::{MemberId, SiteId};

/// Most events one bundle carries; a parcel whose closure is larger is audited with `--full`.
pub const MAX_BUNDLE_EVENTS: usize = 16_384;

/// What a bundle carries.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Events in slots the checkpoint covers: each gets an inclusion proof.
    pub proven: BTreeSet<EventId>,
    /// Events that hold no covered slot and are void whatever else is known (a fork's events,
    /// events after a proven fork, events signed with a revoked key): carried as evidence.
    pub evidence: BTreeSet<EventId>,
    /// Every parcel walked (the ancestry and every parcel a carried event cites): each gets a
    /// proof of its events in the checkpoint's parcel index.
    pub parcels: BTreeSet<ParcelId>,
}

/// Why no bundle was selected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectError {
    #[error("no parcel {0} here")]
    UnknownParcel(ParcelId),
    #[error("parcel {0} is not covered by the checkpoint: its registration is newer; try again after the next checkpoint")]
    NotCovered(ParcelId),
    #[error("the audit of this parcel bears on more than {MAX_BUNDLE_EVENTS} events: audit it with --full")]
    TooLarge,
    #[error("event {0} is stored but its bytes could not be read")]
    Unreadable(EventId),
}

/// Selects the bundle of `parcel` from `ledger` as of the checkpoint whose feed heads are
/// `heads`; `body` reads a stored event's body.
pub fn select(
    ledger: &Ledger,
    heads: &[FeedHead],
    parcel: &ParcelId,
    body: impl Fn(&EventId) -> Option<Body>,
) -> Result<Selection, SelectError> {
    let p = ledger
        .parcel(parcel)
        .ok_or(SelectError::UnknownParcel(*parcel))?;
    let sizes: HashMap<&MemberId, u64> = heads.iter().map(|h| (&h.author, h.seq)).collect();
    let mut walk = Walk {
        ledger,
        sizes,
        body,
        index: Index::new(ledger),
        out: Selection::default(),
        parcels: BTreeSet::new(),
        queue: VecDeque::new(),
        authors: BTreeSet::new(),
        sites: BTreeSet::new(),
    };
    if walk.coverage(p.created_by()) != Coverage::Proven {
        return Err(SelectError::NotCovered(*parcel));
    }
    walk.parcel(*parcel);
    walk.close()?;
    let mut out = walk.out;
    out.parcels = walk.parcels;
    Ok(out)
}

/// Whether an event can be carried, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Coverage {
    Proven,
    Evidence,
    /// Newer than the checkpoint.
    Beyond,
}

/// Indexes of the ledger built once per selection.
struct Index {
    /// Applied certificates by covered parcel, and by number.
    certs_of: HashMap<ParcelId, Vec<EventId>>,
    certs_by_number: HashMap<String, Vec<EventId>>,
}

impl Index {
    fn new(ledger: &Ledger) -> Index {
        let mut certs_of: HashMap<ParcelId, Vec<EventId>> = HashMap::new();
        let mut certs_by_number: HashMap<String, Vec<EventId>> = HashMap::new();
        for (id, c) in ledger.certificates() {
            for r in &c.parcels {
                certs_of.entry(r.parcel).or_default().push(*id);
            }
            certs_by_number
                .entry(c.number.clone())
                .or_default()
                .push(*id);
        }
        Index {
            certs_of,
            certs_by_number,
        }
    }
}

struct Walk<'a, F> {
    ledger: &'a Ledger,
    sizes: HashMap<&'a MemberId, u64>,
    body: F,
    index: Index,
    out: Selection,
    parcels: BTreeSet<ParcelId>,
    queue: VecDeque<ParcelId>,
    authors: BTreeSet<MemberId>,
    sites: BTreeSet<(MemberId, SiteId)>,
}

impl<F: Fn(&EventId) -> Option<Body>> Walk<'_, F> {
    fn coverage(&self, id: &EventId) -> Coverage {
        let Some(m) = self.ledger.event(id) else {
            return Coverage::Beyond;
        };
        let holds = self
            .ledger
            .feed(&m.author)
            .and_then(|f| f.slot(m.seq))
            .is_some_and(|h| h == id);
        let size = self.sizes.get(&m.author).copied().unwrap_or(0);
        if holds && m.seq <= size {
            Coverage::Proven
        } else if !holds || self.ledger.is_forked_at(&m.author, m.seq) {
            Coverage::Evidence
        } else {
            Coverage::Beyond
        }
    }

    /// Takes in one parcel: queued, its events taken when the queue reaches it.
    fn parcel(&mut self, id: ParcelId) {
        if self.parcels.insert(id) {
            self.queue.push_back(id);
        }
    }

    /// Takes in one event (if the checkpoint covers it or it is evidence) and what it cites.
    fn event(&mut self, id: EventId) -> Result<(), SelectError> {
        if self.out.proven.contains(&id) || self.out.evidence.contains(&id) {
            return Ok(());
        }
        match self.coverage(&id) {
            Coverage::Proven => self.out.proven.insert(id),
            Coverage::Evidence => self.out.evidence.insert(id),
            Coverage::Beyond => return Ok(()),
        };
        if self.out.proven.len() + self.out.evidence.len() > MAX_BUNDLE_EVENTS {
            return Err(SelectError::TooLarge);
        }
        if let Some(m) = self.ledger.event(&id) {
            self.authors.insert(m.author.clone());
        }
        let body = (self.body)(&id).ok_or(SelectError::Unreadable(id))?;
        for r in body.parcel_refs() {
            self.parcel(r.parcel);
        }
        for dep in body.dependencies() {
            self.event(dep)?;
        }
        if let Some(c) = body.certificate() {
            for other in self
                .index
                .certs_by_number
                .get(&c.number)
                .cloned()
                .unwrap_or_default()
            {
                self.event(other)?;
            }
        }
        Ok(())
    }

    /// One parcel's events: its creation, every event citing it, the certificates covering it
    /// and their import confirmations; its parents and its origin's sites.
    fn take_parcel(&mut self, id: ParcelId) -> Result<(), SelectError> {
        let ledger = self.ledger;
        let Some(p) = ledger.parcel(&id) else {
            return Ok(());
        };
        self.event(*p.created_by())?;
        for e in p.events() {
            self.event(e)?;
        }
        for cert in self.index.certs_of.get(&id).cloned().unwrap_or_default() {
            self.event(cert)?;
            for confirmed in ledger
                .notes()
                .confirmations
                .get(&cert)
                .into_iter()
                .flatten()
            {
                self.event(*confirmed)?;
            }
        }
        for parent in &p.parents {
            self.parcel(*parent);
        }
        for s in p.origin.shares() {
            self.sites.insert((s.member.clone(), s.site.clone()));
        }
        Ok(())
    }

    /// Runs to a fixed point: parcels, then what concerns the parcels, events, authors and
    /// sites taken so far (flags, forks, governance records).
    fn close(&mut self) -> Result<(), SelectError> {
        loop {
            while let Some(id) = self.queue.pop_front() {
                self.take_parcel(id)?;
            }
            let before = self.out.proven.len() + self.out.evidence.len();
            self.concerns()?;
            let after = self.out.proven.len() + self.out.evidence.len();
            if after == before && self.queue.is_empty() {
                return Ok(());
            }
        }
    }

    fn concerns(&mut self) -> Result<(), SelectError> {
        let ledger = self.ledger;
        for id in self.flags() {
            self.event(id)?;
        }
        let forks: Vec<(EventId, EventId)> = first_forks(ledger)
            .filter(|f| self.authors.contains(&f.author))
            .map(|f| (f.first, f.second))
            .collect();
        for (a, b) in forks {
            self.event(a)?;
            self.event(b)?;
        }
        let carriers: Vec<EventId> = ledger
            .governance()
            .records()
            .flat_map(|r| r.carriers.iter().copied())
            .collect();
        for id in carriers {
            self.event(id)?;
        }
        Ok(())
    }

    /// The stored flags, applied or void, that hold their slot in the checkpoint, on the parcels,
    /// events, authors and sites taken so far: what the parcel index commits to (D48, D51).
    fn flags(&self) -> Vec<EventId> {
        let state = self.ledger.state();
        let taken = self.out.proven.iter().chain(&self.out.evidence);
        let mut out: Vec<EventId> = self
            .parcels
            .iter()
            .chain(taken)
            .flat_map(|target| state.flags_on(target).iter().copied())
            .collect();
        for m in &self.authors {
            out.extend_from_slice(state.flags_on_member(m));
        }
        for (m, site) in &self.sites {
            out.extend_from_slice(state.flags_on_site(m, site));
        }
        out.retain(|f| matches!(self.coverage(f), Coverage::Proven));
        out
    }
}

/// The selection's events grouped by author, then seq (for building proofs feed by feed).
pub fn by_author(
    ledger: &Ledger,
    ids: &BTreeSet<EventId>,
) -> BTreeMap<MemberId, Vec<(u64, EventId)>> {
    let mut out: BTreeMap<MemberId, Vec<(u64, EventId)>> = BTreeMap::new();
    for id in ids {
        if let Some(m) = ledger.event(id) {
            out.entry(m.author.clone()).or_default().push((m.seq, *id));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}
