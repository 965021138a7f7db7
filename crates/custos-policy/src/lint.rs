//! Warnings about a valid policy (issue 12, item 6): elements no decision or check reads.
//!
//! Two kinds, at most one warning per element, each at the element's id:
//!
//! - **notice-only**: an element of a kind no decision or check reads yet — `[[transfer]]`,
//!   `[[region]]`, `[[right]]` (the table in `docs/policy-language.md`, "What reads each
//!   key", says why). It is rendered in the notice, and that is all. (`[[cookie]]` is read:
//!   it makes the consent banner and its choices, `custos-vault`'s `vault/cookies.rs`.)
//! - **unused**: a declared element nothing references or uses — a category no role collects
//!   and no record collection holds; a purpose that neither it nor any purpose under it is
//!   pursued by an accessor or stated by a role; a recipient no accessor acts for and none may
//!   disclose to onwards; a record collection no role keeps; a retention rule no category or
//!   collection keeps data under; a region no recipient or transfer names.
//!
//! Pure: a function of the compiled policy and its spans.

use crate::ids::{CategorySet, DenseId as _, PurposeSet};
use crate::model::Str;
use crate::source::{Diagnostic, FileId, Location};
use crate::{Policy, PurposeId};

impl Policy {
    /// Every warning about the policy, in file and position order (see the module's
    /// documentation). A policy with none is one every element of which some decision or
    /// check reads, or that declares nothing a decision ignores.
    pub fn warnings(&self) -> Vec<Diagnostic> {
        let f = &self.file;
        let o = &self.origin;
        let first = self.sources.ids().next();
        let mut out: Vec<Diagnostic> = Vec::new();
        let mut warn = |files: &[FileId], i: usize, at: &Str, message: String| {
            if let Some(file) = files.get(i).copied().or(first) {
                out.push(Diagnostic::at(
                    Location {
                        file,
                        span: at.span(),
                    },
                    message,
                ));
            }
        };

        // What the decisions and checks can reach.
        let mut collected = CategorySet::EMPTY;
        let mut stated = PurposeSet::EMPTY;
        let mut kept = Vec::new();
        for s in self.services() {
            for r in &s.roles {
                collected = collected.union(r.collects).union(r.optional);
                stated = stated.union(r.allowed_purposes);
                kept.extend(r.records.iter().copied());
            }
        }
        for c in self.collections() {
            collected = collected.union(c.categories);
        }
        let pursued = self
            .accessors()
            .iter()
            .fold(PurposeSet::EMPTY, |acc, a| acc.union(a.allowed));
        let used_purposes = pursued.union(stated);

        for (i, c) in f.category.iter().enumerate() {
            let used = self
                .category_id(c.id.get_ref())
                .is_ok_and(|id| collected.contains(id));
            if !used {
                warn(
                    &o.category,
                    i,
                    &c.id,
                    format!(
                        "unused: category `{}` is collected by no role and held by no record collection; add it to a role's `collects` or `optional`, or remove it",
                        c.id.get_ref()
                    ),
                );
            }
        }
        for (i, p) in f.purpose.iter().enumerate() {
            let used = self
                .purpose_id(p.id.get_ref())
                .ok()
                .and_then(|id| self.purpose(id))
                .is_some_and(|x| x.descendants.intersects(&used_purposes));
            if !used {
                warn(
                    &o.purpose,
                    i,
                    &p.id,
                    format!(
                        "unused: no accessor may pursue purpose `{}` and no role collects for it, nor for a purpose under it; give it to an accessor or a role, or remove it",
                        p.id.get_ref()
                    ),
                );
            }
        }
        for (i, r) in f.recipient.iter().enumerate() {
            let Ok(id) = self.recipient_id(r.id.get_ref()) else {
                continue;
            };
            let acted_for = self.accessors().iter().any(|a| a.recipient == Some(id));
            // An onward disclosure needs an accessor that may pursue a purpose the recipient
            // receives for.
            let receives: PurposeSet = self
                .recipient(id)
                .map(|x| {
                    x.allows
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| a.is_some())
                        .map(|(p, _)| PurposeId::from_index(p))
                        .collect()
                })
                .unwrap_or_default();
            if !acted_for && !receives.intersects(&pursued) {
                warn(
                    &o.recipient,
                    i,
                    &r.id,
                    format!(
                        "unused: no accessor acts for recipient `{}` (`recipient = \"{}\"`), and none may pursue a purpose it receives for, so nothing is ever disclosed to it",
                        r.id.get_ref(),
                        r.id.get_ref()
                    ),
                );
            }
        }
        for (i, c) in f.collection.iter().enumerate() {
            let used = self
                .collection_id(c.id.get_ref())
                .is_ok_and(|id| kept.contains(&id));
            if !used {
                warn(
                    &o.collection,
                    i,
                    &c.id,
                    format!(
                        "unused: no role keeps record collection `{}`; add it to a role's `records`, or remove it",
                        c.id.get_ref()
                    ),
                );
            }
        }
        for (i, r) in f.retention.iter().enumerate() {
            let name = r.id.get_ref();
            let named = f
                .category
                .iter()
                .filter_map(|c| c.retention.as_ref())
                .chain(f.collection.iter().filter_map(|c| c.retention.as_ref()))
                .any(|x| x.get_ref() == name);
            if !named {
                warn(
                    &o.retention,
                    i,
                    &r.id,
                    format!(
                        "unused: no category or record collection is kept under retention `{name}`; name it in a `retention` key, or remove it"
                    ),
                );
            }
        }

        // Kinds no decision reads yet: rendered in the notice only.
        const NOTICE_ONLY: &str =
            "notice-only: no decision reads it yet; it is rendered in the notice";
        for (i, r) in f.region.iter().enumerate() {
            let name = r.id.get_ref();
            let named = f
                .recipient
                .iter()
                .filter_map(|x| x.region.as_ref())
                .chain(f.transfer.iter().map(|t| &t.to))
                .any(|x| x.get_ref() == name);
            let message = if named {
                format!("region `{name}` is {NOTICE_ONLY}")
            } else {
                format!(
                    "unused: no recipient or transfer names region `{name}`; name it, or remove it"
                )
            };
            warn(&o.region, i, &r.id, message);
        }
        for (i, t) in f.transfer.iter().enumerate() {
            warn(
                &o.transfer,
                i,
                &t.to,
                format!("transfer to `{}` is {NOTICE_ONLY}", t.to.get_ref()),
            );
        }
        // The `unsubscribe` right's channels are read: the mailings' footer and inbound mail
        // follow them (`Policy::contacts`).
        for (i, r) in f
            .right
            .iter()
            .enumerate()
            .filter(|(_, r)| r.id.get_ref() != "unsubscribe")
        {
            warn(
                &o.right,
                i,
                &r.id,
                format!("right `{}` is {NOTICE_ONLY}", r.id.get_ref()),
            );
        }

        out.sort_by_key(|d| d.location.as_ref().map(|l| (l.file, l.span.start)));
        out
    }

    /// [`Policy::warnings`] as `path:line:column: warning: message` lines.
    pub fn warning_lines(&self) -> Vec<String> {
        self.warnings()
            .iter()
            .map(|d| match &d.location {
                Some(loc) => {
                    let (line, col) = self.sources.line_col(loc.file, loc.span.start);
                    format!(
                        "{}:{line}:{col}: warning: {}",
                        self.sources.path(loc.file),
                        d.message
                    )
                }
                None => format!("warning: {}", d.message),
            })
            .collect()
    }
}
