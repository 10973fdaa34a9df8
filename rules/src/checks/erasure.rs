//! `erasure`: no data of an account under erasure remains on this host.
//!
//! The reporter's closure workflow hands the agent tasks (`account`, `phase`,
//! pseudonymous `identifiers`); in `check` mode they come from `with.tasks`.
//! For every task of a phase this host handles (a phase is handled when its
//! section is present in `with`), the collector runs the configured deleter
//! (a hook, or a built-in one) and then verifies absence; the facts list what
//! was done and every verification with its outcome. [`judge`] turns that into
//! the evidence the reporter reads: `tasks[]` with `done`, `checked` and a
//! digest of `checked`.
//!
//! [`judge`]: CheckKind::judge

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::password_storage::SqlSource;
use super::{CheckKind, JudgeCtx};
use crate::duration::PolicyDuration;
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub mod readiness;

pub struct Erasure;

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

/// One deletion action the collector ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Action {
    /// `hook papyrs-admin`, `remove /srv/…`, `restic forget …`, `purge /var/log/…`.
    pub what: String,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// The last line of stderr (scrubbed) or the reason it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When it ran (RFC 3339), for deletion runs kept between runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl Action {
    /// A deletion step that ran and succeeded, stamped with `at`.
    pub fn succeeded(what: String, detail: Option<String>, at: String) -> Action {
        Action {
            what,
            ok: true,
            exit_code: Some(0),
            detail,
            at: Some(at),
        }
    }

    /// A deletion step that failed or could not run.
    pub fn failed(what: String, detail: String) -> Action {
        Action {
            what,
            ok: false,
            exit_code: None,
            detail: Some(detail),
            at: None,
        }
    }
}

/// What kind of data one verification looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    Path,
    Sql,
    Backup,
    Log,
    Export,
}

/// One verification of absence (or, for `export`, of the archive).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub kind: ProbeKind,
    /// What was looked at: `path /srv/…`, `sql`, `restic /srv/backup/restic`, `log /var/log/…`.
    pub target: String,
    #[serde(flatten)]
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Nothing of the account there (for `export`: the archive verifies).
    Clean { detail: String },
    /// Something remains (for `export`: the archive does not verify).
    Remaining { detail: String },
    /// Could not be verified.
    Error { reason: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportFacts {
    pub archive: String,
    pub archive_sha256: String,
    pub manifest_entries: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskFacts {
    pub account: String,
    pub phase: String,
    /// Whether this host has a section for the phase.
    pub handled: bool,
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default)]
    pub probes: Vec<Probe>,
    /// Deletion runs of earlier checks for this task that did something: the
    /// evidence of a later, verify-only run still names the deletion that made
    /// the data go.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub export: Option<ExportFacts>,
    /// Why the task could not be run at all (an invalid account id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub tasks: Vec<TaskFacts>,
    /// Gathered when no task is pending for this host: whether it could
    /// carry out its phases now ([`readiness`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness: Option<readiness::Readiness>,
}

