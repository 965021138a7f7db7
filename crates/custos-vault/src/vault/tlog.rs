//! The ledger as a transparency log: signed checkpoints of its Merkle tree (C2SP
//! `tlog-checkpoint` in a `signed-note`), inclusion and consistency proofs (RFC 9162) read
//! from the stored tiles, and the check of a checkpoint kept outside the database.
//!
//! Leaf `i` is the entry of seq `i + 1` (`ledger/tree.rs`). The note is signed with the
//! vault's ledger key (the key of the chain's checkpoints) under the key name that is the
//! log's origin: [`Vault::ledger_origin`], by default `custos/` and the first 16 hex digits of
//! the public key, so two vaults never share one; `custos serve --ledger-origin` sets
//! another.

use custos_tlog::{Checkpoint, Hash};

use super::Vault;
use crate::error::{Error, Result};
use crate::ledger::tree;

/// A signed checkpoint of the ledger's tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeHead {
    /// Entries in the tree (seqs 1 to this).
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// The C2SP checkpoint in a signed note: the text to keep.
    pub note: String,
}

/// An inclusion proof: the entry of `seq` is leaf `seq - 1` of the tree of `size` entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InclusionProof {
    /// The entry.
    pub seq: u64,
    /// The tree's size.
    pub size: u64,
    /// The entry's chained hash (the leaf input), as the ledger stores it (hex).
    pub entry_hash: String,
    /// `SHA-256(0x00 || entry hash bytes)`.
    pub leaf_hash: Hash,
    /// The root of the tree of `size` entries.
    pub root: Hash,
    /// The audit path, from the leaf's sibling up.
    pub proof: Vec<Hash>,
}

/// A consistency proof: the tree of `to` entries extends the tree of `from`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsistencyProof {
    /// The earlier tree's size.
    pub from: u64,
    /// The later tree's size.
    pub to: u64,
    /// The earlier tree's root.
    pub from_root: Hash,
    /// The later tree's root.
    pub to_root: Hash,
    /// The proof's hashes (RFC 9162 §2.1.4).
    pub proof: Vec<Hash>,
}

/// What [`Vault::check_checkpoint`] found: the checkpoint's signature verified and the
/// stored tree extends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The stored tree's size now.
    pub size: u64,
    /// The stored tree's root now.
    pub root: Hash,
}

/// The longest origin accepted.
const ORIGIN_MAX: usize = 128;

/// Whether `origin` may name the log: printable ASCII, no space or `+`, at most
/// [`ORIGIN_MAX`] characters.
pub fn origin_ok(origin: &str) -> bool {
    !origin.is_empty()
        && origin.len() <= ORIGIN_MAX
        && origin.bytes().all(|b| b.is_ascii_graphic() && b != b'+')
}

