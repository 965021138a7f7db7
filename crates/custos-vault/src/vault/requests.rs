//! People's requests as staff handle them (issue 13, item 3): a request to see, export,
//! correct, deactivate or erase what is held, to object to a purpose, or for the California
//! "Shine the Light" list, received online, by email, by letter or by phone, and entered by
//! staff (the policy's `[rights] staff`) or the operator (`custos requests`).
//!
//! A request is `received`, then `verified` (staff checked the requester is the person, by
//! the method it was entered with), then `completed` or `refused` (with a reason from a
//! closed set); it is due `[rights] respond_days` after it was received. Completing an
//! `erase`, `deactivate` or `object` request does it ([`Vault::erase`],
//! [`Vault::deactivate`], [`Vault::object`]).
//!
//! Every act is ledgered — entry, verification, completion, refusal, a look, a list, and
//! every refused attempt — with the request's kind, channel, verification and id as
//! keywords; a request holds no free text, so nothing a requester wrote reaches the
//! database or the ledger.
//!
//! **Invariant:** only staff and the operator reach requests; to any other key they answer
//! `not_staff` before anything is read, and the refusal is ledgered.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use custos_policy::RequestKind;

use super::instruments::format_date_time;
use super::{Actor, Export, OPERATOR, PERSON, Principal, Requester, SubjectId, Vault, uuid_v7};
use crate::crypto::Entropy;
use crate::error::{Error, Result};
use crate::store::{RequestFilter, RequestRow, Status, now_ms};

/// The ledger action of a request entered.
pub const REQUEST_RECEIVE: &str = "request_receive";
/// The ledger action of a requester's identity verified.
pub const REQUEST_VERIFY: &str = "request_verify";
/// The ledger action of a request completed.
pub const REQUEST_COMPLETE: &str = "request_complete";
/// The ledger action of a request refused.
pub const REQUEST_REFUSE: &str = "request_refuse";
/// The ledger action of a look at a request.
pub const REQUEST_SHOW: &str = "request_show";
/// The ledger action of a list of requests.
pub const REQUEST_LIST: &str = "request_list";

/// How a request reaches the controller.
pub const REQUEST_CHANNELS: &[&str] = &["online", "email", "letter", "phone"];
/// How the requester's identity is verified: signed in (online only), an email from the
/// address on file, questions only the person can answer, an identity document checked.
pub const VERIFICATIONS: &[&str] = &[
    "signed_in",
    "email_from_address_on_file",
    "knowledge_based",
    "document_checked",
];
/// Why a request is refused.
pub const REFUSAL_REASONS: &[&str] = &[
    "identity_not_verified",
    "no_data_held",
    "legal_obligation",
    "manifestly_unfounded",
    "duplicate",
];
/// Requests one page of a list holds at most.
pub const MAX_REQUESTS_LISTED: u64 = 1000;
/// Requests one page holds when the caller does not say.
pub const DEFAULT_REQUESTS_PAGE: u64 = 100;

/// One page of a list of requests ([`Vault::requests_page`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestsPage {
    /// The requests, due soonest first.
    pub requests: Vec<PersonRequest>,
    /// Present when the page was full: the `after` of the next page (`<due ms>_<id>` of
    /// this page's last request).
    pub next: Option<String>,
}

/// The `(due_ms, id)` a page's `after` names; `invalid_query` (field `after`) otherwise.
fn parse_after(after: &str) -> Result<(i64, &str)> {
    let bad = || Error::InvalidField {
        code: "invalid_query",
        field: "after".into(),
        message: "`after` is the `next` of a previous page (`<due ms>_<request id>`)".into(),
    };
    let (due, id) = after.split_once('_').ok_or_else(bad)?;
    if due.is_empty() || due.len() > 18 || !due.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let due: i64 = due.parse().map_err(|_| bad())?;
    let id_shaped =
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
    if !id_shaped {
        return Err(bad());
    }
    Ok((due, id))
}

const MS_PER_DAY: i64 = 86_400_000;

