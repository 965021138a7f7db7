//! Differences between two versions of a policy, each classified as material or not.
//!
//! [`diff`] compares two policies by their declared ids (never by position, so reordering a
//! file changes nothing) and lists every change: what was added, removed, widened, narrowed or
//! reworded. Each [`Change`] says whether it is **material** — whether it lets the controller
//! collect more, use data for more, keep it longer, share it with more, or leaves the person
//! fewer ways to object. A material change is what the change notice announces (C063: "we will
//! post a notice whenever this privacy statement is materially changed"), and what DESIGN.md
//! invariant 3 guards: a later version never widens what old data may be used for without the
//! person's consent.
//!
//! When in doubt a change is material: announcing a change that did not need it costs a line
//! in a notice, missing one breaks a promise. Wording (names, descriptions, statement text),
//! the version id and date, contacts, and anything that narrows collection, use or sharing are
//! listed but not material. Clause citations are traceability metadata, not policy, and are not
//! compared.

use std::fmt;

use crate::compile::parse_period;
use crate::ids::{CategorySet, MAX_ELEMENTS, PurposeSet};
use crate::model;
use crate::{
    AccessorInfo, Basis, CategoryInfo, CollectionInfo, PeriodKind, Policy, PurposeInfo,
    RecipientInfo, RoleInfo, ServiceInfo,
};

/// Every change from one policy version to the next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDiff {
    /// The version compared from.
    pub old_version: String,
    /// The version compared to.
    pub new_version: String,
    /// The changes, grouped by kind of element in the order of the policy language (header,
    /// contacts, categories, retention, purposes, accessors, recipients, services, record
    /// collections, cookies, regions, transfers, rights, statements).
    pub changes: Vec<Change>,
}

/// One change between two policy versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Whether the change must be announced in a change notice: it widens collection, use,
    /// sharing or retention, or narrows the person's protections.
    pub material: bool,
    /// What changed.
    pub kind: ChangeKind,
    /// The element changed, as `kind:id` (`purpose:marketing.partners`,
    /// `role:meeting-center/host`, `recipient-allow:ad-partner/marketing.partners`).
    pub element: String,
    /// One human sentence; ids in backticks.
    pub summary: String,
}

macro_rules! change_kinds {
    ($($(#[$doc:meta])* $name:ident => $code:literal,)*) => {
        /// What kind of change a [`Change`] is. Its [`code`](ChangeKind::code) is stable.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ChangeKind {
            $($(#[$doc])* $name,)*
        }

        impl ChangeKind {
            /// Every kind, in declaration order.
            pub const ALL: &'static [ChangeKind] = &[$(Self::$name,)*];

            /// Stable snake_case code.
            pub fn code(self) -> &'static str {
                match self {
                    $(Self::$name => $code,)*
                }
            }

            /// The kind with a code.
            pub fn from_code(code: &str) -> Option<Self> {
                match code {
                    $($code => Some(Self::$name),)*
                    _ => None,
                }
            }
        }
    };
}

change_kinds! {
    /// Names, descriptions, titles, statement text or other wording changed.
    Reworded => "reworded",
    /// The version id changed.
    VersionChanged => "version_changed",
    /// The effective date changed.
    EffectiveDateChanged => "effective_date_changed",
    /// The controller or its parent company changed (material).
    ControllerChanged => "controller_changed",
    /// The minimum age went down (material).
    MinimumAgeLowered => "minimum_age_lowered",
    /// The minimum age was removed (material).
    MinimumAgeRemoved => "minimum_age_removed",
    /// The minimum age went up.
    MinimumAgeRaised => "minimum_age_raised",
    /// A minimum age was set where there was none.
    MinimumAgeAdded => "minimum_age_added",
    /// A contact address changed.
    ContactChanged => "contact_changed",
    /// A category was declared; material when something collects it.
    CategoryAdded => "category_added",
    /// A category was removed.
    CategoryRemoved => "category_removed",
    /// A transient category may now be stored (material).
    CategoryNoLongerTransient => "category_no_longer_transient",
    /// A category became transient.
    CategoryMadeTransient => "category_made_transient",
    /// A category now identifies a person and may be used to find them (material).
    IdentifierAdded => "identifier_added",
    /// A category no longer identifies a person.
    IdentifierRemoved => "identifier_removed",
    /// A category's values, or what a service collects, may now cross the network without
    /// TLS: `transport = "tls"` dropped (material: a protection the person had).
    TransportRelaxed => "transport_relaxed",
    /// A category's values, or what a service collects, now cross the network only over TLS.
    TransportSecured => "transport_secured",
    /// A retention rule was declared.
    RetentionRuleAdded => "retention_rule_added",
    /// A retention rule was removed.
    RetentionRuleRemoved => "retention_rule_removed",
    /// Something is kept longer (material).
    RetentionLengthened => "retention_lengthened",
    /// Something is kept for less time.
    RetentionShortened => "retention_shortened",
    /// Something lost its retention period (material).
    RetentionUnbounded => "retention_unbounded",
    /// Something gained a retention period.
    RetentionBounded => "retention_bounded",
    /// Something follows another retention rule of the same length.
    RetentionRuleChanged => "retention_rule_changed",
    /// A purpose was declared (material).
    PurposeAdded => "purpose_added",
    /// A purpose was removed.
    PurposeRemoved => "purpose_removed",
    /// A purpose's basis protects the person less (material).
    BasisWeakened => "basis_weakened",
    /// A purpose's basis protects the person more.
    BasisStrengthened => "basis_strengthened",
    /// A purpose's basis changed to one that protects as much and permits no more.
    BasisChanged => "basis_changed",
    /// A purpose moved in the hierarchy; material when it gains ancestors, whose collected
    /// data it may then use.
    ParentChanged => "parent_changed",
    /// A purpose no longer needs a reference for each use (material).
    ReferenceDropped => "reference_dropped",
    /// A purpose now needs a reference for each use.
    ReferenceRequired => "reference_required",
    /// A purpose accepts legal instruments of more kinds as its reference (material).
    InstrumentsWidened => "instruments_widened",
    /// A purpose accepts legal instruments of fewer kinds as its reference.
    InstrumentsNarrowed => "instruments_narrowed",
    /// An accessor was declared (material).
    AccessorAdded => "accessor_added",
    /// An accessor was removed.
    AccessorRemoved => "accessor_removed",
    /// An accessor may pursue more purposes (material).
    AccessorPurposesAdded => "accessor_purposes_added",
    /// An accessor may pursue fewer purposes.
    AccessorPurposesRemoved => "accessor_purposes_removed",
    /// An accessor may read more categories for a purpose (material).
    AccessorLimitRaised => "accessor_limit_raised",
    /// An accessor may read fewer categories for a purpose.
    AccessorLimitLowered => "accessor_limit_lowered",
    /// An accessor acts for another recipient, or for none (material).
    AccessorRecipientChanged => "accessor_recipient_changed",
    /// A recipient was declared (material).
    RecipientAdded => "recipient_added",
    /// A recipient was removed.
    RecipientRemoved => "recipient_removed",
    /// A recipient's kind changed; material unless it became internal.
    RecipientKindChanged => "recipient_kind_changed",
    /// A recipient processes data in another region; material unless it no longer names one.
    RecipientRegionChanged => "recipient_region_changed",
    /// A recipient may receive data for a purpose it could not (material).
    RecipientPurposeAdded => "recipient_purpose_added",
    /// A recipient may no longer receive data for a purpose.
    RecipientPurposeRemoved => "recipient_purpose_removed",
    /// A recipient may receive more categories for a purpose (material).
    RecipientCategoriesAdded => "recipient_categories_added",
    /// A recipient may receive fewer categories for a purpose.
    RecipientCategoriesRemoved => "recipient_categories_removed",
    /// A service was declared; material when it collects anything.
    ServiceAdded => "service_added",
    /// A service was removed.
    ServiceRemoved => "service_removed",
    /// A role was added to a service; material when it collects anything.
    RoleAdded => "role_added",
    /// A role was removed from a service.
    RoleRemoved => "role_removed",
    /// A role collects a new category, or requires one that was optional (material).
    RoleCollectsMore => "role_collects_more",
    /// A role collects less, or makes a category optional.
    RoleCollectsLess => "role_collects_less",
    /// A role may state more purposes at collection (material).
    RolePurposesAdded => "role_purposes_added",
    /// A role may state fewer purposes.
    RolePurposesRemoved => "role_purposes_removed",
    /// A role keeps records in another collection (material).
    RoleRecordsAdded => "role_records_added",
    /// A role keeps records in fewer collections.
    RoleRecordsRemoved => "role_records_removed",
    /// A record collection was declared; material when a role keeps it.
    CollectionAdded => "collection_added",
    /// A record collection was removed.
    CollectionRemoved => "collection_removed",
    /// Records hold more categories (material).
    CollectionFieldsAdded => "collection_fields_added",
    /// Records hold fewer categories.
    CollectionFieldsRemoved => "collection_fields_removed",
    /// A cookie or web beacon was declared (material).
    CookieAdded => "cookie_added",
    /// A cookie or web beacon was removed.
    CookieRemoved => "cookie_removed",
    /// A cookie's kind, purpose, category or necessity changed; material unless it only
    /// became optional.
    CookieChanged => "cookie_changed",
    /// A region was declared.
    RegionAdded => "region_added",
    /// A region was removed.
    RegionRemoved => "region_removed",
    /// Data may move to a region it could not (material).
    TransferAdded => "transfer_added",
    /// Data no longer moves to a region.
    TransferRemoved => "transfer_removed",
    /// A transfer covers more purposes or recipients (material).
    TransferWidened => "transfer_widened",
    /// A transfer covers fewer purposes or recipients.
    TransferNarrowed => "transfer_narrowed",
    /// A right was declared.
    RightAdded => "right_added",
    /// A right was removed (material).
    RightRemoved => "right_removed",
    /// A right can be exercised another way.
    RightChannelAdded => "right_channel_added",
    /// A way to exercise a right was removed (material).
    RightChannelRemoved => "right_channel_removed",
    /// The controller takes longer to answer a right, or no longer promises a deadline
    /// (material).
    RightDeadlineExtended => "right_deadline_extended",
    /// The controller answers a right sooner, or newly promises a deadline.
    RightDeadlineShortened => "right_deadline_shortened",
    /// A statement was added.
    StatementAdded => "statement_added",
    /// A statement was removed.
    StatementRemoved => "statement_removed",
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Change {
    /// `material basis_weakened purpose:marketing.partners: Purpose … .`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.material { "material" } else { "minor" };
        write!(f, "{tag} {} {}: {}", self.kind, self.element, self.summary)
    }
}

impl PolicyDiff {
    /// Whether the versions differ at all.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Whether any change is material: the new version needs a change notice.
    pub fn is_material(&self) -> bool {
        self.changes.iter().any(|c| c.material)
    }

    /// The material changes.
    pub fn material(&self) -> impl Iterator<Item = &Change> + '_ {
        self.changes.iter().filter(|c| c.material)
    }

    /// The changes that are not material.
    pub fn minor(&self) -> impl Iterator<Item = &Change> + '_ {
        self.changes.iter().filter(|c| !c.material)
    }

    /// The changes of one kind.
    pub fn of_kind(&self, kind: ChangeKind) -> impl Iterator<Item = &Change> + '_ {
        self.changes.iter().filter(move |c| c.kind == kind)
    }

    /// The change notice, in Markdown: material changes first, then the others.
    pub fn to_markdown(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for PolicyDiff {
    /// The change notice in Markdown; see [`PolicyDiff::to_markdown`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (old, new) = (&self.old_version, &self.new_version);
        writeln!(f, "# Changes from version `{old}` to version `{new}`")?;
        writeln!(f)?;
        if self.changes.is_empty() {
            return writeln!(f, "Version `{new}` does not change version `{old}`.");
        }
        if self.is_material() {
            writeln!(
                f,
                "This version changes the privacy statement materially. Information collected \
                 before it is still used only for the purposes it was collected for, unless you \
                 consent to more."
            )?;
            writeln!(f)?;
            writeln!(f, "## Material changes")?;
            writeln!(f)?;
            for c in self.material() {
                writeln!(f, "- {}", c.summary)?;
            }
        } else {
            writeln!(
                f,
                "This version makes no material change: what is collected, what it is used for, \
                 whom it is shared with and how long it is kept stay as they were."
            )?;
        }
        if self.minor().next().is_some() {
            writeln!(f)?;
            writeln!(f, "## Other changes")?;
            writeln!(f)?;
            for c in self.minor() {
                writeln!(f, "- {}", c.summary)?;
            }
        }
        Ok(())
    }
}

