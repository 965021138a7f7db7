//! C2SP `tlog-checkpoint` bodies in C2SP `signed-note`s, signed with Ed25519.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::tree::Hash;

/// The signature algorithm byte of an Ed25519 key in `signed-note`.
const ED25519: u8 = 0x01;
/// What starts a signature line: an em dash and a space.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a checkpoint or note was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoteError {
    /// The checkpoint body is not `origin`, size and base64 root hash, one per line.
    MalformedCheckpoint(&'static str),
    /// The note is not text, a blank line and signature lines.
    MalformedNote(&'static str),
    /// The verifier key is not `name+keyid+base64(0x01 || key)`.
    MalformedKey,
    /// No signature line is by the key given.
    NoSignature,
    /// The signature line by the key given does not verify.
    BadSignature,
}

impl std::fmt::Display for NoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::MalformedCheckpoint(why) => write!(f, "not a checkpoint: {why}"),
            Self::MalformedNote(why) => write!(f, "not a signed note: {why}"),
            Self::MalformedKey => f.write_str(
                "not a verifier key: give `NAME+KEYID+KEY` (KEYID 8 hex digits, KEY base64)",
            ),
            Self::NoSignature => f.write_str("the note carries no signature by this key"),
            Self::BadSignature => f.write_str("the note's signature by this key does not verify"),
        }
    }
}

impl std::error::Error for NoteError {}

/// A C2SP checkpoint: the log's origin, its tree size and root hash, and any extension
/// lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's name: it tells one log's checkpoints from another's.
    pub origin: String,
    /// Leaves in the tree.
    pub size: u64,
    /// The tree's root hash.
    pub root: Hash,
    /// Lines after the root hash, without their newline.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Reads a checkpoint body (the text of a note, signatures excluded): the origin line,
    /// the size in decimal without leading zeros, the root hash in standard base64, then
    /// extension lines, each line ending in a newline.
    pub fn parse(body: &str) -> Result<Self, NoteError> {
        let bad = NoteError::MalformedCheckpoint;
        let text = body
            .strip_suffix('\n')
            .ok_or(bad("the last line does not end in a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(bad("the origin line is empty"));
        }
        let size = lines.next().ok_or(bad("the tree size is missing"))?;
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(
                "the tree size is not a decimal number without leading zeros",
            ));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad("the tree size is too large"))?;
        let root = lines.next().ok_or(bad("the root hash is missing"))?;
        let root: Hash = B64
            .decode(root)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or(bad("the root hash is not 32 bytes in base64"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an extension line is empty"));
        }
        Ok(Self {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }

    /// The body as C2SP writes it, every line ending in a newline.
    pub fn body(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }
}

/// A hash in standard base64, as checkpoints and proofs write it.
pub fn hash_to_base64(h: &Hash) -> String {
    B64.encode(h)
}

/// A hash from standard base64; `None` unless it is 32 bytes.
pub fn hash_from_base64(s: &str) -> Option<Hash> {
    B64.decode(s).ok()?.try_into().ok()
}

/// Whether `name` may name a key: not empty, no `+`, no whitespace or other control
/// characters.
fn name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name
            .chars()
            .any(|c| c == '+' || c.is_whitespace() || c.is_control())
}

/// The key id of an Ed25519 key under `name`: the first four bytes of
/// `SHA-256(name || "\n" || 0x01 || key)`.
pub fn key_id(name: &str, key: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update(b"\n");
    h.update([ED25519]);
    h.update(key);
    let d: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 4];
    id.copy_from_slice(d.get(..4).unwrap_or(&[0; 4]));
    id
}

/// The verifier key string of `signed-note`: `name+KEYID+base64(0x01 || key)`, KEYID as 8
/// lowercase hex digits.
pub fn verifier_key(name: &str, key: &VerifyingKey) -> String {
    let id = key_id(name, key.as_bytes());
    let mut k = vec![ED25519];
    k.extend_from_slice(key.as_bytes());
    format!(
        "{name}+{:02x}{:02x}{:02x}{:02x}+{}",
        id[0],
        id[1],
        id[2],
        id[3],
        B64.encode(k)
    )
}

/// Whether `text` may be a note's text: not empty, ends in a newline, no control
/// character other than newline, and no blank line.
fn text_ok(text: &str) -> Result<(), NoteError> {
    let bad = NoteError::MalformedNote;
    if !text.ends_with('\n') {
        return Err(bad("the text does not end in a newline"));
    }
    if text.chars().any(|c| c != '\n' && c.is_control()) {
        return Err(bad("the text holds a control character"));
    }
    if text.starts_with('\n') || text.contains("\n\n") {
        return Err(bad("the text holds a blank line"));
    }
    Ok(())
}

/// Signs `text` as a note under the key `name`: the text, a blank line, and one signature
/// line `— name base64(keyid || signature)`.
pub fn sign_note(text: &str, name: &str, key: &SigningKey) -> Result<String, NoteError> {
    text_ok(text)?;
    if !name_ok(name) {
        return Err(NoteError::MalformedKey);
    }
    let id = key_id(name, key.verifying_key().as_bytes());
    let sig = key.sign(text.as_bytes());
    let mut blob = id.to_vec();
    blob.extend_from_slice(&sig.to_bytes());
    Ok(format!("{text}\n{SIG_PREFIX}{name} {}\n", B64.encode(blob)))
}

