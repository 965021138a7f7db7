//! The keyless routes: health, metrics, the OpenAPI document and the privacy notice; and the
//! answers for unknown routes and methods.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::Problem;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(pattern = "^ok$")]
    pub status: &'static str,
}

/// `GET /healthz`.
#[utoipa::path(operation_id = "health", get, path = "/healthz", tag = "pages", security(()),
    responses((status = 200, description = "alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// `GET /metrics` — Prometheus text. No personal information, but it tells who calls how
/// much, so it takes an API key like the data routes (any accessor's; Prometheus sends it
/// with `authorization: {credentials: …}`).
#[utoipa::path(operation_id = "metrics", get, path = "/metrics", tag = "pages",
    responses(
        (status = 200, description = "Prometheus text exposition: requests, latencies, decisions, ledger commit sizes; no personal information", body = String, content_type = "text/plain"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn metrics(caller: crate::Caller) -> Response {
    with_type(
        caller.render_metrics(),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

/// `GET /openapi.json`.
#[utoipa::path(operation_id = "openapi", get, path = "/openapi.json", tag = "pages", security(()),
    responses((status = 200, description = "this document (OpenAPI 3.1)", body = Object)))]
pub async fn openapi(State(state): State<AppState>) -> Response {
    with_type(state.0.openapi.clone(), "application/json")
}

/// `GET /privacy` — the notice rendered from the enforced policy; self-contained, and the
/// content security policy forbids fetching anything.
#[utoipa::path(operation_id = "privacyNotice", get, path = "/privacy", tag = "pages", security(()),
    responses((status = 200, description = "the privacy notice rendered from the enforced policy: self-contained HTML that fetches nothing", body = String, content_type = "text/html")))]
pub async fn privacy(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    // A visit with Global Privacy Control is counted (an aggregate by day; nothing else).
    if crate::cookies::sec_gpc(&headers) {
        if let Some(v) = state.vault() {
            v.count_gpc_visit();
        }
    }
    let mut res = with_type(state.0.notice_html.clone(), "text/html; charset=utf-8");
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    res
}

/// The longest request target (path and query) answered: every name in a query is at most
/// 128 bytes, so a longer one is no request of the API. hyper itself refuses targets over
/// 64 KiB, with a bare 414 before any of this runs.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// `414 uri_too_long` (problem+json) for a target over [`MAX_URI_BYTES`]: answered by
/// `observe` before the request reaches its handler.
pub(crate) fn uri_too_long(req: &axum::extract::Request) -> Option<Problem> {
    let len = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    (len > MAX_URI_BYTES).then(|| {
        Problem::new(
            "uri_too_long",
            format!("the request's path and query hold at most {MAX_URI_BYTES} bytes"),
        )
    })
}

/// Unknown route.
pub async fn not_found() -> Problem {
    Problem::new("not_found", "no such route; see /openapi.json")
}

/// Known route, wrong method.
pub async fn method_not_allowed() -> Problem {
    Problem::new(
        "method_not_allowed",
        "this route does not take this method; see /openapi.json",
    )
}

fn with_type(body: impl IntoResponse, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
