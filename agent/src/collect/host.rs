//! The collectors' toolbox: where the host is ([`HostCtx`]: its root, so a
//! policy path is read under a prepared tree in tests), reads shared within a
//! run ([`RunMemo`]), blocking work off the async threads ([`blocking`]), file
//! reading ([`read_optional`], [`stat_identity`]) and io errors in the house's
//! words ([`io_reason`]).

use std::any::Any;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::pace::Pace;

use super::CollectError;

/// Where and how facts are gathered.
#[derive(Debug, Clone)]
pub struct HostCtx {
    /// The host's root: `/` on a real host, a prepared tree in tests.
    pub root: PathBuf,
    /// Where checks keep state between runs.
    pub state_dir: PathBuf,
    /// Priority and read budget of the file-heavy checks (`log_secrets`,
    /// `file_integrity`, `clamav`), and, within one check, its stop switch.
    pub pace: Pace,
}

impl HostCtx {
    pub fn live() -> Self {
        HostCtx {
            root: PathBuf::from("/"),
            state_dir: PathBuf::from("/var/lib/vigil/state"),
            pace: Pace::default(),
        }
    }

    /// Whether this is the running system's own root, so that its programs
    /// (`sshd -T`, `nft`) describe it.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// A policy path (absolute, as on the host) under this root.
    pub fn path(&self, p: impl AsRef<Path>) -> PathBuf {
        let p = p.as_ref();
        match p.strip_prefix("/") {
            Ok(rel) => self.root.join(rel),
            Err(_) => self.root.join(p),
        }
    }

    /// The host path of a file under this root, for messages.
    pub fn display(&self, p: &Path) -> String {
        match p.strip_prefix(&self.root) {
            Ok(rel) if !self.is_live() => format!("/{}", rel.display()),
            _ => p.display().to_string(),
        }
    }
}

/// Reads that several checks of one run would otherwise repeat (e.g. `restic
/// snapshots` of one repository, asked by three `backup_freshness` checks):
/// the first check to ask does the read, the others wait for and share its
/// result. [`crate::engine::run`] makes a new, empty memo for every run and
/// drops it with the run, so nothing read in one run is seen by the next.
/// Outside a run (no memo in scope) nothing is shared.
#[derive(Debug, Clone, Default)]
pub struct RunMemo {
    cells: Arc<Mutex<HashMap<String, Arc<dyn Any + Send + Sync>>>>,
}

tokio::task_local! {
    static RUN_MEMO: RunMemo;
}

impl RunMemo {
    /// The memo of the run this task belongs to; a fresh one (shared by
    /// nobody else) outside a run.
    pub fn current() -> RunMemo {
        RUN_MEMO.try_with(RunMemo::clone).unwrap_or_default()
    }

    /// Runs `f` (one check of the run) with this memo as its [`RunMemo::current`].
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        RUN_MEMO.scope(self, f).await
    }

    /// The cell for `key`: a collector fills it with `get_or_try_init`; a
    /// failed or abandoned fill leaves it empty for the next asker. Keys must
    /// say everything the read depends on, and start with the collector's name.
    pub fn cell<T: Send + Sync + 'static>(&self, key: &str) -> Arc<tokio::sync::OnceCell<T>> {
        let fresh = || Arc::new(tokio::sync::OnceCell::<T>::new());
        let Ok(mut cells) = self.cells.lock() else {
            return fresh();
        };
        let cell = cells
            .entry(key.to_owned())
            .or_insert_with(|| fresh() as Arc<dyn Any + Send + Sync>)
            .clone();
        // Another type under the same key is a bug in the keys: do not share.
        cell.downcast::<tokio::sync::OnceCell<T>>()
            .unwrap_or_else(|_| fresh())
    }
}

/// Runs file-bound work off the async threads, so timeouts still fire.
/// A stopped task is [`CollectError::Stopped`], in the caller's error type.
pub async fn blocking<T: Send + 'static, E: From<CollectError> + Send + 'static>(
    f: impl FnOnce() -> Result<T, E> + Send + 'static,
) -> Result<T, E> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| E::from(CollectError::Stopped(e)))?
}

/// Reads a file as text; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, CollectError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CollectError::io("read", path, e)),
    }
}

/// A file's stat identity: 64 bits of SHA-256 over device, inode, size,
/// mtime and ctime (seconds and nanoseconds) — what changes whenever its
/// content can have changed through the filesystem. ctime cannot be set
/// from user space (`touch -d` and `utimensat` set it to now), so a rewrite
/// that restores the old mtime still changes it; writes to the raw block
/// device under the filesystem, or a clock set back, do not. The checks that
/// skip unchanged files by it (`dpkg_verify`, `clamav`) say what covers that.
pub fn stat_identity(md: &std::fs::Metadata) -> [u8; 8] {
    use sha2::{Digest, Sha256};
    use std::os::unix::fs::MetadataExt;
    let mut h = Sha256::new();
    for v in [
        md.dev(),
        md.ino(),
        md.size(),
        md.mtime() as u64,
        md.mtime_nsec() as u64,
        md.ctime() as u64,
        md.ctime_nsec() as u64,
    ] {
        h.update(v.to_le_bytes());
    }
    let mut out = [0u8; 8];
    out.copy_from_slice(h.finalize().get(..8).unwrap_or(&[0; 8]));
    out
}

/// An io error in lower case, without the `(os error N)` tail.
pub fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_owned();
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().collect::<String>() + chars.as_str(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_identity_follows_content_changes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        std::fs::write(&f, "one\n").unwrap();
        let a = stat_identity(&std::fs::metadata(&f).unwrap());
        assert_eq!(a, stat_identity(&std::fs::metadata(&f).unwrap()));
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&f, "two\n").unwrap();
        assert_ne!(a, stat_identity(&std::fs::metadata(&f).unwrap()));
    }

    #[tokio::test]
    async fn a_memo_is_shared_within_its_scope_only() {
        let run = RunMemo::default();
        let a = run
            .clone()
            .scope(async { RunMemo::current().cell::<u32>("k") })
            .await;
        let b = run
            .clone()
            .scope(async { RunMemo::current().cell::<u32>("k") })
            .await;
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(*a.get_or_init(|| async { 1 }).await, 1);
        assert_eq!(b.get(), Some(&1));
        // The next run's memo starts empty.
        let next = RunMemo::default()
            .scope(async { RunMemo::current().cell::<u32>("k") })
            .await;
        assert_eq!(next.get(), None);
        // Outside any run nothing is shared.
        assert!(!Arc::ptr_eq(
            &RunMemo::current().cell::<u32>("k"),
            &RunMemo::current().cell::<u32>("k")
        ));
        // A type mismatch under one key is not shared either.
        assert_eq!(run.cell::<String>("k").get(), None);
    }
}
