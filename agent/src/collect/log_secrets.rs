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
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::log_secrets::detect::Scanner;
use vigil_rules::checks::log_secrets::{Facts, FileFacts, GlobFacts, HitFact, Params, ReadMode};

use super::host::{io_reason, HostCtx};
use crate::pace::{self, Pace};

mod journal;
mod sql;

/// Bytes read per chunk.
const CHUNK: usize = 1 << 20;
/// Bytes scanned between two looks at the stop switch: a timed-out scan
/// stops within one of these, not one whole chunk.
const STEP: usize = 256 << 10;
/// The first block, hashed to recognise a file again.
const HEAD: usize = 4096;
const STATE_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileState {
    dev: u64,
    ino: u64,
    path: String,
    size: u64,
    head_len: u64,
    head_sha256: String,
    /// Where the next run starts (the start of a line, or inside a line
    /// longer than a chunk) and the number of that line minus one.
    offset: u64,
    lines: u64,
    gzip: bool,
    hits: Vec<HitFact>,
    hits_total: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    version: u32,
    files: Vec<FileState>,
    /// Where the journal was read up to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal: Option<JournalState>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct JournalState {
    /// The cursor of the last entry read (`journalctl --after-cursor`).
    cursor: String,
    /// Entries read since the state began: the "line" numbers of hits.
    lines: u64,
    hits: Vec<HitFact>,
    /// Each hit's entry time (µs since the epoch), to drop hits of entries
    /// the journal no longer holds.
    hit_times: Vec<u64>,
    hits_total: u64,
}

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    collect_with_threads(p, ctx, cores)
}

/// [`collect`] on at most `threads` threads (the benchmark's one-core runs).
pub fn collect_with_threads(p: &Params, ctx: &HostCtx, threads: usize) -> Result<Facts, String> {
    let started = Instant::now();
    let scanner = p.scanner()?;
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
                facts.state_warnings.push(e);
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
        return Err(pace::Stopped.to_string());
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
        return Err(pace::Stopped.to_string());
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
            return Err(pace::Stopped.to_string());
        }
        facts.files.push(ff);
        new_state.journal = st;
    }
    if let Some(q) = &p.sql {
        facts.files.push(sql::scan(q, &scanner, p, ctx));
    }
    if p.incremental {
        if let Err(e) = save_state(&state_path, &new_state) {
            facts.state_warnings.push(e);
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

/// One state file per check: the hash of what decides its results.
fn state_file(p: &Params, ctx: &HostCtx) -> PathBuf {
    let key = serde_json::json!({
        "paths": p.paths,
        "optional_paths": p.optional_paths,
        "detectors": p.detectors,
        "extra": p.extra_patterns,
        "max_line": p.max_line_bytes,
    });
    // (the journal's state rides along; `journal`/`sql` do not change the
    // key, so turning the journal on keeps the files' offsets)
    let digest = Sha256::digest(key.to_string().as_bytes());
    ctx.state_dir.join("log_secrets").join(format!(
        "{}.json",
        hex::encode(digest.get(..12).unwrap_or(&[]))
    ))
}

fn load_state(path: &Path) -> Result<State, String> {
    match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<State>(&bytes) {
            Ok(s) if s.version == STATE_VERSION => Ok(s),
            Ok(_) => Ok(State::default()),
            Err(e) => Err(format!(
                "state `{}` is unreadable ({e}); every file is read from the start",
                path.display()
            )),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
        Err(e) => Err(format!(
            "cannot read state `{}`: {}; every file is read from the start",
            path.display(),
            io_reason(&e)
        )),
    }
}

fn save_state(path: &Path, state: &State) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let fail = |e: std::io::Error| {
        format!(
            "cannot write state `{}`: {}; the next run reads every file again",
            path.display(),
            io_reason(&e)
        )
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec(state).map_err(|e| format!("state: {e}"))?;
    // Exclusive, no-follow creation: a symlink planted at the temp name is
    // never written through (a leftover is unlinked first).
    let create = || {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(i32::try_from(rustix::fs::OFlags::NOFOLLOW.bits()).unwrap_or(0))
            .open(&tmp)
    };
    let mut f = match create() {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::remove_file(&tmp).map_err(fail)?;
            create()
        }
        r => r,
    }
    .map_err(fail)?;
    f.write_all(&bytes).map_err(fail)?;
    f.sync_all().map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

fn head_hash(file: &File, len: u64, pace: &Pace) -> std::io::Result<String> {
    pace.take(len)?;
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(HEAD)];
    file.read_exact_at(&mut buf, 0)?;
    Ok(hex::encode(Sha256::digest(&buf)))
}

/// A file whose state was looked at.
enum Prepared {
    /// Nothing to read: an error, or a compressed file unchanged since the
    /// last run.
    Done(FileFacts, Option<FileState>),
    Read(Pending),
}

/// A file to read from `offset` (plain) or whole (gzip) up to `size`.
struct Pending {
    file: File,
    ff: FileFacts,
    dev: u64,
    ino: u64,
    size: u64,
    head_len: u64,
    head: String,
    offset: u64,
    /// Lines before `offset`.
    lines: u64,
}

/// One piece of reading: segment `part` of `parts` of a file.
struct Job {
    file: usize,
    part: usize,
    parts: usize,
}

/// What a job found. Line numbers of `hits` count from the segment's start.
struct Part {
    /// The segment read, `[start, end)` in the file (plain files).
    start: u64,
    end: u64,
    /// Just past its last complete line, relative to `start`.
    complete: u64,
    /// Newlines in the segment (complete lines).
    newlines: u64,
    hits: Vec<HitFact>,
    hits_total: u64,
    bytes_scanned: u64,
    error: Option<String>,
}

/// Runs `f(i)` for `i` in `0..n` on up to `threads` threads at the check's
/// priority; results in order (`None` where a stopped check skipped one).
fn par_map<T: Send>(
    n: usize,
    threads: usize,
    pace: &Pace,
    f: impl Fn(usize) -> Option<T> + Sync,
) -> Vec<Option<T>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, T)>> = Mutex::new(Vec::new());
    let workers = threads.min(n).max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                pace.enter_thread();
                loop {
                    if pace.is_stopped() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        break;
                    }
                    if let Some(r) = f(i) {
                        if let Ok(mut v) = results.lock() {
                            v.push((i, r));
                        }
                    }
                }
            });
        }
    });
    let mut out: Vec<Option<T>> = (0..n).map(|_| None).collect();
    for (i, r) in results.into_inner().unwrap_or_else(|e| e.into_inner()) {
        if let Some(slot) = out.get_mut(i) {
            *slot = Some(r);
        }
    }
    out
}

