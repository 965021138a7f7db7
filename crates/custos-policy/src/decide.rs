//! The decision: may this accessor use these categories of this subject for this purpose.
//!
//! [`Policy::decide`] is pure and in memory: the compiled policy plus the subject's state in,
//! a [`Decision`] out. Every read, export, report and disclosure the vault makes goes through
//! it (DESIGN.md invariant 1).

use crate::ids::{AccessorId, CategoryId, CategorySet, PurposeId, PurposeSet, RecipientId};
use crate::{Basis, InstrumentKind, Policy};

/// What is asked.
#[derive(Debug, Clone, Copy)]
pub struct Request {
    /// The caller.
    pub accessor: AccessorId,
    /// Why it asks.
    pub purpose: PurposeId,
    /// What it asks for.
    pub categories: CategorySet,
    /// Who the data goes to when it is disclosed onwards, beyond the accessor's own recipient.
    pub recipient: Option<RecipientId>,
    /// Whether the caller gave a reference checked elsewhere (legal process number,
    /// verified authority): what [`Policy::decide`] goes by. The vault does not: it looks the
    /// reference up as a registered instrument and calls [`Policy::decide_with`].
    pub has_reference: bool,
}

/// A registered legal instrument, as the vault holds it: its kind and the categories it
/// covers. The vault has already checked that it exists, covers the subject and is unexpired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instrument {
    /// Court order, subpoena, …
    pub kind: InstrumentKind,
    /// The categories it covers.
    pub categories: CategorySet,
}

/// What the reference a request names turned out to be, for a purpose that requires one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reference {
    /// None was given.
    Absent,
    /// One was given and checked outside the policy ([`Request::has_reference`]).
    Accepted,
    /// It names no registered instrument covering this subject.
    Unknown,
    /// It names a registered instrument covering the subject, expired.
    Expired,
    /// It names a registered, unexpired instrument covering the subject.
    Instrument(Instrument),
}

/// Lifecycle of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubjectStatus {
    /// Normal.
    Active,
    /// Account closed: only legal and contract purposes remain.
    Deactivated,
    /// Keys destroyed: nothing exists.
    Erased,
}

/// What is known of a subject's age.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgeStatus {
    /// Not asked.
    Unknown,
    /// At or above the policy's minimum age.
    AtLeastMinimum,
    /// Below the minimum age: nothing may be used (C053).
    UnderMinimum,
}

/// A category held about a subject, with the purposes its values were collected for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    /// The category.
    pub category: CategoryId,
    /// The purposes its values may serve: the collection's scope, as computed by the policy
    /// version in force when it was collected ([`crate::CollectionPlan::purposes`], or
    /// [`Policy::scope_of`] the stated purposes); the union over collections.
    pub collected_for: PurposeSet,
}

/// The subject's state that a decision depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    /// Lifecycle.
    pub status: SubjectStatus,
    /// Age.
    pub age: AgeStatus,
    /// Categories held, each with its collection purposes.
    pub held: Vec<Held>,
    /// Exactly the purposes the person consents to, as recorded; do not expand them:
    /// consent to a consent-basis purpose covers its refinements, and `decide` works that out.
    pub consents: PurposeSet,
    /// Exactly the purposes the person objected to, as recorded; an objection covers the
    /// purpose's refinements, and `decide` works that out.
    pub objections: PurposeSet,
}

impl Subject {
    /// An active adult of unknown age holding nothing, consenting to nothing.
    pub fn new() -> Self {
        Self {
            status: SubjectStatus::Active,
            age: AgeStatus::Unknown,
            held: Vec::new(),
            consents: PurposeSet::EMPTY,
            objections: PurposeSet::EMPTY,
        }
    }

    /// Records that categories were collected for purposes.
    pub fn hold(&mut self, categories: CategorySet, purposes: PurposeSet) {
        for c in categories.iter() {
            match self.held.iter_mut().find(|h| h.category == c) {
                Some(h) => h.collected_for = h.collected_for.union(purposes),
                None => self.held.push(Held {
                    category: c,
                    collected_for: purposes,
                }),
            }
        }
    }

