//! The `with` map of a `log_secrets` check.

use serde::{Deserialize, Serialize};

use super::codes::{Code, DETECTORS};
use super::detect;
use crate::verdict::FindingCode;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Globs of files to scan (`/var/log/**/*.log`, `/var/log/syslog*`);
    /// files ending in `.gz` are read as gzip streams.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Also scan the systemd journal (`journalctl -o export`), from the
    /// cursor where the last run stopped.
    #[serde(default)]
    pub journal: bool,
    /// Also scan the rows of a database query (a sample: at most
    /// `sample_rows`), each row one line of its cells.
    #[serde(default)]
    pub sql: Option<SqlScan>,
    /// Globs that may match no file (every other glob must match one).
    #[serde(default)]
    pub optional_paths: Vec<String>,
    /// Built-in detectors to run, by code; all when absent.
    #[serde(default)]
    pub detectors: Option<Vec<String>>,
    /// More patterns, each a finding `extra_pattern` named by `name`.
    #[serde(default)]
    pub extra_patterns: Vec<ExtraPattern>,
    /// Suppressions, each with a reason.
    #[serde(default)]
    pub allow: Vec<Allow>,
    /// Read only what was appended since the last run (state in the agent's
    /// state directory); findings of earlier runs are kept while the file is.
    #[serde(default = "yes")]
    pub incremental: bool,
    /// Hits kept per file; the rest are counted.
    #[serde(default = "default_max_findings")]
    pub max_findings_per_file: usize,
    /// The widest window of a line examined around a candidate, in bytes.
    #[serde(default = "default_max_line")]
    pub max_line_bytes: usize,
}

/// A query whose rows are scanned like log lines (uploads metadata, order
/// notes, free-text columns where a card number must never be stored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlScan {
    /// `sqlite:///path/app.db` or `postgres://user@host/db`; prefer
    /// `dsn_file` or `dsn_env` when it holds a password.
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub dsn_file: Option<String>,
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// Any `SELECT`; every column of every row is scanned (text, or
    /// numbers written out). Sample in the query itself for big tables
    /// (`TABLESAMPLE SYSTEM (5)`).
    pub query: String,
    /// At most this many rows are read.
    #[serde(default = "default_sample_rows")]
    pub sample_rows: u64,
}

fn default_sample_rows() -> u64 {
    10_000
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraPattern {
    pub name: String,
    /// A regex; its group `secret` (or else group 1, or else the whole match)
    /// is what gets redacted.
    pub regex: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allow {
    /// A regex matched against the redacted excerpt.
    #[serde(default)]
    pub pattern: Option<String>,
    /// An exact `FILE:LINE`.
    #[serde(default)]
    pub location: Option<String>,
    /// Only hits of this code.
    #[serde(default)]
    pub code: Option<String>,
    pub reason: String,
}

fn yes() -> bool {
    true
}
fn default_max_findings() -> usize {
    100
}
fn default_max_line() -> usize {
    64 * 1024
}

impl Params {
    /// Whether the detector with this code is enabled.
    pub fn enabled(&self, code: Code) -> bool {
        match &self.detectors {
            None => true,
            Some(list) => list.iter().any(|d| d == code.as_str()),
        }
    }

    /// The scanner these params describe.
    pub fn scanner(&self) -> Result<detect::Scanner, detect::ScannerError> {
        let extras = self
            .extra_patterns
            .iter()
            .map(|x| {
                regex::bytes::Regex::new(&x.regex)
                    .map(|regex| detect::Extra {
                        name: x.name.clone(),
                        regex,
                    })
                    .map_err(|e| detect::ScannerError::ExtraPattern {
                        name: x.name.clone(),
                        message: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let enabled: Vec<Code> = DETECTORS
            .iter()
            .copied()
            .filter(|c| self.enabled(*c))
            .collect();
        detect::Scanner::new(extras, self.max_line_bytes, &enabled)
    }
}
