//! What the agent collects for `log_secrets`: per glob what it matched, per
//! file how it was read and the (redacted) hits.

use serde::{Deserialize, Serialize};

use super::detect;
use crate::verdict::FindingCode;

/// One secret found, as the facts carry it: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HitFact {
    pub line: u64,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub excerpt: String,
}

impl From<detect::Hit> for HitFact {
    fn from(h: detect::Hit) -> Self {
        HitFact {
            line: h.line,
            code: h.code.as_str().to_owned(),
            detail: h.detail,
            excerpt: h.excerpt,
        }
    }
}

/// How a file was read this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ReadMode {
    /// From the start: first seen, or state was not usable.
    #[default]
    Full,
    /// From the offset where the last run stopped.
    Resumed,
    /// Shorter than where the last run stopped (or its first block changed):
    /// read again from the start.
    Truncated,
    /// Unchanged since the last run (a compressed file): not read again.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct FileFacts {
    /// The host path.
    pub path: String,
    #[serde(default)]
    pub gzip: bool,
    #[serde(default)]
    pub mode: ReadMode,
    /// The path this file had in the last run, when it was renamed (rotated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotated_from: Option<String>,
    /// Where reading started and stopped (plain files), in bytes.
    #[serde(default)]
    pub from_offset: u64,
    #[serde(default)]
    pub to_offset: u64,
    /// Bytes examined this run (decompressed for gzip).
    #[serde(default)]
    pub bytes_scanned: u64,
    /// Hits, the first `max_findings_per_file`, older runs' first.
    #[serde(default)]
    pub hits: Vec<HitFact>,
    /// All hits, counted.
    #[serde(default)]
    pub hits_total: u64,
    /// Why the file could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Why the path was not read at all: not a regular file (a symlink, a
    /// FIFO, a socket, a device) or reached through a symlinked directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct GlobFacts {
    pub pattern: String,
    pub matched: u64,
    #[serde(default)]
    pub optional: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    #[serde(default)]
    pub globs: Vec<GlobFacts>,
    #[serde(default)]
    pub files: Vec<FileFacts>,
    /// Problems with the state directory: the scan ran, but the next one will
    /// read everything again.
    #[serde(default)]
    pub state_warnings: Vec<String>,
    #[serde(default)]
    pub elapsed_ms: u64,
}
