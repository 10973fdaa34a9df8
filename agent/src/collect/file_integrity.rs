//! Facts for `file_integrity`: dpkg's md5sums checked in parallel, and a
//! SHA-256 baseline of chosen paths (written by `vigil-agent baseline`)
//! compared with what is there now.
//!
//! A check hashes on a thread pool of its own, its threads at the configured
//! priority; every buffer comes out of the run's read budget, and a stopped
//! (timed-out) check ends at the next file or buffer.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use md5::Md5;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::file_integrity::{
    Baseline, Diff, DiffKind, Dpkg, DpkgProblem, Facts, Params, ProblemKind,
};

use super::{io_reason, HostCtx};
use crate::pace::{self, Pace};

/// Read buffer per hashing thread (inside a core's L2 cache, where the
/// hash reads what the kernel just copied). 256 KiB reads hash as fast as
/// 1 MiB ones here (5.1–5.4 s against 5.1 s for the host's 5 GB) and take
/// 6 MB less at the peak with 8 threads.
const BUF: usize = 256 << 10;

thread_local! {
    /// One read buffer per hashing thread, for the thread's life (rayon may
    /// run a `map_init` initializer per job, and a fresh megabyte per job
    /// left glibc's per-thread arenas holding several).
    static READ_BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn with_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
    READ_BUF.with(|b| {
        let mut b = b.borrow_mut();
        if b.len() < BUF {
            b.resize(BUF, 0);
        }
        f(&mut b)
    })
}

/// Hashing threads at least: reading files whose pages are not cached waits
/// on the disk, and more requests in flight read faster (cold cache on the
/// 2-core benchmark machine: 22 s with 2 threads, 12 s with 8; see
/// docs/benchmarks/clamav-integrity.md). With the page cache hot, the extra
/// threads only wait for a core.
const MIN_THREADS: usize = 8;

/// The check's own pool: [`MIN_THREADS`] or one per core if more, each
/// thread at the configured priority ([`Pace::enter_thread`]).
pub fn thread_pool(pace: &Pace) -> Result<rayon::ThreadPool, String> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pace = pace.clone();
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.max(MIN_THREADS))
        .thread_name(|i| format!("vigil-integrity-{i}"))
        .start_handler(move |_| pace.enter_thread())
        .build()
        .map_err(|e| format!("cannot start the vigil-integrity threads: {e}"))
}

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
    let pool = thread_pool(&ctx.pace)?;
    let facts = pool.install(|| collect_here(p, ctx));
    if ctx.pace.is_stopped() {
        return Err(pace::Stopped.to_string());
    }
    Ok(facts)
}

fn collect_here(p: &Params, ctx: &HostCtx) -> Facts {
    let mut facts = Facts::default();
    if p.dpkg_verify {
        match dpkg_verify(&ctx.path(&p.dpkg_admin_dir), ctx) {
            Ok(d) => facts.dpkg = Some(d),
            Err(e) => facts.errors.push(e),
        }
    }
    if let Some(b) = &p.baseline {
        match compare_baseline(p, b, ctx) {
            Ok(b) => facts.baseline = Some(b),
            Err(e) => facts.errors.push(e),
        }
    }
    facts
}

// ---------------------------------------------------------------- dpkg

