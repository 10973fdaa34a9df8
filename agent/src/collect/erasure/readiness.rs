//! Erasure readiness (looks; writes only probe files it removes at once).
//!
//! With no erasure task pending for this host, [`gather`] proves that each
//! phase the check configures could be carried out now, by doing what the
//! phase would do short of deleting anything, as the running agent (so as the
//! installed service, under its user and its systemd sandbox):
//!
//! - a hook's program exists, is a regular file and is executable;
//! - each restic repository opens with its password file and takes a lock
//!   (`restic list keys`: opening needs the password, the lock is a write);
//! - every directory a built-in deleter or the log purge writes in accepts a
//!   new file (a probe file, created and removed), and each log file opens
//!   for writing; log patterns match at least one file;
//! - a site `sql` count runs (for an account id no customer has);
//! - the export builds: a probe site is exported into a probe directory in
//!   `output_dir` and its manifest verified, then both are removed.
//!
//! Facts only: `rules::checks::erasure::readiness` judges them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vigil_rules::checks::erasure::readiness::{Prerequisite, Readiness};
use vigil_rules::checks::erasure::{substitute, BackupPhase, ExportPhase, Params, ResticRepo};

use crate::act::erasure::sql_count;
use crate::act::preflight::literal_root;
use crate::act::{export, hooks, nofollow};
use crate::collect::host::{blocking, io_reason, HostCtx};

/// An account id no customer has, for probes that need one.
const PROBE_ACCOUNT: &str = "vigil-readiness-probe";

pub async fn gather(p: &Params, ctx: &HostCtx) -> Readiness {
    let timeout = p.hook_timeout.as_std();
    let mut out = Vec::new();
    if let Some(s) = &p.site {
        if let Some(h) = &s.hook {
            out.push(hook("site", h));
        }
        for pat in &s.paths {
            let dir = literal_root(&substitute(pat, PROBE_ACCOUNT));
            if s.remove_paths {
                out.push(writable("site", &dir, ctx).await);
            } else {
                out.push(readable_dir("site", &dir, ctx));
            }
        }
        if let Some(sql) = &s.sql {
            let r = sql_count(sql, PROBE_ACCOUNT, ctx).await;
            out.push(Prerequisite {
                phase: "site".into(),
                what: "sql count runs".into(),
                ready: r.is_ok(),
                detail: match r {
                    Ok(n) => format!("the query answered ({n} rows for a probe account)"),
                    Err(e) => e,
                },
            });
        }
    }
    for (phase, b) in [
        ("local_backups", &p.local_backups),
        ("offline_backups", &p.offline_backups),
    ] {
        if let Some(b) = b {
            backups(phase, b, ctx, timeout, &mut out).await;
        }
    }
    if let Some(l) = &p.logs {
        if let Some(h) = &l.hook {
            out.push(hook("logs", h));
        }
        for pat in &l.paths {
            let (pt, c, purge) = (pat.clone(), ctx.clone(), l.purge);
            match blocking(move || Ok(logs(&pt, &c, purge))).await {
                Ok(mut v) => out.append(&mut v),
                Err(e) => out.push(not_ready("logs", format!("log {pat}"), e)),
            }
        }
    }
    if let Some(x) = &p.export {
        let (x, c) = (x.as_ref().clone(), ctx.clone());
        match blocking(move || Ok(export_probe(&x, &c))).await {
            Ok(mut v) => out.append(&mut v),
            Err(e) => out.push(not_ready("export", "export builds".into(), e)),
        }
    }
    Readiness { prerequisites: out }
}

fn not_ready(phase: &str, what: String, detail: String) -> Prerequisite {
    Prerequisite {
        phase: phase.into(),
        what,
        ready: false,
        detail,
    }
}

fn ready(phase: &str, what: String, detail: String) -> Prerequisite {
    Prerequisite {
        phase: phase.into(),
        what,
        ready: true,
        detail,
    }
}

