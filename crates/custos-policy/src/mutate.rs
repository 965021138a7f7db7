//! The mutation gate: weakens a policy one rule at a time, and runs the clause checks of
//! `trace.toml` ([`crate::checks`]) against each weakened copy. A clause is kept by
//! construction only if every weakening of the elements citing it makes one of its checks fail.
//!
//! Weakenings are derived from the elements citing a clause (their `clauses`):
//!
//! | element | weakenings |
//! | --- | --- |
//! | `[policy]` | the minimum age lowered by one, or removed |
//! | category | `transient` turned off; `transport = "tls"` turned to `any` |
//! | purpose | the basis relaxed (consent → opt_out → service, legal → service); `requires_reference` or `requires_recipient` dropped; an instrument kind added; a recipient allowed every category for it |
//! | accessor | a purpose added; a service added to those it collects for; its recipient dropped; a limit dropped |
//! | accessor limit | a category added; the limit dropped |
//! | role | a category added to what it collects; a purpose added to those it may state; a record collection added |
//! | service | `transport = "tls"` turned to `any` |
//! | record collection | a field of another category added |
//! | recipient | a tenant kind (customer, employer, purchaser) turned into a processor; a category added to an allowance |
//! | recipient allowance | a category added |
//! | retention | a period lengthened to "while the account is open" |
//!
//! Each mutant is compiled; one the policy language refuses is `invalid` (the language keeps
//! that rule itself), one that compiles to the same tables as the original is `equivalent`,
//! one listed in the clause's `[[clause.accept]]` with a reason is `accepted`; any other must
//! be `killed` by a failing check, or it `survived` and the gate fails.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;

use toml::Spanned;

use crate::Policy;
use crate::load::Merged;
use crate::model::Str;
use crate::trace::Trace;

/// A change to a policy's merged files.
type Edit = Box<dyn Fn(&mut Merged) + Send + Sync>;

/// One weakening of a policy: a stable id (`role:website/customer collects +contact.phone`)
/// and the edit.
pub struct Mutant {
    /// Stable, human-readable id; `[[clause.accept]]` names it.
    pub id: String,
    edit: Edit,
}

impl std::fmt::Debug for Mutant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mutant").field("id", &self.id).finish()
    }
}

/// What became of one mutant of one clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A check failed: the check's label and what the mutant did.
    Killed(String),
    /// The policy language refuses the mutant.
    Invalid(String),
    /// It compiles to the same tables as the original.
    Equivalent,
    /// Listed in `[[clause.accept]]` as not a weakening, with this reason.
    Accepted(String),
    /// Nothing caught it.
    Survived,
}

/// One clause's result.
#[derive(Debug, Clone, Default)]
pub struct ClauseReport {
    /// Clause id.
    pub clause: String,
    /// Checks the trace gives it.
    pub checks: usize,
    /// Each mutant and its outcome, in id order.
    pub mutants: Vec<(String, Outcome)>,
    /// Checks that fail against the unchanged policy: the trace is wrong, or the policy is.
    pub failing_checks: Vec<String>,
    /// `[[clause.accept]]` entries naming no mutant of the clause (stale).
    pub stale_accepts: Vec<String>,
}

impl ClauseReport {
    /// How many mutants had an outcome of this kind.
    pub fn count(&self, kind: fn(&Outcome) -> bool) -> usize {
        self.mutants.iter().filter(|(_, o)| kind(o)).count()
    }

    /// Mutants no check caught.
    pub fn survivors(&self) -> impl Iterator<Item = &str> {
        self.mutants
            .iter()
            .filter(|(_, o)| *o == Outcome::Survived)
            .map(|(m, _)| m.as_str())
    }

    /// Whether the clause passes the gate: its checks hold on the policy, no mutant survived,
    /// no acceptance is stale.
    pub fn passed(&self) -> bool {
        self.failing_checks.is_empty()
            && self.stale_accepts.is_empty()
            && self.survivors().next().is_none()
    }
}

fn cites(clauses: &[Str], clause: &str) -> bool {
    clauses.iter().any(|c| c.get_ref() == clause)
}

fn s(span: &Range<usize>, v: &str) -> Str {
    Spanned::new(span.clone(), v.to_string())
}

/// Every weakening of the elements citing `clause`.
pub fn mutants(policy: &Policy, clause: &str) -> Vec<Mutant> {
    match policy.merged() {
        Ok(m) => mutants_of(policy, &m, clause),
        Err(_) => Vec::new(),
    }
}

