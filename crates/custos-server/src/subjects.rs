//! `/v1/subjects`: collection and purpose-limited reads of a subject's values.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use custos_vault::{CollectionInput, ReadInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::{self, Age, DataMap, JsonBody, Name, Names};
use crate::problem::Problem;

/// A collection: what a service collected about a person, the purposes the person was told
/// and the notice they were shown (`POST /v1/subjects`, `POST /v1/subjects/{id}/data`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// The service collecting: one of the caller's own services.
    #[schema(max_length = 128)]
    pub service: Name,
    /// The person's role in the service.
    #[schema(max_length = 128)]
    pub role: Name,
    /// The purposes the person was told, at least one.
    #[schema(value_type = Vec<Name>, min_items = 1, inline)]
    pub purposes: Names,
    /// The notice version shown: the policy's current version.
    #[schema(max_length = 128)]
    pub notice: Name,
    /// The person's age in years, when known; under the policy's minimum the collection is
    /// refused, and a person already held is erased (C053).
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false)]
    pub age: Option<Age>,
    /// The business customer the person belongs to.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(max_length = 128, nullable = false)]
    pub tenant: Option<Name>,
    /// Category → value, at least one.
    pub data: DataMap,
}

impl From<Collection> for CollectionInput {
    fn from(c: Collection) -> Self {
        Self {
            service: c.service.0,
            role: c.role.0,
            purposes: c.purposes.strings(),
            notice: c.notice.0,
            age: c.age.map(|a| a.0),
            tenant: c.tenant.map(|t| t.0),
            data: c.data.0,
        }
    }
}

/// A collection's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Collected {
    /// The subject's id (a UUIDv7).
    #[schema(format = Uuid)]
    pub subject: String,
    /// The categories given.
    pub categories: Vec<String>,
}

/// `POST /v1/subjects` — collects data about a new subject.
#[utoipa::path(operation_id = "collect", post, path = "/v1/subjects", tag = "subjects",
    request_body = Collection,
    responses(
        (status = 201, description = "collected", body = Collected),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn collect(
    caller: Caller,
    JsonBody(body): JsonBody<Collection>,
) -> Result<(StatusCode, Json<Collected>), Problem> {
    let input = CollectionInput::from(body);
    let categories: Vec<String> = input.data.keys().cloned().collect();
    let id = caller.run(move |v, a| v.collect(a, &input)).await?;
    Ok((
        StatusCode::CREATED,
        Json(Collected {
            subject: id.as_str().to_string(),
            categories,
        }),
    ))
}

/// `POST /v1/subjects/{id}/data` — collects more about a subject the caller's service holds.
#[utoipa::path(operation_id = "collectMore", post, path = "/v1/subjects/{id}/data", tag = "subjects",
    params(("id" = String, Path, format = Uuid, description = "the subject id, as `POST /v1/subjects` returned it")),
    request_body = Collection,
    responses(
        (status = 201, description = "collected", body = Collected),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn collect_more(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Collection>,
) -> Result<(StatusCode, Json<Collected>), Problem> {
    let subject = input::subject_id(&id)?;
    let input = CollectionInput::from(body);
    let categories: Vec<String> = input.data.keys().cloned().collect();
    let s = subject.clone();
    caller
        .run(move |v, a| v.collect_more(a, &s, &input))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Collected {
            subject: subject.as_str().to_string(),
            categories,
        }),
    ))
}

/// A request-level denial is the caller's error (403); an erased or under-age subject does
/// not exist for anyone (404). Category-level refusals are answers, in `withheld`.
pub(crate) fn denial_problem(code: &str, purpose: &str) -> Problem {
    match code {
        "subject_erased" | "subject_under_minimum_age" => {
            Problem::new("subject_not_found", "no such subject")
        }
        "recipient_not_allowed_for_purpose" => Problem::field(
            code,
            "recipient",
            format!("the policy lets this recipient receive nothing for purpose `{purpose}`"),
        ),
        _ => Problem::field(
            "purpose_not_allowed_for_accessor",
            "purpose",
            format!("the policy does not let this accessor pursue purpose `{purpose}`"),
        ),
    }
}

/// A decision's effect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    /// Everything asked for is permitted.
    Permit,
    /// Some is permitted, some withheld.
    Partial,
    /// Nothing is permitted.
    Deny,
}

impl Effect {
    /// The effect the vault names (`permit`, `partial`, anything else: `deny`).
    pub fn of(effect: &str) -> Self {
        match effect {
            "permit" => Self::Permit,
            "partial" => Self::Partial,
            _ => Self::Deny,
        }
    }
}

/// A purpose-limited read's answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadAnswer {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The purpose read for.
    pub purpose: String,
    /// `permit` (every category asked for), `partial` or `deny`.
    pub effect: Effect,
    /// The permitted values, category → value.
    pub data: BTreeMap<String, String>,
    /// The categories withheld, category → reason code.
    pub withheld: BTreeMap<String, String>,
    /// The sequence number of the read's ledger entry.
    pub ledger_seq: u64,
}

/// `GET /v1/subjects/{id}?purpose=P[&categories=a,b][&recipient=R][&reference=REF]`.
#[utoipa::path(operation_id = "read", get, path = "/v1/subjects/{id}", tag = "subjects",
    params(
        ("id" = String, Path, format = Uuid, description = "the subject id, as `POST /v1/subjects` returned it"),
        ("purpose" = String, Query, max_length = 128, description = "why the data is read"),
        ("categories" = Option<String>, Query, description = "comma-separated categories; default: every category held"),
        ("recipient" = Option<String>, Query, max_length = 128, description = "who the data goes to onwards"),
        ("reference" = Option<String>, Query, max_length = 128, description = "for a purpose that requires a reference (every legal one): the id of a registered legal instrument covering the subject and the categories (`POST /v1/instruments`)"),
    ),
    responses(
        (status = 200, description = "the decision and the permitted values (a partial or denied answer is an answer)", body = ReadAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn read(
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ReadAnswer>, Problem> {
    let subject = input::subject_id(&id)?;
    let mut q = input::Query::parse(raw.as_deref())?;
    let input = ReadInput {
        purpose: q.required("purpose", "purpose_required", "why the data is read")?,
        categories: q.opt("categories").map(|c| input::list(&c)),
        recipient: q.opt("recipient"),
        reference: q.opt("reference"),
    };
    q.finish()?;
    let purpose = input.purpose.clone();
    let out = caller.read(subject.clone(), input).await?;
    caller.metrics().decision("read", &out.effect);
    if let Some(code) = &out.denial {
        if code != "subject_deactivated" {
            return Err(denial_problem(code, &purpose));
        }
    }
    Ok(Json(ReadAnswer {
        subject: subject.as_str().to_string(),
        purpose,
        effect: Effect::of(&out.effect),
        data: out.data,
        withheld: out.withheld,
        ledger_seq: out.ledger_seq,
    }))
}
