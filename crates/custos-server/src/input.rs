//! Request bodies and query strings, parsed by hand so that every error names the field at
//! fault and none echoes a value (a value may be personal information).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use custos_policy::source::{MAX_NAME_LEN, quote};
use serde_json::{Map, Value};

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

fn too_long(field: &str) -> Problem {
    Problem::field(
        "name_too_long",
        field,
        format!("`{field}` is longer than {MAX_NAME_LEN} bytes; no name is"),
    )
}

/// Refuses a name longer than [`MAX_NAME_LEN`] in a name field.
fn name(field: &str, item: &str, value: &str) -> Result<(), Problem> {
    if value.len() > MAX_NAME_LEN && NAME_FIELDS.contains(&field) {
        return Err(too_long(item));
    }
    Ok(())
}

/// A key or parameter name the client sent, as a field of a problem: bounded and escaped.
fn echo(key: &str) -> String {
    quote(key).at_most(MAX_NAME_LEN).to_string()
}

/// A JSON object body.
#[derive(Debug)]
pub struct Body(Fields);

impl Body {
    /// The body's fields.
    pub fn fields(self) -> Fields {
        self.0
    }
}

impl FromRequest<AppState> for Body {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Problem> {
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
        // serde_json's messages can quote the input; only the position is passed on.
        let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
            Problem::new(
                "invalid_json",
                format!(
                    "the body is not valid json (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })?;
        match value {
            Value::Object(map) => Ok(Self(Fields { map })),
            _ => Err(Problem::new(
                "invalid_json",
                "the body must be a json object",
            )),
        }
    }
}

/// The fields of a JSON object, taken one by one.
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
}

fn wrong(field: &str, what: &str) -> Problem {
    Problem::field("invalid_field", field, format!("`{field}` must be {what}"))
}

fn missing(field: &str, what: &str) -> Problem {
    Problem::field(
        "missing_field",
        field,
        format!("`{field}` is required: {what}"),
    )
}

impl Fields {
    /// A required string.
    pub fn string(&mut self, field: &str) -> Result<String, Problem> {
        self.opt_string(field)?
            .ok_or_else(|| missing(field, "a string"))
    }

    /// An optional string (`null` is absent).
    pub fn opt_string(&mut self, field: &str) -> Result<Option<String>, Problem> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => name(field, field, &s).map(|()| Some(s)),
            Some(_) => Err(wrong(field, "a string")),
        }
    }

    /// An optional array of strings.
    pub fn opt_strings(&mut self, field: &str) -> Result<Option<Vec<String>>, Problem> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => name(field, &format!("{field}[{i}]"), &s).map(|()| s),
                    _ => Err(wrong(&format!("{field}[{i}]"), "a string")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong(field, "an array of strings")),
        }
    }

    /// A required array of strings.
    pub fn strings(&mut self, field: &str) -> Result<Vec<String>, Problem> {
        self.opt_strings(field)?
            .ok_or_else(|| missing(field, "an array of strings"))
    }

    /// An optional whole number that fits in 32 bits.
    pub fn opt_u32(&mut self, field: &str) -> Result<Option<u32>, Problem> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| wrong(field, "a whole number")),
            Some(_) => Err(wrong(field, "a whole number")),
        }
    }

    /// A required object of string values.
    pub fn string_map(&mut self, field: &str) -> Result<BTreeMap<String, String>, Problem> {
        match self.map.remove(field) {
            None | Some(Value::Null) => Err(missing(field, "an object of category: value")),
            Some(Value::Object(m)) => m
                .into_iter()
                .map(|(k, v)| match v {
                    // The keys are category names.
                    _ if k.len() > MAX_NAME_LEN => Err(too_long(field)),
                    Value::String(s) => Ok((k, s)),
                    _ => Err(wrong(&format!("{field}.{k}"), "a string")),
                })
                .collect(),
            Some(_) => Err(wrong(field, "an object of category: value")),
        }
    }

    /// Fails on a field no one took: a typo must not pass silently.
    pub fn finish(self) -> Result<(), Problem> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(k) => Err(Problem::field(
                "unknown_field",
                echo(k),
                format!("this route takes no field `{}`", quote(k)),
            )),
        }
    }
}

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