finding_codes! {
    pub enum Code {
        DataRemaining = ("data_remaining", High, "site data of the account (a path, database rows) still exists"),
        BackupStillContains = ("backup_still_contains", High, "a backup snapshot still contains the account's paths"),
        LinesRemaining = ("lines_remaining", High, "a log file still has lines carrying one of the account's identifiers"),
        HookFailed = ("hook_failed", High, "the deletion hook or built-in deleter failed, timed out or could not start"),
        ExportInvalid = ("export_invalid", High, "the export archive is missing or its manifest does not match its contents"),
        ErasureNotReady = ("erasure_not_ready", High, "with no erasure pending, the host could not carry out a phase now (a hook missing or not executable, a repository that does not open or lock, a path the service cannot write, an export it cannot build)"),
    }
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

/// One line per verification, as the evidence's `checked` list shows it.
pub fn checked_line(p: &Probe) -> String {
    match &p.outcome {
        Outcome::Clean { detail } | Outcome::Remaining { detail } => {
            format!("{}: {detail}", p.target)
        }
        Outcome::Error { reason } => format!("{}: not verified: {reason}", p.target),
    }
}

/// One line per action, as the evidence's `checked` list shows it.
pub fn action_line(a: &Action) -> String {
    let mut s = format!("{}: {}", a.what, if a.ok { "ok" } else { "failed" });
    if let Some(d) = a.detail.as_deref().filter(|d| !d.is_empty()) {
        s.push_str(&format!(" ({d})"));
    }
    if let Some(at) = &a.at {
        s.push_str(&format!(" at {at}"));
    }
    s
}

/// SHA-256 (hex) of the canonical `checked` list: its compact JSON array.
pub fn checked_digest(checked: &[String]) -> String {
    let canonical = serde_json::to_string(checked).unwrap_or_default();
    hex::encode(Sha256::digest(canonical.as_bytes()))
}

fn check_hook(out: &mut Vec<(Option<&'static str>, String)>, key: &'static str, h: &[String]) {
    if h.first().is_none_or(|p| p.trim().is_empty()) {
        out.push((
            Some(key),
            "`hook` needs a program as its first argument".into(),
        ));
    }
}

impl CheckKind for Erasure {
    type Params = Params;
    type Facts = Facts;
    type Code = Code;
    const SUMMARY: &'static str =
        "no data of an account under erasure remains on this host (site data, backups, pseudonymous log lines)";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        for t in &p.tasks {
            if !valid_account(&t.account) {
                out.push((
                    Some("tasks"),
                    format!("account `{}` is not `[A-Za-z0-9._-]+`", t.account),
                ));
            }
            if !PHASES.contains(&t.phase.as_str()) {
                out.push((
                    Some("tasks"),
                    format!("unknown phase `{}` (known: {})", t.phase, PHASES.join(", ")),
                ));
            }
            if t.identifiers.iter().any(|i| i.trim().is_empty()) {
                out.push((
                    Some("tasks"),
                    "an identifier is empty: it would match every log line".into(),
                ));
            }
        }
        if let Some(s) = &p.site {
            if s.paths.is_empty() && s.sql.is_none() {
                out.push((
                    Some("site"),
                    "`site` needs `paths`, `sql` or both: nothing to verify".into(),
                ));
            }
            if let Some(sql) = &s.sql {
                if !super::one_dsn_source(&sql.dsn, &sql.dsn_file, &sql.dsn_env) {
                    out.push((
                        Some("site"),
                        "`sql` takes exactly one of `dsn`, `dsn_file`, `dsn_env`".into(),
                    ));
                }
            }
            if let Some(h) = &s.hook {
                check_hook(&mut out, "site", h);
            }
        }
        for (key, b) in [
            ("local_backups", &p.local_backups),
            ("offline_backups", &p.offline_backups),
        ] {
            if let Some(b) = b {
                if b.restic.is_empty() {
                    out.push((Some(key), "give at least one `restic` repository".into()));
                }
                if b.paths_in_backup.is_empty() {
                    out.push((
                        Some(key),
                        "`paths_in_backup` is empty: nothing to verify".into(),
                    ));
                }
                if let Some(h) = &b.hook {
                    check_hook(&mut out, key, h);
                }
            }
        }
        if let Some(sql) = p.export.as_ref().and_then(|x| x.sql.as_ref()) {
            if !super::one_dsn_source(&sql.dsn, &sql.dsn_file, &sql.dsn_env) {
                out.push((
                    Some("export"),
                    "`sql` takes exactly one of `dsn`, `dsn_file`, `dsn_env`".into(),
                ));
            }
        }
        if let Some(l) = &p.logs {
            if l.paths.is_empty() {
                out.push((Some("logs"), "`paths` is empty: nothing to verify".into()));
            }
            if let Some(h) = &l.hook {
                check_hook(&mut out, "logs", h);
            }
        }
        out
    }

    fn judge(_p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let handled: Vec<&TaskFacts> = facts.tasks.iter().filter(|t| t.handled).collect();
        if let (true, Some(r)) = (handled.is_empty(), &facts.readiness) {
            return readiness::judge(r);
        }
        if facts.tasks.is_empty() || handled.is_empty() {
            let mut v = if facts.tasks.is_empty() {
                Verdict::skipped("no erasure pending")
            } else {
                Verdict::skipped(format!(
                    "no erasure pending in a phase this host handles ({} task(s) for other phases)",
                    facts.tasks.len()
                ))
            };
            v.evidence = serde_json::json!({ "tasks": [] });
            return v;
        }
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut entries = Vec::new();
        for t in &handled {
            let subject = format!("{} ({})", t.account, t.phase);
            let mut done = t.error.is_none();
            if let Some(e) = &t.error {
                errors.push(format!("{subject}: {e}"));
            }
            for a in t.actions.iter().filter(|a| !a.ok) {
                done = false;
                let why = a.detail.clone().unwrap_or_default();
                let code = a
                    .exit_code
                    .map(|c| format!(" (exit {c})"))
                    .unwrap_or_default();
                findings.push(
                    Code::HookFailed.finding(&subject, format!("{} failed{code}: {why}", a.what)),
                );
            }
            let mut checked = Vec::new();
            for a in &t.earlier {
                checked.push(format!("earlier run: {}", action_line(a)));
            }
            for a in &t.actions {
                checked.push(action_line(a));
            }
            for pr in &t.probes {
                checked.push(checked_line(pr));
                match &pr.outcome {
                    Outcome::Clean { .. } => {}
                    Outcome::Remaining { detail } => {
                        done = false;
                        let code = match pr.kind {
                            ProbeKind::Path | ProbeKind::Sql => Code::DataRemaining,
                            ProbeKind::Backup => Code::BackupStillContains,
                            ProbeKind::Log => Code::LinesRemaining,
                            ProbeKind::Export => Code::ExportInvalid,
                        };
                        findings.push(code.finding(&subject, format!("{}: {detail}", pr.target)));
                    }
                    Outcome::Error { reason } => {
                        done = false;
                        errors.push(format!("{subject}: {}: {reason}", pr.target));
                    }
                }
            }
            if t.error.is_none() && t.probes.is_empty() {
                done = false;
                errors.push(format!("{subject}: nothing was verified"));
            }
            if t.phase == "export" && t.export.is_none() && t.error.is_none() {
                done = false;
            }
            let mut entry = serde_json::json!({
                "account": t.account,
                "phase": t.phase,
                "done": done,
                "digest": checked_digest(&checked),
                "checked": checked,
                // What the deleters did, with their details ("3 removed",
                // "2 snapshots rewritten"): the certificate records the
                // deletion run itself, not only a later verification.
                "actions": t.actions,
            });
            if let (Some(x), Some(obj)) = (&t.export, entry.as_object_mut()) {
                obj.insert("archive".into(), x.archive.clone().into());
                obj.insert("archive_sha256".into(), x.archive_sha256.clone().into());
                obj.insert("manifest_entries".into(), x.manifest_entries.into());
            }
            entries.push(entry);
        }
        let evidence = serde_json::json!({ "tasks": entries });
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = evidence;
            return v;
        }
        let n = handled.len();
        Verdict::from_findings(
            findings,
            format!("{n} erasure task(s) verified done"),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: chrono::Utc::now(),
            host: "h".into(),
        }
    }

    fn params() -> Params {
        serde_json::from_value(serde_json::json!({
            "site": {"paths": ["/srv/papyrs/sites/{account}"]},
            "logs": {"paths": ["/var/log/papyrs/*.log"], "purge": true},
        }))
        .unwrap()
    }

    fn task(phase: &str, probes: Vec<Probe>, actions: Vec<Action>) -> TaskFacts {
        TaskFacts {
            account: "acme".into(),
            phase: phase.into(),
            handled: true,
            actions,
            probes,
            earlier: vec![],
            export: None,
            error: None,
        }
    }

    fn probe(kind: ProbeKind, target: &str, outcome: Outcome) -> Probe {
        Probe {
            kind,
            target: target.into(),
            outcome,
        }
    }

    fn clean(d: &str) -> Outcome {
        Outcome::Clean { detail: d.into() }
    }

    #[test]
    fn no_tasks_is_skipped() {
        let v = Erasure::judge(&params(), &Facts::default(), &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Skipped);
        assert_eq!(v.summary, "no erasure pending");
        let mut t = task("offline_backups", vec![], vec![]);
        t.handled = false;
        let v = Erasure::judge(
            &params(),
            &Facts {
                tasks: vec![t],
                readiness: None,
            },
            &ctx(),
        );
        assert_eq!(v.status, crate::verdict::CheckStatus::Skipped);
    }

    #[test]
    fn verified_task_passes_with_digest_of_checked() {
        let facts = Facts {
            readiness: None,
            tasks: vec![task(
                "site",
                vec![
                    probe(
                        ProbeKind::Path,
                        "path /srv/papyrs/sites/acme",
                        clean("absent"),
                    ),
                    probe(ProbeKind::Sql, "sql", clean("0 rows")),
                ],
                vec![],
            )],
        };
        let v = Erasure::judge(&params(), &facts, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Pass, "{v:?}");
        let t = &v.evidence["tasks"][0];
        assert_eq!(t["done"], true);
        assert_eq!(t["checked"][0], "path /srv/papyrs/sites/acme: absent");
        assert_eq!(t["checked"][1], "sql: 0 rows");
        let expected = hex::encode(Sha256::digest(
            br#"["path /srv/papyrs/sites/acme: absent","sql: 0 rows"]"#,
        ));
        assert_eq!(t["digest"], expected);
    }

    #[test]
    fn remaining_data_and_failed_hooks_fail() {
        let facts = Facts {
            readiness: None,
            tasks: vec![
                task(
                    "site",
                    vec![probe(
                        ProbeKind::Path,
                        "path /srv/x",
                        Outcome::Remaining {
                            detail: "present".into(),
                        },
                    )],
                    vec![Action {
                        what: "hook papyrs-admin".into(),
                        ok: false,
                        exit_code: Some(3),
                        detail: Some("no such site".into()),
                        at: None,
                    }],
                ),
                task(
                    "logs",
                    vec![probe(
                        ProbeKind::Log,
                        "log /var/log/a.log",
                        Outcome::Remaining {
                            detail: "2 lines".into(),
                        },
                    )],
                    vec![],
                ),
            ],
        };
        let v = Erasure::judge(&params(), &facts, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Fail);
        let codes: Vec<_> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["hook_failed", "data_remaining", "lines_remaining"]);
        assert_eq!(v.evidence["tasks"][0]["done"], false);
        assert_eq!(v.evidence["tasks"][1]["done"], false);
    }

    #[test]
    fn unverifiable_is_error_never_pass() {
        let facts = Facts {
            readiness: None,
            tasks: vec![task(
                "site",
                vec![probe(
                    ProbeKind::Sql,
                    "sql",
                    Outcome::Error {
                        reason: "cannot connect".into(),
                    },
                )],
                vec![],
            )],
        };
        let v = Erasure::judge(&params(), &facts, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Error);
        let facts = Facts {
            readiness: None,
            tasks: vec![task("site", vec![], vec![])],
        };
        let v = Erasure::judge(&params(), &facts, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Error);
    }

    #[test]
    fn export_entry_carries_the_archive() {
        let mut t = task(
            "export",
            vec![probe(
                ProbeKind::Export,
                "archive /x.tar.gz",
                clean("manifest verifies (3 files)"),
            )],
            vec![],
        );
        t.export = Some(ExportFacts {
            archive: "/x.tar.gz".into(),
            archive_sha256: "ab".into(),
            manifest_entries: 3,
        });
        let v = Erasure::judge(
            &params(),
            &Facts {
                tasks: vec![t],
                readiness: None,
            },
            &ctx(),
        );
        assert_eq!(v.status, crate::verdict::CheckStatus::Pass);
        let e = &v.evidence["tasks"][0];
        assert_eq!(e["archive"], "/x.tar.gz");
        assert_eq!(e["archive_sha256"], "ab");
        assert_eq!(e["manifest_entries"], 3);
    }

    #[test]
    fn validation_rejects_unsafe_accounts_and_empty_identifiers() {
        assert!(valid_account("acme.co_1-x"));
        for bad in ["", ".", "..", "a/b", "a b", "$(x)", "{account}"] {
            assert!(!valid_account(bad), "{bad}");
        }
        let p: Params = serde_json::from_value(serde_json::json!({
            "tasks": [{"account": "../etc", "phase": "site", "identifiers": [""]},
                      {"account": "a", "phase": "nope"}],
            "site": {},
        }))
        .unwrap();
        let msgs: Vec<String> = Erasure::validate(&p).into_iter().map(|(_, m)| m).collect();
        assert_eq!(msgs.len(), 4, "{msgs:?}");
    }
}
