//! `Authorization: Bearer <api key>` → the principal the key acts as: its accessor and, for
//! an accessor that acts for a business customer, its tenant.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use custos_vault::{Actor, Principal, Vault};

use crate::AppState;
use crate::problem::Problem;

/// The authenticated caller: the principal its API key acts as (accessor and tenant), and
/// the only handle on the vault a handler gets. A handler that touches personal information
/// takes a `Caller`, so it cannot compile without authentication; the vault holds a
/// tenant-bound caller to its tenant's people.
#[derive(Debug, Clone)]
pub struct Caller {
    principal: Principal,
    /// How the request reached the server (`transport.rs`); the vault refuses, on plain
    /// HTTP from another host, what the policy lets cross the network only over TLS.
    channel: custos_vault::Channel,
    state: AppState,
}

impl Caller {
    /// The accessor the caller acts as (a name the policy declares).
    pub fn accessor(&self) -> &str {
        &self.principal.accessor
    }

    /// The policy enforced (names and rules only; no personal information).
    pub fn policy(&self) -> Option<&custos_policy::Policy> {
        self.state.0.vault.as_deref().map(Vault::policy)
    }

    /// The server's metrics.
    pub(crate) fn metrics(&self) -> &crate::Metrics {
        self.state.metrics()
    }

    /// The Prometheus text: the server's counters and the ledger writer's commits by size.
    pub(crate) fn render_metrics(&self) -> String {
        let mut out = self.state.metrics().render();
        if let Some(v) = self.state.vault() {
            crate::metrics::render_batches(&mut out, v.ledger_batches());
        }
        out
    }

    /// Runs a vault operation as this caller (its [`Actor`]: accessor and tenant) on a vault
    /// thread: the vault is synchronous and waits on SQLite or PostgreSQL and on the
    /// ledger's group commit.
    pub async fn run<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&Vault, Actor<'a>) -> custos_vault::Result<T> + Send + 'static,
    {
        self.state.on_vault(self.acting(op)).await
    }
}

impl Caller {
    /// [`Caller::run`] for a short operation — tens of microseconds, no wait on a commit —
    /// which runs on the request's own thread when the store is embedded
    /// ([`AppState::on_vault_short`]).
    pub(crate) async fn run_short<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: for<'a> FnOnce(&Vault, Actor<'a>) -> custos_vault::Result<T> + Send + 'static,
    {
        self.state.on_vault_short(self.acting(op)).await
    }

    /// `op` as a vault call made as this caller (its [`Actor`], over its channel).
    fn acting<T, F>(&self, op: F) -> impl FnOnce(&Vault) -> custos_vault::Result<T> + Send + 'static
    where
        F: for<'a> FnOnce(&Vault, Actor<'a>) -> custos_vault::Result<T> + Send + 'static,
    {
        let principal = self.principal.clone();
        let channel = self.channel;
        move |v| op(v, principal.actor().over(channel))
    }

    /// Reads a subject for a purpose as this caller without holding a thread through the
    /// ledger's commit: the store read and the decision are a short call
    /// ([`Caller::run_short`]), the wait for the durable entry is a future, and the permitted values are decrypted here once
    /// the ledger writer confirmed the entry ([`Vault::begin_read`]).
    pub async fn read(
        &self,
        subject: custos_vault::SubjectId,
        input: custos_vault::ReadInput,
    ) -> Result<custos_vault::ReadResult, Problem> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let sealed = self
            .run_short(move |v, a| {
                v.begin_read(a, &subject, &input, move |durable| {
                    let _ = tx.send(durable);
                })
            })
            .await?;
        let durable = rx
            .await
            .map_err(|_| Problem::internal("the ledger writer stopped"))?
            .map_err(Problem::from)?;
        let vault = self
            .state
            .vault()
            .ok_or_else(|| Problem::internal("the vault is closed"))?;
        sealed.open(vault, durable).map_err(Problem::from)
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        let missing = || {
            Problem::new(
                "missing_api_key",
                "send `Authorization: Bearer <api key>`; create a key with `custos keys create --accessor NAME`",
            )
        };
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(missing)?;
        let text = header.to_str().map_err(|_| invalid())?;
        let (scheme, key) = text.trim().split_once(' ').ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("bearer") || key.trim().is_empty() {
            return Err(invalid());
        }
        let key = key.trim().to_string();
        // A person's session reaches `/v1/me…` only (`people.rs`).
        if key.starts_with(custos_vault::vault::SESSION_PREFIX) {
            return Err(Problem::new(
                "session_not_accepted",
                "a person's session reaches /v1/me only; this route takes an api key (`custos keys create --accessor NAME`)",
            ));
        }
        // A key the store confirmed within the last second is answered from memory, on this
        // thread; any other goes to the store on a vault thread. Unauthorized becomes a
        // value here, so it is told apart from a failing store.
        let authenticated = match state.vault().and_then(|v| v.authenticate_cached(&key)) {
            Some(principal) => Some(principal),
            None => {
                state
                    .on_vault(move |v| match v.authenticate(&key) {
                        Ok(principal) => Ok(Some(principal)),
                        Err(custos_vault::Error::Unauthorized) => Ok(None),
                        Err(e) => Err(e),
                    })
                    .await?
            }
        };
        match authenticated {
            Some(principal) => {
                crate::observe::record_accessor(&principal.accessor);
                Ok(Self {
                    principal,
                    channel: crate::transport::channel(parts, &state.config().tls_proxy),
                    state: state.clone(),
                })
            }
            None => Err(invalid()),
        }
    }
}

fn invalid() -> Problem {
    Problem::new(
        "invalid_api_key",
        "the api key is unknown or revoked; send `Authorization: Bearer <api key>`",
    )
}
