//! Facts for `log_secrets`: walks the globs, reads each file (gzip as a
//! stream) in large chunks, and hands the bytes to the pure scanner in
//! `vigil_rules`. Work is shared by one thread per core: several files in
//! parallel, and a large plain file split into segments at line boundaries,
//! each scanned on its own thread (each counts its newlines; line numbers are
//! made absolute when the segments are put back in order).
//!
//! Incremental state (one JSON file per check in the state directory) keys
//! each file by (device, inode) and remembers its size, a SHA-256 of its
//! first block, the offset and line number where reading stopped, and the
//! redacted hits found before that offset. A renamed file (rotation) is
//! recognised by its inode; a shorter file or a changed first block means
//! truncation, and the file is read again from the start.
//!
//! Reading goes through the check's [`Pace`]: the worker threads run at the
//! configured priority, every buffer is taken from the run's read budget,
//! and a stopped (timed-out) check ends at the next buffer without saving
//! its state.
//!
//! INVARIANT: only redacted [`HitFact`]s leave `scan_stream`; the buffers
//! holding raw log bytes are never formatted into a message.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use vigil_rules::checks::log_secrets::{Facts, FileFacts, GlobFacts, Params};

use super::host::{io_reason, HostCtx};
use crate::collect::CollectError;
use crate::pace;

mod journal;
mod read;
mod sql;
mod state;

use read::{finish, par_map, prepare, scan_part, segments, Job, Part, Prepared, MIN_SEGMENT};
use state::{load_state, save_state, state_file, FileState, JournalState, State, STATE_VERSION};

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    collect_with_threads(p, ctx, cores)
}

