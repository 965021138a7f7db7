//! RFC 9457 problem documents: every error the API answers, with a stable `code`, mapped to
//! its HTTP status in ONE table ([`CODES`]).
//!
//! **Architecture invariant:** a client error names what was wrong (and the JSON field, when
//! there is one); an internal error says nothing internal. Its detail goes only to the log,
//! under the request id (see [`crate::observe`]), and never carries personal information: the
//! vault's error messages name no value by design.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::Error as VaultError;
use serde_json::{Map, Value, json};

/// Media type of a problem document.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// Base of the `type` URIs: a code's documentation anchor.
pub const TYPE_BASE: &str = "https://custos.invalid/problems/";

/// Every code the API answers with, its HTTP status and its title. The one place a code is
/// mapped to a status; `/openapi.json` lists the same table.
pub const CODES: &[(&str, u16, &str)] = &[
    // Authentication.
    ("missing_api_key", 401, "an api key is required"),
    ("invalid_api_key", 401, "the api key is unknown or revoked"),
    (
        "session_not_accepted",
        401,
        "a person's session reaches /v1/me only; this route takes an api key",
    ),
    ("missing_session", 401, "a person's session is required"),
    (
        "invalid_session",
        401,
        "the session is unknown, expired or signed out",
    ),
    ("code_invalid", 401, "the sign-in code is wrong or was used"),
    ("code_expired", 401, "the sign-in code expired"),
    (
        "sign_in_too_old",
        401,
        "this act needs a sign-in of the last 10 minutes",
    ),
    (
        "code_exhausted",
        401,
        "the sign-in code was tried too many times",
    ),
    ("rate_limited", 429, "too many requests; wait and try again"),
    // The policy refuses the whole request.
    (
        "purpose_not_allowed_for_accessor",
        403,
        "the policy does not let this accessor pursue this purpose",
    ),
    (
        "recipient_not_allowed_for_purpose",
        403,
        "the policy lets this recipient receive nothing for this purpose",
    ),
    (
        "service_not_allowed_for_accessor",
        403,
        "the policy does not let this accessor collect in this service's name",
    ),
    (
        "tenant_mismatch",
        403,
        "this key acts for one tenant and collects only its people",
    ),
    (
        "tenant_required",
        403,
        "this accessor acts for a business customer; its key must name a tenant",
    ),
    (
        "tls_required",
        403,
        "the policy lets these categories cross the network only over tls",
    ),
    (
        "instrument_not_allowed",
        403,
        "this accessor may not register legal instruments of this kind",
    ),
    // Not found.
    ("subject_not_found", 404, "no such subject"),
    ("not_found", 404, "no such resource"),
    ("instrument_not_found", 404, "no such legal instrument"),
    (
        "method_not_allowed",
        405,
        "method not allowed on this resource",
    ),
    // Malformed requests.
    ("invalid_json", 400, "the body is not valid json"),
    (
        "duplicate_field",
        400,
        "the body gives a field or key twice",
    ),
    ("duplicate_item", 400, "a list names the same element twice"),
    ("invalid_field", 400, "a field has the wrong type or shape"),
    ("missing_field", 400, "a required field is missing"),
    (
        "unknown_field",
        400,
        "the body has a field this route does not take",
    ),
    ("invalid_query", 400, "the query string is malformed"),
    (
        "name_too_long",
        400,
        "a name is longer than any the policy declares",
    ),
    ("invalid_email", 400, "an email address is `local@domain`"),
    ("invalid_code", 400, "a sign-in code is 8 digits"),
    (
        "invalid_subject_id",
        400,
        "a subject id is a lowercase uuid",
    ),
    ("body_too_large", 413, "the body is too large"),
    (
        "mail_too_large",
        413,
        "a message's body holds at most 65536 bytes",
    ),
    ("uri_too_long", 414, "the request's uri is too long"),
    (
        "value_too_large",
        413,
        "a collected value holds at most 8192 bytes",
    ),
    (
        "unsupported_media_type",
        415,
        "the body must be sent as application/json",
    ),
    (
        "too_many_records",
        413,
        "one append adds at most 1000 records",
    ),
    (
        "record_too_large",
        413,
        "a record value holds at most 65536 bytes",
    ),
    // Names the policy does not declare, and collection refusals.
    ("purpose_required", 422, "state the purpose"),
    (
        "category_not_held",
        422,
        "the vault holds no value of this category for this person",
    ),
    ("invalid_value", 422, "a value is empty or too large"),
    (
        "unknown_accessor",
        422,
        "the policy declares no such accessor",
    ),
    (
        "unknown_purpose",
        422,
        "the policy declares no such purpose",
    ),
    (
        "unknown_category",
        422,
        "the policy declares no such category",
    ),
    (
        "unknown_recipient",
        422,
        "the policy declares no such recipient",
    ),
    (
        "unknown_collection",
        422,
        "the policy declares no such record collection",
    ),
    (
        "unknown_service",
        422,
        "the policy declares no such service",
    ),
    ("unknown_role", 422, "the service has no such role"),
    (
        "unknown_notice_version",
        422,
        "the notice version is not the policy's",
    ),
    ("no_data", 422, "the collection carries no data"),
    (
        "category_not_declared_for_role",
        422,
        "the policy does not collect this category for this service and role",
    ),
    (
        "purpose_not_stated_for_role",
        422,
        "the policy states no such purpose for this service and role",
    ),
    (
        "subject_under_minimum_age",
        422,
        "the policy does not collect personal information from people under its minimum age",
    ),
    (
        "transient_collection",
        422,
        "records of this collection are never stored",
    ),
    (
        "collection_refused",
        422,
        "the policy refused the collection",
    ),
    (
        "collection_not_kept_for_subject",
        422,
        "no role the subject was collected in keeps this record collection",
    ),
    (
        "purpose_not_consent_based",
        422,
        "consent is given to purposes whose basis is consent",
    ),
    (
        "consent_not_applicable",
        422,
        "the purpose does not rest on consent; there is nothing to consent to or object to",
    ),
    (
        "consent_not_freely_given",
        422,
        "silence, a pre-ticked box or inactivity is never consent",
    ),
    (
        "recipient_not_applicable",
        422,
        "the choice names a recipient the purpose does not disclose to",
    ),
    (
        "unknown_topic",
        422,
        "not one of the policy's communication topics",
    ),
    (
        "invalid_method",
        422,
        "the consent method is not one that counts as consent",
    ),
    (
        "not_an_identifier",
        422,
        "the category is not one people are found by",
    ),
    ("subject_not_erased", 422, "the subject is not erased"),
    ("invalid_head", 422, "a ledger head is `SEQ:HASH`"),
    (
        "seq_out_of_range",
        422,
        "the ledger's tree of that size holds no entry of that seq",
    ),
    (
        "tree_size_too_large",
        422,
        "the tree size is larger than the ledger's tree",
    ),
    (
        "sizes_out_of_order",
        422,
        "the earlier tree size is larger than the later one",
    ),
    ("invalid_checkpoint", 422, "not a signed checkpoint"),
    (
        "checkpoint_signature",
        422,
        "the checkpoint is not signed by this vault's ledger key",
    ),
    (
        "checkpoint_past_end",
        422,
        "the checkpoint names more entries than the ledger holds",
    ),
    (
        "checkpoint_inconsistent",
        422,
        "the ledger does not extend the checkpoint",
    ),
    ("invalid_origin", 422, "a ledger origin is printable ASCII"),
    (
        "tenant_not_bound",
        422,
        "this accessor acts for no business customer; its keys name no tenant",
    ),
    (
        "invalid_tenant",
        422,
        "a tenant id is 1 to 128 bytes without control characters",
    ),
    // Legal instruments.
    (
        "invalid_instrument_kind",
        422,
        "no such kind of legal instrument",
    ),
    (
        "invalid_issuer",
        422,
        "an issuer is named in 1 to 128 characters",
    ),
    ("invalid_date", 422, "a date or date-time is not valid"),
    (
        "invalid_expiry",
        422,
        "an instrument expires in the future, after it was issued",
    ),
    (
        "invalid_document_hash",
        422,
        "a document hash is the sha-256 of the document, 64 hex digits",
    ),
    ("categories_required", 422, "name at least one category"),
    ("subjects_required", 422, "name at least one subject"),
    (
        "too_many_subjects",
        422,
        "an instrument covers at most 1000 subjects",
    ),
    ("unknown_subject", 422, "no such subject"),
    ("invalid_request", 422, "the request is not valid"),
    // People's requests, as staff handle them.
    (
        "channel_not_offered",
        422,
        "the policy's `unsubscribe` right does not offer this channel",
    ),
    (
        "not_staff",
        403,
        "only staff (the policy's `[rights] staff`) handle people's requests",
    ),
    ("request_not_found", 404, "no such request"),
    ("request_closed", 409, "the request is completed or refused"),
    (
        "request_not_verified",
        409,
        "verify the requester's identity before completing the request",
    ),
    (
        "request_already_verified",
        409,
        "the requester's identity is verified already",
    ),
    ("invalid_request_kind", 422, "no such kind of request"),
    (
        "request_kind_not_offered",
        422,
        "the policy gives this kind of request no deadline, so takes none",
    ),
    ("invalid_channel", 422, "no such request channel"),
    (
        "invalid_verification",
        422,
        "no such verification method, or not one for this channel",
    ),
    (
        "subject_required",
        422,
        "this kind of request names the subject it is about",
    ),
    (
        "purpose_not_expected",
        422,
        "only an objection names a purpose",
    ),
    ("invalid_refusal_reason", 422, "no such refusal reason"),
    // Inbound mail (unsubscribe by email) and referrals.
    (
        "invalid_message",
        400,
        "the body is not an RFC 5322 message",
    ),
    (
        "missing_from",
        422,
        "the message has no sender address in `From`",
    ),
    (
        "referral_not_offered",
        403,
        "the policy gives this accessor no way to send referrals",
    ),
    (
        "exceeds_minimum_necessary",
        403,
        "the policy's limit for this accessor does not cover these categories",
    ),
    (
        "subject_deactivated",
        422,
        "the subject's account is deactivated",
    ),
    // Mailings and the one-click unsubscribe.
    (
        "mailing_not_allowed",
        403,
        "the policy does not let this accessor mail people for this purpose",
    ),
    (
        "not_a_mailing_purpose",
        422,
        "a mailing is for a purpose people can leave, which some accessor may mail for",
    ),
    (
        "invalid_subject",
        422,
        "a subject line is one line of 1 to 998 bytes",
    ),
    ("invalid_text", 422, "the text of a mailing is not valid"),
    ("invalid_html", 422, "the html of a mailing is not valid"),
    ("mailing_not_found", 404, "no such mailing"),
    (
        "no_email_category",
        422,
        "the policy declares no `contact.email` to mail people at",
    ),
    (
        "invalid_header",
        422,
        "a message's header field is not valid",
    ),
    (
        "invalid_public_url",
        500,
        "the server's public url (`--public-url`) is not valid",
    ),
    ("invalid_token", 404, "the unsubscribe link is not valid"),
    // Cookies, beacons and telemetry.
    ("unknown_cookie", 422, "the policy declares no such cookie"),
    (
        "cookie_required",
        422,
        "a required cookie cannot be refused: the site does not work without it",
    ),
    (
        "unknown_metric",
        422,
        "not one of the declared telemetry metrics",
    ),
    (
        "invalid_count",
        422,
        "a telemetry count or value is out of range",
    ),
    // The server.
    ("request_timeout", 503, "the request took too long"),
    ("internal_error", 500, "internal error"),
];

