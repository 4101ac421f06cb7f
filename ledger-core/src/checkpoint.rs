//! Checkpoints: a signed statement of every feed head at one time (`feeds_root` over the sorted
//! heads), the proof that one author's head is in it, and signatures and cosignatures over it.

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId, NetworkId};
use crate::codec;
use crate::crypto::{sha256, KeyCache, SecretKey, SignatureError};
use crate::event::{Checkpoint, Cosignature, Govern};
use crate::governance::Governance;
use crate::ledger::Ledger;
use crate::merkle;
use crate::parcel_index::ParcelIndex;
use crate::types::MemberId;

/// Domain separation of a feed head's leaf in `feeds_root`.
pub const FEED_HEAD_CONTEXT: &[u8] = b"custody/feed-head/v1\0";
/// Domain separation of checkpoint signatures and cosignatures.
pub const CHECKPOINT_CONTEXT: &[u8] = b"custody/checkpoint/v1\0";
/// Most feeds one checkpoint may state (members are at most `genesis::MAX_MEMBERS` plus those
/// governance admits; a checkpoint's heads are served and proven one by one).
pub const MAX_CHECKPOINT_FEEDS: usize = 65_536;

/// One feed's head as a checkpoint states it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FeedHead {
    pub author: MemberId,
    /// The feed's size: the seq of its head.
    pub seq: u64,
    pub head: EventId,
    /// The RFC 6962 root of the feed's slots 1..=seq.
    pub root: Digest,
}

/// The leaf of a feed head in `feeds_root`.
pub fn head_leaf(h: &FeedHead) -> Digest {
    merkle::leaf_hash(&[FEED_HEAD_CONTEXT, &codec::encode(h)].concat())
}

/// Every feed's head in `ledger`, sorted by author. A forked feed is stated only up to the seq
/// before its fork: beyond it, which branch holds the slots depends on arrival order, and every
/// honest node must state the same heads.
pub fn feed_heads(ledger: &Ledger) -> Vec<FeedHead> {
    feed_heads_at(ledger, u64::MAX)
}

/// Every feed's head as of `cutoff`: the longest prefix of its events claimed at or before
/// `cutoff` (UNIX ms), whole feeds only (up to the seq before a fork), sorted by author. A
/// feed's claimed times never go backwards, so every replica that holds those prefixes states
/// the same heads, whatever else it holds: witnesses that checkpoint one cutoff cosign one
/// checkpoint.
pub fn feed_heads_at(ledger: &Ledger, cutoff: u64) -> Vec<FeedHead> {
    ledger
        .feeds()
        .iter()
        .filter_map(|(author, feed)| {
            let whole = feed
                .forked_at
                .map_or(feed.ids.len(), |f| feed.ids.len().min((f - 1) as usize));
            let claimed = |id: &EventId| ledger.event(id).map_or(u64::MAX, |m| m.time_ms);
            let size = feed.ids[..whole].partition_point(|id| claimed(id) <= cutoff);
            let head = *feed.ids.get(size.checked_sub(1)?)?;
            let root = feed.tree().root_at(size as u64).ok()?;
            Some(FeedHead {
                author: author.clone(),
                seq: size as u64,
                head,
                root,
            })
        })
        .collect()
}

/// True when `id` is in a slot that `heads` cover.
pub fn covered(ledger: &Ledger, heads: &[FeedHead], id: &EventId) -> bool {
    let Some(m) = ledger.event(id) else {
        return false;
    };
    let size = heads
        .binary_search_by(|h| h.author.cmp(&m.author))
        .map_or(0, |i| heads[i].seq);
    m.seq <= size
        && ledger
            .feed(&m.author)
            .and_then(|f| f.slot(m.seq))
            .is_some_and(|held| held == id)
}

/// The governance version that the records carried by covered events make, by themselves
/// (`govern` reads a stored carrier's record).
pub fn gov_at(
    ledger: &Ledger,
    heads: &[FeedHead],
    govern: impl Fn(&EventId) -> Option<Govern>,
) -> u64 {
    let Ok(mut chain) = Governance::from_genesis(ledger.genesis()) else {
        return 0;
    };
    let mut carriers: Vec<(u64, EventId)> = ledger
        .governance()
        .records()
        .flat_map(|r| r.carriers.iter().map(move |c| (r.version, *c)))
        .filter(|(_, c)| covered(ledger, heads, c))
        .collect();
    carriers.sort();
    for (_, c) in carriers {
        if let (Some(g), Some(m)) = (govern(&c), ledger.event(&c)) {
            chain.offer(c, m.gov, &g, |_| false);
        }
    }
    chain.latest()
}

/// The checkpoint of `ledger` as of `cutoff`: every feed's prefix claimed at or before it, and
/// the governance version its records make.
pub fn checkpoint_at(
    ledger: &Ledger,
    cutoff: u64,
    govern: impl Fn(&EventId) -> Option<Govern>,
) -> (Checkpoint, Vec<FeedHead>) {
    let (cp, heads, _) = checkpoint_with_index(ledger, cutoff, govern);
    (cp, heads)
}

