//! `clamav`: a virus scanner is really running, current, and detecting.
//!
//! Facts: clamd's answers to PING and VERSION, the signature database's date
//! (from VERSION, or the database files' times when only custom databases are
//! loaded), the outcome of an EICAR self-test streamed through INSTREAM, and the
//! results of scanning the configured paths (with a per-file content-hash cache
//! so unchanged files are not rescanned). Judgement: clamd is up (else `error`),
//! signatures are younger than `max_signature_age_hours`, the self-test is
//! detected, and no scanned file is infected.

mod evidence;
mod facts;
mod params;
mod parse;

pub use evidence::{Answered, Evidence, ScanCounts};
pub use facts::{DateSource, Facts, Infected, Scan, ScanError, SelfTest};
pub use params::Params;
pub use parse::{parse_version, VersionError, VersionInfo};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub struct Clamav;

finding_codes! {
    pub enum Code {
        SignaturesStale = ("signatures_stale", High, "the signature database is older than `max_signature_age_hours`"),
        SignatureDateUnknown = ("signature_date_unknown", High, "neither clamd nor the database directory tells how old the signatures are"),
        CustomDatabaseOnly = ("custom_database_only", Info, "clamd reports no official database; the age comes from the database files' times"),
        SelfTestNotDetected = ("self_test_not_detected", Critical, "clamd answered but did not detect the EICAR test string"),
        SelfTestError = ("self_test_error", High, "clamd answered the EICAR self-test with an error instead of a detection"),
        InfectedFile = ("infected_file", Critical, "clamd found a signature in a scanned file"),
        ScanError = ("scan_error", Medium, "clamd answered ERROR for a file, or the file could not be read: it is not known to be clean"),
        ScanPathMissing = ("scan_path_missing", Medium, "a configured scan path does not exist"),
        FileTooLarge = ("file_too_large", Low, "a file over `max_file_size_mb` was not scanned"),
    }
}

