//! The `Store` trait: what the vault needs from a database, and nothing about policy or
//! plaintext. Every value it sees is already ciphertext, a hash or an id.
//!
//! Two backends: [`sqlite`] (embedded, the default) and [`postgres`] (many servers, one
//! database). One conformance suite (`tests/it/conformance.rs`) runs against both.

pub mod postgres;
mod receipts;
pub mod sqlite;

use crate::error::Result;
use crate::ledger::tree::{TileKey, Tiles};
use crate::ledger::{Checkpoint, Draft, LedgerEntry};

/// Lifecycle of a subject, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Normal.
    Active,
    /// Account closed.
    Deactivated,
    /// Data key destroyed, values deleted; records deleted or queued for purging (unreadable
    /// either way: their key is gone and [`Store::records`] returns none of them).
    Erased,
}

impl Status {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
            Self::Erased => "erased",
        }
    }

    /// Parses a stored name; anything unknown reads as erased, the safe side.
    pub fn parse(s: &str) -> Self {
        match s {
            "active" => Self::Active,
            "deactivated" => Self::Deactivated,
            _ => Self::Erased,
        }
    }
}

/// What is known of a subject's age, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Age {
    /// Not asked.
    Unknown,
    /// At or above the policy's minimum age.
    AtLeastMinimum,
    /// Below it.
    UnderMinimum,
}

impl Age {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::AtLeastMinimum => "at_least_minimum",
            Self::UnderMinimum => "under_minimum",
        }
    }

    /// Parses a stored name; anything unknown reads as under minimum, the safe side.
    pub fn parse(s: &str) -> Self {
        match s {
            "unknown" => Self::Unknown,
            "at_least_minimum" => Self::AtLeastMinimum,
            _ => Self::UnderMinimum,
        }
    }
}

/// A subject row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    /// Its id: a UUIDv7 (time-ordered, 74 random bits).
    pub id: String,
    /// Lifecycle.
    pub status: Status,
    /// Age.
    pub age: Age,
    /// Tenants the subject belongs to.
    pub tenants: Vec<String>,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A subject to create: its row, wrapped data key, first values and their blind-index terms
/// `(category, term)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubject {
    /// The subject.
    pub row: SubjectRow,
    /// Its data key, wrapped by the master key.
    pub wrapped_dek: Vec<u8>,
    /// Its first values.
    pub values: Vec<ValueRow>,
    /// Blind-index terms of its identifier values.
    pub index: Vec<(String, String)>,
}

/// A field value row: one (subject, category).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueRow {
    /// Subject id.
    pub subject: String,
    /// Category id.
    pub category: String,
    /// `nonce || ciphertext`, bound to (subject, category).
    pub ciphertext: Vec<u8>,
    /// Purposes stated at collection (union over collections), ids.
    pub purposes: Vec<String>,
    /// Notice version shown at the latest collection.
    pub notice: String,
    /// Service that collected it.
    pub service: String,
    /// Role of the subject in that service.
    pub role: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
}

/// A record row: append-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordRow {
    /// Record id: a UUIDv7 as 32 hex digits (time-ordered, 74 random bits).
    pub id: String,
    /// Subject id.
    pub subject: String,
    /// Record collection id.
    pub collection: String,
    /// `nonce || ciphertext`, bound to (subject, collection, record id).
    pub ciphertext: Vec<u8>,
    /// Purposes stated when it was appended.
    pub purposes: Vec<String>,
    /// Notice version in force when it was appended.
    pub notice: String,
    /// When it must be deleted, ms since the epoch; `None`: with the account.
    pub retain_until_ms: Option<i64>,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
}

