//! `vigil-agent run`: the daemon.
//!
//! One loop owns the schedule: when controls are due it runs them (one
//! report per tick, built by [`crate::engine::run`]), writes the report to the
//! durable [`spool`], and wakes the [`shipper`] task, which delivers spooled
//! reports in order. Signals are handled between runs: SIGHUP reloads the
//! config (and the policy), SIGTERM lets the current run finish, flushes the
//! spool once more and exits. See docs/agent-daemon.md.

pub mod metrics;
pub mod scheduler;
pub mod sd_notify;
pub mod shipper;
pub mod signals;
pub mod spool;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use vigil_rules::policy::{self, Policy};
use vigil_rules::report::Report;

use crate::client::exports::{proved_exports, upload_export};
use crate::client::fetch::{fetch_erasures, fetch_policy, fetch_waivers, Fetched};
use crate::client::http::{self, Secret};
use crate::client::{connect, Conn};
use crate::config::{self, AgentConfig};
use crate::engine::{self, ErasureTasks, RunOptions};
use scheduler::Scheduler;
use sd_notify::Notifier;
use shipper::{Backoff, Outcome};
use signals::{Sig, Signals};
use spool::{Limits, Spool};
use vigil_rules::checks::CheckSpec;
use vigil_rules::waivers::Waiver;

/// The last flush on SIGTERM gives up after this long.
pub const FINAL_FLUSH: Duration = Duration::from_secs(10);
/// The shipper retries a drained spool at least this often (a report spooled
/// by a previous process, a token re-enrolled).
pub const IDLE_RECHECK: Duration = Duration::from_secs(60);
/// While the token is refused, the token file is read this often.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(2);
/// The last good policy from the reporter, in the state directory.
pub const LAST_GOOD_POLICY: &str = "reporter-policy.yaml";

/// Where the running policy came from, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    Reporter,
    LastGood(PathBuf),
    Local(PathBuf),
}

impl std::fmt::Display for PolicySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicySource::Reporter => f.write_str("the reporter"),
            PolicySource::LastGood(p) => write!(f, "the last good policy `{}`", p.display()),
            PolicySource::Local(p) => write!(f, "the local policy `{}`", p.display()),
        }
    }
}

/// The export output directories of the policy's `erasure` checks.
pub fn export_dirs(policy: &Policy) -> Vec<String> {
    let mut dirs: Vec<String> = policy
        .controls
        .iter()
        .flat_map(|c| &c.checks)
        .filter_map(|k| match &k.spec {
            CheckSpec::Erasure(p) => p.export.as_ref().map(|x| x.output_dir.clone()),
            _ => None,
        })
        .collect();
    dirs.sort();
    dirs.dedup();
    dirs
}

/// Deletes the export archives of `accounts` from every export directory of
/// the policy (the closure ended or the export expired: issue 21).
pub async fn delete_exports(
    policy: &Policy,
    ctx: &crate::collect::host::HostCtx,
    accounts: Vec<String>,
) {
    let dirs: Vec<std::path::PathBuf> = export_dirs(policy).iter().map(|d| ctx.path(d)).collect();
    if dirs.is_empty() || accounts.is_empty() {
        return;
    }
    let done = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for dir in &dirs {
            for a in &accounts {
                out.push((a.clone(), crate::act::export::remove_archive(dir, a)));
            }
        }
        out
    })
    .await;
    for (account, r) in done.unwrap_or_default() {
        match r {
            Ok(crate::act::export::Removed::Deleted) => {
                tracing::info!("export archive of `{account}` deleted: its closure ended or its export expired");
            }
            Ok(crate::act::export::Removed::Absent) => {}
            Err(why) => tracing::error!("cannot delete the export archive of `{account}`: {why}"),
        }
    }
}

/// Ids of the controls with an `erasure` check, in policy order.
pub fn erasure_controls(policy: &Policy) -> Vec<String> {
    policy
        .controls
        .iter()
        .filter(|c| {
            c.checks
                .iter()
                .any(|k| matches!(k.spec, CheckSpec::Erasure(_)))
        })
        .map(|c| c.id.clone())
        .collect()
}

