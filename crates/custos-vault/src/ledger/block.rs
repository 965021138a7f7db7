//! Ledger blocks: the entries of one group commit stored as one row.
//!
//! A row per entry made every entry a B-tree insert of ~300 bytes (two hashes as hex among
//! them) and its pages written to the WAL, synced and checkpointed; that was most of what a
//! durable entry cost. A block holds the entries `first_seq..=last_seq` of one commit,
//! compactly:
//!
//! - the row keeps `first_seq`, `last_seq` and `prev_hash` (the hash, as stored text, before
//!   the first entry); each later entry's previous hash is the stored hash of the entry
//!   before it, so a chain is stored once, not twice;
//! - the body is a version byte ([`VERSION`]) and then, per entry: the change of `time_ms`
//!   from the entry before (zigzag LEB128; the first from 0); a byte whose bit `i` says text
//!   field `i` (actor, action, subject, purpose, recipient, categories, effect, reasons)
//!   equals the entry before's (the first entry's "before" is all empty), and each other
//!   field as a LEB128 length and its bytes; then the entry's hash: `0` and its 32 bytes
//!   when the stored hash is 64 lowercase hex digits (always, for entries this crate wrote),
//!   else `1`, a length and the text as stored (a ledger converted from rows keeps what it
//!   held, tampered or not).
//!
//! The encoding is canonical — a field equal to the one before is always marked, lengths
//! are never padded, a hash that could be binary is — and decoding rejects anything else.
//! So a changed byte either decodes to a different entry, whose hash then fails, or does
//! not decode; either way the entry holding the byte is reported: flipping any byte of a
//! block makes verification fail at the entry that byte belongs to.
//!
//! The hash of an entry is unchanged: [`super::entry_hash`] over its fields and the
//! previous hash as hex text, as when entries were rows.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::ledger::{Chained, Draft, LedgerEntry};
use crate::store::{LedgerRow, LedgerVisitor};

/// The body's first byte.
pub const VERSION: u8 = 1;

/// Most entries in one block: a group commit larger than this (a bulk collection) is
/// stored as several, so reading one entry never decodes more than this many.
pub const MAX_ENTRIES: usize = 1024;

const FIELDS: usize = 8;

/// A stored block, as read from its row.
#[derive(Debug, Clone, Copy)]
pub struct BlockRef<'a> {
    /// The sequence number of the first entry.
    pub first_seq: u64,
    /// The sequence number of the last entry.
    pub last_seq: u64,
    /// The previous hash of the first entry, as stored.
    pub prev_hash: &'a [u8],
    /// The encoded entries.
    pub body: &'a [u8],
}

fn fields<'a>(r: &LedgerRow<'a>) -> [&'a [u8]; FIELDS] {
    [
        r.actor,
        r.action,
        r.subject,
        r.purpose,
        r.recipient,
        r.categories,
        r.effect,
        r.reasons,
    ]
}

/// The row with `fields` (in the order of [`fields`]) at `seq`.
fn row_of<'a>(
    seq: u64,
    time_ms: i64,
    fields: [&'a [u8]; FIELDS],
    prev_hash: &'a [u8],
    hash: &'a [u8],
) -> LedgerRow<'a> {
    let [
        actor,
        action,
        subject,
        purpose,
        recipient,
        categories,
        effect,
        reasons,
    ] = fields;
    LedgerRow {
        seq,
        time_ms,
        actor,
        action,
        subject,
        purpose,
        recipient,
        categories,
        effect,
        reasons,
        prev_hash,
        hash,
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

/// `s` as the 32 bytes it spells when it is 64 lowercase hex digits.
fn binary_hash(s: &[u8]) -> Option<[u8; 32]> {
    /// The value of a lowercase hex digit; 16 for any other byte.
    fn digit(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 16,
        }
    }
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    let mut bad = 0u8;
    for (o, pair) in out.iter_mut().zip(s.chunks_exact(2)) {
        let [hi, lo] = pair else { return None };
        let (h, l) = (digit(*hi), digit(*lo));
        bad |= (h | l) & 16;
        *o = (h << 4) | (l & 15);
    }
    (bad == 0).then_some(out)
}

