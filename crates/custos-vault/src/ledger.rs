//! The tamper-evident ledger: a SHA-256 hash chain of decisions, with Ed25519-signed
//! checkpoints, group-committed by one writer thread.
//!
//! An entry holds ids, codes and names from the policy — never a value (DESIGN.md
//! invariant 4). Its hash is SHA-256 over a length-prefixed encoding of every field and the
//! previous entry's hash, so changing any byte of any row breaks the chain at that row.
//!
//! **Group commit** (invariant 2 kept cheap): callers send drafts to the writer thread and
//! block (or, with [`Ledger::submit`], go on with other work); the writer drains everything
//! queued, appends it in one transaction (one fsync) and then tells each caller the sequence
//! numbers its entries got. A caller returns data only after that.

use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};

pub mod block;
pub mod tree;

use crate::crypto::{Secret, hex};
use crate::error::{Error, Result};
use crate::store::{Checkpointer, LedgerRow, Store};

/// The previous hash of the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// A signed checkpoint is written at every multiple of this sequence number.
pub const CHECKPOINT_EVERY: u64 = 1000;
/// Most entries appended in one transaction.
const MAX_BATCH: usize = 8192;
/// The smallest last commit after which the writer holds a group open: a caller or two
/// gain little from a larger group and lose their wait. Not more: a writer that commits
/// whatever came during the last commit never holds a group once its groups are small,
/// and they stay small — reads answered on the runtime's threads settled at 7 entries a
/// commit with 16 here, and at 23 with 4 (docs/benchmarks.md).
const GATHER_FROM: usize = 4;
/// How long the writer sleeps, under load, to let a group grow before committing it.
const LINGER: Duration = Duration::from_micros(100);
/// The longest a group is held open.
const LINGER_MAX: Duration = Duration::from_millis(1);
/// Sleeps in a row without a new entry after which a group has stopped growing: one can
/// pass empty while the callers are off the CPU.
const STALLED: u32 = 2;
/// A group this few entries short of the crowd waits for each (every arrival wakes the
/// writer); further short, it sleeps (a wakeup per arrival of a large crowd would cost
/// more than the fsync saved).
const AWAIT_FEW: usize = 8;

/// An entry before it is placed in the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The accessor, or `operator`/`subject` for lifecycle actions.
    pub actor: String,
    /// `read`, `collect`, `erase`, `consent`, …
    pub action: String,
    /// The subject id, empty when none (a refused collection keeps none).
    pub subject: String,
    /// The purpose as named by the caller, empty when none.
    pub purpose: String,
    /// The recipient, empty when none.
    pub recipient: String,
    /// Category or collection ids, comma-separated.
    pub categories: String,
    /// `permit`, `partial`, `deny`, `done`, `refused`.
    pub effect: String,
    /// Reason codes, comma-separated.
    pub reasons: String,
}

impl Draft {
    /// The draft as a stored row at `seq`, between `prev_hash` and `hash`.
    pub fn row<'a>(&'a self, seq: u64, prev_hash: &'a str, hash: &'a str) -> LedgerRow<'a> {
        LedgerRow {
            seq,
            time_ms: self.time_ms,
            actor: self.actor.as_bytes(),
            action: self.action.as_bytes(),
            subject: self.subject.as_bytes(),
            purpose: self.purpose.as_bytes(),
            recipient: self.recipient.as_bytes(),
            categories: self.categories.as_bytes(),
            effect: self.effect.as_bytes(),
            reasons: self.reasons.as_bytes(),
            prev_hash: prev_hash.as_bytes(),
            hash: hash.as_bytes(),
        }
    }
}

impl LedgerRow<'_> {
    /// The row as an entry; text that is not UTF-8 is replaced (its hash will not match).
    pub fn to_entry(&self) -> LedgerEntry {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        LedgerEntry {
            seq: self.seq,
            draft: Draft {
                time_ms: self.time_ms,
                actor: text(self.actor),
                action: text(self.action),
                subject: text(self.subject),
                purpose: text(self.purpose),
                recipient: text(self.recipient),
                categories: text(self.categories),
                effect: text(self.effect),
                reasons: text(self.reasons),
            },
            prev_hash: text(self.prev_hash),
            hash: text(self.hash),
        }
    }
}

/// A sealed entry of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Position, from 1.
    pub seq: u64,
    /// The entry's fields.
    pub draft: Draft,
    /// Hash of the previous entry, hex.
    pub prev_hash: String,
    /// Hash of this entry, hex.
    pub hash: String,
}

/// A signed statement that the chain had `hash` at `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The sequence number.
    pub seq: u64,
    /// The entry hash at it.
    pub hash: String,
    /// Ed25519 signature over `custos-checkpoint/v1 || seq || hash`, hex.
    pub signature: String,
}

/// The hash of an entry: SHA-256 over a length-prefixed encoding of every field.
pub fn entry_hash(seq: u64, d: &Draft, prev_hash: &str) -> String {
    hex(&entry_digest(seq, d, prev_hash))
}

/// [`entry_hash`] as raw bytes, computed without allocating: the fields stream into the
/// hasher.
pub fn entry_digest(seq: u64, d: &Draft, prev_hash: &str) -> [u8; 32] {
    draft_digest(seq, d, prev_hash.as_bytes())
}

