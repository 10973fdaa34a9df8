//! Facts for `backup_freshness`: runs restic and borg (with a timeout, the
//! password handed over as a file, never on a command line), or reads a
//! directory of dated sets or a manifest. Parsing is `vigil_rules`'.
//!
//! Whatever restic or borg print goes through [`Scrub`] first: the password
//! file's content and any password in the repository string are cut out.
//!
//! A local restic repository that has not changed since the last run is not
//! listed again: its `snapshots` and `ls` answers come from the state
//! directory ([`cache`]); `restic check --read-data-subset` always runs.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::process::Command;
use vigil_rules::checks::backup_freshness::{
    loopback_host_names, parse_borg_encryption, parse_borg_list, parse_manifest,
    parse_restic_snapshots, parse_zone, path_covers, redact_location, restic_ls_path,
    set_time_from_name, site_of, BackupSet, CachedListing, Checksum, DataCheck, Facts, Kind, Mount,
    Params, PathPresence, SourceFacts, SourceSpec, Zone,
};

use super::{blocking, io_reason, HostCtx, RunMemo};
use crate::collect::CollectError;

mod cache;

pub async fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let zone = parse_zone(&p.time_zone).map_err(|e| e.to_string())?;
    let mounts = if ctx.is_live() {
        std::fs::read_to_string("/proc/self/mountinfo")
            .map(|t| parse_mountinfo(&t))
            .unwrap_or_default()
    } else {
        Vec::new()
    };
    // Sources are read at once: each is a program talking to its own repository.
    // Listings are shared with the run's other checks reading the same one.
    let memo = RunMemo::current();
    let mut set = tokio::task::JoinSet::new();
    for (i, spec) in p.sources.iter().enumerate() {
        let (p, spec, ctx, memo) = (p.clone(), spec.clone(), ctx.clone(), memo.clone());
        let mount = local_path(&spec).and_then(|path| mount_of(&mounts, &path));
        set.spawn(async move { (i, one(&p, &spec, &ctx, zone, mount, &memo).await) });
    }
    let mut slots: Vec<Option<SourceFacts>> = vec![None; p.sources.len()];
    while let Some(done) = set.join_next().await {
        let (i, sf) = done.map_err(|e| format!("collector stopped unexpectedly: {e}"))?;
        if let Some(slot) = slots.get_mut(i) {
            *slot = Some(sf);
        }
    }
    Ok(Facts {
        sources: slots.into_iter().flatten().collect(),
        host_names: host_names(ctx),
    })
}

/// The names this host goes by, for telling which repositories are on it:
/// the kernel hostname (live hosts), `/etc/hostname` and the loopback names
/// of `/etc/hosts` under the root. The agent's configured host name is the
/// judge's own.
fn host_names(ctx: &HostCtx) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        let n = n.trim().to_ascii_lowercase();
        if !n.is_empty() && !out.contains(&n) {
            out.push(n);
        }
    };
    if ctx.is_live() {
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            add(&h);
        }
    }
    if let Ok(h) = std::fs::read_to_string(ctx.path("/etc/hostname")) {
        if let Some(line) = h
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
        {
            add(line);
        }
    }
    if let Ok(hosts) = std::fs::read_to_string(ctx.path("/etc/hosts")) {
        for n in loopback_host_names(&hosts) {
            add(&n);
        }
    }
    out
}

