//! Consent receipts (issue 14, item 2): the Kantara Initiative Consent Receipt Specification
//! v1.1 fields, signed as a compact JWS (RFC 7515) with the vault's Ed25519 receipt key
//! (`alg` `EdDSA`, RFC 8037), and checked offline against a JWKS (RFC 7517).
//!
//! The key is a vault secret (`receipt-signing`), wrapped by the master key like the
//! ledger's signing key, and published at `GET /.well-known/jwks.json`. Its `kid` is the key's
//! RFC 7638 thumbprint, so a verifier can recompute it from `x`.
//!
//! **Invariant:** a receipt carries no personal information beyond the subject's id
//! (`piiPrincipalId`): purposes, categories and recipients are the policy's names.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use std::sync::Arc;

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde_json::{Map, Value};

use crate::crypto::{Secret, sha256};
use crate::error::{Error, Result};

/// The `version` a receipt carries.
pub const RECEIPT_VERSION: &str = "KI-CR-v1.1.0";
/// The JWS `typ` of a receipt.
pub const RECEIPT_TYP: &str = "JWT";

/// The vault's receipt-signing key.
#[derive(Clone)]
pub(crate) struct ReceiptSigner {
    /// aws-lc's Ed25519: the same signature as any Ed25519 (it is deterministic), in about
    /// two thirds of ed25519-dalek's time (docs/benchmarks.md). aws-lc wipes the key when
    /// the last clone drops.
    key: Arc<Ed25519KeyPair>,
    jwk: ReceiptKey,
    /// The JWS header, base64url: the same for every receipt.
    header: String,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({})", self.jwk.kid)
    }
}

/// A receipt-signing public key, as a JWK (RFC 8037: `kty` `OKP`, `crv` `Ed25519`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiptKey {
    /// The key id: its RFC 7638 thumbprint (base64url of the SHA-256 of the canonical JWK).
    pub kid: String,
    /// The public key, base64url without padding.
    pub x: String,
}

impl ReceiptKey {
    fn of(public: &VerifyingKey) -> Self {
        let x = B64.encode(public.as_bytes());
        // RFC 7638: the required members, in lexicographic order, no whitespace.
        let canonical = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
        Self {
            kid: B64.encode(sha256(canonical.as_bytes())),
            x,
        }
    }

    /// The JWK as JSON.
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "use": "sig",
            "alg": "EdDSA",
        })
    }
}

/// A JWKS (`{"keys": [...]}`) of the given keys.
pub fn jwks(keys: &[ReceiptKey]) -> Value {
    serde_json::json!({ "keys": keys.iter().map(ReceiptKey::to_json).collect::<Vec<_>>() })
}

impl ReceiptSigner {
    pub(crate) fn new(seed: &Secret) -> Result<Self> {
        let unusable = || Error::Crypto("the receipt-signing key is not an Ed25519 seed");
        let key = Ed25519KeyPair::from_seed_unchecked(seed.as_slice()).map_err(|_| unusable())?;
        let public = <[u8; 32]>::try_from(key.public_key().as_ref()).map_err(|_| unusable())?;
        let public = VerifyingKey::from_bytes(&public).map_err(|_| unusable())?;
        let jwk = ReceiptKey::of(&public);
        let header = serde_json::json!({"alg": "EdDSA", "kid": jwk.kid, "typ": RECEIPT_TYP});
        let header = B64.encode(header.to_string());
        Ok(Self {
            key: Arc::new(key),
            jwk,
            header,
        })
    }

    pub(crate) fn key(&self) -> &ReceiptKey {
        &self.jwk
    }

    /// The compact JWS of `claims` (JSON).
    pub(crate) fn sign(&self, claims: &[u8]) -> String {
        let mut out = String::with_capacity(self.header.len() + 96 + claims.len() * 4 / 3);
        out.push_str(&self.header);
        out.push('.');
        B64.encode_string(claims, &mut out);
        let sig = self.key.sign(out.as_bytes());
        out.push('.');
        out.push_str(&B64.encode(sig.as_ref()));
        out
    }
}

/// Why a receipt does not verify. Each message says what is wrong, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiptError {
    /// Not three base64url parts of JSON.
    Malformed(String),
    /// The header names a key the JWKS does not hold, or another algorithm.
    UnknownKey(String),
    /// The signature does not match: a byte of the receipt changed, or another key signed it.
    BadSignature,
    /// Signed, but not a consent receipt: a required field is missing or of the wrong type.
    Structure(String),
    /// The JWKS is not one.
    Jwks(String),
}

impl std::fmt::Display for ReceiptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Malformed(m) => write!(f, "not a compact JWS receipt: {m}"),
            Self::UnknownKey(m) => write!(f, "no key to check it with: {m}"),
            Self::BadSignature => f.write_str(
                "the signature does not match: the receipt was changed or another key signed it",
            ),
            Self::Structure(m) => write!(f, "signed, but not a consent receipt: {m}"),
            Self::Jwks(m) => write!(f, "not a JWKS: {m}"),
        }
    }
}

