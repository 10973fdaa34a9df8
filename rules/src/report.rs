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
    /// What the host is (OS, kernel, CPU, memory, uptime), gathered with
    /// every run. Absent from reports of agents older than it, which still
    /// parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory: Option<Inventory>,
}

/// The host's inventory. Each field is optional: what could not be read is
/// left out, never guessed. Unknown fields are accepted (not
/// `deny_unknown_fields`) so that a later agent may add one without a
/// reporter of this version refusing the whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    /// os-release `NAME` (`Debian GNU/Linux`), read under the check's root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_name: Option<String>,
    /// os-release `VERSION_ID` (`13`), else `VERSION`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    /// os-release `PRETTY_NAME` (`Debian GNU/Linux 13 (trixie)`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub os_pretty_name: Option<String>,
    /// The running kernel's release (`uname -r`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// The CPU architecture (`x86_64`, `aarch64`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_seconds: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_time: Option<DateTime<Utc>>,
    /// The first CPU's model name (`AMD EPYC 7B13`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
    /// Logical CPUs the kernel sees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<u32>,
    /// Physical cores, where the kernel tells them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// The root the OS fields were read under, when it is not `/` (an
    /// image or a test tree); the machine fields are the running machine's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<String>,
}

impl Inventory {
    /// Fills the OS fields from an os-release(5) file's text: `KEY=value`
    /// lines, values optionally in single or double quotes with `\`
    /// escapes; comments and other keys are ignored.
    pub fn read_os_release(&mut self, text: &str) {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') {
                continue;
            }
            let Some((key, raw)) = line.split_once('=') else {
                continue;
            };
            let value = unquote(raw.trim());
            if value.is_empty() {
                continue;
            }
            match key.trim() {
                "NAME" => self.os_name = Some(value),
                "VERSION_ID" => self.os_version = Some(value),
                "VERSION" if self.os_version.is_none() => self.os_version = Some(value),
                "PRETTY_NAME" => self.os_pretty_name = Some(value),
                _ => {}
            }
        }
    }

    /// `(label, value)` rows for a table (the staff host page), in a fixed
    /// order, only for the fields present.
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let os = match (&self.os_pretty_name, &self.os_name, &self.os_version) {
            (Some(p), _, _) => Some(p.clone()),
            (None, Some(n), Some(v)) => Some(format!("{n} {v}")),
            (None, Some(n), None) => Some(n.clone()),
            (None, None, v) => v.clone(),
        };
        if let Some(os) = os {
            out.push(("Operating system", os));
        }
        if let Some(k) = &self.kernel {
            out.push(("Kernel", k.clone()));
        }
        if let Some(a) = &self.arch {
            out.push(("Architecture", a.clone()));
        }
        match (&self.cpu_model, self.cpu_count, self.cpu_cores) {
            (None, None, None) => {}
            (model, count, cores) => {
                let mut parts = Vec::new();
                if let Some(c) = count {
                    parts.push(format!("{c} CPU{}", if c == 1 { "" } else { "s" }));
                }
                if let Some(c) = cores {
                    parts.push(format!("{c} core{}", if c == 1 { "" } else { "s" }));
                }
                let counts = parts.join(", ");
                out.push((
                    "CPU",
                    match (model, counts.is_empty()) {
                        (Some(m), true) => m.clone(),
                        (Some(m), false) => format!("{m} ({counts})"),
                        (None, _) => counts,
                    },
                ));
            }
        }
        if let Some(m) = self.memory_bytes {
            out.push((
                "Memory",
                format!("{:.1} GiB", m as f64 / (1024.0 * 1024.0 * 1024.0)),
            ));
        }
        if let Some(u) = self.uptime_seconds {
            out.push(("Uptime", uptime_text(u)));
        }
        if let Some(b) = self.boot_time {
            out.push(("Booted", b.format("%Y-%m-%d %H:%M UTC").to_string()));
        }
        if let Some(r) = &self.root {
            out.push(("OS read under", r.clone()));
        }
        out
    }
}

