//! Backups: which restic snapshots still contain an account's paths, which of
//! its blobs are still in the packs, and the built-in deleters (`rewrite`,
//! `forget`, or proving the operator's `rotation`). The repository and
//! password file reach restic through `RESTIC_REPOSITORY` /
//! `RESTIC_PASSWORD_FILE`, never its command line; its cache goes to a
//! temporary directory removed afterwards.
//!
//! This module changes the host's repositories (`rewrite`, `forget`, `prune`).
//!
//! The blob proof: before anything is deleted, the ids of every blob the
//! account's paths had (file contents and the trees of its directories) are
//! read from the snapshots that hold them (walking their trees with
//! `restic cat`) and kept in the task's journal. After the deletion and a
//! `restic prune --max-unused 0` (a plain prune keeps packs under 5 % unused,
//! and with them the account's data), `restic cat blob ID` must answer "not
//! found" for each; a blob still there is accepted only when `restic find
//! --blob` shows a remaining snapshot using the same content at a path of
//! other data (identical bytes, such as a shared logo, are not the account's).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use vigil_rules::checks::erasure::{
    substitute, Action, BackupPhase, Outcome, Probe, ProbeKind, ResticDelete, ResticRepo,
};

use super::hooks;
use super::journal::Journal;
use crate::collect::host::HostCtx;

#[derive(Deserialize)]
struct Snapshot {
    id: String,
    short_id: String,
    #[serde(default)]
    time: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    struct_type: Option<String>,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Deserialize)]
struct SnapshotObj {
    tree: String,
}

#[derive(Deserialize)]
struct Tree {
    #[serde(default)]
    nodes: Vec<TreeNode>,
}

#[derive(Deserialize)]
struct TreeNode {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    content: Option<Vec<String>>,
    #[serde(default)]
    subtree: Option<String>,
}

/// Whether `np` is `p` or under it.
fn under(np: &str, p: &str) -> bool {
    np == p || np.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
}

/// How long a restic command waits for the repository lock (restic >= 0.16).
const LOCK_WAIT: Duration = Duration::from_secs(600);

struct Repo {
    env: Vec<(&'static str, PathBuf)>,
    _cache: tempfile::TempDir,
    trees: HashMap<String, Tree>,
}

impl Repo {
    fn open(r: &ResticRepo, ctx: &HostCtx) -> Result<Repo, String> {
        let cache = tempfile::Builder::new()
            .prefix("vigil-restic-cache-")
            .tempdir()
            .map_err(|e| {
                format!(
                    "cannot make a cache directory: {}",
                    crate::collect::host::io_reason(&e)
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
            trees: HashMap::new(),
        })
    }

    /// Every command waits up to [`LOCK_WAIT`] for a lock another process
    /// holds (a backup, the operator's own prune): without `--retry-lock`
    /// restic fails at once (exit 11). The wait comes on top of `timeout`.
    async fn run(&self, args: &[&str], timeout: Duration) -> Result<hooks::Ran, String> {
        let mut argv = vec![
            "restic".to_owned(),
            "--retry-lock".to_owned(),
            format!("{}s", LOCK_WAIT.as_secs()),
        ];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        hooks::run(&argv, &self.env, timeout + LOCK_WAIT)
            .await
            .map_err(String::from)
    }

    async fn restic(&self, args: &[&str], timeout: Duration) -> Result<Vec<u8>, String> {
        let r = self.run(args, timeout).await?;
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

    /// Every node path of a snapshot (or only those under `paths`).
    async fn ls(
        &self,
        id: &str,
        paths: &[String],
        timeout: Duration,
    ) -> Result<Vec<String>, String> {
        let mut args = vec!["ls", "--json", id];
        args.extend(paths.iter().map(String::as_str));
        let out = self.restic(&args, timeout).await?;
        let mut found = Vec::new();
        for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let node: Node = serde_json::from_slice(line)
                .map_err(|e| format!("`restic ls --json` gave unexpected output: {e}"))?;
            if node.struct_type.as_deref() != Some("node") {
                continue;
            }
            if let Some(p) = node.path {
                found.push(p);
            }
        }
        Ok(found)
    }

    /// For each path, the snapshots holding it or anything under it.
    async fn holding(
        &self,
        paths: &[String],
        timeout: Duration,
    ) -> Result<(Vec<Snapshot>, BTreeMap<String, Vec<usize>>), String> {
        let snaps = self.snapshots(timeout).await?;
        let mut held: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, s) in snaps.iter().enumerate() {
            let nodes = self.ls(&s.id, paths, timeout).await?;
            for p in paths {
                if nodes.iter().any(|np| under(np, p)) {
                    held.entry(p.clone()).or_default().push(i);
                }
            }
        }
        Ok((snaps, held))
    }

