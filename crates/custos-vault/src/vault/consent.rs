//! Consent and choices (issue 14): consent and objection records with their evidence, a
//! signed receipt for every change, and the person's communication preferences.
//!
//! **Who may record a choice:** a service holding the person ([`ConsentBy::Holder`]: one of
//! the accessor's services collected a value about them, and a tenant-bound key reaches only
//! its tenant's people), or the person themself or the operator ([`ConsentBy::Requester`]).
//! Anyone else is answered as for a subject never held, and the attempt is ledgered.
//!
//! **What may be chosen:** a purpose whose basis is `consent` (opt-in: `given` gives or
//! withdraws consent) or `opt_out` (`given: false` objects, `given: true` withdraws the
//! objection). A purpose of another basis is refused (`consent_not_applicable`), as is a
//! notice version other than the policy's (`unknown_notice_version`), and a method outside
//! [`CONSENT_METHODS`]; silence, a pre-ticked box, inactivity and the like
//! ([`NOT_FREELY_GIVEN`]) are never consent (`consent_not_freely_given`; DESIGN invariant 5).
//!
//! **Evidence:** each record keeps the method, the notice version and the SHA-256 of the
//! notice the person was shown (the HTML `/privacy` serves), the time, the actor, and the
//! receipt and its id. The `consent` or `objection` entry is durable in the ledger before the
//! record is stored (audit before data), and the next decision reads the record.

mod receipt;
mod writer;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock, RwLock};

use custos_policy::{Basis, Policy, PurposeId, PurposeInfo};
use serde_json::{Value, json};

pub(crate) use receipt::ReceiptSigner;
pub use receipt::{
    RECEIPT_TYP, RECEIPT_VERSION, ReceiptError, ReceiptKey, VerifiedReceipt, jwks, parse_jwks,
    verify_receipt,
};
pub(crate) use writer::Writer;

use super::{Actor, Requester, SubjectId, Vault, format_date_time};
use crate::crypto::{hex, sha256};
use crate::error::{Error, Result};
use crate::ledger::Draft;
use crate::store::{Age, ConsentEvidence, ConsentRow, Status, SubjectState, now_ms};

/// How a choice was expressed: the closed set a record may name, each with what it can
/// express. `checkbox_unticked` and `double_opt_in` only give (an affirmative act);
/// `one_click_unsubscribe` (RFC 8058) and `gpc_signal` (Global Privacy Control) only withdraw
/// or object; the others either.
pub const CONSENT_METHODS: &[(&str, Can)] = &[
    // The person ticked a box that was shown unticked.
    ("checkbox_unticked", Can::Give),
    // The person confirmed by following a link mailed to them.
    ("double_opt_in", Can::Give),
    // Staff recorded what the person said on a call or in person.
    ("verbal_recorded_by_staff", Can::Both),
    // A signed form.
    ("written", Can::Both),
    // A switch the person set on their settings or preferences page.
    ("settings_page", Can::Both),
    // The `List-Unsubscribe-Post` one-click unsubscribe of a message (RFC 8058).
    ("one_click_unsubscribe", Can::Withdraw),
    // The browser's Global Privacy Control signal (`Sec-GPC: 1`).
    ("gpc_signal", Can::Withdraw),
    // A request sent by email.
    ("email_request", Can::Both),
    // A request sent by post.
    ("letter", Can::Both),
];

/// What a method can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Can {
    /// Only give consent (or withdraw an objection).
    Give,
    /// Only withdraw consent (or object).
    Withdraw,
    /// Either.
    Both,
}

/// Methods that are never consent (DESIGN invariant 5): refused with
/// `consent_not_freely_given`, whichever way they are stated.
pub const NOT_FREELY_GIVEN: &[&str] = &[
    "pre_ticked",
    "pre_ticked_checkbox",
    "silence",
    "inactivity",
    "implied",
    "default",
    "opt_out_default",
    "continued_use",
    "bundled",
];

/// The ledger action of a consent record.
const CONSENT: &str = "consent";
/// The ledger action of an objection record.
const OBJECTION: &str = "objection";
/// The ledger action of reading a subject's consent records or preferences.
pub const READ_CONSENTS: &str = "read_consents";

/// Who records a person's choice.
#[derive(Debug, Clone, Copy)]
pub enum ConsentBy<'a> {
    /// A service's key: it must hold the person (and reach them, if tenant-bound).
    Holder(Actor<'a>),
    /// The person signed in (their own subjects only), or the operator.
    Requester(Requester<'a>),
    /// The person, by the one-click unsubscribe link of a mailing (the mailing's id): the
    /// link's token names the subject, and [`Vault::unsubscribe`] verified it
    /// (`vault/mailings.rs`). Ledgered as `person`.
    Unsubscribe(&'a str),
}

impl<'a> From<Actor<'a>> for ConsentBy<'a> {
    fn from(a: Actor<'a>) -> Self {
        Self::Holder(a)
    }
}

impl<'a> From<&'a str> for ConsentBy<'a> {
    fn from(a: &'a str) -> Self {
        Self::Holder(a.into())
    }
}

impl<'a> From<Requester<'a>> for ConsentBy<'a> {
    fn from(r: Requester<'a>) -> Self {
        Self::Requester(r)
    }
}

