//! What the server tells its operator: where log lines go ([`Log`]), the request id, one span
//! and one log line per request, and the count of each request in the metrics.
//!
//! The pieces are the Rust service stack's own: `tracing` spans and events, written by
//! `tracing-subscriber` (human or JSON), tower-http's `SetRequestHeader` and
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
use axum::response::{IntoResponse as _, Response};
use tracing::{Dispatch, Span, field};
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

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
pub struct Log {
    dispatch: Dispatch,
    /// Writes the request lines that wait ([`crate::log_buffer`]); none when every line is
    /// written at once.
    flush: Option<std::sync::Arc<dyn Fn() + Send + Sync>>,
    /// The process's default ([`Log::install_global`]).
    global: bool,
}

impl Log {
    /// The dispatcher in effect where this is called: the process's default (none installed:
    /// nothing is logged).
    pub fn current() -> Self {
        Self {
            dispatch: tracing::dispatcher::get_default(Dispatch::clone),
            flush: None,
            global: false,
        }
    }

    /// Logs to standard error, in `format`, with `filter` (`RUST_LOG` syntax: `info`,
    /// `custos=debug,custos::http=warn`): colours only for a person, when standard error is
    /// a terminal.
    ///
    /// The request lines are written in batches, at most [`crate::log_buffer::FLUSH_EVERY`]
    /// (100 ms) late; every other line at once ([`crate::log_buffer`]). Call
    /// [`Log::flush`] before the process exits.
    pub fn stderr(format: LogFormat, filter: &str) -> Result<Self, String> {
        let ansi = format == LogFormat::Human && std::io::stderr().is_terminal();
        let lines = crate::log_buffer::LogBuffer::new(std::io::stderr);
        let mut log = Self::build(format, filter, lines.clone(), ansi)?;
        log.flush = Some(std::sync::Arc::new(move || lines.flush()));
        Ok(log)
    }

    /// Logs to `writer` (tests capture each app's lines), without colours, each line at once.
    pub fn new<W>(format: LogFormat, filter: &str, writer: W) -> Result<Self, String>
    where
        W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    {
        Self::build(format, filter, writer, false)
    }

    /// Makes this log the process's default (once per process; `false` if one was already
    /// set) and marks it so: an app over a log that is the default runs its connections and
    /// threads without setting it as their scoped default. Then `tracing` takes its fast path
    /// at each span, event and enter — the process's default, with no thread-local lookup
    /// and no shared counter of scoped defaults, which two workers setting one at each poll
    /// of a connection kept bouncing between their cores.
    pub fn install_global(&mut self) -> bool {
        self.global = tracing::dispatcher::set_global_default(self.dispatch.clone()).is_ok();
        self.global
    }

    /// The dispatcher a task or thread of the app must set as its scoped default: none when
    /// this log is the process's default ([`Log::install_global`]).
    pub(crate) fn scoped(&self) -> Option<&Dispatch> {
        (!self.global).then_some(&self.dispatch)
    }

    /// Writes the request lines that wait to be written in a batch.
    pub fn flush(&self) {
        if let Some(flush) = &self.flush {
            flush();
        }
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
            // Colours, for a person at a terminal: the formatter's alone.
            LogFormat::Human if ansi => Dispatch::new(
                registry.with(
                    tracing_subscriber::fmt::layer()
                        .with_writer(writer)
                        .with_ansi(ansi),
                ),
            ),
            LogFormat::Human => {
                let writer = Shared(std::sync::Arc::new(writer));
                Dispatch::new(
                    registry.with(AccessLog {
                        writer: writer.clone(),
                        json: false,
                        formatter: tracing_subscriber::fmt::layer()
                            .with_writer(writer)
                            .with_ansi(false),
                    }),
                )
            }
            // The request's span and its answer line are the access log's; the rest is the
            // formatter's. Same lines as the formatter's own, at a fraction of the cost: the
            // formatter turns the span's fields into JSON text when the span is made, parses
            // and rewrites that text at each `record` (accessor, status, time) and parses it
            // again for the line.
            LogFormat::Json => {
                let writer = Shared(std::sync::Arc::new(writer));
                Dispatch::new(
                    registry.with(AccessLog {
                        writer: writer.clone(),
                        json: true,
                        formatter: tracing_subscriber::fmt::layer()
                            .json()
                            .flatten_event(true)
                            .with_current_span(true)
                            .with_span_list(false)
                            .with_writer(writer),
                    }),
                )
            }
        };
        Ok(Self {
            dispatch,
            flush: None,
            global: false,
        })
    }

    /// The dispatcher.
    pub fn dispatch(&self) -> &Dispatch {
        &self.dispatch
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log(..)")
    }
}

