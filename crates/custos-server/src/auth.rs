//! `Authorization: Bearer <api key>` → the accessor the key acts as.

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
    pub fn policy(&self) -> Option<&custos_policy::Policy> {
        self.state.0.vault.as_deref().map(Vault::policy)
    }

    /// The server's metrics.
    pub(crate) fn metrics(&self) -> &crate::Metrics {
        self.state.metrics()
    }

    /// Runs a vault operation as this caller on a vault thread: the vault is synchronous and
    /// waits on SQLite or PostgreSQL and on the ledger's group commit.
    pub async fn run<T, F>(&self, op: F) -> Result<T, Problem>
    where
        T: Send + 'static,
        F: FnOnce(&Vault, &str) -> custos_vault::Result<T> + Send + 'static,
    {
        let accessor = self.accessor.clone();
        self.state.on_vault(move |v| op(v, &accessor)).await
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
        // Unauthorized becomes a value here, so it is told apart from a failing store.
        let authenticated = state
            .on_vault(move |v| match v.authenticate(&key) {
                Ok(accessor) => Ok(Some(accessor)),
                Err(custos_vault::Error::Unauthorized) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        match authenticated {
            Some(accessor) => {
                if let Some(slot) = parts.extensions.get::<crate::observe::AccessorSlot>() {
                    let _ = slot.0.set(accessor.clone());
                }
                Ok(Self {
                    accessor,
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