/// The smallest segment a file is split into.
const MIN_SEGMENT: u64 = 16 << 20;

/// How many segments `len` bytes are read in: one per thread, none smaller
/// than `min`.
fn segments(len: u64, threads: usize, min: u64) -> usize {
    usize::try_from(len / min.max(1))
        .unwrap_or(usize::MAX)
        .clamp(1, threads.max(1))
}

/// The nominal bounds of segment `part` of `parts` over `[lo, hi)`.
fn nominal(lo: u64, hi: u64, part: usize, parts: usize) -> u64 {
    let len = u128::from(hi - lo);
    let at = len * part as u128 / parts.max(1) as u128;
    lo + u64::try_from(at).unwrap_or(0)
}

/// The start of the first line at or after `x` (just past the first `\n`
/// at or after `x - 1`), or `size`: where a segment starts or ends, so that
/// two neighbours agree on it. Reads forward in small pieces, whatever the
/// length of the line.
fn line_start(file: &File, x: u64, size: u64, pace: &Pace) -> std::io::Result<u64> {
    if x == 0 || x >= size {
        return Ok(x.min(size));
    }
    let mut buf = vec![0u8; 64 << 10];
    let mut pos = x - 1;
    while pos < size {
        let want = usize::try_from(size - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let piece = buf.get_mut(..want).unwrap_or(&mut []);
        pace.take(want as u64)?;
        let n = file.read_at(piece, pos)?;
        if n == 0 {
            break;
        }
        if let Some(i) = memchr::memchr(b'\n', piece.get(..n).unwrap_or(&[])) {
            return Ok(pos + i as u64 + 1);
        }
        pos += n as u64;
    }
    Ok(size)
}

/// Reads `[pos, end)` of a file with positional reads (segments of one file
/// are read by several threads at once).
struct At<'a> {
    file: &'a File,
    pos: u64,
    end: u64,
}

