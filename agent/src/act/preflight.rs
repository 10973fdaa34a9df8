//! Would the sandbox stop this erasure? Checked before a phase deletes
//! anything, so that a unit that is too narrow (the shipped
//! `vigil-agent.service` leaves only `/var/lib/vigil` writable and keeps no
//! `CAP_DAC_OVERRIDE`/`CAP_CHOWN`/`CAP_FOWNER`) makes the task `error` naming
//! what is missing, instead of half a deletion.
//!
//! Also what a unit must allow for a policy's erasure sections
//! ([`unit_needs`]), which `vigil-agent erase-unit` prints as a drop-in.
//!
//! Hooks are the operator's programs: what they need is not known here.

use std::collections::BTreeSet;
use std::path::Path;

use rustix::fs::{Access, AtFlags, CWD};
use vigil_rules::checks::erasure::{
    substitute, BackupPhase, JournalDelete, Params, ResticDelete, Task,
};

use super::nofollow;
use crate::collect::host::HostCtx;

/// A capability erasure may need, with its bit in `CapEff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cap {
    Chown,
    DacOverride,
    Fowner,
}

impl Cap {
    fn bit(self) -> u32 {
        match self {
            Cap::Chown => 0,
            Cap::DacOverride => 1,
            Cap::Fowner => 3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cap::Chown => "CAP_CHOWN",
            Cap::DacOverride => "CAP_DAC_OVERRIDE",
            Cap::Fowner => "CAP_FOWNER",
        }
    }
}

/// What a unit must allow: host paths that must be writable, capabilities.
#[derive(Debug, Default)]
pub struct Needs {
    pub paths: BTreeSet<String>,
    pub caps: BTreeSet<Cap>,
}

/// The directory a pattern's matches live in: its components up to the first
/// one holding `{account}` or a glob; for a fully literal path, its parent.
pub fn literal_root(pattern: &str) -> String {
    let comps: Vec<&str> = pattern.split('/').filter(|c| !c.is_empty()).collect();
    let lit = comps
        .iter()
        .take_while(|c| !c.contains(['{', '*', '?', '[']))
        .count();
    let keep = if lit == comps.len() {
        lit.saturating_sub(1)
    } else {
        lit
    };
    format!(
        "/{}",
        comps
            .iter()
            .take(keep)
            .copied()
            .collect::<Vec<_>>()
            .join("/")
    )
}

fn local_repos(b: &BackupPhase) -> impl Iterator<Item = &str> {
    b.restic
        .iter()
        .filter(|r| r.repository.starts_with('/'))
        .map(|r| r.repository.as_str())
}

/// What the erasure sections of `p` need from the unit (host paths).
pub fn unit_needs(p: &Params, needs: &mut Needs) {
    if let Some(s) = &p.site {
        if s.remove_paths {
            needs.paths.extend(s.paths.iter().map(|x| literal_root(x)));
            needs.caps.insert(Cap::DacOverride);
        }
    }
    for b in [&p.local_backups, &p.offline_backups].into_iter().flatten() {
        // restic writes lock files even to read; rewrite/forget/prune write packs.
        needs.paths.extend(local_repos(b).map(str::to_owned));
        if b.restic.iter().any(|r| deletes(r.delete)) {
            needs.caps.insert(Cap::DacOverride);
        }
    }
    if let Some(l) = &p.logs {
        if l.purge {
            needs.paths.extend(l.paths.iter().map(|x| literal_root(x)));
            // The rewritten file gets its owner and mode back (fchown, fchmod).
            needs
                .caps
                .extend([Cap::Chown, Cap::DacOverride, Cap::Fowner]);
        }
        if let Some(j) = &l.journal {
            if j.delete == JournalDelete::Vacuum {
                needs.paths.insert(
                    j.directory
                        .clone()
                        .unwrap_or_else(|| "/var/log/journal".into()),
                );
                needs.caps.insert(Cap::DacOverride);
            }
        }
    }
    if let Some(x) = &p.export {
        needs.paths.insert(x.output_dir.clone());
    }
}

fn deletes(d: ResticDelete) -> bool {
    matches!(d, ResticDelete::Rewrite | ResticDelete::Forget)
}

/// The effective capability set (`CapEff` of /proc/self/status).
fn cap_eff() -> Result<u64, String> {
    let s = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let hex = s
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .ok_or("/proc/self/status has no CapEff line")?;
    u64::from_str_radix(hex.trim(), 16).map_err(|e| format!("CapEff `{}`: {e}", hex.trim()))
}

