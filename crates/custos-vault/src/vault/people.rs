//! The person as a principal (issue 13): a person signs in with a one-time code mailed to an
//! address the vault holds as `contact.email`, and gets a session that reaches their own
//! subjects and nothing else.
//!
//! - [`Vault::request_sign_in`]: the subjects holding the address are found through the
//!   blind index (several may share it); a code of [`CODE_DIGITS`] digits (OS randomness) is
//!   made, stored as a keyed hash (HMAC under the vault's `people` secret, bound to the
//!   code's id) with a keyed hash of the address, and mailed through the outbox in the same
//!   transaction. An address the vault does not know gets a code row too — never mailed,
//!   signing in as nobody — so both do the same work, are rate-limited alike
//!   ([`MAX_CODES_PER_HOUR`]) and answer alike: nothing tells whether an address is known.
//! - [`Vault::verify_sign_in`]: the newest code of the address, within [`CODE_TTL`], at most
//!   [`MAX_CODE_ATTEMPTS`] tries, once; compared in constant time. A match opens a session:
//!   a random bearer token (`custos_session_…`), of which only the SHA-256 is stored, with
//!   its subjects, its sign-in time and its expiry ([`SESSION_TTL`]).
//! - [`Vault::authenticate_person`] → [`Person`], the principal later routes take
//!   (`/v1/me…`): its [`Person::subjects`] and [`Person::signed_in_at`].
//!
//! Every step is ledgered as the actor [`PERSON`], one entry per subject and never the
//! address (`sign_in_code`, `sign_in`, `sign_out`, `me_overview`); for an address the vault
//! does not know, one entry with no subject (`subjects:0` in its reasons), so the ledger's
//! work is the same either way.

use std::collections::BTreeSet;
use std::time::Duration;

use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

use super::instruments::format_date_time;
use super::mail::Mail;
use super::{SubjectId, Vault, uuid_v7};
use crate::crypto::{Entropy, hex, sha256};
use crate::error::{Error, Result};
use crate::ledger::Draft;
use crate::store::{SessionRow, SignInCodeRow, now_ms};

/// Digits of a sign-in code.
pub const CODE_DIGITS: usize = 8;
/// How long a code is valid.
pub const CODE_TTL: Duration = Duration::from_secs(15 * 60);
/// Tries a code gets; after them it signs in nobody.
pub const MAX_CODE_ATTEMPTS: u32 = 5;
/// Codes one address gets per [`CODE_WINDOW`].
pub const MAX_CODES_PER_HOUR: u32 = 5;
/// The window [`MAX_CODES_PER_HOUR`] counts in.
pub const CODE_WINDOW: Duration = Duration::from_secs(3600);
/// How long a session lasts after its sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(3600);
/// How a session token begins (an API key begins `custos_` and a hex digit).
pub const SESSION_PREFIX: &str = "custos_session_";
/// The ledger's actor for a person's acts.
pub const PERSON: &str = "person";
/// The identifier category a person signs in with.
pub const EMAIL_CATEGORY: &str = "contact.email";

const CODE_LABEL: &str = "sign_in_code";
const ADDRESS_LABEL: &str = "sign_in_address";

/// What [`Vault::request_sign_in`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignInRequest {
    /// A code was made (and, when the address is known, mailed).
    Queued,
    /// The address had [`MAX_CODES_PER_HOUR`] codes in the last hour; try again after this.
    RateLimited {
        /// How long until the address may have another code.
        retry_after: Duration,
    },
}

/// A session just opened ([`Vault::verify_sign_in`]).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedIn {
    /// The bearer token: shown once, only its SHA-256 is stored.
    pub session: String,
    /// The subjects it reaches.
    pub subjects: Vec<SubjectId>,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
    /// When it expires, RFC 3339 in UTC.
    pub expires: String,
}

/// Names the subjects only: the token stays out of any log line.
impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignedIn")
            .field("subjects", &self.subjects)
            .finish_non_exhaustive()
    }
}

/// A signed-in person: the principal of a session ([`Vault::authenticate_person`]). Reaches
/// its own subjects and nothing else.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    hash: String,
    subjects: Vec<SubjectId>,
    signed_in_ms: i64,
    expires_ms: i64,
}

impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("subjects", &self.subjects)
            .field("signed_in_ms", &self.signed_in_ms)
            .finish_non_exhaustive()
    }
}

impl Person {
    /// The subjects the session reaches: those holding the address it signed in with.
    pub fn subjects(&self) -> &[SubjectId] {
        &self.subjects
    }

    /// When the session signed in, ms since the epoch (acts that need a recent sign-in —
    /// export, erasure — compare it with the clock).
    pub fn signed_in_at(&self) -> i64 {
        self.signed_in_ms
    }

    /// When the session expires, ms since the epoch.
    pub fn expires_ms(&self) -> i64 {
        self.expires_ms
    }

    /// When the session signed in, RFC 3339 in UTC.
    pub fn signed_in(&self) -> String {
        format_date_time(self.signed_in_ms)
    }

    /// When the session expires, RFC 3339 in UTC.
    pub fn expires(&self) -> String {
        format_date_time(self.expires_ms)
    }

    /// Whether the session signed in within `within` of now.
    pub fn signed_in_within(&self, within: Duration) -> bool {
        now_ms().saturating_sub(self.signed_in_ms) <= ms(within)
    }

    /// Whether the session reaches a subject.
    pub fn reaches(&self, subject: &SubjectId) -> bool {
        self.subjects.contains(subject)
    }
}

/// A subject as its person sees it in `GET /v1/me`: no values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectOverview {
    /// The subject's id.
    pub id: SubjectId,
    /// `active`, `deactivated` or `erased`.
    pub status: String,
    /// The services that collected about the person, and the person's role in each.
    pub services: Vec<(String, String)>,
    /// The categories held.
    pub categories: Vec<String>,
    /// When the subject was created, RFC 3339 in UTC.
    pub created: String,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn field(code: &'static str, name: &str, message: &str) -> Error {
    Error::InvalidField {
        code,
        field: name.to_string(),
        message: message.to_string(),
    }
}

/// The address as the person typed it, checked for shape only: 3 to 320 characters, one `@`
/// with something on each side, no spaces or control characters.
fn checked_address(email: &str) -> Result<&str> {
    let e = email.trim();
    let ok = (3..=320).contains(&e.chars().count())
        && e.split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'))
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(e)
    } else {
        Err(field(
            "invalid_email",
            "email",
            "an email address is 3 to 320 characters, `local@domain`, without spaces",
        ))
    }
}

fn code_invalid() -> Error {
    field(
        "code_invalid",
        "code",
        "the code is wrong or was used; ask for a new one at /v1/people/sign-in",
    )
}

/// A code: [`CODE_DIGITS`] decimal digits from 8 random bytes (the modulo bias is below
/// 2^-36).
fn new_code(rng: &mut Entropy) -> Result<Zeroizing<String>> {
    let n = u64::from_le_bytes(rng.bytes()?) % 10u64.pow(CODE_DIGITS as u32);
    Ok(Zeroizing::new(format!("{n:0width$}", width = CODE_DIGITS)))
}

