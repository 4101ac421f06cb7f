//! The governance context of a parcel audit: the version that admitted each author of its
//! history, the key that signed each of its events and whether governance still assigns that key
//! to the event's seq, key cuts and suspensions of those authors, and the embargoes over its origins.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::bytes::{EventId, PublicKeyBytes};
use crate::governance::{Embargo, Governance, Revocation, Suspension};
use crate::origin::OriginShare;
use crate::types::MemberId;

/// One author of a parcel's history, as governance sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorContext {
    pub member: MemberId,
    /// The governance version that admitted it (0: a founding member of the genesis).
    pub admitted_in: Option<u64>,
    /// Its suspensions, with the versions that made and ended them.
    pub suspensions: Vec<Suspension>,
    /// Its keys cut by a rotation or revocation: the key, and the last seq it signs.
    pub key_cuts: Vec<(PublicKeyBytes, Revocation)>,
}

/// The key that signed one event of the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventKey {
    pub event: EventId,
    pub key: Option<PublicKeyBytes>,
    /// True when the newest governance state still assigns this key to the event's seq.
    pub valid: bool,
}

/// The governance context of an audit.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GovernanceContext {
    /// The newest governance version.
    pub version: u64,
    pub authors: Vec<AuthorContext>,
    pub keys: Vec<EventKey>,
    /// Every embargo, in force or lifted, over some origin share of the parcel.
    pub embargoes: Vec<Embargo>,
}

/// The context for a history of (event, author, seq, cited version) and an origin.
pub fn context(
    gov: &Governance,
    history: &[(EventId, MemberId, u64, u64)],
    origin: &[OriginShare],
) -> GovernanceContext {
    let newest = gov.latest_state();
    let authors: BTreeSet<&MemberId> = history.iter().map(|(_, a, _, _)| a).collect();
    let authors = authors
        .into_iter()
        .map(|m| AuthorContext {
            member: m.clone(),
            admitted_in: gov
                .versions()
                .iter()
                .position(|v| v.state.members.contains_key(m))
                .map(|v| v as u64),
            suspensions: newest.suspensions.get(m).cloned().unwrap_or_default(),
            key_cuts: newest
                .revoked
                .iter()
                .filter(|(_, r)| &r.member == m)
                .map(|(k, r)| (*k, r.clone()))
                .collect(),
        })
        .collect();
    let keys = history
        .iter()
        .map(|(event, author, seq, cited)| {
            // Admission checked the key against the version the event cites.
            let key = gov
                .at(*cited)
                .and_then(|s| s.key_for(author, *seq))
                .copied();
            EventKey {
                event: *event,
                key,
                valid: key.is_some() && newest.key_for(author, *seq) == key.as_ref(),
            }
        })
        .collect();
    let embargoes = newest
        .embargoes
        .iter()
        .filter(|e| origin.iter().any(|s| e.covers_share(s)))
        .cloned()
        .collect();
    GovernanceContext {
        version: gov.latest(),
        authors,
        keys,
        embargoes,
    }
}
