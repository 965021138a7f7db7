//! Referral (issue 14, item 7; C027): a person asks a service to send one email to a friend,
//! giving the friend's name and address; "WebEx does not store the personal information of
//! the third party".
//!
//! **Who may refer:** a service's key whose accessor holds the referrer (one of its services
//! collected a value about them, and a tenant-bound key reaches only its tenant's people) —
//! anyone else is answered as for a subject never held — and that the policy lets do it: the
//! accessor pursues the purpose `referral` (`purpose_not_allowed_for_accessor`), its limit
//! for it covers `referral.name` and `referral.email` (`exceeds_minimum_necessary`), and
//! one of its services has a role whose collection of those two categories for `referral`
//! the collection check allows, keeping both transient (`referral_not_offered`). A
//! deactivated referrer is `subject_deactivated`. Each refusal is ledgered.
//!
//! **What is kept:** the friend's name and address exist only inside the sealed outbox
//! message (`vault/mail.rs`: sealed under the outbox key before it reaches the store; its
//! content deleted once sent or given up). The `referral` ledger entry names the referrer,
//! the purpose, the two categories and the message's id, never the friend; it is durable
//! before the message is stored (audit before data).
//!
//! **Abuse:** a referral is one mail to one address, so it is a spam relay's tool. The name
//! is at most [`MAX_REFERRAL_NAME`] characters, the message [`MAX_REFERRAL_MESSAGE`], neither
//! with control characters (but line breaks in the message); the address is one plain
//! `local@domain` (no display name, list, comment or line break: no header injection); and
//! a referrer makes at most [`MAX_REFERRALS_PER_DAY`] in 24 hours (`rate_limited`), counted
//! from the ledger's own `referral` entries about them, so the limit holds across restarts
//! and servers sharing a store.
//!
//! The mail says "a WebEx user" sent it: naming the referrer would be a use of their
//! `contact.name` for `referral`, which their collection need not cover, and the friend
//! learns the sender from the message if the referrer signs it.

use std::sync::{Mutex, PoisonError};

use custos_policy::CollectionRequest;

use super::mail::Mail;
use super::{Actor, SubjectId, Vault};
use crate::crypto::Entropy;
use crate::error::{Error, Result};
use crate::store::{Age, Status, now_ms};

/// The ledger action of a referral.
pub const REFERRAL: &str = "referral";
/// The purpose a referral serves.
pub const REFERRAL_PURPOSE: &str = "referral";
/// The categories a referral takes: the friend's name and address.
pub const REFERRAL_CATEGORIES: [&str; 2] = ["referral.name", "referral.email"];
/// Characters of the friend's name at most.
pub const MAX_REFERRAL_NAME: usize = 128;
/// Characters of the referrer's message at most.
pub const MAX_REFERRAL_MESSAGE: usize = 1000;
/// Referrals one referrer makes in 24 hours at most.
pub const MAX_REFERRALS_PER_DAY: usize = 5;

const DAY_MS: i64 = 86_400_000;

/// One count-and-record at a time in this process, so two referrals racing cannot both pass
/// the limit's last place.
static REFERRING: Mutex<()> = Mutex::new(());

/// A referral to send (`POST /v1/referrals`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ReferralInput {
    /// The referrer: a subject the caller holds.
    pub subject: String,
    /// The friend's name.
    pub name: String,
    /// The friend's address.
    pub email: String,
    /// The referrer's words, if any.
    pub message: Option<String>,
}

/// Names nothing of the friend.
impl std::fmt::Debug for ReferralInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReferralInput")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

/// A referral queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    /// The outbox message's id.
    pub mail: String,
    /// The ledger entry's sequence number.
    pub ledger_seq: u64,
    /// Referrals the referrer may still make in the current 24 hours.
    pub remaining: usize,
}

fn field(code: &'static str, name: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: name.to_string(),
        message: message.into(),
    }
}

/// The friend's address: one plain `local@domain` of printable ASCII, nothing a header
/// could be split on.
fn plain_address(email: &str) -> Result<&str> {
    let ok = (3..=254).contains(&email.len())
        && email
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"<>()[]\\,;:\"".contains(&b))
        && email.split_once('@').is_some_and(|(l, d)| {
            !l.is_empty()
                && l.len() <= 64
                && d.contains('.')
                && !d.contains('@')
                && !d.starts_with('.')
                && !d.ends_with('.')
        });
    if ok {
        Ok(email)
    } else {
        Err(field(
            "invalid_email",
            "email",
            "one plain address, `local@domain`, without a name, spaces or line breaks",
        ))
    }
}