/// A consent or objection event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRow {
    /// Subject id.
    pub subject: String,
    /// Purpose id.
    pub purpose: String,
    /// `consent` or `objection`.
    pub kind: String,
    /// Given (true) or withdrawn (false).
    pub given: bool,
    /// Notice version shown.
    pub notice: String,
    /// How it was given: `privacy-center`, `api`, … (a change with evidence names one of
    /// `vault::consent::METHODS`).
    pub method: String,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// The recipient the choice is about (partner marketing: consent to one partner), or
    /// `None` for the purpose whoever receives.
    pub recipient: Option<String>,
    /// The evidence kept with a change recorded through `Vault::record_consent` (issue 14);
    /// `None` for events recorded before, and in [`SubjectState::consents`], which the
    /// decision reads and which does not load it.
    pub evidence: Option<ConsentEvidence>,
}

/// What a consent change keeps as its evidence besides the event itself. No personal
/// information: the accessor's name, hashes and the receipt (which names the subject by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentEvidence {
    /// Who recorded it: the accessor (a service holding the person), or `person`.
    pub actor: String,
    /// SHA-256 of the notice text the person was shown (the HTML of `/privacy`), hex.
    pub notice_sha256: String,
    /// The receipt's `consentReceiptID`.
    pub receipt_id: String,
    /// The signed receipt, a compact JWS.
    pub receipt: String,
}

/// What deciding about a subject needs, read at one point in time (one snapshot, one round
/// trip where the backend allows): lifecycle, age, tenants, sealed values, consent and
/// objection events (oldest first) and the wrapped data key (`None` once erased).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectState {
    /// Lifecycle.
    pub status: Status,
    /// Age.
    pub age: Age,
    /// Tenants the subject belongs to, in order (none once erased): whom a tenant-bound key
    /// reaches.
    pub tenants: Vec<String>,
    /// Field values, still sealed, by category.
    pub values: Vec<ValueRow>,
    /// Consent and objection events, oldest first.
    pub consents: Vec<ConsentRow>,
    /// The data key, wrapped by the master key.
    pub wrapped_dek: Option<Vec<u8>>,
}

/// An API key row; the key itself is never stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRow {
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// The accessor the key acts as.
    pub accessor: String,
    /// The tenant it acts for: set for a tenant-bound accessor, `None` for any other (and for
    /// keys made before keys had tenants).
    pub tenant: Option<String>,
    /// Revoked keys authenticate nobody.
    pub revoked: bool,
    /// Milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A registered legal instrument (`vault/instruments.rs`). No value of a subject: ids, a
/// kind, the issuer's name as staff typed it (an authority, not the subject), a date, a hash
/// and category ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstrumentRow {
    /// Its id: a UUIDv7.
    pub id: String,
    /// `court_order`, `subpoena`, `authority_request`, `fraud_case`, `purchaser_authority`.
    pub kind: String,
    /// Who issued it (a court, an authority), at most 128 characters.
    pub issuer: String,
    /// The day it was issued, `YYYY-MM-DD`.
    pub issued: String,
    /// SHA-256 of the document, 64 lowercase hex digits.
    pub document_sha256: String,
    /// The subjects it covers: every one when stored; read back, only those not erased
    /// (and, from [`Store::instrument`] with a subject, that one alone).
    pub subjects: Vec<String>,
    /// The category ids it covers.
    pub categories: Vec<String>,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
    /// The accessor that registered it, or `operator`.
    pub registered_by: String,
    /// When it was registered, ms since the epoch.
    pub created_ms: i64,
}

/// A message in the outbox (`vault/mail.rs`). The recipient, subject line and body are
/// sealed together under the outbox key; once the message is sent or given up, `sealed` is
/// deleted and only the id, state, attempts and times remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    /// Its id: a UUIDv7.
    pub id: String,
    /// `queued`, `sent` or `failed`.
    pub state: String,
    /// Delivery attempts made.
    pub attempts: u32,
    /// When it was queued, ms since the epoch.
    pub created_ms: i64,
    /// When the next attempt is due (or, while one is under way, when its lease ends).
    pub next_ms: i64,
    /// When it was sent or given up.
    pub done_ms: Option<i64>,
    /// `nonce || ciphertext` of the message; `None` once sent or given up.
    pub sealed: Option<Vec<u8>>,
}

