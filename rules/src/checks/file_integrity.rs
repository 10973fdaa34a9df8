//! `file_integrity`: the system software is unchanged.
//!
//! Facts: every installed package's files checked against dpkg's md5sums (and
//! its conffiles against the status file, judged apart because admins edit
//! them), and a diff of chosen paths against a SHA-256 baseline written by
//! `vigil-agent baseline`. Judgement: no package file changed or missing, no
//! file added, removed or changed against the baseline, and the baseline
//! itself is the one the agent wrote.

use serde::{Deserialize, Serialize};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Severity, Verdict};

pub struct FileIntegrity;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Verify installed packages' files against `/var/lib/dpkg/info/*.md5sums`.
    #[serde(default = "yes")]
    pub dpkg_verify: bool,
    /// dpkg's admin directory (with `status` and `info/`).
    #[serde(default = "default_admin_dir")]
    pub dpkg_admin_dir: String,
    /// Changed or missing conffiles fail the check (they are `info` otherwise).
    #[serde(default)]
    pub conffiles_fail: bool,
    /// Files and directories (recursively) covered by the baseline.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Where the baseline of `paths` is stored (written by `vigil-agent baseline`).
    #[serde(default)]
    pub baseline: Option<String>,
    /// Paths (prefixes) left out of the baseline, such as caches.
    #[serde(default)]
    pub exclude: Vec<String>,
}

fn yes() -> bool {
    true
}
fn default_admin_dir() -> String {
    "/var/lib/dpkg".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Changed,
    Missing,
    Unreadable,
}

/// One file of a package that is not as dpkg installed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DpkgProblem {
    pub package: String,
    pub path: String,
    pub kind: ProblemKind,
    pub conffile: bool,
    /// Why the file could not be read, for `unreadable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dpkg {
    pub packages: u64,
    pub files_checked: u64,
    pub conffiles_checked: u64,
    pub bytes_read: u64,
    pub problems: Vec<DpkgProblem>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    Added,
    Removed,
    Changed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub path: String,
    pub kind: DiffKind,
    /// What changed: `content`, `mode 0755 -> 0777`, `owner 0:0 -> 1000:1000`, `size 10 -> 12`, `type`.
    #[serde(default)]
    pub changes: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Baseline {
    pub path: String,
    /// SHA-256 of the baseline file as read this run.
    pub sha256: String,
    /// The hash `vigil-agent baseline` recorded in the state directory, if any.
    pub recorded_sha256: Option<String>,
    pub created_at: Option<String>,
    pub entries: u64,
    pub files_now: u64,
    pub diffs: Vec<Diff>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub dpkg: Option<Dpkg>,
    pub baseline: Option<Baseline>,
    /// Problems that keep the check from a verdict (no dpkg database, no baseline).
    #[serde(default)]
    pub errors: Vec<String>,
}

finding_codes! {
    pub enum Code {
        PackageFileChanged = ("package_file_changed", High, "a file installed by a package differs from its md5sum"),
        PackageFileMissing = ("package_file_missing", Medium, "a file installed by a package is gone"),
        PackageFileUnreadable = ("package_file_unreadable", Medium, "a file installed by a package could not be read"),
        ConffileChanged = ("conffile_changed", Info, "a package's configuration file was edited (fails with `conffiles_fail`)"),
        ConffileMissing = ("conffile_missing", Info, "a package's configuration file is gone (fails with `conffiles_fail`)"),
        FileAdded = ("file_added", High, "a file under a baselined path that the baseline does not have"),
        FileRemoved = ("file_removed", High, "a baselined file is gone"),
        FileChanged = ("file_changed", High, "a baselined file changed (content, mode, owner or size)"),
        BaselineTampered = ("baseline_tampered", Critical, "the baseline file is not the one `vigil-agent baseline` wrote"),
    }
}