/// [`entry_digest`] with the previous hash as bytes (hex digits).
fn draft_digest(seq: u64, d: &Draft, prev_hash: &[u8]) -> [u8; 32] {
    digest_fields(
        seq,
        d.time_ms,
        [
            d.actor.as_bytes(),
            d.action.as_bytes(),
            d.subject.as_bytes(),
            d.purpose.as_bytes(),
            d.recipient.as_bytes(),
            d.categories.as_bytes(),
            d.effect.as_bytes(),
            d.reasons.as_bytes(),
            prev_hash,
        ],
    )
}

/// The v1 entry hash over `seq`, `time_ms` and the text fields in order (actor … reasons,
/// then `prev_hash`), each length-prefixed.
fn digest_fields(seq: u64, time_ms: i64, fields: [&[u8]; 9]) -> [u8; 32] {
    use sha2::{Digest as _, Sha256};
    let mut h = Sha256::new();
    h.update(b"custos-ledger/v1");
    let mut num = [0u8; 20];
    let seq_s = decimal(seq, false, &mut num);
    h.update((seq_s.len() as u64).to_be_bytes());
    h.update(seq_s);
    let mut num = [0u8; 20];
    let time_s = decimal(time_ms.unsigned_abs(), time_ms < 0, &mut num);
    h.update((time_s.len() as u64).to_be_bytes());
    h.update(time_s);
    for field in fields {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    h.finalize().into()
}

/// Writes `n` (with a leading `-` when `negative`) as decimal text into `buf`, as
/// `to_string` would, and returns the digits written. 20 bytes hold any `u64`, and any
/// `i64` with its sign. On `u64` (not wider) the divisions by
/// 10 compile to multiplications: this runs twice per entry, in append and in verify.
fn decimal(mut n: u64, negative: bool, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    if negative && i > 0 {
        i -= 1;
        if let Some(b) = buf.get_mut(i) {
            *b = b'-';
        }
    }
    buf.get(i..).unwrap_or_default()
}

/// Drafts placed in the chain after the entry `(head_seq, head_hash)`: each draft's sequence
/// number, previous hash and hash (hex), with one allocation for the whole batch. Stores
/// make it inside their append transaction, under the chain-head lock, and insert each
/// draft with [`Chained::seq`], [`Chained::prev_hash`] and [`Chained::hash`].
#[derive(Debug)]
pub struct Chained {
    first_seq: u64,
    /// The head's hash as stored: the first draft's previous hash.
    head: String,
    /// The drafts' hashes, in order.
    hashes: Vec<[u8; 64]>,
}

impl Chained {
    /// Chains `drafts` after the entry `(head_seq, head_hash)`.
    pub fn new(head_seq: u64, head_hash: String, drafts: &[Draft]) -> Self {
        let mut hashes: Vec<[u8; 64]> = Vec::with_capacity(drafts.len());
        for (i, d) in drafts.iter().enumerate() {
            let prev = match hashes.last() {
                Some(h) => h.as_slice(),
                None => head_hash.as_bytes(),
            };
            let digest = draft_digest(head_seq + 1 + i as u64, d, prev);
            hashes.push(hex64(&digest));
        }
        Self {
            first_seq: head_seq + 1,
            head: head_hash,
            hashes,
        }
    }

    /// The sequence number of the first draft.
    pub fn first_seq(&self) -> u64 {
        self.first_seq
    }

    /// The sequence number of draft `i`.
    pub fn seq(&self, i: usize) -> u64 {
        self.first_seq + i as u64
    }

    /// The previous hash of draft `i`.
    pub fn prev_hash(&self, i: usize) -> &str {
        match i.checked_sub(1) {
            None => &self.head,
            Some(j) => self.hash(j),
        }
    }

    /// The hash of draft `i` (empty past the end).
    pub fn hash(&self, i: usize) -> &str {
        // Lowercase hex digits: always UTF-8.
        self.hashes
            .get(i)
            .and_then(|h| std::str::from_utf8(h).ok())
            .unwrap_or_default()
    }

    /// The drafts' leaf hashes in the ledger's Merkle tree ([`tree`]), in order.
    pub fn leaves(&self) -> impl Iterator<Item = custos_tlog::Hash> + '_ {
        self.hashes.iter().map(|h| tree::leaf_of_hex(h))
    }

    /// The checkpoints `checkpoint` says are due among the drafts.
    pub fn checkpoints<'a>(
        &'a self,
        checkpoint: &'a Checkpointer<'a>,
    ) -> impl Iterator<Item = Checkpoint> + 'a {
        (0..self.hashes.len()).filter_map(move |i| checkpoint(self.seq(i), self.hash(i)))
    }
}

fn checkpoint_message(seq: u64, hash: &str) -> Vec<u8> {
    let mut m = b"custos-checkpoint/v1".to_vec();
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(hash.as_bytes());
    m
}

/// Signs checkpoints. Its seed is a vault secret wrapped by the master key.
#[derive(Clone)]
pub struct CheckpointSigner {
    key: SigningKey,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CheckpointSigner(..)")
    }
}

impl CheckpointSigner {
    /// A signer from a 32-byte seed.
    pub fn new(seed: &Secret) -> Self {
        Self {
            key: SigningKey::from_bytes(seed),
        }
    }

    /// The public key, hex: publish it so anyone can check checkpoints.
    pub fn public_key(&self) -> String {
        hex(self.key.verifying_key().as_bytes())
    }