/// The request's span, metrics and log line, inside the request-id layers: opens the
/// request's span ([`request_span`]), runs the request in it — a target over
/// [`crate::pages::MAX_URI_BYTES`] is answered `414` there — then counts the request in the
/// metrics and writes its line ([`answered`]). (Its span and events go to the app's
/// [`Log`]: [`crate::serve`] runs each connection under it; a router served otherwise logs
/// to the process's default.)
///
/// A span of our own rather than tower-http's `TraceLayer`: that one also enters the span at
/// each poll of the answer's body, and keeps a second handle to it there.
pub(crate) async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    // The template (`/v1/subjects/{id}`), never the raw path; labels from closed sets, so
    // what a client sends grows neither the metrics nor the log.
    let route = route_label(
        req.extensions()
            .get::<MatchedPath>()
            .map_or("", MatchedPath::as_str),
    );
    let method = method_label(req.method().as_str());
    let span = request_span(&req, method, route);
    let start = Instant::now();
    // A target too long for any route is answered here (`414`), logged and counted.
    let run = async move {
        match crate::pages::uri_too_long(&req) {
            Some(problem) => problem.into_response(),
            None => next.run(req).await,
        }
    };
    let mut run = std::pin::pin!(run.instrument(span));
    let res = run.as_mut().await;
    let took = start.elapsed();
    state
        .metrics()
        .request(method, route, res.status().as_u16(), took);
    answered(&res, took, run.span());
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
/// authenticates it; status and time when it is answered ([`answered`]).
fn request_span<B>(req: &axum::http::Request<B>, method: &str, route: &str) -> Span {
    let id = req
        .headers()
        .get(X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-");
    // At error level: the span is there whenever anything of the request is logged, so
    // an internal error's line carries the request id even with `RUST_LOG=warn`.
    tracing::error_span!(
        target: TARGET,
        REQUEST_SPAN,
        request_id = %id,
        method = %method,
        route = %route,
        accessor = field::Empty,
        status = field::Empty,
        ms = field::Empty,
    )
}

/// Records the answer in the request's span and writes the request's one line: at info, at
/// warn for a 5xx, at error with the detail for an internal error.
fn answered<B>(res: &Response<B>, latency: Duration, span: &Span) {
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

/// Records the authenticated accessor in the current request's span.
pub(crate) fn record_accessor(accessor: &str) {
    // A name the policy declares, not personal information; bounded by the policy's names.
    Span::current().record("accessor", field::display(accessor));
}

/// The name of a request's span ([`request_span`]).
const REQUEST_SPAN: &str = "request";

/// Whether `meta` is a request's span, whose lines [`AccessLog`] writes.
fn is_request_span(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_span() && meta.target() == TARGET && meta.name() == REQUEST_SPAN
}

/// One writer for two layers.
struct Shared<W>(std::sync::Arc<W>);

impl<W> Clone for Shared<W> {
    fn clone(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }
}

impl<'a, W: MakeWriter<'a>> MakeWriter<'a> for Shared<W> {
    type Writer = W::Writer;

    fn make_writer(&'a self) -> Self::Writer {
        self.0.make_writer()
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> Self::Writer {
        self.0.make_writer_for(meta)
    }
}

/// A request span's fields, as values (kept in the span's extensions until its line).
#[derive(Default)]
struct RequestFields {
    request_id: String,
    method: String,
    route: String,
    accessor: Option<String>,
    status: Option<u64>,
    ms: Option<f64>,
}

impl RequestFields {
    fn text(&mut self, name: &str) -> Option<&mut String> {
        match name {
            "request_id" => Some(&mut self.request_id),
            "method" => Some(&mut self.method),
            "route" => Some(&mut self.route),
            "accessor" => Some(self.accessor.get_or_insert_with(String::new)),
            _ => None,
        }
    }
}

impl field::Visit for RequestFields {
    fn record_str(&mut self, f: &field::Field, value: &str) {
        if let Some(s) = self.text(f.name()) {
            s.clear();
            s.push_str(value);
        }
    }

    fn record_debug(&mut self, f: &field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        if let Some(s) = self.text(f.name()) {
            s.clear();
            let _ = write!(s, "{value:?}");
        }
    }

    fn record_u64(&mut self, f: &field::Field, value: u64) {
        if f.name() == "status" {
            self.status = Some(value);
        }
    }

    fn record_f64(&mut self, f: &field::Field, value: f64) {
        if f.name() == "ms" {
            self.ms = Some(value);
        }
    }
}

/// Writes an event's fields as JSON object entries, as `tracing-serde` does (a value neither
/// a number nor a boolean is its `Debug` text).
struct JsonFields<'b> {
    out: &'b mut Vec<u8>,
    scratch: &'b mut String,
}

impl JsonFields<'_> {
    fn key(&mut self, f: &field::Field) {
        self.out.push(b',');
        json_str(self.out, f.name());
        self.out.push(b':');
    }
}

