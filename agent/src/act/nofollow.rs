//! Resolving, removing and opening erasure paths without following a
//! symbolic link (issue 19, item 8: a symlink planted in a site directory made
//! the root agent delete files outside the site; a symlinked log made the
//! purge rewrite a file outside the log directory).
//!
//! A path or glob is resolved one component at a time from a descriptor of
//! the root, each directory opened with `openat(…, O_DIRECTORY | O_NOFOLLOW)`
//! relative to its parent's descriptor, so no component can be swapped for a
//! link between the check and the use. A symbolic link met on the way is
//! never entered; one matched by the pattern is reported, not touched.
//!
//! This module removes files (`remove`): recursively, unlinking names only
//! (a link inside a removed directory is unlinked, never followed), staying
//! on the directory's filesystem, and only what passes [`owner_ok`].

use std::ffi::{OsStr, OsString};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;

/// Whether a pattern component has glob characters.
pub fn has_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// One entry a pattern matched: its parent directory's descriptor and name.
pub struct Entry {
    pub dir: Arc<OwnedFd>,
    pub dir_stat: Stat,
    pub name: OsString,
    /// The host path (under the root), for messages.
    pub path: PathBuf,
    pub stat: Stat,
}

impl Entry {
    pub fn kind(&self) -> FileType {
        FileType::from_raw_mode(self.stat.st_mode)
    }
}

/// What a pattern resolved to.
#[derive(Default)]
pub struct Resolved {
    pub found: Vec<Entry>,
    /// Symbolic links met on the way or matched, never followed.
    pub links: Vec<PathBuf>,
}

fn reason(e: Errno) -> String {
    crate::collect::host::io_reason(&std::io::Error::from(e))
}

/// Why a path could not be resolved, opened or removed without following a
/// link: the path, what was being done, and the OS error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NofollowError {
    #[error("`{pattern}` has a `..` component")]
    DotDot { pattern: String },
    #[error("`{pattern}` names the root itself")]
    RootItself { pattern: String },
    #[error("`{component}` is not a valid glob: {source}")]
    Glob {
        component: String,
        #[source]
        source: glob::PatternError,
    },
    /// `cannot open `/srv/x`: permission denied`; `what` is the verb phrase.
    #[error("cannot {what} `{}`: {}", path.display(), reason(*source))]
    Os {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: Errno,
    },
    #[error("cannot stat the root: {}", reason(*source))]
    StatRoot {
        #[source]
        source: Errno,
    },
    #[error("`{}` is not a regular file: left alone", path.display())]
    NotRegular { path: PathBuf },
    #[error("`{}` changed while being opened: left alone", path.display())]
    Changed { path: PathBuf },
    #[error("`{}` has {links} hard links: rewriting it would change another file, left alone", path.display())]
    HardLinks { path: PathBuf, links: u64 },
    /// The owner check refused a rewrite (`reason` says whose file it is).
    #[error("`{}`: {reason}", path.display())]
    NotOurs { path: PathBuf, reason: String },
    #[error("cannot make a temporary file beside `{}`", path.display())]
    NoTempName { path: PathBuf },
}

/// The purge and erasure report a refusal as their own message.
impl From<NofollowError> for String {
    fn from(e: NofollowError) -> String {
        e.to_string()
    }
}

fn os(what: &'static str, path: &Path) -> impl FnOnce(Errno) -> NofollowError {
    let path = path.to_path_buf();
    move |source| NofollowError::Os { what, path, source }
}

const DIR_FLAGS: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Resolves `pattern` (absolute as on the host, globs allowed per component)
/// under `root` without following any link below the root.
pub fn resolve(root: &Path, pattern: &str) -> Result<Resolved, NofollowError> {
    let comps: Vec<&str> = pattern
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if comps.contains(&"..") {
        return Err(NofollowError::DotDot {
            pattern: pattern.to_owned(),
        });
    }
    let root_fd = rustix::fs::open(root, DIR_FLAGS.difference(OFlags::NOFOLLOW), Mode::empty())
        .map_err(os("open the root", root))?;
    let root_stat =
        rustix::fs::fstat(&root_fd).map_err(|source| NofollowError::StatRoot { source })?;
    let mut out = Resolved::default();
    let Some((last, dirs)) = comps.split_last() else {
        return Err(NofollowError::RootItself {
            pattern: pattern.to_owned(),
        });
    };
    let mut level: Vec<(Arc<OwnedFd>, Stat, PathBuf)> =
        vec![(Arc::new(root_fd), root_stat, root.to_path_buf())];
    for comp in dirs {
        let mut next = Vec::new();
        for (fd, _, path) in &level {
            for name in names(fd, comp, path)? {
                let p = path.join(&name);
                let st = match rustix::fs::statat(
                    fd.as_fd(),
                    name.as_os_str(),
                    AtFlags::SYMLINK_NOFOLLOW,
                ) {
                    Ok(st) => st,
                    Err(Errno::NOENT) => continue,
                    Err(e) => return Err(os("look at", &p)(e)),
                };
                match FileType::from_raw_mode(st.st_mode) {
                    FileType::Symlink => out.links.push(p),
                    FileType::Directory => {
                        match rustix::fs::openat(
                            fd.as_fd(),
                            name.as_os_str(),
                            DIR_FLAGS,
                            Mode::empty(),
                        ) {
                            Ok(sub) => {
                                let st = rustix::fs::fstat(&sub).map_err(os("stat", &p))?;
                                next.push((Arc::new(sub), st, p));
                            }
                            // Swapped for a link or removed since the stat.
                            Err(Errno::LOOP | Errno::NOTDIR) => out.links.push(p),
                            Err(Errno::NOENT) => {}
                            Err(e) => return Err(os("open", &p)(e)),
                        }
                    }
                    _ => {}
                }
            }
        }
        level = next;
    }
    for (fd, dst, path) in &level {
        for name in names(fd, last, path)? {
            let p = path.join(&name);
            match rustix::fs::statat(fd.as_fd(), name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                    out.links.push(p)
                }
                Ok(st) => out.found.push(Entry {
                    dir: fd.clone(),
                    dir_stat: *dst,
                    name,
                    path: p,
                    stat: st,
                }),
                Err(Errno::NOENT) => {}
                Err(e) => return Err(os("look at", &p)(e)),
            }
        }
    }
    out.found.sort_by(|a, b| a.path.cmp(&b.path));
    out.links.sort();
    Ok(out)
}

