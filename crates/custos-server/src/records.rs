//! `/v1/subjects/{id}/records`: typed, append-only records (chat messages, contacts,
//! attendance…), appended for stated purposes and read back for a purpose.

use axum::Json;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use custos_vault::{MAX_RECORDS_PAGE, RecordsPage};
use serde_json::{Value, json};

use crate::Caller;
use crate::input::{self, Body};
use crate::problem::Problem;
use crate::subjects::denial_problem;

/// `POST /v1/subjects/{id}/records` — `{collection, purposes[], value | values[]}` →
/// `201 {subject, collection, appended, id?}`.
pub async fn append(
    caller: Caller,
    Path(id): Path<String>,
    body: Body,
) -> Result<(StatusCode, Json<Value>), Problem> {
    let subject = input::subject_id(&id)?;
    let mut f = body.fields();
    let collection = f.string("collection")?;
    let purposes = f.strings("purposes")?;
    let value = f.opt_string("value")?;
    let values = f.opt_strings("values")?;
    f.finish()?;
    let s = subject.clone();
    let c = collection.clone();
    let (appended, id) = match (value, values) {
        (Some(value), None) => {
            let id = caller
                .run(move |v, a| v.append_record(a, &s, &c, &purposes, &value))
                .await?;
            (1, Some(id))
        }
        (None, Some(values)) if !values.is_empty() => {
            let n = caller
                .run(move |v, a| {
                    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
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
    let mut body = json!({
        "subject": subject.as_str(),
        "collection": collection,
        "appended": appended,
    });
    if let (Some(id), Some(m)) = (id, body.as_object_mut()) {
        m.insert("id".into(), json!(id));
    }
    Ok((StatusCode::CREATED, Json(body)))
}

/// `GET /v1/subjects/{id}/records?collection=C&purpose=P[&limit=N][&after=CURSOR]` —
/// `{subject, collection, purpose, effect, records[], withheld: {reason: count}, next?}`:
/// one page of at most `limit` records (100 unless said, 1,000 at most); `next`, when
/// present, is the `after` of the following page.
pub async fn read(
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, Problem> {
    let subject = input::subject_id(&id)?;
    let mut q = input::Query::parse(raw.as_deref())?;
    let collection = q.required("collection", "missing_field", "the record collection")?;
    let purpose = q.required("purpose", "purpose_required", "why the records are read")?;
    let limit = match q.opt("limit") {
        None => 0,
        Some(l) => match l.parse::<u64>() {
            Ok(n) if (1..=MAX_RECORDS_PAGE).contains(&n) => n,
            _ => {
                return Err(Problem::field(
                    "invalid_query",
                    "limit",
                    format!("`limit` is a whole number from 1 to {MAX_RECORDS_PAGE}"),
                ));
            }
        },
    };
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
    q.finish()?;
    let (s, c, p) = (subject.clone(), collection.clone(), purpose.clone());
    let page = RecordsPage { after, limit };
    let out = caller
        .run(move |v, a| v.read_records(a, &s, &c, &p, &page))
        .await?;
    caller.metrics().decision("read_records", &out.effect);
    // The records result has no request-level denial; the policy says whether the caller
    // may pursue the purpose at all, and its recipient receive for it.
    if let Some(code) = request_denial(&caller, &purpose) {
        return Err(denial_problem(code, &purpose));
    }
    let records: Vec<Value> = out
        .records
        .iter()
        .map(
            |r| json!({"id": r.id, "value": r.value, "purposes": r.purposes, "time_ms": r.time_ms}),
        )
        .collect();
    let mut body = json!({
        "subject": subject.as_str(),
        "collection": collection,
        "purpose": purpose,
        "effect": out.effect,
        "records": records,
        "withheld": out.withheld,
        "ledger_seq": out.ledger_seq,
    });
    if let (Some(next), Some(m)) = (out.next, body.as_object_mut()) {
        m.insert("next".into(), json!(next));
    }
    Ok(Json(body))
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