/// One transition at a time in this process: a completion does its act, then moves the
/// state, and two completions of one request must not both do it. (Across processes the
/// state moves only from the state read — [`crate::Store::transition_request`] — so a
/// second one is refused `request_closed`, and the acts are idempotent but erasure, which
/// then finds no subject.)
static TRANSITIONS: Mutex<()> = Mutex::new(());

/// Who handles a request: a staff accessor's key, or the operator at the command line.
#[derive(Debug, Clone, Copy)]
pub enum RequestHandler<'a> {
    /// The operator (`custos requests …`): may do everything staff may.
    Operator,
    /// An accessor's key; refused `not_staff` unless the policy lists it in
    /// `[rights] staff` and the key acts for no tenant.
    Accessor(Actor<'a>),
}

impl<'a> From<Actor<'a>> for RequestHandler<'a> {
    fn from(a: Actor<'a>) -> Self {
        Self::Accessor(a)
    }
}

impl<'a> From<&'a str> for RequestHandler<'a> {
    fn from(a: &'a str) -> Self {
        Self::Accessor(a.into())
    }
}

impl<'a> From<&'a Principal> for RequestHandler<'a> {
    fn from(p: &'a Principal) -> Self {
        Self::Accessor(p.actor())
    }
}

/// A request, as staff enter it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestInput {
    /// `access`, `export`, `rectify`, `deactivate`, `erase`, `object` or
    /// `california-disclosures`: a kind the policy gives `respond_days`.
    pub kind: String,
    /// The subject it is about: required, but for `california-disclosures`.
    pub subject: Option<String>,
    /// `online`, `email`, `letter` or `phone`.
    pub channel: String,
    /// One of [`VERIFICATIONS`]; `signed_in` exactly when the channel is `online`.
    pub verification: String,
    /// The purpose objected to, for `object` (none: every communication topic, an
    /// unsubscribe from promotional mail); refused for every other kind.
    pub purpose: Option<String>,
}

/// A request and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonRequest {
    /// Its id (a UUIDv7).
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The subject it is about.
    pub subject: Option<String>,
    /// How it arrived.
    pub channel: String,
    /// How the requester's identity is verified.
    pub verification: String,
    /// The purpose objected to.
    pub purpose: Option<String>,
    /// `received`, `verified`, `completed` or `refused`.
    pub state: String,
    /// Why it was refused.
    pub reason: Option<String>,
    /// When it was received, RFC 3339 in UTC.
    pub received: String,
    /// When it is due, RFC 3339 in UTC.
    pub due: String,
    /// Whether it is open and past its due time.
    pub overdue: bool,
    /// When its state last changed, RFC 3339 in UTC.
    pub updated: String,
    /// Who entered it: a staff accessor, or `operator`.
    pub created_by: String,
    /// Who last changed its state.
    pub updated_by: String,
}

/// Which requests to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestList {
    /// Received or verified.
    Open,
    /// Open and past due.
    Overdue,
    /// Every request.
    All,
}

fn field_err(code: &'static str, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: field.to_string(),
        message: message.into(),
    }
}

fn not_staff() -> Error {
    Error::invalid(
        "not_staff",
        "only staff handle requests: an accessor the policy lists in `[rights] staff`, with a key of no tenant",
    )
}

fn not_found() -> Error {
    Error::invalid("request_not_found", "no such request")
}

/// A keyword from a closed set, or an error naming the field and the set.
fn one_of(value: &str, set: &[&str], code: &'static str, field: &str) -> Result<()> {
    if set.contains(&value) {
        return Ok(());
    }
    Err(field_err(
        code,
        field,
        format!("unknown {field}; expected one of {}", set.join(", ")),
    ))
}