/// Every change from `old` to `new`, each classified as material or not.
pub fn diff(old: &Policy, new: &Policy) -> PolicyDiff {
    let mut d = Differ {
        old,
        new,
        changes: Vec::new(),
    };
    d.header();
    d.contacts();
    d.categories();
    d.retention();
    d.purposes();
    d.accessors();
    d.recipients();
    d.services();
    d.collections();
    d.cookies();
    d.regions();
    d.transfers();
    d.rights();
    d.request_deadlines();
    d.statements();
    PolicyDiff {
        old_version: old.version().to_string(),
        new_version: new.version().to_string(),
        changes: d.changes,
    }
}

impl Policy {
    /// Every change from `previous` to this version; see [`diff`].
    pub fn diff_from(&self, previous: &Policy) -> PolicyDiff {
        diff(previous, self)
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Elements found by their declared id.
trait Keyed {
    fn key(&self) -> &str;
}

macro_rules! keyed_spanned {
    ($($t:ty),* $(,)?) => {$(
        impl Keyed for $t {
            fn key(&self) -> &str {
                self.id.get_ref()
            }
        }
    )*};
}
macro_rules! keyed_plain {
    ($($t:ty),* $(,)?) => {$(
        impl Keyed for $t {
            fn key(&self) -> &str {
                &self.id
            }
        }
    )*};
}
keyed_spanned!(
    model::Category,
    model::Purpose,
    model::Service,
    model::Collection,
    model::Recipient,
    model::Retention,
    model::Cookie,
    model::Region,
    model::Right,
    model::Statement,
);
keyed_plain!(
    CategoryInfo,
    PurposeInfo,
    AccessorInfo,
    RecipientInfo,
    ServiceInfo,
    RoleInfo,
    CollectionInfo
);

impl Keyed for Transfers<'_> {
    fn key(&self) -> &str {
        self.to
    }
}

fn find<'p, T: Keyed>(items: &'p [T], key: &str) -> Option<&'p T> {
    items.iter().find(|x| x.key() == key)
}

/// Elements of `a` not in `b`, in `a`'s order.
fn minus<'a>(a: &[&'a str], b: &[&str]) -> Vec<&'a str> {
    a.iter().copied().filter(|x| !b.contains(x)).collect()
}

/// Whether two lists hold the same names, in any order.
fn same(a: &[&str], b: &[&str]) -> bool {
    minus(a, b).is_empty() && minus(b, a).is_empty()
}

/// `` `a` ``, `` `a` and `b` ``, `` `a`, `b` and `c` ``.
fn list<S: AsRef<str>>(names: &[S]) -> String {
    let ticked: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    match ticked.split_last() {
        None => "nothing".to_string(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn strs(v: &[model::Str]) -> Vec<&str> {
    v.iter().map(|s| s.get_ref().as_str()).collect()
}

fn opt_str(s: Option<&model::Str>) -> Option<&str> {
    s.map(|s| s.get_ref().as_str())
}

fn cats(p: &Policy, set: CategorySet) -> Vec<&str> {
    p.category_names(set)
}

fn purps(p: &Policy, set: PurposeSet) -> Vec<&str> {
    p.purpose_names(set)
}

fn parent_name<'p>(p: &'p Policy, id: &str) -> Option<&'p str> {
    p.purpose_id(id)
        .ok()
        .and_then(|i| p.purpose(i))
        .and_then(|x| x.parent)
        .and_then(|q| p.purpose(q))
        .map(|q| q.id.as_str())
}

/// Whether `purpose`, new in `new`, sits under a purpose in `held_before`: its nearest
/// ancestor that `old` declares is one the holder already had, so gaining it is the
/// consequence of declaring it (reported as [`ChangeKind::PurposeAdded`]), not a widening of
/// the holder.
fn implied_by_new_purpose(old: &Policy, new: &Policy, purpose: &str, held_before: &[&str]) -> bool {
    if old.purpose_id(purpose).is_ok() {
        return false;
    }
    let mut cur = parent_name(new, purpose);
    for _ in 0..MAX_ELEMENTS {
        let Some(q) = cur else { return false };
        if old.purpose_id(q).is_ok() {
            return held_before.contains(&q);
        }
        cur = parent_name(new, q);
    }
    false
}

/// The purposes a holder (accessor, role) gained and lost from `old_held` to `new_held`. A
/// purpose gained only by being declared under one already held is not a gain (see
/// [`implied_by_new_purpose`]), and one `new` no longer declares is not a loss: both are
/// reported at the purpose.
fn purposes_changed<'p>(
    old: &Policy,
    new: &Policy,
    old_held: &[&'p str],
    new_held: &[&'p str],
) -> (Vec<&'p str>, Vec<&'p str>) {
    let gained = minus(new_held, old_held)
        .into_iter()
        .filter(|p| !implied_by_new_purpose(old, new, p, old_held))
        .collect();
    let lost = minus(old_held, new_held)
        .into_iter()
        .filter(|p| new.purpose_id(p).is_ok())
        .collect();
    (gained, lost)
}

/// The categories a limit table allows for a purpose, by name; `None` when it names none.
fn cap<'p>(p: &'p Policy, table: &[Option<CategorySet>], purpose: &str) -> Option<Vec<&'p str>> {
    let id = p.purpose_id(purpose).ok()?;
    table
        .get(id.index())
        .copied()
        .flatten()
        .map(|set| cats(p, set))
}

fn same_cap(a: &Option<Vec<&str>>, b: &Option<Vec<&str>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => same(a, b),
        _ => false,
    }
}

/// How the categories `who` may `verb` for purpose `p` changed from `a` to `b`, two lists
/// that differ: whether `who` may now `verb` more, and the summary.
fn cap_changed(who: &str, verb: &str, p: &str, a: &[&str], b: &[&str]) -> (bool, String) {
    let (more, less) = (minus(b, a), minus(a, b));
    if more.is_empty() {
        return (
            false,
            format!("{who} may no longer {verb} {} for `{p}`.", list(&less)),
        );
    }
    let also = if less.is_empty() {
        String::new()
    } else {
        format!(", and no longer {}", list(&less))
    };
    let summary = format!("{who} may now {verb} {} for `{p}`{also}.", list(&more));
    (true, summary)
}

/// Each phrase whose names are not empty, with its `{}` replaced by their [`list`].
fn phrases(pairs: &[(&[&str], &str)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(names, _)| !names.is_empty())
        .map(|(names, phrase)| phrase.replacen("{}", &list(names), 1))
        .collect()
}

fn basis_text(b: Basis) -> &'static str {
    match b {
        Basis::Service => "as needed for the service the person asked for",
        Basis::Consent => "only with the person's consent",
        Basis::OptOut => "until the person objects",
        Basis::Legal => "for legal process, fraud or safety, with a reference",
        Basis::Contract => "as needed to perform a contract, even after the account is deactivated",
    }
}

fn period_text(p: PeriodKind) -> String {
    match p {
        PeriodKind::Transient => "only while in use, never stored".to_string(),
        PeriodKind::Days(1) => "for 1 day".to_string(),
        PeriodKind::Days(n) => format!("for {n} days"),
        PeriodKind::Account => "until the account is closed".to_string(),
    }
}

/// Wording changes of one element, collected field by field.
#[derive(Debug, Default)]
struct Words(Vec<String>);

impl Words {
    fn name(&mut self, old: &str, new: &str) {
        if old != new {
            self.0.push(format!("name “{new}” (was “{old}”)"));
        }
    }

    fn field<T: PartialEq + ?Sized>(&mut self, label: &str, old: &T, new: &T) {
        if old != new {
            self.0.push(label.to_string());
        }
    }
}

#[derive(Debug)]
struct Differ<'a> {
    old: &'a Policy,
    new: &'a Policy,
    changes: Vec<Change>,
}

