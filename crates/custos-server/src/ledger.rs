//! `GET /v1/ledger/verify`: recomputes the ledger's hash chain and checks its checkpoints.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Caller;
use crate::problem::Problem;

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