/// The body of a block holding `rows`, which the caller has made consecutive: each row's
/// seq one more than the row before's, its `prev_hash` the row before's `hash` (the first
/// row's `prev_hash` goes in the block's own column). Their `seq` and `prev_hash` are not
/// stored.
pub fn encode(rows: &[LedgerRow<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + rows.len() * 96);
    out.push(VERSION);
    let mut before: [&[u8]; FIELDS] = [b""; FIELDS];
    let mut time = 0i64;
    for r in rows {
        put_varint(&mut out, zigzag(r.time_ms.wrapping_sub(time)));
        time = r.time_ms;
        let now = fields(r);
        let mut same = 0u8;
        for (i, (a, b)) in now.iter().zip(&before).enumerate() {
            if a == b {
                same |= 1 << i;
            }
        }
        out.push(same);
        for (i, f) in now.iter().enumerate() {
            if same & (1 << i) == 0 {
                put_varint(&mut out, f.len() as u64);
                out.extend_from_slice(f);
            }
        }
        before = now;
        match binary_hash(r.hash) {
            Some(b) => {
                out.push(0);
                out.extend_from_slice(&b);
            }
            None => {
                out.push(1);
                put_varint(&mut out, r.hash.len() as u64);
                out.extend_from_slice(r.hash);
            }
        }
    }
    out
}

/// A hash as the decoder hands it on: hex of 32 stored bytes, or stored text.
#[derive(Clone, Copy)]
enum Hash<'a> {
    Hex([u8; 64]),
    Text(&'a [u8]),
}

impl Hash<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Hash::Hex(h) => h,
            Hash::Text(t) => t,
        }
    }
}

struct Reader<'a> {
    body: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Option<u8> {
        let b = *self.body.get(self.pos)?;
        self.pos += 1;
        Some(b)
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(usize::try_from(n).ok()?)?;
        let s = self.body.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    /// LEB128, canonical only: at most ten bytes, no padding (a last byte of zero after
    /// the first).
    fn varint(&mut self) -> Option<u64> {
        let mut n = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if i == 9 && bits > 1 {
                return None;
            }
            n |= bits << (7 * i);
            if b & 0x80 == 0 {
                return (i == 0 || b != 0).then_some(n);
            }
        }
        None
    }
}

/// What [`decode`] hands a visitor: an entry, or the sequence number of the first entry
/// that does not decode (decoding stops there).
pub type Decoded<'r, 'a> = std::result::Result<&'r LedgerRow<'a>, u64>;

/// Decodes `block`, handing each entry to `visit` in order, each with its `seq` and
/// `prev_hash` restored; `visit` returning `false` stops. An entry that does not decode —
/// or a block whose body ends early or runs on — ends the block with `Err` of that entry's
/// seq. Returns whether `visit` asked to go on.
pub fn decode(block: &BlockRef<'_>, visit: &mut dyn FnMut(Decoded<'_, '_>) -> bool) -> bool {
    let mut r = Reader {
        body: block.body,
        pos: 0,
    };
    if block.last_seq < block.first_seq || r.byte() != Some(VERSION) {
        return visit(Err(block.first_seq));
    }
    let mut before: [&[u8]; FIELDS] = [b""; FIELDS];
    let mut time = 0i64;
    let mut prev = Hash::Text(block.prev_hash);
    for seq in block.first_seq..=block.last_seq {
        let Some((row_fields, t, hash)) = entry(&mut r, &before, time) else {
            return visit(Err(seq));
        };
        // The last entry ends the body exactly.
        if seq == block.last_seq && r.pos != block.body.len() {
            return visit(Err(seq));
        }
        let row = row_of(seq, t, row_fields, prev.bytes(), hash.bytes());
        if !visit(Ok(&row)) {
            return false;
        }
        before = row_fields;
        time = t;
        prev = hash;
    }
    true
}

/// A block ready to be stored: the columns of its row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBlock {
    /// The sequence number of the first entry.
    pub first_seq: u64,
    /// The sequence number of the last entry.
    pub last_seq: u64,
    /// The previous hash of the first entry.
    pub prev_hash: Vec<u8>,
    /// The encoded entries.
    pub body: Vec<u8>,
}

