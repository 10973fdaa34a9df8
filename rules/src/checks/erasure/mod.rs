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

mod evidence;
mod facts;
mod params;
pub mod readiness;

pub use evidence::{
    action_line, checked_digest, checked_line, tasks, Evidence, ReadinessSeen, TaskEvidence,
};
pub use facts::{Action, ExportFacts, Facts, Outcome, Probe, ProbeKind, TaskFacts};
pub use params::{
    substitute, valid_account, BackupPhase, ExportPhase, JournalDelete, JournalLogs, LogsPhase,
    Params, ResticDelete, ResticRepo, SitePhase, Task, PHASES,
};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub struct Erasure;

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
    type Evidence = Evidence;
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
            v.evidence = crate::verdict::to_json(Evidence {
                tasks: Vec::new(),
                readiness: None,
            });
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
            entries.push(TaskEvidence {
                account: t.account.clone(),
                phase: t.phase.clone(),
                done,
                digest: checked_digest(&checked),
                checked,
                actions: t.actions.clone(),
                archive: t.export.as_ref().map(|x| x.archive.clone()),
                archive_sha256: t.export.as_ref().map(|x| x.archive_sha256.clone()),
                manifest_entries: t.export.as_ref().map(|x| x.manifest_entries),
            });
        }
        let evidence = Evidence {
            tasks: entries,
            readiness: None,
        };
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
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
    use sha2::{Digest, Sha256};

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
        let v = crate::checks::judged::<Erasure>(&params(), &Facts::default(), &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Skipped);
        assert_eq!(v.summary, "no erasure pending");
        let mut t = task("offline_backups", vec![], vec![]);
        t.handled = false;
        let v = crate::checks::judged::<Erasure>(
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
        let v = crate::checks::judged::<Erasure>(&params(), &facts, &ctx());
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
        let v = crate::checks::judged::<Erasure>(&params(), &facts, &ctx());
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
        let v = crate::checks::judged::<Erasure>(&params(), &facts, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Error);
        let facts = Facts {
            readiness: None,
            tasks: vec![task("site", vec![], vec![])],
        };
        let v = crate::checks::judged::<Erasure>(&params(), &facts, &ctx());
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
        let v = crate::checks::judged::<Erasure>(
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
