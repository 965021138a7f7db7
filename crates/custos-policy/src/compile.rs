//! Validation and compilation: resolve every reference to a dense id, collect every problem
//! with its location, and build the tables `decide` reads.

use std::collections::HashMap;

use crate::NameMap;
use crate::ids::{
    AccessorId, CategoryId, CategorySet, CollectionId, DenseId, IdSet, MAX_ELEMENTS, PurposeId,
    PurposeSet, RecipientId, ServiceId,
};
use crate::load::Merged;
use crate::model::{Limit, Str};
use crate::source::{Diagnostic, FileId, Location, nearest};
use crate::{
    AccessorInfo, Basis, CategoryInfo, CollectionInfo, FieldInfo, InstrumentKind, InstrumentKinds,
    PeriodKind, PolicyTables, PurposeInfo, RecipientInfo, RecipientKind, RequestKind, RoleInfo,
    ServiceInfo,
};

/// Notice sections a `[[statement]]` may name.
pub const SECTIONS: &[&str] = &[
    "overview",
    "collection",
    "use",
    "choices",
    "sharing",
    "security",
    "cookies",
    "children",
    "transfers",
    "california",
    "changes",
    "contact",
];
const CATEGORY_KINDS: &[&str] = &[
    "identity",
    "contact",
    "financial",
    "network",
    "activity",
    "content",
    "device",
    "demographic",
    "aggregate",
];
const RIGHTS: &[&str] = &[
    "access",
    "rectification",
    "deactivation",
    "erasure",
    "unsubscribe",
    "objection",
    "consent_withdrawal",
    "disclosure_list",
];
const CHANNELS: &[&str] = &["online", "email", "postal", "link"];
/// How values may cross the network (`transport`): `tls` only over TLS (or from the
/// server's own host), `any` however the server is reached.
pub(crate) const TRANSPORTS: &[&str] = &["tls", "any"];
const COOKIE_KINDS: &[&str] = &["cookie", "web_beacon"];
/// Most clauses a `clause_range` may span.
const MAX_CLAUSES: u32 = 10_000;

struct Ctx {
    diagnostics: Vec<Diagnostic>,
    clause_prefix: String,
    clause_width: usize,
    clause_range: Option<(u32, u32)>,
}

impl Ctx {
    fn error(&mut self, file: FileId, span: std::ops::Range<usize>, message: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::at(Location { file, span }, message));
    }

    fn at(&mut self, file: FileId, s: &Str, message: impl Into<String>) {
        self.error(file, s.span(), message);
    }

    fn keyword<'a>(
        &mut self,
        file: FileId,
        s: &'a Str,
        what: &str,
        allowed: &[&str],
    ) -> Option<&'a str> {
        let v = s.get_ref().as_str();
        if allowed.contains(&v) {
            return Some(v);
        }
        let hint = nearest(v, allowed.iter().copied())
            .map(|n| format!("did you mean `{n}`? "))
            .unwrap_or_default();
        self.at(
            file,
            s,
            format!(
                "unknown {what} `{v}`; {hint}expected one of {}",
                allowed.join(", ")
            ),
        );
        None
    }

    fn clauses(&mut self, file: FileId, clauses: &[Str]) -> Vec<String> {
        let mut out = Vec::with_capacity(clauses.len());
        for c in clauses {
            let id = c.get_ref();
            let number = id
                .strip_prefix(self.clause_prefix.as_str())
                .filter(|n| n.len() == self.clause_width && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|n| n.parse::<u32>().ok());
            match (number, self.clause_range) {
                (Some(n), Some((lo, hi))) if n >= lo && n <= hi => out.push(id.clone()),
                (_, None) => self.at(
                    file,
                    c,
                    format!("clause `{id}` cited but `[policy]` has no `clause_range`; add e.g. `clause_range = [\"C001\", \"C080\"]`"),
                ),
                _ => {
                    let (lo, hi) = self.clause_range.unwrap_or((0, 0));
                    let w = self.clause_width;
                    let p = &self.clause_prefix;
                    self.at(
                        file,
                        c,
                        format!("unknown clause `{id}`; clause ids run from `{p}{lo:0w$}` to `{p}{hi:0w$}`"),
                    );
                }
            }
        }
        out
    }
}

/// The ids of one kind of element, for resolving references with suggestions.
struct Names<T> {
    kind: &'static str,
    table: &'static str,
    map: NameMap<T>,
    order: Vec<String>,
}

impl<T: DenseId> Names<T> {
    fn new(kind: &'static str, table: &'static str) -> Self {
        Self {
            kind,
            table,
            map: NameMap::default(),
            order: Vec::new(),
        }
    }

    /// Declares an id; reports duplicates and bad syntax. Returns the new id.
    fn declare(&mut self, ctx: &mut Ctx, file: FileId, id: &Str) -> Option<T> {
        let name = id.get_ref();
        if !valid_id(name) {
            ctx.at(
                file,
                id,
                format!("invalid {} id `{name}`; use lowercase letters, digits, `.`, `_` and `-`, starting with a letter", self.kind),
            );
        }
        if self.map.contains_key(name) {
            ctx.at(
                file,
                id,
                format!(
                    "duplicate {} id `{name}`; each id is declared once",
                    self.kind
                ),
            );
            // Keep positions aligned with the element lists, so later ids do not shift and
            // cause false follow-on errors.
            self.order.push(name.clone());
            return None;
        }
        if self.order.len() >= MAX_ELEMENTS {
            ctx.at(
                file,
                id,
                format!(
                    "too many {} elements; a policy declares at most {MAX_ELEMENTS}",
                    self.kind
                ),
            );
            return None;
        }
        let dense = T::from_index(self.order.len());
        self.map.insert(name.clone(), dense);
        self.order.push(name.clone());
        Some(dense)
    }