    /// The categories held.
    pub fn held_categories(&self) -> CategorySet {
        self.held.iter().map(|h| h.category).collect()
    }
}

impl Default for Subject {
    fn default() -> Self {
        Self::new()
    }
}

/// Outcome of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Everything asked is permitted.
    Permit,
    /// Some categories are permitted, others withheld.
    Partial,
    /// Nothing is permitted.
    Deny,
}

impl Effect {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Permit => "permit",
            Self::Partial => "partial",
            Self::Deny => "deny",
        }
    }
}

/// Why something was withheld or denied. The `code` of each is stable: clients and the ledger
/// store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The accessor may not pursue this purpose.
    PurposeNotAllowedForAccessor,
    /// The recipient may not receive anything for this purpose.
    RecipientNotAllowedForPurpose,
    /// The subject was erased.
    SubjectErased,
    /// The subject is below the policy's minimum age.
    SubjectUnderMinimumAge,
    /// The subject is deactivated and the purpose is neither legal nor contractual.
    SubjectDeactivated,
    /// Nothing of this category is held.
    NotHeld,
    /// More than the accessor or recipient may have for the purpose.
    ExceedsMinimumNecessary,
    /// Not collected for this purpose, and its basis allows no other way (C016).
    NotCollectedForPurpose,
    /// The purpose needs consent and there is none (C042).
    ConsentMissing,
    /// The person objected to this purpose.
    Objected,
    /// The purpose needs a reference (legal process, verified authority) and none was given.
    ReferenceMissing,
    /// The purpose is a disclosure and no external recipient was named.
    RecipientRequired,
    /// The reference names no registered legal instrument covering this subject.
    InstrumentUnknown,
    /// The legal instrument the reference names has expired.
    InstrumentExpired,
    /// The legal instrument is of a kind the purpose does not accept.
    InstrumentKind,
    /// The legal instrument does not cover this category.
    InstrumentScope,
}

impl Reason {
    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::PurposeNotAllowedForAccessor => "purpose_not_allowed_for_accessor",
            Self::RecipientNotAllowedForPurpose => "recipient_not_allowed_for_purpose",
            Self::SubjectErased => "subject_erased",
            Self::SubjectUnderMinimumAge => "subject_under_minimum_age",
            Self::SubjectDeactivated => "subject_deactivated",
            Self::NotHeld => "not_held",
            Self::ExceedsMinimumNecessary => "exceeds_minimum_necessary",
            Self::NotCollectedForPurpose => "not_collected_for_purpose",
            Self::ConsentMissing => "consent_missing",
            Self::Objected => "objected",
            Self::ReferenceMissing => "reference_missing",
            Self::RecipientRequired => "recipient_required",
            Self::InstrumentUnknown => "instrument_unknown",
            Self::InstrumentExpired => "instrument_expired",
            Self::InstrumentKind => "instrument_kind",
            Self::InstrumentScope => "instrument_scope",
        }
    }

    /// One sentence a person can read.
    pub fn explain(self) -> &'static str {
        match self {
            Self::PurposeNotAllowedForAccessor => {
                "the policy does not let this accessor pursue this purpose"
            }
            Self::RecipientNotAllowedForPurpose => {
                "the policy lets this recipient receive nothing for this purpose"
            }
            Self::SubjectErased => "the subject was erased; nothing about them exists",
            Self::SubjectUnderMinimumAge => {
                "the subject is under the policy's minimum age; their data may not be used"
            }
            Self::SubjectDeactivated => {
                "the subject's account is deactivated; only legal and contractual purposes remain"
            }
            Self::NotHeld => "nothing of this category is held about the subject",
            Self::ExceedsMinimumNecessary => {
                "more than the minimum the policy lets this accessor or recipient have for this purpose"
            }
            Self::NotCollectedForPurpose => {
                "it was not collected for this purpose and using it so needs the person's consent"
            }
            Self::ConsentMissing => {
                "this purpose needs the person's consent, which they have not given"
            }
            Self::Objected => "the person objected to this purpose",
            Self::ReferenceMissing => {
                "this purpose needs a reference (legal process, verified authority) and none was given"
            }
            Self::RecipientRequired => {
                "this purpose is a disclosure; name the recipient it goes to"
            }
            Self::InstrumentUnknown => {
                "the reference names no registered legal instrument covering this subject"
            }
            Self::InstrumentExpired => "the legal instrument the reference names has expired",
            Self::InstrumentKind => {
                "the legal instrument is of a kind this purpose does not accept"
            }
            Self::InstrumentScope => "the legal instrument does not cover this category",
        }
    }
}

