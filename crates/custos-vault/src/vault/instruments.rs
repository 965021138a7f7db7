//! Legal instruments as records (issue 12, item 4): staff register a court order, subpoena,
//! authority request, fraud case or purchaser authority — its issuer, date, document hash,
//! the subjects and categories it covers, its expiry — and get its id. A purpose that
//! requires a reference (`requires_reference`, every `legal` one) is then decided with the
//! instrument the reference names ([`Vault::reference_for`] → `Policy::decide_with`): it must
//! be registered, cover the subject, be unexpired, be of a kind the purpose accepts
//! (`instruments` in the policy) and cover the categories used; anything else is withheld
//! with `instrument_unknown`, `instrument_expired`, `instrument_kind` or `instrument_scope`.
//!
//! Who registers: an accessor the policy lets pursue a purpose that accepts the kind, acting
//! for no tenant and for no external recipient (staff; `Policy::registrable_instruments`),
//! and the operator (`custos instruments register`). Registration is ledgered, one
//! `instrument_register` entry per subject covered (the kind and `instrument:<id>` in its
//! reasons, never the issuer), before the instrument is stored; each use is ledgered by the
//! read or decision it decided (`instrument:<id>` in its reasons).
//!
//! **Invariant:** an erased subject is covered by no instrument ([`crate::store::Store::instrument`] skips
//! it), so a reference answers for it as for a subject it never named.

use custos_policy::{CategorySet, InstrumentKind, InstrumentKinds, Reference};
use uuid::Uuid;

use super::{Actor, OPERATOR, SubjectId, Vault, declared_or, uuid_v7};
use crate::crypto::Entropy;
use crate::error::{Error, Result};
use crate::ledger::Draft;
use crate::store::{InstrumentRow, Status, now_ms};

/// Subjects one instrument covers at most.
pub const MAX_INSTRUMENT_SUBJECTS: usize = 1000;
/// Characters of an issuer's name at most.
pub const MAX_ISSUER_CHARS: usize = 128;
/// The ledger action of a registration.
pub const INSTRUMENT_REGISTER: &str = "instrument_register";
/// The ledger action of a look at a registered instrument.
pub const INSTRUMENT_SHOW: &str = "instrument_show";
/// How far ahead of the vault's clock an instrument's issue date may be (a court in another
/// time zone may already be on the next day).
const ISSUED_AHEAD_MS: i64 = 86_400_000;

/// A legal instrument, as staff register it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstrumentInput {
    /// `court_order`, `subpoena`, `authority_request`, `fraud_case` or `purchaser_authority`.
    pub kind: String,
    /// Who issued it (a court, an authority, the fraud team): 1 to 128 characters.
    pub issuer: String,
    /// The day it was issued, `YYYY-MM-DD`.
    pub issued: String,
    /// SHA-256 of the document, 64 hex digits.
    pub document_sha256: String,
    /// The subjects it covers, at least one, each a subject the vault holds.
    pub subjects: Vec<String>,
    /// The categories it covers, at least one, each declared by the policy.
    pub categories: Vec<String>,
    /// When it expires: an RFC 3339 date-time, after the issue date, in the future.
    pub expires: String,
}

/// A registered legal instrument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instrument {
    /// Its id (a UUIDv7): the `reference` a read for a legal purpose names.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Who issued it.
    pub issuer: String,
    /// The day it was issued, `YYYY-MM-DD`.
    pub issued: String,
    /// SHA-256 of the document, lowercase hex.
    pub document_sha256: String,
    /// The subjects it covers (erased ones are no longer listed).
    pub subjects: Vec<String>,
    /// The categories it covers.
    pub categories: Vec<String>,
    /// When it expires, RFC 3339 in UTC.
    pub expires: String,
    /// Whether it has expired.
    pub expired: bool,
    /// The accessor that registered it, or `operator`.
    pub registered_by: String,
    /// When it was registered, RFC 3339 in UTC.
    pub registered: String,
}

/// Who registers or looks: an accessor's key, or the operator at the command line.
#[derive(Debug, Clone, Copy)]
enum Registrar<'a> {
    Operator,
    Accessor(Actor<'a>),
}

