//! Facts for `erasure`: for every pending task of a phase this host handles,
//! run the deleters (the phase's hook first, then the enabled built-in one),
//! then verify absence. Everything found goes into the facts; `judge` decides.

pub mod export;
mod hooks;
pub mod purge;
mod readiness;
mod restic;

use std::path::PathBuf;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::Row;
use vigil_rules::checks::erasure::{
    substitute, valid_account, Action, ExportFacts, ExportPhase, Facts, LogsPhase, Outcome, Params,
    Probe, ProbeKind, SitePhase, Task, TaskFacts,
};
use vigil_rules::checks::password_storage::SqlSource;

use super::password_storage::{dsn_of, scrub};
use super::{blocking, io_reason, HostCtx};

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
    let timeout = p.hook_timeout.as_std();
    let mut facts = Facts::default();
    for t in &p.tasks {
        let mut tf = TaskFacts {
            account: t.account.clone(),
            phase: t.phase.clone(),
            handled: p.handles(&t.phase),
            actions: vec![],
            probes: vec![],
            export: None,
            error: None,
        };
        if tf.handled {
            if valid_account(&t.account) {
                run_task(p, t, ctx, timeout, &mut tf).await;
            } else {
                tf.error = Some("account id is not `[A-Za-z0-9._-]+`; nothing was run".into());
            }
        }
        facts.tasks.push(tf);
    }
    if !p.tasks.iter().any(|t| p.handles(&t.phase)) {
        facts.readiness = Some(readiness::gather(p, ctx).await);
    }
    Ok(facts)
}

async fn run_task(p: &Params, t: &Task, ctx: &HostCtx, timeout: Duration, tf: &mut TaskFacts) {
    let a = t.account.as_str();
    match t.phase.as_str() {
        "site" => {
            if let Some(s) = &p.site {
                site(s, a, ctx, timeout, tf).await;
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
                    tf.actions.push(hooks::run_hook(h, a, timeout).await);
                }
                restic::phase(b, a, timeout, ctx, &mut tf.actions, &mut tf.probes).await;
            }
        }
        "logs" => {
            if let Some(l) = &p.logs {
                logs(l, t, ctx, timeout, tf).await;
            }
        }
        "export" => {
            if let Some(x) = &p.export {
                export_task(x, a, ctx, tf).await;
            }
        }
        _ => tf.error = Some(format!("unknown phase `{}`", t.phase)),
    }
}

fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// The host files a path or glob names under the root.
fn expand(pattern: &str, ctx: &HostCtx) -> Result<Vec<PathBuf>, String> {
    let full = ctx.path(pattern);
    if !has_glob(pattern) {
        return Ok(match full.symlink_metadata() {
            Ok(_) => vec![full],
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
            Err(e) => return Err(format!("cannot look at `{pattern}`: {}", io_reason(&e))),
        });
    }
    // The root is literal; only the policy's pattern is a glob.
    let text = format!(
        "{}/{}",
        glob::Pattern::escape(&ctx.root.to_string_lossy()).trim_end_matches('/'),
        pattern.trim_start_matches('/')
    );
    let mut out = Vec::new();
    for entry in glob::glob(&text).map_err(|e| format!("`{pattern}` is not a valid glob: {e}"))? {
        out.push(
            entry.map_err(|e| format!("cannot look at `{pattern}`: {}", io_reason(e.error())))?,
        );
    }
    Ok(out)
}

