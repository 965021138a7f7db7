//! Tenant binding (issue 12): subjects belong to tenants (business customers); an accessor
//! that acts for one — its `recipient` is a `customer`, `employer` or `purchaser`
//! ([`custos_policy::AccessorInfo::tenant_bound`]) — has keys made for one tenant, and to such
//! a key only that tenant's people exist. A subject of no tenant exists for none of them.
//!
//! **Architecture invariant:** every vault method that reads or acts on an existing subject
//! asks [`Vault::reaches`] once, where it decides that the subject exists, and answers a
//! subject out of reach exactly as one that does not exist ([`crate::Error::SubjectNotFound`]),
//! ledgering the refusal with the reason ([`OUT_OF_TENANT`] or [`TENANT_REQUIRED`]), never
//! the tenant.

use custos_policy::{CollectionError, RecipientId};

use super::Vault;
use super::transport::Channel;
use crate::error::{Error, Result};

/// Ledger reason: the subject is not one of the key's tenant's people.
pub const OUT_OF_TENANT: &str = "subject_not_in_tenant";
/// Ledger reason (and [`Vault::create_key_for`] error code): the accessor acts for a tenant
/// and the key names none, so it reaches nobody.
pub const TENANT_REQUIRED: &str = "tenant_required";

/// Who acts: an accessor, and the tenant its key was made for (`None` for an accessor that
/// acts for no tenant). What [`Vault::authenticate`] returns, borrowed.
///
/// A plain accessor name converts into an actor of no tenant, so an accessor that is not
/// tenant-bound is called as before (`vault.read("support", …)`); a tenant-bound accessor
/// called that way reaches nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor<'a> {
    /// The accessor (a name the policy declares).
    pub accessor: &'a str,
    /// The tenant the key acts for.
    pub tenant: Option<&'a str>,
    /// How the request reached the vault; [`Channel::Local`] unless the caller says
    /// otherwise ([`Actor::over`]). Categories the policy marks `transport = "tls"` are
    /// refused on [`Channel::Plain`] (`transport.rs`).
    pub channel: Channel,
}

impl<'a> Actor<'a> {
    /// An accessor acting for a tenant.
    pub fn of_tenant(accessor: &'a str, tenant: &'a str) -> Self {
        Self {
            accessor,
            tenant: Some(tenant),
            channel: Channel::Local,
        }
    }

    /// The same actor, its request having come over `channel` (the server says which).
    #[must_use]
    pub fn over(self, channel: Channel) -> Self {
        Self { channel, ..self }
    }
}

impl<'a> From<&'a str> for Actor<'a> {
    fn from(accessor: &'a str) -> Self {
        Self {
            accessor,
            tenant: None,
            channel: Channel::Local,
        }
    }
}

impl<'a> From<&'a String> for Actor<'a> {
    fn from(accessor: &'a String) -> Self {
        Self::from(accessor.as_str())
    }
}

impl<'a> From<&'a Principal> for Actor<'a> {
    fn from(p: &'a Principal) -> Self {
        p.actor()
    }
}

/// An authenticated API key's principal: the accessor it acts as and, for a tenant-bound
/// accessor, the tenant it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The accessor.
    pub accessor: String,
    /// The tenant; `None` for an accessor bound to none.
    pub tenant: Option<String>,
}

impl Principal {
    /// Borrowed, to pass to the vault's methods.
    pub fn actor(&self) -> Actor<'_> {
        Actor {
            accessor: &self.accessor,
            tenant: self.tenant.as_deref(),
            channel: Channel::Local,
        }
    }
}

/// The tenants a subject belongs to, as stored.
pub(crate) type Tenants<'s> = &'s [String];

impl Vault {
    /// Whether the accessor acts for one tenant, as the policy says
    /// ([`custos_policy::AccessorInfo::tenant_bound`]); an undeclared accessor acts for none
    /// (and is refused everywhere as undeclared).
    pub fn tenant_bound(&self, accessor: &str) -> bool {
        self.policy
            .accessor_id(accessor)
            .ok()
            .and_then(|a| self.policy.accessor(a))
            .is_some_and(|a| a.tenant_bound)
    }