/// One file to verify. Paths stay bytes, as dpkg stores them (a path need
/// not be UTF-8): they become text only in a problem's report.
struct Item {
    /// Index into the package names.
    pkg: u32,
    /// Absolute path as dpkg lists it.
    path: Box<[u8]>,
    /// The expected MD5; `None` when dpkg's entry is not hex (never matches).
    md5: Option<[u8; 16]>,
    conffile: bool,
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
fn parse_md5sums(text: &[u8], pkg: u32, conffiles: &HashSet<&[u8]>, out: &mut Vec<Item>) {
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
        let mut path = Vec::with_capacity(rel.len() + 1);
        path.push(b'/');
        path.extend_from_slice(rel);
        out.push(Item {
            pkg,
            path: path.into_boxed_slice(),
            md5: parse_md5(md5),
            conffile: false,
        });
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn dpkg_verify(admin: &Path, ctx: &HostCtx) -> Result<Dpkg, String> {
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
    let mut items: Vec<Item> = Vec::new();
    let mut errors = Vec::new();
    let mut text_buf = Vec::new();
    for (pkg, file) in &md5sums {
        let pkg = intern(pkg.as_str());
        text_buf.clear();
        let read = ctx.pace.check().and_then(|()| {
            std::fs::File::open(file).and_then(|f| ctx.pace.reader(f).read_to_end(&mut text_buf))
        });
        if let Err(e) = read {
            errors.push(format!(
                "cannot read `{}`: {}",
                ctx.display(file),
                io_reason(&e)
            ));
            continue;
        }
        parse_md5sums(&text_buf, pkg, &conffile_paths, &mut items);
    }
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    let conffiles_checked = status.conffiles.len() as u64;
    for (pkg, path, md5) in &status.conffiles {
        let pkg = intern(pkg.as_str());
        items.push(Item {
            pkg,
            path: path.as_bytes().into(),
            md5: parse_md5(md5.as_bytes()),
            conffile: true,
        });
    }
    let package_count = names.len() as u64;

    // Folded as they come: only problems are kept, not a result per file.
    let (bytes_read, problems) = items
        .par_iter()
        .map(|it| {
            with_buf(|buf| {
                let package = names.get(it.pkg as usize).copied().unwrap_or_default();
                let actual: &[u8] = match diversions.get(&*it.path) {
                    Some((to, by)) if by != package => to,
                    _ => &it.path,
                };
                let problem = |kind, reason| DpkgProblem {
                    package: package.to_owned(),
                    path: text(&it.path),
                    kind,
                    conffile: it.conffile,
                    reason,
                };
                let real = ctx.path(std::ffi::OsStr::from_bytes(actual));
                match md5_file(&real, buf, &ctx.pace) {
                    Ok((sum, n)) if Some(sum) == it.md5 => (n, None),
                    Ok((_, n)) => (n, Some(problem(ProblemKind::Changed, None))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        (0, Some(problem(ProblemKind::Missing, None)))
                    }
                    Err(e) => (
                        0,
                        Some(problem(ProblemKind::Unreadable, Some(io_reason(&e)))),
                    ),
                }
            })
        })
        .fold(
            || (0u64, Vec::new()),
            |(n, mut found), (k, p)| {
                found.extend(p);
                (n + k, found)
            },
        )
        .reduce(
            || (0u64, Vec::new()),
            |(a, mut left), (b, right)| {
                left.extend(right);
                (a + b, left)
            },
        );
    Ok(Dpkg {
        packages: package_count,
        files_checked: items.len() as u64 - conffiles_checked,
        conffiles_checked,
        bytes_read,
        problems,
    })
}

fn md5_file(path: &Path, buf: &mut [u8], pace: &Pace) -> std::io::Result<([u8; 16], u64)> {
    pace.check()?;
    let mut f = pace.reader(std::fs::File::open(path)?);
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

fn sha256_file(path: &Path, buf: &mut [u8], pace: &Pace) -> std::io::Result<String> {
    pace.check()?;
    let mut f = pace.reader(std::fs::File::open(path)?);
    let mut h = Sha256::new();
    loop {
        let k = f.read(buf)?;
        if k == 0 {
            break;
        }
        h.update(buf.get(..k).unwrap_or_default());
    }
    Ok(hex::encode(h.finalize()))
}

// ---------------------------------------------------------------- baseline

/// The baseline file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaselineFile {
    pub schema: String,
    pub created_at: String,
    pub paths: Vec<String>,
    #[serde(default)]
    pub exclude: Vec<String>,
    pub entries: BTreeMap<String, Entry>,
}

const SCHEMA: &str = "vigil.baseline/v1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// `file` or `symlink`.
    pub kind: String,
    /// Content hash (files) or link target (symlinks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Permission bits in octal (`0755`).
    pub mode: String,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
}

/// Walks `paths` and hashes every file, in parallel.
fn snapshot(
    paths: &[String],
    exclude: &[String],
    skip: &str,
    ctx: &HostCtx,
) -> Result<BTreeMap<String, Entry>, String> {
    let mut found: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    for p in paths {
        let real = ctx.path(p);
        if std::fs::symlink_metadata(&real).is_err() {
            continue; // an absent path simply has no entries
        }
        let walk = walkdir::WalkDir::new(&real).follow_links(false).into_iter();
        for e in walk.filter_entry(|e| {
            let host = ctx.display(e.path());
            !exclude
                .iter()
                .any(|x| host == *x || host.starts_with(&format!("{}/", x.trim_end_matches('/'))))
        }) {
            if ctx.pace.is_stopped() {
                return Err(pace::Stopped.to_string());
            }
            let e = e.map_err(|e| {
                format!(
                    "cannot walk `{}`: {}",
                    e.path().map_or(p.clone(), |x| ctx.display(x)),
                    e.io_error().map_or_else(|| e.to_string(), io_reason)
                )
            })?;
            let ft = e.file_type();
            if !(ft.is_file() || ft.is_symlink()) {
                continue;
            }
            let host = ctx.display(e.path());
            if host == skip {
                continue;
            }
            let md = e
                .metadata()
                .map_err(|err| format!("cannot stat `{host}`: {err}"))?;
            found.push((host, e.path().to_path_buf(), md));
        }
    }
    found
        .par_iter()
        .map(|(host, real, md)| {
            with_buf(|buf| {
                let symlink = md.file_type().is_symlink();
                let (sha256, target) = if symlink {
                    let t = std::fs::read_link(real)
                        .map_err(|e| format!("cannot read link `{host}`: {}", io_reason(&e)))?;
                    (None, Some(t.to_string_lossy().into_owned()))
                } else {
                    let h = sha256_file(real, buf, &ctx.pace)
                        .map_err(|e| format!("cannot read `{host}`: {}", io_reason(&e)))?;
                    (Some(h), None)
                };
                Ok((
                    host.clone(),
                    Entry {
                        kind: if symlink { "symlink" } else { "file" }.into(),
                        sha256,
                        target,
                        mode: format!("{:04o}", md.mode() & 0o7777),
                        uid: md.uid(),
                        gid: md.gid(),
                        size: md.len(),
                    },
                ))
            })
        })
        .collect()
}

fn record_path(ctx: &HostCtx, baseline: &str) -> PathBuf {
    let key = hex::encode(Sha256::digest(baseline.as_bytes()));
    ctx.state_dir
        .join("file_integrity")
        .join(format!("baseline-{}.sha256", key.get(..16).unwrap_or(&key)))
}

/// What `vigil-agent baseline` wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub path: String,
    pub entries: usize,
    pub sha256: String,
    /// Where the hash was recorded, or why it could not be.
    pub recorded: Result<PathBuf, String>,
}