impl ConsentBy<'_> {
    fn actor(&self, vault: &Vault) -> String {
        match self {
            Self::Holder(a) => vault.declared_accessor(a.accessor).to_string(),
            Self::Requester(r) => r.actor().to_string(),
            Self::Unsubscribe(_) => super::PERSON.to_string(),
        }
    }
}

/// A choice to record (`POST /v1/subjects/{id}/consents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentInput {
    /// The purpose: its basis must be `consent` or `opt_out`.
    pub purpose: String,
    /// The recipient it is about, for a purpose that discloses (`requires_recipient`).
    pub recipient: Option<String>,
    /// Yes (consent given, or objection withdrawn) or no (consent withdrawn, or objection).
    pub given: bool,
    /// One of [`CONSENT_METHODS`].
    pub method: String,
    /// The notice version the person was shown: the policy's.
    pub notice: String,
}

/// A recorded choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    /// The purpose.
    pub purpose: String,
    /// The recipient it is about, if any.
    pub recipient: Option<String>,
    /// `consent` (opt-in purpose) or `objection` (opt-out purpose).
    pub kind: String,
    /// Yes (consent given, or objection withdrawn) or no.
    pub given: bool,
    /// How it was expressed.
    pub method: String,
    /// The notice version shown.
    pub notice: String,
    /// SHA-256 of the notice shown, hex; `None` for a record kept before evidence was.
    pub notice_sha256: Option<String>,
    /// Who recorded it; `None` for a record kept before evidence was.
    pub actor: Option<String>,
    /// When, UTC (RFC 3339).
    pub time: String,
    /// The receipt's id, if it has one.
    pub receipt_id: Option<String>,
    /// The signed receipt (compact JWS), if it has one.
    pub receipt: Option<String>,
}

/// A recorded change and its receipt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange {
    /// The record.
    pub consent: Consent,
    /// The signed receipt (compact JWS, EdDSA).
    pub receipt: String,
}

/// A communication topic and the person's choice about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    /// The purpose.
    pub purpose: String,
    /// Its name in the notice.
    pub name: String,
    /// `consent` (off until the person says yes) or `opt_out` (on until they say no).
    pub basis: String,
    /// Whether the purpose may be pursued now, as far as the person's choices go.
    pub on: bool,
}

impl Consent {
    fn of(row: ConsentRow) -> Self {
        let given = if row.kind == OBJECTION {
            !row.given
        } else {
            row.given
        };
        let (actor, notice_sha256, receipt_id, receipt) = match row.evidence {
            Some(e) => (
                Some(e.actor),
                Some(e.notice_sha256),
                Some(e.receipt_id),
                Some(e.receipt),
            ),
            None => (None, None, None, None),
        };
        Self {
            purpose: row.purpose,
            recipient: row.recipient,
            kind: row.kind,
            given,
            method: row.method,
            notice: row.notice,
            notice_sha256,
            actor,
            time: format_date_time(row.time_ms),
            receipt_id,
            receipt,
        }
    }
}

/// The policy's communication topics: purposes of basis consent or opt-out, disclosing to
/// no recipient, for which some accessor may use a category that identifies the person
/// (their email address): the purposes by which the controller reaches the person. For
/// WebEx 2010: marketing as a whole, service announcements and offers, newsletters,
/// surveys, promotions, and personalization (of newsletters and what the person is sent);
/// not analytics (no accessor may use an identifier for it) nor partner marketing (a
/// disclosure, chosen per recipient through `record_consent`).
pub fn communication_topics(policy: &Policy) -> Vec<&PurposeInfo> {
    let identifiers: custos_policy::CategorySet = policy
        .categories()
        .iter()
        .filter(|c| c.identifier)
        .filter_map(|c| policy.category_id(&c.id).ok())
        .collect();
    policy
        .purposes()
        .iter()
        .filter(|p| matches!(p.basis, Basis::Consent | Basis::OptOut) && !p.requires_recipient)
        .filter(|p| {
            let Ok(pid) = policy.purpose_id(&p.id) else {
                return false;
            };
            policy.accessors().iter().any(|a| {
                a.recipient.is_none()
                    && a.limits
                        .get(pid.index())
                        .copied()
                        .flatten()
                        .is_some_and(|set| set.intersects(&identifiers))
            })
        })
        .collect()
}

/// The parts of receipts' claims that do not change from one receipt to the next,
/// serialized on first need: what is left of a receipt to write is the change's own fields.
#[derive(Debug, Default)]
pub(crate) struct ClaimsCache {
    frame: OnceLock<ClaimsFrame>,
    /// Each purpose's entry, with the recipient a choice is about (if any).
    purposes: RwLock<HashMap<PurposeKey, Arc<str>>>,
}

/// A purpose's id and the recipient a choice is about.
type PurposeKey = (String, Option<String>);

/// The fixed fields of the claims, serialized in key order around the variable ones.
#[derive(Debug)]
struct ClaimsFrame {
    /// From `jurisdiction` to `piiPrincipalId`'s key.
    to_principal: String,
    /// From `policyUrl` to `services`' key.
    to_services: String,
    /// `spiCat`, `version` and the closing brace.
    end: String,
}

