//! `log_secrets`: logs hold no passwords, secrets or card numbers.
//!
//! The agent walks the `paths` globs and feeds each file's bytes to
//! [`detect::Scanner`], which reports [`detect::Hit`]s: a line number, a code
//! and a redacted excerpt. The facts carry only those; [`LogSecrets::judge`]
//! applies `allow` and turns them into findings.
//!
//! ```
//! use vigil_rules::checks::log_secrets::detect::Scanner;
//! let scanner = Scanner::new(vec![], 64 * 1024, vigil_rules::checks::log_secrets::DETECTORS).unwrap();
//! let mut hits = Vec::new();
//! scanner.scan(b"GET /login?user=bob&password=hunter2\n", 1, &mut hits);
//! assert_eq!(hits[0].excerpt, "GET /login?user=bob&password=[REDACTED]");
//! ```

pub mod card;
mod codes;
pub mod detect;
mod evidence;
mod facts;
pub mod journal;
mod params;

pub use codes::{Code, DETECTORS};
pub use evidence::{Evidence, FileSeen};
pub use facts::{Facts, FileFacts, GlobFacts, HitFact, ReadMode};
pub use params::{Allow, ExtraPattern, Params, SqlScan};

use super::{CheckKind, JudgeCtx};
use crate::verdict::{CheckStatus, FileLocation, Finding, FindingCode, Verdict};

pub struct LogSecrets;

struct CompiledAllow<'a> {
    allow: &'a Allow,
    pattern: Option<regex::Regex>,
    used: bool,
}

impl CompiledAllow<'_> {
    fn matches(&self, file: &str, hit: &HitFact) -> bool {
        if self.allow.code.as_deref().is_some_and(|c| c != hit.code) {
            return false;
        }
        if let Some(loc) = &self.allow.location {
            if *loc != format!("{file}:{}", hit.line) {
                return false;
            }
        }
        if let Some(p) = &self.pattern {
            if !p.is_match(&hit.excerpt) {
                return false;
            }
        }
        self.allow.location.is_some() || self.pattern.is_some()
    }
}

