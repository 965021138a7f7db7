//! How each request reached the server (C044, C074): over TLS, from the server's own host, or
//! over plain HTTP from another host. The vault refuses, on the last, what the policy lets
//! cross the network only over TLS (`custos_vault::Channel`).
//!
//! [`crate::serve`] puts the connection's peer address (`ConnectInfo<SocketAddr>`) and, for a
//! connection accepted by [`crate::tls::TlsListener`], the [`Tls`] mark on every request of
//! the connection. [`channel`] then decides:
//!
//! 1. the connection is TLS → [`Channel::Tls`];
//! 2. the peer is in a range the operator stated as TLS-terminating proxies
//!    ([`crate::Config::tls_proxy`], `custos serve --tls-proxy CIDR`) → [`Channel::Tls`] when
//!    the request carries `X-Forwarded-Proto: https` (exactly one such header), else
//!    [`Channel::Plain`]: the proxy's own client came over plain HTTP, from wherever it is;
//! 3. the peer is a loopback address → [`Channel::Loopback`];
//! 4. anything else, and a request whose peer is unknown → [`Channel::Plain`].
//!
//! `X-Forwarded-Proto` from a peer outside the stated ranges counts for nothing: anyone can
//! send the header. The peer address decides and is then dropped: it is never logged.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use axum::extract::ConnectInfo;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::request::Parts;
use custos_vault::Channel;

/// The mark [`crate::serve`] puts on each request of a connection that came through TLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tls;

/// The header a TLS-terminating proxy sets to the scheme its client used.
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";

/// The peer of a connection, as a listener yields it: its address, and whether the
/// connection is TLS. Implemented by a plain TCP listener's `SocketAddr` and by
/// [`crate::tls::TlsPeer`].
pub trait Peer {
    /// The peer's address.
    fn socket_addr(&self) -> SocketAddr;
    /// Whether the connection is TLS.
    fn is_tls(&self) -> bool;
}

impl Peer for SocketAddr {
    fn socket_addr(&self) -> SocketAddr {
        *self
    }
    fn is_tls(&self) -> bool {
        false
    }
}

/// A range of addresses, `ADDR/PREFIX` (`10.0.0.0/8`, `fd00::/8`) or one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in the range. An IPv4 address mapped into IPv6 (`::ffff:10.1.2.3`, as a
    /// dual-stack listener sees IPv4 peers) is compared as the IPv4 address it is.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "`{}` is not an address range; write ADDR/PREFIX, e.g. 10.0.0.0/8 or fd00::/8, or one address",
                custos_policy::source::quote(s)
            )
        };
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr = IpAddr::from_str(addr).map_err(|_| bad())?.to_canonical();
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?
            }
            Some(_) => return Err(bad()),
        };
        Ok(Self { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// How the request of `parts` reached the server, given the stated proxy ranges.
/// The header a proxy appends its client's address to.
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// The connection's peer, as [`crate::serve`] or a test's `MockConnectInfo` put it.
fn peer(parts: &Parts) -> Option<SocketAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| {
            parts
                .extensions
                .get::<MockConnectInfo<SocketAddr>>()
                .map(|c| c.0)
        })
}

/// The client's address, for a per-client limit: the connection's peer, unless the peer is
/// in a range the operator stated as proxies (`--tls-proxy`); then the last address of
/// `X-Forwarded-For` (every such header, in order, comma-separated) that is not itself in
/// those ranges — each proxy appends the address it saw, so the entries left of it are the
/// client's own word. A proxy that sent no `X-Forwarded-For`, or an entry that is not an
/// address, leaves the peer: all its clients then share one bucket. `0.0.0.0` when the peer
/// is unknown (a test's router). Never logged.
pub(crate) fn client_ip(parts: &Parts, proxies: &[Cidr]) -> IpAddr {
    let Some(peer) = peer(parts) else {
        return IpAddr::from([0, 0, 0, 0]);
    };
    let peer = peer.ip().to_canonical();
    let is_proxy = |ip: IpAddr| proxies.iter().any(|c| c.contains(ip));
    if !is_proxy(peer) {
        return peer;
    }
    let entries = parts
        .headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("?").split(','));
    for entry in entries.rev() {
        let Ok(ip) = entry.trim().parse::<IpAddr>() else {
            return peer;
        };
        let ip = ip.to_canonical();
        if !is_proxy(ip) {
            return ip;
        }
    }
    peer
}