impl field::Visit for JsonFields<'_> {
    fn record_str(&mut self, f: &field::Field, value: &str) {
        self.key(f);
        json_str(self.out, value);
    }

    fn record_debug(&mut self, f: &field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        self.scratch.clear();
        let _ = write!(self.scratch, "{value:?}");
        self.key(f);
        json_str(self.out, self.scratch);
    }

    fn record_u64(&mut self, f: &field::Field, value: u64) {
        self.key(f);
        json_num(self.out, value);
    }

    fn record_i64(&mut self, f: &field::Field, value: i64) {
        self.key(f);
        json_num(self.out, value);
    }

    fn record_f64(&mut self, f: &field::Field, value: f64) {
        self.key(f);
        json_num(self.out, value);
    }

    fn record_bool(&mut self, f: &field::Field, value: bool) {
        self.key(f);
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
    }
}

/// `s` as a JSON string, escaped as the formatter's `serde_json` escapes it.
fn json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A number as JSON, as `serde_json` writes it (a float not finite: `null`).
fn json_num(out: &mut Vec<u8>, v: impl serde::Serialize) {
    let _ = serde_json::to_writer(&mut *out, &v);
}

/// The request spans and their lines, in front of the formatter (`formatter`), which gets
/// every other span and event. A request's line is the same line `tracing-subscriber`'s
/// formatter writes for the answer event in the request's span — in JSON: `timestamp`,
/// `level`, the event's fields, `target`, and under `span` the request's fields in key order,
/// then its `name` — written from the span's fields kept as values, with one buffer per
/// thread. In front of the formatter, not beside it under a per-layer filter: such a filter
/// looks the span up at each enter, exit and record, several times a request.
struct AccessLog<W, F> {
    writer: W,
    /// JSON, else text as the formatter writes it without colours.
    json: bool,
    formatter: F,
}

