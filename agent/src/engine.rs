//! Runs a policy's checks concurrently, each under its timeout, and builds the
//! report. A hung check becomes `error: timed out after …`; the run finishes.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use vigil_rules::checks::erasure::Task;
use vigil_rules::checks::{CheckSpec, JudgeCtx};
use vigil_rules::policy::{Check, Control, Policy};
use vigil_rules::report::{self, AgentInfo, CheckReport, ControlReport, PolicyRef, Report};
use vigil_rules::verdict::Verdict;

use crate::collect;
use crate::collect::host::{HostCtx, RunMemo};
use crate::progress::Board;

/// A check with no `timeout` gets this much time.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Checks that run at the same time.
pub const PARALLEL: usize = 8;
/// File-heavy checks (see [`file_heavy`]) that run at the same time. They
/// take turns: each already spreads its reading and hashing over the cores,
/// so running two at once gains little time and adds their buffers up — the
/// run's peak memory is the largest one's, not the sum.
pub const PARALLEL_FILE_HEAVY: usize = 1;

/// Checks that read many files or large ones, each holding read buffers,
/// hash tables or caches while it runs.
pub fn file_heavy(spec: &CheckSpec) -> bool {
    matches!(
        spec,
        CheckSpec::LogSecrets(_)
            | CheckSpec::Clamav(_)
            | CheckSpec::FileIntegrity(_)
            | CheckSpec::PatchLevel(_)
    )
}

pub struct RunOptions {
    pub host: String,
    pub roles: Vec<String>,
    /// Control ids to run; all when empty.
    pub controls: Vec<String>,
    pub ctx: HostCtx,
    /// Where `erasure` checks get their tasks.
    pub erasures: ErasureTasks,
    /// Where the run shows its progress on a terminal (`check` only).
    pub board: Option<Arc<Board>>,
}

/// The erasure tasks a run carries out.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ErasureTasks {
    /// The `tasks` written in the policy (one-off runs and tests).
    #[default]
    FromPolicy,
    /// What the reporter's closure workflow hands this host; replaces the policy's.
    FromReporter(Vec<Task>),
    /// The reporter could not be asked: every `erasure` check is `error`
    /// (not knowing what is pending is not "nothing pending").
    Unavailable(String),
}

/// Why a run's controls cannot be selected: the run does not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SelectError {
    /// Ids the policy has no control for.
    #[error(
        "no control `{}` in policy `{policy}` (it has: {})",
        unknown.join("`, `"),
        has.join(", ")
    )]
    Unknown {
        unknown: Vec<String>,
        policy: String,
        has: Vec<String>,
    },
    /// Controls asked for by id that do not apply to the host's roles,
    /// each as `` `ID` (roles: …) ``.
    #[error(
        "control {} does not apply to a host with role(s) {}",
        outside.join(", "),
        roles.join(", ")
    )]
    OutsideRoles {
        outside: Vec<String>,
        roles: Vec<String>,
    },
}

/// The check as this run executes it: `erasure` checks get the run's tasks.
fn with_tasks(check: &Check, erasures: &ErasureTasks) -> Result<Check, String> {
    let CheckSpec::Erasure(params) = &check.spec else {
        return Ok(check.clone());
    };
    match erasures {
        ErasureTasks::FromPolicy => Ok(check.clone()),
        ErasureTasks::FromReporter(tasks) => {
            let mut params = params.clone();
            params.tasks = tasks.clone();
            let mut check = check.clone();
            check.spec = CheckSpec::Erasure(params);
            Ok(check)
        }
        ErasureTasks::Unavailable(why) => Err(format!(
            "cannot learn the pending erasures from the reporter: {why}"
        )),
    }
}

/// The controls a host with `roles` runs, selected by id (all when `ids` is
/// empty), in policy order. An unknown id, or one whose control does not
/// apply to these roles, is an error naming it.
pub fn select_for<'a>(
    policy: &'a Policy,
    ids: &[String],
    roles: &[String],
) -> Result<Vec<&'a Control>, SelectError> {
    let selected = select(policy, ids)?;
    let outside: Vec<String> = selected
        .iter()
        .filter(|c| !ids.is_empty() && !c.applies_to(roles))
        .map(|c| format!("`{}` (roles: {})", c.id, c.effective_roles().join(", ")))
        .collect();
    if !outside.is_empty() {
        return Err(SelectError::OutsideRoles {
            outside,
            roles: roles.to_vec(),
        });
    }
    Ok(selected
        .into_iter()
        .filter(|c| c.applies_to(roles))
        .collect())
}

/// Drops from `due` the controls that do not apply to `roles` (the daemon's
/// schedule holds every control of the policy).
pub fn retain_applicable(policy: &Policy, due: &mut Vec<String>, roles: &[String]) {
    due.retain(|id| policy.control(id).is_some_and(|c| c.applies_to(roles)));
}

