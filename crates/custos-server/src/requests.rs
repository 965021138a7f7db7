//! `/v1/requests`: people's requests as staff handle them (issue 13). Staff — the accessors
//! the policy lists in `[rights] staff`, with a key of no tenant — enter a request received
//! online, by email, letter or phone, verify the requester, complete or refuse it; every
//! other key is answered `403 not_staff` (`docs/vault.md`, "Requests").

use axum::Json;
use axum::extract::{Path, RawQuery};
use axum::http::StatusCode;
use custos_vault::vault::MAX_REQUESTS_LISTED;
use custos_vault::{PersonRequest, RequestInput, RequestList};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::export::ExportDocument;
use crate::input::{self, DataMap, JsonBody, Name, OptionalJsonBody};
use crate::problem::Problem;

/// What the person asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RequestKind {
    /// A copy of what is held, to read.
    Access,
    /// A copy of what is held, machine-readable.
    Export,
    /// A correction.
    Rectify,
    /// Deactivation of the account.
    Deactivate,
    /// Erasure.
    Erase,
    /// An objection to one purpose (name it in `purpose`).
    Object,
    /// California "Shine the Light": the disclosures to third parties for their direct
    /// marketing.
    CaliforniaDisclosures,
}

impl RequestKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Export => "export",
            Self::Rectify => "rectify",
            Self::Deactivate => "deactivate",
            Self::Erase => "erase",
            Self::Object => "object",
            Self::CaliforniaDisclosures => "california-disclosures",
        }
    }
}

/// How the request reached the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestChannel {
    /// The person, signed in.
    Online,
    /// An email.
    Email,
    /// A letter.
    Letter,
    /// A phone call.
    Phone,
}

impl RequestChannel {
    fn as_str(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Email => "email",
            Self::Letter => "letter",
            Self::Phone => "phone",
        }
    }
}

/// How the requester's identity is verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    /// Signed in (only for `online`).
    SignedIn,
    /// An email from the address on file.
    EmailFromAddressOnFile,
    /// Questions only the person can answer.
    KnowledgeBased,
    /// An identity document checked.
    DocumentChecked,
}

