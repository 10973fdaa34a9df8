//! The reporter's Prometheus metrics: one [`Metrics`] registry per process,
//! kept in the shared state, rendered by `GET /metrics` ([`route`]) in the
//! Prometheus text exposition format 0.0.4. docs/metrics.md lists every metric.
//!
//! Two kinds of figures:
//! - **Counted as they happen**, by the [`track`] middleware around every
//!   request: HTTP requests by route class and status class, and for
//!   `POST /api/v1/reports` the ingest outcome (201 stored, 200 duplicate,
//!   4xx/5xx refused) and its latency. The ingest route itself carries no
//!   hook: its answers are the documented contract the middleware reads.
//! - **Read from the store at scrape time** ([`Metrics::refresh`]): stored
//!   reports, hosts by staleness, closures by state, audit log size and newest
//!   checkpoint. Each is one aggregate over an indexed table; the figures are
//!   kept for [`REFRESH_EVERY`], and concurrent scrapes wait for one refresh,
//!   so a scrape storm costs the store at most one round of queries per period.
//!
//! This module is ground: it imports the store and nothing above it; the
//! route (which authenticates staff) lives in [`crate::scrape`].

use std::time::{Duration, Instant};

use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};
use sqlx::Row;

use crate::store::{now_ms, Store, StoreError};

/// Figures read from the store are at most this old.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Route classes of `vigil_reporter_http_requests_total` (a fixed set, so the
/// label cannot grow with paths).
pub const ROUTE_CLASSES: &[&str] = &["ingest", "api", "metrics", "health", "pages"];
/// Status classes shown at 0 before their first request (1xx never ends a request).
const STATUS_CLASSES: &[&str] = &["2xx", "3xx", "4xx", "5xx"];

/// The reporter's registry and its metrics.
pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    ingest_reports: IntCounterVec,
    ingest_seconds: Histogram,
    refresh_errors: IntCounter,
    reports_stored: IntGauge,
    hosts: IntGaugeVec,
    closures: IntGaugeVec,
    audit_entries: IntGauge,
    audit_checkpoint_size: IntGauge,
    /// When the store figures were last read; the lock makes concurrent
    /// scrapes wait for one refresh instead of each running the queries.
    refreshed: tokio::sync::Mutex<Option<Instant>>,
    /// The scrape token of `metrics.token_file`, if configured.
    token: Option<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never printed.
        f.debug_struct("Metrics")
            .field("token", &self.token.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

fn reg<M: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    m: prometheus::Result<M>,
) -> anyhow::Result<M> {
    let m = m.map_err(|e| anyhow::anyhow!("cannot define a metric: {e}"))?;
    r.register(Box::new(m.clone()))
        .map_err(|e| anyhow::anyhow!("cannot register a metric: {e}"))?;
    Ok(m)
}