impl Vault {
    /// Enters a request received from a person; returns it, `received`, with its due time.
    /// Refused `not_staff` to anyone but staff and the operator; each field checked, an
    /// error naming it; a subject not held (or erased) is `subject_not_found`. Ledgered
    /// (`request_receive`) before it is stored; a refusal is ledgered too.
    pub fn create_request<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        input: &RequestInput,
    ) -> Result<PersonRequest> {
        let by = by.into();
        let actor = self.request_handler(by);
        let row = match self.check_request(by, input) {
            Ok(row) => row,
            Err(e) => {
                self.request_refusal(actor, REQUEST_RECEIVE, "", e.code())?;
                return Err(e);
            }
        };
        let mut d = self.draft(actor, REQUEST_RECEIVE, row.subject.as_deref().unwrap_or(""));
        d.purpose = row.purpose.clone().unwrap_or_default();
        d.effect = "done".into();
        d.reasons = tags(&row);
        // INVARIANT: audit before data — the entry is durable before the request is stored.
        self.record(d)?;
        self.store.put_request(&row)?;
        Ok(view(row, now_ms()))
    }

    /// The first page of [`Vault::requests_page`], of [`MAX_REQUESTS_LISTED`] requests.
    pub fn requests<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        which: RequestList,
    ) -> Result<Vec<PersonRequest>> {
        Ok(self
            .requests_page(by, which, None, MAX_REQUESTS_LISTED)?
            .requests)
    }

    /// One page of the requests `which` names, due soonest first: those after `after` (the
    /// `next` of the previous page; `None` for the first), at most `limit` (0 means
    /// [`DEFAULT_REQUESTS_PAGE`]; more than [`MAX_REQUESTS_LISTED`] is that). For staff and
    /// the operator only. Ledgered (`request_list`, with the page's count).
    pub fn requests_page<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        which: RequestList,
        after: Option<&str>,
        limit: u64,
    ) -> Result<RequestsPage> {
        let by = by.into();
        let actor = self.request_staff_only(by, REQUEST_LIST)?;
        let after = after.map(parse_after).transpose()?;
        let limit = match limit {
            0 => DEFAULT_REQUESTS_PAGE,
            n => n.min(MAX_REQUESTS_LISTED),
        };
        let now = now_ms();
        let filter = match which {
            RequestList::Open => RequestFilter::Open,
            RequestList::Overdue => RequestFilter::DueBefore(now),
            RequestList::All => RequestFilter::All,
        };
        let rows = self.store.requests(filter, after, limit)?;
        let mut d = self.draft(actor, REQUEST_LIST, "");
        d.effect = "done".into();
        d.reasons = format!(
            "list:{},count:{}",
            match which {
                RequestList::Open => "open",
                RequestList::Overdue => "overdue",
                RequestList::All => "all",
            },
            rows.len()
        );
        self.record(d)?;
        let next = (rows.len() as u64 == limit)
            .then(|| rows.last().map(|r| format!("{}_{}", r.due_ms, r.id)))
            .flatten();
        Ok(RequestsPage {
            requests: rows.into_iter().map(|r| view(r, now)).collect(),
            next,
        })
    }

    /// One request, for staff and the operator. Ledgered (`request_show`).
    pub fn request<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        id: &str,
    ) -> Result<PersonRequest> {
        let by = by.into();
        let actor = self.request_staff_only(by, REQUEST_SHOW)?;
        let row = self.stored_request(actor, REQUEST_SHOW, id)?;
        let mut d = self.draft(actor, REQUEST_SHOW, row.subject.as_deref().unwrap_or(""));
        d.effect = "done".into();
        d.reasons = format!("request:{}", row.id);
        self.record(d)?;
        Ok(view(row, now_ms()))
    }

    /// Records that the requester's identity was verified, by the method the request was
    /// entered with: `received` → `verified`. A verified one is `request_already_verified`,
    /// a closed one `request_closed`. Ledgered (`request_verify`).
    pub fn verify_request<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        id: &str,
    ) -> Result<PersonRequest> {
        self.request_transition(by.into(), REQUEST_VERIFY, id, None)
    }

    /// Completes a verified request: an `erase` request erases the subject
    /// ([`Vault::erase`]), `deactivate` deactivates it ([`Vault::deactivate`]), `object`
    /// records the objection to its purpose ([`Vault::object`], method `request`) — each
    /// ledgered as itself — then `verified` → `completed`, ledgered (`request_complete`).
    /// Not yet verified: `request_not_verified`; closed: `request_closed`.
    pub fn complete_request<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        id: &str,
    ) -> Result<PersonRequest> {
        self.complete_request_with(by, id, None).map(|c| c.request)
    }

    /// [`Vault::complete_request`], for every kind: an `access` or `export` request
    /// completes with the subject's export ([`Vault::export`], ledgered as itself; staff
    /// send it to the person by the channel the request came by), a `rectify` request with
    /// the corrected values `correction` gives ([`Vault::correct`]; without them
    /// `missing_field` naming `data`, and only a `rectify` request takes them).
    pub fn complete_request_with<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        id: &str,
        correction: Option<&BTreeMap<String, String>>,
    ) -> Result<Completion> {
        let mut export = None;
        let request = self.request_transition_with(
            by.into(),
            REQUEST_COMPLETE,
            id,
            None,
            correction,
            &mut export,
        )?;
        Ok(Completion { request, export })
    }

    /// Refuses an open request, for one of [`REFUSAL_REASONS`]: → `refused`. Closed:
    /// `request_closed`. Ledgered (`request_refuse`, with the reason).
    pub fn refuse_request<'a>(
        &self,
        by: impl Into<RequestHandler<'a>>,
        id: &str,
        reason: &str,
    ) -> Result<PersonRequest> {
        self.request_transition(by.into(), REQUEST_REFUSE, id, Some(reason))
    }

    /// The ledger's name for who handles: the accessor if declared, `?` if not, or
    /// `operator`.
    fn request_handler<'a>(&self, by: RequestHandler<'a>) -> &'a str {
        match by {
            RequestHandler::Operator => OPERATOR,
            RequestHandler::Accessor(a) => self.declared_accessor(a.accessor),
        }
    }

    fn handles_requests(&self, by: RequestHandler<'_>) -> bool {
        match by {
            RequestHandler::Operator => true,
            // A key made for a tenant acts for that customer, never as staff.
            RequestHandler::Accessor(a) => {
                a.tenant.is_none()
                    && self
                        .policy
                        .accessor_id(a.accessor)
                        .is_ok_and(|id| self.policy.is_staff(id))
            }
        }
    }

    /// The handler's ledger name if it is staff; else the refusal ledgered and `not_staff`.
    pub(crate) fn request_staff_only<'a>(
        &self,
        by: RequestHandler<'a>,
        action: &str,
    ) -> Result<&'a str> {
        let actor = self.request_handler(by);
        if self.handles_requests(by) {
            return Ok(actor);
        }
        let e = not_staff();
        self.request_refusal(actor, action, "", e.code())?;
        Err(e)
    }

    pub(crate) fn request_refusal(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        code: &str,
    ) -> Result<()> {
        let mut d = self.draft(actor, action, subject);
        d.effect = "refused".into();
        d.reasons = code.to_string();
        self.record(d)?;
        Ok(())
    }

    /// A stored request by id; an unknown or malformed id is ledgered and
    /// `request_not_found`.
    fn stored_request(&self, actor: &str, action: &str, id: &str) -> Result<RequestRow> {
        let found = match uuid::Uuid::try_parse(id) {
            Ok(u) => self.store.request(&u.hyphenated().to_string())?,
            Err(_) => None,
        };
        match found {
            Some(row) => Ok(row),
            None => {
                self.request_refusal(actor, action, "", "request_not_found")?;
                Err(not_found())
            }
        }
    }

    /// Every check of a new request, in the order a caller fixes them: who, kind, channel,
    /// verification, subject, purpose. Returns the row to store.
    fn check_request(&self, by: RequestHandler<'_>, input: &RequestInput) -> Result<RequestRow> {
        if !self.handles_requests(by) {
            return Err(not_staff());
        }
        let kind = RequestKind::parse(&input.kind).ok_or_else(|| {
            let hint = RequestKind::nearest(&input.kind)
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            field_err(
                "invalid_request_kind",
                "kind",
                format!(
                    "unknown request kind; {hint}expected one of {}",
                    RequestKind::NAMES.join(", ")
                ),
            )
        })?;
        let days = self.policy.respond_days(kind).ok_or_else(|| {
            field_err(
                "request_kind_not_offered",
                "kind",
                format!(
                    "the policy's `[rights] respond_days` gives `{}` requests no deadline, so it takes none",
                    kind.as_str()
                ),
            )
        })?;
        one_of(
            &input.channel,
            REQUEST_CHANNELS,
            "invalid_channel",
            "channel",
        )?;
        one_of(
            &input.verification,
            VERIFICATIONS,
            "invalid_verification",
            "verification",
        )?;
        // A person signed in is verified by the session; a message, letter or call by
        // something else.
        if (input.channel == "online") != (input.verification == "signed_in") {
            return Err(field_err(
                "invalid_verification",
                "verification",
                "`signed_in` verifies exactly the requests received online; name how a request by email, letter or phone is verified",
            ));
        }
        let subject = match (&input.subject, kind) {
            (None, RequestKind::CaliforniaDisclosures) => None,
            (None, _) => {
                return Err(field_err(
                    "subject_required",
                    "subject",
                    format!(
                        "a `{}` request names the subject it is about",
                        kind.as_str()
                    ),
                ));
            }
            (Some(s), _) => {
                // INVARIANT: a request is about someone the vault holds; an id of no one,
                // or of someone erased, is answered as not found.
                let id = SubjectId::parse(s).map_err(|_| Error::SubjectNotFound)?;
                let held = self
                    .store
                    .subject(id.as_str())?
                    .is_some_and(|row| row.status != Status::Erased);
                if !held {
                    return Err(Error::SubjectNotFound);
                }
                Some(id.0)
            }
        };
        let purpose = match (&input.purpose, kind) {
            (Some(p), RequestKind::Object) => {
                self.policy
                    .purpose_id(p)
                    .map_err(|e| field_err("unknown_purpose", "purpose", e.message))?;
                Some(p.clone())
            }
            // An objection naming no purpose is an unsubscribe from promotional mail (C032,
            // C033): every communication topic.
            (None, RequestKind::Object) => None,
            (Some(_), _) => {
                return Err(field_err(
                    "purpose_not_expected",
                    "purpose",
                    "only an `object` request names a purpose",
                ));
            }
            (None, _) => None,
        };
        let id = uuid_v7(&mut Entropy::new())?;
        let now = now_ms();
        let by_name = match by {
            RequestHandler::Operator => OPERATOR.to_string(),
            RequestHandler::Accessor(a) => a.accessor.to_string(),
        };
        Ok(RequestRow {
            id: id.hyphenated().to_string(),
            kind: kind.as_str().to_string(),
            subject,
            channel: input.channel.clone(),
            verification: input.verification.clone(),
            purpose,
            state: "received".into(),
            reason: None,
            received_ms: now,
            due_ms: now.saturating_add(i64::from(days).saturating_mul(MS_PER_DAY)),
            updated_ms: now,
            created_by: by_name.clone(),
            updated_by: by_name,
        })
    }

    /// The request a person makes online for themself, done at once by the act that asks
    /// for it (`Vault::export`, `correct`, `deactivate_for`, `erase_for` with a
    /// `Requester::Person`): channel `online`, verified `signed_in`, completed. The act's own
    /// ledger entry carries the request's tags in its reasons (`kind:…,channel:online,…,
    /// request:<id>`), durable before the row is stored; no second entry. A kind the policy
    /// gives no deadline is still recorded, due at once.
    pub(crate) fn online_request_row(
        &self,
        kind: RequestKind,
        subject: &SubjectId,
    ) -> Result<RequestRow> {
        let id = uuid_v7(&mut Entropy::new())?.hyphenated().to_string();
        let now = now_ms();
        let days = self.policy.respond_days(kind).unwrap_or(0);
        Ok(RequestRow {
            id,
            kind: kind.as_str().to_string(),
            subject: Some(subject.as_str().to_string()),
            channel: "online".into(),
            verification: "signed_in".into(),
            purpose: None,
            state: "completed".into(),
            reason: None,
            received_ms: now,
            due_ms: now.saturating_add(i64::from(days).saturating_mul(MS_PER_DAY)),
            updated_ms: now,
            created_by: PERSON.into(),
            updated_by: PERSON.into(),
        })
    }

    /// Moves a request on: verify, complete or refuse (with `reason`).
    fn request_transition(
        &self,
        by: RequestHandler<'_>,
        action: &'static str,
        id: &str,
        reason: Option<&str>,
    ) -> Result<PersonRequest> {
        self.request_transition_with(by, action, id, reason, None, &mut None)
    }

    fn request_transition_with(
        &self,
        by: RequestHandler<'_>,
        action: &'static str,
        id: &str,
        reason: Option<&str>,
        correction: Option<&BTreeMap<String, String>>,
        export: &mut Option<Export>,
    ) -> Result<PersonRequest> {
        let actor = self.request_staff_only(by, action)?;
        if let Some(r) = reason {
            if let Err(e) = one_of(r, REFUSAL_REASONS, "invalid_refusal_reason", "reason") {
                self.request_refusal(actor, action, "", e.code())?;
                return Err(e);
            }
        }
        let _one = TRANSITIONS.lock().unwrap_or_else(PoisonError::into_inner);
        let row = self.stored_request(actor, action, id)?;
        let subject = row.subject.clone().unwrap_or_default();
        let wrong = match (row.state.as_str(), action) {
            ("completed" | "refused", _) => Some(Error::invalid(
                "request_closed",
                format!("the request is {} already; it is closed", row.state),
            )),
            ("verified", REQUEST_VERIFY) => Some(Error::invalid(
                "request_already_verified",
                "the requester's identity is verified already",
            )),
            ("received", REQUEST_COMPLETE) => Some(Error::invalid(
                "request_not_verified",
                "verify the requester's identity before completing the request",
            )),
            _ => None,
        };
        if let Some(e) = wrong {
            let mut d = self.draft(actor, action, &subject);
            d.effect = "refused".into();
            d.reasons = format!("{},request:{}", e.code(), row.id);
            self.record(d)?;
            return Err(e);
        }
        if action == REQUEST_COMPLETE {
            *export = self.carry_out_request(by, &row, correction)?;
        }
        let mut next = row.clone();
        next.state = match action {
            REQUEST_VERIFY => "verified",
            REQUEST_COMPLETE => "completed",
            _ => "refused",
        }
        .into();
        next.reason = reason.map(str::to_string);
        next.updated_ms = now_ms();
        next.updated_by = match by {
            RequestHandler::Operator => OPERATOR.to_string(),
            RequestHandler::Accessor(a) => a.accessor.to_string(),
        };
        let mut d = self.draft(actor, action, &subject);
        d.purpose = row.purpose.clone().unwrap_or_default();
        d.effect = "done".into();
        d.reasons = match reason {
            Some(r) => format!("{r},{}", tags(&row)),
            None => tags(&row),
        };
        // INVARIANT: audit before data — the entry is durable before the state moves.
        self.record(d)?;
        if !self.store.transition_request(&next, &row.state)? {
            // Another server moved it first.
            self.request_refusal(actor, action, &subject, "request_closed")?;
            return Err(Error::invalid(
                "request_closed",
                "the request was moved on by someone else meanwhile",
            ));
        }
        Ok(view(next, now_ms()))
    }

    /// What completing a request does, besides closing it.
    fn carry_out_request(
        &self,
        by: RequestHandler<'_>,
        row: &RequestRow,
        correction: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<Export>> {
        let (actor, requester) = match by {
            RequestHandler::Operator => (Actor::from(OPERATOR), Requester::Operator),
            RequestHandler::Accessor(a) => (a, Requester::Staff(a.accessor)),
        };
        let subject = || -> Result<SubjectId> {
            row.subject
                .as_deref()
                .ok_or(Error::SubjectNotFound)
                .and_then(SubjectId::parse)
        };
        let kind = RequestKind::parse(&row.kind);
        if correction.is_some() && kind != Some(RequestKind::Rectify) {
            return Err(Error::InvalidField {
                code: "invalid_field",
                field: "data".into(),
                message: "only a rectify request completes with corrected values".into(),
            });
        }
        match kind {
            Some(RequestKind::Erase) => self.erase(actor, &subject()?).map(|()| None),
            Some(RequestKind::Deactivate) => self.deactivate(actor, &subject()?).map(|()| None),
            Some(RequestKind::Object) => self.carry_out_objection(by, actor, row, &subject()?),
            Some(RequestKind::Access | RequestKind::Export) => {
                self.export(requester, &subject()?).map(Some)
            }
            Some(RequestKind::Rectify) => {
                let Some(data) = correction else {
                    return Err(Error::InvalidField {
                        code: "missing_field",
                        field: "data".into(),
                        message: "a rectify request completes with the corrected values: give `data` (category: value)".into(),
                    });
                };
                self.correct(requester, &subject()?, data).map(|()| None)
            }
            // Answered by staff with the list of disclosures (the sharing issue builds it);
            // completing it records that they did.
            Some(RequestKind::CaliforniaDisclosures) => Ok(None),
            None => Err(Error::invalid(
                "invalid_request_kind",
                "the stored request has a kind this version does not know",
            )),
        }
    }
}

