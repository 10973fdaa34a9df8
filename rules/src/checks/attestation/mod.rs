//! `attestation`: a control no machine can verify (physical security, the
//! payment processor's certification), vouched for by a named person on a date,
//! with a reference to evidence, valid for a stated time.

mod evidence;
mod facts;
mod params;

pub use evidence::Evidence;
pub use facts::Facts;
pub use params::Params;

use chrono::NaiveDate;

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub struct Attestation;

finding_codes! {
    pub enum Code {
        Expired = ("expired", High, "the attestation is older than its `valid_for`"),
        DatedInFuture = ("dated_in_future", High, "the attestation's date is after today"),
        ExpiringSoon = ("expiring_soon", Info, "the attestation expires within 30 days"),
    }
}

impl CheckKind for Attestation {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str =
        "a control no machine can verify, attested by a person with evidence and an expiry";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.by.trim().is_empty() {
            out.push((Some("by"), "`by` must name who attests".to_owned()));
        }
        if p.evidence.trim().is_empty() {
            out.push((
                Some("evidence"),
                "`evidence` must say where the evidence is".to_owned(),
            ));
        }
        out
    }

    fn judge(p: &Params, _facts: &Facts, ctx: &JudgeCtx) -> Verdict {
        let today = ctx.now.date_naive();
        let expires =
            p.on.checked_add_signed(p.valid_for.as_chrono())
                .unwrap_or(NaiveDate::MAX);
        let evidence = Evidence {
            by: p.by.clone(),
            on: p.on.to_string(),
            evidence: p.evidence.clone(),
            expires: expires.to_string(),
            statement: p.statement.clone(),
        };
        let mut findings = Vec::new();
        if p.on > today {
            findings.push(Code::DatedInFuture.finding(
                &p.by,
                format!("attested on {} which is after today ({today})", p.on),
            ));
        } else if expires <= today {
            findings.push(Code::Expired.finding(
                &p.by,
                format!("attestation by {} of {} expired on {expires}", p.by, p.on),
            ));
        } else if (expires - today).num_days() <= 30 {
            findings.push(
                Code::ExpiringSoon.finding(&p.by, format!("attestation expires on {expires}")),
            );
        }
        Verdict::from_findings(
            findings,
            format!("attested by {} on {}, valid until {expires}", p.by, p.on),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::PolicyDuration;
    use crate::verdict::CheckStatus;
    use chrono::TimeZone;

    fn ctx(y: i32, m: u32, d: u32) -> JudgeCtx {
        JudgeCtx {
            now: chrono::Utc
                .with_ymd_and_hms(y, m, d, 12, 0, 0)
                .single()
                .unwrap(),
            host: "h".into(),
        }
    }

    fn params(on: &str, valid: &str) -> Params {
        Params {
            by: "ciso@papyrs.example".into(),
            on: on.parse().unwrap(),
            evidence: "AUDIT-1".into(),
            valid_for: PolicyDuration::parse(valid).unwrap(),
            statement: None,
        }
    }

    #[test]
    fn in_date_passes() {
        let v = crate::checks::judged::<Attestation>(
            &params("2026-06-01", "365d"),
            &Facts {},
            &ctx(2026, 11, 25),
        );
        assert_eq!(v.status, CheckStatus::Pass);
        assert!(
            v.summary.contains("valid until 2027-06-01"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn expired_fails() {
        let v = crate::checks::judged::<Attestation>(
            &params("2025-01-01", "365d"),
            &Facts {},
            &ctx(2026, 11, 25),
        );
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.findings[0].code, "expired");
    }

    #[test]
    fn future_date_fails() {
        let v = crate::checks::judged::<Attestation>(
            &params("2027-01-01", "365d"),
            &Facts {},
            &ctx(2026, 11, 25),
        );
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.findings[0].code, "dated_in_future");
    }

    #[test]
    fn expiring_soon_is_information_only() {
        let v = crate::checks::judged::<Attestation>(
            &params("2025-12-01", "365d"),
            &Facts {},
            &ctx(2026, 11, 25),
        );
        assert_eq!(v.status, CheckStatus::Pass);
        assert_eq!(v.findings[0].code, "expiring_soon");
    }
}
