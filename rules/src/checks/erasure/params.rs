//! The `with` map of an `erasure` check: the pending tasks and, per phase
//! this host handles, how to delete and where to verify.

use serde::{Deserialize, Serialize};

use crate::checks::password_storage::SqlSource;
use crate::duration::PolicyDuration;

/// The phases, in the order the reporter's closure runs them.
pub const PHASES: &[&str] = &["export", "site", "local_backups", "offline_backups", "logs"];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
// The phases are boxed: they are large and most hosts have one or two.
pub struct Params {
    /// Pending tasks; injected by the daemon, static for tests and one-off runs.
    #[serde(default)]
    pub tasks: Vec<Task>,
    #[serde(default)]
    pub site: Option<Box<SitePhase>>,
    #[serde(default)]
    pub local_backups: Option<Box<BackupPhase>>,
    #[serde(default)]
    pub offline_backups: Option<Box<BackupPhase>>,
    #[serde(default)]
    pub logs: Option<Box<LogsPhase>>,
    #[serde(default)]
    pub export: Option<Box<ExportPhase>>,
    /// How long a hook or a restic command may run before it is killed.
    #[serde(default = "default_hook_timeout")]
    pub hook_timeout: PolicyDuration,
}

fn default_hook_timeout() -> PolicyDuration {
    PolicyDuration(std::time::Duration::from_secs(300))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Task {
    pub account: String,
    pub phase: String,
    /// The account's pseudonymous identifiers, as log lines carry them.
    #[serde(default)]
    pub identifiers: Vec<String>,
    /// When the closure was requested (RFC 3339); `delete: rotation` proves
    /// every snapshot older than this is gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SitePhase {
    /// Host paths (`{account}` substituted; globs allowed) that must not exist.
    #[serde(default)]
    pub paths: Vec<String>,
    /// A query counting the account's rows (`$1` is the account); must return 0.
    #[serde(default)]
    pub sql: Option<SqlSource>,
    /// The deletion command: argv, `{account}` substituted, no shell.
    #[serde(default)]
    pub hook: Option<Vec<String>>,
    /// Built-in deleter when there is no hook: remove `paths` recursively.
    #[serde(default)]
    pub remove_paths: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupPhase {
    #[serde(default)]
    pub restic: Vec<ResticRepo>,
    /// Paths as recorded in the backups (not under `--root`), `{account}` substituted.
    #[serde(default)]
    pub paths_in_backup: Vec<String>,
    #[serde(default)]
    pub hook: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResticRepo {
    /// A local repository path (a host path) or a restic URL (`sftp:`, `rest:`, `s3:`…).
    pub repository: String,
    /// A host path; handed to restic as `RESTIC_PASSWORD_FILE`, never on the command line.
    pub password_file: String,
    /// Built-in deleter when the phase has no hook.
    #[serde(default)]
    pub delete: ResticDelete,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResticDelete {
    /// Verify only.
    #[default]
    None,
    /// `restic rewrite --exclude PATH --forget` then `restic prune --max-unused 0`
    /// (restic ≥ 0.15): the snapshots keep everything else, and no pack keeps
    /// the account's blobs.
    Rewrite,
    /// `restic forget` every snapshot containing a path, then `restic prune
    /// --max-unused 0`; refused for any snapshot that holds anything besides the
    /// account's paths (checked with `restic ls` first): forgetting it would
    /// destroy the other accounts' backups too.
    Forget,
    /// Nothing deleted here: the operator's rotation removes old snapshots. The
    /// agent proves it: no snapshot older than the closure request remains,
    /// and none holds the account's paths or blobs.
    Rotation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogsPhase {
    /// Host path globs; gzip'd rotations (`.gz`) are read and purged too.
    #[serde(default)]
    pub paths: Vec<String>,
    /// The built-in purge: rewrite the files without the lines carrying an identifier.
    #[serde(default)]
    pub purge: bool,
    #[serde(default)]
    pub hook: Option<Vec<String>>,
    /// Also prove the systemd journal holds no entry carrying an identifier
    /// (read with `journalctl -o json`); see docs/erasure.md for how entries go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal: Option<JournalLogs>,
}

/// The systemd journal. Its files cannot be rewritten line by line; entries
/// carrying an identifier go with `vacuum` (`journalctl --rotate`, then
/// `--vacuum-time` removing the archived files that hold them) or, with
/// `rotation`, the proof waits until journald's own retention removed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JournalLogs {
    /// `vacuum` or `rotation` (verify only).
    pub delete: JournalDelete,
    /// A journal directory (host path) instead of the system journal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalDelete {
    Vacuum,
    Rotation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportPhase {
    /// The site's directory, `{account}` substituted.
    pub site_root: String,
    /// Where the archive is written.
    pub output_dir: String,
    /// Pages held in the database: `query` (`$1` is the account) returns a
    /// slug and a Markdown body per row; each becomes `pages/<slug>.md`
    /// (docs/export-format.md). No rows is an error unless `allow_empty`.
    #[serde(default)]
    pub sql: Option<SqlSource>,
}

/// An account id safe to put in a path or an argv: `[A-Za-z0-9._-]+`, not `.`/`..`.
pub fn valid_account(a: &str) -> bool {
    !a.is_empty()
        && a != "."
        && a != ".."
        && a.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `{account}` replaced; the account must have passed [`valid_account`].
pub fn substitute(template: &str, account: &str) -> String {
    template.replace("{account}", account)
}

impl Params {
    pub fn handles(&self, phase: &str) -> bool {
        match phase {
            "site" => self.site.is_some(),
            "local_backups" => self.local_backups.is_some(),
            "offline_backups" => self.offline_backups.is_some(),
            "logs" => self.logs.is_some(),
            "export" => self.export.is_some(),
            _ => false,
        }
    }
}