/// A hook runs as the program path it names (searched in `PATH` when bare).
fn hook(phase: &str, argv: &[String]) -> Prerequisite {
    let program = argv.first().cloned().unwrap_or_default();
    let what = format!("hook {program} executable");
    let found = if program.contains('/') {
        Some(PathBuf::from(&program))
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(&program))
                .find(|p| p.is_file())
        })
    };
    let Some(path) = found else {
        return not_ready(phase, what, format!("`{program}` is not in PATH"));
    };
    match std::fs::metadata(&path) {
        Err(e) => not_ready(
            phase,
            what,
            format!("`{}`: {}", path.display(), io_reason(&e)),
        ),
        Ok(m) if !m.is_file() => {
            not_ready(phase, what, format!("`{}` is not a file", path.display()))
        }
        Ok(m) => {
            use std::os::unix::fs::PermissionsExt;
            if m.permissions().mode() & 0o111 == 0 {
                not_ready(
                    phase,
                    what,
                    format!("`{}` is not executable", path.display()),
                )
            } else {
                ready(
                    phase,
                    what,
                    format!("`{}` is an executable file", path.display()),
                )
            }
        }
    }
}

/// A directory accepts a new file: a probe is created there and removed.
async fn writable(phase: &str, dir: &str, ctx: &HostCtx) -> Prerequisite {
    let (d, c) = (dir.to_owned(), ctx.clone());
    let what = format!("write {dir}");
    match blocking(move || Ok(probe_write(&c.path(&d)))).await {
        Ok(Ok(())) => ready(phase, what, "a probe file was created and removed".into()),
        Ok(Err(e)) | Err(e) => not_ready(phase, what, e),
    }
}

fn probe_write(dir: &Path) -> Result<(), String> {
    if !dir.is_dir() {
        return Err(format!("`{}` is not a directory", dir.display()));
    }
    let f = tempfile::Builder::new()
        .prefix(".vigil-readiness-")
        .tempfile_in(dir)
        .map_err(|e| {
            format!(
                "cannot create a file in `{}`: {}",
                dir.display(),
                io_reason(&e)
            )
        })?;
    f.close()
        .map_err(|e| format!("cannot remove the probe file: {}", io_reason(&e)))
}

fn readable_dir(phase: &str, dir: &str, ctx: &HostCtx) -> Prerequisite {
    let what = format!("read {dir}");
    match std::fs::read_dir(ctx.path(dir)) {
        Ok(_) => ready(phase, what, "the directory lists".into()),
        Err(e) => not_ready(phase, what, io_reason(&e)),
    }
}

async fn backups(
    phase: &str,
    b: &BackupPhase,
    ctx: &HostCtx,
    timeout: Duration,
    out: &mut Vec<Prerequisite>,
) {
    if let Some(h) = &b.hook {
        out.push(hook(phase, h));
    }
    for r in &b.restic {
        out.push(restic(phase, r, ctx, timeout).await);
    }
}

/// How long the readiness probe waits for a lock another process holds on
/// the repository (restic >= 0.16 `--retry-lock`): a `restic check` or a
/// `prune` holds an exclusive one, and the host is no less ready for it.
const LOCK_WAIT: Duration = Duration::from_secs(120);

/// `restic list keys` opens the repository with its password file and takes
/// a (shared) lock, which is a write into the repository. It waits up to
/// [`LOCK_WAIT`] for an exclusive lock to go (on top of `timeout`).
async fn restic(phase: &str, r: &ResticRepo, ctx: &HostCtx, timeout: Duration) -> Prerequisite {
    let what = format!("restic {} opens and locks", r.repository);
    let password = ctx.path(&r.password_file);
    if let Err(e) = std::fs::File::open(&password) {
        return not_ready(
            phase,
            what,
            format!("password file `{}`: {}", r.password_file, io_reason(&e)),
        );
    }
    let cache = match tempfile::Builder::new()
        .prefix("vigil-restic-cache-")
        .tempdir()
    {
        Ok(c) => c,
        Err(e) => {
            return not_ready(
                phase,
                what,
                format!("cannot make a cache directory: {}", io_reason(&e)),
            )
        }
    };
    let repository = if r.repository.starts_with('/') {
        ctx.path(&r.repository)
    } else {
        PathBuf::from(&r.repository)
    };
    let env = [
        ("RESTIC_REPOSITORY", repository),
        ("RESTIC_PASSWORD_FILE", password),
        ("RESTIC_CACHE_DIR", cache.path().to_path_buf()),
    ];
    let argv: Vec<String> = vec![
        "restic".into(),
        "--retry-lock".into(),
        format!("{}s", LOCK_WAIT.as_secs()),
        "list".into(),
        "keys".into(),
    ];
    match hooks::run(&argv, &env, timeout + LOCK_WAIT).await {
        Ok(ran) if ran.ok() => {
            let keys = ran
                .stdout
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count();
            ready(
                phase,
                what,
                format!("opened with its password file and locked ({keys} key(s))"),
            )
        }
        Ok(ran) => not_ready(
            phase,
            what,
            format!(
                "`restic list keys` failed (exit {}): {}",
                ran.exit_code.map_or("by signal".into(), |c| c.to_string()),
                ran.stderr_tail
            ),
        ),
        Err(e) => not_ready(phase, what, e.to_string()),
    }
}