fn field_err(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Error {
    Error::InvalidField {
        code,
        field: field.into(),
        message: message.into(),
    }
}

fn not_allowed() -> Error {
    Error::invalid(
        "instrument_not_allowed",
        "this accessor may not register legal instruments of this kind; staff who pursue a purpose accepting the kind do",
    )
}

fn not_found() -> Error {
    Error::invalid("instrument_not_found", "no such legal instrument")
}

impl Vault {
    /// Registers a legal instrument for an accessor's key; returns it with its id. Refused
    /// (`instrument_not_allowed`) unless the policy lets the accessor register the kind
    /// (`Policy::registrable_instruments`); each field checked, an error naming it.
    /// Ledgered, one entry per subject, before it is stored; a refusal is ledgered too.
    pub fn register_instrument<'a>(
        &self,
        actor: impl Into<Actor<'a>>,
        input: &InstrumentInput,
    ) -> Result<Instrument> {
        self.register(Registrar::Accessor(actor.into()), input)
    }

    /// [`Vault::register_instrument`] by the operator (`custos instruments register`), who
    /// may register every kind.
    pub fn register_instrument_as_operator(&self, input: &InstrumentInput) -> Result<Instrument> {
        self.register(Registrar::Operator, input)
    }

    /// A registered instrument, for the accessor that registered it or staff (an accessor
    /// that may register instruments); to anyone else, as to an unknown id,
    /// `instrument_not_found`. Ledgered.
    pub fn instrument<'a>(&self, actor: impl Into<Actor<'a>>, id: &str) -> Result<Instrument> {
        self.show(Registrar::Accessor(actor.into()), id)
    }

    /// [`Vault::instrument`] for the operator.
    pub fn instrument_as_operator(&self, id: &str) -> Result<Instrument> {
        self.show(Registrar::Operator, id)
    }

    /// The kinds `who` may register.
    fn registrable(&self, who: Registrar<'_>) -> Result<InstrumentKinds> {
        match who {
            Registrar::Operator => Ok(InstrumentKinds::ALL),
            Registrar::Accessor(a) => {
                let id = self
                    .policy
                    .accessor_id(a.accessor)
                    .map_err(|e| Error::invalid("unknown_accessor", e.message))?;
                // A key made for a tenant acts for that customer, never as staff.
                if a.tenant.is_some() {
                    return Ok(InstrumentKinds::EMPTY);
                }
                Ok(self.policy.registrable_instruments(id))
            }
        }
    }

    fn ledger_actor<'a>(&self, who: Registrar<'a>) -> &'a str {
        match who {
            Registrar::Operator => OPERATOR,
            Registrar::Accessor(a) => self.declared_accessor(a.accessor),
        }
    }

    fn register(&self, who: Registrar<'_>, input: &InstrumentInput) -> Result<Instrument> {
        let actor = self.ledger_actor(who);
        let checked = self.check_instrument(who, input);
        let (kind, row) = match checked {
            Ok(x) => x,
            Err(e) => {
                let mut d = self.draft(actor, INSTRUMENT_REGISTER, "");
                d.effect = "refused".into();
                d.reasons = e.code().into();
                self.record(d)?;
                return Err(e);
            }
        };
        let tag = format!("{},instrument:{}", kind.as_str(), row.id);
        let drafts: Vec<Draft> = row
            .subjects
            .iter()
            .map(|s| {
                let mut d = self.draft(actor, INSTRUMENT_REGISTER, s);
                d.categories = row.categories.join(",");
                d.effect = "done".into();
                d.reasons.clone_from(&tag);
                d
            })
            .collect();
        // INVARIANT: audit before data — the entries are durable before the instrument is
        // stored (a failed store is ledgered as such).
        self.ledger.append_many(drafts)?;
        if let Err(e) = self.store.put_instrument(&row) {
            let mut d = self.draft(actor, INSTRUMENT_REGISTER, "");
            d.effect = "failed".into();
            d.reasons = format!("{},instrument:{}", e.code(), row.id);
            self.record(d)?;
            return Err(e);
        }
        Ok(view(row))
    }

    /// Every check of a registration, in the order a caller fixes them: who, kind, then
    /// each field. Returns the kind and the row to store.
    fn check_instrument(
        &self,
        who: Registrar<'_>,
        input: &InstrumentInput,
    ) -> Result<(InstrumentKind, InstrumentRow)> {
        let allowed = self.registrable(who)?;
        if allowed.is_empty() {
            return Err(not_allowed());
        }
        let kind = InstrumentKind::parse(&input.kind).ok_or_else(|| {
            let hint = InstrumentKind::nearest(&input.kind)
                .map(|n| format!("did you mean `{n}`? "))
                .unwrap_or_default();
            field_err(
                "invalid_instrument_kind",
                "kind",
                format!(
                    "unknown instrument kind; {hint}expected one of {}",
                    InstrumentKind::NAMES.join(", ")
                ),
            )
        })?;
        if !allowed.contains(kind) {
            return Err(not_allowed());
        }
        let issuer = &input.issuer;
        if issuer.trim().is_empty()
            || issuer.trim() != issuer
            || issuer.chars().count() > MAX_ISSUER_CHARS
            || issuer.chars().any(char::is_control)
        {
            return Err(field_err(
                "invalid_issuer",
                "issuer",
                format!(
                    "name the issuer in 1 to {MAX_ISSUER_CHARS} characters, without control characters or surrounding spaces"
                ),
            ));
        }
        let issued_day = parse_date(&input.issued).ok_or_else(|| {
            field_err(
                "invalid_date",
                "issued",
                "write the issue date as `YYYY-MM-DD`",
            )
        })?;
        let now = now_ms();
        let issued_ms = issued_day.saturating_mul(MS_PER_DAY);
        if issued_ms > now.saturating_add(ISSUED_AHEAD_MS) {
            return Err(field_err(
                "invalid_date",
                "issued",
                "the issue date is in the future",
            ));
        }
        let hash = &input.document_sha256;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(field_err(
                "invalid_document_hash",
                "document_sha256",
                "give the SHA-256 of the document as 64 hex digits",
            ));
        }
        let expires_ms = parse_date_time(&input.expires).ok_or_else(|| {
            field_err(
                "invalid_date",
                "expires",
                "write the expiry as an RFC 3339 date-time, e.g. `2027-01-31T23:59:59Z`",
            )
        })?;
        if expires_ms <= now || expires_ms <= issued_ms {
            return Err(field_err(
                "invalid_expiry",
                "expires",
                "the expiry must be in the future and after the issue date",
            ));
        }
        if input.categories.is_empty() {
            return Err(field_err(
                "categories_required",
                "categories",
                "name at least one category the instrument covers",
            ));
        }
        let mut categories = CategorySet::EMPTY;
        for (i, c) in input.categories.iter().enumerate() {
            let id = self.policy.category_id(c).map_err(|e| {
                field_err("unknown_category", format!("categories[{i}]"), e.message)
            })?;
            categories.insert(id);
        }
        if input.subjects.is_empty() {
            return Err(field_err(
                "subjects_required",
                "subjects",
                "name at least one subject the instrument covers",
            ));
        }
        if input.subjects.len() > MAX_INSTRUMENT_SUBJECTS {
            return Err(field_err(
                "too_many_subjects",
                "subjects",
                format!(
                    "an instrument covers at most {MAX_INSTRUMENT_SUBJECTS} subjects; register several"
                ),
            ));
        }
        let mut subjects: Vec<String> = Vec::with_capacity(input.subjects.len());
        for (i, s) in input.subjects.iter().enumerate() {
            let field = format!("subjects[{i}]");
            // Not a subject id at all: answered as an id of no one (a body that names one is
            // well-formed, whatever the id).
            let id = SubjectId::parse(s).map_err(|_| {
                field_err(
                    "unknown_subject",
                    field.clone(),
                    "no such subject; a subject id is a lowercase uuid",
                )
            })?;
            // INVARIANT: an instrument covers people the vault holds; an erased one, or one
            // out of the caller's reach, is one it never held.
            let held = self.store.subject(id.as_str())?.is_some_and(|row| {
                row.status != Status::Erased
                    && match who {
                        Registrar::Operator => true,
                        Registrar::Accessor(a) => self.reaches(a, None, &row.tenants).is_ok(),
                    }
            });
            if !held {
                return Err(field_err("unknown_subject", field, "no such subject"));
            }
            if !subjects.contains(&id.0) {
                subjects.push(id.0);
            }
        }
        let id = uuid_v7(&mut Entropy::new())?;
        let registered_by = match who {
            Registrar::Operator => OPERATOR.to_string(),
            Registrar::Accessor(a) => a.accessor.to_string(),
        };
        Ok((
            kind,
            InstrumentRow {
                id: id.hyphenated().to_string(),
                kind: kind.as_str().to_string(),
                issuer: issuer.clone(),
                issued: input.issued.clone(),
                document_sha256: hash.to_ascii_lowercase(),
                subjects,
                categories: self
                    .policy
                    .category_names(categories)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                expires_ms,
                registered_by,
                created_ms: now,
            },
        ))
    }

    fn show(&self, who: Registrar<'_>, id: &str) -> Result<Instrument> {
        let actor = self.ledger_actor(who);
        let found = match instrument_id(id) {
            Some(id) => self.store.instrument(&id, None)?,
            None => None,
        };
        let allowed = |row: &InstrumentRow| -> Result<bool> {
            Ok(match who {
                Registrar::Operator => true,
                Registrar::Accessor(a) => {
                    (a.tenant.is_none() && row.registered_by == a.accessor)
                        || !self.registrable(who)?.is_empty()
                }
            })
        };
        let mut d = self.draft(actor, INSTRUMENT_SHOW, "");
        let row = match found {
            Some(row) if allowed(&row)? => row,
            // Another accessor learns nothing, not even that the id is registered.
            _ => {
                d.effect = "refused".into();
                d.reasons = "instrument_not_found".into();
                self.record(d)?;
                return Err(not_found());
            }
        };
        d.effect = "done".into();
        d.reasons = format!("instrument:{}", row.id);
        self.record(d)?;
        Ok(view(row))
    }

    /// What the reference a request names is, for a purpose that requires one: nothing,
    /// no registered instrument covering this subject, an expired one, or an instrument (its
    /// kind and categories). With it, the registered instrument's id, for the ledger entry
    /// of the use (an unregistered reference is never ledgered: it could be anything).
    pub(crate) fn reference_for(
        &self,
        reference: Option<&str>,
        subject: &SubjectId,
    ) -> Result<(Reference, Option<String>)> {
        let Some(given) = reference.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok((Reference::Absent, None));
        };
        let Some(id) = instrument_id(given) else {
            return Ok((Reference::Unknown, None));
        };
        let Some(row) = self.store.instrument(&id, Some(subject.as_str()))? else {
            return Ok((Reference::Unknown, None));
        };
        let Some(kind) = InstrumentKind::parse(&row.kind) else {
            return Ok((Reference::Unknown, None));
        };
        let tag = Some(row.id);
        if row.expires_ms <= now_ms() {
            return Ok((Reference::Expired, tag));
        }
        // A category the policy no longer declares covers nothing.
        let categories: CategorySet = row
            .categories
            .iter()
            .filter_map(|c| self.policy.category_id(c).ok())
            .collect();
        Ok((
            Reference::Instrument(custos_policy::Instrument { kind, categories }),
            tag,
        ))
    }
}

