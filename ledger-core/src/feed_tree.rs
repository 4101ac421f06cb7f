//! Feed trees: an append-only RFC 6962 tree keeping every complete subtree's hash, so that roots at
//! earlier sizes, inclusion proofs and consistency proofs come from stored hashes.
//!
//! A tree of n leaves keeps about 2n digests (the leaves, then each level of complete nodes). A
//! root at any size takes at most one hash per bit of the size; a proof at most one such root per
//! level, O(log^2 n) hashing, never a pass over the leaves.

use serde::{Deserialize, Serialize};

use crate::bytes::{Digest, EventId};
use crate::merkle::{
    empty_root, feed_leaf, node_hash, split_point, verify_consistency, verify_inclusion, Frontier,
};
use crate::types::MemberId;

/// An append-only RFC 6962 tree that keeps the hash of every complete subtree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedTree {
    /// `levels[h][i]`: the root of the perfect subtree over leaves `i * 2^h .. (i + 1) * 2^h`;
    /// `levels[0]` are the leaves. Only complete subtrees are kept.
    levels: Vec<Vec<Digest>>,
}

/// A request a tree cannot answer (sizes and indexes are counted in leaves).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TreeError {
    #[error("leaf index {index} is not in a tree of {size} leaves")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("a tree of {size} leaves was asked for; only {len} leaves are stored")]
    SizeBeyondTree { size: u64, len: u64 },
    #[error("the old size {old} is larger than the new size {new}")]
    SizesReversed { old: u64, new: u64 },
}

impl FeedTree {
    /// An empty tree.
    pub fn new() -> FeedTree {
        FeedTree::default()
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends one already-hashed leaf (amortised: one node hash per leaf).
    pub fn push(&mut self, leaf: Digest) {
        let mut node = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let nodes = &mut self.levels[level];
            nodes.push(node);
            let n = nodes.len();
            if n % 2 == 1 {
                return;
            }
            node = node_hash(&nodes[n - 2], &nodes[n - 1]);
            level += 1;
        }
    }

    /// The leaf at `index`.
    pub fn leaf(&self, index: u64) -> Option<&Digest> {
        self.levels
            .first()
            .and_then(|l| l.get(usize::try_from(index).ok()?))
    }

    /// The root of the whole tree (as cheap as [`Frontier::root`]).
    pub fn root(&self) -> Digest {
        self.range_root(0, self.size())
    }

    /// The root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Digest, TreeError> {
        self.check_size(size)?;
        Ok(self.range_root(0, size))
    }

    /// The frontier of the first `size` leaves (copied from stored hashes, no hashing): what a
    /// chain branching off after them extends.
    pub fn frontier_at(&self, size: u64) -> Result<Frontier, TreeError> {
        self.check_size(size)?;
        Ok(Frontier::from_peaks(size, self.peaks(0, size).collect()))
    }

    /// The frontier of the whole tree.
    pub fn frontier(&self) -> Frontier {
        Frontier::from_peaks(self.size(), self.peaks(0, self.size()).collect())
    }

    /// The audit path of leaf `index` in the tree of the first `size` leaves (RFC 6962 section
    /// 2.1.1), the lowest sibling first.
    pub fn inclusion(&self, index: u64, size: u64) -> Result<Vec<Digest>, TreeError> {
        self.check_size(size)?;
        if index >= size {
            return Err(TreeError::IndexOutOfRange { index, size });
        }
        // PATH(index, D[lo:hi]) from the top: each step keeps the side holding the leaf and
        // proves the other side by its root.
        let (mut lo, mut hi) = (0, size);
        let mut path = Vec::new();
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if index < lo + k {
                path.push(self.range_root(lo + k, hi));
                hi = lo + k;
            } else {
                path.push(self.range_root(lo, lo + k));
                lo += k;
            }
        }
        path.reverse();
        Ok(path)
    }

    /// The consistency proof from the tree of the first `old_size` leaves to the tree of the
    /// first `new_size` (RFC 6962 section 2.1.2); empty when `old_size` is 0 or `new_size`.
    pub fn consistency(&self, old_size: u64, new_size: u64) -> Result<Vec<Digest>, TreeError> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(TreeError::SizesReversed {
                old: old_size,
                new: new_size,
            });
        }
        let mut proof = Vec::new();
        if old_size == 0 || old_size == new_size {
            return Ok(proof);
        }
        // SUBPROOF(m, D[lo:hi], whole) from the top; `m` counts from `lo`.
        let (mut lo, mut hi, mut m, mut whole) = (0, new_size, old_size, true);
        loop {
            let n = hi - lo;
            if m == n {
                if !whole {
                    proof.push(self.range_root(lo, hi));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                proof.push(self.range_root(lo + k, hi));
                hi = lo + k;
            } else {
                proof.push(self.range_root(lo, lo + k));
                lo += k;
                m -= k;
                whole = false;
            }
        }
        proof.reverse();
        Ok(proof)
    }

    /// Heap bytes held (the capacity of every level).
    pub fn heap_bytes(&self) -> usize {
        self.levels.capacity() * std::mem::size_of::<Vec<Digest>>()
            + self
                .levels
                .iter()
                .map(|l| l.capacity() * std::mem::size_of::<Digest>())
                .sum::<usize>()
    }

    fn check_size(&self, size: u64) -> Result<(), TreeError> {
        let len = self.size();
        if size > len {
            return Err(TreeError::SizeBeyondTree { size, len });
        }
        Ok(())
    }

    /// The roots of the perfect subtrees making up leaves `lo..hi`, largest first: one per bit
    /// set in `hi - lo`. `lo` must be a multiple of the largest one's size (true of every range
    /// RFC 6962's recursion visits), so each is a stored node.
    fn peaks(&self, lo: u64, hi: u64) -> impl Iterator<Item = Digest> + '_ {
        let width = hi - lo;
        let mut start = lo;
        (0..u64::BITS).rev().filter_map(move |level| {
            if (width >> level) & 1 == 0 {
                return None;
            }
            debug_assert_eq!(start % (1 << level), 0, "unaligned subtree");
            let node = self.levels[level as usize][(start >> level) as usize];
            start += 1 << level;
            Some(node)
        })
    }

    /// The RFC 6962 root of leaves `lo..hi` (a range RFC 6962's recursion visits).
    fn range_root(&self, lo: u64, hi: u64) -> Digest {
        let peaks: Vec<Digest> = self.peaks(lo, hi).collect();
        let mut from_right = peaks.iter().rev();
        match from_right.next() {
            None => empty_root(),
            Some(last) => from_right.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// That one event is in a feed: the leaf `leaf_index` (its seq minus one) of the feed tree of
/// `size` leaves (the feed's first `size` events), whose root is `root`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub size: u64,
    pub root: Digest,
    /// The audit path, the lowest sibling first.
    pub proof: Vec<Digest>,
}

impl InclusionProof {
    /// True when event `id` is this proof's leaf in the tree of `trusted_size` leaves whose root
    /// is `trusted_root`, both taken from one trusted statement (an event's seq minus one and its
    /// `feed_root`, a checkpoint). The size must be trusted too: RFC 6962 hashes do not encode
    /// it, so a proof can also check out under a root of another size.
    pub fn verify(&self, id: &EventId, trusted_size: u64, trusted_root: &Digest) -> bool {
        self.size == trusted_size
            && self.root == *trusted_root
            && verify_inclusion(
                &feed_leaf(id),
                self.leaf_index,
                trusted_size,
                &self.proof,
                trusted_root,
            )
    }
}

/// That a feed's first `to` events extend its first `from` events (roots `to_root`, `from_root`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: Digest,
    pub to_root: Digest,
    pub proof: Vec<Digest>,
}