/// The paths `pattern` matches under the host's root, without following a
/// link (as the purge and the deleters resolve them); links are left out.
fn expand(pattern: &str, ctx: &HostCtx) -> Result<Vec<PathBuf>, String> {
    let resolved = nofollow::resolve(&ctx.root, pattern)?;
    Ok(resolved.found.iter().map(|e| ctx.path(&e.path)).collect())
}

/// Log files exist, and with `purge` each opens for writing and its
/// directory takes the rewritten copy.
fn logs(pattern: &str, ctx: &HostCtx, purge: bool) -> Vec<Prerequisite> {
    let what = format!("log {pattern}");
    let files = match expand(pattern, ctx) {
        Ok(f) => f.into_iter().filter(|f| f.is_file()).collect::<Vec<_>>(),
        Err(e) => return vec![not_ready("logs", what, e)],
    };
    if files.is_empty() {
        return vec![not_ready(
            "logs",
            what,
            "no file matches: the purge would have nothing to prove".into(),
        )];
    }
    if !purge {
        return vec![ready(
            "logs",
            what,
            format!("{} file(s) match", files.len()),
        )];
    }
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    dirs.sort();
    dirs.dedup();
    for d in &dirs {
        let what = format!("write {}", ctx.display(d));
        out.push(match probe_write(d) {
            Ok(()) => ready("logs", what, "a probe file was created and removed".into()),
            Err(e) => not_ready("logs", what, e),
        });
    }
    let locked: Vec<String> = files
        .iter()
        .filter_map(|f| {
            std::fs::OpenOptions::new()
                .append(true)
                .open(f)
                .err()
                .map(|e| format!("`{}`: {}", ctx.display(f), io_reason(&e)))
        })
        .collect();
    out.push(if locked.is_empty() {
        ready(
            "logs",
            what,
            format!("{} file(s) open for writing", files.len()),
        )
    } else {
        not_ready("logs", what, locked.join("; "))
    });
    out
}

/// The site directory's parent lists, and an export of a probe site builds
/// and verifies in `output_dir`.
fn export_probe(x: &ExportPhase, ctx: &HostCtx) -> Vec<Prerequisite> {
    let sites = literal_root(&substitute(&x.site_root, PROBE_ACCOUNT));
    let mut out = vec![readable_dir("export", &sites, ctx)];
    let what = format!("export builds in {}", x.output_dir);
    let out_dir = ctx.path(&x.output_dir);
    // `export` creates a missing output directory: the nearest existing one must take it.
    let mut dir = out_dir.clone();
    while !dir.exists() {
        match dir.parent() {
            Some(p) => dir = p.to_path_buf(),
            None => break,
        }
    }
    let built = (|| -> Result<String, String> {
        let probe = tempfile::Builder::new()
            .prefix(".vigil-readiness-")
            .tempdir_in(&dir)
            .map_err(|e| {
                format!(
                    "cannot create a directory in `{}`: {}",
                    ctx.display(&dir),
                    io_reason(&e)
                )
            })?;
        let site = probe.path().join("site");
        std::fs::create_dir_all(site.join("pages"))
            .and_then(|()| std::fs::write(site.join("pages/readiness.md"), "# readiness probe\n"))
            .map_err(|e| format!("cannot write the probe site: {}", io_reason(&e)))?;
        let archive = export::export(&site, probe.path(), PROBE_ACCOUNT, &[])?;
        let (n, _) = export::verify(&archive)?;
        probe
            .close()
            .map_err(|e| format!("cannot remove the probe: {}", io_reason(&e)))?;
        Ok(format!(
            "a probe export built and its manifest verified ({n} files)"
        ))
    })();
    out.push(match built {
        Ok(d) => ready("export", what, d),
        Err(e) => not_ready("export", what, e),
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_parent_stops_at_the_first_glob() {
        assert_eq!(literal_root("/srv/papyrs/sites/acme"), "/srv/papyrs/sites");
        assert_eq!(literal_root("/var/log/papyrs/*.log*"), "/var/log/papyrs");
        assert_eq!(literal_root("/var/*/x.log"), "/var");
        assert_eq!(literal_root("/x"), "/");
    }
}
