//! Aggregates (C034, C035): `POST /v1/telemetry`, where a service reports service-health
//! counts (anonymous aggregates only: a metric of a closed set, a count and a sum, per
//! service and day; the body takes no other field, so no identifier can ride along); and
//! `GET /v1/analytics/pages | gpc | telemetry`, the counts, for the policy's analytics
//! accessor only (an internal accessor declared for `analytics`; any other key: `403
//! purpose_not_allowed_for_accessor`).

use axum::Json;
use axum::extract::RawQuery;
use axum::http::StatusCode;
use custos_vault::Aggregate;
use custos_vault::store::CountRow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::Caller;
use crate::input::{self, JsonBody, Name};
use crate::problem::Problem;

/// Rows one read answers at most.
pub const MAX_ROWS: u64 = 10_000;

/// A service-health report.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TelemetryRequest {
    /// The metric: one of the closed set the server declares.
    pub metric: Name,
    /// How many occurrences (default 1).
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 1, maximum = 1_000_000, nullable = false)]
    pub count: Option<u64>,
    /// The sum of their values (a latency in ms, …); default 0.
    #[serde(default, deserialize_with = "whole")]
    #[schema(minimum = 0, maximum = 1_099_511_627_776_u64, nullable = false)]
    pub value: Option<u64>,
}

/// A whole number from 0 to `u64::MAX`, written as an integer or as a number with no
/// fraction (`300.0`: JSON Schema's `integer`); `null` refused.
fn whole<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(v) = n.as_u64() {
        return Ok(Some(v));
    }
    match n.as_f64() {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a whole number in range, checked on the line before"
        )]
        Some(f) if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) => {
            Ok(Some(f as u64))
        }
        _ => Err(serde::de::Error::custom(
            "invalid value, expected a whole number from 0",
        )),
    }
}

/// `POST /v1/telemetry` — adds a service-health report to the day's aggregate of the
/// calling service; only an internal accessor allowed `analytics.service_health`.
#[utoipa::path(operation_id = "reportTelemetry", post, path = "/v1/telemetry", tag = "analytics",
    request_body = TelemetryRequest,
    responses(
        (status = 204, description = "counted"),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn telemetry(
    caller: Caller,
    JsonBody(body): JsonBody<TelemetryRequest>,
) -> Result<StatusCode, Problem> {
    let metric = body.metric.0;
    let count = body.count.unwrap_or(1);
    let value = body.value.unwrap_or(0);
    caller
        .run(move |v, a| v.record_telemetry(a, &metric, count, value))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A count of a day.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountOut {
    /// The UTC day.
    #[schema(format = Date)]
    pub day: String,
    /// What is counted: a page's path, `gpc`, or `service/metric`.
    pub name: String,
    /// How many.
    pub count: i64,
    /// The sum of the values reported (telemetry); 0 otherwise.
    pub total: i64,
}

/// Aggregates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CountsOut {
    /// `pages`, `gpc` or `telemetry`.
    pub kind: String,
    /// By day, then name.
    pub counts: Vec<CountOut>,
}

/// Whether `d` is a calendar day, `YYYY-MM-DD` (RFC 3339 `full-date`).
fn is_date(d: &str) -> bool {
    let b = d.as_bytes();
    let shaped = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shaped {
        return false;
    }
    let num = |r: std::ops::Range<usize>| d.get(r).and_then(|x| x.parse::<u32>().ok());
    let (Some(y), Some(m), Some(day)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}

fn day(q: &mut input::Query, name: &str, default: &str) -> Result<String, Problem> {
    match q.opt(name) {
        None => Ok(default.to_string()),
        Some(d) => {
            if is_date(&d) {
                Ok(d)
            } else {
                Err(Problem::field(
                    "invalid_query",
                    name,
                    format!("`{name}` is a day, `YYYY-MM-DD`"),
                ))
            }
        }
    }
}

async fn read(
    caller: Caller,
    raw: Option<String>,
    which: Aggregate,
) -> Result<Json<CountsOut>, Problem> {
    let mut q = input::Query::parse(raw.as_deref())?;
    let from = day(&mut q, "from", "0000-01-01")?;
    let to = day(&mut q, "to", "9999-12-31")?;
    q.finish()?;
    let rows: Vec<CountRow> = caller
        .run(move |v, a| v.aggregates(a, which, &from, &to, MAX_ROWS))
        .await?;
    Ok(Json(CountsOut {
        kind: match which {
            Aggregate::Pages => "pages",
            Aggregate::Gpc => "gpc",
            Aggregate::Telemetry => "telemetry",
        }
        .into(),
        counts: rows
            .into_iter()
            .map(|r| CountOut {
                day: r.day,
                name: r.name,
                count: r.count,
                total: r.total,
            })
            .collect(),
    }))
}

/// `GET /v1/analytics/pages` — page views the beacon counted, by day and page.
#[utoipa::path(operation_id = "analyticsPages", get, path = "/v1/analytics/pages", tag = "analytics",
    params(
        ("from" = Option<String>, Query, format = Date, description = "first day, `YYYY-MM-DD` (UTC)"),
        ("to" = Option<String>, Query, format = Date, description = "last day, `YYYY-MM-DD` (UTC)"),
    ),
    responses(
        (status = 200, description = "the counts", body = CountsOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn pages(caller: Caller, RawQuery(raw): RawQuery) -> Result<Json<CountsOut>, Problem> {
    read(caller, raw, Aggregate::Pages).await
}

/// `GET /v1/analytics/gpc` — visits that carried Global Privacy Control, by day.
#[utoipa::path(operation_id = "analyticsGpc", get, path = "/v1/analytics/gpc", tag = "analytics",
    params(
        ("from" = Option<String>, Query, format = Date, description = "first day, `YYYY-MM-DD` (UTC)"),
        ("to" = Option<String>, Query, format = Date, description = "last day, `YYYY-MM-DD` (UTC)"),
    ),
    responses(
        (status = 200, description = "the counts", body = CountsOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn gpc(caller: Caller, RawQuery(raw): RawQuery) -> Result<Json<CountsOut>, Problem> {
    read(caller, raw, Aggregate::Gpc).await
}

/// `GET /v1/analytics/telemetry` — service-health reports, by day and `service/metric`.
#[utoipa::path(operation_id = "analyticsTelemetry", get, path = "/v1/analytics/telemetry", tag = "analytics",
    params(
        ("from" = Option<String>, Query, format = Date, description = "first day, `YYYY-MM-DD` (UTC)"),
        ("to" = Option<String>, Query, format = Date, description = "last day, `YYYY-MM-DD` (UTC)"),
    ),
    responses(
        (status = 200, description = "the counts", body = CountsOut),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("apiKey" = [])))]
pub async fn telemetry_counts(
    caller: Caller,
    RawQuery(raw): RawQuery,
) -> Result<Json<CountsOut>, Problem> {
    read(caller, raw, Aggregate::Telemetry).await
}
