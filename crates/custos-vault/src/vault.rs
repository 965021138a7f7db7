//! The vault: collection, purpose-limited reads, records, consent, age, erasure and API keys,
//! each decided by the policy and ledgered.
//!
//! **Architecture invariant:** this is the only module that decrypts values, and it does so
//! only in [`Vault::read`] and [`Vault::read_records`], after `Policy::decide` permitted the
//! categories and the ledger entry for that decision is durable.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock, mpsc};
use std::time::{Duration, Instant};

use custos_policy::{
    AgeStatus, CategoryId, CategorySet, CollectionRequest, Decision, Effect, PeriodKind, Policy,
    PurposeSet, Request, Subject, SubjectStatus,
};
use subtle::ConstantTimeEq as _;
use uuid::Uuid;
use zeroize::Zeroizing;

mod consent;
mod cookies;
mod export;
mod inbound;
mod instruments;
mod mail;
mod mailings;
mod people;
mod queued;
mod referral;
mod requests;
mod retention;
mod rights;
mod tenant;
mod tlog;
mod transport;

pub use consent::{
    CONSENT_METHODS, Can, Consent, ConsentBy, ConsentChange, ConsentInput, NOT_FREELY_GIVEN,
    Preference, RECEIPT_TYP, RECEIPT_VERSION, ReceiptError, ReceiptKey, VerifiedReceipt,
    communication_topics, jwks, parse_jwks, verify_receipt,
};
pub use cookies::{
    ANALYTICS_PURPOSE, Aggregate, BEACON_PURPOSE, BannerCookie, CONSENT_COOKIE, COOKIE_CONSENT,
    CookieChoice, CookieConsent, FLUSH_EVERY, MAX_NAMES_PER_DAY, MAX_PAGE_CHARS,
    MAX_TELEMETRY_COUNT, MAX_TELEMETRY_VALUE, OTHER, READ_AGGREGATES, REDACTED, TELEMETRY_METRICS,
    TELEMETRY_PURPOSE, VISITOR, banner_cookies, beacon_refused, day_of, normalize_page,
    sharing_purposes,
};
pub use export::{EXPORT, Export, ExportedEntry, ExportedRecord, ExportedValue, READ_LEDGER};
pub use inbound::{
    EMAIL_METHOD, INBOUND_MAIL, Intake, MAX_FROM_ADDRESSES, MAX_INBOUND_MAIL, from_addresses,
};
pub use instruments::{
    INSTRUMENT_REGISTER, INSTRUMENT_SHOW, Instrument, InstrumentInput, MAX_INSTRUMENT_SUBJECTS,
    MAX_ISSUER_CHARS, civil_from_days, format_date_time,
};
pub use mail::{
    FINISHED_MAIL_KEPT, FIRST_RETRY_DELAY, MAIL_FAILED, MAIL_LEASE, MAIL_SENT, MAX_MAIL_ATTEMPTS,
    MAX_RETRY_DELAY, Mail, MailStatus, OutgoingMail, retry_delay,
};
pub use mailings::{
    MAILING, MAILING_RECIPIENT, MAX_MAILING_SUBJECT, MAX_MAILING_TEXT, MailingBy, MailingInfo,
    MailingInput, MailingSent, NO_ADDRESS, ONE_CLICK, ONE_CLICK_POST, TOKEN_CHARS,
    UnsubscribeToken, Unsubscribed,
};
pub use people::{
    CODE_DIGITS, CODE_TTL, EMAIL_CATEGORY, MAX_CODE_ATTEMPTS, MAX_CODES_PER_HOUR, PERSON, Person,
    SESSION_PREFIX, SESSION_TTL, SignInRequest, SignedIn, SubjectOverview,
};
pub use referral::{
    MAX_REFERRAL_MESSAGE, MAX_REFERRAL_NAME, MAX_REFERRALS_PER_DAY, REFERRAL, REFERRAL_CATEGORIES,
    Referral, ReferralInput,
};
pub use requests::{
    Completion, DEFAULT_REQUESTS_PAGE, MAX_REQUESTS_LISTED, PersonRequest, REFUSAL_REASONS,
    REQUEST_CHANNELS, REQUEST_COMPLETE, REQUEST_LIST, REQUEST_RECEIVE, REQUEST_REFUSE,
    REQUEST_SHOW, REQUEST_VERIFY, RequestHandler, RequestInput, RequestList, RequestsPage,
    VERIFICATIONS,
};
pub use retention::Sweep;
pub use rights::{CORRECT, MAX_CORRECTED_BYTES, Requester};
pub use tenant::{Actor, OUT_OF_TENANT, Principal, TENANT_REQUIRED};
pub use tlog::{CheckedCheckpoint, ConsistencyProof, InclusionProof, TreeHead, origin_ok};
pub use transport::{Channel, TLS_REQUIRED};

use crate::collector::Collector;
use crate::crypto::{self, BlindIndex, DataKey, Entropy, MasterKey, OutboxKey, hex, sha256};
use crate::error::{Error, Result};
use crate::ledger::{CheckpointSigner, Draft, Ledger, Verification};
use crate::purge::{Purger, Purging};
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{
    Age, ApiKeyRow, ConsentRow, NewSubject, RecordRow, Status, Store, SubjectRow, SubjectState,
    ValueRow, now_ms,
};

/// A subject's id: a UUIDv7 (RFC 9562) — the Unix time in milliseconds (48 bits), then 74
/// random bits — in the lowercase 36-character UUID shape. Time-ordered, so the tables keyed
/// by subject grow at their end instead of at random pages; unguessable by its 74 random
/// bits. It reveals the millisecond the subject was created (as `created_ms` does).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubjectId(String);

/// The last timestamp given to an id: ids never go back in time when the clock does.
static LAST_ID_MS: AtomicU64 = AtomicU64::new(0);

/// A UUIDv7, laid out by the `uuid` crate: 48-bit Unix milliseconds (never below the last
/// one this process gave), the version, the variant and 74 random bits from `rng`.
///
/// Not `Uuid::now_v7`: that draws from the operating system once per id (about 650 ns an id
/// against 150 ns here, measured in release for issue 11) and, within a millisecond, spends 42
/// of the 74 random bits on a counter, so the ids of one millisecond would be a step apart.
fn uuid_v7(rng: &mut Entropy) -> Result<Uuid> {
    Ok(uuid_v7_with(&rng.bytes()?))
}

/// [`uuid_v7`] with its random bits given (`crypto::random_bytes`, for a caller that makes
/// one id and has no [`Entropy`] block to draw from).
fn uuid_v7_with(random: &[u8; 10]) -> Uuid {
    let now = u64::try_from(now_ms()).unwrap_or(0) & 0xffff_ffff_ffff;
    let ms = LAST_ID_MS.fetch_max(now, Ordering::Relaxed).max(now);
    // INVARIANT: unguessable — 74 of the 128 bits are fresh randomness.
    uuid::Builder::from_unix_timestamp_millis(ms, random).into_uuid()
}

impl SubjectId {
    /// The id of a UUID: lowercase hex in the 8-4-4-4-12 shape.
    fn from_uuid(uuid: &Uuid) -> Self {
        Self(uuid.hyphenated().to_string())
    }

    /// Parses an id: a UUID in its canonical text, lowercase and hyphenated (ids are compared
    /// as text, so `ABC…` or `{…}` would name no subject; they are refused instead).
    pub fn parse(s: &str) -> Result<Self> {
        let mut buf = Uuid::encode_buffer();
        match Uuid::try_parse(s) {
            Ok(u) if *u.hyphenated().encode_lower(&mut buf) == *s => Ok(Self(s.to_string())),
            _ => Err(Error::invalid(
                "invalid_subject_id",
                "a subject id is a lowercase uuid",
            )),
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A collection, as a service states it.
#[derive(Debug, Clone, Default)]
pub struct CollectionInput {
    /// The service collecting.
    pub service: String,
    /// The person's role in it.
    pub role: String,
    /// The purposes the person was told.
    pub purposes: Vec<String>,
    /// The notice version shown.
    pub notice: String,
    /// The person's age in years, when known.
    pub age: Option<u32>,
    /// The tenant (business customer) the person belongs to.
    pub tenant: Option<String>,
    /// Category id → value.
    pub data: BTreeMap<String, String>,
}

/// A purpose-limited read.
#[derive(Debug, Clone, Default)]
pub struct ReadInput {
    /// Why the caller reads.
    pub purpose: String,
    /// Categories wanted; `None`: every category held.
    pub categories: Option<Vec<String>>,
    /// Who the data goes to onwards, if anyone.
    pub recipient: Option<String>,
    /// For a purpose that requires a reference (every legal one): the id of a registered
    /// legal instrument covering the subject and the categories ([`Vault::register_instrument`]).
    /// Ledgered only as that id (`instrument:<id>` in the entry's reasons), and only when it
    /// names a registered instrument covering the subject.
    pub reference: Option<String>,
}

/// What a read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadResult {
    /// Category → plaintext, for what the policy permitted.
    pub data: BTreeMap<String, String>,
    /// Category → reason code, for what it withheld.
    pub withheld: BTreeMap<String, String>,
    /// `permit`, `partial` or `deny`.
    pub effect: String,
    /// When the whole request was refused before looking at categories, the reason code
    /// (`subject_erased`, `purpose_not_allowed_for_accessor`, …).
    pub denial: Option<String>,
    /// Sequence number of the ledger entry recording the decision.
    pub ledger_seq: u64,
}

/// A read decided and submitted to the ledger, its values still sealed. Only
/// [`SealedRead::open`] decrypts them, and only with the [`Durable`] the ledger writer gave
/// for this read's own entry: audit before data, held by the types.
pub struct SealedRead {
    ticket: u64,
    subject: SubjectId,
    result: ReadResult,
    /// The permitted values, still sealed, by category; the rest of what was read is
    /// dropped when the read begins.
    sealed: Vec<(String, Vec<u8>)>,
    /// The subject's wrapped data key; `None` when nothing is permitted (a refused read
    /// never unwraps it).
    wrapped: Option<Vec<u8>>,
}

/// The ledger writer's word that one read's entry is durable; made only by the vault, for
/// the [`SealedRead`] of the same ticket.
#[derive(Debug)]
pub struct Durable {
    ticket: u64,
    seq: u64,
}

/// Names the read only: the ciphertext and the wrapped key stay out of any log line.
impl std::fmt::Debug for SealedRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRead")
            .field("ticket", &self.ticket)
            .field("effect", &self.result.effect)
            .finish_non_exhaustive()
    }
}

