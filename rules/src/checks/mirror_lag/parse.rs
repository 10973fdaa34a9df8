//! Pure parsers of what the `mirror_lag` collector reads.

use chrono::{DateTime, Utc};

/// Why a heartbeat file holds no time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeartbeatError {
    #[error("the heartbeat file is empty")]
    Empty,
    /// Its first word, cut to 40 characters.
    #[error("`{0}` is neither an RFC 3339 time nor Unix seconds")]
    NotATime(String),
}

/// A heartbeat file's time: its first word, RFC 3339 or Unix seconds.
pub fn parse_heartbeat(text: &str) -> Result<DateTime<Utc>, HeartbeatError> {
    let word = text.split_whitespace().next().unwrap_or("");
    if word.is_empty() {
        return Err(HeartbeatError::Empty);
    }
    if let Ok(d) = DateTime::parse_from_rfc3339(word) {
        return Ok(d.with_timezone(&Utc));
    }
    if let Ok(secs) = word.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            let whole = secs.trunc() as i64;
            let nanos = ((secs - secs.trunc()) * 1e9) as u32;
            if let Some(d) = DateTime::from_timestamp(whole, nanos) {
                return Ok(d);
            }
        }
    }
    let shown: String = word.chars().take(40).collect();
    Err(HeartbeatError::NotATime(shown))
}
