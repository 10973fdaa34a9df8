//! The daemon's optional local metrics listener (config `metrics: {listen: …}`,
//! off by default): `GET /metrics` in the Prometheus text format 0.0.4 with
//! each check's last duration and status, the spool's depth, reports spooled,
//! shipped and failed deliveries, and the time of the last successful delivery.
//! docs/metrics.md lists every metric.
//!
//! The figures reveal the host's state (which checks fail, whether it can reach
//! its reporter), so the listener is for loopback unless the config says
//! `allow_remote: true` ([`crate::config::MetricsListen`]). There is no
//! authentication: whoever reaches the port reads the figures.
//!
//! The responder is a minimal HTTP/1.1 server on the tokio the agent already
//! runs (no HTTP server crate): one request per connection, headers bounded in
//! size and time, `Connection: close`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use vigil_rules::report::Report;

use super::shipper::Outcome;
use super::spool::Spool;

/// Largest request head read; a longer one is answered 431 and closed.
const MAX_HEAD: usize = 8 * 1024;
/// A client must send its request within this time.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more wait to be accepted.
const MAX_CONNECTIONS: usize = 8;
const STATUSES: [&str; 4] = ["pass", "fail", "error", "skipped"];

/// The last result of one check.
#[derive(Debug, Clone)]
struct CheckFigures {
    check_type: String,
    duration_ms: u64,
    status: &'static str,
    finished_at: i64,
}

#[derive(Debug, Default)]
struct Figures {
    /// By (control id, check id).
    checks: BTreeMap<(String, String), CheckFigures>,
    spooled: u64,
    shipped: u64,
    failed: u64,
    /// Unix seconds of the last delivery round that delivered at least one report.
    last_shipped: Option<i64>,
}

/// What the daemon tells the listener; cheap to update from the run loop and
/// the shipper.
#[derive(Debug, Default)]
pub struct Board {
    figures: Mutex<Figures>,
}

impl Board {
    /// A report was built and spooled: its checks' durations and statuses.
    pub fn record_report(&self, report: &Report) {
        let Ok(mut f) = self.figures.lock() else {
            return;
        };
        f.spooled = f.spooled.saturating_add(1);
        let at = report.finished_at.timestamp();
        for c in &report.controls {
            for k in &c.checks {
                f.checks.insert(
                    (c.id.clone(), k.id.clone()),
                    CheckFigures {
                        check_type: k.check_type.clone(),
                        duration_ms: k.duration_ms,
                        status: k.status.as_str(),
                        finished_at: at,
                    },
                );
            }
        }
    }

    /// One delivery round of the shipper ended with `outcome` at `now` (Unix seconds).
    pub fn record_shipment(&self, outcome: &Outcome, now: i64) {
        let Ok(mut f) = self.figures.lock() else {
            return;
        };
        let sent = match outcome {
            Outcome::Drained { sent } => *sent,
            Outcome::Retry { sent, .. } | Outcome::NeedsEnroll { sent } => {
                f.failed = f.failed.saturating_add(1);
                *sent
            }
        };
        if sent > 0 {
            f.shipped = f
                .shipped
                .saturating_add(u64::try_from(sent).unwrap_or(u64::MAX));
            f.last_shipped = Some(now);
        }
    }