/// [`mutants`] of the policy's files as already read (`m`), so a gate reads them once.
fn mutants_of(policy: &Policy, m: &Merged, clause: &str) -> Vec<Mutant> {
    let f = &m.file;
    let categories: Vec<String> = f.category.iter().map(|c| c.id.get_ref().clone()).collect();
    let purposes: Vec<String> = f.purpose.iter().map(|p| p.id.get_ref().clone()).collect();
    let mut out: BTreeMap<String, Edit> = BTreeMap::new();
    let mut add = |id: String, edit: Edit| {
        out.entry(id).or_insert(edit);
    };

    // [policy]
    if let Some((_, h)) = &m.header {
        if cites(&h.clauses, clause) {
            if let Some(age) = &h.minimum_age {
                let a = *age.get_ref();
                let span = age.span();
                add(
                    format!("policy: minimum_age {a} -> {}", a.saturating_sub(1)),
                    Box::new(move |m| {
                        if let Some((_, h)) = &mut m.header {
                            h.minimum_age = Some(Spanned::new(span.clone(), a.saturating_sub(1)));
                        }
                    }),
                );
                add(
                    "policy: minimum_age removed".into(),
                    Box::new(|m| {
                        if let Some((_, h)) = &mut m.header {
                            h.minimum_age = None;
                        }
                    }),
                );
            }
        }
    }

    for (i, c) in f.category.iter().enumerate() {
        if cites(&c.clauses, clause) && c.transient {
            add(
                format!("category:{} transient -> false", c.id.get_ref()),
                Box::new(move |m| {
                    if let Some(x) = m.file.category.get_mut(i) {
                        x.transient = false;
                    }
                }),
            );
        }
        if cites(&c.clauses, clause) && c.transport.as_ref().is_some_and(|t| t.get_ref() == "tls") {
            let span = c.id.span();
            add(
                format!("category:{} transport tls -> any", c.id.get_ref()),
                Box::new(move |m| {
                    if let Some(x) = m.file.category.get_mut(i) {
                        x.transport = Some(s(&span, "any"));
                    }
                }),
            );
        }
    }
    for (i, x) in f.service.iter().enumerate() {
        if cites(&x.clauses, clause) && x.transport.as_ref().is_some_and(|t| t.get_ref() == "tls") {
            let span = x.id.span();
            add(
                format!("service:{} transport tls -> any", x.id.get_ref()),
                Box::new(move |m| {
                    if let Some(x) = m.file.service.get_mut(i) {
                        x.transport = Some(s(&span, "any"));
                    }
                }),
            );
        }
    }

    for (i, p) in f.purpose.iter().enumerate() {
        if !cites(&p.clauses, clause) {
            continue;
        }
        let id = p.id.get_ref().clone();
        let span = p.id.span();
        let basis = p.basis.as_ref().map(|b| b.get_ref().as_str()).unwrap_or("");
        let relaxed: &[&str] = match basis {
            "consent" => &["opt_out", "service"],
            "opt_out" => &["service"],
            "legal" => &["service"],
            _ => &[],
        };
        for to in relaxed {
            let (to, span) = (to.to_string(), span.clone());
            add(
                format!("purpose:{id} basis {basis} -> {to}"),
                Box::new(move |m| {
                    if let Some(x) = m.file.purpose.get_mut(i) {
                        x.basis = Some(s(&span, &to));
                    }
                }),
            );
        }
        if p.requires_reference {
            add(
                format!("purpose:{id} requires_reference -> false"),
                Box::new(move |m| {
                    if let Some(x) = m.file.purpose.get_mut(i) {
                        x.requires_reference = false;
                    }
                }),
            );
        }
        if let Some(kinds) = &p.instruments {
            let has: BTreeSet<&String> = kinds.iter().map(|k| k.get_ref()).collect();
            for k in crate::InstrumentKind::NAMES
                .iter()
                .filter(|k| !has.contains(&k.to_string()))
            {
                let (k, span) = (k.to_string(), span.clone());
                add(
                    format!("purpose:{id} instruments +{k}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.purpose.get_mut(i) {
                            if let Some(list) = &mut x.instruments {
                                list.push(s(&span, &k));
                            }
                        }
                    }),
                );
            }
        }
        if p.requires_recipient {
            add(
                format!("purpose:{id} requires_recipient -> false"),
                Box::new(move |m| {
                    if let Some(x) = m.file.purpose.get_mut(i) {
                        x.requires_recipient = false;
                    }
                }),
            );
        }
        for (r, rec) in f.recipient.iter().enumerate() {
            if rec.allow.iter().any(|a| a.purpose.get_ref() == &id) {
                continue;
            }
            let (id, span, all) = (id.clone(), span.clone(), categories.clone());
            add(
                format!(
                    "purpose:{id} recipient {} allowed every category",
                    rec.id.get_ref()
                ),
                Box::new(move |m| {
                    if let Some(x) = m.file.recipient.get_mut(r) {
                        x.allow.push(crate::model::Limit {
                            purpose: s(&span, &id),
                            categories: all.iter().map(|c| s(&span, c)).collect(),
                            clauses: Vec::new(),
                        });
                    }
                }),
            );
        }
    }

    let pursued = |a: &str| -> BTreeSet<String> {
        policy
            .accessor_id(a)
            .ok()
            .and_then(|id| policy.accessor(id))
            .map(|a| {
                policy
                    .purpose_names(a.allowed)
                    .into_iter()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    for (i, a) in f.accessor.iter().enumerate() {
        let whole = cites(&a.clauses, clause);
        let id = a.id.get_ref().clone();
        let span = a.id.span();
        if whole {
            let has = pursued(&id);
            for q in purposes.iter().filter(|q| !has.contains(*q)) {
                let (q, span) = (q.clone(), span.clone());
                add(
                    format!("accessor:{id} pursues +{q}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.accessor.get_mut(i) {
                            x.purposes.push(s(&span, &q));
                        }
                    }),
                );
            }
            let own: Vec<String> = match &a.services {
                Some(list) => list.iter().map(|x| x.get_ref().clone()).collect(),
                None if f.service.iter().any(|x| x.id.get_ref() == &id) => vec![id.clone()],
                None => Vec::new(),
            };
            for svc in f.service.iter().map(|x| x.id.get_ref()) {
                if own.contains(svc) {
                    continue;
                }
                let mut list = own.clone();
                list.push(svc.clone());
                let span = span.clone();
                add(
                    format!("accessor:{id} collects for +{svc}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.accessor.get_mut(i) {
                            x.services = Some(list.iter().map(|x| s(&span, x)).collect());
                        }
                    }),
                );
            }
            if a.recipient.is_some() {
                add(
                    format!("accessor:{id} recipient dropped"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.accessor.get_mut(i) {
                            x.recipient = None;
                        }
                    }),
                );
            }
        }
        for (l, limit) in a.limit.iter().enumerate() {
            if !whole && !cites(&limit.clauses, clause) {
                continue;
            }
            let purpose = limit.purpose.get_ref().clone();
            add(
                format!("accessor:{id} limit for {purpose} dropped"),
                Box::new(move |m| {
                    if let Some(x) = m.file.accessor.get_mut(i) {
                        if l < x.limit.len() {
                            x.limit.remove(l);
                        }
                    }
                }),
            );
            let has: BTreeSet<&String> = limit.categories.iter().map(|c| c.get_ref()).collect();
            for k in categories.iter().filter(|k| !has.contains(k)) {
                let (k, span) = (k.clone(), span.clone());
                add(
                    format!("accessor:{id} limit for {purpose} +{k}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.accessor.get_mut(i).and_then(|a| a.limit.get_mut(l))
                        {
                            x.categories.push(s(&span, &k));
                        }
                    }),
                );
            }
        }
    }

    for (si, svc) in f.service.iter().enumerate() {
        for (ri, role) in svc.role.iter().enumerate() {
            if !cites(&role.clauses, clause) {
                continue;
            }
            let name = format!("{}/{}", svc.id.get_ref(), role.id.get_ref());
            let span = role.id.span();
            let has: BTreeSet<&String> = role
                .collects
                .iter()
                .chain(&role.optional)
                .map(|c| c.get_ref())
                .collect();
            for k in categories.iter().filter(|k| !has.contains(k)) {
                let (k, span) = (k.clone(), span.clone());
                add(
                    format!("role:{name} collects +{k}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.service.get_mut(si).and_then(|x| x.role.get_mut(ri))
                        {
                            x.collects.push(s(&span, &k));
                        }
                    }),
                );
            }
            let allowed: BTreeSet<String> = policy
                .service_id(svc.id.get_ref())
                .ok()
                .and_then(|id| policy.service(id))
                .and_then(|x| x.roles.iter().find(|r| r.id == *role.id.get_ref()))
                .map(|r| {
                    policy
                        .purpose_names(r.allowed_purposes)
                        .into_iter()
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            for q in purposes.iter().filter(|q| !allowed.contains(*q)) {
                let (q, span) = (q.clone(), span.clone());
                add(
                    format!("role:{name} states +{q}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.service.get_mut(si).and_then(|x| x.role.get_mut(ri))
                        {
                            x.purposes.push(s(&span, &q));
                        }
                    }),
                );
            }
            let kept: BTreeSet<&String> = role.records.iter().map(|c| c.get_ref()).collect();
            for col in f.collection.iter().map(|c| c.id.get_ref()) {
                if kept.contains(col) {
                    continue;
                }
                let (col, span) = (col.clone(), span.clone());
                add(
                    format!("role:{name} keeps +{col}"),
                    Box::new(move |m| {
                        if let Some(x) = m.file.service.get_mut(si).and_then(|x| x.role.get_mut(ri))
                        {
                            x.records.push(s(&span, &col));
                        }
                    }),
                );
            }
        }
    }

    for (i, col) in f.collection.iter().enumerate() {
        if !cites(&col.clauses, clause) {
            continue;
        }
        let id = col.id.get_ref().clone();
        let span = col.id.span();
        let has: BTreeSet<&String> = col.field.iter().map(|x| x.category.get_ref()).collect();
        for k in categories.iter().filter(|k| !has.contains(k)) {
            let (k, span) = (k.clone(), span.clone());
            add(
                format!("collection:{id} field +{k}"),
                Box::new(move |m| {
                    if let Some(x) = m.file.collection.get_mut(i) {
                        x.field.push(crate::model::Field {
                            name: s(&span, "mutant_field"),
                            category: s(&span, &k),
                            optional: true,
                        });
                    }
                }),
            );
        }
    }

    for (i, r) in f.recipient.iter().enumerate() {
        let whole = cites(&r.clauses, clause);
        let id = r.id.get_ref().clone();
        let span = r.id.span();
        if whole {
            if let Some(kind) = &r.kind {
                let k = kind.get_ref().clone();
                if matches!(k.as_str(), "customer" | "employer" | "purchaser") {
                    let span = span.clone();
                    add(
                        format!("recipient:{id} kind {k} -> processor"),
                        Box::new(move |m| {
                            if let Some(x) = m.file.recipient.get_mut(i) {
                                x.kind = Some(s(&span, "processor"));
                            }
                        }),
                    );
                }
            }
        }
        for (l, allow) in r.allow.iter().enumerate() {
            if !whole && !cites(&allow.clauses, clause) {
                continue;
            }
            let purpose = allow.purpose.get_ref().clone();
            let has: BTreeSet<&String> = allow.categories.iter().map(|c| c.get_ref()).collect();
            for k in categories.iter().filter(|k| !has.contains(k)) {
                let (k, span) = (k.clone(), span.clone());
                add(
                    format!("recipient:{id} allow for {purpose} +{k}"),
                    Box::new(move |m| {
                        if let Some(x) =
                            m.file.recipient.get_mut(i).and_then(|r| r.allow.get_mut(l))
                        {
                            x.categories.push(s(&span, &k));
                        }
                    }),
                );
            }
        }
    }

    for (i, r) in f.retention.iter().enumerate() {
        if !cites(&r.clauses, clause) {
            continue;
        }
        let period = r.period.get_ref().clone();
        if period != "account" {
            let span = r.period.span();
            add(
                format!("retention:{} period {period} -> account", r.id.get_ref()),
                Box::new(move |m| {
                    if let Some(x) = m.file.retention.get_mut(i) {
                        x.period = s(&span, "account");
                    }
                }),
            );
        }
    }

    for (i, r) in f.right.iter().enumerate() {
        if !cites(&r.clauses, clause) {
            continue;
        }
        for (ci, ch) in r.channels.iter().enumerate() {
            add(
                format!("right:{} channel {} dropped", r.id.get_ref(), ch.get_ref()),
                Box::new(move |m| {
                    if let Some(x) = m.file.right.get_mut(i) {
                        if ci < x.channels.len() {
                            x.channels.remove(ci);
                        }
                    }
                }),
            );
        }
    }

    if let Some(c) = &f.contacts {
        if cites(&c.clauses, clause) {
            if c.privacy_email.is_some() {
                add(
                    "contacts: privacy_email removed".into(),
                    Box::new(|m| {
                        if let Some(c) = &mut m.file.contacts {
                            c.privacy_email = None;
                        }
                    }),
                );
            }
            if c.unsubscribe_email.is_some() {
                add(
                    "contacts: unsubscribe_email removed".into(),
                    Box::new(|m| {
                        if let Some(c) = &mut m.file.contacts {
                            c.unsubscribe_email = None;
                        }
                    }),
                );
            }
            if !c.postal_address.is_empty() {
                add(
                    "contacts: postal_address removed".into(),
                    Box::new(|m| {
                        if let Some(c) = &mut m.file.contacts {
                            c.postal_address.clear();
                        }
                    }),
                );
            }
        }
    }

    out.into_iter()
        .map(|(id, edit)| Mutant { id, edit })
        .collect()
}

