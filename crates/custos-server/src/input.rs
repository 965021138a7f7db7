//! Request bodies (typed, through serde) and query strings, so that every error names the
//! field at fault and none echoes a value (a value may be personal information).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use custos_policy::source::{MAX_NAME_LEN, quote};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::problem::Problem;

/// Fields and query parameters whose strings are names (of the policy's elements, a notice
/// version, a tenant, a reference): each at most [`MAX_NAME_LEN`] bytes, refused before any
/// lookup, so no name costs a search for the nearest id or comes back in an answer at length.
/// `categories` is a list in a query (`a,b`): each item is a name.
const NAME_FIELDS: &[&str] = &[
    "service",
    "role",
    "purpose",
    "purposes",
    "notice",
    "collection",
    "recipient",
    "tenant",
    "reference",
    "categories",
];

/// The most bytes of one collected value.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// Marks a collected value over [`MAX_VALUE_BYTES`].
const VALUE_TOO_LARGE: &str = "custos:value_too_large";

/// A name longer than any: counted in characters, as JSON Schema's `maxLength` counts (the
/// document promises 128), so at most 512 bytes.
fn too_long_name(s: &str) -> bool {
    s.len() > MAX_NAME_LEN && s.chars().count() > MAX_NAME_LEN
}

fn too_long(field: &str) -> Problem {
    Problem::field(
        "name_too_long",
        field,
        format!("`{field}` is longer than {MAX_NAME_LEN} bytes; no name is"),
    )
}

/// Refuses a name longer than [`MAX_NAME_LEN`] in a name field.
fn name(field: &str, item: &str, value: &str) -> Result<(), Problem> {
    if too_long_name(value) && NAME_FIELDS.contains(&field) {
        return Err(too_long(item));
    }
    Ok(())
}

/// A key or parameter name the client sent, as a field of a problem: bounded and escaped.
fn echo(key: &str) -> String {
    quote(key).at_most(MAX_NAME_LEN).to_string()
}

/// Marks a deserialization error raised by [`Name`] or [`DataMap`] for a name over
/// [`MAX_NAME_LEN`] bytes: the mapping below turns it into `name_too_long`.
const TOO_LONG: &str = "custos:name_too_long";
/// Marks a key given twice in an object.
const DUPLICATE: &str = "custos:duplicate_key";
const REPEATED: &str = "custos:repeated_item";

/// A request body of type `T`: `Content-Type: application/json` (or `application/*+json`)
/// else `415`; at most the configured size else `413`; then parsed by serde, unknown fields
/// and duplicate keys refused (the body types say `deny_unknown_fields`; [`DataMap`] and
/// serde's derive refuse duplicates). A problem names the JSON path at fault in `field`
/// (`purposes[1]`, `data.contact.phone`) and never quotes a value (a value may be personal
/// information): serde's messages are reduced to what the schema expected.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(Problem::new(
                "unsupported_media_type",
                "send the body as json with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(
                    "body_too_large",
                    format!("send at most {} bytes", state.0.config.body_limit),
                )
            } else {
                Problem::new("invalid_json", "the body could not be read")
            }
        })?;
        parse(&bytes).map(Self)
    }
}

/// For an optional field the document marks not nullable: absent is `None` (with
/// `#[serde(default)]`), `null` is refused as the wrong type, like any other value that is
/// not one (`#[serde(default, deserialize_with = "crate::input::present")]`).
pub fn present<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(d).map(Some)
}

/// A request body that may be left out: none (`Content-Length: 0`, or neither a length, a
/// transfer encoding nor a content type) is `None`; anything else is a [`JsonBody`], checked
/// as one.
#[derive(Debug)]
pub struct OptionalJsonBody<T>(pub Option<T>);

impl<T: DeserializeOwned> FromRequest<AppState> for OptionalJsonBody<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
        let h = req.headers();
        let length = h.get(header::CONTENT_LENGTH);
        let empty = length.is_some_and(|v| v.as_bytes() == b"0")
            || (length.is_none()
                && h.get(header::TRANSFER_ENCODING).is_none()
                && h.get(header::CONTENT_TYPE).is_none());
        if empty {
            return Ok(Self(None));
        }
        JsonBody::from_request(req, state)
            .await
            .map(|JsonBody(t)| Self(Some(t)))
    }
}

/// Parses a body, each error as a problem naming its JSON path.
pub fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    // Every body is an object (serde would take a struct from an array too).
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(Problem::new(
            "invalid_json",
            "the body must be a json object",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut *de).map_err(problem)?;
    de.end().map_err(|e| {
        Problem::new(
            "invalid_json",
            format!(
                "the body has more after its json value (line {}, column {})",
                e.line(),
                e.column()
            ),
        )
    })?;
    Ok(value)
}

