//! The Custos HTTP API over the vault: collection, purpose-limited reads, records, decisions,
//! the ledger's verification, metrics, OpenAPI and the privacy notice.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it on hyper's HTTP/1
//! connections until a shutdown signal, letting requests in flight finish within a deadline.
//! Each HTTP resource is one module: [`subjects`], [`records`], [`decisions`], [`ledger`],
//! [`pages`].
//!
//! **Architecture invariant:** this crate knows no SQL and does no crypto; every personal
//! value comes from and goes to `custos_vault::Vault`, and the vault is reachable only through
//! the [`Caller`] extractor, so a data route cannot compile without an authenticated caller.
//!
//! **Architecture invariant:** logs carry request ids, routes (templates, never raw paths),
//! statuses, codes and the vault's value-free error messages — never bodies, query values
//! or personal information (see `observe.rs`).

pub mod analytics;
mod auth;
pub mod beacon;
pub mod consents;
pub mod cookies;
pub mod decisions;
pub mod demo;
pub mod export;
pub mod inbound_mail;
mod input;
pub mod instruments;
pub mod ledger;
pub mod limits;
mod log_buffer;
pub mod mail;
pub mod mailings;
pub mod me;
mod metrics;
mod observe;
pub mod openapi;
pub mod pages;
pub mod people;
pub mod problem;
pub mod records;
pub mod referrals;
pub mod requests;
pub mod subjects;
pub mod tls;
pub mod transport;
pub mod wellknown;
mod workers;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, patch, post};
use custos_vault::Vault;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceBuilder;
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::{CompressionLayer, CompressionLevel};
use tower_http::request_id::PropagateRequestIdLayer;
use tower_http::set_header::SetRequestHeaderLayer;
use tracing::instrument::WithSubscriber as _;

pub use auth::Caller;
pub use metrics::Metrics;
pub use observe::{Log, LogFormat};
pub use problem::Problem;