/// The blocks of a group commit: `drafts` as chained, in blocks of at most
/// [`MAX_ENTRIES`].
/// Hands `visit` every entry of one block (read by itself, not as part of a run); returns
/// whether to go on. A block that does not decode is an error naming its entry.
pub fn visit_block(block: &BlockRef<'_>, visit: &mut LedgerVisitor<'_>) -> Result<bool> {
    let mut bad = None;
    let go_on = decode(block, &mut |r| match r {
        Ok(r) => visit(r),
        Err(seq) => {
            bad = Some(seq);
            false
        }
    });
    match bad {
        Some(seq) => Err(Error::Storage(format!(
            "ledger entry {seq} does not decode; run `custos audit verify`"
        ))),
        None => Ok(go_on),
    }
}

/// The subjects each of `blocks` (made by [`chained`] from `drafts`) holds entries about:
/// `(subject, the block's first seq)`, each pair once, for the index from a subject to its
/// blocks (`ledger_subjects`).
pub fn subjects_of<'d>(
    drafts: &'d [Draft],
    chained: &Chained,
    blocks: &[NewBlock],
) -> Vec<(&'d str, u64)> {
    let first = chained.first_seq();
    let mut out: Vec<(&'d str, u64)> = Vec::new();
    for b in blocks {
        let lo = usize::try_from(b.first_seq.saturating_sub(first)).unwrap_or(usize::MAX);
        let hi = usize::try_from(b.last_seq.saturating_sub(first)).unwrap_or(usize::MAX);
        let mut seen: Vec<&str> = Vec::new();
        for d in drafts.get(lo..=hi).unwrap_or_default() {
            if !d.subject.is_empty() && !seen.contains(&d.subject.as_str()) {
                seen.push(&d.subject);
                out.push((&d.subject, b.first_seq));
            }
        }
    }
    out
}

pub fn chained(drafts: &[Draft], chained: &Chained) -> Vec<NewBlock> {
    let rows: Vec<LedgerRow<'_>> = drafts
        .iter()
        .enumerate()
        .map(|(i, d)| d.row(chained.seq(i), chained.prev_hash(i), chained.hash(i)))
        .collect();
    rows.chunks(MAX_ENTRIES).filter_map(new_block).collect()
}

/// The block holding `rows` (consecutive and linked), if there are any.
fn new_block(rows: &[LedgerRow<'_>]) -> Option<NewBlock> {
    let (first, last) = (rows.first()?, rows.last()?);
    Some(NewBlock {
        first_seq: first.seq,
        last_seq: last.seq,
        prev_hash: first.prev_hash.to_vec(),
        body: encode(rows),
    })
}

/// An entry as a row of an older version stored it, owned: what a conversion into blocks
/// collects.
#[derive(Debug, Clone, Default)]
pub struct OwnedRow {
    /// Position.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The text columns as stored: the eight fields, `prev_hash`, `hash`.
    pub text: [Vec<u8>; 10],
}

impl OwnedRow {
    fn row(&self) -> LedgerRow<'_> {
        let [f0, f1, f2, f3, f4, f5, f6, f7, prev, hash] = &self.text;
        row_of(
            self.seq,
            self.time_ms,
            [f0, f1, f2, f3, f4, f5, f6, f7],
            prev,
            hash,
        )
    }
}

/// Groups rows of an older version, taken in seq order, into blocks: a row joins the block
/// before while it [`links`] to its last row and the block holds fewer than
/// [`MAX_ENTRIES`]; any break (a gap, a link that does not match) starts a new block, so a
/// tampered ledger stays exactly as tampered.
#[derive(Debug, Default)]
pub struct Grouper {
    rows: Vec<OwnedRow>,
}

impl Grouper {
    /// Takes the next row; returns the block it closed, if any.
    pub fn push(&mut self, row: OwnedRow) -> Option<NewBlock> {
        let full = self.rows.len() >= MAX_ENTRIES
            || self
                .rows
                .last()
                .is_some_and(|p| !links(&p.row(), &row.row()));
        let closed = if full { self.finish() } else { None };
        self.rows.push(row);
        closed
    }

    /// The last block, once every row is in.
    pub fn finish(&mut self) -> Option<NewBlock> {
        let rows: Vec<LedgerRow<'_>> = self.rows.iter().map(OwnedRow::row).collect();
        let block = new_block(&rows);
        drop(rows);
        self.rows.clear();
        block
    }
}

/// Whether `next` may follow `prev` in one block: the seq after it, linked to its hash.
pub fn links(prev: &LedgerRow<'_>, next: &LedgerRow<'_>) -> bool {
    prev.seq.checked_add(1) == Some(next.seq) && prev.hash == next.prev_hash
}

/// What [`Store::scan_ledger`](crate::Store::scan_ledger) makes of the blocks it reads for
/// a range of seqs: hands `visit` their entries within the range, in order, and checks that
/// the blocks, taken in order of `first_seq`, hold one run of entries — the first starting
/// at or before the range (and not before seq 1), each next one the seq after the one
/// before ends: no gap, no overlap, nothing claimed past the range while another block
/// starts inside it.
///
/// Where they do not, `visit` gets a row that matches nothing (no hashes) and the scan
/// stops: for an entry that does not decode, at its seq (or, when it lies before the range,
/// at the range's first seq: the scan of the range before reports it first); for blocks
/// that do not follow one another, at the first seq of the range they leave unaccounted
/// for — or, when the range was all handed and a later block still starts inside it, at
/// the range's last seq again (out of order: a verifier takes it for a break at the seq
/// after the range, the first entry such blocks hide).
#[derive(Debug)]
pub struct Scan {
    seqs: Range<u64>,
    /// The seq handed next: the first of the range not accounted for yet.
    next: u64,
    /// The `last_seq` of the block before, once there is one.
    claimed: Option<u64>,
}

impl Scan {
    /// A scan of the entries `seqs`.
    pub fn new(seqs: Range<u64>) -> Self {
        Self {
            next: seqs.start,
            seqs,
            claimed: None,
        }
    }

    /// Takes the next block read (blocks come in order of `first_seq`, from the one holding
    /// the range's first seq); returns whether the scan goes on to the next block.
    pub fn block(&mut self, block: &BlockRef<'_>, visit: &mut LedgerVisitor<'_>) -> bool {
        let follows = match self.claimed {
            None => block.first_seq >= 1 && block.first_seq <= self.seqs.start,
            Some(last) => last.checked_add(1) == Some(block.first_seq),
        };
        if !follows {
            self.malformed(visit);
            return false;
        }
        self.claimed = Some(block.last_seq);
        let (seqs, next) = (&self.seqs, &mut self.next);
        let mut go_on = true;
        decode(block, &mut |r| match r {
            Ok(r) if r.seq < seqs.start => true,
            // Past the range: the rest of the block is the next range's; the next block's
            // `first_seq` is still checked.
            Ok(r) if r.seq >= seqs.end => false,
            Ok(r) => {
                *next = r.seq.saturating_add(1);
                go_on = visit(r);
                go_on
            }
            Err(seq) => {
                if seq < seqs.end {
                    visit(&LedgerRow {
                        seq: seq.max(seqs.start),
                        ..LedgerRow::default()
                    });
                    go_on = false;
                }
                false
            }
        });
        go_on
    }

    /// Hands `visit` the row that matches nothing, for blocks that do not follow one another.
    fn malformed(&self, visit: &mut LedgerVisitor<'_>) {
        let last = self.seqs.end.saturating_sub(1).max(self.seqs.start);
        visit(&LedgerRow {
            seq: self.next.min(last),
            ..LedgerRow::default()
        });
    }
}

/// Adds to `page` the entries of `block` from `from` on, until `page` holds `limit`;
/// returns whether to go on to the next block. A block that does not decode is an error
/// naming its entry.
pub fn page(
    block: &BlockRef<'_>,
    from: u64,
    limit: usize,
    page: &mut Vec<LedgerEntry>,
) -> Result<bool> {
    let mut bad = None;
    let more = decode(block, &mut |r| match r {
        Ok(r) if r.seq < from => true,
        Ok(r) => {
            page.push(r.to_entry());
            page.len() < limit
        }
        Err(seq) => {
            bad = Some(seq);
            false
        }
    });
    match bad {
        Some(seq) => Err(Error::Storage(format!(
            "ledger entry {seq} cannot be read: its block does not decode \
             (run `custos audit verify`)"
        ))),
        // `decode` says stop once the page is full.
        None => Ok(more),
    }
}

/// The last entry of `block`: its seq and stored hash — `(last_seq, "")` when the block
/// does not decode to its end (it was tampered with: the chain goes on from an unknown
/// hash, and `audit verify` names the entry).
pub fn last(block: &BlockRef<'_>) -> (u64, String) {
    let mut head = (block.last_seq, String::new());
    decode(block, &mut |r| {
        head = match r {
            Ok(r) if r.seq == block.last_seq => (r.seq, String::from_utf8_lossy(r.hash).into()),
            Ok(_) => return true,
            Err(_) => (block.last_seq, String::new()),
        };
        true
    });
    head
}

type Entry<'a> = ([&'a [u8]; FIELDS], i64, Hash<'a>);