impl SealedRead {
    /// Decrypts the permitted values, once the read's ledger entry is durable. Pure
    /// computation (no store, no waiting), so it may run on any thread.
    pub fn open(self, vault: &Vault, durable: Durable) -> Result<ReadResult> {
        if durable.ticket != self.ticket {
            return Err(Error::Storage(
                "a ledger acknowledgement of another read".into(),
            ));
        }
        let mut out = self.result;
        out.ledger_seq = durable.seq;
        if self.sealed.is_empty() {
            return Ok(out);
        }
        let wrapped = self.wrapped.ok_or(Error::SubjectNotFound)?;
        let dek = DataKey::unwrap(&vault.kek, &self.subject.0, &wrapped)?;
        for (category, ciphertext) in self.sealed {
            let plain = dek.open_value(&self.subject.0, &category, &ciphertext)?;
            let text = String::from_utf8(plain)
                .map_err(|_| Error::Crypto("decrypted value is not text"))?;
            out.data.insert(category, text);
        }
        Ok(out)
    }
}

/// A record returned by [`Vault::read_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Record id.
    pub id: String,
    /// Its content.
    pub value: String,
    /// Purposes stated when appended.
    pub purposes: Vec<String>,
    /// Milliseconds since the epoch.
    pub time_ms: i64,
}

/// What [`Vault::read_records`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsResult {
    /// Records the policy permitted, in append order.
    pub records: Vec<Record>,
    /// Records withheld: how many, per reason code.
    pub withheld: BTreeMap<String, u64>,
    /// `permit`, `partial` or `deny`.
    pub effect: String,
    /// Sequence number of the ledger entry.
    pub ledger_seq: u64,
    /// The cursor of the next page (the last record id this page read), when this page
    /// was full: more records may follow.
    pub next: Option<String>,
}

/// Which records one [`Vault::read_records`] call reads: at most `limit` (capped at
/// [`MAX_RECORDS_PAGE`]), after the record `after`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordsPage {
    /// The cursor: a record id from a previous page's `next`; `None` for the first page.
    pub after: Option<String>,
    /// How many records at most; 0 means [`DEFAULT_RECORDS_PAGE`].
    pub limit: u64,
}

/// Milliseconds in a day, the unit of retention periods.
const MS_PER_DAY: i64 = 86_400_000;

/// Records one page holds when the caller does not say.
pub const DEFAULT_RECORDS_PAGE: u64 = 100;
/// Records one page holds at most: what one read decrypts and answers is bounded.
pub const MAX_RECORDS_PAGE: u64 = 1000;
/// Records one append may add at most.
pub const MAX_RECORDS_APPEND: usize = 1000;
/// Bytes one record value may hold at most.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;
/// The refusal of a blank value (collected or corrected).
pub const INVALID_VALUE: &str = "invalid_value";

/// Sealed value rows and their blind-index terms `(category, term)`.
type SealedValues = (Vec<ValueRow>, Vec<(String, String)>);

/// Subjects a [`Vault::collect_many`] worker seals before handing them to the store.
const SEAL_BLOCK: usize = 256;

/// A block of sealed subjects, from a [`Vault::collect_many`] worker.
type SealedBlock = Result<Vec<NewSubject>>;

/// Actor name for operations the vault's operator starts.
pub const OPERATOR: &str = "operator";

const SECRET_INDEX: &str = "blind-index";
const SECRET_SIGNING: &str = "ledger-signing";
const SECRET_OUTBOX: &str = "outbox";
const SECRET_PEOPLE: &str = "people";
const SECRET_RECEIPTS: &str = "receipt-signing";
const SECRET_UNSUBSCRIBE: &str = "unsubscribe";

/// The vault.
#[derive(Debug)]
pub struct Vault {
    policy: Arc<Policy>,
    store: Arc<dyn Store>,
    kek: MasterKey,
    index: BlindIndex,
    /// Seals the outbox's messages (`vault/mail.rs`).
    outbox: OutboxKey,
    /// Keyed hashes of sign-in addresses and codes (`vault/people.rs`).
    people: BlindIndex,
    /// The MAC key of unsubscribe tokens (`vault/mailings.rs`).
    tokens: mailings::TokenKey,
    signer: CheckpointSigner,
    /// The consent receipts' signing key (`vault/consent/receipt.rs`).
    receipts: consent::ReceiptSigner,
    /// The notice `/privacy` serves ([`Vault::notice_html`]) and its SHA-256, hex; rendered
    /// on first need.
    notice: OnceLock<(Arc<str>, String)>,
    /// The parts of receipts' claims that do not change between receipts, serialized once.
    receipt_parts: consent::ClaimsCache,
    /// The ledger's origin as a transparency log (`vault/tlog.rs`).
    origin: RwLock<String>,
    /// The last checkpoint signed for `ledger_checkpoint_cached`.
    last_head: std::sync::Mutex<Option<TreeHead>>,
    /// Complete level-0 tiles of the ledger's tree, kept for the proofs of exports.
    leaf_tiles: crate::ledger::tree::LeafTileCache,
    // INVARIANT: declared before `ledger`. Fields drop in declaration order; the purger's
    // and the collector's threads hold handles on the ledger writer, and `Ledger`'s drop
    // waits for the writer, which runs until every handle is gone.
    purger: Purger,
    collector: Collector,
    consent_writer: consent::Writer,
    /// Aggregate counts (`vault/cookies.rs`); flushed on drop, before the ledger's drop.
    counter: cookies::Counter,
    ledger: Ledger,
    keys: KeyCache,
    tickets: AtomicU64,
}

/// How long a verified API key is trusted without asking the store again. A key revoked by
/// another process (`custos keys revoke`, another server) stops working within this time; one
/// revoked through this vault stops at once.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// Keys the cache holds at most; past it, it starts over (only valid keys are cached, so it
/// only fills when that many keys are in use within a second).
const KEY_CACHE_MAX: usize = 4096;

/// Verified API keys: SHA-256 of the key → (its principal: accessor and tenant, when the
/// store confirmed it).
#[derive(Debug, Default)]
struct KeyCache(RwLock<HashMap<[u8; 32], (Principal, Instant)>>);

impl KeyCache {
    fn get(&self, digest: &[u8; 32]) -> Option<Principal> {
        let map = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let (principal, at) = map.get(digest)?;
        (at.elapsed() < KEY_CACHE_TTL).then(|| principal.clone())
    }

    fn put(&self, digest: [u8; 32], principal: &Principal) {
        let mut map = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= KEY_CACHE_MAX {
            map.clear();
        }
        map.insert(digest, (principal.clone(), Instant::now()));
    }

    /// Forgets the accessor's keys: of one tenant, or (`None`) all of them.
    fn forget(&self, accessor: &str, tenant: Option<&str>) {
        self.0
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, (p, _)| {
                p.accessor != accessor || tenant.is_some_and(|t| p.tenant.as_deref() != Some(t))
            });
    }
}

impl Vault {
    /// Opens the embedded vault in a data directory: SQLite there, and the master key from
    /// `CUSTOS_MASTER_KEY` or `<data>/master.key` (created, with a warning, on first start).
    pub fn open_embedded(dir: &Path, policy: Arc<Policy>) -> Result<Self> {
        let kek = MasterKey::load(Some(dir), true)?;
        Self::open(Arc::new(SqliteStore::open(dir)?), policy, kek)
    }

    /// Opens the vault as `custos` commands name it: PostgreSQL when a database URL is given
    /// (master key from `CUSTOS_MASTER_KEY`), else SQLite in `data` (master key from the
    /// environment or `<data>/master.key`, which is created only when `create_key_file`).
    pub fn open_location(
        data: &Path,
        database_url: Option<&str>,
        policy: Arc<Policy>,
        create_key_file: bool,
    ) -> Result<Self> {
        match database_url {
            Some(url) => Self::open_postgres(url, policy, MasterKey::load(None, false)?),
            None if create_key_file => Self::open_embedded(data, policy),
            None => {
                let kek = MasterKey::load(Some(data), false)?;
                Self::open(Arc::new(SqliteStore::open(data)?), policy, kek)
            }
        }
    }

    /// Opens a vault on PostgreSQL; the master key must come from the caller (environment).
    pub fn open_postgres(url: &str, policy: Arc<Policy>, kek: MasterKey) -> Result<Self> {
        Self::open(Arc::new(PostgresStore::connect(url)?), policy, kek)
    }

    /// Opens a vault over any store, with the background purge of erased subjects' records
    /// ([`Purging::Background`]). Fails when the master key does not open the store's
    /// secrets.
    pub fn open(store: Arc<dyn Store>, policy: Arc<Policy>, kek: MasterKey) -> Result<Self> {
        Self::open_with(store, policy, kek, Purging::Background)
    }

    /// [`Vault::open`], choosing how erased subjects' records are purged.
    pub fn open_with(
        store: Arc<dyn Store>,
        policy: Arc<Policy>,
        kek: MasterKey,
        purging: Purging,
    ) -> Result<Self> {
        let index = BlindIndex::new(vault_secret(&*store, &kek, SECRET_INDEX)?);
        let signer = CheckpointSigner::new(&vault_secret(&*store, &kek, SECRET_SIGNING)?);
        let outbox = OutboxKey::new(&vault_secret(&*store, &kek, SECRET_OUTBOX)?);
        let people = BlindIndex::new(vault_secret(&*store, &kek, SECRET_PEOPLE)?);
        let receipts = consent::ReceiptSigner::new(&vault_secret(&*store, &kek, SECRET_RECEIPTS)?)?;
        let tokens = mailings::TokenKey::new(vault_secret(&*store, &kek, SECRET_UNSUBSCRIBE)?);
        // A ledger kept before the Merkle tree gets its tree, a step (one transaction) at a
        // time, before anything is appended.
        while store.grow_ledger_tree(1 << 20)? > 0 {}
        // INVARIANT: every erasure is ledgered — an entry a crash kept out of the ledger
        // (its data committed first) goes in now, before anything else is appended.
        store.settle_pending(&|seq, hash| signer.due(seq, hash))?;
        let ledger = Ledger::start(Arc::clone(&store), signer.clone())?;
        let purger = Purger::start(Arc::clone(&store), ledger.appender()?, purging)?;
        let collector = Collector::start(Arc::clone(&store), ledger.appender()?)?;
        let consent_writer = consent::Writer::start(Arc::clone(&store), ledger.appender()?)?;
        let counter = cookies::Counter::start(Arc::clone(&store))?;
        Ok(Self {
            policy,
            store,
            kek,
            index,
            outbox,
            people,
            tokens,
            origin: RwLock::new(format!(
                "custos/{}",
                signer.public_key().get(..16).unwrap_or_default()
            )),
            last_head: std::sync::Mutex::new(None),
            leaf_tiles: crate::ledger::tree::LeafTileCache::default(),
            signer,
            receipts,
            notice: OnceLock::new(),
            receipt_parts: consent::ClaimsCache::default(),
            purger,
            collector,
            consent_writer,
            counter,
            ledger,
            keys: KeyCache::default(),
            tickets: AtomicU64::new(0),
        })
    }

