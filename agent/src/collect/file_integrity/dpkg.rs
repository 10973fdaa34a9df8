//! dpkg_verify: every installed package's files hashed against dpkg's
//! md5sums (`status`, `info/*.md5sums`, `diversions`), on the check's pool,
//! with unchanged files' outcomes taken from the verification [`cache`].

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use md5::Md5;
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use vigil_rules::checks::file_integrity::{Dpkg, DpkgProblem, Params, ProblemKind};

use super::cache::{self, Cache, Outcome, Rec, Unusable};
use super::with_buf;
use crate::collect::host::{io_reason, stat_identity, HostCtx};
use crate::pace::Pace;

/// One file to verify. Paths stay bytes, as dpkg stores them (a path need
/// not be UTF-8): they become text only in a problem's report. They are
/// kept end to end in one buffer ([`Items::paths`]), not one allocation per
/// file, and only for the files being verified (see [`CHUNK`]).
struct Item {
    /// Index into the package names.
    pkg: u32,
    /// Where the absolute path as dpkg lists it is in [`Items::paths`].
    start: u32,
    len: u32,
    /// The expected MD5; `None` when dpkg's entry is not hex (never matches).
    md5: Option<[u8; 16]>,
    conffile: bool,
}

#[derive(Default)]
struct Items {
    paths: Vec<u8>,
    list: Vec<Item>,
}

impl Items {
    /// Adds a file whose path is `parts` joined.
    fn push(&mut self, pkg: u32, parts: &[&[u8]], md5: Option<[u8; 16]>, conffile: bool) {
        let start = self.paths.len();
        for p in parts {
            self.paths.extend_from_slice(p);
        }
        // a path buffer past 4 GiB cannot come from a real dpkg database
        let (Ok(start), Ok(len)) = (
            u32::try_from(start),
            u32::try_from(self.paths.len() - start),
        ) else {
            self.paths.truncate(start);
            return;
        };
        self.list.push(Item {
            pkg,
            start,
            len,
            md5,
            conffile,
        });
    }

    fn clear(&mut self) {
        self.paths.clear();
        self.list.clear();
    }

    fn path(&self, it: &Item) -> &[u8] {
        let start = it.start as usize;
        self.paths
            .get(start..start + it.len as usize)
            .unwrap_or_default()
    }
}

/// What the status file says: installed packages and their live conffiles.
#[derive(Default)]
struct Status {
    installed: HashSet<String>,
    /// (package, path, md5)
    conffiles: Vec<(String, String, String)>,
}

fn parse_status(text: &str) -> Status {
    let mut st = Status::default();
    for stanza in text.split("\n\n") {
        let mut package = "";
        let mut installed = false;
        let mut conffiles = Vec::new();
        let mut in_conffiles = false;
        for line in stanza.lines() {
            if let Some(rest) = line.strip_prefix(' ') {
                if in_conffiles {
                    let f: Vec<&str> = rest.split_whitespace().collect();
                    if let [path, md5, flags @ ..] = f.as_slice() {
                        let live = !flags
                            .iter()
                            .any(|fl| *fl == "obsolete" || *fl == "remove-on-upgrade");
                        if live && md5.len() == 32 {
                            conffiles.push(((*path).to_owned(), (*md5).to_owned()));
                        }
                    }
                }
                continue;
            }
            in_conffiles = false;
            if let Some(v) = line.strip_prefix("Package:") {
                package = v.trim();
            } else if let Some(v) = line.strip_prefix("Status:") {
                let state = v.split_whitespace().nth(2).unwrap_or_default();
                installed = matches!(
                    state,
                    "installed" | "triggers-awaited" | "triggers-pending" | "half-configured"
                );
            } else if line.starts_with("Conffiles:") {
                in_conffiles = true;
            }
        }
        if installed && !package.is_empty() {
            st.installed.insert(package.to_owned());
            st.conffiles.extend(
                conffiles
                    .into_iter()
                    .map(|(p, m)| (package.to_owned(), p, m)),
            );
        }
    }
    st
}

