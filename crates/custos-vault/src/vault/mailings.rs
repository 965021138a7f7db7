//! Mailings (issue 14, item 4): a service (or staff, or the operator) asks the vault to send
//! one message for a purpose to every person eligible for it, and each person can leave with
//! one click (RFC 8058).
//!
//! **Who may send:** an accessor the policy lets use `contact.email` for the purpose (its
//! limit for the purpose holds the category); staff (`[rights] staff`, a key of no tenant)
//! and the operator send as the accessor the policy lets mail for the purpose
//! ([`Vault::mailing_sender`]). Anyone else is refused (`mailing_not_allowed`, naming
//! `purpose`) and the refusal ledgered. The purpose must be a communication purpose: basis
//! `consent` or `opt_out`, disclosing to no recipient (`not_a_mailing_purpose`).
//!
//! **Who receives:** every subject holding a `contact.email` value, each decided as a read
//! of that category for the purpose by the sending accessor (`Policy::decide_with`): consent,
//! objection, status and age decide. A tenant-bound key reaches only its tenant's people;
//! the others are not counted (to it they do not exist). The excluded are counted by the
//! decision's reason code (`objected`, `consent_missing`, `subject_deactivated`, …) and
//! `no_address` for a person with no address, or with one that cannot be mailed (found once
//! decrypted: that person's `mail` entry is followed by a `failed` one). Only an eligible
//! person's address is decrypted.
//!
//! **Audit before data:** the mailing's entry (`mailing`) and one entry per decided person
//! (`mail`, `contact.email`, the purpose, `mailing:<id>` and the refusal's reason) are
//! appended in one group and durable before any address is decrypted or any message stored.
//! The messages and the mailing row are then stored in one transaction; a store failure
//! ledgers `failed`.
//!
//! **Every message** carries the RFC 8058 header fields — `List-Unsubscribe: <URL>,
//! <mailto:…>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click` — and ends with the
//! unsubscribe instructions (C031): the one-click link, the unsubscribe address and the
//! postal address of the policy's `[contacts]` (C032, C033).
//!
//! **The unsubscribe token** is `base64url(mailing id ‖ subject id ‖ MAC)`: two UUIDs (no
//! personal information) and the first 16 bytes of HMAC-SHA256, under the vault's
//! `unsubscribe` secret, over both ids and the mailing's purpose. It cannot be forged or
//! moved to another person or mailing; [`Vault::verify_unsubscribe_token`] checks it in
//! constant time. [`Vault::unsubscribe`] records the objection (opt-out purpose) or the
//! withdrawal of consent (opt-in purpose) through the consent machinery (method
//! `one_click_unsubscribe`, actor `person`, a signed receipt), so the next decision refuses;
//! a second click changes nothing.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use custos_policy::{Basis, CategoryId, PurposeId, PurposeInfo, Reference, Request};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::consent::{ConsentBy, ConsentChange, ConsentInput};
use super::mail::{MAX_MAIL_BODY, Mail};
use super::{Actor, EMAIL_CATEGORY, OPERATOR, SubjectId, Vault, format_date_time, uuid_v7};
use crate::crypto::{DataKey, Entropy, Secret};
use crate::error::{Error, Result};
use crate::ledger::Draft;
use crate::store::{Age, MailRow, MailingRow, Status, SubjectState, now_ms};

/// The ledger action of a mailing.
pub const MAILING: &str = "mailing";
/// The ledger action of one person's decision in a mailing.
pub const MAILING_RECIPIENT: &str = "mail";
/// The consent method a one-click unsubscribe records.
pub const ONE_CLICK: &str = "one_click_unsubscribe";
/// The exclusion of a person with no address, or whose stored address cannot be mailed
/// (blank, or longer than an address is).
pub const NO_ADDRESS: &str = "no_address";
/// Bytes of a mailing's subject line at most.
pub const MAX_MAILING_SUBJECT: usize = 998;
/// Bytes of a mailing's text (or HTML) at most, before the footer.
pub const MAX_MAILING_TEXT: usize = MAX_MAIL_BODY - 4096;
/// Characters of an unsubscribe token.
pub const TOKEN_CHARS: usize = 64;
/// The `List-Unsubscribe-Post` value of RFC 8058.
pub const ONE_CLICK_POST: &str = "List-Unsubscribe=One-Click";