/// Status and title of a code; an unlisted code is an unprocessable request (the vault may
/// grow codes before this table does, and they are all about the request).
pub fn status_of(code: &str) -> (StatusCode, &'static str) {
    CODES.iter().find(|(c, _, _)| *c == code).map_or(
        (StatusCode::UNPROCESSABLE_ENTITY, "the request is not valid"),
        |(_, s, t)| {
            (
                StatusCode::from_u16(*s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                t,
            )
        },
    )
}

/// The problem document, as the OpenAPI document describes it (RFC 9457); [`Problem::body`]
/// writes it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// A URI naming the problem kind: the code under `https://custos.invalid/problems/`.
    pub r#type: String,
    /// The code's title.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What was wrong and how to fix it; never a value of the request.
    pub detail: String,
    /// The stable code (see [`CODES`]).
    pub code: String,
    /// The JSON field or query parameter at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub field: Option<String>,
    /// Every refusal, when there are several (a refused collection).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldErrorDoc>,
}

/// One of several refusals.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[schema(as = FieldError)]
pub struct FieldErrorDoc {
    /// The stable code.
    pub code: String,
    /// The JSON field at fault.
    pub field: String,
    /// What was wrong and how to fix it.
    pub detail: String,
}

/// One error of a request that has several (a refused collection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Stable code.
    pub code: String,
    /// The JSON field at fault.
    pub field: String,
    /// What was wrong and how to fix it.
    pub detail: String,
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct Problem {
    code: String,
    detail: String,
    field: Option<String>,
    errors: Vec<FieldError>,
    /// For internal errors: what the log gets; the client never sees it.
    internal: Option<String>,
}

