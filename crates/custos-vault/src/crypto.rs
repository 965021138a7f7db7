//! Envelope encryption, blind indexes and the ledger signing key.
//!
//! - The **master key** (KEK, 32 bytes) comes from `CUSTOS_MASTER_KEY` (hex or base64) or from
//!   `<data>/master.key`, created 0600 on first embedded start. It never touches the database.
//! - Each subject has a random **data key** (DEK), stored only wrapped by the KEK
//!   (AES-256-GCM, AAD = the subject id) in the key table, apart from the data.
//! - Each value is AES-256-GCM under its subject's DEK with a random 96-bit nonce; the AAD
//!   binds it to its row (subject + category, or subject + collection + record id), so a
//!   ciphertext moved to another row fails to decrypt.
//! - The **blind index key** and the **ledger signing seed** are random secrets stored wrapped
//!   by the KEK, so rotating the KEK re-wraps them and changes no index or signature.
//!
//! Every secret lives in a [`Zeroizing`] buffer and is wiped when dropped.

use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Environment variable holding the master key (64 hex digits or base64 of 32 bytes).
pub const MASTER_KEY_ENV: &str = "CUSTOS_MASTER_KEY";
/// Name of the master key file in the data directory.
pub const MASTER_KEY_FILE: &str = "master.key";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const DECRYPT_FAILED: &str = "decryption failed";

/// 32 bytes of secret key material, wiped on drop.
pub type Secret = Zeroizing<[u8; 32]>;

/// Fills a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    getrandom::fill(&mut b).map_err(|_| Error::Crypto("no randomness available"))?;
    Ok(b)
}

/// A fresh random secret.
pub fn random_secret() -> Result<Secret> {
    let mut s = Zeroizing::new([0u8; 32]);
    getrandom::fill(s.as_mut_slice()).map_err(|_| Error::Crypto("no randomness available"))?;
    Ok(s)
}

/// Randomness from the operating system, drawn a block at a time: one system call serves
/// the keys, nonces and ids of many subjects (a bulk collection draws ~100 bytes per
/// subject). Every byte is the operating system's, handed out once and wiped from the
/// block as it is handed out, so nonces stay as unique as with one call each, and no key
/// material lingers in the block. Not shared between threads: each worker has its own.
pub struct Entropy {
    block: Zeroizing<Vec<u8>>,
    pos: usize,
}

impl std::fmt::Debug for Entropy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Entropy(..)")
    }
}

impl Default for Entropy {
    fn default() -> Self {
        Self::new()
    }
}

impl Entropy {
    /// Bytes drawn per system call.
    pub const BLOCK: usize = 16 * 1024;

    /// An empty source; the first request draws a block.
    pub fn new() -> Self {
        Self {
            block: Zeroizing::new(Vec::new()),
            pos: 0,
        }
    }

    /// Fills `out` with fresh random bytes.
    pub fn fill(&mut self, out: &mut [u8]) -> Result<()> {
        use zeroize::Zeroize as _;
        let n = out.len();
        if n > Self::BLOCK / 4 {
            return getrandom::fill(out).map_err(|_| Error::Crypto("no randomness available"));
        }
        if self.block.len().saturating_sub(self.pos) < n {
            // What is left of the old block is overwritten, never handed out.
            self.block.resize(Self::BLOCK, 0);
            getrandom::fill(self.block.as_mut_slice())
                .map_err(|_| Error::Crypto("no randomness available"))?;
            self.pos = 0;
        }
        let src = self
            .block
            .get_mut(self.pos..self.pos + n)
            .ok_or(Error::Crypto("no randomness available"))?;
        out.copy_from_slice(src);
        src.zeroize();
        self.pos += n;
        Ok(())
    }

    /// `N` fresh random bytes.
    pub fn bytes<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut b = [0u8; N];
        self.fill(&mut b)?;
        Ok(b)
    }

    /// A fresh random secret.
    pub fn secret(&mut self) -> Result<Secret> {
        let mut s = Zeroizing::new([0u8; 32]);
        self.fill(s.as_mut_slice())?;
        Ok(s)
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    // A table, not `write!("{:02x}")`: the ledger writer hexes two hashes per entry, and
    // formatting machinery per byte was a seventh of its time.
    let digit = |n: u8| char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 });
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(digit(b >> 4));
        s.push(digit(b & 0x0f));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