impl std::error::Error for ReceiptError {}

/// A receipt that verified: the key that signed it and its claims.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedReceipt {
    /// The `kid` of the key that signed it.
    pub kid: String,
    /// The claims: the Kantara fields, and `custos` (the change itself).
    pub claims: Map<String, Value>,
}

/// Parses a JWKS and returns its Ed25519 keys by `kid`.
pub fn parse_jwks(jwks: &str) -> Result<Vec<(String, VerifyingKey)>, ReceiptError> {
    let v: Value = serde_json::from_str(jwks).map_err(|_| ReceiptError::Jwks("not JSON".into()))?;
    let keys = v
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| ReceiptError::Jwks("no `keys` array".into()))?;
    let mut out = Vec::new();
    for k in keys {
        let (Some("OKP"), Some("Ed25519"), Some(x), Some(kid)) = (
            k.get("kty").and_then(Value::as_str),
            k.get("crv").and_then(Value::as_str),
            k.get("x").and_then(Value::as_str),
            k.get("kid").and_then(Value::as_str),
        ) else {
            continue;
        };
        let bytes: [u8; 32] = B64
            .decode(x)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ReceiptError::Jwks(format!("key `{kid}`: `x` is not 32 bytes")))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|_| ReceiptError::Jwks(format!("key `{kid}`: not an Ed25519 key")))?;
        out.push((kid.to_string(), key));
    }
    Ok(out)
}

fn part(s: Option<&str>, what: &str) -> Result<Vec<u8>, ReceiptError> {
    B64.decode(s.ok_or_else(|| ReceiptError::Malformed(format!("no {what}")))?)
        .map_err(|_| ReceiptError::Malformed(format!("the {what} is not base64url")))
}

/// Verifies a receipt (a compact JWS) against the keys of a JWKS: the signature with the key
/// of its `kid` (`alg` `EdDSA` only), then its structure (every required field of the
/// Kantara v1.1 receipt, of its type).
pub fn verify_receipt(jws: &str, jwks: &str) -> Result<VerifiedReceipt, ReceiptError> {
    let keys = parse_jwks(jwks)?;
    let jws = jws.trim();
    let mut parts = jws.split('.');
    let (h, p, s) = (parts.next(), parts.next(), parts.next());
    if parts.next().is_some() {
        return Err(ReceiptError::Malformed("more than three parts".into()));
    }
    let header: Value = serde_json::from_slice(&part(h, "header")?)
        .map_err(|_| ReceiptError::Malformed("the header is not JSON".into()))?;
    let payload = part(p, "payload")?;
    let sig: [u8; 64] = part(s, "signature")?
        .try_into()
        .map_err(|_| ReceiptError::Malformed("the signature is not 64 bytes".into()))?;
    if header.get("alg").and_then(Value::as_str) != Some("EdDSA") {
        return Err(ReceiptError::UnknownKey("`alg` is not `EdDSA`".into()));
    }
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(|| ReceiptError::UnknownKey("the header names no `kid`".into()))?;
    let key = keys
        .iter()
        .find(|(k, _)| k == kid)
        .map(|(_, key)| key)
        .ok_or_else(|| ReceiptError::UnknownKey(format!("the JWKS has no key `{kid}`")))?;
    let signed_len = jws.rfind('.').unwrap_or(0);
    let signed = jws.get(..signed_len).unwrap_or_default();
    key.verify(signed.as_bytes(), &Signature::from_bytes(&sig))
        .map_err(|_| ReceiptError::BadSignature)?;
    let claims = match serde_json::from_slice(&payload) {
        Ok(Value::Object(m)) => m,
        _ => {
            return Err(ReceiptError::Structure(
                "the payload is not a JSON object".into(),
            ));
        }
    };
    check_structure(&claims)?;
    Ok(VerifiedReceipt {
        kid: kid.to_string(),
        claims,
    })
}

