//! `/v1/subjects`: collection and purpose-limited reads of a subject's values.

use axum::Json;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use custos_vault::{CollectionInput, ReadInput};
use serde_json::{Value, json};

use crate::Caller;
use crate::input::{self, Body, Fields};
use crate::problem::Problem;

/// The collection body: `{service, role, purposes[], notice, age?, tenant?, data}`.
fn collection(mut f: Fields) -> Result<CollectionInput, Problem> {
    let input = CollectionInput {
        service: f.string("service")?,
        role: f.string("role")?,
        purposes: f.strings("purposes")?,
        notice: f.string("notice")?,
        age: f.opt_u32("age")?,
        tenant: f.opt_string("tenant")?,
        data: f.string_map("data")?,
    };
    f.finish()?;
    Ok(input)
}

/// `POST /v1/subjects` — collects data about a new subject → `201 {subject, categories}`.
pub async fn collect(caller: Caller, body: Body) -> Result<(StatusCode, Json<Value>), Problem> {
    let input = collection(body.fields())?;
    let categories: Vec<String> = input.data.keys().cloned().collect();
    let id = caller.run(move |v, a| v.collect(a, &input)).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"subject": id.as_str(), "categories": categories})),
    ))
}

/// `POST /v1/subjects/{id}/data` — collects more about an existing subject.
pub async fn collect_more(
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let subject = input::subject_id(&id)?;
    let input = collection(body.fields())?;
    let categories: Vec<String> = input.data.keys().cloned().collect();
    let s = subject.clone();
    caller
        .run(move |v, a| v.collect_more(a, &s, &input))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"subject": subject.as_str(), "categories": categories})),
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

/// `GET /v1/subjects/{id}?purpose=P[&categories=a,b][&recipient=R][&reference=REF]` —
/// `{subject, purpose, effect, data, withheld}`.
pub async fn read(
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Problem> {
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
    Ok(Json(json!({
        "subject": subject.as_str(),
        "purpose": purpose,
        "effect": out.effect,
        "data": out.data,
        "withheld": out.withheld,
        "ledger_seq": out.ledger_seq,
    })))
}
