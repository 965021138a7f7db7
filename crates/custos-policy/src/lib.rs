//! The Custos policy language.
//!
//! A privacy policy is written once as TOML ([`model`]); [`Policy::from_path`] parses and
//! validates it, reporting every problem as `path:line:column: message`, and compiles it to dense
//! ids and bitsets. The compiled [`Policy`] answers the two questions the vault asks:
//!
//! - may this service collect these categories, in this role, for these purposes
//!   ([`Policy::check_collection`]);
//! - may this accessor use these categories of this subject for this purpose
//!   ([`Policy::decide`]), a pure in-memory function that costs well under a microsecond.
//!
//! The same policy renders the notice people read ([`render`]), is compared with its
//! previous version ([`diff`]) and is traced clause by clause ([`trace`]).
//!
//! **Architecture invariant:** this crate does no IO beyond reading policy files in
//! [`Policy::from_path`], and has no async.

pub mod checks;
pub mod collect;
mod compile;
pub mod decide;
pub mod diff;
pub mod ids;
mod lint;
mod load;
pub mod model;
pub mod mutate;
pub mod render;
pub mod source;
pub mod trace;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::path::Path;

pub use collect::{CollectionError, CollectionPlan, CollectionRequest};
pub use decide::{
    AgeStatus, Decision, Effect, Ground, Held, Instrument, Reason, Reference, Request, Subject,
    SubjectStatus, Withheld,
};
pub use ids::{
    AccessorId, CategoryId, CategorySet, CollectionId, PurposeId, PurposeSet, RecipientId,
    ServiceId, ServiceSet,
};
pub use load::{BUILTIN_NAME, BUILTIN_WEBEX_2010, BUILTIN_WEBEX_2010_TRACE};
pub use source::{Diagnostic, Diagnostics, Location, Sources};

use model::PolicyFile;

/// Legal basis of a purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Basis {
    /// Needed for what the person asked for.
    Service,
    /// Only with the person's opt-in consent.
    Consent,
    /// Allowed until the person objects.
    OptOut,
    /// Legal process, fraud, safety; needs a legal reference.
    Legal,
    /// Needed to perform a contract.
    Contract,
}

impl Basis {
    /// Keywords as written in policy files.
    pub const NAMES: &'static [&'static str] =
        &["service", "consent", "opt_out", "legal", "contract"];

    /// Parses a keyword.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "service" => Self::Service,
            "consent" => Self::Consent,
            "opt_out" => Self::OptOut,
            "legal" => Self::Legal,
            "contract" => Self::Contract,
            _ => return None,
        })
    }

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Consent => "consent",
            Self::OptOut => "opt_out",
            Self::Legal => "legal",
            Self::Contract => "contract",
        }
    }

    /// How strongly the basis protects the person: a change to a lower rank is material.
    pub fn protection(self) -> u8 {
        match self {
            Self::Consent => 3,
            Self::OptOut => 2,
            Self::Service | Self::Contract => 1,
            Self::Legal => 0,
        }
    }
}

/// Kind of recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKind {
    /// Within the controller.
    Internal,
    /// Parent company or subsidiary.
    Affiliate,
    /// Vendor processing on the controller's behalf.
    Processor,
    /// Third party using data for its own marketing.
    MarketingPartner,
    /// The business customer whose service the person used.
    Customer,
    /// The person's employer.
    Employer,
    /// The purchaser of the person's service.
    Purchaser,
    /// Another user who adds the person as a contact.
    Contact,
    /// Anyone: published.
    Public,
    /// A court, regulator or police.
    Authority,
}

