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
//! codes an hour; here each client (by its connection's peer address, never logged) has a
//! token bucket over both sign-in routes. Exceeding either answers `429 rate_limited` with
//! `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::FromRequestParts;
use axum::http::header::{AUTHORIZATION, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use custos_vault::{SignInRequest, SubjectId, Vault};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::input::JsonBody;
use crate::problem::Problem;

/// Requests a client may make to a group of limited routes (the sign-in routes; cookie
/// consents) in a burst.
pub const CLIENT_BURST: u32 = 20;
/// One more request is allowed every this long, up to [`CLIENT_BURST`].
pub const CLIENT_REFILL: Duration = Duration::from_secs(3);
/// Clients the limiter remembers at most; past it, full buckets are forgotten first.
const CLIENTS_MAX: usize = 100_000;

/// Per-client token buckets over a group of routes (the sign-in routes; cookie consents), in
/// memory (one server's view: behind several servers a client gets each server's allowance).
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    /// What the routes do, for the `429`'s message: "too many {what} requests".
    what: &'static str,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl ClientLimiter {
    /// Buckets of [`CLIENT_BURST`] tokens, one more every [`CLIENT_REFILL`].
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`; `Err(wait)` when its bucket is empty.
    fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let per_sec = 1.0 / CLIENT_REFILL.as_secs_f64();
        let burst = f64::from(CLIENT_BURST);
        if map.len() >= CLIENTS_MAX {
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = map.entry(bucket_of(ip)).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_sec))
        }
    }
}

/// The bucket an address pays from: an IPv4 address its own, an IPv6 address its /64 (one
/// host or site is commonly given a whole /64, so per address it could spread its requests
/// over as many buckets as it liked).
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
        v4 => v4,
    }
}

/// `429 rate_limited`, with `Retry-After` in whole seconds (rounded up).
#[derive(Debug)]
pub struct RateLimited(Duration, &'static str);

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let secs = (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1);
        let mut res = Problem::new(
            "rate_limited",
            format!("too many {} requests; try again in {secs} seconds", self.1),
        )
        .into_response();
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        res
    }
}

/// The client of a rate-limited request (its address, as [`crate::transport::client_ip`]
/// finds it), whose token bucket pays for it once its body parsed (a malformed request is
/// answered `400` and costs nothing).
#[derive(Debug, Clone, Copy)]
pub struct Client(IpAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(crate::transport::client_ip(
            parts,
            &state.config().tls_proxy,
        )))
    }
}

impl Client {
    /// A token of the sign-in routes' bucket.
    fn take_turn(self, state: &AppState) -> Result<(), RateLimited> {
        self.take_from(state.clients())
    }

    /// A token of `limiter`'s bucket for this client.
    pub(crate) fn take_from(self, limiter: &ClientLimiter) -> Result<(), RateLimited> {
        limiter
            .take(self.0)
            .map_err(|wait| RateLimited(wait, limiter.what))
    }
}

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
        .take_turn(&state)
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
            Err(RateLimited(retry_after, "sign-in").into_response())
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
        .take_turn(&state)
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

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// Every address of an IPv6 /64 pays from one bucket: a client with a /64 cannot step
    /// around its limit by changing its address; another /64, and an IPv4 address, have
    /// their own.
    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limiter = ClientLimiter::new("test");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..CLIENT_BURST {
            limiter
                .take(ip(&format!("2001:db8:1:2::{:x}", i + 1)))
                .unwrap();
        }
        assert!(limiter.take(ip("2001:db8:1:2:ffff::9")).is_err());
        assert!(limiter.take(ip("2001:db8:1:3::1")).is_ok());
        assert!(limiter.take(ip("192.0.2.1")).is_ok());
        assert!(limiter.take(ip("::ffff:192.0.2.2")).is_ok());
        assert_eq!(bucket_of(ip("::ffff:192.0.2.2")), ip("192.0.2.2"));
    }
}