    /// Resolves a reference, reporting an unknown id with the nearest declared one.
    fn resolve(&self, ctx: &mut Ctx, file: FileId, r: &Str) -> Option<T> {
        let name = r.get_ref();
        if let Some(id) = self.map.get(name) {
            return Some(*id);
        }
        ctx.at(
            file,
            r,
            unknown_message(
                self.kind,
                self.table,
                name,
                self.order.iter().map(String::as_str),
            ),
        );
        None
    }

    fn resolve_set(&self, ctx: &mut Ctx, file: FileId, refs: &[Str]) -> IdSet<T> {
        refs.iter()
            .filter_map(|r| self.resolve(ctx, file, r))
            .collect()
    }
}

/// `unknown category `contact.emial`; did you mean `contact.email`?`
pub(crate) fn unknown_message<'a>(
    kind: &str,
    table: &str,
    name: &str,
    declared: impl Iterator<Item = &'a str>,
) -> String {
    match nearest(name, declared) {
        Some(n) => format!("unknown {kind} `{name}`; did you mean `{n}`?"),
        None => format!("unknown {kind} `{name}`; declare it in a `[[{table}]]` table first"),
    }
}

/// A `transport` keyword: whether the element's values may cross the network only over TLS.
fn transport(ctx: &mut Ctx, file: FileId, t: &Option<Str>) -> bool {
    t.as_ref()
        .and_then(|t| ctx.keyword(file, t, "transport", TRANSPORTS))
        .is_some_and(|t| t == "tls")
}

fn valid_id(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Parses a retention period: `transient`, `account`, or ISO 8601 `PnY`, `PnM`, `PnW`, `PnD`.
pub(crate) fn parse_period(s: &str) -> Option<PeriodKind> {
    match s {
        "transient" => return Some(PeriodKind::Transient),
        "account" => return Some(PeriodKind::Account),
        _ => {}
    }
    let rest = s.strip_prefix('P')?;
    let unit = rest.chars().last()?;
    let num = rest.strip_suffix(unit)?;
    let n: u32 = num.parse().ok().filter(|n| *n > 0)?;
    let days = match unit {
        'D' => n,
        'W' => n.checked_mul(7)?,
        'M' => n.checked_mul(30)?,
        'Y' => n.checked_mul(365)?,
        _ => return None,
    };
    Some(PeriodKind::Days(days))
}

fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
        && s.get(5..7)
            .and_then(|m| m.parse::<u8>().ok())
            .is_some_and(|m| (1..=12).contains(&m))
        && s.get(8..10)
            .and_then(|d| d.parse::<u8>().ok())
            .is_some_and(|d| (1..=31).contains(&d))
}

/// The instrument kinds a purpose accepts: its `instruments`, each a known kind, only on a
/// purpose that requires a reference; every kind when it names none; none when it requires
/// no reference.
fn instrument_kinds(
    ctx: &mut Ctx,
    file: FileId,
    p: &crate::model::Purpose,
    requires_reference: bool,
) -> InstrumentKinds {
    let Some(list) = &p.instruments else {
        return if requires_reference {
            InstrumentKinds::ALL
        } else {
            InstrumentKinds::EMPTY
        };
    };
    let id = p.id.get_ref();
    if !requires_reference {
        ctx.at(
            file,
            list.first().unwrap_or(&p.id),
            format!("purpose `{id}` lists `instruments` but requires no reference; add `requires_reference = true` or remove `instruments`"),
        );
        return InstrumentKinds::EMPTY;
    }
    if list.is_empty() {
        ctx.at(
            file,
            &p.id,
            format!("purpose `{id}` has an empty `instruments` list; name the kinds it accepts, or leave the key out to accept every kind"),
        );
    }
    let mut kinds = InstrumentKinds::EMPTY;
    for k in list {
        if let Some(kind) = ctx
            .keyword(file, k, "instrument kind", InstrumentKind::NAMES)
            .and_then(InstrumentKind::parse)
        {
            if kinds.contains(kind) {
                ctx.at(
                    file,
                    k,
                    format!("instrument kind `{}` listed twice", kind.as_str()),
                );
            }
            kinds.insert(kind);
        }
    }
    kinds
}