const MAC_BYTES: usize = 16;
const TOKEN_BYTES: usize = 16 + 16 + MAC_BYTES;
const TOKEN_DOMAIN: &[u8] = b"custos/unsubscribe/v1\0";

/// A mailing to send (`POST /v1/mailings`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailingInput {
    /// The purpose: a communication purpose (basis consent or opt-out, no recipient).
    pub purpose: String,
    /// The subject line.
    pub subject: String,
    /// The body, plain text; the unsubscribe footer is added.
    pub text: String,
    /// An HTML body besides the text, if any; the footer is added to it too.
    pub html: Option<String>,
}

/// Who sends a mailing.
#[derive(Debug, Clone, Copy)]
pub enum MailingBy<'a> {
    /// A key: a service entitled to the purpose, or staff.
    Accessor(Actor<'a>),
    /// The operator at the console.
    Operator,
}

impl<'a> From<Actor<'a>> for MailingBy<'a> {
    fn from(a: Actor<'a>) -> Self {
        Self::Accessor(a)
    }
}

impl<'a> From<&'a str> for MailingBy<'a> {
    fn from(a: &'a str) -> Self {
        Self::Accessor(a.into())
    }
}

/// What a mailing did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailingSent {
    /// Its id (a UUIDv7).
    pub mailing: String,
    /// The purpose.
    pub purpose: String,
    /// Messages queued in the outbox: one per eligible person.
    pub recipients: u64,
    /// People excluded, by reason code.
    pub excluded: BTreeMap<String, u64>,
    /// When it was sent, UTC (RFC 3339).
    pub time: String,
}

/// A stored mailing, as `GET /v1/mailings/{id}` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailingInfo {
    /// The counts.
    pub sent: MailingSent,
    /// Who sent it (an accessor, or `operator`).
    pub actor: String,
    /// Its subject line.
    pub subject: String,
}

/// A verified unsubscribe token: whom and what it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubscribeToken {
    /// The mailing it came with.
    pub mailing: String,
    /// The person (subject) it was sent to.
    pub subject: SubjectId,
    /// The mailing's purpose.
    pub purpose: String,
}

/// What a one-click unsubscribe did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribed {
    /// The purpose left.
    pub purpose: String,
    /// Its name in the notice.
    pub purpose_name: String,
    /// `false`: this click recorded the choice; `true`: the person was already unsubscribed
    /// (or is no longer held), nothing was recorded.
    pub already: bool,
    /// The consent receipt of the change, when one was recorded.
    pub receipt: Option<String>,
}

/// The MAC key of unsubscribe tokens: a vault secret.
pub(crate) struct TokenKey(Secret);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(..)")
    }
}

impl TokenKey {
    pub(crate) fn new(secret: Secret) -> Self {
        Self(secret)
    }

    fn mac(&self, mailing: &[u8; 16], subject: &[u8; 16], purpose: &str) -> Result<[u8; 32]> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.0.as_slice())
            .map_err(|_| Error::Crypto("bad key length"))?;
        mac.update(TOKEN_DOMAIN);
        mac.update(mailing);
        mac.update(subject);
        mac.update(purpose.as_bytes());
        Ok(mac.finalize().into_bytes().into())
    }

    fn token(&self, mailing: &Uuid, subject: &Uuid, purpose: &str) -> Result<String> {
        let (m, s) = (mailing.as_bytes(), subject.as_bytes());
        let mac = self.mac(m, s, purpose)?;
        let mut raw = [0u8; TOKEN_BYTES];
        raw[..16].copy_from_slice(m);
        raw[16..32].copy_from_slice(s);
        raw[32..].copy_from_slice(&mac[..MAC_BYTES]);
        Ok(B64.encode(raw))
    }
}

fn invalid_token() -> Error {
    Error::invalid(
        "invalid_token",
        "this unsubscribe link is not valid: it may have been cut or changed; use the link of the message exactly as received",
    )
}