/// Runs the gate over the clauses of a trace (or one clause), on as many threads as the
/// machine has cores. Each distinct mutant is compiled once and run against the checks of
/// every clause it weakens.
pub fn gate(policy: &Policy, trace: &Trace, only: Option<&str>) -> Vec<ClauseReport> {
    let clauses: Vec<&crate::trace::ClauseTrace> = trace
        .clauses
        .iter()
        .filter(|c| only.is_none_or(|o| o == c.id))
        .collect();
    let mut reports: Vec<ClauseReport> = clauses
        .iter()
        .map(|c| ClauseReport {
            clause: c.id.clone(),
            checks: c.checks.len(),
            failing_checks: c
                .checks
                .iter()
                .filter_map(|k| k.run(policy).err().map(|e| format!("{}: {e}", k.label())))
                .collect(),
            ..ClauseReport::default()
        })
        .collect();
    let Ok(base) = policy.merged() else {
        return reports;
    };
    // Mutant id -> (edit, the clauses it weakens).
    let mut work: BTreeMap<String, (Edit, Vec<usize>)> = BTreeMap::new();
    for (ci, c) in clauses.iter().enumerate() {
        for m in mutants_of(policy, &base, &c.id) {
            work.entry(m.id)
                .or_insert_with(|| (m.edit, Vec::new()))
                .1
                .push(ci);
        }
    }
    let work: Vec<(String, Edit, Vec<usize>)> =
        work.into_iter().map(|(id, (e, c))| (id, e, c)).collect();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = work.len().div_ceil(threads.max(1)).max(1);
    let results: Vec<(usize, String, Outcome)> = std::thread::scope(|scope| {
        let handles: Vec<_> = work
            .chunks(chunk)
            .map(|part| {
                let base = &base;
                let clauses = &clauses;
                scope.spawn(move || {
                    let mut out = Vec::new();
                    for (id, edit, cs) in part {
                        let mut m = base.clone();
                        edit(&mut m);
                        let compiled = policy.recompiled(m);
                        for &ci in cs {
                            let Some(c) = clauses.get(ci) else { continue };
                            let outcome = match &compiled {
                                Err(e) => Outcome::Invalid(e.clone()),
                                Ok(p) if p.same_tables(policy) => Outcome::Equivalent,
                                Ok(p) => match c.checks.iter().find_map(|k| {
                                    k.run(p).err().map(|e| format!("{}: {e}", k.label()))
                                }) {
                                    Some(why) => Outcome::Killed(why),
                                    None => match c.accepted.iter().find(|(m, _)| m == id) {
                                        Some((_, reason)) => Outcome::Accepted(reason.clone()),
                                        None => Outcome::Survived,
                                    },
                                },
                            };
                            out.push((ci, id.clone(), outcome));
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    for (ci, id, outcome) in results {
        if let Some(r) = reports.get_mut(ci) {
            r.mutants.push((id, outcome));
        }
    }
    for (c, r) in clauses.iter().zip(reports.iter_mut()) {
        r.mutants.sort_by(|a, b| a.0.cmp(&b.0));
        r.stale_accepts = c
            .accepted
            .iter()
            .filter(|(m, _)| !r.mutants.iter().any(|(id, _)| id == m))
            .map(|(m, _)| m.clone())
            .collect();
    }
    reports
}
