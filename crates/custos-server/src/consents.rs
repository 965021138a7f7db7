//! `/v1/subjects/{id}/consents` and `/v1/subjects/{id}/preferences` (issue 14): a service
//! holding a person records the person's choices — consent given or withdrawn, objection
//! made or withdrawn — each with its evidence and a signed consent receipt, and reads them
//! back; the person's communication preferences as topics. To a key that does not hold the
//! person, the person does not exist (`404 subject_not_found`) (`docs/vault.md`, "Consent
//! and receipts").

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::Path;
use axum::http::StatusCode;
use custos_vault::{Consent, ConsentChange, ConsentInput, Preference};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::input::{self, JsonBody, Name};
use crate::problem::Problem;
use crate::{AppState, Caller};

/// A person's choice about a purpose (`POST /v1/subjects/{id}/consents`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentRequest {
    /// The purpose: its basis must be `consent` (opt-in) or `opt_out`.
    pub purpose: Name,
    /// The recipient the choice is about, for a purpose that discloses to one (partner
    /// marketing).
    #[serde(default, deserialize_with = "crate::input::present")]
    pub recipient: Option<Name>,
    /// Yes (consent given, or an objection withdrawn) or no (consent withdrawn, or an
    /// objection).
    pub given: bool,
    /// How the person expressed it: `checkbox_unticked`, `double_opt_in`,
    /// `verbal_recorded_by_staff`, `written`, `settings_page`, `one_click_unsubscribe`,
    /// `gpc_signal`, `email_request` or `letter`. Silence, a pre-ticked box or inactivity
    /// is never consent.
    pub method: Name,
    /// The notice version the person was shown: the policy's current version.
    pub notice: Name,
}

/// Whether a record is about an opt-in purpose or an opt-out one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConsentKind {
    /// Consent to an opt-in purpose.
    Consent,
    /// Objection to an opt-out purpose.
    Objection,
}

/// A recorded choice and its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentOut {
    /// The purpose.
    pub purpose: String,
    /// The recipient it is about, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    /// Consent (opt-in purpose) or objection (opt-out purpose).
    pub kind: ConsentKind,
    /// Yes (consent given, or objection withdrawn) or no.
    pub given: bool,
    /// How it was expressed.
    pub method: String,
    /// The notice version shown.
    pub notice: String,
    /// SHA-256 of the notice shown (the HTML `/privacy` serves), hex; absent for a record
    /// kept before evidence was.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub notice_sha256: Option<String>,
    /// Who recorded it: the accessor, or `person`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// When, UTC.
    #[schema(format = DateTime)]
    pub time: String,
    /// The receipt's `consentReceiptID`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = Uuid)]
    pub receipt_id: Option<String>,
    /// The signed receipt (compact JWS), as given when it was recorded (in a list; beside the
    /// record in the answer that recorded it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receipt: Option<String>,
}

impl From<Consent> for ConsentOut {
    fn from(c: Consent) -> Self {
        Self {
            purpose: c.purpose,
            recipient: c.recipient,
            kind: if c.kind == "objection" {
                ConsentKind::Objection
            } else {
                ConsentKind::Consent
            },
            given: c.given,
            method: c.method,
            notice: c.notice,
            notice_sha256: c.notice_sha256,
            actor: c.actor,
            time: c.time,
            receipt_id: c.receipt_id,
            receipt: c.receipt,
        }
    }
}

/// A recorded change and its receipt.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentAnswer {
    /// The record.
    pub consent: ConsentOut,
    /// The consent receipt (Kantara v1.1 fields), a compact JWS signed EdDSA with a key of
    /// `/.well-known/jwks.json`; `custos receipt verify` checks one offline.
    pub receipt: String,
}

impl From<ConsentChange> for ConsentAnswer {
    fn from(c: ConsentChange) -> Self {
        let mut consent = ConsentOut::from(c.consent);
        // Given once, beside the record.
        consent.receipt = None;
        Self {
            consent,
            receipt: c.receipt,
        }
    }
}

/// A subject's recorded choices, oldest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConsentList {
    /// The subject.
    #[schema(format = Uuid)]
    pub subject: String,
    /// Its consent and objection records, oldest first.
    pub consents: Vec<ConsentOut>,
}

const SUBJECT: &str = "the subject id, as `POST /v1/subjects` returned it";

