//! `metrics:` in the reporter config: who may scrape `GET /metrics` besides staff.

use std::path::PathBuf;

use serde::Deserialize;

/// Shortest scrape token accepted (`openssl rand -hex 32` makes 64 characters).
pub const MIN_TOKEN_CHARS: usize = 32;

/// `metrics:` in the reporter config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// A file holding the bearer token a Prometheus server scrapes with
    /// (its `bearer_token_file`); staff tokens are accepted without it.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

impl MetricsConfig {
    /// The scrape token, read from `token_file` (surrounding whitespace
    /// trimmed); the error names the file and the field.
    pub fn scrape_token(&self) -> anyhow::Result<Option<String>> {
        let Some(path) = &self.token_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            anyhow::anyhow!(
                "`metrics.token_file`: cannot read `{}`: {e}",
                path.display()
            )
        })?;
        let token = text.trim();
        if token.chars().count() < MIN_TOKEN_CHARS || token.contains(char::is_whitespace) {
            anyhow::bail!(
                "`metrics.token_file`: `{}` must hold one token of at least {MIN_TOKEN_CHARS} characters without spaces (`openssl rand -hex 32`)",
                path.display()
            );
        }
        Ok(Some(token.to_owned()))
    }
}
