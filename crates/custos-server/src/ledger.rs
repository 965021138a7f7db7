//! The ledger: `GET /v1/ledger/verify` recomputes its hash chain and checks its checkpoints;
//! the transparency log (issue 15) — `GET /v1/ledger/checkpoint` and `GET /v1/ledger/key`
//! (keyless: a tree head and a public key hold no personal information) and the RFC 9162
//! proofs `GET /v1/ledger/proof/inclusion` and `GET /v1/ledger/proof/consistency`.
//!
//! Who may ask for proofs: any caller with a key, as for `/v1/ledger/verify` (staff: there is
//! no person principal yet; a person's access to the proofs of their own entries comes with
//! it). A proof names entries by seq and hash only.

use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use custos_vault::tlog::hash_to_base64;
use serde::Serialize;
use utoipa::ToSchema;

use crate::problem::Problem;
use crate::{AppState, Caller, input};

/// The response header carrying the checkpoint's verifier key.
pub const KEY_HEADER: &str = "custos-ledger-key";

/// A verification of the ledger.
#[derive(Debug, Serialize, ToSchema)]
pub struct VerificationOut {
    /// The chain and every checkpoint verified.
    pub ok: bool,
    /// Entries verified.
    pub entries: u64,
    /// The hash of the last entry verified (hex).
    pub head: String,
    /// Signed checkpoints verified.
    pub checkpoints: u64,
    /// The first entry that does not match, when one does not.
    pub first_bad: Option<u64>,
}

/// `GET /v1/ledger/verify`.
#[utoipa::path(operation_id = "verifyLedger", get, path = "/v1/ledger/verify", tag = "ledger",
    responses(
        (status = 200, description = "the verification", body = VerificationOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn verify(caller: Caller) -> Result<Json<VerificationOut>, Problem> {
    let v = caller.run(|v, _| v.verify_ledger()).await?;
    Ok(Json(VerificationOut {
        ok: v.ok(),
        entries: v.entries,
        head: v.head,
        checkpoints: v.checkpoints,
        first_bad: v.first_bad,
    }))
}

/// `GET /v1/ledger/checkpoint` — a C2SP tlog-checkpoint of the ledger's Merkle tree in a
/// signed note, signed now: keep it, and check later that the ledger still extends it
/// (`custos audit verify --checkpoint`).
#[utoipa::path(operation_id = "ledgerCheckpoint", get, path = "/v1/ledger/checkpoint", tag = "ledger", security(()),
    responses((status = 200, description = "the signed checkpoint (origin, tree size, base64 root hash, a blank line, the signature line); the header `custos-ledger-key` carries the verifier key", body = String, content_type = "text/plain",
        headers(("custos-ledger-key" = String, description = "the signed-note verifier key `NAME+KEYID+KEY`")))))]
pub async fn checkpoint(State(state): State<AppState>) -> Result<Response, Problem> {
    let (head, key) = state
        .on_vault(|v| Ok((v.ledger_checkpoint_cached()?, v.ledger_verifier_key())))
        .await?;
    let mut res = text(head.note);
    if let Ok(k) = HeaderValue::from_str(&key) {
        res.headers_mut().insert(KEY_HEADER, k);
    }
    Ok(res)
}

/// `GET /v1/ledger/key` — the checkpoints' verifier key.
#[utoipa::path(operation_id = "ledgerKey", get, path = "/v1/ledger/key", tag = "ledger", security(()),
    responses((status = 200, description = "the signed-note verifier key of the checkpoints, `NAME+KEYID+KEY` (KEYID 8 hex digits, KEY base64 of 0x01 and the Ed25519 public key), and a newline", body = String, content_type = "text/plain")))]
pub async fn key(State(state): State<AppState>) -> Result<Response, Problem> {
    let key = state.on_vault(|v| Ok(v.ledger_verifier_key())).await?;
    Ok(text(format!("{key}\n")))
}

fn text(body: String) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// An inclusion proof (RFC 9162 §2.1.3): leaf `leaf_index` (the entry of seq `seq`) is in the
/// tree of `tree_size` entries whose root is `root_hash`. Hashes in standard base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct InclusionOut {
    /// The entry's seq.
    pub seq: u64,
    /// Its leaf index: `seq - 1`.
    pub leaf_index: u64,
    /// The tree's size.
    pub tree_size: u64,
    /// The entry's chained hash as the ledger keeps it (hex): the leaf's input.
    pub entry_hash: String,
    /// `SHA-256(0x00 || entry hash bytes)`.
    pub leaf_hash: String,
    /// The tree's root.
    pub root_hash: String,
    /// The audit path, from the leaf's sibling up.
    pub proof: Vec<String>,
}