fn limits(cfg: &AgentConfig) -> Limits {
    Limits {
        max_reports: cfg
            .spool_max_reports
            .unwrap_or(config::DEFAULT_SPOOL_MAX_REPORTS),
        max_bytes: cfg
            .spool_max_bytes
            .unwrap_or(config::DEFAULT_SPOOL_MAX_BYTES),
        max_age: cfg
            .spool_max_age
            .map_or(config::DEFAULT_SPOOL_MAX_AGE, |d| d.as_std()),
    }
}

fn load_local_policy(cfg: &AgentConfig) -> Result<(Policy, PolicySource), String> {
    let path = cfg
        .policy
        .clone()
        .ok_or("the reporter hands out no policy and the config names no local `policy`")?;
    match policy::load(&path) {
        Ok(p) => Ok((p, PolicySource::Local(path))),
        Err(policy::LoadError::Invalid(d)) => Err(format!("{d}\nthe local policy is invalid")),
        Err(e) => Err(e.to_string()),
    }
}

fn load_last_good(state_dir: &Path) -> Option<(Policy, PolicySource)> {
    let path = state_dir.join(LAST_GOOD_POLICY);
    let p = policy::load(&path).ok()?;
    Some((p, PolicySource::LastGood(path)))
}

struct Daemon {
    config_path: PathBuf,
    cfg: AgentConfig,
    policy: Arc<Policy>,
    source: PolicySource,
    scheduler: Scheduler,
    spool: Arc<Spool>,
    conn: Conn,
    conn_tx: watch::Sender<Conn>,
    wake_shipper: Arc<Notify>,
    rng: fastrand::Rng,
    next_policy_check: Instant,
    /// Export archives already handed to the reporter (or being handed), by digest.
    /// A failed upload leaves the set, so the next proof tries again.
    uploaded: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The reporter's waivers for this host, as last fetched.
    waivers: Vec<Waiver>,
    /// The reporter's policy key, pinned at enrollment.
    policy_key: Option<ed25519_dalek::VerifyingKey>,
    /// Why the reporter's newest policy was refused, told in every report until one is accepted.
    policy_refused: Option<String>,
}

impl Daemon {
    /// Picks the policy at start: the reporter's, else the last good one,
    /// else the local one.
    async fn initial_policy(
        cfg: &AgentConfig,
        conn: &Conn,
        key: Option<&ed25519_dalek::VerifyingKey>,
    ) -> Result<(Policy, PolicySource, Option<String>), String> {
        let state = cfg.state_dir();
        let mut refused = None;
        match fetch_policy(conn, key).await {
            Fetched::Policy(p, yaml) => {
                save_last_good(&state, &yaml);
                return Ok((*p, PolicySource::Reporter, None));
            }
            Fetched::NoPolicy => return load_local_policy(cfg).map(|(p, s)| (p, s, None)),
            Fetched::Refused(why) => {
                tracing::error!("refusing the reporter's policy: {why}");
                refused = Some(why.to_string());
            }
            Fetched::Unavailable(why) => {
                tracing::warn!("cannot fetch the policy from the reporter: {why}");
            }
        }
        match load_last_good(&state) {
            Some((p, s)) => Ok((p, s, refused)),
            None => load_local_policy(cfg).map(|(p, s)| (p, s, refused)),
        }
    }

