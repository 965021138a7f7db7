//! `/v1/me…`: a signed-in person's own side of the vault. Every route takes a
//! [`Person`](crate::people::Person) (a session, never an API key) and reaches that person's
//! subjects only.

use axum::Json;
use axum::extract::RawQuery;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use custos_vault::{Requester, SubjectId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::export::ExportDocument;
use crate::input::{self, DataMap, JsonBody, Name};
use crate::people::Person;
use crate::problem::Problem;

/// What the vault holds about the signed-in person.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeOut {
    /// One entry per subject the session reaches.
    pub subjects: Vec<MeSubject>,
    /// When the session signed in, UTC.
    #[schema(format = DateTime)]
    pub signed_in: String,
    /// When the session expires, UTC.
    #[schema(format = DateTime)]
    pub expires: String,
}

/// One of the person's subjects, without values.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeSubject {
    /// The subject's id.
    #[schema(format = Uuid)]
    pub id: String,
    /// `active`, `deactivated` or `erased`.
    pub status: String,
    /// The services that collected about the person, and the person's role in each.
    pub services: Vec<ServiceRole>,
    /// The categories held.
    pub categories: Vec<String>,
    /// When the subject was created, UTC.
    #[schema(format = DateTime)]
    pub created: String,
}

/// A service and the person's role in it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServiceRole {
    /// The service.
    pub service: String,
    /// The person's role in it.
    pub role: String,
}

/// `GET /v1/me` — the overview of the person's subjects: ids, status, services and roles,
/// categories held; no values. Ledgered, per subject.
#[utoipa::path(operation_id = "me", get, path = "/v1/me", tag = "people",
    responses(
        (status = 200, description = "the person's subjects", body = MeOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn overview(person: Person) -> Result<Json<MeOut>, Problem> {
    let subjects = person.run(|v, p| v.person_overview(p)).await?;
    Ok(Json(MeOut {
        subjects: subjects
            .into_iter()
            .map(|s| MeSubject {
                id: s.id.to_string(),
                status: s.status,
                services: s
                    .services
                    .into_iter()
                    .map(|(service, role)| ServiceRole { service, role })
                    .collect(),
                categories: s.categories,
                created: s.created,
            })
            .collect(),
        signed_in: person.principal().signed_in(),
        expires: person.principal().expires(),
    }))
}

/// How recent a sign-in must be for the acts that hand over or destroy everything: export
/// and erasure.
pub const RECENT_SIGN_IN: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// Which of the person's subjects an act is about.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Which {
    /// One of the session's subjects (`GET /v1/me` lists them); may be left out when the
    /// session has one.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(format = Uuid, nullable = false)]
    pub subject: Option<String>,
}

/// A correction of values the vault holds about the person (C029, C030).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Correction {
    /// One of the session's subjects; may be left out when the session has one.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(format = Uuid, nullable = false)]
    pub subject: Option<String>,
    /// Category → corrected value, at least one; only categories the vault holds.
    pub data: DataMap,
}

/// What a rights act did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// The subject acted on.
    #[schema(format = Uuid)]
    pub subject: String,
    /// `corrected`, `deactivated` or `erased`.
    pub done: &'static str,
}

/// The ledger entries about the person (the export's ledger part, without values).
#[derive(Debug, Serialize, ToSchema)]
pub struct MyLedger {
    /// The subject.
    #[schema(format = Uuid)]
    pub subject: String,
    /// The entries and what proves them.
    pub ledger: crate::export::LedgerDoc,
}

/// The subject an act is about: the one named (the vault refuses it unless the session
/// reaches it), or the session's only one.
fn pick(person: &Person, named: Option<&str>) -> Result<SubjectId, Problem> {
    match named {
        Some(raw) => SubjectId::parse(raw).map_err(|_| {
            Problem::field(
                "invalid_subject_id",
                "subject",
                "a subject id is a lowercase uuid, as `GET /v1/me` lists it",
            )
        }),
        None => match person.subjects() {
            [only] => Ok(only.clone()),
            _ => Err(Problem::field(
                "missing_field",
                "subject",
                "this session reaches several subjects (or none): name one (`GET /v1/me` lists them)",
            )),
        },
    }
}

/// Export and erasure need a sign-in of the last [`RECENT_SIGN_IN`].
fn recent(person: &Person) -> Result<(), Problem> {
    if person.principal().signed_in_within(RECENT_SIGN_IN) {
        Ok(())
    } else {
        Err(Problem::new(
            "sign_in_too_old",
            "exporting and erasing need a sign-in of the last 10 minutes: sign in again at /v1/people/sign-in",
        ))
    }
}

fn subject_query(raw: Option<&str>) -> Result<Option<String>, Problem> {
    let mut q = input::Query::parse(raw)?;
    let subject = q.opt("subject");
    q.finish()?;
    Ok(subject)
}