/// SHA-256.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The master key (KEK). It wraps data keys and vault secrets, and is never stored in the
/// database.
#[derive(Clone)]
pub struct MasterKey {
    key: Secret,
    /// The key's AES-GCM schedule, made once (zeroized on drop, as the key is).
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    /// A master key from its 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self::from_secret(Zeroizing::new(bytes))
    }

    fn from_secret(key: Secret) -> Self {
        Self {
            cipher: cipher(&key),
            key,
        }
    }

    /// A new random master key.
    pub fn generate() -> Result<Self> {
        Ok(Self::from_secret(random_secret()?))
    }

    /// Parses 64 hex digits or base64 of 32 bytes (surrounding whitespace ignored).
    pub fn parse(text: &str) -> Result<Self> {
        let t = text.trim();
        let bytes = Zeroizing::new(match unhex(t) {
            Some(b) if t.len() == 64 => b,
            _ => base64::engine::general_purpose::STANDARD
                .decode(t)
                .map_err(|_| {
                    Error::MasterKey("expected 64 hex digits or base64 of 32 bytes".into())
                })?,
        });
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::MasterKey("expected 32 bytes".into()))?;
        Ok(Self::from_bytes(arr))
    }

    /// The key as 64 hex digits, for writing a key file.
    pub fn to_hex(&self) -> Zeroizing<String> {
        Zeroizing::new(hex(self.key.as_slice()))
    }

    /// Reads a key file.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| {
            Error::MasterKey(format!("cannot read `{}`: {}", path.display(), e.kind()))
        })?);
        Self::parse(&text)
    }

    /// The key from `CUSTOS_MASTER_KEY` if set, else from `<data>/master.key`.
    ///
    /// When neither exists and `create` is true (embedded SQLite start), a new key is written
    /// to `<data>/master.key` with mode 0600 and a warning to back it up is printed on stderr:
    /// without that file the vault's data cannot be decrypted.
    pub fn load(data_dir: Option<&Path>, create: bool) -> Result<Self> {
        if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
            let text = Zeroizing::new(text);
            return Self::parse(&text);
        }
        let Some(dir) = data_dir else {
            return Err(Error::MasterKey(format!(
                "set `{MASTER_KEY_ENV}` to 64 hex digits or base64 of 32 bytes"
            )));
        };
        let path = dir.join(MASTER_KEY_FILE);
        if path.exists() {
            return Self::from_file(&path);
        }
        if !create {
            return Err(Error::MasterKey(format!(
                "no `{}` and `{MASTER_KEY_ENV}` is not set",
                path.display()
            )));
        }
        let key = Self::generate()?;
        key.write_new_file(&path)?;
        eprintln!(
            "WARNING: created a new master key in {}\n\
             WARNING: back it up somewhere safe and apart from the data: without it nothing in \
             this vault can be decrypted",
            path.display()
        );
        Ok(key)
    }

    /// Writes the key to a new file, readable by its owner only.
    pub fn write_new_file(&self, path: &Path) -> Result<()> {
        use std::io::Write as _;
        let fail = |e: std::io::Error| {
            Error::MasterKey(format!("cannot write `{}`: {}", path.display(), e.kind()))
        };
        if let Some(parent) = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty() && !p.exists())
        {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::DirBuilderExt as _;
                builder.mode(0o700);
            }
            builder.create(parent).map_err(fail)?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts.open(path).map_err(fail)?;
        let mut line = self.to_hex();
        line.push('\n');
        f.write_all(line.as_bytes()).map_err(fail)?;
        f.sync_all().map_err(fail)?;
        Ok(())
    }

    /// Wraps a secret (a DEK or a vault secret) for the row named by `label`.
    pub fn wrap(&self, label: &str, secret: &Secret) -> Result<Vec<u8>> {
        self.wrap_with(&mut Entropy::new(), label, secret)
    }

    /// [`MasterKey::wrap`], with the nonce drawn from `rng`.
    pub fn wrap_with(&self, rng: &mut Entropy, label: &str, secret: &Secret) -> Result<Vec<u8>> {
        seal(
            &self.cipher,
            &aad(&["wrap", label]),
            secret.as_slice(),
            rng.bytes()?,
        )
    }

    /// Unwraps what [`MasterKey::wrap`] made for the same `label`.
    pub(crate) fn unwrap(&self, label: &str, wrapped: &[u8]) -> Result<Secret> {
        let plain = Zeroizing::new(open(&self.cipher, &aad(&["wrap", label]), wrapped)?);
        let arr: [u8; 32] = plain
            .as_slice()
            .try_into()
            .map_err(|_| Error::Crypto(DECRYPT_FAILED))?;
        Ok(Zeroizing::new(arr))
    }
}

/// The label a subject's DEK is wrapped under.
pub fn dek_label(subject: &str) -> String {
    format!("dek:{subject}")
}

/// A subject's data key.
pub struct DataKey {
    key: Secret,
    /// The key's AES-GCM schedule, made once for all the values and records it opens.
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

impl DataKey {
    /// A new random data key.
    pub fn generate(rng: &mut Entropy) -> Result<Self> {
        Ok(Self::from_secret(rng.secret()?))
    }