impl<S, W, F> tracing_subscriber::Layer<S> for AccessLog<W, F>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
    F: tracing_subscriber::Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.formatter.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.formatter.on_layer(subscriber);
    }

    fn register_callsite(
        &self,
        meta: &'static tracing::Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        self.formatter.register_callsite(meta)
    }

    fn enabled(&self, meta: &tracing::Metadata<'_>, ctx: Context<'_, S>) -> bool {
        self.formatter.enabled(meta, ctx)
    }

    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::Id,
        ctx: Context<'_, S>,
    ) {
        if !is_request_span(attrs.metadata()) {
            return self.formatter.on_new_span(attrs, id, ctx);
        }
        let mut fields = RequestFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(&self, id: &tracing::Id, values: &tracing::span::Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            if is_request_span(span.metadata()) {
                if let Some(fields) = span.extensions_mut().get_mut::<RequestFields>() {
                    values.record(fields);
                }
                return;
            }
        }
        self.formatter.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, span: &tracing::Id, follows: &tracing::Id, ctx: Context<'_, S>) {
        self.formatter.on_follows_from(span, follows, ctx);
    }

    fn on_enter(&self, id: &tracing::Id, ctx: Context<'_, S>) {
        self.formatter.on_enter(id, ctx);
    }

    fn on_exit(&self, id: &tracing::Id, ctx: Context<'_, S>) {
        self.formatter.on_exit(id, ctx);
    }

    fn on_close(&self, id: tracing::Id, ctx: Context<'_, S>) {
        self.formatter.on_close(id, ctx);
    }

    fn on_id_change(&self, old: &tracing::Id, new: &tracing::Id, ctx: Context<'_, S>) {
        self.formatter.on_id_change(old, new, ctx);
    }

    fn on_event(&self, event: &tracing::Event<'_>, ctx: Context<'_, S>) {
        let span = if event.is_contextual() {
            ctx.lookup_current()
        } else {
            event.parent().and_then(|id| ctx.span(id))
        };
        let Some(span) = span.filter(|s| is_request_span(s.metadata())) else {
            return self.formatter.on_event(event, ctx);
        };
        let meta = event.metadata();
        thread_local! {
            static BUFFERS: std::cell::RefCell<(Vec<u8>, String)> =
                const { std::cell::RefCell::new((Vec::new(), String::new())) };
        }
        let write = |(out, scratch): &mut (Vec<u8>, String)| {
            use std::io::Write as _;
            out.clear();
            scratch.clear();
            timestamp(scratch);
            if !self.json {
                human_line(out, scratch, event, &ctx);
            } else {
                out.extend_from_slice(b"{\"timestamp\":");
                json_str(out, scratch);
                out.extend_from_slice(b",\"level\":\"");
                out.extend_from_slice(meta.level().as_str().as_bytes());
                out.push(b'"');
                event.record(&mut JsonFields { out, scratch });
                out.extend_from_slice(b",\"target\":");
                json_str(out, meta.target());
                out.extend_from_slice(b",\"span\":{");
                if let Some(f) = span.extensions().get::<RequestFields>() {
                    // In key order, as the formatter writes them.
                    if let Some(accessor) = &f.accessor {
                        out.extend_from_slice(b"\"accessor\":");
                        json_str(out, accessor);
                        out.push(b',');
                    }
                    out.extend_from_slice(b"\"method\":");
                    json_str(out, &f.method);
                    if let Some(ms) = f.ms {
                        out.extend_from_slice(b",\"ms\":");
                        json_num(out, ms);
                    }
                    out.extend_from_slice(b",\"request_id\":");
                    json_str(out, &f.request_id);
                    out.extend_from_slice(b",\"route\":");
                    json_str(out, &f.route);
                    if let Some(status) = f.status {
                        out.extend_from_slice(b",\"status\":");
                        json_num(out, status);
                    }
                    out.push(b',');
                }
                out.extend_from_slice(b"\"name\":");
                json_str(out, span.name());
                out.push(b'}');
                out.extend_from_slice(b"}\n");
            }
            // One `write_all` per line, as the formatter: lines of concurrent requests do not
            // interleave.
            let _ = self.writer.make_writer_for(meta).write_all(out);
        };
        // A line written while writing one (a writer that logs) gets buffers of its own.
        BUFFERS.with(|b| match b.try_borrow_mut() {
            Ok(mut b) => write(&mut b),
            Err(_) => write(&mut (Vec::new(), String::new())),
        });
    }
}

