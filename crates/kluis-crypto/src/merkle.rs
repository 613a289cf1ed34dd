//! RFC 6962 (Certificate Transparency) Merkle trees, for the tamper-evident audit log.
//!
//! Leaves are hashed as `SHA-256(0x00 || data)` and interior nodes as
//! `SHA-256(0x01 || left || right)`, so a leaf can never be passed off as a node. Tree functions
//! take the *leaf hashes* (see [`leaf_hash`]) so callers store 32 bytes per entry, not the entries.
//!
//! Proof construction is the recursive definition of RFC 6962 §2.1 (O(n) hashing per call);
//! verification follows the iterative algorithm of RFC 9162 §2.1.3.2 and §2.1.4.2, and is checked
//! against transparency-dev/merkle's vectors, including its deliberately broken proofs.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::CryptoError;

/// A SHA-256 tree hash.
pub type Hash = [u8; 32];

const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([LEAF_PREFIX]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Largest power of two strictly less than `n` (`n >= 2`): RFC 6962's split point `k`.
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Merkle tree hash of the given leaf hashes (RFC 6962 `MTH`).
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => empty_root(),
        [only] => *only,
        _ => {
            let (left, right) = leaf_hashes.split_at(split(leaf_hashes.len()));
            node_hash(&root(left), &root(right))
        }
    }
}

/// Audit path for leaf `index` in the tree of `leaf_hashes` (RFC 6962 `PATH`), leaf to root.
pub fn inclusion_proof(leaf_hashes: &[Hash], index: u64) -> Result<Vec<Hash>, CryptoError> {
    let index = usize::try_from(index).map_err(|_| CryptoError::IndexOutOfRange)?;
    if index >= leaf_hashes.len() {
        return Err(CryptoError::IndexOutOfRange);
    }
    let mut proof = Vec::new();
    path(index, leaf_hashes, &mut proof);
    Ok(proof)
}

fn path(m: usize, leaves: &[Hash], out: &mut Vec<Hash>) {
    if leaves.len() <= 1 {
        return;
    }
    let k = split(leaves.len());
    let (left, right) = leaves.split_at(k);
    if m < k {
        path(m, left, out);
        out.push(root(right));
    } else {
        path(m - k, right, out);
        out.push(root(left));
    }
}

/// Proof that the tree of the first `m` leaves is a prefix of the tree of all `leaf_hashes`
/// (RFC 6962 `PROOF(m, D[n])`). Empty when `m` is 0 or equals the tree size.
pub fn consistency_proof(leaf_hashes: &[Hash], m: u64) -> Result<Vec<Hash>, CryptoError> {
    let m = usize::try_from(m).map_err(|_| CryptoError::IndexOutOfRange)?;
    if m > leaf_hashes.len() {
        return Err(CryptoError::IndexOutOfRange);
    }
    let mut proof = Vec::new();
    if m > 0 {
        subproof(m, leaf_hashes, true, &mut proof);
    }
    Ok(proof)
}

fn subproof(m: usize, leaves: &[Hash], whole_subtree: bool, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if m == n {
        if !whole_subtree {
            out.push(root(leaves));
        }
        return;
    }
    let k = split(n);
    let (left, right) = leaves.split_at(k);
    if m <= k {
        subproof(m, left, whole_subtree, out);
        out.push(root(right));
    } else {
        subproof(m - k, right, false, out);
        out.push(root(left));
    }
}

fn invalid(reason: &'static str) -> CryptoError {
    CryptoError::InvalidProof(reason)
}

fn ensure_match(computed: &Hash, expected: &Hash, reason: &'static str) -> Result<(), CryptoError> {
    if bool::from(computed.ct_eq(expected)) {
        Ok(())
    } else {
        Err(invalid(reason))
    }
}

/// Bit length of `x` (0 for 0).
fn bit_len(x: u64) -> u32 {
    u64::BITS - x.leading_zeros()
}

