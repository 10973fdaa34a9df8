//! Export archives a run proved, handed to the reporter
//! (`PUT /api/v1/exports/{account}`).

use std::path::PathBuf;
use std::time::Duration;

use vigil_rules::checks::erasure;
use vigil_rules::report::Report;

use super::{http, Conn};

/// An export archive a run proved, to hand to the reporter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvedExport {
    pub account: String,
    pub archive: PathBuf,
    pub sha256: String,
}

/// The export archives a report proves (phase `export`, done).
pub fn proved_exports(report: &Report) -> Vec<ProvedExport> {
    let mut out = Vec::new();
    for check in report.controls.iter().flat_map(|c| &c.checks) {
        if check.check_type != "erasure" {
            continue;
        }
        for (t, _) in erasure::tasks(&check.evidence) {
            let (Some(archive), Some(sha256)) = (t.archive, t.archive_sha256) else {
                continue;
            };
            if t.phase == "export" && t.done && erasure::valid_account(&t.account) {
                out.push(ProvedExport {
                    account: t.account,
                    archive: PathBuf::from(archive),
                    sha256,
                });
            }
        }
    }
    out
}

/// Streams one archive to `PUT /api/v1/exports/{account}`, retrying a few
/// times while the reporter is away.
pub async fn upload_export(conn: Conn, e: ProvedExport) -> bool {
    let mut delay = Duration::from_secs(5);
    for attempt in 1..=6 {
        let res = try_upload(&conn, &e).await;
        match res {
            Ok(()) => {
                tracing::info!(
                    "export of `{}` ({}) handed to the reporter",
                    e.account,
                    e.sha256
                );
                return true;
            }
            Err((why, retry)) => {
                if !retry || attempt == 6 {
                    tracing::error!(
                        "cannot hand the export of `{}` to the reporter: {why}",
                        e.account
                    );
                    return false;
                }
                tracing::warn!(
                    "cannot hand the export of `{}` to the reporter yet: {why}; retrying in {}",
                    e.account,
                    humantime::format_duration(delay)
                );
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
            }
        }
    }
    false
}

async fn try_upload(conn: &Conn, e: &ProvedExport) -> Result<(), (String, bool)> {
    let token = conn.token.as_ref().ok_or(("no token".to_owned(), false))?;
    let file = tokio::fs::File::open(&e.archive).await.map_err(|err| {
        (
            format!("cannot open `{}`: {err}", e.archive.display()),
            false,
        )
    })?;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let resp = conn
        .client
        .put(http::endpoint(
            &conn.server,
            &format!("/api/v1/exports/{}", e.account),
        ))
        .bearer_auth(token.expose())
        .header("x-archive-sha256", &e.sha256)
        .header(reqwest::header::CONTENT_TYPE, "application/gzip")
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::from(file))
        .send()
        .await
        .map_err(|err| (http::describe(&err), true))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let text = resp.text().await.unwrap_or_default();
    let retry = status.is_server_error() || status.as_u16() == 408;
    Err((
        format!(
            "the reporter answered {status}: {}",
            http::error_message(&text)
        ),
        retry,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proved_exports_are_found_in_erasure_evidence_only() {
        let mut r: Report = serde_json::from_value(serde_json::json!({
            "schema": "vigil.report/v1", "report_id": "r", "agent": {"host": "h", "version": "1", "roles": []},
            "policy": {"id": "p", "version": "1", "sha256": "x"},
            "started_at": "2026-11-26T00:00:00Z", "finished_at": "2026-11-26T00:00:01Z",
            "summary": {"pass": 1, "fail": 0, "error": 0, "attested": 0, "skipped": 0},
            "controls": [{"id": "GDPR-5", "title": "t", "status": "pass", "checks": [
                {"id": "e", "type": "erasure", "status": "pass", "summary": "", "duration_ms": 1,
                 "evidence": {"tasks": [
                    {"account": "acme", "phase": "export", "done": true, "archive": "/x/acme.tar.gz", "archive_sha256": "ab"},
                    {"account": "beta", "phase": "export", "done": false, "archive": "/x/b.tar.gz", "archive_sha256": "cd"},
                    {"account": "../x", "phase": "export", "done": true, "archive": "/x/c.tar.gz", "archive_sha256": "ef"},
                    {"account": "acme", "phase": "site", "done": true}]}}]}]
        }))
        .unwrap();
        let found = proved_exports(&r);
        assert_eq!(
            found,
            [ProvedExport {
                account: "acme".into(),
                archive: PathBuf::from("/x/acme.tar.gz"),
                sha256: "ab".into()
            }]
        );
        r.controls[0].checks[0].check_type = "attestation".into();
        assert!(proved_exports(&r).is_empty());
    }
}