fn check_text(value: &str, name: &str, max: usize, lines: bool) -> Result<()> {
    if value.trim().is_empty() && !lines {
        return Err(field("missing_field", name, "give the friend's name"));
    }
    if value.chars().count() > max {
        return Err(field(
            "invalid_field",
            name,
            format!("at most {max} characters"),
        ));
    }
    let bad = value
        .chars()
        .any(|c| c.is_control() && !(lines && (c == '\n' || c == '\r')));
    if bad {
        return Err(field(
            "invalid_field",
            name,
            if lines {
                "no control characters but line breaks"
            } else {
                "one line, no control characters"
            },
        ));
    }
    Ok(())
}

impl Vault {
    /// Sends one referral mail for `input.subject` (see the module's documentation);
    /// returns the queued message's id. Every refusal is ledgered, never with the friend's
    /// name or address.
    pub fn refer<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        input: &ReferralInput,
    ) -> Result<Referral> {
        let actor = actor.into();
        let who = self.declared_accessor(actor.accessor).to_string();
        let subject = SubjectId::parse(&input.subject).map_err(|_| Error::SubjectNotFound)?;
        let refuse = |reason: &str| -> Result<()> {
            let mut d = self.draft(&who, REFERRAL, subject.as_str());
            d.purpose = REFERRAL_PURPOSE.into();
            d.categories = REFERRAL_CATEGORIES.join(",");
            d.effect = "refused".into();
            d.reasons = reason.into();
            self.record(d).map(|_| ())
        };
        // The referrer: held by the caller, within its tenant; else no such subject.
        let state = self
            .store
            .subject_state(subject.as_str())?
            .filter(|s| s.status != Status::Erased && s.age != Age::UnderMinimum);
        let held = state
            .as_ref()
            .is_some_and(|s| self.holds_for(actor.accessor, &s.values));
        let Some(state) = state.filter(|_| held) else {
            refuse("subject_not_held")?;
            return Err(Error::SubjectNotFound);
        };
        if let Err(reason) = self.reaches(actor, None, &state.tenants) {
            refuse(reason)?;
            return Err(Error::SubjectNotFound);
        }
        // The policy: purpose, limit, a role collecting the two categories transiently.
        if let Err(e) = self.referral_permitted(actor.accessor) {
            refuse(e.code())?;
            return Err(e);
        }
        if state.status == Status::Deactivated {
            refuse("subject_deactivated")?;
            return Err(Error::invalid(
                "subject_deactivated",
                "the referrer's account is deactivated; only legal and contractual purposes remain",
            ));
        }
        // The input: shapes only; errors name the field, never the value.
        let checked = check_text(&input.name, "name", MAX_REFERRAL_NAME, false)
            .and_then(|()| plain_address(&input.email).map(|_| ()))
            .and_then(|()| match &input.message {
                Some(m) => check_text(m, "message", MAX_REFERRAL_MESSAGE, true),
                None => Ok(()),
            });
        if let Err(e) = checked {
            refuse(e.code())?;
            return Err(e);
        }
        let mut text = format!(
            "Hello {},\r\n\r\nA WebEx user asked us to send you this one-time message.\r\n",
            input.name.trim()
        );
        if let Some(m) = input.message.as_deref().filter(|m| !m.trim().is_empty()) {
            text.push_str("\r\nTheir message:\r\n\r\n");
            // Lines end CRLF; a lone CR is dropped (no bare CR reaches SMTP).
            for line in m.lines() {
                text.push_str(&line.replace('\r', ""));
                text.push_str("\r\n");
            }
        }
        text.push_str(
            "\r\nWebEx keeps neither your name nor your address: they were used to send this \
             message only, and you will not hear from us again because of it.\r\n",
        );
        let mail = Mail {
            to: input.email.clone(),
            subject: "A WebEx user sent you this".into(),
            text,
            ..Default::default()
        };
        let _one = REFERRING.lock().unwrap_or_else(PoisonError::into_inner);
        let made = self.referrals_since(&subject, now_ms().saturating_sub(DAY_MS))?;
        if made >= MAX_REFERRALS_PER_DAY {
            refuse("rate_limited")?;
            return Err(Error::invalid(
                "rate_limited",
                format!(
                    "a person refers at most {MAX_REFERRALS_PER_DAY} friends in 24 hours; try again later"
                ),
            ));
        }
        let row = self.seal_mail(&mut Entropy::new(), &mail)?;
        let mut d = self.draft(&who, REFERRAL, subject.as_str());
        d.purpose = REFERRAL_PURPOSE.into();
        d.categories = REFERRAL_CATEGORIES.join(",");
        d.effect = "done".into();
        d.reasons = format!("transient,mail:{}", row.id);
        // INVARIANT: audit before data — the entry (the referrer, never the friend) is
        // durable before the sealed message is stored.
        let seq = self.record(d)?;
        self.store.put_mail(&row)?;
        Ok(Referral {
            mail: row.id,
            ledger_seq: seq,
            remaining: MAX_REFERRALS_PER_DAY - made - 1,
        })
    }

    /// Whether the policy lets `accessor` send referrals (see the module's documentation).
    fn referral_permitted(&self, accessor: &str) -> Result<()> {
        let policy = &self.policy;
        let aid = policy
            .accessor_id(accessor)
            .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
        let pid = policy
            .purpose_id(REFERRAL_PURPOSE)
            .map_err(|_| referral_not_offered("the policy declares no purpose `referral`"))?;
        let info = policy
            .accessor(aid)
            .ok_or_else(|| Error::invalid("unknown_accessor", "no such accessor"))?;
        if !info.allowed.contains(pid) {
            return Err(Error::invalid(
                "purpose_not_allowed_for_accessor",
                format!("the policy does not let `{accessor}` pursue `referral`"),
            ));
        }
        let wanted = policy
            .category_set(&REFERRAL_CATEGORIES)
            .map_err(|_| referral_not_offered("the policy declares no referral categories"))?;
        let limit = info.limits.get(pid.index()).copied().flatten();
        if !limit.is_some_and(|l| wanted.difference(l).is_empty()) {
            return Err(Error::invalid(
                "exceeds_minimum_necessary",
                format!(
                    "the policy's limit of `{accessor}` for `referral` does not cover referral.name and referral.email"
                ),
            ));
        }
        let purposes = [REFERRAL_PURPOSE];
        for sid in info.services.iter() {
            let Some(service) = policy.service(sid) else {
                continue;
            };
            for role in &service.roles {
                let plan = policy.check_collection(&CollectionRequest {
                    service: &service.id,
                    role: &role.id,
                    purposes: &purposes,
                    notice: policy.version(),
                    age: None,
                    categories: &REFERRAL_CATEGORIES,
                });
                // C027: collected for the one mail, never stored.
                if plan
                    .is_ok_and(|p| p.store.is_empty() && wanted.difference(p.transient).is_empty())
                {
                    return Ok(());
                }
            }
        }
        Err(referral_not_offered(
            "no service of this accessor has a role collecting referral.name and referral.email for `referral`, keeping them transient",
        ))
    }

    /// The referrer's referrals (sent, not refused) since `since_ms`, from the ledger.
    fn referrals_since(&self, subject: &SubjectId, since_ms: i64) -> Result<usize> {
        let id = subject.as_str().as_bytes();
        let mut n = 0;
        self.store.scan_ledger_about(subject.as_str(), &mut |r| {
            if r.subject == id
                && r.action == REFERRAL.as_bytes()
                && r.effect == b"done"
                && r.time_ms >= since_ms
            {
                n += 1;
            }
            true
        })?;
        Ok(n)
    }
}

fn referral_not_offered(message: &str) -> Error {
    Error::invalid("referral_not_offered", message)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn only_one_plain_address_is_taken() {
        assert!(plain_address("ann@example.com").is_ok());
        for bad in [
            "ann@example.com\r\nBcc: x@y.z",
            "Ann <ann@example.com>",
            "a@b.c, d@e.f",
            "ann@localhost",
            "ann example@x.y",
            "@x.y",
            "ann@x.y@z.w",
            "ann@.x",
        ] {
            assert_eq!(
                plain_address(bad).unwrap_err().code(),
                "invalid_email",
                "{bad}"
            );
        }
    }

    #[test]
    fn names_and_messages_are_bounded_and_one_line_or_plain_text() {
        assert!(check_text("Ann Friend", "name", 128, false).is_ok());
        assert!(check_text("Ann\r\nBcc: x", "name", 128, false).is_err());
        assert!(check_text(&"a".repeat(129), "name", 128, false).is_err());
        assert!(check_text("", "name", 128, false).is_err());
        assert!(check_text("hi\r\nthere", "message", 1000, true).is_ok());
        assert!(check_text("bell\u{7}", "message", 1000, true).is_err());
    }
}
