//! Clause checks as data: what a clause promises, stated in `trace.toml` apart from the policy
//! file, and checked against any compiled [`Policy`] through the same functions the vault
//! calls (`check_collection`, `check_collector`, `decide`) or the compiled tables they read.
//!
//! A check names the policy's elements by id. Against the policy it was written for it must
//! hold; against a weakened copy of that policy ([`crate::mutate`]) at least one check of the
//! clause must fail, or the weakening survives and the mutation gate fails.
//!
//! Each `[[clause.check]]` table holds exactly one of the keys below; `docs/policy-language.md`
//! ("Clause checks") documents them with examples.
//!
//! | key | what must hold |
//! | --- | --- |
//! | `collects` | the categories a role's collection accepts are exactly `only` |
//! | `stated` | the purposes a role's collection may state are exactly `only` and their refinements |
//! | `records` | the record collections a role keeps are exactly `only` |
//! | `collect` | one collection is `allowed` (keeping `transient` unstored, `tls` only over TLS) or `refused` (with a `code`) |
//! | `collects_for` | the services an accessor collects in the name of are exactly `only` |
//! | `pursues` | the purposes an accessor may pursue are exactly `only` and their refinements |
//! | `reads` | the most an accessor (and recipient) may get for a purpose is exactly `only` |
//! | `decide` | one decision's effect, reason and granted categories |
//! | `receives` | the recipients that may receive anything for a purpose are exactly `only` |
//! | `purpose` | a purpose's basis and whether it needs a reference or a recipient |
//! | `accessor` | whether an accessor is bound to one tenant, and the recipient it acts for |
//! | `category` | whether a category is transient (never stored) or an identifier |
//! | `collection` | the categories a record collection's fields hold are exactly `only` |
//! | `minimum_age` | the policy's minimum age |
//! | `right` | the channels a `[[right]]` offers are exactly `channels` |
//! | `contacts` | each `[contacts]` field named is exactly as given |

use std::collections::BTreeSet;

use serde::Deserialize;

use crate::decide::{AgeStatus, Effect, Request, Subject, SubjectStatus};
use crate::ids::{CategorySet, PurposeSet};
use crate::{CollectionRequest, Policy};

/// One check, as written in `trace.toml`: a table of exactly one key, which names the kind.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// The categories a role's collection accepts.
    Collects(RoleSet),
    /// The purposes a role's collection may state.
    Stated(RoleSet),
    /// The record collections a role keeps.
    Records(RoleSet),
    /// One collection.
    Collect(Collect),
    /// The services an accessor collects for.
    CollectsFor(AccessorSet),
    /// The purposes an accessor pursues.
    Pursues(AccessorSet),
    /// The most an accessor gets for a purpose.
    Reads(Reads),
    /// One decision.
    Decide(Decide),
    /// The recipients that may receive for a purpose.
    Receives(Receives),
    /// A purpose's rule.
    Purpose(PurposeRule),
    /// An accessor's binding.
    Accessor(AccessorRule),
    /// A category's storage.
    Category(CategoryRule),
    /// A record collection's categories.
    Collection(CollectionSet),
    /// The minimum age.
    MinimumAge(u32),
    /// The channels of a right.
    Right(RightRule),
    /// The controller's contacts.
    Contacts(ContactsRule),
}

/// `{ id, channels }`: the channels a `[[right]]` offers, exactly.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RightRule {
    /// The right, e.g. `unsubscribe`.
    pub id: String,
    /// Exactly its channels.
    pub channels: Vec<String>,
}

/// `{ privacy_email, unsubscribe_email, postal_address }`: each field given must be exactly
/// the policy's.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactsRule {
    /// `[contacts] privacy_email`.
    pub privacy_email: Option<String>,
    /// `[contacts] unsubscribe_email`.
    pub unsubscribe_email: Option<String>,
    /// `[contacts] postal_address`, line by line.
    pub postal_address: Option<Vec<String>>,
}