/// `POST /v1/subjects/{id}/consents` — records a person's choice about a purpose, with its
/// evidence, and returns the record and its signed receipt. Only a key of a service holding
/// the person may; the next decision reads it.
#[utoipa::path(operation_id = "recordConsent", post, path = "/v1/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, format = Uuid, description = SUBJECT)),
    request_body = ConsentRequest,
    responses(
        (status = 201, description = "recorded; ledgered before it was stored", body = ConsentAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn record(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ConsentRequest>,
) -> Result<(StatusCode, Json<ConsentAnswer>), Problem> {
    let subject = input::subject_id(&id)?;
    let choice = ConsentInput {
        purpose: body.purpose.0,
        recipient: body.recipient.map(|r| r.0),
        given: body.given,
        method: body.method.0,
        notice: body.notice.0,
    };
    // The change is checked, signed and queued without waiting (on the request's thread
    // when the store is embedded); the answer comes when its group commit is durable (no
    // thread waits through the fsyncs).
    let (done, answer) = AppState::begun();
    caller
        .run_short(move |v, a| v.begin_consent(a, &subject, &choice, done))
        .await?;
    Ok((StatusCode::CREATED, Json(answer.await?.into())))
}

/// `GET /v1/subjects/{id}/consents` — the person's consent and objection records, each with
/// its evidence and receipt; for a key of a service holding the person.
#[utoipa::path(operation_id = "listConsents", get, path = "/v1/subjects/{id}/consents", tag = "consents",
    params(("id" = String, Path, format = Uuid, description = SUBJECT)),
    responses(
        (status = 200, description = "the records, oldest first", body = ConsentList),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn list(caller: Caller, Path(id): Path<String>) -> Result<Json<ConsentList>, Problem> {
    let subject = input::subject_id(&id)?;
    let s = subject.clone();
    let consents = caller.run(move |v, a| v.consents(a, &s)).await?;
    Ok(Json(ConsentList::new(
        subject.as_str().to_string(),
        consents,
    )))
}

impl ConsentList {
    /// The list of `subject`'s records.
    pub fn new(subject: String, consents: Vec<Consent>) -> Self {
        Self {
            subject,
            consents: consents.into_iter().map(ConsentOut::from).collect(),
        }
    }
}

/// A communication topic and the person's choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct TopicOut {
    /// The purpose.
    pub purpose: String,
    /// Its name in the notice.
    pub name: String,
    /// `consent` (off until the person says yes) or `opt_out` (on until they say no).
    pub basis: String,
    /// On or off.
    pub on: bool,
}

impl From<Preference> for TopicOut {
    fn from(p: Preference) -> Self {
        Self {
            purpose: p.purpose,
            name: p.name,
            basis: p.basis,
            on: p.on,
        }
    }
}

/// A person's communication preferences.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preferences {
    /// The subject.
    #[schema(format = Uuid)]
    pub subject: String,
    /// Each topic of the policy, on or off.
    pub topics: Vec<TopicOut>,
    /// The records a `PUT` made (one per topic it changed); empty for a `GET`.
    pub changes: Vec<ConsentAnswer>,
}

impl Preferences {
    /// `subject`'s topics as they are, and the changes that made them so.
    pub fn new(subject: String, topics: Vec<Preference>, changes: Vec<ConsentChange>) -> Self {
        Self {
            subject,
            topics: topics.into_iter().map(TopicOut::from).collect(),
            changes: changes.into_iter().map(ConsentAnswer::from).collect(),
        }
    }
}

/// Preferences to set (`PUT /v1/subjects/{id}/preferences`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferencesRequest {
    /// Topic purpose → on (`true`) or off (`false`); at least one.
    #[schema(value_type = BTreeMap<String, bool>)]
    pub topics: BTreeMap<Name, bool>,
}

/// `GET /v1/subjects/{id}/preferences` — each communication topic of the policy, on or off,
/// and its basis.
#[utoipa::path(operation_id = "readPreferences", get, path = "/v1/subjects/{id}/preferences", tag = "consents",
    params(("id" = String, Path, format = Uuid, description = SUBJECT)),
    responses(
        (status = 200, description = "the topics", body = Preferences),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn preferences(
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Preferences>, Problem> {
    let subject = input::subject_id(&id)?;
    let s = subject.clone();
    let topics = caller.run(move |v, a| v.preferences(a, &s)).await?;
    Ok(Json(Preferences::new(
        subject.as_str().to_string(),
        topics,
        Vec::new(),
    )))
}

/// `PUT /v1/subjects/{id}/preferences` — sets topics on or off (method `settings_page`, the
/// current notice); each topic that changes becomes a consent or objection record with its
/// receipt.
#[utoipa::path(operation_id = "setPreferences", put, path = "/v1/subjects/{id}/preferences", tag = "consents",
    params(("id" = String, Path, format = Uuid, description = SUBJECT)),
    request_body = PreferencesRequest,
    responses(
        (status = 200, description = "set; the topics as they are now and the records made", body = Preferences),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn set_preferences(
    caller: Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<PreferencesRequest>,
) -> Result<Json<Preferences>, Problem> {
    let subject = input::subject_id(&id)?;
    let s = subject.clone();
    let topics: BTreeMap<String, bool> = body.topics.into_iter().map(|(k, v)| (k.0, v)).collect();
    let (changes, now) = caller
        .run(move |v, a| {
            let changes = v.set_preferences(a, &s, &topics, "settings_page")?;
            Ok((changes, v.preferences(a, &s)?))
        })
        .await?;
    Ok(Json(Preferences::new(
        subject.as_str().to_string(),
        now,
        changes,
    )))
}