/// `dpkg-divert` entries: diverted path to (new path, diverting package).
fn parse_diversions(text: &[u8]) -> HashMap<Vec<u8>, (Vec<u8>, String)> {
    let lines: Vec<&[u8]> = text.split(|b| *b == b'\n').collect();
    lines
        .chunks(3)
        .filter_map(|c| match c {
            [from, to, pkg] if !from.is_empty() => Some((
                from.to_vec(),
                (to.to_vec(), String::from_utf8_lossy(pkg).into_owned()),
            )),
            _ => None,
        })
        .collect()
}

/// The 16 bytes of a 32-digit hex MD5.
fn parse_md5(hex: &[u8]) -> Option<[u8; 16]> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(hex, &mut out).ok().map(|()| out)
}

/// The entries of one `*.md5sums` file (`<md5>  <path without leading />`
/// per line), read straight from its bytes, leaving out the package's
/// conffiles (judged from the status file instead).
fn parse_md5sums(text: &[u8], pkg: u32, conffiles: &HashSet<&[u8]>, out: &mut Items) {
    for line in text.split(|b| *b == b'\n') {
        let (Some(md5), Some(rest)) = (line.get(..32), line.get(32..)) else {
            continue;
        };
        let rel = rest.trim_ascii_start();
        // the separator is whitespace; a longer first word is not an md5
        if rel.len() == rest.len() || rel.is_empty() {
            continue;
        }
        let rel = rel.strip_suffix(b"\r").unwrap_or(rel);
        if conffiles.contains(rel) {
            continue;
        }
        out.push(pkg, &[b"/", rel], parse_md5(md5), false);
    }
}

/// Files verified together, at most, from one `*.md5sums` (one is 5 MB /
/// 40 000 files on the benchmark host): the list held per package being
/// verified stays under half a megabyte.
const CHUNK: usize = 4096;