/// Controls selected by id, in policy order; unknown ids are an error naming them.
pub fn select<'a>(policy: &'a Policy, ids: &[String]) -> Result<Vec<&'a Control>, SelectError> {
    if ids.is_empty() {
        return Ok(policy.controls.iter().collect());
    }
    let unknown: Vec<String> = ids
        .iter()
        .filter(|id| policy.control(id).is_none())
        .cloned()
        .collect();
    if !unknown.is_empty() {
        return Err(SelectError::Unknown {
            unknown,
            policy: policy.meta.id.clone(),
            has: policy.controls.iter().map(|c| c.id.clone()).collect(),
        });
    }
    Ok(policy
        .controls
        .iter()
        .filter(|c| ids.contains(&c.id))
        .collect())
}

/// Collects and judges one check.
pub async fn run_check(check: &Check, ctx: &HostCtx, judge: &JudgeCtx) -> CheckReport {
    run_check_as(check, &check.id, ctx, judge, None).await
}

/// [`run_check`], shown as `label` on the run's progress `board` if it has one.
async fn run_check_as(
    check: &Check,
    label: &str,
    ctx: &HostCtx,
    judge: &JudgeCtx,
    board: Option<&Arc<Board>>,
) -> CheckReport {
    let started = Instant::now();
    let limit = check.timeout.map_or(DEFAULT_TIMEOUT, |t| t.as_std());
    let pace = ctx.pace.for_check(check.type_name());
    let _shown = board.map(|b| b.start(label.to_owned(), pace.clone()));
    let ctx = &HostCtx {
        pace,
        ..ctx.clone()
    };
    let verdict = match tokio::time::timeout(limit, collect::collect_paced(&check.spec, ctx)).await
    {
        Err(_) => Verdict::error(format!(
            "timed out after {}",
            humantime::format_duration(limit)
        )),
        Ok(Err(reason)) => Verdict::error(reason.to_string()),
        Ok(Ok(facts)) => check.spec.judge(&facts, judge),
    };
    CheckReport {
        id: check.id.clone(),
        check_type: check.type_name().to_owned(),
        status: verdict.status,
        summary: verdict.summary,
        findings: verdict.findings,
        evidence: verdict.evidence,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        waived_by: None,
    }
}

pub async fn run(policy: &Policy, opts: &RunOptions) -> Result<Report, SelectError> {
    let controls = select_for(policy, &opts.controls, &opts.roles)?;
    let started_at = chrono::Utc::now();
    let judge = Arc::new(JudgeCtx {
        now: started_at,
        host: opts.host.clone(),
    });
    let ctx = Arc::new(opts.ctx.clone());
    let gate = Arc::new(Semaphore::new(PARALLEL));
    let heavy_gate = Arc::new(Semaphore::new(PARALLEL_FILE_HEAVY));
    // This run's shared reads (e.g. one `restic snapshots` per repository):
    // new for every run, gone with it.
    let memo = RunMemo::default();
    let mut handles = Vec::new();
    if let Some(board) = &opts.board {
        board.set_total(controls.iter().map(|c| c.checks.len() as u64).sum());
    }
    for control in &controls {
        for check in control.checks_for(&opts.roles) {
            let (ctx, judge, gate, memo) = (ctx.clone(), judge.clone(), gate.clone(), memo.clone());
            let board = opts.board.clone();
            let label = format!("{}/{}", control.id, check.id);
            let heavy = file_heavy(&check.spec).then(|| heavy_gate.clone());
            let check = with_tasks(check, &opts.erasures)
                .map_err(|why| (check.id.clone(), check.type_name().to_owned(), why));
            handles.push(tokio::spawn(async move {
                // A file-heavy check waits for its turn before it takes one
                // of the general slots, so waiting does not hold one.
                let _heavy = match heavy {
                    Some(h) => Some(h.acquire_owned().await),
                    None => None,
                };
                let _permit = gate.acquire_owned().await;
                match check {
                    Ok(check) => {
                        let run = run_check_as(&check, &label, &ctx, &judge, board.as_ref());
                        memo.scope(run).await
                    }
                    Err((id, check_type, summary)) => CheckReport {
                        id,
                        check_type,
                        status: vigil_rules::verdict::CheckStatus::Error,
                        summary,
                        findings: vec![],
                        evidence: serde_json::Value::Null,
                        duration_ms: 0,
                        waived_by: None,
                    },
                }
            }));
        }
    }
    let mut results = Vec::with_capacity(handles.len());
    for h in handles {
        results.push(match h.await {
            Ok(r) => r,
            Err(e) => CheckReport {
                id: "?".into(),
                check_type: "?".into(),
                status: vigil_rules::verdict::CheckStatus::Error,
                summary: format!("check task failed: {e}"),
                findings: vec![],
                evidence: serde_json::Value::Null,
                duration_ms: 0,
                waived_by: None,
            },
        });
    }
    let mut results = results.into_iter();
    let mut reports = Vec::new();
    for control in controls {
        let n = control.checks_for(&opts.roles).count();
        let checks: Vec<CheckReport> = results.by_ref().take(n).collect();
        reports.push(ControlReport {
            id: control.id.clone(),
            title: control.title.clone(),
            status: report::control_status(&checks),
            source: control.source.clone(),
            checks,
        });
    }
    // The host's inventory: a few small reads, off the async threads.
    let inv_ctx = opts.ctx.clone();
    let inventory = tokio::task::spawn_blocking(move || collect::inventory::collect(&inv_ctx))
        .await
        .ok();
    Ok(Report {
        schema: report::SCHEMA.into(),
        report_id: uuid::Uuid::new_v4().to_string(),
        agent: AgentInfo {
            host: opts.host.clone(),
            version: env!("CARGO_PKG_VERSION").into(),
            roles: opts.roles.clone(),
            spool_dropped: None,
            policy_refused: None,
        },
        policy: PolicyRef {
            id: policy.meta.id.clone(),
            version: policy.meta.version.clone(),
            sha256: policy.sha256.clone(),
        },
        started_at,
        finished_at: chrono::Utc::now(),
        summary: report::summarize(&reports),
        controls: reports,
        inventory,
    })
}