fn field(code: &'static str, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: field.into(),
        message: message.into(),
    }
}

/// The public base URL as the links need it: `http(s)://host[:port][/path]`, no trailing
/// slash.
fn checked_base(base_url: &str) -> Result<&str> {
    let base = base_url.trim_end_matches('/');
    let ok = (base.starts_with("https://") || base.starts_with("http://"))
        && base.len() <= 512
        && base
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>\"'`\\{}|^, ".contains(&b));
    if ok {
        Ok(base)
    } else {
        Err(Error::invalid(
            "invalid_public_url",
            "the server's public URL (`--public-url`) must be http(s)://host[:port][/path]",
        ))
    }
}

/// Per person: what the mailing decided.
enum Outcome {
    /// Out of the key's tenant: not counted, not ledgered.
    Unreachable,
    /// No address held: counted.
    NoAddress,
    /// Decided and refused, with the reason.
    Refused(&'static str),
    /// Decided and permitted.
    Eligible,
}

impl Vault {
    /// The accessor a mailing for `purpose` is decided as, when `by` may send it: the
    /// caller's own accessor when the policy lets it use `contact.email` for the purpose;
    /// for staff and the operator, the first accessor of the policy that may (acting for no
    /// recipient and no tenant). `Err` names the reason (`mailing_not_allowed`,
    /// `not_a_mailing_purpose`).
    pub fn mailing_sender(&self, by: MailingBy<'_>, purpose: &str) -> Result<String> {
        let (pid, _) = self.mailing_purpose(purpose)?;
        let email = self.email_category()?;
        let entitled = |a: &custos_policy::AccessorInfo| {
            a.limits
                .get(pid.index())
                .copied()
                .flatten()
                .is_some_and(|set| set.contains(email))
        };
        let mailer = || {
            self.policy
                .accessors()
                .iter()
                .find(|a| a.recipient.is_none() && !a.tenant_bound && entitled(a))
                .map(|a| a.id.clone())
        };
        let found = match by {
            MailingBy::Operator => mailer(),
            MailingBy::Accessor(actor) => {
                let id = self
                    .policy
                    .accessor_id(actor.accessor)
                    .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
                let info = self.policy.accessor(id).ok_or(Error::Unauthorized)?;
                if entitled(info) {
                    Some(info.id.clone())
                } else if self.policy.is_staff(id) && actor.tenant.is_none() {
                    mailer()
                } else {
                    return Err(field(
                        "mailing_not_allowed",
                        "purpose",
                        format!(
                            "the policy does not let `{}` use `{EMAIL_CATEGORY}` for `{purpose}`; only an accessor it does, or staff, sends this mailing",
                            info.id
                        ),
                    ));
                }
            }
        };
        found.ok_or_else(|| {
            field(
                "not_a_mailing_purpose",
                "purpose",
                format!("the policy lets no accessor use `{EMAIL_CATEGORY}` for `{purpose}`"),
            )
        })
    }

    fn email_category(&self) -> Result<CategoryId> {
        self.policy.category_id(EMAIL_CATEGORY).map_err(|_| {
            Error::invalid(
                "no_email_category",
                "the policy declares no `contact.email`",
            )
        })
    }

    /// The purpose of a mailing, checked: declared, basis consent or opt-out, no recipient.
    fn mailing_purpose(&self, purpose: &str) -> Result<(PurposeId, &PurposeInfo)> {
        let id = self
            .policy
            .purpose_id(purpose)
            .map_err(|e| field("unknown_purpose", "purpose", e.message))?;
        let info = self
            .policy
            .purpose(id)
            .ok_or_else(|| field("unknown_purpose", "purpose", "no such purpose"))?;
        if !matches!(info.basis, Basis::Consent | Basis::OptOut) || info.requires_recipient {
            return Err(field(
                "not_a_mailing_purpose",
                "purpose",
                format!(
                    "a mailing is for a purpose people can leave (basis consent or opt_out, no recipient); `{purpose}` rests on `{}`",
                    info.basis.as_str()
                ),
            ));
        }
        Ok((id, info))
    }

