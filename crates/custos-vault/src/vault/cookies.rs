//! Cookies, web beacons, Global Privacy Control and service-health telemetry (issue 14,
//! C034, C035, C047–C049).
//!
//! **Cookie consent:** the policy's `[[cookie]]` elements are the banner's choices
//! ([`banner_cookies`]). A visitor's choice ([`Vault::record_cookie_consent`]) is an
//! anonymous record: a random id (the receipt's subject), the choices, the notice version and
//! its SHA-256, the time and whether the browser sent GPC — no address, no user agent, no
//! subject. A required cookie cannot be refused, an optional one not named is refused (no
//! pre-ticked boxes), and with GPC the optional cookies serving a purpose in the tree of a
//! sale or sharing purpose ([`sharing_purposes`]) are refused whatever was sent. Ledgered
//! (`cookie_consent`, no subject) before it is stored. Withdrawal is a new choice.
//!
//! **GPC and a signed-in person:** [`Vault::gpc_opt_out`] withdraws the person's consent to
//! (or objects to) each sale or sharing purpose, method `gpc_signal`, through
//! [`Vault::record_consent`]; once: a purpose whose last record is already such a refusal
//! gets none.
//!
//! **Aggregates:** the beacon, GPC visits and telemetry are counts by kind, name and UTC day
//! ([`CountRow`]), nothing else. Counting is memory only (a map behind a mutex); a thread
//! adds the counts to the store every [`FLUSH_EVERY`] in one transaction, and once more
//! when the vault is dropped. The store keeps at most [`MAX_NAMES_PER_DAY`] names per kind
//! and day (later names count under [`OTHER`]), and the memory at most [`MAX_PENDING`]
//! (later ones count under [`OTHER`] too). Counting is not ledgered (no person, no
//! identifier); reading the aggregates is.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use custos_policy::{Basis, Policy, PurposeId, PurposeSet};
use serde_json::{Value, json};

use super::{Actor, Requester, Vault, format_date_time};
use crate::error::{Error, Result};
use crate::store::{CookieConsentRow, CountRow, Store, now_ms};

use super::consent::{Consent, ConsentInput};

/// The first-party cookie the banner keeps the visitor's choice in:
/// `<record id>|<cookie id>=1|<cookie id>=0…`.
pub const CONSENT_COOKIE: &str = "custos_consent";
/// The purpose the page beacon (`/b.gif`) serves: a visitor who refused an optional cookie
/// serving it (or a purpose above or below it) is not counted.
pub const BEACON_PURPOSE: &str = "analytics.website";
/// The purpose service-health telemetry serves (C035): an internal accessor allowed it may
/// report counts.
pub const TELEMETRY_PURPOSE: &str = "analytics.service_health";
/// The purpose whose accessors read the aggregates: internal accessors declared for it.
pub const ANALYTICS_PURPOSE: &str = "analytics";
/// The telemetry metrics a service may report: a closed set, so nothing else (no identifier)
/// can be sent as a metric's name.
pub const TELEMETRY_METRICS: &[&str] = &[
    "session_started",
    "session_failed",
    "session_dropped",
    "join_latency_ms",
    "crash",
    "reconnect",
    "upgrade_offered",
    "upgrade_installed",
];
/// Kinds of aggregate counts.
pub const PAGE: &str = "page";
/// GPC visits, by day (name `gpc`).
pub const GPC: &str = "gpc";
/// Telemetry, by `service/metric` and day.
pub const TELEMETRY: &str = "telemetry";
/// Where a page that may carry personal information is counted.
pub const REDACTED: &str = "(redacted)";
/// Where a name past the day's bound is counted.
pub const OTHER: &str = "(other)";
/// Names per kind and day the store keeps at most.
pub const MAX_NAMES_PER_DAY: u64 = 1000;
/// Distinct counts held in memory at most between flushes.
pub const MAX_PENDING: usize = 10_000;
/// How often counts held in memory are added to the store.
pub const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The longest page path counted; a longer one is cut there.
pub const MAX_PAGE_CHARS: usize = 128;
/// The largest count and value one telemetry report carries.
pub const MAX_TELEMETRY_COUNT: u64 = 1_000_000;
/// The most a telemetry value may be (per report).
pub const MAX_TELEMETRY_VALUE: u64 = 1 << 40;
/// The ledger action of a cookie-consent record.
pub const COOKIE_CONSENT: &str = "cookie_consent";
/// The ledger action of reading aggregates.
pub const READ_AGGREGATES: &str = "read_aggregates";
/// The ledger actor of a visitor's browser.
pub const VISITOR: &str = "visitor";

