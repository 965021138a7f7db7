//! `/.well-known/…`: what anyone may fetch without a key. `GET /.well-known/jwks.json` — the
//! public keys consent receipts are signed with, as a JWK Set (RFC 7517; Ed25519 keys as
//! RFC 8037 `OKP` keys), so a person or a regulator can check a receipt offline
//! (`custos receipt verify FILE --jwks FILE`).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::problem::Problem;

/// The JWK Set media type (RFC 7517 §8.5.1).
pub const JWKS_TYPE: &str = "application/jwk-set+json";

/// `GET /.well-known/jwks.json` — keyless; cacheable for an hour (a key stays published as
/// long as receipts it signed may be checked).
#[utoipa::path(operation_id = "receiptKeys", get, path = "/.well-known/jwks.json", tag = "consents", security(()),
    responses((status = 200, description = "the consent receipts' signing keys: `{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\", \"kid\", \"use\": \"sig\", \"alg\": \"EdDSA\"}]}`", body = Object, content_type = "application/jwk-set+json")))]
pub async fn jwks(State(state): State<AppState>) -> Result<Response, Problem> {
    let keys = state
        .vault()
        .map(|v| custos_vault::jwks(&v.receipt_keys()).to_string())
        .ok_or_else(|| Problem::internal("the vault is closed"))?;
    let mut res = keys.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(JWKS_TYPE));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(res)
}
