//! Audit of one parcel: its whole ancestry back to each mine, every event on it with its verdict, and its origin shares.

use std::collections::{BTreeSet, HashSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::audit_gov::{context, GovernanceContext};
use crate::bytes::{EventId, ParcelId};
use crate::event::Kind;
use crate::ledger::Ledger;
use crate::origin::OriginShare;
use crate::rules::{ParcelState, Verdict};
use crate::types::{Country, Date, MemberId};

/// Most parcels one audit walks; a larger ancestry is reported as truncated.
pub const MAX_AUDIT_PARCELS: usize = 100_000;

/// One parcel in an ancestry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AncestorParcel {
    pub parcel: ParcelId,
    /// The weight declared when it was made.
    pub carats: u64,
    /// What it weighs now: the last weight measured on receipt, else the declared one.
    pub mass: u64,
    /// The extraction date its mine declared (registrations only).
    pub extracted_on: Option<Date>,
    pub stones: u32,
    pub created_by: EventId,
    /// The parcels it was made from (empty for a registration at a mine).
    pub parents: Vec<ParcelId>,
    pub state: ParcelState,
}

/// One event in a parcel's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub event: EventId,
    pub kind: Kind,
    pub author: MemberId,
    pub seq: u64,
    pub time_ms: u64,
    pub verdict: Verdict,
}

/// The audit of one parcel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    pub parcel: ParcelId,
    pub state: ParcelState,
    /// The member responsible now: the holder, or the sender while in transit.
    pub custodian: Option<MemberId>,
    /// What the parcel weighs now: the last weight measured on receipt, else the declared one.
    pub carats: u64,
    /// The weight declared when it was made.
    pub declared_carats: u64,
    /// Origin shares by site, in parts per billion.
    pub origin: Vec<OriginShare>,
    /// Origin shares by country, in parts per billion.
    pub origin_countries: Vec<(Country, u64)>,
    /// The parcel and all its ancestors, the audited parcel first, then breadth-first.
    pub ancestry: Vec<AncestorParcel>,
    /// Every event that created, moved or cited any parcel of the ancestry, applied or void, and
    /// the certificates covering them with their import confirmations; ordered by claimed time,
    /// then author and seq.
    pub history: Vec<HistoryEntry>,
    /// The ancestry was larger than [`MAX_AUDIT_PARCELS`] and was cut.
    pub truncated: bool,
    /// Who admitted the authors of the history, the keys that signed it and whether they still
    /// count, key cuts and suspensions, and the embargoes over the origins.
    pub governance: GovernanceContext,
}

/// Audits `parcel` from the ledger's state, or `None` if no such parcel exists.
pub fn audit_parcel(ledger: &Ledger, parcel: &ParcelId) -> Option<Audit> {
    let root = ledger.parcel(parcel)?;
    let mut ancestry = Vec::new();
    let mut seen: HashSet<ParcelId> = HashSet::new();
    let mut queue: VecDeque<ParcelId> = VecDeque::from([*parcel]);
    let mut events: BTreeSet<EventId> = BTreeSet::new();
    let mut truncated = false;
    seen.insert(*parcel);
    while let Some(id) = queue.pop_front() {
        if ancestry.len() == MAX_AUDIT_PARCELS {
            truncated = true;
            break;
        }
        let Some(p) = ledger.parcel(&id) else {
            continue;
        };
        let created_by = *p.created_by();
        events.insert(created_by);
        events.extend(p.transitions().iter().map(|t| t.event));
        events.extend(p.events().iter().copied());
        ancestry.push(AncestorParcel {
            parcel: id,
            carats: p.carats,
            mass: p.mass(),
            extracted_on: p.extracted_on,
            stones: p.stones,
            created_by,
            parents: p.parents.clone(),
            state: p.state().clone(),
        });
        for parent in &p.parents {
            if seen.insert(*parent) {
                queue.push_back(*parent);
            }
        }
    }
    // Certificates covering any parcel of the ancestry, and their import confirmations.
    for (cert, c) in ledger.certificates() {
        if c.parcels.iter().any(|p| seen.contains(&p.parcel)) {
            events.insert(*cert);
            if let Some(confirmed) = ledger.notes().confirmations.get(cert) {
                events.extend(confirmed.iter().copied());
            }
        }
    }
    let mut history: Vec<HistoryEntry> = events
        .into_iter()
        .filter_map(|id| {
            ledger.event(&id).map(|m| HistoryEntry {
                event: id,
                kind: m.kind,
                author: m.author.clone(),
                seq: m.seq,
                time_ms: m.time_ms,
                verdict: m.verdict,
            })
        })
        .collect();
    history.sort_by(|a, b| {
        (a.time_ms, &a.author, a.seq, a.event).cmp(&(b.time_ms, &b.author, b.seq, b.event))
    });
    let governance = governance_of(ledger, &history, root.origin.shares());
    Some(Audit {
        governance,
        parcel: *parcel,
        state: root.state().clone(),
        custodian: root.state().custodian().cloned(),
        carats: root.mass(),
        declared_carats: root.carats,
        origin: root.origin.shares().to_vec(),
        origin_countries: root.origin.by_country(),
        ancestry,
        history,
        truncated,
    })
}

/// The governance context of a history: each event with its author, seq and cited version.
fn governance_of(
    ledger: &Ledger,
    history: &[HistoryEntry],
    origin: &[OriginShare],
) -> GovernanceContext {
    let cited: Vec<(EventId, MemberId, u64, u64)> = history
        .iter()
        .filter_map(|h| {
            let m = ledger.event(&h.event)?;
            Some((h.event, h.author.clone(), h.seq, m.gov))
        })
        .collect();
    context(ledger.governance(), &cited, origin)
}
