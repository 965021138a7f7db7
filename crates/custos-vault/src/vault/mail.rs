//! The outbox (issue 13): mail the vault sends — a person's sign-in code first — queued
//! durably in the store and delivered by a worker outside the vault (the server's, over SMTP
//! or as `.eml` files).
//!
//! A message carries personal information (its recipient's address at least), so its
//! recipient, subject line and body are sealed together (AES-256-GCM, bound to the message
//! id) under the **outbox key**, a vault secret wrapped by the master key like the blind
//! index key (rotated with it by `custos keys rotate`). A dedicated key rather than a
//! subject's data key: a sign-in code goes to an address several subjects may share, and a
//! message is short-lived anyway.
//!
//! **Invariant:** once a message is sent, or given up after [`MAX_MAIL_ATTEMPTS`], its
//! sealed content is deleted; the row keeps only its id, state, attempts and times
//! ([`crate::store::Store::update_mail`]).
//!
//! Delivery: [`Vault::claim_mail`] leases the due messages (so two workers, or two servers
//! on PostgreSQL, never send one twice at once) and opens them; the worker reports each
//! attempt with [`Vault::mail_sent`] or [`Vault::mail_failed`], which schedules the retry
//! with exponential backoff ([`retry_delay`]) or gives the message up. Sent and given-up
//! messages are ledgered (`mail_sent`, `mail_failed`, with `mail:<id>` as the reason and no
//! address).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{OPERATOR, Vault, uuid_v7};
use crate::crypto::Entropy;
use crate::error::{Error, Result};
use crate::store::{MailRow, now_ms};

/// Delivery attempts a message gets before it is given up.
pub const MAX_MAIL_ATTEMPTS: u32 = 8;
/// How long a claimed message is held for its worker before another may take it.
pub const MAIL_LEASE: Duration = Duration::from_secs(120);
/// The wait before the second attempt; each later wait doubles it, up to [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(30);
/// The longest wait between two attempts.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);
/// Bytes of a message's body at most.
pub const MAX_MAIL_BODY: usize = 64 * 1024;
/// How long the outbox keeps a message's row (id, state, attempts, times; its content went
/// when it was sent or given up) once it is done: the retention sweep deletes it after.
pub const FINISHED_MAIL_KEPT: Duration = Duration::from_secs(30 * 86_400);

/// The ledger action of a message sent.
pub const MAIL_SENT: &str = "mail_sent";
/// The ledger action of a message given up.
pub const MAIL_FAILED: &str = "mail_failed";

/// A message to send: plain text, one recipient.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mail {
    /// The recipient's address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The body, plain text.
    pub text: String,
    /// Extra header fields, in order (e.g. RFC 8058's `List-Unsubscribe` and
    /// `List-Unsubscribe-Post`): names of ASCII letters, digits and `-`, values one line
    /// each. The standard fields (`From`, `To`, `Subject`, `Date`, `Message-ID`,
    /// `Content-Type`) are the worker's and may not be given here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// An HTML body besides the text (a mailing's), if any: the worker sends both as
    /// `multipart/alternative`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

/// Header fields [`Mail::headers`] may not set: the delivery worker writes them.
pub const RESERVED_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "bcc",
    "subject",
    "date",
    "message-id",
    "content-type",
    "content-transfer-encoding",
    "mime-version",
    "sender",
    "reply-to",
];

/// Names nothing of the message: its address and content stay out of any log line.
impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mail(..)")
    }
}

/// A message claimed for delivery ([`Vault::claim_mail`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Its id.
    pub id: String,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The message.
    pub mail: Mail,
}

/// Where a message stands, without its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailStatus {
    /// Its id.
    pub id: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// When it was queued, ms since the epoch.
    pub created_ms: i64,
    /// When the next attempt is due (queued) or when it was sent or given up.
    pub next_ms: i64,
    /// Whether its sealed content is still stored.
    pub has_content: bool,
}

/// The wait after `attempts` failed attempts: [`FIRST_RETRY_DELAY`] doubled for each attempt
/// after the first, at most [`MAX_RETRY_DELAY`].
pub fn retry_delay(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_RETRY_DELAY
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_DELAY)
}

