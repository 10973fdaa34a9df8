//! An RFC 6962 / RFC 9162 Merkle tree: leaf and node hashes are
//! domain-separated (`0x00 || leaf`, `0x01 || left || right`), with inclusion
//! and consistency proofs and complete verifiers for both.
//!
//! Pure functions over slices of leaf hashes; the audit log stores leaves.

use sha2::{Digest, Sha256};

pub type Hash = [u8; 32];

pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two strictly smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// MTH(D[n]); the hash of the empty string for no leaves.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let k = split(leaves.len());
            let (l, r) = leaves.split_at(k);
            node_hash(&root(l), &root(r))
        }
    }
}

/// The compact state of a growing tree: the roots of its perfect subtrees,
/// largest (leftmost) first, whose sizes are the set bits of `size`. Appending
/// a leaf and computing the root cost O(log n) without reading the leaves
/// again: the audit log keeps one (the audit log) so that a checkpoint
/// does not rehash a million entries.
///
/// INVARIANT: `nodes.len() == size.count_ones()` and `nodes[i]` is the root of
/// the perfect subtree for the i-th set bit of `size`, highest bit first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves appended.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn push(&mut self, leaf: Hash) {
        let mut node = leaf;
        // Each trailing one bit of the old size is a subtree of the same
        // height as `node` that now merges with it.
        let mut carry = self.size;
        while carry & 1 == 1 {
            match self.nodes.pop() {
                Some(left) => node = node_hash(&left, &node),
                None => break,
            }
            carry >>= 1;
        }
        self.nodes.push(node);
        self.size += 1;
    }

    /// MTH of the leaves appended so far: equal to [`root`] over them.
    pub fn root(&self) -> Hash {
        let mut it = self.nodes.iter().rev();
        let Some(last) = it.next() else {
            return Sha256::digest([]).into();
        };
        it.fold(*last, |acc, left| node_hash(left, &acc))
    }
}

/// PATH(m, D[n]): the audit path of leaf `m`.
pub fn inclusion_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n <= 1 || m >= n {
        return Vec::new();
    }
    let k = split(n);
    let (l, r) = leaves.split_at(k);
    if m < k {
        let mut p = inclusion_proof(m, l);
        p.push(root(r));
        p
    } else {
        let mut p = inclusion_proof(m - k, r);
        p.push(root(l));
        p
    }
}

/// PROOF(m, D[n]): proves the tree of size `m` is a prefix of the tree of size `n`.
pub fn consistency_proof(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    if m == 0 || m >= leaves.len() {
        return Vec::new();
    }
    subproof(m, leaves, true)
}

fn subproof(m: usize, leaves: &[Hash], b: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if b { Vec::new() } else { vec![root(leaves)] };
    }
    let k = split(n);
    let (l, r) = leaves.split_at(k);
    if m <= k {
        let mut p = subproof(m, l, b);
        p.push(root(r));
        p
    } else {
        let mut p = subproof(m - k, r, false);
        p.push(root(l));
        p
    }
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is entry `index` of the tree of
/// `size` leaves with root `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && r == *root
}

/// RFC 9162 §2.1.4.2: verifies that the tree (`size1`, `root1`) is a prefix of
/// (`size2`, `root2`). Every step of the algorithm is checked, both roots and
/// the exhaustion of the proof: a verifier that checks only part of a
/// consistency proof accepts forks.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> bool {
    if size1 > size2 {
        return false;
    }
    if size1 == size2 {
        return proof.is_empty() && root1 == root2;
    }
    if size1 == 0 {
        // The empty tree is a prefix of every tree; nothing to prove.
        return proof.is_empty();
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if size1.is_power_of_two() {
        path.insert(0, *root1);
    }
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let (mut f_n, mut s_n) = (size1 - 1, size2 - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    fr == *root1 && sr == *root2 && s_n == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(format!("entry {i}").as_bytes()))
            .collect()
    }

    #[test]
    fn empty_and_single_roots() {
        assert_eq!(
            hex::encode(root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let l = leaves(1);
        assert_eq!(root(&l), l[0]);
        assert_eq!(root(&leaves(2)), node_hash(&leaves(2)[0], &leaves(2)[1]));
    }

    #[test]
    fn the_frontier_root_equals_the_full_recomputation() {
        let l = leaves(300);
        let mut f = Frontier::new();
        assert_eq!(f.root(), root(&[]));
        for (i, leaf) in l.iter().enumerate() {
            f.push(*leaf);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), root(&l[..=i]), "size {}", i + 1);
        }
    }

    #[test]
    fn known_rfc6962_test_vector() {
        // The empty leaf's hash, from the Certificate Transparency test data.
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn every_inclusion_proof_verifies_and_wrong_ones_do_not() {
        for n in 1..=33usize {
            let l = leaves(n);
            let r = root(&l);
            for m in 0..n {
                let p = inclusion_proof(m, &l);
                assert!(
                    verify_inclusion(&l[m], m as u64, n as u64, &p, &r),
                    "n={n} m={m}"
                );
                assert!(!verify_inclusion(
                    &leaf_hash(b"other"),
                    m as u64,
                    n as u64,
                    &p,
                    &r
                ));
                if n > 1 {
                    assert!(
                        !verify_inclusion(&l[m], ((m + 1) % n) as u64, n as u64, &p, &r),
                        "wrong index n={n} m={m}"
                    );
                    let mut bad = p.clone();
                    bad[0][0] ^= 1;
                    assert!(!verify_inclusion(&l[m], m as u64, n as u64, &bad, &r));
                }
            }
        }
    }

    #[test]
    fn every_consistency_proof_verifies_and_forks_do_not() {
        for n in 1..=33usize {
            let l = leaves(n);
            let rn = root(&l);
            for m in 1..=n {
                let rm = root(&l[..m]);
                let p = consistency_proof(m, &l);
                assert!(
                    verify_consistency(m as u64, n as u64, &rm, &rn, &p),
                    "m={m} n={n}"
                );
                if m < n {
                    // A fork: the old tree with one entry changed.
                    let mut forked = l[..m].to_vec();
                    forked[m - 1] = leaf_hash(b"rewritten");
                    assert!(
                        !verify_consistency(m as u64, n as u64, &root(&forked), &rn, &p),
                        "fork accepted m={m} n={n}"
                    );
                    // A truncated or padded proof.
                    if !p.is_empty() {
                        assert!(!verify_consistency(
                            m as u64,
                            n as u64,
                            &rm,
                            &rn,
                            &p[..p.len() - 1]
                        ));
                    }
                    let mut padded = p.clone();
                    padded.push(rn);
                    assert!(!verify_consistency(m as u64, n as u64, &rm, &rn, &padded));
                    // Right proof, wrong new root.
                    assert!(!verify_consistency(
                        m as u64,
                        n as u64,
                        &rm,
                        &leaf_hash(b"x"),
                        &p
                    ));
                }
            }
        }
    }
}
