//! Cookies and Global Privacy Control (C047, C048, issue 14): `GET /consent.js`, the
//! self-hosted consent banner generated from the policy's `[[cookie]]` elements;
//! `POST /v1/cookie-consents`, where the banner records the visitor's choice (anonymous: a
//! random id, no address, no user agent); `GET /.well-known/gpc.json`, the GPC support
//! resource. `Sec-GPC: 1` refuses the cookies of sale or sharing purposes, is recorded with
//! the choice and counted as a GPC visit, and, with a person's session, withdraws the
//! person's consent to sale and sharing (`custos_vault::Vault::gpc_opt_out`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use custos_vault::{BannerCookie, CONSENT_COOKIE, CookieChoice, CookieConsent};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::AppState;
use crate::consents::ConsentOut;
use crate::input::{JsonBody, Name};
use crate::limits::Client;
use crate::people::Person;
use crate::problem::Problem;

/// How long the browser keeps the choice: six months, the policy's `web-logs` retention
/// (after which the banner asks again).
pub const CONSENT_MAX_AGE_SECS: u64 = 183 * 24 * 3600;

/// Whether the request carries Global Privacy Control (`Sec-GPC: 1`).
pub fn sec_gpc(headers: &HeaderMap) -> bool {
    headers
        .get("sec-gpc")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim() == "1")
}

/// The value of the `custos_consent` cookie, if the request carries one.
pub fn consent_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == CONSENT_COOKIE)
        .map(|(_, v)| v.trim().to_string())
}

/// A visitor's cookie choice (`POST /v1/cookie-consents`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CookieConsentRequest {
    /// Cookie id (`[[cookie]] id`) → accepted. An optional cookie left out is refused (no
    /// pre-ticked boxes); a required one cannot be refused.
    #[schema(value_type = BTreeMap<String, bool>)]
    pub choices: BTreeMap<Name, bool>,
    /// The notice version the visitor was shown: the policy's current version.
    pub notice: Name,
}

/// A recorded cookie choice.
#[derive(Debug, Serialize, ToSchema)]
pub struct CookieConsentAnswer {
    /// The record's random id (nothing links it to a person); the receipt's subject.
    #[schema(format = Uuid)]
    pub consent: String,
    /// Every cookie of the policy → on or off, as recorded (GPC applied).
    pub choices: BTreeMap<String, bool>,
    /// The notice version shown.
    pub notice: String,
    /// SHA-256 of the notice (the HTML `/privacy` serves), hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub notice_sha256: String,
    /// The browser sent Global Privacy Control.
    pub gpc: bool,
    /// When, UTC.
    #[schema(format = DateTime)]
    pub time: String,
    /// The consent receipt, a compact JWS signed EdDSA with a key of
    /// `/.well-known/jwks.json`.
    pub receipt: String,
    /// The value the banner keeps in the `custos_consent` cookie (also set by this answer).
    pub cookie: String,
    /// With GPC and a person's session: the withdrawals or objections recorded for the
    /// purposes that sell or share (none when already recorded).
    pub gpc_records: Vec<ConsentOut>,
}

/// A person's session, when the request carries one (`Authorization: Bearer
/// custos_session_…`): one that does not authenticate is refused (`401 invalid_session`).
/// Any other credential (an API key) is not a visitor's and is ignored: the choice is
/// recorded as anonymous.
async fn optional_person(parts: &mut Parts, state: &AppState) -> Result<Option<Person>, Problem> {
    let session = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .is_some_and(|(scheme, token)| {
            scheme.eq_ignore_ascii_case("bearer")
                && token
                    .trim()
                    .starts_with(custos_vault::vault::SESSION_PREFIX)
        });
    if !session {
        return Ok(None);
    }
    Person::from_request_parts(parts, state).await.map(Some)
}

/// The request's GPC flag and, if any, the person's session.
#[derive(Debug)]
pub struct Visitor {
    gpc: bool,
    person: Option<Person>,
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        Ok(Self {
            gpc: sec_gpc(&parts.headers),
            person: optional_person(parts, state).await?,
        })
    }
}

/// `POST /v1/cookie-consents` — records a visitor's cookie choice from the banner: no key
/// (it is the visitor's browser), no address or user agent kept. With `Sec-GPC: 1` the
/// cookies of sale or sharing purposes are refused whatever was sent, the flag is recorded
/// and the visit counted; with a person's session (`Authorization: Bearer custos_session_…`)
/// the person's consent to sale and sharing is withdrawn too (method `gpc_signal`), once.
/// Answers the record, its receipt, and sets the `custos_consent` cookie.
#[utoipa::path(operation_id = "recordCookieConsent", post, path = "/v1/cookie-consents", tag = "cookies",
    request_body = CookieConsentRequest,
    params(("Sec-GPC" = Option<String>, Header, description = "`1`: the browser's Global Privacy Control")),
    responses(
        (status = 201, description = "recorded; ledgered before it was stored", body = CookieConsentAnswer),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 429, description = "the client's bucket is empty (`Retry-After`)", body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security((), ("session" = [])))]