/// Whether `to` can be a message's recipient: not blank, and at most 320 bytes (RFC 3696's
/// longest address).
pub(crate) fn mailable(to: &str) -> bool {
    !to.trim().is_empty() && to.len() <= 320
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Vault {
    /// Queues a message; returns its id. Its recipient, subject line and body are sealed
    /// under the outbox key before they reach the store.
    pub fn queue_mail(&self, mail: &Mail) -> Result<String> {
        let row = self.seal_mail(&mut Entropy::new(), mail)?;
        self.store.put_mail(&row)?;
        Ok(row.id)
    }

    /// The outbox row of a new message, sealed.
    pub(crate) fn seal_mail(&self, rng: &mut Entropy, mail: &Mail) -> Result<MailRow> {
        if !mailable(&mail.to) {
            return Err(Error::invalid(
                "invalid_email",
                "an address is 1 to 320 bytes",
            ));
        }
        for (name, value) in &mail.headers {
            let name_ok = !name.is_empty()
                && name.len() <= 76
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str());
            let value_ok = value.len() <= 900 && !value.bytes().any(|b| b == b'\r' || b == b'\n');
            if !name_ok || !value_ok {
                return Err(Error::invalid(
                    "invalid_header",
                    "a header field is a name of letters, digits and `-` (not a standard \
                     field the worker writes) and a value of one line, at most 900 bytes",
                ));
            }
        }
        if mail.text.len() > MAX_MAIL_BODY
            || mail.html.as_ref().is_some_and(|h| h.len() > MAX_MAIL_BODY)
            || mail.subject.len() > 998
        {
            return Err(Error::invalid(
                "mail_too_large",
                "a message's body holds at most 65536 bytes, its subject line 998",
            ));
        }
        let id = uuid_v7(rng)?.hyphenated().to_string();
        let plain = Zeroizing::new(
            serde_json::to_vec(mail).map_err(|_| Error::Crypto("message not encodable"))?,
        );
        let now = now_ms();
        Ok(MailRow {
            sealed: Some(self.outbox.seal(rng, &id, &plain)?),
            id,
            state: "queued".into(),
            attempts: 0,
            created_ms: now,
            next_ms: now,
            done_ms: None,
        })
    }

    /// Claims at most `limit` messages due now for delivery, leased for [`MAIL_LEASE`], and
    /// opens them. A message whose content does not open (it was sealed under another
    /// outbox key) is given up at once, never sent.
    pub fn claim_mail(&self, limit: u64) -> Result<Vec<OutgoingMail>> {
        let now = now_ms();
        let rows = self
            .store
            .claim_mail(now, now.saturating_add(ms(MAIL_LEASE)), limit)?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let opened = row
                .sealed
                .as_deref()
                .ok_or(Error::Crypto("a queued message has no content"))
                .and_then(|sealed| self.outbox.open(&row.id, sealed))
                .and_then(|plain| {
                    let plain = Zeroizing::new(plain);
                    serde_json::from_slice::<Mail>(&plain)
                        .map_err(|_| Error::Crypto("a queued message does not decode"))
                });
            match opened {
                Ok(mail) => out.push(OutgoingMail {
                    id: row.id,
                    attempts: row.attempts,
                    mail,
                }),
                Err(_) => {
                    self.store
                        .update_mail(&row.id, "failed", row.attempts, now)?;
                    self.ledger_mail(MAIL_FAILED, &row.id, "content_unreadable")?;
                }
            }
        }
        Ok(out)
    }

    /// Records that a claimed message was delivered: its content is deleted, the fact
    /// ledgered.
    pub fn mail_sent(&self, mail: &OutgoingMail) -> Result<()> {
        self.store
            .update_mail(&mail.id, "sent", mail.attempts.saturating_add(1), now_ms())?;
        self.ledger_mail(MAIL_SENT, &mail.id, "")
    }

    /// Records a failed attempt: a `permanent` failure (the server refused the message for
    /// good), or the last of [`MAX_MAIL_ATTEMPTS`], gives the message up (its content
    /// deleted, the fact ledgered); any other is retried after [`retry_delay`]. Returns the
    /// message's state: `queued` or `failed`.
    pub fn mail_failed(&self, mail: &OutgoingMail, permanent: bool) -> Result<&'static str> {
        let attempts = mail.attempts.saturating_add(1);
        let now = now_ms();
        if permanent || attempts >= MAX_MAIL_ATTEMPTS {
            self.store.update_mail(&mail.id, "failed", attempts, now)?;
            let reason = if permanent {
                "refused"
            } else {
                "attempts_exhausted"
            };
            self.ledger_mail(MAIL_FAILED, &mail.id, reason)?;
            return Ok("failed");
        }
        let next = now.saturating_add(ms(retry_delay(attempts)));
        self.store.update_mail(&mail.id, "queued", attempts, next)?;
        Ok("queued")
    }

    /// Where a message stands, without its content; `None` for no such message.
    pub fn mail_status(&self, id: &str) -> Result<Option<MailStatus>> {
        Ok(self.store.mail(id)?.map(|r| MailStatus {
            has_content: r.sealed.is_some(),
            id: r.id,
            state: r.state,
            attempts: r.attempts,
            created_ms: r.created_ms,
            next_ms: r.done_ms.unwrap_or(r.next_ms),
        }))
    }

    fn ledger_mail(&self, action: &str, id: &str, reason: &str) -> Result<()> {
        let mut d = self.draft(OPERATOR, action, "");
        d.effect = "done".into();
        d.reasons = if reason.is_empty() {
            format!("mail:{id}")
        } else {
            format!("mail:{id},{reason}")
        };
        self.record(d)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_thirty_seconds_up_to_an_hour() {
        assert_eq!(retry_delay(1), Duration::from_secs(30));
        assert_eq!(retry_delay(2), Duration::from_secs(60));
        assert_eq!(retry_delay(3), Duration::from_secs(120));
        assert_eq!(retry_delay(7), Duration::from_secs(1920));
        assert_eq!(retry_delay(8), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY);
    }
}
