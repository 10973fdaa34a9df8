//! The evidence a `log_secrets` verdict carries: how much was read, never
//! what was found (the findings carry the redacted excerpts).

use serde::{Deserialize, Serialize};

use super::facts::ReadMode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// The first files read (at most 200); the rest are only counted.
    pub files: Vec<FileSeen>,
    pub files_scanned: u64,
    pub files_skipped: u64,
    pub bytes_scanned: u64,
    /// Hits in all files, allowed ones included.
    pub hits: u64,
    pub elapsed_ms: u64,
    pub state_warnings: Vec<String>,
}

/// One file: how it was read this run and how many hits it had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileSeen {
    pub path: String,
    pub gzip: bool,
    pub mode: ReadMode,
    pub rotated_from: Option<String>,
    pub from_offset: u64,
    pub to_offset: u64,
    pub bytes_scanned: u64,
    pub hits: u64,
}