impl Metrics {
    /// A registry with every metric defined (counters at zero for each label
    /// value they can take, so no series appears only after its first event).
    /// `token` is the configured scrape token.
    pub fn new(token: Option<String>) -> anyhow::Result<Self> {
        let r = Registry::new();
        let http_requests = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "vigil_reporter_http_requests_total",
                    "HTTP requests answered, by route class and status class",
                ),
                &["route", "class"],
            ),
        )?;
        for route in ROUTE_CLASSES {
            for class in STATUS_CLASSES {
                http_requests.with_label_values(&[*route, *class]);
            }
        }
        let ingest_reports = reg(
            &r,
            IntCounterVec::new(
                Opts::new(
                    "vigil_reporter_ingest_reports_total",
                    "Reports posted by agents, by outcome: stored (201), duplicate (200, already stored), refused (4xx or 5xx)",
                ),
                &["outcome", "class"],
            ),
        )?;
        for (o, c) in [
            ("stored", "2xx"),
            ("duplicate", "2xx"),
            ("refused", "4xx"),
            ("refused", "5xx"),
        ] {
            ingest_reports.with_label_values(&[o, c]);
        }
        let ingest_seconds = reg(
            &r,
            Histogram::with_opts(
                HistogramOpts::new(
                    "vigil_reporter_ingest_duration_seconds",
                    "Time from a report's request to its answer (body read, checks, group commit), any outcome",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            ),
        )?;
        let refresh_errors = reg(
            &r,
            IntCounter::new(
                "vigil_reporter_metrics_refresh_errors_total",
                "Scrapes whose store figures could not be read (the previous figures were served)",
            ),
        )?;
        let reports_stored = reg(
            &r,
            IntGauge::new("vigil_reporter_reports_stored", "Reports in the store"),
        )?;
        let hosts = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "vigil_reporter_hosts",
                    "Hosts by staleness: fresh (a report received within twice the agent's interval), stale (none since, or none yet), revoked (no unrevoked agent)",
                ),
                &["state"],
            ),
        )?;
        for s in ["fresh", "stale", "revoked"] {
            hosts.with_label_values(&[s]);
        }
        let closures = reg(
            &r,
            IntGaugeVec::new(
                Opts::new("vigil_reporter_closures", "Account closures by state"),
                &["state"],
            ),
        )?;
        let audit_entries = reg(
            &r,
            IntGauge::new("vigil_reporter_audit_entries", "Entries in the audit log"),
        )?;
        let audit_checkpoint_size = reg(
            &r,
            IntGauge::new(
                "vigil_reporter_audit_checkpoint_size",
                "Size (entries covered) of the newest signed audit checkpoint",
            ),
        )?;
        let start = reg(
            &r,
            IntGauge::new(
                "vigil_reporter_start_time_seconds",
                "When this reporter process started, Unix time",
            ),
        )?;
        start.set(now_ms() / 1000);
        let build = reg(
            &r,
            IntGaugeVec::new(
                Opts::new(
                    "vigil_reporter_build_info",
                    "Always 1; the version in a label",
                ),
                &["version"],
            ),
        )?;
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Ok(Metrics {
            registry: r,
            http_requests,
            ingest_reports,
            ingest_seconds,
            refresh_errors,
            reports_stored,
            hosts,
            closures,
            audit_entries,
            audit_checkpoint_size,
            refreshed: tokio::sync::Mutex::new(None),
            token,
        })
    }

    /// The configured scrape token, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Counts one answered request.
    pub fn observe(&self, route: &str, method_post: bool, status: u16, elapsed: Duration) {
        let class = status_class(status);
        self.http_requests.with_label_values(&[route, class]).inc();
        if route == "ingest" && method_post {
            let outcome = match status {
                201 => "stored",
                200 => "duplicate",
                _ => "refused",
            };
            self.ingest_reports
                .with_label_values(&[outcome, class])
                .inc();
            self.ingest_seconds.observe(elapsed.as_secs_f64());
        }
    }

    /// Reads the store's figures unless they were read less than
    /// [`REFRESH_EVERY`] ago. `closure_states` are the states always shown
    /// (at 0 when no closure is in them). A failed read keeps the previous
    /// figures and is counted.
    pub async fn refresh(&self, store: &Store, closure_states: &[&str]) {
        let mut last = self.refreshed.lock().await;
        if last.is_some_and(|t| t.elapsed() < REFRESH_EVERY) {
            return;
        }
        match read(store, now_ms()).await {
            Ok(f) => {
                self.reports_stored.set(f.reports);
                self.hosts.with_label_values(&["fresh"]).set(f.fresh);
                self.hosts.with_label_values(&["stale"]).set(f.stale);
                self.hosts.with_label_values(&["revoked"]).set(f.revoked);
                self.closures.reset();
                for s in closure_states {
                    self.closures.with_label_values(&[*s]).set(0);
                }
                for (s, n) in &f.closures {
                    self.closures.with_label_values(&[s.as_str()]).set(*n);
                }
                self.audit_entries.set(f.audit_entries);
                self.audit_checkpoint_size.set(f.checkpoint_size);
                *last = Some(Instant::now());
            }
            Err(e) => {
                tracing::error!(error = %e, "metrics: cannot read the store's figures");
                self.refresh_errors.inc();
            }
        }
    }

    /// Every metric in the text exposition format 0.0.4.
    pub fn render(&self) -> Result<String, String> {
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .map_err(|e| format!("cannot encode the metrics: {e}"))
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// The route class of a request path (a fixed set: see [`ROUTE_CLASSES`]).
pub fn route_class(path: &str) -> &'static str {
    if path == "/api/v1/reports" {
        "ingest"
    } else if path.starts_with("/api/") {
        "api"
    } else if path == "/metrics" {
        "metrics"
    } else if path == "/healthz" {
        "health"
    } else {
        "pages"
    }
}

