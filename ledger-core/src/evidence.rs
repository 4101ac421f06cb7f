//! Portable evidence of equivocation: the two signed events of a fork, checkable by anyone offline.

use serde::{Deserialize, Serialize};

use crate::admission::{verify_event, AdmissionError};
use crate::bytes::NetworkId;
use crate::crypto::KeyCache;
use crate::governance::Governance;
use crate::ledger::Fork;

/// Two different events signed for one (author, seq): the exact bytes of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkProof {
    pub first: Vec<u8>,
    pub second: Vec<u8>,
}

/// Why a fork proof does not prove a fork.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkProofError {
    #[error("an event of the proof is not admissible: {0}")]
    Event(#[from] AdmissionError),
    #[error("the two events are the same event")]
    SameEvent,
    #[error("the two events are not by the same author at the same seq")]
    DifferentSlots,
    #[error("a signing key is not the author's key for that seq at the cited governance version")]
    NotTheAuthorsKey,
}

impl ForkProof {
    /// Checks the proof: both events verify (`verify_strict`), differ, share author and seq, and
    /// are signed by the key the governance state assigns to that author for that seq.
    pub fn verify(&self, network: &NetworkId, gov: &Governance) -> Result<Fork, ForkProofError> {
        let keys = KeyCache::default();
        let a = verify_event(&self.first, network, &keys)?;
        let b = verify_event(&self.second, network, &keys)?;
        if a.id() == b.id() {
            return Err(ForkProofError::SameEvent);
        }
        let (ha, hb) = (a.header(), b.header());
        if ha.author != hb.author || ha.seq != hb.seq {
            return Err(ForkProofError::DifferentSlots);
        }
        for h in [ha, hb] {
            let key = gov
                .at(h.gov)
                .and_then(|g| g.members.get(&h.author))
                .and_then(|m| m.key_for_seq(h.seq));
            if key != Some(&h.key) {
                return Err(ForkProofError::NotTheAuthorsKey);
            }
        }
        Ok(Fork {
            author: ha.author.clone(),
            seq: ha.seq,
            first: *a.id().min(b.id()),
            second: *a.id().max(b.id()),
        })
    }
}
