//! `GET /b.gif?page=…` — the page beacon (C034, C049): a 1×1 transparent GIF that counts a
//! view of a page for the day, and nothing else: no address, no identifier, no user agent,
//! no cookie value is kept. The page is normalised (`custos_vault::normalize_page`: the path
//! only, a safe character set, at most 128 characters; a path that may carry personal
//! information — an `@`, a percent-escape, 5 or more digits in a row — counts as
//! `(redacted)`; anything not a path is not counted). A visitor whose `custos_consent`
//! cookie refuses analytics (the cookies serving `analytics.website`) is not counted at all.
//! A visit with `Sec-GPC: 1` is also counted as a GPC visit.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::cookies::{consent_cookie, sec_gpc};
use crate::input;
use crate::problem::Problem;

/// A 1×1 transparent GIF (GIF89a, 43 bytes).
pub const GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// `GET /b.gif` — counts a page view (aggregate only) and answers a transparent pixel.
#[utoipa::path(operation_id = "beacon", get, path = "/b.gif", tag = "cookies", security(()),
    params(
        ("page" = Option<String>, Query, max_length = 128, description = "the page's path (`/pricing`); its query and fragment are dropped"),
        ("Sec-GPC" = Option<String>, Header, description = "`1`: the browser's Global Privacy Control"),
    ),
    responses(
        (status = 200, description = "a 1×1 transparent GIF, never cached", body = String, content_type = "image/gif"),
        (status = 400, body = crate::problem::ProblemDoc, content_type = "application/problem+json"),
    ))]
pub async fn beacon(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let mut q = input::Query::parse(raw.as_deref())?;
    let page = q.opt("page");
    q.finish()?;
    if page
        .as_deref()
        .is_some_and(|p| p.chars().count() > custos_vault::MAX_PAGE_CHARS)
    {
        return Err(Problem::field(
            "invalid_query",
            "page",
            format!(
                "`page` is a path of at most {} characters",
                custos_vault::MAX_PAGE_CHARS
            ),
        ));
    }
    let vault = state
        .vault()
        .ok_or_else(|| Problem::internal("the vault is closed"))?;
    if sec_gpc(&headers) {
        vault.count_gpc_visit();
    }
    let refused =
        consent_cookie(&headers).is_some_and(|v| custos_vault::beacon_refused(vault.policy(), &v));
    if !refused {
        if let Some(page) = page.as_deref().and_then(custos_vault::normalize_page) {
            vault.count_page(&page);
        }
    }
    let mut res = GIF.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/gif"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}