async fn one(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    zone: Zone,
    mount: Option<Mount>,
    memo: &RunMemo,
) -> SourceFacts {
    let mut sf = SourceFacts {
        kind: spec.kind,
        location: redact_location(&spec.location),
        site: site_of(spec),
        local: spec.local,
        mount,
        sets: vec![],
        encryption_mode: None,
        required_paths: vec![],
        data_check: None,
        checksum: None,
        cached_listing: None,
        error: None,
    };
    let result = match spec.kind {
        Kind::Restic => restic(p, spec, ctx, &mut sf, memo).await,
        Kind::Borg => borg(p, spec, ctx, zone, &mut sf).await,
        Kind::Directory => {
            let (p2, spec2, ctx2) = (p.clone(), spec.clone(), ctx.clone());
            let mut sf2 = sf.clone();
            match blocking(move || {
                let r = directory(&p2, &spec2, &ctx2, zone, &mut sf2);
                Ok((r, sf2))
            })
            .await
            {
                Ok((r, filled)) => {
                    sf = filled;
                    r
                }
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = result {
        sf.error = Some(e);
    }
    sf
}

/// The filesystem path of a location that is one.
fn local_path(spec: &SourceSpec) -> Option<String> {
    let l = spec.location.trim();
    let l = if spec.kind == Kind::Restic {
        l.strip_prefix("local:").unwrap_or(l)
    } else {
        l.strip_prefix("file://").unwrap_or(l)
    };
    l.starts_with('/').then(|| l.to_owned())
}

/// `/proc/self/mountinfo`: mount point, fs type, source, mount and super options.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let unescape = |s: &str| {
        s.replace("\\040", " ")
            .replace("\\011", "\t")
            .replace("\\012", "\n")
            .replace("\\134", "\\")
    };
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            let mount_point = unescape(l.get(4)?);
            let mut options = (*l.get(5)?).to_owned();
            if let Some(sup) = r.get(2) {
                options.push(',');
                options.push_str(sup);
            }
            Some(Mount {
                mount_point,
                fs_type: (*r.first()?).to_owned(),
                source: unescape(r.get(1).copied().unwrap_or("")),
                options,
            })
        })
        .collect()
}

fn mount_of(mounts: &[Mount], path: &str) -> Option<Mount> {
    mounts
        .iter()
        .filter(|m| {
            m.mount_point == "/"
                || path == m.mount_point
                || path
                    .strip_prefix(&m.mount_point)
                    .is_some_and(|r| r.starts_with('/'))
        })
        // The last of equally long mount points is the one on top.
        .fold(None::<&Mount>, |best, m| match best {
            Some(b) if b.mount_point.len() > m.mount_point.len() => Some(b),
            _ => Some(m),
        })
        .cloned()
}

/// Cuts secrets out of a program's output.
struct Scrub {
    secrets: Vec<String>,
}

impl Scrub {
    fn new(spec: &SourceSpec, password_file: Option<&Path>) -> Self {
        let mut secrets = Vec::new();
        if let Some(f) = password_file {
            if let Ok(text) = std::fs::read_to_string(f) {
                // restic reads the first line; borg's passcommand prints it all.
                for s in [
                    text.trim_end_matches(['\r', '\n']),
                    text.lines().next().unwrap_or(""),
                ] {
                    if s.len() >= 3 && !secrets.iter().any(|x| x == s) {
                        secrets.push(s.to_owned());
                    }
                }
            }
        }
        if let Some(i) = spec.location.find("://") {
            let rest = spec.location.get(i + 3..).unwrap_or("");
            let authority = rest.split('/').next().unwrap_or("");
            if let Some((userinfo, _)) = authority.rsplit_once('@') {
                if let Some((_, pass)) = userinfo.split_once(':') {
                    if !pass.is_empty() {
                        secrets.push(pass.to_owned());
                    }
                }
            }
        }
        // Longest first, so a secret containing another is cut whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Scrub { secrets }
    }

    fn clean(&self, s: &str) -> String {
        let mut out = s.to_owned();
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "[REDACTED]");
        }
        out
    }
}

struct Ran {
    ok: bool,
    stdout: String,
    stderr: String,
}

/// Runs a program with stdin closed, under a timeout, killing it on timeout
/// (and when the check itself is abandoned).
async fn run(
    mut cmd: Command,
    what: &str,
    timeout: Duration,
    scrub: &Scrub,
) -> Result<Ran, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(format!(
                "`{what}` did not finish within {} s",
                timeout.as_secs()
            ))
        }
        Ok(Err(e)) => return Err(format!("cannot run `{what}`: {}", io_reason(&e))),
        Ok(Ok(o)) => o,
    };
    Ok(Ran {
        ok: out.status.success(),
        stdout: scrub.clean(&String::from_utf8_lossy(&out.stdout)),
        stderr: scrub.clean(&String::from_utf8_lossy(&out.stderr)),
    })
}