async fn site(s: &SitePhase, account: &str, ctx: &HostCtx, timeout: Duration, tf: &mut TaskFacts) {
    if let Some(h) = &s.hook {
        tf.actions.push(hooks::run_hook(h, account, timeout).await);
    }
    let patterns: Vec<String> = s.paths.iter().map(|p| substitute(p, account)).collect();
    if s.remove_paths {
        let (pats, c) = (patterns.clone(), ctx.clone());
        let removed = blocking(move || Ok(remove_paths(&pats, &c))).await;
        match removed {
            Ok(actions) => tf.actions.extend(actions),
            Err(e) => tf.error = Some(e),
        }
    }
    for pat in &patterns {
        let (pt, c) = (pat.clone(), ctx.clone());
        let outcome = match blocking(move || expand(&pt, &c)).await {
            Err(reason) => Outcome::Error { reason },
            Ok(found) if found.is_empty() => Outcome::Clean {
                detail: "absent".into(),
            },
            Ok(found) => Outcome::Remaining {
                detail: if has_glob(pat) {
                    format!("{} match(es) present", found.len())
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
        tf.probes.push(sql_probe(sql, account).await);
    }
}

fn remove_paths(patterns: &[String], ctx: &HostCtx) -> Vec<Action> {
    let mut out = Vec::new();
    for pat in patterns {
        let what = format!("remove {pat}");
        let found = match expand(pat, ctx) {
            Ok(f) => f,
            Err(e) => {
                out.push(Action {
                    what,
                    ok: false,
                    exit_code: None,
                    detail: Some(e),
                });
                continue;
            }
        };
        let mut failure = None;
        for f in &found {
            let r = match f.symlink_metadata() {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(f),
                Ok(_) => std::fs::remove_file(f),
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failure = Some(format!("`{}`: {}", ctx.display(f), io_reason(&e)));
                }
            }
        }
        out.push(Action {
            what,
            ok: failure.is_none(),
            exit_code: None,
            detail: failure.or_else(|| Some(format!("{} removed", found.len()))),
        });
    }
    out
}

async fn sql_probe(sql: &SqlSource, account: &str) -> Probe {
    let outcome = match sql_count(sql, account).await {
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

async fn sql_count(sql: &SqlSource, account: &str) -> Result<i64, String> {
    let dsn = dsn_of(sql)?;
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(10))
        .connect(&dsn)
        .await
        .map_err(|e| scrub(&format!("cannot connect to the database: {e}"), &dsn))?;
    let row = sqlx::query(&sql.query)
        .bind(account.to_owned())
        .fetch_one(&pool)
        .await
        .map_err(|e| scrub(&format!("query failed: {e}"), &dsn));
    pool.close().await;
    row?.try_get::<i64, _>(0)
        .map_err(|e| format!("the query's first column must be a count: {e}"))
}

async fn logs(l: &LogsPhase, t: &Task, ctx: &HostCtx, timeout: Duration, tf: &mut TaskFacts) {
    if t.identifiers.is_empty() || t.identifiers.iter().any(|i| i.trim().is_empty()) {
        tf.error = Some("the task gives no (or an empty) identifier to look for".into());
        return;
    }
    if let Some(h) = &l.hook {
        tf.actions
            .push(hooks::run_hook(h, &t.account, timeout).await);
    }
    let (l, ids, c) = (l.clone(), t.identifiers.clone(), ctx.clone());
    match blocking(move || Ok(purge_and_scan(&l, &ids, &c))).await {
        Ok((actions, probes)) => {
            tf.actions.extend(actions);
            tf.probes.extend(probes);
        }
        Err(e) => tf.error = Some(e),
    }
}

fn purge_and_scan(l: &LogsPhase, ids: &[String], ctx: &HostCtx) -> (Vec<Action>, Vec<Probe>) {
    let (mut actions, mut probes) = (Vec::new(), Vec::new());
    let mut files = Vec::new();
    for pat in &l.paths {
        match expand(pat, ctx) {
            Ok(found) if found.is_empty() => probes.push(Probe {
                kind: ProbeKind::Log,
                target: format!("log {pat}"),
                outcome: Outcome::Error {
                    reason: "no file matches; nothing found is not proof".into(),
                },
            }),
            Ok(found) => files.extend(found.into_iter().filter(|f| f.is_file())),
            Err(reason) => probes.push(Probe {
                kind: ProbeKind::Log,
                target: format!("log {pat}"),
                outcome: Outcome::Error { reason },
            }),
        }
    }
    files.sort();
    files.dedup();
    for f in &files {
        let shown = ctx.display(f);
        if l.purge {
            let r = purge::purge(f, ids);
            actions.push(Action {
                what: format!("purge {shown}"),
                ok: r.is_ok(),
                exit_code: None,
                detail: Some(match r {
                    Ok(n) => format!("{n} line(s) removed"),
                    Err(e) => e,
                }),
            });
        }
        let outcome = match purge::scan(f, ids) {
            Ok(s) if s.carrying == 0 => Outcome::Clean {
                detail: "no line carries an identifier".into(),
            },
            Ok(s) => Outcome::Remaining {
                detail: format!("{} of {} line(s) carry an identifier", s.carrying, s.lines),
            },
            Err(reason) => Outcome::Error { reason },
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
    // Ok(Ok): verified; Ok(Err): written but does not verify; Err: not made.
    let r = blocking(move || {
        let archive = out_dir.join(format!("{acct}-export.tar.gz"));
        // An archive made on an earlier run that still verifies is kept.
        if archive.is_file() {
            if let Ok((n, sha)) = export::verify(&archive) {
                return Ok((archive, Ok((n, sha))));
            }
        }
        let archive = export::export(&site_root, &out_dir, &acct)?;
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
        Err(detail) => tf.probes.push(Probe {
            kind: ProbeKind::Export,
            target,
            outcome: Outcome::Remaining { detail },
        }),
    }
}