/// `{ service, role, only }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSet {
    /// The service.
    pub service: String,
    /// The role in it.
    pub role: String,
    /// Exactly what is accepted.
    pub only: Vec<String>,
}

/// `{ service, role, purposes, categories, age, expect, code, transient }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collect {
    /// The service.
    pub service: String,
    /// The role.
    pub role: String,
    /// Purposes stated.
    pub purposes: Vec<String>,
    /// Categories given.
    pub categories: Vec<String>,
    /// The person's stated age.
    pub age: Option<u32>,
    /// The notice version shown; the policy's own when absent.
    pub notice: Option<String>,
    /// `allowed` or `refused`.
    pub expect: String,
    /// For `refused`: a code among the errors.
    pub code: Option<String>,
    /// For `allowed`: exactly the categories used once and never stored.
    pub transient: Option<Vec<String>>,
    /// For `allowed`: exactly the categories that may cross the network only over TLS.
    pub tls: Option<Vec<String>>,
}

/// `{ accessor, only }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessorSet {
    /// The accessor.
    pub accessor: String,
    /// Exactly what it has.
    pub only: Vec<String>,
}

/// `{ accessor, purpose, recipient, only, to }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reads {
    /// The accessor.
    pub accessor: String,
    /// The purpose.
    pub purpose: String,
    /// An onward recipient named in the request.
    pub recipient: Option<String>,
    /// Exactly the categories it may get, of a person who gave everything for every purpose
    /// and consents to everything (so only minimum necessary limits it).
    pub only: Vec<String>,
    /// The recipient the decision records a disclosure to; `""` for none.
    pub to: Option<String>,
}

/// `{ accessor, purpose, categories, … , expect, reason, granted }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decide {
    /// The accessor.
    pub accessor: String,
    /// The purpose.
    pub purpose: String,
    /// Categories asked for.
    pub categories: Vec<String>,
    /// An onward recipient named in the request.
    pub recipient: Option<String>,
    /// Whether a reference (legal instrument) was given.
    #[serde(default)]
    pub reference: bool,
    /// `service/role`: the asked categories were collected in that role, for its purposes.
    pub collected_by: Option<String>,
    /// Or: the asked categories were collected for these purposes.
    pub collected_for: Option<Vec<String>>,
    /// Purposes the person consents to.
    #[serde(default)]
    pub consents: Vec<String>,
    /// Purposes the person objected to.
    #[serde(default)]
    pub objections: Vec<String>,
    /// `active` (default), `deactivated` or `erased`.
    pub status: Option<String>,
    /// `unknown` (default), `adult` or `under`.
    pub age: Option<String>,
    /// `permit`, `partial` or `deny`.
    pub expect: String,
    /// The reason code: of the denial, or of every category withheld.
    pub reason: Option<String>,
    /// Exactly the categories permitted.
    pub granted: Option<Vec<String>>,
}

/// `{ purpose, only }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receives {
    /// The purpose.
    pub purpose: String,
    /// Exactly the recipients allowed anything for it.
    pub only: Vec<String>,
}

/// `{ id, basis, requires_reference, requires_recipient }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeRule {
    /// The purpose.
    pub id: String,
    /// Its basis.
    pub basis: Option<String>,
    /// Whether each use needs a reference.
    pub requires_reference: Option<bool>,
    /// Whether each use is a disclosure.
    pub requires_recipient: Option<bool>,
    /// Exactly the kinds of legal instrument a use may be decided by.
    pub instruments: Option<Vec<String>>,
}

/// `{ id, tenant_bound, recipient }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessorRule {
    /// The accessor.
    pub id: String,
    /// Whether its keys are bound to one tenant.
    pub tenant_bound: Option<bool>,
    /// The recipient it acts for; `""` for none.
    pub recipient: Option<String>,
}

/// `{ id, transient, identifier }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategoryRule {
    /// The category.
    pub id: String,
    /// Never stored.
    pub transient: Option<bool>,
    /// Finds a person on its own.
    pub identifier: Option<bool>,
    /// How long its values are kept: `transient`, `account`, or days as `P30D`.
    pub retention: Option<String>,
}

