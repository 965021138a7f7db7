//! The outermost middleware: request id, timeout, metrics and the access log.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::AppState;
use crate::metrics::{method_label, route_label};
use crate::problem::{InternalDetail, Problem};

/// The most characters of an internal error's detail a log line carries.
const MAX_DETAIL_CHARS: usize = 512;

/// Where [`crate::Caller`] leaves the accessor it authenticated, for the log line.
#[derive(Debug, Clone, Default)]
pub(crate) struct AccessorSlot(pub Arc<OnceLock<String>>);

/// Answers the request within the configured time, counts it, and logs one line: request
/// id, method, route template, status, time — and for an internal error, its detail. Every
/// field is bounded: the method and route are labels from closed sets (as in the metrics),
/// the request id is the server's own, the accessor a name the policy declares, and an
/// internal detail is cut and escaped ([`bounded`]).
pub(crate) async fn observe(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let id = state.next_request_id();
    // The template (`/v1/subjects/{id}`), never the raw path: paths and queries stay out of
    // logs and metric labels. Method and route are labels from closed sets: a made-up method
    // is `other`, so what a client sends grows neither the metrics nor the log.
    let route = route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str),
    );
    let method = method_label(req.method().as_str());
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
    state.metrics().request(method, route, status, took);
    let ms = took.as_secs_f64() * 1000.0;
    // The accessor is a name the policy declares, not personal information.
    let accessor = slot.0.get().map_or("-", String::as_str);
    let line = format!(
        "custos: request={id} {method} {route} status={status} ms={ms:.1} accessor={accessor}"
    );
    match res.extensions_mut().remove::<InternalDetail>() {
        Some(InternalDetail(detail)) => {
            state
                .log()
                .line(&format!("{line} error: {}", bounded(&detail)));
        }
        None => state.log().line(&line),
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

/// An internal error's detail as a log field: at most [`MAX_DETAIL_CHARS`] characters, then
/// `…`; control characters escaped, so a detail can neither grow a line without bound nor
/// start a new one.
fn bounded(detail: &str) -> String {
    let mut out = String::with_capacity(detail.len().min(MAX_DETAIL_CHARS));
    let mut chars = detail.chars();
    for c in chars.by_ref().take(MAX_DETAIL_CHARS) {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_internal_detail_is_cut_and_kept_on_one_line() {
        assert_eq!(
            bounded("storage_failure: disk full"),
            "storage_failure: disk full"
        );
        let long = format!("a\nb{}", "x".repeat(100_000));
        let b = bounded(&long);
        assert!(b.starts_with("a\\nb") && b.ends_with('…'), "{b}");
        assert!(!b.contains('\n'));
        assert!(b.chars().count() <= MAX_DETAIL_CHARS + 4);
    }
}