/// [`run`] once per run for every check asking for the same command (the
/// same program, repository, password file and arguments): the others wait
/// for and share its output. A timeout or a program that could not start is
/// not kept, so each asker tries under its own timeout and reports its own
/// error; a program that ran and failed is kept (each check still reports it).
/// The output is scrubbed before it is kept: the key holds the repository
/// string and password file, which are all `Scrub` cuts.
async fn run_shared(
    memo: &RunMemo,
    key: &str,
    cmd: Command,
    what: &str,
    timeout: Duration,
    scrub: &Scrub,
) -> Result<Arc<Ran>, String> {
    memo.cell::<Arc<Ran>>(key)
        .get_or_try_init(|| async { run(cmd, what, timeout, scrub).await.map(Arc::new) })
        .await
        .cloned()
}

/// The memo key of a restic command: everything its output depends on.
fn restic_key(
    bin: &Path,
    spec: &SourceSpec,
    ctx: &HostCtx,
    pass: Option<&Path>,
    args: &[&str],
) -> String {
    format!(
        "backup_freshness restic {:?}",
        (bin, repo_arg(spec, ctx), &spec.location, pass, args)
    )
}

/// The last few meaningful lines of a program's complaint, on one line.
fn tail(ran: &Ran) -> String {
    let text = if ran.stderr.trim().is_empty() {
        &ran.stdout
    } else {
        &ran.stderr
    };
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // restic and borg name the cause on a `Fatal:` line, or panic with one line
    // of reason before a stack trace nobody needs in a report.
    let key = lines
        .iter()
        .find(|l| l.starts_with("Fatal:") || l.starts_with("panic:") || l.starts_with("Error:"));
    let start = lines.len().saturating_sub(3);
    let joined = match key {
        Some(l) => (*l).to_owned(),
        None => lines.get(start..).unwrap_or(&[]).join(" / "),
    };
    if joined.is_empty() {
        "no message".into()
    } else {
        let mut s: String = joined.chars().take(400).collect();
        if let Some(first) = s.get(..1) {
            s = first.to_lowercase() + s.get(1..).unwrap_or("");
        }
        s
    }
}