pub async fn record(
    State(state): State<AppState>,
    client: Client,
    visitor: Visitor,
    JsonBody(body): JsonBody<CookieConsentRequest>,
) -> Result<Response, Response> {
    client
        .take_from(state.cookie_clients())
        .map_err(IntoResponse::into_response)?;
    recorded(&state, visitor, body)
        .await
        .map_err(IntoResponse::into_response)
}

/// The choice recorded, and the answer.
async fn recorded(
    state: &AppState,
    visitor: Visitor,
    body: CookieConsentRequest,
) -> Result<Response, Problem> {
    let choice = CookieChoice {
        choices: body.choices.into_iter().map(|(k, v)| (k.0, v)).collect(),
        notice: body.notice.0,
        gpc: visitor.gpc,
    };
    let recorded: CookieConsent = state
        .on_vault(move |v| v.record_cookie_consent(&choice))
        .await?;
    let mut gpc_records = Vec::new();
    if visitor.gpc {
        if let Some(v) = state.vault() {
            v.count_gpc_visit();
        }
        if let Some(person) = &visitor.person {
            gpc_records = person.run(|v, p| v.gpc_opt_out(p)).await?;
        }
    }
    let cookie = format!(
        "{CONSENT_COOKIE}={}; Path=/; Max-Age={CONSENT_MAX_AGE_SECS}; SameSite=Lax",
        recorded.cookie
    );
    let answer = CookieConsentAnswer {
        consent: recorded.id,
        choices: recorded.choices,
        notice: recorded.notice,
        notice_sha256: recorded.notice_sha256,
        gpc: recorded.gpc,
        time: recorded.time,
        receipt: recorded.receipt,
        cookie: recorded.cookie,
        gpc_records: gpc_records.into_iter().map(ConsentOut::from).collect(),
    };
    let mut res = (StatusCode::CREATED, Json(answer)).into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The GPC support resource (the GPC specification, section 4.1).
#[derive(Debug, Serialize, ToSchema)]
pub struct GpcSupport {
    /// The site honours GPC.
    pub gpc: bool,
    /// When this was last changed: the policy's effective date.
    #[serde(rename = "lastUpdate")]
    #[schema(format = Date)]
    pub last_update: String,
}

/// `GET /.well-known/gpc.json` — keyless: the site honours Global Privacy Control, as of the
/// policy's effective date.
#[utoipa::path(operation_id = "gpcSupport", get, path = "/.well-known/gpc.json", tag = "cookies", security(()),
    responses((status = 200, description = "`{\"gpc\": true, \"lastUpdate\": \"YYYY-MM-DD\"}`", body = GpcSupport)))]
pub async fn gpc_json(State(state): State<AppState>) -> Result<Response, Problem> {
    let vault = state
        .vault()
        .ok_or_else(|| Problem::internal("the vault is closed"))?;
    let mut res = Json(GpcSupport {
        gpc: true,
        last_update: vault.policy().effective().to_string(),
    })
    .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    Ok(res)
}

/// `GET /consent.js` — keyless: the consent banner, generated from the policy. Same-origin
/// only (it fetches nothing but `POST /v1/cookie-consents`), no `eval`, no inline handlers,
/// no markup from strings (the DOM is built with `textContent`), so it runs under a strict
/// content security policy (`script-src 'self'`).
#[utoipa::path(operation_id = "consentScript", get, path = "/consent.js", tag = "cookies", security(()),
    responses((status = 200, description = "the consent banner script", body = String, content_type = "text/javascript")))]
pub async fn consent_js(State(state): State<AppState>) -> Result<Response, Problem> {
    let vault = state
        .vault()
        .ok_or_else(|| Problem::internal("the vault is closed"))?;
    let script = banner_script(&vault.banner_cookies(), vault.policy().version());
    let mut res = script.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(res)
}

/// The banner script for the policy's cookies and notice version.
pub fn banner_script(cookies: &[BannerCookie], notice: &str) -> String {
    let config = json!({
        "notice": notice,
        "cookie": CONSENT_COOKIE,
        "endpoint": "/v1/cookie-consents",
        "maxAge": CONSENT_MAX_AGE_SECS,
        "cookies": cookies.iter().map(|c| json!({
            "id": c.id,
            "name": c.name,
            "purpose": c.purpose_name,
            "description": c.description,
            "required": c.required,
            "gpc": c.gpc_refused,
        })).collect::<Vec<_>>(),
    });
    BANNER_JS.replace("__CONFIG__", &config.to_string())
}

