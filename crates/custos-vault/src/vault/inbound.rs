//! Unsubscribe by email (issue 14, item 5; C032): an inbound RFC 5322 message — piped from
//! the MTA to `custos mail intake -`, or posted by staff to `POST /v1/inbound-mail` — is
//! matched to subjects by its `From` address through the blind index, and each subject
//! found is unsubscribed from every communication topic ([`super::communication_topics`]):
//! an objection for an opt-out topic, a consent withdrawal for an opt-in one, each through
//! the consent machinery (method `email_request`, a signed receipt, a ledger entry durable
//! before the record).
//!
//! **Who may hand in a message:** staff (the policy's `[rights] staff`, a key of no tenant)
//! or the operator ([`RequestHandler`]); anyone else is refused `not_staff` before the
//! message is read, so only they learn how many subjects an address matched.
//!
//! **What is kept:** the message itself nowhere. One `inbound_mail` ledger entry per message
//! — no subject, no address, `subjects:N,changes:M` — durable before any choice is recorded;
//! a message from an address the vault does not know is that entry alone. Errors name the
//! problem with the message, never a header's value.
//!
//! The address in `From` can be forged by whoever sends mail; unsubscribing is what a forger
//! could do, and the person is told: when a topic changed, a confirmation is queued through
//! the outbox to the address itself (never to a `Reply-To`). A token-matched unsubscribe (the
//! `List-Unsubscribe` mailto of a mailing) feeds its subjects to [`Vault::unsubscribe_subjects`]
//! directly.

use std::collections::BTreeMap;

use mail_parser::MessageParser;

use super::mail::Mail;
use super::people::EMAIL_CATEGORY;
use super::requests::RequestHandler;
use super::{Requester, SubjectId, Vault};
use crate::error::{Error, Result};

/// Bytes of an inbound message at most (its whole RFC 5322 text).
pub const MAX_INBOUND_MAIL: usize = 256 * 1024;
/// Addresses of one `From` field looked up at most.
pub const MAX_FROM_ADDRESSES: usize = 10;
/// The ledger action of an inbound message handled.
pub const INBOUND_MAIL: &str = "inbound_mail";
/// The consent method an unsubscribe by email is recorded with.
pub const EMAIL_METHOD: &str = "email_request";

/// What an inbound message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// Subjects the `From` address, or a verified token in the subject line, matched.
    pub matched: usize,
    /// Consent and objection records made (topics that were on and are now off).
    pub changes: usize,
}

fn invalid_message(message: &str) -> Error {
    Error::invalid(
        "invalid_message",
        format!("not an RFC 5322 message: {message}"),
    )
}

/// Checks the header section's shape: lines of `name: value` (a name of printable ASCII
/// but `:`) or continuation lines (starting with a space or tab), ending at an empty line or
/// the end; no NUL anywhere. The parser is lenient; this is what "malformed" means here.
fn check_shape(raw: &[u8]) -> Result<()> {
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(invalid_message("the message is empty"));
    }
    if raw.contains(&0) {
        return Err(invalid_message("it holds a NUL byte"));
    }
    let mut first = true;
    for line in raw.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if matches!(line.first(), Some(b' ' | b'\t')) {
            if first {
                return Err(invalid_message(
                    "the first header line is a continuation line",
                ));
            }
            continue;
        }
        let name = line.split(|&b| b == b':').next().unwrap_or_default();
        let ok = name.len() < line.len()
            && !name.is_empty()
            && name.iter().all(|b| (33..=126).contains(b) && *b != b':');
        if !ok {
            return Err(invalid_message(
                "a header line is not `name: value` (or the header section does not end with an empty line)",
            ));
        }
        first = false;
    }
    Ok(())
}