/// Appends `s` as a JSON string.
fn push_json(out: &mut String, s: &str) {
    // Writing JSON into a String cannot fail.
    let _ = serde_json::to_writer(StringWriter(out), s);
}

/// A receipt's entry for one service: `{"purposes":[PURPOSE],"service":NAME}`.
fn push_service(out: &mut String, service: &str, purpose: &str) {
    out.push_str(r#"{"purposes":["#);
    out.push_str(purpose);
    out.push_str(r#"],"service":"#);
    push_json(out, service);
    out.push('}');
}

/// `io::Write` into a `String`, for what serde_json writes (always UTF-8).
struct StringWriter<'a>(&'a mut String);

impl std::io::Write for StringWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let s = std::str::from_utf8(buf)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.0.push_str(s);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// How much of a subject's state a check reads.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// [`crate::store::Store::subject_state`]: preferences need the consent events.
    Full,
    /// [`crate::store::Store::subject_holders`]: a change needs who holds the person, its
    /// status and tenants (its receipt names the services), not the events before it.
    Holders,
}

fn field(code: &'static str, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: field.into(),
        message: message.into(),
    }
}

impl Vault {
    /// The notice people read, as `GET /privacy` serves it: the policy rendered
    /// (`custos_policy::render::html`) once per vault.
    pub fn notice_html(&self) -> Arc<str> {
        Arc::clone(&self.notice().0)
    }

    /// SHA-256 of [`Vault::notice_html`]'s very bytes, hex: what a consent record says the
    /// person was shown.
    pub fn notice_sha256(&self) -> &str {
        &self.notice().1
    }

    fn notice(&self) -> &(Arc<str>, String) {
        self.notice.get_or_init(|| {
            let html: Arc<str> = custos_policy::render::html(&self.policy).into();
            let sha = hex(&sha256(html.as_bytes()));
            (html, sha)
        })
    }

    /// The public keys receipts are signed with (the current one first).
    pub fn receipt_keys(&self) -> Vec<ReceiptKey> {
        vec![self.receipts.key().clone()]
    }

    /// The subject `by` may record choices for, with its state; anything else is ledgered
    /// (`action`, refused, the reason) and answered [`Error::SubjectNotFound`].
    /// With `Load::Holders` the state is [`crate::store::Store::subject_holders`]'s: no
    /// consents, and values that name only their service and role.
    fn chooser_subject(
        &self,
        by: ConsentBy<'_>,
        action: &str,
        subject: &SubjectId,
        load: Load,
    ) -> Result<SubjectState> {
        let load = |id: &SubjectId| match load {
            Load::Full => self.store.subject_state(id.as_str()),
            Load::Holders => self.store.subject_holders(id.as_str()),
        };
        let state = match by {
            // The token was verified: it names this subject; one erased (or under the
            // minimum age) is not held.
            ConsentBy::Unsubscribe(_) => self
                .store
                .subject_state(subject.as_str())?
                .filter(|s| s.status != Status::Erased && s.age != Age::UnderMinimum),
            ConsentBy::Requester(r) => {
                self.requested_subject(r, action, subject)?;
                load(subject)?
            }
            ConsentBy::Holder(actor) => {
                let state = load(subject)?
                    .filter(|s| s.status != Status::Erased && s.age != Age::UnderMinimum);
                let held = state
                    .as_ref()
                    .is_some_and(|s| self.holds_for(actor.accessor, &s.values));
                if !held {
                    // Answered as if the subject did not exist; the ledger keeps the attempt.
                    let mut d = self.draft(&by.actor(self), action, subject.as_str());
                    d.effect = "refused".into();
                    d.reasons = if state.is_some() {
                        "subject_not_held"
                    } else {
                        "subject_not_found"
                    }
                    .into();
                    self.record(d)?;
                    return Err(Error::SubjectNotFound);
                }
                let tenants = state
                    .as_ref()
                    .map(|s| s.tenants.clone())
                    .unwrap_or_default();
                // INVARIANT: tenant binding — nor does a person outside the key's tenant.
                self.within_tenant(actor, action, subject, &tenants)?;
                state
            }
        };
        state.ok_or(Error::SubjectNotFound)
    }

    /// The purpose of a choice, checked: declared, of basis consent or opt-out.
    fn choosable(&self, purpose: &str) -> Result<(PurposeId, &PurposeInfo)> {
        let id = self
            .policy
            .purpose_id(purpose)
            .map_err(|e| field("unknown_purpose", "purpose", e.message))?;
        let info = self
            .policy
            .purpose(id)
            .ok_or_else(|| field("unknown_purpose", "purpose", "no such purpose"))?;
        match info.basis {
            Basis::Consent | Basis::OptOut => Ok((id, info)),
            b => Err(field(
                "consent_not_applicable",
                "purpose",
                format!(
                    "purpose `{purpose}` rests on the basis `{}`, not on the person's consent; there is nothing to consent to or object to",
                    b.as_str()
                ),
            )),
        }
    }