/// [`checkpoint_at`], with the parcel index it commits to (for serving bundles of it).
pub fn checkpoint_with_index(
    ledger: &Ledger,
    cutoff: u64,
    govern: impl Fn(&EventId) -> Option<Govern>,
) -> (Checkpoint, Vec<FeedHead>, ParcelIndex) {
    let heads = feed_heads_at(ledger, cutoff);
    let index = ParcelIndex::build(ledger, &heads);
    let cp = Checkpoint {
        network: *ledger.network(),
        time_ms: cutoff,
        gov: gov_at(ledger, &heads, govern),
        feeds_root: feeds_root(&heads),
        feeds: heads.len() as u64,
        parcels_root: index.root(),
        parcels: index.len(),
    };
    (cp, heads, index)
}

/// The RFC 6962 root over the heads, in the order given (sorted by author).
pub fn feeds_root(heads: &[FeedHead]) -> Digest {
    let leaves: Vec<Digest> = heads.iter().map(head_leaf).collect();
    merkle::root(&leaves)
}

/// The checkpoint of `ledger` at `time_ms`.
pub fn checkpoint(ledger: &Ledger, time_ms: u64) -> (Checkpoint, Vec<FeedHead>) {
    let heads = feed_heads(ledger);
    let index = ParcelIndex::build(ledger, &heads);
    let cp = Checkpoint {
        network: *ledger.network(),
        time_ms,
        gov: ledger.governance().latest(),
        feeds_root: feeds_root(&heads),
        feeds: heads.len() as u64,
        parcels_root: index.root(),
        parcels: index.len(),
    };
    (cp, heads)
}

/// The id of a checkpoint: what its signatures sign.
pub fn checkpoint_id(cp: &Checkpoint) -> Digest {
    sha256(&[CHECKPOINT_CONTEXT, &codec::encode(cp)])
}

/// `member`'s signature of a checkpoint (as its producer or as a witness cosigning it).
pub fn cosign(key: &SecretKey, member: MemberId, cp: &Checkpoint) -> Cosignature {
    Cosignature {
        member,
        key: key.public(),
        signature: key.sign_checkpoint(&checkpoint_id(cp)),
    }
}

/// Checks a cosignature's signature (whether its key is a witness's is for the caller).
pub fn verify_cosignature(
    cp: &Checkpoint,
    c: &Cosignature,
    keys: &KeyCache,
) -> Result<(), SignatureError> {
    let vk = keys.get(&c.key)?;
    crate::crypto::verify_checkpoint(&vk, &checkpoint_id(cp), &c.signature)
}

/// Why a `Witness` event's checkpoint or cosignatures were refused at admission.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    #[error("the checkpoint is of network {got}, not this one")]
    WrongNetwork { got: NetworkId },
    #[error("the checkpoint states {0} feeds, more than {MAX_CHECKPOINT_FEEDS}")]
    TooManyFeeds(u64),
    #[error("cosignature {index} by {member}: {error}")]
    Signature {
        index: usize,
        member: MemberId,
        error: SignatureError,
    },
}

/// Checks a `Witness` event's checkpoint (this network, a bounded size) and every cosignature's
/// signature. Whether each cosigner has the witness duty is for whoever counts them.
pub fn check_witness_event(
    network: &NetworkId,
    cp: &Checkpoint,
    cosignatures: &[Cosignature],
    keys: &KeyCache,
) -> Result<(), CosignatureError> {
    if &cp.network != network {
        return Err(CosignatureError::WrongNetwork { got: cp.network });
    }
    if cp.feeds > MAX_CHECKPOINT_FEEDS as u64 {
        return Err(CosignatureError::TooManyFeeds(cp.feeds));
    }
    for (index, c) in cosignatures.iter().enumerate() {
        verify_cosignature(cp, c, keys).map_err(|error| CosignatureError::Signature {
            index,
            member: c.member.clone(),
            error,
        })?;
    }
    Ok(())
}

/// Why a feed head's proof does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeadProofError {
    #[error("the checkpoint states no feed of {0}")]
    NoFeed(MemberId),
    #[error("the head of {0} is not in the checkpoint's feeds root")]
    NotIncluded(MemberId),
    #[error("the checkpoint is of network {got}, not {expected}")]
    WrongNetwork { expected: NetworkId, got: NetworkId },
}

/// That one feed's head is in a checkpoint: the head, its leaf index and audit path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadProof {
    pub head: FeedHead,
    pub index: u64,
    pub path: Vec<Digest>,
}

/// The proof that `author`'s head is in the checkpoint whose heads are `heads`.
pub fn head_proof(heads: &[FeedHead], author: &MemberId) -> Result<HeadProof, HeadProofError> {
    let index = heads
        .binary_search_by(|h| h.author.cmp(author))
        .map_err(|_| HeadProofError::NoFeed(author.clone()))?;
    let leaves: Vec<Digest> = heads.iter().map(head_leaf).collect();
    let path = merkle::inclusion_proof(&leaves, index)
        .ok_or_else(|| HeadProofError::NoFeed(author.clone()))?;
    Ok(HeadProof {
        head: heads[index].clone(),
        index: index as u64,
        path,
    })
}

/// Checks a head proof against a checkpoint of `network`.
pub fn verify_head(
    network: &NetworkId,
    cp: &Checkpoint,
    proof: &HeadProof,
) -> Result<(), HeadProofError> {
    if &cp.network != network {
        return Err(HeadProofError::WrongNetwork {
            expected: *network,
            got: cp.network,
        });
    }
    let ok = merkle::verify_inclusion(
        &head_leaf(&proof.head),
        proof.index,
        cp.feeds,
        &proof.path,
        &cp.feeds_root,
    );
    if ok {
        Ok(())
    } else {
        Err(HeadProofError::NotIncluded(proof.head.author.clone()))
    }
}