/// A cookie as the banner shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BannerCookie {
    /// Its id (`[[cookie]] id`): the key of `choices`.
    pub id: String,
    /// `cookie` or `web_beacon`.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The purpose it serves.
    pub purpose: String,
    /// The purpose's name.
    pub purpose_name: String,
    /// The category it holds.
    pub category: String,
    /// The site does not work without it: always on, cannot be refused.
    pub required: bool,
    /// What it does.
    pub description: String,
    /// Global Privacy Control refuses it: it serves a purpose in the tree of a sale or
    /// sharing purpose.
    pub gpc_refused: bool,
    /// Refusing it stops the page beacon counting the visitor.
    pub beacon: bool,
}

/// The purposes that sell or share: a disclosure to an external recipient
/// (`requires_recipient`) that rests on the person's choice (basis consent or opt-out). For
/// WebEx 2010: partner marketing (C036).
pub fn sharing_purposes(policy: &Policy) -> Vec<PurposeId> {
    policy
        .purposes()
        .iter()
        .filter(|p| p.requires_recipient && matches!(p.basis, Basis::Consent | Basis::OptOut))
        .filter_map(|p| policy.purpose_id(&p.id).ok())
        .collect()
}

/// The purposes in the tree of a sale or sharing purpose: everything under its root.
fn sharing_trees(policy: &Policy) -> PurposeSet {
    let mut set = PurposeSet::EMPTY;
    for pid in sharing_purposes(policy) {
        let mut p = policy.purpose(pid);
        while let Some(parent) = p.and_then(|x| x.parent).and_then(|x| policy.purpose(x)) {
            p = Some(parent);
        }
        if let Some(root) = p {
            set = set.union(root.descendants);
        }
    }
    set
}

/// The policy's cookies as the banner shows them, in declaration order.
pub fn banner_cookies(policy: &Policy) -> Vec<BannerCookie> {
    let sharing = sharing_trees(policy);
    let beacon = policy
        .purpose_id(BEACON_PURPOSE)
        .ok()
        .and_then(|p| policy.purpose(p))
        .map_or(PurposeSet::EMPTY, |p| p.ancestors.union(p.descendants));
    policy
        .cookies()
        .iter()
        .map(|c| {
            let purpose = c.purpose.get_ref().clone();
            let pid = policy.purpose_id(&purpose).ok();
            let info = pid.and_then(|p| policy.purpose(p));
            BannerCookie {
                id: c.id.get_ref().clone(),
                kind: c.kind.get_ref().clone(),
                name: c.name.clone(),
                purpose_name: info.map(|p| p.name.clone()).unwrap_or_default(),
                purpose,
                category: c.category.get_ref().clone(),
                required: c.required,
                description: c.description.clone().unwrap_or_default(),
                gpc_refused: !c.required && pid.is_some_and(|p| sharing.contains(p)),
                beacon: !c.required && pid.is_some_and(|p| beacon.contains(p)),
            }
        })
        .collect()
}

/// Normalises a beacon's `page`: the path only (query and fragment dropped), at most
/// [`MAX_PAGE_CHARS`] characters of `A-Z a-z 0-9 / - _ . ~`, starting with `/`; `None` for
/// anything else (not counted). A path that may carry personal information — an `@`, a
/// percent-escape, or a run of 5 or more digits (a phone number, an account or order
/// number) — is counted as [`REDACTED`].
pub fn normalize_page(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/') {
        return None;
    }
    let mut digits = 0usize;
    let mut long_digits = false;
    for ch in path.chars() {
        if ch.is_ascii_digit() {
            digits += 1;
            long_digits |= digits >= 5;
        } else {
            digits = 0;
        }
    }
    if long_digits || path.contains(['@', '%']) {
        return Some(REDACTED.into());
    }
    if !path
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '.' | '~'))
    {
        return Some(REDACTED.into());
    }
    Some(path.chars().take(MAX_PAGE_CHARS).collect())
}