/// The names in `dir` a component names: itself, or the entries its glob matches.
fn names(dir: &OwnedFd, comp: &str, path: &Path) -> Result<Vec<OsString>, NofollowError> {
    if !has_glob(comp) {
        return Ok(vec![OsString::from(comp)]);
    }
    let pat = glob::Pattern::new(comp).map_err(|source| NofollowError::Glob {
        component: comp.to_owned(),
        source,
    })?;
    let d = rustix::fs::Dir::read_from(dir).map_err(os("list", path))?;
    let mut out = Vec::new();
    for entry in d {
        let entry = entry.map_err(os("list", path))?;
        let name = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if name == "." || name == ".." {
            continue;
        }
        if pat.matches(&name.to_string_lossy()) {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

/// Whether `file` (in a directory with `dir`'s stat) may be deleted or
/// rewritten: owned by root or by the directory's owner, or in a directory
/// of root's that no one else can write to (so root put it there). A file of
/// a third user in someone's directory got there some other way (a hard link,
/// a mistake) and is left alone.
pub fn owner_ok(file: &Stat, dir: &Stat) -> bool {
    file.st_uid == 0 || file.st_uid == dir.st_uid || (dir.st_uid == 0 && dir.st_mode & 0o002 == 0)
}

fn owner_reason(file: &Stat, dir: &Stat) -> String {
    format!(
        "owned by uid {} in a directory of uid {}: not ours to delete",
        file.st_uid, dir.st_uid
    )
}

/// What a removal did.
#[derive(Default)]
pub struct Removed {
    pub entries: u64,
    /// Entries left, each with why.
    pub refused: Vec<String>,
}

/// Removes a matched entry: a file, or a directory and everything in it.
pub fn remove(e: &Entry) -> Result<Removed, NofollowError> {
    let mut r = Removed::default();
    if e.kind() == FileType::Symlink {
        r.refused.push(format!(
            "`{}`: a symbolic link, not followed",
            e.path.display()
        ));
        return Ok(r);
    }
    if !owner_ok(&e.stat, &e.dir_stat) {
        r.refused.push(format!(
            "`{}`: {}",
            e.path.display(),
            owner_reason(&e.stat, &e.dir_stat)
        ));
        return Ok(r);
    }
    remove_at(&e.dir, &e.dir_stat, &e.name, &e.stat, &e.path, &mut r)?;
    Ok(r)
}

fn remove_at(
    dir: &OwnedFd,
    dir_stat: &Stat,
    name: &OsStr,
    st: &Stat,
    path: &Path,
    r: &mut Removed,
) -> Result<(), NofollowError> {
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        if st.st_dev != dir_stat.st_dev {
            r.refused.push(format!(
                "`{}`: another filesystem mounted here, not entered",
                path.display()
            ));
            return Ok(());
        }
        let sub = match rustix::fs::openat(dir, name, DIR_FLAGS, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(()),
            Err(Errno::LOOP | Errno::NOTDIR) => {
                r.refused.push(format!(
                    "`{}`: replaced while being removed, not followed",
                    path.display()
                ));
                return Ok(());
            }
            Err(e) => return Err(os("open", path)(e)),
        };
        let sub_stat = rustix::fs::fstat(&sub).map_err(os("stat", path))?;
        if sub_stat.st_ino != st.st_ino || sub_stat.st_dev != st.st_dev {
            r.refused.push(format!(
                "`{}`: replaced while being removed, not followed",
                path.display()
            ));
            return Ok(());
        }
        let mut names = Vec::new();
        let d = rustix::fs::Dir::read_from(&sub).map_err(os("list", path))?;
        for entry in d {
            let entry = entry.map_err(os("list", path))?;
            let n = OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        let before = r.refused.len();
        for n in names {
            let p = path.join(&n);
            let cst = match rustix::fs::statat(&sub, n.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) => s,
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(os("look at", &p)(e)),
            };
            if !owner_ok(&cst, &sub_stat) {
                r.refused.push(format!(
                    "`{}`: {}",
                    p.display(),
                    owner_reason(&cst, &sub_stat)
                ));
                continue;
            }
            remove_at(&sub, &sub_stat, &n, &cst, &p, r)?;
        }
        if r.refused.len() > before {
            return Ok(()); // not empty: leave the directory
        }
        match rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(os("remove", path)(e)),
        }
    } else {
        // A file, link, socket or FIFO: only its name goes; nothing is opened.
        match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => return Err(os("remove", path)(e)),
        }
    }
    r.entries += 1;
    Ok(())
}