    async fn tree(&mut self, id: &str, timeout: Duration) -> Result<&Tree, String> {
        if !self.trees.contains_key(id) {
            let out = self.restic(&["cat", "blob", id], timeout).await?;
            let t: Tree = serde_json::from_slice(&out)
                .map_err(|e| format!("`restic cat blob` gave an unexpected tree: {e}"))?;
            self.trees.insert(id.to_owned(), t);
        }
        self.trees
            .get(id)
            .ok_or_else(|| "tree cache lost an entry".to_owned())
    }

    /// The blob ids (contents and directory trees) of `path` in a snapshot.
    async fn blobs_of(
        &mut self,
        snapshot: &str,
        path: &str,
        timeout: Duration,
        out: &mut BTreeSet<String>,
    ) -> Result<(), String> {
        let raw = self.restic(&["cat", "snapshot", snapshot], timeout).await?;
        let snap: SnapshotObj = serde_json::from_slice(&raw)
            .map_err(|e| format!("`restic cat snapshot` gave unexpected output: {e}"))?;
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        let mut tree = snap.tree;
        let Some((last, dirs)) = comps.split_last() else {
            return Ok(());
        };
        for c in dirs {
            let t = self.tree(&tree, timeout).await?;
            let Some(sub) = t
                .nodes
                .iter()
                .find(|n| n.name == *c && n.kind == "dir")
                .and_then(|n| n.subtree.clone())
            else {
                return Ok(());
            };
            tree = sub;
        }
        let t = self.tree(&tree, timeout).await?;
        let Some(node) = t.nodes.iter().find(|n| n.name == *last) else {
            return Ok(());
        };
        out.extend(node.content.iter().flatten().cloned());
        let mut stack: Vec<String> = node.subtree.iter().cloned().collect();
        while let Some(id) = stack.pop() {
            if !out.insert(id.clone()) {
                continue;
            }
            let t = self.tree(&id, timeout).await?;
            for n in &t.nodes {
                out.extend(n.content.iter().flatten().cloned());
                stack.extend(n.subtree.iter().cloned());
            }
        }
        Ok(())
    }