/// [`collect`] on at most `threads` threads (the benchmark's one-core runs).
pub fn collect_with_threads(
    p: &Params,
    ctx: &HostCtx,
    threads: usize,
) -> Result<Facts, CollectError> {
    let started = Instant::now();
    let scanner = p.scanner().map_err(|e| e.to_string())?;
    let mut facts = Facts::default();

    // Expand the globs; a file matched twice is read once.
    let mut files: Vec<PathBuf> = Vec::new();
    let mut seen: BTreeSet<PathBuf> = BTreeSet::new();
    let root = glob::Pattern::escape(&ctx.root.display().to_string());
    let globs = p
        .paths
        .iter()
        .map(|g| (g, false))
        .chain(p.optional_paths.iter().map(|g| (g, true)));
    for (g, optional) in globs {
        let mut gf = GlobFacts {
            pattern: g.clone(),
            matched: 0,
            optional,
            error: None,
        };
        let full = if ctx.is_live() {
            g.clone()
        } else {
            format!(
                "{}/{}",
                root.trim_end_matches('/'),
                g.trim_start_matches('/')
            )
        };
        match glob::glob(&full) {
            Err(e) => gf.error = Some(e.to_string()),
            Ok(paths) => {
                for entry in paths {
                    match entry {
                        Ok(path) => {
                            // `symlink_metadata`: a symlink is reported, not
                            // followed (to a directory or to a file).
                            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                                continue;
                            }
                            gf.matched += 1;
                            if !seen.insert(path.clone()) {
                                continue;
                            }
                            match symlinked_ancestor(&path, &literal_prefix(&full)) {
                                Some(link) => facts.files.push(FileFacts {
                                    path: ctx.display(&path),
                                    skipped: Some(format!(
                                        "reached through the symlinked directory `{}`, not followed",
                                        ctx.display(&link)
                                    )),
                                    ..Default::default()
                                }),
                                None => files.push(path),
                            }
                        }
                        Err(e) => {
                            // A directory the walk could not enter: its files
                            // are unknown, so that is an unreadable file too.
                            gf.matched += 1;
                            facts.files.push(FileFacts {
                                path: ctx.display(e.path()),
                                error: Some(io_reason(e.error())),
                                ..Default::default()
                            });
                        }
                    }
                }
            }
        }
        facts.globs.push(gf);
    }

    let state_path = state_file(p, ctx);
    let mut old_journal: Option<JournalState> = None;
    let old: BTreeMap<(u64, u64), FileState> = if p.incremental {
        match load_state(&state_path) {
            Ok(s) => {
                old_journal = s.journal;
                s.files.into_iter().map(|f| ((f.dev, f.ino), f)).collect()
            }
            Err(e) => {
                facts.state_warnings.push(e.to_string());
                BTreeMap::new()
            }
        }
    } else {
        BTreeMap::new()
    };

    let threads = threads.max(1);
    // The state of each file first (one small read each), then the reading
    // itself: a job per file, or per segment of a large plain file.
    let prepared = par_map(files.len(), threads, &ctx.pace, |i| {
        let path = files.get(i)?;
        Some(prepare(path, &ctx.display(path), &old, &ctx.pace))
    });
    if ctx.pace.is_stopped() {
        return Err(pace::Stopped.into());
    }
    let prepared: Vec<Prepared> = prepared.into_iter().flatten().collect();
    let mut jobs: Vec<Job> = Vec::new();
    for (file, pr) in prepared.iter().enumerate() {
        if let Prepared::Read(r) = pr {
            let parts = if r.ff.gzip {
                1
            } else {
                segments(r.size - r.offset, threads, MIN_SEGMENT)
            };
            jobs.extend((0..parts).map(|part| Job { file, part, parts }));
        }
    }
    let parts = par_map(jobs.len(), threads, &ctx.pace, |i| {
        let job = jobs.get(i)?;
        match prepared.get(job.file)? {
            Prepared::Read(r) => Some(scan_part(r, job, &scanner, p, &ctx.pace)),
            Prepared::Done(..) => None,
        }
    });
    if ctx.pace.is_stopped() {
        // Half-read files must not be remembered as read.
        return Err(pace::Stopped.into());
    }
    // Each file's parts, in order.
    let mut by_file: Vec<Vec<Part>> = prepared.iter().map(|_| Vec::new()).collect();
    for (job, part) in jobs.iter().zip(parts) {
        if let (Some(v), Some(part)) = (by_file.get_mut(job.file), part) {
            v.push(part);
        }
    }
    let mut new_state = State {
        version: STATE_VERSION,
        files: Vec::new(),
        journal: None,
    };
    for (pr, parts) in prepared.into_iter().zip(by_file) {
        let (ff, st) = match pr {
            Prepared::Done(ff, st) => (ff, st),
            Prepared::Read(r) => finish(r, parts, p),
        };
        facts.files.push(ff);
        new_state.files.extend(st);
    }
    if p.journal {
        let (ff, st) = journal::scan(&scanner, p, ctx, old_journal);
        if ctx.pace.is_stopped() {
            return Err(pace::Stopped.into());
        }
        facts.files.push(ff);
        new_state.journal = st;
    }
    if let Some(q) = &p.sql {
        facts.files.push(sql::scan(q, &scanner, p, ctx));
    }
    if p.incremental {
        if let Err(e) = save_state(&state_path, &new_state) {
            facts.state_warnings.push(e.to_string());
        }
    }
    facts.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(facts)
}

/// The directory part of a glob before its first wildcard: what the policy
/// names literally (symlinks there are the operator's choice).
fn literal_prefix(glob: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for c in Path::new(glob).components() {
        let s = c.as_os_str().to_string_lossy();
        if s.contains(['*', '?', '[', '{']) {
            break;
        }
        out.push(c);
    }
    // the last literal component may be the file itself
    if out.as_os_str().len() == glob.len() {
        out.pop();
    }
    out
}

/// The first directory between `prefix` and `path` that is a symlink: a
/// `**` walk that went through it reached files outside what was named.
fn symlinked_ancestor(path: &Path, prefix: &Path) -> Option<PathBuf> {
    let rel = path.parent()?.strip_prefix(prefix).ok()?;
    let mut at = prefix.to_path_buf();
    for c in rel.components() {
        at.push(c);
        if std::fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
            return Some(at);
        }
    }
    None
}