/// The ledger tag of an instrument used by a decision: `instrument:<id>`, appended to the
/// entry's reasons.
pub(crate) fn tag_reasons(reasons: &mut String, instrument: Option<&str>) {
    if let Some(id) = instrument {
        if !reasons.is_empty() {
            reasons.push(',');
        }
        reasons.push_str("instrument:");
        reasons.push_str(declared_or(instrument_id(id).is_some(), id));
    }
}

/// An instrument id in its canonical text (lowercase, hyphenated), if `s` is a UUID.
fn instrument_id(s: &str) -> Option<String> {
    Uuid::try_parse(s).ok().map(|u| u.hyphenated().to_string())
}

fn view(row: InstrumentRow) -> Instrument {
    Instrument {
        expired: row.expires_ms <= now_ms(),
        expires: format_date_time(row.expires_ms),
        registered: format_date_time(row.created_ms),
        id: row.id,
        kind: row.kind,
        issuer: row.issuer,
        issued: row.issued,
        document_sha256: row.document_sha256,
        subjects: row.subjects,
        categories: row.categories,
        registered_by: row.registered_by,
    }
}

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date (year, month, day) of a day counted from 1970-01-01
/// (H. Hinnant's `civil_from_days`).
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `YYYY-MM-DD`, a real day: days since 1970-01-01.
fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    let y = digits(s.get(0..4)?)?;
    let m = digits(s.get(5..7)?)?;
    let d = digits(s.get(8..10)?)?;
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days_in_month)
        .contains(&d)
        .then(|| days_from_civil(y, m, d))
}