/// Why what was permitted was permitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ground {
    /// The values were collected for this purpose or a broader one.
    CollectedFor,
    /// The person consents to the purpose.
    Consent,
    /// A legal purpose, with a reference.
    LegalReference,
}

impl Ground {
    /// Stable snake_case code.
    pub fn code(self) -> &'static str {
        match self {
            Self::CollectedFor => "collected_for_purpose",
            Self::Consent => "consent_given",
            Self::LegalReference => "legal_reference",
        }
    }
}

/// A category withheld, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withheld {
    /// The category.
    pub category: CategoryId,
    /// Why.
    pub reason: Reason,
}

/// The answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Permit, partial or deny.
    pub effect: Effect,
    /// Categories that may be used.
    pub permitted: CategorySet,
    /// Categories that may not, each with its reason, in category order.
    pub withheld: Vec<Withheld>,
    /// When the whole request was refused before looking at categories, why.
    pub denial: Option<Reason>,
    /// Why what is permitted is permitted.
    pub ground: Option<Ground>,
    /// The recipient data goes to when this is a disclosure: the ledger records a disclosure.
    pub disclosure_to: Option<RecipientId>,
    /// The accessor, purpose and recipient that decided (for the ledger and `explain`).
    pub accessor: AccessorId,
    /// The purpose.
    pub purpose: PurposeId,
}

impl Decision {
    /// The reason for a category, if withheld.
    pub fn reason_for(&self, c: CategoryId) -> Option<Reason> {
        self.withheld
            .iter()
            .find(|w| w.category == c)
            .map(|w| w.reason)
    }
}

impl Policy {
    /// Decides a request against a subject's state.
    ///
    /// In order: the accessor must be allowed the purpose (and its recipient allowed to
    /// receive for it); the subject must exist, be of age, and be active unless the purpose is
    /// legal or contractual; then per category: minimum necessary, held, and the purpose's
    /// basis — collected for it (service, contract, opt-out unless objected), current consent
    /// (consent), or a reference (legal).
    pub fn decide(&self, req: &Request, subject: &Subject) -> Decision {
        let reference = if req.has_reference {
            Reference::Accepted
        } else {
            Reference::Absent
        };
        self.decide_with(req, subject, reference)
    }