impl RecipientKind {
    /// Keywords as written in policy files.
    pub const NAMES: &'static [&'static str] = &[
        "internal",
        "affiliate",
        "processor",
        "marketing_partner",
        "customer",
        "employer",
        "purchaser",
        "contact",
        "public",
        "authority",
    ];

    /// Parses a keyword.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "internal" => Self::Internal,
            "affiliate" => Self::Affiliate,
            "processor" => Self::Processor,
            "marketing_partner" => Self::MarketingPartner,
            "customer" => Self::Customer,
            "employer" => Self::Employer,
            "purchaser" => Self::Purchaser,
            "contact" => Self::Contact,
            "public" => Self::Public,
            "authority" => Self::Authority,
            _ => return None,
        })
    }

    /// Whether a disclosure to it leaves the controller's group.
    pub fn is_external(self) -> bool {
        !matches!(self, Self::Internal)
    }

    /// Whether it acts for one business customer (a tenant): `customer`, `employer` or
    /// `purchaser`. An accessor acting for such a recipient is tenant-bound
    /// ([`AccessorInfo::tenant_bound`]): each of its keys is made for one tenant and reaches
    /// only that tenant's people, and a disclosure onwards to such a recipient is made only
    /// by a key of a tenant, to that tenant's people.
    pub fn acts_for_tenant(self) -> bool {
        matches!(self, Self::Customer | Self::Employer | Self::Purchaser)
    }
}

/// Kind of legal instrument: what a reference for a purpose that requires one names, once
/// staff registered it in the vault (issue 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstrumentKind {
    /// An order of a court.
    CourtOrder,
    /// A subpoena.
    Subpoena,
    /// A request of a regulator, the police or another authority.
    AuthorityRequest,
    /// A fraud or safety case opened by the controller.
    FraudCase,
    /// A purchaser's verified identity and authority over a service it bought (C075).
    PurchaserAuthority,
}

impl InstrumentKind {
    /// Every kind, in this order.
    pub const ALL: [Self; 5] = [
        Self::CourtOrder,
        Self::Subpoena,
        Self::AuthorityRequest,
        Self::FraudCase,
        Self::PurchaserAuthority,
    ];
    /// Keywords as written in policy files and requests.
    pub const NAMES: &'static [&'static str] = &[
        "court_order",
        "subpoena",
        "authority_request",
        "fraud_case",
        "purchaser_authority",
    ];

    /// Parses a keyword.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CourtOrder => "court_order",
            Self::Subpoena => "subpoena",
            Self::AuthorityRequest => "authority_request",
            Self::FraudCase => "fraud_case",
            Self::PurchaserAuthority => "purchaser_authority",
        }
    }

    /// The kind nearest a misspelt keyword, when it is close enough to be a likely typo.
    pub fn nearest(s: &str) -> Option<&'static str> {
        source::nearest(s, Self::NAMES.iter().copied())
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Kind of request a person makes of the controller (issue 13): what staff handle, each
/// answered within the days the policy's `[rights] respond_days` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RequestKind {
    /// A copy of what is held, to read.
    Access,
    /// A copy of what is held, machine-readable.
    Export,
    /// A correction of what is held.
    Rectify,
    /// Deactivation of the account: only legal and contractual purposes remain.
    Deactivate,
    /// Erasure, by destroying the person's key.
    Erase,
    /// An objection to one purpose (an opt-out, such as unsubscribing).
    Object,
    /// California "Shine the Light" (Cal. Civ. Code 1798.83): the disclosures to third
    /// parties for their direct marketing.
    CaliforniaDisclosures,
}