/// `3 d 4 h`, `5 h 12 min`, `42 min`.
fn uptime_text(secs: u64) -> String {
    let (d, h, m) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if d > 0 {
        format!("{d} d {h} h")
    } else if h > 0 {
        format!("{h} h {m} min")
    } else {
        format!("{m} min")
    }
}

/// An os-release value: quotes removed, `\"`, `\\`, `\$`, `` \` `` unescaped.
fn unquote(raw: &str) -> String {
    let inner = if raw.len() >= 2
        && ((raw.starts_with('"') && raw.ends_with('"'))
            || (raw.starts_with('\'') && raw.ends_with('\'')))
    {
        raw.get(1..raw.len() - 1).unwrap_or("")
    } else {
        raw
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
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
    fn os_release_and_inventory_rows() {
        let mut inv = Inventory::default();
        inv.read_os_release(
            "# comment\nPRETTY_NAME=\"Debian GNU/Linux 13 (trixie)\"\nNAME=\"Debian GNU/Linux\"\nVERSION=\"13 (trixie)\"\nVERSION_ID='13'\nID=debian\nBAD LINE\nHOME_URL=\"https://www.debian.org/\"\n",
        );
        assert_eq!(inv.os_name.as_deref(), Some("Debian GNU/Linux"));
        assert_eq!(inv.os_version.as_deref(), Some("13"));
        assert_eq!(
            inv.os_pretty_name.as_deref(),
            Some("Debian GNU/Linux 13 (trixie)")
        );
        let mut esc = Inventory::default();
        esc.read_os_release("NAME=\"Say \\\"hi\\\"\"\nVERSION=\"1 (x)\"\n");
        assert_eq!(esc.os_name.as_deref(), Some("Say \"hi\""));
        assert_eq!(esc.os_version.as_deref(), Some("1 (x)"));
        inv.kernel = Some("6.12.0-1-amd64".into());
        inv.arch = Some("x86_64".into());
        inv.cpu_model = Some("AMD EPYC 7B13".into());
        inv.cpu_count = Some(2);
        inv.cpu_cores = Some(1);
        inv.memory_bytes = Some(8 * 1024 * 1024 * 1024);
        inv.uptime_seconds = Some(3 * 86_400 + 4 * 3600 + 59);
        inv.boot_time = Some("2026-11-30T08:00:00Z".parse().unwrap());
        let rows = inv.rows();
        let labels: Vec<&str> = rows.iter().map(|r| r.0).collect();
        assert_eq!(
            labels,
            [
                "Operating system",
                "Kernel",
                "Architecture",
                "CPU",
                "Memory",
                "Uptime",
                "Booted"
            ]
        );
        assert_eq!(rows[3].1, "AMD EPYC 7B13 (2 CPUs, 1 core)");
        assert_eq!(rows[4].1, "8.0 GiB");
        assert_eq!(rows[5].1, "3 d 4 h");
        assert_eq!(rows[6].1, "2026-11-30 08:00 UTC");
        assert!(Inventory::default().rows().is_empty());
    }

    /// A report without `inventory` (every agent before it) still parses, and
    /// one with it round-trips; an unknown inventory field is not a refusal.
    #[test]
    fn inventory_is_optional_and_additive() {
        let text = include_str!("../../tests/data/report/valid.json");
        let old: Report = serde_json::from_str(text).unwrap();
        assert_eq!(old.inventory, None);
        assert!(!serde_json::to_string(&old).unwrap().contains("inventory"));
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        v["inventory"] = serde_json::json!({"os_name": "Debian GNU/Linux", "kernel": "6.12", "cpu_count": 2, "gpu": "later"});
        let new: Report = serde_json::from_value(v).unwrap();
        let inv = new.inventory.unwrap();
        assert_eq!(inv.cpu_count, Some(2));
        assert_eq!(inv.kernel.as_deref(), Some("6.12"));
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