    /// Signs the chain head at `seq`.
    pub fn sign(&self, seq: u64, hash: &str) -> Checkpoint {
        let sig = self.key.sign(&checkpoint_message(seq, hash));
        Checkpoint {
            seq,
            hash: hash.to_string(),
            signature: hex(&sig.to_bytes()),
        }
    }

    /// The checkpoint due at an entry: signed at every multiple of [`CHECKPOINT_EVERY`].
    pub fn due(&self, seq: u64, hash: &str) -> Option<Checkpoint> {
        (seq % CHECKPOINT_EVERY == 0).then(|| self.sign(seq, hash))
    }

    /// The signing key, for the tree's signed notes.
    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        self.key.verifying_key()
    }
}

fn signature_ok(key: &VerifyingKey, c: &Checkpoint) -> bool {
    let Some(bytes) = unhex64(&c.signature) else {
        return false;
    };
    let sig = Signature::from_bytes(&bytes);
    key.verify(&checkpoint_message(c.seq, &c.hash), &sig)
        .is_ok()
}

fn unhex64(s: &str) -> Option<[u8; 64]> {
    let mut out = [0u8; 64];
    if s.len() != 128 {
        return None;
    }
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The result of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Entries that checked out: seqs 1 to this.
    pub entries: u64,
    /// Hash of the last entry that checked out.
    pub head: String,
    /// Signed checkpoints checked.
    pub checkpoints: u64,
    /// The first entry that does not match, if any.
    pub first_bad: Option<u64>,
    /// What is wrong at `first_bad`; set with it.
    pub broken: Option<Broken>,
    /// The Merkle tree root (RFC 6962) of the entries that checked out, recomputed from
    /// their rows ([`tree`]): what the stored tiles must agree with.
    pub root: [u8; 32],
    /// The root recomputed at the tree size asked for ([`verify_tree`]), when the entries
    /// that checked out reach it.
    pub root_at: Option<(u64, [u8; 32])>,
}

impl Verification {
    /// Whether the whole chain checked out.
    pub fn ok(&self) -> bool {
        self.first_bad.is_none()
    }

    /// The last entry that checked out as a [`Head`] (`SEQ:HASH`): when the chain is intact,
    /// the ledger's head, for the operator to keep outside the database.
    pub fn verified_head(&self) -> Head {
        Head {
            seq: self.entries,
            hash: self.head.clone(),
        }
    }
}

/// What [`verify`] found wrong at [`Verification::first_bad`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broken {
    /// The entry is missing or does not match the chain: a field, its link or its hash
    /// changed, its block does not decode, or the stored blocks leave a gap, overlap, or
    /// claim entries that are not there.
    Entry,
    /// The entry's signed checkpoint is missing, forged, or names another hash.
    Checkpoint,
    /// A signed checkpoint names an entry after the last one: the ledger's tail was cut;
    /// `first_bad` is the first entry missing.
    CheckpointPastEnd,
    /// The ledger ends before the head given to [`verify_against`]: its tail was cut;
    /// `first_bad` is the first entry missing.
    HeadPastEnd,
    /// The entry at the head given to [`verify_against`] has another hash: the ledger was
    /// rewritten up to it.
    HeadDiffers,
}

/// An entry of the chain by its seq and hash, written `SEQ:HASH`: the head [`verify`]
/// reports ([`Verification::verified_head`]), which an operator keeps outside the database
/// and gives back to [`verify_against`] (`custos audit verify --head`) to detect a ledger
/// cut or rewritten up to it — what the database alone cannot show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The entry's seq; 0 for the empty ledger.
    pub seq: u64,
    /// The entry's hash, 64 lowercase hex digits; [`GENESIS`] at seq 0.
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = Error;

    /// `SEQ:HASH`, as [`Head`]'s `Display` writes it; the hash's hex digits in either case.
    fn from_str(s: &str) -> Result<Self> {
        let bad = || {
            Error::invalid(
                "invalid_head",
                "give the head as `SEQ:HASH` (a seq, then 64 hex digits), as \
                 `custos audit verify` prints it",
            )
        };
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq: u64 = seq.parse().map_err(|_| bad())?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let hash = hash.to_ascii_lowercase();
        if seq == 0 && hash != GENESIS {
            return Err(Error::invalid(
                "invalid_head",
                "head 0 is the empty ledger, whose hash is 64 zeros; give the head \
                 `custos audit verify` printed",
            ));
        }
        Ok(Self { seq, hash })
    }
}

/// Entries per batch: a reader scans one seq range of this length (one query) and hands
/// the checker its items at once.
const BATCH: u64 = 4096;

/// Most reader threads: each reads, encodes and hashes rows (the costly part); the checker
/// only compares.
const MAX_READERS: usize = 4;

/// One entry as the checker needs it: fixed size, nothing allocated. The stored hashes stay
/// text, compared byte for byte (as the stored strings always were) with the hex of the
/// digest, so a reader decodes nothing.
#[derive(Debug, Clone, Copy)]
struct Item {
    seq: u64,
    /// The entry's hash recomputed from its row.
    digest: [u8; 32],
    /// `prev_hash` as stored; `None` when it is not 64 bytes long (it then matches nothing).
    prev: Option<[u8; 64]>,
    /// `hash` as stored, likewise.
    hash: Option<[u8; 64]>,
    /// The entry's leaf hash in the Merkle tree, from the recomputed digest.
    leaf: [u8; 32],
}