    /// Wraps it under the master key, bound to its subject.
    pub fn wrap(&self, rng: &mut Entropy, kek: &MasterKey, subject: &str) -> Result<Vec<u8>> {
        kek.wrap_with(rng, &dek_label(subject), &self.key)
    }

    /// Unwraps a subject's data key.
    pub(crate) fn unwrap(kek: &MasterKey, subject: &str, wrapped: &[u8]) -> Result<Self> {
        Ok(Self::from_secret(kek.unwrap(&dek_label(subject), wrapped)?))
    }

    fn from_secret(key: Secret) -> Self {
        Self {
            cipher: cipher(&key),
            key,
        }
    }

    /// Encrypts a field value, bound to (subject, category), under a nonce from `rng`.
    pub fn seal_value(
        &self,
        rng: &mut Entropy,
        subject: &str,
        category: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        seal(
            &self.cipher,
            &value_aad(subject, category),
            plain,
            rng.bytes()?,
        )
    }

    /// Decrypts a field value sealed for exactly this (subject, category).
    pub(crate) fn open_value(
        &self,
        subject: &str,
        category: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        open(&self.cipher, &value_aad(subject, category), sealed)
    }

    /// Encrypts a record, bound to (subject, collection, record id), under a nonce from
    /// `rng`.
    pub fn seal_record(
        &self,
        rng: &mut Entropy,
        subject: &str,
        collection: &str,
        record: &str,
        plain: &[u8],
    ) -> Result<Vec<u8>> {
        seal(
            &self.cipher,
            &record_aad(subject, collection, record),
            plain,
            rng.bytes()?,
        )
    }

    /// Decrypts a record sealed for exactly this (subject, collection, record id).
    pub(crate) fn open_record(
        &self,
        subject: &str,
        collection: &str,
        record: &str,
        sealed: &[u8],
    ) -> Result<Vec<u8>> {
        open(
            &self.cipher,
            &record_aad(subject, collection, record),
            sealed,
        )
    }
}

fn value_aad(subject: &str, category: &str) -> Vec<u8> {
    aad(&["value", subject, category])
}

fn record_aad(subject: &str, collection: &str, record: &str) -> Vec<u8> {
    aad(&["record", subject, collection, record])
}

/// Length-prefixed, so no two different tuples share an encoding.
fn aad(parts: &[&str]) -> Vec<u8> {
    const PREFIX: &[u8] = b"custos/v1";
    let len = PREFIX.len() + parts.iter().map(|p| 8 + p.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(PREFIX);
    for p in parts {
        out.extend_from_slice(&(p.len() as u64).to_be_bytes());
        out.extend_from_slice(p.as_bytes());
    }
    out
}

/// The AES-256-GCM key schedule of a key: the round keys and the GHASH key, zeroized when
/// dropped (the `zeroize` features of `aes`, `ghash` and `polyval`).
fn cipher(key: &Secret) -> Aes256Gcm {
    Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(key.as_slice()))
}

/// `nonce || ciphertext+tag`. INVARIANT: the nonce is fresh randomness, never reused
/// under a key (96 random bits per encryption).
fn seal(
    cipher: &Aes256Gcm,
    aad: &[u8],
    plain: &[u8],
    nonce_bytes: [u8; NONCE_LEN],
) -> Result<Vec<u8>> {
    // One buffer, encrypted in place: nonce, then the plaintext turned ciphertext, then the tag.
    let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(plain);
    let tag = cipher
        .encrypt_in_place_detached(
            Nonce::from_slice(&nonce_bytes),
            aad,
            out.get_mut(NONCE_LEN..).unwrap_or_default(),
        )
        .map_err(|_| Error::Crypto("encryption failed"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn open(cipher: &Aes256Gcm, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    let (nonce, ct) = sealed
        .split_at_checked(NONCE_LEN)
        .ok_or(Error::Crypto(DECRYPT_FAILED))?;
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| Error::Crypto(DECRYPT_FAILED))
}

/// The outbox's key (`vault/mail.rs`): a vault secret, wrapped by the master key like the
/// others, that seals each queued message (recipient, subject line, body) bound to its
/// message id. A dedicated key, not a subject's: one message may concern several subjects
/// (a sign-in code to an address they share), or none yet.
pub struct OutboxKey {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for OutboxKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutboxKey(..)")
    }
}

impl OutboxKey {
    /// The key of a secret.
    pub fn new(key: &Secret) -> Self {
        Self {
            cipher: cipher(key),
        }
    }

    /// Encrypts a message, bound to its id.
    pub fn seal(&self, rng: &mut Entropy, id: &str, plain: &[u8]) -> Result<Vec<u8>> {
        seal(&self.cipher, &aad(&["mail", id]), plain, rng.bytes()?)
    }

    /// Decrypts a message sealed for exactly this id.
    pub(crate) fn open(&self, id: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        open(&self.cipher, &aad(&["mail", id]), sealed)
    }
}

/// Keyed HMAC-SHA256 index over identifier values: finds a subject by email without storing
/// the email in plaintext or as a guessable unkeyed hash.
pub struct BlindIndex {
    key: Secret,
}

impl std::fmt::Debug for BlindIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlindIndex(..)")
    }
}

