//! RFC 6962 proofs: consistency proofs against published vectors and an independent reference,
//! feed trees against the leaf-list proofs (property tests), every corrupted proof refused, and
//! the store's feed proofs with their errors.

mod common;

use common::*;
use ledger_core::bytes::Digest;
use ledger_core::feed_tree::{
    feed_consistency, feed_inclusion, FeedProofError, FeedTree, TreeError,
};
use ledger_core::ledger::Limits;
use ledger_core::merkle::{
    consistency_proof, empty_root, feed_leaf, inclusion_proof, leaf_hash, node_hash, root,
    verify_consistency, verify_inclusion, MAX_CONSISTENCY_PROOF_LEN,
};
use ledger_core::store::Store;
use proptest::prelude::*;

fn h(s: &str) -> Digest {
    s.parse().expect("hex")
}

fn leaves(n: usize) -> Vec<Digest> {
    (0..n as u32).map(|i| leaf_hash(&i.to_le_bytes())).collect()
}

fn tree_of(leaves: &[Digest]) -> FeedTree {
    let mut t = FeedTree::new();
    for l in leaves {
        t.push(*l);
    }
    t
}

// The leaves of RFC 6962's reference implementation (transparency-dev/merkle testonly).
const RFC_LEAVES: [&[u8]; 8] = [
    b"",
    b"\x00",
    b"\x10",
    b"\x20\x21",
    b"\x30\x31",
    b"\x40\x41\x42\x43",
    b"\x50\x51\x52\x53\x54\x55\x56\x57",
    b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
];

