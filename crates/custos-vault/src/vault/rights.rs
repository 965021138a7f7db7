//! A person's rights acts (issue 13, item 5): correction (C029, C030), deactivation (C030)
//! and erasure, asked for by the person signed in or by the operator acting on a request.
//! Export is in `export.rs`.
//!
//! **Who may act on whom:** a [`Requester::Person`] reaches only the subjects of their own
//! session; the operator reaches any. A refused act is ledgered (effect `deny`, the reason)
//! and answered as a subject never held, so a session learns nothing of other people.
//!
//! **Correction** replaces values the vault already holds for the subject — a category it
//! does not hold is refused (`category_not_held`), naming the field — and keeps what the
//! value was collected for (purposes, notice, service, role); the new value is sealed under
//! the subject's data key and overwrites the old ciphertext (the old value is nowhere in
//! plaintext; identifier categories are re-indexed). The `correct` entry, with the category
//! ids and never a value, is durable before the values are stored.

use std::collections::BTreeMap;

use custos_policy::RequestKind;

use super::{OPERATOR, PERSON, Person, SubjectId, Vault, declared_or};
use crate::crypto::Entropy;
use crate::error::{Error, Result};
use crate::store::{Age, RequestRow, Status, SubjectRow, ValueRow, now_ms};

/// The ledger action of a correction.
pub const CORRECT: &str = "correct";
/// Bytes of a corrected value at most (as of a collected one).
pub const MAX_CORRECTED_BYTES: usize = 8 * 1024;

/// Who asks for a person's rights act (export, correction, erasure, deactivation).
#[derive(Debug, Clone, Copy)]
pub enum Requester<'a> {
    /// The person, signed in (a session [`Vault::authenticate_person`] opened): the
    /// subjects of their session, and nothing else.
    Person(&'a Person),
    /// A staff accessor of the policy (`[rights] staff`), acting for no tenant, completing a
    /// request it verified (`vault/requests.rs`).
    Staff(&'a str),
    /// The operator at the console (the CLI), acting on a request staff verified.
    Operator,
}

impl<'a> Requester<'a> {
    /// The ledger's actor.
    pub fn actor(&self) -> &'a str {
        match self {
            Self::Person(_) => PERSON,
            Self::Staff(accessor) => accessor,
            Self::Operator => OPERATOR,
        }
    }
}

impl Vault {
    /// The subject `by` may act on, still held; anything else is ledgered as refused
    /// (`action`) and answered [`Error::SubjectNotFound`].
    pub(crate) fn requested_subject(
        &self,
        by: Requester<'_>,
        action: &str,
        subject: &SubjectId,
    ) -> Result<SubjectRow> {
        let row = self.store.subject(&subject.0)?;
        let reaches = match by {
            Requester::Person(person) => person.reaches(subject),
            Requester::Staff(accessor) => self
                .policy
                .accessor_id(accessor)
                .is_ok_and(|id| self.policy.is_staff(id)),
            Requester::Operator => true,
        };
        let refusal = match &row {
            _ if !reaches => Some("not_own_subject"),
            None => Some("subject_not_found"),
            Some(r) if r.status == Status::Erased => Some("subject_erased"),
            Some(r) if r.age == Age::UnderMinimum => Some("subject_under_minimum_age"),
            Some(_) => None,
        };
        match (refusal, row) {
            (None, Some(row)) => Ok(row),
            (reason, _) => {
                let mut d = self.draft(by.actor(), action, subject.as_str());
                d.effect = "deny".into();
                d.reasons = reason.unwrap_or("subject_not_found").into();
                self.record(d)?;
                Err(Error::SubjectNotFound)
            }
        }
    }