    /// The policy enforced.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The ledger writer's commits so far, by how many entries each held.
    pub fn ledger_batches(&self) -> &crate::ledger::BatchStats {
        self.ledger.stats()
    }

    /// Public key of the ledger's checkpoint signatures, hex.
    pub fn ledger_public_key(&self) -> String {
        self.signer.public_key()
    }

    /// Ledgers `d` and returns once it is durable — or, inside
    /// [`Vault::queueing_records`], queues it and returns 0 (that call's caller waits).
    fn record(&self, d: Draft) -> Result<u64> {
        match queued::queue(d) {
            Some(d) => self.ledger.append(d),
            None => Ok(0),
        }
    }

    /// The purpose as the ledger may keep it: its id if declared, `?` if not (an unknown
    /// name could be a value), empty if none.
    fn declared_purpose(&self, purpose: &str) -> String {
        if purpose.is_empty() {
            return String::new();
        }
        declared_or(self.policy.purpose_id(purpose).is_ok(), purpose).to_string()
    }

    /// The accessor as the ledger may keep it: its id if declared, `?` if not.
    fn declared_accessor<'a>(&self, accessor: &'a str) -> &'a str {
        declared_or(self.policy.accessor_id(accessor).is_ok(), accessor)
    }

    fn draft(&self, actor: &str, action: &str, subject: &str) -> Draft {
        Draft {
            time_ms: now_ms(),
            actor: actor.to_string(),
            action: action.to_string(),
            subject: subject.to_string(),
            ..Draft::default()
        }
    }

    // ---- collection -------------------------------------------------------------------

    /// Collects data about a new subject. The policy's collection check decides; a refusal
    /// is ledgered without the data, and nothing is kept about a person under the minimum
    /// age (C053).
    ///
    /// An actor of a tenant (a tenant-bound accessor's key) collects only people of its own
    /// tenant, stated as the input's `tenant` (`tenant_mismatch`, `tenant_required`).
    pub fn collect<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        input: &CollectionInput,
    ) -> Result<SubjectId> {
        let actor = actor.into();
        let accessor = actor.accessor;
        let plan = self.check(actor, None, input)?;
        let rng = &mut Entropy::new();
        let id = SubjectId::from_uuid(&uuid_v7(rng)?);
        let new = self.seal_subject(rng, &id, input, &plan)?;
        // Stored and ledgered with the other collections in flight (`collector.rs`).
        let draft = self.collect_draft(accessor, Some(&id), input, "permit", "");
        self.collector.collect(new, draft)?;
        Ok(id)
    }

    /// Collects data about many new subjects at once: each input is checked as
    /// [`Vault::collect`] checks it (a refusal is ledgered and answered in its place, the
    /// others go on), the accepted ones are sealed on every core while the store writes
    /// those already sealed, all in one transaction, and their ledger entries — one per
    /// subject — appended in one group. Returns, in input order, each subject's id or the
    /// reason it was refused. Fails as a whole (nothing stored) when the store or the ledger
    /// fails.
    pub fn collect_many<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        inputs: &[CollectionInput],
    ) -> Result<Vec<Result<SubjectId>>> {
        let actor = actor.into();
        let accessor = actor.accessor;
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        // The checks, on every core. Refusals are ledgered here, before anything is stored
        // (each is a durable append of its own: not something to wait for mid-batch).
        let chunk = inputs.len().div_ceil(threads).max(1);
        let checked: Vec<Result<custos_policy::CollectionPlan>> = std::thread::scope(|scope| {
            let handles: Vec<_> = inputs
                .chunks(chunk)
                .map(|part| {
                    scope.spawn(move || {
                        part.iter()
                            .map(|input| self.check(actor, None, input))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| {
                    h.join()
                        .unwrap_or_else(|_| vec![Err(Error::Crypto("a checking thread stopped"))])
                })
                .collect()
        });
        if checked.len() != inputs.len() {
            return Err(Error::Crypto("a checking thread stopped"));
        }
        // In input order: the refusals, and `None` where an id goes.
        let mut out: Vec<Option<Result<SubjectId>>> = Vec::with_capacity(inputs.len());
        let mut accepted: Vec<(&CollectionInput, custos_policy::CollectionPlan)> = Vec::new();
        let mut rng = Entropy::new();
        let mut uuids = Vec::new();
        for (input, check) in inputs.iter().zip(checked) {
            match check {
                Ok(plan) => {
                    accepted.push((input, plan));
                    uuids.push(uuid_v7(&mut rng)?);
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        // Ids increase in input order, so the store, taking the subjects in that order,
        // appends each to the end of every table keyed by subject.
        uuids.sort_unstable();
        let ids: Vec<SubjectId> = uuids.iter().map(SubjectId::from_uuid).collect();
        // INVARIANT: audit before data — the entries, one per subject, are durable before
        // any subject is stored: a crash in between leaves entries without data, never data
        // without its entry.
        let drafts: Vec<Draft> = accepted
            .iter()
            .zip(&ids)
            .map(|((input, _), id)| self.collect_draft(accessor, Some(id), input, "permit", ""))
            .collect();
        self.ledger.append_many(drafts)?;
        let accepted = &accepted;
        let ids_ref = &ids;
        let blocks = accepted.len().div_ceil(SEAL_BLOCK);
        // Sealed blocks stay where the store reads them until the batch is written; they
        // are freed afterwards, beside the ledger append, not on the writer's path.
        let sealed_blocks: Vec<OnceLock<Vec<NewSubject>>> =
            (0..blocks).map(|_| OnceLock::new()).collect();
        let slots = &sealed_blocks;
        let stored = std::thread::scope(|scope| -> Result<()> {
            // Worker `w` seals blocks w, w + threads, …; the store takes them in block order.
            let mut receivers = Vec::with_capacity(threads);
            let mut handles = Vec::with_capacity(threads);
            for w in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel::<SealedBlock>(2);
                receivers.push(rx);
                handles.push(scope.spawn(move || {
                    let mut rng = Entropy::new();
                    for b in (w..blocks).step_by(threads) {
                        let end = ((b + 1) * SEAL_BLOCK).min(accepted.len());
                        let block = (b * SEAL_BLOCK..end)
                            .map(|j| {
                                let ((input, plan), id) = accepted
                                    .get(j)
                                    .zip(ids_ref.get(j))
                                    .ok_or(Error::SubjectNotFound)?;
                                self.seal_subject(&mut rng, id, input, plan)
                            })
                            .collect::<Result<Vec<_>>>();
                        let failed = block.is_err();
                        if tx.send(block).is_err() || failed {
                            break;
                        }
                    }
                }));
            }
            let mut sealed_count = 0;
            let mut next = 0;
            let mut current: std::slice::Iter<'_, NewSubject> = [].iter();
            let stored = {
                let mut sealed = std::iter::from_fn(|| {
                    loop {
                        if let Some(new) = current.next() {
                            return Some(Ok(new));
                        }
                        if next == blocks {
                            return None;
                        }
                        let (rx, slot) = receivers.get(next % threads).zip(slots.get(next))?;
                        next += 1;
                        match rx.recv() {
                            Ok(Ok(news)) => {
                                sealed_count += news.len();
                                current = slot.get_or_init(|| news).iter();
                            }
                            Ok(Err(e)) => return Some(Err(e)),
                            Err(_) => return Some(Err(Error::Crypto("a sealing thread stopped"))),
                        }
                    }
                });
                self.store.create_subjects(&mut sealed)
            };
            // Workers still sealing see their channel closed and stop.
            drop(receivers);
            let joined = handles.into_iter().all(|h| h.join().is_ok());
            stored?;
            if !joined || sealed_count != accepted.len() {
                return Err(Error::Crypto("a sealing thread stopped"));
            }
            Ok(())
        });
        // The sealed blocks are freed beside the answer, not on its path.
        std::thread::spawn(move || drop(sealed_blocks));
        if let Err(e) = stored {
            // The entries said `permit`; the ledger now says the data never arrived.
            let failed: Vec<Draft> = ids
                .iter()
                .map(|id| {
                    let mut d = self.draft(accessor, "collect", id.as_str());
                    d.effect = "failed".into();
                    d.reasons = e.code().into();
                    d
                })
                .collect();
            self.ledger.append_many(failed)?;
            return Err(e);
        }
        let mut ids = ids.into_iter();
        Ok(out
            .into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| {
                    ids.next()
                        .ok_or_else(|| Error::Storage("collection not stored".into()))
                })
            })
            .collect())
    }

    /// A new data key for a new subject, and the subject's sealed row, values and index
    /// terms.
    fn seal_subject(
        &self,
        rng: &mut Entropy,
        id: &SubjectId,
        input: &CollectionInput,
        plan: &custos_policy::CollectionPlan,
    ) -> Result<NewSubject> {
        let dek = DataKey::generate(rng)?;
        let (values, index) = self.seal_values(
            rng,
            id,
            &dek,
            input,
            plan.store,
            plan.purposes,
            &BTreeMap::new(),
        )?;
        let age = match stated_age(input) {
            Some(_) => Age::AtLeastMinimum,
            None => Age::Unknown,
        };
        let new = NewSubject {
            row: SubjectRow {
                id: id.0.clone(),
                status: Status::Active,
                age,
                tenants: input.tenant.iter().cloned().collect(),
                created_ms: now_ms(),
            },
            wrapped_dek: dek.wrap(rng, &self.kek, &id.0)?,
            values,
            index,
        };
        Ok(new)
    }

    /// Collects more data about an existing subject. Only a service that holds the person
    /// (see [`Vault::check`]) may add to what is held about them; to any other caller the
    /// subject does not exist.
    pub fn collect_more<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        input: &CollectionInput,
    ) -> Result<()> {
        let actor = actor.into();
        let accessor = actor.accessor;
        let row = self.active_subject(subject)?;
        // Values keep every purpose they were ever collected for (C016: never fewer).
        let values = self.store.values(&subject.0)?;
        let plan = self.check(actor, Some((subject, &values, &row.tenants)), input)?;
        let dek = self.data_key(subject)?;
        let held: BTreeMap<String, Vec<String>> = values
            .into_iter()
            .map(|v| (v.category, v.purposes))
            .collect();
        let (rows, index) = self.seal_values(
            &mut Entropy::new(),
            subject,
            &dek,
            input,
            plan.store,
            plan.purposes,
            &held,
        )?;
        // INVARIANT: audit before data — the entry is durable before the values are stored,
        // so a crash between the two leaves an entry without data, never data without its
        // entry (a failed store is ledgered as such).
        self.ledger_collect(accessor, Some(subject), input, "permit", "")?;
        let stored = (|| {
            if stated_age(input).is_some() && row.age == Age::Unknown {
                self.store.set_age(&subject.0, Age::AtLeastMinimum)?;
            }
            if let Some(t) = &input.tenant {
                self.store.add_tenant(&subject.0, t)?;
            }
            self.store.put_values(&rows, &index)
        })();
        if let Err(e) = stored {
            self.ledger_collect(accessor, Some(subject), input, "failed", e.code())?;
            return Err(e);
        }
        Ok(())
    }

    /// Whether `accessor` may act on a subject that holds `values`: it must collect for a
    /// service that collected some of them. A key of another service, a team's key or a
    /// partner's key acts on nobody this way (reads go through the decision instead).
    fn holds_for(&self, accessor: &str, values: &[ValueRow]) -> bool {
        let Some(info) = self
            .policy
            .accessor_id(accessor)
            .ok()
            .and_then(|a| self.policy.accessor(a))
        else {
            return false;
        };
        values.iter().any(|v| {
            self.policy
                .service_id(&v.service)
                .is_ok_and(|s| info.services.contains(s))
        })
    }

    /// The collection check, the collector check and, for an existing subject (given with
    /// the values held about it and its tenants), the holder check and the tenant check. A
    /// refusal is ledgered without values.
    ///
    /// INVARIANT: C053 erases what is held about a person only on a request that passed
    /// every other check, by a caller that holds the person: a key that may not act on the
    /// subject, or a request wrong in any other way, erases nothing.
    fn check(
        &self,
        actor: Actor<'_>,
        subject: Option<(&SubjectId, &[ValueRow], &[String])>,
        input: &CollectionInput,
    ) -> Result<custos_policy::CollectionPlan> {
        let accessor = actor.accessor;
        let subject_id = subject.map(|(s, _, _)| s);
        if let Err(e) = self.policy.accessor_id(accessor) {
            // INVARIANT: deny by default — an undeclared caller collects nothing.
            let mut d = self.draft("?", "collect", subject_id.map_or("", |s| s.as_str()));
            d.effect = "refused".into();
            d.reasons = "unknown_accessor".into();
            self.record(d)?;
            return Err(Error::invalid("unknown_accessor", e.message));
        }
        if let Some((s, values, tenants)) = subject {
            if !self.holds_for(accessor, values) {
                // Answered as if the subject did not exist; the ledger keeps the attempt.
                self.ledger_collect(accessor, Some(s), input, "refused", "subject_not_held")?;
                return Err(Error::SubjectNotFound);
            }
            // INVARIANT: tenant binding — nor does a person outside the key's tenant.
            if let Err(reason) = self.reaches(actor, None, tenants) {
                self.ledger_collect(accessor, Some(s), input, "refused", reason)?;
                return Err(Error::SubjectNotFound);
            }
        }
        let purposes: Vec<&str> = input.purposes.iter().map(String::as_str).collect();
        let categories: Vec<&str> = input.data.keys().map(String::as_str).collect();
        let req = CollectionRequest {
            service: &input.service,
            role: &input.role,
            purposes: &purposes,
            notice: &input.notice,
            age: stated_age(input),
            categories: &categories,
        };
        let mut errors = self.policy.check_collection(&req);
        // INVARIANT: tenant binding — a key of a tenant puts people in its own tenant only.
        if let Some(e) = self.tenant_stated(actor, input) {
            match &mut errors {
                Ok(_) => errors = Err(vec![e]),
                Err(list) => list.push(e),
            }
        }
        // INVARIANT: a caller collects only for a purpose it pursues itself, in the name of
        // a service it is, never in another service's name.
        if let Ok(service) = self.policy.service_id(&input.service) {
            let stated = self.policy.purpose_set(&purposes).unwrap_or_default();
            if let Err(e) = self.policy.check_collector(accessor, service, stated) {
                match &mut errors {
                    Ok(_) => errors = Err(vec![e]),
                    Err(list) => list.push(e),
                }
            }
        }
        // A blank value is no value: refused as a correction's is (a blank address was
        // collected once, and failed every mailing it was eligible for).
        for (category, _) in input.data.iter().filter(|(_, v)| v.trim().is_empty()) {
            let e = custos_policy::CollectionError {
                code: INVALID_VALUE,
                field: format!("data.{category}"),
                message: "a value holds at least one character that is not a space; leave out \
                          a category you have no value for"
                    .into(),
            };
            match &mut errors {
                Ok(_) => errors = Err(vec![e]),
                Err(list) => list.push(e),
            }
        }
        match errors {
            Ok(plan) => {
                // INVARIANT: C044, C074 — what crosses the network only over TLS is refused
                // over plain HTTP from another host, before anything is sealed or stored.
                if let Some(e) = self.transport_refusal(actor, plan.tls) {
                    self.ledger_collect(accessor, subject_id, input, "refused", TLS_REQUIRED)?;
                    return Err(e);
                }
                Ok(plan)
            }
            Err(errors) => {
                let codes: Vec<&str> = errors.iter().map(|e| e.code).collect();
                // INVARIANT: C053 — a person under the minimum age: nothing kept, and what
                // is already held about them is erased now, when that is all that is wrong.
                if let (["subject_under_minimum_age"], Some(s)) = (codes.as_slice(), subject_id) {
                    self.erase_as(accessor, s, Age::UnderMinimum, "subject_under_minimum_age")?;
                }
                // The refusal is ledgered with the request's names only, never its values,
                // and without a subject id for a new person.
                self.ledger_collect(accessor, subject_id, input, "refused", &codes.join(","))?;
                Err(Error::CollectionRefused(errors))
            }
        }
    }

    fn ledger_collect(
        &self,
        accessor: &str,
        subject: Option<&SubjectId>,
        input: &CollectionInput,
        effect: &str,
        reasons: &str,
    ) -> Result<u64> {
        self.record(self.collect_draft(accessor, subject, input, effect, reasons))
    }

    fn collect_draft(
        &self,
        accessor: &str,
        subject: Option<&SubjectId>,
        input: &CollectionInput,
        effect: &str,
        reasons: &str,
    ) -> Draft {
        let mut d = self.draft(accessor, "collect", subject.map_or("", |s| s.as_str()));
        // Only declared ids go to the ledger: an unknown name could be a value.
        d.purpose = input
            .purposes
            .iter()
            .map(|p| declared_or(self.policy.purpose_id(p).is_ok(), p))
            .collect::<Vec<_>>()
            .join(",");
        // Only declared category ids go to the ledger: an unknown key could be a value.
        d.categories = input
            .data
            .keys()
            .filter(|c| self.policy.category_id(c).is_ok())
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        let role_declared = self
            .policy
            .service_id(&input.service)
            .ok()
            .and_then(|s| self.policy.service(s))
            .is_some_and(|s| s.roles.iter().any(|r| r.id == input.role));
        d.recipient = format!(
            "{}/{}",
            declared_or(
                self.policy.service_id(&input.service).is_ok(),
                &input.service
            ),
            declared_or(role_declared, &input.role)
        );
        d.effect = effect.to_string();
        d.reasons = reasons.to_string();
        d
    }

    /// Seals the values to store, with the blind-index terms of identifier categories.
    #[allow(
        clippy::too_many_arguments,
        reason = "one private helper, named arguments"
    )]
    fn seal_values(
        &self,
        rng: &mut Entropy,
        subject: &SubjectId,
        dek: &DataKey,
        input: &CollectionInput,
        store: CategorySet,
        purposes: PurposeSet,
        held: &BTreeMap<String, Vec<String>>,
    ) -> Result<SealedValues> {
        let now = now_ms();
        let stated: Vec<String> = self
            .policy
            .purpose_names(purposes)
            .into_iter()
            .map(str::to_string)
            .collect();
        let mut rows = Vec::new();
        let mut index = Vec::new();
        for (category, value) in &input.data {
            let Ok(cid) = self.policy.category_id(category) else {
                continue;
            };
            // INVARIANT: C027 — transient categories are used once and never stored.
            if !store.contains(cid) {
                continue;
            }
            let mut ps = held.get(category).cloned().unwrap_or_default();
            for p in &stated {
                if !ps.contains(p) {
                    ps.push(p.clone());
                }
            }
            if self.policy.category(cid).is_some_and(|c| c.identifier) {
                index.push((category.clone(), self.index.term(category, value)?));
            }
            rows.push(ValueRow {
                subject: subject.0.clone(),
                category: category.clone(),
                ciphertext: dek.seal_value(rng, &subject.0, category, value.as_bytes())?,
                purposes: ps,
                notice: input.notice.clone(),
                service: input.service.clone(),
                role: input.role.clone(),
                time_ms: now,
            });
        }
        Ok((rows, index))
    }

    // ---- reads ------------------------------------------------------------------------

    /// Reads a subject's values for a purpose. The policy decides per category; the decision
    /// is ledgered durably before any plaintext is produced. A refused request (no purpose,
    /// unknown purpose, category or recipient, purpose not allowed) is ledgered too.
    /// Blocks until the entry is durable; [`Vault::begin_read`] does not.
    pub fn read<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        input: &ReadInput,
    ) -> Result<ReadResult> {
        let (tx, rx) = mpsc::sync_channel(1);
        let sealed = self.begin_read(actor, subject, input, move |d| {
            let _ = tx.send(d);
        })?;
        let durable = rx
            .recv()
            .map_err(|_| Error::Storage("ledger writer stopped".into()))??;
        sealed.open(self, durable)
    }

    /// The first half of [`Vault::read`], for callers that must not block on the ledger's
    /// commit (the server): reads the subject's state, decides, and queues the decision's
    /// ledger entry; returns the values still sealed. `on_durable` runs on the ledger
    /// writer's thread once the entry is durable (it must be quick: hand the [`Durable`] to
    /// whoever holds the [`SealedRead`], which then opens it). A request refused before the
    /// decision is ledgered before this returns its error, and `on_durable` is not called.
    pub fn begin_read<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        input: &ReadInput,
        on_durable: impl FnOnce(Result<Durable>) + Send + 'static,
    ) -> Result<SealedRead> {
        let actor = actor.into();
        let (decision, mut draft, stored, ids) =
            self.decide_draft("read", actor, subject, input)?;
        // INVARIANT: C044 — a value that crosses the network only over TLS does not leave
        // over plain HTTP to another host: the read is refused, and ledgered, undecrypted.
        let needs_tls = decision
            .permitted
            .intersection(self.policy.tls_categories());
        let others = ", or ask only for the other categories (`categories`)";
        if let Some(e) = self.transport_refusal_or(actor, needs_tls, others) {
            draft.effect = "deny".into();
            draft.reasons = TLS_REQUIRED.into();
            self.record(draft)?;
            return Err(e);
        }
        let mut result = ReadResult {
            effect: decision.effect.as_str().to_string(),
            denial: decision.denial.map(|r| r.code().to_string()),
            ..ReadResult::default()
        };
        for w in &decision.withheld {
            if let Some(c) = self.policy.category(w.category) {
                result
                    .withheld
                    .insert(c.id.clone(), w.reason.code().to_string());
            }
        }
        let ticket = self.tickets.fetch_add(1, Ordering::Relaxed);
        // INVARIANT: audit before data — the values stay sealed until the writer confirms.
        self.ledger.submit(
            vec![draft],
            Box::new(move |r| {
                on_durable(r.map(|seqs| Durable {
                    ticket,
                    seq: seqs.start,
                }));
            }),
        )?;
        // Only the permitted values are kept for `open`; the rest of the stored state goes
        // now, while it is in this core's cache.
        let sealed: Vec<(String, Vec<u8>)> = if decision.permitted.is_empty() {
            Vec::new()
        } else {
            stored
                .values
                .into_iter()
                .zip(ids)
                .filter(|(_, id)| id.is_some_and(|c| decision.permitted.contains(c)))
                .map(|(v, _)| (v.category, v.ciphertext))
                .collect()
        };
        let wrapped = if sealed.is_empty() {
            None
        } else {
            stored.wrapped_dek
        };
        Ok(SealedRead {
            ticket,
            subject: subject.clone(),
            result,
            sealed,
            wrapped,
        })
    }

    /// Decides a request and makes its ledger entry durable: [`Vault::decide`].
    fn decide_recorded(
        &self,
        action: &str,
        actor: Actor<'_>,
        subject: &SubjectId,
        input: &ReadInput,
    ) -> Result<(Decision, u64)> {
        let (decision, draft, _, _) = self.decide_draft(action, actor, subject, input)?;
        let seq = self.record(draft)?;
        Ok((decision, seq))
    }

    /// The first half of [`Vault::begin_read`] and [`Vault::decide`]: resolves the request
    /// and decides it over the subject's stored state (read in one go:
    /// [`Store::subject_state`]). A request refused before the decision is ledgered here
    /// (durably) and returned as the error; otherwise the decision's ledger entry is
    /// returned as a draft, for the caller to make durable before anything is decrypted.
    fn decide_draft(
        &self,
        action: &str,
        actor: Actor<'_>,
        subject: &SubjectId,
        input: &ReadInput,
    ) -> Result<(Decision, Draft, SubjectState, Vec<Option<CategoryId>>)> {
        let accessor = actor.accessor;
        let mut d = self.draft(self.declared_accessor(accessor), action, subject.as_str());
        d.purpose = self.declared_purpose(&input.purpose);
        d.recipient = input.recipient.as_deref().map_or_else(String::new, |r| {
            declared_or(self.policy.recipient_id(r).is_ok(), r).to_string()
        });
        let stored = self.store.subject_state(&subject.0)?;
        // Each stored value's category, looked up once for the request, the decision and
        // the values kept sealed.
        let ids: Vec<Option<CategoryId>> = stored
            .iter()
            .flat_map(|s| &s.values)
            .map(|v| self.policy.category_id(&v.category).ok())
            .collect();
        let req =
            match self.resolve_request(accessor, input, || match ids.iter().copied().collect() {
                Some(held) => Ok(held),
                // A category the policy no longer declares: the lookup's own error.
                None => stored
                    .iter()
                    .flat_map(|s| &s.values)
                    .map(|v| self.policy.category_id(&v.category))
                    .collect(),
            }) {
                Ok(req) => req,
                Err((code, err)) => {
                    d.categories = input
                        .categories
                        .iter()
                        .flatten()
                        .filter(|c| self.policy.category_id(c).is_ok())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(",");
                    d.effect = "deny".into();
                    d.reasons = code.into();
                    self.record(d)?;
                    return Err(err);
                }
            };
        let Some(stored) = stored else {
            d.categories = self.policy.category_names(req.categories).join(",");
            d.effect = "deny".into();
            d.reasons = "subject_not_found".into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        };
        // INVARIANT: tenant binding — a person outside the key's tenant is answered as one
        // that does not exist (the categories ledgered are those asked, not those held).
        if let Err(reason) = self.reaches(actor, req.recipient, &stored.tenants) {
            d.categories = match input.categories {
                Some(_) => self.policy.category_names(req.categories).join(","),
                None => String::new(),
            };
            d.effect = "deny".into();
            d.reasons = reason.into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        }
        let mut state = self.policy_subject(
            stored.status,
            stored.age,
            &[],
            &stored.consents,
            self.consent_recipient(&req),
        );
        for (v, id) in stored.values.iter().zip(&ids) {
            if let Some(c) = id {
                state.hold([*c].into_iter().collect(), self.purposes_known(&v.purposes));
            }
        }
        // A legal purpose is decided with the instrument the reference names.
        let (reference, instrument) =
            self.reference_of(req.purpose, input.reference.as_deref(), subject)?;
        // INVARIANT: no PI leaves without a decision.
        let decision = self.policy.decide_with(&req, &state, reference);
        self.fill_decision(&mut d, &decision, req.categories);
        instruments::tag_reasons(&mut d.reasons, instrument.as_deref());
        Ok((decision, d, stored, ids))
    }

    /// The reference of a request for `purpose`: looked up as a registered instrument only
    /// when the purpose requires a reference ([`Vault::reference_for`]).
    fn reference_of(
        &self,
        purpose: custos_policy::PurposeId,
        reference: Option<&str>,
        subject: &SubjectId,
    ) -> Result<(custos_policy::Reference, Option<String>)> {
        if self
            .policy
            .purpose(purpose)
            .is_some_and(|p| p.requires_reference)
        {
            self.reference_for(reference, subject)
        } else {
            Ok((custos_policy::Reference::Absent, None))
        }
    }

    /// Resolves names to a policy request; every unknown name is an error (deny by default).
    fn resolve_request(
        &self,
        accessor: &str,
        input: &ReadInput,
        held: impl FnOnce() -> std::result::Result<CategorySet, custos_policy::UnknownId>,
    ) -> std::result::Result<Request, (&'static str, Error)> {
        let accessor_id = self.policy.accessor_id(accessor).map_err(|e| {
            (
                "unknown_accessor",
                Error::invalid("unknown_accessor", e.message),
            )
        })?;
        if input.purpose.trim().is_empty() {
            return Err((
                "purpose_required",
                Error::invalid("purpose_required", "state the purpose of the read"),
            ));
        }
        let purpose = self.policy.purpose_id(&input.purpose).map_err(|e| {
            (
                "unknown_purpose",
                Error::invalid("unknown_purpose", e.message),
            )
        })?;
        let recipient = match &input.recipient {
            None => None,
            Some(r) => Some(self.policy.recipient_id(r).map_err(|e| {
                (
                    "unknown_recipient",
                    Error::invalid("unknown_recipient", e.message),
                )
            })?),
        };
        let categories = match &input.categories {
            Some(names) => self.policy.category_set(names),
            None => held(),
        }
        .map_err(|e| {
            (
                "unknown_category",
                Error::invalid("unknown_category", e.message),
            )
        })?;
        Ok(Request {
            accessor: accessor_id,
            purpose,
            categories,
            recipient,
            has_reference: input
                .reference
                .as_deref()
                .is_some_and(|r| !r.trim().is_empty()),
        })
    }

    fn fill_decision(&self, d: &mut Draft, decision: &Decision, asked: CategorySet) {
        d.categories = self.policy.category_names(asked).join(",");
        d.effect = decision.effect.as_str().to_string();
        let mut reasons: Vec<&str> = decision
            .withheld
            .iter()
            .map(|w| w.reason.code())
            .chain(decision.denial.map(|r| r.code()))
            .chain(decision.ground.map(|g| g.code()))
            .collect();
        reasons.sort_unstable();
        reasons.dedup();
        d.reasons = reasons.join(",");
        if let Some(r) = decision
            .disclosure_to
            .and_then(|r| self.policy.recipient(r))
        {
            d.recipient = r.id.clone();
        }
    }

    /// The subject's state as the policy's decision needs it.
    fn policy_subject(
        &self,
        status: Status,
        age: Age,
        values: &[ValueRow],
        consents: &[ConsentRow],
        recipient: Option<&str>,
    ) -> Subject {
        let mut s = Subject::new();
        s.status = match status {
            Status::Active => SubjectStatus::Active,
            Status::Deactivated => SubjectStatus::Deactivated,
            Status::Erased => SubjectStatus::Erased,
        };
        s.age = match age {
            Age::Unknown => AgeStatus::Unknown,
            Age::AtLeastMinimum => AgeStatus::AtLeastMinimum,
            Age::UnderMinimum => AgeStatus::UnderMinimum,
        };
        for v in values {
            let Ok(c) = self.policy.category_id(&v.category) else {
                continue;
            };
            s.hold([c].into_iter().collect(), self.purposes_known(&v.purposes));
        }
        (s.consents, s.objections) = self.consent_state(consents, recipient);
        s
    }

    /// Purposes named in stored rows that the current policy still declares. A purpose the
    /// policy dropped grants nothing.
    fn purposes_known(&self, names: &[String]) -> PurposeSet {
        names
            .iter()
            .filter_map(|p| self.policy.purpose_id(p).ok())
            .collect()
    }

    /// Current consents and objections, each with its descendants: the latest event per
    /// purpose wins; silence is neither. An event about one recipient (consent to partner
    /// marketing by one partner) counts only for a decision disclosing to that recipient; an
    /// event about none counts for every decision; of those that count, the latest wins.
    fn consent_state(
        &self,
        events: &[ConsentRow],
        recipient: Option<&str>,
    ) -> (PurposeSet, PurposeSet) {
        let mut latest: BTreeMap<(&str, &str), bool> = BTreeMap::new();
        for c in events {
            let about = c.recipient.as_deref();
            if about.is_some() && about != recipient {
                continue;
            }
            latest.insert((&c.kind, &c.purpose), c.given);
        }
        let mut consents = PurposeSet::EMPTY;
        let mut objections = PurposeSet::EMPTY;
        for ((kind, purpose), given) in latest {
            let Some(info) = self
                .policy
                .purpose_id(purpose)
                .ok()
                .and_then(|p| self.policy.purpose(p))
            else {
                continue;
            };
            if given && kind == "consent" {
                consents = consents.union(info.descendants);
            } else if given && kind == "objection" {
                objections = objections.union(info.descendants);
            }
        }
        (consents, objections)
    }

    /// The recipient a decision's consent is looked up for: the onward recipient named, else
    /// the accessor's own.
    fn consent_recipient(&self, req: &Request) -> Option<&str> {
        req.recipient
            .or_else(|| self.policy.accessor(req.accessor).and_then(|a| a.recipient))
            .and_then(|r| self.policy.recipient(r))
            .map(|r| r.id.as_str())
    }

    fn active_subject(&self, subject: &SubjectId) -> Result<SubjectRow> {
        match self.store.subject(&subject.0)? {
            Some(r) if r.status != Status::Erased && r.age != Age::UnderMinimum => Ok(r),
            _ => Err(Error::SubjectNotFound),
        }
    }

    fn data_key(&self, subject: &SubjectId) -> Result<DataKey> {
        let wrapped = self
            .store
            .wrapped_dek(&subject.0)?
            .ok_or(Error::SubjectNotFound)?;
        DataKey::unwrap(&self.kek, &subject.0, &wrapped)
    }

    // ---- records ----------------------------------------------------------------------

    /// Appends a record of a collection for a subject, kept for the purposes stated and
    /// until the collection's retention ends. The caller must be a service that holds the
    /// subject, in a role that keeps the collection, pursuing a stated purpose itself.
    pub fn append_record<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        collection: &str,
        purposes: &[String],
        value: &str,
    ) -> Result<String> {
        let rows = self.append(actor.into(), subject, collection, purposes, &[value])?;
        rows.into_iter()
            .next()
            .map(|r| r.id)
            .ok_or(Error::Storage("record not stored".into()))
    }

    /// Appends many records in one transaction (bulk import), checked as
    /// [`Vault::append_record`] checks one.
    pub fn append_records<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        collection: &str,
        purposes: &[String],
        values: &[&str],
    ) -> Result<u64> {
        let rows = self.append(actor.into(), subject, collection, purposes, values)?;
        Ok(rows.len() as u64)
    }

    /// Checks, ledgers, then stores records. A refusal is ledgered with its code.
    fn append(
        &self,
        actor: Actor<'_>,
        subject: &SubjectId,
        collection: &str,
        purposes: &[String],
        values: &[&str],
    ) -> Result<Vec<RecordRow>> {
        let accessor = actor.accessor;
        let mut d = self.draft(
            self.declared_accessor(accessor),
            "append_record",
            subject.as_str(),
        );
        // Only declared names go to the ledger: an unknown one could be a value.
        d.categories =
            declared_or(self.policy.collection_id(collection).is_ok(), collection).to_string();
        d.purpose = purposes
            .iter()
            .map(|p| declared_or(self.policy.purpose_id(p).is_ok(), p))
            .collect::<Vec<_>>()
            .join(",");
        let mut reason = None;
        let rows =
            match self.prepare_records(actor, subject, collection, purposes, values, &mut reason) {
                Ok(rows) => rows,
                Err(e) => {
                    d.effect = "refused".into();
                    d.reasons = reason.unwrap_or(e.code()).into();
                    self.record(d)?;
                    return Err(e);
                }
            };
        d.effect = "done".into();
        if rows.len() != 1 {
            d.reasons = format!("count:{}", rows.len());
        }
        // INVARIANT: audit before data — the entry is durable before the records are
        // stored: a crash between the two leaves an entry without records, never records
        // without their entry (a failed store is ledgered as such).
        let failed = d.clone();
        self.record(d)?;
        if let Err(e) = self.store.append_records(&rows) {
            let mut f = failed;
            f.time_ms = now_ms();
            f.effect = "failed".into();
            f.reasons = e.code().into();
            self.record(f)?;
            return Err(e);
        }
        Ok(rows)
    }

    /// The records to store, sealed; or why not (the error, and in `reason` the ledger's
    /// reason when it is not the error's code).
    fn prepare_records(
        &self,
        actor: Actor<'_>,
        subject: &SubjectId,
        collection: &str,
        purposes: &[String],
        values: &[&str],
        reason: &mut Option<&'static str>,
    ) -> Result<Vec<RecordRow>> {
        let accessor = actor.accessor;
        self.policy
            .accessor_id(accessor)
            .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
        let cid = self
            .policy
            .collection_id(collection)
            .map_err(|e| Error::invalid("unknown_collection", e.message))?;
        if purposes.is_empty() {
            return Err(Error::invalid(
                "purpose_required",
                "state at least one purpose for the record",
            ));
        }
        if values.len() > MAX_RECORDS_APPEND {
            return Err(Error::invalid(
                "too_many_records",
                format!("one append adds at most {MAX_RECORDS_APPEND} records; split the batch"),
            ));
        }
        if values.iter().any(|v| v.len() > MAX_RECORD_BYTES) {
            return Err(Error::invalid(
                "record_too_large",
                format!("a record value holds at most {MAX_RECORD_BYTES} bytes"),
            ));
        }
        let stated = self
            .policy
            .purpose_set(purposes)
            .map_err(|e| Error::invalid("unknown_purpose", e.message))?;
        // An erased or unknown subject is named as such, before its (deleted) values could
        // make the answer look like a role that keeps no such records.
        let row = self.active_subject(subject)?;
        let held = self.store.values(&subject.0)?;
        // INVARIANT: only a service that holds the subject appends to it; to any other
        // caller the subject does not exist.
        if !self.holds_for(accessor, &held) {
            return Err(Error::SubjectNotFound);
        }
        // INVARIANT: tenant binding — nor to a key of another tenant.
        if let Err(code) = self.reaches(actor, None, &row.tenants) {
            *reason = Some(code);
            return Err(Error::SubjectNotFound);
        }
        let info = self
            .policy
            .accessor_id(accessor)
            .ok()
            .and_then(|a| self.policy.accessor(a))
            .ok_or_else(|| Error::invalid("unknown_accessor", "unknown accessor"))?;
        // INVARIANT: the caller pursues a purpose it states (the collector check of values).
        if !stated.intersects(&info.allowed) {
            return Err(Error::invalid(
                "purpose_not_allowed_for_accessor",
                "the caller pursues none of the stated purposes; a record states at least one purpose its collector pursues",
            ));
        }
        // INVARIANT: deny by default — a record is kept only by a role the subject was
        // collected in, by one of the caller's services, that keeps this collection, and
        // only for purposes that role states.
        let mut allowed = PurposeSet::EMPTY;
        // The categories of these records that may arrive only over TLS (C044, C074).
        let mut needs_tls = CategorySet::EMPTY;
        for v in held {
            let service = self
                .policy
                .service_id(&v.service)
                .ok()
                .filter(|s| info.services.contains(*s));
            let role = service
                .and_then(|s| self.policy.service(s))
                .and_then(|s| s.roles.iter().find(|r| r.id == v.role));
            if let (Some(s), Some(role)) = (service, role.filter(|r| r.records.contains(&cid))) {
                allowed = allowed.union(role.allowed_purposes);
                needs_tls = needs_tls.union(self.policy.tls_for_records(s, cid));
            }
        }
        if allowed.is_empty() {
            return Err(Error::invalid(
                "collection_not_kept_for_subject",
                format!("no role this subject was collected in keeps `{collection}` records"),
            ));
        }
        if !stated.is_subset(&allowed) {
            return Err(Error::invalid(
                "purpose_not_stated_for_role",
                format!("the roles keeping `{collection}` do not state these purposes"),
            ));
        }
        // INVARIANT: C044, C074 — refused over plain HTTP from another host, before sealing.
        if let Some(e) = self.transport_refusal(actor, needs_tls) {
            return Err(e);
        }
        let info = self
            .policy
            .collection(cid)
            .ok_or_else(|| Error::invalid("unknown_collection", "unknown record collection"))?;
        // Keep the scope of this version (the stated purposes and their refinements), so a
        // later version's new refinements cannot reach these records (invariant 3).
        let scope: Vec<String> = self
            .policy
            .purpose_names(self.policy.scope_of(stated))
            .into_iter()
            .map(String::from)
            .collect();
        let now = now_ms();
        let retain_until_ms = match info.retention {
            Some(PeriodKind::Transient) => {
                return Err(Error::invalid(
                    "transient_collection",
                    format!("records of `{collection}` are never stored"),
                ));
            }
            Some(PeriodKind::Days(days)) => Some(now + i64::from(days) * MS_PER_DAY),
            Some(PeriodKind::Account) | None => None,
        };
        let dek = self.data_key(subject)?;
        let mut rows = Vec::with_capacity(values.len());
        let rng = &mut Entropy::new();
        // Time-ordered ids (UUIDv7s as 32 hex digits), increasing in append order:
        // `records.id` grows at its end.
        let mut ids = values
            .iter()
            .map(|_| uuid_v7(rng))
            .collect::<Result<Vec<_>>>()?;
        ids.sort_unstable();
        for (value, id) in values.iter().zip(ids) {
            let id = id.simple().to_string();
            rows.push(RecordRow {
                ciphertext: dek.seal_record(rng, &subject.0, collection, &id, value.as_bytes())?,
                id,
                subject: subject.0.clone(),
                collection: collection.to_string(),
                purposes: scope.clone(),
                notice: self.policy.version().to_string(),
                retain_until_ms,
                time_ms: now,
            });
        }
        Ok(rows)
    }

    /// Reads a subject's records of a collection for a purpose. Records are grouped by the
    /// purposes they were appended for; the policy decides each group over the collection's
    /// categories, and only records of permitted groups are decrypted, after the ledger entry.
    pub fn read_records<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        collection: &str,
        purpose: &str,
        page: &RecordsPage,
    ) -> Result<RecordsResult> {
        self.read_records_with(actor, subject, collection, purpose, None, page)
    }

    /// [`Vault::read_records`] with a reference: for a purpose that requires one, the id of
    /// a registered legal instrument covering the subject and the collection's categories
    /// (see [`ReadInput::reference`]).
    pub fn read_records_with<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        collection: &str,
        purpose: &str,
        reference: Option<&str>,
        page: &RecordsPage,
    ) -> Result<RecordsResult> {
        let actor = actor.into();
        let accessor = actor.accessor;
        let mut d = self.draft(
            self.declared_accessor(accessor),
            "read_records",
            subject.as_str(),
        );
        d.purpose = self.declared_purpose(purpose);
        let input = ReadInput {
            purpose: purpose.to_string(),
            ..ReadInput::default()
        };
        let resolved = self
            .resolve_request(accessor, &input, || Ok(CategorySet::EMPTY))
            .and_then(|req| {
                let cid = self.policy.collection_id(collection).map_err(|e| {
                    (
                        "unknown_collection",
                        Error::invalid("unknown_collection", e.message),
                    )
                })?;
                Ok((req, cid))
            });
        let (mut req, cid) = match resolved {
            Ok(x) => x,
            Err((code, err)) => {
                d.effect = "deny".into();
                d.reasons = code.into();
                self.record(d)?;
                return Err(err);
            }
        };
        d.categories = collection.to_string();
        let categories = self
            .policy
            .collection(cid)
            .map_or(CategorySet::EMPTY, |c| c.categories);
        req.categories = categories;
        let Some(row) = self.store.subject(&subject.0)? else {
            d.effect = "deny".into();
            d.reasons = "subject_not_found".into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        };
        // INVARIANT: tenant binding — a person outside the key's tenant does not exist for it.
        if let Err(reason) = self.reaches(actor, req.recipient, &row.tenants) {
            d.effect = "deny".into();
            d.reasons = reason.into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        }
        // An erased person, or one under the minimum age, is answered as one who never was;
        // the ledger keeps the reason.
        let gone = match (row.status, row.age) {
            (Status::Erased, _) => Some("subject_erased"),
            (_, Age::UnderMinimum) => Some("subject_under_minimum_age"),
            _ => None,
        };
        if let Some(code) = gone {
            d.effect = "deny".into();
            d.reasons = code.into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        }
        let now = now_ms();
        let limit = match page.limit {
            0 => DEFAULT_RECORDS_PAGE,
            n => n.min(MAX_RECORDS_PAGE),
        };
        let read = self
            .store
            .records(&subject.0, collection, page.after.as_deref(), limit)?;
        let next = if read.len() as u64 == limit {
            read.last().map(|r| r.id.clone())
        } else {
            None
        };
        // A record past its retention deadline is no longer held, purged or not.
        let rows: Vec<RecordRow> = read
            .into_iter()
            .filter(|r| r.retain_until_ms.is_none_or(|t| t > now))
            .collect();
        let events = self.store.consents(&row.id)?;
        let base = self.policy_subject(
            row.status,
            row.age,
            &[],
            &events,
            self.consent_recipient(&req),
        );
        let (reference, instrument) = self.reference_of(req.purpose, reference, subject)?;
        // One decision per distinct set of stated purposes.
        let mut decisions: BTreeMap<Vec<String>, Decision> = BTreeMap::new();
        for r in &rows {
            if !decisions.contains_key(&r.purposes) {
                let mut s = base.clone();
                s.hold(categories, self.purposes_known(&r.purposes));
                decisions.insert(
                    r.purposes.clone(),
                    self.policy.decide_with(&req, &s, reference),
                );
            }
        }
        if rows.is_empty() {
            // Nothing held: the decision still runs, so a forbidden purpose is a denial.
            decisions.insert(Vec::new(), self.policy.decide_with(&req, &base, reference));
        }
        let permitted = |ps: &Vec<String>| {
            decisions
                .get(ps)
                .is_some_and(|d| d.effect == Effect::Permit)
        };
        let mut reasons: Vec<&str> = Vec::new();
        let mut out = RecordsResult::default();
        for r in &rows {
            if !permitted(&r.purposes) {
                let code = decisions
                    .get(&r.purposes)
                    .and_then(|d| d.withheld.first())
                    .map_or("withheld", |w| w.reason.code());
                *out.withheld.entry(code.to_string()).or_default() += 1;
                reasons.push(code);
            }
        }
        for dec in decisions.values() {
            reasons.extend(dec.withheld.iter().map(|w| w.reason.code()));
            reasons.extend(dec.ground.map(|g| g.code()));
        }
        reasons.sort_unstable();
        reasons.dedup();
        let n_permitted = rows.iter().filter(|r| permitted(&r.purposes)).count();
        let effect = if rows.is_empty() {
            decisions.values().next().map_or(Effect::Deny, |d| d.effect)
        } else if n_permitted == rows.len() {
            Effect::Permit
        } else if n_permitted == 0 {
            Effect::Deny
        } else {
            Effect::Partial
        };
        // INVARIANT: C044 — records holding a category that crosses the network only over
        // TLS do not leave over plain HTTP to another host: refused, ledgered, undecrypted.
        if n_permitted > 0 {
            let needs_tls = categories.intersection(self.policy.tls_categories());
            if let Some(e) = self.transport_refusal(actor, needs_tls) {
                d.effect = "deny".into();
                d.reasons = TLS_REQUIRED.into();
                self.record(d)?;
                return Err(e);
            }
        }
        d.effect = effect.as_str().to_string();
        d.reasons = reasons.join(",");
        instruments::tag_reasons(&mut d.reasons, instrument.as_deref());
        // INVARIANT: audit before data.
        out.ledger_seq = self.record(d)?;
        out.effect = effect.as_str().to_string();
        out.next = next;
        if n_permitted == 0 {
            return Ok(out);
        }
        let dek = self.data_key(subject)?;
        for r in rows.iter().filter(|r| permitted(&r.purposes)) {
            let plain = dek.open_record(&subject.0, collection, &r.id, &r.ciphertext)?;
            out.records.push(Record {
                id: r.id.clone(),
                value: String::from_utf8(plain)
                    .map_err(|_| Error::Crypto("decrypted record is not text"))?,
                purposes: r.purposes.clone(),
                time_ms: r.time_ms,
            });
        }
        Ok(out)
    }

    // ---- subject lifecycle ------------------------------------------------------------

    /// Records the subject's age, as learned by a service that holds them. Under the
    /// policy's minimum, everything held about them is erased at once and the erasure
    /// ledgered (C053). To a caller that does not hold the subject it does not exist.
    pub fn learn_age<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        age: u32,
    ) -> Result<()> {
        let principal = actor.into();
        let actor = principal.accessor;
        let row = self.active_subject(subject)?;
        let refusal = if !self.holds_for(actor, &self.store.values(&subject.0)?) {
            Some("subject_not_held")
        } else {
            // INVARIANT: tenant binding.
            self.reaches(principal, None, &row.tenants).err()
        };
        if let Some(reason) = refusal {
            let mut d = self.draft(self.declared_accessor(actor), "learn_age", subject.as_str());
            d.effect = "refused".into();
            d.reasons = reason.into();
            self.record(d)?;
            return Err(Error::SubjectNotFound);
        }
        let under = self.policy.minimum_age().is_some_and(|min| age < min);
        if under {
            return self.erase_as(
                actor,
                subject,
                Age::UnderMinimum,
                "subject_under_minimum_age",
            );
        }
        self.store.set_age(&subject.0, Age::AtLeastMinimum)?;
        let mut d = self.draft(actor, "learn_age", subject.as_str());
        d.effect = "done".into();
        d.reasons = "at_least_minimum_age".into();
        self.record(d)?;
        Ok(())
    }

    /// Erases a subject, by key: destroys its data key, deletes its values, index terms and
    /// consents, marks it erased and queues its records for purging, in one transaction; then
    /// ledgers the fact, with the subject id only. When it returns nothing of the subject
    /// reads or decrypts. Its records are deleted afterwards, in bounded transactions, by the
    /// purger (see [`Vault::purge_erased`] and `docs/vault.md`, "Erasure").
    pub fn erase<'a>(&self, actor: impl Into<Actor<'a>>, subject: &SubjectId) -> Result<()> {
        let actor = actor.into();
        let row = self
            .store
            .subject(&subject.0)?
            .ok_or(Error::SubjectNotFound)?;
        self.within_tenant(actor, "erase", subject, &row.tenants)?;
        self.erase_as(actor.accessor, subject, row.age, "erasure_requested")
    }

    fn erase_as(&self, actor: &str, subject: &SubjectId, age: Age, reason: &str) -> Result<()> {
        let mut d = self.draft(actor, "erase", subject.as_str());
        d.effect = "done".into();
        d.reasons = reason.to_string();
        // The entry commits with the erasure itself (durable when this returns), not through
        // the group-commit writer: one commit fewer on the erasure's path.
        self.store
            .erase_subject(&subject.0, age, &d, &|seq, hash| self.signer.due(seq, hash))?;
        self.purger.wake();
        Ok(())
    }

    /// Deletes, now and on this thread, the records of every erased subject still queued,
    /// each purge completed ledgered (`purge_erased`, with the count); returns how many
    /// records this call deleted. It first waits for a pass the background purger has under
    /// way (what that pass deleted is not counted here). On return every erasure made before
    /// the call is purged, unless an error is returned, or another server's purge of the same
    /// subject was in the way (PostgreSQL; that subject stays queued for the next pass).
    pub fn purge_erased(&self) -> Result<u64> {
        self.purger.purge_now()
    }

    /// Deactivates a subject's account: only legal and contractual purposes remain.
    pub fn deactivate<'a>(&self, actor: impl Into<Actor<'a>>, subject: &SubjectId) -> Result<()> {
        let principal = actor.into();
        let actor = principal.accessor;
        let row = self.active_subject(subject)?;
        self.within_tenant(principal, "deactivate", subject, &row.tenants)?;
        self.store.set_status(&subject.0, Status::Deactivated)?;
        let mut d = self.draft(actor, "deactivate", subject.as_str());
        d.effect = "done".into();
        self.record(d)?;
        Ok(())
    }

    /// Finds the subject holding an identifier value (`contact.email`), by blind index.
    pub fn find_by_identifier(&self, category: &str, value: &str) -> Result<Option<SubjectId>> {
        let cid = self
            .policy
            .category_id(category)
            .map_err(|e| Error::invalid("unknown_category", e.message))?;
        if !self.policy.category(cid).is_some_and(|c| c.identifier) {
            return Err(Error::invalid(
                "not_an_identifier",
                format!("category `{category}` is not an identifier; it has no index"),
            ));
        }
        let term = self.index.term(category, value)?;
        Ok(self.store.find_by_term(category, &term)?.map(SubjectId))
    }

    // ---- API keys ---------------------------------------------------------------------

    /// Creates an API key for an accessor the policy declares and that acts for no tenant
    /// ([`Vault::create_key_for`] makes the keys of a tenant-bound accessor). The key is
    /// returned once and only its SHA-256 is stored.
    pub fn create_key(&self, accessor: &str) -> Result<String> {
        self.create_key_for(accessor, None)
    }

    /// Creates an API key for an accessor the policy declares, acting for `tenant`: required
    /// when the accessor is tenant-bound ([`custos_policy::AccessorInfo::tenant_bound`]; else
    /// `tenant_required`), refused for any other accessor (`tenant_not_bound`). To the key,
    /// only the tenant's people exist. The key is returned once and only its SHA-256 is
    /// stored, with the accessor and the tenant.
    pub fn create_key_for(&self, accessor: &str, tenant: Option<&str>) -> Result<String> {
        self.policy
            .accessor_id(accessor)
            .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
        let tenant = self.key_tenant(accessor, tenant)?;
        let secret = Zeroizing::new(crypto::random_bytes::<32>()?);
        let key = format!("custos_{}", hex(secret.as_slice()));
        self.store.put_api_key(&ApiKeyRow {
            hash: hex(&sha256(key.as_bytes())),
            accessor: accessor.to_string(),
            tenant: tenant.map(str::to_string),
            revoked: false,
            created_ms: now_ms(),
        })?;
        let mut d = self.draft(OPERATOR, "create_key", "");
        d.recipient = accessor.to_string();
        d.effect = "done".into();
        // Whether the key is bound to a tenant; the tenant is not ledgered.
        if tenant.is_some() {
            d.reasons = "tenant_bound".into();
        }
        self.record(d)?;
        Ok(key)
    }

    /// The principal an API key acts as: its accessor and, for a tenant-bound accessor, its
    /// tenant. A key the store confirmed less than [`KEY_CACHE_TTL`] ago is answered from
    /// memory ([`Vault::authenticate_cached`]).
    pub fn authenticate(&self, key: &str) -> Result<Principal> {
        let presented = sha256(key.trim().as_bytes());
        if let Some(principal) = self.keys.get(&presented) {
            return Ok(principal);
        }
        let presented_hex = hex(&presented);
        let row = self.store.api_key(&presented_hex)?;
        // Compare in constant time, and against a dummy when there is no row, so timing
        // tells nothing about which keys exist.
        let stored = row
            .as_ref()
            .map_or_else(|| "0".repeat(64), |r| r.hash.clone());
        let equal: bool = presented_hex.as_bytes().ct_eq(stored.as_bytes()).into();
        match row {
            Some(r) if equal && !r.revoked => {
                let principal = Principal {
                    accessor: r.accessor,
                    tenant: r.tenant,
                };
                self.keys.put(presented, &principal);
                Ok(principal)
            }
            _ => Err(Error::Unauthorized),
        }
    }

    /// The principal of an API key the store confirmed less than [`KEY_CACHE_TTL`] ago, from
    /// memory; `None` means "ask [`Vault::authenticate`]", not "refused". Never touches the
    /// store, so it may run on any thread. The map is keyed by the key's SHA-256: the key
    /// itself is not kept.
    pub fn authenticate_cached(&self, key: &str) -> Option<Principal> {
        self.keys.get(&sha256(key.trim().as_bytes()))
    }

    /// Revokes every key of an accessor; returns how many.
    pub fn revoke(&self, accessor: &str) -> Result<u64> {
        self.revoke_for(accessor, None)
    }

    /// Revokes the keys of an accessor made for one tenant, or (`None`) all of its keys;
    /// returns how many.
    pub fn revoke_for(&self, accessor: &str, tenant: Option<&str>) -> Result<u64> {
        let n = self.store.revoke_api_keys(accessor, tenant)?;
        self.keys.forget(accessor, tenant);
        let mut d = self.draft(OPERATOR, "revoke_keys", "");
        d.recipient = accessor.to_string();
        d.effect = "done".into();
        d.reasons = format!("count:{n}");
        self.record(d)?;
        Ok(n)
    }

    /// Re-wraps every data key and vault secret under a new master key; values are untouched.
    /// After it returns, only the new key opens the vault.
    pub fn rotate_master(&mut self, new: MasterKey) -> Result<u64> {
        let old = self.kek.clone();
        let n = self.store.rewrap_keys(&mut |kind, name, wrapped| {
            let label = if kind == "dek" {
                crypto::dek_label(name)
            } else {
                secret_label(name)
            };
            let secret = old.unwrap(&label, wrapped)?;
            new.wrap(&label, &secret)
        })?;
        self.kek = new;
        let mut d = self.draft(OPERATOR, "rotate_master_key", "");
        d.effect = "done".into();
        d.reasons = format!("count:{n}");
        self.record(d)?;
        Ok(n)
    }

    /// Recomputes the ledger's chain and checks its signed checkpoints.
    pub fn verify_ledger(&self) -> Result<Verification> {
        self.verify_ledger_against(None)
    }

    /// [`Vault::verify_ledger`], and, given `head` (`SEQ:HASH`, the head an earlier verify
    /// reported, kept outside the database), that the ledger still holds that entry with
    /// that hash: it fails when the ledger was cut or rewritten up to it
    /// ([`crate::ledger::verify_against`]).
    pub fn verify_ledger_against(
        &self,
        head: Option<&crate::ledger::Head>,
    ) -> Result<Verification> {
        crate::ledger::verify_against(&*self.store, &self.signer, head)
    }
}