fn entry<'a>(r: &mut Reader<'a>, before: &[&'a [u8]; FIELDS], time: i64) -> Option<Entry<'a>> {
    let t = time.wrapping_add(unzigzag(r.varint()?));
    let same = r.byte()?;
    let mut out = *before;
    for (i, f) in out.iter_mut().enumerate() {
        if same & (1 << i) == 0 {
            let len = r.varint()?;
            let v = r.take(len)?;
            // Canonical: a field equal to the one before is marked, never repeated.
            if v == *f {
                return None;
            }
            *f = v;
        }
    }
    let hash = match r.byte()? {
        0 => {
            let b: &[u8; 32] = r.take(32)?.try_into().ok()?;
            Hash::Hex(super::hex64(b))
        }
        1 => {
            let len = r.varint()?;
            let text = r.take(len)?;
            // Canonical: a hash that could be stored as bytes is.
            if binary_hash(text).is_some() {
                return None;
            }
            Hash::Text(text)
        }
        _ => return None,
    };
    Some((out, t, hash))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Draft, GENESIS, entry_hash};

    /// Rows chained the way the writer chains them.
    fn chain(drafts: &[Draft], first_seq: u64) -> Vec<(Draft, u64, String, String)> {
        let mut prev = GENESIS.to_string();
        drafts
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let seq = first_seq + i as u64;
                let hash = entry_hash(seq, d, &prev);
                let out = (d.clone(), seq, prev.clone(), hash.clone());
                prev = hash;
                out
            })
            .collect()
    }

    fn row<'a>(d: &'a Draft, seq: u64, prev: &'a str, hash: &'a str) -> LedgerRow<'a> {
        LedgerRow {
            seq,
            time_ms: d.time_ms,
            actor: d.actor.as_bytes(),
            action: d.action.as_bytes(),
            subject: d.subject.as_bytes(),
            purpose: d.purpose.as_bytes(),
            recipient: d.recipient.as_bytes(),
            categories: d.categories.as_bytes(),
            effect: d.effect.as_bytes(),
            reasons: d.reasons.as_bytes(),
            prev_hash: prev.as_bytes(),
            hash: hash.as_bytes(),
        }
    }

    fn drafts() -> Vec<Draft> {
        let mut v = Vec::new();
        for i in 0..5i64 {
            v.push(Draft {
                time_ms: 1_764_000_000_000 + i * 3 - if i == 2 { 50 } else { 0 },
                actor: if i == 3 { "operator" } else { "meeting-center" }.into(),
                action: "read".into(),
                subject: format!("0190-{i}"),
                purpose: "service.meetings".into(),
                recipient: String::new(),
                categories: "contact.email,contact.name".into(),
                effect: if i == 1 { "deny" } else { "permit" }.into(),
                reasons: if i == 1 { "purpose_not_allowed" } else { "" }.into(),
            });
        }
        v.push(Draft::default());
        v.push(Draft {
            time_ms: i64::MIN,
            actor: "x".repeat(300),
            ..Draft::default()
        });
        v.push(Draft {
            time_ms: i64::MAX,
            ..Draft::default()
        });
        v
    }

    #[test]
    fn a_block_decodes_to_the_rows_it_was_made_of() {
        let chained = chain(&drafts(), 41);
        let rows: Vec<LedgerRow<'_>> = chained
            .iter()
            .map(|(d, s, p, h)| row(d, *s, p, h))
            .collect();
        let body = encode(&rows);
        let block = BlockRef {
            first_seq: 41,
            last_seq: 41 + rows.len() as u64 - 1,
            prev_hash: GENESIS.as_bytes(),
            body: &body,
        };
        let mut got = Vec::new();
        assert!(decode(&block, &mut |r| {
            got.push(r.unwrap().to_entry());
            true
        }));
        let want: Vec<_> = rows.iter().map(LedgerRow::to_entry).collect();
        assert_eq!(got, want);
        // Far smaller than the rows' text: hashes as bytes, repeated fields marked.
        let text: usize = rows.iter().map(|r| fields(r).concat().len() + 128).sum();
        assert!(body.len() * 2 < text, "{} of {text}", body.len());
    }

    #[test]
    fn hashes_that_are_not_lowercase_hex_are_kept_as_stored() {
        let d = Draft::default();
        let upper = "AB".repeat(32);
        let rows = [
            row(&d, 1, GENESIS, "not a hash"),
            row(&d, 2, "not a hash", &upper),
        ];
        let body = encode(&rows);
        let block = BlockRef {
            first_seq: 1,
            last_seq: 2,
            prev_hash: GENESIS.as_bytes(),
            body: &body,
        };
        let mut got = Vec::new();
        decode(&block, &mut |r| {
            got.push(r.unwrap().to_entry());
            true
        });
        let want: Vec<_> = rows.iter().map(LedgerRow::to_entry).collect();
        assert_eq!(got, want);
    }

    /// Every single-byte change of a body makes the entry holding that byte fail: it no
    /// longer decodes, or decodes to something whose stored hash is not its hash.
    #[test]
    fn changing_any_byte_fails_the_entry_that_holds_it() {
        let chained = chain(&drafts(), 1);
        let rows: Vec<LedgerRow<'_>> = chained
            .iter()
            .map(|(d, s, p, h)| row(d, *s, p, h))
            .collect();
        // Where each entry starts in the body.
        let starts: Vec<usize> = (0..rows.len()).map(|i| encode(&rows[..i]).len()).collect();
        let body = encode(&rows);
        let last = rows.len() as u64;
        for at in 0..body.len() {
            let holder = starts.iter().rposition(|&s| s <= at.max(1)).unwrap() as u64 + 1;
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bad = body.clone();
                bad[at] ^= flip;
                let block = BlockRef {
                    first_seq: 1,
                    last_seq: last,
                    prev_hash: GENESIS.as_bytes(),
                    body: &bad,
                };
                let mut first_bad = None;
                decode(&block, &mut |r| {
                    let seq = match r {
                        Err(seq) => seq,
                        Ok(r) => {
                            let d = Draft {
                                time_ms: r.time_ms,
                                actor: String::from_utf8_lossy(r.actor).into(),
                                action: String::from_utf8_lossy(r.action).into(),
                                subject: String::from_utf8_lossy(r.subject).into(),
                                purpose: String::from_utf8_lossy(r.purpose).into(),
                                recipient: String::from_utf8_lossy(r.recipient).into(),
                                categories: String::from_utf8_lossy(r.categories).into(),
                                effect: String::from_utf8_lossy(r.effect).into(),
                                reasons: String::from_utf8_lossy(r.reasons).into(),
                            };
                            let prev = String::from_utf8_lossy(r.prev_hash);
                            if entry_hash(r.seq, &d, &prev).as_bytes() == r.hash {
                                return true;
                            }
                            r.seq
                        }
                    };
                    first_bad = Some(seq);
                    false
                });
                assert_eq!(
                    first_bad,
                    Some(holder),
                    "byte {at} ^ {flip:#x} (entries start at {starts:?})"
                );
            }
        }
    }

    /// What a [`Scan`] of `seqs` over `blocks` (`(first_seq, last_seq, entries)`, in order)
    /// hands on: each row's seq, and whether it has a hash (a row without matches nothing).
    fn scanned(blocks: &[(u64, u64, &[u8])], seqs: Range<u64>) -> Vec<(u64, bool)> {
        let mut out = Vec::new();
        let mut scan = Scan::new(seqs);
        for &(first_seq, last_seq, body) in blocks {
            let block = BlockRef {
                first_seq,
                last_seq,
                prev_hash: GENESIS.as_bytes(),
                body,
            };
            let go_on = scan.block(&block, &mut |r| {
                out.push((r.seq, !r.hash.is_empty()));
                true
            });
            if !go_on {
                break;
            }
        }
        out
    }

    #[test]
    fn a_scan_flags_blocks_that_do_not_follow_one_another() {
        let chained = chain(&drafts()[..3], 1);
        let rows: Vec<LedgerRow<'_>> = chained
            .iter()
            .map(|(d, s, p, h)| row(d, *s, p, h))
            .collect();
        // Three entries per block (their seqs are the block's, not the rows').
        let body = encode(&rows);
        let b = body.as_slice();
        let good = |from: u64, to: u64| (from..to).map(|s| (s, true)).collect::<Vec<_>>();
        let bad = |seq: u64| (seq, false);
        // One run of blocks: every entry of the range, from the block holding its first.
        let run = [(1, 3, b), (4, 6, b), (7, 9, b)];
        assert_eq!(scanned(&run, 1..10), good(1, 10));
        assert_eq!(scanned(&run[1..], 5..8), good(5, 8));
        // A gap, and an overlap: the first seq not accounted for.
        assert_eq!(
            scanned(&[(1, 3, b), (5, 7, b)], 1..10),
            [good(1, 4), vec![bad(4)]].concat()
        );
        assert_eq!(
            scanned(&[(1, 3, b), (3, 5, b)], 1..10),
            [good(1, 4), vec![bad(4)]].concat()
        );
        // A block that starts inside a range already handed: its last seq again.
        assert_eq!(
            scanned(&[(1, 3, b), (3, 5, b)], 1..4),
            [good(1, 4), vec![bad(3)]].concat()
        );
        // A first block after the range's first seq, or before seq 1.
        assert_eq!(scanned(&[(4, 6, b)], 1..10), [bad(1)]);
        assert_eq!(scanned(&[(0, 2, b), (3, 5, b)], 1..10), [bad(1)]);
        // A block that does not decode (its body runs on past its last entry): at that entry.
        assert_eq!(
            scanned(&[(1, 3, b), (4, 5, b)], 1..10),
            [good(1, 5), vec![bad(5)]].concat()
        );
    }

    #[test]
    fn a_body_that_ends_early_or_runs_on_fails_at_its_last_entry() {
        let chained = chain(&drafts()[..3], 1);
        let rows: Vec<LedgerRow<'_>> = chained
            .iter()
            .map(|(d, s, p, h)| row(d, *s, p, h))
            .collect();
        let body = encode(&rows);
        let first_err = |body: &[u8], first_seq: u64, last_seq: u64| {
            let mut err = None;
            decode(
                &BlockRef {
                    first_seq,
                    last_seq,
                    prev_hash: GENESIS.as_bytes(),
                    body,
                },
                &mut |r| {
                    err = r.err();
                    err.is_none()
                },
            );
            err
        };
        assert_eq!(first_err(&body, 1, 3), None);
        assert_eq!(first_err(&body[..body.len() - 1], 1, 3), Some(3));
        assert_eq!(first_err(&[body.as_slice(), &[0]].concat(), 1, 3), Some(3));
        assert_eq!(first_err(&body, 1, 2), Some(2));
        assert_eq!(first_err(&body, 1, 4), Some(4));
        assert_eq!(first_err(&body, 3, 2), Some(3));
        assert_eq!(first_err(&[], 7, 9), Some(7));
    }
}