/// Published consistency proofs over those leaves: (old size, new size, proof).
const RFC_CONSISTENCY: [(usize, usize, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

#[test]
fn consistency_proofs_match_published_vectors() {
    let leaves: Vec<Digest> = RFC_LEAVES.iter().map(|l| leaf_hash(l)).collect();
    let tree = tree_of(&leaves);
    for (old, new, expected) in RFC_CONSISTENCY {
        let expected: Vec<Digest> = expected.iter().map(|s| h(s)).collect();
        let proof = consistency_proof(&leaves[..new], old).expect("in range");
        assert_eq!(proof, expected, "leaf list, {old} to {new}");
        let stored = tree.consistency(old as u64, new as u64).expect("in range");
        assert_eq!(stored, expected, "feed tree, {old} to {new}");
        let (r1, r2) = (root(&leaves[..old]), root(&leaves[..new]));
        assert!(verify_consistency(old as u64, new as u64, &r1, &r2, &proof));
    }
}

/// Reference: the tree built bottom-up, a node with no right sibling carried up unchanged (the
/// same tree as RFC 6962's recursive split, computed without it).
fn ref_levels(leaves: &[Digest]) -> Vec<Vec<Digest>> {
    let mut levels = vec![leaves.to_vec()];
    while levels.last().expect("one level").len() > 1 {
        let next = levels
            .last()
            .expect("one level")
            .chunks(2)
            .map(|c| match c {
                [l, r] => node_hash(l, r),
                [only] => *only,
                _ => unreachable!("chunks of two"),
            })
            .collect();
        levels.push(next);
    }
    levels
}

fn ref_root(leaves: &[Digest]) -> Digest {
    match leaves {
        [] => empty_root(),
        _ => ref_levels(leaves).last().expect("top")[0],
    }
}

/// Reference audit path of `index`, from level `from` up: each level's sibling, if it has one.
fn ref_path(levels: &[Vec<Digest>], index: usize, from: usize) -> Vec<Digest> {
    let mut idx = index >> from;
    let mut path = Vec::new();
    for level in &levels[from..levels.len() - 1] {
        if let Some(sibling) = level.get(idx ^ 1) {
            path.push(*sibling);
        }
        idx >>= 1;
    }
    path
}

/// Reference consistency proof: the complete subtree that ends the old tree (unless it is the
/// whole old tree), then its audit path in the new tree.
fn ref_consistency(leaves: &[Digest], old: usize) -> Vec<Digest> {
    if old == 0 || old == leaves.len() {
        return Vec::new();
    }
    let levels = ref_levels(leaves);
    let shift = old.trailing_zeros() as usize;
    let mut proof = Vec::new();
    if !old.is_power_of_two() {
        proof.push(levels[shift][(old - 1) >> shift]);
    }
    proof.extend(ref_path(&levels, old - 1, shift));
    proof
}

#[test]
fn every_consistency_proof_up_to_32_leaves_matches_the_reference_and_verifies() {
    let all = leaves(32);
    let tree = tree_of(&all);
    for new in 0..=32usize {
        let leaves = &all[..new];
        let new_root = ref_root(leaves);
        assert_eq!(root(leaves), new_root, "root of {new}");
        assert_eq!(
            tree.root_at(new as u64),
            Ok(new_root),
            "stored root of {new}"
        );
        let levels = ref_levels(leaves);
        for i in 0..new {
            let path = ref_path(&levels, i, 0);
            assert_eq!(
                inclusion_proof(leaves, i),
                Some(path.clone()),
                "{i} in {new}"
            );
            assert_eq!(tree.inclusion(i as u64, new as u64), Ok(path));
        }
        for old in 0..=new {
            let expected = ref_consistency(leaves, old);
            let proof = consistency_proof(leaves, old).expect("in range");
            assert_eq!(proof, expected, "{old} to {new}");
            assert_eq!(tree.consistency(old as u64, new as u64), Ok(expected));
            let old_root = ref_root(&leaves[..old]);
            assert!(
                verify_consistency(old as u64, new as u64, &old_root, &new_root, &proof),
                "{old} to {new} verifies"
            );
        }
    }
}

#[test]
fn consistency_edge_cases() {
    let all = leaves(9);
    let r = |n: usize| root(&all[..n]);
    // Size 0 is consistent with any tree, with an empty proof and the empty tree's root only.
    assert!(verify_consistency(0, 0, &empty_root(), &empty_root(), &[]));
    assert!(verify_consistency(0, 5, &empty_root(), &r(5), &[]));
    assert!(!verify_consistency(0, 5, &r(1), &r(5), &[]));
    assert!(!verify_consistency(0, 5, &empty_root(), &r(5), &[all[0]]));
    // Equal sizes: equal roots and nothing else.
    assert!(verify_consistency(5, 5, &r(5), &r(5), &[]));
    assert!(!verify_consistency(5, 5, &r(5), &r(4), &[]));
    assert!(!verify_consistency(5, 5, &r(5), &r(5), &[r(5)]));
    // Size 1, powers of two and not, in both places.
    for (old, new) in [
        (1, 2),
        (1, 9),
        (2, 4),
        (4, 8),
        (3, 4),
        (4, 5),
        (5, 8),
        (8, 9),
        (7, 8),
    ] {
        let proof = consistency_proof(&all[..new], old).expect("in range");
        assert!(!proof.is_empty(), "{old} to {new} needs hashes");
        assert!(verify_consistency(
            old as u64,
            new as u64,
            &r(old),
            &r(new),
            &proof
        ));
        assert!(!verify_consistency(
            old as u64,
            new as u64,
            &r(old),
            &r(new),
            &[]
        ));
    }
    // Shrinking is never consistent, nor a size beyond the leaves answerable.
    assert!(!verify_consistency(5, 4, &r(5), &r(4), &[]));
    assert_eq!(consistency_proof(&all[..4], 5), None);
    // An oversized proof is refused before any hashing.
    let long = vec![all[0]; MAX_CONSISTENCY_PROOF_LEN + 1];
    assert!(!verify_consistency(3, u64::MAX, &r(3), &r(4), &long));
}

#[test]
fn feed_tree_refuses_what_it_cannot_answer() {
    let tree = tree_of(&leaves(5));
    assert_eq!(
        tree.inclusion(5, 5),
        Err(TreeError::IndexOutOfRange { index: 5, size: 5 })
    );
    assert_eq!(
        tree.inclusion(0, 6),
        Err(TreeError::SizeBeyondTree { size: 6, len: 5 })
    );
    assert_eq!(
        tree.consistency(4, 3),
        Err(TreeError::SizesReversed { old: 4, new: 3 })
    );
    assert_eq!(
        tree.consistency(2, u64::MAX),
        Err(TreeError::SizeBeyondTree {
            size: u64::MAX,
            len: 5
        })
    );
    assert_eq!(tree.root_at(0), Ok(empty_root()));
    assert!(tree.root_at(6).is_err());
    assert!(tree.frontier_at(6).is_err());
    assert_eq!(FeedTree::new().root(), empty_root());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// For random sizes and indexes the stored tree's proofs equal the leaf-list proofs and
    /// verify, and its roots and frontiers at any earlier size equal the leaf list's.
    #[test]
    fn feed_tree_proofs_equal_the_leaf_list_proofs(
        len in 1usize..3000,
        size_frac in 0.0f64..=1.0,
        index_frac in 0.0f64..1.0,
        old_frac in 0.0f64..=1.0,
    ) {
        let all = leaves(len);
        let tree = tree_of(&all);
        prop_assert_eq!(tree.size(), len as u64);
        prop_assert_eq!(tree.root(), root(&all));
        let size = ((len as f64 * size_frac) as usize).clamp(1, len);
        let index = ((size as f64 * index_frac) as usize).min(size - 1);
        let old = ((size as f64 * old_frac) as usize).min(size);
        let prefix = &all[..size];
        let r = root(prefix);
        prop_assert_eq!(tree.root_at(size as u64), Ok(r));
        prop_assert_eq!(tree.frontier_at(size as u64).expect("in range").root(), r);
        prop_assert_eq!(tree.frontier_at(size as u64).expect("in range").size(), size as u64);
        let path = tree.inclusion(index as u64, size as u64).expect("in range");
        prop_assert_eq!(Some(path.clone()), inclusion_proof(prefix, index));
        prop_assert!(verify_inclusion(&all[index], index as u64, size as u64, &path, &r));
        let proof = tree.consistency(old as u64, size as u64).expect("in range");
        prop_assert_eq!(Some(proof.clone()), consistency_proof(prefix, old));
        prop_assert_eq!(tree.root_at(old as u64), Ok(root(&all[..old])));
        prop_assert!(verify_consistency(old as u64, size as u64, &root(&all[..old]), &r, &proof));
    }
}

/// Every way one hash list can be corrupted: each bit of each hash flipped, each hash dropped,
/// one added at each place (a new hash, or a copy of a neighbour), each two different hashes
/// swapped.
fn corrupted(proof: &[Digest]) -> Vec<Vec<Digest>> {
    let mut out = Vec::new();
    for p in 0..proof.len() {
        for bit in 0..256 {
            let mut bad = proof.to_vec();
            bad[p].0[bit / 8] ^= 1 << (bit % 8);
            out.push(bad);
        }
        let mut dropped = proof.to_vec();
        dropped.remove(p);
        out.push(dropped);
        for q in p + 1..proof.len() {
            if proof[p] != proof[q] {
                let mut swapped = proof.to_vec();
                swapped.swap(p, q);
                out.push(swapped);
            }
        }
    }
    for at in 0..=proof.len() {
        let extra = [Some(leaf_hash(b"extra")), proof.get(at).copied()];
        for e in extra.into_iter().flatten() {
            let mut added = proof.to_vec();
            added.insert(at, e);
            out.push(added);
        }
    }
    out
}

/// Each bit of `d` flipped.
fn flips(d: &Digest) -> impl Iterator<Item = Digest> + '_ {
    (0..256).map(move |bit| {
        let mut bad = *d;
        bad.0[bit / 8] ^= 1 << (bit % 8);
        bad
    })
}

/// Largest tree of the mutation tests; sizes and indexes are mutated up to one beyond.
const MUTATED_UP_TO: usize = 20;

#[test]
fn every_corrupted_inclusion_proof_is_refused() {
    let all = leaves(MUTATED_UP_TO + 2);
    let roots: Vec<Digest> = (0..=MUTATED_UP_TO + 1).map(|n| root(&all[..n])).collect();
    // A claim is true when the proof is the honest one for that leaf, index, size and root.
    let honest = |leaf: &Digest, i: u64, n: u64, path: &[Digest], r: &Digest| {
        let (i, n) = (i as usize, n as usize);
        n <= MUTATED_UP_TO + 1
            && i < n
            && all[i] == *leaf
            && roots[n] == *r
            && inclusion_proof(&all[..n], i).as_deref() == Some(path)
    };
    for n in 1..=MUTATED_UP_TO {
        for i in 0..n {
            let (leaf, path, r) = (
                all[i],
                inclusion_proof(&all[..n], i).expect("in range"),
                roots[n],
            );
            let (i64, n64) = (i as u64, n as u64);
            assert!(verify_inclusion(&leaf, i64, n64, &path, &r), "{i} in {n}");
            let mut claims: Vec<(Digest, u64, u64, Vec<Digest>, Digest)> = Vec::new();
            for bad in corrupted(&path) {
                claims.push((leaf, i64, n64, bad, r));
            }
            for other in (0..=n as u64 + 1).chain([u64::MAX]).filter(|j| *j != i64) {
                claims.push((leaf, other, n64, path.clone(), r));
            }
            // Another size comes with its own root: RFC 6962 hashes do not encode the size, so
            // a verifier takes size and root from one signed statement (the proof of leaf 0 in
            // 3 leaves also checks out as "size 4" under the 3-leaf root; `InclusionProof::
            // verify` therefore takes a trusted size). Under that size's root it must fail.
            for other in (1..=MUTATED_UP_TO as u64 + 1).filter(|m| *m != n64) {
                claims.push((leaf, i64, other, path.clone(), roots[other as usize]));
            }
            for bad_root in flips(&r).chain(roots.iter().copied().filter(|x| *x != r)) {
                claims.push((leaf, i64, n64, path.clone(), bad_root));
            }
            for bad_leaf in flips(&leaf).chain(all.iter().copied().filter(|x| *x != leaf)) {
                claims.push((bad_leaf, i64, n64, path.clone(), r));
            }
            let mut refused = 0;
            for (l, j, m, p, root) in &claims {
                if honest(l, *j, *m, p, root) {
                    continue;
                }
                assert!(
                    !verify_inclusion(l, *j, *m, p, root),
                    "corrupted proof of {i} in {n} accepted: index {j}, size {m}, {} hashes",
                    p.len()
                );
                refused += 1;
            }
            assert!(refused > 0, "no corruption tried for {i} in {n}");
        }
    }
}

#[test]
fn every_corrupted_consistency_proof_is_refused() {
    let all = leaves(MUTATED_UP_TO + 2);
    let roots: Vec<Digest> = (0..=MUTATED_UP_TO + 1).map(|n| root(&all[..n])).collect();
    // A claim is true when the proof is the honest one for those sizes and roots. Every tree
    // extends the empty one: from size 0 the new root is not constrained, only the old one.
    let honest = |m: u64, n: u64, r1: &Digest, r2: &Digest, p: &[Digest]| {
        let (m, n) = (m as usize, n as usize);
        if m == 0 && m <= n {
            return *r1 == empty_root() && p.is_empty();
        }
        m <= n
            && n <= MUTATED_UP_TO + 1
            && roots[m] == *r1
            && roots[n] == *r2
            && consistency_proof(&all[..n], m).as_deref() == Some(p)
    };
    let limit = MUTATED_UP_TO as u64 + 1;
    for n in 0..=MUTATED_UP_TO {
        for m in 0..=n {
            let proof = consistency_proof(&all[..n], m).expect("in range");
            let (m64, n64, r1, r2) = (m as u64, n as u64, roots[m], roots[n]);
            assert!(verify_consistency(m64, n64, &r1, &r2, &proof), "{m} to {n}");
            let mut claims: Vec<(u64, u64, Digest, Digest, Vec<Digest>)> = Vec::new();
            for bad in corrupted(&proof) {
                claims.push((m64, n64, r1, r2, bad));
            }
            // Other sizes, each with its own root, and with the roots left as they were.
            for other in (0..=limit).filter(|x| *x != m64) {
                claims.push((other, n64, roots[other as usize], r2, proof.clone()));
                claims.push((other, n64, r1, r2, proof.clone()));
            }
            for other in (0..=limit).filter(|x| *x != n64) {
                claims.push((m64, other, r1, roots[other as usize], proof.clone()));
            }
            claims.push((n64, m64, r2, r1, proof.clone()));
            claims.push((m64, n64, r2, r1, proof.clone()));
            for bad in flips(&r1).chain(roots.iter().copied().filter(|x| *x != r1)) {
                claims.push((m64, n64, bad, r2, proof.clone()));
            }
            for bad in flips(&r2).chain(roots.iter().copied().filter(|x| *x != r2)) {
                claims.push((m64, n64, r1, bad, proof.clone()));
            }
            let mut refused = 0;
            for (a, b, x, y, p) in &claims {
                if honest(*a, *b, x, y, p) {
                    continue;
                }
                assert!(
                    !verify_consistency(*a, *b, x, y, p),
                    "corrupted proof of {m} to {n} accepted as {a} to {b} with {} hashes",
                    p.len()
                );
                refused += 1;
            }
            assert!(refused > 0, "no corruption tried for {m} to {n}");
        }
    }
}

#[test]
fn feed_proofs_name_what_to_ask_for() {
    let author = mid("monitor");
    let tree = tree_of(&leaves(4));
    assert_eq!(
        feed_inclusion(&author, &tree, 0, 4),
        Err(FeedProofError::SeqOutOfRange { seq: 0, size: 4 })
    );
    assert_eq!(
        feed_inclusion(&author, &tree, 3, 2),
        Err(FeedProofError::SeqOutOfRange { seq: 3, size: 2 })
    );
    let beyond = feed_inclusion(&author, &tree, 1, 5).expect_err("beyond the feed");
    assert_eq!(
        beyond,
        FeedProofError::SizeBeyondFeed {
            author: author.clone(),
            size: 5,
            len: 4
        }
    );
    assert!(
        beyond.to_string().contains("ask for a size up to 4"),
        "{beyond}"
    );
    assert_eq!(
        feed_consistency(&author, &tree, 3, 2),
        Err(FeedProofError::SizesReversed { from: 3, to: 2 })
    );
    assert!(matches!(
        feed_consistency(&author, &tree, 1, 9),
        Err(FeedProofError::SizeBeyondFeed {
            size: 9,
            len: 4,
            ..
        })
    ));
}

#[test]
fn store_proves_each_event_against_the_feed_roots_events_carry() {
    let (net, events) = scenario(11, 150);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut store =
        Store::open_or_create(dir.path(), &net.dev.genesis(), Limits::default()).expect("opens");
    for s in &events {
        store.append(&s.bytes).expect("no fault").expect("admitted");
    }
    // Every slot of every feed: in the tree of its feed at every later event (whose feed_root
    // covers it) and at the feed's head; and each later feed root extends each earlier one.
    let mut proved = 0;
    for (author, feed) in store.ledger().feeds() {
        let roots: Vec<Digest> = feed
            .ids
            .iter()
            .map(|id| {
                let bytes = store.event_bytes(id).expect("read").expect("stored");
                ledger_core::admission::decode_event(&bytes, &net.dev.network())
                    .expect("decodes")
                    .header()
                    .feed_root
            })
            .chain([feed.root()])
            .collect();
        let n = feed.ids.len() as u64;
        for (seq, id) in (1..).zip(&feed.ids) {
            for size in seq..=n {
                let (p, r) = (
                    store.inclusion_proof(author, seq, size).expect("in range"),
                    &roots[size as usize],
                );
                assert!(p.verify(id, size, r), "{author} {seq} in {size}");
                assert!(!p.verify(&feed_leaf(id), size, r), "another id");
                assert!(!p.verify(id, size + 1, r), "another size");
                assert!(
                    !p.verify(id, size, &roots[size as usize - 1]),
                    "another root"
                );
                proved += 1;
            }
        }
        for from in 0..=n {
            for to in from..=n {
                let c = store.consistency_proof(author, from, to).expect("in range");
                let (r1, r2) = (&roots[from as usize], &roots[to as usize]);
                assert!(c.verify((from, r1), (to, r2)), "{author} {from} to {to}");
                assert!(!c.verify((from + 1, r1), (to, r2)), "another size");
            }
        }
        assert!(matches!(
            store.inclusion_proof(author, 1, n + 1),
            Err(FeedProofError::SizeBeyondFeed { .. })
        ));
    }
    assert!(proved > 100, "only {proved} proofs");
    let stranger = mid("nobody");
    assert_eq!(
        store.inclusion_proof(&stranger, 1, 1),
        Err(FeedProofError::UnknownAuthor(stranger.clone()))
    );
    assert_eq!(
        store.consistency_proof(&stranger, 0, 1),
        Err(FeedProofError::UnknownAuthor(stranger))
    );
}