impl CheckKind for LogSecrets {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str = "logs hold no passwords, secrets or card numbers";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.paths.is_empty() && p.optional_paths.is_empty() && !p.journal && p.sql.is_none() {
            out.push((
                Some("paths"),
                "`paths` needs at least one glob (or set `journal` or `sql`)".to_owned(),
            ));
        }
        if let Some(sql) = &p.sql {
            if !super::one_dsn_source(&sql.dsn, &sql.dsn_file, &sql.dsn_env) {
                out.push((
                    Some("sql"),
                    "`sql` takes exactly one of `dsn`, `dsn_file`, `dsn_env`".to_owned(),
                ));
            }
            if sql.query.trim().is_empty() {
                out.push((Some("sql"), "`sql.query` is empty".to_owned()));
            }
            if sql.sample_rows == 0 {
                out.push((
                    Some("sql"),
                    "`sql.sample_rows` must be at least 1".to_owned(),
                ));
            }
        }
        for g in p.paths.iter().chain(&p.optional_paths) {
            if let Err(e) = glob_ok(g) {
                out.push((Some("paths"), format!("glob `{g}`: {e}")));
            }
        }
        if let Some(list) = &p.detectors {
            for d in list {
                if !DETECTORS.iter().any(|c| c.as_str() == d) {
                    let names: Vec<&str> = DETECTORS.iter().map(|c| c.as_str()).collect();
                    out.push((
                        Some("detectors"),
                        format!("unknown detector `{d}`; known: {}", names.join(", ")),
                    ));
                }
            }
            if list.is_empty() && p.extra_patterns.is_empty() {
                out.push((Some("detectors"), "no detector enabled".to_owned()));
            }
        }
        for x in &p.extra_patterns {
            if let Err(e) = regex::bytes::Regex::new(&x.regex) {
                out.push((
                    Some("extra_patterns"),
                    format!("`{}`: invalid regex: {e}", x.name),
                ));
            }
        }
        for a in &p.allow {
            if a.pattern.is_none() && a.location.is_none() {
                out.push((
                    Some("allow"),
                    "an allow entry needs `pattern` or `location`".to_owned(),
                ));
            }
            if let Some(pat) = &a.pattern {
                if let Err(e) = regex::Regex::new(pat) {
                    out.push((Some("allow"), format!("invalid regex `{pat}`: {e}")));
                }
            }
            if a.reason.trim().is_empty() {
                out.push((Some("allow"), "an allow entry needs a `reason`".to_owned()));
            }
        }
        if p.max_line_bytes < 256 {
            out.push((
                Some("max_line_bytes"),
                "`max_line_bytes` must be at least 256".to_owned(),
            ));
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let mut allows: Vec<CompiledAllow> = p
            .allow
            .iter()
            .map(|a| CompiledAllow {
                allow: a,
                pattern: a.pattern.as_deref().and_then(|s| regex::Regex::new(s).ok()),
                used: false,
            })
            .collect();
        let mut findings: Vec<Finding> = Vec::new();
        let mut errors: Vec<String> = Vec::new();
        for g in &facts.globs {
            if let Some(e) = &g.error {
                errors.push(format!("glob `{}`: {e}", g.pattern));
                findings.push(Code::NoFilesMatched.finding(
                    &g.pattern,
                    format!("glob `{}` could not be read: {e}", g.pattern),
                ));
            } else if g.matched == 0 && !g.optional {
                findings.push(Code::NoFilesMatched.finding(
                    &g.pattern,
                    format!(
                        "`{}` matched no file: nothing was scanned for it",
                        g.pattern
                    ),
                ));
            }
        }
        let mut scanned = 0u64;
        let mut hits_total = 0u64;
        let mut bytes = 0u64;
        let mut skipped = 0u64;
        for f in &facts.files {
            if let Some(why) = &f.skipped {
                skipped += 1;
                let mut fd =
                    Code::SkippedFile.finding(&f.path, format!("`{}` was not read: {why}", f.path));
                fd.location = Some(FileLocation {
                    file: f.path.clone(),
                    line: None,
                });
                findings.push(fd);
                continue;
            }
            if let Some(e) = &f.error {
                errors.push(format!("`{}`: {e}", f.path));
                let mut fd = Code::UnreadableFile
                    .finding(&f.path, format!("`{}` could not be read: {e}", f.path));
                fd.location = Some(FileLocation {
                    file: f.path.clone(),
                    line: None,
                });
                findings.push(fd);
                continue;
            }
            scanned += 1;
            bytes += f.bytes_scanned;
            hits_total += f.hits_total;
            for h in &f.hits {
                let mut allowed = false;
                for a in allows.iter_mut() {
                    if a.matches(&f.path, h) {
                        a.used = true;
                        allowed = true;
                    }
                }
                if allowed {
                    continue;
                }
                let code = Code::ALL
                    .iter()
                    .copied()
                    .find(|c| c.as_str() == h.code)
                    .unwrap_or(Code::ExtraPattern);
                let what = match &h.detail {
                    Some(d) => format!("{} ({d})", code.as_str()),
                    None => code.as_str().to_owned(),
                };
                let mut fd = code.finding(&f.path, format!("{}:{}: {what}", f.path, h.line));
                fd.location = Some(FileLocation {
                    file: f.path.clone(),
                    line: Some(h.line),
                });
                fd.excerpt = Some(h.excerpt.clone());
                findings.push(fd);
            }
            let kept = f.hits.len() as u64;
            if f.hits_total > kept {
                findings.push(Code::FindingsTruncated.finding(
                    &f.path,
                    format!(
                        "`{}`: {} more hits not listed ({} in all)",
                        f.path,
                        f.hits_total - kept,
                        f.hits_total
                    ),
                ));
            }
        }
        for a in &allows {
            if !a.used {
                let what = a
                    .allow
                    .location
                    .clone()
                    .or_else(|| a.allow.pattern.clone())
                    .unwrap_or_default();
                findings.push(Code::UnusedAllow.finding(
                    &what,
                    format!(
                        "allow `{what}` ({}) matched nothing this run",
                        a.allow.reason
                    ),
                ));
            }
        }
        let files: Vec<FileSeen> = facts
            .files
            .iter()
            .take(EVIDENCE_FILES)
            .map(|f| FileSeen {
                path: f.path.clone(),
                gzip: f.gzip,
                mode: f.mode,
                rotated_from: f.rotated_from.clone(),
                from_offset: f.from_offset,
                to_offset: f.to_offset,
                bytes_scanned: f.bytes_scanned,
                hits: f.hits_total,
            })
            .collect();
        let evidence = Evidence {
            files,
            files_scanned: scanned,
            files_skipped: skipped,
            bytes_scanned: bytes,
            hits: hits_total,
            elapsed_ms: facts.elapsed_ms,
            state_warnings: facts.state_warnings.clone(),
        };
        if scanned == 0 && errors.is_empty() {
            let mut v = Verdict::error(if skipped > 0 {
                "no regular file matched `paths` (only symlinks or special files, not read): nothing was scanned, which proves nothing"
            } else {
                "no file matched `paths`: nothing was scanned, which proves nothing"
            });
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }
        let ok = format!(
            "{scanned} files, {} scanned, no secret found",
            human_bytes(bytes)
        );
        let mut v = Verdict::from_findings(findings, ok, evidence);
        if !errors.is_empty() {
            v.status = CheckStatus::Error;
            v.summary = if errors.len() == 1 {
                errors.join("")
            } else {
                format!(
                    "{} files or globs could not be read; first: {}",
                    errors.len(),
                    errors.first().cloned().unwrap_or_default()
                )
            };
        }
        v
    }
}