impl RequestKind {
    /// Every kind, in this order.
    pub const ALL: [Self; 7] = [
        Self::Access,
        Self::Export,
        Self::Rectify,
        Self::Deactivate,
        Self::Erase,
        Self::Object,
        Self::CaliforniaDisclosures,
    ];
    /// Keywords as written in policy files and requests.
    pub const NAMES: &'static [&'static str] = &[
        "access",
        "export",
        "rectify",
        "deactivate",
        "erase",
        "object",
        "california-disclosures",
    ];

    /// Parses a keyword.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Access => "access",
            Self::Export => "export",
            Self::Rectify => "rectify",
            Self::Deactivate => "deactivate",
            Self::Erase => "erase",
            Self::Object => "object",
            Self::CaliforniaDisclosures => "california-disclosures",
        }
    }

    /// The kind nearest a misspelt keyword, when it is close enough to be a likely typo.
    pub fn nearest(s: &str) -> Option<&'static str> {
        source::nearest(s, Self::NAMES.iter().copied())
    }

    /// The kind of request that exercises a `[[right]]` (by its id), if one does: its
    /// `due_days` and the kind's `respond_days` must agree.
    pub fn of_right(right: &str) -> Option<Self> {
        Some(match right {
            "access" => Self::Access,
            "rectification" => Self::Rectify,
            "deactivation" => Self::Deactivate,
            "erasure" => Self::Erase,
            "objection" | "unsubscribe" => Self::Object,
            "disclosure_list" => Self::CaliforniaDisclosures,
            _ => return None,
        })
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// A set of [`InstrumentKind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InstrumentKinds(u8);

impl InstrumentKinds {
    /// No kind.
    pub const EMPTY: Self = Self(0);
    /// Every kind.
    pub const ALL: Self = Self(0b1_1111);

    /// Whether the set holds `kind`.
    pub fn contains(self, kind: InstrumentKind) -> bool {
        self.0 & kind.bit() != 0
    }

    /// Adds a kind.
    pub fn insert(&mut self, kind: InstrumentKind) {
        self.0 |= kind.bit();
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The kinds, in [`InstrumentKind::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = InstrumentKind> {
        InstrumentKind::ALL
            .into_iter()
            .filter(move |k| self.contains(*k))
    }
}

impl FromIterator<InstrumentKind> for InstrumentKinds {
    fn from_iter<I: IntoIterator<Item = InstrumentKind>>(iter: I) -> Self {
        let mut s = Self::EMPTY;
        for k in iter {
            s.insert(k);
        }
        s
    }
}

/// How long something is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PeriodKind {
    /// Used once, never stored.
    Transient,
    /// A number of days.
    Days(u32),
    /// Until the account is closed.
    Account,
}

/// A compiled category.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CategoryInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Identifies a person on its own.
    pub identifier: bool,
    /// Never stored.
    pub transient: bool,
    /// Retention of its values.
    pub retention: Option<PeriodKind>,
    /// Its values cross the network only over TLS (`transport = "tls"`); see
    /// [`Policy::tls_categories`].
    pub requires_tls: bool,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurposeInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Legal basis.
    pub basis: Basis,
    /// Broader purpose.
    pub parent: Option<PurposeId>,
    /// The purpose and every purpose above it.
    pub ancestors: PurposeSet,
    /// The purpose and every purpose below it.
    pub descendants: PurposeSet,
    /// The purpose and the purposes above it whose basis is consent: consent to one of them
    /// covers this purpose. Consent to an opt-out or service purpose covers nothing.
    pub consent_scope: PurposeSet,
    /// Each use needs a reference (legal process, verified authority): the id of a
    /// registered legal instrument.
    pub requires_reference: bool,
    /// The instrument kinds a reference may name (`instruments`; every kind when the policy
    /// names none). Empty when the purpose requires no reference.
    pub instruments: InstrumentKinds,
    /// Each use is a disclosure to an external recipient.
    pub requires_recipient: bool,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled accessor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessorInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// The external recipient it acts for.
    pub recipient: Option<RecipientId>,
    /// Purposes as declared.
    pub declared: PurposeSet,
    /// Purposes it may pursue, with descendants.
    pub allowed: PurposeSet,
    /// The services it collects for (`services`, or the service of its own id).
    pub services: ServiceSet,
    /// Per purpose, the most categories it may read.
    pub limits: Vec<Option<CategorySet>>,
    /// It acts for one business customer: its `recipient` is of a kind that
    /// [acts for a tenant](RecipientKind::acts_for_tenant) (`customer`, `employer`,
    /// `purchaser`). The vault makes each of its keys for one tenant, and to such a key only
    /// that tenant's people exist; a subject of no tenant exists for none of its keys.
    pub tenant_bound: bool,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecipientInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Kind.
    pub kind: RecipientKind,
    /// Per purpose, the minimum categories it may receive; `None`: nothing for that purpose.
    pub allows: Vec<Option<CategorySet>>,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// What it collects crosses the network only over TLS (`transport = "tls"`): every
    /// collection in its name, and every record appended for one of its roles.
    pub requires_tls: bool,
    /// Roles people have in it.
    pub roles: Vec<RoleInfo>,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled role of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Categories collected.
    pub collects: CategorySet,
    /// Categories the person may choose to give.
    pub optional: CategorySet,
    /// Purposes as declared.
    pub purposes: PurposeSet,
    /// Purposes a collection may state: the declared ones and their descendants.
    pub allowed_purposes: PurposeSet,
    /// Record collections kept.
    pub records: Vec<CollectionId>,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A compiled record collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectionInfo {
    /// Declared id.
    pub id: String,
    /// Human name.
    pub name: String,
    /// Fields of a record.
    pub fields: Vec<FieldInfo>,
    /// Categories of all fields.
    pub categories: CategorySet,
    /// Retention of its records.
    pub retention: Option<PeriodKind>,
    /// Clauses it encodes.
    pub clauses: Vec<String>,
}

/// A field of a record collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldInfo {
    /// Field name.
    pub name: String,
    /// Category of the value.
    pub category: CategoryId,
    /// May be absent.
    pub optional: bool,
}

/// Ids by name. The names are the policy's own (a few dozen, fixed once compiled); a request
/// only looks names up, so a hash without SipHash's flood resistance is safe, and a lookup
/// (several per request) costs a fraction of SipHash's.
pub(crate) type NameMap<T> = HashMap<String, T, BuildHasherDefault<Fnv1a>>;

/// FNV-1a, 64-bit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for Fnv1a {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
}

/// The compiled tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PolicyTables {
    pub(crate) header_clauses: Vec<String>,
    pub(crate) minimum_age: Option<u32>,
    pub(crate) categories: Vec<CategoryInfo>,
    pub(crate) category_index: NameMap<CategoryId>,
    /// The categories marked `transport = "tls"`.
    pub(crate) tls_categories: CategorySet,
    pub(crate) purposes: Vec<PurposeInfo>,
    pub(crate) purpose_index: NameMap<PurposeId>,
    pub(crate) accessors: Vec<AccessorInfo>,
    pub(crate) accessor_index: NameMap<AccessorId>,
    pub(crate) recipients: Vec<RecipientInfo>,
    pub(crate) recipient_index: NameMap<RecipientId>,
    pub(crate) services: Vec<ServiceInfo>,
    pub(crate) service_index: NameMap<ServiceId>,
    pub(crate) collections: Vec<CollectionInfo>,
    pub(crate) collection_index: NameMap<CollectionId>,
    /// `[rights] staff`: the accessors that handle people's requests.
    pub(crate) staff: Vec<AccessorId>,
    /// `[rights] respond_days`, by [`RequestKind`] (its index).
    pub(crate) respond_days: [Option<u32>; 7],
    /// How a person reaches the controller and unsubscribes: `[contacts]` and the channels of
    /// the `unsubscribe` right.
    pub(crate) contacts: ContactInfo,
}

/// How a person reaches the controller (`[contacts]`) and the ways the `[[right]]` with id
/// `unsubscribe` offers: what a promotional mail's footer says (C031–C033), and whether
/// unsubscribing by email or by letter is taken.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactInfo {
    /// `[contacts] privacy_email`.
    pub privacy_email: Option<String>,
    /// `[contacts] unsubscribe_email`: where an unsubscribe request by email goes.
    pub unsubscribe_email: Option<String>,
    /// `[contacts] postal_address`, one line per entry.
    pub postal_address: Vec<String>,
    /// The channels of the `unsubscribe` right (`link`, `email`, `postal`, `online`).
    pub unsubscribe_channels: Vec<String>,
}

impl ContactInfo {
    /// Whether the `unsubscribe` right offers the channel.
    pub fn unsubscribes_by(&self, channel: &str) -> bool {
        self.unsubscribe_channels.iter().any(|c| c == channel)
    }
}

/// A validated, compiled policy. It cannot hold a dangling reference: every id in it resolved.
#[derive(Debug, Clone)]
pub struct Policy {
    sources: Sources,
    file: PolicyFile,
    /// The file each element of `file` came from (for [`Policy::warnings`]).
    origin: load::Origins,
    t: PolicyTables,
}

/// An id that names nothing the policy declares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownId {
    /// What kind of element was named: `category`, `purpose`, …
    pub kind: &'static str,
    /// The name given.
    pub name: String,
    /// Message with the nearest declared id, when there is one.
    pub message: String,
}

impl std::fmt::Display for UnknownId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for UnknownId {}

impl Policy {
    /// Parses, validates and compiles policy text; `name` is used in diagnostics.
    pub fn from_str(name: &str, text: &str) -> Result<Self, Diagnostics> {
        let mut sources = Sources::default();
        sources.add(name, text);
        Self::from_sources(sources)
    }

    /// Reads a policy file, or a folder of policy files.
    pub fn from_path(path: &Path) -> Result<Self, Diagnostics> {
        Self::from_sources(load::read_path(path)?)
    }

    /// The built-in WebEx privacy policy of April 2010.
    pub fn builtin() -> Result<Self, Diagnostics> {
        Self::from_str(BUILTIN_NAME, BUILTIN_WEBEX_2010)
    }

    /// Validates and compiles already-read sources.
    pub fn from_sources(sources: Sources) -> Result<Self, Diagnostics> {
        let merged = match load::merge(&sources) {
            Ok(m) => m,
            Err(items) => return Err(Diagnostics { sources, items }),
        };
        match compile::compile(&merged) {
            Ok(t) => Ok(Self {
                sources,
                file: merged.file,
                origin: merged.origin,
                t,
            }),
            Err(items) => Err(Diagnostics { sources, items }),
        }
    }

    /// The policy as read, before compilation: what [`mutate`] changes to derive weakened
    /// versions of it.
    pub(crate) fn merged(&self) -> Result<load::Merged, Vec<Diagnostic>> {
        load::merge(&self.sources)
    }

    /// Compiles a changed copy of this policy's merged files (a mutant). `Err` carries the
    /// first problem: the policy language refuses the change.
    pub(crate) fn recompiled(&self, merged: load::Merged) -> Result<Self, String> {
        match compile::compile(&merged) {
            Ok(t) => Ok(Self {
                sources: self.sources.clone(),
                file: merged.file,
                origin: merged.origin,
                t,
            }),
            Err(items) => Err(items
                .first()
                .map_or_else(|| "refused".to_string(), |d| d.message.clone())),
        }
    }

    /// Whether two policies compile to the same tables: every decision and check gives the
    /// same answer under both.
    pub fn same_tables(&self, other: &Self) -> bool {
        self.t == other.t
    }

    /// The files the policy was read from.
    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    /// The policy as written (all files merged); `file().policy` is always present.
    pub fn file(&self) -> &PolicyFile {
        &self.file
    }

    /// The `[policy]` header.
    pub fn header(&self) -> &model::Header {
        #[expect(
            clippy::expect_used,
            reason = "compile refuses a policy without a header"
        )]
        self.file
            .policy
            .as_ref()
            .expect("validated policy has a header")
    }

    /// The policy id.
    pub fn id(&self) -> &str {
        self.header().id.get_ref()
    }

    /// The version id, which collections name as the notice shown.
    pub fn version(&self) -> &str {
        self.header().version.get_ref()
    }

    /// Minimum age of a subject, if the policy sets one.
    pub fn minimum_age(&self) -> Option<u32> {
        self.t.minimum_age
    }

    /// Clauses the header encodes.
    pub fn header_clauses(&self) -> &[String] {
        &self.t.header_clauses
    }

    /// The categories whose values cross the network only over TLS (`transport = "tls"`,
    /// C044): a collection, record append or read over plain HTTP from a remote client that
    /// carries one is refused. Whether a channel is secure is the server's to say; the
    /// vault refuses ([`collect::CollectionPlan::tls`] for collections).
    pub fn tls_categories(&self) -> CategorySet {
        self.t.tls_categories
    }

    /// The categories of a record collection that must arrive over TLS when a role of
    /// `service` keeps it: every category of the collection when the service requires TLS
    /// (`transport = "tls"` on the service, C074), else those marked `transport = "tls"`.
    pub fn tls_for_records(&self, service: ServiceId, collection: CollectionId) -> CategorySet {
        let all = self
            .collection(collection)
            .map_or(CategorySet::EMPTY, |c| c.categories);
        if self.service(service).is_some_and(|s| s.requires_tls) {
            all
        } else {
            all.intersection(self.t.tls_categories)
        }
    }

    /// Categories in declaration order.
    pub fn categories(&self) -> &[CategoryInfo] {
        &self.t.categories
    }
    /// Purposes in declaration order.
    pub fn purposes(&self) -> &[PurposeInfo] {
        &self.t.purposes
    }
    /// Accessors in declaration order.
    pub fn accessors(&self) -> &[AccessorInfo] {
        &self.t.accessors
    }
    /// Recipients in declaration order.
    pub fn recipients(&self) -> &[RecipientInfo] {
        &self.t.recipients
    }
    /// Services in declaration order.
    pub fn services(&self) -> &[ServiceInfo] {
        &self.t.services
    }
    /// Record collections in declaration order.
    pub fn collections(&self) -> &[CollectionInfo] {
        &self.t.collections
    }
    /// Cookies and web beacons (`[[cookie]]`) in declaration order: the consent banner's
    /// choices (`consent.js`), each resolved at compile time (its purpose and category exist).
    pub fn cookies(&self) -> &[model::Cookie] {
        &self.file.cookie
    }
    /// The date the policy takes effect (`[policy] effective`, `YYYY-MM-DD`).
    pub fn effective(&self) -> &str {
        self.header().effective.get_ref()
    }

    /// A category by id.
    pub fn category(&self, id: CategoryId) -> Option<&CategoryInfo> {
        self.t.categories.get(id.index())
    }
    /// A purpose by id.
    pub fn purpose(&self, id: PurposeId) -> Option<&PurposeInfo> {
        self.t.purposes.get(id.index())
    }
    /// An accessor by id.
    pub fn accessor(&self, id: AccessorId) -> Option<&AccessorInfo> {
        self.t.accessors.get(id.index())
    }
    /// A recipient by id.
    pub fn recipient(&self, id: RecipientId) -> Option<&RecipientInfo> {
        self.t.recipients.get(id.index())
    }
    /// A service by id.
    pub fn service(&self, id: ServiceId) -> Option<&ServiceInfo> {
        self.t.services.get(id.index())
    }
    /// A record collection by id.
    pub fn collection(&self, id: CollectionId) -> Option<&CollectionInfo> {
        self.t.collections.get(id.index())
    }

    /// Resolves a category name.
    pub fn category_id(&self, name: &str) -> Result<CategoryId, UnknownId> {
        lookup(&self.t.category_index, "category", name)
    }
    /// Resolves a purpose name.
    pub fn purpose_id(&self, name: &str) -> Result<PurposeId, UnknownId> {
        lookup(&self.t.purpose_index, "purpose", name)
    }
    /// Resolves an accessor name.
    pub fn accessor_id(&self, name: &str) -> Result<AccessorId, UnknownId> {
        lookup(&self.t.accessor_index, "accessor", name)
    }
    /// Resolves a recipient name.
    pub fn recipient_id(&self, name: &str) -> Result<RecipientId, UnknownId> {
        lookup(&self.t.recipient_index, "recipient", name)
    }
    /// Resolves a service name.
    pub fn service_id(&self, name: &str) -> Result<ServiceId, UnknownId> {
        lookup(&self.t.service_index, "service", name)
    }
    /// Resolves a record collection name.
    pub fn collection_id(&self, name: &str) -> Result<CollectionId, UnknownId> {
        lookup(&self.t.collection_index, "record collection", name)
    }

    /// Resolves category names into a set.
    pub fn category_set<S: AsRef<str>>(&self, names: &[S]) -> Result<CategorySet, UnknownId> {
        names.iter().map(|n| self.category_id(n.as_ref())).collect()
    }
    /// Resolves purpose names into a set.
    pub fn purpose_set<S: AsRef<str>>(&self, names: &[S]) -> Result<PurposeSet, UnknownId> {
        names.iter().map(|n| self.purpose_id(n.as_ref())).collect()
    }

    /// The instrument kinds a reference for the purpose may name; empty when the purpose
    /// requires no reference (or is not declared).
    pub fn instrument_kinds(&self, purpose: PurposeId) -> InstrumentKinds {
        self.purpose(purpose)
            .map_or(InstrumentKinds::EMPTY, |p| p.instruments)
    }

    /// Whether the accessor is staff (`[rights] staff`): it handles people's requests.
    pub fn is_staff(&self, accessor: AccessorId) -> bool {
        self.t.staff.contains(&accessor)
    }

    /// `[contacts]` and the unsubscribe right's channels ([`ContactInfo`]).
    pub fn contacts(&self) -> &ContactInfo {
        &self.t.contacts
    }

    /// The staff accessors' ids, as declared.
    pub fn staff(&self) -> impl Iterator<Item = &str> {
        self.t
            .staff
            .iter()
            .filter_map(|a| self.accessor(*a))
            .map(|a| a.id.as_str())
    }

    /// The days within which a request of `kind` is answered (`[rights] respond_days`);
    /// `None` when the policy gives the kind none, and then does not take such requests.
    pub fn respond_days(&self, kind: RequestKind) -> Option<u32> {
        self.t.respond_days.get(kind.index()).copied().flatten()
    }

    /// The days within which the `[[right]]` with this id is answered: its `due_days`, or
    /// else the `respond_days` of the request kind that exercises it.
    pub fn right_due_days(&self, right: &model::Right) -> Option<u32> {
        right.due_days.or_else(|| {
            RequestKind::of_right(right.id.get_ref()).and_then(|k| self.respond_days(k))
        })
    }

    /// The instrument kinds an accessor may register: those accepted by a purpose it may
    /// pursue that requires a reference — when it is staff, acting for no tenant and for no
    /// external recipient (a party does not vouch for its own authority). Empty for any
    /// other accessor.
    pub fn registrable_instruments(&self, accessor: AccessorId) -> InstrumentKinds {
        let Some(a) = self.accessor(accessor) else {
            return InstrumentKinds::EMPTY;
        };
        let external = a
            .recipient
            .and_then(|r| self.recipient(r))
            .is_some_and(|r| r.kind.is_external());
        if a.tenant_bound || external {
            return InstrumentKinds::EMPTY;
        }
        a.allowed
            .iter()
            .filter_map(|p| self.purpose(p))
            .fold(InstrumentKinds::EMPTY, |acc, p| {
                InstrumentKinds(acc.0 | p.instruments.0)
            })
    }

    /// The purposes a collection stating `stated` lets values serve: each stated purpose and
    /// every purpose refining it, in this version. Computed once, at collection, and kept with
    /// the values, so a later version cannot widen it.
    pub fn scope_of(&self, stated: PurposeSet) -> PurposeSet {
        stated.iter().fold(PurposeSet::EMPTY, |acc, p| {
            acc.union(self.purpose(p).map(|x| x.descendants).unwrap_or_default())
        })
    }

    /// Ids of the categories in a set, in declaration order.
    pub fn category_names(&self, set: CategorySet) -> Vec<&str> {
        set.iter()
            .filter_map(|c| self.category(c).map(|c| c.id.as_str()))
            .collect()
    }
    /// Ids of the purposes in a set, in declaration order.
    pub fn purpose_names(&self, set: PurposeSet) -> Vec<&str> {
        set.iter()
            .filter_map(|p| self.purpose(p).map(|p| p.id.as_str()))
            .collect()
    }

    /// Every clause id an element of the policy cites, with the elements citing it, as
    /// `kind:id` strings (`purpose:marketing.partners`).
    pub fn clause_elements(&self) -> std::collections::BTreeMap<String, Vec<String>> {
        let mut map: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        let f = &self.file;
        let mut add = |kind: &str, id: &str, clauses: &[model::Str]| {
            for c in clauses {
                map.entry(c.get_ref().clone())
                    .or_default()
                    .push(format!("{kind}:{id}"));
            }
        };
        if let Some(h) = &f.policy {
            add("policy", h.id.get_ref(), &h.clauses);
        }
        if let Some(c) = &f.contacts {
            add("contacts", "contacts", &c.clauses);
        }
        for x in &f.category {
            add("category", x.id.get_ref(), &x.clauses);
        }
        for x in &f.purpose {
            add("purpose", x.id.get_ref(), &x.clauses);
        }
        for x in &f.accessor {
            add("accessor", x.id.get_ref(), &x.clauses);
            for l in &x.limit {
                add(
                    "accessor-limit",
                    &format!("{}/{}", x.id.get_ref(), l.purpose.get_ref()),
                    &l.clauses,
                );
            }
        }
        for x in &f.service {
            add("service", x.id.get_ref(), &x.clauses);
            for r in &x.role {
                add(
                    "role",
                    &format!("{}/{}", x.id.get_ref(), r.id.get_ref()),
                    &r.clauses,
                );
            }
        }
        for x in &f.collection {
            add("collection", x.id.get_ref(), &x.clauses);
        }
        for x in &f.recipient {
            add("recipient", x.id.get_ref(), &x.clauses);
            for l in &x.allow {
                add(
                    "recipient-allow",
                    &format!("{}/{}", x.id.get_ref(), l.purpose.get_ref()),
                    &l.clauses,
                );
            }
        }
        for x in &f.retention {
            add("retention", x.id.get_ref(), &x.clauses);
        }
        for x in &f.cookie {
            add("cookie", x.id.get_ref(), &x.clauses);
        }
        for x in &f.region {
            add("region", x.id.get_ref(), &x.clauses);
        }
        for x in &f.transfer {
            add("transfer", x.to.get_ref(), &x.clauses);
        }
        for x in &f.right {
            add("right", x.id.get_ref(), &x.clauses);
        }
        for x in &f.statement {
            add("statement", x.id.get_ref(), &x.clauses);
        }
        map
    }
}

fn lookup<T: Copy>(map: &NameMap<T>, kind: &'static str, name: &str) -> Result<T, UnknownId> {
    map.get(name).copied().ok_or_else(|| {
        // At run time the policy cannot be edited, so list what it declares instead. The name
        // is quoted short and escaped; one longer than any id gets no suggestion.
        let quoted = source::quote(name);
        let message = match source::nearest(name, map.keys().map(String::as_str)) {
            Some(n) => format!("unknown {kind} `{quoted}`; did you mean `{n}`?"),
            None => {
                let mut ids: Vec<&str> = map.keys().map(String::as_str).collect();
                ids.sort_unstable();
                let shown = ids.len().min(12);
                let more = if ids.len() > shown { ", …" } else { "" };
                format!(
                    "unknown {kind} `{quoted}`; the policy declares: {}{more}",
                    ids.get(..shown).unwrap_or_default().join(", ")
                )
            }
        };
        UnknownId {
            kind,
            name: name.to_string(),
            message,
        }
    })
}

#[cfg(test)]
mod tests {
    use std::hash::Hasher as _;

    use super::Fnv1a;

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        for (text, want) in [
            ("", 0xcbf2_9ce4_8422_2325_u64),
            ("a", 0xaf63_dc4c_8601_ec8c),
            ("foobar", 0x8594_4171_f739_67e8),
        ] {
            let mut h = Fnv1a::default();
            h.write(text.as_bytes());
            assert_eq!(h.finish(), want, "{text:?}");
        }
    }

    #[test]
    fn an_unknown_name_is_quoted_short_and_escaped() {
        let p = super::Policy::builtin().unwrap_or_else(|d| panic!("{d}"));
        let huge = format!("service.meetings{}", "\0`".repeat(500_000));
        for e in [
            p.purpose_id(&huge).err(),
            p.category_id(&huge).err(),
            p.collection_id(&huge).err(),
        ] {
            let e = e.unwrap_or_else(|| panic!("resolved"));
            assert!(e.message.len() < 1024, "{}", e.message.len());
            assert!(!e.message.chars().any(char::is_control), "{}", e.message);
            assert!(!e.message.contains("did you mean"), "{}", e.message);
        }
        let e = p.purpose_id("service.meetigns").err();
        let message = e.map(|e| e.message).unwrap_or_default();
        assert!(message.contains("`service.meetigns`; did you mean `service.meetings`?"));
    }
}