impl Vault {
    /// Completes an `object` request: through the consent machinery (a record with its
    /// evidence, signed receipt and ledger entry), by the method its channel names
    /// ([`channel_method`]): no purpose — an unsubscribe from promotional mail by email or
    /// letter (C032, C033) — withdraws every communication topic that is on; a purpose of
    /// basis consent or opt-out is withdrawn or objected to; a purpose of another basis
    /// keeps the objection without a receipt ([`Vault::object`]), as before issue 14.
    fn carry_out_objection(
        &self,
        by: RequestHandler<'_>,
        actor: Actor<'_>,
        row: &RequestRow,
        subject: &SubjectId,
    ) -> Result<Option<Export>> {
        let method = channel_method(&row.channel);
        let requester = match by {
            RequestHandler::Operator => Requester::Operator,
            RequestHandler::Accessor(a) => Requester::Staff(a.accessor),
        };
        let Some(purpose) = row.purpose.as_deref() else {
            self.unsubscribe_subjects(by, std::slice::from_ref(subject), method)?;
            return Ok(None);
        };
        let choosable = self
            .policy
            .purpose_id(purpose)
            .ok()
            .and_then(|p| self.policy.purpose(p))
            .is_some_and(|p| {
                matches!(
                    p.basis,
                    custos_policy::Basis::Consent | custos_policy::Basis::OptOut
                )
            });
        if !choosable {
            return self
                .object(actor, subject, purpose, "request")
                .map(|()| None);
        }
        let input = super::ConsentInput {
            purpose: purpose.to_string(),
            recipient: None,
            given: false,
            method: method.to_string(),
            notice: self.policy.version().to_string(),
        };
        self.record_consent(requester, subject, &input)
            .map(|_| None)
    }
}

