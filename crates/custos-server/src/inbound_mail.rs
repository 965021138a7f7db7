//! `POST /v1/inbound-mail` (issue 14, item 5; C032): an unsubscribe by email. The MTA that
//! receives `unsubscribe@…` hands the raw RFC 5322 message (`Content-Type: message/rfc822`,
//! at most 256 KiB) to staff's key — or pipes it to `custos mail intake -` — and the vault
//! matches its `From` address through the blind index and unsubscribes every subject found
//! from the communication topics, each choice with its receipt and ledger entry
//! (`vault/inbound.rs`). Staff only (`403 not_staff`): only staff learn how many subjects an
//! address matched. The message is kept nowhere; errors name the problem, never a header.

use axum::Json;
use axum::extract::Request;
use axum::http::header;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Caller;
use crate::problem::Problem;

/// The media type of the body.
pub const MESSAGE_RFC822: &str = "message/rfc822";
/// Taken as the same: a raw message is text, and some clients (and tools) know no other.
pub const TEXT_PLAIN: &str = "text/plain";
/// The media types the route takes.
pub const MEDIA_TYPES: [&str; 2] = [MESSAGE_RFC822, TEXT_PLAIN];
/// The message's shape in the document (a JSON Schema `pattern`): header lines or
/// continuation lines, then optionally an empty line and a body; no NUL.
pub const SHAPE: &str =
    "^[!-9;-~]+:[^\\x00\\n]*(\\n([!-9;-~]+:|[ \\t])[^\\x00\\n]*)*(\\n\\r?(\\n[^\\x00]*)?)?$";

/// What an inbound message did.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntakeOut {
    /// Subjects its `From` address matched (0: an address the vault does not know; the
    /// message is then ignored, its arrival alone ledgered).
    pub matched: usize,
    /// Consent and objection records made: topics that were on and are now off.
    pub changes: usize,
}

/// `POST /v1/inbound-mail` — unsubscribes the sender of an inbound message from promotional
/// mail; staff only. Ledgered.
#[utoipa::path(operation_id = "intakeMail", post, path = "/v1/inbound-mail", tag = "mailings",
    request_body(content(
            (String = "message/rfc822"),
            (String = "text/plain"),
        ),
        description = "the raw RFC 5322 message, as the MTA received it (at most 262144 bytes); `text/plain` is taken as `message/rfc822`"),
    responses(
        (status = 200, description = "handled: how many subjects matched, how many choices changed", body = IntakeOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn intake(caller: Caller, req: Request) -> Result<Json<IntakeOut>, Problem> {
    let rfc822 = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::trim)
        .is_some_and(|m| {
            m.eq_ignore_ascii_case(MESSAGE_RFC822) || m.eq_ignore_ascii_case(TEXT_PLAIN)
        });
    if !rfc822 {
        return Err(Problem::new(
            "unsupported_media_type",
            "send the raw message with `Content-Type: message/rfc822` (or `text/plain`)",
        ));
    }
    let max = custos_vault::MAX_INBOUND_MAIL;
    let raw = axum::body::to_bytes(req.into_body(), max)
        .await
        .map_err(|_| {
            Problem::new(
                "mail_too_large",
                format!("an inbound message holds at most {max} bytes"),
            )
        })?;
    let out = caller.run(move |v, a| v.intake_mail(a, &raw)).await?;
    Ok(Json(IntakeOut {
        matched: out.matched,
        changes: out.changes,
    }))
}