/// Opens a matched log file for reading (and writing when `write`), refusing
/// anything but a regular file with one link, of the owner [`owner_ok`]
/// allows, that is still the entry resolved.
pub fn open_file(e: &Entry, write: bool) -> Result<std::fs::File, NofollowError> {
    let kind = e.kind();
    if kind != FileType::RegularFile {
        return Err(NofollowError::NotRegular {
            path: e.path.clone(),
        });
    }
    let mut flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
    flags |= if write { OFlags::RDWR } else { OFlags::RDONLY };
    let fd = rustix::fs::openat(e.dir.as_fd(), e.name.as_os_str(), flags, Mode::empty())
        .map_err(os("open", &e.path))?;
    let st = rustix::fs::fstat(&fd).map_err(os("stat", &e.path))?;
    // A gzip'd rotation purged a moment ago is a new inode by the same name:
    // reading it is fine; rewriting takes the inode that was resolved.
    let moved = st.st_ino != e.stat.st_ino || st.st_dev != e.stat.st_dev;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile || (write && moved) {
        return Err(NofollowError::Changed {
            path: e.path.clone(),
        });
    }
    if write {
        if st.st_nlink != 1 {
            return Err(NofollowError::HardLinks {
                path: e.path.clone(),
                links: st.st_nlink,
            });
        }
        if !owner_ok(&st, &e.dir_stat) {
            return Err(NofollowError::NotOurs {
                path: e.path.clone(),
                reason: owner_reason(&st, &e.dir_stat).replace("delete", "rewrite"),
            });
        }
    }
    Ok(std::fs::File::from(fd))
}

/// A new temporary file beside `e` (`O_CREAT | O_EXCL | O_NOFOLLOW`, 0600).
pub fn temp_beside(e: &Entry) -> Result<(OsString, std::fs::File), NofollowError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    for _ in 0..16 {
        let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = OsString::from(format!(".vigil-purge-{}-{n}-{nanos:x}", std::process::id()));
        match rustix::fs::openat(
            e.dir.as_fd(),
            name.as_os_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        ) {
            Ok(fd) => return Ok((name, std::fs::File::from(fd))),
            Err(Errno::EXIST) => continue,
            Err(er) => return Err(os("make a temporary file beside", &e.path)(er)),
        }
    }
    Err(NofollowError::NoTempName {
        path: e.path.clone(),
    })
}

/// Renames the temporary `tmp` over `e`, within its directory.
pub fn replace(e: &Entry, tmp: &OsStr) -> Result<(), NofollowError> {
    rustix::fs::renameat(e.dir.as_fd(), tmp, e.dir.as_fd(), e.name.as_os_str())
        .map_err(os("replace", &e.path))?;
    rustix::fs::fsync(e.dir.as_fd()).map_err(os("sync the directory of", &e.path))
}

/// Removes a temporary file made by [`temp_beside`].
pub fn discard(e: &Entry, tmp: &OsStr) {
    let _ = rustix::fs::unlinkat(e.dir.as_fd(), tmp, AtFlags::empty());
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn globs_do_not_enter_links_and_removal_stays_inside() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        let outside = root.join("outside");
        std::fs::create_dir_all(outside.join("deep")).unwrap();
        std::fs::write(outside.join("deep/secret"), "x").unwrap();
        let site = root.join("srv/sites/acme");
        std::fs::create_dir_all(site.join("pages")).unwrap();
        std::fs::write(site.join("pages/index.md"), "hi").unwrap();
        symlink(&outside, site.join("evil")).unwrap();
        symlink(outside.join("deep/secret"), site.join("pages/link")).unwrap();
        let r = resolve(root, "/srv/sites/acme/*/*").unwrap();
        let found: Vec<_> = r
            .found
            .iter()
            .map(|e| e.path.strip_prefix(root).unwrap().to_owned())
            .collect();
        assert_eq!(found, [PathBuf::from("srv/sites/acme/pages/index.md")]);
        assert_eq!(r.links, [site.join("evil"), site.join("pages/link")]);
        let r = resolve(root, "/srv/sites/acme").unwrap();
        let removed = remove(&r.found[0]).unwrap();
        assert!(removed.refused.is_empty());
        assert!(!site.exists());
        assert!(outside.join("deep/secret").exists());
        assert!(resolve(root, "/srv/../etc").is_err());
    }
}
