//! The report (`schema: vigil.report/v1`) and how check statuses roll up into
//! control statuses.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::verdict::{CheckStatus, Finding};

pub const SCHEMA: &str = "vigil.report/v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    Pass,
    Fail,
    Error,
    Attested,
    Waived,
    Unknown,
}

impl ControlStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ControlStatus::Pass => "pass",
            ControlStatus::Fail => "fail",
            ControlStatus::Error => "error",
            ControlStatus::Attested => "attested",
            ControlStatus::Waived => "waived",
            ControlStatus::Unknown => "unknown",
        }
    }

    /// Whether this status keeps `check` at exit code 0.
    pub fn is_ok(self) -> bool {
        matches!(
            self,
            ControlStatus::Pass | ControlStatus::Attested | ControlStatus::Waived
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    pub schema: String,
    pub report_id: String,
    pub agent: AgentInfo,
    pub policy: PolicyRef,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub controls: Vec<ControlReport>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentInfo {
    pub host: String,
    pub version: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Reports the agent daemon dropped unsent to keep its spool within its
    /// bounds, over the spool's life; absent when none were (and from `check`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spool_dropped: Option<u64>,
    /// Why the agent refused the policy the reporter handed out (a signature
    /// that does not verify, an invalid policy); it ran its last good one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_refused: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlReport {
    pub id: String,
    pub title: String,
    pub status: ControlStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub checks: Vec<CheckReport>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    pub id: String,
    #[serde(rename = "type")]
    pub check_type: String,
    pub status: CheckStatus,
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub evidence: serde_json::Value,
    pub duration_ms: u64,
    /// The waiver that accepts this failing check, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived_by: Option<String>,
}

impl CheckReport {
    /// This check's evidence as its type's evidence struct (for example
    /// [`crate::checks::erasure::Evidence`] when `check_type` is `erasure`);
    /// `None` when it is not that shape.
    pub fn evidence_as<E: serde::de::DeserializeOwned>(&self) -> Option<E> {
        crate::verdict::evidence_as(&self.evidence)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Summary {
    pub pass: u32,
    pub fail: u32,
    pub error: u32,
    pub attested: u32,
    pub skipped: u32,
    #[serde(default)]
    pub waived: u32,
    #[serde(default)]
    pub unknown: u32,
}

/// How a control's checks roll up:
/// any `fail` makes it `fail` (a definite answer beats an unknown one); else
/// any `error` makes it `error`; all `skipped` (or none) is `unknown`, since
/// nothing checked is not proof; passing checks that include an attestation
/// make it `attested` (part of it rests on a person's word); else `pass`.
pub fn control_status(checks: &[CheckReport]) -> ControlStatus {
    if checks.iter().any(|c| c.status == CheckStatus::Fail) {
        return ControlStatus::Fail;
    }
    if checks.iter().any(|c| c.status == CheckStatus::Error) {
        return ControlStatus::Error;
    }
    let ran: Vec<&CheckReport> = checks
        .iter()
        .filter(|c| c.status == CheckStatus::Pass)
        .collect();
    if ran.is_empty() {
        return ControlStatus::Unknown;
    }
    if ran.iter().any(|c| c.check_type == "attestation") {
        ControlStatus::Attested
    } else {
        ControlStatus::Pass
    }
}

/// Counts controls by status.
pub fn summarize(controls: &[ControlReport]) -> Summary {
    let mut s = Summary::default();
    for c in controls {
        match c.status {
            ControlStatus::Pass => s.pass += 1,
            ControlStatus::Fail => s.fail += 1,
            ControlStatus::Error => s.error += 1,
            ControlStatus::Attested => s.attested += 1,
            ControlStatus::Waived => s.waived += 1,
            ControlStatus::Unknown => s.unknown += 1,
        }
    }
    s.skipped = controls
        .iter()
        .flat_map(|c| &c.checks)
        .filter(|c| c.status == CheckStatus::Skipped)
        .count()
        .try_into()
        .unwrap_or(u32::MAX);
    s
}

impl Report {
    /// Whether `vigil-agent check` exits 0 for this report.
    pub fn all_ok(&self) -> bool {
        self.controls.iter().all(|c| c.status.is_ok())
    }
}

/// Checks a received report beyond its shape: ids, times, and that statuses
/// and the summary agree with the checks. `now` bounds `finished_at` (an
/// hour of clock skew is allowed). The reporter refuses a report this rejects.
pub fn validate(r: &Report, now: DateTime<Utc>) -> Result<(), String> {
    if r.schema != SCHEMA {
        return Err(format!("`schema` must be `{SCHEMA}`"));
    }
    if uuid::Uuid::parse_str(&r.report_id).is_err() {
        return Err("`report_id` must be a UUID".into());
    }
    if r.policy.sha256.len() != 64 || !r.policy.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err("`policy.sha256` must be 64 hex digits".into());
    }
    if r.finished_at < r.started_at {
        return Err("`finished_at` is before `started_at`".into());
    }
    if r.finished_at > now + chrono::Duration::hours(1) {
        return Err("`finished_at` is in the future".into());
    }
    if r.controls.len() > 2000 {
        return Err("too many controls".into());
    }
    for c in &r.controls {
        if c.checks.len() > 1000 {
            return Err(format!("control `{}` has too many checks", c.id));
        }
        let computed = control_status(&c.checks);
        if c.status != computed && c.status != ControlStatus::Waived {
            return Err(format!(
                "control `{}` says `{}` but its checks make it `{}`",
                c.id,
                c.status.as_str(),
                computed.as_str()
            ));
        }
    }
    if summarize(&r.controls) != r.summary {
        return Err("`summary` does not match the controls".into());
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn check(ty: &str, status: CheckStatus) -> CheckReport {
        CheckReport {
            id: format!("{ty}-{}", status.as_str()),
            check_type: ty.into(),
            status,
            summary: String::new(),
            findings: vec![],
            evidence: serde_json::Value::Null,
            duration_ms: 0,
            waived_by: None,
        }
    }

    #[test]
    fn aggregation_rules() {
        use CheckStatus::*;
        let cases: &[(&[(&str, CheckStatus)], ControlStatus)] = &[
            (&[("tls", Pass), ("tls", Pass)], ControlStatus::Pass),
            (&[("tls", Pass), ("tls", Fail)], ControlStatus::Fail),
            (&[("tls", Error), ("tls", Fail)], ControlStatus::Fail),
            (&[("tls", Error), ("tls", Pass)], ControlStatus::Error),
            (&[("attestation", Pass)], ControlStatus::Attested),
            (
                &[("attestation", Pass), ("tls", Pass)],
                ControlStatus::Attested,
            ),
            (&[("attestation", Fail), ("tls", Pass)], ControlStatus::Fail),
            (&[("tls", Skipped)], ControlStatus::Unknown),
            (&[], ControlStatus::Unknown),
            (&[("tls", Skipped), ("tls", Pass)], ControlStatus::Pass),
        ];
        for (checks, want) in cases {
            let cs: Vec<CheckReport> = checks.iter().map(|(t, s)| check(t, *s)).collect();
            assert_eq!(control_status(&cs), *want, "{checks:?}");
        }
    }

    #[test]
    fn only_pass_attested_waived_are_ok() {
        for s in [
            ControlStatus::Pass,
            ControlStatus::Attested,
            ControlStatus::Waived,
        ] {
            assert!(s.is_ok());
        }
        for s in [
            ControlStatus::Fail,
            ControlStatus::Error,
            ControlStatus::Unknown,
        ] {
            assert!(!s.is_ok());
        }
    }
    #[test]
    fn validation_of_received_reports() {
        let now: DateTime<Utc> = "2026-11-25T12:00:00Z".parse().unwrap();
        let text = include_str!("../../tests/data/report/valid.json");
        let good: Report = serde_json::from_str(text).unwrap();
        assert_eq!(validate(&good, now), Ok(()));
        let mut r = good.clone();
        r.report_id = "not-a-uuid".into();
        assert!(validate(&r, now).unwrap_err().contains("UUID"));
        let mut r = good.clone();
        r.policy.sha256.pop();
        assert!(validate(&r, now).unwrap_err().contains("64 hex"));
        let mut r = good.clone();
        r.finished_at = now + chrono::Duration::hours(2);
        assert!(validate(&r, now).unwrap_err().contains("future"));
        let mut r = good.clone();
        r.started_at = r.finished_at + chrono::Duration::seconds(1);
        assert!(validate(&r, now).unwrap_err().contains("before"));
        let mut r = good.clone();
        r.controls[1].status = ControlStatus::Pass;
        assert!(validate(&r, now)
            .unwrap_err()
            .contains("its checks make it"));
        let mut r = good;
        r.summary.fail = 0;
        assert!(validate(&r, now).unwrap_err().contains("summary"));
    }
}