/// This machine's hostname.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn erasure_check() -> Check {
        let p = vigil_rules::policy::parse(
            b"policy: {id: p, version: '1', title: P}\ncontrols:\n  - id: G\n    title: g\n    checks:\n      - {id: e, type: erasure, with: {tasks: [{account: static, phase: logs}], logs: {paths: [/x.log]}}}\n",
            "t",
        )
        .unwrap();
        p.controls[0].checks[0].clone()
    }

    fn tasks_of(c: &Check) -> Vec<String> {
        match &c.spec {
            CheckSpec::Erasure(p) => p.tasks.iter().map(|t| t.account.clone()).collect(),
            _ => panic!("not an erasure check"),
        }
    }

    const SCOPED: &[u8] = b"policy: {id: p, version: '1', title: P}\ncontrols:\n  - id: BK\n    title: b\n    roles: [backup]\n    checks:\n      - {id: a, type: attestation, with: {by: x, on: 2026-01-01, evidence: e, valid_for: 3650d}}\n  - id: FW\n    title: f\n    checks:\n      - {id: app, type: attestation, roles: [app], with: {by: x, on: 2026-01-01, evidence: e, valid_for: 3650d}}\n      - {id: db, type: attestation, roles: [db], with: {by: x, on: 2026-01-01, evidence: e, valid_for: 3650d}}\n";

    fn roles(r: &[&str]) -> Vec<String> {
        r.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn roles_select_controls_and_checks() {
        let p = vigil_rules::policy::parse(SCOPED, "t").unwrap();
        let ids = |r: &[&str]| -> Vec<String> {
            select_for(&p, &[], &roles(r))
                .unwrap()
                .iter()
                .map(|c| c.id.clone())
                .collect()
        };
        assert_eq!(ids(&[]), ["BK", "FW"], "no role: everything runs");
        assert_eq!(ids(&["backup"]), ["BK"]);
        assert_eq!(ids(&["db"]), ["FW"]);
        assert!(ids(&["offline"]).is_empty());
        let e = select_for(&p, &["BK".into()], &roles(&["app"])).unwrap_err();
        assert!(e.to_string().contains("`BK` (roles: backup)"), "{e}");
        let mut due = vec!["BK".to_owned(), "FW".to_owned(), "gone".to_owned()];
        retain_applicable(&p, &mut due, &roles(&["app"]));
        assert_eq!(due, ["FW"]);
    }

    #[tokio::test]
    async fn a_report_holds_only_the_host_s_controls_and_checks() {
        let p = vigil_rules::policy::parse(SCOPED, "t").unwrap();
        let opts = RunOptions {
            host: "db-1".into(),
            roles: roles(&["db"]),
            controls: vec![],
            ctx: HostCtx::live(),
            erasures: ErasureTasks::FromPolicy,
            board: None,
        };
        let r = run(&p, &opts).await.unwrap();
        assert_eq!(r.agent.roles, ["db"]);
        assert_eq!(r.controls.len(), 1);
        let fw = &r.controls[0];
        assert_eq!(fw.id, "FW");
        let checks: Vec<_> = fw.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(checks, ["db"]);
    }

    #[test]
    fn the_reporter_s_tasks_replace_the_policy_s() {
        let c = erasure_check();
        assert_eq!(
            tasks_of(&with_tasks(&c, &ErasureTasks::FromPolicy).unwrap()),
            ["static"]
        );
        let t = Task {
            account: "acme".into(),
            phase: "logs".into(),
            identifiers: vec![],
            requested_at: None,
        };
        let got = with_tasks(&c, &ErasureTasks::FromReporter(vec![t])).unwrap();
        assert_eq!(tasks_of(&got), ["acme"]);
        assert!(tasks_of(&with_tasks(&c, &ErasureTasks::FromReporter(vec![])).unwrap()).is_empty());
        let e = with_tasks(&c, &ErasureTasks::Unavailable("down".into())).unwrap_err();
        assert!(e.contains("down"), "{e}");
    }
}
