//! Mailings (issue 14, item 4): `POST /v1/mailings` sends one message for a purpose to every
//! person eligible for it, through the outbox; `GET /v1/mailings/{id}` shows its counts; and
//! the one-click unsubscribe of RFC 8058 — `POST /u/{token}` (no key, no session, no cookie;
//! idempotent; never a redirect) and its confirmation page `GET /u/{token}`, which changes
//! nothing (mail scanners follow links) (`docs/mailings.md`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_policy::render::html_escape;
use custos_vault::{MailingInfo, MailingInput, MailingSent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::input::{JsonBody, Name};
use crate::problem::Problem;
use crate::{AppState, Caller};

/// A mailing to send (`POST /v1/mailings`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MailingRequest {
    /// The purpose: one people can leave (basis `consent` or `opt_out`, disclosing to no
    /// recipient), which the policy lets the caller use `contact.email` for (or staff).
    pub purpose: Name,
    /// The subject line: one line, at most 998 bytes.
    #[schema(min_length = 1, max_length = 998)]
    pub subject: String,
    /// The body, plain text (at most 61,440 bytes); the unsubscribe instructions are added at
    /// its end.
    #[schema(min_length = 1, max_length = 61440)]
    pub text: String,
    /// An HTML body besides the text, if any (the message is then `multipart/alternative`);
    /// the unsubscribe instructions are added to it too.
    #[serde(default, deserialize_with = "crate::input::present")]
    #[schema(min_length = 1, max_length = 61440, nullable = false)]
    pub html: Option<String>,
}

/// A mailing sent: its id and counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailingAnswer {
    /// Its id.
    #[schema(format = Uuid)]
    pub mailing: String,
    /// The purpose.
    pub purpose: String,
    /// Messages queued in the outbox: one per eligible person.
    pub recipients: u64,
    /// People excluded, by the decision's reason code (`objected`, `consent_missing`,
    /// `subject_deactivated`, …) or `no_address`.
    #[schema(value_type = BTreeMap<String, u64>)]
    pub excluded: BTreeMap<String, u64>,
    /// When it was sent, UTC.
    #[schema(format = DateTime)]
    pub time: String,
}

impl From<MailingSent> for MailingAnswer {
    fn from(m: MailingSent) -> Self {
        Self {
            mailing: m.mailing,
            purpose: m.purpose,
            recipients: m.recipients,
            excluded: m.excluded,
            time: m.time,
        }
    }
}

/// A stored mailing.
#[derive(Debug, Serialize, ToSchema)]
pub struct MailingShown {
    /// Its id and counts.
    #[serde(flatten)]
    pub sent: MailingAnswer,
    /// Who sent it: an accessor, or `operator`.
    pub actor: String,
    /// Its subject line.
    pub subject: String,
}

impl From<MailingInfo> for MailingShown {
    fn from(m: MailingInfo) -> Self {
        Self {
            sent: m.sent.into(),
            actor: m.actor,
            subject: m.subject,
        }
    }
}

/// What a one-click unsubscribe did.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnsubscribeAnswer {
    /// `unsubscribed` (this request recorded it) or `already_unsubscribed` (nothing to do).
    #[schema(pattern = "^(unsubscribed|already_unsubscribed)$")]
    pub status: &'static str,
    /// The purpose left.
    pub purpose: String,
}

/// The public base URL links start with: `--public-url`, else the request's `Host` when it
/// is a plain authority (embedded servers, tests), else `http://localhost`.
fn public_base(state: &AppState, headers: &HeaderMap) -> String {
    if let Some(url) = &state.config().public_url {
        return url.clone();
    }
    headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 255
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .map_or_else(|| "http://localhost".into(), |h| format!("http://{h}"))
}

