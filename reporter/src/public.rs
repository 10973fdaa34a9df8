//! The routes anyone may call without logging in (`/brochure.pdf`,
//! `/trust.json`, `/policy.pdf`, `/api/v1/audit/checkpoint`): a per-client
//! rate limit (429 past it) and, for the documents that cost a render, a
//! short response cache with one render at a time per route.
//!
//! Four anonymous pollers of these routes once held the audit log's write
//! lock for seconds at a time and starved ingest (issue 19, item 2): the
//! checkpoint now comes from the log's incremental tree without that lock
//! (the audit log's `checkpoint`), and this layer bounds what the
//! rest can cost.
//!
//! The client is the connection's peer address (an IPv6 client by its /64):
//! behind a proxy every client shares the proxy's bucket.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

pub use crate::config::public::PublicLimit;

/// Rate-limited public routes.
pub const PUBLIC_PATHS: &[&str] = &[
    "/brochure.pdf",
    "/trust.json",
    "/policy.pdf",
    "/api/v1/audit/checkpoint",
];

/// Public routes whose GET responses are cached (they render a document).
const CACHED_PATHS: &[&str] = &["/brochure.pdf", "/trust.json", "/policy.pdf"];

/// The largest response kept in the cache.
const MAX_CACHED_BYTES: usize = 64 * 1024 * 1024;

/// Beyond this many tracked clients, idle ones are forgotten.
const MAX_CLIENTS: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

struct Cached {
    at: Instant,
    headers: HeaderMap,
    body: Bytes,
}

impl Cached {
    fn response(&self) -> Response {
        let mut r = Response::new(Body::from(self.body.clone()));
        *r.headers_mut() = self.headers.clone();
        r
    }
}

/// The layer's state, one per reporter.
pub struct Public {
    limit: PublicLimit,
    buckets: Mutex<HashMap<Option<IpAddr>, Bucket>>,
    cache: HashMap<&'static str, tokio::sync::Mutex<Option<Cached>>>,
}

/// The key a client is limited by: its address, an IPv6 one by its /64.
fn client_key(ip: Option<IpAddr>) -> Option<IpAddr> {
    ip.map(|ip| match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
        v4 => v4,
    })
}

impl Public {
    pub fn new(limit: PublicLimit) -> Self {
        Public {
            limit,
            buckets: Mutex::new(HashMap::new()),
            cache: CACHED_PATHS
                .iter()
                .map(|p| (*p, tokio::sync::Mutex::new(None)))
                .collect(),
        }
    }

    /// Takes one token from the client's bucket: `Err(seconds to wait)` when
    /// it is empty.
    pub fn allow(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), u64> {
        if self.limit.per_minute == 0 {
            return Ok(());
        }
        let rate = f64::from(self.limit.per_minute) / 60.0;
        let burst = f64::from(self.limit.burst.max(1));
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_CLIENTS {
            // Forget clients whose buckets have refilled: they lose nothing.
            buckets.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < burst
            });
        }
        let b = buckets.entry(client_key(ip)).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        b.tokens = (b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - b.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

fn too_many(retry_after: u64) -> Response {
    let mut r = (
        StatusCode::TOO_MANY_REQUESTS,
        Json(serde_json::json!({"error": "too many requests; try again later"})),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The middleware: limits public routes per client and serves rendered
/// documents from the cache while they are fresh. Other routes pass through.
pub async fn guard(State(public): State<Arc<Public>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    let Some(path) = PUBLIC_PATHS.iter().find(|p| **p == path) else {
        return next.run(req).await;
    };
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    if let Err(wait) = public.allow(ip, Instant::now()) {
        return too_many(wait);
    }
    let slot = match public.cache.get(path) {
        Some(slot) if req.method() == Method::GET => slot,
        _ => return next.run(req).await,
    };
    let ttl = Duration::from_secs(public.limit.cache_seconds);
    // One render at a time per route: concurrent callers wait for it and
    // share the result instead of each rendering.
    let mut cached = slot.lock().await;
    if let Some(c) = cached.as_ref() {
        if c.at.elapsed() < ttl {
            return c.response();
        }
    }
    let resp = next.run(req).await;
    if resp.status() != StatusCode::OK || ttl.is_zero() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    match axum::body::to_bytes(body, MAX_CACHED_BYTES).await {
        Ok(body) => {
            let c = Cached {
                at: Instant::now(),
                headers: parts.headers,
                body,
            };
            let r = c.response();
            *cached = Some(c);
            r
        }
        Err(e) => {
            tracing::error!(error = %e, path, "cannot buffer a public response");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(serde_json::json!({"error": "internal error"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_past_its_burst_waits_and_others_do_not() {
        let p = Public::new(PublicLimit {
            per_minute: 60,
            burst: 3,
            cache_seconds: 10,
        });
        let t0 = Instant::now();
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        for _ in 0..3 {
            assert!(p.allow(a, t0).is_ok());
        }
        assert_eq!(p.allow(a, t0), Err(1));
        assert!(p.allow(b, t0).is_ok(), "another client has its own bucket");
        // One token a second comes back.
        assert!(p.allow(a, t0 + Duration::from_millis(1100)).is_ok());
        assert!(p.allow(a, t0 + Duration::from_millis(1100)).is_err());
    }

    #[test]
    fn ipv6_clients_are_limited_by_their_64() {
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let z: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(Some(x)), client_key(Some(y)));
        assert_ne!(client_key(Some(x)), client_key(Some(z)));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(Some(mapped)), Some(IpAddr::from([192, 0, 2, 7])));
    }

    #[test]
    fn zero_per_minute_turns_the_limit_off() {
        let p = Public::new(PublicLimit {
            per_minute: 0,
            burst: 1,
            cache_seconds: 0,
        });
        let t0 = Instant::now();
        for _ in 0..100 {
            assert!(p.allow(None, t0).is_ok());
        }
    }
}