impl Read for At<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let want = usize::try_from(self.end.saturating_sub(self.pos))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self
            .file
            .read_at(buf.get_mut(..want).unwrap_or(&mut []), self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// Looks at one file and at what the last run knew of it.
fn prepare(
    path: &Path,
    shown: &str,
    old: &BTreeMap<(u64, u64), FileState>,
    pace: &Pace,
) -> Prepared {
    let mut ff = FileFacts {
        path: shown.to_owned(),
        gzip: path.extension().is_some_and(|e| e == "gz"),
        ..Default::default()
    };
    let fail = |mut ff: FileFacts, e: &std::io::Error| {
        ff.error = Some(io_reason(e));
        Prepared::Done(ff, None)
    };
    let file = match open_regular(path) {
        Ok(Ok(f)) => f,
        Ok(Err(why)) => {
            ff.skipped = Some(why);
            return Prepared::Done(ff, None);
        }
        Err(e) => return fail(ff, &e),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return fail(ff, &e),
    };
    let size = meta.len();
    let head_len = size.min(HEAD as u64);
    let head = match head_hash(&file, head_len, pace) {
        Ok(h) => h,
        Err(e) => return fail(ff, &e),
    };

    // What the last run knew about this very file.
    let mut start = (0u64, 0u64, Vec::new(), 0u64);
    if let Some(prev) = old.get(&(meta.dev(), meta.ino())) {
        let same_head = prev.head_len <= size
            && (if prev.head_len == head_len {
                prev.head_sha256 == head
            } else {
                head_hash(&file, prev.head_len, pace).is_ok_and(|h| h == prev.head_sha256)
            });
        if prev.path != shown {
            ff.rotated_from = Some(prev.path.clone());
        }
        if !same_head || size < prev.offset || prev.gzip != ff.gzip {
            ff.mode = ReadMode::Truncated;
        } else if ff.gzip {
            if prev.size == size {
                ff.mode = ReadMode::Unchanged;
                ff.hits = prev.hits.clone();
                ff.hits_total = prev.hits_total;
                let mut st = prev.clone();
                st.path = shown.to_owned();
                return Prepared::Done(ff, Some(st));
            }
            ff.mode = ReadMode::Truncated;
        } else {
            ff.mode = ReadMode::Resumed;
            start = (prev.offset, prev.lines, prev.hits.clone(), prev.hits_total);
        }
    }
    let (offset, lines, hits, hits_total) = start;
    ff.from_offset = offset;
    ff.hits = hits;
    ff.hits_total = hits_total;
    let gzip = ff.gzip;
    Prepared::Read(Pending {
        file,
        ff,
        dev: meta.dev(),
        ino: meta.ino(),
        size,
        head_len,
        head,
        offset: if gzip { 0 } else { offset },
        lines: if gzip { 0 } else { lines },
    })
}

/// Reads one job's segment (or a whole gzip stream).
fn scan_part(r: &Pending, job: &Job, scanner: &Scanner, p: &Params, pace: &Pace) -> Part {
    let mut part = Part {
        start: 0,
        end: 0,
        complete: 0,
        newlines: 0,
        hits: Vec::new(),
        hits_total: 0,
        bytes_scanned: 0,
        error: None,
    };
    let mut ff = FileFacts::default();
    let outcome = if r.ff.gzip {
        let limited = BufReader::with_capacity(1 << 20, pace.reader((&r.file).take(r.size)));
        let mut gz = flate2::read::MultiGzDecoder::new(limited);
        scan_stream(&mut gz, scanner, p, 0, &mut ff, pace)
            .map_err(|(e, _, _)| format!("cannot decompress: {}", io_reason(&e)))
    } else {
        let bounds = (|| -> std::io::Result<(u64, u64)> {
            let lo = nominal(r.offset, r.size, job.part, job.parts);
            let hi = nominal(r.offset, r.size, job.part + 1, job.parts);
            // The first segment starts where the last run stopped (maybe
            // inside a line longer than a chunk); the last ends at `size`.
            let start = if job.part == 0 {
                lo
            } else {
                line_start(&r.file, lo, r.size, pace)?
            };
            let end = if job.part + 1 == job.parts {
                r.size
            } else {
                line_start(&r.file, hi, r.size, pace)?
            };
            Ok((start, end.max(start)))
        })();
        match bounds {
            Err(e) => Err(io_reason(&e)),
            Ok((start, end)) => {
                part.start = start;
                part.end = end;
                if start == end {
                    return part;
                }
                let mut at = pace.reader(At {
                    file: &r.file,
                    pos: start,
                    end,
                });
                scan_stream(&mut at, scanner, p, 0, &mut ff, pace)
                    .map_err(|(e, _, _)| io_reason(&e))
            }
        }
    };
    match outcome {
        Ok((complete, newlines)) => {
            part.complete = complete;
            part.newlines = newlines;
        }
        Err(e) => part.error = Some(e),
    }
    part.hits = ff.hits;
    part.hits_total = ff.hits_total;
    part.bytes_scanned = ff.bytes_scanned;
    part
}

/// Puts a file's parts back in order: absolute line numbers, the first
/// `max_findings_per_file` hits, where the next run starts; returns its facts
/// and, when it was read to the end, its new state.
fn finish(r: Pending, parts: Vec<Part>, p: &Params) -> (FileFacts, Option<FileState>) {
    let Pending {
        mut ff,
        dev,
        ino,
        size,
        head_len,
        head,
        offset,
        lines,
        ..
    } = r;
    let mut resume = offset;
    let mut resume_lines = lines;
    for part in parts {
        if let Some(e) = part.error {
            ff.error = Some(e);
            return (ff, None);
        }
        if part.start == part.end && !ff.gzip {
            continue;
        }
        for mut h in part.hits {
            if ff.hits.len() >= p.max_findings_per_file {
                break;
            }
            h.line += resume_lines;
            ff.hits.push(h);
        }
        ff.hits_total += part.hits_total;
        ff.bytes_scanned += part.bytes_scanned;
        resume = part.start + part.complete;
        resume_lines += part.newlines;
    }
    ff.to_offset = if ff.gzip { size } else { resume };
    // Hits on the partial last line are found again next run.
    let transient = |h: &&HitFact| !ff.gzip && h.line > resume_lines;
    let stored_hits = ff.hits.iter().filter(|h| !transient(h)).cloned().collect();
    let stored_total = ff.hits_total - ff.hits.iter().filter(transient).count() as u64;
    let st = FileState {
        dev,
        ino,
        path: ff.path.clone(),
        size,
        head_len,
        head_sha256: head,
        offset: ff.to_offset,
        lines: resume_lines,
        gzip: ff.gzip,
        hits: stored_hits,
        hits_total: stored_total,
    };
    (ff, Some(st))
}

/// Reads `r` to its end in chunks, scanning whole lines. Returns the offset
/// (relative to where `r` started) just past the last complete line, and the
/// number of lines before it; the trailing partial line is scanned but not
/// counted, so the next run reads it again whole.
fn scan_stream(
    r: &mut impl Read,
    scanner: &Scanner,
    p: &Params,
    first_lines: u64,
    ff: &mut FileFacts,
    pace: &Pace,
) -> Result<(u64, u64), (std::io::Error, u64, u64)> {
    let max_line = p.max_line_bytes.max(256);
    let mut buf = vec![0u8; CHUNK + max_line];
    let mut carry = 0usize;
    let mut consumed = 0u64; // bytes before buf[0]
    let mut lines = first_lines; // newlines before buf[0]
    let mut hits = Vec::new();
    let push = |ff: &mut FileFacts,
                hits: &mut Vec<vigil_rules::checks::log_secrets::detect::Hit>| {
        for h in hits.drain(..) {
            ff.hits_total += 1;
            if ff.hits.len() < p.max_findings_per_file {
                ff.hits.push(HitFact::from(h));
            }
        }
    };
    loop {
        // Fill the buffer after the carried partial line.
        let mut len = carry;
        let target = buf.len();
        while len < target {
            match r.read(buf.get_mut(len..target).unwrap_or(&mut [])) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err((e, consumed, lines)),
            }
        }
        let eof = len < target;
        let data = buf.get(..len).unwrap_or(&[]);
        ff.bytes_scanned += (len - carry) as u64;
        if eof {
            // The rest: whole lines, then possibly a partial last line.
            let complete = memchr::memrchr(b'\n', data).map_or(0, |i| i + 1);
            let n = scan_pieces(scanner, data, lines + 1, &mut hits, pace)
                .map_err(|e| (e, consumed, lines))?;
            push(ff, &mut hits);
            return Ok((consumed + complete as u64, lines + n));
        }
        let cut = match memchr::memrchr(b'\n', data) {
            Some(i) if len - (i + 1) <= max_line => i + 1,
            // A line longer than the window: scan it in pieces.
            _ => len,
        };
        let n = scan_pieces(
            scanner,
            data.get(..cut).unwrap_or(&[]),
            lines + 1,
            &mut hits,
            pace,
        )
        .map_err(|e| (e, consumed, lines))?;
        push(ff, &mut hits);
        lines += n;
        consumed += cut as u64;
        buf.copy_within(cut..len, 0);
        carry = len - cut;
    }
}