/// An RFC 3339 date-time (`2027-01-31T23:59:59Z`, `…T23:59:59.5+02:00`): ms since the epoch.
/// A leap second counts as the second before it.
fn parse_date_time(s: &str) -> Option<i64> {
    let day = parse_date(s.get(0..10)?)?;
    let rest = s.get(10..)?;
    let rest = rest.strip_prefix(['T', 't'])?;
    let b = rest.as_bytes();
    if b.len() < 9 || b.get(2) != Some(&b':') || b.get(5) != Some(&b':') {
        return None;
    }
    let h = digits(rest.get(0..2)?)?;
    let mi = digits(rest.get(3..5)?)?;
    let sec = digits(rest.get(6..8)?)?;
    if h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut tail = rest.get(8..)?;
    let mut ms = 0;
    if let Some(frac) = tail.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        let first3: String = frac.get(..n)?.chars().take(3).collect();
        ms = digits(&first3)? * 10_i64.pow(3 - u32::try_from(first3.len()).ok()?);
        tail = frac.get(n..)?;
    }
    let offset_min = match tail {
        "Z" | "z" => 0,
        _ => {
            let sign = match tail.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if tail.len() != 6 || tail.as_bytes().get(3) != Some(&b':') {
                return None;
            }
            let oh = digits(tail.get(1..3)?)?;
            let om = digits(tail.get(4..6)?)?;
            if oh > 23 || om > 59 {
                return None;
            }
            sign * (oh * 60 + om)
        }
    };
    let secs = day * 86_400 + h * 3600 + mi * 60 + sec.min(59) - offset_min * 60;
    Some(secs * 1000 + ms)
}