/// A consistency proof (RFC 9162 §2.1.4): the tree of `to` entries extends the tree of
/// `from`. Hashes in standard base64.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsistencyOut {
    /// The earlier tree's size.
    pub from: u64,
    /// The later tree's size.
    pub to: u64,
    /// The earlier tree's root.
    pub from_root: String,
    /// The later tree's root.
    pub to_root: String,
    /// The proof.
    pub proof: Vec<String>,
}

/// A whole-number query parameter; one too large for 64 bits is the largest (the vault
/// then refuses it as larger than the tree, naming the field).
fn number(q: &mut input::Query, name: &str, min: u64) -> Result<Option<u64>, Problem> {
    match q.opt(name) {
        None => Ok(None),
        Some(v) => match v.parse::<u64>() {
            Ok(n) if n >= min => Ok(Some(n)),
            Err(_) if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_digit()) => {
                Ok(Some(u64::MAX))
            }
            _ => Err(Problem::field(
                "invalid_query",
                name,
                format!("`{name}` is a whole number from {min}"),
            )),
        },
    }
}

/// The vault's refusal of a proof request, naming the query parameter at fault.
fn at_field(e: Problem, fields: &[(&str, &str)]) -> Problem {
    match fields.iter().find(|(code, _)| e.code() == *code) {
        Some((code, field)) => Problem::field(code, *field, e.detail().to_string()),
        None => e,
    }
}

/// `GET /v1/ledger/proof/inclusion?seq=N&size=S`.
#[utoipa::path(operation_id = "ledgerInclusionProof", get, path = "/v1/ledger/proof/inclusion", tag = "ledger",
    params(
        ("seq" = u64, Query, minimum = 1, description = "the entry's seq (from 1)"),
        ("size" = Option<u64>, Query, minimum = 1, description = "the tree size to prove it in (default: the tree now)"),
    ),
    responses(
        (status = 200, description = "the inclusion proof", body = InclusionOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn inclusion(
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<InclusionOut>, Problem> {
    let mut q = input::Query::parse(raw.as_deref())?;
    let seq = number(&mut q, "seq", 1)?.ok_or_else(|| {
        Problem::field(
            "missing_field",
            "seq",
            "give `seq`: the entry's seq (from 1)",
        )
    })?;
    let size = number(&mut q, "size", 1)?;
    q.finish()?;
    let p = caller
        .run(move |v, _| v.ledger_inclusion(seq, size))
        .await
        .map_err(|e| {
            at_field(
                e,
                &[("seq_out_of_range", "seq"), ("tree_size_too_large", "size")],
            )
        })?;
    Ok(Json(InclusionOut {
        seq: p.seq,
        leaf_index: p.seq - 1,
        tree_size: p.size,
        entry_hash: p.entry_hash,
        leaf_hash: hash_to_base64(&p.leaf_hash),
        root_hash: hash_to_base64(&p.root),
        proof: p.proof.iter().map(hash_to_base64).collect(),
    }))
}

/// `GET /v1/ledger/proof/consistency?from=A&to=B`.
#[utoipa::path(operation_id = "ledgerConsistencyProof", get, path = "/v1/ledger/proof/consistency", tag = "ledger",
    params(
        ("from" = u64, Query, minimum = 0, description = "the earlier tree's size (a checkpoint kept)"),
        ("to" = Option<u64>, Query, minimum = 0, description = "the later tree's size (default: the tree now)"),
    ),
    responses(
        (status = 200, description = "the consistency proof", body = ConsistencyOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn consistency(
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<ConsistencyOut>, Problem> {
    let mut q = input::Query::parse(raw.as_deref())?;
    let from = number(&mut q, "from", 0)?.ok_or_else(|| {
        Problem::field(
            "missing_field",
            "from",
            "give `from`: the earlier tree's size",
        )
    })?;
    let to = number(&mut q, "to", 0)?;
    q.finish()?;
    let p = caller
        .run(move |v, _| v.ledger_consistency(from, to))
        .await
        .map_err(|e| {
            at_field(
                e,
                &[
                    ("sizes_out_of_order", "from"),
                    ("tree_size_too_large", "to"),
                ],
            )
        })?;
    Ok(Json(ConsistencyOut {
        from: p.from,
        to: p.to,
        from_root: hash_to_base64(&p.from_root),
        to_root: hash_to_base64(&p.to_root),
        proof: p.proof.iter().map(hash_to_base64).collect(),
    }))
}