/// `GET /v1/me/export` — everything the vault holds about the person (right of access and
/// portability; `docs/export.md`): JSON of schema `custos-export/1`, or with
/// `Accept: text/html` the readable page. Needs a sign-in of the last 10 minutes. Ledgered
/// (`export`) before anything is decrypted.
#[utoipa::path(operation_id = "myExport", get, path = "/v1/me/export", tag = "people",
    params(("subject" = Option<String>, Query, format = Uuid, description = "one of the session's subjects; may be left out when the session has one")),
    responses(
        (status = 200, description = "the export", content((crate::export::ExportDocument = "application/json"), (String = "text/html"))),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn export(
    person: Person,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let subject = pick(&person, subject_query(raw.as_deref())?.as_deref())?;
    recent(&person)?;
    let html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    let doc = person
        .run(move |v, p| {
            let e = v.export(Requester::Person(p), &subject)?;
            Ok(ExportDocument::new(e, v.ledger_verifier_key()))
        })
        .await?;
    let mut res = if html {
        let mut r = doc.to_html().into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        r
    } else {
        Json(doc).into_response()
    };
    // Personal information: never kept by a cache on the way.
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// `GET /v1/me/ledger` — the ledger entries about the person, each with its inclusion proof
/// in the tree of a signed checkpoint (`docs/export.md`, "Checking the entries"). Ledgered
/// (`read_ledger`).
#[utoipa::path(operation_id = "myLedger", get, path = "/v1/me/ledger", tag = "people",
    params(("subject" = Option<String>, Query, format = Uuid, description = "one of the session's subjects; may be left out when the session has one")),
    responses(
        (status = 200, description = "the entries about the person", body = MyLedger),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn ledger(person: Person, RawQuery(raw): RawQuery) -> Result<Json<MyLedger>, Problem> {
    let subject = pick(&person, subject_query(raw.as_deref())?.as_deref())?;
    let id = subject.to_string();
    let ledger = person
        .run(move |v, p| {
            let (entries, head) = v.ledger_about(Requester::Person(p), &subject)?;
            Ok(crate::export::LedgerDoc::new(
                entries,
                head,
                v.ledger_verifier_key(),
                0,
            ))
        })
        .await?;
    Ok(Json(MyLedger {
        subject: id,
        ledger,
    }))
}

/// `PATCH /v1/me/data` — corrects values the vault holds about the person (C029, C030):
/// only categories it holds (else 422 `category_not_held` naming `data.CATEGORY`); the
/// correction is ledgered (`correct`, the categories, never a value).
#[utoipa::path(operation_id = "myCorrection", patch, path = "/v1/me/data", tag = "people",
    request_body = Correction,
    responses(
        (status = 200, description = "corrected", body = Done),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn correct(
    person: Person,
    JsonBody(body): JsonBody<Correction>,
) -> Result<Json<Done>, Problem> {
    let subject = pick(&person, body.subject.as_deref())?;
    let id = subject.to_string();
    let data = body.data.0;
    person
        .run(move |v, p| v.correct(Requester::Person(p), &subject, &data))
        .await?;
    Ok(Json(Done {
        subject: id,
        done: "corrected",
    }))
}

/// `POST /v1/me/deactivate` — deactivates the person's account (C030): from then on only
/// contractual and legal purposes are served. Ledgered.
#[utoipa::path(operation_id = "myDeactivation", post, path = "/v1/me/deactivate", tag = "people",
    request_body = Which,
    responses(
        (status = 200, description = "deactivated", body = Done),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn deactivate(
    person: Person,
    JsonBody(body): JsonBody<Which>,
) -> Result<Json<Done>, Problem> {
    let subject = pick(&person, body.subject.as_deref())?;
    let id = subject.to_string();
    person
        .run(move |v, p| v.deactivate_for(Requester::Person(p), &subject))
        .await?;
    Ok(Json(Done {
        subject: id,
        done: "deactivated",
    }))
}

/// `POST /v1/me/erase` — erases the person: their key is destroyed at once (nothing of
/// them decrypts from then on), their records purged after. Needs a sign-in of the last
/// 10 minutes. Ledgered.
#[utoipa::path(operation_id = "myErasure", post, path = "/v1/me/erase", tag = "people",
    request_body = Which,
    responses(
        (status = 200, description = "erased", body = Done),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn erase(person: Person, JsonBody(body): JsonBody<Which>) -> Result<Json<Done>, Problem> {
    let subject = pick(&person, body.subject.as_deref())?;
    recent(&person)?;
    let id = subject.to_string();
    person
        .run(move |v, p| v.erase_for(Requester::Person(p), &subject))
        .await?;
    Ok(Json(Done {
        subject: id,
        done: "erased",
    }))
}

/// The person's choice about a purpose (`POST /v1/me/consents`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MyChoice {
    /// One of the session's subjects; may be left out when the session has one.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(format = Uuid, nullable = false)]
    pub subject: Option<String>,
    /// The purpose: its basis must be `consent` (opt-in) or `opt_out`.
    pub purpose: Name,
    /// The recipient the choice is about, for a purpose that discloses to one.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false)]
    pub recipient: Option<Name>,
    /// Yes or no.
    pub given: bool,
    /// How the person expressed it (`settings_page` when they use a page of yours).
    pub method: Name,
    /// The notice version the person was shown: the policy's current version.
    pub notice: Name,
}

/// The person's preferences to set (`PUT /v1/me/preferences`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MyPreferences {
    /// One of the session's subjects; may be left out when the session has one.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(format = Uuid, nullable = false)]
    pub subject: Option<String>,
    /// Topic purpose → on (`true`) or off (`false`); at least one.
    #[schema(value_type = std::collections::BTreeMap<String, bool>)]
    pub topics: std::collections::BTreeMap<Name, bool>,
}

/// `GET /v1/me/consents` — the person's own consent and objection records, each with its
/// evidence and receipt.
#[utoipa::path(operation_id = "myConsents", get, path = "/v1/me/consents", tag = "people",
    params(("subject" = Option<String>, Query, format = Uuid, description = "one of the session's subjects; may be left out when the session has one")),
    responses(
        (status = 200, description = "the records, oldest first", body = crate::consents::ConsentList),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn consents(
    person: Person,
    RawQuery(raw): RawQuery,
) -> Result<Json<crate::consents::ConsentList>, Problem> {
    let subject = pick(&person, subject_query(raw.as_deref())?.as_deref())?;
    let id = subject.to_string();
    let list = person
        .run(move |v, p| v.consents(Requester::Person(p), &subject))
        .await?;
    Ok(Json(crate::consents::ConsentList::new(id, list)))
}

/// `POST /v1/me/consents` — the person gives or withdraws consent, or objects, themself:
/// recorded with its evidence (actor `person`) and a signed receipt; the next decision
/// reads it.
#[utoipa::path(operation_id = "myConsent", post, path = "/v1/me/consents", tag = "people",
    request_body = MyChoice,
    responses(
        (status = 201, description = "recorded; ledgered before it was stored", body = crate::consents::ConsentAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn consent(
    person: Person,
    JsonBody(body): JsonBody<MyChoice>,
) -> Result<(axum::http::StatusCode, Json<crate::consents::ConsentAnswer>), Problem> {
    let subject = pick(&person, body.subject.as_deref())?;
    let choice = custos_vault::ConsentInput {
        purpose: body.purpose.0,
        recipient: body.recipient.map(|r| r.0),
        given: body.given,
        method: body.method.0,
        notice: body.notice.0,
    };
    // As a service's consent change: checked and signed on the request's thread (embedded
    // store), answered once its group commit is durable, no thread waiting through it.
    let (done, answer) = crate::AppState::begun();
    person
        .run_short(move |v, p| v.begin_consent(Requester::Person(p), &subject, &choice, done))
        .await?;
    Ok((axum::http::StatusCode::CREATED, Json(answer.await?.into())))
}

/// `GET /v1/me/preferences` — the policy's communication topics, each on or off for the
/// person.
#[utoipa::path(operation_id = "myPreferences", get, path = "/v1/me/preferences", tag = "people",
    params(("subject" = Option<String>, Query, format = Uuid, description = "one of the session's subjects; may be left out when the session has one")),
    responses(
        (status = 200, description = "the topics", body = crate::consents::Preferences),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn preferences(
    person: Person,
    RawQuery(raw): RawQuery,
) -> Result<Json<crate::consents::Preferences>, Problem> {
    let subject = pick(&person, subject_query(raw.as_deref())?.as_deref())?;
    let id = subject.to_string();
    let topics = person
        .run(move |v, p| v.preferences(Requester::Person(p), &subject))
        .await?;
    Ok(Json(crate::consents::Preferences::new(
        id,
        topics,
        Vec::new(),
    )))
}

/// `PUT /v1/me/preferences` — the person switches topics on or off (method `settings_page`);
/// each change is a consent or objection record with its receipt.
#[utoipa::path(operation_id = "mySetPreferences", put, path = "/v1/me/preferences", tag = "people",
    request_body = MyPreferences,
    responses(
        (status = 200, description = "set; the topics as they are now and the records made", body = crate::consents::Preferences),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn set_preferences(
    person: Person,
    JsonBody(body): JsonBody<MyPreferences>,
) -> Result<Json<crate::consents::Preferences>, Problem> {
    let subject = pick(&person, body.subject.as_deref())?;
    let id = subject.to_string();
    let topics: std::collections::BTreeMap<String, bool> =
        body.topics.into_iter().map(|(k, v)| (k.0, v)).collect();
    let (changes, now) = person
        .run(move |v, p| {
            let changes =
                v.set_preferences(Requester::Person(p), &subject, &topics, "settings_page")?;
            Ok((changes, v.preferences(Requester::Person(p), &subject)?))
        })
        .await?;
    Ok(Json(crate::consents::Preferences::new(id, now, changes)))
}