/// The consent method a request's channel records a choice with: `letter` by post (C033),
/// `email_request` by email (C032), `verbal_recorded_by_staff` by phone, `settings_page`
/// online.
pub fn channel_method(channel: &str) -> &'static str {
    match channel {
        "letter" => "letter",
        "email" => "email_request",
        "phone" => "verbal_recorded_by_staff",
        _ => "settings_page",
    }
}

/// What completing a request gave.
#[derive(Debug, Clone)]
pub struct Completion {
    /// The request, completed.
    pub request: PersonRequest,
    /// For an `access` or `export` request: the subject's export, for staff to send.
    pub export: Option<Export>,
}

/// The ledger keywords of a request: its kind, channel, verification and id.
pub(crate) fn tags(row: &RequestRow) -> String {
    format!(
        "kind:{},channel:{},verification:{},request:{}",
        row.kind, row.channel, row.verification, row.id
    )
}

fn view(row: RequestRow, now: i64) -> PersonRequest {
    let open = matches!(row.state.as_str(), "received" | "verified");
    PersonRequest {
        overdue: open && row.due_ms < now,
        received: format_date_time(row.received_ms),
        due: format_date_time(row.due_ms),
        updated: format_date_time(row.updated_ms),
        id: row.id,
        kind: row.kind,
        subject: row.subject,
        channel: row.channel,
        verification: row.verification,
        purpose: row.purpose,
        state: row.state,
        reason: row.reason,
        created_by: row.created_by,
        updated_by: row.updated_by,
    }
}
