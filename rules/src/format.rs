//! Presenting a report: a table for people, JSON, JUnit XML for CI systems and
//! SARIF 2.1.0 for code-scanning dashboards. Pure functions from a report to text.

use std::fmt::Write as _;

use serde_json::json;

use crate::checks::check_types;
use crate::report::{ControlStatus, Report};
use crate::verdict::{CheckStatus, Severity};

/// The output formats `check` offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Junit,
    Sarif,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "junit" => Ok(Format::Junit),
            "sarif" => Ok(Format::Sarif),
            other => Err(format!(
                "unknown format `{other}` (expected table, json, junit or sarif)"
            )),
        }
    }
}

pub fn render(report: &Report, format: Format, colour: bool) -> String {
    match format {
        Format::Table => table(report, colour),
        Format::Json => json(report),
        Format::Junit => junit(report),
        Format::Sarif => sarif(report),
    }
}

pub fn json(report: &Report) -> String {
    let mut s =
        serde_json::to_string_pretty(report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    s.push('\n');
    s
}

fn paint(colour: bool, status: ControlStatus) -> String {
    let word = status.as_str();
    if !colour {
        return word.to_owned();
    }
    let code = match status {
        ControlStatus::Pass => "32",
        ControlStatus::Attested => "36",
        ControlStatus::Waived => "35",
        ControlStatus::Fail => "31;1",
        ControlStatus::Error => "33;1",
        ControlStatus::Unknown => "2",
    };
    format!("\x1b[{code}m{word}\x1b[0m")
}

/// One line per control (status and the reason that decided it), then the
/// checks that did not pass, then a count.
pub fn table(report: &Report, colour: bool) -> String {
    let idw = report
        .controls
        .iter()
        .map(|c| c.id.len())
        .max()
        .unwrap_or(7)
        .max(7);
    let mut out = String::new();
    let _ = writeln!(out, "{:idw$}  {:8}  REASON", "CONTROL", "STATUS");
    for c in &report.controls {
        // The check that decided the status: the first one with the control's worst status.
        let decisive = c
            .checks
            .iter()
            .find(|k| k.status == CheckStatus::Fail)
            .or_else(|| c.checks.iter().find(|k| k.status == CheckStatus::Error))
            .or_else(|| c.checks.first());
        let reason = match decisive {
            Some(k) if c.checks.len() > 1 => format!("{}: {}", k.id, k.summary),
            Some(k) => k.summary.clone(),
            None => String::new(),
        };
        let status = paint(colour, c.status);
        // Pad by the visible width, not the escape codes.
        let pad = 8usize.saturating_sub(c.status.as_str().len());
        let _ = writeln!(
            out,
            "{:idw$}  {status}{}  {}",
            c.id,
            " ".repeat(pad),
            one_line(&reason)
        );
        if c.checks.len() > 1 {
            for k in c.checks.iter().filter(|k| k.status != CheckStatus::Pass) {
                if Some(k) == decisive {
                    continue;
                }
                let _ = writeln!(
                    out,
                    "{:idw$}    {} {}: {}",
                    "",
                    k.status.as_str(),
                    k.id,
                    one_line(&k.summary)
                );
            }
        }
    }
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{} controls: {} pass, {} attested, {} waived, {} fail, {} error, {} unknown ({} on {}, policy {} {})",
        report.controls.len(),
        s.pass,
        s.attested,
        s.waived,
        s.fail,
        s.error,
        s.unknown,
        report.finished_at.format("%Y-%m-%d %H:%M:%S UTC"),
        report.agent.host,
        report.policy.id,
        report.policy.version
    );
    out
}

fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("");
    let mut out: String = line.chars().take(160).collect();
    if line.chars().count() > 160 || s.lines().count() > 1 {
        out.push('…');
    }
    out
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one test suite per control, one test case per check.
pub fn junit(report: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = report.controls.iter().map(|c| c.checks.len()).sum();
    let count = |st: CheckStatus| {
        report
            .controls
            .iter()
            .flat_map(|c| &c.checks)
            .filter(|k| k.status == st)
            .count()
    };
    let _ = writeln!(
        out,
        "<testsuites name=\"{}\" tests=\"{total}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">",
        xml_escape(&format!("{} {}", report.policy.id, report.policy.version)),
        count(CheckStatus::Fail),
        count(CheckStatus::Error),
        count(CheckStatus::Skipped),
    );
    for c in &report.controls {
        let n = |st: CheckStatus| c.checks.iter().filter(|k| k.status == st).count();
        let time: u64 = c.checks.iter().map(|k| k.duration_ms).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\" hostname=\"{}\" timestamp=\"{}\">",
            xml_escape(&format!("{} {}", c.id, c.title)),
            c.checks.len(),
            n(CheckStatus::Fail),
            n(CheckStatus::Error),
            n(CheckStatus::Skipped),
            time as f64 / 1000.0,
            xml_escape(&report.agent.host),
            report.started_at.format("%Y-%m-%dT%H:%M:%S"),
        );
        for k in &c.checks {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(&c.id),
                xml_escape(&format!("{} ({})", k.id, k.check_type)),
                k.duration_ms as f64 / 1000.0
            );
            let body: String = k
                .findings
                .iter()
                .map(|f| {
                    format!(
                        "[{}] {} {}: {}\n",
                        f.severity.as_str(),
                        f.code,
                        f.subject,
                        f.message
                    )
                })
                .collect();
            match k.status {
                CheckStatus::Pass => out.push_str("/>\n"),
                CheckStatus::Fail => {
                    let _ = write!(
                        out,
                        ">\n      <failure message=\"{}\" type=\"fail\">{}</failure>\n    </testcase>\n",
                        xml_escape(&k.summary),
                        xml_escape(&body)
                    );
                }
                CheckStatus::Error => {
                    let _ = write!(
                        out,
                        ">\n      <error message=\"{}\" type=\"error\">{}</error>\n    </testcase>\n",
                        xml_escape(&k.summary),
                        xml_escape(&body)
                    );
                }
                CheckStatus::Skipped => {
                    let _ = write!(
                        out,
                        ">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
                        xml_escape(&k.summary)
                    );
                }
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn sarif_level(sev: Severity) -> &'static str {
    match sev {
        Severity::Critical | Severity::High => "error",
        Severity::Medium | Severity::Low => "warning",
        Severity::Info => "note",
    }
}

/// SARIF 2.1.0: every finding of every check that did not pass is a result;
/// a check in `error` is a result of rule `vigil/check_error`.
pub fn sarif(report: &Report) -> String {
    let mut rules = vec![json!({
        "id": "vigil/check_error",
        "shortDescription": {"text": "a check could not run, so its control is unverified"},
        "defaultConfiguration": {"level": "error"},
    })];
    for t in check_types() {
        for c in t.codes {
            let mut rule = json!({
                "id": format!("{}/{}", t.name, c.code),
                "shortDescription": {"text": c.description},
                "defaultConfiguration": {"level": sarif_level(c.severity)},
                "help": {"text": c.remediation},
            });
            // helpUri must be a URI: only references that are links.
            if let (Some(uri), Some(obj)) = (
                c.reference.filter(|r| r.starts_with("https://")),
                rule.as_object_mut(),
            ) {
                obj.insert("helpUri".into(), json!(uri));
            }
            rules.push(rule);
        }
    }
    let mut results = Vec::new();
    for c in &report.controls {
        for k in &c.checks {
            let logical = json!([{"name": format!("{}/{}", c.id, k.id), "kind": "module"}]);
            if k.status == CheckStatus::Error {
                results.push(json!({
                    "ruleId": "vigil/check_error",
                    "level": "error",
                    "message": {"text": format!("{} {}: {}", c.id, k.id, k.summary)},
                    "locations": [{"logicalLocations": logical}],
                    "properties": {"control": c.id, "check": k.id, "host": report.agent.host},
                }));
            }
            if k.status == CheckStatus::Pass {
                continue;
            }
            for f in &k.findings {
                let loc = match &f.location {
                    Some(fl) => {
                        let region = fl.line.map(|line| json!({"startLine": line}));
                        let mut phys = serde_json::Map::new();
                        phys.insert("artifactLocation".into(), json!({"uri": fl.file}));
                        if let Some(r) = region {
                            phys.insert("region".into(), r);
                        }
                        json!({"logicalLocations": logical, "physicalLocation": phys})
                    }
                    None => json!({"logicalLocations": logical}),
                };
                results.push(json!({
                    "ruleId": format!("{}/{}", k.check_type, f.code),
                    "level": sarif_level(f.severity),
                    "message": {"text": format!("{}: {}", f.subject, f.message)},
                    "locations": [loc],
                    "properties": {"control": c.id, "check": k.id, "host": report.agent.host, "severity": f.severity},
                }));
            }
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "vigil",
                "version": report.agent.version,
                "informationUri": "https://github.com/papyrs/vigil",
                "rules": rules,
            }},
            "automationDetails": {"id": format!("{}/{}", report.policy.id, report.report_id)},
            "results": results,
        }],
    });
    let mut s = serde_json::to_string_pretty(&doc).unwrap_or_default();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::check;
    use crate::report::{control_status, summarize, AgentInfo, ControlReport, PolicyRef, SCHEMA};
    use crate::verdict::Finding;

    fn sample() -> Report {
        let mut failing = check("admin_access", CheckStatus::Fail);
        failing.summary = "1 key not on the roster".into();
        failing.findings.push(Finding {
            code: "unknown_key".into(),
            severity: Severity::High,
            subject: "deploy".into(),
            message: "key SHA256:abc <not rostered> & more".into(),
            location: Some(crate::verdict::FileLocation {
                file: "/home/deploy/.ssh/authorized_keys".into(),
                line: Some(3),
            }),
            excerpt: None,
            remediation: None,
        });
        let mut err = check("password_storage", CheckStatus::Error);
        err.summary = "cannot read `/etc/shadow`: permission denied".into();
        let controls: Vec<ControlReport> = vec![
            ("SP-4", vec![failing]),
            ("SP-3", vec![err]),
            ("SP-9", vec![check("attestation", CheckStatus::Pass)]),
        ]
        .into_iter()
        .map(|(id, checks)| ControlReport {
            id: id.into(),
            title: format!("title of {id}"),
            status: control_status(&checks),
            source: None,
            checks,
        })
        .collect();
        let t = chrono::DateTime::parse_from_rfc3339("2026-11-23T10:00:00Z")
            .unwrap()
            .to_utc();
        Report {
            schema: SCHEMA.into(),
            report_id: "00000000-0000-4000-8000-000000000000".into(),
            agent: AgentInfo {
                host: "web-1".into(),
                version: "0.1.0".into(),
                roles: vec![],
                spool_dropped: None,
                policy_refused: None,
            },
            policy: PolicyRef {
                id: "papyrs-security".into(),
                version: "1".into(),
                sha256: "00".into(),
            },
            started_at: t,
            finished_at: t,
            summary: summarize(&controls),
            controls,
            inventory: None,
        }
    }

    #[test]
    fn table_lists_each_control_with_its_reason() {
        let t = table(&sample(), false);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "CONTROL  STATUS    REASON");
        assert_eq!(lines[1], "SP-4     fail      1 key not on the roster");
        assert_eq!(
            lines[2],
            "SP-3     error     cannot read `/etc/shadow`: permission denied"
        );
        assert!(lines[3].starts_with("SP-9     attested"));
        assert!(t.contains("3 controls: 0 pass, 1 attested, 0 waived, 1 fail, 1 error, 0 unknown"));
        assert!(!t.contains('\x1b'));
        assert!(table(&sample(), true).contains("\x1b[31;1mfail\x1b[0m"));
    }

    #[test]
    fn json_round_trips() {
        let r = sample();
        let back: Report = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = junit(&sample());
        assert!(x.contains("<testsuites name=\"papyrs-security 1\" tests=\"3\" failures=\"1\" errors=\"1\" skipped=\"0\">"), "{x}");
        assert!(x.contains("&lt;not rostered&gt; &amp; more"));
        assert!(x.contains("<error message=\"cannot read `/etc/shadow`: permission denied\""));
        assert_eq!(x.matches("<testcase").count(), 3);
    }

    #[test]
    fn sarif_rules_carry_remediation_help() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&sample())).unwrap();
        let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
        let rule = rules
            .iter()
            .find(|r| r["id"] == "admin_access/unknown_key")
            .unwrap();
        let help = rule["help"]["text"].as_str().unwrap();
        assert!(help.contains("authorized_keys"), "{help}");
        let with_uri = rules
            .iter()
            .find(|r| r["id"] == "patch_level/unattended_upgrades_off")
            .unwrap();
        assert_eq!(
            with_uri["helpUri"],
            "https://wiki.debian.org/UnattendedUpgrades"
        );
        for r in rules.iter().skip(1) {
            assert!(
                !r["help"]["text"].as_str().unwrap_or("").is_empty(),
                "{} has no help",
                r["id"]
            );
        }
    }

    #[test]
    fn sarif_has_rules_and_results() {
        let v: serde_json::Value = serde_json::from_str(&sarif(&sample())).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let results = v["runs"][0]["results"].as_array().unwrap();
        assert_eq!(results.len(), 2);
        assert_eq!(results[0]["ruleId"], "admin_access/unknown_key");
        assert_eq!(results[0]["level"], "error");
        assert_eq!(
            results[0]["locations"][0]["physicalLocation"]["region"]["startLine"],
            3
        );
        assert_eq!(results[1]["ruleId"], "vigil/check_error");
        let rules = v["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap();
        assert!(rules.iter().any(|r| r["id"] == "admin_access/unknown_key"));
    }
}
