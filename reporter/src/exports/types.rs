//! The export feature's limits, shapes and checks of its inputs.

use std::path::{Path as FsPath, PathBuf};

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::audit::AuditLog;
use crate::config::erasure::ErasureConfig;
use crate::store::Store;

/// What the export routes reach: the store, the audit log, which roles
/// prove the export phase, and where and how large archives may be. Built
/// from the application state in `app.rs`.
#[derive(Clone)]
pub struct Exports {
    pub store: Store,
    pub audit: Arc<AuditLog>,
    pub erasure: Arc<ErasureConfig>,
    /// Where archives from before migration 0022 are kept (`DATA/exports`).
    pub dir: PathBuf,
    pub max_bytes: u64,
}

/// Largest archive accepted by default.
pub const DEFAULT_MAX_EXPORT: u64 = 2 * 1024 * 1024 * 1024;
/// How long a link lives unless staff say otherwise.
pub const DEFAULT_LINK: std::time::Duration = std::time::Duration::from_secs(7 * 86400);
/// The longest a link may live.
pub const MAX_LINK: std::time::Duration = std::time::Duration::from_secs(30 * 86400);
/// The header carrying the archive's SHA-256 (hex) on upload and download.
pub const SHA_HEADER: &str = "x-archive-sha256";

pub(crate) fn valid_account(a: &str) -> bool {
    crate::extract::valid_account(a)
}

pub(crate) fn valid_sha(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// An archive from before migration 0022, kept on the disk of the reporter
/// that received it (its `exports` row names no upload).
pub(crate) fn archive_path(dir: &FsPath, account: &str, sha: &str) -> PathBuf {
    dir.join(account).join(format!("{sha}.tar.gz"))
}

/// The largest piece of an archive held in memory or in one row.
pub const CHUNK: usize = 1024 * 1024;
/// Chunks no `exports` row names (an upload cut off, a reporter killed)
/// are deleted by [`sweep`] once this old.
pub(crate) const ORPHAN_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Uploaded {
    pub account: String,
    pub sha256: String,
    pub size: u64,
    /// False when the same archive was already stored.
    pub created: bool,
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRequest {
    /// How long the link works (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportLink {
    /// The download path, relative to the reporter's public URL; shown once.
    pub path: String,
    pub expires_at: String,
    pub sha256: String,
    pub size: u64,
    /// The host that proved and uploaded the archive.
    pub host: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequestBody {
    /// Who asked (the customer's ticket, or the admin).
    pub requested_by: String,
    #[serde(default)]
    pub reason: Option<String>,
    /// How long the export stays available (`72h`, `7d`); default 7 days, at most 30.
    #[serde(default)]
    pub valid_for: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ExportRequestView {
    pub account: String,
    /// `pending` (no host proved an archive yet), `proved` (not uploaded yet),
    /// `ready` (uploaded: a link can be made), or `ended`.
    pub state: String,
    pub requested_by: String,
    pub reason: String,
    pub requested_at: String,
    pub expires_at: String,
    pub sha256: Option<String>,
    pub host: Option<String>,
}
