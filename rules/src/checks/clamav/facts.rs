//! What the agent collects for `clamav`: clamd's answers, the database's
//! date, the EICAR self-test and the scan of the configured paths.

use serde::{Deserialize, Serialize};

/// Where the signature date came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateSource {
    /// The date in clamd's VERSION answer (the official databases' build time).
    Version,
    /// The newest modification time of the files in the database directory.
    DatabaseFiles,
}

/// What clamd answered to the EICAR test string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "detail")]
pub enum SelfTest {
    /// `FOUND`, with the signature name.
    Detected(String),
    /// `OK`: clamd did not detect the test string.
    NotDetected,
    /// An `ERROR` answer from clamd (size limit, no database…).
    ClamdError(String),
    /// The connection failed or the answer was unreadable.
    Failed(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Infected {
    pub path: String,
    pub signature: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanError {
    pub path: String,
    pub reason: String,
}

/// Results of scanning `scan_paths`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scan {
    pub files_seen: u64,
    /// Files streamed to clamd this run.
    pub files_scanned: u64,
    /// Files whose content hash was already scanned clean with the same signatures.
    pub files_skipped_unchanged: u64,
    pub bytes_scanned: u64,
    pub infected: Vec<Infected>,
    /// clamd's `ERROR` answers and unreadable files: not infections, not clean either.
    pub errors: Vec<ScanError>,
    /// Configured paths that do not exist.
    pub missing_paths: Vec<String>,
    /// Files over `max_file_size_mb`, not scanned.
    pub too_large: Vec<String>,
    /// Why the cache could not be read or written, if so (the scan still ran).
    #[serde(default)]
    pub cache_note: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub address: String,
    /// Why clamd could not be reached; `None` when PING answered PONG.
    pub down: Option<String>,
    /// The engine version (`1.4.6`).
    pub engine_version: Option<String>,
    /// The official database version number, when VERSION carries one.
    pub database_version: Option<u64>,
    pub database_date: Option<chrono::DateTime<chrono::Utc>>,
    pub database_date_source: Option<DateSource>,
    /// Database files found in the database directory (names only).
    #[serde(default)]
    pub database_files: Vec<String>,
    pub self_test: Option<SelfTest>,
    pub scan: Option<Scan>,
    /// Problems that keep the check from a verdict.
    #[serde(default)]
    pub errors: Vec<String>,
}
