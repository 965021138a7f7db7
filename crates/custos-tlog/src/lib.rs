//! Verify Custos's ledger as a transparency log, without trusting the operator.
//!
//! The ledger is a Merkle tree as RFC 6962 and RFC 9162 define it (SHA-256, leaf hash
//! `SHA-256(0x00 || leaf)`, node hash `SHA-256(0x01 || left || right)`). Leaf `i` (from 0)
//! is the ledger entry of seq `i + 1`, and its leaf input is that entry's 32-byte chained hash
//! (the hex `hash` of the entry, decoded): the hash already commits to every field of the
//! entry and to the entry before it.
//!
//! The vault signs the tree's head as a C2SP `tlog-checkpoint` in a C2SP `signed-note`
//! with its Ed25519 key. This crate checks those notes and the proofs the vault serves:
//!
//! - [`Checkpoint::parse`], [`verify_note`] — a checkpoint and its signature;
//! - [`verify_inclusion`] — an entry is in the tree a checkpoint names;
//! - [`verify_consistency`] — a later tree extends an earlier one (history not rewritten);
//! - [`Compact`] — the root of a tree recomputed from its leaves, one at a time.
//!
//! It also holds what the vault needs to make proofs ([`inclusion_path`],
//! [`consistency_path`], [`range_hash`]): the proof is the list of subtrees whose hashes it
//! holds, so the prover only has to look those hashes up.
//!
//! Dependencies: `sha2`, `ed25519-dalek`, `base64`; no IO.

mod note;
mod tree;

pub use note::{
    Checkpoint, NoteError, hash_from_base64, hash_to_base64, key_id, last_note, sign_note,
    verifier_key, verify_note,
};
pub use tree::{
    Compact, Hash, ProofError, Subtree, consistency_path, empty_root, inclusion_path, leaf_hash,
    node_hash, range_hash, subtrees, verify_consistency, verify_inclusion,
};