/// Every route the router serves, as `(method, path)`; `/openapi.json` documents each.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/subjects"),
    ("GET", "/v1/subjects/{id}"),
    ("POST", "/v1/subjects/{id}/data"),
    ("POST", "/v1/subjects/{id}/records"),
    ("GET", "/v1/subjects/{id}/records"),
    ("POST", "/v1/subjects/{id}/consents"),
    ("GET", "/v1/subjects/{id}/consents"),
    ("GET", "/v1/subjects/{id}/preferences"),
    ("PUT", "/v1/subjects/{id}/preferences"),
    ("POST", "/v1/decisions"),
    ("POST", "/v1/instruments"),
    ("GET", "/v1/instruments/{id}"),
    ("POST", "/v1/people/sign-in"),
    ("POST", "/v1/people/sign-in/verify"),
    ("POST", "/v1/people/sign-out"),
    ("GET", "/v1/me"),
    ("GET", "/v1/me/export"),
    ("GET", "/v1/me/ledger"),
    ("PATCH", "/v1/me/data"),
    ("POST", "/v1/me/deactivate"),
    ("POST", "/v1/me/erase"),
    ("GET", "/v1/me/consents"),
    ("POST", "/v1/me/consents"),
    ("GET", "/v1/me/preferences"),
    ("PUT", "/v1/me/preferences"),
    ("POST", "/v1/requests"),
    ("GET", "/v1/requests"),
    ("GET", "/v1/requests/{id}"),
    ("POST", "/v1/requests/{id}/verify"),
    ("POST", "/v1/requests/{id}/complete"),
    ("POST", "/v1/requests/{id}/refuse"),
    ("GET", "/v1/ledger/verify"),
    ("GET", "/v1/ledger/checkpoint"),
    ("GET", "/v1/ledger/key"),
    ("GET", "/v1/ledger/proof/inclusion"),
    ("GET", "/v1/ledger/proof/consistency"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/privacy"),
    ("GET", "/.well-known/jwks.json"),
    ("POST", "/v1/inbound-mail"),
    ("POST", "/v1/referrals"),
    ("POST", "/v1/mailings"),
    ("GET", "/v1/mailings/{id}"),
    ("GET", "/u/{token}"),
    ("POST", "/u/{token}"),
    ("GET", "/consent.js"),
    ("POST", "/v1/cookie-consents"),
    ("GET", "/.well-known/gpc.json"),
    ("GET", "/b.gif"),
    ("POST", "/v1/telemetry"),
    ("GET", "/v1/analytics/pages"),
    ("GET", "/v1/analytics/gpc"),
    ("GET", "/v1/analytics/telemetry"),
];

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Longest a request may take before it is answered `503 request_timeout`.
    pub request_timeout: Duration,
    /// Longest a client may take to send a request's line and headers, and to start the next
    /// request on a kept-alive connection: then the connection is closed, so a client that
    /// sends half a request holds nothing for long.
    pub header_read_timeout: Duration,
    /// Longest a graceful shutdown waits for requests in flight; connections still open then
    /// are closed.
    pub shutdown_timeout: Duration,
    /// Threads that run vault calls: at most this many run at once. Short calls (a read's
    /// decision, a consent change) run on the runtime's own threads when the store is
    /// embedded (`AppState::on_vault_short`), and none of them waits here for a commit.
    pub vault_threads: usize,
    /// Address ranges of TLS-terminating proxies in front of the server (`--tls-proxy`): a
    /// request from one of them counts as TLS only when it carries `X-Forwarded-Proto:
    /// https`, and as plain HTTP from another host otherwise (`transport.rs`).
    pub tls_proxy: Vec<transport::Cidr>,
    /// The server's public base URL (`--public-url`), which mailings' unsubscribe links
    /// start with (`mailings.rs`); `None`: the request's `Host`.
    pub public_url: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(5),
            shutdown_timeout: Duration::from_secs(10),
            vault_threads: 32,
            tls_proxy: Vec::new(),
            public_url: None,
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    // Private: handlers reach the vault only through `Caller`. `None` only while dropping.
    vault: Option<Arc<Vault>>,
    workers: workers::Workers,
    /// Per-client token buckets of the sign-in routes (`limits.rs`).
    clients: limits::ClientLimiter,
    /// Per-client token buckets of `POST /v1/cookie-consents` (`cookies.rs`).
    cookie_clients: limits::ClientLimiter,
    metrics: Metrics,
    config: Config,
    log: Log,
    notice_html: axum::body::Bytes,
    openapi: String,
}

impl AppState {
    /// State over a vault, with default limits, logging where the process's default
    /// subscriber does ([`Log::current`]). Fails when the vault's threads cannot be started.
    pub fn new(vault: Arc<Vault>) -> std::io::Result<Self> {
        Self::with(vault, Config::default(), Log::current())
    }

    /// State with explicit limits and log.
    pub fn with(vault: Arc<Vault>, config: Config, log: Log) -> std::io::Result<Self> {
        let workers = workers::Workers::start(config.vault_threads, &log)?;
        // The very bytes the vault hashed for consent records (`Vault::notice_sha256`).
        let notice_html = axum::body::Bytes::from(vault.notice_html().as_bytes().to_vec());
        let openapi = openapi::document(vault.policy()).to_string();
        Ok(Self(Arc::new(Shared {
            vault: Some(vault),
            workers,
            clients: limits::ClientLimiter::new("sign-in"),
            cookie_clients: limits::ClientLimiter::new("cookie consent"),
            metrics: Metrics::default(),
            config,
            log,
            notice_html,
            openapi,
        })))
    }

    /// The vault, for what needs no store (memory only); `None` while shutting down.
    pub(crate) fn vault(&self) -> Option<&Vault> {
        self.0.vault.as_deref()
    }