    fn check_mailing_input(input: &MailingInput) -> Result<()> {
        let subject = input.subject.trim();
        if subject.is_empty()
            || input.subject.len() > MAX_MAILING_SUBJECT
            || input.subject.bytes().any(|b| b == b'\r' || b == b'\n')
        {
            return Err(field(
                "invalid_subject",
                "subject",
                "a subject line is one line of 1 to 998 bytes",
            ));
        }
        if input.text.trim().is_empty() || input.text.len() > MAX_MAILING_TEXT {
            return Err(field(
                "invalid_text",
                "text",
                format!("the text is 1 to {MAX_MAILING_TEXT} bytes"),
            ));
        }
        if input
            .html
            .as_ref()
            .is_some_and(|h| h.trim().is_empty() || h.len() > MAX_MAILING_TEXT)
        {
            return Err(field(
                "invalid_html",
                "html",
                format!("the HTML is 1 to {MAX_MAILING_TEXT} bytes, or left out"),
            ));
        }
        Ok(())
    }

    /// Sends a mailing (see the module's documentation): decides every person holding an
    /// address, ledgers, and queues one message per eligible person in the outbox, with the
    /// RFC 8058 header fields and the unsubscribe footer; links start with `base_url` (the
    /// server's public URL).
    pub fn send_mailing<'a>(
        &self,
        by: impl Into<MailingBy<'a>>,
        input: &MailingInput,
        base_url: &str,
    ) -> Result<MailingSent> {
        let by = by.into();
        let (actor_name, tenant) = match by {
            MailingBy::Accessor(a) => (self.declared_accessor(a.accessor).to_string(), a.tenant),
            MailingBy::Operator => (OPERATOR.to_string(), None),
        };
        let refuse = |e: Error| -> Result<MailingSent> {
            let mut d = self.draft(&actor_name, MAILING, "");
            d.purpose = self.declared_purpose(&input.purpose);
            d.categories = EMAIL_CATEGORY.into();
            d.effect = "refused".into();
            d.reasons = e.code().into();
            self.record(d)?;
            Err(e)
        };
        let sender = match self.mailing_sender(by, &input.purpose) {
            Ok(s) => s,
            Err(e) => return refuse(e),
        };
        Self::check_mailing_input(input)?;
        let base = checked_base(base_url)?;
        let (pid, info) = self.mailing_purpose(&input.purpose)?;
        let email = self.email_category()?;
        let sender_id = self
            .policy
            .accessor_id(&sender)
            .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
        // The decisions are made as the sender, held to the key's tenant.
        let decider = Actor {
            accessor: &sender,
            tenant,
            channel: super::Channel::Local,
        };
        let audience = self.store.mailing_audience(EMAIL_CATEGORY)?;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let chunk = audience.len().div_ceil(threads).max(1);
        let req = Request {
            accessor: sender_id,
            purpose: pid,
            categories: [email].into_iter().collect(),
            recipient: None,
            has_reference: false,
        };
        let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
            let handles: Vec<_> = audience
                .chunks(chunk)
                .map(|part| {
                    let req = &req;
                    scope.spawn(move || {
                        part.iter()
                            .map(|(_, state)| self.mailing_outcome(decider, req, email, state))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        if outcomes.len() != audience.len() {
            return Err(Error::Crypto("a deciding thread stopped"));
        }
        let rng = &mut Entropy::new();
        let mailing_uuid = uuid_v7(rng)?;
        let mailing = mailing_uuid.hyphenated().to_string();
        let tag = format!("mailing:{mailing}");
        let mut excluded: BTreeMap<String, u64> = BTreeMap::new();
        let mut eligible: Vec<&(String, SubjectState)> = Vec::new();
        let mut drafts = Vec::with_capacity(audience.len() + 1);
        let now = now_ms();
        let entry = |subject: &str, effect: &str, reasons: String| Draft {
            time_ms: now,
            actor: actor_name.clone(),
            action: MAILING_RECIPIENT.into(),
            subject: subject.to_string(),
            purpose: info.id.clone(),
            recipient: String::new(),
            categories: EMAIL_CATEGORY.into(),
            effect: effect.into(),
            reasons,
        };
        for (member, outcome) in audience.iter().zip(&outcomes) {
            match outcome {
                Outcome::Unreachable => {}
                Outcome::NoAddress => *excluded.entry(NO_ADDRESS.into()).or_default() += 1,
                Outcome::Refused(code) => {
                    *excluded.entry((*code).to_string()).or_default() += 1;
                    drafts.push(entry(&member.0, "deny", format!("{tag},{code}")));
                }
                Outcome::Eligible => {
                    eligible.push(member);
                    drafts.push(entry(&member.0, "permit", tag.clone()));
                }
            }
        }
        let mut head = self.draft(&actor_name, MAILING, "");
        head.time_ms = now;
        head.purpose = info.id.clone();
        head.categories = EMAIL_CATEGORY.into();
        head.effect = "permit".into();
        head.reasons = if sender == actor_name {
            tag.clone()
        } else {
            format!("{tag},as:{sender}")
        };
        drafts.insert(0, head);
        // INVARIANT: audit before data — every decision is durable before an address is
        // decrypted or a message stored.
        self.ledger.append_many(drafts)?;
        let sealed_subject =
            self.outbox
                .seal(rng, &format!("mailing:{mailing}"), input.subject.as_bytes())?;
        let footer = self.footer_parts(&info.name);
        let stored = self
            .compose_all(
                &eligible,
                &mailing_uuid,
                info,
                input,
                base,
                &footer,
                threads,
            )
            .and_then(|composed| {
                // A person the policy let the mailing reach whose stored address cannot be
                // mailed (found only now: no address is decrypted before the decisions are
                // durable) is excluded, and the ledger says so; the others are sent.
                let mut mails = Vec::with_capacity(composed.len());
                let mut unmailable = Vec::new();
                for (member, mail) in eligible.iter().zip(composed) {
                    match mail {
                        Some(m) => mails.push(m),
                        None => unmailable.push(entry(
                            &member.0,
                            "failed",
                            format!("{tag},{NO_ADDRESS}"),
                        )),
                    }
                }
                if !unmailable.is_empty() {
                    *excluded.entry(NO_ADDRESS.into()).or_default() += unmailable.len() as u64;
                    self.ledger.append_many(unmailable)?;
                }
                let row = MailingRow {
                    id: mailing.clone(),
                    purpose: info.id.clone(),
                    actor: actor_name.clone(),
                    tenant: tenant.map(str::to_string),
                    subject: sealed_subject,
                    recipients: mails.len() as u64,
                    excluded: excluded
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect::<Vec<_>>()
                        .join(","),
                    created_ms: now,
                };
                self.store.put_mailing(&row, &mails)?;
                Ok(row.recipients)
            });
        let recipients = match stored {
            Ok(n) => n,
            Err(e) => {
                let mut d = self.draft(&actor_name, MAILING, "");
                d.purpose = info.id.clone();
                d.categories = EMAIL_CATEGORY.into();
                d.effect = "failed".into();
                d.reasons = format!("{tag},{}", e.code());
                self.record(d)?;
                return Err(e);
            }
        };
        Ok(MailingSent {
            mailing,
            purpose: info.id.clone(),
            recipients,
            excluded,
            time: format_date_time(now),
        })
    }

    /// The decision about one person of the audience.
    fn mailing_outcome(
        &self,
        decider: Actor<'_>,
        req: &Request,
        email: CategoryId,
        state: &SubjectState,
    ) -> Outcome {
        if self.reaches(decider, None, &state.tenants).is_err() {
            return Outcome::Unreachable;
        }
        if state.values.is_empty() {
            return Outcome::NoAddress;
        }
        let subject = self.policy_subject(
            state.status,
            state.age,
            &state.values,
            &state.consents,
            None,
        );
        let decision = self.policy.decide_with(req, &subject, Reference::Absent);
        if decision.permitted.contains(email) {
            return Outcome::Eligible;
        }
        let code = decision
            .denial
            .or_else(|| decision.withheld.first().map(|w| w.reason))
            .map_or("denied", |r| r.code());
        Outcome::Refused(code)
    }

    /// The outbox rows of the eligible, sealed on every core, in their order (`None` for a
    /// person whose stored address cannot be mailed).
    #[expect(clippy::too_many_arguments, reason = "one mailing's parts, each named")]
    fn compose_all(
        &self,
        eligible: &[&(String, SubjectState)],
        mailing: &Uuid,
        info: &PurposeInfo,
        input: &MailingInput,
        base: &str,
        footer: &Footer,
        threads: usize,
    ) -> Result<Vec<Option<MailRow>>> {
        let chunk = eligible.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            let handles: Vec<_> = eligible
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        let mut rng = Entropy::new();
                        part.iter()
                            .map(|(id, state)| {
                                self.compose(
                                    &mut rng, id, state, mailing, info, input, base, footer,
                                )
                            })
                            .collect::<Result<Vec<_>>>()
                    })
                })
                .collect();
            let mut out: Vec<Option<MailRow>> = Vec::with_capacity(eligible.len());
            for h in handles {
                out.extend(
                    h.join()
                        .map_err(|_| Error::Crypto("a sealing thread stopped"))??,
                );
            }
            Ok(out)
        })
    }

    /// One person's message, sealed; `None` when their stored address cannot be mailed
    /// ([`super::mail::mailable`]).
    #[expect(clippy::too_many_arguments, reason = "one message's parts, each named")]
    fn compose(
        &self,
        rng: &mut Entropy,
        id: &str,
        state: &SubjectState,
        mailing: &Uuid,
        info: &PurposeInfo,
        input: &MailingInput,
        base: &str,
        footer: &Footer,
    ) -> Result<Option<MailRow>> {
        let value = state.values.first().ok_or(Error::SubjectNotFound)?;
        let wrapped = state.wrapped_dek.as_deref().ok_or(Error::SubjectNotFound)?;
        let dek = DataKey::unwrap(&self.kek, id, wrapped)?;
        let plain = Zeroizing::new(dek.open_value(id, &value.category, &value.ciphertext)?);
        let to = Zeroizing::new(
            String::from_utf8(plain.to_vec())
                .map_err(|_| Error::Crypto("an address does not decode"))?,
        );
        if !super::mail::mailable(to.trim()) {
            return Ok(None);
        }
        let subject = Uuid::parse_str(id).map_err(|_| Error::SubjectNotFound)?;
        let token = self.tokens.token(mailing, &subject, &info.id)?;
        let url = format!("{base}/u/{token}");
        let mut headers = Vec::with_capacity(2);
        let mailto = footer
            .address
            .as_ref()
            .map(|a| format!(", <mailto:{a}?subject=unsubscribe-{token}>"))
            .unwrap_or_default();
        headers.push(("List-Unsubscribe".to_string(), format!("<{url}>{mailto}")));
        headers.push((
            "List-Unsubscribe-Post".to_string(),
            ONE_CLICK_POST.to_string(),
        ));
        let mail = Mail {
            to: to.trim().to_string(),
            subject: input.subject.clone(),
            text: format!("{}\n\n{}", input.text.trim_end(), footer.text(&url, &token)),
            headers,
            html: input
                .html
                .as_ref()
                .map(|h| format!("{h}\n{}", footer.html(&url, &token))),
        };
        self.seal_mail(rng, &mail).map(Some)
    }

    /// The footer's parts: the ways to unsubscribe the policy's `unsubscribe` right offers
    /// besides the link (`email`: its `[contacts]` address; `postal`: its postal address).
    fn footer_parts(&self, purpose_name: &str) -> Footer {
        let contacts = self.policy.contacts();
        let address = contacts
            .unsubscribes_by("email")
            .then(|| {
                contacts
                    .unsubscribe_email
                    .as_ref()
                    .or(contacts.privacy_email.as_ref())
            })
            .flatten()
            .cloned()
            .filter(|e| {
                !e.is_empty()
                    && e.bytes()
                        .all(|b| b.is_ascii_graphic() && !b"<>\"'?&,".contains(&b))
            });
        Footer {
            purpose: purpose_name.to_string(),
            controller: self.policy.header().controller.clone(),
            address,
            postal: Some(contacts.postal_address.join(", "))
                .filter(|p| !p.is_empty() && contacts.unsubscribes_by("postal")),
        }
    }

    /// A mailing by id, for its sender (the same accessor and tenant), staff and the
    /// operator; `None` for any other caller, as for no such mailing.
    pub fn mailing<'a>(
        &self,
        by: impl Into<MailingBy<'a>>,
        id: &str,
    ) -> Result<Option<MailingInfo>> {
        let by = by.into();
        let Some(row) = self.store.mailing(id)? else {
            return Ok(None);
        };
        let visible = match by {
            MailingBy::Operator => true,
            MailingBy::Accessor(a) => {
                (a.accessor == row.actor && a.tenant == row.tenant.as_deref())
                    || (a.tenant.is_none()
                        && self
                            .policy
                            .accessor_id(a.accessor)
                            .is_ok_and(|id| self.policy.is_staff(id)))
            }
        };
        if !visible {
            return Ok(None);
        }
        let subject = self
            .outbox
            .open(&format!("mailing:{}", row.id), &row.subject)
            .ok()
            .and_then(|s| String::from_utf8(s).ok())
            .unwrap_or_default();
        let excluded = row
            .excluded
            .split(',')
            .filter_map(|p| p.split_once(':'))
            .filter_map(|(k, v)| Some((k.to_string(), v.parse().ok()?)))
            .collect();
        Ok(Some(MailingInfo {
            sent: MailingSent {
                mailing: row.id,
                purpose: row.purpose,
                recipients: row.recipients,
                excluded,
                time: format_date_time(row.created_ms),
            },
            actor: row.actor,
            subject,
        }))
    }

    /// Checks an unsubscribe token (from `POST /u/{token}`, or the subject line of a mail to
    /// the unsubscribe address: `unsubscribe-<token>`) in constant time, and says whom and
    /// what it is about. A token cut, changed, made up or moved to another person or mailing
    /// is `invalid_token`.
    pub fn verify_unsubscribe_token(&self, token: &str) -> Result<UnsubscribeToken> {
        if token.len() != TOKEN_CHARS {
            return Err(invalid_token());
        }
        let raw = B64.decode(token).map_err(|_| invalid_token())?;
        let raw: [u8; TOKEN_BYTES] = raw.try_into().map_err(|_| invalid_token())?;
        let (ids, given) = raw.split_at(32);
        let (m, s) = ids.split_at(16);
        let m: [u8; 16] = m.try_into().map_err(|_| invalid_token())?;
        let s: [u8; 16] = s.try_into().map_err(|_| invalid_token())?;
        let mailing = Uuid::from_bytes(m).hyphenated().to_string();
        // An unknown mailing is checked against a purpose all the same, so the answer takes
        // as long.
        let row = self.store.mailing(&mailing)?;
        let purpose = row.as_ref().map_or("", |r| r.purpose.as_str());
        let mac = self.tokens.mac(&m, &s, purpose)?;
        let ok: bool = mac[..MAC_BYTES].ct_eq(given).into();
        match row {
            Some(r) if ok => Ok(UnsubscribeToken {
                mailing,
                subject: SubjectId::parse(&Uuid::from_bytes(s).hyphenated().to_string())
                    .map_err(|_| invalid_token())?,
                purpose: r.purpose,
            }),
            _ => Err(invalid_token()),
        }
    }

    /// What the confirmation page shows for a token: the purpose's name. Changes nothing.
    pub fn unsubscribe_preview(&self, token: &str) -> Result<(UnsubscribeToken, String)> {
        let t = self.verify_unsubscribe_token(token)?;
        let name = self
            .policy
            .purpose_id(&t.purpose)
            .ok()
            .and_then(|p| self.policy.purpose(p))
            .map_or_else(|| t.purpose.clone(), |p| p.name.clone());
        Ok((t, name))
    }

    /// The one-click unsubscribe (RFC 8058): verifies the token and records the person's
    /// objection (opt-out purpose) or withdrawal of consent (opt-in purpose) for the
    /// mailing's purpose, with a receipt, so the next decision refuses. Idempotent: when the
    /// person is already out of the purpose (or no longer held), nothing is recorded.
    pub fn unsubscribe(&self, token: &str) -> Result<Unsubscribed> {
        super::consent::waiting(|done| self.begin_unsubscribe(token, done))
    }

    /// [`Vault::unsubscribe`] without waiting for the change's commits: the token verified,
    /// the person's state read once, the change checked and its receipt signed here, then
    /// queued for the next group commit; `done` is called with the outcome once its entry is
    /// durable and its record stored — at once when there is nothing to record — on the
    /// consent writer's thread or this one. An error returned here means `done` is never
    /// called.
    pub fn begin_unsubscribe(
        &self,
        token: &str,
        done: impl FnOnce(Result<Unsubscribed>) + Send + 'static,
    ) -> Result<()> {
        let (t, purpose_name) = self.unsubscribe_preview(token)?;
        let (_, info) = self
            .mailing_purpose(&t.purpose)
            .map_err(|_| invalid_token())?;
        let state = self
            .store
            .subject_state(t.subject.as_str())?
            .filter(|s| s.status != Status::Erased);
        let answer = move |receipt: Option<String>| Unsubscribed {
            purpose: t.purpose,
            purpose_name,
            already: receipt.is_none(),
            receipt,
        };
        let Some(state) = state else {
            done(Ok(answer(None)));
            return Ok(());
        };
        let (consents, objections) = self.consent_state(&state.consents, None);
        let on = match info.basis {
            Basis::Consent => {
                info.consent_scope.intersects(&consents) && !info.ancestors.intersects(&objections)
            }
            _ => !info.ancestors.intersects(&objections),
        };
        if !on {
            done(Ok(answer(None)));
            return Ok(());
        }
        // A person under the minimum age is not held: nothing of theirs is recorded.
        if state.age == Age::UnderMinimum {
            return Err(Error::SubjectNotFound);
        }
        let input = ConsentInput {
            purpose: info.id.clone(),
            recipient: None,
            given: false,
            method: ONE_CLICK.into(),
            notice: self.policy.version().to_string(),
        };
        let by = ConsentBy::Unsubscribe(&t.mailing);
        let info = self.checked_choice(by, &t.subject, &input)?;
        self.begin_change(by, &t.subject, &state, info, &input, move |r| {
            done(r.map(|change: ConsentChange| answer(Some(change.receipt))));
        })
    }
}