    /// Corrects values held about `subject` (see the module's documentation). `data` maps
    /// category ids to their corrected values, at least one.
    pub fn correct(
        &self,
        by: Requester<'_>,
        subject: &SubjectId,
        data: &BTreeMap<String, String>,
    ) -> Result<()> {
        self.requested_subject(by, CORRECT, subject)?;
        if data.is_empty() {
            return Err(Error::InvalidField {
                code: "missing_field",
                field: "data".into(),
                message: "give at least one category and its corrected value".into(),
            });
        }
        let held: BTreeMap<String, ValueRow> = self
            .store
            .values(&subject.0)?
            .into_iter()
            .map(|v| (v.category.clone(), v))
            .collect();
        for (category, value) in data {
            let field = format!("data.{category}");
            if !held.contains_key(category) {
                let mut d = self.draft(by.actor(), CORRECT, subject.as_str());
                d.effect = "deny".into();
                d.reasons = "category_not_held".into();
                d.categories =
                    declared_or(self.policy.category_id(category).is_ok(), category).into();
                self.record(d)?;
                return Err(Error::InvalidField {
                    code: "category_not_held",
                    field,
                    message: "the vault holds no value of this category for this person; \
                              correct a category it holds (GET /v1/me lists them)"
                        .into(),
                });
            }
            if value.len() > MAX_CORRECTED_BYTES || value.trim().is_empty() {
                return Err(Error::InvalidField {
                    code: super::INVALID_VALUE,
                    field,
                    message: format!(
                        "a corrected value holds 1 to {MAX_CORRECTED_BYTES} bytes, not only spaces"
                    ),
                });
            }
        }
        let dek = self.data_key(subject)?;
        let mut rng = Entropy::new();
        let now = now_ms();
        let mut rows = Vec::new();
        let mut index = Vec::new();
        for (category, value) in data {
            let Some(old) = held.get(category) else {
                continue;
            };
            if self
                .policy
                .category_id(category)
                .ok()
                .and_then(|c| self.policy.category(c))
                .is_some_and(|c| c.identifier)
            {
                index.push((category.clone(), self.index.term(category, value)?));
            }
            rows.push(ValueRow {
                ciphertext: dek.seal_value(&mut rng, &subject.0, category, value.as_bytes())?,
                time_ms: now,
                ..old.clone()
            });
        }
        let mut d = self.draft(by.actor(), CORRECT, subject.as_str());
        d.categories = data.keys().cloned().collect::<Vec<_>>().join(",");
        d.effect = "done".into();
        let request = self.online_request(by, RequestKind::Rectify, subject)?;
        d.reasons = with_request("rectification", request.as_ref());
        // INVARIANT: audit before data.
        self.record(d)?;
        if let Err(e) = self.store.put_values(&rows, &index) {
            let mut d = self.draft(by.actor(), CORRECT, subject.as_str());
            d.effect = "failed".into();
            d.reasons = e.code().into();
            self.record(d)?;
            return Err(e);
        }
        request.map_or(Ok(()), |r| self.store.put_request(&r))
    }

    /// A person's own act is also their request, made online and completed at once: its
    /// row, for `by` a person (`None` for staff and the operator).
    pub(crate) fn online_request(
        &self,
        by: Requester<'_>,
        kind: RequestKind,
        subject: &SubjectId,
    ) -> Result<Option<RequestRow>> {
        match by {
            Requester::Person(_) => self.online_request_row(kind, subject).map(Some),
            Requester::Staff(_) | Requester::Operator => Ok(None),
        }
    }

    /// Erases `subject` for `by` (crypto-shredding, then the purge; see [`Vault::erase`]).
    pub fn erase_for(&self, by: Requester<'_>, subject: &SubjectId) -> Result<()> {
        let row = self.requested_subject(by, "erase", subject)?;
        let reason = match by {
            Requester::Person(_) => "erasure_requested_by_person",
            Requester::Staff(_) | Requester::Operator => "erasure_requested",
        };
        let request = self.online_request(by, RequestKind::Erase, subject)?;
        self.erase_as(
            by.actor(),
            subject,
            row.age,
            &with_request(reason, request.as_ref()),
        )?;
        request.map_or(Ok(()), |r| self.store.put_request(&r))
    }

    /// Deactivates `subject`'s account for `by` (C030): only legal and contractual purposes
    /// remain.
    pub fn deactivate_for(&self, by: Requester<'_>, subject: &SubjectId) -> Result<()> {
        self.requested_subject(by, "deactivate", subject)?;
        self.store.set_status(&subject.0, Status::Deactivated)?;
        let mut d = self.draft(by.actor(), "deactivate", subject.as_str());
        d.effect = "done".into();
        let request = self.online_request(by, RequestKind::Deactivate, subject)?;
        d.reasons = with_request("deactivation_requested", request.as_ref());
        self.record(d)?;
        request.map_or(Ok(()), |r| self.store.put_request(&r))
    }
}

/// An act's reasons, and the tags of the person's request it answers, if any.
pub(crate) fn with_request(reasons: &str, request: Option<&RequestRow>) -> String {
    match request {
        Some(r) => format!("{reasons},{}", super::requests::tags(r)),
        None => reasons.to_string(),
    }
}