/// Milliseconds since the epoch as an RFC 3339 date-time in UTC: `2027-01-31T23:59:59Z`, with
/// `.mmm` when not whole seconds (`2026-12-03T16:41:37.123Z`).
pub fn format_date_time(ms: i64) -> String {
    let (y, m, d) = civil_from_days(ms.div_euclid(MS_PER_DAY));
    let in_day = ms.rem_euclid(MS_PER_DAY);
    let (h, mi, s, milli) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    if !(0..=9999).contains(&y) {
        return format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z");
    }
    // Written digit by digit: an export formats a time per record and per ledger entry, and
    // `format!` was a tenth of it.
    let mut out = String::with_capacity(24);
    for (sep, v, n) in [
        ('\0', y, 4),
        ('-', m, 2),
        ('-', d, 2),
        ('T', h, 2),
        (':', mi, 2),
        (':', s, 2),
    ] {
        if sep != '\0' {
            out.push(sep);
        }
        push_digits(&mut out, v, n);
    }
    if milli != 0 {
        out.push('.');
        push_digits(&mut out, milli, 3);
    }
    out.push('Z');
    out
}

/// `v` (0 ≤ v < 10^n) as `n` decimal digits.
fn push_digits(out: &mut String, v: i64, n: u32) {
    for k in (0..n).rev() {
        let digit = v.div_euclid(10_i64.pow(k)).rem_euclid(10);
        out.push(char::from(b'0' + u8::try_from(digit).unwrap_or(0)));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]
    use super::*;

    #[test]
    fn dates_and_date_times_parse_as_rfc_3339_says() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        for bad in [
            "2023-02-29",
            "2024-13-01",
            "2024-00-10",
            "2024-1-01",
            "24-01-01",
            "2024-01-32",
            "２０２４-01-01",
            "",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
        let t = parse_date_time("2027-01-31T23:59:59Z").unwrap();
        assert_eq!(format_date_time(t), "2027-01-31T23:59:59Z");
        assert_eq!(format_date_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            format_date_time(1_796_288_751_642),
            "2026-12-03T09:05:51.642Z"
        );
        assert_eq!(format_date_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            parse_date_time("2027-02-01T01:59:59+02:00"),
            Some(t),
            "offsets"
        );
        assert_eq!(parse_date_time("2027-01-31t23:59:59.250z"), Some(t + 250));
        assert_eq!(parse_date_time("2027-01-31T23:59:60Z"), Some(t), "leap");
        assert_eq!(
            format_date_time(parse_date_time("1999-12-31T00:00:00.5-00:30").unwrap()),
            "1999-12-31T00:30:00.500Z"
        );
        for bad in [
            "2027-01-31",
            "2027-01-31T24:00:00Z",
            "2027-01-31T23:59:59",
            "2027-01-31T23:59:59.Z",
            "2027-01-31T23:59:59+2:00",
            "2027-01-31 23:59:59Z",
            "2027-01-31T23:59:59+24:00",
        ] {
            assert_eq!(parse_date_time(bad), None, "{bad}");
        }
        for days in [-1000_i64, 0, 1, 19_782, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
