//! The governance chain: every record seen for each version, the one record each version
//! resolves to, and governance forks. Version 0 is the genesis.
//!
//! Version v is a function of the set of records for v that extend version v - 1: of those that
//! can apply and meet the quorum of v - 1 ("quorate"), the members who endorsed two are double
//! endorsers; a record still meeting the quorum without them is valid, and v is the one valid
//! record, if exactly one is. Two quorate records are a governance fork, named in evidence.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, NetworkId, PublicKeyBytes};
use crate::event::{GovAction, Govern};
use crate::quorum::{tally, Tally};
use crate::record::record_id;
use crate::types::{Genesis, MemberId};
use crate::verdict::VoidReason;

pub use crate::genesis::{
    check_genesis, decode_genesis, network_id, GenesisError, MAX_MEMBERS, MAX_MEMBER_ITEMS,
};
pub use crate::gov_state::{ActionError, Embargo, GovState, Lift, Revocation, Suspension};

/// A governance record as gathered from every event that carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub id: Digest,
    pub version: u64,
    pub prev: Digest,
    pub action: GovAction,
    /// Every endorsement seen for it, by member (signatures were checked at admission).
    pub endorsements: BTreeMap<MemberId, BTreeSet<PublicKeyBytes>>,
    /// The events that carry it.
    pub carriers: BTreeSet<EventId>,
}

/// One version of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// The record id (the network id for version 0).
    pub id: Digest,
    pub state: GovState,
}

/// Two or more records for one version that each met the quorum: none of them is in force, and
/// the members who endorsed more than one are named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovFork {
    pub version: u64,
    /// The quorate records, sorted.
    pub records: Vec<Digest>,
    pub double_endorsers: Vec<MemberId>,
}

/// What offering one record changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Change {
    /// The chain gained versions.
    pub advanced: bool,
    /// Verdicts of events already stored may change: the state must be recomputed.
    pub retroactive: bool,
}

/// The chain of governance versions and every record seen.
#[derive(Debug, Clone)]
pub struct Governance {
    network: NetworkId,
    versions: Vec<Version>,
    records: BTreeMap<u64, BTreeMap<Digest, Record>>,
    /// The records of each version that extend the version before it, can apply and meet its
    /// quorum. Kept up to date record by record, so a member piling up records that count for
    /// nothing costs one tally each, not a tally of every record at every offer.
    quorate: BTreeMap<u64, BTreeSet<Digest>>,
    forks: BTreeMap<u64, GovFork>,
}

impl Governance {
    /// Governance version 0 from a checked genesis.
    pub fn from_genesis(g: &Genesis) -> Result<Governance, GenesisError> {
        check_genesis(g)?;
        let network = network_id(g);
        Ok(Governance {
            network,
            versions: vec![Version {
                id: network,
                state: GovState::from_genesis(g),
            }],
            records: BTreeMap::new(),
            quorate: BTreeMap::new(),
            forks: BTreeMap::new(),
        })
    }

    /// The newest version in force.
    pub fn latest(&self) -> u64 {
        self.versions.len() as u64 - 1
    }

    /// The state at `version`, if the chain has it.
    pub fn at(&self, version: u64) -> Option<&GovState> {
        self.version(version).map(|v| &v.state)
    }

    /// The newest state: its key cuts, suspensions and embargoes bind every event.
    pub fn latest_state(&self) -> &GovState {
        &self.versions[self.versions.len() - 1].state
    }

    /// Version `version`, if the chain has it.
    pub fn version(&self, version: u64) -> Option<&Version> {
        usize::try_from(version)
            .ok()
            .and_then(|v| self.versions.get(v))
    }

    /// Every version, from the genesis on.
    pub fn versions(&self) -> &[Version] {
        &self.versions
    }