/// Reads the next [`CHUNK`] entries of a `*.md5sums` file, line by line;
/// `false` at its end.
fn read_md5sums(
    r: &mut impl std::io::BufRead,
    line: &mut Vec<u8>,
    pkg: u32,
    conffiles: &HashSet<&[u8]>,
    out: &mut Items,
) -> std::io::Result<bool> {
    while out.list.len() < CHUNK {
        line.clear();
        if r.read_until(b'\n', line)? == 0 {
            return Ok(false);
        }
        parse_md5sums(line, pkg, conffiles, out);
    }
    Ok(true)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Verifies every installed package's files against dpkg's md5sums, taking
/// unchanged files' outcomes from the verification cache unless this run
/// is a full pass (no usable cache, or its last full pass `full_pass_every`
/// ago or more).
pub fn dpkg_verify(
    admin: &Path,
    full_pass_every: std::time::Duration,
    ctx: &HostCtx,
) -> Result<Dpkg, String> {
    let started = chrono::Utc::now();
    let status_path = admin.join("status");
    let status = ctx.pace.read_file(&status_path).map_err(|e| {
        format!(
            "cannot read dpkg status `{}`: {}",
            ctx.display(&status_path),
            io_reason(&e)
        )
    })?;
    let status = parse_status(&String::from_utf8_lossy(&status));
    let diversions = ctx
        .pace
        .read_file(&admin.join("diversions"))
        .map(|b| parse_diversions(&b))
        .unwrap_or_default();
    // conffile paths without their leading `/`, as md5sums lists them
    let conffile_paths: HashSet<&[u8]> = status
        .conffiles
        .iter()
        .map(|(_, p, _)| p.trim_start_matches('/').as_bytes())
        .collect();

    let info = admin.join("info");
    let rd = std::fs::read_dir(&info)
        .map_err(|e| format!("cannot list `{}`: {}", ctx.display(&info), io_reason(&e)))?;
    let mut md5sums: Vec<(String, PathBuf)> = rd
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let pkg = name.strip_suffix(".md5sums")?;
            let pkg = pkg.split(':').next().unwrap_or(pkg).to_owned();
            status.installed.contains(&pkg).then(|| (pkg, e.path()))
        })
        .collect();
    md5sums.sort();

    // package names, indexed by `Item::pkg`
    let mut names: Vec<&str> = Vec::new();
    let mut index: HashMap<&str, u32> = HashMap::new();
    let mut intern = |name| {
        *index.entry(name).or_insert_with(|| {
            names.push(name);
            u32::try_from(names.len() - 1).unwrap_or(u32::MAX)
        })
    };
    let jobs: Vec<(u32, &Path)> = md5sums
        .iter()
        .map(|(pkg, file)| (intern(pkg.as_str()), file.as_path()))
        .collect();
    ctx.pace.expect_items(jobs.len() as u64, "packages");
    let mut conffiles = Items::default();
    for (pkg, path, md5) in &status.conffiles {
        let pkg = intern(pkg.as_str());
        conffiles.push(pkg, &[path.as_bytes()], parse_md5(md5.as_bytes()), true);
    }
    let conffiles_checked = conffiles.list.len() as u64;
    let package_count = names.len() as u64;

    let cache_file = cache_path(ctx, admin);
    let (old, full_pass_reason) = load_cache(&cache_file, full_pass_every, started, ctx);
    // Files changed this close to the run may change again within the
    // filesystem's timestamp granularity and keep their identity: their
    // outcome is not kept (hashed again next run).
    let fresh_from = ns(
        started.timestamp(),
        i64::from(started.timestamp_subsec_nanos()),
    ) - i128::from(FRESH_SECS) * 1_000_000_000;
    // the next run's cache, filled as packages finish (sorted at the end)
    let recs = std::sync::Mutex::new(Vec::with_capacity(old.as_ref().map_or(0, Cache::len)));

    // One package's files at a time per thread, its own files in parallel
    // too (one package can hold half a host's files), [`CHUNK`] at a time:
    // only the files being verified are listed in memory, and only problems
    // and cache records are kept.
    let verify = |items: &Items| -> Acc {
        let mut acc = items
            .list
            .par_iter()
            .fold(Acc::default, |mut acc, it| {
                let package = names.get(it.pkg as usize).copied().unwrap_or_default();
                let listed = items.path(it);
                let actual: &[u8] = match diversions.get(listed) {
                    Some((to, by)) if by != package => to,
                    _ => listed,
                };
                let problem = |kind, reason| DpkgProblem {
                    package: package.to_owned(),
                    path: text(listed),
                    kind,
                    conffile: it.conffile,
                    reason,
                };
                let real = ctx.path(std::ffi::OsStr::from_bytes(actual));
                let seen = verify_one(it, actual, &real, old.as_ref(), fresh_from, &ctx.pace);
                match seen.result {
                    Ok(Outcome::Matched) => {}
                    Ok(Outcome::Mismatched) => {
                        acc.problems.push(problem(ProblemKind::Changed, None));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        acc.problems.push(problem(ProblemKind::Missing, None));
                    }
                    Err(e) => acc
                        .problems
                        .push(problem(ProblemKind::Unreadable, Some(io_reason(&e)))),
                }
                acc.files += 1;
                acc.bytes += seen.bytes;
                acc.hashed += u64::from(seen.hashed);
                acc.cached += u64::from(seen.cached);
                acc.recs.extend(seen.rec);
                acc
            })
            .reduce(Acc::default, Acc::merge);
        if let Ok(mut all) = recs.lock() {
            all.append(&mut acc.recs);
        }
        acc.recs = Vec::new();
        acc
    };
    let per_package: Vec<Result<Acc, String>> = jobs
        .par_iter()
        .map(|(pkg, file)| {
            let failed = |e: std::io::Error| {
                format!("cannot read `{}`: {}", ctx.display(file), io_reason(&e))
            };
            let f = ctx
                .pace
                .check()
                .and_then(|()| std::fs::File::open(file))
                .map_err(failed)?;
            let mut r = std::io::BufReader::with_capacity(64 << 10, ctx.pace.reader(f));
            let (mut items, mut line, mut acc) = (Items::default(), Vec::new(), Acc::default());
            loop {
                items.clear();
                let more = read_md5sums(&mut r, &mut line, *pkg, &conffile_paths, &mut items)
                    .map_err(failed)?;
                acc = acc.merge(verify(&items));
                if !more {
                    ctx.pace.items_done(1);
                    return Ok(acc);
                }
            }
        })
        .collect();
    let mut done = Acc::default();
    let mut errors = Vec::new();
    for r in per_package {
        match r {
            Ok(acc) => done = done.merge(acc),
            Err(e) => errors.push(e),
        }
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let files_checked = done.files;
    done = done.merge(verify(&conffiles));
    drop(conffiles);
    let mut recs = recs.into_inner().unwrap_or_else(|e| e.into_inner());
    let Acc {
        bytes: bytes_read,
        hashed: files_hashed,
        cached: files_from_cache,
        problems,
        ..
    } = done;
    let full_pass = old.is_none();
    // whole seconds, as the cache keeps it
    let last_full_pass = chrono::DateTime::from_timestamp(
        old.as_ref()
            .map_or(started.timestamp(), |c| c.last_full_pass),
        0,
    );
    drop(old);
    // An interrupted run hashed only some files: its cache would claim a
    // full pass that did not happen.
    let mut cache_warning = None;
    if !ctx.pace.is_stopped() {
        cache::sort(&mut recs);
        let stamp = last_full_pass.map_or(0, |t| t.timestamp());
        if let Err(e) = cache::save(&cache_file, stamp, &recs) {
            let w = format!(
                "cannot write the verification cache `{}`: {}; the next run hashes every file again",
                cache_file.display(),
                io_reason(&e)
            );
            tracing::warn!("{w}");
            cache_warning = Some(w);
        }
    }
    Ok(Dpkg {
        packages: package_count,
        files_checked,
        conffiles_checked,
        bytes_read,
        problems,
        files_hashed,
        files_from_cache,
        full_pass,
        full_pass_reason,
        last_full_pass,
        cache_warning,
    })
}