pub(crate) fn compile(m: &Merged) -> Result<PolicyTables, Vec<Diagnostic>> {
    let mut ctx = Ctx {
        diagnostics: Vec::new(),
        clause_prefix: String::new(),
        clause_width: 0,
        clause_range: None,
    };
    let f = &m.file;
    let o = &m.origin;
    let Some((hfile, header)) = &m.header else {
        return Err(vec![Diagnostic::global("no `[policy]` table")]);
    };
    let hfile = *hfile;

    // Header.
    if let Some(range) = &header.clause_range {
        match range.get_ref().as_slice() {
            [lo, hi] => {
                let split = |s: &str| {
                    let digits = s.chars().rev().take_while(char::is_ascii_digit).count();
                    let (p, n) = s.split_at(s.len() - digits);
                    n.parse::<u32>().ok().map(|n| (p.to_string(), digits, n))
                };
                match (split(lo), split(hi)) {
                    (Some((_, _, a)), Some((_, _, b))) if b.saturating_sub(a) >= MAX_CLAUSES => ctx.error(
                        hfile,
                        range.span(),
                        format!("`clause_range` spans {} clauses; a policy has at most {MAX_CLAUSES}", u64::from(b - a) + 1),
                    ),
                    (Some((p1, w1, a)), Some((p2, w2, b))) if p1 == p2 && w1 == w2 && a <= b => {
                        ctx.clause_prefix = p1;
                        ctx.clause_width = w1;
                        ctx.clause_range = Some((a, b));
                    }
                    _ => ctx.error(hfile, range.span(), "invalid `clause_range`; write the first and last clause id with the same prefix and width, e.g. [\"C001\", \"C080\"]"),
                }
            }
            _ => ctx.error(
                hfile,
                range.span(),
                "`clause_range` takes two clause ids, the first and the last",
            ),
        }
    }
    if !valid_id(header.id.get_ref()) {
        ctx.at(hfile, &header.id, format!("invalid policy id `{}`; use lowercase letters, digits, `.`, `_` and `-`, starting with a letter", header.id.get_ref()));
    }
    if !valid_date(header.effective.get_ref()) {
        ctx.at(
            hfile,
            &header.effective,
            format!(
                "invalid date `{}`; write `YYYY-MM-DD`",
                header.effective.get_ref()
            ),
        );
    }
    if header.version.get_ref().trim().is_empty() {
        ctx.at(
            hfile,
            &header.version,
            "empty `version`; name the version, e.g. its effective date",
        );
    }
    let header_clauses = ctx.clauses(hfile, &header.clauses);
    let minimum_age = header.minimum_age.as_ref().map(|a| *a.get_ref());
    if let Some(c) = &f.contacts {
        let cfile = o.contacts.unwrap_or(hfile);
        for e in [&c.privacy_email, &c.unsubscribe_email]
            .into_iter()
            .flatten()
        {
            if !e.get_ref().contains('@') {
                ctx.at(cfile, e, format!("invalid email address `{}`", e.get_ref()));
            }
        }
        ctx.clauses(cfile, &c.clauses);
    }

    // Declarations first, so references may point forwards.
    let mut categories: Names<CategoryId> = Names::new("category", "category");
    let mut purposes: Names<PurposeId> = Names::new("purpose", "purpose");
    let mut accessors: Names<AccessorId> = Names::new("accessor", "accessor");
    let mut recipients: Names<RecipientId> = Names::new("recipient", "recipient");
    let mut services: Names<ServiceId> = Names::new("service", "service");
    let mut collections: Names<CollectionId> = Names::new("record collection", "collection");
    let mut retentions: HashMap<String, PeriodKind> = HashMap::new();
    let mut regions: Vec<String> = Vec::new();

    let zip = |origins: &[FileId], i: usize| origins.get(i).copied().unwrap_or(hfile);

    for (i, r) in f.retention.iter().enumerate() {
        let file = zip(&o.retention, i);
        let id = r.id.get_ref();
        if retentions.contains_key(id) {
            ctx.at(
                file,
                &r.id,
                format!("duplicate retention id `{id}`; each id is declared once"),
            );
        }
        match parse_period(r.period.get_ref()) {
            Some(p) => {
                retentions.insert(id.clone(), p);
            }
            None => ctx.at(file, &r.period, format!("invalid retention period `{}`; use `transient`, `account` or an ISO 8601 period such as `P30D`, `P6M`, `P2Y`", r.period.get_ref())),
        }
        ctx.clauses(file, &r.clauses);
    }
    for (i, r) in f.region.iter().enumerate() {
        let file = zip(&o.region, i);
        if regions.contains(r.id.get_ref()) {
            ctx.at(
                file,
                &r.id,
                format!(
                    "duplicate region id `{}`; each id is declared once",
                    r.id.get_ref()
                ),
            );
        }
        regions.push(r.id.get_ref().clone());
        ctx.clauses(file, &r.clauses);
    }
    let resolve_retention = |ctx: &mut Ctx, file: FileId, r: &Option<Str>| -> Option<PeriodKind> {
        let r = r.as_ref()?;
        let found = retentions.get(r.get_ref()).copied();
        if found.is_none() {
            ctx.at(
                file,
                r,
                unknown_message(
                    "retention",
                    "retention",
                    r.get_ref(),
                    retentions.keys().map(String::as_str),
                ),
            );
        }
        found
    };
    let resolve_region = |ctx: &mut Ctx, file: FileId, r: &Str| {
        if !regions.contains(r.get_ref()) {
            ctx.at(
                file,
                r,
                unknown_message(
                    "region",
                    "region",
                    r.get_ref(),
                    regions.iter().map(String::as_str),
                ),
            );
        }
    };

    let mut category_infos = Vec::new();
    for (i, c) in f.category.iter().enumerate() {
        let file = zip(&o.category, i);
        categories.declare(&mut ctx, file, &c.id);
        if let Some(k) = &c.kind {
            ctx.keyword(file, k, "category kind", CATEGORY_KINDS);
        }
        let retention = resolve_retention(&mut ctx, file, &c.retention);
        let requires_tls = transport(&mut ctx, file, &c.transport);
        category_infos.push(CategoryInfo {
            id: c.id.get_ref().clone(),
            name: c.name.clone(),
            identifier: c.identifier,
            transient: c.transient || retention == Some(PeriodKind::Transient),
            retention,
            requires_tls,
            clauses: ctx.clauses(file, &c.clauses),
        });
    }
    for (i, p) in f.purpose.iter().enumerate() {
        purposes.declare(&mut ctx, zip(&o.purpose, i), &p.id);
    }
    for (i, a) in f.accessor.iter().enumerate() {
        accessors.declare(&mut ctx, zip(&o.accessor, i), &a.id);
    }
    for (i, r) in f.recipient.iter().enumerate() {
        recipients.declare(&mut ctx, zip(&o.recipient, i), &r.id);
    }
    for (i, s) in f.service.iter().enumerate() {
        services.declare(&mut ctx, zip(&o.service, i), &s.id);
    }
    for (i, c) in f.collection.iter().enumerate() {
        collections.declare(&mut ctx, zip(&o.collection, i), &c.id);
    }

    // Purposes: basis, parent, cycles, ancestors.
    let mut purpose_infos: Vec<PurposeInfo> = Vec::new();
    let mut parents: Vec<Option<PurposeId>> = Vec::new();
    // Purposes whose basis is missing or misspelt: already reported, so the checks that
    // depend on a basis skip them instead of piling up follow-on errors.
    let mut unknown_basis = PurposeSet::EMPTY;
    for (i, p) in f.purpose.iter().enumerate() {
        let file = zip(&o.purpose, i);
        if p.basis
            .as_ref()
            .and_then(|b| Basis::parse(b.get_ref()))
            .is_none()
        {
            unknown_basis.insert(PurposeId::from_index(i));
        }
        let basis = match &p.basis {
            None => {
                ctx.at(file, &p.id, format!("purpose `{}` has no `basis`; add `basis = ` one of service, consent, opt_out, legal, contract", p.id.get_ref()));
                Basis::Consent
            }
            Some(b) => match Basis::parse(b.get_ref()) {
                Some(b) => b,
                None => {
                    ctx.keyword(file, b, "basis", Basis::NAMES);
                    Basis::Consent
                }
            },
        };
        let parent = p
            .parent
            .as_ref()
            .and_then(|r| purposes.resolve(&mut ctx, file, r));
        parents.push(parent);
        let requires_reference = p.requires_reference || basis == Basis::Legal;
        let instruments = instrument_kinds(&mut ctx, file, p, requires_reference);
        purpose_infos.push(PurposeInfo {
            id: p.id.get_ref().clone(),
            name: p.name.clone(),
            basis,
            parent,
            ancestors: PurposeSet::EMPTY,
            descendants: PurposeSet::EMPTY,
            consent_scope: PurposeSet::EMPTY,
            requires_reference,
            instruments,
            requires_recipient: p.requires_recipient,
            clauses: ctx.clauses(file, &p.clauses),
        });
    }
    for i in 0..purpose_infos.len() {
        let mut seen = PurposeSet::EMPTY;
        let mut cur = Some(PurposeId::from_index(i));
        let mut cycle = false;
        while let Some(p) = cur {
            if seen.contains(p) {
                cycle = true;
                break;
            }
            seen.insert(p);
            cur = parents.get(p.index()).copied().flatten();
        }
        if cycle {
            if let Some(p) = f.purpose.get(i) {
                let chain: Vec<&str> = seen
                    .iter()
                    .filter_map(|p| purpose_infos.get(p.index()).map(|x| x.id.as_str()))
                    .collect();
                ctx.at(
                    zip(&o.purpose, i),
                    p.parent.as_ref().unwrap_or(&p.id),
                    format!("purpose `{}` is its own ancestor (cycle through {}); a purpose hierarchy is a tree", p.id.get_ref(), chain.join(", ")),
                );
            }
            seen = PurposeSet::EMPTY;
            seen.insert(PurposeId::from_index(i));
        }
        if let Some(info) = purpose_infos.get_mut(i) {
            info.ancestors = seen;
        }
    }
    let consent_purposes: PurposeSet = purpose_infos
        .iter()
        .enumerate()
        .filter(|(_, p)| p.basis == Basis::Consent)
        .map(|(i, _)| PurposeId::from_index(i))
        .collect();
    for i in 0..purpose_infos.len() {
        let ancestors = purpose_infos
            .get(i)
            .map(|p| p.ancestors)
            .unwrap_or_default();
        if let Some(info) = purpose_infos.get_mut(i) {
            info.consent_scope = ancestors.intersection(consent_purposes);
        }
        for a in ancestors.iter() {
            if let Some(info) = purpose_infos.get_mut(a.index()) {
                info.descendants.insert(PurposeId::from_index(i));
            }
        }
    }
    // A refinement may not protect the person less than what it refines: objecting to a
    // purpose must stop its children, and consent to a parent must not be needed less.
    for (i, p) in f.purpose.iter().enumerate() {
        let info = purpose_infos.get(i);
        let parent = info
            .and_then(|x| x.parent)
            .and_then(|q| purpose_infos.get(q.index()));
        if let (Some(info), Some(parent), Some(r)) = (info, parent, &p.parent) {
            let known = !unknown_basis.contains(PurposeId::from_index(i))
                && info.parent.is_some_and(|q| !unknown_basis.contains(q));
            if known && info.basis.protection() < parent.basis.protection() {
                ctx.at(
                    zip(&o.purpose, i),
                    r,
                    format!(
                        "purpose `{}` (basis {}) refines `{}` (basis {}) but protects less; give it a basis at least as protective, or move it out from under `{}`",
                        info.id, info.basis.as_str(), parent.id, parent.basis.as_str(), parent.id
                    ),
                );
            }
        }
    }
    let n_purposes = purpose_infos.len();
    let descendants = |p: PurposeId| {
        purpose_infos
            .get(p.index())
            .map(|x| x.descendants)
            .unwrap_or_default()
    };

    // Limits: for each purpose, the categories from the nearest ancestor-or-self limit.
    let limit_table = |ctx: &mut Ctx, file: FileId, limits: &[Limit]| -> Vec<Option<CategorySet>> {
        let mut own: Vec<Option<CategorySet>> = vec![None; n_purposes];
        for l in limits {
            let cats = categories.resolve_set(ctx, file, &l.categories);
            ctx.clauses(file, &l.clauses);
            if l.categories.is_empty() {
                ctx.at(
                    file,
                    &l.purpose,
                    format!(
                        "limit for `{}` lists no categories; list the minimum categories needed",
                        l.purpose.get_ref()
                    ),
                );
            }
            if let Some(p) = purposes.resolve(ctx, file, &l.purpose) {
                if let Some(slot) = own.get_mut(p.index()) {
                    if slot.is_some() {
                        ctx.at(
                            file,
                            &l.purpose,
                            format!(
                                "a second limit for purpose `{}`; merge them into one",
                                l.purpose.get_ref()
                            ),
                        );
                    }
                    *slot = Some(slot.unwrap_or_default().union(cats));
                }
            }
        }
        (0..n_purposes)
            .map(|i| {
                // Nearest first; bounded so that a (reported) cycle cannot loop.
                let mut cur = Some(PurposeId::from_index(i));
                for _ in 0..n_purposes {
                    let p = cur?;
                    if let Some(Some(set)) = own.get(p.index()) {
                        return Some(*set);
                    }
                    cur = purpose_infos.get(p.index()).and_then(|x| x.parent);
                }
                None
            })
            .collect()
    };

    let mut recipient_infos = Vec::new();
    for (i, r) in f.recipient.iter().enumerate() {
        let file = zip(&o.recipient, i);
        let kind = r.kind.as_ref().and_then(|k| {
            ctx.keyword(file, k, "recipient kind", RecipientKind::NAMES)
                .and_then(RecipientKind::parse)
        });
        if r.kind.is_none() {
            ctx.at(
                file,
                &r.id,
                format!(
                    "recipient `{}` has no `kind`; add one of {}",
                    r.id.get_ref(),
                    RecipientKind::NAMES.join(", ")
                ),
            );
        }
        if let Some(region) = &r.region {
            resolve_region(&mut ctx, file, region);
        }
        if r.allow.is_empty() {
            ctx.at(file, &r.id, format!("recipient `{}` has no `[[recipient.allow]]`; list the minimum categories it may receive for each purpose", r.id.get_ref()));
        }
        let allows = limit_table(&mut ctx, file, &r.allow);
        recipient_infos.push(RecipientInfo {
            id: r.id.get_ref().clone(),
            name: r.name.clone(),
            kind: kind.unwrap_or(RecipientKind::Internal),
            allows,
            clauses: ctx.clauses(file, &r.clauses),
        });
    }

    let mut accessor_infos = Vec::new();
    for (i, a) in f.accessor.iter().enumerate() {
        let file = zip(&o.accessor, i);
        let recipient = a
            .recipient
            .as_ref()
            .and_then(|r| recipients.resolve(&mut ctx, file, r));
        let declared = purposes.resolve_set(&mut ctx, file, &a.purposes);
        let allowed = declared
            .iter()
            .fold(PurposeSet::EMPTY, |acc, p| acc.union(descendants(p)));
        if a.purposes.is_empty() {
            ctx.at(
                file,
                &a.id,
                format!(
                    "accessor `{}` lists no `purposes`; an accessor pursues at least one purpose",
                    a.id.get_ref()
                ),
            );
        }
        for l in &a.limit {
            if let Some(p) = purposes.map.get(l.purpose.get_ref()) {
                if !allowed.contains(*p) {
                    ctx.at(file, &l.purpose, format!("accessor `{}` has a limit for `{}`, a purpose it may not pursue; add the purpose to `purposes` or remove the limit", a.id.get_ref(), l.purpose.get_ref()));
                }
            }
        }
        let limits = limit_table(&mut ctx, file, &a.limit);
        // INVARIANT: an accessor collects only in the name of the services it is; by
        // default the one that shares its id, so a team or a partner collects for none.
        let acts_for = match &a.services {
            Some(list) => services.resolve_set(&mut ctx, file, list),
            None => services
                .map
                .get(a.id.get_ref())
                .map_or(IdSet::EMPTY, |s| std::iter::once(*s).collect()),
        };
        // Consent opens a purpose to every held category, so minimum necessary must come
        // from a limit: the accessor's own, or its recipient's allowance.
        let recipient_allows = recipient
            .and_then(|r| recipient_infos.get(r.index()))
            .map(|r| &r.allows);
        for p in allowed.iter() {
            let Some(info) = purpose_infos.get(p.index()) else {
                continue;
            };
            let capped = limits.get(p.index()).is_some_and(Option::is_some)
                || recipient_allows.is_some_and(|a| a.get(p.index()).is_some_and(Option::is_some));
            if info.basis == Basis::Consent && !capped && !unknown_basis.contains(p) {
                ctx.at(
                    file,
                    &a.id,
                    format!(
                        "accessor `{}` may pursue consent purpose `{}` with no limit; add an `[[accessor.limit]]` for it listing the categories it needs",
                        a.id.get_ref(), info.id
                    ),
                );
            }
        }
        // Decided by the policy: an accessor acting for a business customer's recipient
        // reaches only that customer's people (issue 12).
        let tenant_bound = recipient
            .and_then(|r| recipient_infos.get(r.index()))
            .is_some_and(|r| r.kind.acts_for_tenant());
        accessor_infos.push(AccessorInfo {
            id: a.id.get_ref().clone(),
            name: a.name.clone(),
            recipient,
            declared,
            allowed,
            services: acts_for,
            limits,
            tenant_bound,
            clauses: ctx.clauses(file, &a.clauses),
        });
    }

    let mut collection_infos = Vec::new();
    for (i, c) in f.collection.iter().enumerate() {
        let file = zip(&o.collection, i);
        let mut fields: Vec<FieldInfo> = Vec::new();
        for fd in &c.field {
            if fields.iter().any(|x| x.name == *fd.name.get_ref()) {
                ctx.at(
                    file,
                    &fd.name,
                    format!(
                        "duplicate field `{}` in collection `{}`",
                        fd.name.get_ref(),
                        c.id.get_ref()
                    ),
                );
            }
            if let Some(cat) = categories.resolve(&mut ctx, file, &fd.category) {
                fields.push(FieldInfo {
                    name: fd.name.get_ref().clone(),
                    category: cat,
                    optional: fd.optional,
                });
            }
        }
        if c.field.is_empty() {
            ctx.at(file, &c.id, format!("collection `{}` has no `[[collection.field]]`; declare the fields of its records", c.id.get_ref()));
        }
        let retention = resolve_retention(&mut ctx, file, &c.retention);
        collection_infos.push(CollectionInfo {
            id: c.id.get_ref().clone(),
            name: c.name.clone(),
            categories: fields.iter().map(|f| f.category).collect(),
            fields,
            retention,
            clauses: ctx.clauses(file, &c.clauses),
        });
    }

    let mut service_infos = Vec::new();
    for (i, s) in f.service.iter().enumerate() {
        let file = zip(&o.service, i);
        let mut roles: Vec<RoleInfo> = Vec::new();
        for r in &s.role {
            if roles.iter().any(|x| x.id == *r.id.get_ref()) {
                ctx.at(
                    file,
                    &r.id,
                    format!(
                        "duplicate role `{}` in service `{}`",
                        r.id.get_ref(),
                        s.id.get_ref()
                    ),
                );
            }
            if !valid_id(r.id.get_ref()) {
                ctx.at(
                    file,
                    &r.id,
                    format!(
                        "invalid role id `{}`; use lowercase letters, digits, `.`, `_` and `-`",
                        r.id.get_ref()
                    ),
                );
            }
            let collects = categories.resolve_set(&mut ctx, file, &r.collects);
            let optional = categories.resolve_set(&mut ctx, file, &r.optional);
            let stated = purposes.resolve_set(&mut ctx, file, &r.purposes);
            if r.purposes.is_empty() {
                ctx.at(file, &r.id, format!("role `{}` of service `{}` states no `purposes`; every collection must say why (C004)", r.id.get_ref(), s.id.get_ref()));
            }
            let records: Vec<CollectionId> = r
                .records
                .iter()
                .filter_map(|c| collections.resolve(&mut ctx, file, c))
                .collect();
            roles.push(RoleInfo {
                id: r.id.get_ref().clone(),
                name: r.name.clone(),
                collects,
                optional,
                purposes: stated,
                allowed_purposes: stated
                    .iter()
                    .fold(PurposeSet::EMPTY, |acc, p| acc.union(descendants(p))),
                records,
                clauses: ctx.clauses(file, &r.clauses),
            });
        }
        let requires_tls = transport(&mut ctx, file, &s.transport);
        service_infos.push(ServiceInfo {
            id: s.id.get_ref().clone(),
            name: s.name.clone(),
            requires_tls,
            roles,
            clauses: ctx.clauses(file, &s.clauses),
        });
    }

    let mut cookies_seen: Vec<&str> = Vec::new();
    for (i, c) in f.cookie.iter().enumerate() {
        let file = zip(&o.cookie, i);
        if cookies_seen.contains(&c.id.get_ref().as_str()) {
            ctx.at(
                file,
                &c.id,
                format!(
                    "duplicate cookie id `{}`; each id is declared once",
                    c.id.get_ref()
                ),
            );
        }
        cookies_seen.push(c.id.get_ref());
        ctx.keyword(file, &c.kind, "cookie kind", COOKIE_KINDS);
        purposes.resolve(&mut ctx, file, &c.purpose);
        categories.resolve(&mut ctx, file, &c.category);
        ctx.clauses(file, &c.clauses);
    }
    for (i, t) in f.transfer.iter().enumerate() {
        let file = zip(&o.transfer, i);
        resolve_region(&mut ctx, file, &t.to);
        purposes.resolve_set(&mut ctx, file, &t.purposes);
        recipients.resolve_set(&mut ctx, file, &t.recipients);
        ctx.clauses(file, &t.clauses);
    }
    let (staff, respond_days) = match (&f.rights, o.rights) {
        (Some(r), Some(file)) => rights_table(
            &mut ctx,
            file,
            r,
            &accessors,
            &accessor_infos,
            &recipient_infos,
        ),
        _ => (Vec::new(), [None; 7]),
    };
    let mut rights_seen: Vec<&str> = Vec::new();
    for (i, r) in f.right.iter().enumerate() {
        let file = zip(&o.right, i);
        let kind = RequestKind::of_right(r.id.get_ref());
        if let (Some(due), Some(k)) = (r.due_days, kind) {
            match respond_days.get(k as usize).copied().flatten() {
                Some(days) if days != due => ctx.at(
                    file,
                    &r.id,
                    format!(
                        "right `{}` is answered within {due} days but `[rights] respond_days` gives `{}` requests {days}; make them agree, or drop `due_days` (it follows `respond_days`)",
                        r.id.get_ref(),
                        k.as_str()
                    ),
                ),
                _ => {}
            }
        }
        if let Some(id) = ctx.keyword(file, &r.id, "right", RIGHTS) {
            if rights_seen.contains(&id) {
                ctx.at(
                    file,
                    &r.id,
                    format!("duplicate right `{id}`; each right is declared once"),
                );
            }
            rights_seen.push(id);
        }
        for c in &r.channels {
            ctx.keyword(file, c, "channel", CHANNELS);
        }
        ctx.clauses(file, &r.clauses);
    }
    let mut statements_seen: Vec<&str> = Vec::new();
    for (i, s) in f.statement.iter().enumerate() {
        let file = zip(&o.statement, i);
        if statements_seen.contains(&s.id.get_ref().as_str()) {
            ctx.at(
                file,
                &s.id,
                format!(
                    "duplicate statement id `{}`; each id is declared once",
                    s.id.get_ref()
                ),
            );
        }
        statements_seen.push(s.id.get_ref());
        match (&s.section, &s.service) {
            (Some(sec), None) => {
                ctx.keyword(file, sec, "notice section", SECTIONS);
            }
            (None, Some(svc)) => {
                services.resolve(&mut ctx, file, svc);
            }
            _ => ctx.at(
                file,
                &s.id,
                format!(
                    "statement `{}` needs exactly one of `section` or `service`",
                    s.id.get_ref()
                ),
            ),
        }
        ctx.clauses(file, &s.clauses);
    }

    if !ctx.diagnostics.is_empty() {
        let mut d = ctx.diagnostics;
        d.sort_by_key(|d| d.location.as_ref().map(|l| (l.file, l.span.start)));
        return Err(d);
    }
    let tls_categories = category_infos
        .iter()
        .enumerate()
        .filter(|(_, c)| c.requires_tls)
        .map(|(i, _)| CategoryId::from_index(i))
        .collect();
    Ok(PolicyTables {
        header_clauses,
        minimum_age,
        tls_categories,
        categories: category_infos,
        category_index: categories.map,
        purposes: purpose_infos,
        purpose_index: purposes.map,
        accessors: accessor_infos,
        accessor_index: accessors.map,
        recipients: recipient_infos,
        recipient_index: recipients.map,
        services: service_infos,
        service_index: services.map,
        collections: collection_infos,
        collection_index: collections.map,
        staff,
        respond_days,
        contacts: contact_info(f),
    })
}