/// A mailing (`vault/mailings.rs`): who sent it for which purpose, its subject line sealed
/// under the outbox key (bound to its id), and its counts. No recipient list: each person's
/// part is in the ledger (`mail` entries) and the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailingRow {
    /// Its id: a UUIDv7.
    pub id: String,
    /// The purpose id.
    pub purpose: String,
    /// Who sent it: an accessor, or `operator`.
    pub actor: String,
    /// The tenant of the key that sent it, if any.
    pub tenant: Option<String>,
    /// `nonce || ciphertext` of the subject line.
    pub subject: Vec<u8>,
    /// Messages queued.
    pub recipients: u64,
    /// People excluded by reason, `code:count,…`.
    pub excluded: String,
    /// When it was sent, ms since the epoch.
    pub created_ms: i64,
}

/// A one-time sign-in code (`vault/people.rs`): keyed hashes of the address and the code,
/// never either; the subjects it signs in as (none for an address the vault does not know:
/// such a code exists only so that the address is rate-limited alike and never matches).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignInCodeRow {
    /// Its id: a UUIDv7.
    pub id: String,
    /// Keyed hash of the normalized address, hex.
    pub address: String,
    /// Keyed hash of the code (with the id), hex.
    pub code: String,
    /// The subjects it signs in as.
    pub subjects: Vec<String>,
    /// Verification attempts made.
    pub attempts: u32,
    /// Whether it was used (a code signs in once).
    pub used: bool,
    /// When it was made, ms since the epoch.
    pub created_ms: i64,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
}

/// A person's session: the SHA-256 of its bearer token, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    /// SHA-256 of the token, hex.
    pub hash: String,
    /// The subjects it reaches.
    pub subjects: Vec<String>,
    /// When it signed in, ms since the epoch.
    pub signed_in_ms: i64,
    /// When it expires, ms since the epoch.
    pub expires_ms: i64,
    /// Signed out.
    pub revoked: bool,
}

/// A person's request, as staff handle it (`vault/requests.rs`). No value of a subject:
/// keywords, ids and times only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    /// Its id: a UUIDv7.
    pub id: String,
    /// The request kind (`access`, `erase`, …).
    pub kind: String,
    /// The subject it is about, when one is named.
    pub subject: Option<String>,
    /// How it arrived: `online`, `email`, `letter`, `phone`.
    pub channel: String,
    /// How the requester's identity is verified (a closed set of keywords).
    pub verification: String,
    /// The purpose objected to (an `object` request).
    pub purpose: Option<String>,
    /// `received`, `verified`, `completed` or `refused`.
    pub state: String,
    /// Why it was refused (a closed set of keywords).
    pub reason: Option<String>,
    /// When it was received, ms since the epoch.
    pub received_ms: i64,
    /// When it is due, ms since the epoch.
    pub due_ms: i64,
    /// When its state last changed, ms since the epoch.
    pub updated_ms: i64,
    /// The staff accessor (or `operator`) that entered it.
    pub created_by: String,
    /// The staff accessor (or `operator`) that last changed its state.
    pub updated_by: String,
}

/// Which requests [`Store::requests`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFilter {
    /// Every request.
    All,
    /// Those not completed or refused.
    Open,
    /// Open ones due before this time (ms since the epoch).
    DueBefore(i64),
}

impl RequestFilter {
    /// As a query's two bounds: open requests only, and due before when (ms).
    pub(crate) fn bounds(self) -> (bool, i64) {
        match self {
            Self::All => (false, i64::MAX),
            Self::Open => (true, i64::MAX),
            Self::DueBefore(t) => (true, t),
        }
    }
}

/// What one [`Store::purge_records`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Records deleted.
    pub deleted: u64,
    /// No record of the subject is left: it is off the purge queue.
    pub done: bool,
}