fn find_program(name: &str) -> Result<PathBuf, String> {
    ["/usr/bin", "/usr/local/bin", "/bin", "/usr/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.exists())
        .ok_or_else(|| format!("`{name}` is not installed"))
}

fn repo_arg(spec: &SourceSpec, ctx: &HostCtx) -> String {
    match local_path(spec) {
        Some(p) if !ctx.is_live() => ctx.path(&p).display().to_string(),
        _ => spec.location.clone(),
    }
}

fn restic_cmd(bin: &Path, spec: &SourceSpec, ctx: &HostCtx, pass: Option<&Path>) -> Command {
    let mut c = Command::new(bin);
    // The repository and password travel in the environment, not in argv.
    c.env("RESTIC_REPOSITORY", repo_arg(spec, ctx));
    if let Some(f) = pass {
        c.env("RESTIC_PASSWORD_FILE", f)
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_COMMAND");
    }
    c.arg("--no-lock").arg("--quiet");
    c
}

async fn restic(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    sf: &mut SourceFacts,
    memo: &RunMemo,
) -> Result<(), String> {
    let bin = find_program("restic")?;
    let timeout = Duration::from_secs(p.command_timeout_seconds);
    let pass = spec.password_file.as_ref().map(|f| ctx.path(f));
    if let Some(f) = &pass {
        if !f.exists() {
            return Err(format!(
                "password file `{}` does not exist",
                spec.password_file.as_deref().unwrap_or("")
            ));
        }
    }
    let scrub = Scrub::new(spec, pass.as_deref());
    sf.encryption_mode = Some("restic (always encrypted)".into());

    // The listing: from the cache when the local repository has not changed;
    // from restic otherwise, and wherever the cache cannot be used.
    let listed = match (local_path(spec), &pass) {
        (Some(local), Some(pass_file)) => {
            let file = cache::file(
                &ctx.state_dir,
                &repo_arg(spec, ctx),
                pass_file,
                spec.host.as_deref(),
            );
            // One check of a run at a time reads and writes one cache file.
            let cell = memo.cell::<tokio::sync::Mutex<()>>(&format!(
                "backup_freshness cache {}",
                file.display()
            ));
            let lock = cell
                .get_or_init(|| async { tokio::sync::Mutex::new(()) })
                .await;
            let _held = lock.lock().await;
            let cached = Cached {
                file,
                repo: ctx.path(&local),
                pass: pass_file.clone(),
                bin: bin.clone(),
                host: spec.host.clone(),
            };
            list_cached(p, spec, ctx, sf, memo, &cached, &scrub, timeout).await?
        }
        _ => false,
    };
    if !listed {
        sf.sets = list_snapshots(spec, ctx, memo, &bin, pass.as_deref(), &scrub, timeout).await?;
        if let Some(n) = sf.sets.iter().max_by_key(|s| s.time).cloned() {
            sf.required_paths = list_paths(
                p,
                spec,
                ctx,
                memo,
                &bin,
                pass.as_deref(),
                &scrub,
                timeout,
                &n.id,
            )
            .await?;
        }
    }

    if let Some(subset) = &p.read_data_subset {
        let mut c = Command::new(&bin);
        c.env("RESTIC_REPOSITORY", repo_arg(spec, ctx));
        if let Some(f) = &pass {
            c.env("RESTIC_PASSWORD_FILE", f)
                .env_remove("RESTIC_PASSWORD")
                .env_remove("RESTIC_PASSWORD_COMMAND");
        }
        c.args(["check", "--quiet", "--read-data-subset", subset]);
        let ran = run(c, "restic check", timeout, &scrub).await?;
        let detail = if ran.ok { String::new() } else { tail(&ran) };
        // A locked or unreachable repository is not damage: report it as an error.
        if !ran.ok
            && (detail.contains("unable to create lock")
                || detail.contains("repository is already locked"))
        {
            return Err(format!("`restic check` could not run: {detail}"));
        }
        sf.data_check = Some(DataCheck {
            subset: subset.clone(),
            ok: ran.ok,
            detail,
        });
    }
    Ok(())
}

/// `restic snapshots --json` (shared within the run).
async fn list_snapshots(
    spec: &SourceSpec,
    ctx: &HostCtx,
    memo: &RunMemo,
    bin: &Path,
    pass: Option<&Path>,
    scrub: &Scrub,
    timeout: Duration,
) -> Result<Vec<BackupSet>, String> {
    let mut args = vec!["snapshots", "--json"];
    if let Some(h) = &spec.host {
        args.extend(["--host", h]);
    }
    let mut c = restic_cmd(bin, spec, ctx, pass);
    c.args(&args);
    let key = restic_key(bin, spec, ctx, pass, &args);
    let ran = run_shared(memo, &key, c, "restic snapshots", timeout, scrub).await?;
    if !ran.ok {
        return Err(format!("`restic snapshots` failed: {}", tail(&ran)));
    }
    parse_restic_snapshots(&ran.stdout).map_err(|e| e.to_string())
}

/// `restic ls` of one snapshot, reduced to which `required_paths` it holds
/// (shared within the run); none asked, nothing run.
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one restic invocation, shared by its two callers"
)]
async fn list_paths(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    memo: &RunMemo,
    bin: &Path,
    pass: Option<&Path>,
    scrub: &Scrub,
    timeout: Duration,
    snapshot: &str,
) -> Result<Vec<PathPresence>, String> {
    if p.required_paths.is_empty() {
        return Ok(Vec::new());
    }
    let mut args = vec!["ls", "--json", snapshot];
    args.extend(p.required_paths.iter().map(String::as_str));
    let mut c = restic_cmd(bin, spec, ctx, pass);
    c.args(&args);
    let key = restic_key(bin, spec, ctx, pass, &args);
    let ran = run_shared(memo, &key, c, "restic ls", timeout, scrub).await?;
    if !ran.ok {
        return Err(format!("`restic ls {snapshot}` failed: {}", tail(&ran)));
    }
    let listed: Vec<String> = ran.stdout.lines().filter_map(restic_ls_path).collect();
    Ok(p.required_paths
        .iter()
        .map(|r| PathPresence {
            path: r.clone(),
            present: listed.iter().any(|l| path_covers(l, r)),
        })
        .collect())
}