/// The category whose value, when a whole number, is the person's age in years.
pub const AGE_CATEGORY: &str = "person.age";

/// The youngest age the collection states: its `age` field or an age value in its data.
/// INVARIANT: C053 — an age typed into a form counts as much as one sent in `age`.
fn stated_age(input: &CollectionInput) -> Option<u32> {
    let in_data = input
        .data
        .get(AGE_CATEGORY)
        .and_then(|v| v.trim().parse::<u32>().ok());
    match (input.age, in_data) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn declared_or(declared: bool, name: &str) -> &str {
    if declared { name } else { "?" }
}

fn secret_label(name: &str) -> String {
    format!("secret:{name}")
}

/// A vault secret: unwrapped from the store, or made and stored on first open.
fn vault_secret(store: &dyn Store, kek: &MasterKey, name: &str) -> Result<crypto::Secret> {
    let label = secret_label(name);
    let wrapped = match store.secret(name)? {
        Some(w) => w,
        None => store.put_secret_if_absent(name, &kek.wrap(&label, &crypto::random_secret()?)?)?,
    };
    kek.unwrap(&label, &wrapped)
        .map_err(|_| Error::Crypto("the master key does not open this vault"))
}

// ---- decisions without data (custos-server: `POST /v1/decisions`) ---------------------

/// What [`Vault::decide`] returns: the decision alone, no data.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecisionResult {
    /// `permit`, `partial` or `deny`.
    pub effect: String,
    /// Categories the policy permits.
    pub permitted: Vec<String>,
    /// Category → reason code, for what it withholds.
    pub withheld: BTreeMap<String, String>,
    /// When the whole request was refused before looking at categories, the reason code.
    pub denial: Option<String>,
    /// Why what is permitted is permitted (`collected_for_purpose`, …).
    pub ground: Option<String>,
    /// The external recipient a read would disclose to.
    pub disclosure_to: Option<String>,
    /// The policy clauses behind the decision.
    pub clauses: Vec<String>,
    /// Sequence number of the ledger entry recording the decision.
    pub ledger_seq: u64,
}