/// A ledger row as stored, its text columns as the bytes the database holds, borrowed from
/// its row buffer: what [`Store::scan_ledger`] hands out, so reading the chain allocates and
/// validates nothing per column (the hash covers these bytes; anything not as written fails
/// it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerRow<'a> {
    /// Position, from 1.
    pub seq: u64,
    /// Milliseconds since the Unix epoch.
    pub time_ms: i64,
    /// See [`Draft`].
    pub actor: &'a [u8],
    /// See [`Draft`].
    pub action: &'a [u8],
    /// See [`Draft`].
    pub subject: &'a [u8],
    /// See [`Draft`].
    pub purpose: &'a [u8],
    /// See [`Draft`].
    pub recipient: &'a [u8],
    /// See [`Draft`].
    pub categories: &'a [u8],
    /// See [`Draft`].
    pub effect: &'a [u8],
    /// See [`Draft`].
    pub reasons: &'a [u8],
    /// Hash of the previous entry, hex, as stored.
    pub prev_hash: &'a [u8],
    /// Hash of this entry, hex, as stored.
    pub hash: &'a [u8],
}

/// What [`Store::scan_ledger`] calls for each row; `false` stops the scan.
pub type LedgerVisitor<'a> = dyn FnMut(&LedgerRow<'_>) -> bool + 'a;

/// Re-wraps one key: `(kind, name, wrapped) -> rewrapped`, kind `dek` or `secret`.
pub type Rewrap<'a> = dyn FnMut(&str, &str, &[u8]) -> Result<Vec<u8>> + 'a;

/// The signed checkpoint due at an entry, if any.
pub type Checkpointer<'a> = dyn Fn(u64, &str) -> Option<Checkpoint> + 'a;