/// Whether a `custos_consent` cookie's value refuses the beacon: it refuses an optional
/// cookie serving [`BEACON_PURPOSE`] (`analytics`, `web-beacon` for WebEx), or it is not a
/// value the banner writes (the safe side: not counted).
pub fn beacon_refused(policy: &Policy, value: &str) -> bool {
    let beacons: Vec<String> = banner_cookies(policy)
        .into_iter()
        .filter(|c| c.beacon)
        .map(|c| c.id)
        .collect();
    let mut parts = value.split('|');
    let id_ok = parts
        .next()
        .is_some_and(|id| !id.is_empty() && id.len() <= 64);
    if !id_ok {
        return true;
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return true;
        };
        if v != "1" && v != "0" {
            return true;
        }
        if v == "0" && beacons.iter().any(|b| b == k) {
            return true;
        }
    }
    false
}

/// The UTC day of a time, `YYYY-MM-DD`.
pub fn day_of(ms: i64) -> String {
    format_date_time(ms).chars().take(10).collect()
}

/// A visitor's cookie choice (`POST /v1/cookie-consents`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieChoice {
    /// Cookie id → accepted. An optional cookie left out is refused; a required one left
    /// out is on.
    pub choices: BTreeMap<String, bool>,
    /// The notice version shown: the policy's.
    pub notice: String,
    /// The browser sent `Sec-GPC: 1`.
    pub gpc: bool,
}

/// A recorded cookie choice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieConsent {
    /// Its random id (UUIDv4).
    pub id: String,
    /// Every cookie of the policy → on or off, as recorded (GPC applied).
    pub choices: BTreeMap<String, bool>,
    /// The notice version shown.
    pub notice: String,
    /// SHA-256 of the notice, hex.
    pub notice_sha256: String,
    /// GPC was sent.
    pub gpc: bool,
    /// When, UTC (RFC 3339).
    pub time: String,
    /// The signed receipt (compact JWS).
    pub receipt: String,
    /// The value for the `custos_consent` cookie.
    pub cookie: String,
}

impl CookieConsent {
    fn of(row: CookieConsentRow) -> Self {
        let choices: BTreeMap<String, bool> = row
            .choices
            .split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v == "1"))
            .collect();
        let cookie = std::iter::once(row.id.clone())
            .chain(row.choices.split('&').map(str::to_string))
            .collect::<Vec<_>>()
            .join("|");
        Self {
            id: row.id,
            choices,
            notice: row.notice,
            notice_sha256: row.notice_sha256,
            gpc: row.gpc,
            time: format_date_time(row.time_ms),
            receipt: row.receipt,
            cookie,
        }
    }
}

/// Which aggregates to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// Page views counted by the beacon.
    Pages,
    /// GPC visits.
    Gpc,
    /// Service-health telemetry.
    Telemetry,
}

impl Aggregate {
    fn kind(self) -> &'static str {
        match self {
            Self::Pages => PAGE,
            Self::Gpc => GPC,
            Self::Telemetry => TELEMETRY,
        }
    }
}

fn field(code: &'static str, field: &str, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: field.into(),
        message: message.into(),
    }
}