pub(crate) fn channel(parts: &Parts, tls_proxy: &[Cidr]) -> Channel {
    if parts.extensions.get::<Tls>().is_some() {
        return Channel::Tls;
    }
    // Not served by `serve` (a test's router): nobody vouches for the peer.
    let Some(peer) = peer(parts) else {
        return Channel::Plain;
    };
    let ip = peer.ip().to_canonical();
    if tls_proxy.iter().any(|c| c.contains(ip)) {
        let mut proto = parts.headers.get_all(X_FORWARDED_PROTO).iter();
        let https = proto
            .next()
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
        return if https && proto.next().is_none() {
            Channel::Tls
        } else {
            Channel::Plain
        };
    }
    if ip.is_loopback() {
        Channel::Loopback
    } else {
        Channel::Plain
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests fail loudly")]
mod tests {
    use super::*;

    fn parts(peer: Option<&str>, proto: &[&str], tls: bool) -> Parts {
        let mut b = axum::http::Request::builder();
        for p in proto {
            b = b.header(X_FORWARDED_PROTO, *p);
        }
        let (mut parts, ()) = b.body(()).unwrap().into_parts();
        if let Some(p) = peer {
            parts
                .extensions
                .insert(ConnectInfo(SocketAddr::from_str(p).unwrap()));
        }
        if tls {
            parts.extensions.insert(Tls);
        }
        parts
    }

    #[test]
    fn ranges_parse_and_match_exactly() {
        let c: Cidr = "10.1.0.0/16".parse().unwrap();
        assert!(c.contains("10.1.255.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.0.9".parse().unwrap()));
        let one: Cidr = "192.0.2.7".parse().unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("203.0.113.1".parse().unwrap()));
        assert!(!all.contains("2001:db8::1".parse().unwrap()));
        let v6: Cidr = "fd00::/8".parse().unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        for bad in [
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0/8",
            "x",
            "::/129",
            "10.0.0.0/+8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    /// `X-Forwarded-For` counts only from a stated proxy, and only its right end: what a
    /// client writes into the header itself cannot choose its bucket.
    #[test]
    fn the_client_address_is_what_the_stated_proxies_saw() {
        let proxies: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |peer: Option<&str>, xff: &[&str]| {
            let mut p = parts(peer, &[], false);
            for v in xff {
                p.headers.append(X_FORWARDED_FOR, v.parse().unwrap());
            }
            client_ip(&p, &proxies).to_string()
        };
        // Not from a proxy: the peer, whatever the header says.
        assert_eq!(
            ip(Some("203.0.113.5:4000"), &["198.51.100.1"]),
            "203.0.113.5"
        );
        // From a proxy: the address it appended; what the client put before it is ignored.
        assert_eq!(ip(Some("10.0.0.2:4000"), &["198.51.100.1"]), "198.51.100.1");
        assert_eq!(
            ip(Some("10.0.0.2:4000"), &["1.2.3.4, 198.51.100.1"]),
            "198.51.100.1"
        );
        // Through two proxies, over two headers: the first address no proxy of ours holds.
        assert_eq!(
            ip(
                Some("10.0.0.2:4000"),
                &["1.2.3.4, 198.51.100.1", "10.9.9.9"]
            ),
            "198.51.100.1"
        );
        assert_eq!(
            ip(Some("[::ffff:10.0.0.2]:4000"), &["::ffff:198.51.100.1"]),
            "198.51.100.1"
        );
        // No header, an entry that is not an address, only proxies: the proxy's own.
        assert_eq!(ip(Some("10.0.0.2:4000"), &[]), "10.0.0.2");
        assert_eq!(ip(Some("10.0.0.2:4000"), &["1.2.3.4, unknown"]), "10.0.0.2");
        assert_eq!(ip(Some("10.0.0.2:4000"), &["10.0.0.3"]), "10.0.0.2");
        // No peer (a test's router): one bucket for all.
        assert_eq!(ip(None, &["198.51.100.1"]), "0.0.0.0");
    }

    #[test]
    fn the_channel_is_the_connections_not_the_clients_word() {
        let proxy: Vec<Cidr> = vec!["10.0.0.0/8".parse().unwrap()];
        let ch = |peer, proto: &[&str], tls| channel(&parts(peer, proto, tls), &proxy);
        assert_eq!(ch(Some("203.0.113.5:4000"), &[], false), Channel::Plain);
        assert_eq!(
            ch(Some("203.0.113.5:4000"), &["https"], false),
            Channel::Plain
        );
        assert_eq!(ch(Some("203.0.113.5:4000"), &[], true), Channel::Tls);
        assert_eq!(ch(Some("127.0.0.1:4000"), &[], false), Channel::Loopback);
        assert_eq!(ch(Some("[::1]:4000"), &[], false), Channel::Loopback);
        assert_eq!(
            ch(Some("[::ffff:127.0.0.1]:4000"), &[], false),
            Channel::Loopback
        );
        assert_eq!(ch(Some("10.0.0.2:4000"), &["https"], false), Channel::Tls);
        assert_eq!(ch(Some("10.0.0.2:4000"), &["HTTPS"], false), Channel::Tls);
        assert_eq!(ch(Some("10.0.0.2:4000"), &["http"], false), Channel::Plain);
        assert_eq!(ch(Some("10.0.0.2:4000"), &[], false), Channel::Plain);
        assert_eq!(
            ch(Some("10.0.0.2:4000"), &["https", "http"], false),
            Channel::Plain
        );
        assert_eq!(ch(None, &[], false), Channel::Plain);
        // A proxy on the server's own host: its requests are its clients', not local.
        let local_proxy: Vec<Cidr> = vec!["127.0.0.1".parse().unwrap()];
        assert_eq!(
            channel(&parts(Some("127.0.0.1:4000"), &[], false), &local_proxy),
            Channel::Plain
        );
        assert_eq!(
            channel(
                &parts(Some("127.0.0.1:4000"), &["https"], false),
                &local_proxy
            ),
            Channel::Tls
        );
    }
}