/// Files listed one by one in the evidence; the rest are only counted.
const EVIDENCE_FILES: usize = 200;

fn glob_ok(g: &str) -> Result<(), String> {
    if !g.starts_with('/') {
        return Err("must be an absolute path".into());
    }
    Ok(())
}

fn human_bytes(b: u64) -> String {
    const MIB: f64 = 1024.0 * 1024.0;
    if b >= 1024 * 1024 {
        format!("{:.1} MiB", b as f64 / MIB)
    } else {
        format!("{b} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckKind;

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: chrono::Utc::now(),
            host: "h".into(),
        }
    }

    fn file(path: &str, hits: &[(u64, &str)]) -> FileFacts {
        FileFacts {
            path: path.into(),
            hits: hits
                .iter()
                .map(|(l, c)| HitFact {
                    line: *l,
                    code: (*c).into(),
                    detail: None,
                    excerpt: "password=[REDACTED]".into(),
                })
                .collect(),
            hits_total: hits.len() as u64,
            bytes_scanned: 10,
            ..Default::default()
        }
    }

    fn glob(p: &str, n: u64) -> GlobFacts {
        GlobFacts {
            pattern: p.into(),
            matched: n,
            optional: false,
            error: None,
        }
    }

    #[test]
    fn clean_logs_pass() {
        let p = params("paths: [/var/log/*.log]");
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 1)],
            files: vec![file("/var/log/a.log", &[])],
            ..Default::default()
        };
        assert_eq!(
            crate::checks::judged::<LogSecrets>(&p, &f, &ctx()).status,
            CheckStatus::Pass
        );
    }

    #[test]
    fn hits_fail_with_location_and_excerpt() {
        let p = params("paths: [/var/log/*.log]");
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 1)],
            files: vec![file("/var/log/a.log", &[(3, "password_assignment")])],
            ..Default::default()
        };
        let v = crate::checks::judged::<LogSecrets>(&p, &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.findings[0].code, "password_assignment");
        assert_eq!(v.findings[0].location.as_ref().unwrap().line, Some(3));
    }

    #[test]
    fn nothing_matched_is_an_error_and_unmatched_glob_a_finding() {
        let p = params("paths: [/var/log/*.log]");
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 0)],
            ..Default::default()
        };
        let v = crate::checks::judged::<LogSecrets>(&p, &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
        assert_eq!(v.findings[0].code, "no_files_matched");
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 1), glob("/x/*", 0)],
            files: vec![file("/var/log/a.log", &[])],
            ..Default::default()
        };
        assert_eq!(
            crate::checks::judged::<LogSecrets>(&p, &f, &ctx()).status,
            CheckStatus::Fail
        );
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let p = params("paths: [/var/log/*.log]");
        let mut bad = file("/var/log/b.log", &[]);
        bad.error = Some("permission denied".into());
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 2)],
            files: vec![file("/var/log/a.log", &[]), bad],
            ..Default::default()
        };
        let v = crate::checks::judged::<LogSecrets>(&p, &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.findings.iter().any(|f| f.code == "unreadable_file"));
    }

    #[test]
    fn allow_by_location_and_pattern_and_unused_reported() {
        let p = params(
            "paths: [/var/log/*.log]\nallow:\n  - {location: \"/var/log/a.log:3\", reason: test fixture}\n  - {pattern: nope, reason: never}\n",
        );
        let f = Facts {
            globs: vec![glob("/var/log/*.log", 1)],
            files: vec![file("/var/log/a.log", &[(3, "password_assignment")])],
            ..Default::default()
        };
        let v = crate::checks::judged::<LogSecrets>(&p, &f, &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(v.findings.len(), 1);
        assert_eq!(v.findings[0].code, "unused_allow");
    }

    #[test]
    fn validation() {
        let p = params("paths: [var/log]\ndetectors: [nope]\nextra_patterns: [{name: x, regex: \"(\"}]\nallow: [{reason: \"\"}]");
        assert_eq!(LogSecrets::validate(&p).len(), 5);
    }
}
