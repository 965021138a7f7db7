//! Consent receipts packed for the store (SQLite's `custos.db`, PostgreSQL): a receipt (a
//! compact JWS, about 2 KB) is stored as its signature and its header and claims written as
//! copies from a dictionary — an earlier receipt of the same shape with the person's and the
//! receipt's ids blanked — and the bytes it does not hold, in about 210 bytes
//! (docs/benchmarks.md). The copies are found through an index of the dictionary built once
//! (a general compressor with a preset dictionary, deflate, spent more time setting its
//! tables up for each receipt than the smaller log saved). The write-ahead log a consent
//! change costs is what bounds the consent writer's tail: the receipt was nearly half of it
//! (docs/benchmarks.md).
//!
//! Packing is lossless and checked: a receipt is stored packed only if it is three canonical
//! base64url parts with a 64-byte signature, so unpacking gives back the very bytes that
//! were signed; anything else is stored as it came. A dictionary holds no personal
//! information: the subject's id and the receipt's id are overwritten before it is kept, and
//! what is left is the policy's names and the change's kind, method and time.
//!
//! Each backend keeps the dictionaries in a table `receipt_dicts (id, dict)` of its own,
//! reached through [`DictTable`] and [`DictWriter`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::error::{Error, Result};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// A backend's table of dictionaries, `receipt_dicts (id, dict)`, read: dictionaries are
/// never changed once stored.
pub(super) trait DictTable {
    /// The dictionary stored with `id`, if any.
    fn dict(&mut self, id: u32) -> Result<Option<Vec<u8>>>;
}

/// A backend's `receipt_dicts` in the transaction receipts are packed in.
pub(super) trait DictWriter {
    /// Stores `dict` in the transaction being written; its id (never one of a dictionary
    /// committed before).
    fn insert_dict(&mut self, dict: &[u8]) -> Result<u32>;
}

/// The first byte of a packed receipt: its format.
const FORMAT: u8 = 1;
/// Bytes before the operations: format, dictionary id (u32, little-endian), signature.
const HEAD: usize = 1 + 4 + 64;
/// A dictionary is made afresh from a receipt that packs to more than this share of its
/// header and claims (1 / N): the receipts have changed shape (a new policy or key).
const REFRESH_BELOW: usize = 4;
/// Bytes of a dictionary's index entries ([`Index`]), and the shortest copy.
const GRAM: usize = 6;
/// log2 of the index's slots.
const INDEX_BITS: u32 = 12;
/// Dictionaries a packer keeps at hand, the last used first: receipts of a few shapes
/// (purposes whose texts differ much) taking turns do not each start a dictionary.
const RECENT: usize = 8;
/// The largest header and claims unpacked (a receipt's are about 1.4 KB).
const MAX_UNPACKED: usize = 1 << 20;

/// The consent writer's packer: its compressor and the dictionary it packs with (locked
/// for the whole transaction receipts are packed in: a dictionary stored in a transaction
/// is used by no other before that one ends).
pub(super) struct Packer {
    /// The last [`RECENT`] dictionaries used, the last first.
    recent: Vec<(u32, Arc<Index>)>,
    /// A dictionary stored in the transaction being written: readers learn it only once
    /// that commits ([`Packer::committed`]); a rolled-back id may be given again.
    pending: Option<(u32, Arc<[u8]>)>,
}

/// A dictionary and, for each of its [`GRAM`]-byte sequences (by hash), where it last occurs.
struct Index {
    dict: Arc<[u8]>,
    /// Position + 1 of a sequence with this hash; 0: none.
    slots: Vec<u32>,
}

impl Index {
    fn of(dict: Arc<[u8]>) -> Self {
        let mut slots = vec![0u32; 1 << INDEX_BITS];
        for (p, gram) in dict.windows(GRAM).enumerate() {
            if let (Some(slot), Ok(at)) = (slots.get_mut(slot_of(gram)), u32::try_from(p + 1)) {
                *slot = at;
            }
        }
        Self { dict, slots }
    }

