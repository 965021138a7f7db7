//! What the server tells its operator: where log lines go ([`Log`]), the request id, one span
//! and one log line per request, and the count of each request in the metrics.
//!
//! The pieces are the Rust service stack's own: `tracing` spans and events, written by
//! `tracing-subscriber` (human or JSON), tower-http's `TraceLayer`, `SetRequestHeader` and
//! `PropagateRequestId`; what this module adds is what is Custos's — which fields, and that
//! each is bounded and free of personal information.
//!
//! **Architecture invariant:** a log field is a request id the server made, a route template
//! or method from a closed set ([`crate::metrics`]), a status, a time, an accessor (a name
//! the policy declares), or an internal error's detail cut and escaped ([`bounded`]) — never a
//! raw path, a query value, a header a client chose, a body or a peer address.

use std::io::IsTerminal as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::trace::{MakeSpan, OnResponse};
use tracing::{Dispatch, Span, field};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::AppState;
use crate::metrics::{method_label, route_label};
use crate::problem::{InternalDetail, Problem};

/// The header that carries the request id, both ways.
pub(crate) const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The target of the server's request and connection events (`RUST_LOG=custos::http=warn`
/// quiets the access log; `custos=…` covers every target of ours).
pub(crate) const TARGET: &str = "custos::http";

/// The most characters of an internal error's detail a log line carries.
const MAX_DETAIL_CHARS: usize = 512;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event, for a person at a terminal.
    Human,
    /// One JSON object per line, for a log collector: `timestamp`, `level`, `message`,
    /// `target`, the event's fields, and under `span` the request's (`request_id`, `method`,
    /// `route`, `accessor`, `status`, `ms`).
    Json,
}

/// Where the server's logs go: a `tracing` dispatcher. Requests, connections, the TLS
/// handshakes and the vault threads of an app log through its own `Log`, so two apps in one
/// process (tests) keep their logs apart; the binary also installs it as the process's
/// default, for what runs outside any app.
#[derive(Clone)]
pub struct Log(Dispatch);

impl Log {
    /// The dispatcher in effect where this is called: the process's default (none installed:
    /// nothing is logged).
    pub fn current() -> Self {
        Self(tracing::dispatcher::get_default(Dispatch::clone))
    }

    /// Logs to standard error, in `format`, with `filter` (`RUST_LOG` syntax: `info`,
    /// `custos=debug,custos::http=warn`): colours only for a person, when standard error is
    /// a terminal.
    pub fn stderr(format: LogFormat, filter: &str) -> Result<Self, String> {
        let ansi = format == LogFormat::Human && std::io::stderr().is_terminal();
        Self::build(format, filter, std::io::stderr, ansi)
    }

    /// Logs to `writer` (tests capture each app's lines), without colours.
    pub fn new<W>(format: LogFormat, filter: &str, writer: W) -> Result<Self, String>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        Self::build(format, filter, writer, false)
    }

    fn build<W>(format: LogFormat, filter: &str, writer: W, ansi: bool) -> Result<Self, String>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        // `Targets`, not `EnvFilter`: levels per target cover what `RUST_LOG` is used for
        // here, without a regex engine in the binary.
        let targets: Targets = filter
            .trim()
            .parse()
            .map_err(|e| format!("the log filter is not valid ({e}); write e.g. `info` or `custos=debug,custos::http=warn`"))?;
        let registry = tracing_subscriber::registry().with(targets);
        // The formatter writes each event with one `write_all`, so lines of concurrent
        // requests do not interleave.
        let dispatch = match format {
            LogFormat::Human => Dispatch::new(
                registry.with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(ansi),
                ),
            ),
            LogFormat::Json => Dispatch::new(
                registry.with(
                    tracing_subscriber::fmt::layer()
                        .json()
                        .flatten_event(true)
                        .with_current_span(true)
                        .with_span_list(false)
                        .with_writer(writer),
                ),
            ),
        };
        Ok(Self(dispatch))
    }

    /// The dispatcher.
    pub fn dispatch(&self) -> &Dispatch {
        &self.0
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log(..)")
    }
}

/// The outermost middleware: counts each request in the metrics once answered. (Its span and
/// events go to the app's [`Log`]: [`crate::serve`] runs each connection under it; a router
/// served otherwise logs to the process's default.)
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The template (`/v1/subjects/{id}`), never the raw path; labels from closed sets, so
    // what a client sends grows neither the metrics nor the log.
    let route = route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str),
    );
    let method = method_label(req.method().as_str());
    let start = Instant::now();
    // The app's log is in force already: `serve` runs each connection's task under it.
    let res = next.run(req).await;
    state
        .metrics()
        .request(method, route, res.status().as_u16(), start.elapsed());
    res
}