/// Whether this process may write `path` (effective ids and capabilities,
/// read-only mounts included).
fn writable(path: &Path, shown: String, problems: &mut Vec<String>) {
    match rustix::fs::accessat(CWD, path, Access::WRITE_OK, AtFlags::EACCESS) {
        Ok(()) => {}
        Err(rustix::io::Errno::NOENT) => {}
        Err(rustix::io::Errno::ROFS) => problems.push(format!(
            "`{shown}` is on a read-only file system here (not in the unit's ReadWritePaths)"
        )),
        Err(rustix::io::Errno::ACCESS) | Err(rustix::io::Errno::PERM) => {
            problems.push(format!("`{shown}` is not writable (permission denied)"))
        }
        Err(e) => problems.push(format!(
            "`{shown}`: cannot tell whether it is writable: {e}"
        )),
    }
}

/// The directory `p` is in, or `p` itself if it exists and is a directory.
fn check_entry(ctx: &HostCtx, e: &nofollow::Entry, problems: &mut Vec<String>) {
    if let Some(parent) = e.path.parent() {
        writable(parent, ctx.display(parent), problems);
    }
    if e.kind() == rustix::fs::FileType::Directory {
        // Its entries are unlinked from it.
        writable(&e.path, ctx.display(&e.path), problems);
    }
}

/// Checks everything the built-in deleters of task `t`'s phase will write.
/// `Err` names each path that is not writable and each capability missing
/// from the effective set; nothing has been deleted then.
pub fn check(p: &Params, t: &Task, ctx: &HostCtx) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut caps = BTreeSet::new();
    match t.phase.as_str() {
        "site" => {
            if let Some(s) = p.site.as_ref().filter(|s| s.remove_paths) {
                caps.insert(Cap::DacOverride);
                for pat in &s.paths {
                    let pat = substitute(pat, &t.account);
                    // A pattern that does not resolve is reported by the phase itself.
                    if let Ok(r) = nofollow::resolve(&ctx.root, &pat) {
                        for e in &r.found {
                            check_entry(ctx, e, &mut problems);
                        }
                    }
                }
            }
        }
        "local_backups" | "offline_backups" => {
            let b = if t.phase == "local_backups" {
                &p.local_backups
            } else {
                &p.offline_backups
            };
            for r in b.iter().flat_map(|b| b.restic.iter()) {
                if !deletes(r.delete) || !r.repository.starts_with('/') {
                    continue;
                }
                caps.insert(Cap::DacOverride);
                let repo = ctx.path(&r.repository);
                for sub in ["", "data", "index", "snapshots", "locks"] {
                    let d = if sub.is_empty() {
                        repo.clone()
                    } else {
                        repo.join(sub)
                    };
                    writable(&d, ctx.display(&d), &mut problems);
                }
            }
        }
        "logs" => {
            if let Some(l) = &p.logs {
                if l.purge {
                    caps.extend([Cap::Chown, Cap::DacOverride, Cap::Fowner]);
                    for pat in &l.paths {
                        if let Ok(r) = nofollow::resolve(&ctx.root, pat) {
                            for e in &r.found {
                                if e.kind() != rustix::fs::FileType::Directory {
                                    // Rewritten beside itself and renamed over it.
                                    writable(&e.path, ctx.display(&e.path), &mut problems);
                                    check_entry(ctx, e, &mut problems);
                                }
                            }
                        }
                    }
                }
                if let Some(j) = l
                    .journal
                    .as_ref()
                    .filter(|j| j.delete == JournalDelete::Vacuum)
                {
                    caps.insert(Cap::DacOverride);
                    let d = ctx.path(j.directory.as_deref().unwrap_or("/var/log/journal"));
                    writable(&d, ctx.display(&d), &mut problems);
                }
            }
        }
        _ => {}
    }
    problems.sort();
    problems.dedup();
    // A root process is sandboxed by its capabilities; another user's agent
    // writes only what it owns, which the checks above already tell.
    if !caps.is_empty() && rustix::process::geteuid().is_root() {
        match cap_eff() {
            Ok(eff) => {
                let missing: Vec<&str> = caps
                    .iter()
                    .filter(|c| eff & (1u64 << c.bit()) == 0)
                    .map(|c| c.name())
                    .collect();
                if !missing.is_empty() {
                    problems.push(format!(
                        "{} not in the effective capability set",
                        missing.join(", ")
                    ));
                }
            }
            Err(e) => problems.push(e),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the sandbox would stop this erasure, so nothing was deleted: {}; run it under the drop-in `vigil-agent erase-unit --policy FILE` prints (docs/checks/erasure.md)",
            problems.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_roots() {
        assert_eq!(
            literal_root("/srv/papyrs/sites/{account}"),
            "/srv/papyrs/sites"
        );
        assert_eq!(literal_root("/var/log/papyrs/*.log*"), "/var/log/papyrs");
        assert_eq!(literal_root("/var/log/syslog"), "/var/log");
        assert_eq!(literal_root("/{account}"), "/");
    }
}