    /// Asks the reporter for its policy and switches to it when it changed.
    async fn refresh_policy(&mut self) {
        match fetch_policy(&self.conn, self.policy_key.as_ref()).await {
            Fetched::Policy(p, yaml) => {
                self.policy_refused = None;
                if p.sha256 != self.policy.sha256 || self.source != PolicySource::Reporter {
                    save_last_good(&self.cfg.state_dir(), &yaml);
                    self.set_policy(*p, PolicySource::Reporter);
                }
            }
            Fetched::NoPolicy => {
                if self.source == PolicySource::Reporter
                    || matches!(self.source, PolicySource::LastGood(_))
                    || self.cfg.policy.is_some()
                {
                    match load_local_policy(&self.cfg) {
                        Ok((p, src)) => {
                            if p.sha256 != self.policy.sha256 || src != self.source {
                                self.set_policy(p, src);
                            }
                        }
                        Err(e) => tracing::error!(
                            "the reporter hands out no policy and the local one cannot be used: \
                             {e}; keeping {}",
                            self.source
                        ),
                    }
                }
            }
            Fetched::Refused(why) => {
                tracing::error!(
                    "refusing the reporter's policy: {why}; keeping {} (`{}` version {})",
                    self.source,
                    self.policy.meta.id,
                    self.policy.meta.version
                );
                self.policy_refused = Some(why.to_string());
            }
            Fetched::Unavailable(why) => tracing::warn!(
                "cannot fetch the policy from the reporter: {why}; keeping {}",
                self.source
            ),
        }
    }

    /// Asks the reporter for this host's waivers; keeps the last list when it cannot.
    async fn refresh_waivers(&mut self) {
        match fetch_waivers(&self.conn).await {
            Ok(w) => {
                let ids = |l: &[Waiver]| l.iter().map(|w| w.id.clone()).collect::<Vec<_>>();
                if ids(&w) != ids(&self.waivers) {
                    tracing::info!(
                        "{} waiver(s) from the reporter: {}",
                        w.len(),
                        ids(&w).join(", ")
                    );
                }
                self.waivers = w;
            }
            Err(why) => tracing::warn!(
                "cannot fetch the waivers: {why}; keeping the {} known",
                self.waivers.len()
            ),
        }
        // The reporter's advisory feed, for `advisories: reporter`.
        if let Some(token) = self.conn.token.as_ref() {
            let url = http::endpoint(&self.conn.server, "/api/v1/advisories");
            let state = self.cfg.state_dir();
            match crate::collect::patch_level::refresh_from_reporter(
                &self.conn.client,
                &url,
                token.expose(),
                &state,
            )
            .await
            {
                Ok(true) => tracing::info!("a new advisory feed from the reporter"),
                Ok(false) => {}
                Err(why) => {
                    tracing::warn!("cannot fetch the advisory feed: {why}; keeping the copy known")
                }
            }
        }
    }

    fn set_policy(&mut self, p: Policy, source: PolicySource) {
        tracing::info!(
            "running policy `{}` version {} (sha256 {}) from {source}",
            p.meta.id,
            p.meta.version,
            p.sha256
        );
        self.policy = Arc::new(p);
        self.source = source;
        self.reschedule();
    }

    fn reschedule(&mut self) {
        self.scheduler = Scheduler::new(
            &self.policy,
            self.cfg.interval(),
            std::time::Instant::now(),
            &mut self.rng,
        );
        for (period, n) in self.scheduler.describe() {
            tracing::info!(
                "{n} control(s) every {}",
                humantime::format_duration(period)
            );
        }
    }