impl Item {
    fn of(r: &LedgerRow<'_>) -> Self {
        let mut item = Self {
            seq: r.seq,
            leaf: [0; 32],
            digest: digest_fields(
                r.seq,
                r.time_ms,
                [
                    r.actor,
                    r.action,
                    r.subject,
                    r.purpose,
                    r.recipient,
                    r.categories,
                    r.effect,
                    r.reasons,
                    r.prev_hash,
                ],
            ),
            prev: r.prev_hash.try_into().ok(),
            hash: r.hash.try_into().ok(),
        };
        item.leaf = custos_tlog::leaf_hash(&item.digest);
        item
    }
}

/// A digest as lowercase hex, as [`hex`] writes it, without allocating or branching.
fn hex64(digest: &[u8; 32]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = [0u8; 64];
    for (pair, b) in out.chunks_exact_mut(2).zip(digest) {
        if let [hi, lo] = pair {
            *hi = DIGITS.get(usize::from(b >> 4)).copied().unwrap_or(b'?');
            *lo = DIGITS.get(usize::from(b & 15)).copied().unwrap_or(b'?');
        }
    }
    out
}

/// Recomputes the chain from the start, and checks that every `CHECKPOINT_EVERY`-th entry
/// has a checkpoint whose signature verifies and whose hash is the entry's.
///
/// The chain up to its last entry at the start is cut into seq ranges of [`BATCH`]; reader
/// threads (one per core, at most [`MAX_READERS`]) take turns at them, each streaming its
/// rows out of the store ([`Store::scan_ledger`]: text borrowed, nothing allocated per row),
/// recomputing each entry's hash as it goes and keeping a fixed-size [`Item`]. This thread
/// takes the batches back in order and checks sequence, links and checkpoints. Entries
/// appended once verify has started are not checked.
///
/// The entries checked are all the stored blocks claim: the first block starts at seq 1,
/// each block starts the seq after the one before ends ([`block::Scan`]), every seq up to
/// the last one the blocks name ([`Store::ledger_span`]) is there, and no signed checkpoint
/// names a seq beyond it. A tail cut off together with its checkpoints still looks like a
/// shorter ledger: [`verify_against`] a head kept outside the database detects that.
pub fn verify(store: &dyn Store, signer: &CheckpointSigner) -> Result<Verification> {
    verify_against(store, signer, None)
}

/// [`verify`], and, given `head` (the head an earlier verify reported, kept outside the
/// database), that the ledger still holds that entry with that hash: a ledger that ends
/// before it fails with [`Broken::HeadPastEnd`], one whose entry there has another hash
/// with [`Broken::HeadDiffers`].
pub fn verify_against(
    store: &dyn Store,
    signer: &CheckpointSigner,
    head: Option<&Head>,
) -> Result<Verification> {
    verify_tree(store, signer, head, None)
}