/// Scans `data` in pieces of about [`STEP`] bytes, each cut after a newline
/// (a line is never split), looking at the stop switch before each piece.
/// Returns the newlines seen, as one `scan` of the whole would.
fn scan_pieces(
    scanner: &Scanner,
    data: &[u8],
    first_line: u64,
    hits: &mut Vec<vigil_rules::checks::log_secrets::detect::Hit>,
    pace: &Pace,
) -> std::io::Result<u64> {
    let mut n = 0u64;
    let mut rest = data;
    while !rest.is_empty() {
        pace.check()?;
        let cut = if rest.len() <= STEP {
            rest.len()
        } else {
            match memchr::memrchr(b'\n', rest.get(..STEP).unwrap_or(rest)) {
                Some(i) => i + 1,
                None => memchr::memchr(b'\n', rest.get(STEP..).unwrap_or(&[]))
                    .map_or(rest.len(), |i| STEP + i + 1),
            }
        };
        let (piece, tail) = rest.split_at_checked(cut).unwrap_or((rest, &[]));
        n += scanner.scan(piece, first_line + n, hits);
        rest = tail;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(extra: &str) -> Params {
        serde_yaml::from_str(&format!("paths: [/x]\n{extra}")).unwrap()
    }

    fn run(text: &[u8], chunk_lines: u64) -> (FileFacts, (u64, u64)) {
        let p = params("");
        let sc = p.scanner().unwrap();
        let mut ff = FileFacts::default();
        let r = scan_stream(
            &mut &text[..],
            &sc,
            &p,
            chunk_lines,
            &mut ff,
            &Pace::default(),
        )
        .map_err(|e| e.0)
        .unwrap();
        (ff, r)
    }

    #[test]
    fn partial_last_line_is_scanned_but_not_passed() {
        let (ff, (off, lines)) = run(b"a\npassword=hunter2\nb password=x1", 0);
        assert_eq!(ff.hits.len(), 2);
        assert_eq!(ff.hits[1].line, 3);
        assert_eq!((off, lines), (19, 2));
    }

    #[test]
    fn a_stopped_scan_ends_with_the_stop_error() {
        let p = params("");
        let sc = p.scanner().unwrap();
        let pace = Pace::default().for_check("");
        pace.stop();
        let mut ff = FileFacts::default();
        let e =
            scan_stream(&mut &b"password=hunter2\n"[..], &sc, &p, 0, &mut ff, &pace).unwrap_err();
        assert!(crate::pace::is_stopped(&e.0));
        assert!(ff.hits.is_empty());
    }

    #[test]
    fn lines_across_chunks_are_numbered() {
        let mut text = Vec::new();
        for i in 0..400_000 {
            text.extend_from_slice(format!("line {i} nothing here\n").as_bytes());
        }
        text.extend_from_slice(b"password=hunter2\n");
        let (ff, (off, lines)) = run(&text, 10);
        assert!(text.len() > CHUNK);
        assert_eq!(ff.hits[0].line, 400_011);
        // more than one chunk and more than one piece per chunk
        assert!(text.len() > CHUNK + STEP);
        assert_eq!(lines, 400_011);
        assert_eq!(off, text.len() as u64);
    }

    /// Scans a file as `collect` does, in `parts` segments read one after
    /// another: facts and the state saved.
    fn in_parts(path: &Path, parts: usize, p: &Params) -> (FileFacts, FileState) {
        let pace = Pace::default();
        let sc = p.scanner().unwrap();
        let Prepared::Read(r) = prepare(path, "f", &BTreeMap::new(), &pace) else {
            panic!("not read")
        };
        let found: Vec<Part> = (0..parts)
            .map(|part| {
                scan_part(
                    &r,
                    &Job {
                        file: 0,
                        part,
                        parts,
                    },
                    &sc,
                    p,
                    &pace,
                )
            })
            .collect();
        let (ff, st) = finish(r, found, p);
        (ff, st.unwrap())
    }

    type Summary = (Vec<(u64, String, String)>, u64, u64, u64, u64);

    fn summary(ff: &FileFacts, st: &FileState) -> Summary {
        (
            ff.hits
                .iter()
                .map(|h| (h.line, h.code.clone(), h.excerpt.clone()))
                .collect(),
            ff.hits_total,
            ff.to_offset,
            st.lines,
            ff.bytes_scanned,
        )
    }

    #[test]
    fn segments_and_their_bounds() {
        assert_eq!(segments(0, 4, 100), 1);
        assert_eq!(segments(99, 4, 100), 1);
        assert_eq!(segments(250, 4, 100), 2);
        assert_eq!(segments(10_000, 4, 100), 4);
        assert_eq!(segments(10_000, 0, 0), 1);
        assert_eq!(nominal(10, 110, 0, 4), 10);
        assert_eq!(nominal(10, 110, 2, 4), 60);
        assert_eq!(nominal(10, 110, 4, 4), 110);
    }

    #[test]
    fn line_starts_are_found_past_long_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut text = b"ab\ncd\n".to_vec();
        text.extend(std::iter::repeat_n(b'x', 200_000));
        text.extend_from_slice(b"\nlast");
        std::fs::write(&path, &text).unwrap();
        let f = File::open(&path).unwrap();
        let size = text.len() as u64;
        let pace = Pace::default();
        let ls = |x| line_start(&f, x, size, &pace).unwrap();
        assert_eq!(ls(0), 0);
        assert_eq!(ls(1), 3);
        assert_eq!(ls(3), 3); // just after a newline: already a line start
        assert_eq!(ls(4), 6);
        // inside a line of 200,000 bytes: read on in pieces to its end
        assert_eq!(ls(10), 200_007);
        assert_eq!(ls(200_007), 200_007);
        // inside the unterminated last line: the end
        assert_eq!(ls(200_009), size);
        assert_eq!(ls(size + 5), size);
    }

    #[test]
    fn a_file_in_segments_reads_as_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.log");
        let mut text = Vec::new();
        for i in 0..30_000u32 {
            text.extend_from_slice(format!("line {i} nothing here 1764112345678\n").as_bytes());
            if i.is_multiple_of(7_001) {
                text.extend_from_slice(b"user=bob password=hunter2 card=4111111111111111\n");
            }
        }
        // A line longer than a whole read buffer, with secrets at both ends
        // and in the middle.
        text.extend_from_slice(b"password=early ");
        text.extend(std::iter::repeat_n(b'y', CHUNK + 200_000));
        text.extend_from_slice(b" postgres://app:s3cret@db/app ");
        text.extend(std::iter::repeat_n(b'z', 300_000));
        text.extend_from_slice(b" password=late\n");
        for i in 0..1000 {
            text.extend_from_slice(format!("tail {i}\n").as_bytes());
        }
        // The partial last line: scanned, not passed.
        text.extend_from_slice(b"pass=unfinished");
        std::fs::write(&path, &text).unwrap();
        let p = params("max_findings_per_file: 100000");
        let (ff1, st1) = in_parts(&path, 1, &p);
        assert_eq!(ff1.hits_total, 5 * 2 + 3 + 1, "{:?}", ff1.hits);
        assert_eq!(st1.offset, (text.len() - "pass=unfinished".len()) as u64);
        assert_eq!(st1.lines, 30_000 + 5 + 1 + 1000);
        assert_eq!(ff1.hits.last().unwrap().line, 30_000 + 5 + 1 + 1000 + 1);
        assert_eq!(st1.hits_total, ff1.hits_total - 1);
        for parts in [2, 3, 7, 64] {
            let (ff, st) = in_parts(&path, parts, &p);
            assert_eq!(summary(&ff, &st), summary(&ff1, &st1), "{parts} parts");
            assert_eq!(st.hits, st1.hits);
        }
        // A secret straddling a nominal bound is seen whole by one segment.
        let at = text.windows(8).position(|w| w == b"hunter2 ").unwrap() as u64;
        let whole = text.len() as u64;
        let parts = usize::try_from(whole / (at + 3)).unwrap();
        assert!(parts >= 2);
        let bound = nominal(0, whole, 1, parts);
        assert!(bound > at - 10 && bound < at + 10, "{bound} {at}");
        let (ff, st) = in_parts(&path, parts, &p);
        assert_eq!(summary(&ff, &st), summary(&ff1, &st1));
        // The cap applies to the file, not to each segment.
        let capped = params("max_findings_per_file: 3");
        let (ffc, _) = in_parts(&path, 7, &capped);
        assert_eq!(ffc.hits.len(), 3);
        assert_eq!(ffc.hits_total, ff1.hits_total);
        assert_eq!(ffc.hits[..], ff1.hits[..3]);
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