/// `{ id, only }`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionSet {
    /// The record collection.
    pub id: String,
    /// Exactly the categories of its fields.
    pub only: Vec<String>,
}

impl Check {
    /// A short label: the kind and the element it is about.
    pub fn label(&self) -> String {
        match self {
            Self::Collects(x) => format!("collects {}/{}", x.service, x.role),
            Self::Stated(x) => format!("stated {}/{}", x.service, x.role),
            Self::Records(x) => format!("records {}/{}", x.service, x.role),
            Self::Collect(x) => format!(
                "collect {}/{} [{}] {}",
                x.service,
                x.role,
                x.categories.join(","),
                x.expect
            ),
            Self::CollectsFor(x) => format!("collects_for {}", x.accessor),
            Self::Pursues(x) => format!("pursues {}", x.accessor),
            Self::Reads(x) => format!("reads {} for {}", x.accessor, x.purpose),
            Self::Decide(x) => format!("decide {} for {} {}", x.accessor, x.purpose, x.expect),
            Self::Receives(x) => format!("receives for {}", x.purpose),
            Self::Purpose(x) => format!("purpose {}", x.id),
            Self::Accessor(x) => format!("accessor {}", x.id),
            Self::Category(x) => format!("category {}", x.id),
            Self::Collection(x) => format!("collection {}", x.id),
            Self::MinimumAge(x) => format!("minimum_age {x}"),
            Self::Right(x) => format!("right {}", x.id),
            Self::Contacts(_) => "contacts".into(),
        }
    }

    /// Runs the check against a policy. `Err` says what the policy does instead.
    pub fn run(&self, p: &Policy) -> Result<(), String> {
        match self {
            Self::Collects(x) => collects(p, x),
            Self::Stated(x) => stated(p, x),
            Self::Records(x) => records(p, x),
            Self::Collect(x) => collect(p, x),
            Self::CollectsFor(x) => collects_for(p, x),
            Self::Pursues(x) => pursues(p, x),
            Self::Reads(x) => reads(p, x),
            Self::Decide(x) => decide(p, x),
            Self::Receives(x) => receives(p, x),
            Self::Purpose(x) => purpose_rule(p, x),
            Self::Accessor(x) => accessor_rule(p, x),
            Self::Category(x) => category_rule(p, x),
            Self::Collection(x) => collection_set(p, x),
            Self::MinimumAge(age) => match p.minimum_age() {
                Some(a) if a == *age => Ok(()),
                other => Err(format!("minimum age is {other:?}, not {age}")),
            },
            Self::Right(x) => right_rule(p, x),
            Self::Contacts(x) => contacts_rule(p, x),
        }
    }
}

/// Every kind of check: the key a `[[clause.check]]` holds.
pub const KEYS: &[&str] = &[
    "collects",
    "stated",
    "records",
    "collect",
    "collects_for",
    "pursues",
    "reads",
    "decide",
    "receives",
    "purpose",
    "accessor",
    "category",
    "collection",
    "minimum_age",
    "right",
    "contacts",
];

/// Compares the set found with the set promised; the error lists both differences.
fn same(what: &str, found: BTreeSet<String>, only: &[String]) -> Result<(), String> {
    let want: BTreeSet<String> = only.iter().cloned().collect();
    if found == want {
        return Ok(());
    }
    let extra: Vec<&str> = found.difference(&want).map(String::as_str).collect();
    let missing: Vec<&str> = want.difference(&found).map(String::as_str).collect();
    let mut m = what.to_string();
    if !extra.is_empty() {
        m.push_str(&format!(": also {}", extra.join(", ")));
    }
    if !missing.is_empty() {
        m.push_str(&format!(": lacks {}", missing.join(", ")));
    }
    Err(m)
}

fn role<'p>(p: &'p Policy, service: &str, role: &str) -> Result<&'p crate::RoleInfo, String> {
    let s = p.service_id(service).map_err(|e| e.message)?;
    p.service(s)
        .and_then(|s| s.roles.iter().find(|r| r.id == role))
        .ok_or_else(|| format!("service `{service}` has no role `{role}`"))
}