    /// The limits and settings the state was made with.
    pub(crate) fn config(&self) -> &Config {
        &self.0.config
    }

    /// The sign-in routes' per-client limiter.
    pub(crate) fn clients(&self) -> &limits::ClientLimiter {
        &self.0.clients
    }

    /// The cookie consents' per-client limiter.
    pub(crate) fn cookie_clients(&self) -> &limits::ClientLimiter {
        &self.0.cookie_clients
    }

    /// The vault, or a 500 once it is closed (shutting down).
    fn open_vault(&self) -> Result<&Arc<Vault>, Problem> {
        self.0
            .vault
            .as_ref()
            .ok_or_else(|| Problem::internal("the vault is closed"))
    }

    /// Runs a vault call on a vault thread.
    async fn on_vault<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault) -> custos_vault::Result<T> + Send + 'static,
    {
        let vault = Arc::clone(self.open_vault()?);
        self.0
            .workers
            .run(move || f(&vault))
            .await?
            .map_err(Problem::from)
    }

    /// Runs a short vault call — one person's state read and decided on, a consent
    /// change's checks and signature: tens of microseconds — on the request's own thread
    /// when the store is embedded, sparing the two thread hand-offs of
    /// [`AppState::on_vault`] (a vault thread woken, then the request's task). SQLite has no
    /// runtime of its own and its readers never wait for writers; on PostgreSQL, whose
    /// client starts a runtime inside each call, it runs on a vault thread. The refusals
    /// the call ledgers are queued, not waited for on this thread
    /// ([`Vault::queueing_records`]); the answer waits for them here, as a future. A panic
    /// fails that request only, as on a vault thread.
    async fn on_vault_short<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault) -> custos_vault::Result<T> + Send + 'static,
    {
        let vault = self.open_vault()?;
        if vault.store().backend() != "sqlite" {
            return self.on_vault(f).await;
        }
        let (tx, durable) = tokio::sync::oneshot::channel();
        let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            vault.queueing_records(f, move |r| {
                let _ = tx.send(r);
            })
        }));
        let out =
            out.map_err(|_| Problem::internal("a vault call failed without an answer (panic)"))?;
        // INVARIANT: audit before answer — the refusals' entries are durable first.
        durable
            .await
            .map_err(|_| Problem::internal("the ledger writer stopped"))?
            .map_err(Problem::from)?;
        out.map_err(Problem::from)
    }

    /// The `done` of a vault's `begin_*` call and the future of what it is called with:
    /// the change is checked and queued by a short call ([`AppState::on_vault_short`]), its
    /// answer awaited here once its group commit is durable — no thread waits through the
    /// fsyncs.
    pub(crate) fn begun<T: Send + 'static>() -> (
        impl FnOnce(custos_vault::Result<T>) + Send + 'static,
        impl std::future::Future<Output = Result<T, Problem>>,
    ) {
        let (tx, rx) = tokio::sync::oneshot::channel::<custos_vault::Result<T>>();
        let done = move |r| {
            let _ = tx.send(r);
        };
        let answer = async move {
            rx.await
                .map_err(|_| Problem::internal("the consent writer stopped"))?
                .map_err(Problem::from)
        };
        (done, answer)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.0.log
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Dropping the last handle closes the vault's PostgreSQL clients, which must not
        // happen on a thread inside a Tokio runtime (see `workers.rs`).
        if let Some(vault) = self.vault.take() {
            if tokio::runtime::Handle::try_current().is_ok() {
                let _ = std::thread::Builder::new()
                    .name("custos-vault-close".into())
                    .spawn(move || drop(vault))
                    .map(std::thread::JoinHandle::join);
            }
        }
    }
}

/// Responses at least this large are compressed when the client accepts gzip: the OpenAPI
/// document, the notice, pages of records, the metrics. A smaller body gains too little to
/// pay for the work and the `content-encoding`.
const COMPRESS_FROM_BYTES: u64 = 1024;

