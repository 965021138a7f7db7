//! `POST /v1/decisions`: the decision alone, over the subject's stored state, no data.

use std::collections::BTreeMap;

use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::{self, JsonBody, Name, Names};
use crate::problem::Problem;
use crate::subjects::Effect;

/// What to decide: may the caller use these categories of this subject for this purpose.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionRequest {
    /// The subject's id.
    #[schema(value_type = String, format = Uuid)]
    pub subject: String,
    /// The purpose.
    #[schema(max_length = 128)]
    pub purpose: Name,
    /// The categories asked for; default: every category held.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(value_type = Option<Vec<Name>>, nullable = false, inline)]
    pub categories: Option<Names>,
    /// Who the data would go to onwards.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false, max_length = 128)]
    pub recipient: Option<Name>,
    /// For a purpose that requires a reference (every legal one): the id of a registered
    /// legal instrument covering the subject and the categories (`POST /v1/instruments`).
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false, max_length = 128)]
    pub reference: Option<Name>,
}

/// The policy's decision, without data.
#[derive(Debug, Serialize, ToSchema)]
pub struct DecisionAnswer {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The purpose.
    pub purpose: String,
    /// The effect.
    pub effect: Effect,
    /// The categories permitted.
    pub permitted: Vec<String>,
    /// The categories withheld, category → reason code.
    pub withheld: BTreeMap<String, String>,
    /// Why the whole request was denied, when it was.
    pub denial: Option<String>,
    /// The ground of the permit (`collected_for_purpose`, `consent_given`, …).
    pub ground: Option<String>,
    /// The external recipient a permitted use discloses to.
    pub disclosure_to: Option<String>,
    /// The clauses of the policy that decided.
    pub clauses: Vec<String>,
    /// The sequence number of the decision's ledger entry.
    pub ledger_seq: u64,
}

/// `POST /v1/decisions` — a denial is an answer here (200), not an error: the caller asked
/// what the policy decides. An erased person is answered as one who never was (404).
#[utoipa::path(operation_id = "decide", post, path = "/v1/decisions", tag = "decisions",
    request_body = DecisionRequest,
    responses(
        (status = 200, description = "the decision (a denial is an answer, not an error)", body = DecisionAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn decide(
    caller: Caller,
    JsonBody(body): JsonBody<DecisionRequest>,
) -> Result<Json<DecisionAnswer>, Problem> {
    let subject = input::subject_id(&body.subject).map_err(|_| {
        Problem::field(
            "invalid_subject_id",
            "subject",
            "a subject id is a lowercase uuid, as `POST /v1/subjects` returned it",
        )
    })?;
    let purpose = body.purpose.0;
    let read = custos_vault::ReadInput {
        purpose: purpose.clone(),
        categories: body.categories.map(Names::strings),
        recipient: body.recipient.map(|r| r.0),
        reference: body.reference.map(|r| r.0),
    };
    let s = subject.clone();
    let d = caller.run(move |v, a| v.decide(a, &s, &read)).await?;
    caller.metrics().decision("decide", &d.effect);
    // An erased person, or one under the minimum age, is answered as one who never was:
    // the answer does not reveal that Custos ever held them (the ledger keeps the reason).
    if let Some(code @ ("subject_erased" | "subject_under_minimum_age")) = d.denial.as_deref() {
        return Err(crate::subjects::denial_problem(code, &purpose));
    }
    Ok(Json(DecisionAnswer {
        subject: subject.as_str().to_string(),
        purpose,
        effect: Effect::of(&d.effect),
        permitted: d.permitted,
        withheld: d.withheld,
        denial: d.denial,
        ground: d.ground,
        disclosure_to: d.disclosure_to,
        clauses: d.clauses,
        ledger_seq: d.ledger_seq,
    }))
}