impl CheckKind for Clamav {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str =
        "clamd is up, its signatures are fresh, it detects EICAR, and the scanned paths are clean";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        let ok = p
            .address
            .strip_prefix("unix:")
            .is_some_and(|s| s.starts_with('/'))
            || p.address.strip_prefix("tcp://").is_some_and(|s| {
                s.rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
            });
        if !ok {
            out.push((
                Some("address"),
                format!(
                    "`{}` is not `unix:/path/to/socket` or `tcp://host:port`",
                    p.address
                ),
            ));
        }
        if p.max_signature_age_hours == 0 {
            out.push((
                Some("max_signature_age_hours"),
                "must be at least 1".to_owned(),
            ));
        }
        out.extend(super::relative_paths(Some("scan_paths"), &p.scan_paths));
        out
    }

    fn judge(p: &Params, facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        if let Some(why) = &facts.down {
            let mut v = Verdict::error(format!("clamd at `{}` is down: {why}", facts.address));
            v.evidence = crate::verdict::to_json(Evidence::Down {
                address: facts.address.clone(),
                down: why.clone(),
            });
            return v;
        }
        let subject = facts.address.as_str();
        let mut findings = Vec::new();

        let mut age_hours = None;
        match (facts.database_date, facts.database_date_source) {
            (Some(date), source) => {
                let age = ctx.now.signed_duration_since(date);
                let hours = age.num_hours();
                age_hours = Some(hours);
                if source == Some(DateSource::DatabaseFiles) {
                    findings.push(Code::CustomDatabaseOnly.finding(
                        subject,
                        format!(
                            "clamd reports no official database version; signature age taken from the newest file time in `{}`",
                            p.database_directory
                        ),
                    ));
                }
                if hours > i64::try_from(p.max_signature_age_hours).unwrap_or(i64::MAX) {
                    findings.push(Code::SignaturesStale.finding(
                        subject,
                        format!(
                            "signatures are {hours} hours old (dated {}), over the {} allowed",
                            date.format("%Y-%m-%d %H:%M UTC"),
                            p.max_signature_age_hours
                        ),
                    ));
                }
            }
            (None, _) => findings.push(Code::SignatureDateUnknown.finding(
                subject,
                format!(
                    "VERSION carries no database date and `{}` holds no database files",
                    p.database_directory
                ),
            )),
        }

        match &facts.self_test {
            Some(SelfTest::NotDetected) => findings.push(Code::SelfTestNotDetected.finding(
                subject,
                "clamd answered OK to the EICAR test string: it is not detecting anything",
            )),
            Some(SelfTest::ClamdError(e)) => findings.push(Code::SelfTestError.finding(
                subject,
                format!("clamd answered the EICAR self-test with `{e}`"),
            )),
            Some(SelfTest::Failed(e)) => findings.push(
                Code::SelfTestError.finding(subject, format!("the EICAR self-test failed: {e}")),
            ),
            Some(SelfTest::Detected(_)) | None => {}
        }

        if let Some(scan) = &facts.scan {
            for i in &scan.infected {
                findings.push(Code::InfectedFile.finding(
                    &i.path,
                    format!("`{}` is infected: {}", i.path, i.signature),
                ));
            }
            for e in &scan.errors {
                findings.push(
                    Code::ScanError
                        .finding(&e.path, format!("`{}` not scanned: {}", e.path, e.reason)),
                );
            }
            for m in &scan.missing_paths {
                findings.push(
                    Code::ScanPathMissing.finding(m, format!("scan path `{m}` does not exist")),
                );
            }
            for t in &scan.too_large {
                findings.push(Code::FileTooLarge.finding(
                    t,
                    format!(
                        "`{t}` is over {} MB and was not scanned",
                        p.max_file_size_mb
                    ),
                ));
            }
        }

        let evidence = Evidence::Up(Box::new(Answered {
            address: facts.address.clone(),
            engine_version: facts.engine_version.clone(),
            database_version: facts.database_version,
            database_date: facts.database_date,
            database_date_source: facts.database_date_source,
            database_files: facts.database_files.clone(),
            signature_age_hours: age_hours,
            self_test: facts.self_test.clone(),
            scan: facts.scan.as_ref().map(|s| ScanCounts {
                files_seen: s.files_seen,
                files_scanned: s.files_scanned,
                files_skipped_unchanged: s.files_skipped_unchanged,
                bytes_scanned: s.bytes_scanned,
                infected: s.infected.len(),
                errors: s.errors.len(),
                cache_note: s.cache_note.clone(),
            }),
        }));

        if !facts.errors.is_empty() {
            let mut v = Verdict::error(facts.errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }

        let mut ok = format!(
            "clamd {} up, signatures {}",
            facts.engine_version.as_deref().unwrap_or("?"),
            age_hours.map_or("of unknown age".to_owned(), |h| format!("{h}h old")),
        );
        if matches!(facts.self_test, Some(SelfTest::Detected(_))) {
            ok += ", EICAR detected";
        }
        if let Some(s) = &facts.scan {
            ok += &format!(
                ", {} files clean ({} scanned, {} unchanged)",
                s.files_seen, s.files_scanned, s.files_skipped_unchanged
            );
        }
        Verdict::from_findings(findings, ok, evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;
    use chrono::TimeZone;

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 25, 12, 0, 0)
            .unwrap()
    }

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: now(),
            host: "h".into(),
        }
    }

    fn good() -> Facts {
        Facts {
            address: "unix:/run/clamd.ctl".into(),
            down: None,
            engine_version: Some("1.4.6".into()),
            database_version: Some(27467),
            database_date: Some(now() - chrono::Duration::hours(5)),
            database_date_source: Some(DateSource::Version),
            database_files: vec!["daily.cld".into()],
            self_test: Some(SelfTest::Detected("Eicar-Test-Signature".into())),
            scan: Some(Scan {
                files_seen: 3,
                files_scanned: 3,
                ..Default::default()
            }),
            errors: vec![],
        }
    }

    const P: &str = "address: unix:/run/clamd.ctl\n";

    #[test]
    fn parses_version_answers() {
        let v = parse_version("ClamAV 1.4.6/27467/Wed Nov 25 08:45:02 2026\0").unwrap();
        assert_eq!(v.engine, "1.4.6");
        assert_eq!(v.database, Some(27467));
        assert_eq!(
            v.date,
            Some(
                chrono::Utc
                    .with_ymd_and_hms(2026, 11, 25, 8, 45, 2)
                    .unwrap()
            )
        );
        let v = parse_version("ClamAV 1.4.6\0").unwrap();
        assert_eq!(
            (v.engine.as_str(), v.database, v.date),
            ("1.4.6", None, None)
        );
        let v = parse_version("ClamAV 1.0.7/27000/Mon Jun  3 08:00:00 2024").unwrap();
        assert!(v.date.is_some());
        assert!(parse_version("PONG").is_err());
    }

    #[test]
    fn healthy_clamd_passes() {
        let v = crate::checks::judged::<Clamav>(&params(P), &good(), &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert!(v.summary.contains("EICAR detected"), "{}", v.summary);
    }

    #[test]
    fn down_is_an_error_with_the_reason() {
        let mut f = good();
        f.down = Some("connection refused".into());
        let v = crate::checks::judged::<Clamav>(&params(P), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.summary.contains("connection refused"));
    }

    #[test]
    fn each_problem_has_its_code() {
        let mut f = good();
        f.database_date = Some(now() - chrono::Duration::hours(100));
        f.self_test = Some(SelfTest::NotDetected);
        f.scan = Some(Scan {
            infected: vec![Infected {
                path: "/srv/x".into(),
                signature: "Eicar-Test-Signature".into(),
            }],
            errors: vec![ScanError {
                path: "/srv/big".into(),
                reason: "INSTREAM size limit exceeded".into(),
            }],
            missing_paths: vec!["/srv/none".into()],
            ..Default::default()
        });
        let v = crate::checks::judged::<Clamav>(&params(P), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "signatures_stale",
                "self_test_not_detected",
                "infected_file",
                "scan_error",
                "scan_path_missing"
            ]
        );
    }

    #[test]
    fn custom_database_dates_from_files_are_said() {
        let mut f = good();
        f.database_version = None;
        f.database_date_source = Some(DateSource::DatabaseFiles);
        let v = crate::checks::judged::<Clamav>(&params(P), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(v.findings[0].code, "custom_database_only");
        f.database_date = None;
        let v = crate::checks::judged::<Clamav>(&params(P), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.findings[0].code, "signature_date_unknown");
    }

    #[test]
    fn bad_address_is_invalid() {
        assert!(!Clamav::validate(&params("address: localhost:3310\n")).is_empty());
        assert!(Clamav::validate(&params("address: tcp://127.0.0.1:3310\n")).is_empty());
    }
}