/// The router: every route of the v1 contract, inside the service stack (outermost first):
/// a fresh `x-request-id` on the request, replacing any the client sent, and copied to the
/// answer; the request's span, its count in the metrics and its one log line
/// (`observe.rs`); gzip; the request's deadline (`503 request_timeout`); the body limit
/// (`413 body_too_large`, answered where the body is read).
pub fn app(state: AppState) -> Router {
    let limit = state.0.config.body_limit;
    let timeout = state.0.config.request_timeout;
    let stack = ServiceBuilder::new()
        .layer(SetRequestHeaderLayer::overriding(
            observe::X_REQUEST_ID,
            observe::request_id,
        ))
        .layer(PropagateRequestIdLayer::new(observe::X_REQUEST_ID))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        // The fastest level: most of what gzip gains on JSON and HTML, for a fraction of the
        // CPU, which the vault needs for sealing and opening.
        .layer(
            CompressionLayer::new()
                .quality(CompressionLevel::Fastest)
                .compress_when(SizeAbove::new(COMPRESS_FROM_BYTES)),
        )
        .layer(HandleErrorLayer::new(
            move |error: tower::BoxError| async move { observe::failed(&error, timeout) },
        ))
        .layer(tower::timeout::TimeoutLayer::new(timeout));
    Router::new()
        .route("/v1/subjects", post(subjects::collect))
        .route("/v1/subjects/{id}", get(subjects::read))
        .route("/v1/subjects/{id}/data", post(subjects::collect_more))
        .route(
            "/v1/subjects/{id}/records",
            post(records::append).get(records::read),
        )
        .route(
            "/v1/subjects/{id}/consents",
            post(consents::record).get(consents::list),
        )
        .route(
            "/v1/subjects/{id}/preferences",
            get(consents::preferences).put(consents::set_preferences),
        )
        .route("/v1/decisions", post(decisions::decide))
        .route("/v1/instruments", post(instruments::register))
        .route("/v1/instruments/{id}", get(instruments::show))
        .route("/v1/people/sign-in", post(people::sign_in))
        .route("/v1/people/sign-in/verify", post(people::verify))
        .route("/v1/people/sign-out", post(people::sign_out))
        .route("/v1/me", get(me::overview))
        .route("/v1/me/export", get(me::export))
        .route("/v1/me/ledger", get(me::ledger))
        .route("/v1/me/data", patch(me::correct))
        .route("/v1/me/deactivate", post(me::deactivate))
        .route("/v1/me/erase", post(me::erase))
        .route("/v1/me/consents", get(me::consents).post(me::consent))
        .route(
            "/v1/me/preferences",
            get(me::preferences).put(me::set_preferences),
        )
        .route("/v1/requests", post(requests::create).get(requests::list))
        .route("/v1/requests/{id}", get(requests::show))
        .route("/v1/requests/{id}/verify", post(requests::verify))
        .route("/v1/requests/{id}/complete", post(requests::complete))
        .route("/v1/requests/{id}/refuse", post(requests::refuse))
        .route("/v1/ledger/verify", get(ledger::verify))
        .route("/v1/ledger/checkpoint", get(ledger::checkpoint))
        .route("/v1/ledger/key", get(ledger::key))
        .route("/v1/ledger/proof/inclusion", get(ledger::inclusion))
        .route("/v1/ledger/proof/consistency", get(ledger::consistency))
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(pages::metrics))
        .route("/openapi.json", get(pages::openapi))
        .route("/privacy", get(pages::privacy))
        .route("/.well-known/jwks.json", get(wellknown::jwks))
        .route("/v1/inbound-mail", post(inbound_mail::intake))
        .route("/v1/referrals", post(referrals::refer))
        .route("/v1/mailings", post(mailings::send))
        .route("/v1/mailings/{id}", get(mailings::show))
        .route(
            "/u/{token}",
            get(mailings::page_get).post(mailings::unsubscribe),
        )
        .route("/consent.js", get(cookies::consent_js))
        .route("/v1/cookie-consents", post(cookies::record))
        .route("/.well-known/gpc.json", get(cookies::gpc_json))
        .route("/b.gif", get(beacon::beacon))
        .route("/v1/telemetry", post(analytics::telemetry))
        .route("/v1/analytics/pages", get(analytics::pages))
        .route("/v1/analytics/gpc", get(analytics::gpc))
        .route("/v1/analytics/telemetry", get(analytics::telemetry_counts))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(stack)
        .with_state(state)
}

