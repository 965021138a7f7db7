//! Transport security (C044, C074): the categories a policy marks `transport = "tls"`, and
//! everything a service marked so collects, cross the network only over TLS.
//!
//! The vault does not see the network; the caller says how a request came
//! ([`Actor::over`] with a [`Channel`]; the HTTP server says it for every request, and an
//! actor made from a bare name is [`Channel::Local`]). On [`Channel::Plain`] the vault
//! refuses, before anything is sealed, stored or decrypted:
//!
//! - a collection carrying such a category ([`custos_policy::CollectionPlan::tls`]);
//! - a record append whose collection holds one, or that a role of a TLS-only service keeps
//!   ([`custos_policy::Policy::tls_for_records`]);
//! - a read whose decision permits one, and a records read that would answer records of a
//!   collection holding one.
//!
//! Each refusal is ledgered as the other refusals of its path are, with the reason
//! [`TLS_REQUIRED`], and answered as [`crate::Error::Invalid`] with that code, naming the
//! categories by id (never a value).

use custos_policy::CategorySet;

use super::{Actor, Vault};
use crate::error::Error;

/// Ledger reason and error code: a category that crosses the network only over TLS came,
/// or would leave, over plain HTTP from another host.
pub const TLS_REQUIRED: &str = "tls_required";

/// How a request reached the vault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Channel {
    /// In the vault's own process (the CLI, an embedded use, the demo loader): nothing
    /// crossed a network.
    #[default]
    Local,
    /// Over plain HTTP from a client on the server's own host (a loopback address).
    Loopback,
    /// Over TLS: the server's own, or a TLS-terminating proxy the operator stated.
    Tls,
    /// Over plain HTTP from another host: categories marked `transport = "tls"` are refused.
    Plain,
}

impl Channel {
    /// Whether what the policy lets cross the network only over TLS may cross this channel.
    pub fn secure(self) -> bool {
        !matches!(self, Self::Plain)
    }
}

impl Vault {
    /// `Some(error)` when `needs_tls` (categories a request carries or would answer that
    /// cross the network only over TLS) is not empty and the actor's channel is not secure.
    pub(crate) fn transport_refusal(
        &self,
        actor: Actor<'_>,
        needs_tls: CategorySet,
    ) -> Option<Error> {
        self.transport_refusal_or(actor, needs_tls, "")
    }

    /// [`Vault::transport_refusal`], its message ending with `alternative` (what else the
    /// caller may do, e.g. leave the categories out of a read).
    pub(crate) fn transport_refusal_or(
        &self,
        actor: Actor<'_>,
        needs_tls: CategorySet,
        alternative: &str,
    ) -> Option<Error> {
        if actor.channel.secure() || needs_tls.is_empty() {
            return None;
        }
        let names: Vec<String> = self
            .policy
            .category_names(needs_tls)
            .into_iter()
            .map(|c| format!("`{c}`"))
            .collect();
        Some(Error::invalid(
            TLS_REQUIRED,
            format!(
                "the policy lets {} cross the network only over TLS, and this request came over plain HTTP from another host; send it over HTTPS{alternative}",
                names.join(", ")
            ),
        ))
    }
}
