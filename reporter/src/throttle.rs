//! Throttling of the routes that check a guessable secret: the staff login
//! (argon2, 19 MiB and tens of milliseconds per attempt) and enrollment.
//!
//! - At most [`MAX_CONCURRENT_HASHES`] password hashes run at once (a
//!   semaphore); a request that cannot get a permit within [`HASH_WAIT`] is
//!   answered 429. Memory stays bounded however many logins arrive at once
//!   (issue 19: 256 concurrent wrong logins took the reporter to 5.7 GB).
//! - Each key (a client network, a user name) may make
//!   [`ATTEMPTS_PER_MINUTE`] attempts a minute; beyond that, 429.
//! - [`MAX_FAILURES`] failures of a key within [`LOCKOUT`] lock it out for
//!   [`LOCKOUT`]; a success clears the key's failures.
//!
//! The counters live in memory (a restart forgets them) in one map of at most
//! [`MAX_KEYS`] keys; when it is full of live keys, new keys are refused (429)
//! rather than growing without bound.
//!
//! [`Throttle::check`] and [`Throttle::record`] are judged on a clock passed
//! in, so the rules are tested without waiting.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::Extensions;

pub const MAX_CONCURRENT_HASHES: usize = 2;
pub const HASH_WAIT: Duration = Duration::from_secs(2);
pub const ATTEMPTS_PER_MINUTE: u32 = 10;
pub const MAX_FAILURES: u32 = 10;
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
pub const MAX_KEYS: usize = 100_000;

const MINUTE_MS: i64 = 60_000;

#[derive(Debug, Clone, Copy, Default)]
struct Entry {
    window_start: i64,
    attempts: u32,
    failures: u32,
    first_failure: i64,
    locked_until: i64,
    last: i64,
}

/// Why a request is refused, with the seconds to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub message: String,
    pub retry_after_secs: u64,
}

pub struct Throttle {
    hashes: tokio::sync::Semaphore,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle {
            hashes: tokio::sync::Semaphore::new(MAX_CONCURRENT_HASHES),
            entries: Mutex::new(HashMap::new()),
        }
    }
}

fn lockout_ms() -> i64 {
    i64::try_from(LOCKOUT.as_millis()).unwrap_or(i64::MAX)
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms.max(0) / 1000 + 1).unwrap_or(1)
}

/// The client network of a request (`None` without connection info, as in
/// an in-process router): an IPv4 address, an IPv6 /64.
pub fn client_of(ext: &Extensions) -> Option<IpAddr> {
    ext.get::<ConnectInfo<SocketAddr>>()
        .map(|c| crate::net::network_of(c.0.ip()))
}