/// The text between the first pair of backticks of a serde message: a field name.
fn ticked(message: &str) -> Option<&str> {
    let rest = message.split_once('`')?.1;
    Some(rest.split_once('`')?.0)
}

/// `parent.name`, or `name` at the top.
fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() || parent == "." {
        name.to_string()
    } else {
        format!("{parent}.{name}")
    }
}

fn problem(e: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    // The path can hold the client's own keys (of `data`, or a field no route takes):
    // bounded and escaped, like every name a problem repeats.
    let path = echo(&e.path().to_string());
    let inner = e.into_inner();
    if !inner.is_data() {
        // A syntax error, or the body ended early: only the position is passed on
        // (serde_json's messages can quote the input).
        return Problem::new(
            "invalid_json",
            format!(
                "the body is not valid json (line {}, column {})",
                inner.line(),
                inner.column()
            ),
        );
    }
    // serde_json appends the position; the kind of error is what comes before it.
    let full = inner.to_string();
    let message = full
        .rsplit_once(" at line ")
        .map_or(full.as_str(), |(m, _)| m);
    let top = path.is_empty() || path == ".";
    if message.starts_with(TOO_LONG) {
        let field = if top { "body".to_string() } else { path };
        return Problem::field(
            "name_too_long",
            field.clone(),
            format!("`{field}` is longer than {MAX_NAME_LEN} bytes; no name is"),
        );
    }
    if message.starts_with(VALUE_TOO_LARGE) {
        return Problem::field(
            "value_too_large",
            path.clone(),
            format!("`{path}` holds more than {MAX_VALUE_BYTES} bytes"),
        );
    }
    if message.starts_with(DUPLICATE) {
        return Problem::field(
            "duplicate_field",
            path.clone(),
            format!("`{path}` gives a key twice; give each once"),
        );
    }
    if message.starts_with(REPEATED) {
        return Problem::field(
            "duplicate_item",
            path.clone(),
            format!("`{path}` lists a name twice; list each once"),
        );
    }
    if let Some(rest) = message.strip_prefix("missing field ") {
        let field = join(&path, ticked(rest).unwrap_or("?"));
        return Problem::field(
            "missing_field",
            field.clone(),
            format!("`{field}` is required"),
        );
    }
    if let Some(rest) = message.strip_prefix("duplicate field ") {
        // The path is the object's; the field is one the body type declares.
        let field = join(&path, ticked(rest).unwrap_or("?"));
        return Problem::field(
            "duplicate_field",
            field.clone(),
            format!("`{field}` is given twice; give it once"),
        );
    }
    if message.starts_with("unknown field ") {
        // The path ends with the field no route takes.
        let field = path;
        return Problem::field(
            "unknown_field",
            field.clone(),
            format!("this route takes no field `{field}`"),
        );
    }
    if top {
        return Problem::new("invalid_json", "the body must be a json object");
    }
    // "invalid type: string \"…\", expected …": only what was expected, never the value.
    let expected = message
        .rsplit_once("expected ")
        .map_or("another value", |(_, e)| e)
        .trim_end_matches(|c: char| c == '.' || c.is_whitespace());
    let expected = if expected.starts_with("struct ") || expected.starts_with("a map") {
        "an object"
    } else {
        expected
    };
    Problem::field(
        "invalid_field",
        path.clone(),
        format!("`{path}` must be {expected}"),
    )
}

/// A name: of an element of the policy, a notice version, a tenant or a reference; at most
/// 128 bytes.
// At most `MAX_NAME_LEN` bytes, refused before any lookup, so no name costs a search for the
// nearest id or comes back in an answer at length.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, ToSchema)]
#[schema(value_type = String)]
pub struct Name(pub String);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if too_long_name(&s) {
            return Err(serde::de::Error::custom(TOO_LONG));
        }
        Ok(Self(s))
    }
}

/// A list of names, each at most once (a repeated name is a client's mistake, and the
/// document bounds a list by the number of names the policy declares).
#[derive(Debug, Clone, Default, PartialEq, Eq, ToSchema)]
#[schema(value_type = Vec<String>)]
pub struct Names(pub Vec<Name>);

impl<'de> Deserialize<'de> for Names {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = Vec::<Name>::deserialize(d)?;
        let mut seen = std::collections::BTreeSet::new();
        if list.iter().any(|n| !seen.insert(n.0.as_str())) {
            return Err(serde::de::Error::custom(REPEATED));
        }
        Ok(Self(list))
    }
}

impl Names {
    /// The names as strings.
    pub fn strings(self) -> Vec<String> {
        self.0.into_iter().map(|n| n.0).collect()
    }
}

/// Category → value, each category once.
#[derive(Debug, Clone, Default, ToSchema)]
#[schema(value_type = std::collections::BTreeMap<String, String>)]
pub struct DataMap(pub BTreeMap<String, String>);