    /// Every record seen, by version and id.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.records.values().flat_map(|r| r.values())
    }

    /// A record seen, by id.
    pub fn record(&self, id: &Digest) -> Option<&Record> {
        self.records().find(|r| &r.id == id)
    }

    /// True when the chain is halted below `version` by a governance fork: two quorate records
    /// for a version after the newest one and at most `version`, so `version` cannot be reached
    /// until a record without double endorsers takes the forked version.
    pub fn halted_below(&self, version: u64) -> bool {
        let latest = self.latest();
        self.forks.keys().any(|&v| v > latest && v <= version)
    }

    /// Governance forks proven, by version.
    pub fn forks(&self) -> impl Iterator<Item = &GovFork> {
        self.forks.values()
    }

    /// The id a record would have.
    pub fn record_id(&self, version: u64, prev: &Digest, action: &GovAction) -> Digest {
        record_id(&self.network, version, prev, action)
    }

    /// The tally of a record against the version it extends (without double endorsers).
    pub fn tally(&self, record: &Record) -> Option<Tally> {
        let base = self.at(record.version.checked_sub(1)?)?;
        let excluded = self
            .forks
            .get(&record.version)
            .map(|f| f.double_endorsers.iter().cloned().collect())
            .unwrap_or_default();
        Some(tally(base, &record.endorsements, &excluded))
    }

    /// Takes in the record a `Govern` event carries (`carrier_gov` is the version that event
    /// cites) and resolves the versions it can change. `reaches_back` says whether a new
    /// version's action changes the verdict of an event already stored (a key cut or suspension
    /// before a stored seq, an embargo over stored certificates or dispatches).
    pub fn offer(
        &mut self,
        carrier: EventId,
        carrier_gov: u64,
        g: &Govern,
        reaches_back: impl Fn(&GovAction) -> bool,
    ) -> Change {
        if Some(g.version) != carrier_gov.checked_add(1) {
            return Change::default();
        }
        let id = record_id(&self.network, g.version, &g.prev, &g.action);
        let rec = self
            .records
            .entry(g.version)
            .or_default()
            .entry(id)
            .or_insert_with(|| Record {
                id,
                version: g.version,
                prev: g.prev,
                action: g.action.clone(),
                endorsements: BTreeMap::new(),
                carriers: BTreeSet::new(),
            });
        let mut grew = rec.carriers.insert(carrier) && rec.carriers.len() > 1;
        for e in &g.endorsements {
            let keys = rec.endorsements.entry(e.member.clone()).or_default();
            grew |= keys.insert(e.key) && rec.carriers.len() > 1;
        }
        self.requalify(g.version, &id);
        let before = self.latest();
        let (changed_from, fork_changed) = self.resolve_from(g.version);
        // A version taken after a governance fork halted the chain there: events citing it or a
        // later version were stored void `gov-forked`, and now count.
        let resumed = (before + 1..=self.latest()).any(|v| self.forks.contains_key(&v));
        let retroactive = grew
            || fork_changed
            || resumed
            || changed_from.is_some_and(|v| v <= before)
            || self
                .versions
                .get(before as usize + 1..)
                .unwrap_or_default()
                .iter()
                .filter_map(|v| self.record(&v.id))
                .any(|r| reaches_back(&r.action) || r.carriers.len() > 1);
        Change {
            advanced: self.latest() > before,
            retroactive,
        }
    }

    /// True when record `id` of version `v` extends the version before it, meets its quorum (a
    /// cheap count, first) and can apply to it (a copy of the state, only for those that count).
    fn qualifies(&self, v: u64, id: &Digest) -> bool {
        let (Some(base), Some(r)) = (
            v.checked_sub(1).and_then(|b| self.version(b)),
            self.records.get(&v).and_then(|m| m.get(id)),
        ) else {
            return false;
        };
        r.prev == base.id
            && tally(&base.state, &r.endorsements, &BTreeSet::new()).met()
            && base.state.apply(v, &r.action).is_ok()
    }

    /// Updates whether record `id` of version `v` is quorate.
    fn requalify(&mut self, v: u64, id: &Digest) {
        let q = self.qualifies(v, id);
        let set = self.quorate.entry(v).or_default();
        if q {
            set.insert(*id);
        } else {
            set.remove(id);
        }
    }

    /// Recomputes which records of version `v` are quorate (its base changed).
    fn requalify_all(&mut self, v: u64) {
        let ids: Vec<Digest> = self
            .records
            .get(&v)
            .map(|m| m.keys().copied().collect())
            .unwrap_or_default();
        let set = ids.into_iter().filter(|id| self.qualifies(v, id)).collect();
        self.quorate.insert(v, set);
    }

    /// Resolves version `from` and, while versions change, the ones after it (whose base
    /// changed, so their quorate records are counted again). Returns the first version whose
    /// record changed, and whether fork evidence changed.
    fn resolve_from(&mut self, from: u64) -> (Option<u64>, bool) {
        let mut first = None;
        let mut fork_changed = false;
        let mut v = from;
        loop {
            if v > from {
                self.requalify_all(v);
            }
            let (changed, fork) = self.resolve(v);
            fork_changed |= fork;
            if !changed {
                return (first, fork_changed);
            }
            first.get_or_insert(v);
            if self.latest() < v {
                return (first, fork_changed);
            }
            v += 1;
        }
    }

    /// Resolves version `v` from its records; true when its record changed (versions after it
    /// are then dropped), and whether its fork evidence changed.
    fn resolve(&mut self, v: u64) -> (bool, bool) {
        let Some(base) = v.checked_sub(1).and_then(|b| self.version(b)) else {
            return (false, false);
        };
        let records = self.records.get(&v);
        let quorate: Vec<&Record> = self
            .quorate
            .get(&v)
            .into_iter()
            .flatten()
            .filter_map(|id| records.and_then(|m| m.get(id)))
            .collect();
        let mut seen = BTreeSet::new();
        let mut double = BTreeSet::new();
        for r in &quorate {
            for m in tally(&base.state, &r.endorsements, &BTreeSet::new()).counted {
                if !seen.insert(m.clone()) {
                    double.insert(m);
                }
            }
        }
        let valid: Vec<&Record> = quorate
            .iter()
            .copied()
            .filter(|r| tally(&base.state, &r.endorsements, &double).met())
            .collect();
        let fork = (quorate.len() > 1).then(|| GovFork {
            version: v,
            records: quorate.iter().map(|r| r.id).collect(),
            double_endorsers: double.into_iter().collect(),
        });
        let next = match valid.as_slice() {
            [one] => base
                .state
                .apply(v, &one.action)
                .ok()
                .map(|state| Version { id: one.id, state }),
            _ => None,
        };
        let fork_changed = self.forks.get(&v) != fork.as_ref();
        match fork {
            Some(f) => self.forks.insert(v, f),
            None => self.forks.remove(&v),
        };
        if self.version(v).map(|x| x.id) == next.as_ref().map(|x| x.id) {
            return (false, fork_changed);
        }
        self.versions.truncate(v as usize);
        self.versions.extend(next);
        (true, fork_changed)
    }

    /// The verdict on an event carrying `g` while citing version `carrier_gov`.
    pub fn judge_carrier(&self, carrier_gov: u64, g: &Govern) -> Result<(), VoidReason> {
        if Some(g.version) != carrier_gov.checked_add(1) {
            return Err(VoidReason::GovWrongVersion);
        }
        let base = self.version(carrier_gov).ok_or(VoidReason::GovForked)?;
        if g.prev != base.id {
            return Err(VoidReason::GovSuperseded);
        }
        if base.state.apply(g.version, &g.action).is_err() {
            return Err(VoidReason::GovInvalidAction);
        }
        let id = record_id(&self.network, g.version, &g.prev, &g.action);
        if self.version(g.version).map(|v| v.id) == Some(id) {
            return Ok(());
        }
        if self
            .forks
            .get(&g.version)
            .is_some_and(|f| f.records.contains(&id))
        {
            return Err(VoidReason::GovForked);
        }
        Err(VoidReason::NoQuorum)
    }
}

#[cfg(test)]
impl Governance {
    /// Appends a copy of the newest state as the next version (tests of version monotonicity).
    pub(crate) fn push_copy_for_tests(&mut self) {
        if let Some(last) = self.versions.last().cloned() {
            self.versions.push(last);
        }
    }
}