/// [`verify_against`], also keeping the Merkle root of the first `at` entries
/// ([`Verification::root_at`]), recomputed from their rows: what a checkpoint of that tree
/// size kept outside the database must name (`custos audit verify --checkpoint`).
pub fn verify_tree(
    store: &dyn Store,
    signer: &CheckpointSigner,
    head: Option<&Head>,
    at: Option<u64>,
) -> Result<Verification> {
    let key = signer.verifying_key();
    let mut checkpoints = store.checkpoints()?;
    checkpoints.sort_by_key(|c| c.seq);
    let mut cps = checkpoints.into_iter().peekable();
    // Read after the checkpoints: each checkpoint is written with its entry, so every one
    // read is at or below this.
    let span = store.ledger_span()?;
    let last = span.map_or(0, |(_, last)| last);
    let batches = last.div_ceil(BATCH);
    let readers = thread::available_parallelism()
        .map_or(1, |n| n.get().min(MAX_READERS))
        .min(usize::try_from(batches).unwrap_or(1).max(1));
    // The entry the head given names (seq 0, the empty ledger, names none to compare).
    let (want_seq, want_hash) = match head {
        Some(h) => (h.seq, h.hash.as_bytes().try_into().unwrap_or([0u8; 64])),
        None => (0, [0u8; 64]),
    };
    let mut v = Verification {
        entries: 0,
        head: GENESIS.to_string(),
        checkpoints: 0,
        first_bad: None,
        broken: None,
        root: custos_tlog::empty_root(),
        root_at: None,
    };
    let mut tree = custos_tlog::Compact::new();
    if at == Some(0) {
        v.root_at = Some((0, tree.root()));
    }
    // The hash of the last entry checked, as hex text: what the next one's `prev_hash` holds.
    let mut head = [0u8; 64];
    head.copy_from_slice(GENESIS.as_bytes());
    let mut expected = 1u64;
    // Blocks before seq 1 claim entries that are no part of the chain.
    if span.is_some_and(|(first, _)| first != 1) {
        fail(&mut v, 1, Broken::Entry);
        return Ok(v);
    }
    thread::scope(|scope| -> Result<()> {
        // Reader k reads batches k, k + readers, …; each has its own channel, so this thread
        // takes batch b from reader b % readers, in order, and returns the spent buffer.
        let mut inbox = Vec::with_capacity(readers);
        let mut spent = Vec::with_capacity(readers);
        for k in 0..readers {
            let (full_tx, full_rx) = mpsc::sync_channel::<Result<Vec<Item>>>(2);
            let (empty_tx, empty_rx) = mpsc::channel::<Vec<Item>>();
            inbox.push(full_rx);
            spent.push(empty_tx);
            scope.spawn(move || {
                let mut b = k as u64;
                while b < batches {
                    let mut items = empty_rx
                        .try_recv()
                        .unwrap_or_else(|_| Vec::with_capacity(BATCH as usize));
                    items.clear();
                    let from = 1 + b * BATCH;
                    let to = (from + BATCH).min(last + 1);
                    let read = store.scan_ledger(from..to, &mut |row| {
                        items.push(Item::of(row));
                        true
                    });
                    // The checker stopped (it found a bad entry, or an error): stop reading.
                    if full_tx.send(read.map(|()| items)).is_err() {
                        return;
                    }
                    b += readers as u64;
                }
            });
        }
        // `inbox` is dropped on return, which stops the readers.
        for b in 0..batches {
            let k = usize::try_from(b % readers as u64).unwrap_or(0);
            // A reader that stopped before its last batch (it panicked) fails the
            // verification; it never shortens the chain checked.
            let items = inbox
                .get(k)
                .ok_or_else(|| Error::Storage("ledger reader stopped".into()))?
                .recv()
                .map_err(|_| Error::Storage("ledger reader stopped".into()))??;
            for e in &items {
                let digest = hex64(&e.digest);
                let bad = e.seq != expected || e.prev != Some(head) || e.hash != Some(digest);
                if bad {
                    fail(&mut v, expected, Broken::Entry);
                    return Ok(());
                }
                if e.seq == want_seq && digest != want_hash {
                    fail(&mut v, e.seq, Broken::HeadDiffers);
                    return Ok(());
                }
                let mut signed = false;
                while let Some(c) = cps.next_if(|c| c.seq <= e.seq) {
                    if c.seq != e.seq || c.hash.as_bytes() != digest || !signature_ok(&key, &c) {
                        fail(&mut v, c.seq, Broken::Checkpoint);
                        return Ok(());
                    }
                    signed = true;
                    v.checkpoints += 1;
                }
                // Checkpoints are written in the entry's own transaction: one missing was
                // removed.
                if e.seq % CHECKPOINT_EVERY == 0 && !signed {
                    fail(&mut v, e.seq, Broken::Checkpoint);
                    return Ok(());
                }
                v.entries += 1;
                tree.push(e.leaf);
                if at == Some(v.entries) {
                    v.root_at = Some((v.entries, tree.root()));
                }
                head = digest;
                expected += 1;
            }
            // Every seq of the batch is there: the blocks claim entries up to `last`, so one
            // missing (a block removed, or hidden behind a malformed one) is a break.
            if expected != (1 + (b + 1) * BATCH).min(last + 1) {
                fail(&mut v, expected, Broken::Entry);
                return Ok(());
            }
            if let Some(s) = spent.get(k) {
                let _ = s.send(items);
            }
        }
        Ok(())
    })?;
    v.head = String::from_utf8_lossy(&head).into_owned();
    v.root = tree.root();
    if v.first_bad.is_some() {
        return Ok(v);
    }
    // A checkpoint beyond the end means entries were removed from the tail.
    if cps.next().is_some() {
        fail(&mut v, expected, Broken::CheckpointPastEnd);
    } else if want_seq >= expected {
        fail(&mut v, expected, Broken::HeadPastEnd);
    }
    Ok(v)
}

fn fail(v: &mut Verification, seq: u64, why: Broken) {
    v.first_bad = Some(seq);
    v.broken = Some(why);
}

/// What the writer calls, on its own thread, once a submission's entries are durable (or
/// failed), with the sequence numbers they were given. It must be quick: the next batch
/// waits for it.
pub type Done = Box<dyn FnOnce(Result<Range<u64>>) + Send>;

type Request = (Vec<Draft>, Done);

/// Upper bounds of the commit-size buckets: the bucket of a commit of `n` entries is the
/// first `i` with `n <= BATCH_BUCKETS[i]`; a larger commit (one `append_many` of more than
/// a batch) counts in the extra last bucket.
pub const BATCH_BUCKETS: [u64; 8] = [1, 4, 16, 64, 256, 1024, 4096, 8192];

/// Counters of the writer's commits (for `/metrics`).
#[derive(Debug, Default)]
pub struct BatchStats {
    /// Commits per size bucket (see [`BATCH_BUCKETS`]; the last counts larger ones), not
    /// cumulative.
    pub buckets: [AtomicU64; 9],
    /// Commits.
    pub commits: AtomicU64,
    /// Entries committed.
    pub entries: AtomicU64,
}

impl BatchStats {
    fn count(&self, n: usize) {
        let n = n as u64;
        let i = BATCH_BUCKETS
            .iter()
            .position(|&b| n <= b)
            .unwrap_or(BATCH_BUCKETS.len());
        if let Some(b) = self.buckets.get(i) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.commits.fetch_add(1, Ordering::Relaxed);
        self.entries.fetch_add(n, Ordering::Relaxed);
    }
}

/// The ledger writer: one thread that group-commits entries.
#[derive(Debug)]
pub struct Ledger {
    appender: Option<Appender>,
    thread: Option<thread::JoinHandle<()>>,
    stats: Arc<BatchStats>,
}

