//! RFC 6962 Merkle trees: roots, an append-only frontier for feed roots, inclusion and consistency
//! proofs from a leaf list, and their verification.

use crate::bytes::Digest;
use crate::crypto::sha256;

/// Deepest tree handled (2^64 leaves): the most hashes in an inclusion proof.
pub const MAX_PROOF_LEN: usize = 64;
/// The most hashes in a consistency proof (a seed and at most two per level): a longer one is
/// refused before any hashing.
pub const MAX_CONSISTENCY_PROOF_LEN: usize = 2 * MAX_PROOF_LEN + 1;

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Digest {
    sha256(&[&[0u8], data])
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    sha256(&[&[1u8], left.as_bytes(), right.as_bytes()])
}

/// The root of an empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Digest {
    sha256(&[])
}

/// Largest power of two strictly less than `n` (n >= 2): RFC 6962's split point.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// [`split`] for tree sizes given as `u64`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// The root over already-hashed leaves.
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path for leaf `index` in the tree over `leaves` (RFC 6962 section 2.1.1).
pub fn inclusion_proof(leaves: &[Digest], index: usize) -> Option<Vec<Digest>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    fn walk(leaves: &[Digest], index: usize, path: &mut Vec<Digest>) {
        if leaves.len() <= 1 {
            return;
        }
        let k = split(leaves.len());
        if index < k {
            walk(&leaves[..k], index, path);
            path.push(root(&leaves[k..]));
        } else {
            walk(&leaves[k..], index - k, path);
            path.push(root(&leaves[..k]));
        }
    }
    walk(leaves, index, &mut path);
    Some(path)
}

/// Checks an audit path (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    leaf: &Digest,
    index: u64,
    size: u64,
    path: &[Digest],
    expected_root: &Digest,
) -> bool {
    if index >= size || path.len() > MAX_PROOF_LEN {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == expected_root
}

/// The consistency proof between the tree over the first `old_size` of `leaves` and the tree over
/// all of them (RFC 6962 section 2.1.2, `PROOF(m, D[n])`); empty when `old_size` is 0 or every
/// leaf. `None` when `old_size` is beyond the leaves.
pub fn consistency_proof(leaves: &[Digest], old_size: usize) -> Option<Vec<Digest>> {
    if old_size > leaves.len() {
        return None;
    }
    // SUBPROOF(m, D[lo:hi], whole), with the hashes of the deepest call first.
    fn subproof(m: usize, leaves: &[Digest], whole: bool, proof: &mut Vec<Digest>) {
        let n = leaves.len();
        if m == n {
            if !whole {
                proof.push(root(leaves));
            }
            return;
        }
        let k = split(n);
        if m <= k {
            subproof(m, &leaves[..k], whole, proof);
            proof.push(root(&leaves[k..]));
        } else {
            subproof(m - k, &leaves[k..], false, proof);
            proof.push(root(&leaves[..k]));
        }
    }
    let mut proof = Vec::new();
    if old_size > 0 && old_size < leaves.len() {
        subproof(old_size, leaves, true, &mut proof);
    }
    Some(proof)
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of `old_size`
/// leaves with root `old_root` (RFC 9162 section 2.1.4.2). Equal sizes need equal roots and an
/// empty proof; size 0 needs the empty tree's root and an empty proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Digest,
    new_root: &Digest,
    proof: &[Digest],
) -> bool {
    if old_size > new_size || proof.len() > MAX_CONSISTENCY_PROOF_LEN {
        return false;
    }
    if old_size == new_size {
        return proof.is_empty() && old_root == new_root;
    }
    if old_size == 0 {
        return proof.is_empty() && *old_root == empty_root();
    }
    let Some((first, rest)) = proof.split_first() else {
        return false;
    };
    // The old tree's root is the proof's seed when it is a whole subtree of the new one.
    let (seed, path) = if old_size.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*seed, *seed);
    for c in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && fr == *old_root && sr == *new_root
}