impl Verification {
    fn as_str(self) -> &'static str {
        match self {
            Self::SignedIn => "signed_in",
            Self::EmailFromAddressOnFile => "email_from_address_on_file",
            Self::KnowledgeBased => "knowledge_based",
            Self::DocumentChecked => "document_checked",
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalReason {
    /// The requester could not be verified as the person.
    IdentityNotVerified,
    /// Nothing is held about the person.
    NoDataHeld,
    /// A law requires keeping what the request is about.
    LegalObligation,
    /// The request is manifestly unfounded or excessive.
    ManifestlyUnfounded,
    /// The same request is open already.
    Duplicate,
}

impl RefusalReason {
    fn as_str(self) -> &'static str {
        match self {
            Self::IdentityNotVerified => "identity_not_verified",
            Self::NoDataHeld => "no_data_held",
            Self::LegalObligation => "legal_obligation",
            Self::ManifestlyUnfounded => "manifestly_unfounded",
            Self::Duplicate => "duplicate",
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestState {
    /// Entered; the requester not yet verified.
    Received,
    /// The requester verified.
    Verified,
    /// Done.
    Completed,
    /// Refused, for `reason`.
    Refused,
}

/// A request received from a person (`POST /v1/requests`). It takes no free text: nothing a
/// requester wrote is stored.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// What the person asks for: a kind the policy gives `[rights] respond_days`.
    pub kind: RequestKind,
    /// The subject it is about, as `POST /v1/subjects` returned it; required but for
    /// `california-disclosures`.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub subject: Option<String>,
    /// How it arrived.
    pub channel: RequestChannel,
    /// How the requester's identity is verified: `signed_in` exactly for `online`.
    pub verification: Verification,
    /// The purpose objected to: required for `object`, refused for every other kind.
    #[schema(value_type = Option<String>, max_length = 128)]
    pub purpose: Option<Name>,
}

/// A refusal (`POST /v1/requests/{id}/refuse`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refusal {
    /// Why.
    pub reason: RefusalReason,
}

/// A request and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestOut {
    /// Its id.
    #[schema(format = Uuid)]
    pub request: String,
    /// What the person asks for.
    pub kind: RequestKind,
    /// The subject it is about.
    #[schema(format = Uuid)]
    pub subject: Option<String>,
    /// How it arrived.
    pub channel: RequestChannel,
    /// How the requester's identity is verified.
    pub verification: Verification,
    /// The purpose objected to.
    pub purpose: Option<String>,
    /// Where it stands.
    pub state: RequestState,
    /// Why it was refused.
    pub reason: Option<RefusalReason>,
    /// When it was received, UTC.
    #[schema(format = DateTime)]
    pub received: String,
    /// When it is due: received + the policy's `respond_days` for its kind, UTC.
    #[schema(format = DateTime)]
    pub due: String,
    /// Open and past due.
    pub overdue: bool,
    /// When its state last changed, UTC.
    #[schema(format = DateTime)]
    pub updated: String,
    /// The staff accessor (or `operator`) that entered it.
    pub created_by: String,
    /// The staff accessor (or `operator`) that last changed its state.
    pub updated_by: String,
}

/// One page of requests, due soonest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestsOut {
    /// The requests.
    pub requests: Vec<RequestOut>,
    /// Present when the page was full: the `after` of the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

fn kind_of(s: &str) -> RequestKind {
    match s {
        "access" => RequestKind::Access,
        "export" => RequestKind::Export,
        "rectify" => RequestKind::Rectify,
        "deactivate" => RequestKind::Deactivate,
        "erase" => RequestKind::Erase,
        "object" => RequestKind::Object,
        _ => RequestKind::CaliforniaDisclosures,
    }
}

impl From<PersonRequest> for RequestOut {
    fn from(r: PersonRequest) -> Self {
        // The vault stores only the keywords these enums spell.
        let channel = match r.channel.as_str() {
            "online" => RequestChannel::Online,
            "email" => RequestChannel::Email,
            "letter" => RequestChannel::Letter,
            _ => RequestChannel::Phone,
        };
        let verification = match r.verification.as_str() {
            "signed_in" => Verification::SignedIn,
            "email_from_address_on_file" => Verification::EmailFromAddressOnFile,
            "knowledge_based" => Verification::KnowledgeBased,
            _ => Verification::DocumentChecked,
        };
        let state = match r.state.as_str() {
            "received" => RequestState::Received,
            "verified" => RequestState::Verified,
            "completed" => RequestState::Completed,
            _ => RequestState::Refused,
        };
        let reason = r.reason.as_deref().map(|x| match x {
            "identity_not_verified" => RefusalReason::IdentityNotVerified,
            "no_data_held" => RefusalReason::NoDataHeld,
            "legal_obligation" => RefusalReason::LegalObligation,
            "manifestly_unfounded" => RefusalReason::ManifestlyUnfounded,
            _ => RefusalReason::Duplicate,
        });
        Self {
            request: r.id,
            kind: kind_of(&r.kind),
            subject: r.subject,
            channel,
            verification,
            purpose: r.purpose,
            state,
            reason,
            received: r.received,
            due: r.due,
            overdue: r.overdue,
            updated: r.updated,
            created_by: r.created_by,
            updated_by: r.updated_by,
        }
    }
}

/// `POST /v1/requests` — enters a request received from a person; staff only. Ledgered.
#[utoipa::path(operation_id = "createRequest", post, path = "/v1/requests", tag = "requests",
    request_body = NewRequest,
    responses(
        (status = 201, description = "entered, `received`, with its due time", body = RequestOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn create(
    caller: Caller,
    JsonBody(body): JsonBody<NewRequest>,
) -> Result<(StatusCode, Json<RequestOut>), Problem> {
    let input = RequestInput {
        kind: body.kind.as_str().to_string(),
        subject: body.subject,
        channel: body.channel.as_str().to_string(),
        verification: body.verification.as_str().to_string(),
        purpose: body.purpose.map(|p| p.0),
    };
    let out = caller.run(move |v, a| v.create_request(a, &input)).await?;
    Ok((StatusCode::CREATED, Json(out.into())))
}

/// `GET /v1/requests?state=open|overdue|all[&limit=N][&after=CURSOR]` — one page of
/// requests, due soonest first (open when no `state` is given; 100 a page unless said, 1,000
/// at most); `next`, when present, is the `after` of the following page. Staff only.
/// Ledgered.
#[utoipa::path(operation_id = "listRequests", get, path = "/v1/requests", tag = "requests",
    params(
        ("state" = Option<String>, Query, pattern = "^(open|overdue|all)$", description = "`open` (received or verified; the default), `overdue` (open and past due) or `all`"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 1000, description = "requests per page (default 100)"),
        ("after" = Option<String>, Query, pattern = "^[0-9]{1,18}_[0-9a-f-]{1,64}$", description = "the `next` of the previous page"),
    ),
    responses(
        (status = 200, description = "the requests", body = RequestsOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn list(caller: Caller, RawQuery(raw): RawQuery) -> Result<Json<RequestsOut>, Problem> {
    let mut q = input::Query::parse(raw.as_deref())?;
    let which = match q.opt("state").as_deref() {
        None | Some("open") => RequestList::Open,
        Some("overdue") => RequestList::Overdue,
        Some("all") => RequestList::All,
        Some(_) => {
            return Err(Problem::field(
                "invalid_query",
                "state",
                "`state` is `open`, `overdue` or `all`",
            ));
        }
    };
    let limit = q.limit(MAX_REQUESTS_LISTED)?;
    let after = q.opt("after");
    q.finish()?;
    let out = caller
        .run(move |v, a| v.requests_page(a, which, after.as_deref(), limit))
        .await?;
    Ok(Json(RequestsOut {
        requests: out.requests.into_iter().map(Into::into).collect(),
        next: out.next,
    }))
}

/// `GET /v1/requests/{id}` — one request; staff only. Ledgered.
#[utoipa::path(operation_id = "showRequest", get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, format = Uuid, description = "the request id, as `POST /v1/requests` returned it")),
    responses(
        (status = 200, description = "the request", body = RequestOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<RequestOut>, Problem> {
    let out = caller.run(move |v, a| v.request(a, &id)).await?;
    Ok(Json(out.into()))
}

/// `POST /v1/requests/{id}/verify` — the requester's identity was verified, by the method
/// the request names: `received` → `verified`. Ledgered.
#[utoipa::path(operation_id = "verifyRequest", post, path = "/v1/requests/{id}/verify", tag = "requests",
    params(("id" = String, Path, format = Uuid, description = "the request id")),
    responses(
        (status = 200, description = "verified", body = RequestOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn verify(caller: Caller, Path(id): Path<String>) -> Result<Json<RequestOut>, Problem> {
    let out = caller.run(move |v, a| v.verify_request(a, &id)).await?;
    Ok(Json(out.into()))
}

/// What completing a request may carry: a `rectify` request's corrected values.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Completing {
    /// For a `rectify` request (and only for one): category → corrected value, at least
    /// one, each a category the vault holds for the person.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(nullable = false)]
    pub data: Option<DataMap>,
}

/// A completed request, and for an `access` or `export` request the person's export.
#[derive(Debug, Serialize, ToSchema)]
pub struct Completed {
    /// The request.
    #[serde(flatten)]
    pub request: RequestOut,
    /// For an `access` or `export` request: everything held about the person
    /// (`docs/export.md`), for staff to send by the channel the request came by.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub export: Option<ExportDocument>,
}

/// `POST /v1/requests/{id}/complete` — completes a verified request: an `erase` request
/// erases the subject, `deactivate` deactivates it, `object` records the objection, an
/// `access` or `export` request answers with the person's export, a `rectify` request
/// applies the corrected values its body gives (`{"data": {category: value}}`; no other
/// kind takes a body). Ledgered.
#[utoipa::path(operation_id = "completeRequest", post, path = "/v1/requests/{id}/complete", tag = "requests",
    params(("id" = String, Path, format = Uuid, description = "the request id")),
    request_body(content = Completing, description = "only for a `rectify` request: the corrected values"),
    responses(
        (status = 200, description = "completed", body = Completed),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn complete(
    caller: Caller,
    Path(id): Path<String>,
    OptionalJsonBody(body): OptionalJsonBody<Completing>,
) -> Result<impl axum::response::IntoResponse, Problem> {
    let data = body.and_then(|b| b.data).map(|d| d.0);
    let (done, key) = caller
        .run(move |v, a| {
            let c = v.complete_request_with(a, &id, data.as_ref())?;
            Ok((c, v.ledger_verifier_key()))
        })
        .await?;
    // An export is personal information: never kept by a cache on the way.
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(Completed {
            request: done.request.into(),
            export: done.export.map(|e| ExportDocument::new(e, key)),
        }),
    ))
}

/// `POST /v1/requests/{id}/refuse {reason}` — refuses an open request. Ledgered, with the
/// reason.
#[utoipa::path(operation_id = "refuseRequest", post, path = "/v1/requests/{id}/refuse", tag = "requests",
    params(("id" = String, Path, format = Uuid, description = "the request id")),
    request_body = Refusal,
    responses(
        (status = 200, description = "refused", body = RequestOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn refuse(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<Refusal>,
) -> Result<Json<RequestOut>, Problem> {
    let reason = body.reason.as_str();
    let out = caller
        .run(move |v, a| v.refuse_request(a, &id, reason))
        .await?;
    Ok(Json(out.into()))
}