    /// INVARIANT: tenant binding — whether `actor` reaches a subject of `tenants`, for a
    /// request that names `recipient` onwards (if any). A request acts for a tenant when its
    /// accessor is tenant-bound or its onward recipient acts for a tenant; it then reaches
    /// only the people of the key's tenant, and none when the key names no tenant. An actor
    /// that names a tenant is held to it whatever its accessor. `Err` is the ledger reason
    /// of a refusal, to be answered as [`Error::SubjectNotFound`].
    pub(crate) fn reaches(
        &self,
        actor: Actor<'_>,
        recipient: Option<RecipientId>,
        tenants: Tenants<'_>,
    ) -> std::result::Result<(), &'static str> {
        let bound = self.tenant_bound(actor.accessor)
            || recipient
                .and_then(|r| self.policy.recipient(r))
                .is_some_and(|r| r.kind.acts_for_tenant());
        match actor.tenant {
            Some(t) if tenants.iter().any(|x| x == t) => Ok(()),
            Some(_) => Err(OUT_OF_TENANT),
            None if bound => Err(TENANT_REQUIRED),
            None => Ok(()),
        }
    }

    /// The tenant a key is made for, checked against the policy: required for a
    /// tenant-bound accessor, refused for any other.
    pub(crate) fn key_tenant<'t>(
        &self,
        accessor: &str,
        tenant: Option<&'t str>,
    ) -> Result<Option<&'t str>> {
        match (self.tenant_bound(accessor), tenant) {
            (true, None) => Err(Error::invalid(
                TENANT_REQUIRED,
                format!(
                    "accessor `{accessor}` acts for a business customer; name the tenant its key acts for (`--tenant ID`)"
                ),
            )),
            (false, Some(_)) => Err(Error::invalid(
                "tenant_not_bound",
                format!(
                    "accessor `{accessor}` acts for no business customer; its keys name no tenant"
                ),
            )),
            (true, Some(t)) if !valid_tenant(t) => Err(Error::invalid(
                "invalid_tenant",
                "a tenant id is 1 to 128 bytes, without control characters or surrounding spaces",
            )),
            (_, t) => Ok(t),
        }
    }
}

impl Vault {
    /// [`Vault::reaches`] for a lifecycle action (`erase`, `deactivate`, a consent event):
    /// a subject out of reach is refused as one that does not exist, and the refusal
    /// ledgered.
    pub(crate) fn within_tenant(
        &self,
        actor: Actor<'_>,
        action: &str,
        subject: &super::SubjectId,
        tenants: Tenants<'_>,
    ) -> Result<()> {
        let Err(reason) = self.reaches(actor, None, tenants) else {
            return Ok(());
        };
        let mut d = self.draft(
            self.declared_accessor(actor.accessor),
            action,
            subject.as_str(),
        );
        d.effect = "refused".into();
        d.reasons = reason.into();
        self.record(d)?;
        Err(Error::SubjectNotFound)
    }

    /// INVARIANT: tenant binding — a collection by an actor of a tenant (or by a
    /// tenant-bound accessor) states that tenant as its `tenant`, so the person it collects
    /// or adds to is one of the tenant's people and of no other tenant's by its doing. The
    /// refusal, if any, names the field.
    pub(crate) fn tenant_stated(
        &self,
        actor: Actor<'_>,
        input: &super::CollectionInput,
    ) -> Option<CollectionError> {
        let refusal = |code: &'static str, message: &str| CollectionError {
            code,
            field: "tenant".into(),
            message: message.into(),
        };
        match (actor.tenant, input.tenant.as_deref()) {
            (Some(key), Some(stated)) if key == stated => None,
            (Some(_), _) => Some(refusal(
                "tenant_mismatch",
                "this key acts for one tenant; state that tenant as `tenant`",
            )),
            (None, _) if self.tenant_bound(actor.accessor) => Some(refusal(
                TENANT_REQUIRED,
                "this accessor acts for a business customer and its key names no tenant",
            )),
            (None, _) => None,
        }
    }
}

/// A tenant id as a key may name it: what a collection may state as its `tenant` (at most
/// 128 bytes), not empty, no control characters, no surrounding spaces.
fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && t.len() <= custos_policy::source::MAX_NAME_LEN
        && t.trim() == t
        && !t.chars().any(char::is_control)
}