/// What the vault needs from a database. Implementations must be safe to share between
/// threads; each method is one transaction unless said otherwise.
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Which backend: `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A vault secret (blind index key, signing seed), wrapped by the master key.
    fn secret(&self, name: &str) -> Result<Option<Vec<u8>>>;
    /// Stores a vault secret unless one of that name exists; returns the stored one.
    fn put_secret_if_absent(&self, name: &str, wrapped: &[u8]) -> Result<Vec<u8>>;

    /// Creates subjects, each with its wrapped data key, first values and their index
    /// terms, all in one transaction (all or none). `subjects` yields them as they are made,
    /// so a bulk collection seals the next subjects while the store writes these; an error
    /// it yields rolls the transaction back and is returned. A new subject's values have
    /// distinct categories. Returns how many subjects were created.
    fn create_subjects(
        &self,
        subjects: &mut dyn Iterator<Item = Result<&NewSubject>>,
    ) -> Result<u64>;
    /// A subject.
    fn subject(&self, id: &str) -> Result<Option<SubjectRow>>;
    /// Everything a decision about a subject needs, in one consistent read; `None` when no
    /// such subject was ever collected.
    fn subject_state(&self, id: &str) -> Result<Option<SubjectState>>;
    /// Sets a subject's age status.
    fn set_age(&self, id: &str, age: Age) -> Result<()>;
    /// Sets a subject's lifecycle status.
    fn set_status(&self, id: &str, status: Status) -> Result<()>;
    /// Adds a tenant membership.
    fn add_tenant(&self, id: &str, tenant: &str) -> Result<()>;
    /// A subject's wrapped data key; `None` once erased.
    fn wrapped_dek(&self, id: &str) -> Result<Option<Vec<u8>>>;

    /// Inserts or replaces field values and their blind-index terms `(category, term)`.
    fn put_values(&self, values: &[ValueRow], index: &[(String, String)]) -> Result<()>;
    /// A subject's field values.
    fn values(&self, subject: &str) -> Result<Vec<ValueRow>>;
    /// The subject holding a blind-index term.
    fn find_by_term(&self, category: &str, term: &str) -> Result<Option<String>>;

    /// Appends a record.
    fn append_record(&self, record: &RecordRow) -> Result<()>;
    /// A page of a subject's records of a collection, in append order: at most `limit`,
    /// those appended after the record `after` (from the first when `None`; none when
    /// `after` is not a record of that subject and collection). None once the subject is
    /// erased (its records may still await the purge).
    fn records(
        &self,
        subject: &str,
        collection: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RecordRow>>;
    /// Appends many records in one transaction. Fails with
    /// [`crate::Error::SubjectNotFound`], storing nothing, when a record's subject is erased
    /// (checked inside the transaction, so a record cannot slip in behind an erasure).
    fn append_records(&self, records: &[RecordRow]) -> Result<()>;

    /// Deletes every record whose retention deadline is at or before `now_ms`; returns how
    /// many.
    fn delete_expired_records(&self, now_ms: i64) -> Result<u64>;
    /// Deletes, for each `(category, cutoff_ms)`, the values of that category collected at
    /// or before the cutoff, with their blind-index terms, in one transaction; returns how
    /// many values, per entry of `expiries`.
    fn delete_expired_values(&self, expiries: &[(String, i64)]) -> Result<Vec<u64>>;
    /// Deletes the sign-in codes made before `codes_before_ms` (past their expiry and the
    /// window their address's limit counts in) and the sessions expired at `now_ms` or
    /// revoked, in one transaction; returns how many codes and how many sessions.
    fn delete_expired_sign_ins(&self, codes_before_ms: i64, now_ms: i64) -> Result<(u64, u64)>;
    /// Deletes the outbox's rows of messages sent or given up before `done_before_ms`;
    /// returns how many.
    fn delete_finished_mail(&self, done_before_ms: i64) -> Result<u64>;

    /// Records a consent or objection event.
    fn put_consent(&self, consent: &ConsentRow) -> Result<()>;
    /// Records consent and objection events, with their evidence, in one transaction.
    fn put_consents(&self, consents: &[&ConsentRow]) -> Result<()>;
    /// A subject's consent and objection events, oldest first.
    fn consents(&self, subject: &str) -> Result<Vec<ConsentRow>>;

    /// Erases a subject, by key: destroys its data key; deletes its values, index terms,
    /// consents and tenant memberships, marks it erased with the given age status and queues
    /// it for purging, in one transaction; and appends `entry` to the ledger (chained under
    /// the chain-head lock, with the checkpoint `checkpoint` returns) — in that same
    /// transaction where the ledger shares it (PostgreSQL), else right after its commit
    /// (SQLite: `ledger.db`); returns the entry's sequence number. The key's deletion is durable no
    /// later than the rest (SQLite commits it first, on its own).
    /// The subject's records stay in the table — ciphertext under a key that no longer
    /// exists, returned by no read — until [`Store::purge_records`] deletes them: deleting
    /// many here would hold the one writer for the whole length of the delete.
    fn erase_subject(
        &self,
        id: &str,
        age: Age,
        entry: &Draft,
        checkpoint: &Checkpointer<'_>,
    ) -> Result<u64>;
    /// Removes the bytes of deleted wrapped keys from the key store's files where the backend
    /// can: SQLite checkpoints `keys.db` and truncates its WAL, whose older frames hold every
    /// key written since the last truncation (`erase_subject` does this too, after its
    /// commit; the purge repeats it in case a reader kept that from finishing). Returns
    /// `false` when a reader kept it from finishing. PostgreSQL: nothing to do here (see
    /// `docs/vault.md`, known limits).
    fn scrub_keys(&self) -> Result<bool>;
    /// Appends the ledger entries whose data committed before them and which a crash may
    /// have kept out of the ledger; returns how many it appended. SQLite's erasure commits
    /// its data, then its entry to `ledger.db`, keeping the entry with the data in between;
    /// an entry found in the ledger already (the crash came after its commit, or another
    /// process appended it) is not appended again — the check and the append hold the
    /// ledger's write lock together. The vault calls this on open. PostgreSQL commits an
    /// erasure with its entry: nothing to do.
    fn settle_pending(&self, _checkpoint: &Checkpointer<'_>) -> Result<u64> {
        Ok(0)
    }
    /// Erased subjects whose records are not all purged yet, oldest erasure first.
    fn purge_queue(&self) -> Result<Vec<String>>;
    /// Deletes at most `limit` records of an erased subject in one transaction and, when none
    /// is left, takes the subject off the purge queue in the same transaction. Refuses a
    /// subject that is not erased.
    fn purge_records(&self, subject: &str, limit: u64) -> Result<Purged>;

    /// Stores an API key hash.
    fn put_api_key(&self, key: &ApiKeyRow) -> Result<()>;
    /// The API key with this hash.
    fn api_key(&self, hash: &str) -> Result<Option<ApiKeyRow>>;
    /// Revokes the keys of an accessor made for `tenant`, or (`None`) every key of the
    /// accessor; returns how many were revoked.
    fn revoke_api_keys(&self, accessor: &str, tenant: Option<&str>) -> Result<u64>;

    /// Stores a legal instrument and the subjects it covers, in one transaction.
    fn put_instrument(&self, row: &InstrumentRow) -> Result<()>;
    /// A legal instrument by id. With `subject`: only when it covers that subject and the
    /// subject is not erased (`subjects` is then that one); without: with every subject it
    /// covers that is not erased. An erased subject is covered by no instrument.
    fn instrument(&self, id: &str, subject: Option<&str>) -> Result<Option<InstrumentRow>>;

    /// Every subject holding a blind-index term, in id order (several people may share an
    /// address).
    fn find_all_by_term(&self, category: &str, term: &str) -> Result<Vec<String>>;

    /// Queues a message in the outbox.
    fn put_mail(&self, row: &MailRow) -> Result<()>;
    /// Claims at most `limit` queued messages due at `now_ms`, oldest due first, in one
    /// transaction: each claimed message's `next_ms` is set to `lease_until_ms`, so another
    /// worker (another server on PostgreSQL) does not take it while it is being delivered.
    /// Returns them as they were before the claim.
    fn claim_mail(&self, now_ms: i64, lease_until_ms: i64, limit: u64) -> Result<Vec<MailRow>>;
    /// Records an attempt: `state` `sent` or `failed` deletes the sealed message and sets
    /// `done_ms`; `queued` keeps it for the retry at `next_ms`.
    fn update_mail(&self, id: &str, state: &str, attempts: u32, next_ms: i64) -> Result<()>;
    /// A message of the outbox.
    fn mail(&self, id: &str) -> Result<Option<MailRow>>;

    /// Stores a sign-in code, and `mail` with it, in one transaction, unless `max` codes for
    /// the same address were made since `since_ms`: then stores nothing and returns the
    /// oldest of those codes' `created_ms`.
    fn put_sign_in_code(
        &self,
        row: &SignInCodeRow,
        mail: Option<&MailRow>,
        since_ms: i64,
        max: u32,
    ) -> Result<Option<i64>>;
    /// The newest sign-in code made for an address, with one more attempt counted (in the
    /// same transaction) unless it is used, expired at `now_ms` or has `max_attempts`
    /// already, and whether this attempt was counted; `None` when the address has none.
    fn attempt_sign_in_code(
        &self,
        address: &str,
        now_ms: i64,
        max_attempts: u32,
    ) -> Result<Option<(SignInCodeRow, bool)>>;
    /// Marks a code used and stores the session it opens, in one transaction; `false` (and
    /// nothing stored) when the code was used already.
    fn redeem_sign_in_code(&self, id: &str, session: &SessionRow) -> Result<bool>;
    /// The session with this token hash.
    fn session(&self, hash: &str) -> Result<Option<SessionRow>>;
    /// Revokes a session; `false` when there was none to revoke.
    fn revoke_session(&self, hash: &str) -> Result<bool>;
    /// Stores a new request.
    fn put_request(&self, row: &RequestRow) -> Result<()>;
    /// A request by id.
    fn request(&self, id: &str) -> Result<Option<RequestRow>>;
    /// Requests, due soonest first (by due time, then id), after the `(due_ms, id)` of
    /// `after` when given, at most `limit`.
    fn requests(
        &self,
        filter: RequestFilter,
        after: Option<(i64, &str)>,
        limit: u64,
    ) -> Result<Vec<RequestRow>>;
    /// Moves a request from state `from` to `row`'s state, reason and update time, only if
    /// it is still in `from`; returns whether it was (a concurrent change wins otherwise).
    fn transition_request(&self, row: &RequestRow, from: &str) -> Result<bool>;

    /// Re-wraps every wrapped key (data keys and vault secrets) in one transaction:
    /// `rewrap(kind, name, wrapped)` where kind is `dek` or `secret`.
    fn rewrap_keys(&self, rewrap: &mut Rewrap<'_>) -> Result<u64>;

    /// Appends drafts to the ledger in one durable transaction, under the chain-head lock,
    /// chaining them with [`crate::ledger::Chained`]; in the same transaction stores the
    /// checkpoint `checkpoint` returns for an entry, so no checkpoint can go missing.
    /// Returns the first draft's sequence number (the others follow it).
    fn append_ledger(&self, drafts: &[Draft], checkpoint: &Checkpointer<'_>) -> Result<u64>;
    /// Ledger entries from `from_seq`, at most `limit`, in order.
    fn ledger_page(&self, from_seq: u64, limit: u64) -> Result<Vec<LedgerEntry>>;
    /// The highest sequence number in the ledger; 0 when it is empty.
    fn ledger_last_seq(&self) -> Result<u64>;
    /// The seqs the stored blocks claim, for verify: the first block's `first_seq` (0 when
    /// it is below 1) and the highest seq the last block (by `first_seq`) names — its
    /// `last_seq`, or its `first_seq` when that is higher (a malformed block); `None` when
    /// no block is stored. Two primary-key lookups, in one read.
    fn ledger_span(&self) -> Result<Option<(u64, u64)>>;
    /// Streams the ledger rows with `seqs.start <= seq < seqs.end` to `visit`, in order, in
    /// one read, each row's text borrowed from the database's buffer: nothing is allocated
    /// per column. Stops when `visit` returns `false`. A column of the wrong type (or NULL)
    /// is an error. Several scans may run at once, on different threads. Blocks that do
    /// not decode, or do not follow one another, are handed on as a row that matches
    /// nothing ([`crate::ledger::block::Scan`]).
    fn scan_ledger(&self, seqs: std::ops::Range<u64>, visit: &mut LedgerVisitor<'_>) -> Result<()>;
    /// Hands `visit` the entries of the blocks that hold entries about `subject`, in order:
    /// the blocks the subject index names (`ledger_subjects`, written with each block), and
    /// every block from before the index was made (a ledger older than it). `visit` sees the
    /// other entries of those blocks too, and filters. A block that does not decode is an
    /// error.
    fn scan_ledger_about(&self, subject: &str, visit: &mut LedgerVisitor<'_>) -> Result<()>;
    /// Every signed checkpoint.
    fn checkpoints(&self) -> Result<Vec<Checkpoint>>;

    /// The stored tiles of the ledger's Merkle tree among `keys` (`ledger/tree.rs`), in one
    /// read; a key with no tile is left out. Tiles only grow, so what this returns serves
    /// every tree up to [`Store::ledger_tree_size`] read before it.
    fn ledger_tiles(&self, keys: &[TileKey]) -> Result<Tiles>;
    /// The size of the tree the store serves: every entry of the ledger, once
    /// [`Store::grow_ledger_tree`] has built the tree of an older ledger (the tiles stop at
    /// the last full tile; the entries after it are read from the blocks).
    fn ledger_tree_size(&self) -> Result<u64>;
    /// Builds the tree for at most `limit` entries the ledger holds and the tree lacks (a
    /// ledger kept before the tree), in one transaction under the chain-head lock; returns
    /// how many it added (0 once the tree holds every entry). The vault calls it on open
    /// until it returns 0; an append also catches up first, in its own transaction.
    fn grow_ledger_tree(&self, limit: u64) -> Result<u64>;

    /// What recording a person's choice checks, in one consistent read: the subject's
    /// status, age and tenants, and in `values` one row per service holding a value about
    /// them with only `service` and `role` set (no category, purposes or ciphertext); no
    /// consents, no key. `None` when no such subject was ever collected. The default reads
    /// the whole [`Store::subject_state`] (a superset).
    fn subject_holders(&self, id: &str) -> Result<Option<SubjectState>> {
        self.subject_state(id)
    }
    /// The audience of a mailing (`vault/mailings.rs`), in one consistent read: every
    /// subject not erased, in id order, with its state as [`Store::subject_state`] gives it
    /// except that `values` holds only its value of `category` (none when it has none).
    fn mailing_audience(&self, category: &str) -> Result<Vec<(String, SubjectState)>>;
    /// Stores a mailing and its messages in the outbox, in one transaction.
    fn put_mailing(&self, mailing: &MailingRow, mails: &[MailRow]) -> Result<()>;
    /// A mailing by id.
    fn mailing(&self, id: &str) -> Result<Option<MailingRow>>;
    /// Stores an anonymous cookie-consent record (`vault/cookies.rs`): a random id, the
    /// choices, the notice, the GPC flag and the receipt; no address, no user agent.
    fn put_cookie_consent(&self, row: &CookieConsentRow) -> Result<()>;
    /// A cookie-consent record by its id.
    fn cookie_consent(&self, id: &str) -> Result<Option<CookieConsentRow>>;
    /// Adds aggregate counts, in one transaction: each row's `count` and `total` are added to
    /// the stored `(kind, day, name)` row. A name new for its kind and day once that day
    /// already holds `max_names` names is counted under `other` instead (the table stays
    /// bounded whatever is sent).
    fn add_counts(&self, rows: &[CountRow], max_names: u64, other: &str) -> Result<()>;
    /// The counts of a kind for the days `from..=to` (`YYYY-MM-DD`), by day then name, at
    /// most `limit`.
    fn counts(&self, kind: &str, from: &str, to: &str, limit: u64) -> Result<Vec<CountRow>>;
}

/// An anonymous cookie-consent record, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConsentRow {
    /// Random id (UUIDv4): the receipt's subject; nothing links it to a person.
    pub id: String,
    /// The choices, `id=1&id=0…` in the policy's order of cookies.
    pub choices: String,
    /// The notice version shown.
    pub notice: String,
    /// SHA-256 of the notice shown, hex.
    pub notice_sha256: String,
    /// Whether the browser sent Global Privacy Control (`Sec-GPC: 1`).
    pub gpc: bool,
    /// When, ms since the epoch.
    pub time_ms: i64,
    /// The signed receipt (compact JWS).
    pub receipt: String,
}

/// One aggregate count: of a kind (`page`, `gpc`, `telemetry`), a name within it (a page's
/// path, `service/metric`), a UTC day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountRow {
    /// `page`, `gpc` or `telemetry`.
    pub kind: String,
    /// What is counted.
    pub name: String,
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    /// How many.
    pub count: i64,
    /// The sum of the values reported with them (telemetry), else 0.
    pub total: i64,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The error [`Store::purge_records`] gives for a subject that is not erased.
pub(crate) fn not_erased() -> crate::Error {
    crate::Error::invalid(
        "subject_not_erased",
        "only an erased subject's records are purged",
    )
}

/// Joins ids for a text column.
pub(crate) fn join(ids: &[String]) -> String {
    ids.join(",")
}

/// Splits a text column of ids.
pub(crate) fn split(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