/// The unsubscribe instructions every message ends with (C031, C032, C033).
struct Footer {
    purpose: String,
    controller: String,
    address: Option<String>,
    postal: Option<String>,
}

impl Footer {
    fn text(&self, url: &str, token: &str) -> String {
        let mut out = format!(
            "--\nYou receive this message from {} about: {}.\nTo unsubscribe from these messages with one click, open:\n{url}\n",
            self.controller, self.purpose
        );
        if let Some(a) = &self.address {
            out.push_str(&format!(
                "Or send an email to {a} with the subject line \"unsubscribe-{token}\".\n"
            ));
        }
        if let Some(p) = &self.postal {
            out.push_str(&format!("Or write to: {p}.\n"));
        }
        out
    }

    fn html(&self, url: &str, token: &str) -> String {
        let e = custos_policy::render::html_escape;
        let mut out = format!(
            "<hr><p>You receive this message from {} about: {}.<br>To unsubscribe from these messages with one click, open <a href=\"{}\">{}</a>.",
            e(&self.controller),
            e(&self.purpose),
            e(url),
            e(url)
        );
        if let Some(a) = &self.address {
            out.push_str(&format!(
                "<br>Or send an email to {} with the subject line “unsubscribe-{}”.",
                e(a),
                e(token)
            ));
        }
        if let Some(p) = &self.postal {
            out.push_str(&format!("<br>Or write to: {}.", e(p)));
        }
        out.push_str("</p>");
        out
    }
}