/// Writes the time now as `tracing-subscriber`'s `SystemTime` does
/// (`2026-12-04T22:58:01.123456Z`), the date and time of day formatted once a second per
/// thread.
fn timestamp(out: &mut String) {
    use std::fmt::Write as _;
    thread_local! {
        static SECOND: std::cell::RefCell<(u64, String)> =
            const { std::cell::RefCell::new((u64::MAX, String::new())) };
    }
    let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) else {
        // Before 1970: as the formatter writes it.
        let _ = tracing_subscriber::fmt::time::FormatTime::format_time(
            &tracing_subscriber::fmt::time::SystemTime,
            &mut tracing_subscriber::fmt::format::Writer::new(out),
        );
        return;
    };
    let secs = now.as_secs();
    SECOND.with(|second| {
        let mut second = second.borrow_mut();
        if second.0 != secs {
            second.1.clear();
            let days = i64::try_from(secs / 86_400).unwrap_or(0);
            let (y, m, d) = custos_vault::vault::civil_from_days(days);
            let t = secs % 86_400;
            let _ = write!(
                second.1,
                "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
                t / 3600,
                t / 60 % 60,
                t % 60
            );
            second.0 = secs;
        }
        out.push_str(&second.1);
    });
    let _ = write!(out, ".{:06}Z", now.subsec_micros());
}

