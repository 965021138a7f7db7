//! The policy file format, as written: TOML tables deserialized with the spans of every id and
//! reference so that validation can point at `path:line:column`.
//!
//! A policy is one TOML file or a folder of them; a folder's files are concatenated table by
//! table, and exactly one of them holds `[policy]`. `docs/policy-language.md` documents every
//! table and key.

use serde::Deserialize;
use toml::Spanned;

/// A spanned string: an id, a reference or an enumerated keyword.
pub type Str = Spanned<String>;

/// One policy file as written. Every table is optional so a folder can split a policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// The policy header; exactly one file of a policy has it.
    pub policy: Option<Header>,
    /// How to reach the controller.
    pub contacts: Option<Contacts>,
    /// Data categories.
    #[serde(default)]
    pub category: Vec<Category>,
    /// Purposes, in a hierarchy.
    #[serde(default)]
    pub purpose: Vec<Purpose>,
    /// The callers of the vault and what they may pursue.
    #[serde(default)]
    pub accessor: Vec<Accessor>,
    /// Services and the roles people have in them.
    #[serde(default)]
    pub service: Vec<Service>,
    /// Typed record collections.
    #[serde(default)]
    pub collection: Vec<Collection>,
    /// Who data may be disclosed to, and the minimum each may receive.
    #[serde(default)]
    pub recipient: Vec<Recipient>,
    /// Retention periods.
    #[serde(default)]
    pub retention: Vec<Retention>,
    /// Cookies and web beacons.
    #[serde(default)]
    pub cookie: Vec<Cookie>,
    /// Regions where data is processed.
    #[serde(default)]
    pub region: Vec<Region>,
    /// Transfers of data between regions.
    #[serde(default)]
    pub transfer: Vec<Transfer>,
    /// Rights a person has, and how to exercise them.
    #[serde(default)]
    pub right: Vec<Right>,
    /// How people's requests are handled: who is staff, how long each kind may take.
    pub rights: Option<Rights>,
    /// Notice text that no structured element carries.
    #[serde(default)]
    pub statement: Vec<Statement>,
}

