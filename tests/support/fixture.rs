//! Fixture hosts: temporary roots laid out by a test.

use std::path::{Path, PathBuf};

/// A fixture host: a temporary root directory laid out by the test.
pub struct FixtureHost {
    pub dir: tempfile::TempDir,
}

impl FixtureHost {
    pub fn new() -> Self {
        FixtureHost {
            dir: tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `text` at the host path `path` (absolute, as on the host).
    pub fn write(&self, path: &str, text: &str) -> PathBuf {
        let full = self.root().join(path.trim_start_matches('/'));
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)
                .unwrap_or_else(|e| panic!("mkdir {}: {e}", parent.display()));
        }
        std::fs::write(&full, text).unwrap_or_else(|e| panic!("write {}: {e}", full.display()));
        full
    }

    /// Copies a scenario folder (`tests/data/<case>/root`) into this root.
    pub fn copy_tree(&self, from: &Path) {
        copy_dir(from, self.root());
    }
}

impl Default for FixtureHost {
    fn default() -> Self {
        Self::new()
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap_or_else(|e| panic!("mkdir {}: {e}", to.display()));
    for entry in std::fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()))
    {
        let entry = entry.unwrap_or_else(|e| panic!("{e}"));
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}