/// `POST /v1/mailings` — sends a mailing for a purpose to every person eligible for it (each
/// decided as a read of `contact.email` for the purpose; ledgered before any address is
/// decrypted), one message each through the outbox, with RFC 8058's `List-Unsubscribe` and
/// `List-Unsubscribe-Post` and the unsubscribe instructions at the end.
#[utoipa::path(operation_id = "sendMailing", post, path = "/v1/mailings", tag = "mailings",
    request_body = MailingRequest,
    responses(
        (status = 201, description = "queued; the counts", body = MailingAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn send(
    caller: Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MailingRequest>,
) -> Result<(StatusCode, Json<MailingAnswer>), Problem> {
    let base = public_base(&state, &headers);
    let input = MailingInput {
        purpose: body.purpose.0,
        subject: body.subject,
        text: body.text,
        html: body.html,
    };
    let sent = caller
        .run(move |v, a| v.send_mailing(a, &input, &base))
        .await?;
    Ok((StatusCode::CREATED, Json(sent.into())))
}

/// `GET /v1/mailings/{id}` — a mailing's counts, for its sender (the same key's accessor and
/// tenant) and staff; `404` to anyone else.
#[utoipa::path(operation_id = "showMailing", get, path = "/v1/mailings/{id}", tag = "mailings",
    params(("id" = String, Path, format = Uuid, description = "the mailing's id")),
    responses(
        (status = 200, description = "the mailing", body = MailingShown),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn show(caller: Caller, Path(id): Path<String>) -> Result<Json<MailingShown>, Problem> {
    let found = caller.run(move |v, a| v.mailing(a, &id)).await?;
    found
        .map(|m| Json(m.into()))
        .ok_or_else(|| Problem::new("mailing_not_found", "no such mailing"))
}

const TOKEN: &str = "the unsubscribe token of the message's `List-Unsubscribe` link";

/// Content security of the pages: nothing fetched, inline style only, the form posts here.
const PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{t}</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;line-height:1.5}}\
         button{{font-size:1rem;padding:.6rem 1.2rem}}</style></head>\
         <body><h1>{t}</h1>{body}</body></html>\n",
        t = html_escape(title)
    );
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(PAGE_CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

fn invalid_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "This unsubscribe link is not valid",
        "<p>The link may have been cut or changed. Use the link of the message exactly as you received it, or write to the address given at the end of the message.</p>",
    )
}

/// Runs a token call on a vault thread without a key: the token is the credential, and the
/// vault checks it before anything else.
async fn on_token<T, F>(state: &AppState, f: F) -> Result<T, Problem>
where
    T: Send + 'static,
    F: FnOnce(&custos_vault::Vault) -> custos_vault::Result<T> + Send + 'static,
{
    state.on_vault(f).await
}

/// `GET /u/{token}` — the confirmation page of a one-click unsubscribe link: names the
/// purpose and offers a button that posts to the same link. Changes nothing (link scanners
/// follow GETs). An invalid link gets an HTML page saying so (`404`).
#[utoipa::path(operation_id = "unsubscribePage", get, path = "/u/{token}", tag = "mailings",
    params(("token" = String, Path, description = TOKEN)),
    responses(
        (status = 200, description = "the confirmation page: self-contained HTML with a button that posts to this link", body = String, content_type = "text/html"),
        (status = 404, description = "the link is not valid: an HTML page saying so", body = String, content_type = "text/html"),
    ),
    security(()))]
pub async fn page_get(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let t = token.clone();
    match on_token(&state, move |v| v.unsubscribe_preview(&t)).await {
        Ok((_, name)) => page(
            StatusCode::OK,
            "Unsubscribe",
            &format!(
                "<p>Stop receiving messages about: <strong>{}</strong>?</p>\
                 <form method=\"post\" action=\"/u/{}\">\
                 <input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\">\
                 <button type=\"submit\">Unsubscribe</button></form>\
                 <p>Nothing changes until you press the button.</p>",
                html_escape(&name),
                html_escape(&token)
            ),
        ),
        Err(p) if p.code() == "invalid_token" => invalid_page(),
        Err(p) => p.into_response(),
    }
}

/// `POST /u/{token}` — the one-click unsubscribe of RFC 8058: no key, session or cookie;
/// the body, if any (`List-Unsubscribe=One-Click`), is not needed. Records the person's
/// objection (or withdrawal of consent) for the mailing's purpose, with a receipt, so the
/// next mailing excludes them; a second request changes nothing. Never redirects. Answers
/// JSON, or the page when the request accepts `text/html` (the confirmation page's button).
#[utoipa::path(operation_id = "unsubscribe", post, path = "/u/{token}", tag = "mailings",
    params(("token" = String, Path, description = TOKEN)),
    request_body(content = String, content_type = "application/x-www-form-urlencoded", description = "`List-Unsubscribe=One-Click` (RFC 8058), or nothing"),
    responses(
        (status = 200, description = "unsubscribed, now or before", body = UnsubscribeAnswer),
        (status = 404, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(()))]
pub async fn unsubscribe(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> Response {
    let html = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    // Checked and signed on the request's thread (when the store is embedded); the answer
    // comes once the change's group commit is durable, no thread waiting through it.
    let (done, answer) = AppState::begun();
    let queued = state
        .on_vault_short(move |v| v.begin_unsubscribe(&token, done))
        .await;
    let done = match queued {
        Ok(()) => answer.await,
        Err(p) => Err(p),
    };
    match done {
        Ok(u) if html => page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!(
                "<p>You will no longer receive messages about: <strong>{}</strong>.</p>",
                html_escape(&u.purpose_name)
            ),
        ),
        Ok(u) => Json(UnsubscribeAnswer {
            status: if u.already {
                "already_unsubscribed"
            } else {
                "unsubscribed"
            },
            purpose: u.purpose,
        })
        .into_response(),
        Err(p) if html && p.code() == "invalid_token" => invalid_page(),
        Err(p) => p.into_response(),
    }
}