/// Another handle on a running [`Ledger`]'s writer, for a thread of the crate's own (the
/// erasure purger). The writer runs until every handle is gone: drop each before the
/// `Ledger`, whose drop waits for the writer.
#[derive(Debug, Clone)]
pub(crate) struct Appender {
    tx: mpsc::Sender<Request>,
}

impl Appender {
    /// Appends an entry and returns its sequence number once it is durable.
    pub(crate) fn append(&self, draft: Draft) -> Result<u64> {
        Ok(self.append_many(vec![draft])?.start)
    }

    /// See [`Ledger::append_many`].
    pub(crate) fn append_many(&self, drafts: Vec<Draft>) -> Result<Range<u64>> {
        if drafts.is_empty() {
            return Ok(0..0);
        }
        let (wtx, wrx) = mpsc::sync_channel(1);
        self.submit(
            drafts,
            Box::new(move |r| {
                let _ = wtx.send(r);
            }),
        )?;
        wrx.recv()
            .map_err(|_| Error::Storage("ledger writer stopped".into()))?
    }

    /// See [`Ledger::submit`].
    pub(crate) fn submit(&self, drafts: Vec<Draft>, done: Done) -> Result<()> {
        self.tx
            .send((drafts, done))
            .map_err(|_| Error::Storage("ledger writer stopped".into()))
    }
}

impl Ledger {
    /// Starts the writer thread over a store.
    pub fn start(store: Arc<dyn Store>, signer: CheckpointSigner) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Request>();
        let stats = Arc::new(BatchStats::default());
        let counts = Arc::clone(&stats);
        let thread = thread::Builder::new()
            .name("custos-ledger".into())
            .spawn(move || writer(&*store, &signer, &rx, &counts))
            .map_err(|_| Error::Storage("cannot start the ledger writer".into()))?;
        Ok(Self {
            appender: Some(Appender { tx }),
            thread: Some(thread),
            stats,
        })
    }

    /// The writer's commits so far, by size.
    pub fn stats(&self) -> &BatchStats {
        &self.stats
    }

    fn handle(&self) -> Result<&Appender> {
        self.appender
            .as_ref()
            .ok_or_else(|| Error::Storage("ledger writer stopped".into()))
    }

    /// Another handle on the writer; see [`Appender`].
    pub(crate) fn appender(&self) -> Result<Appender> {
        self.handle().cloned()
    }

    /// Appends an entry and returns its sequence number once it is durable.
    pub fn append(&self, draft: Draft) -> Result<u64> {
        self.handle()?.append(draft)
    }

    /// Appends entries, consecutive in the chain, and returns their sequence numbers once
    /// all are durable: they share one commit (with whatever else is queued), unless there
    /// are more than a batch holds.
    pub fn append_many(&self, drafts: Vec<Draft>) -> Result<Range<u64>> {
        self.handle()?.append_many(drafts)
    }

    /// Queues entries, consecutive in the chain, and returns at once; the writer calls `done`
    /// with them once they are durable, or with the error. `done` is not called when this
    /// returns an error (the writer has stopped).
    pub fn submit(&self, drafts: Vec<Draft>, done: Done) -> Result<()> {
        self.handle()?.submit(drafts, done)
    }
}