    /// SIGHUP: reads the config again; a bad one is refused and the old kept.
    async fn reload(&mut self) {
        let cfg = match AgentConfig::load(&self.config_path) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload refused, keeping the running config: {e}");
                return;
            }
        };
        let conn = match connect(&cfg) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("config reload refused, keeping the running config: {e}");
                return;
            }
        };
        if let Err(e) = std::fs::create_dir_all(cfg.spool_dir()) {
            tracing::error!("config reload refused: cannot create the spool: {e}");
            return;
        }
        if cfg.spool_dir() != self.cfg.spool_dir() || limits(&cfg) != limits(&self.cfg) {
            match Spool::open(&cfg.spool_dir(), limits(&cfg)) {
                Ok(s) => self.spool = Arc::new(s),
                Err(e) => {
                    tracing::error!("config reload refused: cannot open the spool: {e}");
                    return;
                }
            }
            tracing::info!(
                "spool `{}` (reports spooled under the old path stay there)",
                cfg.spool_dir().display()
            );
        }
        match crate::client::enroll::pinned_policy_key(&cfg.state_dir()) {
            Ok(k) => self.policy_key = k,
            Err(e) => tracing::error!("{e}; keeping the policy key known"),
        }
        let interval_changed = cfg.interval() != self.cfg.interval();
        if cfg.metrics != self.cfg.metrics {
            tracing::warn!("config `metrics` changed: the metrics listener keeps its address until the agent restarts");
        }
        self.cfg = cfg;
        self.conn = conn.clone();
        self.conn_tx.send_replace(conn);
        tracing::info!("config `{}` reloaded", self.config_path.display());
        let before = self.policy.sha256.clone();
        self.refresh_policy().await;
        if self.source != PolicySource::Reporter {
            // a changed local policy file is picked up on reload
            if let Ok((p, src)) = load_local_policy(&self.cfg) {
                if matches!(self.source, PolicySource::Local(_)) && p.sha256 != self.policy.sha256 {
                    self.set_policy(p, src);
                }
            }
        }
        if interval_changed && before == self.policy.sha256 {
            self.reschedule();
        }
        self.next_policy_check = Instant::now() + self.cfg.interval();
        self.wake_shipper.notify_one();
    }

    fn run_options(&self, due: Vec<String>, erasures: ErasureTasks) -> RunOptions {
        RunOptions {
            erasures,
            host: self.cfg.host_name(),
            roles: self.cfg.roles.clone(),
            controls: due,
            ctx: self.cfg.daemon_host_ctx(),
            board: None,
        }
    }

    /// Writes a finished report to the spool and wakes the shipper.
    fn spool_report(&self, report: Report) {
        let mut report = report;
        let dropped = self.spool.dropped();
        if dropped > 0 {
            report.agent.spool_dropped = Some(dropped);
        }
        report.agent.policy_refused = self.policy_refused.clone();
        let bytes = match serde_json::to_vec(&report) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("cannot serialize report {}: {e}", report.report_id);
                return;
            }
        };
        match self.spool.push(&report.report_id, &bytes) {
            Ok(e) => tracing::info!(
                report_id = %report.report_id,
                controls = report.controls.len(),
                "report spooled as {}",
                e.name()
            ),
            Err(e) => {
                tracing::error!(
                    "cannot write report {} to the spool `{}`: {e}; it is lost",
                    report.report_id,
                    self.spool.dir().display()
                );
                return;
            }
        }
        match self.spool.enforce_limits() {
            Ok(dropped) => {
                for name in dropped {
                    tracing::warn!(
                        "spool full or too old: dropped the oldest report `{name}` unsent \
                         (counted in the next report's agent.spool_dropped)"
                    );
                }
            }
            Err(e) => tracing::error!("cannot keep the spool within its bounds: {e}"),
        }
        self.wake_shipper.notify_one();
    }
}

fn save_last_good(state_dir: &Path, yaml: &str) {
    let path = state_dir.join(LAST_GOOD_POLICY);
    let res = std::fs::create_dir_all(state_dir)
        .and_then(|_| crate::durable::write_durable(&path, yaml.as_bytes(), 0o600));
    if let Err(e) = res {
        tracing::warn!("cannot keep the policy in `{}`: {e}", path.display());
    }
}