impl<'de> Deserialize<'de> for DataMap {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = DataMap;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of category: value")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<DataMap, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(k) = m.next_key::<String>()? {
                    if too_long_name(&k) {
                        return Err(serde::de::Error::custom(TOO_LONG));
                    }
                    if out.contains_key(&k) {
                        return Err(serde::de::Error::custom(DUPLICATE));
                    }
                    let v: String = m.next_value()?;
                    if v.len() > MAX_VALUE_BYTES {
                        return Err(serde::de::Error::custom(VALUE_TOO_LARGE));
                    }
                    out.insert(k, v);
                }
                Ok(DataMap(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// An age in years: a whole number (`89` or `89.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ToSchema)]
#[schema(value_type = u32)]
pub struct Age(pub u32);

impl<'de> Deserialize<'de> for Age {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl serde::de::Visitor<'_> for Visit {
            type Value = Age;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a whole number from 0 to 4294967295")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Age, E> {
                u32::try_from(v).map(Age).map_err(|_| E::custom(WHOLE))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Age, E> {
                u32::try_from(v).map(Age).map_err(|_| E::custom(WHOLE))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Age, E> {
                if v.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(&v) {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a whole number within u32's range, checked above"
                    )]
                    Ok(Age(v as u32))
                } else {
                    Err(E::custom(WHOLE))
                }
            }
        }
        d.deserialize_any(Visit)
    }
}

/// What an [`Age`] out of range is told (the value is not quoted).
const WHOLE: &str = "invalid value, expected a whole number from 0 to 4294967295";

/// Query parameters, taken one by one; each at most once.
#[derive(Debug)]
pub struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Result<Self, Problem> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        for part in raw.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').unwrap_or((part, ""));
            let k = decode(k)?;
            let v = decode(v)?;
            if pairs.iter().any(|(seen, _)| *seen == k) {
                return Err(Problem::field(
                    "invalid_query",
                    echo(&k),
                    format!("give `{}` once", quote(&k)),
                ));
            }
            if k == "categories" {
                for item in list(&v) {
                    name(&k, &k, &item)?;
                }
            } else {
                name(&k, &k, &v)?;
            }
            pairs.push((k, v));
        }
        Ok(Self { pairs })
    }

    /// An optional parameter.
    pub fn opt(&mut self, name: &str) -> Option<String> {
        let i = self.pairs.iter().position(|(k, _)| k == name)?;
        Some(self.pairs.swap_remove(i).1)
    }

    /// A page's `limit`: a whole number from 1 to `max`; 0 when absent (the vault's
    /// default); `invalid_query` on the field `limit` otherwise.
    pub fn limit(&mut self, max: u64) -> Result<u64, Problem> {
        match self.opt("limit") {
            None => Ok(0),
            Some(l) => match l.parse::<u64>() {
                Ok(n) if (1..=max).contains(&n) => Ok(n),
                _ => Err(Problem::field(
                    "invalid_query",
                    "limit",
                    format!("`limit` is a whole number from 1 to {max}"),
                )),
            },
        }
    }

    /// A required parameter.
    pub fn required(&mut self, name: &str, code: &str, what: &str) -> Result<String, Problem> {
        match self.opt(name) {
            Some(v) if !v.trim().is_empty() => Ok(v),
            _ => Err(Problem::field(code, name, format!("give `{name}`: {what}"))),
        }
    }

    /// Fails on a parameter no one took.
    pub fn finish(self) -> Result<(), Problem> {
        match self.pairs.first() {
            None => Ok(()),
            Some((k, _)) => Err(Problem::field(
                "invalid_query",
                echo(k),
                format!("this route takes no query parameter `{}`", quote(k)),
            )),
        }
    }
}

/// Percent-decoding of a query component (`+` is a space).
fn decode(s: &str) -> Result<String, Problem> {
    let bad = || {
        Problem::new(
            "invalid_query",
            "the query string is not valid percent-encoding",
        )
    };
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.next().and_then(|c| (c as char).to_digit(16));
                let lo = bytes.next().and_then(|c| (c as char).to_digit(16));
                match (hi, lo) {
                    (Some(h), Some(l)) => out.push(u8::try_from(h * 16 + l).map_err(|_| bad())?),
                    _ => return Err(bad()),
                }
            }
            _ => out.push(b),
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// A subject id from the path.
pub fn subject_id(raw: &str) -> Result<custos_vault::SubjectId, Problem> {
    custos_vault::SubjectId::parse(raw).map_err(|_| {
        Problem::field(
            "invalid_subject_id",
            "id",
            "a subject id is a lowercase uuid, as `POST /v1/subjects` returned it",
        )
    })
}

/// A comma-separated list: `a,b` → `["a", "b"]`.
pub fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(str::to_string)
        .collect()
}