impl Throttle {
    /// Counts one attempt of each key at `now` (epoch ms); refuses when any
    /// key is locked out or over its rate. Nothing is counted on refusal.
    pub fn check(&self, keys: &[String], now: i64) -> Result<(), Throttled> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            let horizon = now.saturating_sub(lockout_ms());
            map.retain(|_, e| e.last > horizon || e.locked_until > now);
        }
        for k in keys {
            let e = map.get(k).copied().unwrap_or_default();
            if e.locked_until > now {
                return Err(Throttled {
                    message: "too many failed attempts; try again later".into(),
                    retry_after_secs: secs(e.locked_until - now),
                });
            }
            if now.saturating_sub(e.window_start) < MINUTE_MS && e.attempts >= ATTEMPTS_PER_MINUTE {
                return Err(Throttled {
                    message: "too many attempts; slow down".into(),
                    retry_after_secs: secs(e.window_start + MINUTE_MS - now),
                });
            }
            if !map.contains_key(k) && map.len() >= MAX_KEYS {
                return Err(Throttled {
                    message: "too many clients are trying at once; try again later".into(),
                    retry_after_secs: 60,
                });
            }
        }
        for k in keys {
            let e = map.entry(k.clone()).or_default();
            if now.saturating_sub(e.window_start) >= MINUTE_MS {
                e.window_start = now;
                e.attempts = 0;
            }
            e.attempts = e.attempts.saturating_add(1);
            e.last = now;
        }
        Ok(())
    }

    /// Refuses keys that are locked out, without counting an attempt (for
    /// enrollment, where only wrong secrets count).
    pub fn check_failures(&self, keys: &[String], now: i64) -> Result<(), Throttled> {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_KEYS {
            let horizon = now.saturating_sub(lockout_ms());
            map.retain(|_, e| e.last > horizon || e.locked_until > now);
        }
        for k in keys {
            let full = map.len() >= MAX_KEYS;
            match map.get_mut(k) {
                Some(e) if e.locked_until > now => {
                    return Err(Throttled {
                        message: "too many failed attempts; try again later".into(),
                        retry_after_secs: secs(e.locked_until - now),
                    })
                }
                Some(e) => e.last = now,
                None if full => {
                    return Err(Throttled {
                        message: "too many clients are trying at once; try again later".into(),
                        retry_after_secs: 60,
                    })
                }
                None => {
                    map.insert(
                        k.clone(),
                        Entry {
                            last: now,
                            ..Entry::default()
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// Records the outcome of an attempt: a failure counts towards a lockout,
    /// a success clears the keys' failures.
    pub fn record(&self, keys: &[String], ok: bool, now: i64) {
        let mut map = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            let Some(e) = map.get_mut(k) else { continue };
            if ok {
                e.failures = 0;
                e.first_failure = 0;
                continue;
            }
            if now.saturating_sub(e.first_failure) >= lockout_ms() {
                e.failures = 0;
                e.first_failure = now;
            }
            e.failures = e.failures.saturating_add(1);
            if e.failures >= MAX_FAILURES {
                e.locked_until = now.saturating_add(lockout_ms());
                e.failures = 0;
                tracing::warn!(key = %k, "locked out after repeated failures");
            }
        }
    }

    /// Runs `f` (a password hash) on the blocking pool once one of the
    /// [`MAX_CONCURRENT_HASHES`] permits is free; 429 after [`HASH_WAIT`].
    pub async fn hash<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Option<T>, Throttled> {
        let permit = tokio::time::timeout(HASH_WAIT, self.hashes.acquire())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or(Throttled {
                message: "the server is busy checking other logins; try again shortly".into(),
                retry_after_secs: 2,
            })?;
        let out = tokio::task::spawn_blocking(f).await.ok();
        drop(permit);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Vec<String> {
        vec![s.to_owned()]
    }

    #[test]
    fn rate_per_minute() {
        let t = Throttle::default();
        for i in 0..ATTEMPTS_PER_MINUTE {
            assert!(t.check(&k("ip:1"), 1000 + i64::from(i)).is_ok());
        }
        let e = t.check(&k("ip:1"), 2000).unwrap_err();
        assert!(e.retry_after_secs >= 58, "{e:?}");
        // another key is not held back, and the window passes
        assert!(t.check(&k("ip:2"), 2000).is_ok());
        assert!(t.check(&k("ip:1"), 1000 + MINUTE_MS).is_ok());
    }

    #[test]
    fn lockout_after_failures_and_success_clears() {
        let t = Throttle::default();
        let keys = vec!["ip:1".to_owned(), "user:a".to_owned()];
        let mut now = 1_000_000_000;
        t.check(&keys, now).unwrap();
        for _ in 0..MAX_FAILURES - 1 {
            t.record(&keys, false, now);
            now += 1000;
        }
        t.record(&keys, true, now);
        // cleared: nine more failures do not lock
        for _ in 0..MAX_FAILURES - 1 {
            t.record(&keys, false, now);
            now += 1000;
        }
        t.check(&keys, now).unwrap();
        t.record(&keys, false, now);
        let e = t.check(&k("user:a"), now + 1).unwrap_err();
        assert!(e.message.contains("failed attempts"), "{e:?}");
        assert!(e.retry_after_secs > 800, "{e:?}");
        assert!(t.check(&k("user:a"), now + lockout_ms() + 1).is_ok());
        // failures spread beyond the window do not add up
        let t = Throttle::default();
        let mut now = 0;
        for _ in 0..MAX_FAILURES * 2 {
            now += lockout_ms() / 5;
            t.check(&k("ip:9"), now).unwrap();
            t.record(&k("ip:9"), false, now);
        }
    }

    #[tokio::test]
    async fn hashes_are_bounded() {
        let t = std::sync::Arc::new(Throttle::default());
        let running = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (t, running, peak) = (t.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                t.hash(move || {
                    use std::sync::atomic::Ordering::SeqCst;
                    let n = running.fetch_add(1, SeqCst) + 1;
                    peak.fetch_max(n, SeqCst);
                    std::thread::sleep(Duration::from_millis(50));
                    running.fetch_sub(1, SeqCst);
                })
                .await
            }));
        }
        for task in tasks {
            assert!(task.await.unwrap().is_ok());
        }
        assert!(peak.load(std::sync::atomic::Ordering::SeqCst) <= MAX_CONCURRENT_HASHES);
    }
}