/// What the log gets for an internal error; carried to the logging middleware in the
/// response's extensions, never in the body.
#[derive(Debug, Clone)]
pub(crate) struct InternalDetail(pub String);

impl Problem {
    /// A client error.
    pub fn new(code: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            detail: detail.into(),
            field: None,
            errors: Vec::new(),
            internal: None,
        }
    }

    /// A client error about one JSON field (or query parameter).
    pub fn field(code: &str, field: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut p = Self::new(code, detail);
        p.field = Some(field.into());
        p
    }

    /// An internal error: the client learns only that it happened.
    pub fn internal(log: impl Into<String>) -> Self {
        let mut p = Self::new(
            "internal_error",
            "the server failed; quote the x-request-id header when reporting it",
        );
        p.internal = Some(log.into());
        p
    }

    /// The stable code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// What is wrong, as the client is told.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        status_of(&self.code).0
    }

    /// The problem document.
    pub fn body(&self) -> Value {
        let (status, title) = status_of(&self.code);
        let mut m = Map::new();
        m.insert("type".into(), json!(format!("{TYPE_BASE}{}", self.code)));
        m.insert("title".into(), json!(title));
        m.insert("status".into(), json!(status.as_u16()));
        m.insert("detail".into(), json!(self.detail));
        m.insert("code".into(), json!(self.code));
        if let Some(f) = &self.field {
            m.insert("field".into(), json!(f));
        }
        if !self.errors.is_empty() {
            let errors: Vec<Value> = self
                .errors
                .iter()
                .map(|e| json!({"code": e.code, "field": e.field, "detail": e.detail}))
                .collect();
            m.insert("errors".into(), Value::Array(errors));
        }
        Value::Object(m)
    }
}