/// The Kantara v1.1 required fields, each of its JSON type.
fn check_structure(c: &Map<String, Value>) -> Result<(), ReceiptError> {
    let missing =
        |f: &str| ReceiptError::Structure(format!("`{f}` is missing or of the wrong type"));
    for f in [
        "version",
        "jurisdiction",
        "collectionMethod",
        "consentReceiptID",
        "language",
        "piiPrincipalId",
        "policyUrl",
    ] {
        c.get(f).and_then(Value::as_str).ok_or_else(|| missing(f))?;
    }
    if c.get("version").and_then(Value::as_str) != Some(RECEIPT_VERSION) {
        return Err(ReceiptError::Structure(format!(
            "`version` is not `{RECEIPT_VERSION}`"
        )));
    }
    c.get("consentTimestamp")
        .and_then(Value::as_i64)
        .ok_or_else(|| missing("consentTimestamp"))?;
    c.get("sensitive")
        .and_then(Value::as_bool)
        .ok_or_else(|| missing("sensitive"))?;
    c.get("spiCat")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("spiCat"))?;
    let controllers = c
        .get("piiControllers")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("piiControllers"))?;
    for (i, pc) in controllers.iter().enumerate() {
        for f in ["piiController", "contact", "email"] {
            pc.get(f)
                .and_then(Value::as_str)
                .ok_or_else(|| missing(&format!("piiControllers[{i}].{f}")))?;
        }
    }
    let services = c
        .get("services")
        .and_then(Value::as_array)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| missing("services"))?;
    for (i, s) in services.iter().enumerate() {
        s.get("service")
            .and_then(Value::as_str)
            .ok_or_else(|| missing(&format!("services[{i}].service")))?;
        let purposes = s
            .get("purposes")
            .and_then(Value::as_array)
            .filter(|a| !a.is_empty())
            .ok_or_else(|| missing(&format!("services[{i}].purposes")))?;
        for (j, p) in purposes.iter().enumerate() {
            let at = |f: &str| format!("services[{i}].purposes[{j}].{f}");
            for f in ["purpose", "consentType", "termination"] {
                p.get(f)
                    .and_then(Value::as_str)
                    .ok_or_else(|| missing(&at(f)))?;
            }
            for f in ["purposeCategory", "piiCategory"] {
                p.get(f)
                    .and_then(Value::as_array)
                    .ok_or_else(|| missing(&at(f)))?;
            }
            for f in ["primaryPurpose", "thirdPartyDisclosure"] {
                p.get(f)
                    .and_then(Value::as_bool)
                    .ok_or_else(|| missing(&at(f)))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> Value {
        serde_json::json!({
            "version": RECEIPT_VERSION, "jurisdiction": "US", "consentTimestamp": 1,
            "collectionMethod": "double_opt_in", "consentReceiptID": "r", "language": "en",
            "piiPrincipalId": "s", "policyUrl": "urn:x",
            "piiControllers": [{"piiController": "c", "contact": "d", "email": "e"}],
            "services": [{"service": "w", "purposes": [{"purpose": "newsletters",
                "purposeCategory": [], "consentType": "EXPLICIT", "piiCategory": [],
                "primaryPurpose": false, "termination": "t", "thirdPartyDisclosure": false}]}],
            "sensitive": false, "spiCat": [],
        })
    }

    #[test]
    fn the_signature_is_the_ed25519_signature_of_the_seed() {
        // aws-lc signs; any Ed25519 gives the same bytes (RFC 8032 is deterministic), so
        // the signature must be ed25519-dalek's over the signing input, and the JWK its key.
        use ed25519_dalek::Signer as _;
        let seed = Secret::new([7; 32]);
        let signer = ReceiptSigner::new(&seed).unwrap();
        let jws = signer.sign(claims().to_string().as_bytes());
        let (input, sig) = jws.rsplit_once('.').unwrap();
        let dalek = ed25519_dalek::SigningKey::from_bytes(&seed);
        assert_eq!(sig, B64.encode(dalek.sign(input.as_bytes()).to_bytes()));
        assert_eq!(signer.key().x, B64.encode(dalek.verifying_key().as_bytes()));
    }

    #[test]
    fn a_signed_receipt_verifies_and_any_changed_byte_fails() {
        let signer = ReceiptSigner::new(&Secret::new([7; 32])).unwrap();
        let jwks = jwks(&[signer.key().clone()]).to_string();
        let jws = signer.sign(claims().to_string().as_bytes());
        let ok = verify_receipt(&jws, &jwks).unwrap();
        assert_eq!(ok.kid, signer.key().kid);
        assert_eq!(ok.claims["collectionMethod"], "double_opt_in");
        for i in 0..jws.len() {
            let mut b = jws.clone().into_bytes();
            let c = b[i];
            b[i] = if c == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            if changed == jws {
                continue;
            }
            assert!(verify_receipt(&changed, &jwks).is_err(), "byte {i}");
        }
        // Another vault's key does not verify it.
        let other = ReceiptSigner::new(&Secret::new([8; 32])).unwrap();
        let mut theirs = jwks_of(&other);
        theirs = theirs.replace(&other.key().kid, &signer.key().kid);
        assert_eq!(
            verify_receipt(&jws, &theirs),
            Err(ReceiptError::BadSignature)
        );
    }

    fn jwks_of(s: &ReceiptSigner) -> String {
        jwks(&[s.key().clone()]).to_string()
    }

    #[test]
    fn a_receipt_missing_a_field_is_refused() {
        let signer = ReceiptSigner::new(&Secret::new([7; 32])).unwrap();
        let mut c = claims();
        c.as_object_mut().unwrap().remove("piiPrincipalId");
        let e =
            verify_receipt(&signer.sign(c.to_string().as_bytes()), &jwks_of(&signer)).unwrap_err();
        assert!(matches!(e, ReceiptError::Structure(_)), "{e:?}");
    }

    #[test]
    fn the_kid_is_the_rfc_7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
        let bytes: [u8; 32] = B64.decode(x).unwrap().try_into().unwrap();
        let k = ReceiptKey::of(&VerifyingKey::from_bytes(&bytes).unwrap());
        assert_eq!(k.kid, "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k");
    }
}