/// The addresses of the message's `From` field, lowercased and deduplicated (at most
/// [`MAX_FROM_ADDRESSES`]). `invalid_message` for a malformed message, `missing_from` for
/// one with no address in `From`.
pub fn from_addresses(raw: &[u8]) -> Result<Vec<String>> {
    if raw.len() > MAX_INBOUND_MAIL {
        return Err(Error::invalid(
            "mail_too_large",
            format!("an inbound message holds at most {MAX_INBOUND_MAIL} bytes"),
        ));
    }
    check_shape(raw)?;
    // A header section of the right shape the parser reads no field of has no `From`.
    let message = MessageParser::default().parse_headers(raw);
    let mut out: Vec<String> = Vec::new();
    if let Some(from) = message.as_ref().and_then(|m| m.from()) {
        for addr in from.iter() {
            let Some(a) = addr.address() else { continue };
            let a = a.trim().to_lowercase();
            let shaped = a
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
                && !a.chars().any(|c| c.is_whitespace() || c.is_control())
                && a.len() <= 320;
            if shaped && !out.contains(&a) {
                out.push(a);
            }
            if out.len() == MAX_FROM_ADDRESSES {
                break;
            }
        }
    }
    if out.is_empty() {
        return Err(Error::invalid(
            "missing_from",
            "the message has no sender address in a `From` field",
        ));
    }
    Ok(out)
}

