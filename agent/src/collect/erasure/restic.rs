//! Backups: which restic snapshots still contain an account's paths, and the
//! built-in deleters (`rewrite`, `forget`). The repository and password file
//! reach restic through `RESTIC_REPOSITORY` / `RESTIC_PASSWORD_FILE`, never its
//! command line; its cache goes to a temporary directory removed afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_rules::checks::erasure::{
    substitute, Action, BackupPhase, Outcome, Probe, ProbeKind, ResticDelete, ResticRepo,
};

use super::hooks;
use crate::collect::HostCtx;

#[derive(Deserialize)]
struct Snapshot {
    id: String,
    short_id: String,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    struct_type: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

struct Repo {
    env: Vec<(&'static str, PathBuf)>,
    _cache: tempfile::TempDir,
}

impl Repo {
    fn open(r: &ResticRepo, ctx: &HostCtx) -> Result<Repo, String> {
        let cache = tempfile::Builder::new()
            .prefix("vigil-restic-cache-")
            .tempdir()
            .map_err(|e| {
                format!(
                    "cannot make a cache directory: {}",
                    crate::collect::io_reason(&e)
                )
            })?;
        let repository = if r.repository.starts_with('/') {
            ctx.path(&r.repository)
        } else {
            PathBuf::from(&r.repository)
        };
        Ok(Repo {
            env: vec![
                ("RESTIC_REPOSITORY", repository),
                ("RESTIC_PASSWORD_FILE", ctx.path(&r.password_file)),
                ("RESTIC_CACHE_DIR", cache.path().to_path_buf()),
            ],
            _cache: cache,
        })
    }

    async fn restic(&self, args: &[&str], timeout: Duration) -> Result<Vec<u8>, String> {
        let mut argv = vec!["restic".to_owned()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        let r = hooks::run(&argv, &self.env, timeout).await?;
        if r.ok() {
            Ok(r.stdout)
        } else {
            Err(format!(
                "`restic {}` failed (exit {}): {}",
                args.first().copied().unwrap_or(""),
                r.exit_code.map_or("by signal".into(), |c| c.to_string()),
                r.stderr_tail
            ))
        }
    }

    async fn snapshots(&self, timeout: Duration) -> Result<Vec<Snapshot>, String> {
        let out = self.restic(&["snapshots", "--json"], timeout).await?;
        serde_json::from_slice(&out)
            .map_err(|e| format!("`restic snapshots --json` gave unexpected output: {e}"))
    }

    /// For each path, the snapshots (short ids) holding it or anything under it.
    async fn holding(
        &self,
        paths: &[String],
        timeout: Duration,
    ) -> Result<(usize, BTreeMap<String, Vec<Snapshot>>), String> {
        let snaps = self.snapshots(timeout).await?;
        let mut held: BTreeMap<String, Vec<Snapshot>> = BTreeMap::new();
        for s in &snaps {
            let mut args = vec!["ls", "--json", s.id.as_str()];
            args.extend(paths.iter().map(String::as_str));
            let out = self.restic(&args, timeout).await?;
            let mut found = BTreeSet::new();
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let node: Node = serde_json::from_slice(line)
                    .map_err(|e| format!("`restic ls --json` gave unexpected output: {e}"))?;
                if node.struct_type.as_deref() != Some("node") {
                    continue;
                }
                let Some(np) = node.path else { continue };
                for p in paths {
                    let p = p.trim_end_matches('/');
                    if np == p || np.starts_with(&format!("{p}/")) {
                        found.insert(p.to_owned());
                    }
                }
            }
            for p in found {
                held.entry(p).or_default().push(Snapshot {
                    id: s.id.clone(),
                    short_id: s.short_id.clone(),
                });
            }
        }
        Ok((snaps.len(), held))
    }
}

/// Runs the phase's built-in deleters and verifies every repository.
pub async fn phase(
    b: &BackupPhase,
    account: &str,
    timeout: Duration,
    ctx: &HostCtx,
    actions: &mut Vec<Action>,
    probes: &mut Vec<Probe>,
) {
    let paths: Vec<String> = b
        .paths_in_backup
        .iter()
        .map(|p| substitute(p, account).trim_end_matches('/').to_owned())
        .collect();
    for r in &b.restic {
        let target = format!("restic {}", r.repository);
        let error = |reason: String| Probe {
            kind: ProbeKind::Backup,
            target: target.clone(),
            outcome: Outcome::Error { reason },
        };
        let repo = match Repo::open(r, ctx) {
            Ok(repo) => repo,
            Err(e) => {
                probes.push(error(e));
                continue;
            }
        };
        let mut state = repo.holding(&paths, timeout).await;
        if let (Ok((_, held)), false) = (&state, r.delete == ResticDelete::None) {
            if !held.is_empty() {
                actions.push(delete(&repo, r, &paths, held, timeout).await);
                state = repo.holding(&paths, timeout).await;
            }
        }
        match state {
            Err(e) => probes.push(error(e)),
            Ok((count, held)) => {
                for p in &paths {
                    let outcome = match held.get(p) {
                        None => Outcome::Clean {
                            detail: format!("no snapshot of {count} contains {p}"),
                        },
                        Some(snaps) => Outcome::Remaining {
                            detail: format!(
                                "{} snapshot(s) of {count} contain {p}: {}",
                                snaps.len(),
                                snaps
                                    .iter()
                                    .map(|s| s.short_id.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        },
                    };
                    probes.push(Probe {
                        kind: ProbeKind::Backup,
                        target: target.clone(),
                        outcome,
                    });
                }
            }
        }
    }
}

async fn delete(
    repo: &Repo,
    r: &ResticRepo,
    paths: &[String],
    held: &BTreeMap<String, Vec<Snapshot>>,
    timeout: Duration,
) -> Action {
    let (what, result) = match r.delete {
        ResticDelete::None => {
            return Action {
                what: String::new(),
                ok: true,
                exit_code: None,
                detail: None,
            }
        }
        ResticDelete::Rewrite => {
            let mut args = vec!["rewrite", "--forget"];
            for p in paths {
                args.push("--exclude");
                args.push(p);
            }
            (
                format!("restic rewrite in {}", r.repository),
                repo.restic(&args, timeout).await,
            )
        }
        ResticDelete::Forget => {
            let ids: BTreeSet<&str> = held.values().flatten().map(|s| s.id.as_str()).collect();
            let mut args = vec!["forget"];
            args.extend(ids.iter().copied());
            (
                format!(
                    "restic forget {} snapshot(s) in {}",
                    ids.len(),
                    r.repository
                ),
                repo.restic(&args, timeout).await,
            )
        }
    };
    let result = match result {
        Ok(_) => repo.restic(&["prune"], timeout).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Action {
            what,
            ok: true,
            exit_code: Some(0),
            detail: None,
        },
        Err(e) => Action {
            what,
            ok: false,
            exit_code: None,
            detail: Some(e),
        },
    }
}
