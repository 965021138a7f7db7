//! The outermost middleware: request id, timeout, metrics and the access log.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::AppState;
use crate::problem::{InternalDetail, Problem};

/// Where [`crate::Caller`] leaves the accessor it authenticated, for the log line.
#[derive(Debug, Clone, Default)]
pub(crate) struct AccessorSlot(pub Arc<OnceLock<String>>);

/// Answers the request within the configured time, counts it, and logs one line: request
/// id, method, route template, status, time — and for an internal error, its detail.
pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = state.next_request_id();
    // The template (`/v1/subjects/{id}`), never the raw path: paths and queries stay out of
    // logs and metric labels.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let slot = AccessorSlot::default();
    req.extensions_mut().insert(slot.clone());
    let start = Instant::now();
    let timeout = state.0.config.request_timeout;
    let mut res = match tokio::time::timeout(timeout, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Problem::new(
            "request_timeout",
            format!("the request took more than {}s", timeout.as_secs()),
        )
        .into_response(),
    };
    let took = start.elapsed();
    let status = res.status().as_u16();
    state.metrics().request(&method, &route, status, took);
    let ms = took.as_secs_f64() * 1000.0;
    // The accessor is a name the policy declares, not personal information.
    let accessor = slot.0.get().map_or("-", String::as_str);
    let line = format!(
        "custos: request={id} {method} {route} status={status} ms={ms:.1} accessor={accessor}"
    );
    match res.extensions_mut().remove::<InternalDetail>() {
        Some(InternalDetail(detail)) => state.log().line(&format!("{line} error: {detail}")),
        None => state.log().line(&line),
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}