/// A local repository's listing cache and what its fingerprint reads.
struct Cached {
    file: PathBuf,
    /// The repository's directory under the check's root.
    repo: PathBuf,
    pass: PathBuf,
    bin: PathBuf,
    host: Option<String>,
}

impl Cached {
    /// The fingerprint now; `None` (logged) when it cannot be read.
    async fn fingerprint(&self) -> Option<cache::Fingerprint> {
        let (repo, pass, bin, host) = (
            self.repo.clone(),
            self.pass.clone(),
            self.bin.clone(),
            self.host.clone(),
        );
        let got = blocking(move || {
            cache::fingerprint(&cache::Inputs {
                repo: &repo,
                password_file: &pass,
                restic: &bin,
                host: host.as_deref(),
            })
            .map_err(|e| io_reason(&e))
        })
        .await;
        match got {
            Ok(f) => Some(f),
            Err(e) => {
                tracing::warn!(
                    "backup_freshness: cannot fingerprint restic repository `{}` ({e}); listing it with restic, nothing cached",
                    self.repo.display()
                );
                None
            }
        }
    }

    async fn load(&self) -> Option<cache::Entry> {
        let file = self.file.clone();
        match blocking(move || Ok(cache::load(&file))).await {
            Ok(Ok(e)) => e,
            Ok(Err(e)) | Err(e) => {
                tracing::warn!(
                    "backup_freshness: discarding the restic listing cache `{}` ({e}); listing with restic",
                    self.file.display()
                );
                None
            }
        }
    }

    /// Saves `entry` if the repository still has the fingerprint it was
    /// listed under; a failure is logged and changes nothing else.
    async fn save(&self, entry: cache::Entry) {
        match self.fingerprint().await {
            Some(now) if now.hash == entry.fingerprint => {}
            _ => {
                tracing::info!(
                    "backup_freshness: restic repository `{}` changed while it was listed; not cached",
                    self.repo.display()
                );
                return;
            }
        }
        let file = self.file.clone();
        if let Err(e) = blocking(move || cache::save(&file, &entry)).await {
            tracing::warn!(
                "backup_freshness: cannot write the restic listing cache `{}`: {e}",
                self.file.display()
            );
        }
    }
}