/// A new request id: a UUIDv7, so ids sort by time. Always the server's own — the layer that
/// calls this replaces any `x-request-id` a client sent before anything reads it, so no log
/// line carries an id a client made up.
pub(crate) fn request_id(_: &Request) -> Option<HeaderValue> {
    // Unique, not secret: the random bits are drawn once per process and a counter is added
    // to them, so an id costs no system call (`Uuid::now_v7` asks the kernel for randomness
    // on every call: 2–3% of a `/healthz` request's CPU).
    static BASE: OnceLock<u128> = OnceLock::new();
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // One v7 id's randomness from the OS, once: the process's base.
    let base = *BASE.get_or_init(|| u128::from_le_bytes(uuid::Uuid::now_v7().into_bytes()));
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let bits = base.wrapping_add(u128::from(n)).to_le_bytes();
    let mut random = [0u8; 10];
    random.copy_from_slice(bits.get(..10).unwrap_or(&[0u8; 10]));
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let id = uuid::Builder::from_unix_timestamp_millis(ms, &random).into_uuid();
    let mut buf = uuid::Uuid::encode_buffer();
    HeaderValue::from_str(id.hyphenated().encode_lower(&mut buf)).ok()
}

/// The span of a request: its id, method and route at once; the accessor once [`crate::Caller`]
/// authenticates it; status and time when it is answered ([`LogAnswer`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestSpan;

impl<B> MakeSpan<B> for RequestSpan {
    fn make_span(&mut self, req: &axum::http::Request<B>) -> Span {
        let id = req
            .headers()
            .get(X_REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-");
        let route = route_label(
            req.extensions()
                .get::<MatchedPath>()
                .map_or("", MatchedPath::as_str),
        );
        let method = method_label(req.method().as_str());
        // At error level: the span is there whenever anything of the request is logged, so
        // an internal error's line carries the request id even with `RUST_LOG=warn`.
        tracing::error_span!(
            target: TARGET,
            "request",
            request_id = %id,
            method = %method,
            route = %route,
            accessor = field::Empty,
            status = field::Empty,
            ms = field::Empty,
        )
    }
}

/// Records the answer in the request's span and writes the request's one line: at info, at
/// warn for a 5xx, at error with the detail for an internal error.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogAnswer;

impl<B> OnResponse<B> for LogAnswer {
    fn on_response(self, res: &Response<B>, latency: Duration, span: &Span) {
        span.record("status", res.status().as_u16());
        // Tenths of a millisecond: precise enough, and a short field.
        span.record("ms", (latency.as_secs_f64() * 10_000.0).round() / 10.0);
        match res.extensions().get::<InternalDetail>() {
            Some(InternalDetail(detail)) => tracing::error!(
                target: TARGET,
                parent: span,
                detail = %bounded(detail),
                "answered with an internal error",
            ),
            None if res.status().is_server_error() => {
                tracing::warn!(target: TARGET, parent: span, "answered");
            }
            None => tracing::info!(target: TARGET, parent: span, "answered"),
        }
    }
}

/// Records the authenticated accessor in the current request's span.
pub(crate) fn record_accessor(accessor: &str) {
    // A name the policy declares, not personal information; bounded by the policy's names.
    Span::current().record("accessor", field::display(accessor));
}

/// The answer of a request that failed in the middleware: past its time (`503
/// request_timeout`), else an internal error.
pub(crate) fn failed(error: &tower::BoxError, timeout: Duration) -> Problem {
    if error.is::<tower::timeout::error::Elapsed>() {
        Problem::new(
            "request_timeout",
            format!("the request took more than {timeout:?}"),
        )
    } else {
        Problem::internal(format!("middleware: {error}"))
    }
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

    #[test]
    fn a_bad_filter_is_refused_with_an_example() {
        let e = Log::new(LogFormat::Json, "custos=loud", std::io::sink).unwrap_err();
        assert!(e.contains("custos=debug"), "{e}");
        assert!(Log::new(LogFormat::Human, "info,custos::http=warn", std::io::sink).is_ok());
    }

    #[test]
    fn a_request_id_is_a_fresh_lowercase_uuid_v7() {
        let req = Request::new(axum::body::Body::empty());
        let (a, b) = (request_id(&req).unwrap(), request_id(&req).unwrap());
        let a = uuid::Uuid::try_parse(a.to_str().unwrap()).unwrap();
        assert_eq!(a.get_version_num(), 7);
        assert!(b.to_str().unwrap() > a.hyphenated().to_string().as_str());
    }
}
