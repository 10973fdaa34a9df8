//! Erasure readiness: with no task pending for this host, an `erasure` check
//! proves the host could carry out its phases now. The agent gathers one
//! [`Prerequisite`] per thing a phase needs (a hook that exists and is
//! executable, a restic repository that opens with its password file and
//! takes a lock, a directory the service can write, an export it can build);
//! [`judge`] passes when every one holds and fails with `erasure_not_ready`
//! naming each that does not.

pub use super::facts::{Prerequisite, Readiness};

use super::evidence::{Evidence, ReadinessSeen};
use super::Code;
use crate::verdict::{FindingCode, Verdict};

/// `pass` with the evidence, `fail` with `erasure_not_ready` per missing
/// prerequisite; `skipped` when this host handles no phase at all.
pub fn judge(r: &Readiness) -> Verdict {
    let mut phases: Vec<&str> = Vec::new();
    for p in &r.prerequisites {
        if !phases.contains(&p.phase.as_str()) {
            phases.push(&p.phase);
        }
    }
    let checked: Vec<String> = r
        .prerequisites
        .iter()
        .map(|p| {
            format!(
                "{} {}: {}: {}",
                p.phase,
                p.what,
                if p.ready { "ready" } else { "NOT READY" },
                p.detail
            )
        })
        .collect();
    let evidence = Evidence {
        tasks: Vec::new(),
        readiness: Some(ReadinessSeen {
            phases: phases.iter().map(|p| (*p).to_owned()).collect(),
            ready: r.prerequisites.iter().all(|p| p.ready),
            checked,
        }),
    };
    if r.prerequisites.is_empty() {
        let mut v = Verdict::skipped("no erasure pending, and this host handles no erasure phase");
        v.evidence = crate::verdict::to_json(&evidence);
        return v;
    }
    let findings = r
        .prerequisites
        .iter()
        .filter(|p| !p.ready)
        .map(|p| Code::ErasureNotReady.finding(&p.phase, format!("{}: {}", p.what, p.detail)))
        .collect::<Vec<_>>();
    let summary = if findings.is_empty() {
        format!(
            "no erasure pending; ready to carry out {} ({} prerequisite(s) proved)",
            phases.join(", "),
            r.prerequisites.len()
        )
    } else {
        format!(
            "no erasure pending, but {} of {} prerequisite(s) do not hold",
            findings.len(),
            r.prerequisites.len()
        )
    };
    Verdict::from_findings(findings, summary, evidence)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;

    fn pre(phase: &str, what: &str, ready: bool) -> Prerequisite {
        Prerequisite {
            phase: phase.into(),
            what: what.into(),
            ready,
            detail: if ready { "ok".into() } else { "missing".into() },
        }
    }

    #[test]
    fn every_prerequisite_holds_is_a_pass_with_evidence() {
        let v = judge(&Readiness {
            prerequisites: vec![
                pre("site", "hook /bin/true executable", true),
                pre("logs", "write /var/log", true),
            ],
        });
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(v.evidence["tasks"], serde_json::json!([]));
        assert_eq!(
            v.evidence["readiness"]["phases"],
            serde_json::json!(["site", "logs"])
        );
        assert_eq!(
            v.evidence["readiness"]["checked"].as_array().unwrap().len(),
            2
        );
        assert!(
            v.summary.contains("ready to carry out site, logs"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn one_missing_prerequisite_fails_naming_it() {
        let v = judge(&Readiness {
            prerequisites: vec![
                pre("site", "hook /x executable", false),
                pre("logs", "write /var/log", true),
            ],
        });
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(v.findings.len(), 1);
        assert_eq!(v.findings[0].code, "erasure_not_ready");
        assert_eq!(v.findings[0].subject, "site");
        assert!(v.findings[0]
            .message
            .contains("hook /x executable: missing"));
    }

    #[test]
    fn nothing_handled_is_skipped() {
        let v = judge(&Readiness::default());
        assert_eq!(v.status, CheckStatus::Skipped);
    }
}
