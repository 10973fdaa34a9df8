//! A restic repository driven with the real `restic`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::agent::{stderr, stdout};
use crate::machine::require_tool;

/// A restic repository the test drives with the real `restic` (Debian's
/// `restic`): no cache, times in UTC, every command checked.
pub struct Restic {
    pub bin: PathBuf,
    pub repo: PathBuf,
    pub pass: PathBuf,
    /// Where relative paths given to `backup` are read from (default: the
    /// test's working directory).
    pub cwd: Option<PathBuf>,
}

impl Restic {
    /// `repo` with the password in the file `pass`; fails with an install
    /// hint when restic is missing.
    pub fn new(repo: &Path, pass: &Path) -> Restic {
        Restic {
            bin: require_tool("restic", "restic"),
            repo: repo.to_owned(),
            pass: pass.to_owned(),
            cwd: None,
        }
    }

    /// Runs `restic ARGS` on the repository, whatever its outcome.
    pub fn output(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.arg("-r")
            .arg(&self.repo)
            .arg("--password-file")
            .arg(&self.pass)
            .arg("--no-cache")
            .args(args)
            .env_remove("RESTIC_REPOSITORY")
            .env_remove("RESTIC_PASSWORD_FILE")
            .env("TZ", "UTC");
        if let Some(d) = &self.cwd {
            cmd.current_dir(d);
        }
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run restic: {e}"))
    }

    /// Runs `restic ARGS`, which must succeed, and returns its stdout.
    pub fn cmd(&self, args: &[&str]) -> String {
        let o = self.output(args);
        assert!(
            o.status.success(),
            "restic {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        stdout(&o)
    }

    /// A read-only command; `None` while another process (the agent) holds
    /// the repository's lock.
    pub fn read(&self, args: &[&str]) -> Option<String> {
        let o = self.output(args);
        if !o.status.success() && stderr(&o).contains("locked") {
            return None;
        }
        assert!(o.status.success(), "restic {args:?}: {}", stderr(&o));
        Some(stdout(&o))
    }

    /// Whether `restic cat blob ID` finds the blob (any other failure
    /// fails the test).
    pub fn has_blob(&self, id: &str) -> bool {
        let o = self.output(&["cat", "blob", id]);
        if !o.status.success() {
            assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
        }
        o.status.success()
    }

    /// Paths of every snapshot's tree, all snapshots together. Read with
    /// `--no-lock`: a test polling the repository must not hold the shared
    /// lock an agent's `rewrite` or `prune` needs exclusively.
    pub fn all_paths(&self) -> String {
        for _ in 0..600 {
            let Some(snaps) = self.read(&["--no-lock", "snapshots", "--json"]) else {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            };
            let snaps: serde_json::Value = serde_json::from_str(&snaps).unwrap();
            let mut out = String::new();
            let mut complete = true;
            for s in snaps.as_array().unwrap() {
                // A snapshot listed a moment ago may be gone: an agent's
                // `rewrite --forget` replaced it meanwhile. Look again.
                let o = self.output(&["--no-lock", "ls", s["id"].as_str().unwrap()]);
                let err = stderr(&o);
                if o.status.success() {
                    out.push_str(&stdout(&o));
                } else if err.contains("locked") || err.contains("no such file or directory") {
                    complete = false;
                } else {
                    panic!("restic ls: {err}");
                }
            }
            if complete {
                return out;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("restic repository {} stayed locked", self.repo.display());
    }
}