    /// The exposition; `spool_depth` is None when the spool cannot be listed.
    pub fn render(&self, spool_depth: Option<usize>) -> String {
        let f = match self.figures.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        let mut o = String::new();
        let head = |o: &mut String, name: &str, kind: &str, help: &str| {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
        };
        head(
            &mut o,
            "vigil_agent_check_duration_seconds",
            "gauge",
            "How long each check took in its last run",
        );
        for ((control, check), c) in &f.checks {
            let _ = writeln!(
                o,
                "vigil_agent_check_duration_seconds{{control=\"{}\",check=\"{}\",type=\"{}\"}} {}",
                esc(control),
                esc(check),
                esc(&c.check_type),
                secs(c.duration_ms)
            );
        }
        head(
            &mut o,
            "vigil_agent_check_status",
            "gauge",
            "Each check's status in its last run: 1 for the status it had, 0 for the others",
        );
        for ((control, check), c) in &f.checks {
            for s in STATUSES {
                let _ = writeln!(
                    o,
                    "vigil_agent_check_status{{control=\"{}\",check=\"{}\",status=\"{s}\"}} {}",
                    esc(control),
                    esc(check),
                    u8::from(c.status == s)
                );
            }
        }
        head(
            &mut o,
            "vigil_agent_check_last_run_timestamp_seconds",
            "gauge",
            "When each check's last run finished (the report's finish time), Unix time",
        );
        for ((control, check), c) in &f.checks {
            let _ = writeln!(
                o,
                "vigil_agent_check_last_run_timestamp_seconds{{control=\"{}\",check=\"{}\"}} {}",
                esc(control),
                esc(check),
                c.finished_at
            );
        }
        if let Some(d) = spool_depth {
            head(
                &mut o,
                "vigil_agent_spool_reports",
                "gauge",
                "Reports waiting in the spool for delivery",
            );
            let _ = writeln!(o, "vigil_agent_spool_reports {d}");
        }
        for (name, help, v) in [
            (
                "vigil_agent_reports_spooled_total",
                "Reports built and written to the spool since start",
                f.spooled,
            ),
            (
                "vigil_agent_reports_shipped_total",
                "Reports the reporter acknowledged (201 stored or 200 already stored) since start",
                f.shipped,
            ),
            (
                "vigil_agent_ship_failures_total",
                "Delivery rounds that stopped on a report the reporter could not take (network, 5xx, refused token) since start",
                f.failed,
            ),
        ] {
            head(&mut o, name, "counter", help);
            let _ = writeln!(o, "{name} {v}");
        }
        head(
            &mut o,
            "vigil_agent_last_shipment_timestamp_seconds",
            "gauge",
            "When a report was last delivered, Unix time (0: none since start)",
        );
        let _ = writeln!(
            o,
            "vigil_agent_last_shipment_timestamp_seconds {}",
            f.last_shipped.unwrap_or(0)
        );
        head(
            &mut o,
            "vigil_agent_build_info",
            "gauge",
            "Always 1; the agent's version in a label",
        );
        let _ = writeln!(
            o,
            "vigil_agent_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        o
    }
}

/// Milliseconds as seconds, exactly (`1234` → `1.234`).
fn secs(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// A label value escaped as the text format wants (`\`, `"`, newline).
fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Serves `GET /metrics` on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, board: Arc<Board>, spool: watch::Receiver<Arc<Spool>>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("metrics listener: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (board, spool) = (board.clone(), spool.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = tokio::time::timeout(READ_TIMEOUT * 2, answer(stream, &board, &spool)).await;
        });
    }
}

async fn answer(
    mut stream: TcpStream,
    board: &Board,
    spool: &watch::Receiver<Arc<Spool>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_read = tokio::time::timeout(READ_TIMEOUT, async {
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if buf.len() > MAX_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    let complete = matches!(head_read, Ok(Ok(true)));
    let (status, body) = if !complete {
        if buf.len() > MAX_HEAD {
            ("431 Request Header Fields Too Large", String::new())
        } else {
            return Ok(());
        }
    } else {
        let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("GET"), Some("/metrics")) => {
                let depth = spool.borrow().entries().ok().map(|e| e.len());
                ("200 OK", board.render(depth))
            }
            (Some("GET"), Some(_)) => ("404 Not Found", "only /metrics is served here\n".into()),
            _ => ("405 Method Not Allowed", "only GET /metrics\n".into()),
        }
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_escapes() {
        let b = Board::default();
        b.record_shipment(&Outcome::Drained { sent: 2 }, 1_700_000_000);
        b.record_shipment(
            &Outcome::Retry {
                sent: 1,
                reason: "x".into(),
            },
            1_700_000_100,
        );
        b.record_shipment(&Outcome::Drained { sent: 0 }, 1_700_000_200);
        let t = b.render(Some(4));
        for line in [
            "vigil_agent_reports_shipped_total 3",
            "vigil_agent_ship_failures_total 1",
            "vigil_agent_last_shipment_timestamp_seconds 1700000100",
            "vigil_agent_spool_reports 4",
        ] {
            assert!(t.lines().any(|l| l == line), "no `{line}` in\n{t}");
        }
        assert!(!b.render(None).contains("vigil_agent_spool_reports"));
        assert_eq!(esc("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(secs(1234), "1.234");
        assert_eq!(secs(5), "0.005");
    }
}