/// The unsubscribe tokens in a message's subject line: each word `unsubscribe-<token>`
/// (what a mailing's `List-Unsubscribe` mailto puts there), at most [`MAX_FROM_ADDRESSES`].
pub fn subject_tokens(raw: &[u8]) -> Vec<String> {
    let Some(message) = MessageParser::default().parse_headers(raw) else {
        return Vec::new();
    };
    let Some(subject) = message.subject() else {
        return Vec::new();
    };
    subject
        .split(|c: char| c.is_whitespace() || c == ':' || c == ',')
        .filter_map(|w| w.strip_prefix("unsubscribe-"))
        .filter(|t| {
            !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .take(MAX_FROM_ADDRESSES)
        .map(str::to_string)
        .collect()
}

impl Vault {
    /// Handles an inbound unsubscribe message (see the module's documentation): for staff
    /// and the operator only (`not_staff` otherwise, ledgered, before the message is read).
    pub fn intake_mail<'a>(&self, by: impl Into<RequestHandler<'a>>, raw: &[u8]) -> Result<Intake> {
        let by = by.into();
        let actor = self.request_staff_only(by, INBOUND_MAIL)?;
        // C032: taken only while the policy's `unsubscribe` right offers the email channel.
        if !self.policy.contacts().unsubscribes_by("email") {
            let e = Error::invalid(
                "channel_not_offered",
                "the policy's `unsubscribe` right does not offer the `email` channel; \
                 add it to the right's `channels` to take unsubscribe requests by email",
            );
            self.request_refusal(actor, INBOUND_MAIL, "", e.code())?;
            return Err(e);
        }
        let addresses = match from_addresses(raw) {
            Ok(a) => a,
            Err(e) => {
                self.request_refusal(actor, INBOUND_MAIL, "", e.code())?;
                return Err(e);
            }
        };
        let mut subjects: Vec<(SubjectId, String)> = Vec::new();
        for address in &addresses {
            let term = self.index.term(EMAIL_CATEGORY, address)?;
            for s in self.store.find_all_by_term(EMAIL_CATEGORY, &term)? {
                if !subjects.iter().any(|(x, _)| x.as_str() == s) {
                    subjects.push((SubjectId(s), address.clone()));
                }
            }
        }
        // A reply to a mailing's `List-Unsubscribe` mailto carries its token in the subject
        // line (`unsubscribe-<token>`): a token that verifies names its person whatever the
        // `From` (their address may have changed, or be an alias); one that does not is
        // ignored, and the `From` decides alone.
        let tokened: Vec<SubjectId> = subject_tokens(raw)
            .iter()
            .filter_map(|t| self.verify_unsubscribe_token(t).ok())
            .map(|t| t.subject)
            .filter(|s| !subjects.iter().any(|(x, _)| x == s))
            .collect();
        let mut d = self.draft(actor, INBOUND_MAIL, "");
        d.effect = "done".into();
        d.reasons = format!("subjects:{}", subjects.len() + tokened.len());
        // INVARIANT: audit before data — the message's entry (no address, no subject) is
        // durable before any choice it causes is recorded.
        self.record(d)?;
        let ids: Vec<SubjectId> = subjects
            .iter()
            .map(|(s, _)| s.clone())
            .chain(tokened.iter().cloned())
            .collect();
        let changes = self.unsubscribe_subjects(by, &ids, EMAIL_METHOD)?;
        // Tell each address whose subjects changed, once: a forged `From` reaches its owner.
        let mut told: Vec<&str> = Vec::new();
        for ((_, address), n) in subjects.iter().zip(&changes) {
            if *n > 0 && !told.contains(&address.as_str()) {
                told.push(address);
                self.queue_mail(&Mail {
                    to: address.clone(),
                    subject: "You are unsubscribed".into(),
                    text: "We received your request by email and will send you no more \
                           promotional email.\r\n\r\nIf you did not ask for this, you can \
                           subscribe again on your preferences page.\r\n"
                        .into(),
                    ..Default::default()
                })?;
            }
        }
        Ok(Intake {
            matched: ids.len(),
            changes: changes.iter().sum(),
        })
    }

    /// Unsubscribes each subject from every communication topic that is on (an objection
    /// for an opt-out topic, a consent withdrawal for an opt-in one), recorded with `method`
    /// (one of `CONSENT_METHODS`: `email_request`, `letter`, `one_click_unsubscribe`, …),
    /// each with its receipt and ledger entry; by staff or the operator. Returns the records
    /// made per subject; a subject no longer held (erased since) makes none.
    pub fn unsubscribe_subjects<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        subjects: &[SubjectId],
        method: &str,
    ) -> Result<Vec<usize>> {
        let by = by.into();
        self.request_staff_only(by, INBOUND_MAIL)?;
        let requester = match by {
            RequestHandler::Operator => Requester::Operator,
            RequestHandler::Accessor(a) => Requester::Staff(a.accessor),
        };
        let topics: BTreeMap<String, bool> = self
            .communication_topics()
            .into_iter()
            .map(|p| (p.id.clone(), false))
            .collect();
        let mut out = Vec::with_capacity(subjects.len());
        for s in subjects {
            match self.set_preferences(requester, s, &topics, method) {
                Ok(changes) => out.push(changes.len()),
                Err(Error::SubjectNotFound) => out.push(0),
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn from_is_found_through_encoded_words_groups_and_comments() {
        let raw = b"From: =?utf-8?q?J=C3=B6rg?= <Joerg@Example.COM> (home)\r\nTo: unsubscribe@webex.com\r\nSubject: unsubscribe\r\n\r\nplease\r\n";
        assert_eq!(from_addresses(raw).unwrap(), ["joerg@example.com"]);
        let raw = b"From: a@x.example, \"B\" <b@y.example>, a@x.example\n\nbody";
        assert_eq!(from_addresses(raw).unwrap(), ["a@x.example", "b@y.example"]);
    }

    #[test]
    fn malformed_and_fromless_messages_are_refused_by_name() {
        for raw in [
            &b""[..],
            b"   \r\n",
            b"no colon here\r\n\r\n",
            b" From: a@b.c\r\n\r\n",
            b"From: a@b.c\0\r\n\r\n",
        ] {
            assert_eq!(
                from_addresses(raw).unwrap_err().code(),
                "invalid_message",
                "{raw:?}"
            );
        }
        assert_eq!(
            from_addresses(b"To: x@y.z\r\nSubject: hi\r\n\r\nbody")
                .unwrap_err()
                .code(),
            "missing_from"
        );
        assert_eq!(
            from_addresses(b"From: nobody\r\n\r\nbody")
                .unwrap_err()
                .code(),
            "missing_from"
        );
        let big = vec![b'a'; MAX_INBOUND_MAIL + 1];
        assert_eq!(from_addresses(&big).unwrap_err().code(), "mail_too_large");
    }

    #[test]
    fn errors_name_no_value() {
        let e = from_addresses(b"From: secret-canary@example.com\r\nBad Line\r\n\r\n").unwrap_err();
        assert!(!e.to_string().contains("canary"));
    }
}