fn category_names(p: &Policy) -> Vec<&str> {
    p.categories().iter().map(|c| c.id.as_str()).collect()
}

fn collection_of(
    p: &Policy,
    service: &str,
    role: &str,
    purposes: &[&str],
    categories: &[&str],
) -> Result<crate::CollectionPlan, Vec<crate::CollectionError>> {
    p.check_collection(&CollectionRequest {
        service,
        role,
        purposes,
        notice: p.version(),
        age: None,
        categories,
    })
}

fn collects(p: &Policy, x: &RoleSet) -> Result<(), String> {
    let r = role(p, &x.service, &x.role)?;
    let stated: Vec<&str> = p.purpose_names(r.purposes);
    let found = category_names(p)
        .into_iter()
        .filter(|c| collection_of(p, &x.service, &x.role, &stated, &[c]).is_ok())
        .map(String::from)
        .collect();
    same(
        &format!("{}/{} accepts other categories", x.service, x.role),
        found,
        &x.only,
    )
}

/// A purpose set and every purpose refining one of its members.
fn closure(p: &Policy, names: &[String]) -> Result<BTreeSet<String>, String> {
    let mut out = BTreeSet::new();
    for n in names {
        let id = p.purpose_id(n).map_err(|e| e.message)?;
        let info = p.purpose(id).ok_or("undeclared purpose")?;
        out.extend(
            p.purpose_names(info.descendants)
                .into_iter()
                .map(String::from),
        );
    }
    Ok(out)
}

fn stated(p: &Policy, x: &RoleSet) -> Result<(), String> {
    let r = role(p, &x.service, &x.role)?;
    let one = r
        .collects
        .union(r.optional)
        .iter()
        .next()
        .and_then(|c| p.category(c))
        .map(|c| c.id.clone())
        .ok_or_else(|| format!("{}/{} collects nothing", x.service, x.role))?;
    let found: BTreeSet<String> = p
        .purposes()
        .iter()
        .map(|q| q.id.as_str())
        .filter(|q| collection_of(p, &x.service, &x.role, &[q], &[&one]).is_ok())
        .map(String::from)
        .collect();
    let want: Vec<String> = closure(p, &x.only)?.into_iter().collect();
    same(
        &format!("{}/{} may state other purposes", x.service, x.role),
        found,
        &want,
    )
}

fn records(p: &Policy, x: &RoleSet) -> Result<(), String> {
    let r = role(p, &x.service, &x.role)?;
    let found = r
        .records
        .iter()
        .filter_map(|c| p.collection(*c))
        .map(|c| c.id.clone())
        .collect();
    same(
        &format!("{}/{} keeps other records", x.service, x.role),
        found,
        &x.only,
    )
}

fn collect(p: &Policy, x: &Collect) -> Result<(), String> {
    let purposes: Vec<&str> = x.purposes.iter().map(String::as_str).collect();
    let categories: Vec<&str> = x.categories.iter().map(String::as_str).collect();
    let answer = p.check_collection(&CollectionRequest {
        service: &x.service,
        role: &x.role,
        purposes: &purposes,
        notice: x.notice.as_deref().unwrap_or(p.version()),
        age: x.age,
        categories: &categories,
    });
    match (x.expect.as_str(), answer) {
        ("allowed", Ok(plan)) => {
            if let Some(t) = &x.transient {
                same(
                    "the collection keeps other categories transient",
                    p.category_names(plan.transient)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    t,
                )?;
            }
            if let Some(t) = &x.tls {
                same(
                    "other categories need TLS",
                    p.category_names(plan.tls)
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    t,
                )?;
            }
            Ok(())
        }
        ("allowed", Err(e)) => Err(format!(
            "refused: {}",
            e.iter().map(|e| e.code).collect::<Vec<_>>().join(", ")
        )),
        ("refused", Ok(_)) => Err("allowed".into()),
        ("refused", Err(e)) => match &x.code {
            Some(code) if !e.iter().any(|e| e.code == code) => Err(format!(
                "refused with {}, not {code}",
                e.iter().map(|e| e.code).collect::<Vec<_>>().join(", ")
            )),
            _ => Ok(()),
        },
        (other, _) => Err(format!(
            "unknown expectation `{other}`; expected allowed or refused"
        )),
    }
}