    /// `input` as copies from the dictionary and literal runs: each operation a varint of
    /// `length * 2 + kind`, then for a copy (kind 1) a varint of its offset, for a literal
    /// run (kind 0) its bytes.
    fn encode(&self, input: &[u8], out: &mut Vec<u8>) {
        let (mut i, mut literal) = (0, 0);
        while i + GRAM <= input.len() {
            let found = input
                .get(i..i + GRAM)
                .and_then(|g| self.slots.get(slot_of(g)))
                .and_then(|&at| (at as usize).checked_sub(1))
                .map(|p| {
                    let from = (self.dict.get(p..), input.get(i..));
                    (
                        p,
                        common(from.0.unwrap_or_default(), from.1.unwrap_or_default()),
                    )
                })
                .filter(|&(_, len)| len >= GRAM);
            match found {
                Some((p, len)) => {
                    literals(out, input.get(literal..i).unwrap_or_default());
                    varint(out, (len as u64) << 1 | 1);
                    varint(out, p as u64);
                    i += len;
                    literal = i;
                }
                None => i += 1,
            }
        }
        literals(out, input.get(literal..).unwrap_or_default());
    }
}

fn slot_of(gram: &[u8]) -> usize {
    let v = gram.iter().fold(0u64, |v, &b| v << 8 | u64::from(b));
    (v.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - INDEX_BITS)) as usize
}

/// How many bytes `a` and `b` begin with in common.
fn common(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn literals(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() {
        varint(out, (bytes.len() as u64) << 1);
        out.extend_from_slice(bytes);
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The varint at the start of `bytes`, and the bytes after it.
fn read_varint(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let mut v = 0u64;
    for (i, &b) in bytes.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, bytes.get(i + 1..)?));
        }
    }
    None
}

impl std::fmt::Debug for Packer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Packer")
            .field(
                "dictionaries",
                &self.recent.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Packer {
    pub(super) fn new() -> Self {
        Self {
            recent: Vec::new(),
            pending: None,
        }
    }

    /// After the transaction commits: its new dictionary, if any, can be read.
    fn committed(&mut self, dicts: &Dictionaries) {
        if let Some((id, dict)) = self.pending.take() {
            dicts.put(id, dict);
        }
    }

    /// After a failed transaction, which rolled back any dictionary stored in it: the next
    /// receipt starts one.
    fn forget(&mut self) {
        if let Some((id, _)) = self.pending.take() {
            self.recent.retain(|(i, _)| *i != id);
        }
    }

    /// `receipt` (of `subject`, with id `receipt_id`) as stored: packed, or as it came when
    /// it is not a canonical compact JWS. A new dictionary is stored in `table`'s
    /// transaction; call [`Packer::committed`] or [`Packer::forget`] once it ends.
    pub(super) fn pack(
        &mut self,
        table: &mut impl DictWriter,
        receipt: &str,
        subject: &str,
        receipt_id: &str,
    ) -> Result<Stored> {
        let Some((signed, signature)) = parts(receipt) else {
            return Ok(Stored::Text);
        };
        for at in 0..self.recent.len() {
            let Some((id, index)) = self.recent.get(at) else {
                break;
            };
            let packed = packed_with(&signed, index, *id, &signature);
            if (packed.len() - HEAD) * REFRESH_BELOW <= signed.len() {
                let used = self.recent.remove(at);
                self.recent.insert(0, used);
                return Ok(Stored::Packed(packed));
            }
        }
        let dict: Arc<[u8]> = blank(&signed, &[subject, receipt_id]).into();
        let id = table.insert_dict(&dict)?;
        let index = Index::of(dict.clone());
        let packed = packed_with(&signed, &index, id, &signature);
        self.pending = Some((id, dict));
        self.recent.insert(0, (id, Arc::new(index)));
        self.recent.truncate(RECENT);
        Ok(Stored::Packed(packed))
    }
}

/// Runs `write`, a transaction packing receipts with the packer behind `packer` (held
/// throughout: no other transaction uses a dictionary this one stores before it ends), then
/// lets readers find its new dictionary, or forgets it, rolled back with a failed
/// transaction.
pub(super) fn packing<T>(
    packer: &Mutex<Packer>,
    dicts: &Dictionaries,
    write: impl FnOnce(&mut Packer) -> Result<T>,
) -> Result<T> {
    let mut p = packer.lock().unwrap_or_else(PoisonError::into_inner);
    let written = write(&mut p);
    match &written {
        Ok(_) => p.committed(dicts),
        Err(_) => p.forget(),
    }
    written
}

fn packed_with(signed: &[u8], index: &Index, id: u32, signature: &[u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEAD + 256);
    out.push(FORMAT);
    out.extend_from_slice(&id.to_le_bytes());
    out.extend_from_slice(signature);
    index.encode(signed, &mut out);
    out
}

/// How a receipt is stored.
pub(super) enum Stored {
    /// Packed: these bytes.
    Packed(Vec<u8>),
    /// As it came (not a canonical compact JWS).
    Text,
}

/// The dictionaries read so far, by id: shared by every connection of the store.
#[derive(Debug, Default)]
pub(super) struct Dictionaries(RwLock<HashMap<u32, Arc<[u8]>>>);

impl Dictionaries {
    fn put(&self, id: u32, dict: Arc<[u8]>) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, dict);
    }

    fn get(&self, table: &mut impl DictTable, id: u32) -> Result<Arc<[u8]>> {
        if let Some(d) = self
            .0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&id)
        {
            return Ok(d.clone());
        }
        let dict = table
            .dict(id)?
            .ok_or_else(|| Error::Storage("a consent receipt's dictionary is missing".into()))?;
        let dict: Arc<[u8]> = dict.into();
        self.put(id, dict.clone());
        Ok(dict)
    }

    /// A stored receipt as it was signed: `packed` unpacked with its dictionary.
    pub(super) fn unpack(&self, table: &mut impl DictTable, packed: &[u8]) -> Result<String> {
        let corrupt = || Error::Storage("a stored consent receipt is corrupt".into());
        if packed.len() < HEAD || packed.first() != Some(&FORMAT) {
            return Err(corrupt());
        }
        let (head, mut ops) = packed.split_at(HEAD);
        let id = head
            .get(1..5)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_le_bytes)
            .ok_or_else(corrupt)?;
        let signature = head.get(5..).ok_or_else(corrupt)?;
        let dict = self.get(table, id)?;
        let mut signed = Vec::with_capacity(dict.len() + 256);
        while !ops.is_empty() {
            let (op, rest) = read_varint(ops).ok_or_else(corrupt)?;
            let len = usize::try_from(op >> 1).map_err(|_| corrupt())?;
            if len == 0 || signed.len() + len > MAX_UNPACKED {
                return Err(corrupt());
            }
            ops = if op & 1 == 1 {
                let (at, rest) = read_varint(rest).ok_or_else(corrupt)?;
                let at = usize::try_from(at).map_err(|_| corrupt())?;
                let copy = at
                    .checked_add(len)
                    .and_then(|end| dict.get(at..end))
                    .ok_or_else(corrupt)?;
                signed.extend_from_slice(copy);
                rest
            } else {
                let bytes = rest.get(..len).ok_or_else(corrupt)?;
                signed.extend_from_slice(bytes);
                rest.get(len..).ok_or_else(corrupt)?
            };
        }
        let signed = String::from_utf8(signed).map_err(|_| corrupt())?;
        let (header, claims) = signed.split_once('.').ok_or_else(corrupt)?;
        let mut jws = String::with_capacity(header.len() + claims.len() * 4 / 3 + 96);
        jws.push_str(header);
        jws.push('.');
        B64.encode_string(claims, &mut jws);
        jws.push('.');
        B64.encode_string(signature, &mut jws);
        Ok(jws)
    }
}

