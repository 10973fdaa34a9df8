//! Client addresses: the connection's peer, trusted proxies and their
//! forwarding headers, and the per-client counters that limits are built on.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

// --- the peer address -----------------------------------------------------------

/// An address or network (`10.0.0.0/8`, `::1`) of a trusted proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyNet {
    addr: IpAddr,
    prefix: u8,
}

impl ProxyNet {
    pub fn parse(s: &str) -> Result<ProxyNet, String> {
        let (a, p) = match s.trim().split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s.trim(), None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("`{s}` is not an address or network like 10.0.0.0/8"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        Ok(ProxyNet { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// One hop of `Forwarded: for=…` or `X-Forwarded-For`: an address, with or
/// without quotes, brackets and port; None for `unknown` and obfuscated names.
fn hop_addr(v: &str) -> Option<IpAddr> {
    let v = v.trim().trim_matches('"');
    if let Ok(a) = v.parse() {
        return Some(a);
    }
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.rsplit_once(':').and_then(|(a, _)| a.parse().ok())
}

/// The hops a request passed, oldest first, from `Forwarded` (RFC 7239) or,
/// without it, `X-Forwarded-For`; None marks a hop that named no address.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let fwd: Vec<&str> = headers
        .get_all(header::FORWARDED)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if !fwd.is_empty() {
        return fwd
            .iter()
            .flat_map(|v| v.split(','))
            .map(|elem| {
                elem.split(';').find_map(|pair| {
                    let (k, v) = pair.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("for").then(|| hop_addr(v))
                })?
            })
            .collect();
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(hop_addr)
        .collect()
}

/// The client of a request: the peer, unless the peer is a trusted proxy;
/// then the nearest hop of the forwarding headers that is not itself a
/// trusted proxy. Headers from any other peer are ignored: a client cannot
/// choose the address it is counted under.
pub fn client_addr(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[ProxyNet],
) -> Option<IpAddr> {
    let is_trusted = |a: IpAddr| trusted.iter().any(|n| n.contains(a));
    let mut client = peer?;
    if !is_trusted(client) {
        return Some(client);
    }
    for hop in forwarded_chain(headers).into_iter().rev() {
        let Some(a) = hop else {
            // A hop without an address: the last proxy that named one answers for it.
            return Some(client);
        };
        client = a;
        if !is_trusted(a) {
            break;
        }
    }
    Some(client)
}

/// A fixed one-hour window over every submission (the global intake limit).
#[derive(Default)]
pub struct GlobalWindow(std::sync::Mutex<(i64, u32)>);

impl GlobalWindow {
    pub fn count(&self, now_ms: i64, window_ms: i64) -> u32 {
        let mut w = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if now_ms.saturating_sub(w.0) >= window_ms {
            *w = (now_ms, 0);
        }
        w.1 = w.1.saturating_add(1);
        w.1
    }
}

/// The client's address, from the connection (not from headers a client can set).
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A fixed-window counter per client address.
#[derive(Default)]
pub struct RateLimiter {
    windows: Mutex<HashMap<IpAddr, (i64, u32)>>,
}

impl RateLimiter {
    /// Counts one request of `addr` at `now_ms`; false when it is over
    /// `limit` in the current window of `window_ms`.
    pub fn allow(&self, addr: IpAddr, now_ms: i64, window_ms: i64, limit: u32) -> bool {
        self.count(addr, now_ms, window_ms) <= limit
    }

    /// Counts one request of `addr`'s network (the address for IPv4, its /64
    /// for IPv6: one host holds a whole /64) and returns the count in the
    /// current window.
    pub fn count(&self, addr: IpAddr, now_ms: i64, window_ms: i64) -> u32 {
        let addr = network_of(addr);
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() > 100_000 {
            w.retain(|_, (start, _)| now_ms.saturating_sub(*start) < window_ms);
        }
        let e = w.entry(addr).or_insert((now_ms, 0));
        if now_ms.saturating_sub(e.0) >= window_ms {
            *e = (now_ms, 0);
        }
        e.1 = e.1.saturating_add(1);
        e.1
    }
}

/// The unit a rate limit counts: an IPv4 address, an IPv6 /64.
pub fn network_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod limiter_tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let l = RateLimiter::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(l.count(a, 0, 1000), 1);
        assert_eq!(l.count(b, 1, 1000), 2, "same /64");
        assert_eq!(l.count(other, 2, 1000), 1);
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(l.count(v4, 3, 1000), 1);
        assert_eq!(l.count(mapped, 4, 1000), 2);
        assert!(!l.allow(mapped, 5, 1000, 2));
        assert!(l.allow(mapped, 2000, 1000, 2), "a new window");
    }
}