fn collects_for(p: &Policy, x: &AccessorSet) -> Result<(), String> {
    p.accessor_id(&x.accessor).map_err(|e| e.message)?;
    let all = all_purposes(p);
    let found = p
        .services()
        .iter()
        .filter(|s| {
            p.service_id(&s.id)
                .is_ok_and(|id| p.check_collector(&x.accessor, id, all).is_ok())
        })
        .map(|s| s.id.clone())
        .collect();
    same(
        &format!("{} collects for other services", x.accessor),
        found,
        &x.only,
    )
}

/// A person who gave every category for every purpose, consents to everything and objected
/// to nothing: only the accessor's and recipients' limits and the purpose's rule stop a use.
fn everything(p: &Policy) -> Subject {
    let mut s = Subject::new();
    s.age = AgeStatus::AtLeastMinimum;
    s.hold(all_categories(p), all_purposes(p));
    s.consents = all_purposes(p);
    s
}

fn all_purposes(p: &Policy) -> PurposeSet {
    p.purposes()
        .iter()
        .filter_map(|q| p.purpose_id(&q.id).ok())
        .collect()
}

fn all_categories(p: &Policy) -> CategorySet {
    p.categories()
        .iter()
        .filter_map(|c| p.category_id(&c.id).ok())
        .collect()
}

fn pursues(p: &Policy, x: &AccessorSet) -> Result<(), String> {
    let accessor = p.accessor_id(&x.accessor).map_err(|e| e.message)?;
    let subject = everything(p);
    let found = p
        .purposes()
        .iter()
        .filter(|q| {
            let Ok(purpose) = p.purpose_id(&q.id) else {
                return false;
            };
            let d = p.decide(
                &Request {
                    accessor,
                    purpose,
                    categories: subject.held_categories(),
                    recipient: None,
                    has_reference: true,
                },
                &subject,
            );
            d.denial != Some(crate::Reason::PurposeNotAllowedForAccessor)
        })
        .map(|q| q.id.clone())
        .collect();
    let want: Vec<String> = closure(p, &x.only)?.into_iter().collect();
    same(
        &format!("{} pursues other purposes", x.accessor),
        found,
        &want,
    )
}

fn reads(p: &Policy, x: &Reads) -> Result<(), String> {
    let subject = everything(p);
    let req = Request {
        accessor: p.accessor_id(&x.accessor).map_err(|e| e.message)?,
        purpose: p.purpose_id(&x.purpose).map_err(|e| e.message)?,
        categories: subject.held_categories(),
        recipient: match &x.recipient {
            Some(r) => Some(p.recipient_id(r).map_err(|e| e.message)?),
            None => None,
        },
        has_reference: true,
    };
    let d = p.decide(&req, &subject);
    let found = p
        .category_names(d.permitted)
        .into_iter()
        .map(String::from)
        .collect();
    same(
        &format!("{} gets other categories for {}", x.accessor, x.purpose),
        found,
        &x.only,
    )?;
    if let Some(to) = &x.to {
        let got = d
            .disclosure_to
            .and_then(|r| p.recipient(r))
            .map_or("", |r| r.id.as_str());
        if got != to {
            return Err(format!(
                "the decision records a disclosure to `{got}`, not `{to}`"
            ));
        }
    }
    Ok(())
}