    /// Whether a blob is in the repository: `Ok(false)` when restic says it
    /// is not found.
    async fn has_blob(&self, id: &str, timeout: Duration) -> Result<bool, String> {
        let r = self.run(&["cat", "blob", id], timeout).await?;
        if r.ok() {
            Ok(true)
        } else if r.stderr_tail.contains("not found") {
            Ok(false)
        } else {
            Err(format!(
                "`restic cat blob` failed (exit {}): {}",
                r.exit_code.map_or("by signal".into(), |c| c.to_string()),
                r.stderr_tail
            ))
        }
    }
}

fn now() -> String {
    super::now()
}

/// Runs the phase's built-in deleters and verifies every repository.
#[allow(clippy::too_many_arguments)]
pub async fn phase(
    b: &BackupPhase,
    account: &str,
    requested_at: Option<&str>,
    timeout: Duration,
    ctx: &HostCtx,
    journal: &mut Journal,
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
        let mut repo = match Repo::open(r, ctx) {
            Ok(repo) => repo,
            Err(e) => {
                probes.push(error(e));
                continue;
            }
        };
        let mut state = repo.holding(&paths, timeout).await;
        // Learn the account's blob ids before anything is deleted.
        if let Ok((snaps, held)) = &state {
            let mut blobs = BTreeSet::new();
            let mut failed = None;
            for (p, idx) in held {
                for i in idx {
                    if let Some(s) = snaps.get(*i) {
                        if let Err(e) = repo.blobs_of(&s.id, p, timeout, &mut blobs).await {
                            failed = Some(e);
                        }
                    }
                }
            }
            if let Some(e) = failed {
                probes.push(error(format!("cannot read the account's blob ids: {e}")));
                continue;
            }
            journal.add_blobs(&r.repository, blobs);
            journal.save();
        }
        let deletes = matches!(r.delete, ResticDelete::Rewrite | ResticDelete::Forget);
        if let (Ok((snaps, held)), true) = (&state, deletes) {
            if !held.is_empty() {
                let a = delete(&repo, r, &paths, snaps, held, timeout).await;
                let deleted = a.ok;
                journal.record(&a);
                actions.push(a);
                if deleted {
                    let a = prune(&repo, r, timeout).await;
                    journal.record(&a);
                    actions.push(a);
                }
                state = repo.holding(&paths, timeout).await;
            }
        }
        let (snaps, held) = match state {
            Err(e) => {
                probes.push(error(e));
                continue;
            }
            Ok(v) => v,
        };
        let count = snaps.len();
        for p in &paths {
            let outcome = match held.get(p) {
                None => Outcome::Clean {
                    detail: format!("no snapshot of {count} contains {p}"),
                },
                Some(idx) => Outcome::Remaining {
                    detail: format!(
                        "{} snapshot(s) of {count} contain {p}: {}",
                        idx.len(),
                        idx.iter()
                            .filter_map(|i| snaps.get(*i))
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
        if r.delete == ResticDelete::Rotation {
            probes.push(Probe {
                kind: ProbeKind::Backup,
                target: target.clone(),
                outcome: rotation(&snaps, requested_at),
            });
        }
        // The packs: every blob the account's paths had must be gone.
        let known: Vec<String> = journal.blobs(&r.repository).into_iter().collect();
        let mut outcome = blob_outcome(&repo, &paths, &known, timeout).await;
        if deletes && held.is_empty() && matches!(outcome, Outcome::Remaining { .. }) {
            // Left in the packs by an earlier deletion (a hook, or a prune that
            // failed): repack now.
            let a = prune(&repo, r, timeout).await;
            journal.record(&a);
            actions.push(a);
            outcome = blob_outcome(&repo, &paths, &known, timeout).await;
        }
        probes.push(Probe {
            kind: ProbeKind::Backup,
            target: format!("{target} blobs"),
            outcome,
        });
    }
}

/// `rotation`: no snapshot older than the closure request may remain.
fn rotation(snaps: &[Snapshot], requested_at: Option<&str>) -> Outcome {
    let Some(req) = requested_at else {
        return Outcome::Error {
            reason: "the task carries no closure request time: rotation cannot be proved".into(),
        };
    };
    let Ok(req) = chrono::DateTime::parse_from_rfc3339(req) else {
        return Outcome::Error {
            reason: format!("the closure request time `{req}` is not RFC 3339"),
        };
    };
    let mut older = Vec::new();
    for s in snaps {
        let t = s
            .time
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok());
        match t {
            Some(t) if t >= req => {}
            Some(_) => older.push(s.short_id.as_str()),
            None => {
                return Outcome::Error {
                    reason: format!("snapshot {} has no readable time", s.short_id),
                }
            }
        }
    }
    if older.is_empty() {
        Outcome::Clean {
            detail: format!(
                "rotation: none of {} snapshot(s) is older than the closure request ({})",
                snaps.len(),
                req.to_rfc3339()
            ),
        }
    } else {
        Outcome::Remaining {
            detail: format!(
                "rotation: {} snapshot(s) older than the closure request remain: {}",
                older.len(),
                older.join(", ")
            ),
        }
    }
}

async fn blob_outcome(
    repo: &Repo,
    paths: &[String],
    known: &[String],
    timeout: Duration,
) -> Outcome {
    if known.is_empty() {
        return Outcome::Clean {
            detail: "no blob of the account recorded: no snapshot held its paths when this host first checked".into(),
        };
    }
    let mut present = Vec::new();
    for id in known {
        match repo.has_blob(id, timeout).await {
            Ok(true) => present.push(id.as_str()),
            Ok(false) => {}
            Err(reason) => return Outcome::Error { reason },
        }
    }
    if present.is_empty() {
        return Outcome::Clean {
            detail: format!(
                "none of the account's {} blob(s) is in the repository (`restic cat blob` answers not found)",
                known.len()
            ),
        };
    }
    // A blob still there may be the same bytes used by other data.
    let mut args = vec!["find", "--json", "--blob"];
    args.extend(present.iter().copied());
    let shared: BTreeSet<String> = match repo.restic(&args, timeout).await {
        Ok(out) => match serde_json::from_slice::<Vec<FoundBlob>>(&out) {
            Ok(v) => v
                .into_iter()
                .filter(|f| {
                    f.path
                        .as_deref()
                        .is_some_and(|p| !paths.iter().any(|a| under(p, a)))
                })
                .map(|f| f.id)
                .collect(),
            Err(e) => {
                return Outcome::Error {
                    reason: format!("`restic find --json` gave unexpected output: {e}"),
                }
            }
        },
        Err(reason) => return Outcome::Error { reason },
    };
    let own: Vec<&str> = present
        .iter()
        .copied()
        .filter(|id| !shared.contains(*id))
        .collect();
    if own.is_empty() {
        Outcome::Clean {
            detail: format!(
                "{} of the account's {} blob(s) are gone; {} remain only as the same content in other data still backed up",
                known.len() - present.len(),
                known.len(),
                present.len()
            ),
        }
    } else {
        Outcome::Remaining {
            detail: format!(
                "{} of the account's {} blob(s) are still in the repository's packs",
                own.len(),
                known.len()
            ),
        }
    }
}

#[derive(Deserialize)]
struct FoundBlob {
    id: String,
    #[serde(default)]
    path: Option<String>,
}

async fn delete(
    repo: &Repo,
    r: &ResticRepo,
    paths: &[String],
    snaps: &[Snapshot],
    held: &BTreeMap<String, Vec<usize>>,
    timeout: Duration,
) -> Action {
    let idx: BTreeSet<usize> = held.values().flatten().copied().collect();
    let shorts = |set: &BTreeSet<usize>| {
        set.iter()
            .filter_map(|i| snaps.get(*i))
            .map(|s| s.short_id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match r.delete {
        ResticDelete::Rewrite => {
            let what = format!("restic rewrite in {}", r.repository);
            let mut args = vec!["rewrite", "--forget"];
            for p in paths {
                args.push("--exclude");
                args.push(p);
            }
            match repo.restic(&args, timeout).await {
                Ok(_) => Action::succeeded(
                    what,
                    Some(format!(
                        "{} snapshot(s) rewritten without the account's paths, originals forgotten: {}",
                        idx.len(),
                        shorts(&idx)
                    )),
                    now(),
                ),
                Err(e) => Action::failed(what, e),
            }
        }
        ResticDelete::Forget => {
            // A snapshot is forgotten whole: refuse any that holds anything
            // besides the account's paths (and the directories above them).
            let mut refused = BTreeSet::new();
            let mut ok = BTreeSet::new();
            for i in &idx {
                let Some(s) = snaps.get(*i) else { continue };
                let nodes = match repo.ls(&s.id, &[], timeout).await {
                    Ok(n) => n,
                    Err(e) => {
                        return Action::failed(format!("restic forget in {}", r.repository), e)
                    }
                };
                let other = nodes.iter().any(|np| {
                    !paths
                        .iter()
                        .any(|p| under(np, p) || np == "/" || under(p, np))
                });
                if other {
                    refused.insert(*i);
                } else {
                    ok.insert(*i);
                }
            }
            let what = format!("restic forget in {}", r.repository);
            let mut detail = Vec::new();
            let mut failed = !refused.is_empty();
            if !refused.is_empty() {
                detail.push(format!(
                    "refused for {} snapshot(s) that also hold other data ({}): forgetting them would destroy the other accounts' backups; use `delete: rewrite`",
                    refused.len(),
                    shorts(&refused)
                ));
            }
            if !ok.is_empty() {
                let ids: Vec<&str> = ok
                    .iter()
                    .filter_map(|i| snaps.get(*i))
                    .map(|s| s.id.as_str())
                    .collect();
                let mut args = vec!["forget"];
                args.extend(ids);
                match repo.restic(&args, timeout).await {
                    Ok(_) => detail.push(format!(
                        "{} snapshot(s) forgotten: {}",
                        ok.len(),
                        shorts(&ok)
                    )),
                    Err(e) => {
                        failed = true;
                        detail.push(e);
                    }
                }
            }
            if failed {
                Action::failed(what, detail.join("; "))
            } else {
                Action::succeeded(what, Some(detail.join("; ")), now())
            }
        }
        ResticDelete::None | ResticDelete::Rotation => Action::failed(
            format!("restic in {}", r.repository),
            "nothing to run".into(),
        ),
    }
}

/// `restic prune --max-unused 0`: every pack holding a blob no snapshot uses
/// is repacked, so no deleted data stays in a partly used pack.
async fn prune(repo: &Repo, r: &ResticRepo, timeout: Duration) -> Action {
    let what = format!("restic prune --max-unused 0 in {}", r.repository);
    match repo.restic(&["prune", "--max-unused", "0"], timeout).await {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out);
            let removed = text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("this removes") || l.starts_with("to repack"))
                .map(hooks::scrub_line)
                .collect::<Vec<_>>()
                .join("; ");
            Action::succeeded(what, (!removed.is_empty()).then_some(removed), now())
        }
        Err(e) => Action::failed(what, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn under_is_by_component() {
        assert!(under("/s/acme", "/s/acme"));
        assert!(under("/s/acme/x", "/s/acme"));
        assert!(!under("/s/acmecorp", "/s/acme"));
        assert!(!under("/s", "/s/acme"));
    }

    #[test]
    fn rotation_needs_the_request_time_and_counts_older_snapshots() {
        let s = |id: &str, t: &str| Snapshot {
            id: id.into(),
            short_id: id.into(),
            time: Some(t.into()),
        };
        let snaps = [
            s("a", "2026-01-01T00:00:00Z"),
            s("b", "2026-03-01T00:00:00+01:00"),
        ];
        assert!(matches!(rotation(&snaps, None), Outcome::Error { .. }));
        match rotation(&snaps, Some("2026-02-01T00:00:00Z")) {
            Outcome::Remaining { detail } => assert!(detail.ends_with(": a"), "{detail}"),
            o => panic!("{o:?}"),
        }
        assert!(matches!(
            rotation(&snaps, Some("2025-12-31T00:00:00Z")),
            Outcome::Clean { .. }
        ));
    }
}