impl BlindIndex {
    /// An index under a secret key.
    pub fn new(key: Secret) -> Self {
        Self { key }
    }

    /// The index term of a value of a category: HMAC over the category and the value
    /// trimmed and lowercased, as hex.
    pub fn term(&self, category: &str, value: &str) -> Result<String> {
        let normalized = Zeroizing::new(value.trim().to_lowercase());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.as_slice())
            .map_err(|_| Error::Crypto("bad key length"))?;
        mac.update(&aad(&["index", category]));
        mac.update(normalized.as_bytes());
        Ok(hex(&mac.finalize().into_bytes()))
    }
}

/// Path of the master key file in a data directory.
pub fn master_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join(MASTER_KEY_FILE)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn hex_is_lowercase_two_digits_per_byte_and_round_trips() {
        assert_eq!(hex(&[0x00, 0x0f, 0x10, 0xa5, 0xff]), "000f10a5ff");
        let all: Vec<u8> = (0..=255).collect();
        let text = hex(&all);
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(text, formatted);
        assert_eq!(unhex(&text).unwrap(), all);
    }

    #[test]
    fn value_bound_to_its_row() {
        let rng = &mut Entropy::new();
        let kek = MasterKey::generate().unwrap();
        let dek = DataKey::generate(rng).unwrap();
        let wrapped = dek.wrap(rng, &kek, "s1").unwrap();
        assert!(DataKey::unwrap(&kek, "s2", &wrapped).is_err());
        let dek = DataKey::unwrap(&kek, "s1", &wrapped).unwrap();
        let ct = dek
            .seal_value(rng, "s1", "contact.email", b"a@b.c")
            .unwrap();
        assert_eq!(
            dek.open_value("s1", "contact.email", &ct).unwrap(),
            b"a@b.c"
        );
        assert!(dek.open_value("s2", "contact.email", &ct).is_err());
        assert!(dek.open_value("s1", "contact.name", &ct).is_err());
        let rc = dek.seal_record(rng, "s1", "chat", "r1", b"hi").unwrap();
        assert!(dek.open_record("s1", "chat", "r2", &rc).is_err());
        assert_eq!(dek.open_record("s1", "chat", "r1", &rc).unwrap(), b"hi");
        let other = MasterKey::generate().unwrap();
        assert!(DataKey::unwrap(&other, "s1", &wrapped).is_err());
    }

    #[test]
    fn entropy_hands_out_each_byte_once() {
        let rng = &mut Entropy::new();
        // Across several blocks, no 16-byte draw repeats and none is all zeros (a wiped or
        // unfilled block would show as zeros).
        let n = 3 * Entropy::BLOCK / 16 + 5;
        let mut seen = std::collections::HashSet::new();
        for _ in 0..n {
            let b: [u8; 16] = rng.bytes().unwrap();
            assert_ne!(b, [0u8; 16]);
            assert!(seen.insert(b), "a draw repeated");
        }
        // What was handed out is wiped from the block.
        assert!(rng.block.get(..rng.pos).unwrap().iter().all(|&x| x == 0));
        // Large requests bypass the block.
        let mut big = vec![0u8; Entropy::BLOCK];
        rng.fill(&mut big).unwrap();
        assert!(big.iter().any(|&x| x != 0));
        // Nonces of values sealed in a row differ.
        let dek = DataKey::generate(rng).unwrap();
        let a = dek.seal_value(rng, "s", "c", b"v").unwrap();
        let b = dek.seal_value(rng, "s", "c", b"v").unwrap();
        assert_ne!(a.get(..NONCE_LEN), b.get(..NONCE_LEN));
    }

    #[test]
    fn master_key_parses_hex_and_base64() {
        let k = MasterKey::generate().unwrap();
        let h = k.to_hex();
        let b64 = base64::engine::general_purpose::STANDARD.encode(unhex(&h).unwrap());
        assert_eq!(*MasterKey::parse(&h).unwrap().to_hex(), *h);
        assert_eq!(*MasterKey::parse(&b64).unwrap().to_hex(), *h);
        assert!(MasterKey::parse("abc").is_err());
    }

    #[test]
    fn blind_index_normalizes() {
        let idx = BlindIndex::new(random_secret().unwrap());
        let a = idx.term("contact.email", " Ann@Example.COM ").unwrap();
        assert_eq!(a, idx.term("contact.email", "ann@example.com").unwrap());
        assert_ne!(a, idx.term("contact.name", "ann@example.com").unwrap());
    }
}