impl Vault {
    /// Decides a read over the subject's stored state, as [`Vault::read`] would, and ledgers
    /// the decision; decrypts nothing.
    pub fn decide<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        subject: &SubjectId,
        input: &ReadInput,
    ) -> Result<DecisionResult> {
        let (decision, seq) = self.decide_recorded("decide", actor.into(), subject, input)?;
        Ok(DecisionResult {
            effect: decision.effect.as_str().to_string(),
            permitted: self
                .policy
                .category_names(decision.permitted)
                .into_iter()
                .map(str::to_string)
                .collect(),
            withheld: decision
                .withheld
                .iter()
                .filter_map(|w| {
                    let c = self.policy.category(w.category)?;
                    Some((c.id.clone(), w.reason.code().to_string()))
                })
                .collect(),
            denial: decision.denial.map(|r| r.code().to_string()),
            ground: decision.ground.map(|g| g.code().to_string()),
            disclosure_to: decision
                .disclosure_to
                .and_then(|r| self.policy.recipient(r))
                .map(|r| r.id.clone()),
            clauses: self
                .policy
                .decision_clauses(&decision)
                .into_iter()
                .map(str::to_string)
                .collect(),
            ledger_seq: seq,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
    use super::*;

    #[test]
    fn ids_are_uuid_v7_unique_and_time_ordered() {
        let rng = &mut Entropy::new();
        let start = u64::try_from(now_ms()).unwrap();
        let mut prev_ms = 0;
        let mut seen = std::collections::HashSet::new();
        let mut distinct_ms = std::collections::HashSet::new();
        let deadline = Instant::now() + Duration::from_millis(30);
        let mut n = 0;
        while n < 20_000 || Instant::now() < deadline {
            let uuid = uuid_v7(rng).unwrap();
            let u = uuid.as_bytes();
            let ms = u64::from_be_bytes([0, 0, u[0], u[1], u[2], u[3], u[4], u[5]]);
            // Never back in time, and about now.
            assert!(ms >= prev_ms && ms >= start && ms < start + 60_000);
            prev_ms = ms;
            distinct_ms.insert(ms);
            assert_eq!(u[6] >> 4, 7, "version 7");
            assert_eq!(u[8] >> 6, 0b10, "variant 1");
            assert_eq!(uuid.get_version_num(), 7);
            assert!(seen.insert(uuid), "an id repeated");
            let id = SubjectId::from_uuid(&uuid);
            assert_eq!(SubjectId::parse(id.as_str()).unwrap(), id);
            n += 1;
        }
        assert!(distinct_ms.len() > 1, "ids span several milliseconds");
        // Within one millisecond the 74 random bits differ: ids of a millisecond are not
        // a counter away from each other.
        let a = uuid_v7(rng).unwrap();
        let b = uuid_v7(rng).unwrap();
        // rand_a (12 bits after the version) and rand_b (62 bits after the variant).
        let random_bits =
            |u: &[u8; 16]| u128::from_be_bytes(*u) & ((0x0fff << 64) | ((1 << 62) - 1));
        assert_eq!(random_bits(&[0xff; 16]).count_ones(), 74);
        assert_ne!(random_bits(a.as_bytes()), random_bits(b.as_bytes()));
        // The string form sorts as the bytes do.
        let (x, y) = (SubjectId::from_uuid(&a), SubjectId::from_uuid(&b));
        assert_eq!(a.cmp(&b), x.cmp(&y));
    }

    #[test]
    fn an_id_is_a_uuid_in_its_canonical_text_only() {
        let id = "0190a6f2-3b4c-7d5e-8f60-718293a4b5c6";
        assert_eq!(SubjectId::parse(id).unwrap().as_str(), id);
        for other in [
            "0190A6F2-3B4C-7D5E-8F60-718293A4B5C6",
            "{0190a6f2-3b4c-7d5e-8f60-718293a4b5c6}",
            "urn:uuid:0190a6f2-3b4c-7d5e-8f60-718293a4b5c6",
            "0190a6f23b4c7d5e8f60718293a4b5c6",
            "0190a6f2-3b4c-7d5e-8f60-718293a4b5cg",
            "0190a6f2+3b4c-7d5e-8f60-718293a4b5c6",
            "",
        ] {
            assert!(SubjectId::parse(other).is_err(), "{other}");
        }
    }
}