/// Opens a matched path for reading without following a symlink and
/// without blocking on a FIFO (`O_NOFOLLOW | O_NONBLOCK`). `Ok(Err(why))`
/// when it is not a regular file: such paths are reported, not read.
fn open_regular(path: &Path) -> std::io::Result<Result<File, String>> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(i32::try_from(flags.bits()).unwrap_or(0))
        .open(path)
    {
        Ok(f) => f,
        // ELOOP: the last component is a symlink
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => {
            return Ok(Err("a symbolic link, not followed".to_owned()));
        }
        Err(e) => return Err(e),
    };
    let t = file.metadata()?.file_type();
    if t.is_file() {
        return Ok(Ok(file));
    }
    let what = if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    };
    Ok(Err(format!("{what}, not read")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pace::Pace;

    fn params(extra: &str) -> Params {
        serde_yaml::from_str(&format!("paths: [/x]\n{extra}")).unwrap()
    }

    /// Regression (issue 19, item 11): matched paths were opened with
    /// `File::open`, so a symlink in a log directory made the root agent
    /// read (and report from) a file outside the scanned paths, a `**` walk
    /// went through a symlinked directory, and a FIFO blocked the open until
    /// the check timed out (an error every run).
    #[test]
    fn symlinks_and_fifos_are_reported_not_followed_or_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let logs = root.join("var/log");
        std::fs::create_dir_all(&logs).unwrap();
        std::fs::write(logs.join("app.log"), "GET / 200\n").unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("secret.log"), "password=hunter2\n").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.log"), logs.join("link.log")).unwrap();
        std::os::unix::fs::symlink(&outside, logs.join("linked-dir")).unwrap();
        let st = std::process::Command::new("mkfifo")
            .arg(logs.join("pipe.log"))
            .status()
            .unwrap();
        assert!(st.success());
        let ctx = HostCtx {
            root: root.clone(),
            state_dir: dir.path().join("state"),
            pace: Pace::default(),
        };
        let p = Params {
            paths: vec!["/var/log/**/*.log".into()],
            ..params("")
        };
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(collect_with_threads(&p, &ctx, 2));
        });
        let facts = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the scan blocked (a FIFO opened without O_NONBLOCK)")
            .unwrap();
        let by: BTreeMap<&str, &FileFacts> =
            facts.files.iter().map(|f| (f.path.as_str(), f)).collect();
        assert!(facts.files.iter().all(|f| f.hits.is_empty()), "{facts:?}");
        assert!(facts.files.iter().all(|f| f.error.is_none()), "{facts:?}");
        assert_eq!(by["/var/log/app.log"].skipped, None);
        assert!(by["/var/log/link.log"]
            .skipped
            .as_deref()
            .unwrap()
            .contains("symbolic link"));
        assert!(by["/var/log/pipe.log"]
            .skipped
            .as_deref()
            .unwrap()
            .contains("FIFO"));
        let via = by["/var/log/linked-dir/secret.log"]
            .skipped
            .as_deref()
            .unwrap();
        assert!(
            via.contains("symlinked directory `/var/log/linked-dir`"),
            "{via}"
        );
        assert_eq!(facts.files.len(), 4, "{facts:?}");
    }

    /// Regression (issue 19, item 14, for the scan state): a symlink planted
    /// at the state's temp name was written through.
    #[test]
    fn the_state_file_is_never_written_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let path = dir.path().join("log_secrets/abc.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(&victim, path.with_extension("json.tmp")).unwrap();
        save_state(&path, &State::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert!(load_state(&path).is_ok());
    }

    #[test]
    fn collect_splits_a_large_file_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("root/var/log");
        std::fs::create_dir_all(&logs).unwrap();
        let mut text = Vec::new();
        let mut i = 0u64;
        while text.len() < (MIN_SEGMENT as usize) * 2 + 1000 {
            text.extend_from_slice(format!("line {i} GET /x HTTP/1.1 200\n").as_bytes());
            if i.is_multiple_of(100_003) {
                text.extend_from_slice(b"password=hunter2\n");
            }
            i += 1;
        }
        std::fs::write(logs.join("big.log"), &text).unwrap();
        let ctx = HostCtx {
            root: dir.path().join("root"),
            state_dir: dir.path().join("state"),
            pace: Pace::default(),
        };
        let p = params("incremental: false");
        let p = Params {
            paths: vec!["/var/log/*.log".into()],
            ..p
        };
        let one = collect_with_threads(&p, &ctx, 1).unwrap();
        let two = collect_with_threads(&p, &ctx, 3).unwrap();
        assert!(one.files[0].hits_total > 5);
        assert_eq!(one.files, two.files);
    }
}