/// Middleware: counts every request by route class and status class, and
/// ingest outcomes and latency (see [`Metrics::observe`]).
pub async fn track(
    axum::extract::State(m): axum::extract::State<std::sync::Arc<Metrics>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let route = route_class(req.uri().path());
    let post = req.method() == axum::http::Method::POST;
    let start = Instant::now();
    let resp = next.run(req).await;
    m.observe(route, post, resp.status().as_u16(), start.elapsed());
    resp
}

/// The store's figures at one moment.
struct Figures {
    reports: i64,
    fresh: i64,
    stale: i64,
    revoked: i64,
    closures: Vec<(String, i64)>,
    audit_entries: i64,
    checkpoint_size: i64,
}

/// One aggregate per figure, each over a primary key or an index: no report
/// body is read.
async fn read(store: &Store, now: i64) -> Result<Figures, StoreError> {
    let pool = &store.pool;
    let reports: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reports")
        .fetch_one(pool)
        .await?;
    // Staleness as the posture judges it: the newest report older than
    // twice the agent's interval (at least 1 s), or no report yet (one
    // function for both: `fleet_state::stale_sql`).
    let (active, fresh) = crate::fleet_state::staleness_counts(store, now).await?;
    let revoked: i64 = sqlx::query_scalar(
        "SELECT COUNT(DISTINCT host) FROM agents a WHERE revoked_at IS NOT NULL \
         AND NOT EXISTS (SELECT 1 FROM agents b WHERE b.host = a.host AND b.revoked_at IS NULL)",
    )
    .fetch_one(pool)
    .await?;
    let mut closures = Vec::new();
    for r in sqlx::query("SELECT state, COUNT(*) AS n FROM closures GROUP BY state")
        .fetch_all(pool)
        .await?
    {
        closures.push((r.try_get("state")?, r.try_get("n")?));
    }
    let audit_entries: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), -1) + 1 FROM audit_log")
        .fetch_one(pool)
        .await?;
    let checkpoint_size: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(size), 0) FROM audit_checkpoints")
            .fetch_one(pool)
            .await?;
    Ok(Figures {
        reports,
        fresh,
        stale: active.saturating_sub(fresh),
        revoked,
        closures,
        audit_entries,
        checkpoint_size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ingest_outcomes_follow_the_documented_answers() {
        let m = Metrics::new(None).unwrap();
        let d = Duration::from_millis(3);
        m.observe("ingest", true, 201, d);
        m.observe("ingest", true, 201, d);
        m.observe("ingest", true, 200, d);
        m.observe("ingest", true, 400, d);
        m.observe("ingest", true, 503, d);
        m.observe("ingest", false, 405, d);
        m.observe("api", true, 201, d);
        let text = m.render().unwrap();
        for line in [
            "vigil_reporter_ingest_reports_total{class=\"2xx\",outcome=\"stored\"} 2",
            "vigil_reporter_ingest_reports_total{class=\"2xx\",outcome=\"duplicate\"} 1",
            "vigil_reporter_ingest_reports_total{class=\"4xx\",outcome=\"refused\"} 1",
            "vigil_reporter_ingest_reports_total{class=\"5xx\",outcome=\"refused\"} 1",
            "vigil_reporter_ingest_duration_seconds_count 5",
            "vigil_reporter_http_requests_total{class=\"4xx\",route=\"ingest\"} 2",
            "vigil_reporter_http_requests_total{class=\"2xx\",route=\"api\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }

    #[test]
    fn routes_fall_in_a_fixed_set_of_classes() {
        assert_eq!(route_class("/api/v1/reports"), "ingest");
        assert_eq!(route_class("/api/v1/reports/x"), "api");
        assert_eq!(route_class("/metrics"), "metrics");
        assert_eq!(route_class("/reports/hosts/a"), "pages");
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(999), "5xx");
    }

    #[test]
    fn the_token_is_not_debug_printed() {
        let m = Metrics::new(Some("s3cret-s3cret-s3cret".into())).unwrap();
        assert!(!format!("{m:?}").contains("s3cret"));
    }
}
