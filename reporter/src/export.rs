//! `vigil-reporter export`: the fleet's posture and every host's newest check
//! results as JSON, CSV or SARIF 2.1.0, for the tools staff already use.
//! Pure over rows: [`rows_of`] flattens reports, the writers only format.

use serde::Serialize;

use crate::posture::{rfc3339, Posture};

/// One check result, or one finding of it, of a host's newest report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Row {
    pub host: String,
    pub report_id: String,
    pub finished_at: String,
    pub control: String,
    pub check: String,
    pub check_type: String,
    pub check_status: String,
    pub code: Option<String>,
    pub severity: Option<String>,
    pub subject: Option<String>,
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u64>,
}

/// Flattens (host, finished_at ms, report body) into rows: one per finding,
/// or one per check without findings.
pub fn rows_of(reports: &[(String, i64, String)]) -> Vec<Row> {
    let mut out = Vec::new();
    for (host, at, body) in reports {
        let Ok(r) = serde_json::from_str::<vigil_rules::report::Report>(body) else {
            continue;
        };
        for c in &r.controls {
            for k in &c.checks {
                let status = serde_json::to_value(k.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default();
                let base = Row {
                    host: host.clone(),
                    report_id: r.report_id.clone(),
                    finished_at: rfc3339(*at),
                    control: c.id.clone(),
                    check: k.id.clone(),
                    check_type: k.check_type.clone(),
                    check_status: status,
                    code: None,
                    severity: None,
                    subject: None,
                    message: k.summary.clone(),
                    file: None,
                    line: None,
                };
                if k.findings.is_empty() {
                    out.push(base);
                    continue;
                }
                for f in &k.findings {
                    out.push(Row {
                        code: Some(f.code.clone()),
                        severity: Some(f.severity.as_str().to_owned()),
                        subject: Some(f.subject.clone()),
                        message: f.message.clone(),
                        file: f.location.as_ref().map(|l| l.file.clone()),
                        line: f.location.as_ref().and_then(|l| l.line),
                        ..base.clone()
                    });
                }
            }
        }
    }
    out
}

pub fn json(posture: &Posture, rows: &[Row]) -> String {
    let v = serde_json::json!({
        "schema": "vigil.export/v1",
        "posture": posture,
        "results": rows,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

fn csv_field(s: &str) -> String {
    // Cells starting with a formula character are prefixed so spreadsheets
    // do not evaluate them (CSV injection).
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

pub fn csv(rows: &[Row]) -> String {
    let mut s = String::from(
        "host,report_id,finished_at,control,check,check_type,check_status,code,severity,subject,message,file,line\n",
    );
    for r in rows {
        let cells = [
            r.host.as_str(),
            &r.report_id,
            &r.finished_at,
            &r.control,
            &r.check,
            &r.check_type,
            &r.check_status,
            r.code.as_deref().unwrap_or(""),
            r.severity.as_deref().unwrap_or(""),
            r.subject.as_deref().unwrap_or(""),
            &r.message,
            r.file.as_deref().unwrap_or(""),
            &r.line.map(|l| l.to_string()).unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
        s.push_str(&line.join(","));
        s.push('\n');
    }
    s
}

fn level(r: &Row) -> &'static str {
    match (r.check_status.as_str(), r.severity.as_deref()) {
        (_, Some("critical" | "high")) => "error",
        (_, Some("medium")) => "warning",
        (_, Some("low" | "info")) => "note",
        ("fail" | "error", None) => "error",
        _ => "none",
    }
}

/// SARIF 2.1.0: one result per finding and per failing or erroring check
/// without findings; passing checks are left out.
pub fn sarif(rows: &[Row], version: &str) -> String {
    let mut rules: Vec<String> = Vec::new();
    let mut results = Vec::new();
    for r in rows {
        let rule = match &r.code {
            Some(code) => format!("{}/{code}", r.check_type),
            None if matches!(r.check_status.as_str(), "fail" | "error") => {
                format!("{}/{}", r.check_type, r.check_status)
            }
            None => continue,
        };
        if !rules.contains(&rule) {
            rules.push(rule.clone());
        }
        let logical = serde_json::json!([{
            "name": r.check,
            "fullyQualifiedName": format!("{}/{}/{}", r.host, r.control, r.check),
            "kind": "resource",
        }]);
        let mut result = serde_json::json!({
            "ruleId": rule,
            "level": level(r),
            "message": {"text": format!("{}: {}", r.host, r.message)},
            "properties": {"host": r.host, "control": r.control, "report_id": r.report_id, "subject": r.subject, "finished_at": r.finished_at},
        });
        let location = match &r.file {
            Some(f) => serde_json::json!([{
                "physicalLocation": {
                    "artifactLocation": {"uri": f},
                    "region": {"startLine": r.line.unwrap_or(1).max(1)},
                },
                "logicalLocations": logical,
            }]),
            None => serde_json::json!([{ "logicalLocations": logical }]),
        };
        if let Some(o) = result.as_object_mut() {
            o.insert("locations".into(), location);
        }
        results.push(result);
    }
    let v = serde_json::json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "vigil",
                "version": version,
                "rules": rules.iter().map(|id| serde_json::json!({"id": id})).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