impl Vault {
    /// Asks for a sign-in code for an address: answers the same whether or not the vault
    /// holds the address (see the module's documentation), unless the address had
    /// [`MAX_CODES_PER_HOUR`] codes in the last hour. Fails only on a malformed address
    /// (`invalid_email`) or a failing store.
    pub fn request_sign_in(&self, email: &str) -> Result<SignInRequest> {
        let email = checked_address(email)?;
        let term = self.index.term(EMAIL_CATEGORY, email)?;
        let subjects = self.store.find_all_by_term(EMAIL_CATEGORY, &term)?;
        let rng = &mut Entropy::new();
        let id = uuid_v7(rng)?.hyphenated().to_string();
        let code = new_code(rng)?;
        let now = now_ms();
        let row = SignInCodeRow {
            code: self
                .people
                .term(CODE_LABEL, &format!("{id}:{}", code.as_str()))?,
            id,
            address: self.people.term(ADDRESS_LABEL, email)?,
            subjects: subjects.clone(),
            attempts: 0,
            used: false,
            created_ms: now,
            expires_ms: now.saturating_add(ms(CODE_TTL)),
        };
        let minutes = CODE_TTL.as_secs() / 60;
        // Sealed either way (the same work); stored only for an address the vault knows.
        let mail = self.seal_mail(
            rng,
            &Mail {
                to: email.to_string(),
                subject: "Your sign-in code".into(),
                // Lines under 76 characters: the message stays 7-bit, readable as is.
                text: format!(
                    "Your sign-in code is {}.\r\n\r\nIt is valid for {minutes} minutes, once.\r\n\
                     If you did not ask for it, ignore this message.\r\n",
                    code.as_str()
                ),
                headers: Vec::new(),
                html: None,
            },
        )?;
        let mail = (!subjects.is_empty()).then_some(&mail);
        let limited = self.store.put_sign_in_code(
            &row,
            mail,
            now.saturating_sub(ms(CODE_WINDOW)),
            MAX_CODES_PER_HOUR,
        )?;
        let (effect, answer) = match limited {
            None => ("sent", SignInRequest::Queued),
            Some(oldest) => {
                let wait = oldest.saturating_add(ms(CODE_WINDOW)).saturating_sub(now);
                let secs = u64::try_from(wait).unwrap_or(0).div_ceil(1000).max(1);
                (
                    "rate_limited",
                    SignInRequest::RateLimited {
                        retry_after: Duration::from_secs(secs),
                    },
                )
            }
        };
        self.ledger_person("sign_in_code", effect, &subjects, "")?;
        Ok(answer)
    }

