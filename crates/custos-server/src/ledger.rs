//! `GET /v1/ledger/verify`: recomputes the ledger's hash chain and checks its checkpoints.

use axum::Json;
use serde_json::{Value, json};

use crate::Caller;
use crate::problem::Problem;

/// `{ok, entries, head, checkpoints, first_bad}`.
pub async fn verify(caller: Caller) -> Result<Json<Value>, Problem> {
    let v = caller.run(|v, _| v.verify_ledger()).await?;
    Ok(Json(json!({
        "ok": v.ok(),
        "entries": v.entries,
        "head": v.head,
        "checkpoints": v.checkpoints,
        "first_bad": v.first_bad,
    })))
}
