//! Reports as an agent sends them, made up by a test for the reporter.

use serde_json::{json, Value};

/// A valid `vigil.report/v1` object of `host`, finished at `finished`: one
/// control per `controls` entry (control id, check type, check status), each
/// holding one check `c`; the controls' statuses and the summary follow from
/// the checks' as the agent's do.
pub fn report_of(
    host: &str,
    controls: &[(&str, &str, &str)],
    finished: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut out = Vec::new();
    let mut summary = json!({"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0});
    for (id, ty, status) in controls {
        let control_status = match (*ty, *status) {
            (_, "fail") => "fail",
            (_, "error") => "error",
            (_, "skipped") => "unknown",
            ("attestation", "pass") => "attested",
            _ => "pass",
        };
        summary[control_status] = json!(summary[control_status].as_u64().unwrap() + 1);
        if *status == "skipped" {
            summary["skipped"] = json!(summary["skipped"].as_u64().unwrap() + 1);
        }
        out.push(json!({
            "id": id, "title": format!("{id} title"), "status": control_status,
            "checks": [{"id": "c", "type": ty, "status": status, "summary": "s", "findings": [], "evidence": {}, "duration_ms": 1}]
        }));
    }
    let t = finished.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    json!({
        "schema": "vigil.report/v1",
        "report_id": uuid::Uuid::new_v4().to_string(),
        "agent": {"host": host, "version": "0.1.0"},
        "policy": {"id": "papyrs-security", "version": "1", "sha256": "a".repeat(64)},
        "started_at": t, "finished_at": t,
        "controls": out,
        "summary": summary,
    })
}