impl ConsistencyProof {
    /// True when the tree of `to` leaves with root `to_root` extends the tree of `from` leaves
    /// with root `from_root`, each (size, root) pair taken from a trusted statement, and they
    /// are the ones this proof names.
    pub fn verify(&self, from: (u64, &Digest), to: (u64, &Digest)) -> bool {
        (self.from, &self.from_root) == from
            && (self.to, &self.to_root) == to
            && verify_consistency(from.0, to.0, from.1, to.1, &self.proof)
    }
}

/// Why a feed proof was not given; each says what to ask for instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedProofError {
    #[error("no feed for {0} here: the node stores no event of this author")]
    UnknownAuthor(MemberId),
    #[error("seq {seq} is not among the first {size} events of a feed: ask for a seq from 1 to the size")]
    SeqOutOfRange { seq: u64, size: u64 },
    #[error("size {size} is beyond the {len} events of {author}'s feed here: ask for a size up to {len}")]
    SizeBeyondFeed {
        author: MemberId,
        size: u64,
        len: u64,
    },
    #[error("from {from} is larger than to {to}: the older size comes first")]
    SizesReversed { from: u64, to: u64 },
}

/// The inclusion proof of the event at `seq` in the first `size` events of `author`'s feed,
/// whose tree is `tree`.
pub fn feed_inclusion(
    author: &MemberId,
    tree: &FeedTree,
    seq: u64,
    size: u64,
) -> Result<InclusionProof, FeedProofError> {
    if seq == 0 || seq > size {
        return Err(FeedProofError::SeqOutOfRange { seq, size });
    }
    let beyond = |_| FeedProofError::SizeBeyondFeed {
        author: author.clone(),
        size,
        len: tree.size(),
    };
    Ok(InclusionProof {
        leaf_index: seq - 1,
        size,
        root: tree.root_at(size).map_err(beyond)?,
        proof: tree.inclusion(seq - 1, size).map_err(beyond)?,
    })
}

/// The consistency proof between the first `from` and the first `to` events of `author`'s feed,
/// whose tree is `tree`.
pub fn feed_consistency(
    author: &MemberId,
    tree: &FeedTree,
    from: u64,
    to: u64,
) -> Result<ConsistencyProof, FeedProofError> {
    if from > to {
        return Err(FeedProofError::SizesReversed { from, to });
    }
    let beyond = |_| FeedProofError::SizeBeyondFeed {
        author: author.clone(),
        size: to,
        len: tree.size(),
    };
    Ok(ConsistencyProof {
        from,
        to,
        from_root: tree.root_at(from).map_err(beyond)?,
        to_root: tree.root_at(to).map_err(beyond)?,
        proof: tree.consistency(from, to).map_err(beyond)?,
    })
}