/// Most days a request may take to answer: a year.
pub(crate) const MAX_RESPOND_DAYS: u32 = 365;

/// `[rights]`: staff are declared accessors acting for nobody else; each kind of request
/// named, answered within 1 to [`MAX_RESPOND_DAYS`] days.
fn rights_table(
    ctx: &mut Ctx,
    file: FileId,
    r: &crate::model::Rights,
    accessors: &Names<AccessorId>,
    infos: &[AccessorInfo],
    recipients: &[RecipientInfo],
) -> (Vec<AccessorId>, [Option<u32>; 7]) {
    let mut staff = Vec::new();
    for s in &r.staff {
        let Some(id) = accessors.resolve(ctx, file, s) else {
            continue;
        };
        let Some(info) = infos.get(id.index()) else {
            continue;
        };
        let external = info
            .recipient
            .and_then(|x| recipients.get(x.index()))
            .is_some_and(|x| x.kind.is_external());
        if info.tenant_bound || external {
            ctx.at(
                file,
                s,
                format!(
                    "staff `{}` acts for a recipient outside the controller; staff are the controller's own accessors",
                    s.get_ref()
                ),
            );
        } else if staff.contains(&id) {
            ctx.at(
                file,
                s,
                format!("staff `{}` listed twice; list each once", s.get_ref()),
            );
        } else {
            staff.push(id);
        }
    }
    let mut days = [None; 7];
    for (kind, d) in &r.respond_days {
        let Some(k) = ctx.keyword(file, kind, "request kind", RequestKind::NAMES) else {
            continue;
        };
        let Some(k) = RequestKind::parse(k) else {
            continue;
        };
        let n = *d.get_ref();
        if n == 0 || n > MAX_RESPOND_DAYS {
            ctx.error(
                file,
                d.span(),
                format!(
                    "`{}` requests are answered within {n} days; give 1 to {MAX_RESPOND_DAYS} days",
                    k.as_str()
                ),
            );
            continue;
        }
        if let Some(slot) = days.get_mut(k as usize) {
            *slot = Some(n);
        }
    }
    (staff, days)
}