/// `[policy]`: who publishes the policy and which version it is.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Stable id of the policy, e.g. `webex-2010`.
    pub id: Str,
    /// The version id; collections name it as the notice version shown.
    pub version: Str,
    /// Date the version takes effect, `YYYY-MM-DD`.
    pub effective: Str,
    /// Title of the notice.
    pub title: String,
    /// The controller: who decides what happens to the data.
    pub controller: String,
    /// The controller's parent company, if any.
    pub parent_company: Option<String>,
    /// Where the policy applies, in words.
    pub scope: Option<String>,
    /// Minimum age of a data subject in years; younger people are refused and erased.
    pub minimum_age: Option<Spanned<u32>>,
    /// The range of clause ids elements may cite, e.g. `["C001", "C080"]`.
    pub clause_range: Option<Spanned<Vec<String>>>,
    /// Clauses the header itself encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[contacts]`: how to reach the controller.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contacts {
    /// Address for privacy questions and requests.
    pub privacy_email: Option<Str>,
    /// Address for unsubscribe requests.
    pub unsubscribe_email: Option<Str>,
    /// Postal address, one line per entry.
    #[serde(default)]
    pub postal_address: Vec<String>,
    /// Where registered users maintain their account online.
    pub account_url: Option<String>,
    /// Clauses the contacts encode.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[category]]`: a kind of personal information.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    /// Dotted id, e.g. `contact.email`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// What kind of information it is: `identity`, `contact`, `financial`, `network`,
    /// `activity`, `content`, `device`, `demographic` or `aggregate`.
    pub kind: Option<Str>,
    /// Whether it identifies a person on its own (used to find a subject by it).
    #[serde(default)]
    pub identifier: bool,
    /// Whether values may be kept at all; a transient category is used once, never stored.
    #[serde(default)]
    pub transient: bool,
    /// Id of the retention rule for values of this category.
    pub retention: Option<Str>,
    /// How values may cross the network: `tls` (only over TLS, or from a client on the
    /// server's own host) or `any` (the default).
    pub transport: Option<Str>,
    /// Longer description for the notice.
    pub description: Option<String>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[purpose]]`: why information is collected or used.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Purpose {
    /// Dotted id, e.g. `marketing.partners`.
    pub id: Str,
    /// The broader purpose this one refines.
    pub parent: Option<Str>,
    /// Legal basis: `service`, `consent`, `opt_out`, `legal` or `contract`.
    pub basis: Option<Str>,
    /// Human name.
    pub name: String,
    /// What the purpose means, for the notice.
    pub description: Option<String>,
    /// Whether a use for this purpose needs a reference (legal process, verified authority).
    #[serde(default)]
    pub requires_reference: bool,
    /// The kinds of registered legal instrument a reference for this purpose may name
    /// (`court_order`, `subpoena`, `authority_request`, `fraud_case`,
    /// `purchaser_authority`); only on a purpose that requires a reference. Absent: any kind.
    pub instruments: Option<Vec<Str>>,
    /// Whether every use is a disclosure: it needs an external recipient (the accessor's own
    /// or one named in the request), so it is recorded as one and capped by its allowance.
    #[serde(default)]
    pub requires_recipient: bool,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[accessor]]`: a caller of the vault.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accessor {
    /// Id, e.g. `support`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// The external recipient this accessor acts for; its reads are disclosures.
    pub recipient: Option<Str>,
    /// Purposes it may pursue (with their descendants).
    #[serde(default)]
    pub purposes: Vec<Str>,
    /// The services it collects for: it may collect, add data and append records only in
    /// their name, and only about people they hold. `None`: the service with the accessor's
    /// own id, if one is declared.
    pub services: Option<Vec<Str>>,
    /// Minimum necessary: the most it may read for a purpose.
    #[serde(default)]
    pub limit: Vec<Limit>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// The categories an accessor or recipient may have for one purpose.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The purpose (and its descendants, unless they have a limit of their own).
    pub purpose: Str,
    /// The categories permitted at most.
    pub categories: Vec<Str>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[service]]`: a product people use.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    /// Id, e.g. `meeting-center`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// Group of services sharing one notice section, e.g. `meeting-services`.
    pub family: Option<String>,
    /// What the service is, for the notice.
    pub description: Option<String>,
    /// How what the service collects may cross the network: `tls` (every collection in its
    /// name, and every record a role of it keeps, arrives only over TLS, or from a client on
    /// the server's own host) or `any` (the default: as its categories say).
    pub transport: Option<Str>,
    /// The roles people have in the service.
    #[serde(default)]
    pub role: Vec<Role>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[service.role]]`: what a service collects about a person in one role.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Id, unique within the service, e.g. `host`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// Categories collected from people in this role.
    #[serde(default)]
    pub collects: Vec<Str>,
    /// Categories the person may choose to give.
    #[serde(default)]
    pub optional: Vec<Str>,
    /// Purposes a collection in this role may state.
    #[serde(default)]
    pub purposes: Vec<Str>,
    /// Record collections kept about people in this role.
    #[serde(default)]
    pub records: Vec<Str>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[collection]]`: a typed, append-only record collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// Id, e.g. `chat_messages`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// Id of the retention rule for its records.
    pub retention: Option<Str>,
    /// The fields of a record.
    #[serde(default)]
    pub field: Vec<Field>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// One field of a record collection.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Field name, unique within the collection.
    pub name: Str,
    /// The category of information the field holds.
    pub category: Str,
    /// Whether a record may leave it out.
    #[serde(default)]
    pub optional: bool,
}

/// `[[recipient]]`: someone information may be disclosed to.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// Id, e.g. `payment-processor`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// `internal`, `affiliate`, `processor`, `marketing_partner`, `customer`, `employer`,
    /// `purchaser`, `contact`, `public` or `authority`.
    pub kind: Option<Str>,
    /// Region where the recipient processes data.
    pub region: Option<Str>,
    /// Who they are, for the notice.
    pub description: Option<String>,
    /// The minimum categories it may receive, per purpose; nothing else.
    #[serde(default)]
    pub allow: Vec<Limit>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[retention]]`: how long something is kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Id, e.g. `account`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// `transient`, `account` (until the account is closed) or an ISO 8601 period such as
    /// `P30D`, `P6M`, `P2Y`.
    pub period: Str,
    /// What happens and why, for the notice.
    pub description: Option<String>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[cookie]]`: a cookie or web beacon.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cookie {
    /// Id, e.g. `session`.
    pub id: Str,
    /// `cookie` or `web_beacon`.
    pub kind: Str,
    /// Human name.
    pub name: String,
    /// The purpose it serves.
    pub purpose: Str,
    /// The category of information it holds or gathers.
    pub category: Str,
    /// Whether the site works without it (`false`) or not (`true`).
    #[serde(default)]
    pub required: bool,
    /// What it does, for the notice.
    pub description: Option<String>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[region]]`: a place where data is processed.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Region {
    /// Id, e.g. `us`.
    pub id: Str,
    /// Human name.
    pub name: String,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[transfer]]`: data may move to a region, for some purposes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// Destination region.
    pub to: Str,
    /// Purposes the transfer serves.
    #[serde(default)]
    pub purposes: Vec<Str>,
    /// Recipients in that region the transfer covers; empty means all of them.
    #[serde(default)]
    pub recipients: Vec<Str>,
    /// What the transfer is, for the notice.
    pub description: Option<String>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[[right]]`: something a person can ask for, and how.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Right {
    /// `access`, `rectification`, `deactivation`, `erasure`, `unsubscribe`, `objection`,
    /// `consent_withdrawal` or `disclosure_list` (California "Shine the Light").
    pub id: Str,
    /// Human name.
    pub name: String,
    /// How to exercise it: `online`, `email`, `postal`, `link`.
    #[serde(default)]
    pub channels: Vec<Str>,
    /// Days the controller has to answer, when the law sets one.
    pub due_days: Option<u32>,
    /// What it is and how to use it, for the notice.
    pub description: Option<String>,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}

/// `[rights]`: how people's requests are handled.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rights {
    /// The accessors that handle requests (privacy and legal staff); each declared, acting
    /// for no tenant and for no external recipient.
    #[serde(default)]
    pub staff: Vec<Str>,
    /// Days within which each kind of request is answered, 1 to 365, by request kind
    /// (`access`, `export`, `rectify`, `deactivate`, `erase`, `object`,
    /// `california-disclosures`). A kind not listed is not taken as a request.
    #[serde(default)]
    pub respond_days: std::collections::BTreeMap<Str, Spanned<u32>>,
}

/// `[[statement]]`: notice text that no structured element carries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// Id, e.g. `children.tips`.
    pub id: Str,
    /// Notice section: `overview`, `collection`, `use`, `choices`, `sharing`, `security`,
    /// `cookies`, `children`, `transfers`, `california`, `changes` or `contact`.
    pub section: Option<Str>,
    /// Or the service whose section it belongs to.
    pub service: Option<Str>,
    /// The text, plain; paragraphs separated by blank lines, `* ` starts a list item.
    pub text: String,
    /// Clauses this element encodes.
    #[serde(default)]
    pub clauses: Vec<Str>,
}
