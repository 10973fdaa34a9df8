//! `intake:` in the reporter config: the incident intake's limits.

use serde::Deserialize;

/// `intake:` in the reporter config.

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntakeConfig {
    /// Largest submission body in bytes (default 16384).
    pub max_body_bytes: usize,
    /// Submissions per client address per hour (default 10). Behind a proxy
    /// the client is taken from `Forwarded`/`X-Forwarded-For` only when the
    /// peer is one of the config's `trusted_proxies`.
    pub per_address_per_hour: u32,
    /// Submissions per hour from everyone together (default 200).
    pub global_per_hour: u32,
    /// Largest incident attachment in bytes (default 10 MiB).
    pub max_attachment_bytes: usize,
    /// clamd's socket (`/run/clamav/clamd.ctl`) or `HOST:PORT`: attachments
    /// are scanned there and refused when infected or when clamd cannot answer.
    pub clamd: Option<String>,
    pub max_summary_chars: usize,
    pub max_description_chars: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            max_body_bytes: 16 * 1024,
            per_address_per_hour: 10,
            global_per_hour: 200,
            max_attachment_bytes: 10 * 1024 * 1024,
            clamd: None,
            max_summary_chars: 200,
            max_description_chars: 10_000,
        }
    }
}
