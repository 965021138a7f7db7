//! `/v1/people/…`: a person signs in with a one-time code mailed to an address the vault
//! holds (`docs/vault.md`, "People"), and gets a session for `/v1/me…`.
//!
//! [`Person`] is the extractor of every `/v1/me…` route: it takes a session
//! (`Authorization: Bearer custos_session_…`) and nothing else — an API key is refused here,
//! as a session is refused on every accessor route (`auth.rs`). It reaches the person's own
//! subjects only ([`Person::subjects`]); [`Person::signed_in_at`] tells how recent the
//! sign-in is, for acts that need a fresh one.
//!
//! Rate limits: the vault allows an address [`custos_vault::vault::MAX_CODES_PER_HOUR`]
//! codes an hour; here each client has a token bucket over both sign-in routes
//! ([`crate::limits`]). Exceeding either answers `429 rate_limited` with `Retry-After`.

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use custos_vault::{SignInRequest, SubjectId, Vault};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::input::JsonBody;
use crate::limits::{Client, RateLimited};
use crate::problem::Problem;

/// `POST /v1/people/sign-in`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequestBody {
    /// The address the person gave a service (`contact.email`): `local@domain`, no spaces
    /// or control characters.
    #[schema(
        min_length = 3,
        max_length = 320,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
}

/// What `POST /v1/people/sign-in` answers, the same for every address.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignInAccepted {
    /// Always `accepted`: whether the address is known is not told.
    pub status: String,
    /// Seconds a code is valid once it arrives.
    pub expires_in: u64,
}

/// `POST /v1/people/sign-in/verify`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The address the code was mailed to.
    #[schema(
        min_length = 3,
        max_length = 320,
        pattern = r"^[^@\s\x00-\x1f\x7f-\x9f]+@[^@\s\x00-\x1f\x7f-\x9f]+$"
    )]
    pub email: String,
    /// The code, as mailed: 8 digits.
    #[schema(pattern = "^[0-9]{8}$")]
    pub code: String,
}

/// A session just opened.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionOut {
    /// The bearer token for `/v1/me…`, shown once.
    pub session: String,
    /// The subjects it reaches.
    #[schema(value_type = Vec<String>)]
    pub subjects: Vec<String>,
    /// When it expires, UTC.
    #[schema(format = DateTime)]
    pub expires: String,
}

/// `POST /v1/people/sign-in` — mails a one-time code to the address if the vault holds it;
/// answers `202` with the same body either way.
#[utoipa::path(operation_id = "signIn", post, path = "/v1/people/sign-in", tag = "people",
    request_body = SignInRequestBody,
    responses(
        (status = 202, description = "if the vault holds the address, a code is on its way", body = SignInAccepted),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn sign_in(
    client: Client,
    axum::extract::State(state): axum::extract::State<AppState>,
    JsonBody(body): JsonBody<SignInRequestBody>,
) -> Result<(StatusCode, Json<SignInAccepted>), Response> {
    client
        .take_from(state.clients())
        .map_err(IntoResponse::into_response)?;
    let answer = state
        .on_vault(move |v| v.request_sign_in(&body.email))
        .await
        .map_err(IntoResponse::into_response)?;
    match answer {
        SignInRequest::Queued => Ok((
            StatusCode::ACCEPTED,
            Json(SignInAccepted {
                status: "accepted".into(),
                expires_in: custos_vault::vault::CODE_TTL.as_secs(),
            }),
        )),
        SignInRequest::RateLimited { retry_after } => {
            Err(RateLimited::new(retry_after, "sign-in").into_response())
        }
    }
}

/// `POST /v1/people/sign-in/verify` — the code mailed, for a session.
#[utoipa::path(operation_id = "verifySignIn", post, path = "/v1/people/sign-in/verify", tag = "people",
    request_body = VerifyRequest,
    responses(
        (status = 200, description = "signed in", body = SessionOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn verify(
    client: Client,
    axum::extract::State(state): axum::extract::State<AppState>,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Json<SessionOut>, Response> {
    client
        .take_from(state.clients())
        .map_err(IntoResponse::into_response)?;
    let signed = state
        .on_vault(move |v| v.verify_sign_in(&body.email, &body.code))
        .await
        .map_err(IntoResponse::into_response)?;
    Ok(Json(SessionOut {
        subjects: signed.subjects.iter().map(|s| s.to_string()).collect(),
        expires: signed.expires.clone(),
        session: signed.session.clone(),
    }))
}

/// `POST /v1/people/sign-out` — ends the session.
#[utoipa::path(operation_id = "signOut", post, path = "/v1/people/sign-out", tag = "people",
    responses(
        (status = 204, description = "signed out: the session reaches nothing from now on"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("session" = [])))]
pub async fn sign_out(person: Person) -> Result<StatusCode, Problem> {
    person.run(|v, p| v.sign_out(p)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A signed-in person: the principal of every `/v1/me…` route, from a session token
/// (`Authorization: Bearer custos_session_…`). An API key is refused (`invalid_session`).
#[derive(Debug, Clone)]
pub struct Person {
    person: custos_vault::Person,
    state: AppState,
}

impl Person {
    /// The subjects the session reaches, and nothing else.
    pub fn subjects(&self) -> &[SubjectId] {
        self.person.subjects()
    }

    /// When the session signed in, ms since the epoch (`Person::signed_in_within` for
    /// "signed in in the last 10 minutes").
    pub fn signed_in_at(&self) -> i64 {
        self.person.signed_in_at()
    }

    /// The vault's principal.
    pub fn principal(&self) -> &custos_vault::Person {
        &self.person
    }

    /// Runs a vault operation for this person on a vault thread.
    pub async fn run<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault, &custos_vault::Person) -> custos_vault::Result<T> + Send + 'static,
    {
        let person = self.person.clone();
        self.state.on_vault(move |v| op(v, &person)).await
    }

    /// Runs a short vault operation for this person on the request's own thread when the
    /// store is embedded ([`AppState::on_vault_short`]).
    pub(crate) async fn run_short<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault, &custos_vault::Person) -> custos_vault::Result<T> + Send + 'static,
    {
        let person = self.person.clone();
        self.state.on_vault_short(move |v| op(v, &person)).await
    }
}

fn invalid_session() -> Problem {
    Problem::new(
        "invalid_session",
        "send `Authorization: Bearer <session>` with a session from /v1/people/sign-in/verify; it may have expired or been signed out (api keys do not reach /v1/me)",
    )
}

impl FromRequestParts<AppState> for Person {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            Problem::new(
                "missing_session",
                "send `Authorization: Bearer <session>`; sign in at /v1/people/sign-in",
            )
        })?;
        let text = header.to_str().map_err(|_| invalid_session())?;
        let (scheme, token) = text.trim().split_once(' ').ok_or_else(invalid_session)?;
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err(invalid_session());
        }
        let token = token.trim().to_string();
        let found = state
            .on_vault(move |v| match v.authenticate_person(&token) {
                Ok(p) => Ok(Some(p)),
                Err(custos_vault::Error::Unauthorized) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        match found {
            Some(person) => Ok(Self {
                person,
                state: state.clone(),
            }),
            None => Err(invalid_session()),
        }
    }
}