/// The listing of a local repository: from the cache when its fingerprint is
/// unchanged, else from restic (and then cached). Nothing is cached from a
/// restic that failed, so the cache never answers where restic would not.
/// `Ok(false)`: the fingerprint cannot be read, nothing was listed (the
/// caller lists with restic, uncached).
#[expect(
    clippy::too_many_arguments,
    reason = "the pieces of one restic invocation, shared by its two callers"
)]
async fn list_cached(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    sf: &mut SourceFacts,
    memo: &RunMemo,
    cached: &Cached,
    scrub: &Scrub,
    timeout: Duration,
) -> Result<bool, String> {
    let pass = Some(cached.pass.as_path());
    // Taken before restic runs: a snapshot written meanwhile changes it, so
    // the listing is saved only if the fingerprint is the same afterwards.
    let Some(fp) = cached.fingerprint().await else {
        return Ok(false);
    };
    let (mut entry, from_cache) = match cached.load().await {
        Some(e) if e.fingerprint == fp.hash => (e, true),
        _ => {
            let listed_at = chrono::Utc::now();
            let sets = list_snapshots(spec, ctx, memo, &cached.bin, pass, scrub, timeout).await?;
            (cache::Entry::new(fp.hash.clone(), listed_at, sets), false)
        }
    };
    let mut dirty = !from_cache;
    sf.sets = entry.sets.clone();
    let mut paths_cached = false;
    if let (false, Some(n)) = (
        p.required_paths.is_empty(),
        sf.sets.iter().max_by_key(|s| s.time).cloned(),
    ) {
        match entry.ls(&n.id, &p.required_paths) {
            Some(found) => {
                sf.required_paths = found;
                paths_cached = true;
            }
            None => {
                let found =
                    list_paths(p, spec, ctx, memo, &cached.bin, pass, scrub, timeout, &n.id)
                        .await?;
                entry.add_ls(&n.id, found.clone());
                sf.required_paths = found;
                dirty = true;
            }
        }
    }
    if from_cache {
        sf.cached_listing = Some(CachedListing {
            listed_at: entry.listed_at,
            unchanged_since: fp.unchanged_since,
            required_paths_cached: paths_cached,
        });
    }
    if dirty {
        cached.save(entry).await;
    }
    Ok(true)
}

/// Quotes a path for borg's shlex-split `BORG_PASSCOMMAND`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

fn borg_cmd(bin: &Path, pass: Option<&Path>) -> Command {
    let mut c = Command::new(bin);
    if let Some(f) = pass {
        c.env(
            "BORG_PASSCOMMAND",
            format!("cat {}", shell_quote(&f.display().to_string())),
        )
        .env_remove("BORG_PASSPHRASE");
    }
    // Reading only: answer borg's interactive questions without a terminal.
    c.env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
        .env("BORG_RELOCATED_REPO_ACCESS_IS_OK", "no")
        .env("BORG_CHECK_I_KNOW_WHAT_I_AM_DOING", "NO");
    c
}

async fn borg(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    zone: Zone,
    sf: &mut SourceFacts,
) -> Result<(), String> {
    let bin = find_program("borg")?;
    let timeout = Duration::from_secs(p.command_timeout_seconds);
    let pass = spec.password_file.as_ref().map(|f| ctx.path(f));
    let scrub = Scrub::new(spec, pass.as_deref());
    let repo = repo_arg(spec, ctx);

    let mut c = borg_cmd(&bin, pass.as_deref());
    c.args(["info", "--json", &repo]);
    let ran = run(c, "borg info", timeout, &scrub).await?;
    if !ran.ok {
        return Err(format!("`borg info` failed: {}", tail(&ran)));
    }
    sf.encryption_mode = Some(parse_borg_encryption(&ran.stdout).map_err(|e| e.to_string())?);

    let mut c = borg_cmd(&bin, pass.as_deref());
    c.args(["list", "--json", &repo]);
    let ran = run(c, "borg list", timeout, &scrub).await?;
    if !ran.ok {
        return Err(format!("`borg list` failed: {}", tail(&ran)));
    }
    sf.sets = parse_borg_list(&ran.stdout, zone).map_err(|e| e.to_string())?;

    if let (false, Some(n)) = (
        p.required_paths.is_empty(),
        sf.sets.iter().max_by_key(|s| s.time).cloned(),
    ) {
        let mut c = borg_cmd(&bin, pass.as_deref());
        c.args(["list", "--json-lines", &format!("{repo}::{}", n.id)]);
        c.args(p.required_paths.iter().map(|r| r.trim_start_matches('/')));
        let ran = run(c, "borg list (archive)", timeout, &scrub).await?;
        if !ran.ok {
            return Err(format!("`borg list {}` failed: {}", n.id, tail(&ran)));
        }
        let listed: Vec<String> = ran
            .stdout
            .lines()
            .filter_map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).ok()?;
                Some(format!("/{}", v.get("path")?.as_str()?))
            })
            .collect();
        sf.required_paths = p
            .required_paths
            .iter()
            .map(|r| PathPresence {
                path: r.clone(),
                present: listed.iter().any(|l| path_covers(l, r)),
            })
            .collect();
    }
    Ok(())
}

