//! `/v1/instruments`: legal instruments as records (issue 12). Staff register a court order,
//! subpoena, authority request, fraud case or purchaser authority and get its id; a read or
//! decision for a purpose that requires a reference names that id as its `reference`
//! (`docs/vault.md`, "Legal instruments").

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custos_vault::{Instrument, InstrumentInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::{JsonBody, Name, Names};
use crate::problem::Problem;

/// Kind of legal instrument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstrumentKind {
    /// An order of a court.
    CourtOrder,
    /// A subpoena.
    Subpoena,
    /// A request of a regulator, the police or another authority.
    AuthorityRequest,
    /// A fraud or safety case.
    FraudCase,
    /// A purchaser's verified identity and authority over a service it bought.
    PurchaserAuthority,
}

impl InstrumentKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::CourtOrder => "court_order",
            Self::Subpoena => "subpoena",
            Self::AuthorityRequest => "authority_request",
            Self::FraudCase => "fraud_case",
            Self::PurchaserAuthority => "purchaser_authority",
        }
    }
}

/// A legal instrument to register (`POST /v1/instruments`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InstrumentRequest {
    /// What it is.
    pub kind: InstrumentKind,
    /// Who issued it (a court, an authority, the fraud team), as written on it.
    #[schema(min_length = 1, max_length = 128)]
    pub issuer: String,
    /// The day it was issued (not after tomorrow).
    #[schema(value_type = String, format = Date)]
    pub issued: String,
    /// SHA-256 of the document, hex.
    #[schema(pattern = "^[0-9a-fA-F]{64}$")]
    pub document_sha256: String,
    /// The subjects it covers: ids the vault holds.
    #[schema(min_items = 1, max_items = 1000, inline)]
    pub subjects: Vec<SubjectRef>,
    /// The categories it covers.
    #[schema(value_type = Vec<Name>, min_items = 1, inline)]
    pub categories: Names,
    /// When it expires: in the future, after the issue date.
    #[schema(value_type = String, format = DateTime)]
    pub expires: String,
}

/// A subject's id, as `POST /v1/subjects` returned it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(value_type = String, format = Uuid)]
pub struct SubjectRef(pub String);

/// A registered legal instrument.
#[derive(Debug, Serialize, ToSchema)]
pub struct InstrumentOut {
    /// Its id: the `reference` of a read or decision for a legal purpose.
    #[schema(format = Uuid)]
    pub id: String,
    /// What it is.
    pub kind: InstrumentKind,
    /// Who issued it.
    pub issuer: String,
    /// The day it was issued.
    #[schema(format = Date)]
    pub issued: String,
    /// SHA-256 of the document, lowercase hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub document_sha256: String,
    /// The subjects it covers (an erased one is no longer listed).
    #[schema(inline)]
    pub subjects: Vec<SubjectOut>,
    /// The categories it covers.
    pub categories: Vec<String>,
    /// When it expires, UTC.
    #[schema(format = DateTime)]
    pub expires: String,
    /// Whether it has expired.
    pub expired: bool,
    /// The accessor that registered it, or `operator`.
    pub registered_by: String,
    /// When it was registered, UTC.
    #[schema(format = DateTime)]
    pub registered: String,
}

/// A subject's id.
#[derive(Debug, Serialize, ToSchema)]
#[schema(value_type = String, format = Uuid)]
pub struct SubjectOut(pub String);

impl From<Instrument> for InstrumentOut {
    fn from(i: Instrument) -> Self {
        let kind = match i.kind.as_str() {
            "court_order" => InstrumentKind::CourtOrder,
            "subpoena" => InstrumentKind::Subpoena,
            "authority_request" => InstrumentKind::AuthorityRequest,
            "fraud_case" => InstrumentKind::FraudCase,
            _ => InstrumentKind::PurchaserAuthority,
        };
        Self {
            id: i.id,
            kind,
            issuer: i.issuer,
            issued: i.issued,
            document_sha256: i.document_sha256,
            subjects: i.subjects.into_iter().map(SubjectOut).collect(),
            categories: i.categories,
            expires: i.expires,
            expired: i.expired,
            registered_by: i.registered_by,
            registered: i.registered,
        }
    }
}

/// `POST /v1/instruments` — registers a legal instrument; only staff (an accessor the policy
/// lets pursue a purpose that accepts the kind, acting for no tenant or external recipient)
/// may. Ledgered, one entry per subject covered.
#[utoipa::path(operation_id = "registerInstrument", post, path = "/v1/instruments", tag = "instruments",
    request_body = InstrumentRequest,
    responses(
        (status = 201, description = "registered; `id` is the reference to name", body = InstrumentOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn register(
    caller: Caller,
    JsonBody(body): JsonBody<InstrumentRequest>,
) -> Result<(StatusCode, Json<InstrumentOut>), Problem> {
    let input = InstrumentInput {
        kind: body.kind.as_str().to_string(),
        issuer: body.issuer,
        issued: body.issued,
        document_sha256: body.document_sha256,
        subjects: body.subjects.into_iter().map(|s| s.0).collect(),
        categories: body.categories.strings(),
        expires: body.expires,
    };
    let out = caller
        .run(move |v, a| v.register_instrument(a, &input))
        .await?;
    Ok((StatusCode::CREATED, Json(out.into())))
}

/// `GET /v1/instruments/{id}` — a registered instrument, for the accessor that registered it
/// and staff; to anyone else, as to an id never registered, `404 instrument_not_found`.
#[utoipa::path(operation_id = "showInstrument", get, path = "/v1/instruments/{id}", tag = "instruments",
    params(("id" = String, Path, format = Uuid, description = "the instrument id, as `POST /v1/instruments` returned it")),
    responses(
        (status = 200, description = "the instrument", body = InstrumentOut),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<InstrumentOut>, Problem> {
    let out = caller.run(move |v, a| v.instrument(a, &id)).await?;
    Ok(Json(out.into()))
}
