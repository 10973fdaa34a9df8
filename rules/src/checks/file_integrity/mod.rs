//! `file_integrity`: the system software is unchanged.
//!
//! Facts: every installed package's files checked against dpkg's md5sums (and
//! its conffiles against the status file, judged apart because admins edit
//! them), and a diff of chosen paths against a SHA-256 baseline written by
//! `vigil-agent baseline`. Judgement: no package file changed or missing, no
//! file added, removed or changed against the baseline, and the baseline
//! itself is the one the agent wrote.

pub mod cache;
mod evidence;
mod facts;
mod params;

pub use evidence::{BaselineSeen, DpkgCounts, Evidence};
pub use facts::{Baseline, Diff, DiffKind, Dpkg, DpkgProblem, Facts, ProblemKind};
pub use params::{Params, DEFAULT_FULL_PASS_EVERY, MAX_FULL_PASS_EVERY};

use super::{CheckKind, JudgeCtx};
use crate::duration::PolicyDuration;
use crate::finding_codes;
use crate::verdict::{FindingCode, Severity, Verdict};

pub struct FileIntegrity;

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
    type Evidence = Evidence;
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
        if let Some(d) = p.full_pass_every {
            if !p.dpkg_verify {
                out.push((
                    Some("full_pass_every"),
                    "`full_pass_every` without `dpkg_verify`".to_owned(),
                ));
            }
            if d.as_std() > MAX_FULL_PASS_EVERY {
                out.push((
                    Some("full_pass_every"),
                    format!(
                        "`full_pass_every` is {} days; at most {} days: what the verification cache cannot see (raw writes to the disk) must not stay unseen longer",
                        d.as_std().as_secs() / 86_400,
                        MAX_FULL_PASS_EVERY.as_secs() / 86_400
                    ),
                ));
            }
        }
        out.extend(super::relative_paths(
            None,
            p.paths.iter().chain(p.baseline.iter()),
        ));
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

        let evidence = Evidence {
            dpkg: facts.dpkg.as_ref().map(|d| DpkgCounts {
                packages: d.packages,
                files_checked: d.files_checked,
                conffiles_checked: d.conffiles_checked,
                bytes_read: d.bytes_read,
                problems: d.problems.len(),
                files_hashed: d.files_hashed,
                files_from_cache: d.files_from_cache,
                full_pass: d.full_pass,
                full_pass_reason: d.full_pass_reason.clone(),
                last_full_pass: d.last_full_pass,
                full_pass_every: PolicyDuration(p.full_pass_every()).to_string(),
                cache_warning: d.cache_warning.clone(),
            }),
            baseline: facts.baseline.as_ref().map(|b| BaselineSeen {
                path: b.path.clone(),
                sha256: b.sha256.clone(),
                recorded_sha256: b.recorded_sha256.clone(),
                created_at: b.created_at.clone(),
                entries: b.entries,
                files_now: b.files_now,
                diffs: b.diffs.len(),
            }),
        };
        if !facts.errors.is_empty() {
            let mut v = Verdict::error(facts.errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }
        let mut parts = Vec::new();
        if let Some(d) = &facts.dpkg {
            let how = if d.full_pass {
                format!("full pass, {} files hashed", d.files_hashed)
            } else {
                format!(
                    "{} files hashed, {} unchanged since last hashed and taken from the cache; last full pass {}",
                    d.files_hashed,
                    d.files_from_cache,
                    d.last_full_pass.map_or_else(
                        || "unknown".to_owned(),
                        |t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    )
                )
            };
            parts.push(format!(
                "{} files of {} packages match their md5sums ({how})",
                d.files_checked, d.packages
            ));
            if let Some(w) = &d.cache_warning {
                parts.push(w.clone());
            }
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
        let v = crate::checks::judged::<FileIntegrity>(&params("{}"), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(v.findings[0].code, "conffile_changed");
        let v = crate::checks::judged::<FileIntegrity>(&params("conffiles_fail: true"), &f, &ctx());
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
        let v = crate::checks::judged::<FileIntegrity>(&p, &f, &ctx());
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
        let v = crate::checks::judged::<FileIntegrity>(&params("{}"), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
    }

    #[test]
    fn full_pass_every_is_a_bounded_duration_for_dpkg_verify() {
        assert_eq!(
            params("{}").full_pass_every(),
            std::time::Duration::from_secs(86_400)
        );
        assert_eq!(
            params("full_pass_every: 6h").full_pass_every(),
            std::time::Duration::from_secs(6 * 3600)
        );
        assert!(FileIntegrity::validate(&params("full_pass_every: 31d")).is_empty());
        let e = FileIntegrity::validate(&params("full_pass_every: 60d"));
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, Some("full_pass_every"));
        let e = FileIntegrity::validate(&params(
            "dpkg_verify: false\nfull_pass_every: 1h\npaths: [/x]\nbaseline: /b",
        ));
        assert_eq!(e.len(), 1, "{e:?}");
        for bad in ["0s", "soon", "-1h"] {
            let node = crate::yaml::parse(&format!("full_pass_every: {bad}")).unwrap();
            assert!(crate::yaml::from_node::<Params>(&node).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_summary_says_what_was_hashed_and_what_came_from_the_cache() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-26T06:00:00Z")
            .unwrap()
            .to_utc();
        let mut d = Dpkg {
            packages: 2,
            files_checked: 10,
            conffiles_checked: 2,
            files_hashed: 12,
            full_pass: true,
            full_pass_reason: Some("no verification cache yet".into()),
            last_full_pass: Some(t),
            ..Default::default()
        };
        let f = |d: &Dpkg| Facts {
            dpkg: Some(d.clone()),
            ..Default::default()
        };
        let v = crate::checks::judged::<FileIntegrity>(&params("{}"), &f(&d), &ctx());
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(
            v.summary,
            "10 files of 2 packages match their md5sums (full pass, 12 files hashed)"
        );
        assert_eq!(
            v.evidence["dpkg"]["full_pass_reason"],
            "no verification cache yet"
        );
        assert_eq!(v.evidence["dpkg"]["last_full_pass"], "2026-11-26T06:00:00Z");
        d.full_pass = false;
        d.full_pass_reason = None;
        d.files_hashed = 1;
        d.files_from_cache = 11;
        d.cache_warning = Some("cannot write the verification cache `/s`".into());
        let v =
            crate::checks::judged::<FileIntegrity>(&params("full_pass_every: 12h"), &f(&d), &ctx());
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(
            v.summary,
            "10 files of 2 packages match their md5sums (1 files hashed, 11 unchanged since last hashed and taken from the cache; last full pass 2026-11-26T06:00:00Z); cannot write the verification cache `/s`"
        );
        assert_eq!(v.evidence["dpkg"]["files_from_cache"], 11);
        assert_eq!(v.evidence["dpkg"]["full_pass_every"], "12h");
        assert_eq!(
            v.evidence["dpkg"]["cache_warning"],
            "cannot write the verification cache `/s`"
        );
    }

    #[test]
    fn paths_need_a_baseline() {
        assert!(!FileIntegrity::validate(&params("paths: [/usr/local/bin]")).is_empty());
        assert!(FileIntegrity::validate(&params("{}")).is_empty());
    }
}
