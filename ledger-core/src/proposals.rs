//! Governance proposals as the log holds them: each proposed record's action, the endorsements
//! gathered for it in `Endorse` events (with their signatures, to build the `Govern` record that
//! submits it), and the objections to it, which stay attached to it wherever it is shown.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, NetworkId, PublicKeyBytes, SignatureBytes};
use crate::event::{Body, Endorsement, GovAction};
use crate::record::record_id;
use crate::types::MemberId;

/// A proposed governance record and what members said about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The record id.
    pub id: Digest,
    pub version: u64,
    pub prev: Digest,
    pub action: GovAction,
    /// The `Endorse` events that carry an endorsement of it.
    pub events: BTreeSet<EventId>,
    /// Every endorsement gathered, by member and key (the smallest signature when one key
    /// signed twice, so every node builds the same record).
    pub endorsements: BTreeMap<(MemberId, PublicKeyBytes), SignatureBytes>,
}

impl Proposal {
    /// The endorsements, as a `Govern` record carries them.
    pub fn endorsement_list(&self) -> Vec<Endorsement> {
        self.endorsements
            .iter()
            .map(|((member, key), signature)| Endorsement {
                member: member.clone(),
                key: *key,
                signature: *signature,
            })
            .collect()
    }
}

/// An objection to a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objection {
    pub event: EventId,
    pub member: MemberId,
    pub reason: String,
}

/// Every proposal, objection and proposed admission seen in stored events.
#[derive(Debug, Clone, Default)]
pub struct Proposals {
    by_id: BTreeMap<Digest, Proposal>,
    objections: BTreeMap<Digest, BTreeMap<EventId, Objection>>,
    /// Keys a stored `Endorse` or `Govern` proposes to give a member (an admission, a new or a
    /// rotated key): events signed with them may wait for the version that grants them.
    proposed_keys: BTreeMap<MemberId, BTreeSet<PublicKeyBytes>>,
}

impl Proposals {
    /// Takes in a stored event's proposal, endorsement or objection.
    pub fn note(&mut self, network: &NetworkId, id: EventId, author: &MemberId, body: &Body) {
        match body {
            Body::Endorse(e) => {
                let rid = record_id(network, e.version, &e.prev, &e.action);
                let p = self.by_id.entry(rid).or_insert_with(|| Proposal {
                    id: rid,
                    version: e.version,
                    prev: e.prev,
                    action: e.action.clone(),
                    events: BTreeSet::new(),
                    endorsements: BTreeMap::new(),
                });
                p.events.insert(id);
                let sig = p
                    .endorsements
                    .entry((e.endorsement.member.clone(), e.endorsement.key))
                    .or_insert(e.endorsement.signature);
                if e.endorsement.signature.0 < sig.0 {
                    *sig = e.endorsement.signature;
                }
                self.note_admit(&e.action);
            }
            Body::Govern(g) => self.note_admit(&g.action),
            Body::Object(o) => {
                self.objections.entry(o.record).or_default().insert(
                    id,
                    Objection {
                        event: id,
                        member: author.clone(),
                        reason: o.reason.clone(),
                    },
                );
            }
            _ => {}
        }
    }

    fn note_admit(&mut self, action: &GovAction) {
        let (member, keys): (&MemberId, Vec<PublicKeyBytes>) = match action {
            GovAction::Admit(m) => (&m.id, m.keys.iter().map(|k| k.key).collect()),
            GovAction::AddKey { member, key, .. } | GovAction::RotateKey { member, key, .. } => {
                (member, vec![*key])
            }
            _ => return,
        };
        self.proposed_keys
            .entry(member.clone())
            .or_default()
            .extend(keys);
    }

    /// A proposal, by record id.
    pub fn get(&self, record: &Digest) -> Option<&Proposal> {
        self.by_id.get(record)
    }

    /// Every proposal, by record id.
    pub fn all(&self) -> impl Iterator<Item = &Proposal> {
        self.by_id.values()
    }

    /// The objections to a record, by event id.
    pub fn objections(&self, record: &Digest) -> impl Iterator<Item = &Objection> {
        self.objections
            .get(record)
            .into_iter()
            .flat_map(|o| o.values())
    }

    /// True when a stored proposal would give `member` the key `key` (admitting it, or adding
    /// or rotating to that key).
    pub fn proposes_key(&self, member: &MemberId, key: &PublicKeyBytes) -> bool {
        self.proposed_keys
            .get(member)
            .is_some_and(|k| k.contains(key))
    }
}
