//! `advisories:` in the reporter config: where the reporter fetches the
//! advisory feed it hands to agents, and how often.

use std::time::Duration;

use serde::Deserialize;

/// Config `advisories:`: where the reporter fetches the feed, and how often.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// `https://…` (or `http://`) of a debsecan feed or the tracker's JSON.
    pub url: String,
    /// How often (default 6h).
    #[serde(default)]
    pub every: Option<vigil_rules::duration::PolicyDuration>,
}

impl FeedConfig {
    pub fn interval(&self) -> Duration {
        self.every
            .map_or(Duration::from_secs(6 * 3600), |d| d.as_std())
            .max(Duration::from_secs(1))
    }
}