    /// [`Policy::decide`], the reference being what the vault found the request's reference
    /// to be ([`Request::has_reference`] is not looked at). For a purpose that requires a
    /// reference, an instrument of a kind the purpose accepts (`instruments`) permits the
    /// categories it covers; the others are withheld (`instrument_scope`).
    pub fn decide_with(&self, req: &Request, subject: &Subject, reference: Reference) -> Decision {
        let mut d = Decision {
            effect: Effect::Deny,
            permitted: CategorySet::EMPTY,
            withheld: Vec::new(),
            denial: None,
            ground: None,
            disclosure_to: None,
            accessor: req.accessor,
            purpose: req.purpose,
        };
        let (Some(accessor), Some(purpose)) =
            (self.accessor(req.accessor), self.purpose(req.purpose))
        else {
            return deny_all(d, req.categories, Reason::PurposeNotAllowedForAccessor);
        };
        // INVARIANT: deny by default — an accessor gets nothing for a purpose it was not given.
        if !accessor.allowed.contains(req.purpose) {
            return deny_all(d, req.categories, Reason::PurposeNotAllowedForAccessor);
        }
        let mut cap = accessor.limits.get(req.purpose.index()).copied().flatten();
        // A disclosure to the accessor's own recipient and onwards to another: each must be
        // allowed the purpose, and gets no more than its minimum.
        for r in [accessor.recipient, req.recipient].into_iter().flatten() {
            let allow = self
                .recipient(r)
                .and_then(|x| x.allows.get(req.purpose.index()).copied().flatten());
            match allow {
                None => return deny_all(d, req.categories, Reason::RecipientNotAllowedForPurpose),
                Some(set) => cap = Some(cap.map_or(set, |c| c.intersection(set))),
            }
            if self.recipient(r).is_some_and(|x| x.kind.is_external()) {
                d.disclosure_to = Some(r);
            }
        }
        match (subject.status, subject.age) {
            (SubjectStatus::Erased, _) => {
                return deny_all(d, req.categories, Reason::SubjectErased);
            }
            (_, AgeStatus::UnderMinimum) => {
                return deny_all(d, req.categories, Reason::SubjectUnderMinimumAge);
            }
            (SubjectStatus::Deactivated, _)
                if !matches!(purpose.basis, Basis::Legal | Basis::Contract) =>
            {
                return deny_all(d, req.categories, Reason::SubjectDeactivated);
            }
            _ => {}
        }
        if purpose.requires_recipient && d.disclosure_to.is_none() {
            return deny_all(d, req.categories, Reason::RecipientRequired);
        }
        // The categories a legal instrument covers, when it decides.
        let mut scope: Option<CategorySet> = None;
        let reference_failure = if purpose.requires_reference {
            match reference {
                Reference::Absent => Some(Reason::ReferenceMissing),
                Reference::Unknown => Some(Reason::InstrumentUnknown),
                Reference::Expired => Some(Reason::InstrumentExpired),
                Reference::Instrument(i) if !purpose.instruments.contains(i.kind) => {
                    Some(Reason::InstrumentKind)
                }
                Reference::Instrument(i) => {
                    scope = Some(i.categories);
                    None
                }
                Reference::Accepted => None,
            }
        } else {
            None
        };
        let basis_failure = if reference_failure.is_some() {
            reference_failure
        } else {
            match purpose.basis {
                // An objection to a purpose stops it and everything refining it; only legal
                // duties and contracts outlive it.
                Basis::Consent | Basis::OptOut | Basis::Service
                    if purpose.ancestors.intersects(&subject.objections) =>
                {
                    Some(Reason::Objected)
                }
                Basis::Consent if !purpose.consent_scope.intersects(&subject.consents) => {
                    Some(Reason::ConsentMissing)
                }
                _ => None,
            }
        };
        for c in req.categories.iter() {
            let reason = if cap.is_some_and(|cap| !cap.contains(c)) {
                Some(Reason::ExceedsMinimumNecessary)
            } else if let Some(held) = subject.held.iter().find(|h| h.category == c) {
                match (basis_failure, purpose.basis) {
                    (Some(r), _) => Some(r),
                    (None, _) if scope.is_some_and(|s| !s.contains(c)) => {
                        Some(Reason::InstrumentScope)
                    }
                    (None, Basis::Consent | Basis::Legal) => None,
                    // INVARIANT: C016 — used only for the purposes stated at collection.
                    (None, _) if held.collected_for.contains(req.purpose) => None,
                    (None, _) => Some(Reason::NotCollectedForPurpose),
                }
            } else {
                Some(Reason::NotHeld)
            };
            match reason {
                None => d.permitted.insert(c),
                Some(reason) => d.withheld.push(Withheld {
                    category: c,
                    reason,
                }),
            }
        }
        if !d.permitted.is_empty() {
            d.ground = Some(match purpose.basis {
                Basis::Consent => Ground::Consent,
                Basis::Legal => Ground::LegalReference,
                _ => Ground::CollectedFor,
            });
        }
        d.effect = match (d.permitted.is_empty(), d.withheld.is_empty()) {
            (false, true) => Effect::Permit,
            (false, false) => Effect::Partial,
            (true, _) => Effect::Deny,
        };
        if d.effect == Effect::Deny {
            d.disclosure_to = None;
        }
        d
    }