impl CheckKind for FileIntegrity {
    type Params = Params;
    type Facts = Facts;
    type Code = Code;
    const SUMMARY: &'static str =
        "package files match dpkg's md5sums and chosen paths match their SHA-256 baseline";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if !p.paths.is_empty() && p.baseline.is_none() {
            out.push((
                Some("paths"),
                "`paths` needs a `baseline` file to compare against".to_owned(),
            ));
        }
        if p.paths.is_empty() && p.baseline.is_some() {
            out.push((Some("baseline"), "`baseline` without `paths`".to_owned()));
        }
        if !p.dpkg_verify && p.paths.is_empty() {
            out.push((
                None,
                "nothing to verify: set `dpkg_verify` or `paths`".to_owned(),
            ));
        }
        for s in p.paths.iter().chain(p.baseline.iter()) {
            if !s.starts_with('/') {
                out.push((None, format!("`{s}` is not an absolute path")));
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        if let Some(d) = &facts.dpkg {
            for pr in &d.problems {
                let (code, what) = match (pr.conffile, pr.kind) {
                    (false, ProblemKind::Changed) => {
                        (Code::PackageFileChanged, "differs from its md5sum")
                    }
                    (false, ProblemKind::Missing) => (Code::PackageFileMissing, "is missing"),
                    (_, ProblemKind::Unreadable) => (Code::PackageFileUnreadable, "cannot be read"),
                    (true, ProblemKind::Changed) => {
                        (Code::ConffileChanged, "(conffile) was edited")
                    }
                    (true, ProblemKind::Missing) => {
                        (Code::ConffileMissing, "(conffile) is missing")
                    }
                };
                let mut msg = format!("`{}` of package {} {what}", pr.path, pr.package);
                if let Some(r) = &pr.reason {
                    msg += &format!(": {r}");
                }
                let mut f = code.finding(&pr.path, msg);
                if pr.conffile && p.conffiles_fail && pr.kind != ProblemKind::Unreadable {
                    f.severity = Severity::Medium;
                }
                findings.push(f);
            }
        }
        if let Some(b) = &facts.baseline {
            if let Some(rec) = &b.recorded_sha256 {
                if rec != &b.sha256 {
                    findings.push(Code::BaselineTampered.finding(
                        &b.path,
                        format!(
                            "baseline `{}` has SHA-256 {} but `vigil-agent baseline` wrote {}",
                            b.path, b.sha256, rec
                        ),
                    ));
                }
            }
            for d in &b.diffs {
                let (code, msg) = match d.kind {
                    DiffKind::Added => (Code::FileAdded, format!("`{}` was added", d.path)),
                    DiffKind::Removed => (Code::FileRemoved, format!("`{}` was removed", d.path)),
                    DiffKind::Changed => (
                        Code::FileChanged,
                        format!("`{}` changed: {}", d.path, d.changes.join(", ")),
                    ),
                };
                findings.push(code.finding(&d.path, msg));
            }
        }

        let evidence = serde_json::json!({
            "dpkg": facts.dpkg.as_ref().map(|d| serde_json::json!({
                "packages": d.packages,
                "files_checked": d.files_checked,
                "conffiles_checked": d.conffiles_checked,
                "bytes_read": d.bytes_read,
                "problems": d.problems.len(),
            })),
            "baseline": facts.baseline.as_ref().map(|b| serde_json::json!({
                "path": b.path,
                "sha256": b.sha256,
                "recorded_sha256": b.recorded_sha256,
                "created_at": b.created_at,
                "entries": b.entries,
                "files_now": b.files_now,
                "diffs": b.diffs.len(),
            })),
        });
        if !facts.errors.is_empty() {
            let mut v = Verdict::error(facts.errors.join("; "));
            v.findings = findings;
            v.evidence = evidence;
            return v;
        }
        let mut parts = Vec::new();
        if let Some(d) = &facts.dpkg {
            parts.push(format!(
                "{} files of {} packages match their md5sums",
                d.files_checked, d.packages
            ));
        }
        if let Some(b) = &facts.baseline {
            parts.push(format!("{} files match baseline {}", b.files_now, b.path));
        }
        Verdict::from_findings(findings, parts.join("; "), evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: chrono::Utc::now(),
            host: "h".into(),
        }
    }

    fn problem(kind: ProblemKind, conffile: bool) -> DpkgProblem {
        DpkgProblem {
            package: "nginx".into(),
            path: "/x".into(),
            kind,
            conffile,
            reason: None,
        }
    }

    #[test]
    fn conffiles_are_info_unless_asked() {
        let f = Facts {
            dpkg: Some(Dpkg {
                packages: 1,
                files_checked: 3,
                problems: vec![problem(ProblemKind::Changed, true)],
                ..Default::default()
            }),
            ..Default::default()
        };
        let v = FileIntegrity::judge(&params("{}"), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(v.findings[0].code, "conffile_changed");
        let v = FileIntegrity::judge(&params("conffiles_fail: true"), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
    }

    #[test]
    fn every_change_has_its_code() {
        let f = Facts {
            dpkg: Some(Dpkg {
                problems: vec![
                    problem(ProblemKind::Changed, false),
                    problem(ProblemKind::Missing, false),
                ],
                ..Default::default()
            }),
            baseline: Some(Baseline {
                path: "/var/lib/vigil/b.json".into(),
                sha256: "aa".into(),
                recorded_sha256: Some("bb".into()),
                diffs: vec![
                    Diff {
                        path: "/a".into(),
                        kind: DiffKind::Added,
                        changes: vec![],
                    },
                    Diff {
                        path: "/b".into(),
                        kind: DiffKind::Removed,
                        changes: vec![],
                    },
                    Diff {
                        path: "/c".into(),
                        kind: DiffKind::Changed,
                        changes: vec!["mode 0755 -> 0777".into()],
                    },
                ],
                ..Default::default()
            }),
            errors: vec![],
        };
        let p = params("paths: [/usr/local/bin]\nbaseline: /var/lib/vigil/b.json\n");
        let v = FileIntegrity::judge(&p, &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "package_file_changed",
                "package_file_missing",
                "baseline_tampered",
                "file_added",
                "file_removed",
                "file_changed"
            ]
        );
        assert!(v.findings[5].message.contains("mode 0755 -> 0777"));
    }

    #[test]
    fn errors_are_errors() {
        let f = Facts {
            errors: vec!["baseline missing".into()],
            ..Default::default()
        };
        let v = FileIntegrity::judge(&params("{}"), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
    }

    #[test]
    fn paths_need_a_baseline() {
        assert!(!FileIntegrity::validate(&params("paths: [/usr/local/bin]")).is_empty());
        assert!(FileIntegrity::validate(&params("{}")).is_empty());
    }
}