impl Vault {
    /// The log's origin: the first line of its checkpoints and the name of its key.
    pub fn ledger_origin(&self) -> String {
        self.origin
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Sets the log's origin (printable ASCII without spaces or `+`, at most 128
    /// characters). Checkpoints signed before keep theirs; a verifier expecting one origin
    /// refuses the other's.
    pub fn set_ledger_origin(&self, origin: &str) -> Result<()> {
        if !origin_ok(origin) {
            return Err(Error::invalid(
                "invalid_origin",
                "the ledger origin is 1 to 128 printable ASCII characters, without spaces or `+`",
            ));
        }
        *self
            .origin
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = origin.to_string();
        Ok(())
    }

    /// The `signed-note` verifier key of the checkpoints: `origin+keyid+base64(0x01 || key)`.
    pub fn ledger_verifier_key(&self) -> String {
        custos_tlog::verifier_key(&self.ledger_origin(), &self.signer.verifying_key())
    }

    /// Entries in the stored tree.
    pub fn ledger_tree_size(&self) -> Result<u64> {
        self.store.ledger_tree_size()
    }

    /// The size `size` names, or the stored tree's when `None`; one larger than the stored
    /// tree is refused (`tree_size_too_large`).
    fn tree_size_or(&self, size: Option<u64>, what: &str) -> Result<u64> {
        let now = self.store.ledger_tree_size()?;
        match size {
            None => Ok(now),
            Some(s) if s <= now => Ok(s),
            Some(_) => Err(Error::invalid(
                "tree_size_too_large",
                format!("{what} is larger than the ledger's tree, which holds {now} entries"),
            )),
        }
    }

    /// The root of the tree of the first `size` entries.
    pub fn ledger_root(&self, size: u64) -> Result<Hash> {
        let size = self.tree_size_or(Some(size), "the tree size")?;
        let mut roots = tree::hashes_in(&*self.store, &[(0, size)])?;
        roots.pop().ok_or_else(|| Error::Storage("no root".into()))
    }

    /// Signs a checkpoint of the tree as stored now.
    pub fn ledger_checkpoint(&self) -> Result<TreeHead> {
        let size = self.store.ledger_tree_size()?;
        let root = self.ledger_root(size)?;
        let origin = self.ledger_origin();
        let body = Checkpoint {
            origin: origin.clone(),
            size,
            root,
            extensions: Vec::new(),
        }
        .body();
        let note = custos_tlog::sign_note(&body, &origin, self.signer.signing_key())
            .map_err(|e| Error::Storage(format!("cannot sign the checkpoint: {e}")))?;
        Ok(TreeHead { size, root, note })
    }

    /// [`Vault::ledger_checkpoint`], answered from memory while the tree has the size and
    /// the origin of the last one this vault signed here: a checkpoint has no time in it,
    /// and Ed25519 signs deterministically, so the note would be the same byte for byte —
    /// one read of the tree size instead of a root and a signature (the keyless route
    /// cannot make the server sign at will).
    pub fn ledger_checkpoint_cached(&self) -> Result<TreeHead> {
        let size = self.store.ledger_tree_size()?;
        let origin = self.ledger_origin();
        let mut last = self
            .last_head
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(h) = last.as_ref()
            && h.size == size
            && h.note.starts_with(&format!("{origin}\n"))
        {
            return Ok(h.clone());
        }
        let head = self.ledger_checkpoint()?;
        *last = Some(head.clone());
        Ok(head)
    }

    /// The inclusion proof of the entry `seq` in the tree of `size` entries (the stored
    /// tree when `None`). Refused: a size larger than the tree (`tree_size_too_large`), a
    /// seq of 0 or not below the size plus one (`seq_out_of_range`).
    pub fn ledger_inclusion(&self, seq: u64, size: Option<u64>) -> Result<InclusionProof> {
        let size = self.tree_size_or(size, "the tree size")?;
        if seq == 0 || seq > size {
            return Err(Error::invalid(
                "seq_out_of_range",
                format!("the tree of {size} entries holds the seqs 1 to {size}"),
            ));
        }
        let (proof, leaf_hash, root) = tree::prove_inclusion(&*self.store, seq - 1, size)?;
        let entry_hash = self
            .store
            .ledger_page(seq, 1)?
            .into_iter()
            .find(|e| e.seq == seq)
            .map(|e| e.hash)
            .ok_or_else(|| Error::Storage(format!("ledger entry {seq} is missing")))?;
        Ok(InclusionProof {
            seq,
            size,
            entry_hash,
            leaf_hash,
            root,
            proof,
        })
    }

    /// The consistency proof from the tree of `from` entries to the tree of `to` (the
    /// stored tree when `None`). Refused: `from` larger than `to` (`sizes_out_of_order`), a
    /// size larger than the tree (`tree_size_too_large`).
    pub fn ledger_consistency(&self, from: u64, to: Option<u64>) -> Result<ConsistencyProof> {
        let to = self.tree_size_or(to, "the later tree size")?;
        if from > to {
            return Err(Error::invalid(
                "sizes_out_of_order",
                format!("the earlier tree size is larger than the later one ({to})"),
            ));
        }
        let (proof, from_root, to_root) = tree::prove_consistency(&*self.store, from, to)?;
        Ok(ConsistencyProof {
            from,
            to,
            from_root,
            to_root,
            proof,
        })
    }

    /// Checks a checkpoint kept outside the database (a signed note, as
    /// [`Vault::ledger_checkpoint`] made it) against the stored tree: its signature by this
    /// vault's key under its own origin, and a consistency proof from its size to the
    /// stored tree's, checked against its root and the stored root. Refused:
    /// `invalid_checkpoint` (not a signed checkpoint), `checkpoint_signature` (not signed by
    /// this vault's key), `checkpoint_past_end` (the ledger holds fewer entries: cut),
    /// `checkpoint_inconsistent` (the ledger no longer extends it: rewritten).
    ///
    /// This trusts the stored tiles; `custos audit verify --checkpoint` also recomputes the
    /// tree from the entries ([`Vault::verify_ledger_tree`]).
    pub fn check_checkpoint(&self, note: &str) -> Result<CheckedCheckpoint> {
        let bad = |m: String| Error::invalid("invalid_checkpoint", m);
        let text = note
            .rfind("\n\n")
            .and_then(|i| note.get(..=i))
            .ok_or_else(|| bad("not a signed note: no blank line before the signatures".into()))?;
        let checkpoint = Checkpoint::parse(text).map_err(|e| bad(e.to_string()))?;
        let vkey = custos_tlog::verifier_key(&checkpoint.origin, &self.signer.verifying_key());
        custos_tlog::verify_note(note, &vkey).map_err(|e| {
            Error::invalid(
                "checkpoint_signature",
                format!("the checkpoint is not signed by this vault's ledger key: {e}"),
            )
        })?;
        let size = self.store.ledger_tree_size()?;
        if checkpoint.size > size {
            return Err(Error::invalid(
                "checkpoint_past_end",
                format!(
                    "the checkpoint names {} entries but the ledger's tree holds {size}: \
                     entries were removed",
                    checkpoint.size
                ),
            ));
        }
        let p = self.ledger_consistency(checkpoint.size, Some(size))?;
        custos_tlog::verify_consistency(
            checkpoint.size,
            size,
            &checkpoint.root,
            &p.to_root,
            &p.proof,
        )
        .map_err(|e| {
            Error::invalid(
                "checkpoint_inconsistent",
                format!(
                    "the ledger does not extend the checkpoint of {} entries ({e}): its \
                     history was rewritten",
                    checkpoint.size
                ),
            )
        })?;
        Ok(CheckedCheckpoint {
            checkpoint,
            size,
            root: p.to_root,
        })
    }

    /// [`Vault::verify_ledger_against`], also recomputing the Merkle root of the first `at`
    /// entries from their rows ([`crate::ledger::verify_tree`]).
    pub fn verify_ledger_tree(
        &self,
        head: Option<&crate::ledger::Head>,
        at: Option<u64>,
    ) -> Result<crate::Verification> {
        crate::ledger::verify_tree(&*self.store, &self.signer, head, at)
    }
}
