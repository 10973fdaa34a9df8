//! Ships spooled reports to the reporter, oldest first, and removes each one
//! only after a 200/201 acknowledgement. Statuses (see docs/agent-daemon.md):
//!
//! - 200 / 201: acknowledged (stored now or already stored): removed.
//! - 401: the token is unknown or revoked: stop, keep the spool, ask for `enroll`.
//! - 400 / 403 / 413 / 422: this report will never be accepted: moved to
//!   `spool/rejected/`, the next one is shipped.
//! - anything else, connection errors and timeouts: stop here and retry later
//!   with exponential backoff and jitter, still in order.

use std::time::Duration;

use reqwest::StatusCode;

use super::spool::{Loaded, Spool};
use crate::client::{http, send_report, Conn};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The spool is empty (or holds only what was just quarantined/rejected).
    Drained { sent: usize },
    /// The reporter could not take a report now; retry later.
    Retry { sent: usize, reason: String },
    /// The token was refused (or there is none): nothing ships until `enroll`.
    NeedsEnroll { sent: usize },
}

/// Exponential backoff with jitter: 0.5 s, 1 s, 2 s … up to [`Backoff::CAP`],
/// each delay drawn in [d/2, d].
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    failures: u32,
}

impl Backoff {
    pub const BASE: Duration = Duration::from_millis(500);
    pub const CAP: Duration = Duration::from_secs(300);

    pub fn reset(&mut self) {
        self.failures = 0;
    }

    pub fn next_delay(&mut self, rng: &mut fastrand::Rng) -> Duration {
        let exp = Self::BASE.saturating_mul(1u32 << self.failures.min(16));
        self.failures = self.failures.saturating_add(1);
        let d = exp.min(Self::CAP);
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        Duration::from_millis(rng.u64(ms / 2..=ms))
    }
}

/// Ships every spooled report in order until one cannot be delivered now.
pub async fn ship_pending(conn: &Conn, spool: &Spool) -> Outcome {
    let mut sent = 0;
    if conn.token.is_none() {
        return Outcome::NeedsEnroll { sent };
    }
    let entries = match spool.entries() {
        Ok(e) => e,
        Err(e) => {
            return Outcome::Retry {
                sent,
                reason: format!("cannot list the spool `{}`: {e}", spool.dir().display()),
            }
        }
    };
    for entry in entries {
        let body = match spool.load(&entry) {
            Ok(Loaded::Report(b)) => b,
            Ok(Loaded::Missing) => continue,
            Ok(Loaded::Quarantined(to)) => {
                tracing::error!(
                    file = %to.display(),
                    "spooled report `{}` is not valid JSON; moved to quarantine, not shipped",
                    entry.name()
                );
                continue;
            }
            Err(e) => {
                return Outcome::Retry {
                    sent,
                    reason: format!("cannot read spooled report `{}`: {e}", entry.name()),
                }
            }
        };
        let (status, text) = match send_report(conn, body).await {
            Ok(answer) => answer,
            Err(why) => {
                return Outcome::Retry {
                    sent,
                    reason: why.to_string(),
                }
            }
        };
        match status {
            StatusCode::OK | StatusCode::CREATED => {
                if let Err(e) = spool.remove(&entry) {
                    return Outcome::Retry {
                        sent,
                        reason: format!(
                            "report `{}` acknowledged but cannot be removed from the spool: {e}",
                            entry.name()
                        ),
                    };
                }
                sent += 1;
                tracing::debug!(report = %entry.name(), status = status.as_u16(), "report delivered");
            }
            StatusCode::UNAUTHORIZED => {
                let msg = http::error_message(&text);
                tracing::error!(
                    "the reporter refused this agent's token ({msg}); reports stay in the spool \
                     until the agent is enrolled again: run `vigil-agent enroll`"
                );
                return Outcome::NeedsEnroll { sent };
            }
            StatusCode::BAD_REQUEST
            | StatusCode::FORBIDDEN
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNPROCESSABLE_ENTITY => {
                let msg = http::error_message(&text);
                match spool.reject(&entry) {
                    Ok(to) => tracing::error!(
                        status = status.as_u16(),
                        file = %to.display(),
                        "the reporter will never accept report `{}` ({msg}); moved to rejected",
                        entry.name()
                    ),
                    Err(e) => {
                        return Outcome::Retry {
                            sent,
                            reason: format!(
                            "report `{}` refused ({status}) and cannot be moved to rejected: {e}",
                            entry.name()
                        ),
                        }
                    }
                }
            }
            _ => {
                let msg = http::error_message(&text);
                return Outcome::Retry {
                    sent,
                    reason: format!("the reporter answered {status}: {msg}"),
                };
            }
        }
    }
    Outcome::Drained { sent }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_up_to_the_cap() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut b = Backoff::default();
        let mut last_max = Duration::ZERO;
        for i in 0..20u32 {
            let d = b.next_delay(&mut rng);
            let nominal = Backoff::BASE
                .saturating_mul(1u32 << i.min(16))
                .min(Backoff::CAP);
            assert!(
                d >= nominal / 2 && d <= nominal,
                "{i}: {d:?} vs {nominal:?}"
            );
            last_max = last_max.max(d);
        }
        assert!(last_max <= Backoff::CAP && last_max >= Backoff::CAP / 2);
        b.reset();
        assert!(b.next_delay(&mut rng) <= Backoff::BASE);
    }
}