type Key = (&'static str, String, String);

#[derive(Debug, Default)]
struct Pending {
    counts: HashMap<Key, (i64, i64)>,
    stop: bool,
}

#[derive(Debug)]
struct Shared {
    pending: Mutex<Pending>,
    /// Held through a flush, from taking the counts to the store's commit: a flush that
    /// finds nothing held has waited for the one in progress, so a read after it sees every
    /// count made before it.
    flushing: Mutex<()>,
    wake: Condvar,
    store: Arc<dyn Store>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds what is held to the store; on failure, puts it back (bounded) for the next try.
    fn flush(&self) -> Result<()> {
        let _flushing = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let taken = std::mem::take(&mut self.lock().counts);
        if taken.is_empty() {
            return Ok(());
        }
        let mut rows: Vec<CountRow> = taken
            .iter()
            .map(|((kind, name, day), (count, total))| CountRow {
                kind: (*kind).to_string(),
                name: name.clone(),
                day: day.clone(),
                count: *count,
                total: *total,
            })
            .collect();
        rows.sort_by(|a, b| (&a.kind, &a.day, &a.name).cmp(&(&b.kind, &b.day, &b.name)));
        let r = self.store.add_counts(&rows, MAX_NAMES_PER_DAY, OTHER);
        if r.is_err() {
            let mut p = self.lock();
            for (k, (c, t)) in taken {
                add(&mut p.counts, k, c, t);
            }
        }
        r
    }
}

fn add(map: &mut HashMap<Key, (i64, i64)>, key: Key, count: i64, total: i64) {
    let key = if map.len() >= MAX_PENDING && !map.contains_key(&key) {
        (key.0, OTHER.to_string(), key.2)
    } else {
        key
    };
    let e = map.entry(key).or_insert((0, 0));
    e.0 = e.0.saturating_add(count);
    e.1 = e.1.saturating_add(total);
}

/// The aggregate counter: counts in memory, added to the store by its thread every
/// [`FLUSH_EVERY`] and when dropped.
#[derive(Debug)]
pub(crate) struct Counter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Counter {
    pub(crate) fn start(store: Arc<dyn Store>) -> Result<Self> {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending::default()),
            flushing: Mutex::new(()),
            wake: Condvar::new(),
            store,
        });
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("custos-counts".into())
            .spawn(move || {
                loop {
                    let stop = {
                        let p = s.lock();
                        let (p, _) = s
                            .wake
                            .wait_timeout_while(p, FLUSH_EVERY, |p| !p.stop)
                            .unwrap_or_else(PoisonError::into_inner);
                        p.stop
                    };
                    // A failed flush keeps its counts for the next one.
                    let _ = s.flush();
                    if stop {
                        break;
                    }
                }
            })
            .map_err(|e| Error::Storage(format!("cannot start the counter thread: {e}")))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    fn count(&self, kind: &'static str, name: String, count: i64, total: i64) {
        let day = day_of(now_ms());
        add(
            &mut self.shared.lock().counts,
            (kind, name, day),
            count,
            total,
        );
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn uuid_v4() -> Result<String> {
    let bytes = crate::crypto::random_bytes::<16>()?;
    Ok(uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string())
}

impl Vault {
    /// The policy's cookies as the banner shows them ([`banner_cookies`]).
    pub fn banner_cookies(&self) -> Vec<BannerCookie> {
        banner_cookies(&self.policy)
    }

    /// Records a visitor's cookie choice (see the module's documentation): checked against
    /// the policy (`choices.ID` unknown: `unknown_cookie`; a required cookie refused:
    /// `cookie_required`; the notice: `unknown_notice_version`), ledgered, then stored.
    pub fn record_cookie_consent(&self, input: &CookieChoice) -> Result<CookieConsent> {
        let cookies = self.banner_cookies();
        for (id, on) in &input.choices {
            let Some(c) = cookies.iter().find(|c| &c.id == id) else {
                let names: Vec<&str> = cookies.iter().map(|c| c.id.as_str()).collect();
                return Err(field(
                    "unknown_cookie",
                    &format!("choices.{id}"),
                    format!(
                        "the policy declares no such cookie; its cookies are {}",
                        names.join(", ")
                    ),
                ));
            };
            if c.required && !on {
                return Err(field(
                    "cookie_required",
                    &format!("choices.{id}"),
                    format!(
                        "cookie `{id}` is required: the site does not work without it, so it cannot be refused"
                    ),
                ));
            }
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
        let recorded: Vec<(&BannerCookie, bool)> = cookies
            .iter()
            .map(|c| {
                let chosen = input.choices.get(&c.id).copied().unwrap_or(false);
                let on = c.required || (chosen && !(input.gpc && c.gpc_refused));
                (c, on)
            })
            .collect();
        let id = uuid_v4()?;
        let time_ms = now_ms();
        let choices = recorded
            .iter()
            .map(|(c, on)| format!("{}={}", c.id, u8::from(*on)))
            .collect::<Vec<_>>()
            .join("&");
        let claims =
            serde_json::to_vec(&self.cookie_receipt_claims(&id, &recorded, input, time_ms))
                .map_err(|_| Error::Crypto("a receipt's claims do not encode"))?;
        let receipt = self.receipts.sign(&claims);
        let row = CookieConsentRow {
            id: id.clone(),
            choices,
            notice: input.notice.clone(),
            notice_sha256: self.notice_sha256().to_string(),
            gpc: input.gpc,
            time_ms,
            receipt,
        };
        let mut d = self.draft(VISITOR, COOKIE_CONSENT, "");
        d.time_ms = time_ms;
        d.effect = "recorded".into();
        d.reasons = if input.gpc {
            format!("gpc,receipt:{id}")
        } else {
            format!("receipt:{id}")
        };
        // INVARIANT: audit before data — the entry is durable before the record is stored.
        self.record(d)?;
        self.store.put_cookie_consent(&row)?;
        Ok(CookieConsent::of(row))
    }

    /// A cookie-consent record by its id.
    pub fn cookie_consent(&self, id: &str) -> Result<Option<CookieConsent>> {
        Ok(self.store.cookie_consent(id)?.map(CookieConsent::of))
    }

    fn cookie_receipt_claims(
        &self,
        id: &str,
        recorded: &[(&BannerCookie, bool)],
        input: &CookieChoice,
        time_ms: i64,
    ) -> Value {
        let policy = &self.policy;
        let header = policy.header();
        let contacts = policy.file().contacts.as_ref();
        let email = contacts
            .and_then(|c| c.privacy_email.as_ref())
            .map(|e| e.get_ref().clone())
            .unwrap_or_default();
        let address = contacts
            .map(|c| c.postal_address.join(", "))
            .unwrap_or_default();
        let purposes: Vec<Value> = recorded
            .iter()
            .map(|(c, on)| {
                json!({
                    "purpose": c.purpose_name,
                    "purposeCategory": [c.name],
                    "consentType": if c.required { "IMPLICIT" } else { "EXPLICIT" },
                    "piiCategory": [c.category],
                    "primaryPurpose": c.required,
                    "termination": "until the visitor chooses again in the cookie banner",
                    "thirdPartyDisclosure": false,
                    "custosCookie": c.id,
                    "custosOn": on,
                })
            })
            .collect();
        let choices: BTreeMap<&str, bool> = recorded
            .iter()
            .map(|(c, on)| (c.id.as_str(), *on))
            .collect();
        json!({
            "version": super::consent::RECEIPT_VERSION,
            "jurisdiction": "worldwide",
            "consentTimestamp": time_ms.div_euclid(1000),
            "collectionMethod": if input.gpc { "cookie_banner,gpc_signal" } else { "cookie_banner" },
            "consentReceiptID": id,
            "publicKey": self.receipts.key().x,
            "language": "en",
            "piiPrincipalId": id,
            "piiControllers": [{
                "piiController": header.controller,
                "onBehalf": false,
                "contact": header.controller,
                "address": address,
                "email": email,
                "phone": "",
            }],
            "policyUrl": format!("urn:custos:policy:{}:{}", policy.id(), policy.version()),
            "services": [{"service": header.title, "purposes": purposes}],
            "sensitive": false,
            "spiCat": [],
            "iat": time_ms.div_euclid(1000),
            "jti": id,
            "custos": {
                "cookies": choices,
                "notice": input.notice,
                "noticeSha256": self.notice_sha256(),
                "gpc": input.gpc,
            },
        })
    }

    /// Global Privacy Control from a signed-in person: withdraws their consent to (or
    /// objects to) each sale or sharing purpose ([`sharing_purposes`]), for each subject of
    /// the session, method `gpc_signal`; a purpose whose last record is already such a
    /// refusal, for every recipient, gets no new record. Returns the records made.
    pub fn gpc_opt_out(&self, person: &super::Person) -> Result<Vec<Consent>> {
        let purposes = sharing_purposes(&self.policy);
        let mut made = Vec::new();
        for subject in person.subjects() {
            let Ok(events) = self.store.consents(subject.as_str()) else {
                continue;
            };
            for pid in &purposes {
                let Some(info) = self.policy.purpose(*pid) else {
                    continue;
                };
                let last = events.iter().rev().find(|e| e.purpose == info.id);
                let refused = last.is_some_and(|e| {
                    e.recipient.is_none()
                        && if e.kind == "objection" {
                            e.given
                        } else {
                            !e.given
                        }
                });
                if refused {
                    continue;
                }
                let input = ConsentInput {
                    purpose: info.id.clone(),
                    recipient: None,
                    given: false,
                    method: "gpc_signal".into(),
                    notice: self.policy.version().to_string(),
                };
                match self.record_consent(Requester::Person(person), subject, &input) {
                    Ok(change) => made.push(change.consent),
                    // Erased since the session began: nothing to refuse.
                    Err(Error::SubjectNotFound) => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(made)
    }

    /// Counts a page view of the beacon (already normalised, [`normalize_page`]) for today.
    pub fn count_page(&self, page: &str) {
        self.counter.count(PAGE, page.to_string(), 1, 0);
    }

    /// Counts a visit that carried GPC for today.
    pub fn count_gpc_visit(&self) {
        self.counter.count(GPC, GPC.to_string(), 1, 0);
    }

    /// Adds a service's telemetry report (C035): `count` occurrences of a metric of
    /// [`TELEMETRY_METRICS`], and the sum of their values. Only an internal accessor allowed
    /// [`TELEMETRY_PURPOSE`] may (`purpose_not_allowed_for_accessor`, ledgered); the count
    /// names the accessor and the metric, nothing else.
    pub fn record_telemetry(
        &self,
        actor: Actor<'_>,
        metric: &str,
        count: u64,
        value: u64,
    ) -> Result<()> {
        let service = self.analytics_accessor(actor, TELEMETRY_PURPOSE, false)?;
        if !TELEMETRY_METRICS.contains(&metric) {
            return Err(field(
                "unknown_metric",
                "metric",
                format!("name the metric as one of {}", TELEMETRY_METRICS.join(", ")),
            ));
        }
        if count == 0 || count > MAX_TELEMETRY_COUNT {
            return Err(field(
                "invalid_count",
                "count",
                format!("a report counts 1 to {MAX_TELEMETRY_COUNT}"),
            ));
        }
        if value > MAX_TELEMETRY_VALUE {
            return Err(field(
                "invalid_count",
                "value",
                format!("a report's value is at most {MAX_TELEMETRY_VALUE}"),
            ));
        }
        self.counter.count(
            TELEMETRY,
            format!("{service}/{metric}"),
            i64::try_from(count).unwrap_or(i64::MAX),
            i64::try_from(value).unwrap_or(i64::MAX),
        );
        Ok(())
    }

    /// The accessor, if it is internal and allowed (`declared`: declared for) the purpose;
    /// else the refusal is ledgered and answered `purpose_not_allowed_for_accessor`.
    fn analytics_accessor<'a>(
        &self,
        actor: Actor<'a>,
        purpose: &str,
        declared: bool,
    ) -> Result<&'a str> {
        let ok = self
            .policy
            .accessor_id(actor.accessor)
            .ok()
            .and_then(|a| self.policy.accessor(a))
            .zip(self.policy.purpose_id(purpose).ok())
            .is_some_and(|(a, p)| {
                a.recipient.is_none()
                    && actor.tenant.is_none()
                    && if declared {
                        a.declared.contains(p)
                    } else {
                        a.allowed.contains(p)
                    }
            });
        if ok {
            return Ok(actor.accessor);
        }
        let mut d = self.draft(
            self.declared_accessor(actor.accessor),
            if declared { READ_AGGREGATES } else { TELEMETRY },
            "",
        );
        d.purpose = purpose.into();
        d.effect = "refused".into();
        d.reasons = "purpose_not_allowed_for_accessor".into();
        self.record(d)?;
        Err(Error::invalid(
            "purpose_not_allowed_for_accessor",
            format!(
                "the policy does not let accessor `{}` pursue `{purpose}`",
                self.declared_accessor(actor.accessor)
            ),
        ))
    }

    /// Adds the counts held in memory to the store now (the counter's thread does every
    /// [`FLUSH_EVERY`], and on drop).
    pub fn flush_counts(&self) -> Result<()> {
        self.counter.shared.flush()
    }

    /// The aggregates of a kind for the days `from..=to` (`YYYY-MM-DD`), at most `limit`
    /// rows; for an internal accessor declared for [`ANALYTICS_PURPOSE`] only. Flushes the
    /// counts held first; ledgered (`read_aggregates`, no subject).
    pub fn aggregates(
        &self,
        actor: Actor<'_>,
        which: Aggregate,
        from: &str,
        to: &str,
        limit: u64,
    ) -> Result<Vec<CountRow>> {
        let accessor = self.analytics_accessor(actor, ANALYTICS_PURPOSE, true)?;
        let mut d = self.draft(accessor, READ_AGGREGATES, "");
        d.purpose = ANALYTICS_PURPOSE.into();
        d.effect = "permit".into();
        d.reasons = which.kind().into();
        self.record(d)?;
        self.flush_counts()?;
        self.store.counts(which.kind(), from, to, limit)
    }
}
