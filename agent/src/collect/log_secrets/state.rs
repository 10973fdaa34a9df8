//! The scan's incremental state: one JSON file per check in the state
//! directory, keying each file by (device, inode) with its size, a SHA-256
//! of its first block, where reading stopped and the redacted hits found
//! before; and, for the journal, its cursor.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::log_secrets::{HitFact, Params};

use crate::collect::host::{io_reason, HostCtx};
use crate::pace::Pace;

/// The first block, hashed to recognise a file again.
pub(super) const HEAD: usize = 4096;
pub(super) const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct FileState {
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) path: String,
    pub(super) size: u64,
    pub(super) head_len: u64,
    pub(super) head_sha256: String,
    /// Where the next run starts (the start of a line, or inside a line
    /// longer than a chunk) and the number of that line minus one.
    pub(super) offset: u64,
    pub(super) lines: u64,
    pub(super) gzip: bool,
    pub(super) hits: Vec<HitFact>,
    pub(super) hits_total: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct State {
    pub(super) version: u32,
    pub(super) files: Vec<FileState>,
    /// Where the journal was read up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) journal: Option<JournalState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(super) struct JournalState {
    /// The cursor of the last entry read (`journalctl --after-cursor`).
    pub(super) cursor: String,
    /// Entries read since the state began: the "line" numbers of hits.
    pub(super) lines: u64,
    pub(super) hits: Vec<HitFact>,
    /// Each hit's entry time (µs since the epoch), to drop hits of entries
    /// the journal no longer holds.
    pub(super) hit_times: Vec<u64>,
    pub(super) hits_total: u64,
}

/// One state file per check: the hash of what decides its results.
pub(super) fn state_file(p: &Params, ctx: &HostCtx) -> PathBuf {
    let key = serde_json::json!({
        "paths": p.paths,
        "optional_paths": p.optional_paths,
        "detectors": p.detectors,
        "extra": p.extra_patterns,
        "max_line": p.max_line_bytes,
    });
    // (the journal's state rides along; `journal`/`sql` do not change the
    // key, so turning the journal on keeps the files' offsets)
    let digest = Sha256::digest(key.to_string().as_bytes());
    ctx.state_dir.join("log_secrets").join(format!(
        "{}.json",
        hex::encode(digest.get(..12).unwrap_or(&[]))
    ))
}

/// Why the scan state could not be read or kept: a warning, the scan goes on
/// from the start of every file (or reads them all again next run).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    #[error("state `{}` is unreadable ({source}); every file is read from the start", path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot read state `{}`: {}; every file is read from the start", path.display(), io_reason(source))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write state `{}`: {}; the next run reads every file again", path.display(), io_reason(source))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("state: {0}")]
    Encode(#[source] serde_json::Error),
}

pub(super) fn load_state(path: &Path) -> Result<State, StateError> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.version == STATE_VERSION => Ok(s),
            Ok(_) => Ok(State::default()),
            Err(source) => Err(StateError::Unreadable {
                path: path.to_path_buf(),
                source,
            }),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(source) => Err(StateError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

pub(super) fn save_state(path: &Path, state: &State) -> Result<(), StateError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |source: std::io::Error| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).map_err(StateError::Encode)?;
    // Exclusive, no-follow creation: a symlink planted at the temp name is
    // never written through (a leftover is unlinked first).
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0))
            .open(&tmp)
    };
    let mut f = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp).map_err(fail)?;
            create()
        }
        r => r,
    }
    .map_err(fail)?;
    f.write_all(&bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

pub(super) fn head_hash(file: &File, len: u64, pace: &Pace) -> std::io::Result<String> {
    pace.take(len)?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(HEAD)];
    file.read_exact_at(&mut buf, 0)?;
    Ok(hex::encode(Sha256::digest(&buf)))
}