    /// Signs a person in with the code mailed to them: opens a session reaching the
    /// subjects that held the address when the code was asked for. Refused with
    /// `code_invalid` (wrong, used, or none asked for), `code_expired` or `code_exhausted`
    /// ([`MAX_CODE_ATTEMPTS`] tries made), alike for a known and an unknown address.
    pub fn verify_sign_in(&self, email: &str, code: &str) -> Result<SignedIn> {
        let email = checked_address(email)?;
        let code = code.trim();
        if code.len() != CODE_DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(field(
                "invalid_code",
                "code",
                "a sign-in code is 8 digits, as mailed",
            ));
        }
        let address = self.people.term(ADDRESS_LABEL, email)?;
        let now = now_ms();
        let Some((row, counted)) =
            self.store
                .attempt_sign_in_code(&address, now, MAX_CODE_ATTEMPTS)?
        else {
            self.ledger_person("sign_in", "failed", &[], "code_invalid")?;
            return Err(code_invalid());
        };
        let refuse = |reason: &'static str, err: Error| -> Result<SignedIn> {
            self.ledger_person("sign_in", "failed", &row.subjects, reason)?;
            Err(err)
        };
        if row.used {
            return refuse("code_used", code_invalid());
        }
        if row.expires_ms <= now {
            return refuse(
                "code_expired",
                field(
                    "code_expired",
                    "code",
                    "the code expired; ask for a new one at /v1/people/sign-in",
                ),
            );
        }
        if !counted {
            return refuse(
                "code_exhausted",
                field(
                    "code_exhausted",
                    "code",
                    "this code was tried too many times; ask for a new one at /v1/people/sign-in",
                ),
            );
        }
        let presented = self
            .people
            .term(CODE_LABEL, &format!("{}:{code}", row.id))?;
        let equal: bool = presented.as_bytes().ct_eq(row.code.as_bytes()).into();
        if !equal || row.subjects.is_empty() {
            return refuse("code_invalid", code_invalid());
        }
        let secret = Zeroizing::new(crate::crypto::random_bytes::<32>()?);
        let token = format!("{SESSION_PREFIX}{}", hex(secret.as_slice()));
        let expires_ms = now.saturating_add(ms(SESSION_TTL));
        let session = SessionRow {
            hash: hex(&sha256(token.as_bytes())),
            subjects: row.subjects.clone(),
            signed_in_ms: now,
            expires_ms,
            revoked: false,
        };
        if !self.store.redeem_sign_in_code(&row.id, &session)? {
            return refuse("code_used", code_invalid());
        }
        self.ledger_person("sign_in", "done", &row.subjects, "")?;
        Ok(SignedIn {
            session: token,
            subjects: row.subjects.into_iter().map(SubjectId).collect(),
            expires_ms,
            expires: format_date_time(expires_ms),
        })
    }

    /// The person a session token signs in as; [`Error::Unauthorized`] for anything else
    /// (an unknown, expired or signed-out session, an API key). Compared in constant time,
    /// against a dummy when there is no such session.
    pub fn authenticate_person(&self, token: &str) -> Result<Person> {
        let token = token.trim();
        if !token.starts_with(SESSION_PREFIX) {
            return Err(Error::Unauthorized);
        }
        let presented = hex(&sha256(token.as_bytes()));
        let row = self.store.session(&presented)?;
        let stored = row
            .as_ref()
            .map_or_else(|| "0".repeat(64), |r| r.hash.clone());
        let equal: bool = presented.as_bytes().ct_eq(stored.as_bytes()).into();
        match row {
            Some(r) if equal && !r.revoked && r.expires_ms > now_ms() => Ok(Person {
                hash: r.hash,
                subjects: r.subjects.into_iter().map(SubjectId).collect(),
                signed_in_ms: r.signed_in_ms,
                expires_ms: r.expires_ms,
            }),
            _ => Err(Error::Unauthorized),
        }
    }

    /// Signs a person out: the session authenticates nobody from now on. Ledgered.
    pub fn sign_out(&self, person: &Person) -> Result<()> {
        self.store.revoke_session(&person.hash)?;
        let subjects: Vec<String> = person.subjects.iter().map(|s| s.0.clone()).collect();
        self.ledger_person("sign_out", "done", &subjects, "")
    }

    /// What the vault holds about the person, per subject, without values: status, the
    /// services and roles that collected, the categories held. Ledgered, per subject.
    pub fn person_overview(&self, person: &Person) -> Result<Vec<SubjectOverview>> {
        let mut out = Vec::with_capacity(person.subjects.len());
        for id in &person.subjects {
            let Some(row) = self.store.subject(&id.0)? else {
                continue;
            };
            let values = self.store.values(&id.0)?;
            let services: BTreeSet<(String, String)> = values
                .iter()
                .map(|v| (v.service.clone(), v.role.clone()))
                .collect();
            let categories: BTreeSet<String> = values.iter().map(|v| v.category.clone()).collect();
            out.push(SubjectOverview {
                id: id.clone(),
                status: row.status.as_str().to_string(),
                services: services.into_iter().collect(),
                categories: categories.into_iter().collect(),
                created: format_date_time(row.created_ms),
            });
        }
        let subjects: Vec<String> = out.iter().map(|o| o.id.0.clone()).collect();
        self.ledger_person("me_overview", "done", &subjects, "")?;
        Ok(out)
    }

    /// One entry per subject, or one with no subject (`subjects:0`) when there is none: the
    /// same single durable append either way.
    fn ledger_person(
        &self,
        action: &str,
        effect: &str,
        subjects: &[String],
        reason: &str,
    ) -> Result<()> {
        let draft = |subject: &str, reasons: String| Draft {
            effect: effect.to_string(),
            reasons,
            ..self.draft(PERSON, action, subject)
        };
        let drafts: Vec<Draft> = if subjects.is_empty() {
            let reasons = if reason.is_empty() {
                "subjects:0".to_string()
            } else {
                format!("subjects:0,{reason}")
            };
            vec![draft("", reasons)]
        } else {
            subjects
                .iter()
                .map(|s| draft(s, reason.to_string()))
                .collect()
        };
        self.ledger.append_many(drafts)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_checked_for_shape_only() {
        assert_eq!(checked_address(" a@b ").ok(), Some("a@b"));
        for bad in ["", "ab", "a b@c", "@b", "a@", "a@b@c", "a\u{7}@b"] {
            assert!(checked_address(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn codes_have_eight_digits_and_vary() {
        let mut rng = Entropy::new();
        let codes: BTreeSet<String> = (0..64)
            .map(|_| new_code(&mut rng).map(|c| c.to_string()))
            .collect::<Result<_>>()
            .unwrap_or_default();
        assert!(codes.len() > 60);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == CODE_DIGITS && c.bytes().all(|b| b.is_ascii_digit()))
        );
    }
}
