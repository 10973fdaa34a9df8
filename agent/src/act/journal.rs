//! What the deleters did, kept between runs in the state directory
//! (`STATE/erasure/ACCOUNT.PHASE.json`, mode 0600): the deletion steps that
//! succeeded, with their times, and the blob ids each repository held for
//! the account before they were deleted. A later run that only verifies
//! still names the deletion that made the data go, and still knows which
//! blobs must be absent.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use vigil_rules::checks::erasure::Action;

#[derive(Debug, Default, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    runs: Vec<Action>,
    #[serde(default)]
    blobs: BTreeMap<String, BTreeSet<String>>,
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    stored: Stored,
    /// How many of `runs` were there before this run.
    earlier: usize,
    /// Why the journal could not be read or written, if so.
    pub problem: Option<String>,
}

impl Journal {
    pub fn load(state_dir: &std::path::Path, account: &str, phase: &str) -> Journal {
        let path = state_dir
            .join("erasure")
            .join(format!("{account}.{phase}.json"));
        let (stored, problem) = match std::fs::read(&path) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(s) => (s, None),
                Err(e) => (
                    Stored::default(),
                    Some(format!("`{}` is not a journal: {e}", path.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Stored::default(), None),
            Err(e) => (
                Stored::default(),
                Some(format!(
                    "cannot read `{}`: {}",
                    path.display(),
                    crate::collect::host::io_reason(&e)
                )),
            ),
        };
        let earlier = stored.runs.len();
        Journal {
            path,
            stored,
            earlier,
            problem,
        }
    }

    /// Deletion steps recorded by earlier runs.
    pub fn earlier(&self) -> Vec<Action> {
        self.stored
            .runs
            .iter()
            .take(self.earlier)
            .cloned()
            .collect()
    }

    /// Keeps a deletion step that succeeded.
    pub fn record(&mut self, a: &Action) {
        if a.ok && a.at.is_some() {
            self.stored.runs.push(a.clone());
            self.save();
        }
    }

    pub fn add_blobs(&mut self, repo: &str, blobs: BTreeSet<String>) {
        if !blobs.is_empty() {
            self.stored
                .blobs
                .entry(repo.to_owned())
                .or_default()
                .extend(blobs);
        }
    }

    pub fn blobs(&self, repo: &str) -> BTreeSet<String> {
        self.stored.blobs.get(repo).cloned().unwrap_or_default()
    }

    /// Writes the journal (temporary file, fsync, rename).
    pub fn save(&mut self) {
        if let Err(e) = self.write() {
            self.problem = Some(format!(
                "cannot write `{}`: {}",
                self.path.display(),
                crate::collect::host::io_reason(&e)
            ));
        }
    }

    fn write(&self) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::PermissionsExt;
        let dir = self
            .path
            .parent()
            .ok_or_else(|| std::io::Error::other("no directory"))?;
        std::fs::create_dir_all(dir)?;
        let mut tmp = tempfile::Builder::new()
            .prefix(".journal-")
            .tempfile_in(dir)?;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))?;
        tmp.write_all(&serde_json::to_vec_pretty(&self.stored).map_err(std::io::Error::other)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&self.path).map_err(|e| e.error)?;
        Ok(())
    }
}
