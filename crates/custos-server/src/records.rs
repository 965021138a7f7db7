//! `/v1/subjects/{id}/records`: typed, append-only records (chat messages, contacts,
//! attendance…), appended for stated purposes and read back for a purpose.

use axum::Json;
use axum::extract::{Path, RawQuery};
use std::collections::BTreeMap;

use axum::http::StatusCode;
use custos_vault::{MAX_RECORDS_PAGE, RecordsPage};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::{self, JsonBody, Name, Names};
use crate::problem::Problem;
use crate::subjects::{Effect, denial_problem};

/// Records to append: `value` (one) or `values` (several), of a collection, for purposes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Records {
    /// The record collection.
    #[schema(max_length = 128)]
    pub collection: Name,
    /// The purposes the records are kept for, at least one.
    #[schema(value_type = Vec<Name>, min_items = 1, inline)]
    pub purposes: Names,
    /// One record (give `value` or `values`).
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false, max_length = 16384)]
    pub value: Option<String>,
    /// Several records, appended in one transaction (at most 1,000).
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false, min_items = 1, max_items = 1000, inline)]
    pub values: Option<Vec<RecordValue>>,
}

/// One record's value: at most 65,536 bytes of UTF-8 (the document says a quarter as many
/// characters, which fit whatever they are).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = String)]
pub struct RecordValue(pub String);

/// What an append did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Appended {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The record collection.
    pub collection: String,
    /// How many records were appended.
    pub appended: u64,
    /// The record's id, for a single `value`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// `POST /v1/subjects/{id}/records`.
#[utoipa::path(operation_id = "appendRecords", post, path = "/v1/subjects/{id}/records", tag = "records",
    params(("id" = String, Path, format = Uuid, description = "the subject id, as `POST /v1/subjects` returned it")),
    request_body = Records,
    responses(
        (status = 201, description = "appended", body = Appended),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn append(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Records>,
) -> Result<(StatusCode, Json<Appended>), Problem> {
    let subject = input::subject_id(&id)?;
    let s = subject.clone();
    let collection = body.collection.0;
    let c = collection.clone();
    let purposes = body.purposes.strings();
    let (appended, id) = match (body.value, body.values) {
        (Some(value), None) => {
            let id = caller
                .run(move |v, a| v.append_record(a, &s, &c, &purposes, &value))
                .await?;
            (1, Some(id))
        }
        (None, Some(values)) if !values.is_empty() => {
            let n = caller
                .run(move |v, a| {
                    let refs: Vec<&str> = values.iter().map(|r| r.0.as_str()).collect();
                    v.append_records(a, &s, &c, &purposes, &refs)
                })
                .await?;
            (n, None)
        }
        (Some(_), Some(_)) => {
            return Err(Problem::field(
                "invalid_field",
                "values",
                "give either `value` or `values`, not both",
            ));
        }
        (None, _) => {
            return Err(Problem::field(
                "missing_field",
                "value",
                "`value` (a string) or `values` (a non-empty array of strings) is required",
            ));
        }
    };
    Ok((
        StatusCode::CREATED,
        Json(Appended {
            subject: subject.as_str().to_string(),
            collection,
            appended,
            id,
        }),
    ))
}

/// One record, permitted.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordOut {
    /// Its id (32 hex digits, time-ordered).
    pub id: String,
    /// Its value.
    pub value: String,
    /// The purposes it was appended for.
    pub purposes: Vec<String>,
    /// When it was appended, ms since the Unix epoch.
    pub time_ms: i64,
}

/// A page of records, and the decision over them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordsPageOut {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The record collection.
    pub collection: String,
    /// The purpose read for.
    pub purpose: String,
    /// Over this page's records.
    pub effect: Effect,
    /// The permitted records of this page, in append order.
    pub records: Vec<RecordOut>,
    /// Records of this page withheld: reason code → how many.
    pub withheld: BTreeMap<String, u64>,
    /// The sequence number of the read's ledger entry.
    pub ledger_seq: u64,
    /// Present when the page was full: the `after` of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `GET /v1/subjects/{id}/records?collection=C&purpose=P[&limit=N][&after=CURSOR][&reference=ID]` — one
/// page of at most `limit` records (100 unless said, 1,000 at most); `next`, when present,
/// is the `after` of the following page.
#[utoipa::path(operation_id = "readRecords", get, path = "/v1/subjects/{id}/records", tag = "records",
    params(
        ("id" = String, Path, format = Uuid, description = "the subject id, as `POST /v1/subjects` returned it"),
        ("collection" = String, Query, max_length = 128, description = "the record collection"),
        ("purpose" = String, Query, max_length = 128, description = "why the records are read"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "records per page (default 100)"),
        ("after" = Option<String>, Query, pattern = "^[0-9a-f]{32}$", description = "the `next` of the previous page"),
        ("reference" = Option<String>, Query, max_length = 128, description = "for a purpose that requires a reference (every legal one): the id of a registered legal instrument covering the subject and the collection's categories (`POST /v1/instruments`)"),
    ),
    responses(
        (status = 200, description = "the decision and the permitted records of the page", body = RecordsPageOut),
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
) -> Result<Json<RecordsPageOut>, Problem> {
    let subject = input::subject_id(&id)?;
    let mut q = input::Query::parse(raw.as_deref())?;
    let collection = q.required("collection", "missing_field", "the record collection")?;
    let purpose = q.required("purpose", "purpose_required", "why the records are read")?;
    let limit = q.limit(MAX_RECORDS_PAGE)?;
    let after = q.opt("after");
    if after
        .as_deref()
        .is_some_and(|a| a.len() != 32 || !a.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err(Problem::field(
            "invalid_query",
            "after",
            "`after` is the `next` of a previous page (32 hex digits)",
        ));
    }
    let reference = q.opt("reference");
    q.finish()?;
    let (s, c, p) = (subject.clone(), collection.clone(), purpose.clone());
    let page = RecordsPage { after, limit };
    let out = caller
        .run(move |v, a| v.read_records_with(a, &s, &c, &p, reference.as_deref(), &page))
        .await?;
    caller.metrics().decision("read_records", &out.effect);
    // The records result has no request-level denial; the policy says whether the caller
    // may pursue the purpose at all, and its recipient receive for it.
    if let Some(code) = request_denial(&caller, &purpose) {
        return Err(denial_problem(code, &purpose));
    }
    let records = out
        .records
        .into_iter()
        .map(|r| RecordOut {
            id: r.id,
            value: r.value,
            purposes: r.purposes,
            time_ms: r.time_ms,
        })
        .collect();
    Ok(Json(RecordsPageOut {
        subject: subject.as_str().to_string(),
        collection,
        purpose,
        effect: Effect::of(&out.effect),
        records,
        withheld: out.withheld,
        ledger_seq: out.ledger_seq,
        next: out.next,
    }))
}

fn request_denial(caller: &Caller, purpose: &str) -> Option<&'static str> {
    let policy = caller.policy()?;
    let accessor = policy.accessor_id(caller.accessor()).ok()?;
    let p = policy.purpose_id(purpose).ok()?;
    let info = policy.accessor(accessor)?;
    if !info.allowed.contains(p) {
        return Some("purpose_not_allowed_for_accessor");
    }
    let recipient_ok = info.recipient.is_none_or(|r| {
        policy
            .recipient(r)
            .is_some_and(|x| x.allows.get(p.index()).copied().flatten().is_some())
    });
    (!recipient_ok).then_some("recipient_not_allowed_for_purpose")
}
