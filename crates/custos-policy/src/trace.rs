//! Clause traceability: which clause of the policy is kept by code, and how.
//!
//! `trace.toml` beside a policy maps every clause to one status: `enforced` (the policy
//! elements citing it and the tests that fail when its rule is removed), `planned` (the
//! capability that will enforce it, not built yet), or `notice-only` (why code cannot keep it;
//! it is rendered in the notice).

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::Policy;
use crate::checks::Check;
use crate::source::{Diagnostic, Diagnostics, Location, Sources};

/// Capabilities a planned clause may wait for.
pub const CAPABILITIES: &[&str] = &[
    "encrypted-storage",
    "transport-security",
    "consent-and-mailings",
    "rights-requests",
    "disclosures-and-reports",
    "service-practices",
    "policy-lifecycle",
];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceFile {
    #[serde(default)]
    clause: Vec<ClauseEntry>,
    #[serde(default)]
    deadline: Vec<DeadlineEntry>,
}

/// `[[deadline]]`: what one `[rights] respond_days` value rests on, where the policy itself
/// states no deadline (a law, a regulator's guidance).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadlineEntry {
    kind: Spanned<String>,
    days: Spanned<u32>,
    basis: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClauseEntry {
    id: Spanned<String>,
    status: Spanned<String>,
    #[serde(default)]
    tests: Vec<Spanned<String>>,
    capability: Option<Spanned<String>>,
    reason: Option<String>,
    note: Option<String>,
    kept: Option<String>,
    not_kept: Option<String>,
    #[serde(default)]
    check: Vec<Spanned<Check>>,
    #[serde(default)]
    accept: Vec<AcceptEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AcceptEntry {
    mutant: String,
    reason: String,
}

/// How a clause is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Kept by code: these tests fail when the rule is removed.
    Enforced {
        /// Names of the test functions that prove it.
        tests: Vec<String>,
    },
    /// To be kept by a capability not built yet.
    Planned {
        /// Which capability.
        capability: String,
    },
    /// Rendered in the notice; code cannot keep it.
    NoticeOnly {
        /// Why code cannot keep it.
        reason: String,
    },
}

impl Status {
    /// `enforced`, `planned` or `notice-only`.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Enforced { .. } => "enforced",
            Self::Planned { .. } => "planned",
            Self::NoticeOnly { .. } => "notice-only",
        }
    }
}

/// One clause's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClauseTrace {
    /// Clause id, e.g. `C036`.
    pub id: String,
    /// How it is kept.
    pub status: Status,
    /// The policy elements citing the clause, as `kind:id`.
    pub elements: Vec<String>,
    /// A remark for auditors.
    pub note: Option<String>,
    /// The part of the promise that is kept, in words.
    pub kept: Option<String>,
    /// The part that is not (yet) kept, and why.
    pub not_kept: Option<String>,
    /// The clause's checks ([`crate::checks`]), each with its `line:column` in the trace file.
    pub checks: Vec<Check>,
    /// Where each check is written, as `name:line:column`.
    pub check_at: Vec<String>,
    /// Mutants accepted as not weakening the clause: (mutant id, reason).
    pub accepted: Vec<(String, String)>,
}

/// What the days a kind of request is answered within rest on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    /// The request kind, e.g. `erase`.
    pub kind: String,
    /// The days, as `[rights] respond_days` gives them.
    pub days: u32,
    /// The law or reason the value rests on.
    pub basis: String,
}

/// The trace of a whole policy.
#[derive(Debug, Clone)]
pub struct Trace {
    /// Every clause, in id order.
    pub clauses: Vec<ClauseTrace>,
    /// Every `[rights] respond_days` value and what it rests on, in request-kind order.
    pub deadlines: Vec<Deadline>,
}

impl Trace {
    /// How many clauses have each status: (enforced, planned, notice-only).
    pub fn counts(&self) -> (usize, usize, usize) {
        let count = |l: &str| {
            self.clauses
                .iter()
                .filter(|c| c.status.label() == l)
                .count()
        };
        (count("enforced"), count("planned"), count("notice-only"))
    }

    /// Every test name the trace cites, with the clause citing it.
    pub fn tests(&self) -> impl Iterator<Item = (&str, &str)> {
        self.clauses.iter().flat_map(|c| match &c.status {
            Status::Enforced { tests } => {
                tests.iter().map(|t| (c.id.as_str(), t.as_str())).collect()
            }
            _ => Vec::new(),
        })
    }
}