/// A parsed verifier key: its name, id and Ed25519 key.
fn parse_vkey(vkey: &str) -> Result<(&str, [u8; 4], VerifyingKey), NoteError> {
    let mut parts = vkey.trim().splitn(3, '+');
    let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(NoteError::MalformedKey);
    };
    if !name_ok(name) || id.len() != 8 {
        return Err(NoteError::MalformedKey);
    }
    let id = u32::from_str_radix(id, 16)
        .map_err(|_| NoteError::MalformedKey)?
        .to_be_bytes();
    let key = B64.decode(key).map_err(|_| NoteError::MalformedKey)?;
    let Some((&ED25519, key)) = key.split_first() else {
        return Err(NoteError::MalformedKey);
    };
    let key: [u8; 32] = key.try_into().map_err(|_| NoteError::MalformedKey)?;
    let key = VerifyingKey::from_bytes(&key).map_err(|_| NoteError::MalformedKey)?;
    if key_id(name, key.as_bytes()) != id {
        return Err(NoteError::MalformedKey);
    }
    Ok((name, id, key))
}

/// Checks a signed note against a verifier key ([`verifier_key`]) and returns its text:
/// one of its signature lines must be by that key (same name and key id) and verify.
/// Signatures by other keys (a witness's cosignature) are passed over.
pub fn verify_note<'n>(note: &'n str, vkey: &str) -> Result<&'n str, NoteError> {
    let bad = NoteError::MalformedNote;
    let (name, id, key) = parse_vkey(vkey)?;
    let split = note
        .rfind("\n\n")
        .ok_or(bad("no blank line before the signatures"))?;
    let (text, sigs) = (
        note.get(..=split).unwrap_or_default(),
        note.get(split + 2..).unwrap_or_default(),
    );
    text_ok(text)?;
    let sigs = sigs
        .strip_suffix('\n')
        .ok_or(bad("the last signature line does not end in a newline"))?;
    let mut found = false;
    for line in sigs.split('\n') {
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or(bad("a signature line does not start with an em dash"))?;
        let (who, blob) = rest
            .split_once(' ')
            .ok_or(bad("a signature line has no signature"))?;
        let blob = B64
            .decode(blob)
            .map_err(|_| bad("a signature is not base64"))?;
        if who != name || blob.get(..4) != Some(&id[..]) {
            continue;
        }
        found = true;
        let sig: [u8; 64] = blob
            .get(4..)
            .and_then(|s| s.try_into().ok())
            .ok_or(NoteError::BadSignature)?;
        key.verify(text.as_bytes(), &Signature::from_bytes(&sig))
            .map_err(|_| NoteError::BadSignature)?;
    }
    if found {
        Ok(text)
    } else {
        Err(NoteError::NoSignature)
    }
}

/// The last note of a file of notes, each followed by a blank line (as `custos serve
/// --witness` writes them), or a file of one note; `None` when it holds none.
pub fn last_note(file: &str) -> Option<&str> {
    let end = file.trim_end_matches('\n').len();
    let body = file.get(..end)?;
    // A note is text (no blank line), a blank line, signature lines: the last two blocks
    // between blank lines.
    let sigs_at = body.rfind("\n\n")?;
    let text_at = body.get(..sigs_at)?.rfind("\n\n").map_or(0, |i| i + 2);
    file.get(text_at..end + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    #[test]
    fn a_checkpoint_reads_back_as_written() {
        let c = Checkpoint {
            origin: "example.com/log".into(),
            size: 1234,
            root: [9; 32],
            extensions: vec!["ext".into()],
        };
        assert_eq!(Checkpoint::parse(&c.body()).unwrap(), c);
        for bad in [
            "",
            "origin\n",
            "origin\n12\n",
            "origin\n012\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n-1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
            "origin\n12\nCQkJ\n",
            "origin\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
            "\n12\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_signed_note_verifies_with_its_key_only() {
        let k = key();
        let vkey = verifier_key("example.com/log", &k.verifying_key());
        let body = "example.com/log\n1\nCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=\n";
        let note = sign_note(body, "example.com/log", &k).unwrap();
        assert_eq!(verify_note(&note, &vkey).unwrap(), body);
        // Another key, another name, a changed text or signature: refused.
        let other = SigningKey::from_bytes(&[8u8; 32]);
        let vother = verifier_key("example.com/log", &other.verifying_key());
        assert_eq!(verify_note(&note, &vother), Err(NoteError::NoSignature));
        let renamed = verifier_key("other", &k.verifying_key());
        assert_eq!(verify_note(&note, &renamed), Err(NoteError::NoSignature));
        let changed = note.replace("\n1\n", "\n2\n");
        assert_eq!(verify_note(&changed, &vkey), Err(NoteError::BadSignature));
        // A cosignature by another key is passed over.
        let cosig = sign_note(body, "witness", &other).unwrap();
        let both = format!("{note}{}", &cosig[body.len() + 1..]);
        assert_eq!(verify_note(&both, &vkey).unwrap(), body);
        assert!(parse_vkey("nope").is_err());
        assert!(sign_note("a\n\nb\n", "n", &k).is_err());
    }

    #[test]
    fn the_last_note_of_a_file() {
        let k = key();
        let a = sign_note("o\n1\nAAAA\n", "o", &k).unwrap();
        let b = sign_note("o\n2\nBBBB\n", "o", &k).unwrap();
        assert_eq!(last_note(&a), Some(a.as_str()));
        let file = format!("{a}\n{b}\n");
        assert_eq!(last_note(&file), Some(b.as_str()));
        assert_eq!(last_note(""), None);
    }
}