/// A compact JWS as the bytes to pack (its header, base64url as it is, a dot, and its
/// claims decoded) and its signature — when unpacking will give back exactly `receipt`:
/// three parts, the claims and signature canonical base64url (the decoder refuses padding
/// and stray bits) and the claims UTF-8.
fn parts(receipt: &str) -> Option<(Vec<u8>, [u8; 64])> {
    let mut it = receipt.split('.');
    let (header, claims, signature) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || header.is_empty() || !header.bytes().all(is_b64url) {
        return None;
    }
    let claims = B64.decode(claims).ok()?;
    std::str::from_utf8(&claims).ok()?;
    let signature: [u8; 64] = B64.decode(signature).ok()?.try_into().ok()?;
    let mut signed = Vec::with_capacity(header.len() + 1 + claims.len());
    signed.extend_from_slice(header.as_bytes());
    signed.push(b'.');
    signed.extend_from_slice(&claims);
    Some((signed, signature))
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// `signed` with every occurrence of each of `ids` overwritten by zeros of its length.
fn blank(signed: &[u8], ids: &[&str]) -> Vec<u8> {
    let mut out = signed.to_vec();
    for id in ids.iter().map(|i| i.as_bytes()).filter(|i| !i.is_empty()) {
        let mut at = 0;
        while let Some(i) = out
            .get(at..)
            .and_then(|rest| rest.windows(id.len()).position(|w| w == id))
        {
            let start = at + i;
            if let Some(found) = out.get_mut(start..start + id.len()) {
                found.fill(b'0');
            }
            at = start + id.len();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteDicts;
    use rusqlite::Connection;

    fn conn() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE receipt_dicts (id INTEGER PRIMARY KEY, dict BLOB NOT NULL)")
            .unwrap();
        c
    }

    /// A receipt shaped like the vault's: `purpose` sets its shape.
    fn receipt(subject: &str, id: &str, purpose: &str, sig: u8) -> String {
        let claims = format!(
            r#"{{"collectionMethod":"settings_page","consentReceiptID":"{id}","consentTimestamp":1796525762,"jti":"{id}","jurisdiction":"US","language":"en","piiControllers":[{{"address":"WebEx, Attn: Legal Department, 3979 Freedom Circle, Santa Clara, CA 95054, USA","piiController":"WebEx Communications, Inc."}}],"piiPrincipalId":"{subject}","policyUrl":"urn:custos:policy:webex-2010:2010-04-24","services":[{{"purposes":[{{"consentType":"EXPLICIT","purpose":"{purpose}","termination":"until the person withdraws consent or objects"}}],"service":"meeting-center"}}],"version":"KI-CR-v1.1.0"}}"#
        );
        format!(
            "eyJhbGciOiJFZERTQSJ9.{}.{}",
            B64.encode(claims),
            B64.encode([sig; 64])
        )
    }

    fn id(n: usize) -> String {
        format!("01a24947-a7d8-7030-83c0-{n:012x}")
    }

    fn pack(p: &mut Packer, c: &Connection, r: &str, subject: &str, rid: &str) -> Vec<u8> {
        match p.pack(&mut SqliteDicts(c), r, subject, rid).unwrap() {
            Stored::Packed(b) => b,
            Stored::Text => panic!("not packed"),
        }
    }

    #[test]
    fn receipts_pack_small_and_unpack_to_the_signed_bytes() {
        let c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        let mut stored = Vec::new();
        for n in 0..50 {
            let (subject, rid) = (id(1000 + n), id(n));
            let r = receipt(
                &subject,
                &rid,
                "Membership programs and newsletters",
                n as u8,
            );
            let packed = pack(&mut p, &c, &r, &subject, &rid);
            p.committed(&dicts);
            if n > 0 {
                assert!(
                    packed.len() * 5 < r.len(),
                    "{} of {}",
                    packed.len(),
                    r.len()
                );
            }
            stored.push((r, packed));
        }
        // Read by a store that has not seen the dictionary (it loads it from its table).
        let fresh = Dictionaries::default();
        for (r, packed) in &stored {
            assert_eq!(&fresh.unpack(&mut SqliteDicts(&c), packed).unwrap(), r);
        }
        let n: i64 = c
            .query_row("SELECT count(*) FROM receipt_dicts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
    }

    /// Claims edited at random against the dictionary — bytes changed, cut and added, the
    /// dictionary's own sequences repeated — unpack to themselves.
    #[test]
    fn any_claims_unpack_to_themselves() {
        let c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        let base = receipt(&id(1), &id(2), "Surveys", 3);
        let (_, claims, _) = {
            let mut it = base.split('.');
            (it.next(), it.next().unwrap(), it.next())
        };
        let claims = B64.decode(claims).unwrap();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n.max(1) as u64) as usize
        };
        for round in 0..300 {
            let mut edited = claims.clone();
            for _ in 0..next(12) {
                let at = next(edited.len());
                match next(4) {
                    0 => edited[at] = b'a' + next(26) as u8,
                    1 => {
                        edited.remove(at);
                    }
                    2 => edited.insert(at, b'0' + next(10) as u8),
                    _ => {
                        let from = next(claims.len() - 8);
                        let piece = claims[from..from + 1 + next(8)].to_vec();
                        edited.splice(at..at, piece);
                    }
                }
            }
            let r = format!(
                "eyJhbGciOiJFZERTQSJ9.{}.{}",
                B64.encode(&edited),
                B64.encode([round as u8; 64])
            );
            if std::str::from_utf8(&edited).is_err() {
                continue;
            }
            let packed = pack(&mut p, &c, &r, &id(1), &id(2));
            p.committed(&dicts);
            assert_eq!(
                dicts.unpack(&mut SqliteDicts(&c), &packed).unwrap(),
                r,
                "round {round}"
            );
        }
    }

    #[test]
    fn a_dictionary_holds_neither_the_person_nor_the_receipt() {
        let c = conn();
        let mut p = Packer::new();
        let (subject, rid) = (id(7), id(8));
        let r = receipt(&subject, &rid, "Surveys", 1);
        let packed = pack(&mut p, &c, &r, &subject, &rid);
        let dict: Vec<u8> = c
            .query_row("SELECT dict FROM receipt_dicts", [], |r| r.get(0))
            .unwrap();
        let dict = String::from_utf8(dict).unwrap();
        assert!(!dict.contains(&subject) && !dict.contains(&rid), "{dict}");
        assert!(dict.contains("Surveys"));
        assert_eq!(
            Dictionaries::default()
                .unpack(&mut SqliteDicts(&c), &packed)
                .unwrap(),
            r
        );
    }

    #[test]
    fn receipts_of_a_new_shape_start_a_dictionary() {
        let c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        // Long and not repetitive: a receipt the first dictionary does not cover.
        let long: String = (1..200u64)
            .map(|i| format!("{:x}", i * 0x9e37_79b9 % 0xffff_ffff))
            .collect();
        let mut stored = Vec::new();
        for (n, purpose) in ["Surveys", "Surveys", long.as_str(), long.as_str()]
            .iter()
            .enumerate()
        {
            let (subject, rid) = (id(100 + n), id(n));
            let r = receipt(&subject, &rid, purpose, 9);
            stored.push((pack(&mut p, &c, &r, &subject, &rid), r));
            p.committed(&dicts);
        }
        let n: i64 = c
            .query_row("SELECT count(*) FROM receipt_dicts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        for (packed, r) in &stored {
            assert_eq!(&dicts.unpack(&mut SqliteDicts(&c), packed).unwrap(), r);
        }
    }

    #[test]
    fn shapes_taking_turns_keep_their_dictionaries() {
        let c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        // Three purposes whose texts share little: each its own shape.
        let purposes: Vec<String> = (0..3u64)
            .map(|k| {
                (1..120u64)
                    .map(|i| format!("{:x}", (i + 1000 * k) * 0x9e37_79b9 % 0xffff_ffff))
                    .collect()
            })
            .collect();
        for n in 0..30 {
            let (subject, rid) = (id(500 + n), id(n));
            let r = receipt(&subject, &rid, &purposes[n % 3], 4);
            let packed = pack(&mut p, &c, &r, &subject, &rid);
            p.committed(&dicts);
            assert_eq!(dicts.unpack(&mut SqliteDicts(&c), &packed).unwrap(), r);
        }
        let n: i64 = c
            .query_row("SELECT count(*) FROM receipt_dicts", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_dictionary_rolled_back_is_never_read() {
        let mut c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        // Read once so the reader's cache would hold a stale id if it were told too early.
        let tx = c.transaction().unwrap();
        let first = receipt(&id(1), &id(2), "Surveys", 1);
        pack(&mut p, &tx, &first, &id(1), &id(2));
        drop(tx);
        p.forget();
        let tx = c.transaction().unwrap();
        let other = receipt(
            &id(3),
            &id(4),
            "Offers from partners, by mail or telephone",
            2,
        );
        let packed = pack(&mut p, &tx, &other, &id(3), &id(4));
        tx.commit().unwrap();
        p.committed(&dicts);
        assert_eq!(dicts.unpack(&mut SqliteDicts(&c), &packed).unwrap(), other);
    }

    #[test]
    fn what_would_not_unpack_to_the_same_bytes_is_kept_as_text() {
        let c = conn();
        let mut p = Packer::new();
        let r = receipt(&id(1), &id(2), "Surveys", 1);
        let (head, sig) = r.rsplit_once('.').unwrap();
        for odd in [
            format!("{r}="),
            format!("{r}.x"),
            format!("{head}.{}", B64.encode([1u8; 63])),
            format!("{head}.{}", &sig[1..]),
            format!("a=b.{}", r.split_once('.').unwrap().1),
            "not a receipt".to_string(),
        ] {
            assert!(
                matches!(
                    p.pack(&mut SqliteDicts(&c), &odd, &id(1), &id(2)).unwrap(),
                    Stored::Text
                ),
                "{odd}"
            );
        }
    }

    #[test]
    fn a_corrupt_packed_receipt_is_an_error() {
        let c = conn();
        let (mut p, dicts) = (Packer::new(), Dictionaries::default());
        let r = receipt(&id(1), &id(2), "Surveys", 1);
        let packed = pack(&mut p, &c, &r, &id(1), &id(2));
        p.committed(&dicts);
        for bad in [
            packed[..HEAD].to_vec(),
            packed[..packed.len() - 3].to_vec(),
            [&[2u8][..], &packed[1..]].concat(),
            [&packed[..1], &[9, 0, 0, 0][..], &packed[5..]].concat(),
            vec![],
        ] {
            assert!(dicts.unpack(&mut SqliteDicts(&c), &bad).is_err());
        }
    }
}