/// The banner's code; `__CONFIG__` is replaced by the policy's cookies as JSON.
const BANNER_JS: &str = r##"/* Custos consent banner: generated from the privacy policy's cookies. Same-origin only. */
(function () {
  "use strict";
  var C = __CONFIG__;
  var doc = document;
  var gpc = navigator.globalPrivacyControl === true;

  function current() {
    var parts = doc.cookie ? doc.cookie.split(";") : [];
    for (var i = 0; i < parts.length; i++) {
      var kv = parts[i].trim().split("=");
      if (kv[0] === C.cookie && kv.length > 1) {
        var fields = kv.slice(1).join("=").split("|");
        var out = {};
        for (var j = 1; j < fields.length; j++) {
          var p = fields[j].split("=");
          out[p[0]] = p[1] === "1";
        }
        return out;
      }
    }
    return null;
  }

  function el(tag, text) {
    var e = doc.createElement(tag);
    if (text) { e.textContent = text; }
    return e;
  }

  var box = null;

  function close() {
    if (box && box.parentNode) { box.parentNode.removeChild(box); }
    box = null;
  }

  function save(choices) {
    for (var i = 0; i < C.cookies.length; i++) {
      var c = C.cookies[i];
      if (c.required) { choices[c.id] = true; }
      if (gpc && c.gpc) { choices[c.id] = false; }
    }
    return fetch(C.endpoint, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ choices: choices, notice: C.notice })
    }).then(function (r) {
      return r.ok ? r.json() : null;
    }).then(function (rec) {
      if (rec && rec.cookie) {
        doc.cookie = C.cookie + "=" + rec.cookie + "; Path=/; Max-Age=" + C.maxAge + "; SameSite=Lax";
      }
      close();
      doc.dispatchEvent(new CustomEvent("custos-consent", { detail: rec }));
      return rec;
    });
  }

  function all(on) {
    var choices = {};
    for (var i = 0; i < C.cookies.length; i++) {
      choices[C.cookies[i].id] = on || C.cookies[i].required;
    }
    return save(choices);
  }

  function show() {
    close();
    box = el("div");
    box.id = "custos-consent";
    box.setAttribute("role", "dialog");
    box.setAttribute("aria-label", "Cookie choices");
    var s = box.style;
    s.position = "fixed"; s.left = "0"; s.right = "0"; s.bottom = "0"; s.zIndex = "2147483647";
    s.background = "#fff"; s.color = "#111"; s.borderTop = "2px solid #333";
    s.padding = "1em"; s.font = "15px/1.4 sans-serif"; s.maxHeight = "70vh"; s.overflow = "auto";
    box.appendChild(el("strong", "Cookies on this site"));
    box.appendChild(el("p", "We use the cookies below. Optional ones stay off unless you turn them on." +
      (gpc ? " Your browser sends Global Privacy Control: cookies used for sale or sharing stay off." : "")));
    var boxes = {};
    for (var i = 0; i < C.cookies.length; i++) {
      var c = C.cookies[i];
      var row = el("label");
      row.style.display = "block"; row.style.margin = "0.4em 0";
      var cb = el("input");
      cb.type = "checkbox";
      cb.name = c.id;
      cb.checked = c.required;
      cb.disabled = c.required || (gpc && c.gpc);
      boxes[c.id] = cb;
      row.appendChild(cb);
      row.appendChild(el("b", " " + c.name + (c.required ? " (required)" : "")));
      row.appendChild(el("span", " \u2014 " + c.purpose + ". " + c.description));
      box.appendChild(row);
    }
    var bar = el("div");
    bar.style.marginTop = "0.6em";
    var reject = el("button", "Reject all");
    var accept = el("button", "Accept all");
    var chosen = el("button", "Save my choices");
    reject.type = accept.type = chosen.type = "button";
    reject.id = "custos-reject"; accept.id = "custos-accept"; chosen.id = "custos-save";
    reject.addEventListener("click", function () { all(false); });
    accept.addEventListener("click", function () { all(true); });
    chosen.addEventListener("click", function () {
      var choices = {};
      for (var id in boxes) {
        if (Object.prototype.hasOwnProperty.call(boxes, id)) { choices[id] = boxes[id].checked; }
      }
      save(choices);
    });
    bar.appendChild(reject); bar.appendChild(el("span", " ")); bar.appendChild(accept);
    bar.appendChild(el("span", " ")); bar.appendChild(chosen);
    box.appendChild(bar);
    doc.body.appendChild(box);
  }

  window.custosConsent = { show: show, choices: current, acceptAll: function () { return all(true); },
    rejectAll: function () { return all(false); } };
  if (current() === null) {
    if (doc.readyState === "loading") { doc.addEventListener("DOMContentLoaded", show); } else { show(); }
  }
})();
"##;
