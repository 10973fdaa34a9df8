//! One erasure task carried out: the phase's hook first, then the enabled
//! built-in deleter, then the probes that verify absence; every step and
//! probe goes into the task's facts, and every deletion into its journal.

use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use vigil_rules::checks::erasure::{
    substitute, Action, ExportFacts, ExportPhase, LogsPhase, Outcome, Params, Probe, ProbeKind,
    SitePhase, Task, TaskFacts,
};
use vigil_rules::checks::password_storage::SqlSource;

use super::journal::Journal;
use super::nofollow::has_glob;
use super::{export, hooks, journald, nofollow, now, preflight, purge, restic};
use crate::collect::dsn::Dsn;
use crate::collect::host::{blocking, HostCtx};

/// Carries out task `t` of a phase this host handles (its account already
/// checked valid), filling `tf`.
pub async fn run_task(p: &Params, t: &Task, ctx: &HostCtx, timeout: Duration, tf: &mut TaskFacts) {
    if t.phase == "export" {
        if let Some(x) = &p.export {
            export_task(x, &t.account, ctx, tf).await;
        }
        return;
    }
    let mut journal = Journal::load(&ctx.state_dir, &t.account, &t.phase);
    tf.earlier = journal.earlier();
    // Nothing is deleted when the sandbox (unit) would stop part of it.
    let (pp, tt, c) = (p.clone(), t.clone(), ctx.clone());
    if let Err(e) = blocking(move || Ok(preflight::check(&pp, &tt, &c)))
        .await
        .and_then(|r| r)
    {
        tf.error = Some(e);
        return;
    }
    run_phase(p, t, ctx, timeout, tf, &mut journal).await;
    if let Some(problem) = journal.problem.take() {
        // The deletion record could not be kept: the evidence would be incomplete.
        tf.error = Some(format!("erasure journal: {problem}"));
    }
}

async fn run_phase(
    p: &Params,
    t: &Task,
    ctx: &HostCtx,
    timeout: Duration,
    tf: &mut TaskFacts,
    journal: &mut Journal,
) {
    let a = t.account.as_str();
    match t.phase.as_str() {
        "site" => {
            if let Some(s) = &p.site {
                site(s, a, ctx, timeout, tf, journal).await;
            }
        }
        "local_backups" | "offline_backups" => {
            let b = if t.phase == "local_backups" {
                &p.local_backups
            } else {
                &p.offline_backups
            };
            if let Some(b) = b {
                if let Some(h) = &b.hook {
                    let action = hooks::run_hook(h, a, timeout).await;
                    journal.record(&action);
                    tf.actions.push(action);
                }
                restic::phase(
                    b,
                    a,
                    t.requested_at.as_deref(),
                    timeout,
                    ctx,
                    journal,
                    &mut tf.actions,
                    &mut tf.probes,
                )
                .await;
            }
        }
        "logs" => {
            if let Some(l) = &p.logs {
                logs(l, t, ctx, timeout, tf, journal).await;
            }
        }
        _ => tf.error = Some(format!("unknown phase `{}`", t.phase)),
    }
}

async fn site(
    s: &SitePhase,
    account: &str,
    ctx: &HostCtx,
    timeout: Duration,
    tf: &mut TaskFacts,
    journal: &mut Journal,
) {
    if let Some(h) = &s.hook {
        let action = hooks::run_hook(h, account, timeout).await;
        journal.record(&action);
        tf.actions.push(action);
    }
    let patterns: Vec<String> = s.paths.iter().map(|p| substitute(p, account)).collect();
    if s.remove_paths {
        let (pats, c) = (patterns.clone(), ctx.clone());
        let removed = blocking(move || Ok(remove_paths(&pats, &c))).await;
        match removed {
            Ok(actions) => {
                for a in actions {
                    journal.record(&a);
                    tf.actions.push(a);
                }
            }
            Err(e) => tf.error = Some(e),
        }
    }
    for pat in &patterns {
        let (pt, root) = (pat.clone(), ctx.root.clone());
        let outcome =
            match blocking(move || nofollow::resolve(&root, &pt).map_err(String::from)).await {
                Err(reason) => Outcome::Error { reason },
                Ok(r) if r.found.is_empty() && r.links.is_empty() => Outcome::Clean {
                    detail: "absent".into(),
                },
                Ok(r) => Outcome::Remaining {
                    detail: if has_glob(pat) || !r.links.is_empty() {
                        let links = if r.links.is_empty() {
                            String::new()
                        } else {
                            format!(", {} symbolic link(s) not followed", r.links.len())
                        };
                        format!("{} match(es) present{links}", r.found.len())
                    } else {
                        "present".into()
                    },
                },
            };
        tf.probes.push(Probe {
            kind: ProbeKind::Path,
            target: format!("path {pat}"),
            outcome,
        });
    }
    if let Some(sql) = &s.sql {
        tf.probes.push(sql_probe(sql, account, ctx).await);
    }
}