/// Reads a trace file against its policy and checks it: every clause of the policy's range
/// appears once with a valid status; an enforced clause names tests and is cited by at least
/// one policy element; a notice-only clause is cited by an element, so the notice carries it.
pub fn load(policy: &Policy, name: &str, text: &str) -> Result<Trace, Diagnostics> {
    let mut sources = Sources::default();
    let file = sources.add(name, text);
    let fail = |sources: Sources, items| Err(Diagnostics { sources, items });
    let parsed: TraceFile = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let d = Diagnostic::at(
                Location {
                    file,
                    span: e.span().unwrap_or(0..0),
                },
                check_message(e.message().trim()).replace('\n', " "),
            );
            return fail(sources, vec![d]);
        }
    };
    let elements = policy.clause_elements();
    let expected = clause_ids(policy);
    let mut errors = Vec::new();
    let mut at = |s: std::ops::Range<usize>, m: String| {
        errors.push(Diagnostic::at(Location { file, span: s }, m))
    };
    let mut seen: BTreeMap<String, ClauseTrace> = BTreeMap::new();
    for e in parsed.clause {
        let id = e.id.get_ref().clone();
        if !expected.contains(&id) {
            at(
                e.id.span(),
                format!(
                    "unknown clause `{id}`; the policy's clauses run from `{}` to `{}`",
                    expected.first().map_or("", String::as_str),
                    expected.last().map_or("", String::as_str)
                ),
            );
            continue;
        }
        if seen.contains_key(&id) {
            at(
                e.id.span(),
                format!("clause `{id}` traced twice; keep one entry"),
            );
            continue;
        }
        let cited = elements.get(&id).cloned().unwrap_or_default();
        for a in &e.accept {
            if a.reason.trim().is_empty() {
                at(
                    e.id.span(),
                    format!(
                        "the acceptance of mutant `{}` gives no `reason`; say why it is not a weakening",
                        a.mutant
                    ),
                );
            }
        }
        let status = match e.status.get_ref().as_str() {
            "enforced" => {
                if e.tests.is_empty() && e.check.is_empty() {
                    at(
                        e.id.span(),
                        format!(
                            "enforced clause `{id}` names no `tests` and no `[[clause.check]]`; give the checks that fail when its rule is weakened"
                        ),
                    );
                }
                if e.kept.as_deref().is_none_or(|k| k.trim().is_empty()) {
                    at(
                        e.id.span(),
                        format!(
                            "enforced clause `{id}` says not which part of the promise is `kept`; say it (and what is `not_kept`, if any)"
                        ),
                    );
                }
                if cited.is_empty() {
                    at(
                        e.id.span(),
                        format!(
                            "enforced clause `{id}` is cited by no policy element; add `{id}` to the `clauses` of the elements that encode it"
                        ),
                    );
                }
                Status::Enforced {
                    tests: e.tests.iter().map(|t| t.get_ref().clone()).collect(),
                }
            }
            "planned" => match &e.capability {
                Some(c) if CAPABILITIES.contains(&c.get_ref().as_str()) => Status::Planned {
                    capability: c.get_ref().clone(),
                },
                Some(c) => {
                    at(
                        c.span(),
                        format!(
                            "unknown capability `{}`; expected one of {}",
                            c.get_ref(),
                            CAPABILITIES.join(", ")
                        ),
                    );
                    continue;
                }
                None => {
                    at(
                        e.id.span(),
                        format!(
                            "planned clause `{id}` names no `capability`; say which capability will enforce it: {}",
                            CAPABILITIES.join(", ")
                        ),
                    );
                    continue;
                }
            },
            "notice-only" => {
                if cited.is_empty() {
                    at(
                        e.id.span(),
                        format!(
                            "notice-only clause `{id}` is cited by no policy element, so the notice would not carry it; add a `[[statement]]` citing it"
                        ),
                    );
                }
                match &e.reason {
                    Some(r) if !r.trim().is_empty() => Status::NoticeOnly { reason: r.clone() },
                    _ => {
                        at(
                            e.id.span(),
                            format!(
                                "notice-only clause `{id}` gives no `reason`; say why code cannot keep it"
                            ),
                        );
                        continue;
                    }
                }
            }
            other => {
                at(
                    e.status.span(),
                    format!("unknown status `{other}`; expected enforced, planned or notice-only"),
                );
                continue;
            }
        };
        let names_some = !e.tests.is_empty() || !e.check.is_empty();
        if !matches!(status, Status::Enforced { .. }) && names_some {
            at(
                e.id.span(),
                format!(
                    "clause `{id}` is not enforced but names tests or checks; mark it enforced or drop them"
                ),
            );
        }
        let check_at = e
            .check
            .iter()
            .map(|c| {
                let (line, col) = sources.line_col(file, c.span().start);
                format!("{name}:{line}:{col}")
            })
            .collect();
        seen.insert(
            id.clone(),
            ClauseTrace {
                id,
                status,
                elements: cited,
                note: e.note,
                kept: e.kept,
                not_kept: e.not_kept,
                checks: e.check.into_iter().map(Spanned::into_inner).collect(),
                check_at,
                accepted: e.accept.into_iter().map(|a| (a.mutant, a.reason)).collect(),
            },
        );
    }
    let mut deadlines: Vec<Deadline> = Vec::new();
    for e in parsed.deadline {
        let name = e.kind.get_ref();
        let Some(kind) = crate::RequestKind::parse(name) else {
            at(
                e.kind.span(),
                format!(
                    "unknown request kind `{name}`; expected one of {}",
                    crate::RequestKind::NAMES.join(", ")
                ),
            );
            continue;
        };
        let days = *e.days.get_ref();
        match policy.respond_days(kind) {
            None => at(
                e.kind.span(),
                format!(
                    "the policy's `[rights] respond_days` gives `{name}` no deadline; drop this `[[deadline]]`"
                ),
            ),
            Some(d) if d != days => at(
                e.days.span(),
                format!(
                    "the policy answers `{name}` requests within {d} days, not {days}; make them agree"
                ),
            ),
            Some(_) if deadlines.iter().any(|x| x.kind == *name) => at(
                e.kind.span(),
                format!("`{name}` has two `[[deadline]]` entries; keep one"),
            ),
            Some(_) if e.basis.trim().is_empty() => at(
                e.kind.span(),
                format!("the deadline of `{name}` gives no `basis`; say what the value rests on"),
            ),
            Some(_) => deadlines.push(Deadline {
                kind: name.clone(),
                days,
                basis: e.basis,
            }),
        }
    }
    let unexplained: Vec<&str> = crate::RequestKind::ALL
        .into_iter()
        .filter(|k| policy.respond_days(*k).is_some())
        .map(crate::RequestKind::as_str)
        .filter(|k| !deadlines.iter().any(|d| d.kind == *k))
        .collect();
    if !unexplained.is_empty() {
        errors.push(Diagnostic::global(format!(
            "`[rights] respond_days` values the trace does not explain: {}; add a `[[deadline]]` with the `basis` of each",
            unexplained.join(", ")
        )));
    }
    deadlines.sort_by_key(|d| crate::RequestKind::parse(&d.kind));
    let missing: Vec<&str> = expected
        .iter()
        .filter(|c| !seen.contains_key(*c))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        errors.push(Diagnostic::global(format!(
            "clauses missing from the trace: {}; add a `[[clause]]` for each",
            missing.join(", ")
        )));
    }
    if errors.is_empty() {
        Ok(Trace {
            clauses: seen.into_values().collect(),
            deadlines,
        })
    } else {
        fail(sources, errors)
    }
}

/// toml's message for a check table of no key or several, made actionable; others unchanged.
fn check_message(m: &str) -> String {
    if m.starts_with("wanted exactly 1 element") {
        format!(
            "a `[[clause.check]]` holds exactly one key, the kind of check ({}); {}",
            crate::checks::KEYS.join(", "),
            m.trim_start_matches("wanted exactly 1 element, ")
        )
    } else {
        m.to_string()
    }
}

/// Every clause id in the policy's `clause_range`, in order.
pub fn clause_ids(policy: &Policy) -> Vec<String> {
    let Some(range) = &policy.header().clause_range else {
        return Vec::new();
    };
    let [lo, hi] = range.get_ref().as_slice() else {
        return Vec::new();
    };
    let digits = lo.chars().rev().take_while(char::is_ascii_digit).count();
    let prefix = lo.get(..lo.len() - digits).unwrap_or("");
    let (Some(a), Some(b)) = (
        lo.get(lo.len() - digits..)
            .and_then(|n| n.parse::<u32>().ok()),
        hi.get(hi.len() - digits..)
            .and_then(|n| n.parse::<u32>().ok()),
    ) else {
        return Vec::new();
    };
    (a..=b).map(|n| format!("{prefix}{n:0digits$}")).collect()
}