/// Splits an inclusion proof for `index` in a tree of `size` into the part below the point where
/// the leaf's path and the tree's right border meet (`inner`) and the part along the border.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = bit_len(index ^ (size - 1));
    let border = (index >> inner).count_ones();
    (inner as usize, border as usize)
}

fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node_hash(&seed, h)
        } else {
            node_hash(h, &seed)
        };
    }
    seed
}

fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

fn chain_border_right(mut seed: Hash, proof: &[Hash]) -> Hash {
    for h in proof {
        seed = node_hash(h, &seed);
    }
    seed
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `tree_size` leaves with root `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    tree_size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), CryptoError> {
    if index >= tree_size {
        return Err(invalid("leaf index is not below the tree size"));
    }
    let (inner, border) = decompose(index, tree_size);
    if proof.len() != inner + border {
        return Err(invalid("inclusion proof has the wrong length"));
    }
    let (inner_part, border_part) = proof.split_at(inner);
    let computed = chain_border_right(chain_inner(*leaf_hash, inner_part, index), border_part);
    ensure_match(&computed, root, "inclusion proof does not lead to the root")
}

/// Checks that the tree of size `m` with root `root_m` is a prefix of the tree of size `n` with
/// root `root_n`.
///
/// `m == n` needs an empty proof and equal roots. `m == 0` needs an empty proof and `root_m` equal
/// to the empty-tree root: every tree extends the empty one, so there is nothing more to prove.
pub fn verify_consistency(
    m: u64,
    n: u64,
    root_m: &Hash,
    root_n: &Hash,
    proof: &[Hash],
) -> Result<(), CryptoError> {
    if m > n {
        return Err(invalid("old tree is larger than new tree"));
    }
    if m == n {
        if !proof.is_empty() {
            return Err(invalid("proof must be empty for equal tree sizes"));
        }
        return ensure_match(root_m, root_n, "roots differ for equal tree sizes");
    }
    if m == 0 {
        if !proof.is_empty() {
            return Err(invalid("proof must be empty when the old tree is empty"));
        }
        return ensure_match(root_m, &empty_root(), "old root is not the empty-tree root");
    }
    // Now 0 < m < n.
    let Some((first, rest)) = proof.split_first() else {
        return Err(invalid("consistency proof is empty"));
    };
    let (inner, border) = decompose(m - 1, n);
    let shift = m.trailing_zeros() as usize;
    // shift < inner because m < n.
    let inner = inner - shift;
    // The proof starts with the root of the subtree of size 2^shift, unless m is that size, in
    // which case that root is root_m itself.
    let (seed, path) = if m == 1 << shift {
        (*root_m, proof)
    } else {
        (*first, rest)
    };
    if path.len() != inner + border {
        return Err(invalid("consistency proof has the wrong length"));
    }
    let (inner_part, border_part) = path.split_at(inner);
    let mask = (m - 1) >> shift;

    let computed_m = chain_border_right(chain_inner_right(seed, inner_part, mask), border_part);
    ensure_match(
        &computed_m,
        root_m,
        "consistency proof does not lead to the old root",
    )?;
    let computed_n = chain_border_right(chain_inner(seed, inner_part, mask), border_part);
    ensure_match(
        &computed_n,
        root_n,
        "consistency proof does not lead to the new root",
    )
}

/// Incremental RFC 6962 tree head: push leaf hashes one by one and read the root of everything
/// pushed so far in O(log n), so checking many checkpoints of one log is a single pass.
#[derive(Debug, Clone, Default)]
pub struct Frontier {
    /// (subtree size, subtree root) of the perfect subtrees, sizes strictly decreasing.
    stack: Vec<(u64, Hash)>,
    size: u64,
}

impl Frontier {
    pub fn push(&mut self, leaf: Hash) {
        let mut node = (1u64, leaf);
        while let Some(&(size, left)) = self.stack.last() {
            if size != node.0 {
                break;
            }
            self.stack.pop();
            node = (size * 2, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.size += 1;
    }

    /// The compact range: roots of the perfect subtrees covering the leaves pushed so far, largest
    /// first. Enough to continue the tree later without the leaves themselves (used when old
    /// audit events expire).
    pub fn compact_range(&self) -> &[(u64, Hash)] {
        &self.stack
    }

    /// Rebuilds a frontier from a compact range. Sizes must be strictly decreasing powers of two.
    pub fn from_compact_range(range: Vec<(u64, Hash)>) -> Result<Self, CryptoError> {
        let mut prev = u64::MAX;
        let mut size = 0u64;
        for (s, _) in &range {
            if !s.is_power_of_two() || *s >= prev {
                return Err(CryptoError::InvalidProof(
                    "compact range sizes must be decreasing powers of two",
                ));
            }
            prev = *s;
            size += s;
        }
        Ok(Frontier { stack: range, size })
    }

    /// Number of leaves pushed.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The tree hash of the leaves pushed so far (equal to [`root`] of the same leaves).
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    #[test]
    fn frontier_resumes_from_its_compact_range() {
        let leaves: Vec<Hash> = (0u32..100).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for cut in [0usize, 1, 7, 32, 63, 99] {
            let mut f = Frontier::default();
            leaves[..cut].iter().for_each(|l| f.push(*l));
            let mut g = Frontier::from_compact_range(f.compact_range().to_vec()).unwrap();
            leaves[cut..].iter().for_each(|l| g.push(*l));
            assert_eq!(g.root(), root(&leaves), "cut {cut}");
        }
        assert!(Frontier::from_compact_range(vec![(2, [0; 32]), (4, [0; 32])]).is_err());
        assert!(Frontier::from_compact_range(vec![(3, [0; 32])]).is_err());
    }

    #[test]
    fn frontier_matches_root_for_every_size() {
        let leaves: Vec<Hash> = (0u32..300).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut f = Frontier::default();
        assert_eq!(f.root(), root(&[]));
        for (i, l) in leaves.iter().enumerate() {
            f.push(*l);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), root(&leaves[..=i]), "size {}", i + 1);
        }
    }

    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    #[test]
    fn known_hashes() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex::encode(leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn all_generated_proofs_verify_up_to_33_leaves() {
        for n in 1..=33usize {
            let ls = leaves(n);
            let r = root(&ls);
            for (i, leaf) in ls.iter().enumerate() {
                let p = inclusion_proof(&ls, i as u64).unwrap();
                verify_inclusion(leaf, i as u64, n as u64, &p, &r).unwrap();
                let wrong_leaf = leaf_hash(b"not in the tree");
                assert!(verify_inclusion(&wrong_leaf, i as u64, n as u64, &p, &r).is_err());
                assert!(verify_inclusion(leaf, n as u64, n as u64, &p, &r).is_err());
                if let Some(first) = p.first() {
                    let mut bad = p.clone();
                    bad[0] = node_hash(first, first);
                    assert!(verify_inclusion(leaf, i as u64, n as u64, &bad, &r).is_err());
                }
            }
            for m in 0..=n {
                let rm = root(&ls[..m]);
                let p = consistency_proof(&ls, m as u64).unwrap();
                verify_consistency(m as u64, n as u64, &rm, &r, &p).unwrap();
                if m > 0 && m < n {
                    let other = root(&leaves(m + 1)[1..]);
                    assert!(verify_consistency(m as u64, n as u64, &other, &r, &p).is_err());
                    assert!(verify_consistency(m as u64, n as u64, &rm, &rm, &p).is_err());
                }
            }
        }
    }

    #[test]
    fn out_of_range_generation_rejected() {
        let ls = leaves(3);
        assert!(inclusion_proof(&ls, 3).is_err());
        assert!(inclusion_proof(&[], 0).is_err());
        assert!(consistency_proof(&ls, 4).is_err());
    }

    #[test]
    fn empty_tree_consistency() {
        let ls = leaves(5);
        verify_consistency(0, 5, &empty_root(), &root(&ls), &[]).unwrap();
        verify_consistency(0, 0, &empty_root(), &empty_root(), &[]).unwrap();
        assert!(verify_consistency(0, 5, &root(&ls), &root(&ls), &[]).is_err());
    }
}