impl Drop for Ledger {
    fn drop(&mut self) {
        drop(self.appender.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// When the writer holds a group open. A commit costs an fsync whose CPU cost (on a
/// virtual disk above all) is the same for one entry as for two hundred, so under load a
/// group is worth growing; a caller alone, or callers that all wait, must not wait longer.
///
/// A group is held open only when entries kept coming while the last commit was written (a
/// stream: callers that go on while their entries are written, like the server's reads)
/// and the last commit held [`GATHER_FROM`] entries or more. It is then held while it grows — the
/// writer sleeps [`LINGER`] at a time, the callers having the CPU — for at most
/// [`LINGER_MAX`]. A group that stops growing ([`STALLED`] sleeps bring nothing) tells the
/// size of the crowd of callers; later groups wait only until they are that large again (a
/// larger one sets the crowd anew), the last [`AWAIT_FEW`] woken by each arrival.
#[derive(Debug, Default)]
struct Gather {
    /// Entries in the last commit.
    last: usize,
    /// How many callers come when the entries are a crowd's, once a group has shown it.
    crowd: Option<usize>,
}

/// What the writer does with an open group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hold {
    /// Commit it.
    Commit,
    /// Sleep [`LINGER`] and take what came.
    Sleep,
    /// Wait for the next entry, at most this long.
    Await(Duration),
}

impl Gather {
    /// What to do with a group of `n` entries, open for `held`: `streaming` says entries
    /// came while the last commit was written, `idle` how many sleeps in a row brought
    /// nothing. A [`Hold::Commit`] is remembered.
    fn hold(&mut self, streaming: bool, n: usize, idle: u32, held: Duration) -> Hold {
        let crowd = if !streaming || self.last < GATHER_FROM {
            self.crowd
        } else if n >= MAX_BATCH || held >= LINGER_MAX {
            None
        } else if self.crowd.is_some_and(|c| n >= c) || idle >= STALLED {
            Some(n)
        } else if self.crowd.is_some_and(|c| c - n <= AWAIT_FEW) {
            return Hold::Await(LINGER_MAX.saturating_sub(held));
        } else {
            return Hold::Sleep;
        };
        self.crowd = crowd;
        self.last = n;
        Hold::Commit
    }
}

/// The next group from `rx`, as [`Gather`] holds it open: the first item (waited for),
/// everything already queued, and under load what comes while the group is held. An item
/// holds `size(item)` entries; a group stops taking items once it holds [`MAX_BATCH`] or
/// more. `None` once every sender is gone and nothing is queued.
fn next_group<T>(
    rx: &mpsc::Receiver<T>,
    gather: &mut Gather,
    size: impl Fn(&T) -> usize,
) -> Option<Vec<T>> {
    let max = MAX_BATCH;
    // Items that came while the last group was committed: a stream, not only callers that
    // each wait for their last entry.
    let (streaming, first) = match rx.try_recv() {
        Ok(item) => (true, item),
        Err(mpsc::TryRecvError::Empty) => (false, rx.recv().ok()?),
        Err(mpsc::TryRecvError::Disconnected) => return None,
    };
    let mut n = size(&first);
    let mut group = vec![first];
    let started = Instant::now();
    // Sleeps in a row that brought nothing.
    let mut idle = 0;
    loop {
        while n < max {
            match rx.try_recv() {
                Ok(item) => {
                    n += size(&item);
                    group.push(item);
                    idle = 0;
                }
                Err(_) => break,
            }
        }
        match gather.hold(streaming, n, idle, started.elapsed()) {
            Hold::Commit => return Some(group),
            Hold::Sleep => {
                idle += 1;
                thread::sleep(LINGER);
            }
            Hold::Await(at_most) => match rx.recv_timeout(at_most) {
                Ok(item) => {
                    n += size(&item);
                    group.push(item);
                    idle = 0;
                }
                Err(mpsc::RecvTimeoutError::Timeout) => idle += 1,
                // Every sender is gone: no one else is coming.
                Err(mpsc::RecvTimeoutError::Disconnected) => return Some(group),
            },
        }
    }
}

fn writer(
    store: &dyn Store,
    signer: &CheckpointSigner,
    rx: &mpsc::Receiver<Request>,
    stats: &BatchStats,
) {
    let checkpoint = |seq: u64, hash: &str| signer.due(seq, hash);
    let mut gather = Gather::default();
    while let Some(group) = next_group(rx, &mut gather, |(d, _)| d.len()) {
        let mut drafts = Vec::with_capacity(group.iter().map(|(d, _)| d.len()).sum());
        let mut waiters = Vec::with_capacity(group.len());
        for (mut more, done) in group {
            waiters.push((done, more.len()));
            drafts.append(&mut more);
        }
        let result = store.append_ledger(&drafts, &checkpoint);
        if result.is_ok() {
            stats.count(drafts.len());
        }
        // A waiter's callback that panics fails nobody else, and never the writer.
        let call = |done: Done, r: Result<Range<u64>>| {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || done(r)));
        };
        match result {
            Ok(first) => {
                let mut next = first;
                for (done, n) in waiters {
                    let start = next;
                    next += n as u64;
                    call(done, Ok(start..next));
                }
            }
            Err(e) => {
                for (done, _) in waiters {
                    call(done, Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;

    /// The encoding as first written (allocating), which stored chains were hashed with.
    fn reference_hash(seq: u64, d: &Draft, prev_hash: &str) -> String {
        let mut buf = Vec::new();
        buf.extend_from_slice(b"custos-ledger/v1");
        for field in [
            seq.to_string().as_str(),
            d.time_ms.to_string().as_str(),
            &d.actor,
            &d.action,
            &d.subject,
            &d.purpose,
            &d.recipient,
            &d.categories,
            &d.effect,
            &d.reasons,
            prev_hash,
        ] {
            buf.extend_from_slice(&(field.len() as u64).to_be_bytes());
            buf.extend_from_slice(field.as_bytes());
        }
        hex(&sha256(&buf))
    }

    #[test]
    fn a_group_is_held_open_only_for_a_stream() {
        let ms = Duration::from_millis;
        let mut g = Gather::default();
        // A caller alone, and a few callers, commit at once.
        assert_eq!(g.hold(true, 1, 0, ms(0)), Hold::Commit);
        assert_eq!(g.hold(true, GATHER_FROM - 1, 0, ms(0)), Hold::Commit);
        // After a large commit: held only when entries came during it.
        assert_eq!(g.hold(false, 40, 0, ms(0)), Hold::Commit);
        assert_eq!(g.hold(true, 40, 0, ms(0)), Hold::Sleep);
        assert_eq!(g.hold(true, 40, 1, ms(0)), Hold::Sleep);
        // Held no longer than LINGER_MAX, nor past a full batch; no crowd is learnt then.
        assert_eq!(g.hold(true, 90, 0, LINGER_MAX), Hold::Commit);
        assert_eq!(g.crowd, None);
        assert_eq!(g.hold(true, MAX_BATCH, 0, ms(0)), Hold::Commit);
        assert_eq!(g.hold(true, 30, STALLED - 1, ms(0)), Hold::Sleep);
        // A group that stops growing sets the crowd…
        assert_eq!(g.hold(true, 30, STALLED, ms(0)), Hold::Commit);
        assert_eq!(g.crowd, Some(30));
        // …which later groups wait for: asleep while far short, woken by each arrival
        // when a few short, and committed once it is there.
        assert_eq!(g.hold(true, 10, 0, ms(0)), Hold::Sleep);
        assert_eq!(
            g.hold(true, 30 - AWAIT_FEW, 0, ms(0)),
            Hold::Await(LINGER_MAX)
        );
        assert_eq!(
            g.hold(true, 29, 0, Duration::from_micros(300)),
            Hold::Await(Duration::from_micros(700))
        );
        assert_eq!(g.hold(true, 30, 0, ms(0)), Hold::Commit);
        // A larger group sets it anew.
        assert_eq!(g.hold(true, 45, 0, ms(0)), Hold::Commit);
        assert_eq!(g.crowd, Some(45));
    }

    /// Crowds of callers that each wait for their entry — one, a few, many, and crowds
    /// that shrink as callers finish — all get their entries, in one valid chain.
    #[test]
    fn callers_that_wait_for_their_entries_all_get_them() {
        let dir = std::env::temp_dir().join(format!("custos_gather_{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store: Arc<dyn Store> = Arc::new(crate::SqliteStore::open(&dir).unwrap());
        let signer = CheckpointSigner::new(&crate::crypto::random_secret().unwrap());
        let ledger = Arc::new(Ledger::start(Arc::clone(&store), signer.clone()).unwrap());
        for threads in [1, 3, 40] {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    let ledger = Arc::clone(&ledger);
                    thread::spawn(move || {
                        for i in 0..50 {
                            let d = Draft {
                                actor: format!("t{t}"),
                                time_ms: i,
                                ..Draft::default()
                            };
                            ledger.append(d).unwrap();
                        }
                    })
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
        }
        assert_eq!(ledger.stats().entries.load(Ordering::Relaxed), 50 * 44);
        let v = verify(&*store, &signer).unwrap();
        assert!(v.ok() && v.entries == 50 * 44, "{v:?}");
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_head_reads_back_as_written() {
        let hash = "ab".repeat(32);
        let head: Head = format!("42:{}", hash.to_uppercase()).parse().unwrap();
        assert_eq!(
            head,
            Head {
                seq: 42,
                hash: hash.clone()
            }
        );
        assert_eq!(head.to_string().parse::<Head>().unwrap(), head);
        assert!(format!("0:{GENESIS}").parse::<Head>().is_ok());
        for bad in [
            String::new(),
            hash.clone(),
            format!("42:{}", &hash[1..]),
            format!("42:{hash}0"),
            format!("-1:{hash}"),
            format!("x:{hash}"),
            format!("42:{}", "g".repeat(64)),
            format!("0:{hash}"),
        ] {
            let e = bad.parse::<Head>().unwrap_err();
            assert_eq!(e.code(), "invalid_head", "{bad}");
        }
    }

    #[test]
    fn chained_links_each_draft_to_the_one_before() {
        let drafts: Vec<Draft> = (0..3)
            .map(|i| Draft {
                actor: format!("a{i}"),
                time_ms: i,
                ..Draft::default()
            })
            .collect();
        let c = Chained::new(7, "h7".into(), &drafts);
        assert_eq!(c.first_seq(), 8);
        let mut prev = "h7".to_string();
        for (i, d) in drafts.iter().enumerate() {
            assert_eq!(c.seq(i), 8 + i as u64);
            assert_eq!(c.prev_hash(i), prev);
            let h = entry_hash(c.seq(i), d, &prev);
            assert_eq!(c.hash(i), h);
            prev = h;
        }
        assert_eq!(c.hash(3), "");
        let every_other = |seq: u64, hash: &str| {
            (seq % 2 == 0).then(|| Checkpoint {
                seq,
                hash: hash.into(),
                signature: String::new(),
            })
        };
        let due: Vec<u64> = c.checkpoints(&every_other).map(|k| k.seq).collect();
        assert_eq!(due, [8, 10]);
    }

    #[test]
    fn streamed_hash_matches_the_v1_encoding() {
        for (seq, time_ms) in [
            (0, 0),
            (1, 1_764_000_000_000),
            (9, -1),
            (10, 10),
            (u64::MAX, i64::MIN),
            (123_456_789, i64::MAX),
        ] {
            let d = Draft {
                time_ms,
                actor: "meeting-center".into(),
                action: "read".into(),
                subject: "s1".into(),
                purpose: "service.meetings".into(),
                categories: "contact.email,contact.name".into(),
                effect: "permit".into(),
                ..Draft::default()
            };
            let want = reference_hash(seq, &d, GENESIS);
            assert_eq!(entry_hash(seq, &d, GENESIS), want);
            let digest = entry_digest(seq, &d, GENESIS);
            assert_eq!(hex64(&digest).as_slice(), want.as_bytes());
            assert_eq!(hex64(&digest).as_slice(), hex(&digest).as_bytes());
            // The verifier hashes the stored row's bytes the same way.
            let row = LedgerRow {
                seq,
                time_ms,
                actor: d.actor.as_bytes(),
                action: d.action.as_bytes(),
                subject: d.subject.as_bytes(),
                purpose: d.purpose.as_bytes(),
                recipient: d.recipient.as_bytes(),
                categories: d.categories.as_bytes(),
                effect: d.effect.as_bytes(),
                reasons: d.reasons.as_bytes(),
                prev_hash: GENESIS.as_bytes(),
                hash: want.as_bytes(),
            };
            let item = Item::of(&row);
            assert_eq!(item.digest, digest);
            assert_eq!(item.hash, Some(hex64(&digest)));
        }
    }
}