/// `[contacts]` and the `unsubscribe` right's channels, as the runtime reads them.
fn contact_info(f: &crate::model::PolicyFile) -> crate::ContactInfo {
    let c = f.contacts.as_ref();
    crate::ContactInfo {
        privacy_email: c.and_then(|c| c.privacy_email.as_ref().map(|e| e.get_ref().clone())),
        unsubscribe_email: c
            .and_then(|c| c.unsubscribe_email.as_ref().map(|e| e.get_ref().clone())),
        postal_address: c.map(|c| c.postal_address.clone()).unwrap_or_default(),
        unsubscribe_channels: f
            .right
            .iter()
            .filter(|r| r.id.get_ref() == "unsubscribe")
            .flat_map(|r| r.channels.iter().map(|c| c.get_ref().clone()))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic, reason = "tests")]
    use crate::{BUILTIN_WEBEX_2010, InstrumentKind, InstrumentKinds, Policy};

    const HEAD: &str = r#"
[policy]
id = "p"
version = "1"
effective = "2026-01-01"
title = "t"
controller = "c"

[[category]]
id = "contact.email"
name = "Email"

[[accessor]]
id = "staff"
name = "Staff"
purposes = ["legal"]
"#;

    fn compile(purposes: &str) -> Result<Policy, Vec<String>> {
        Policy::from_str("p.toml", &format!("{HEAD}{purposes}")).map_err(|d| d.lines())
    }

    /// Issue 12, item 4: `instruments` names known kinds, only on a purpose that requires a
    /// reference; each problem at its line and column, with the nearest kind.
    #[test]
    fn purpose_instruments_are_validated_with_their_location() {
        let errors = compile(
            r#"
[[purpose]]
id = "legal"
basis = "legal"
name = "Legal"
instruments = ["court_order", "subpena"]

[[purpose]]
id = "service"
basis = "service"
name = "Service"
instruments = ["court_order"]
"#,
        )
        .err()
        .unwrap();
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with(
                "p.toml:22:31: unknown instrument kind `subpena`; did you mean `subpoena`?"
            ),
            "{errors:?}"
        );
        assert!(
            errors[1].starts_with(
                "p.toml:28:16: purpose `service` lists `instruments` but requires no reference"
            ),
            "{errors:?}"
        );
        let e = compile(
            r#"
[[purpose]]
id = "legal"
basis = "legal"
name = "Legal"
instruments = []
"#,
        )
        .err()
        .unwrap();
        assert!(e[0].contains("empty `instruments`"), "{e:?}");
    }

    /// A purpose that requires a reference accepts the kinds it lists, or every kind; one
    /// that requires none accepts none. Staff (no tenant, no external recipient) may register
    /// the kinds of the purposes they pursue.
    #[test]
    fn purpose_instruments_compile_to_kinds_and_registrars() {
        let p = compile(
            r#"
[[purpose]]
id = "legal"
basis = "legal"
name = "Legal"
instruments = ["subpoena", "court_order"]

[[purpose]]
id = "legal.any"
parent = "legal"
basis = "legal"
name = "Any"

[[purpose]]
id = "plain"
basis = "service"
name = "Plain"
"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        let kinds = |name: &str| p.instrument_kinds(p.purpose_id(name).unwrap());
        let listed: InstrumentKinds = [InstrumentKind::Subpoena, InstrumentKind::CourtOrder]
            .into_iter()
            .collect();
        assert_eq!(kinds("legal"), listed);
        assert_eq!(kinds("legal.any"), InstrumentKinds::ALL);
        assert_eq!(kinds("plain"), InstrumentKinds::EMPTY);
        let staff = p.accessor_id("staff").unwrap();
        assert_eq!(p.registrable_instruments(staff), InstrumentKinds::ALL);
        let webex = Policy::builtin().unwrap_or_else(|d| panic!("{d}"));
        let legal = webex.registrable_instruments(webex.accessor_id("legal").unwrap());
        assert!(legal.contains(InstrumentKind::CourtOrder));
        assert!(!legal.contains(InstrumentKind::PurchaserAuthority));
        for outsider in ["authorities", "mailbox-purchaser", "marketing", "support"] {
            let a = webex.accessor_id(outsider).unwrap();
            assert!(webex.registrable_instruments(a).is_empty(), "{outsider}");
        }
        let c075 = webex.instrument_kinds(webex.purpose_id("mail.purchaser_access").unwrap());
        assert_eq!(
            c075.iter().collect::<Vec<_>>(),
            [InstrumentKind::PurchaserAuthority]
        );
    }

    #[test]
    fn a_transport_is_tls_or_any() {
        let bad = BUILTIN_WEBEX_2010.replacen("transport = \"tls\"", "transport = \"tsl\"", 1);
        let lines = Policy::from_str("p.toml", &bad)
            .err()
            .map(|d| d.lines())
            .unwrap_or_default();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines.iter().all(|l| l.ends_with(
                "unknown transport `tsl`; did you mean `tls`? expected one of tls, any"
            )),
            "{lines:?}"
        );
        let any = BUILTIN_WEBEX_2010.replace("transport = \"tls\"", "transport = \"any\"");
        let p = Policy::from_str("p.toml", &any).unwrap_or_else(|d| panic!("{d}"));
        assert!(p.tls_categories().is_empty());
        assert!(p.services().iter().all(|s| !s.requires_tls));
    }
}