/// The built-in site deleter: every match removed without following a link
/// (see `nofollow`); what it refused to touch makes the step fail.
fn remove_paths(patterns: &[String], ctx: &HostCtx) -> Vec<Action> {
    let mut out = Vec::new();
    for pat in patterns {
        let what = format!("remove {pat}");
        let resolved = match nofollow::resolve(&ctx.root, pat) {
            Ok(r) => r,
            Err(e) => {
                out.push(Action::failed(what, e.to_string()));
                continue;
            }
        };
        let mut refused: Vec<String> = resolved
            .links
            .iter()
            .map(|l| format!("`{}`: a symbolic link, not followed", ctx.display(l)))
            .collect();
        let mut failure = None;
        let mut entries = 0u64;
        for e in &resolved.found {
            match nofollow::remove(e) {
                Ok(r) => {
                    entries += r.entries;
                    refused.extend(r.refused);
                }
                Err(er) => failure = Some(er),
            }
        }
        let root = ctx.root.to_string_lossy().trim_end_matches('/').to_owned();
        let refused: Vec<String> = refused
            .into_iter()
            .map(|r| {
                if root.is_empty() {
                    r
                } else {
                    r.replace(&root, "")
                }
            })
            .collect();
        if let Some(f) = failure {
            out.push(Action::failed(what, f.to_string()));
        } else if !refused.is_empty() {
            out.push(Action::failed(
                what,
                format!(
                    "{} left alone: {}",
                    refused.len(),
                    refused.into_iter().take(5).collect::<Vec<_>>().join("; ")
                ),
            ));
        } else if resolved.found.is_empty() {
            // Nothing there: not a deletion run, nothing to record.
            out.push(Action {
                what,
                ok: true,
                exit_code: None,
                detail: Some("nothing there".into()),
                at: None,
            });
        } else {
            out.push(Action::succeeded(
                what,
                Some(format!(
                    "{} match(es), {entries} entries removed",
                    resolved.found.len()
                )),
                now(),
            ));
        }
    }
    out
}

async fn sql_probe(sql: &SqlSource, account: &str, ctx: &HostCtx) -> Probe {
    let outcome = match sql_count(sql, account, ctx).await {
        Ok(0) => Outcome::Clean {
            detail: "0 rows".into(),
        },
        Ok(n) => Outcome::Remaining {
            detail: format!("{n} rows"),
        },
        Err(reason) => Outcome::Error { reason },
    };
    Probe {
        kind: ProbeKind::Sql,
        target: "sql".into(),
        outcome,
    }
}

/// The count `sql`'s query (`$1` the account) returns in its first column.
pub(crate) async fn sql_count(
    sql: &SqlSource,
    account: &str,
    ctx: &HostCtx,
) -> Result<i64, String> {
    let dsn = Dsn::read(
        sql.dsn.as_deref(),
        sql.dsn_file.as_deref(),
        sql.dsn_env.as_deref(),
        ctx,
    )
    .map_err(|e| e.to_string())?;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(dsn.expose())
        .await
        .map_err(|e| dsn.scrub(&format!("cannot connect to the database: {e}")))?;
    let row = sqlx::query(&sql.query)
        .bind(account.to_owned())
        .fetch_one(&pool)
        .await
        .map_err(|e| dsn.scrub(&format!("query failed: {e}")));
    pool.close().await;
    row?.try_get::<i64, _>(0)
        .map_err(|e| format!("the query's first column must be a count: {e}"))
}

async fn logs(
    l: &LogsPhase,
    t: &Task,
    ctx: &HostCtx,
    timeout: Duration,
    tf: &mut TaskFacts,
    journal: &mut Journal,
) {
    if t.identifiers.is_empty() || t.identifiers.iter().any(|i| i.trim().is_empty()) {
        tf.error = Some("the task gives no (or an empty) identifier to look for".into());
        return;
    }
    if let Some(h) = &l.hook {
        let action = hooks::run_hook(h, &t.account, timeout).await;
        journal.record(&action);
        tf.actions.push(action);
    }
    let (lp, ids, c) = (l.clone(), t.identifiers.clone(), ctx.clone());
    match blocking(move || Ok(purge_and_scan(&lp, &ids, &c))).await {
        Ok((actions, probes)) => {
            for a in actions {
                journal.record(&a);
                tf.actions.push(a);
            }
            tf.probes.extend(probes);
        }
        Err(e) => tf.error = Some(e),
    }
    if let Some(j) = &l.journal {
        journald::phase(
            j,
            &t.identifiers,
            ctx,
            timeout,
            journal,
            &mut tf.actions,
            &mut tf.probes,
        )
        .await;
    }
}