/// Serves the app on a listener (a `TcpListener`, a [`tls::TlsListener`]) until `shutdown`
/// completes. Then it stops accepting, lets each connection finish its request in flight (idle
/// ones close at once), and closes whatever is still open after
/// [`Config::shutdown_timeout`]. Every acknowledged write's ledger entry is already durable
/// (the vault commits it before answering), so nothing is left to flush but dropping the
/// vault.
///
/// hyper's HTTP/1 connections directly, not `axum::serve`: it has no header read timeout
/// ([`Config::header_read_timeout`]) and no shutdown deadline, and a client sending half a
/// request would hold its connection, and the shutdown, indefinitely.
///
/// Each request carries its connection's peer address (`ConnectInfo<SocketAddr>`) and, on a
/// TLS connection, the mark the transport check reads (`transport.rs`); the address is used
/// for that check only, never logged.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: transport::Peer,
{
    match state.log().scoped().cloned() {
        Some(dispatch) => {
            run(listener, state, shutdown)
                .with_subscriber(dispatch)
                .await
        }
        None => run(listener, state, shutdown).await,
    }
}

async fn run<L>(
    mut listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: transport::Peer,
{
    let config = state.0.config.clone();
    let dispatch = state.log().scoped().cloned();
    let service = TowerToHyperService::new(app(state));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let graceful = GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            // The peer's address goes with each request to the transport check only: it is
            // personal information, and never logged.
            (io, peer) = listener.accept() => {
                let addr = transport::Peer::socket_addr(&peer);
                let tls = transport::Peer::is_tls(&peer);
                let service = service.clone();
                let per_request = hyper::service::service_fn(
                    move |mut req: axum::http::Request<hyper::body::Incoming>| {
                        req.extensions_mut().insert(axum::extract::ConnectInfo(addr));
                        if tls {
                            req.extensions_mut().insert(transport::Tls);
                        }
                        hyper::service::Service::call(&service, req)
                    },
                );
                let conn = http.serve_connection(TokioIo::new(io), per_request);
                let conn = graceful.watch(conn);
                let task = async move {
                    // A client that went away, sent no valid request, or took longer than
                    // the header read timeout. hyper's error names the failure, never the
                    // bytes the client sent.
                    if let Err(e) = conn.await {
                        tracing::debug!(target: observe::TARGET, error = %e, "connection closed");
                    }
                };
                match &dispatch {
                    Some(d) => connections.spawn(task.with_subscriber(d.clone())),
                    None => connections.spawn(task),
                };
            }
            // Reap finished connections, so the set holds only open ones.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    // Stop accepting (a `TlsListener` closes its socket when dropped).
    drop(listener);
    tracing::info!(
        target: observe::TARGET,
        connections = connections.len(),
        "shutting down: finishing the requests in flight"
    );
    if tokio::time::timeout(config.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            target: observe::TARGET,
            connections = connections.len(),
            "the shutdown deadline passed; closing the connections still open"
        );
    }
    // Aborts what is left, and waits until each task has dropped its connection.
    connections.shutdown().await;
    Ok(())
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this is called, not when the future is first polled, so a signal that arrives right after
/// the server says it is listening is not lost (nor kills it). Call within a Tokio runtime.
pub fn shutdown_signal() -> std::io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {},
                _ = interrupt.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
