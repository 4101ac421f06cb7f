//! The witness's check before it cosigns a checkpoint, after the C2SP tlog-witness rules: the new
//! checkpoint must extend, feed by feed, the last one this witness cosigned (no rollback, no second
//! root at one size, a consistency proof for every feed that grew).
//!
//! The check is pure: the caller persists the returned state atomically before it releases the
//! cosignature, so a crash can never make the witness cosign two views that are not consistent.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, NetworkId};
use crate::checkpoint::{feeds_root, FeedHead, MAX_CHECKPOINT_FEEDS};
use crate::event::Checkpoint;
use crate::governance::GovState;
use crate::ledger::Ledger;
use crate::types::MemberId;

/// What a witness remembers: the last checkpoint it cosigned and the feed heads it stated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    pub checkpoint: Option<Checkpoint>,
    /// Each feed's size and root in that checkpoint.
    pub feeds: BTreeMap<MemberId, (u64, Digest)>,
}

/// True when `member` has the witness duty under `gov`: one of its roles is a witness role of
/// the policy, and it is not suspended.
pub fn has_witness_duty(gov: &GovState, member: &MemberId) -> bool {
    gov.members.get(member).is_some_and(|m| {
        m.roles.iter().any(|r| gov.policy.witness_roles.contains(r)) && !gov.is_suspended(member)
    })
}

/// Why a witness refuses to cosign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the checkpoint is of network {got}, not {expected}")]
    WrongNetwork { expected: NetworkId, got: NetworkId },
    #[error("the feed heads given do not make the checkpoint's feeds root")]
    HeadsMismatch,
    #[error("the checkpoint states {0} feeds, more than {MAX_CHECKPOINT_FEEDS}")]
    TooManyFeeds(u64),
    #[error("the checkpoint is older (time or governance version) than the last one accepted")]
    Older,
    #[error("feed {author} rolls back from size {cosigned} (accepted before) to {offered}")]
    Rollback {
        author: MemberId,
        cosigned: u64,
        offered: u64,
    },
    #[error("feed {author} has a second root at size {size}: two heads for one seq")]
    SameSizeDifferentRoot { author: MemberId, size: u64 },
    #[error("feed {author} at size {new} is not consistent with its size {old} accepted before")]
    Inconsistent {
        author: MemberId,
        old: u64,
        new: u64,
    },
}

/// Checks `cp`, with its feed `heads` (sorted by author) and a consistency proof for each feed
/// that grew since `state` (`proofs`, by author), and returns the state to persist before
/// cosigning. `verify` checks one consistency proof: (old size, new size, old root, new root,
/// proof).
pub fn check(
    state: &WitnessState,
    network: &NetworkId,
    cp: &Checkpoint,
    heads: &[FeedHead],
    proofs: &BTreeMap<MemberId, Vec<Digest>>,
    verify: impl Fn(u64, u64, &Digest, &Digest, &[Digest]) -> bool,
) -> Result<WitnessState, Refusal> {
    if &cp.network != network {
        return Err(Refusal::WrongNetwork {
            expected: *network,
            got: cp.network,
        });
    }
    if cp.feeds > MAX_CHECKPOINT_FEEDS as u64 {
        return Err(Refusal::TooManyFeeds(cp.feeds));
    }
    let sorted = heads.windows(2).all(|w| w[0].author < w[1].author);
    if !sorted || heads.len() as u64 != cp.feeds || feeds_root(heads) != cp.feeds_root {
        return Err(Refusal::HeadsMismatch);
    }
    if let Some(last) = &state.checkpoint {
        if cp.time_ms < last.time_ms || cp.gov < last.gov {
            return Err(Refusal::Older);
        }
    }
    let offered: BTreeMap<&MemberId, &FeedHead> = heads.iter().map(|h| (&h.author, h)).collect();
    for (author, (size, root)) in &state.feeds {
        let Some(h) = offered.get(author) else {
            return Err(Refusal::Rollback {
                author: author.clone(),
                cosigned: *size,
                offered: 0,
            });
        };
        extends(author, (*size, root), h, proofs, &verify)?;
    }
    Ok(WitnessState {
        checkpoint: Some(cp.clone()),
        feeds: heads
            .iter()
            .map(|h| (h.author.clone(), (h.seq, h.root)))
            .collect(),
    })
}

/// One feed of size `old` with root `old_root` extends to `new`.
fn extends(
    author: &MemberId,
    (old, old_root): (u64, &Digest),
    new: &FeedHead,
    proofs: &BTreeMap<MemberId, Vec<Digest>>,
    verify: &impl Fn(u64, u64, &Digest, &Digest, &[Digest]) -> bool,
) -> Result<(), Refusal> {
    if new.seq < old {
        return Err(Refusal::Rollback {
            author: author.clone(),
            cosigned: old,
            offered: new.seq,
        });
    }
    if new.seq == old {
        if &new.root != old_root {
            return Err(Refusal::SameSizeDifferentRoot {
                author: author.clone(),
                size: old,
            });
        }
        return Ok(());
    }
    let proof = proofs.get(author).map_or(&[][..], Vec::as_slice);
    if verify(old, new.seq, old_root, &new.root, proof) {
        Ok(())
    } else {
        Err(Refusal::Inconsistent {
            author: author.clone(),
            old,
            new: new.seq,
        })
    }
}

/// What a witness holding its own replica finds when it checks a checkpoint's heads against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplicaCheck {
    /// Every head is the replica's own slot at that seq, with the same root.
    Agrees,
    /// The replica lacks events the checkpoint states (it syncs, then checks again).
    Behind {
        author: MemberId,
        have: u64,
        stated: u64,
    },
    /// The replica holds another event at a stated head's seq: two heads for one seq, a fork
    /// whose other event the witness should fetch and publish as evidence.
    Differs {
        author: MemberId,
        seq: u64,
        stated: EventId,
        held: EventId,
    },
}

/// Checks stated heads against a replica's own feeds: each head must be the replica's slot at
/// that seq and the replica's root at that size must be the stated root.
pub fn check_replica(ledger: &Ledger, heads: &[FeedHead]) -> ReplicaCheck {
    for h in heads {
        let Some(feed) = ledger.feed(&h.author) else {
            return ReplicaCheck::Behind {
                author: h.author.clone(),
                have: 0,
                stated: h.seq,
            };
        };
        let have = feed.ids.len() as u64;
        let Some(held) = feed.ids.get((h.seq as usize).wrapping_sub(1)).copied() else {
            return ReplicaCheck::Behind {
                author: h.author.clone(),
                have,
                stated: h.seq,
            };
        };
        let root = feed.tree().root_at(h.seq).ok();
        if held != h.head || root != Some(h.root) {
            return ReplicaCheck::Differs {
                author: h.author.clone(),
                seq: h.seq,
                stated: h.head,
                held,
            };
        }
    }
    ReplicaCheck::Agrees
}

/// The consistency proofs a replica gives itself, from each feed's size in `state` to its size in
/// `heads`, for [`check`].
pub fn replica_proofs(
    ledger: &Ledger,
    state: &WitnessState,
    heads: &[FeedHead],
) -> BTreeMap<MemberId, Vec<Digest>> {
    heads
        .iter()
        .filter_map(|h| {
            let (old, _) = state.feeds.get(&h.author)?;
            let proof = ledger
                .feed(&h.author)?
                .tree()
                .consistency(*old, h.seq)
                .ok()?;
            Some((h.author.clone(), proof))
        })
        .collect()
}