impl Differ<'_> {
    fn push(
        &mut self,
        material: bool,
        kind: ChangeKind,
        element: impl Into<String>,
        summary: impl Into<String>,
    ) {
        self.changes.push(Change {
            material,
            kind,
            element: element.into(),
            summary: summary.into(),
        });
    }

    /// A change naming `items`, listed by [`list`] into `summary`, unless there are none.
    fn push_list<S: AsRef<str>>(
        &mut self,
        material: bool,
        kind: ChangeKind,
        element: &str,
        items: &[S],
        summary: impl FnOnce(String) -> String,
    ) {
        if !items.is_empty() {
            self.push(material, kind, element, summary(list(items)));
        }
    }

    /// One non-material [`ChangeKind::Reworded`] change listing the reworded fields, if any.
    fn reworded(&mut self, element: String, what: String, words: Words) {
        if !words.0.is_empty() {
            let summary = format!("The wording of {what} changed: {}.", words.0.join(", "));
            self.push(false, ChangeKind::Reworded, element, summary);
        }
    }

    /// A change whose summary is `subject` then `parts`, unless there are none.
    fn push_parts(
        &mut self,
        material: bool,
        kind: ChangeKind,
        element: &str,
        subject: &str,
        parts: &[String],
    ) {
        if !parts.is_empty() {
            let summary = format!("{subject} {}.", parts.join("; "));
            self.push(material, kind, element, summary);
        }
    }

    /// Compares the elements of one kind by id, as every per-kind method does. Each element of
    /// `new`, in its order, goes to `added` if `old` lacks it and to `kept` otherwise; the
    /// wording changes `kept` collects are then reported as one [`ChangeKind::Reworded`] of
    /// “`what` `id`”. Last, each element of `old` that `new` lacks is reported with `material`,
    /// `kind` and the summary `removed` writes.
    ///
    /// Elements are named `{prefix}{id}`; what follows the `:` of `prefix` (`role:meetings/`)
    /// also comes before the id in the reworded summary.
    fn compare<'x, T: Keyed>(
        &mut self,
        (prefix, what): (&str, &str),
        (old, new): (&'x [T], &'x [T]),
        mut added: impl FnMut(&mut Self, String, &'x T),
        mut kept: impl FnMut(&mut Self, &str, &'x T, &'x T, &mut Words),
        (material, kind, removed): (bool, ChangeKind, impl Fn(&'x T) -> String),
    ) {
        let scope = prefix.split_once(':').map_or("", |(_, s)| s);
        for n in new {
            let element = format!("{prefix}{}", n.key());
            let Some(o) = find(old, n.key()) else {
                added(self, element, n);
                continue;
            };
            let mut words = Words::default();
            kept(self, &element, o, n, &mut words);
            self.reworded(element, format!("{what} `{scope}{}`", n.key()), words);
        }
        for o in old.iter().filter(|o| find(new, o.key()).is_none()) {
            self.push(material, kind, format!("{prefix}{}", o.key()), removed(o));
        }
    }

    /// A change of the retention rule an element follows; `None` periods mean no rule.
    fn retention_ref(
        &mut self,
        element: &str,
        what: &str,
        old: (Option<&str>, Option<PeriodKind>),
        new: (Option<&str>, Option<PeriodKind>),
    ) {
        if old.0 == new.0 {
            return; // Same rule: a change of the rule itself is reported at the rule.
        }
        let rule =
            |r: Option<&str>| r.map_or_else(|| "no rule".to_string(), |r| format!("rule `{r}`"));
        let (or, nr) = (rule(old.0), rule(new.0));
        let (kind, material, summary) = match (old.1, new.1) {
            (Some(a), Some(b)) if a != b => (
                if b > a {
                    ChangeKind::RetentionLengthened
                } else {
                    ChangeKind::RetentionShortened
                },
                b > a,
                format!(
                    "{what} is now kept {} under {nr} (was {} under {or}).",
                    period_text(b),
                    period_text(a)
                ),
            ),
            (Some(a), None) => (
                ChangeKind::RetentionUnbounded,
                true,
                format!(
                    "{what} no longer has a retention period (was kept {} under {or}).",
                    period_text(a)
                ),
            ),
            (None, Some(b)) => (
                ChangeKind::RetentionBounded,
                false,
                format!("{what} is now kept {} under {nr}.", period_text(b)),
            ),
            _ => (
                ChangeKind::RetentionRuleChanged,
                false,
                format!("{what} now follows {nr} (was {or}), which keeps it as long."),
            ),
        };
        self.push(material, kind, element, summary);
    }

    fn header(&mut self) {
        let (old, new) = (self.old, self.new);
        let (o, n) = (old.header(), new.header());
        let element = format!("policy:{}", new.id());
        let (ov, nv) = (o.version.get_ref(), n.version.get_ref());
        if ov != nv {
            let summary = format!("Version `{nv}` replaces version `{ov}`.");
            self.push(false, ChangeKind::VersionChanged, &element, summary);
        }
        let (oe, ne) = (o.effective.get_ref(), n.effective.get_ref());
        if oe != ne {
            let summary = format!("The statement takes effect on `{ne}` (was `{oe}`).");
            self.push(false, ChangeKind::EffectiveDateChanged, &element, summary);
        }
        if o.controller != n.controller {
            let summary = format!(
                "The controller, who decides what happens to the information, is now “{}” (was “{}”).",
                n.controller, o.controller
            );
            self.push(true, ChangeKind::ControllerChanged, &element, summary);
        }
        if o.parent_company != n.parent_company {
            let name = |p: &Option<String>| {
                p.as_ref()
                    .map_or_else(|| "none".to_string(), |p| format!("“{p}”"))
            };
            let summary = format!(
                "The controller's parent company is now {} (was {}).",
                name(&n.parent_company),
                name(&o.parent_company)
            );
            self.push(true, ChangeKind::ControllerChanged, &element, summary);
        }
        let age = match (old.minimum_age(), new.minimum_age()) {
            (Some(a), Some(b)) if b < a => Some((
                true,
                ChangeKind::MinimumAgeLowered,
                format!("People from age {b} may now use the services (was {a})."),
            )),
            (Some(a), Some(b)) if b > a => Some((
                false,
                ChangeKind::MinimumAgeRaised,
                format!("People under {b} may no longer use the services (was {a})."),
            )),
            (Some(a), None) => Some((
                true,
                ChangeKind::MinimumAgeRemoved,
                format!("The statement no longer sets a minimum age (was {a})."),
            )),
            (None, Some(b)) => Some((
                false,
                ChangeKind::MinimumAgeAdded,
                format!("People under {b} may no longer use the services."),
            )),
            _ => None,
        };
        if let Some((material, kind, summary)) = age {
            self.push(material, kind, &element, summary);
        }
        let mut w = Words::default();
        w.field("policy id", o.id.get_ref(), n.id.get_ref());
        w.field("title", &o.title, &n.title);
        w.field("scope", &o.scope, &n.scope);
        self.reworded(element, "the statement's header".to_string(), w);
    }

    fn contacts(&mut self) {
        let (oc, nc) = (
            self.old.file().contacts.as_ref(),
            self.new.file().contacts.as_ref(),
        );
        type Get = fn(&model::Contacts) -> Option<String>;
        let fields: [(&str, &str, Get); 4] = [
            ("privacy_email", "privacy address", |c| {
                c.privacy_email.as_ref().map(|s| s.get_ref().clone())
            }),
            ("unsubscribe_email", "unsubscribe address", |c| {
                c.unsubscribe_email.as_ref().map(|s| s.get_ref().clone())
            }),
            ("postal_address", "postal address", |c| {
                (!c.postal_address.is_empty()).then(|| c.postal_address.join(", "))
            }),
            ("account_url", "account page", |c| c.account_url.clone()),
        ];
        for (key, label, get) in fields {
            let (o, n) = (oc.and_then(get), nc.and_then(get));
            let summary = match (&o, &n) {
                (Some(o), Some(n)) if o != n => format!("The {label} is now `{n}` (was `{o}`)."),
                (Some(o), None) => format!("The {label} `{o}` is no longer given."),
                (None, Some(n)) => format!("The {label} is now `{n}`."),
                _ => continue,
            };
            let element = format!("contacts:{key}");
            self.push(false, ChangeKind::ContactChanged, element, summary);
        }
    }

    fn categories(&mut self) {
        let (old, new) = (self.old, self.new);
        let collected = collected(new);
        self.compare(
            ("category:", "category"),
            (old.categories(), new.categories()),
            |d, element, n| {
                let material = collected.contains(&n.id.as_str());
                let summary = if material {
                    format!("New category `{}` (“{}”) is collected.", n.id, n.name)
                } else {
                    format!(
                        "New category `{}` (“{}”) is declared; nothing collects it.",
                        n.id, n.name
                    )
                };
                d.push(material, ChangeKind::CategoryAdded, element, summary);
            },
            |d, element, o, n, w| {
                let id = &n.id;
                if o.transient && !n.transient {
                    let summary = format!(
                        "Category `{id}` is no longer transient: its values may now be stored."
                    );
                    d.push(true, ChangeKind::CategoryNoLongerTransient, element, summary);
                } else if !o.transient && n.transient {
                    let summary = format!(
                        "Category `{id}` is now transient: its values are used once and never stored."
                    );
                    d.push(false, ChangeKind::CategoryMadeTransient, element, summary);
                }
                if !o.identifier && n.identifier {
                    let summary = format!(
                        "Category `{id}` now identifies a person: it may be used to find their information."
                    );
                    d.push(true, ChangeKind::IdentifierAdded, element, summary);
                } else if o.identifier && !n.identifier {
                    let summary = format!("Category `{id}` is no longer used to find a person.");
                    d.push(false, ChangeKind::IdentifierRemoved, element, summary);
                }
                d.transport(element, &format!("Category `{id}`: its values"), o.requires_tls, n.requires_tls);
                let (of, nf) = (
                    find(&old.file().category, id),
                    find(&new.file().category, id),
                );
                d.retention_ref(
                    element,
                    &format!("Category `{id}`"),
                    (of.and_then(|f| opt_str(f.retention.as_ref())), o.retention),
                    (nf.and_then(|f| opt_str(f.retention.as_ref())), n.retention),
                );
                w.name(&o.name, &n.name);
                if let (Some(of), Some(nf)) = (of, nf) {
                    let (ok, nk) = (opt_str(of.kind.as_ref()), opt_str(nf.kind.as_ref()));
                    w.field("kind", &ok, &nk);
                    w.field("description", &of.description, &nf.description);
                }
            },
            (false, ChangeKind::CategoryRemoved, |o| {
                format!(
                    "Category `{}` (“{}”) is no longer collected or kept.",
                    o.id, o.name
                )
            }),
        );
    }

    fn retention(&mut self) {
        let (old, new) = (self.old.file(), self.new.file());
        self.compare(
            ("retention:", "retention rule"),
            (&old.retention, &new.retention),
            |d, element, n| {
                let summary = format!(
                    "New retention rule `{}` (“{}”) keeps information for `{}`.",
                    n.key(),
                    n.name,
                    n.period.get_ref()
                );
                d.push(false, ChangeKind::RetentionRuleAdded, element, summary);
            },
            |d, element, o, n, w| {
                let (id, op, np) = (n.key(), o.period.get_ref(), n.period.get_ref());
                if op != np {
                    match (parse_period(op), parse_period(np)) {
                        (Some(a), Some(b)) if a == b => {
                            w.0.push(format!("period `{np}` (was `{op}`, as long)"))
                        }
                        (Some(a), Some(b)) => {
                            let kind = if b > a {
                                ChangeKind::RetentionLengthened
                            } else {
                                ChangeKind::RetentionShortened
                            };
                            let summary = format!(
                                "Information under retention rule `{id}` is now kept {} (`{np}`; was {}, `{op}`).",
                                period_text(b),
                                period_text(a)
                            );
                            d.push(b > a, kind, element, summary);
                        }
                        _ => {
                            let summary = format!(
                                "Retention rule `{id}` now keeps information for `{np}` (was `{op}`)."
                            );
                            d.push(true, ChangeKind::RetentionLengthened, element, summary);
                        }
                    }
                }
                w.name(&o.name, &n.name);
                w.field("description", &o.description, &n.description);
            },
            (false, ChangeKind::RetentionRuleRemoved, |o| {
                format!("Retention rule `{}` (“{}”) was removed.", o.key(), o.name)
            }),
        );
    }

    fn purposes(&mut self) {
        let (old, new) = (self.old, self.new);
        let parent = |p: &Policy, info: &PurposeInfo| -> Option<String> {
            info.parent.and_then(|q| p.purpose(q)).map(|q| q.id.clone())
        };
        self.compare(
            ("purpose:", "purpose"),
            (old.purposes(), new.purposes()),
            |d, element, n| {
                let under = parent(new, n)
                    .map(|p| format!(", under `{p}`"))
                    .unwrap_or_default();
                let summary = format!(
                    "New purpose `{}` (“{}”){under}: information may be used for it {} (basis `{}`).",
                    n.id,
                    n.name,
                    basis_text(n.basis),
                    n.basis.as_str()
                );
                d.push(true, ChangeKind::PurposeAdded, element, summary);
            },
            |d, element, o, n, w| {
                let id = &n.id;
                let (ob, nb) = (o.basis, n.basis);
                if ob != nb {
                    let usable_deactivated = |b: Basis| matches!(b, Basis::Legal | Basis::Contract);
                    let (kind, material) = if nb.protection() < ob.protection() {
                        (ChangeKind::BasisWeakened, true)
                    } else if nb.protection() > ob.protection() {
                        (ChangeKind::BasisStrengthened, false)
                    } else if usable_deactivated(nb) && !usable_deactivated(ob) {
                        (ChangeKind::BasisWeakened, true)
                    } else {
                        (ChangeKind::BasisChanged, false)
                    };
                    let summary = format!(
                        "Purpose `{id}` now has basis `{}`: information is used for it {} (was `{}`: {}).",
                        nb.as_str(),
                        basis_text(nb),
                        ob.as_str(),
                        basis_text(ob)
                    );
                    d.push(material, kind, element, summary);
                }
                let (op, np) = (parent(old, o), parent(new, n));
                if op != np {
                    let ancestors = |p: &Policy, info: &PurposeInfo| -> Vec<String> {
                        purps(p, info.ancestors)
                            .into_iter()
                            .filter(|a| *a != info.id)
                            .map(str::to_string)
                            .collect()
                    };
                    let (oa, na) = (ancestors(old, o), ancestors(new, n));
                    let gained: Vec<&String> = na.iter().filter(|a| !oa.contains(a)).collect();
                    let place = |p: Option<String>| {
                        p.map_or_else(|| "top-level".to_string(), |p| format!("under `{p}`"))
                    };
                    let mut summary =
                        format!("Purpose `{id}` is now {} (was {})", place(np), place(op));
                    if gained.is_empty() {
                        summary.push('.');
                    } else {
                        summary.push_str(&format!(
                            ": information collected for {} may now be used for it.",
                            list(&gained)
                        ));
                    }
                    d.push(!gained.is_empty(), ChangeKind::ParentChanged, element, summary);
                }
                if o.requires_reference && !n.requires_reference {
                    let summary = format!(
                        "Purpose `{id}` no longer needs a reference (legal process, verified authority) for each use."
                    );
                    d.push(true, ChangeKind::ReferenceDropped, element, summary);
                } else if !o.requires_reference && n.requires_reference {
                    let summary = format!(
                        "Purpose `{id}` now needs a reference (legal process, verified authority) for each use."
                    );
                    d.push(false, ChangeKind::ReferenceRequired, element, summary);
                } else if o.instruments != n.instruments && n.requires_reference {
                    let names = |k: crate::InstrumentKinds| -> Vec<String> {
                        k.iter().map(|k| k.as_str().to_string()).collect()
                    };
                    let gained: Vec<String> = n
                        .instruments
                        .iter()
                        .filter(|k| !o.instruments.contains(*k))
                        .map(|k| k.as_str().to_string())
                        .collect();
                    let summary = format!(
                        "Purpose `{id}` now accepts as its reference a legal instrument of kind {} (was {}).",
                        list(&names(n.instruments)),
                        list(&names(o.instruments))
                    );
                    let kind = if gained.is_empty() {
                        ChangeKind::InstrumentsNarrowed
                    } else {
                        ChangeKind::InstrumentsWidened
                    };
                    d.push(!gained.is_empty(), kind, element, summary);
                }
                w.name(&o.name, &n.name);
                if let (Some(of), Some(nf)) =
                    (find(&old.file().purpose, id), find(&new.file().purpose, id))
                {
                    w.field("description", &of.description, &nf.description);
                }
            },
            (false, ChangeKind::PurposeRemoved, |o| {
                format!("Purpose `{}` (“{}”) is no longer pursued.", o.id, o.name)
            }),
        );
    }

    fn accessors(&mut self) {
        let (old, new) = (self.old, self.new);
        let recipient_name = |p: &Policy, a: &AccessorInfo| -> Option<String> {
            a.recipient
                .and_then(|r| p.recipient(r))
                .map(|r| r.id.clone())
        };
        self.compare(
            ("accessor:", "accessor"),
            (old.accessors(), new.accessors()),
            |d, element, n| {
                let acting = recipient_name(new, n)
                    .map(|r| format!(", on behalf of recipient `{r}`,"))
                    .unwrap_or_default();
                let summary = format!(
                    "New accessor `{}` (“{}”){acting} may use information for {}.",
                    n.id,
                    n.name,
                    list(&purps(new, n.declared))
                );
                d.push(true, ChangeKind::AccessorAdded, element, summary);
            },
            |d, element, o, n, w| {
                let who = format!("Accessor `{}`", n.id);
                let (oa, na) = (purps(old, o.allowed), purps(new, n.allowed));
                let (gained, lost) = purposes_changed(old, new, &oa, &na);
                d.push_list(true, ChangeKind::AccessorPurposesAdded, element, &gained, |l| {
                    format!("{who} may now use information for {l}.")
                });
                d.push_list(false, ChangeKind::AccessorPurposesRemoved, element, &lost, |l| {
                    format!("{who} may no longer use information for {l}.")
                });
                let (or, nr) = (recipient_name(old, o), recipient_name(new, n));
                let acting = match (&or, &nr) {
                    (_, Some(r)) if or != nr => Some(format!(
                        "{who} now acts for recipient `{r}` (was {}): what it reads is disclosed to `{r}`.",
                        or.as_ref()
                            .map_or_else(|| "for none".to_string(), |o| format!("`{o}`"))
                    )),
                    (Some(r), None) => Some(format!(
                        "{who} no longer acts for recipient `{r}`: what it reads is no longer limited to what `{r}` may receive."
                    )),
                    _ => None,
                };
                if let Some(summary) = acting {
                    d.push(true, ChangeKind::AccessorRecipientChanged, element, summary);
                }
                for p in na.iter().copied().filter(|p| oa.contains(p)) {
                    let (oc, nc) = (cap(old, &o.limits, p), cap(new, &n.limits, p));
                    if same_cap(&oc, &nc) {
                        continue;
                    }
                    let parent = parent_name(new, p).filter(|q| parent_name(old, p) == Some(q));
                    if let Some(q) = parent {
                        let inherited = oa.contains(&q)
                            && na.contains(&q)
                            && same_cap(&cap(old, &o.limits, q), &oc)
                            && same_cap(&cap(new, &n.limits, q), &nc);
                        if inherited {
                            continue;
                        }
                    }
                    let (raised, summary) = match (&oc, &nc) {
                        (Some(a), None) => (
                            true,
                            format!(
                                "{who} may now read every category for `{p}` (was limited to {}).",
                                list(a)
                            ),
                        ),
                        (None, Some(b)) => (
                            false,
                            format!("{who} may now read only {} for `{p}`.", list(b)),
                        ),
                        (Some(a), Some(b)) => cap_changed(&who, "read", p, a, b),
                        (None, None) => continue,
                    };
                    let kind = if raised {
                        ChangeKind::AccessorLimitRaised
                    } else {
                        ChangeKind::AccessorLimitLowered
                    };
                    let element = format!("accessor-limit:{}/{p}", n.id);
                    d.push(raised, kind, element, summary);
                }
                w.name(&o.name, &n.name);
            },
            (false, ChangeKind::AccessorRemoved, |o| {
                format!("Accessor `{}` (“{}”) was removed.", o.id, o.name)
            }),
        );
    }

    fn recipients(&mut self) {
        let (old, new) = (self.old, self.new);
        let kind_words = |f: Option<&model::Recipient>| -> String {
            f.and_then(|f| opt_str(f.kind.as_ref()))
                .unwrap_or("recipient")
                .replace('_', " ")
        };
        self.compare(
            ("recipient:", "recipient"),
            (old.recipients(), new.recipients()),
            |d, element, n| {
                let nf = find(&new.file().recipient, &n.id);
                let allows: Vec<String> = nf
                    .map(|f| {
                        f.allow
                            .iter()
                            .map(|l| {
                                let (c, p) = (list(&strs(&l.categories)), l.purpose.get_ref());
                                format!("{c} for `{p}`")
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let summary = format!(
                    "New recipient `{}` (“{}”, {}) may receive {}.",
                    n.id,
                    n.name,
                    kind_words(nf),
                    if allows.is_empty() {
                        "nothing".to_string()
                    } else {
                        allows.join("; ")
                    }
                );
                d.push(true, ChangeKind::RecipientAdded, element, summary);
            },
            |d, element, o, n, w| {
                let who = format!("Recipient `{}`", n.id);
                let (of, nf) = (
                    find(&old.file().recipient, &n.id),
                    find(&new.file().recipient, &n.id),
                );
                if o.kind != n.kind {
                    let summary = format!(
                        "{who} is now a {} (was a {}).",
                        kind_words(nf),
                        kind_words(of)
                    );
                    let material = n.kind.is_external();
                    d.push(material, ChangeKind::RecipientKindChanged, element, summary);
                }
                let (oreg, nreg) = (
                    of.and_then(|f| opt_str(f.region.as_ref())),
                    nf.and_then(|f| opt_str(f.region.as_ref())),
                );
                let region = match (oreg, nreg) {
                    (Some(a), Some(b)) if a != b => Some(format!(
                        "{who} now processes information in `{b}` (was `{a}`)."
                    )),
                    (None, Some(b)) => Some(format!("{who} now processes information in `{b}`.")),
                    (Some(a), None) => Some(format!(
                        "{who} no longer names where it processes information (was `{a}`)."
                    )),
                    _ => None,
                };
                if let Some(summary) = region {
                    let material = nreg.is_some();
                    d.push(
                        material,
                        ChangeKind::RecipientRegionChanged,
                        element,
                        summary,
                    );
                }
                let mut purposes: Vec<&str> =
                    new.purposes().iter().map(|p| p.id.as_str()).collect();
                purposes.extend(
                    old.purposes()
                        .iter()
                        .map(|p| p.id.as_str())
                        .filter(|p| new.purpose_id(p).is_err()),
                );
                for p in purposes {
                    let (oc, nc) = (cap(old, &o.allows, p), cap(new, &n.allows, p));
                    if same_cap(&oc, &nc) {
                        continue;
                    }
                    if let Some(q) = parent_name(new, p) {
                        let same_parent =
                            old.purpose_id(p).is_err() || parent_name(old, p) == Some(q);
                        if same_parent
                            && same_cap(&cap(old, &o.allows, q), &oc)
                            && same_cap(&cap(new, &n.allows, q), &nc)
                        {
                            continue;
                        }
                    }
                    let (material, kind, summary) = match (&oc, &nc) {
                        (None, Some(b)) => (
                            true,
                            ChangeKind::RecipientPurposeAdded,
                            format!("{who} may now receive {} for `{p}`.", list(b)),
                        ),
                        (Some(_), None) if new.purpose_id(p).is_ok() => (
                            false,
                            ChangeKind::RecipientPurposeRemoved,
                            format!("{who} may no longer receive anything for `{p}`."),
                        ),
                        (Some(a), Some(b)) => {
                            let (more, summary) = cap_changed(&who, "receive", p, a, b);
                            let kind = if more {
                                ChangeKind::RecipientCategoriesAdded
                            } else {
                                ChangeKind::RecipientCategoriesRemoved
                            };
                            (more, kind, summary)
                        }
                        _ => continue,
                    };
                    let element = format!("recipient-allow:{}/{p}", n.id);
                    d.push(material, kind, element, summary);
                }
                w.name(&o.name, &n.name);
                if let (Some(of), Some(nf)) = (of, nf) {
                    w.field("description", &of.description, &nf.description);
                }
            },
            (false, ChangeKind::RecipientRemoved, |o| {
                format!(
                    "Recipient `{}` (“{}”) no longer receives anything.",
                    o.id, o.name
                )
            }),
        );
    }

    fn services(&mut self) {
        let (old, new) = (self.old, self.new);
        self.compare(
            ("service:", "service"),
            (old.services(), new.services()),
            |d, element, n| {
                let material = n.roles.iter().any(collects_anything);
                let roles: Vec<String> = n.roles.iter().map(|r| role_text(new, r)).collect();
                let summary = if roles.is_empty() {
                    format!("New service `{}` (“{}”).", n.id, n.name)
                } else {
                    let roles = roles.join("; ");
                    format!("New service `{}` (“{}”): {roles}.", n.id, n.name)
                };
                d.push(material, ChangeKind::ServiceAdded, element, summary);
            },
            |d, element, o, n, w| {
                let service = n.id.as_str();
                d.transport(
                    element,
                    &format!("Service `{service}`: what it collects"),
                    o.requires_tls,
                    n.requires_tls,
                );
                d.compare(
                    (&format!("role:{service}/"), "role"),
                    (&o.roles, &n.roles),
                    |d, element, r| {
                        let summary =
                            format!("Service `{service}` has a new role: {}.", role_text(new, r));
                        d.push(
                            collects_anything(r),
                            ChangeKind::RoleAdded,
                            element,
                            summary,
                        );
                    },
                    |d, element, o, n, w| {
                        d.role(element, &format!("Role `{service}/{}`", n.id), o, n, w)
                    },
                    (false, ChangeKind::RoleRemoved, |r| {
                        format!(
                            "Role `{service}/{}` (“{}”) was removed; nothing is collected in it.",
                            r.id, r.name
                        )
                    }),
                );
                w.name(&o.name, &n.name);
                if let (Some(of), Some(nf)) = (
                    find(&old.file().service, service),
                    find(&new.file().service, service),
                ) {
                    w.field("family", &of.family, &nf.family);
                    w.field("description", &of.description, &nf.description);
                }
            },
            (false, ChangeKind::ServiceRemoved, |o| {
                format!("Service `{}` (“{}”) was removed.", o.id, o.name)
            }),
        );
    }

    /// A change of `transport` of an element (`who`: “Category `x`: its values”).
    fn transport(&mut self, element: &str, who: &str, old_tls: bool, new_tls: bool) {
        match (old_tls, new_tls) {
            (true, false) => {
                let summary =
                    format!("{who} may now cross the network without TLS (was only over TLS).");
                self.push(true, ChangeKind::TransportRelaxed, element, summary);
            }
            (false, true) => {
                let summary = format!("{who} now cross the network only over TLS.");
                self.push(false, ChangeKind::TransportSecured, element, summary);
            }
            _ => {}
        }
    }

    /// The changes of a role `who` (“Role `service/id`”) both versions declare.
    fn role(&mut self, element: &str, who: &str, o: &RoleInfo, n: &RoleInfo, w: &mut Words) {
        let (old, new) = (self.old, self.new);
        let (oreq, oopt) = (cats(old, o.collects), cats(old, o.optional));
        let (nreq, nopt) = (cats(new, n.collects), cats(new, n.optional));
        let oall: Vec<&str> = oreq.iter().chain(&oopt).copied().collect();
        let nall: Vec<&str> = nreq.iter().chain(&nopt).copied().collect();
        let now_required: Vec<&str> = nreq
            .iter()
            .copied()
            .filter(|c| oopt.contains(c) && !oreq.contains(c))
            .collect();
        let more = phrases(&[
            (&minus(&nreq, &oall), "now collects {}"),
            (
                &minus(&minus(&nopt, &oall), &nreq),
                "now asks for {} (optional)",
            ),
            (&now_required, "now requires {} (was optional)"),
        ]);
        self.push_parts(true, ChangeKind::RoleCollectsMore, element, who, &more);
        let now_optional: Vec<&str> = nopt
            .iter()
            .copied()
            .filter(|c| oreq.contains(c) && !nreq.contains(c))
            .collect();
        let less = phrases(&[
            (&minus(&oall, &nall), "no longer collects {}"),
            (&now_optional, "makes {} optional"),
        ]);
        self.push_parts(false, ChangeKind::RoleCollectsLess, element, who, &less);
        let (op, np) = (
            purps(old, o.allowed_purposes),
            purps(new, n.allowed_purposes),
        );
        let (gained, lost) = purposes_changed(old, new, &op, &np);
        self.push_list(true, ChangeKind::RolePurposesAdded, element, &gained, |l| {
            format!("{who} may now collect information for {l}.")
        });
        self.push_list(
            false,
            ChangeKind::RolePurposesRemoved,
            element,
            &lost,
            |l| format!("{who} no longer collects information for {l}."),
        );
        let records = |p: &'_ Policy, r: &RoleInfo| -> Vec<String> {
            r.records
                .iter()
                .filter_map(|c| p.collection(*c))
                .map(|c| c.id.clone())
                .collect()
        };
        let (orec, nrec) = (records(old, o), records(new, n));
        let (orec, nrec): (Vec<&str>, Vec<&str>) = (
            orec.iter().map(String::as_str).collect(),
            nrec.iter().map(String::as_str).collect(),
        );
        let added = minus(&nrec, &orec);
        self.push_list(true, ChangeKind::RoleRecordsAdded, element, &added, |l| {
            format!("{who} now keeps records in {l}.")
        });
        let removed = minus(&orec, &nrec);
        self.push_list(
            false,
            ChangeKind::RoleRecordsRemoved,
            element,
            &removed,
            |l| format!("{who} no longer keeps records in {l}."),
        );
        w.name(&o.name, &n.name);
    }

    fn collections(&mut self) {
        let (old, new) = (self.old, self.new);
        self.compare(
            ("collection:", "record collection"),
            (old.collections(), new.collections()),
            |d, element, n| {
                let kept = new.services().iter().flat_map(|s| &s.roles).any(|r| {
                    r.records
                        .iter()
                        .any(|c| new.collection(*c).is_some_and(|c| c.id == n.id))
                });
                let summary = format!(
                    "New record collection `{}` (“{}”) holds {}.",
                    n.id,
                    n.name,
                    list(&cats(new, n.categories))
                );
                d.push(kept, ChangeKind::CollectionAdded, element, summary);
            },
            |d, element, o, n, w| {
                let id = &n.id;
                let (oc, nc) = (cats(old, o.categories), cats(new, n.categories));
                d.push_list(
                    true,
                    ChangeKind::CollectionFieldsAdded,
                    element,
                    &minus(&nc, &oc),
                    |l| format!("Records in `{id}` now also hold {l}."),
                );
                d.push_list(
                    false,
                    ChangeKind::CollectionFieldsRemoved,
                    element,
                    &minus(&oc, &nc),
                    |l| format!("Records in `{id}` no longer hold {l}."),
                );
                let (of, nf) = (
                    find(&old.file().collection, id),
                    find(&new.file().collection, id),
                );
                d.retention_ref(
                    element,
                    &format!("Record collection `{id}`"),
                    (of.and_then(|f| opt_str(f.retention.as_ref())), o.retention),
                    (nf.and_then(|f| opt_str(f.retention.as_ref())), n.retention),
                );
                w.name(&o.name, &n.name);
                let fields = |p: &Policy, c: &CollectionInfo| -> Vec<(String, String, bool)> {
                    c.fields
                        .iter()
                        .map(|f| {
                            let cat = p
                                .category(f.category)
                                .map(|c| c.id.clone())
                                .unwrap_or_default();
                            (f.name.clone(), cat, f.optional)
                        })
                        .collect()
                };
                let (ofields, nfields) = (fields(old, o), fields(new, n));
                if ofields.len() != nfields.len() || ofields.iter().any(|f| !nfields.contains(f)) {
                    w.0.push("fields".to_string());
                }
            },
            (false, ChangeKind::CollectionRemoved, |o| {
                format!(
                    "Record collection `{}` (“{}”) is no longer kept.",
                    o.id, o.name
                )
            }),
        );
    }

    fn cookies(&mut self) {
        let (old, new) = (self.old.file(), self.new.file());
        let kind = |c: &model::Cookie| c.kind.get_ref().replace('_', " ");
        self.compare(
            ("cookie:", "cookie"),
            (&old.cookie, &new.cookie),
            |d, element, n| {
                let summary = format!(
                    "New {} `{}` (“{}”) gathers `{}` for `{}`{}.",
                    kind(n),
                    n.key(),
                    n.name,
                    n.category.get_ref(),
                    n.purpose.get_ref(),
                    if n.required {
                        "; the site does not work without it"
                    } else {
                        ""
                    }
                );
                d.push(true, ChangeKind::CookieAdded, element, summary);
            },
            |d, element, o, n, w| {
                let mut parts = Vec::new();
                let mut material = false;
                if o.kind.get_ref() != n.kind.get_ref() {
                    parts.push(format!("is now a {} (was a {})", kind(n), kind(o)));
                    material = true;
                }
                let (op, np) = (o.purpose.get_ref(), n.purpose.get_ref());
                if op != np {
                    parts.push(format!("now serves `{np}` (was `{op}`)"));
                    material = true;
                }
                let (oc, nc) = (o.category.get_ref(), n.category.get_ref());
                if oc != nc {
                    parts.push(format!("now gathers `{nc}` (was `{oc}`)"));
                    material = true;
                }
                if !o.required && n.required {
                    parts.push("is now required: the site no longer works without it".to_string());
                    material = true;
                } else if o.required && !n.required {
                    parts.push("is now optional: the site works without it".to_string());
                }
                let cookie = format!("Cookie `{}`", n.key());
                d.push_parts(
                    material,
                    ChangeKind::CookieChanged,
                    element,
                    &cookie,
                    &parts,
                );
                w.name(&o.name, &n.name);
                w.field("description", &o.description, &n.description);
            },
            (false, ChangeKind::CookieRemoved, |o| {
                let (kind, id) = (kind(o), o.key());
                format!("The {kind} `{id}` (“{}”) is no longer used.", o.name)
            }),
        );
    }

    fn regions(&mut self) {
        let (old, new) = (self.old.file(), self.new.file());
        self.compare(
            ("region:", "region"),
            (&old.region, &new.region),
            |d, element, n| {
                let summary = format!("New region `{}` (“{}”) is declared.", n.key(), n.name);
                d.push(false, ChangeKind::RegionAdded, element, summary);
            },
            |_, _, o, n, w| w.name(&o.name, &n.name),
            (false, ChangeKind::RegionRemoved, |o| {
                format!("Region `{}` (“{}”) was removed.", o.key(), o.name)
            }),
        );
    }

    fn transfers(&mut self) {
        let (old, new) = (transfers(self.old.file()), transfers(self.new.file()));
        self.compare(
            ("transfer:", "the transfer to"),
            (&old, &new),
            |d, element, n| {
                let to = match &n.recipients {
                    None => "any recipient there".to_string(),
                    Some(r) => list(r),
                };
                let summary = format!(
                    "Information may now be transferred to `{}` for {}, to {to}.",
                    n.to,
                    list(&n.purposes)
                );
                d.push(true, ChangeKind::TransferAdded, element, summary);
            },
            |d, element, o, n, w| {
                let (op, np) = (&o.purposes, &n.purposes);
                let mut wider = phrases(&[(&minus(np, op), "now also for {}")]);
                let mut narrower = phrases(&[(&minus(op, np), "no longer for {}")]);
                match (&o.recipients, &n.recipients) {
                    (Some(_), None) => wider.push("now to any recipient there".to_string()),
                    (None, Some(b)) => narrower.push(format!("now only to {}", list(b))),
                    (Some(a), Some(b)) => {
                        wider.extend(phrases(&[(&minus(b, a), "now also to {}")]));
                        narrower.extend(phrases(&[(&minus(a, b), "no longer to {}")]));
                    }
                    (None, None) => {}
                }
                let subject = format!("Transfers to `{}` happen", n.to);
                d.push_parts(true, ChangeKind::TransferWidened, element, &subject, &wider);
                d.push_parts(
                    false,
                    ChangeKind::TransferNarrowed,
                    element,
                    &subject,
                    &narrower,
                );
                w.field("description", &o.descriptions, &n.descriptions);
            },
            (false, ChangeKind::TransferRemoved, |o| {
                format!("Information is no longer transferred to `{}`.", o.to)
            }),
        );
    }

    fn rights(&mut self) {
        let (old, new) = (self.old.file(), self.new.file());
        self.compare(
            ("right:", "right"),
            (&old.right, &new.right),
            |d, element, n| {
                let (id, name) = (n.key(), &n.name);
                let summary = format!(
                    "New right `{id}` (“{name}”), exercised by {}.",
                    list(&strs(&n.channels))
                );
                d.push(false, ChangeKind::RightAdded, element, summary);
            },
            |d, element, o, n, w| {
                let (id, name) = (n.key(), &n.name);
                let (oc, nc) = (strs(&o.channels), strs(&n.channels));
                d.push_list(
                    true,
                    ChangeKind::RightChannelRemoved,
                    element,
                    &minus(&oc, &nc),
                    |l| format!("Right `{id}` (“{name}”) can no longer be exercised by {l}."),
                );
                d.push_list(
                    false,
                    ChangeKind::RightChannelAdded,
                    element,
                    &minus(&nc, &oc),
                    |l| format!("Right `{id}` (“{name}”) can now also be exercised by {l}."),
                );
                let requests = format!("Requests under right `{id}`");
                let deadline = match (o.due_days, n.due_days) {
                    (Some(a), Some(b)) if a != b => Some((
                        b > a,
                        format!("{requests} are now answered within {b} days (was {a})."),
                    )),
                    (Some(a), None) => Some((
                        true,
                        format!("{requests} no longer have a deadline (was {a} days)."),
                    )),
                    (None, Some(b)) => Some((
                        false,
                        format!("{requests} are now answered within {b} days."),
                    )),
                    _ => None,
                };
                if let Some((longer, summary)) = deadline {
                    let kind = if longer {
                        ChangeKind::RightDeadlineExtended
                    } else {
                        ChangeKind::RightDeadlineShortened
                    };
                    d.push(longer, kind, element, summary);
                }
                w.name(&o.name, &n.name);
                w.field("description", &o.description, &n.description);
            },
            (true, ChangeKind::RightRemoved, |o| {
                format!(
                    "The right `{}` (“{}”) is no longer offered.",
                    o.key(),
                    o.name
                )
            }),
        );
    }

    /// `[rights] respond_days`: a kind of request answered later, or no longer taken, is
    /// material; sooner, or newly taken, is not. (Who is staff is not in the notice.)
    fn request_deadlines(&mut self) {
        for k in crate::RequestKind::ALL {
            let (o, n) = (self.old.respond_days(k), self.new.respond_days(k));
            let requests = format!("`{}` requests", k.as_str());
            let change = match (o, n) {
                (Some(a), Some(b)) if a != b => Some((
                    b > a,
                    format!("{requests} are now answered within {b} days (was {a})."),
                )),
                (Some(a), None) => Some((
                    true,
                    format!("{requests} are no longer taken (were answered within {a} days)."),
                )),
                (None, Some(b)) => Some((
                    false,
                    format!("{requests} are now taken, answered within {b} days."),
                )),
                _ => None,
            };
            if let Some((longer, summary)) = change {
                let kind = if longer {
                    ChangeKind::RightDeadlineExtended
                } else {
                    ChangeKind::RightDeadlineShortened
                };
                self.push(longer, kind, format!("rights:{}", k.as_str()), summary);
            }
        }
    }

    fn statements(&mut self) {
        let (old, new) = (self.old.file(), self.new.file());
        let place = |s: &model::Statement| match (&s.section, &s.service) {
            (Some(sec), _) => format!("section `{}`", sec.get_ref()),
            (None, Some(svc)) => format!("the section of service `{}`", svc.get_ref()),
            (None, None) => "the notice".to_string(),
        };
        self.compare(
            ("statement:", "statement"),
            (&old.statement, &new.statement),
            |d, element, n| {
                let summary = format!("New statement `{}` in {}.", n.key(), place(n));
                d.push(false, ChangeKind::StatementAdded, element, summary);
            },
            |_, _, o, n, w| {
                w.field("text", &o.text, &n.text);
                if place(o) != place(n) {
                    w.0.push(format!("moved to {} (was {})", place(n), place(o)));
                }
            },
            (false, ChangeKind::StatementRemoved, |o| {
                format!("Statement `{}` in {} was removed.", o.key(), place(o))
            }),
        );
    }
}

/// The categories a policy collects: from people in a role, in records, or by cookies.
fn collected(p: &Policy) -> Vec<&str> {
    let mut set = CategorySet::EMPTY;
    for r in p.services().iter().flat_map(|s| &s.roles) {
        set = set.union(r.collects).union(r.optional);
    }
    for c in p.collections() {
        set = set.union(c.categories);
    }
    for c in &p.file().cookie {
        if let Ok(id) = p.category_id(c.category.get_ref()) {
            set.insert(id);
        }
    }
    cats(p, set)
}

fn collects_anything(r: &RoleInfo) -> bool {
    !r.collects.is_empty() || !r.optional.is_empty() || !r.records.is_empty()
}

/// `role `host` collects `a` and `b`, optionally `c`, for `p``.
fn role_text(p: &Policy, r: &RoleInfo) -> String {
    let mut s = format!("role `{}` collects {}", r.id, list(&cats(p, r.collects)));
    if !r.optional.is_empty() {
        s.push_str(&format!(", optionally {}", list(&cats(p, r.optional))));
    }
    s.push_str(&format!(", for {}", list(&purps(p, r.purposes))));
    s
}

/// The transfers to one region, merged.
#[derive(Debug)]
struct Transfers<'p> {
    to: &'p str,
    purposes: Vec<&'p str>,
    /// `None`: every recipient in the region.
    recipients: Option<Vec<&'p str>>,
    descriptions: Vec<&'p str>,
}

fn transfers(f: &model::PolicyFile) -> Vec<Transfers<'_>> {
    let mut out: Vec<Transfers<'_>> = Vec::new();
    for t in &f.transfer {
        let to = t.to.get_ref().as_str();
        let idx = match out.iter().position(|x| x.to == to) {
            Some(i) => i,
            None => {
                out.push(Transfers {
                    to,
                    purposes: Vec::new(),
                    recipients: Some(Vec::new()),
                    descriptions: Vec::new(),
                });
                out.len().saturating_sub(1)
            }
        };
        let Some(x) = out.get_mut(idx) else { continue };
        for p in strs(&t.purposes) {
            if !x.purposes.contains(&p) {
                x.purposes.push(p);
            }
        }
        if t.recipients.is_empty() {
            x.recipients = None;
        } else if let Some(r) = &mut x.recipients {
            r.extend(
                strs(&t.recipients)
                    .into_iter()
                    .filter(|n| !r.contains(n))
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(d) = &t.description {
            x.descriptions.push(d);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[policy]
id = "test"
version = "v1"
effective = "2024-01-01"
title = "Test privacy statement"
controller = "Example Inc."
minimum_age = 13

[contacts]
privacy_email = "privacy@example.com"
unsubscribe_email = "unsubscribe@example.com"
postal_address = ["1 Example Way", "Example City"]

[[retention]]
id = "account"
name = "Until the account is closed"
period = "account"

[[retention]]
id = "short"
name = "Thirty days"
period = "P30D"

[[retention]]
id = "long"
name = "Two years"
period = "P2Y"

[[category]]
id = "contact.email"
name = "Email address"
kind = "contact"
identifier = true
retention = "account"

[[category]]
id = "contact.phone"
name = "Phone number"
kind = "contact"
retention = "account"

[[category]]
id = "network.ip"
name = "IP address"
kind = "network"
retention = "short"

[[category]]
id = "financial.card"
name = "Card number"
kind = "financial"
transient = true

[[category]]
id = "content.chat"
name = "Chat message"
kind = "content"
retention = "short"
description = "What people write in a meeting's chat."

[[purpose]]
id = "service"
basis = "service"
name = "Providing the service"

[[purpose]]
id = "service.billing"
parent = "service"
basis = "contract"
name = "Billing"

[[purpose]]
id = "marketing"
basis = "opt_out"
name = "Marketing"

[[purpose]]
id = "marketing.partners"
parent = "marketing"
basis = "consent"
name = "Partner offers"
description = "Offers from our partners."

[[purpose]]
id = "security"
basis = "service"
name = "Fraud investigation"
requires_reference = true

[[purpose]]
id = "legal"
basis = "legal"
name = "Legal process"

[[accessor]]
id = "support"
name = "Support staff"
purposes = ["service"]

[[accessor.limit]]
purpose = "service"
categories = ["contact.email", "contact.phone"]

[[accessor]]
id = "partner-portal"
name = "Partner portal"
recipient = "ad-partner"
purposes = ["marketing.partners"]

[[recipient]]
id = "ad-partner"
name = "Advertising partner"
kind = "marketing_partner"
region = "us"

[[recipient.allow]]
purpose = "marketing.partners"
categories = ["contact.email"]

[[recipient]]
id = "card-processor"
name = "Card processor"
kind = "processor"
region = "us"

[[recipient.allow]]
purpose = "service.billing"
categories = ["financial.card", "contact.email"]

[[service]]
id = "meetings"
name = "Meetings"

[[service.role]]
id = "host"
name = "Host"
collects = ["contact.email", "network.ip"]
optional = ["contact.phone"]
purposes = ["service", "marketing"]
records = ["chat"]

[[service.role]]
id = "attendee"
name = "Attendee"
collects = ["contact.email"]
purposes = ["service"]

[[collection]]
id = "chat"
name = "Chat messages"
retention = "short"

[[collection.field]]
name = "text"
category = "content.chat"

[[cookie]]
id = "session"
kind = "cookie"
name = "Session cookie"
purpose = "service"
category = "network.ip"
required = true

[[region]]
id = "us"
name = "United States"

[[region]]
id = "eu"
name = "European Union"

[[transfer]]
to = "us"
purposes = ["service"]

[[right]]
id = "access"
name = "See your information"
channels = ["online", "email"]
due_days = 30

[[right]]
id = "unsubscribe"
name = "Unsubscribe"
channels = ["link", "email"]

[[statement]]
id = "security.general"
section = "security"
text = "We protect your information."
"#;

    fn load(text: &str) -> Policy {
        match Policy::from_str("test.toml", text) {
            Ok(p) => p,
            Err(d) => panic!("policy does not load:\n{d}"),
        }
    }

    fn base() -> Policy {
        load(BASE)
    }

    /// The base text with each `(from, to)` replaced; each `from` must occur exactly once.
    fn edited(text: &str, edits: &[(&str, &str)]) -> String {
        let mut out = text.to_string();
        for (from, to) in edits {
            assert_eq!(
                out.matches(from).count(),
                1,
                "`{from}` must occur once in the policy"
            );
            out = out.replacen(from, to, 1);
        }
        out
    }

    fn diff_with(edits: &[(&str, &str)]) -> PolicyDiff {
        diff(&base(), &load(&edited(BASE, edits)))
    }

    /// The only change of a diff.
    fn only(d: &PolicyDiff) -> &Change {
        assert_eq!(
            d.changes.len(),
            1,
            "expected exactly one change, got:\n{}",
            dump(d)
        );
        &d.changes[0]
    }

    /// The one change of a kind.
    fn one(d: &PolicyDiff, kind: ChangeKind) -> &Change {
        let found: Vec<&Change> = d.of_kind(kind).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one `{kind}` change, got:\n{}",
            dump(d)
        );
        found[0]
    }

    fn dump(d: &PolicyDiff) -> String {
        d.changes.iter().map(|c| format!("  {c}\n")).collect()
    }

    fn assert_only(d: &PolicyDiff, kind: ChangeKind, material: bool, element: &str) {
        let c = only(d);
        assert_eq!(c.kind, kind, "{}", dump(d));
        assert_eq!(c.material, material, "{}", dump(d));
        assert_eq!(c.element, element, "{}", dump(d));
        assert_eq!(d.is_material(), material);
    }

    #[test]
    fn a_policy_compared_with_itself_has_no_change() {
        let d = diff(&base(), &base());
        assert!(d.is_empty() && !d.is_material(), "{}", dump(&d));
        assert_eq!(d.old_version, "v1");
        assert!(d.to_markdown().contains("does not change"));
    }

    #[test]
    fn reordering_declarations_changes_nothing() {
        let reordered = edited(
            BASE,
            &[
                ("[[region]]\nid = \"us\"\nname = \"United States\"\n\n", ""),
                (
                    "[[region]]\nid = \"eu\"\nname = \"European Union\"\n",
                    "[[region]]\nid = \"eu\"\nname = \"European Union\"\n\n[[region]]\nid = \"us\"\nname = \"United States\"\n",
                ),
                (
                    "collects = [\"contact.email\", \"network.ip\"]",
                    "collects = [\"network.ip\", \"contact.email\"]",
                ),
            ],
        );
        let d = diff(&base(), &load(&reordered));
        assert!(d.is_empty(), "{}", dump(&d));
    }

    #[test]
    fn change_kind_codes_are_unique_snake_case_and_round_trip() {
        let mut seen = Vec::new();
        for k in ChangeKind::ALL {
            let code = k.code();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!(!seen.contains(&code), "duplicate code {code}");
            seen.push(code);
            assert_eq!(ChangeKind::from_code(code), Some(*k));
        }
        assert_eq!(ChangeKind::from_code("nope"), None);
    }

    // Header.

    #[test]
    fn version_and_effective_date_are_not_material() {
        let d = diff_with(&[
            ("version = \"v1\"", "version = \"v2\""),
            ("effective = \"2024-01-01\"", "effective = \"2024-06-01\""),
        ]);
        assert!(!d.is_material(), "{}", dump(&d));
        assert_eq!(d.changes.len(), 2);
        assert_eq!(one(&d, ChangeKind::VersionChanged).element, "policy:test");
        one(&d, ChangeKind::EffectiveDateChanged);
        assert_eq!(d.new_version, "v2");
    }

    #[test]
    fn minimum_age_lowered_is_material() {
        let d = diff_with(&[("minimum_age = 13", "minimum_age = 10")]);
        assert_only(&d, ChangeKind::MinimumAgeLowered, true, "policy:test");
    }

    #[test]
    fn minimum_age_removed_is_material() {
        let d = diff_with(&[("minimum_age = 13\n", "")]);
        assert_only(&d, ChangeKind::MinimumAgeRemoved, true, "policy:test");
    }

    #[test]
    fn minimum_age_raised_is_not_material() {
        let d = diff_with(&[("minimum_age = 13", "minimum_age = 16")]);
        assert_only(&d, ChangeKind::MinimumAgeRaised, false, "policy:test");
    }

    #[test]
    fn controller_change_is_material() {
        let d = diff_with(&[(
            "controller = \"Example Inc.\"",
            "controller = \"Acquirer Corp.\"",
        )]);
        assert_only(&d, ChangeKind::ControllerChanged, true, "policy:test");
    }

    #[test]
    fn contacts_changed_are_listed_but_not_material() {
        let d = diff_with(&[("privacy@example.com", "privacy@example.org")]);
        assert_only(
            &d,
            ChangeKind::ContactChanged,
            false,
            "contacts:privacy_email",
        );
        assert!(d.changes[0].summary.contains("`privacy@example.org`"));
        assert!(d.to_markdown().contains("## Other changes"));
    }

    // Wording.

    #[test]
    fn wording_only_changes_are_not_material() {
        let d = diff_with(&[
            (
                "name = \"Partner offers\"",
                "name = \"Offers from partners\"",
            ),
            (
                "description = \"Offers from our partners.\"",
                "description = \"Offers our partners make.\"",
            ),
            (
                "text = \"We protect your information.\"",
                "text = \"We guard your information.\"",
            ),
            (
                "title = \"Test privacy statement\"",
                "title = \"Privacy statement\"",
            ),
            ("name = \"Card processor\"", "name = \"Payment processor\""),
        ]);
        assert!(!d.is_empty());
        assert!(!d.is_material(), "{}", dump(&d));
        assert!(
            d.changes.iter().all(|c| c.kind == ChangeKind::Reworded),
            "{}",
            dump(&d)
        );
        let p = d
            .changes
            .iter()
            .find(|c| c.element == "purpose:marketing.partners")
            .unwrap();
        assert!(
            p.summary.contains("“Offers from partners”") && p.summary.contains("description"),
            "{}",
            p.summary
        );
        assert!(
            d.changes
                .iter()
                .any(|c| c.element == "statement:security.general")
        );
        assert!(d.to_markdown().contains("no material change"));
    }

    // Purposes.

    #[test]
    fn new_purpose_is_material() {
        let d = diff_with(&[(
            "[[purpose]]\nid = \"legal\"",
            "[[purpose]]\nid = \"research\"\nbasis = \"consent\"\nname = \"Research\"\n\n[[purpose]]\nid = \"legal\"",
        )]);
        assert_only(&d, ChangeKind::PurposeAdded, true, "purpose:research");
        assert!(d.changes[0].summary.contains("`research`"));
    }

    #[test]
    fn new_sub_purpose_is_material_and_not_repeated_for_holders_of_its_parent() {
        // `host` states `marketing`, so it may state the new `marketing.sms` too; that is the
        // purpose added, not a separate widening of the role.
        let d = diff_with(&[(
            "[[purpose]]\nid = \"legal\"",
            "[[purpose]]\nid = \"marketing.sms\"\nparent = \"marketing\"\nbasis = \"consent\"\nname = \"Text messages\"\n\n[[purpose]]\nid = \"legal\"",
        )]);
        assert_only(&d, ChangeKind::PurposeAdded, true, "purpose:marketing.sms");
        assert!(d.changes[0].summary.contains("under `marketing`"));
    }

    #[test]
    fn removed_purpose_is_noted_but_not_material() {
        let d = diff_with(&[(
            "[[purpose]]\nid = \"security\"\nbasis = \"service\"\nname = \"Fraud investigation\"\nrequires_reference = true\n",
            "",
        )]);
        assert_only(&d, ChangeKind::PurposeRemoved, false, "purpose:security");
    }

    #[test]
    fn basis_weakened_from_consent_to_opt_out_is_material() {
        let d = diff_with(&[(
            "basis = \"consent\"\nname = \"Partner offers\"",
            "basis = \"opt_out\"\nname = \"Partner offers\"",
        )]);
        assert_only(
            &d,
            ChangeKind::BasisWeakened,
            true,
            "purpose:marketing.partners",
        );
        let s = &d.changes[0].summary;
        assert!(s.contains("`opt_out`") && s.contains("`consent`"), "{s}");
    }

    #[test]
    fn basis_strengthened_is_not_material() {
        let d = diff_with(&[(
            "basis = \"opt_out\"\nname = \"Marketing\"",
            "basis = \"consent\"\nname = \"Marketing\"",
        )]);
        assert_only(
            &d,
            ChangeKind::BasisStrengthened,
            false,
            "purpose:marketing",
        );
    }

    #[test]
    fn basis_service_to_contract_is_material() {
        // Same protection rank, but contractual purposes outlive deactivation.
        let d = diff_with(&[(
            "basis = \"service\"\nname = \"Providing the service\"",
            "basis = \"contract\"\nname = \"Providing the service\"",
        )]);
        assert_only(&d, ChangeKind::BasisWeakened, true, "purpose:service");
        let d = diff_with(&[(
            "basis = \"contract\"\nname = \"Billing\"",
            "basis = \"service\"\nname = \"Billing\"",
        )]);
        assert_only(
            &d,
            ChangeKind::BasisChanged,
            false,
            "purpose:service.billing",
        );
    }

    #[test]
    fn parent_change_that_inherits_more_collection_purposes_is_material() {
        // `marketing.partners` moves under `service`: what was collected for the service may
        // now be used for partner offers. The accessor allowed `service` gains it too.
        let d = diff_with(&[("parent = \"marketing\"", "parent = \"service\"")]);
        let c = one(&d, ChangeKind::ParentChanged);
        assert!(
            c.material && c.element == "purpose:marketing.partners",
            "{c}"
        );
        assert!(c.summary.contains("`service`"), "{}", c.summary);
        assert!(d.is_material());
        let a = one(&d, ChangeKind::AccessorPurposesAdded);
        assert_eq!(a.element, "accessor:support");
    }

    #[test]
    fn parent_removed_inherits_nothing_and_is_not_material() {
        let d = diff_with(&[("parent = \"service\"\n", "")]);
        let c = one(&d, ChangeKind::ParentChanged);
        assert!(!c.material && c.element == "purpose:service.billing", "{c}");
        // `support` pursued `service` and so `service.billing`; it no longer does.
        let a = one(&d, ChangeKind::AccessorPurposesRemoved);
        assert!(!a.material);
        assert!(!d.is_material(), "{}", dump(&d));
    }

    #[test]
    fn requires_reference_dropped_is_material() {
        let d = diff_with(&[("requires_reference = true\n", "")]);
        assert_only(&d, ChangeKind::ReferenceDropped, true, "purpose:security");
    }

    #[test]
    fn instruments_widened_is_material_and_narrowed_is_not() {
        let d = diff_with(&[(
            "requires_reference = true\n",
            "requires_reference = true\ninstruments = [\"fraud_case\"]\n",
        )]);
        assert_only(
            &d,
            ChangeKind::InstrumentsNarrowed,
            false,
            "purpose:security",
        );
        let d = diff(
            &load(&edited(
                BASE,
                &[(
                    "requires_reference = true\n",
                    "requires_reference = true\ninstruments = [\"fraud_case\"]\n",
                )],
            )),
            &base(),
        );
        assert_only(&d, ChangeKind::InstrumentsWidened, true, "purpose:security");
    }

    #[test]
    fn requires_reference_added_is_not_material() {
        let d = diff_with(&[(
            "name = \"Marketing\"",
            "name = \"Marketing\"\nrequires_reference = true",
        )]);
        assert_only(
            &d,
            ChangeKind::ReferenceRequired,
            false,
            "purpose:marketing",
        );
    }

    // Recipients.

    #[test]
    fn new_recipient_is_material() {
        let d = diff_with(&[(
            "[[service]]",
            "[[recipient]]\nid = \"data-broker\"\nname = \"Data broker\"\nkind = \"marketing_partner\"\n\n[[recipient.allow]]\npurpose = \"marketing\"\ncategories = [\"contact.email\", \"contact.phone\"]\n\n[[service]]",
        )]);
        assert_only(
            &d,
            ChangeKind::RecipientAdded,
            true,
            "recipient:data-broker",
        );
        assert!(
            d.changes[0]
                .summary
                .contains("`contact.phone` for `marketing`"),
            "{}",
            d.changes[0].summary
        );
    }

    #[test]
    fn removed_recipient_is_not_material() {
        let d = diff_with(&[(
            "[[recipient]]\nid = \"card-processor\"\nname = \"Card processor\"\nkind = \"processor\"\nregion = \"us\"\n\n[[recipient.allow]]\npurpose = \"service.billing\"\ncategories = [\"financial.card\", \"contact.email\"]\n",
            "",
        )]);
        assert_only(
            &d,
            ChangeKind::RecipientRemoved,
            false,
            "recipient:card-processor",
        );
    }

    #[test]
    fn recipient_allowed_a_new_purpose_is_material() {
        let d = diff_with(&[(
            "purpose = \"marketing.partners\"\ncategories = [\"contact.email\"]\n",
            "purpose = \"marketing.partners\"\ncategories = [\"contact.email\"]\n\n[[recipient.allow]]\npurpose = \"service\"\ncategories = [\"network.ip\"]\n",
        )]);
        // `service.billing` inherits the new allowance from `service`: reported once.
        assert_only(
            &d,
            ChangeKind::RecipientPurposeAdded,
            true,
            "recipient-allow:ad-partner/service",
        );
    }

    #[test]
    fn recipient_allowed_more_categories_is_material() {
        let d = diff_with(&[(
            "categories = [\"financial.card\", \"contact.email\"]",
            "categories = [\"financial.card\", \"contact.email\", \"contact.phone\"]",
        )]);
        assert_only(
            &d,
            ChangeKind::RecipientCategoriesAdded,
            true,
            "recipient-allow:card-processor/service.billing",
        );
        assert!(d.changes[0].summary.contains("`contact.phone`"));
    }

    #[test]
    fn recipient_allowed_fewer_categories_is_not_material() {
        let d = diff_with(&[(
            "categories = [\"financial.card\", \"contact.email\"]",
            "categories = [\"financial.card\"]",
        )]);
        assert_only(
            &d,
            ChangeKind::RecipientCategoriesRemoved,
            false,
            "recipient-allow:card-processor/service.billing",
        );
    }

    #[test]
    fn recipient_becoming_a_marketing_partner_is_material() {
        let d = diff_with(&[("kind = \"processor\"", "kind = \"marketing_partner\"")]);
        assert_only(
            &d,
            ChangeKind::RecipientKindChanged,
            true,
            "recipient:card-processor",
        );
    }

    // Accessors.

    #[test]
    fn accessor_allowed_new_purposes_is_material() {
        let d = diff_with(&[(
            "purposes = [\"service\"]\n\n[[accessor.limit]]",
            "purposes = [\"service\", \"security\"]\n\n[[accessor.limit]]",
        )]);
        assert_only(
            &d,
            ChangeKind::AccessorPurposesAdded,
            true,
            "accessor:support",
        );
        let s = &d.changes[0].summary;
        assert!(s.contains("`security`"), "{s}");
    }

    #[test]
    fn accessor_allowed_a_higher_limit_is_material() {
        let d = diff_with(&[(
            "categories = [\"contact.email\", \"contact.phone\"]",
            "categories = [\"contact.email\", \"contact.phone\", \"network.ip\"]",
        )]);
        // The limit on `service` also covers `service.billing`: reported once, where declared.
        assert_only(
            &d,
            ChangeKind::AccessorLimitRaised,
            true,
            "accessor-limit:support/service",
        );
        assert!(d.changes[0].summary.contains("`network.ip`"));
    }

    #[test]
    fn accessor_limit_removed_is_material_and_lowered_is_not() {
        let d = diff_with(&[(
            "\n[[accessor.limit]]\npurpose = \"service\"\ncategories = [\"contact.email\", \"contact.phone\"]\n",
            "",
        )]);
        assert_only(
            &d,
            ChangeKind::AccessorLimitRaised,
            true,
            "accessor-limit:support/service",
        );
        let d = diff_with(&[(
            "categories = [\"contact.email\", \"contact.phone\"]",
            "categories = [\"contact.email\"]",
        )]);
        assert_only(
            &d,
            ChangeKind::AccessorLimitLowered,
            false,
            "accessor-limit:support/service",
        );
    }

    #[test]
    fn new_accessor_is_material() {
        let d = diff_with(&[(
            "[[recipient]]\nid = \"ad-partner\"",
            "[[accessor]]\nid = \"analyst\"\nname = \"Analyst\"\npurposes = [\"security\"]\n\n[[recipient]]\nid = \"ad-partner\"",
        )]);
        assert_only(&d, ChangeKind::AccessorAdded, true, "accessor:analyst");
    }

    // Services and roles.

    #[test]
    fn role_collecting_a_new_required_category_is_material() {
        let d = diff_with(&[(
            "collects = [\"contact.email\"]\n",
            "collects = [\"contact.email\", \"network.ip\"]\n",
        )]);
        assert_only(
            &d,
            ChangeKind::RoleCollectsMore,
            true,
            "role:meetings/attendee",
        );
    }

    #[test]
    fn role_collecting_a_new_optional_category_is_material() {
        let d = diff_with(&[(
            "collects = [\"contact.email\"]\n",
            "collects = [\"contact.email\"]\noptional = [\"contact.phone\"]\n",
        )]);
        assert_only(
            &d,
            ChangeKind::RoleCollectsMore,
            true,
            "role:meetings/attendee",
        );
        assert!(d.changes[0].summary.contains("optional"));
    }

    #[test]
    fn role_requiring_an_optional_category_is_material() {
        let d = diff_with(&[(
            "collects = [\"contact.email\", \"network.ip\"]\noptional = [\"contact.phone\"]",
            "collects = [\"contact.email\", \"network.ip\", \"contact.phone\"]",
        )]);
        assert_only(&d, ChangeKind::RoleCollectsMore, true, "role:meetings/host");
        assert!(d.changes[0].summary.contains("was optional"));
    }

    #[test]
    fn role_collecting_less_is_not_material() {
        let d = diff_with(&[("optional = [\"contact.phone\"]\n", "")]);
        assert_only(
            &d,
            ChangeKind::RoleCollectsLess,
            false,
            "role:meetings/host",
        );
    }

    #[test]
    fn role_stating_new_purposes_is_material() {
        let d = diff_with(&[(
            "purposes = [\"service\"]\n\n[[collection]]",
            "purposes = [\"service\", \"marketing.partners\"]\n\n[[collection]]",
        )]);
        assert_only(
            &d,
            ChangeKind::RolePurposesAdded,
            true,
            "role:meetings/attendee",
        );
    }

    #[test]
    fn role_keeping_new_records_is_material() {
        let d = diff_with(&[(
            "purposes = [\"service\"]\n\n[[collection]]",
            "purposes = [\"service\"]\nrecords = [\"chat\"]\n\n[[collection]]",
        )]);
        assert_only(
            &d,
            ChangeKind::RoleRecordsAdded,
            true,
            "role:meetings/attendee",
        );
    }

    #[test]
    fn new_service_that_collects_is_material() {
        let d = diff_with(&[(
            "[[collection]]\nid = \"chat\"",
            "[[service]]\nid = \"mail\"\nname = \"Mail\"\n\n[[service.role]]\nid = \"user\"\nname = \"User\"\ncollects = [\"contact.email\"]\npurposes = [\"service\"]\n\n[[collection]]\nid = \"chat\"",
        )]);
        assert_only(&d, ChangeKind::ServiceAdded, true, "service:mail");
    }

    #[test]
    fn new_role_that_collects_is_material() {
        let d = diff_with(&[(
            "[[collection]]\nid = \"chat\"",
            "[[service.role]]\nid = \"panelist\"\nname = \"Panelist\"\ncollects = [\"contact.email\"]\npurposes = [\"service\"]\n\n[[collection]]\nid = \"chat\"",
        )]);
        assert_only(&d, ChangeKind::RoleAdded, true, "role:meetings/panelist");
    }

    // Categories.

    #[test]
    fn new_collected_category_is_material() {
        let d = diff_with(&[
            (
                "[[purpose]]\nid = \"service\"\n",
                "[[category]]\nid = \"device.camera\"\nname = \"Camera video\"\nkind = \"device\"\n\n[[purpose]]\nid = \"service\"\n",
            ),
            (
                "optional = [\"contact.phone\"]",
                "optional = [\"contact.phone\", \"device.camera\"]",
            ),
        ]);
        let c = one(&d, ChangeKind::CategoryAdded);
        assert!(c.material && c.element == "category:device.camera", "{c}");
        assert!(one(&d, ChangeKind::RoleCollectsMore).material);
        assert_eq!(d.changes.len(), 2, "{}", dump(&d));
    }

    #[test]
    fn new_category_nothing_collects_is_not_material() {
        let d = diff_with(&[(
            "[[purpose]]\nid = \"service\"\n",
            "[[category]]\nid = \"device.camera\"\nname = \"Camera video\"\n\n[[purpose]]\nid = \"service\"\n",
        )]);
        assert_only(
            &d,
            ChangeKind::CategoryAdded,
            false,
            "category:device.camera",
        );
    }

    #[test]
    fn category_no_longer_transient_is_material() {
        let d = diff_with(&[("transient = true\n", "retention = \"short\"\n")]);
        let c = one(&d, ChangeKind::CategoryNoLongerTransient);
        assert!(c.material && c.element == "category:financial.card");
        // It also gains a retention period, which is not a widening of its own.
        assert!(
            d.changes
                .iter()
                .filter(|c| c.kind != ChangeKind::CategoryNoLongerTransient)
                .all(|c| !c.material),
            "{}",
            dump(&d)
        );
    }

    #[test]
    fn category_made_an_identifier_is_material() {
        let d = diff_with(&[(
            "kind = \"contact\"\nretention = \"account\"\n\n[[category]]\nid = \"network.ip\"",
            "kind = \"contact\"\nidentifier = true\nretention = \"account\"\n\n[[category]]\nid = \"network.ip\"",
        )]);
        assert_only(
            &d,
            ChangeKind::IdentifierAdded,
            true,
            "category:contact.phone",
        );
    }

    #[test]
    fn dropping_tls_is_material_and_requiring_it_is_not() {
        let tls = "kind = \"contact\"\ntransport = \"tls\"\nretention = \"account\"\n\n[[category]]\nid = \"network.ip\"";
        let plain =
            "kind = \"contact\"\nretention = \"account\"\n\n[[category]]\nid = \"network.ip\"";
        let d = diff_with(&[(plain, tls)]);
        assert_only(
            &d,
            ChangeKind::TransportSecured,
            false,
            "category:contact.phone",
        );
        let secured = load(&edited(BASE, &[(plain, tls)]));
        let d = diff(&secured, &base());
        assert_only(
            &d,
            ChangeKind::TransportRelaxed,
            true,
            "category:contact.phone",
        );
        assert!(d.changes[0].summary.contains("without TLS"), "{}", dump(&d));
    }

    #[test]
    fn a_service_dropping_tls_is_material() {
        let edit = [(
            "id = \"meetings\"\nname = \"Meetings\"\n",
            "id = \"meetings\"\nname = \"Meetings\"\ntransport = \"tls\"\n",
        )];
        let secured = load(&edited(BASE, &edit));
        assert_only(
            &diff(&base(), &secured),
            ChangeKind::TransportSecured,
            false,
            "service:meetings",
        );
        assert_only(
            &diff(&secured, &base()),
            ChangeKind::TransportRelaxed,
            true,
            "service:meetings",
        );
    }

    // Retention.

    #[test]
    fn retention_rule_lengthened_is_material() {
        let d = diff_with(&[("period = \"P30D\"", "period = \"P90D\"")]);
        // Reported once, at the rule, not for each category and collection that follows it.
        assert_only(&d, ChangeKind::RetentionLengthened, true, "retention:short");
        assert!(d.changes[0].summary.contains("90 days"));
    }

    #[test]
    fn retention_rule_shortened_is_not_material() {
        let d = diff_with(&[("period = \"P2Y\"", "period = \"P1Y\"")]);
        assert_only(&d, ChangeKind::RetentionShortened, false, "retention:long");
    }

    #[test]
    fn category_moved_to_a_longer_rule_is_material() {
        let d = diff_with(&[(
            "kind = \"network\"\nretention = \"short\"",
            "kind = \"network\"\nretention = \"long\"",
        )]);
        assert_only(
            &d,
            ChangeKind::RetentionLengthened,
            true,
            "category:network.ip",
        );
        let d = diff_with(&[(
            "name = \"Chat messages\"\nretention = \"short\"",
            "name = \"Chat messages\"\nretention = \"account\"",
        )]);
        assert_only(&d, ChangeKind::RetentionLengthened, true, "collection:chat");
    }

    #[test]
    fn category_moved_to_a_shorter_rule_is_not_material() {
        let d = diff_with(&[(
            "kind = \"contact\"\nretention = \"account\"\n\n[[category]]\nid = \"network.ip\"",
            "kind = \"contact\"\nretention = \"long\"\n\n[[category]]\nid = \"network.ip\"",
        )]);
        assert_only(
            &d,
            ChangeKind::RetentionShortened,
            false,
            "category:contact.phone",
        );
    }

    // Rights.

    #[test]
    fn right_removed_is_material() {
        let d = diff_with(&[(
            "[[right]]\nid = \"unsubscribe\"\nname = \"Unsubscribe\"\nchannels = [\"link\", \"email\"]\n",
            "",
        )]);
        assert_only(&d, ChangeKind::RightRemoved, true, "right:unsubscribe");
    }

    #[test]
    fn right_channel_removed_is_material_and_added_is_not() {
        let d = diff_with(&[("channels = [\"link\", \"email\"]", "channels = [\"link\"]")]);
        assert_only(
            &d,
            ChangeKind::RightChannelRemoved,
            true,
            "right:unsubscribe",
        );
        assert!(d.changes[0].summary.contains("`email`"));
        let d = diff_with(&[(
            "channels = [\"link\", \"email\"]",
            "channels = [\"link\", \"email\", \"postal\"]",
        )]);
        assert_only(
            &d,
            ChangeKind::RightChannelAdded,
            false,
            "right:unsubscribe",
        );
    }

    #[test]
    fn right_deadline_extended_is_material() {
        let d = diff_with(&[("due_days = 30", "due_days = 45")]);
        assert_only(&d, ChangeKind::RightDeadlineExtended, true, "right:access");
    }

    #[test]
    fn a_request_answered_later_or_no_longer_taken_is_material() {
        let with = |days: &str| load(&format!("{BASE}\n[rights]\nrespond_days = {{ {days} }}\n"));
        let d = diff(&with("erase = 30"), &with("erase = 45"));
        assert_only(&d, ChangeKind::RightDeadlineExtended, true, "rights:erase");
        assert!(d.changes[0].summary.contains("45 days (was 30)"));
        let d = diff(&with("erase = 30, object = 10"), &with("object = 10"));
        assert_only(&d, ChangeKind::RightDeadlineExtended, true, "rights:erase");
        let d = diff(&with("erase = 30"), &with("erase = 20"));
        assert_only(
            &d,
            ChangeKind::RightDeadlineShortened,
            false,
            "rights:erase",
        );
        let d = diff(&with("erase = 30"), &with("erase = 30, export = 30"));
        assert_only(
            &d,
            ChangeKind::RightDeadlineShortened,
            false,
            "rights:export",
        );
    }

    #[test]
    fn new_right_is_not_material() {
        let d = diff_with(&[(
            "[[statement]]",
            "[[right]]\nid = \"erasure\"\nname = \"Erase your information\"\nchannels = [\"online\"]\n\n[[statement]]",
        )]);
        assert_only(&d, ChangeKind::RightAdded, false, "right:erasure");
    }

    // Transfers, regions, cookies, statements.

    #[test]
    fn new_transfer_is_material() {
        let d = diff_with(&[(
            "[[right]]\nid = \"access\"",
            "[[transfer]]\nto = \"eu\"\npurposes = [\"service\"]\n\n[[right]]\nid = \"access\"",
        )]);
        assert_only(&d, ChangeKind::TransferAdded, true, "transfer:eu");
    }

    #[test]
    fn transfer_for_more_purposes_is_material() {
        let d = diff_with(&[(
            "to = \"us\"\npurposes = [\"service\"]",
            "to = \"us\"\npurposes = [\"service\", \"marketing\"]",
        )]);
        assert_only(&d, ChangeKind::TransferWidened, true, "transfer:us");
    }

    #[test]
    fn new_region_alone_is_not_material() {
        let d = diff_with(&[(
            "[[transfer]]",
            "[[region]]\nid = \"jp\"\nname = \"Japan\"\n\n[[transfer]]",
        )]);
        assert_only(&d, ChangeKind::RegionAdded, false, "region:jp");
    }

    #[test]
    fn new_cookie_is_material() {
        let d = diff_with(&[(
            "[[region]]\nid = \"us\"",
            "[[cookie]]\nid = \"ads\"\nkind = \"web_beacon\"\nname = \"Ad beacon\"\npurpose = \"marketing\"\ncategory = \"network.ip\"\n\n[[region]]\nid = \"us\"",
        )]);
        assert_only(&d, ChangeKind::CookieAdded, true, "cookie:ads");
    }

    #[test]
    fn cookie_serving_another_purpose_is_material() {
        let d = diff_with(&[(
            "purpose = \"service\"\ncategory = \"network.ip\"",
            "purpose = \"marketing\"\ncategory = \"network.ip\"",
        )]);
        assert_only(&d, ChangeKind::CookieChanged, true, "cookie:session");
    }

    #[test]
    fn new_statement_is_not_material() {
        let d = diff_with(&[(
            "text = \"We protect your information.\"\n",
            "text = \"We protect your information.\"\n\n[[statement]]\nid = \"children.tips\"\nsection = \"children\"\ntext = \"Talk with your children.\"\n",
        )]);
        assert_only(
            &d,
            ChangeKind::StatementAdded,
            false,
            "statement:children.tips",
        );
    }

    // The notice.

    #[test]
    fn markdown_notice_lists_material_changes_first() {
        let d = diff_with(&[
            ("version = \"v1\"", "version = \"v2\""),
            (
                "basis = \"consent\"\nname = \"Partner offers\"",
                "basis = \"opt_out\"\nname = \"Partner offers\"",
            ),
        ]);
        let md = d.to_markdown();
        assert_eq!(md, d.to_string());
        assert!(
            md.starts_with("# Changes from version `v1` to version `v2`\n"),
            "{md}"
        );
        let material = md.find("## Material changes").expect("material section");
        let other = md.find("## Other changes").expect("other section");
        let weakened = md
            .find("`marketing.partners` now has basis `opt_out`")
            .expect("the basis change");
        let version = md
            .find("Version `v2` replaces version `v1`.")
            .expect("the version change");
        assert!(
            material < weakened && weakened < other && other < version,
            "{md}"
        );
        assert_eq!(d.material().count(), 1);
        assert!(d.changes.iter().all(|c| !c.summary.contains('\n')));
    }

    // The built-in WebEx 2010 policy.

    fn webex() -> Policy {
        load(crate::BUILTIN_WEBEX_2010)
    }

    /// The built-in policy with the `[[purpose]]` table of `marketing.partners` (from its
    /// header to the next table header) replaced by what `edit` makes of it.
    fn webex_with_partners(edit: impl FnOnce(&str) -> String) -> Policy {
        let text = crate::BUILTIN_WEBEX_2010;
        let id = text
            .match_indices("\"marketing.partners\"")
            .map(|(i, _)| i)
            .find(|&i| {
                let line_start = text[..i].rfind('\n').map_or(0, |n| n + 1);
                text[line_start..i].trim_start().starts_with("id")
            })
            .expect("the built-in policy declares purpose `marketing.partners`");
        let start = text[..id]
            .rfind("[[purpose]]")
            .expect("inside a [[purpose]] table");
        let end = text[id..].find("\n[").map_or(text.len(), |n| id + n + 1);
        let table = edit(&text[start..end]);
        load(&format!("{}{table}{}", &text[..start], &text[end..]))
    }

    #[test]
    fn webex_compared_with_itself_has_no_change() {
        let d = diff(&webex(), &webex());
        assert!(d.is_empty(), "{}", dump(&d));
    }

    #[test]
    fn webex_partner_marketing_from_consent_to_opt_out_is_material() {
        let modified = webex_with_partners(|block| {
            let basis_line = block
                .lines()
                .find(|l| l.trim_start().starts_with("basis"))
                .expect("`marketing.partners` has a basis");
            assert!(
                basis_line.contains("\"consent\""),
                "`marketing.partners` is consent-based: {basis_line}"
            );
            block.replacen(basis_line, "basis = \"opt_out\"", 1)
        });
        let d = diff(&webex(), &modified);
        assert_only(
            &d,
            ChangeKind::BasisWeakened,
            true,
            "purpose:marketing.partners",
        );
        assert!(d.to_markdown().contains("## Material changes"));
    }

    #[test]
    fn webex_description_edit_is_not_material() {
        let modified = webex_with_partners(|block| {
            match block
                .lines()
                .find(|l| l.trim_start().starts_with("description"))
            {
                Some(line) => {
                    let quote = line.find(['"', '\'']).expect("a quoted description");
                    let mark = line[quote..].chars().next().expect("a quote");
                    let quotes = line[quote..].chars().take_while(|c| *c == mark).count();
                    let at = quote + quotes;
                    let edited = format!("{}Edited. {}", &line[..at], &line[at..]);
                    block.replacen(line, &edited, 1)
                }
                None => block.replacen(
                    "[[purpose]]\n",
                    "[[purpose]]\ndescription = \"Edited.\"\n",
                    1,
                ),
            }
        });
        let d = diff(&webex(), &modified);
        assert_only(
            &d,
            ChangeKind::Reworded,
            false,
            "purpose:marketing.partners",
        );
        assert!(d.changes[0].summary.contains("description"));
    }
}
