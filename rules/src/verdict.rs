//! What judging a check produces: a status, a one-line summary, findings with
//! stable codes, and evidence.

use serde::{Deserialize, Serialize};

/// The status of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Fail,
    Error,
    Skipped,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Error => "error",
            CheckStatus::Skipped => "skipped",
        }
    }
}

/// How much a finding matters. `Info` findings never fail a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, PartialOrd, Ord, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// A place in a file a finding refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileLocation {
    pub file: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
}

/// One problem (or noteworthy fact) a check found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// A stable snake_case code from the check type's code list.
    pub code: String,
    pub severity: Severity,
    /// What the finding is about: an address, an account, a file.
    pub subject: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<FileLocation>,
    /// A redacted excerpt; never the secret itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excerpt: Option<String>,
    /// `TYPE/CODE`: the id of what to do about it (`vigil-agent types` and
    /// [`crate::checks::remediation`] give the text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
}

/// A finding code of one check type: a fieldless enum made by [`crate::finding_codes!`].
pub trait FindingCode: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
    fn description(self) -> &'static str;
    fn severity(self) -> Severity;

    /// A finding with this code and its default severity.
    fn finding(self, subject: impl Into<String>, message: impl Into<String>) -> Finding {
        Finding {
            code: self.as_str().to_owned(),
            severity: self.severity(),
            subject: subject.into(),
            message: message.into(),
            location: None,
            excerpt: None,
            remediation: None,
        }
    }
}

/// Declares a check type's finding codes with their wire name, default
/// severity and description.
#[macro_export]
macro_rules! finding_codes {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident = ($code:literal, $sev:ident, $desc:literal)),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($variant),* }
        impl $crate::verdict::FindingCode for $name {
            const ALL: &'static [Self] = &[$($name::$variant),*];
            fn as_str(self) -> &'static str { match self { $($name::$variant => $code),* } }
            fn description(self) -> &'static str { match self { $($name::$variant => $desc),* } }
            fn severity(self) -> $crate::verdict::Severity { match self { $($name::$variant => $crate::verdict::Severity::$sev),* } }
        }
    };
}

/// The judgement of one check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub status: CheckStatus,
    pub summary: String,
    #[serde(default)]
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub evidence: serde_json::Value,
}

impl Verdict {
    /// A check that could not run: never a pass.
    pub fn error(reason: impl Into<String>) -> Self {
        Verdict {
            status: CheckStatus::Error,
            summary: reason.into(),
            findings: Vec::new(),
            evidence: serde_json::Value::Null,
        }
    }

    pub fn skipped(reason: impl Into<String>) -> Self {
        Verdict {
            status: CheckStatus::Skipped,
            summary: reason.into(),
            findings: Vec::new(),
            evidence: serde_json::Value::Null,
        }
    }

    /// Pass when no finding is above `Info`, fail otherwise. The summary names
    /// the findings when there are some, or says `ok_summary`. `evidence` is
    /// the check type's [`crate::checks::CheckKind::Evidence`], written out as
    /// JSON.
    pub fn from_findings(
        findings: Vec<Finding>,
        ok_summary: impl Into<String>,
        evidence: impl Serialize,
    ) -> Self {
        let evidence = to_json(evidence);
        let failing: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity > Severity::Info)
            .collect();
        if failing.is_empty() {
            Verdict {
                status: CheckStatus::Pass,
                summary: ok_summary.into(),
                findings,
                evidence,
            }
        } else {
            let mut codes: Vec<&str> = failing.iter().map(|f| f.code.as_str()).collect();
            codes.dedup();
            let first = failing
                .first()
                .map(|f| f.message.clone())
                .unwrap_or_default();
            let summary = if failing.len() == 1 {
                first
            } else {
                format!(
                    "{} findings ({}); first: {}",
                    failing.len(),
                    dedup_join(&codes),
                    first
                )
            };
            Verdict {
                status: CheckStatus::Fail,
                summary,
                findings,
                evidence,
            }
        }
    }
}

/// Evidence as JSON. The evidence types are plain structs with string keys,
/// which always serialize; `null` stands for one that would not.
pub(crate) fn to_json(evidence: impl Serialize) -> serde_json::Value {
    serde_json::to_value(evidence).unwrap_or(serde_json::Value::Null)
}

/// Reads evidence as a check type's typed evidence; `None` when it is not
/// that shape (another type's, or an error's `null`).
pub fn evidence_as<E: serde::de::DeserializeOwned>(evidence: &serde_json::Value) -> Option<E> {
    E::deserialize(evidence).ok()
}

fn dedup_join(codes: &[&str]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for c in codes {
        if !seen.contains(c) {
            seen.push(c);
        }
    }
    seen.join(", ")
}
