//! The Merkle tree of RFC 6962 / RFC 9162: hashes, proofs, and their verification.

use sha2::{Digest as _, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash of a leaf: `SHA-256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: `SHA-256()` of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete, aligned subtree: `2^level` leaves, from leaf `index << level`. Level 0 is a
/// leaf.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subtree {
    /// Its height: it holds `2^level` leaves.
    pub level: u8,
    /// Its place among the subtrees of its level, from 0.
    pub index: u64,
}

/// Why a proof did not verify, or could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    IndexOutOfRange,
    /// The earlier tree is larger than the later one.
    SizesOutOfOrder,
    /// The proof has the wrong number of hashes for these sizes.
    WrongLength,
    /// The hashes do not lead to the root(s) given.
    Mismatch,
}

impl std::fmt::Display for ProofError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::IndexOutOfRange => "the leaf index is not below the tree size",
            Self::SizesOutOfOrder => "the earlier tree is larger than the later one",
            Self::WrongLength => "the proof has the wrong number of hashes for these sizes",
            Self::Mismatch => "the proof does not lead to the root",
        })
    }
}

impl std::error::Error for ProofError {}

/// The largest power of two below `n` (`n >= 2`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges `[lo, hi)` whose subtree hashes make the inclusion proof of leaf `index`
/// in the tree of `size` leaves (RFC 6962 `PATH`), in proof order (from the leaf up).
pub fn inclusion_path(index: u64, size: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    let mut out = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0, size);
    // Top-down, then reversed: the proof lists the leaf's sibling first.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            lo += k;
        }
    }
    out.reverse();
    Ok(out)
}

/// The leaf ranges whose subtree hashes make the consistency proof from the tree of `old`
/// leaves to the tree of `new` (RFC 6962 `PROOF`), in proof order. Empty when `old` is 0 or
/// equal to `new`.
pub fn consistency_path(old: u64, new: u64) -> Result<Vec<(u64, u64)>, ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder);
    }
    let mut out = Vec::with_capacity(64);
    if old == 0 || old == new {
        return Ok(out);
    }
    // SUBPROOF(m, D[lo:hi], b), unrolled top-down and then reversed.
    let (mut m, mut lo, mut hi, mut whole) = (old, 0, new, true);
    loop {
        let n = hi - lo;
        if m == n {
            if !whole {
                out.push((lo, hi));
            }
            break;
        }
        let k = split(n);
        if m <= k {
            out.push((lo + k, hi));
            hi = lo + k;
        } else {
            out.push((lo, lo + k));
            m -= k;
            lo += k;
            whole = false;
        }
    }
    out.reverse();
    Ok(out)
}

/// The complete subtrees whose hashes [`range_hash`] combines for the leaves `[lo, hi)`, left
/// to right.
pub fn subtrees(lo: u64, hi: u64) -> Vec<Subtree> {
    let mut out = Vec::new();
    let _ = range_hash::<()>(lo, hi, &mut |s| {
        out.push(s);
        Ok([0; 32])
    });
    out
}

/// The Merkle tree hash (`MTH`) of the leaves `[lo, hi)`, from the hashes of complete
/// subtrees that `node` looks up: a range whose length is a power of two and which starts at
/// a multiple of it is one subtree, any other splits as `MTH` splits it. The empty range
/// hashes to [`empty_root`].
pub fn range_hash<E>(
    lo: u64,
    hi: u64,
    node: &mut impl FnMut(Subtree) -> Result<Hash, E>,
) -> Result<Hash, E> {
    let n = hi.saturating_sub(lo);
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && lo % n == 0 {
        return node(Subtree {
            level: n.trailing_zeros() as u8,
            index: lo >> n.trailing_zeros(),
        });
    }
    let k = split(n);
    let left = range_hash(lo, lo + k, node)?;
    let right = range_hash(lo + k, hi, node)?;
    Ok(node_hash(&left, &right))
}

/// Checks an inclusion proof (RFC 9162 §2.1.3.2): the leaf whose hash is `leaf` is leaf
/// `index` of the tree of `size` leaves whose root is `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange);
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &r != root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// Checks a consistency proof (RFC 9162 §2.1.4.2): the tree of `new` leaves whose root is
/// `new_root` extends the tree of `old` leaves whose root is `old_root`. Equal sizes need an
/// empty proof and equal roots; the empty tree is extended by every tree (empty proof).
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::SizesOutOfOrder);
    }
    if old == new || old == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if old == new && old_root != new_root {
            return Err(ProofError::Mismatch);
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(*old_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f & 1 == 0 {
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if &fr != old_root || &sr != new_root {
        return Err(ProofError::Mismatch);
    }
    Ok(())
}

/// A tree kept by its right edge (a compact range): the roots of its complete subtrees,
/// largest first. Leaves are pushed one at a time; [`Compact::root`] is the tree's root.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Compact {
    size: u64,
    edge: Vec<Hash>,
}

impl Compact {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leaves pushed so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf by its leaf hash ([`leaf_hash`]).
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            if let Some(left) = self.edge.pop() {
                h = node_hash(&left, &h);
            }
            s >>= 1;
        }
        self.edge.push(h);
        self.size += 1;
    }

    /// The root of the tree of the leaves pushed so far.
    pub fn root(&self) -> Hash {
        let mut it = self.edge.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |r, h| node_hash(h, &r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// MTH straight from RFC 6962's definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn hashes(ls: &[Hash], path: &[(u64, u64)]) -> Vec<Hash> {
        path.iter()
            .map(|&(lo, hi)| mth(&ls[lo as usize..hi as usize]))
            .collect()
    }

    /// RFC 6962 §2.1.3's example tree of 7 leaves: d0's path is b, h, l (sizes 1, 2, 4 from
    /// the bottom) and the proof from 3 to 7 is c, d, g, l.
    #[test]
    fn the_rfc_examples() {
        assert_eq!(inclusion_path(0, 7).unwrap(), [(1, 2), (2, 4), (4, 7)]);
        assert_eq!(inclusion_path(3, 7).unwrap(), [(2, 3), (0, 2), (4, 7)]);
        assert_eq!(inclusion_path(4, 7).unwrap(), [(5, 6), (6, 7), (0, 4)]);
        assert_eq!(inclusion_path(6, 7).unwrap(), [(4, 6), (0, 4)]);
        assert_eq!(
            consistency_path(3, 7).unwrap(),
            [(2, 3), (3, 4), (0, 2), (4, 7)]
        );
        assert_eq!(consistency_path(4, 7).unwrap(), [(4, 7)]);
        assert_eq!(consistency_path(6, 7).unwrap(), [(4, 6), (6, 7), (0, 4)]);
    }

    #[test]
    fn the_empty_tree_hashes_as_sha256_of_nothing() {
        assert_eq!(
            empty_root()[..4],
            [0xe3, 0xb0, 0xc4, 0x42],
            "SHA-256 of the empty string"
        );
        assert_eq!(Compact::new().root(), empty_root());
    }

    proptest! {
        #[test]
        fn inclusion_proofs_verify_and_a_changed_hash_fails(size in 1u64..300, pick in 0u64..300, flip in 0usize..32) {
            let ls = leaves(size);
            let root = mth(&ls);
            let index = pick % size;
            let proof = hashes(&ls, &inclusion_path(index, size).unwrap());
            prop_assert!(verify_inclusion(index, size, &ls[index as usize], &proof, &root).is_ok());
            // Another leaf, another index, a tampered proof, a wrong size: all fail.
            let other = (index + 1) % size;
            if other != index {
                prop_assert!(verify_inclusion(index, size, &ls[other as usize], &proof, &root).is_err());
                prop_assert!(verify_inclusion(other, size, &ls[index as usize], &proof, &root).is_err());
            }
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0][flip] ^= 1;
                prop_assert!(first != &bad[0]);
                prop_assert!(verify_inclusion(index, size, &ls[index as usize], &bad, &root).is_err());
                prop_assert!(verify_inclusion(index, size, &ls[index as usize], &proof[1..], &root).is_err());
            }
        }

        #[test]
        fn consistency_proofs_verify_and_a_rewritten_history_fails(new in 1u64..300, pick in 0u64..300, bad_leaf in 0u64..300) {
            let ls = leaves(new);
            let old = pick % (new + 1);
            let proof = hashes(&ls, &consistency_path(old, new).unwrap());
            let (old_root, new_root) = (mth(&ls[..old as usize]), mth(&ls));
            prop_assert!(verify_consistency(old, new, &old_root, &new_root, &proof).is_ok());
            // The old tree rewritten at one leaf: its root no longer fits.
            if old > 0 {
                let mut rewritten = ls.clone();
                rewritten[(bad_leaf % old) as usize][0] ^= 1;
                let forged = mth(&rewritten[..old as usize]);
                prop_assert!(verify_consistency(old, new, &forged, &new_root, &proof).is_err());
                let forged_new = mth(&rewritten);
                let p2 = hashes(&rewritten, &consistency_path(old, new).unwrap());
                prop_assert!(verify_consistency(old, new, &old_root, &forged_new, &p2).is_err());
            }
        }

        #[test]
        fn range_hash_and_compact_agree_with_mth(n in 0u64..600) {
            let ls = leaves(n);
            let root = range_hash::<()>(0, n, &mut |s| {
                let lo = (s.index << s.level) as usize;
                Ok(mth(&ls[lo..lo + (1usize << s.level)]))
            }).unwrap();
            prop_assert_eq!(root, mth(&ls));
            let mut c = Compact::new();
            for l in &ls {
                c.push(*l);
            }
            prop_assert_eq!(c.size(), n);
            prop_assert_eq!(c.root(), root);
        }
    }
}
