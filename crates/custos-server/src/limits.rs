//! Per-client rate limits of the keyless routes (the sign-in routes, cookie consents): a
//! token bucket per client address ([`crate::transport::client_ip`]; never logged), in
//! memory. Past it, `429 rate_limited` with `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderValue;
use axum::http::header::RETRY_AFTER;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::problem::Problem;

/// Requests a client may make to a group of limited routes (the sign-in routes; cookie
/// consents) in a burst.
pub const CLIENT_BURST: u32 = 20;
/// One more request is allowed every this long, up to [`CLIENT_BURST`].
pub const CLIENT_REFILL: Duration = Duration::from_secs(3);
/// Clients the limiter remembers at most; past it, full buckets are forgotten first.
const CLIENTS_MAX: usize = 100_000;

/// Per-client token buckets over a group of routes (the sign-in routes; cookie consents), in
/// memory (one server's view: behind several servers a client gets each server's allowance).
#[derive(Debug)]
pub(crate) struct ClientLimiter {
    /// What the routes do, for the `429`'s message: "too many {what} requests".
    what: &'static str,
    buckets: Mutex<HashMap<IpAddr, (f64, Instant)>>,
}

impl ClientLimiter {
    /// Buckets of [`CLIENT_BURST`] tokens, one more every [`CLIENT_REFILL`].
    pub(crate) fn new(what: &'static str) -> Self {
        Self {
            what,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `ip`; `Err(wait)` when its bucket is empty.
    fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut map = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let per_sec = 1.0 / CLIENT_REFILL.as_secs_f64();
        let burst = f64::from(CLIENT_BURST);
        if map.len() >= CLIENTS_MAX {
            map.retain(|_, (tokens, at)| {
                *tokens + now.duration_since(*at).as_secs_f64() * per_sec < burst
            });
        }
        let (tokens, at) = map.entry(bucket_of(ip)).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_sec).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_sec))
        }
    }
}

/// The bucket an address pays from: an IPv4 address its own, an IPv6 address its /64 (one
/// host or site is commonly given a whole /64, so per address it could spread its requests
/// over as many buckets as it liked).
fn bucket_of(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
            u128::from(v6) & !u128::from(u64::MAX),
        )),
        v4 => v4,
    }
}

/// `429 rate_limited`, with `Retry-After` in whole seconds (rounded up).
#[derive(Debug)]
pub struct RateLimited(Duration, &'static str);

impl RateLimited {
    /// `wait` before trying again, at routes that do `what`.
    pub(crate) fn new(wait: Duration, what: &'static str) -> Self {
        Self(wait, what)
    }
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let secs = (self.0.as_secs() + u64::from(self.0.subsec_nanos() > 0)).max(1);
        let mut res = Problem::new(
            "rate_limited",
            format!("too many {} requests; try again in {secs} seconds", self.1),
        )
        .into_response();
        res.headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(secs));
        res
    }
}

/// The client of a rate-limited request (its address, as [`crate::transport::client_ip`]
/// finds it), whose token bucket pays for it once its body parsed (a malformed request is
/// answered `400` and costs nothing).
#[derive(Debug, Clone, Copy)]
pub struct Client(IpAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(crate::transport::client_ip(
            parts,
            &state.config().tls_proxy,
        )))
    }
}

impl Client {
    /// A token of `limiter`'s bucket for this client.
    pub(crate) fn take_from(self, limiter: &ClientLimiter) -> Result<(), RateLimited> {
        limiter
            .take(self.0)
            .map_err(|wait| RateLimited(wait, limiter.what))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    /// Every address of an IPv6 /64 pays from one bucket: a client with a /64 cannot step
    /// around its limit by changing its address; another /64, and an IPv4 address, have
    /// their own.
    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let limiter = ClientLimiter::new("test");
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        for i in 0..CLIENT_BURST {
            limiter
                .take(ip(&format!("2001:db8:1:2::{:x}", i + 1)))
                .unwrap();
        }
        assert!(limiter.take(ip("2001:db8:1:2:ffff::9")).is_err());
        assert!(limiter.take(ip("2001:db8:1:3::1")).is_ok());
        assert!(limiter.take(ip("192.0.2.1")).is_ok());
        assert!(limiter.take(ip("::ffff:192.0.2.2")).is_ok());
        assert_eq!(bucket_of(ip("::ffff:192.0.2.2")), ip("192.0.2.2"));
    }
}