/// The shipper task: delivers whenever woken, backs off while the reporter is away.
async fn ship_loop(
    mut conn_rx: watch::Receiver<Conn>,
    spool: watch::Receiver<Arc<Spool>>,
    wake: Arc<Notify>,
    board: Arc<metrics::Board>,
) {
    let mut backoff = Backoff::default();
    let mut rng = fastrand::Rng::new();
    let mut was_failing = false;
    let mut refused: Option<Secret> = None;
    let mut newer_token: Option<Secret> = None;
    loop {
        let mut conn = conn_rx.borrow_and_update().clone();
        if let (Some(bad), Some(file)) = (&refused, &conn.token_file) {
            // the token was refused: a new `enroll` may have written another
            match http::read_token(file) {
                Ok(t) if &t != bad => {
                    tracing::info!("a new token is in `{}`; shipping again", file.display());
                    newer_token = Some(t);
                    refused = None;
                }
                _ => {}
            }
        }
        if newer_token.is_some() {
            conn.token = newer_token.clone();
        }
        let sp = spool.borrow().clone();
        let outcome = if refused.is_some() {
            // a refused token stays refused: wait for a new one, do not knock
            Outcome::NeedsEnroll { sent: 0 }
        } else {
            shipper::ship_pending(&conn, &sp).await
        };
        board.record_shipment(&outcome, chrono::Utc::now().timestamp());
        let wait = match outcome {
            Outcome::Drained { sent } => {
                if was_failing {
                    tracing::info!("the reporter is back; spool delivered");
                }
                if sent > 0 {
                    tracing::info!("{sent} report(s) delivered");
                }
                was_failing = false;
                backoff.reset();
                IDLE_RECHECK
            }
            Outcome::Retry { sent, reason } => {
                let d = backoff.next_delay(&mut rng);
                let pending = sp.entries().map_or(0, |e| e.len());
                tracing::warn!(
                    "{sent} report(s) delivered, {pending} waiting: {reason}; retrying in {}",
                    humantime::format_duration(Duration::from_millis(
                        u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
                    ))
                );
                was_failing = true;
                d
            }
            Outcome::NeedsEnroll { .. } => {
                was_failing = true;
                refused = conn.token.clone();
                // look for a new token in the token file now and then
                TOKEN_RECHECK
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified(), if !was_failing => {}
            r = conn_rx.changed() => {
                if r.is_err() {
                    return;
                }
                backoff.reset();
                refused = None;
                newer_token = None;
            }
        }
    }
}

/// Runs the daemon until SIGTERM; `Err` means it could not start.
pub async fn run(config_path: &Path) -> Result<(), String> {
    let cfg = AgentConfig::load(config_path).map_err(|e| e.to_string())?;
    let conn = connect(&cfg).map_err(|e| e.to_string())?;
    let spool = Spool::open(&cfg.spool_dir(), limits(&cfg))
        .map_err(|e| format!("cannot open the spool `{}`: {e}", cfg.spool_dir().display()))?;
    std::fs::create_dir_all(cfg.state_dir()).map_err(|e| {
        format!(
            "cannot create the state directory `{}`: {e}",
            cfg.state_dir().display()
        )
    })?;
    let mut signals =
        Signals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let policy_key =
        crate::client::enroll::pinned_policy_key(&cfg.state_dir()).map_err(|e| e.to_string())?;
    if policy_key.is_none() {
        tracing::warn!(
            "no policy key pinned in `{}`: policies from the reporter are accepted unsigned (run `vigil-agent enroll` again to pin it)",
            cfg.state_dir().join(crate::client::enroll::POLICY_KEY_FILE).display()
        );
    }
    let (policy, source, policy_refused) =
        Daemon::initial_policy(&cfg, &conn, policy_key.as_ref()).await?;
    let spool = Arc::new(spool);
    let (conn_tx, conn_rx) = watch::channel(conn.clone());
    let (spool_tx, spool_rx) = watch::channel(spool.clone());
    let wake_shipper = Arc::new(Notify::new());
    let mut d = Daemon {
        config_path: config_path.to_owned(),
        next_policy_check: Instant::now() + cfg.interval(),
        cfg,
        policy: Arc::new(policy.clone()),
        source: source.clone(),
        scheduler: Scheduler::new(
            &policy,
            Duration::from_secs(1),
            std::time::Instant::now(),
            &mut fastrand::Rng::new(),
        ),
        spool,
        conn,
        conn_tx,
        wake_shipper: wake_shipper.clone(),
        rng: fastrand::Rng::new(),
        uploaded: Default::default(),
        waivers: vec![],
        policy_key,
        policy_refused,
    };
    d.refresh_waivers().await;
    d.set_policy(policy, source);
    let board = Arc::new(metrics::Board::default());
    let metrics_task = match &d.cfg.metrics {
        Some(m) => {
            let addr = m.address().map_err(|e| e.to_string())?;
            let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                format!("cannot listen for metrics on `{addr}` (config `metrics.listen`): {e}")
            })?;
            tracing::info!("serving metrics on http://{addr}/metrics");
            Some(tokio::spawn(metrics::serve(
                l,
                board.clone(),
                spool_rx.clone(),
            )))
        }
        None => None,
    };
    let shipper = tokio::spawn(ship_loop(conn_rx, spool_rx, wake_shipper, board.clone()));

    let notifier = Notifier::from_env();
    let watchdog_every = notifier.watchdog_every();
    let mut watchdog = tokio::time::interval(watchdog_every.unwrap_or(Duration::from_secs(3600)));
    watchdog.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    if let Err(e) = notifier.notify("READY=1") {
        tracing::warn!("cannot notify systemd: {e}");
    }
    tracing::info!(
        "vigil-agent {} running for host `{}`, reporting to {}, spool `{}` ({} report(s) waiting)",
        env!("CARGO_PKG_VERSION"),
        d.cfg.host_name(),
        d.conn.server,
        d.spool.dir().display(),
        d.spool.entries().map_or(0, |e| e.len())
    );

    let mut running: Option<JoinHandle<Result<Report, engine::SelectError>>> = None;
    let mut stopping = false;
    loop {
        let wake = d
            .scheduler
            .next_wake()
            .map_or(d.next_policy_check, Instant::from_std)
            .min(d.next_policy_check);
        tokio::select! {
            res = async {
                match running.as_mut() {
                    Some(h) => h.await,
                    None => std::future::pending().await,
                }
            } => {
                running = None;
                match res {
                    Ok(Ok(report)) => {
                        for e in proved_exports(&report) {
                            let fresh = d.uploaded.lock().is_ok_and(|mut s| s.insert(e.sha256.clone()));
                            if fresh {
                                let (conn, uploaded) = (d.conn.clone(), d.uploaded.clone());
                                tokio::spawn(async move {
                                    let sha = e.sha256.clone();
                                    if !upload_export(conn, e).await {
                                        if let Ok(mut s) = uploaded.lock() {
                                            s.remove(&sha);
                                        }
                                    }
                                });
                            }
                        }
                        let mut report = report;
                        let applied = vigil_rules::waivers::apply(
                            &mut report,
                            &d.waivers,
                            chrono::Utc::now().date_naive(),
                        );
                        for id in &applied.expired {
                            tracing::warn!("waiver `{id}` has expired: the failure it covered counts again");
                        }
                        board.record_report(&report);
                        d.spool_report(report);
                    }
                    Ok(Err(e)) => tracing::error!("the run could not start: {e}"),
                    Err(e) => tracing::error!("the run failed: {e}"),
                }
                if stopping {
                    break;
                }
            }
            _ = watchdog.tick(), if watchdog_every.is_some() => {
                if let Err(e) = notifier.notify_quiet("WATCHDOG=1") {
                    tracing::warn!("cannot notify systemd: {e}");
                }
            }
            sig = signals.next() => match sig {
                Sig::Stop(name) => {
                    tracing::info!("{name}: stopping{}", if running.is_some() { " after the current run" } else { "" });
                    let _ = notifier.notify("STOPPING=1");
                    stopping = true;
                    if running.is_none() {
                        break;
                    }
                }
                Sig::Reload => {
                    let _ = notifier.notify("RELOADING=1");
                    d.reload().await;
                    spool_tx.send_replace(d.spool.clone());
                    let _ = notifier.notify("READY=1");
                }
            },
            _ = tokio::time::sleep_until(wake), if running.is_none() && !stopping => {
                let now = Instant::now();
                let mut poll_erasures = false;
                if now >= d.next_policy_check {
                    d.refresh_policy().await;
                    d.refresh_waivers().await;
                    d.next_policy_check = Instant::now() + d.cfg.interval();
                    poll_erasures = true;
                }
                let mut due = d.scheduler.take_due(std::time::Instant::now(), &mut d.rng);
                engine::retain_applicable(&d.policy, &mut due, &d.cfg.roles);
                let erasure_ids = erasure_controls(&d.policy);
                let mut erasures = ErasureTasks::FromReporter(vec![]);
                if !erasure_ids.is_empty()
                    && (poll_erasures || due.iter().any(|id| erasure_ids.contains(id)))
                {
                    let (fetched, deletions) = fetch_erasures(&d.conn).await;
                    erasures = fetched;
                    delete_exports(&d.policy, &d.cfg.daemon_host_ctx(), deletions).await;
                    match &erasures {
                        ErasureTasks::FromReporter(tasks) if !tasks.is_empty() => {
                            // pending erasures are run at every poll, not only on schedule
                            for id in &erasure_ids {
                                if !due.contains(id) && d.policy.control(id).is_some_and(|c| c.applies_to(&d.cfg.roles)) {
                                    due.push(id.clone());
                                }
                            }
                            tracing::info!(
                                "{} erasure task(s) pending: {}",
                                tasks.len(),
                                tasks
                                    .iter()
                                    .map(|t| format!("{} ({})", t.account, t.phase))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                        }
                        ErasureTasks::Unavailable(why) => {
                            tracing::warn!("cannot fetch the pending erasures: {why}");
                        }
                        _ => {}
                    }
                }
                if !due.is_empty() {
                    tracing::debug!("running {}", due.join(", "));
                    let policy = d.policy.clone();
                    let opts = d.run_options(due, erasures);
                    running = Some(tokio::spawn(async move { engine::run(&policy, &opts).await }));
                }
            }
        }
    }

    shipper.abort();
    let _ = shipper.await;
    if let Some(t) = metrics_task {
        t.abort();
    }
    let pending = d.spool.entries().map_or(0, |e| e.len());
    if pending > 0 {
        match tokio::time::timeout(FINAL_FLUSH, shipper::ship_pending(&d.conn, &d.spool)).await {
            Ok(Outcome::Drained { sent }) => tracing::info!("last flush: {sent} report(s) delivered, spool empty"),
            Ok(Outcome::Retry { sent, reason }) => tracing::warn!(
                "last flush: {sent} report(s) delivered, the rest wait in the spool: {reason}"
            ),
            Ok(Outcome::NeedsEnroll { sent }) => tracing::warn!(
                "last flush: {sent} report(s) delivered; the token was refused, the rest wait in the spool"
            ),
            Err(_) => tracing::warn!("last flush timed out; the rest wait in the spool"),
        }
    }
    tracing::info!(
        "stopped ({} report(s) left in the spool)",
        d.spool.entries().map_or(0, |e| e.len())
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "policy: {id: p, version: \"1\", title: P}\ncontrols:\n  - id: A\n    title: a\n    checks:\n      - {id: a1, type: attestation, with: {by: x, on: 2026-01-01, valid_for: 3650d, evidence: e}}\n";

    #[test]
    fn erasure_controls_are_found() {
        let with_erasure = format!(
            "{P}  - id: G\n    title: g\n    checks:\n      - {{id: e, type: erasure, with: {{logs: {{paths: [/var/log/x.log]}}}}}}\n"
        );
        let p = policy::parse(with_erasure.as_bytes(), "t").unwrap();
        assert_eq!(erasure_controls(&p), ["G"]);
        let p = policy::parse(P.as_bytes(), "t").unwrap();
        assert!(erasure_controls(&p).is_empty());
    }

    #[test]
    fn last_good_policy_round_trip() {
        let d = tempfile::tempdir().unwrap();
        assert!(load_last_good(d.path()).is_none());
        save_last_good(d.path(), P);
        let (p, src) = load_last_good(d.path()).unwrap();
        assert_eq!(p.meta.id, "p");
        assert_eq!(src, PolicySource::LastGood(d.path().join(LAST_GOOD_POLICY)));
    }
}