fn directory(
    p: &Params,
    spec: &SourceSpec,
    ctx: &HostCtx,
    zone: Zone,
    sf: &mut SourceFacts,
) -> Result<(), String> {
    let dir = ctx.path(&spec.location);
    if !dir.is_dir() {
        return Err(format!("`{}` is not a directory", spec.location));
    }
    if let Some(manifest) = &spec.manifest {
        let mpath = if manifest.starts_with('/') {
            ctx.path(manifest)
        } else {
            dir.join(manifest)
        };
        let text = std::fs::read_to_string(&mpath)
            .map_err(|e| format!("cannot read manifest `{manifest}`: {}", io_reason(&e)))?;
        let entries = parse_manifest(&text, zone).map_err(|e| e.to_string())?;
        if !p.required_paths.is_empty() {
            return Err(
                "`required_paths` cannot be checked against a manifest of archive files".into(),
            );
        }
        let base = mpath.parent().map(Path::to_path_buf).unwrap_or(dir.clone());
        sf.sets = entries
            .iter()
            .map(|e| BackupSet {
                id: e.file.clone(),
                time: e.time,
                host: None,
            })
            .collect();
        if p.verify_checksums {
            if let Some(newest) = entries.iter().max_by_key(|e| e.time) {
                let file = base.join(&newest.file);
                let (ok, detail) = match sha256_file(&file) {
                    Ok(sum) if sum == newest.sha256 => (true, String::new()),
                    Ok(sum) => (
                        false,
                        format!("SHA-256 is {sum}, the manifest says {}", newest.sha256),
                    ),
                    Err(e) => (false, e),
                };
                sf.checksum = Some(Checksum {
                    set: newest.file.clone(),
                    ok,
                    detail,
                });
            }
        }
        return Ok(());
    }
    let rd = std::fs::read_dir(&dir)
        .map_err(|e| format!("cannot list `{}`: {}", spec.location, io_reason(&e)))?;
    let mut named: Vec<(BackupSet, PathBuf)> = Vec::new();
    for entry in rd.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if let Some(time) = set_time_from_name(&name, zone) {
            named.push((
                BackupSet {
                    id: name,
                    time,
                    host: None,
                },
                entry.path(),
            ));
        }
    }
    named.sort_by_key(|(s, _)| s.time);
    if let Some((_, newest)) = named.last() {
        sf.required_paths = p
            .required_paths
            .iter()
            .map(|r| PathPresence {
                path: r.clone(),
                present: newest.join(r.trim_start_matches('/')).exists(),
            })
            .collect();
    }
    sf.sets = named.into_iter().map(|(s, _)| s).collect();
    Ok(())
}

fn sha256_file(path: &Path) -> Result<String, String> {
    let mut f = std::fs::File::open(path)
        .map_err(|e| format!("cannot open `{}`: {}", path.display(), io_reason(&e)))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)
        .map_err(|e| format!("cannot read `{}`: {}", path.display(), io_reason(&e)))?;
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_and_longest_prefix() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n\
                    40 22 0:50 / /mnt/nas rw,relatime shared:9 - nfs4 nas:/export rw,vers=4.2,sec=sys\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 2);
        assert_eq!(mount_of(&m, "/mnt/nas/restic").unwrap().fs_type, "nfs4");
        assert_eq!(mount_of(&m, "/mnt/nassy").unwrap().fs_type, "ext4");
        assert!(mount_of(&m, "/mnt/nas/x")
            .unwrap()
            .options
            .contains("sec=sys"));
    }

    #[test]
    fn scrub_cuts_password_from_location() {
        let spec = SourceSpec {
            kind: Kind::Restic,
            location: "rest:https://u:hunter22@h/r".into(),
            password_file: None,
            site: None,
            local: false,
            host: None,
            manifest: None,
        };
        let s = Scrub::new(&spec, None);
        assert_eq!(s.clean("x hunter22 y"), "x [REDACTED] y");
    }
}