fn decide(p: &Policy, x: &Decide) -> Result<(), String> {
    let categories = p.category_set(&x.categories).map_err(|e| e.message)?;
    let mut subject = Subject::new();
    let collected_for = match (&x.collected_by, &x.collected_for) {
        (Some(by), _) => {
            let (s, r) = by
                .split_once('/')
                .ok_or_else(|| format!("collected_by `{by}` is not service/role"))?;
            role(p, s, r)?.allowed_purposes
        }
        (None, Some(f)) => p.scope_of(p.purpose_set(f).map_err(|e| e.message)?),
        (None, None) => PurposeSet::EMPTY,
    };
    if !collected_for.is_empty() {
        subject.hold(categories, collected_for);
    }
    subject.consents = p.purpose_set(&x.consents).map_err(|e| e.message)?;
    subject.objections = p.purpose_set(&x.objections).map_err(|e| e.message)?;
    subject.status = match x.status.as_deref().unwrap_or("active") {
        "active" => SubjectStatus::Active,
        "deactivated" => SubjectStatus::Deactivated,
        "erased" => SubjectStatus::Erased,
        other => return Err(format!("unknown status `{other}`")),
    };
    subject.age = match x.age.as_deref().unwrap_or("unknown") {
        "unknown" => AgeStatus::Unknown,
        "adult" => AgeStatus::AtLeastMinimum,
        "under" => AgeStatus::UnderMinimum,
        other => return Err(format!("unknown age `{other}`")),
    };
    let req = Request {
        accessor: p.accessor_id(&x.accessor).map_err(|e| e.message)?,
        purpose: p.purpose_id(&x.purpose).map_err(|e| e.message)?,
        categories,
        recipient: match &x.recipient {
            Some(r) => Some(p.recipient_id(r).map_err(|e| e.message)?),
            None => None,
        },
        has_reference: x.reference,
    };
    let d = p.decide(&req, &subject);
    let effect = match d.effect {
        Effect::Permit => "permit",
        Effect::Partial => "partial",
        Effect::Deny => "deny",
    };
    let reasons: BTreeSet<&str> = d
        .denial
        .into_iter()
        .chain(d.withheld.iter().map(|w| w.reason))
        .map(crate::Reason::code)
        .collect();
    if effect != x.expect {
        return Err(format!(
            "{effect} ({}), not {}",
            reasons.into_iter().collect::<Vec<_>>().join(", "),
            x.expect
        ));
    }
    if let Some(reason) = &x.reason {
        if reasons.len() != 1 || !reasons.contains(reason.as_str()) {
            return Err(format!(
                "reasons {}, not {reason}",
                reasons.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    if let Some(granted) = &x.granted {
        same(
            "other categories granted",
            p.category_names(d.permitted)
                .into_iter()
                .map(String::from)
                .collect(),
            granted,
        )?;
    }
    Ok(())
}

fn receives(p: &Policy, x: &Receives) -> Result<(), String> {
    let purpose = p.purpose_id(&x.purpose).map_err(|e| e.message)?;
    let found = p
        .recipients()
        .iter()
        .filter(|r| r.allows.get(purpose.index()).copied().flatten().is_some())
        .map(|r| r.id.clone())
        .collect();
    same(
        &format!("other recipients receive for {}", x.purpose),
        found,
        &x.only,
    )
}

fn purpose_rule(p: &Policy, x: &PurposeRule) -> Result<(), String> {
    let id = p.purpose_id(&x.id).map_err(|e| e.message)?;
    let info = p.purpose(id).ok_or("undeclared purpose")?;
    if let Some(b) = &x.basis {
        if info.basis.as_str() != b {
            return Err(format!(
                "`{}` has basis {}, not {b}",
                x.id,
                info.basis.as_str()
            ));
        }
    }
    if let Some(r) = x.requires_reference {
        if info.requires_reference != r {
            return Err(format!(
                "`{}` requires_reference is {}",
                x.id, info.requires_reference
            ));
        }
    }
    if let Some(kinds) = &x.instruments {
        same(
            &format!("`{}` is decided by other instruments", x.id),
            p.instrument_kinds(id)
                .iter()
                .map(|k| k.as_str().to_string())
                .collect(),
            kinds,
        )?;
    }
    if let Some(r) = x.requires_recipient {
        if info.requires_recipient != r {
            return Err(format!(
                "`{}` requires_recipient is {}",
                x.id, info.requires_recipient
            ));
        }
    }
    Ok(())
}

fn accessor_rule(p: &Policy, x: &AccessorRule) -> Result<(), String> {
    let id = p.accessor_id(&x.id).map_err(|e| e.message)?;
    let info = p.accessor(id).ok_or("undeclared accessor")?;
    if let Some(t) = x.tenant_bound {
        if info.tenant_bound != t {
            return Err(format!("`{}` tenant_bound is {}", x.id, info.tenant_bound));
        }
    }
    if let Some(r) = &x.recipient {
        let got = info
            .recipient
            .and_then(|r| p.recipient(r))
            .map_or("", |r| r.id.as_str());
        if got != r {
            return Err(format!("`{}` acts for `{got}`, not `{r}`", x.id));
        }
    }
    Ok(())
}

fn category_rule(p: &Policy, x: &CategoryRule) -> Result<(), String> {
    let id = p.category_id(&x.id).map_err(|e| e.message)?;
    let info = p.category(id).ok_or("undeclared category")?;
    if let Some(t) = x.transient {
        if info.transient != t {
            return Err(format!("`{}` transient is {}", x.id, info.transient));
        }
    }
    if let Some(t) = x.identifier {
        if info.identifier != t {
            return Err(format!("`{}` identifier is {}", x.id, info.identifier));
        }
    }
    if let Some(r) = &x.retention {
        let got = period_name(info.retention);
        if got != *r {
            return Err(format!("`{}` is kept for `{got}`, not `{r}`", x.id));
        }
    }
    Ok(())
}

/// A retention period as a check writes it: `transient`, `account`, `P30D`; `""` for none.
pub fn period_name(p: Option<crate::PeriodKind>) -> String {
    match p {
        None => String::new(),
        Some(crate::PeriodKind::Transient) => "transient".into(),
        Some(crate::PeriodKind::Account) => "account".into(),
        Some(crate::PeriodKind::Days(d)) => format!("P{d}D"),
    }
}

fn collection_set(p: &Policy, x: &CollectionSet) -> Result<(), String> {
    let id = p.collection_id(&x.id).map_err(|e| e.message)?;
    let info = p.collection(id).ok_or("undeclared collection")?;
    same(
        &format!("`{}` holds other categories", x.id),
        p.category_names(info.categories)
            .into_iter()
            .map(String::from)
            .collect(),
        &x.only,
    )
}

fn right_rule(p: &Policy, x: &RightRule) -> Result<(), String> {
    let found: BTreeSet<String> = p
        .file()
        .right
        .iter()
        .filter(|r| r.id.get_ref() == &x.id)
        .flat_map(|r| r.channels.iter().map(|c| c.get_ref().clone()))
        .collect();
    if !p.file().right.iter().any(|r| r.id.get_ref() == &x.id) {
        return Err(format!("the policy declares no right `{}`", x.id));
    }
    same(
        &format!("right `{}` offers other channels", x.id),
        found,
        &x.channels,
    )
}

fn contacts_rule(p: &Policy, x: &ContactsRule) -> Result<(), String> {
    let c = p.contacts();
    let field = |name: &str, got: &Option<String>, want: &Option<String>| match want {
        Some(w) if got.as_ref() != Some(w) => Err(format!(
            "contacts {name} is {}, not `{w}`",
            got.as_deref().map_or("absent".into(), |g| format!("`{g}`"))
        )),
        _ => Ok(()),
    };
    field("privacy_email", &c.privacy_email, &x.privacy_email)?;
    field(
        "unsubscribe_email",
        &c.unsubscribe_email,
        &x.unsubscribe_email,
    )?;
    if let Some(lines) = &x.postal_address {
        if &c.postal_address != lines {
            return Err(format!(
                "contacts postal_address is {:?}, not {lines:?}",
                c.postal_address
            ));
        }
    }
    Ok(())
}