impl From<VaultError> for Problem {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::CollectionRefused(errors) => {
                let errors: Vec<FieldError> = errors
                    .into_iter()
                    .map(|e| FieldError {
                        code: e.code.to_string(),
                        field: e.field,
                        detail: e.message,
                    })
                    .collect();
                let first = errors.first().cloned();
                let mut p = match first {
                    Some(f) => {
                        let detail = if errors.len() == 1 {
                            f.detail.clone()
                        } else {
                            format!("{} (and {} more in `errors`)", f.detail, errors.len() - 1)
                        };
                        Self::field(&f.code, f.field, detail)
                    }
                    None => Self::new("collection_refused", "the policy refused the collection"),
                };
                p.errors = errors;
                p
            }
            // The vault names the categories; the operator's fix is the server's to tell.
            VaultError::Invalid { code, message } if code == custos_vault::TLS_REQUIRED => {
                Self::new(
                    code,
                    format!(
                        "{message}. Operator: serve HTTPS (`custos serve --tls-cert FILE --tls-key FILE`), or state the TLS-terminating proxy in front (`--tls-proxy CIDR`, which must set `X-Forwarded-Proto: https`)"
                    ),
                )
            }
            VaultError::Invalid { code, message } => Self::new(code, message),
            VaultError::InvalidField {
                code,
                field,
                message,
            } => Self::field(code, field, message),
            VaultError::SubjectNotFound => Self::new("subject_not_found", "no such subject"),
            VaultError::Unauthorized => {
                Self::new("invalid_api_key", "the api key is unknown or revoked")
            }
            // The vault's messages name no value; they still stay in the log.
            e @ (VaultError::Crypto(_) | VaultError::MasterKey(_) | VaultError::Storage(_)) => {
                Self::internal(format!("{}: {e}", e.code()))
            }
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut res = (status, self.body().to_string()).into_response();
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(detail) = self.internal {
            res.extensions_mut().insert(InternalDetail(detail));
        }
        res
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly on what they did not expect"
)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_error_tells_the_client_nothing_and_the_log_everything() {
        let p = Problem::from(VaultError::Storage("database error 53100 at /srv/x".into()));
        assert_eq!(p.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = p.body().to_string();
        assert!(!body.contains("53100") && !body.contains("/srv"), "{body}");
        assert_eq!(p.body()["code"], "internal_error");
        let res = p.into_response();
        let logged = res.extensions().get::<InternalDetail>().unwrap();
        assert!(logged.0.contains("storage_failure") && logged.0.contains("53100"));
    }

    #[test]
    fn every_code_has_one_status_and_a_lowercase_title() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, status, title) in CODES {
            assert!(seen.insert(*code), "`{code}` is listed twice");
            assert!(StatusCode::from_u16(*status).is_ok());
            assert!(!title.ends_with('.') && title.chars().next().unwrap().is_lowercase());
        }
        assert_eq!(
            status_of("unknown_purpose").0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
        assert_eq!(status_of("missing_api_key").0, StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn a_refused_collection_lists_every_field() {
        let p = Problem::from(VaultError::CollectionRefused(vec![
            custos_policy::CollectionError {
                code: "unknown_role",
                field: "role".into(),
                message: "no role `x`".into(),
            },
            custos_policy::CollectionError {
                code: "unknown_category",
                field: "data.y".into(),
                message: "unknown category `y`".into(),
            },
        ]));
        let b = p.body();
        assert_eq!(b["code"], "unknown_role");
        assert_eq!(b["field"], "role");
        assert_eq!(b["errors"][1]["field"], "data.y");
        assert_eq!(b["status"], 422);
    }
}