/// Writes the baseline of `p.paths` to `p.baseline` and records its hash in
/// the state directory.
pub fn write_baseline(p: &Params, ctx: &HostCtx) -> Result<Written, String> {
    let baseline = p
        .baseline
        .as_ref()
        .ok_or_else(|| "this check has no `baseline` file".to_owned())?;
    let entries = snapshot(&p.paths, &p.exclude, baseline, ctx)?;
    let file = BaselineFile {
        schema: SCHEMA.into(),
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        paths: p.paths.clone(),
        exclude: p.exclude.clone(),
        entries,
    };
    let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    bytes.push(b'\n');
    let real = ctx.path(baseline);
    if let Some(dir) = real.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create `{}`: {}", dir.display(), io_reason(&e)))?;
    }
    let tmp = real.with_extension("tmp");
    std::fs::write(&tmp, &bytes)
        .and_then(|_| std::fs::rename(&tmp, &real))
        .map_err(|e| format!("cannot write `{}`: {}", real.display(), io_reason(&e)))?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let rec = record_path(ctx, baseline);
    let recorded = rec
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|_| std::fs::write(&rec, format!("{sha256}\n")))
        .map(|_| rec.clone())
        .map_err(|e| {
            format!(
                "cannot record the hash in `{}`: {}",
                rec.display(),
                io_reason(&e)
            )
        });
    Ok(Written {
        path: baseline.clone(),
        entries: file.entries.len(),
        sha256,
        recorded,
    })
}

