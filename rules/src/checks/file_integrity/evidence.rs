//! The evidence a `file_integrity` verdict carries. The reporter reads
//! `baseline.path` and `baseline.sha256` from it to follow each host's baseline.
//! Read leniently (what is missing is empty), written out whole.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Evidence {
    pub dpkg: Option<DpkgCounts>,
    pub baseline: Option<BaselineSeen>,
}

/// dpkg's verification, in counts (the findings name the files).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct DpkgCounts {
    pub packages: u64,
    pub files_checked: u64,
    pub conffiles_checked: u64,
    pub bytes_read: u64,
    /// How many files are not as dpkg installed them.
    pub problems: usize,
    pub files_hashed: u64,
    pub files_from_cache: u64,
    pub full_pass: bool,
    pub full_pass_reason: Option<String>,
    pub last_full_pass: Option<DateTime<Utc>>,
    /// The policy's `full_pass_every` (or its default), e.g. `1d`.
    pub full_pass_every: String,
    pub cache_warning: Option<String>,
}

/// The baseline compared against, and how many files differ.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BaselineSeen {
    pub path: String,
    /// SHA-256 of the baseline file as read this run.
    pub sha256: String,
    pub recorded_sha256: Option<String>,
    pub created_at: Option<String>,
    pub entries: u64,
    pub files_now: u64,
    /// How many files were added, removed or changed.
    pub diffs: usize,
}