    /// The clause ids behind a decision: those of its purpose, accessor and recipient, and of
    /// the policy header when the subject's age decided.
    pub fn decision_clauses(&self, d: &Decision) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        if let Some(p) = self.purpose(d.purpose) {
            out.extend(p.clauses.iter().map(String::as_str));
        }
        if let Some(r) = d.disclosure_to.and_then(|r| self.recipient(r)) {
            out.extend(r.clauses.iter().map(String::as_str));
        }
        if d.denial == Some(Reason::SubjectUnderMinimumAge) {
            out.extend(self.header_clauses().iter().map(String::as_str));
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

fn deny_all(mut d: Decision, categories: CategorySet, reason: Reason) -> Decision {
    d.effect = Effect::Deny;
    d.denial = Some(reason);
    d.disclosure_to = None;
    d.withheld = categories
        .iter()
        .map(|category| Withheld { category, reason })
        .collect();
    d
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        clippy::panic,
        clippy::indexing_slicing,
        reason = "tests"
    )]
    use super::*;

    /// Issue 12, item 4: a purpose requiring a reference is decided by the instrument the
    /// vault found: none, unknown or expired withhold everything; the wrong kind too; the
    /// right kind permits the categories it covers and withholds the rest.
    #[test]
    fn a_legal_purpose_is_decided_by_its_instrument() {
        let p = Policy::builtin().unwrap_or_else(|d| panic!("{d}"));
        let email = p.category_id("contact.email").unwrap();
        let name = p.category_id("contact.name").unwrap();
        let both: CategorySet = [email, name].into_iter().collect();
        let req = Request {
            accessor: p.accessor_id("legal").unwrap(),
            purpose: p.purpose_id("legal.process").unwrap(),
            categories: both,
            recipient: None,
            has_reference: true,
        };
        let mut s = Subject::new();
        s.hold(both, PurposeSet::EMPTY);
        let decide = |r: Reference| p.decide_with(&req, &s, r);
        for (r, reason) in [
            (Reference::Absent, Reason::ReferenceMissing),
            (Reference::Unknown, Reason::InstrumentUnknown),
            (Reference::Expired, Reason::InstrumentExpired),
            (
                Reference::Instrument(Instrument {
                    kind: InstrumentKind::FraudCase,
                    categories: both,
                }),
                Reason::InstrumentKind,
            ),
        ] {
            let d = decide(r);
            assert_eq!(d.effect, Effect::Deny, "{r:?}");
            assert!(d.withheld.iter().all(|w| w.reason == reason), "{d:?}");
        }
        let d = decide(Reference::Instrument(Instrument {
            kind: InstrumentKind::Subpoena,
            categories: [email].into_iter().collect(),
        }));
        assert_eq!(d.effect, Effect::Partial);
        assert!(d.permitted.contains(email));
        assert_eq!(d.reason_for(name), Some(Reason::InstrumentScope));
        assert_eq!(d.ground, Some(Ground::LegalReference));
        // `decide` goes by `has_reference`, as before.
        assert_eq!(p.decide(&req, &s).effect, Effect::Permit);
        // A purpose that requires none ignores any reference.
        let support = Request {
            accessor: p.accessor_id("support").unwrap(),
            purpose: p.purpose_id("support").unwrap(),
            ..req
        };
        let mut held = Subject::new();
        held.hold(both, p.scope_of([support.purpose].into_iter().collect()));
        assert_eq!(
            p.decide_with(&support, &held, Reference::Unknown).effect,
            Effect::Permit
        );
    }
}
