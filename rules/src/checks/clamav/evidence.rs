//! The evidence a `clamav` verdict carries.

use serde::{Deserialize, Serialize};

use super::facts::{DateSource, SelfTest};

/// What a `clamav` verdict shows: clamd down, or what it answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Evidence {
    /// clamd did not answer PING.
    Down { address: String, down: String },
    /// clamd answered: its versions, the signatures' age, the self-test and
    /// the scan's counts.
    Up(Box<Answered>),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answered {
    pub address: String,
    pub engine_version: Option<String>,
    pub database_version: Option<u64>,
    pub database_date: Option<chrono::DateTime<chrono::Utc>>,
    pub database_date_source: Option<DateSource>,
    pub database_files: Vec<String>,
    pub signature_age_hours: Option<i64>,
    pub self_test: Option<SelfTest>,
    pub scan: Option<ScanCounts>,
}

/// The scan of `scan_paths`, in counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanCounts {
    pub files_seen: u64,
    pub files_scanned: u64,
    pub files_skipped_unchanged: u64,
    pub bytes_scanned: u64,
    /// How many files were infected (the findings name them).
    pub infected: usize,
    /// How many files could not be scanned.
    pub errors: usize,
    pub cache_note: Option<String>,
}
