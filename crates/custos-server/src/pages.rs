//! The keyless routes: health, metrics, the OpenAPI document and the privacy notice; and the
//! answers for unknown routes and methods.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::AppState;
use crate::problem::Problem;

/// `GET /healthz`.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /metrics` — Prometheus text. No personal information, but it tells who calls how
/// much, so it takes an API key like the data routes (any accessor's; Prometheus sends it
/// with `authorization: {credentials: …}`).
pub async fn metrics(caller: crate::Caller) -> Response {
    with_type(
        caller.render_metrics(),
        "text/plain; version=0.0.4; charset=utf-8",
    )
}

/// `GET /openapi.json`.
pub async fn openapi(State(state): State<AppState>) -> Response {
    with_type(state.0.openapi.clone(), "application/json")
}

/// `GET /privacy` — the notice rendered from the enforced policy; self-contained, and the
/// content security policy forbids fetching anything.
pub async fn privacy(State(state): State<AppState>) -> Response {
    let mut res = with_type(state.0.notice_html.clone(), "text/html; charset=utf-8");
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    res
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

fn with_type(body: String, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
