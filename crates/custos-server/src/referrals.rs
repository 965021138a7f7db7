//! `POST /v1/referrals` (issue 14, item 7; C027): a service sends one email, for a person it
//! holds, to a friend the person names. The friend's name and address exist only inside the
//! sealed outbox message, deleted once it is sent; the ledger names the referrer, the
//! purpose and the categories, never the friend (`vault/referral.rs`).

use axum::Json;
use axum::http::StatusCode;
use custos_vault::ReferralInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::JsonBody;
use crate::problem::Problem;

/// A referral (`POST /v1/referrals`). Never logged, never stored but sealed in the outbox.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReferral {
    /// The referrer: a subject the caller holds, as `POST /v1/subjects` returned it.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The friend's name: one line.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x1f\\x7f-\\x9f\\s][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    /// The friend's address: one plain `local@domain`, no name, list or line break.
    #[schema(
        min_length = 3,
        max_length = 254,
        pattern = "^[!#-'*+\\-./0-9=?A-Z^-~]{1,64}@[!#-'*+\\-/0-9=?A-Z^-~]+(\\.[!#-'*+\\-/0-9=?A-Z^-~]+)+$"
    )]
    pub email: String,
    /// The referrer's words, plain text, line breaks allowed.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(
        nullable = false,
        max_length = 1000,
        pattern = "^[^\\x00-\\x09\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x9f]*$"
    )]
    pub message: Option<String>,
}

/// Names the referrer only: the friend stays out of any log line.
impl std::fmt::Debug for NewReferral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewReferral")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A referral queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReferralOut {
    /// The outbox message's id.
    #[schema(format = Uuid)]
    pub mail: String,
    /// Referrals the referrer may still make in the current 24 hours.
    pub remaining: usize,
}

/// `POST /v1/referrals` — queues one mail to a friend of a person the caller holds.
/// Ledgered without the friend's data.
#[utoipa::path(operation_id = "refer", post, path = "/v1/referrals", tag = "referrals",
    request_body = NewReferral,
    responses(
        (status = 202, description = "queued for delivery", body = ReferralOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn refer(
    caller: Caller,
    JsonBody(body): JsonBody<NewReferral>,
) -> Result<(StatusCode, Json<ReferralOut>), Problem> {
    let input = ReferralInput {
        subject: body.subject,
        name: body.name,
        email: body.email,
        message: body.message,
    };
    let out = caller.run(move |v, a| v.refer(a, &input)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(ReferralOut {
            mail: out.mail,
            remaining: out.remaining,
        }),
    ))
}
