//! The Custos vault: personal information stored encrypted per subject, let out only through
//! a decision of the policy, every decision recorded in a tamper-evident ledger.
//!
//! - [`crypto`]: master key, per-subject data keys, blind index.
//! - [`store`]: the [`Store`] trait and its SQLite and PostgreSQL backends.
//! - [`ledger`]: the hash chain, signed checkpoints, group commit and verification.
//! - [`purge`]: the second phase of erasure — erased subjects' records deleted in bounded
//!   transactions by a background thread.
//! - `collector`: group commit of single collections (one writer thread).
//! - [`vault`]: the [`Vault`] facade every caller goes through.
//!
//! **Architecture invariant:** this crate knows no HTTP; it depends on `custos-policy` for
//! every decision and never decides anything itself.

mod collector;
pub mod crypto;
pub mod error;
pub mod ledger;
pub mod purge;
pub mod store;
pub mod vault;

pub use crypto::MasterKey;
/// The transparency log's verifier (RFC 6962/9162 proofs, C2SP signed checkpoints).
pub use custos_tlog as tlog;
pub use error::{Error, Result};
pub use ledger::{LedgerEntry, Verification};
pub use purge::Purging;
pub use store::Store;
pub use store::postgres::PostgresStore;
pub use store::sqlite::SqliteStore;
pub use vault::{
    ANALYTICS_PURPOSE, Aggregate, BEACON_PURPOSE, BannerCookie, CONSENT_COOKIE, CookieChoice,
    CookieConsent, MAX_PAGE_CHARS, TELEMETRY_METRICS, TELEMETRY_PURPOSE, banner_cookies,
    beacon_refused, day_of, normalize_page, sharing_purposes,
};
pub use vault::{
    Actor, CORRECT, Channel, CollectionInput, Completion, DEFAULT_RECORDS_PAGE, Durable, EXPORT,
    Export, ExportedEntry, ExportedRecord, ExportedValue, Instrument, InstrumentInput,
    MAX_CORRECTED_BYTES, MAX_INSTRUMENT_SUBJECTS, MAX_ISSUER_CHARS, MAX_RECORD_BYTES,
    MAX_RECORDS_APPEND, MAX_RECORDS_PAGE, Mail, MailStatus, OPERATOR, OutgoingMail, PERSON, Person,
    PersonRequest, Principal, ReadInput, ReadResult, Record, RecordsPage, RecordsResult,
    RequestHandler, RequestInput, RequestList, Requester, SealedRead, SignInRequest, SignedIn,
    SubjectId, SubjectOverview, Sweep, TLS_REQUIRED, Vault, format_date_time,
};
pub use vault::{
    CONSENT_METHODS, Can, Consent, ConsentBy, ConsentChange, ConsentInput, NOT_FREELY_GIVEN,
    Preference, RECEIPT_TYP, RECEIPT_VERSION, ReceiptError, ReceiptKey, VerifiedReceipt,
    communication_topics, jwks, parse_jwks, verify_receipt,
};
pub use vault::{
    EMAIL_METHOD, INBOUND_MAIL, Intake, MAX_FROM_ADDRESSES, MAX_INBOUND_MAIL, MAX_REFERRAL_MESSAGE,
    MAX_REFERRAL_NAME, MAX_REFERRALS_PER_DAY, MailingBy, MailingInfo, MailingInput, MailingSent,
    REFERRAL, REFERRAL_CATEGORIES, Referral, ReferralInput, UnsubscribeToken, Unsubscribed,
    from_addresses,
};