/// How recently (seconds before the run) a file may have changed and still
/// have its outcome cached: more than any local filesystem's timestamp
/// granularity (a jiffy on ext4, 1 s on ext3, 2 s on FAT).
const FRESH_SECS: i64 = 2;

fn ns(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

/// What the parallel pass keeps, folded as it goes.
#[derive(Default)]
struct Acc {
    files: u64,
    bytes: u64,
    hashed: u64,
    cached: u64,
    problems: Vec<DpkgProblem>,
    recs: Vec<Rec>,
}

impl Acc {
    fn merge(mut self, mut other: Acc) -> Acc {
        self.files += other.files;
        self.bytes += other.bytes;
        self.hashed += other.hashed;
        self.cached += other.cached;
        self.problems.append(&mut other.problems);
        if self.recs.len() < other.recs.len() {
            std::mem::swap(&mut self.recs, &mut other.recs);
        }
        self.recs.append(&mut other.recs);
        self
    }
}

/// What became of one file.
struct Seen {
    result: std::io::Result<Outcome>,
    bytes: u64,
    hashed: bool,
    cached: bool,
    /// The file's record for the next run's cache.
    rec: Option<Rec>,
}

/// One file: its cached outcome when the cache has its key with its
/// present stat identity, else its MD5.
fn verify_one(
    it: &Item,
    actual: &[u8],
    real: &Path,
    old: Option<&Cache>,
    fresh_from: i128,
    pace: &Pace,
) -> Seen {
    let key = it.md5.map(|m| cache::key(actual, &m));
    let seen = |result, rec| Seen {
        result,
        bytes: 0,
        hashed: false,
        cached: false,
        rec,
    };
    if let (Some(old), Some(key)) = (old, key) {
        if let Some(r) = old.get(&key) {
            if let Err(e) = pace.check() {
                return seen(Err(e), None);
            }
            match std::fs::metadata(real) {
                Ok(md) if stat_identity(&md) == r.ident => {
                    return Seen {
                        cached: true,
                        ..seen(Ok(r.outcome), Some(*r))
                    };
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return seen(Err(e), None),
                // changed, or a stat error that opening will report
                _ => {}
            }
        }
    }
    let file = match pace.check().and_then(|()| std::fs::File::open(real)) {
        Ok(f) => f,
        Err(e) => return seen(Err(e), None),
    };
    let before = file.metadata();
    // the read buffer only now: a run that takes every file from the cache
    // never allocates one
    let (sum, n) = match with_buf(|buf| md5_reader(&file, buf, pace)) {
        Ok(x) => x,
        Err(e) => return seen(Err(e), None),
    };
    let outcome = if Some(sum) == it.md5 {
        Outcome::Matched
    } else {
        Outcome::Mismatched
    };
    // Kept only when the file did not change while it was read and did not
    // change just before the run.
    let rec = match (key, before, file.metadata()) {
        (Some(key), Ok(b), Ok(a))
            if stat_identity(&b) == stat_identity(&a)
                && ns(b.ctime(), b.ctime_nsec()) < fresh_from =>
        {
            Some(Rec {
                key,
                ident: stat_identity(&b),
                outcome,
            })
        }
        _ => None,
    };
    Seen {
        result: Ok(outcome),
        bytes: n,
        hashed: true,
        cached: false,
        rec,
    }
}

/// The cache file of a dpkg database (its path as the agent sees it, so a
/// fixture root has its own).
/// Whether dpkg_verify's cache, by its header alone, is recent enough for
/// this run not to be a full pass (it may still turn out unusable; that run
/// is then a full pass on fewer threads: slower, not less thorough).
pub(super) fn cached_run_likely(p: &Params, ctx: &HostCtx) -> bool {
    let file = cache_path(ctx, &ctx.path(&p.dpkg_admin_dir));
    let Some(last) = std::fs::File::open(file)
        .ok()
        .and_then(|f| cache::last_full_pass(f).ok())
    else {
        return false;
    };
    full_pass_due(last, p.full_pass_every(), chrono::Utc::now()).is_none()
}

fn cache_path(ctx: &HostCtx, admin: &Path) -> PathBuf {
    let key = hex::encode(Sha256::digest(admin.as_os_str().as_bytes()));
    ctx.state_dir
        .join("file_integrity")
        .join(format!("dpkg-{}.cache", key.get(..16).unwrap_or(&key)))
}

/// The cache to use this run, or `None` and why this run is a full pass.
fn load_cache(
    file: &Path,
    every: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
    ctx: &HostCtx,
) -> (Option<Cache>, Option<String>) {
    let shown = file.display();
    let read = std::fs::File::open(file).map(|f| cache::decode(ctx.pace.reader(f)));
    let c = match read {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (None, Some("no verification cache yet".into()))
        }
        Err(e) => {
            let why = format!(
                "cannot read the verification cache `{shown}`: {}",
                io_reason(&e)
            );
            tracing::warn!("{why}; hashing every file");
            return (None, Some(why));
        }
        Ok(Err(Unusable::Corrupt(why))) => {
            tracing::warn!(
                "discarding the corrupt verification cache `{shown}` ({why}); hashing every file"
            );
            return (
                None,
                Some(format!(
                    "the verification cache `{shown}` was corrupt ({why}) and was discarded"
                )),
            );
        }
        Ok(Err(Unusable::Version(v))) => {
            tracing::info!(
                "the verification cache `{shown}` has format version {v}; hashing every file"
            );
            return (
                None,
                Some(format!(
                    "the verification cache has format version {v}, this agent writes {}",
                    cache::VERSION
                )),
            );
        }
        Ok(Ok(c)) => c,
    };
    match full_pass_due(c.last_full_pass, every, now) {
        Some(why) => (None, Some(why)),
        None => (Some(c), None),
    }
}

/// Why a cache whose last full pass was at `last` (Unix seconds) calls for
/// a full pass `now`; `None` while it can be used.
fn full_pass_due(
    last: i64,
    every: std::time::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Option<String> {
    let age = now.timestamp().saturating_sub(last);
    let every_s = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
    if age < -60 {
        return Some("the last full pass is dated in the future (was the clock set back?)".into());
    }
    if age >= every_s {
        let age = std::time::Duration::from_secs(age.unsigned_abs());
        return Some(format!(
            "the last full pass was {} ago; `full_pass_every` is {}",
            humantime::format_duration(age),
            humantime::format_duration(every)
        ));
    }
    None
}

fn md5_reader(f: &std::fs::File, buf: &mut [u8], pace: &Pace) -> std::io::Result<([u8; 16], u64)> {
    let mut f = pace.reader(f);
    let mut h = Md5::new();
    let mut n = 0u64;
    loop {
        let k = f.read(buf)?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or_default());
        n += k as u64;
    }
    Ok((h.finalize().into(), n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_is_used_only_within_full_pass_every_of_its_last_full_pass() {
        let dir = tempfile::tempdir().unwrap();
        let ctx = HostCtx {
            root: dir.path().to_path_buf(),
            state_dir: dir.path().join("state"),
            pace: Pace::default(),
        };
        let file = dir.path().join("c.cache");
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        let day = std::time::Duration::from_secs(86_400);
        let at = |last: i64| {
            cache::save(&file, last, &[]).unwrap();
            load_cache(&file, day, now, &ctx)
        };
        let (c, why) = at(1_800_000_000 - 3600);
        assert!(c.is_some() && why.is_none());
        let (c, why) = at(1_800_000_000 - 86_400);
        assert!(c.is_none());
        assert_eq!(
            why.unwrap(),
            "the last full pass was 1day ago; `full_pass_every` is 1day"
        );
        // a clock set back: not trusted
        let (c, why) = at(1_800_000_000 + 3600);
        assert!(c.is_none());
        assert!(why.unwrap().contains("in the future"));
        // missing, then not a cache
        std::fs::remove_file(&file).unwrap();
        assert_eq!(
            load_cache(&file, day, now, &ctx).1.unwrap(),
            "no verification cache yet"
        );
        std::fs::write(&file, "{}").unwrap();
        let (c, why) = load_cache(&file, day, now, &ctx);
        assert!(c.is_none());
        assert!(why.unwrap().contains("was corrupt"));
    }

    #[test]
    fn status_gives_installed_packages_and_live_conffiles() {
        let st = parse_status(
            "Package: nginx\nStatus: install ok installed\nConffiles:\n /etc/nginx/nginx.conf 0123456789abcdef0123456789abcdef\n /etc/old 0123456789abcdef0123456789abcdef obsolete\nVersion: 1\n\nPackage: gone\nStatus: deinstall ok config-files\nConffiles:\n /etc/gone 0123456789abcdef0123456789abcdef\n",
        );
        assert!(st.installed.contains("nginx"));
        assert!(!st.installed.contains("gone"));
        assert_eq!(st.conffiles.len(), 1);
        assert_eq!(st.conffiles[0].1, "/etc/nginx/nginx.conf");
    }

    #[test]
    fn md5sums_lines_become_items_without_the_conffiles() {
        let conffiles: HashSet<&[u8]> = [&b"etc/a.conf"[..]].into_iter().collect();
        let mut items = Items::default();
        parse_md5sums(
            b"22c3683b094136c3398391ae71b20f04  usr/bin/hello\n\
              00000000000000000000000000000000  etc/a.conf\n\
              zz000000000000000000000000000000  usr/bin/odd\n\
              22c3683b094136c3398391ae71b20f04x usr/bin/long-md5\n\
              22c3683b094136c3398391ae71b20f04  usr/share/caf\xe9 file\n\
              short  usr/x\n\n",
            7,
            &conffiles,
            &mut items,
        );
        let got: Vec<(&[u8], bool)> = items
            .list
            .iter()
            .map(|i| (items.path(i), i.md5.is_some()))
            .collect();
        assert_eq!(
            got,
            [
                (&b"/usr/bin/hello"[..], true),
                (&b"/usr/bin/odd"[..], false),
                // not UTF-8, and a space inside: kept byte for byte
                (&b"/usr/share/caf\xe9 file"[..], true),
            ]
        );
        assert!(items.list.iter().all(|i| i.pkg == 7 && !i.conffile));
        assert_eq!(
            items.list[0].md5,
            Some([
                0x22, 0xc3, 0x68, 0x3b, 0x09, 0x41, 0x36, 0xc3, 0x39, 0x83, 0x91, 0xae, 0x71, 0xb2,
                0x0f, 0x04
            ])
        );
    }

    #[test]
    fn diversions_come_in_threes() {
        let d = parse_diversions(b"/bin/sh\n/bin/sh.distrib\ndash\n/x\n");
        assert_eq!(d.len(), 1);
        assert_eq!(
            d[&b"/bin/sh"[..]],
            (b"/bin/sh.distrib".to_vec(), "dash".to_owned())
        );
    }
}