fn compare_baseline(p: &Params, baseline: &str, ctx: &HostCtx) -> Result<Baseline, String> {
    let real = ctx.path(baseline);
    let bytes = match std::fs::read(&real) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!(
                "baseline `{baseline}` does not exist: create it with `vigil-agent baseline --policy FILE --control ID`"
            ))
        }
        Err(e) => return Err(format!("cannot read baseline `{baseline}`: {}", io_reason(&e))),
    };
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let recorded_sha256 = std::fs::read_to_string(record_path(ctx, baseline))
        .ok()
        .map(|s| s.trim().to_owned());
    let file: BaselineFile = serde_json::from_slice(&bytes)
        .map_err(|e| format!("baseline `{baseline}` is not a vigil baseline: {e}"))?;
    if file.schema != SCHEMA {
        return Err(format!(
            "baseline `{baseline}` has schema `{}`, expected `{SCHEMA}`",
            file.schema
        ));
    }
    if file.paths != p.paths || file.exclude != p.exclude {
        return Err(format!(
            "baseline `{baseline}` covers {:?} but the policy says {:?}: re-create it with `vigil-agent baseline`",
            file.paths, p.paths
        ));
    }
    let now = snapshot(&p.paths, &p.exclude, baseline, ctx)?;
    let mut diffs = Vec::new();
    for (path, old) in &file.entries {
        match now.get(path) {
            None => diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Removed,
                changes: vec![],
            }),
            Some(new) if new != old => diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Changed,
                changes: changes(old, new),
            }),
            Some(_) => {}
        }
    }
    for path in now.keys() {
        if !file.entries.contains_key(path) {
            diffs.push(Diff {
                path: path.clone(),
                kind: DiffKind::Added,
                changes: vec![],
            });
        }
    }
    diffs.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Baseline {
        path: baseline.to_owned(),
        sha256,
        recorded_sha256,
        created_at: Some(file.created_at),
        entries: file.entries.len() as u64,
        files_now: now.len() as u64,
        diffs,
    })
}

fn changes(old: &Entry, new: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    if old.kind != new.kind {
        out.push(format!("type {} -> {}", old.kind, new.kind));
    }
    if old.sha256 != new.sha256 && old.kind == new.kind && new.kind == "file" {
        out.push("content".into());
    }
    if old.target != new.target && new.kind == "symlink" && old.kind == new.kind {
        out.push(format!(
            "target {} -> {}",
            old.target.as_deref().unwrap_or("?"),
            new.target.as_deref().unwrap_or("?")
        ));
    }
    if old.mode != new.mode {
        out.push(format!("mode {} -> {}", old.mode, new.mode));
    }
    if (old.uid, old.gid) != (new.uid, new.gid) {
        out.push(format!(
            "owner {}:{} -> {}:{}",
            old.uid, old.gid, new.uid, new.gid
        ));
    }
    if old.size != new.size {
        out.push(format!("size {} -> {}", old.size, new.size));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let mut items = Vec::new();
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
        let got: Vec<(&[u8], bool)> = items.iter().map(|i| (&*i.path, i.md5.is_some())).collect();
        assert_eq!(
            got,
            [
                (&b"/usr/bin/hello"[..], true),
                (&b"/usr/bin/odd"[..], false),
                // not UTF-8, and a space inside: kept byte for byte
                (&b"/usr/share/caf\xe9 file"[..], true),
            ]
        );
        assert!(items.iter().all(|i| i.pkg == 7 && !i.conffile));
        assert_eq!(
            items[0].md5,
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
