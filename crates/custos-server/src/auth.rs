//! `Authorization: Bearer <api key>` → the accessor the key acts as.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use custos_vault::Vault;

use crate::AppState;
use crate::problem::Problem;

/// The authenticated caller: the accessor its API key acts as, and the only handle on the
/// vault a handler gets. A handler that touches personal information takes a `Caller`, so it
/// cannot compile without authentication.
#[derive(Debug, Clone)]
pub struct Caller {
    accessor: String,
    state: AppState,
}

impl Caller {
    /// The accessor the caller acts as (a name the policy declares).
    pub fn accessor(&self) -> &str {
        &self.accessor
    }

    /// The policy enforced (names and rules only; no personal information).
    pub fn policy(&self) -> &custos_policy::Policy {
        self.state.0.vault.policy()
    }

    /// The server's metrics.
    pub(crate) fn metrics(&self) -> &crate::Metrics {
        self.state.metrics()
    }

    /// Runs a vault operation as this caller on the blocking pool: the vault is synchronous
    /// and waits on SQLite or PostgreSQL and on the ledger's group commit.
    pub async fn run<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault, &str) -> custos_vault::Result<T> + Send + 'static,
    {
        let vault = Arc::clone(&self.state.0.vault);
        let accessor = self.accessor.clone();
        tokio::task::spawn_blocking(move || op(&vault, &accessor))
            .await
            .map_err(|e| Problem::internal(format!("vault task failed: {e}")))?
            .map_err(Problem::from)
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
        let authenticated = {
            let vault = Arc::clone(&state.0.vault);
            tokio::task::spawn_blocking(move || vault.authenticate(&key))
                .await
                .map_err(|e| Problem::internal(format!("auth task failed: {e}")))?
        };
        match authenticated {
            Ok(accessor) => Ok(Self {
                accessor,
                state: state.clone(),
            }),
            Err(custos_vault::Error::Unauthorized) => Err(invalid()),
            Err(e) => Err(Problem::from(e)),
        }
    }
}

fn invalid() -> Problem {
    Problem::new(
        "invalid_api_key",
        "the api key is unknown or revoked; send `Authorization: Bearer <api key>`",
    )
}