fn purge_and_scan(l: &LogsPhase, ids: &[String], ctx: &HostCtx) -> (Vec<Action>, Vec<Probe>) {
    let (mut actions, mut probes) = (Vec::new(), Vec::new());
    let mut files = Vec::new();
    for pat in &l.paths {
        match nofollow::resolve(&ctx.root, pat) {
            Ok(r) => {
                for link in &r.links {
                    // A link is never followed: what it points at is not proved.
                    probes.push(Probe {
                        kind: ProbeKind::Log,
                        target: format!("log {}", ctx.display(link)),
                        outcome: Outcome::Error {
                            reason:
                                "a symbolic link: not followed, not rewritten; name the real file"
                                    .into(),
                        },
                    });
                }
                if r.found.is_empty() && r.links.is_empty() {
                    probes.push(Probe {
                        kind: ProbeKind::Log,
                        target: format!("log {pat}"),
                        outcome: Outcome::Error {
                            reason: "no file matches; nothing found is not proof".into(),
                        },
                    });
                }
                files.extend(
                    r.found
                        .into_iter()
                        .filter(|e| e.kind() != rustix::fs::FileType::Directory),
                );
            }
            Err(e) => probes.push(Probe {
                kind: ProbeKind::Log,
                target: format!("log {pat}"),
                outcome: Outcome::Error {
                    reason: e.to_string(),
                },
            }),
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    files.dedup_by(|a, b| a.path == b.path);
    for f in &files {
        let shown = ctx.display(&f.path);
        if l.purge {
            match purge::purge(f, ids) {
                Ok(0) => {}
                Ok(n) => actions.push(Action::succeeded(
                    format!("purge {shown}"),
                    Some(format!("{n} line(s) removed")),
                    now(),
                )),
                Err(e) => actions.push(Action::failed(
                    format!("purge {shown}"),
                    e.to_string()
                        .replace(ctx.root.to_string_lossy().trim_end_matches('/'), ""),
                )),
            }
        }
        let outcome = match purge::scan(f, ids) {
            Ok(s) if s.carrying == 0 => Outcome::Clean {
                detail: "no line carries an identifier".into(),
            },
            Ok(s) => Outcome::Remaining {
                detail: format!("{} of {} line(s) carry an identifier", s.carrying, s.lines),
            },
            Err(e) => Outcome::Error {
                reason: e.to_string(),
            },
        };
        probes.push(Probe {
            kind: ProbeKind::Log,
            target: format!("log {shown}"),
            outcome,
        });
    }
    (actions, probes)
}

async fn export_task(x: &ExportPhase, account: &str, ctx: &HostCtx, tf: &mut TaskFacts) {
    let site_root = ctx.path(substitute(&x.site_root, account));
    let out_dir = ctx.path(&x.output_dir);
    let acct = account.to_owned();
    let pages = match &x.sql {
        Some(sql) => match export::db_pages(sql, account, ctx).await {
            Ok(p) => p,
            Err(reason) => {
                tf.probes.push(Probe {
                    kind: ProbeKind::Export,
                    target: "archive (database pages)".into(),
                    outcome: Outcome::Error { reason },
                });
                return;
            }
        },
        None => Vec::new(),
    };
    // Ok(Ok): verified; Ok(Err): written but does not verify; Err: not made.
    let r = blocking(move || {
        let archive = out_dir.join(format!("{acct}-export.tar.gz"));
        // An archive made on an earlier run that still verifies is kept.
        if archive.is_file() {
            if let Ok((n, sha)) = export::verify(&archive) {
                return Ok((archive, Ok((n, sha))));
            }
        }
        let archive = export::export(&site_root, &out_dir, &acct, &pages)?;
        let verified = export::verify(&archive);
        Ok((archive, verified))
    })
    .await;
    let (archive, verified) = match r {
        Ok(v) => v,
        Err(reason) => {
            tf.probes.push(Probe {
                kind: ProbeKind::Export,
                target: "archive".into(),
                outcome: Outcome::Error { reason },
            });
            return;
        }
    };
    let shown = ctx.display(&archive);
    let target = format!("archive {shown}");
    match verified {
        Ok((n, sha)) => {
            tf.probes.push(Probe {
                kind: ProbeKind::Export,
                target,
                outcome: Outcome::Clean {
                    detail: format!("manifest verifies ({n} files)"),
                },
            });
            tf.export = Some(ExportFacts {
                archive: shown,
                archive_sha256: sha,
                manifest_entries: n,
            });
        }
        Err(e) => tf.probes.push(Probe {
            kind: ProbeKind::Export,
            target,
            outcome: Outcome::Remaining {
                detail: e.to_string(),
            },
        }),
    }
}