/// A request's line as text, as the formatter writes it without colours: time, level, the
/// spans from the root with their fields, target, the event's fields.
fn human_line<S>(
    out: &mut Vec<u8>,
    scratch: &mut String,
    event: &tracing::Event<'_>,
    ctx: &Context<'_, S>,
) where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    use std::fmt::Write as _;
    use tracing_subscriber::fmt::FormatFields as _;
    use tracing_subscriber::fmt::format::{DefaultFields, Writer};
    let meta = event.metadata();
    // The timestamp, in `scratch` from the caller.
    out.extend_from_slice(scratch.as_bytes());
    out.extend_from_slice(match *meta.level() {
        tracing::Level::TRACE => b" TRACE ",
        tracing::Level::DEBUG => b" DEBUG ",
        tracing::Level::INFO => b"  INFO ",
        tracing::Level::WARN => b"  WARN ",
        tracing::Level::ERROR => b" ERROR ",
    });
    if let Some(scope) = ctx.event_scope(event) {
        for span in scope.from_root() {
            out.extend_from_slice(span.name().as_bytes());
            let ext = span.extensions();
            scratch.clear();
            if let Some(f) = ext.get::<RequestFields>() {
                let _ = write!(
                    scratch,
                    "request_id={} method={} route={}",
                    f.request_id, f.method, f.route
                );
                if let Some(accessor) = &f.accessor {
                    let _ = write!(scratch, " accessor={accessor}");
                }
                if let Some(status) = f.status {
                    let _ = write!(scratch, " status={status}");
                }
                if let Some(ms) = f.ms {
                    let _ = write!(scratch, " ms={ms:?}");
                }
            } else if let Some(f) =
                ext.get::<tracing_subscriber::fmt::FormattedFields<DefaultFields>>()
            {
                scratch.push_str(f);
            }
            if !scratch.is_empty() {
                out.push(b'{');
                out.extend_from_slice(scratch.as_bytes());
                out.push(b'}');
            }
            out.push(b':');
        }
        out.push(b' ');
    }
    out.extend_from_slice(meta.target().as_bytes());
    out.extend_from_slice(b": ");
    scratch.clear();
    let _ = DefaultFields::new().format_fields(Writer::new(scratch), event);
    out.extend_from_slice(scratch.as_bytes());
    out.push(b'\n');
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

    /// A writer into shared bytes.
    #[derive(Clone, Default)]
    struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Capture {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Capture {
        /// The lines written, each without its timestamp (the rest must be the same).
        fn lines(&self, format: LogFormat) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
            text.lines()
                .map(|l| {
                    // The text, not a parsed value: the order of the keys counts.
                    let (time, rest) = match format {
                        LogFormat::Json => {
                            let v: serde_json::Value = serde_json::from_str(l).unwrap();
                            let at = l.find(",\"level\"").unwrap();
                            (v["timestamp"].as_str().unwrap().to_string(), &l[at..])
                        }
                        LogFormat::Human => {
                            let at = l.find(' ').unwrap();
                            (l[..at].to_string(), &l[at..])
                        }
                    };
                    assert!(time.ends_with('Z') && time.len() == 27, "{l}");
                    rest.to_string()
                })
                .collect()
        }
    }

    /// Requests as the server logs them: made, an accessor for some, answered.
    fn requests() {
        let detail = "storage \"failure\"\n\u{1b}[31m: é ✓";
        for (i, (status, accessor, internal)) in [
            (200u16, Some("meeting-center"), None),
            (404, None, None),
            (503, Some("a \"quoted\" name"), None),
            (500, Some("hr"), Some(detail)),
        ]
        .into_iter()
        .enumerate()
        {
            let req = axum::http::Request::builder()
                .uri("/v1/subjects/x")
                .header(
                    X_REQUEST_ID,
                    format!("0193a2b4-0000-7000-8000-00000000000{i}"),
                )
                .body(())
                .unwrap();
            let span = request_span(&req, "GET", "/v1/subjects/{id}");
            if let Some(a) = accessor {
                span.in_scope(|| record_accessor(a));
            }
            // Other events in the request are on lines of the access log too.
            span.in_scope(|| tracing::info!(target: TARGET, n = 3, s = "a\tb\u{1}\\", "inside"));
            let mut res = Response::new(());
            *res.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
            if let Some(d) = internal {
                res.extensions_mut().insert(InternalDetail(d.to_string()));
            }
            answered(&res, Duration::from_micros(1234), &span);
        }
        tracing::warn!(target: TARGET, "outside");
    }

    #[test]
    fn the_request_lines_are_the_formatters_own() {
        let filters = [
            "trace",
            "warn",
            "custos::http=error",
            "custos::http=off,info",
        ];
        for (format, filter) in [LogFormat::Json, LogFormat::Human]
            .into_iter()
            .flat_map(|f| filters.map(|filter| (f, filter)))
        {
            let ours = Capture::default();
            let log = {
                let w = ours.clone();
                Log::new(format, filter, move || w.clone()).unwrap()
            };
            tracing::dispatcher::with_default(log.dispatch(), requests);
            // The formatter alone, as the server logged before the access log.
            let theirs = Capture::default();
            let reference = {
                let w = theirs.clone();
                let registry =
                    tracing_subscriber::registry().with(filter.parse::<Targets>().unwrap());
                let layer = tracing_subscriber::fmt::layer().with_writer(move || w.clone());
                match format {
                    LogFormat::Json => Dispatch::new(
                        registry.with(
                            layer
                                .json()
                                .flatten_event(true)
                                .with_current_span(true)
                                .with_span_list(false),
                        ),
                    ),
                    LogFormat::Human => Dispatch::new(registry.with(layer.with_ansi(false))),
                }
            };
            tracing::dispatcher::with_default(&reference, requests);
            let (ours, theirs) = (ours.lines(format), theirs.lines(format));
            assert_eq!(ours, theirs, "{format:?} {filter}");
            let lines = ours.len();
            match filter {
                "trace" => assert_eq!(lines, 9, "{ours:#?}"),
                "warn" => assert_eq!(lines, 3, "{ours:#?}"),
                "custos::http=error" => assert_eq!(lines, 1, "{ours:#?}"),
                _ => assert_eq!(lines, 0, "{ours:#?}"),
            }
        }
    }

    #[test]
    fn the_timestamp_is_the_formatters() {
        for (days, date) in [
            (0, (1970, 1, 1)),
            (11_016, (2000, 2, 29)),
            (11_017, (2000, 3, 1)),
            (20_791, (2026, 12, 4)),
            (47_482, (2100, 1, 1)),
            (47_540, (2100, 2, 28)),
            (47_541, (2100, 3, 1)),
        ] {
            assert_eq!(custos_vault::vault::civil_from_days(days), date, "{days}");
        }
        // Against the formatter's own, to the second (retried across a second's turn).
        for _ in 0..100 {
            let (mut ours, mut theirs) = (String::new(), String::new());
            timestamp(&mut ours);
            let _ = tracing_subscriber::fmt::time::FormatTime::format_time(
                &tracing_subscriber::fmt::time::SystemTime,
                &mut tracing_subscriber::fmt::format::Writer::new(&mut theirs),
            );
            assert_eq!((ours.len(), ours.ends_with('Z')), (27, true), "{ours}");
            if ours[..19] == theirs[..19] {
                return;
            }
        }
        panic!("the timestamps never agreed to the second");
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