    /// Checks a choice's method, notice and recipient against the policy.
    fn check_choice(&self, input: &ConsentInput, info: &PurposeInfo) -> Result<()> {
        let m = input.method.as_str();
        if NOT_FREELY_GIVEN.contains(&m) {
            return Err(field(
                "consent_not_freely_given",
                "method",
                format!(
                    "`{m}` is not consent: silence, pre-ticked boxes and inactivity never are; record an affirmative act (`checkbox_unticked`, `double_opt_in`, …)"
                ),
            ));
        }
        let Some((_, can)) = CONSENT_METHODS.iter().find(|(name, _)| *name == m) else {
            let names: Vec<&str> = CONSENT_METHODS.iter().map(|(n, _)| *n).collect();
            return Err(field(
                "invalid_method",
                "method",
                format!("name the method as one of {}", names.join(", ")),
            ));
        };
        match (can, input.given) {
            (Can::Give, false) => {
                return Err(field(
                    "invalid_method",
                    "method",
                    format!(
                        "`{m}` can only give consent; a withdrawal is recorded by another method"
                    ),
                ));
            }
            (Can::Withdraw, true) => {
                return Err(field(
                    "consent_not_freely_given",
                    "method",
                    format!("`{m}` can only withdraw consent or object, never give it"),
                ));
            }
            _ => {}
        }
        if input.notice != self.policy.version() {
            return Err(field(
                "unknown_notice_version",
                "notice",
                format!(
                    "the notice in force is version `{}`; show it and state its version",
                    self.policy.version()
                ),
            ));
        }
        match (&input.recipient, info.requires_recipient) {
            (None, _) => {}
            (Some(_), false) => {
                return Err(field(
                    "recipient_not_applicable",
                    "recipient",
                    format!(
                        "purpose `{}` discloses to no recipient; leave `recipient` out",
                        info.id
                    ),
                ));
            }
            (Some(r), true) => {
                let rid = self
                    .policy
                    .recipient_id(r)
                    .map_err(|e| field("unknown_recipient", "recipient", e.message))?;
                let pid = self
                    .policy
                    .purpose_id(&info.id)
                    .map_err(|e| field("unknown_purpose", "purpose", e.message))?;
                let allowed = self
                    .policy
                    .recipient(rid)
                    .and_then(|ri| ri.allows.get(pid.index()).copied().flatten())
                    .is_some();
                if !allowed {
                    return Err(field(
                        "recipient_not_applicable",
                        "recipient",
                        format!(
                            "the policy lets recipient `{r}` receive nothing for `{}`",
                            info.id
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Records a person's choice about a purpose (see the module's documentation) and returns
    /// the record with its signed receipt. Ledgered (`consent` or `objection`) before it is
    /// stored; refusals are ledgered too.
    pub fn record_consent<'a>(
        &self,
        by: impl Into<ConsentBy<'a>>,
        subject: &SubjectId,
        input: &ConsentInput,
    ) -> Result<ConsentChange> {
        let by = by.into();
        let (state, info) = self.checked(by, subject, input)?;
        waiting(|done| self.begin_change(by, subject, &state, info, input, done))
    }

    /// [`Vault::record_consent`] without waiting: checks the choice and signs its receipt,
    /// queues the change for the next group commit and returns; `done` is called with the
    /// change once its entry is durable and its record stored (or with the error), on the
    /// consent writer's thread — keep it short (send it somewhere). An error returned here
    /// (refused, not held) means `done` is never called.
    pub fn begin_consent<'a>(
        &self,
        by: impl Into<ConsentBy<'a>>,
        subject: &SubjectId,
        input: &ConsentInput,
        done: impl FnOnce(Result<ConsentChange>) + Send + 'static,
    ) -> Result<()> {
        let by = by.into();
        let (state, info) = self.checked(by, subject, input)?;
        self.begin_change(by, subject, &state, info, input, done)
    }

    /// A checked choice about `subject`, whose `state` was read, queued as
    /// [`Vault::begin_consent`] queues it.
    pub(super) fn begin_change(
        &self,
        by: ConsentBy<'_>,
        subject: &SubjectId,
        state: &SubjectState,
        info: &PurposeInfo,
        input: &ConsentInput,
        done: impl FnOnce(Result<ConsentChange>) + Send + 'static,
    ) -> Result<()> {
        let (row, draft, receipt) = self.prepare(by, subject, state, info, input)?;
        let change = ConsentChange {
            consent: Consent::of(row.clone()),
            receipt,
        };
        // INVARIANT: audit before data — the writer stores the record once its entry is
        // durable; the receipt leaves only through `done`, after both commits.
        self.consent_writer
            .submit(row, draft, Box::new(move |r| done(r.map(|()| change))))
    }

    /// The subject and purpose of a choice, checked; a refusal is ledgered.
    fn checked(
        &self,
        by: ConsentBy<'_>,
        subject: &SubjectId,
        input: &ConsentInput,
    ) -> Result<(SubjectState, &PurposeInfo)> {
        let state = self.chooser_subject(by, CONSENT, subject, Load::Holders)?;
        Ok((state, self.checked_choice(by, subject, input)?))
    }

    /// The purpose of a choice, checked (declared, of basis consent or opt-out, the input's
    /// method, notice and recipient); a refusal is ledgered.
    pub(super) fn checked_choice(
        &self,
        by: ConsentBy<'_>,
        subject: &SubjectId,
        input: &ConsentInput,
    ) -> Result<&PurposeInfo> {
        let checked = self
            .choosable(&input.purpose)
            .and_then(|(_, info)| self.check_choice(input, info).map(|()| info));
        match checked {
            Ok(info) => Ok(info),
            Err(e) => {
                let mut d = self.draft(&by.actor(self), CONSENT, subject.as_str());
                d.purpose = self.declared_purpose(&input.purpose);
                d.effect = "refused".into();
                d.reasons = e.code().into();
                self.record(d)?;
                Err(e)
            }
        }
    }

    /// A checked choice's record, ledger draft and signed receipt.
    fn prepare(
        &self,
        by: ConsentBy<'_>,
        subject: &SubjectId,
        state: &SubjectState,
        info: &PurposeInfo,
        input: &ConsentInput,
    ) -> Result<(ConsentRow, Draft, String)> {
        let (kind, given) = match info.basis {
            Basis::OptOut => (OBJECTION, !input.given),
            _ => (CONSENT, input.given),
        };
        let actor = by.actor(self);
        let time_ms = now_ms();
        let receipt_id = receipt_id()?;
        let mut d = self.draft(&actor, kind, subject.as_str());
        d.time_ms = time_ms;
        d.purpose = info.id.clone();
        d.recipient = input.recipient.clone().unwrap_or_default();
        d.effect = if given { "given" } else { "withdrawn" }.into();
        d.reasons = format!("{},receipt:{receipt_id}", input.method);
        if let ConsentBy::Unsubscribe(mailing) = by {
            d.reasons.push_str(&format!(",mailing:{mailing}"));
        }
        let claims = self.receipt_claims(
            subject,
            state,
            info,
            input,
            kind,
            given,
            &actor,
            time_ms,
            &receipt_id,
        );
        debug_assert_eq!(
            serde_json::from_str::<Value>(&claims).ok(),
            Some(self.receipt_claims_value(
                subject,
                state,
                info,
                input,
                kind,
                given,
                &actor,
                time_ms,
                &receipt_id,
            )),
            "the claims written from their cached parts are the claims"
        );
        let receipt = self.receipts.sign(claims.as_bytes());
        let row = ConsentRow {
            subject: subject.as_str().to_string(),
            purpose: info.id.clone(),
            kind: kind.to_string(),
            given,
            notice: input.notice.clone(),
            method: input.method.clone(),
            time_ms,
            recipient: input.recipient.clone(),
            evidence: Some(ConsentEvidence {
                actor,
                notice_sha256: self.notice_sha256().to_string(),
                receipt_id,
                receipt: receipt.clone(),
            }),
        };
        Ok((row, d, receipt))
    }

    /// The receipt's claims as JSON ([`Vault::receipt_claims_value`], keys in order, no
    /// whitespace), written from the parts that do not change between receipts — the
    /// controller, policy and key, and each purpose's entry — serialized once
    /// ([`ClaimsCache`]), and the change's own fields.
    #[expect(clippy::too_many_arguments, reason = "one receipt's parts, each named")]
    fn receipt_claims(
        &self,
        subject: &SubjectId,
        state: &SubjectState,
        info: &PurposeInfo,
        input: &ConsentInput,
        kind: &str,
        given: bool,
        actor: &str,
        time_ms: i64,
        receipt_id: &str,
    ) -> String {
        let frame = self.receipt_parts.frame.get_or_init(|| self.claims_frame());
        let purpose = self.receipt_purpose(info, input.recipient.as_deref());
        let mut out = String::with_capacity(1536);
        let seconds = time_ms.div_euclid(1000);
        out.push_str(r#"{"collectionMethod":"#);
        push_json(&mut out, &input.method);
        out.push_str(r#","consentReceiptID":"#);
        push_json(&mut out, receipt_id);
        out.push_str(r#","consentTimestamp":"#);
        let _ = write!(out, "{seconds}");
        out.push_str(r#","custos":{"actor":"#);
        push_json(&mut out, actor);
        out.push_str(r#","choice":"#);
        out.push_str(if input.given { r#""yes""# } else { r#""no""# });
        out.push_str(r#","given":"#);
        out.push_str(if given { "true" } else { "false" });
        out.push_str(r#","kind":"#);
        push_json(&mut out, kind);
        out.push_str(r#","notice":"#);
        push_json(&mut out, &input.notice);
        out.push_str(r#","noticeSha256":"#);
        push_json(&mut out, self.notice_sha256());
        out.push_str(r#","purposeId":"#);
        push_json(&mut out, &info.id);
        out.push_str(r#","recipient":"#);
        match &input.recipient {
            Some(r) => push_json(&mut out, r),
            None => out.push_str("null"),
        }
        out.push_str(r#"},"iat":"#);
        let _ = write!(out, "{seconds}");
        out.push_str(r#","jti":"#);
        push_json(&mut out, receipt_id);
        out.push_str(&frame.to_principal);
        push_json(&mut out, subject.as_str());
        out.push_str(&frame.to_services);
        out.push('[');
        let services: BTreeSet<&str> = state.values.iter().map(|v| v.service.as_str()).collect();
        if services.is_empty() {
            push_service(&mut out, &self.policy.header().title, &purpose);
        } else {
            for (i, s) in services.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_service(&mut out, s, &purpose);
            }
        }
        out.push(']');
        out.push_str(&frame.end);
        out
    }

    /// The claims' fields that are the same in every receipt, serialized.
    fn claims_frame(&self) -> ClaimsFrame {
        let Value::Object(fixed) = self.fixed_claims() else {
            unreachable!("the fixed claims are an object")
        };
        let pair = |out: &mut String, key: &str| {
            out.push(',');
            push_json(out, key);
            out.push(':');
            out.push_str(&fixed.get(key).map(Value::to_string).unwrap_or_default());
        };
        let mut to_principal = String::new();
        for key in ["jurisdiction", "language", "piiControllers"] {
            pair(&mut to_principal, key);
        }
        to_principal.push_str(r#","piiPrincipalId":"#);
        let mut to_services = String::new();
        for key in ["policyUrl", "publicKey", "sensitive"] {
            pair(&mut to_services, key);
        }
        to_services.push_str(r#","services":"#);
        let mut end = String::new();
        for key in ["spiCat", "version"] {
            pair(&mut end, key);
        }
        end.push('}');
        ClaimsFrame {
            to_principal,
            to_services,
            end,
        }
    }

    /// A receipt's entry for `info` (and `recipient`), serialized; made once per pair.
    fn receipt_purpose(&self, info: &PurposeInfo, recipient: Option<&str>) -> Arc<str> {
        let key = (info.id.clone(), recipient.map(str::to_string));
        let cache = &self.receipt_parts.purposes;
        if let Some(p) = cache.read().ok().and_then(|c| c.get(&key).cloned()) {
            return p;
        }
        let made: Arc<str> = self.purpose_claims(info, recipient).to_string().into();
        if let Ok(mut c) = cache.write() {
            // Bounded: the policy's purposes, each with no recipient or one it declares
            // (`check_choice` refused any other before this).
            c.insert(key, Arc::clone(&made));
        }
        made
    }

    /// The claims' fields that are the same in every receipt of this vault.
    fn fixed_claims(&self) -> Value {
        let policy = &self.policy;
        let file = policy.file();
        let header = policy.header();
        let contacts = file.contacts.as_ref();
        let email = contacts
            .and_then(|c| c.privacy_email.as_ref())
            .map(|e| e.get_ref().clone())
            .unwrap_or_default();
        let address = contacts
            .map(|c| c.postal_address.join(", "))
            .unwrap_or_default();
        // Whom to write to: the postal address's `Attn:` line, else the controller.
        let contact = contacts
            .and_then(|c| {
                c.postal_address
                    .iter()
                    .find_map(|l| l.strip_prefix("Attn:").map(str::trim))
            })
            .unwrap_or(header.controller.as_str())
            .to_string();
        let jurisdiction = file
            .region
            .iter()
            .map(|r| r.id.get_ref().to_ascii_uppercase())
            .find(|r| r.len() == 2)
            .unwrap_or_else(|| "worldwide".into());
        json!({
            "version": RECEIPT_VERSION,
            "jurisdiction": jurisdiction,
            "publicKey": self.receipts.key().x,
            "language": "en",
            "piiControllers": [{
                "piiController": header.controller,
                "onBehalf": false,
                "contact": contact,
                "address": address,
                "email": email,
                "phone": "",
            }],
            "policyUrl": format!("urn:custos:policy:{}:{}", policy.id(), policy.version()),
            "sensitive": false,
            "spiCat": [],
        })
    }

    /// A receipt's entry for a purpose (and the recipient a choice is about).
    fn purpose_claims(&self, info: &PurposeInfo, recipient: Option<&str>) -> Value {
        let policy = &self.policy;
        let pid = policy.purpose_id(&info.id).ok();
        // The categories the policy lets anyone use for the purpose: every accessor's limit
        // for it, and the recipient's allowance.
        let mut categories = BTreeSet::new();
        if let Some(pid) = pid {
            for a in policy.accessors() {
                if let Some(set) = a.limits.get(pid.index()).copied().flatten() {
                    categories.extend(policy.category_names(set));
                }
            }
            for r in policy.recipients() {
                if recipient.is_none_or(|x| x == r.id) {
                    if let Some(set) = r.allows.get(pid.index()).copied().flatten() {
                        categories.extend(policy.category_names(set));
                    }
                }
            }
        }
        let root = {
            let mut p = info;
            while let Some(parent) = p.parent.and_then(|x| policy.purpose(x)) {
                p = parent;
            }
            p.name.clone()
        };
        let third_party = recipient
            .and_then(|r| policy.recipient_id(r).ok())
            .and_then(|r| policy.recipient(r));
        let mut purpose = json!({
            "purpose": info.name,
            "purposeCategory": [root],
            "consentType": if info.basis == Basis::Consent { "EXPLICIT" } else { "IMPLICIT" },
            "piiCategory": categories.into_iter().collect::<Vec<_>>(),
            "primaryPurpose": false,
            "termination": "until the person withdraws consent or objects, which takes effect for the next decision",
            "thirdPartyDisclosure": info.requires_recipient || third_party.is_some(),
        });
        if let (Some(r), Some(obj)) = (third_party, purpose.as_object_mut()) {
            obj.insert("thirdPartyName".into(), json!(r.name));
        }
        purpose
    }

    /// The receipt's claims: the Kantara v1.1 fields, mapped from the policy, and `custos`,
    /// the change itself. Names the subject by id only. What [`Vault::receipt_claims`]
    /// writes from its cached, serialized parts, built here as a value from the same parts
    /// ([`Vault::fixed_claims`], [`Vault::purpose_claims`]): debug builds check that the
    /// text written by hand — keys in order, escaping, the frame — is this value's.
    #[expect(clippy::too_many_arguments, reason = "one receipt's parts, each named")]
    fn receipt_claims_value(
        &self,
        subject: &SubjectId,
        state: &SubjectState,
        info: &PurposeInfo,
        input: &ConsentInput,
        kind: &str,
        given: bool,
        actor: &str,
        time_ms: i64,
        receipt_id: &str,
    ) -> Value {
        let purpose = self.purpose_claims(info, input.recipient.as_deref());
        let services: BTreeSet<&str> = state.values.iter().map(|v| v.service.as_str()).collect();
        let services: Vec<Value> = if services.is_empty() {
            vec![json!({"service": self.policy.header().title, "purposes": [purpose]})]
        } else {
            services
                .into_iter()
                .map(|s| json!({"service": s, "purposes": [purpose.clone()]}))
                .collect()
        };
        let mut claims = self.fixed_claims();
        if let Some(obj) = claims.as_object_mut() {
            for (key, value) in [
                ("consentTimestamp", json!(time_ms.div_euclid(1000))),
                ("collectionMethod", json!(input.method)),
                ("consentReceiptID", json!(receipt_id)),
                ("piiPrincipalId", json!(subject.as_str())),
                ("services", json!(services)),
                ("iat", json!(time_ms.div_euclid(1000))),
                ("jti", json!(receipt_id)),
                (
                    "custos",
                    json!({
                        "purposeId": info.id,
                        "recipient": input.recipient,
                        "kind": kind,
                        "given": given,
                        "choice": if input.given { "yes" } else { "no" },
                        "notice": input.notice,
                        "noticeSha256": self.notice_sha256(),
                        "actor": actor,
                    }),
                ),
            ] {
                obj.insert(key.into(), value);
            }
        }
        claims
    }

    /// The subject's consent and objection records, oldest first, each with its evidence and
    /// receipt when it has them; for whoever may record choices for the subject. Ledgered
    /// (`read_consents`).
    pub fn consents<'a>(
        &self,
        by: impl Into<ConsentBy<'a>>,
        subject: &SubjectId,
    ) -> Result<Vec<Consent>> {
        let by = by.into();
        self.chooser_subject(by, READ_CONSENTS, subject, Load::Holders)?;
        let mut d = self.draft(&by.actor(self), READ_CONSENTS, subject.as_str());
        d.effect = "permit".into();
        self.record(d)?;
        Ok(self
            .store
            .consents(subject.as_str())?
            .into_iter()
            .map(Consent::of)
            .collect())
    }

    /// The policy's communication topics ([`communication_topics`]).
    pub fn communication_topics(&self) -> Vec<&PurposeInfo> {
        communication_topics(&self.policy)
    }

    /// The person's communication preferences: each topic, on or off, and its basis. Ledgered
    /// (`read_consents`).
    pub fn preferences<'a>(
        &self,
        by: impl Into<ConsentBy<'a>>,
        subject: &SubjectId,
    ) -> Result<Vec<Preference>> {
        let by = by.into();
        let state = self.chooser_subject(by, READ_CONSENTS, subject, Load::Full)?;
        let mut d = self.draft(&by.actor(self), READ_CONSENTS, subject.as_str());
        d.effect = "permit".into();
        self.record(d)?;
        Ok(self.preferences_of(&state))
    }

    fn preferences_of(&self, state: &SubjectState) -> Vec<Preference> {
        let (consents, objections) = self.consent_state(&state.consents, None);
        self.communication_topics()
            .into_iter()
            .map(|p| Preference {
                purpose: p.id.clone(),
                name: p.name.clone(),
                basis: p.basis.as_str().to_string(),
                on: match p.basis {
                    Basis::Consent => {
                        p.consent_scope.intersects(&consents)
                            && !p.ancestors.intersects(&objections)
                    }
                    _ => !p.ancestors.intersects(&objections),
                },
            })
            .collect()
    }

    /// Sets communication preferences: `topics` maps topic purposes to on or off; each that
    /// changes becomes a consent or objection record with its receipt (`method`, normally
    /// `settings_page`; the notice is the policy's current version, the one the settings page
    /// shows). A name that is not a topic refuses the whole request, naming `topics.NAME`.
    pub fn set_preferences<'a>(
        &self,
        by: impl Into<ConsentBy<'a>>,
        subject: &SubjectId,
        topics: &BTreeMap<String, bool>,
        method: &str,
    ) -> Result<Vec<ConsentChange>> {
        let by = by.into();
        let state = self.chooser_subject(by, CONSENT, subject, Load::Full)?;
        let known = self.communication_topics();
        let mut plan = Vec::new();
        for (name, on) in topics {
            let Some(info) = known.iter().find(|p| p.id == *name) else {
                let names: Vec<&str> = known.iter().map(|p| p.id.as_str()).collect();
                return Err(field(
                    "unknown_topic",
                    &format!("topics.{name}"),
                    format!(
                        "not a communication topic; the topics are {}",
                        names.join(", ")
                    ),
                ));
            };
            plan.push((*info, *on));
        }
        if plan.is_empty() {
            return Err(field("missing_field", "topics", "name at least one topic"));
        }
        let now = self.preferences_of(&state);
        // Every change is checked before any is recorded.
        let mut checked = Vec::new();
        for (info, on) in plan {
            if now.iter().any(|p| p.purpose == info.id && p.on == on) {
                continue;
            }
            let input = ConsentInput {
                purpose: info.id.clone(),
                recipient: None,
                given: on,
                method: method.to_string(),
                notice: self.policy.version().to_string(),
            };
            self.check_choice(&input, info)?;
            checked.push((info, input));
        }
        // Queued together, they share a group commit: one wait, not one per topic.
        let (tx, answers) = std::sync::mpsc::channel();
        for (i, (info, input)) in checked.iter().enumerate() {
            let tx = tx.clone();
            self.begin_change(by, subject, &state, info, input, move |r| {
                let _ = tx.send((i, r));
            })?;
        }
        drop(tx);
        let mut changes: Vec<Option<ConsentChange>> = checked.iter().map(|_| None).collect();
        for _ in 0..checked.len() {
            let (i, r) = answers
                .recv()
                .map_err(|_| Error::Storage("consent writer stopped".into()))?;
            if let Some(slot) = changes.get_mut(i) {
                *slot = Some(r?);
            }
        }
        Ok(changes.into_iter().flatten().collect())
    }
}

/// The simple forms, without evidence or receipt: what the privacy center and tests recorded
/// before issue 14 (a method as a free slug, the current notice assumed).
impl Vault {
    /// Records the person's consent to a purpose whose basis is consent.
    pub fn give_consent<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        purpose: &str,
        method: &str,
    ) -> Result<()> {
        let info = self.known_purpose(purpose)?;
        if info != Basis::Consent {
            return Err(Error::invalid(
                "purpose_not_consent_based",
                format!("purpose `{purpose}` is not based on consent; nothing to consent to"),
            ));
        }
        self.consent_event(actor.into(), subject, purpose, "consent", true, method)
    }

    /// Records that the person withdrew consent to a purpose.
    pub fn withdraw_consent<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        purpose: &str,
        method: &str,
    ) -> Result<()> {
        self.known_purpose(purpose)?;
        self.consent_event(actor.into(), subject, purpose, "consent", false, method)
    }

    /// Records the person's objection to a purpose (opt-out).
    pub fn object<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        purpose: &str,
        method: &str,
    ) -> Result<()> {
        self.known_purpose(purpose)?;
        self.consent_event(actor.into(), subject, purpose, "objection", true, method)
    }

    fn known_purpose(&self, purpose: &str) -> Result<Basis> {
        self.policy
            .purpose_id(purpose)
            .ok()
            .and_then(|p| self.policy.purpose(p))
            .map(|p| p.basis)
            .ok_or_else(|| {
                Error::invalid(
                    "unknown_purpose",
                    format!("the policy declares no purpose `{purpose}`"),
                )
            })
    }

    fn consent_event(
        &self,
        principal: Actor<'_>,
        subject: &SubjectId,
        purpose: &str,
        kind: &str,
        given: bool,
        method: &str,
    ) -> Result<()> {
        let slug = !method.is_empty()
            && method.len() <= 64
            && method
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b));
        if !slug {
            return Err(Error::invalid(
                "invalid_method",
                "name the method as a short lowercase slug, like `privacy-center`",
            ));
        }
        let actor = principal.accessor;
        let row = self.active_subject(subject)?;
        self.within_tenant(principal, kind, subject, &row.tenants)?;
        let mut d = self.draft(actor, kind, subject.as_str());
        d.purpose = purpose.to_string();
        d.effect = if given { "given" } else { "withdrawn" }.into();
        d.reasons = method.to_string();
        // INVARIANT: audit before data.
        self.record(d)?;
        self.store.put_consent(&ConsentRow {
            subject: subject.0.clone(),
            purpose: purpose.to_string(),
            kind: kind.to_string(),
            given,
            notice: self.policy.version().to_string(),
            method: method.to_string(),
            time_ms: now_ms(),
            recipient: None,
            evidence: None,
        })?;
        Ok(())
    }
}

/// The blocking form of a `begin_*` call: runs `begin` with a `done` that hands its outcome
/// back, and waits for it (`begin`'s own error returns at once: `done` is then never called).
pub(super) fn waiting<T: Send + 'static>(
    begin: impl FnOnce(Box<dyn FnOnce(Result<T>) + Send>) -> Result<()>,
) -> Result<T> {
    let (tx, answer) = std::sync::mpsc::sync_channel(1);
    begin(Box::new(move |r| {
        let _ = tx.send(r);
    }))?;
    answer
        .recv()
        .map_err(|_| Error::Storage("consent writer stopped".into()))?
}

/// A receipt's id: a UUIDv7 ([`super::uuid_v7`]), so the receipts' index grows at its end
/// (a random id put every receipt in a random page of it, written whole at each commit);
/// unguessable by its 74 random bits. The millisecond it reveals is the receipt's `iat`.
fn receipt_id() -> Result<String> {
    let random = crate::crypto::random_bytes::<10>()?;
    Ok(super::uuid_v7_with(&random).hyphenated().to_string())
}
