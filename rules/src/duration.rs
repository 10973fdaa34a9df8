//! Durations as policy authors write them: `90s`, `15m`, `1h`, `30d`, `1y`,
//! `2h 30m`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// Why a duration does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DurationError {
    #[error("empty duration")]
    Empty,
    #[error("`{0}` is not a duration (write it like `90s`, `15m`, `1h`, `30d`)")]
    Unreadable(String),
    #[error("`{0}` is zero; a duration must be positive")]
    Zero(String),
}

/// A day that is not written `YYYY-MM-DD`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a date (write it as YYYY-MM-DD)")]
pub struct DateError(pub String);

/// A duration read from a policy or config, kept with its original spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyDuration(pub Duration);

impl PolicyDuration {
    pub fn parse(s: &str) -> Result<Self, DurationError> {
        let t = s.trim();
        if t.is_empty() {
            return Err(DurationError::Empty);
        }
        let d =
            humantime::parse_duration(t).map_err(|_| DurationError::Unreadable(t.to_owned()))?;
        if d.is_zero() {
            return Err(DurationError::Zero(t.to_owned()));
        }
        Ok(PolicyDuration(d))
    }

    pub fn as_std(self) -> Duration {
        self.0
    }

    pub fn as_chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

impl fmt::Display for PolicyDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl<'de> Deserialize<'de> for PolicyDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        PolicyDuration::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl Serialize for PolicyDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Dates written `YYYY-MM-DD`, with a message a policy author understands.
pub mod date {
    use chrono::NaiveDate;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn parse(s: &str) -> Result<NaiveDate, super::DateError> {
        NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| super::DateError(s.to_owned()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn serialize<S: Serializer>(v: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&v.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_spellings() {
        assert_eq!(
            PolicyDuration::parse("1h").unwrap().0,
            Duration::from_secs(3600)
        );
        assert_eq!(
            PolicyDuration::parse("15m").unwrap().0,
            Duration::from_secs(900)
        );
        assert_eq!(
            PolicyDuration::parse("30d").unwrap().0,
            Duration::from_secs(30 * 86400)
        );
        assert_eq!(
            PolicyDuration::parse("2h 30m").unwrap().0,
            Duration::from_secs(9000)
        );
    }

    #[test]
    fn rejects_nonsense_and_zero() {
        assert!(PolicyDuration::parse("soon")
            .unwrap_err()
            .to_string()
            .contains("not a duration"));
        assert_eq!(
            PolicyDuration::parse("0s").unwrap_err(),
            DurationError::Zero("0s".into())
        );
        assert_eq!(PolicyDuration::parse(""), Err(DurationError::Empty));
    }
}
