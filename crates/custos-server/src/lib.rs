//! The Custos HTTP API over the vault: collection, purpose-limited reads, records, decisions,
//! the ledger's verification, metrics, OpenAPI and the privacy notice.
//!
//! [`app`] builds the router from an [`AppState`]; [`serve`] runs it until a shutdown signal,
//! letting requests in flight finish. Each HTTP resource is one module: [`subjects`],
//! [`records`], [`decisions`], [`ledger`], [`pages`].
//!
//! **Architecture invariant:** this crate knows no SQL and does no crypto; every personal
//! value comes from and goes to `custos_vault::Vault`, and the vault is reachable only through
//! the [`Caller`] extractor, so a data route cannot compile without an authenticated caller.
//!
//! **Architecture invariant:** logs carry request ids, routes (templates, never raw paths),
//! statuses, codes and the vault's value-free error messages — never bodies, query values
//! or personal information.

mod auth;
pub mod decisions;
pub mod demo;
mod input;
pub mod ledger;
mod metrics;
mod observe;
pub mod openapi;
pub mod pages;
pub mod problem;
pub mod records;
pub mod subjects;
pub mod tls;
mod workers;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use custos_vault::Vault;

pub use auth::Caller;
pub use metrics::Metrics;
pub use problem::Problem;

/// Every route the router serves, as `(method, path)`; `/openapi.json` documents each.
pub const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/subjects"),
    ("GET", "/v1/subjects/{id}"),
    ("POST", "/v1/subjects/{id}/data"),
    ("POST", "/v1/subjects/{id}/records"),
    ("GET", "/v1/subjects/{id}/records"),
    ("POST", "/v1/decisions"),
    ("GET", "/v1/ledger/verify"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/privacy"),
];

/// Limits of the server.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Longest a request may take before it is answered `503 request_timeout`.
    pub request_timeout: Duration,
    /// Threads that run vault calls: at most this many run at once. A read holds its thread
    /// while it waits for its ledger entry's group commit, so this also bounds how many reads
    /// share one commit.
    pub vault_threads: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            vault_threads: 32,
        }
    }
}

/// Where log lines go: standard error unless a test captures them.
#[derive(Clone)]
pub struct Log(Arc<dyn Fn(&str) + Send + Sync>);

impl Log {
    /// Lines to standard error, each with one `write` (standard error is unbuffered: a
    /// formatted `eprintln!` writes piece by piece, and lines of concurrent requests could
    /// interleave).
    pub fn stderr() -> Self {
        Self(Arc::new(|line| {
            use std::io::Write as _;
            let mut buf = String::with_capacity(line.len() + 1);
            buf.push_str(line);
            buf.push('\n');
            let _ = std::io::stderr().write_all(buf.as_bytes());
        }))
    }

    /// Lines to a function (tests capture them).
    pub fn to(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// Writes a line.
    pub fn line(&self, line: &str) {
        (self.0)(line);
    }
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Log")
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
    metrics: Metrics,
    config: Config,
    log: Log,
    notice_html: String,
    openapi: String,
    boot: u32,
    requests: AtomicU64,
}

impl AppState {
    /// State over a vault, with default limits, logging to standard error. Fails when the
    /// vault's threads cannot be started.
    pub fn new(vault: Arc<Vault>) -> std::io::Result<Self> {
        Self::with(vault, Config::default(), Log::stderr())
    }

    /// State with explicit limits and log.
    pub fn with(vault: Arc<Vault>, config: Config, log: Log) -> std::io::Result<Self> {
        let workers = workers::Workers::start(config.vault_threads)?;
        let notice_html = custos_policy::render::html(vault.policy());
        let openapi = openapi::document(vault.policy()).to_string();
        let boot = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
        Ok(Self(Arc::new(Shared {
            vault: Some(vault),
            workers,
            metrics: Metrics::default(),
            config,
            log,
            notice_html,
            openapi,
            boot,
            requests: AtomicU64::new(0),
        })))
    }

    /// The vault, for what needs no store (memory only); `None` while shutting down.
    pub(crate) fn vault(&self) -> Option<&Vault> {
        self.0.vault.as_deref()
    }

    /// Runs a vault call on a vault thread.
    async fn on_vault<T, F>(&self, f: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault) -> custos_vault::Result<T> + Send + 'static,
    {
        let vault = self
            .0
            .vault
            .as_ref()
            .map(Arc::clone)
            .ok_or_else(|| Problem::internal("the vault is closed"))?;
        self.0
            .workers
            .run(move || f(&vault))
            .await?
            .map_err(Problem::from)
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    /// The log.
    pub fn log(&self) -> &Log {
        &self.0.log
    }

    fn next_request_id(&self) -> String {
        let n = self.0.requests.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:08x}-{n}", self.0.boot)
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

/// The router: every route of the v1 contract.
pub fn app(state: AppState) -> Router {
    let limit = state.0.config.body_limit;
    Router::new()
        .route("/v1/subjects", post(subjects::collect))
        .route("/v1/subjects/{id}", get(subjects::read))
        .route("/v1/subjects/{id}/data", post(subjects::collect_more))
        .route(
            "/v1/subjects/{id}/records",
            post(records::append).get(records::read),
        )
        .route("/v1/decisions", post(decisions::decide))
        .route("/v1/ledger/verify", get(ledger::verify))
        .route("/healthz", get(pages::healthz))
        .route("/metrics", get(pages::metrics))
        .route("/openapi.json", get(pages::openapi))
        .route("/privacy", get(pages::privacy))
        .fallback(pages::not_found)
        .method_not_allowed_fallback(pages::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(pages::uri_limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::observe,
        ))
        .with_state(state)
}

/// Serves the app on a listener until `shutdown` completes; requests in flight finish first.
/// Every acknowledged write's ledger entry is already durable (the vault commits it before
/// answering), so nothing is left to flush but dropping the vault.
pub async fn serve<L>(
    listener: L,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
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