/// The right edge of an append-only tree: enough to compute the root and append in O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees that make up the tree, largest first.
    peaks: Vec<Digest>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves whose perfect subtrees, largest first, have the
    /// roots `peaks` (one per bit set in `size`).
    pub(crate) fn from_peaks(size: u64, peaks: Vec<Digest>) -> Frontier {
        debug_assert_eq!(peaks.len() as u32, size.count_ones());
        Frontier { size, peaks }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Roots of the perfect subtrees, largest first.
    pub fn peaks(&self) -> &[Digest] {
        &self.peaks
    }

    /// Appends one already-hashed leaf.
    pub fn push(&mut self, leaf: Digest) {
        let mut node = leaf;
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.peaks.pop().unwrap_or_default();
            node = node_hash(&left, &node);
            size >>= 1;
        }
        self.peaks.push(node);
        self.size += 1;
    }

    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> Digest {
        let mut peaks = self.peaks.iter().rev();
        match peaks.next() {
            None => empty_root(),
            Some(last) => peaks.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The leaf hash of an event id in a feed tree.
pub fn feed_leaf(id: &Digest) -> Digest {
    leaf_hash(id.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Digest {
        s.parse().expect("hex")
    }

    // Known-answer vectors from RFC 6962's reference implementation (transparency-dev/merkle testonly).
    const LEAVES: [&[u8]; 8] = [
        b"",
        b"\x00",
        b"\x10",
        b"\x20\x21",
        b"\x30\x31",
        b"\x40\x41\x42\x43",
        b"\x50\x51\x52\x53\x54\x55\x56\x57",
        b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn leaves() -> Vec<Digest> {
        LEAVES.iter().map(|l| leaf_hash(l)).collect()
    }

    #[test]
    fn roots_match_rfc6962_vectors_for_every_size() {
        let leaves = leaves();
        let mut frontier = Frontier::default();
        assert_eq!(frontier.root(), h(ROOTS[0]));
        for n in 1..=8 {
            assert_eq!(root(&leaves[..n]), h(ROOTS[n]), "root of {n}");
            frontier.push(leaves[n - 1]);
            assert_eq!(frontier.root(), h(ROOTS[n]), "frontier of {n}");
        }
    }

    #[test]
    fn inclusion_proofs_match_vectors() {
        let leaves = leaves();
        let p0 = inclusion_proof(&leaves, 0).expect("in range");
        assert_eq!(
            p0,
            vec![
                h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
                h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
                h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
            ]
        );
        let p5 = inclusion_proof(&leaves, 5).expect("in range");
        assert_eq!(
            p5,
            vec![
                h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
                h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
                h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            ]
        );
    }

    #[test]
    fn every_proof_verifies_and_tampering_fails() {
        let leaves: Vec<Digest> = (0u32..37).map(|i| leaf_hash(&i.to_le_bytes())).collect();
        let mut frontier = Frontier::default();
        for n in 1..=leaves.len() {
            frontier.push(leaves[n - 1]);
            let tree = &leaves[..n];
            let r = root(tree);
            assert_eq!(frontier.root(), r);
            for i in 0..n {
                let path = inclusion_proof(tree, i).expect("in range");
                let (i64, n64) = (i as u64, n as u64);
                assert!(
                    verify_inclusion(&tree[i], i64, n64, &path, &r),
                    "leaf {i} of {n}"
                );
                assert!(
                    !verify_inclusion(&tree[i], n64, n64, &path, &r),
                    "index out of range"
                );
                if (i ^ 1) < n {
                    assert!(
                        !verify_inclusion(&tree[i], i64 ^ 1, n64, &path, &r),
                        "wrong index"
                    );
                }
                if n > 1 {
                    assert!(!verify_inclusion(&tree[(i + 1) % n], i64, n64, &path, &r));
                    let mut bad = path.clone();
                    bad[0].0[0] ^= 1;
                    assert!(!verify_inclusion(&tree[i], i64, n64, &bad, &r));
                }
            }
        }
    }
}
