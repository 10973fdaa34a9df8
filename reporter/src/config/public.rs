//! `public_limit:` in the reporter config: the public routes' rate limit and cache.

use serde::Deserialize;

/// Config `public_limit:`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PublicLimit {
    /// Requests per minute per client, sustained (default 60; 0 turns the
    /// limit off, for benchmarks only).
    #[serde(default = "default_per_minute")]
    pub per_minute: u32,
    /// Requests a client may make at once before the rate applies (default 20).
    #[serde(default = "default_burst")]
    pub burst: u32,
    /// How long a rendered document is served again before it is rendered
    /// anew (default 10 s).
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
}

fn default_per_minute() -> u32 {
    60
}
fn default_burst() -> u32 {
    20
}
fn default_cache_seconds() -> u64 {
    10
}

impl Default for PublicLimit {
    fn default() -> Self {
        PublicLimit {
            per_minute: default_per_minute(),
            burst: default_burst(),
            cache_seconds: default_cache_seconds(),
        }
    }
}
