//! Facts for `log_secrets`: walks the globs, reads each file (gzip as a
//! stream) in large chunks, and hands the bytes to the pure scanner in
//! `vigil_rules`. Several files are read in parallel, one per core.
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
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use vigil_rules::checks::log_secrets::detect::Scanner;
use vigil_rules::checks::log_secrets::{Facts, FileFacts, GlobFacts, HitFact, Params, ReadMode};

use super::{io_reason, HostCtx};
use crate::pace::{self, Pace};

/// Bytes read per chunk.
const CHUNK: usize = 4 << 20;
/// Bytes scanned between two looks at the stop switch: a timed-out scan
/// stops within one of these, not one whole chunk.
const STEP: usize = 1 << 20;
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
}

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, String> {
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
                            if path.is_dir() {
                                continue;
                            }
                            gf.matched += 1;
                            if seen.insert(path.clone()) {
                                files.push(path);
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
    let old: BTreeMap<(u64, u64), FileState> = if p.incremental {
        match load_state(&state_path) {
            Ok(s) => s.files.into_iter().map(|f| ((f.dev, f.ino), f)).collect(),
            Err(e) => {
                facts.state_warnings.push(e);
                BTreeMap::new()
            }
        }
    } else {
        BTreeMap::new()
    };

    // Files in parallel: each worker takes the next file.
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, FileFacts, Option<FileState>)>> = Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(files.len())
        .max(1);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                ctx.pace.enter_thread();
                loop {
                    if ctx.pace.is_stopped() {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    let (ff, st) =
                        scan_file(path, &ctx.display(path), &scanner, p, &old, &ctx.pace);
                    if let Ok(mut r) = results.lock() {
                        r.push((i, ff, st));
                    }
                }
            });
        }
    });
    if ctx.pace.is_stopped() {
        // Half-read files must not be remembered as read.
        return Err(pace::Stopped.to_string());
    }
    let mut results = results.into_inner().unwrap_or_else(|e| e.into_inner());
    results.sort_by_key(|r| r.0);
    let mut new_state = State {
        version: STATE_VERSION,
        files: Vec::new(),
    };
    for (_, ff, st) in results {
        facts.files.push(ff);
        new_state.files.extend(st);
    }
    if p.incremental {
        if let Err(e) = save_state(&state_path, &new_state) {
            facts.state_warnings.push(e);
        }
    }
    facts.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(facts)
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
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
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

/// Scans one file; returns its facts and, when it was read, its new state.
fn scan_file(
    path: &Path,
    shown: &str,
    scanner: &Scanner,
    p: &Params,
    old: &BTreeMap<(u64, u64), FileState>,
    pace: &Pace,
) -> (FileFacts, Option<FileState>) {
    let mut ff = FileFacts {
        path: shown.to_owned(),
        gzip: path.extension().is_some_and(|e| e == "gz"),
        ..Default::default()
    };
    let fail = |mut ff: FileFacts, e: &std::io::Error| {
        ff.error = Some(io_reason(e));
        (ff, None)
    };
    let file = match File::open(path) {
        Ok(f) => f,
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
                return (ff, Some(st));
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

    let outcome = if ff.gzip {
        let limited = BufReader::with_capacity(1 << 20, pace.reader((&file).take(size)));
        let mut gz = flate2::read::MultiGzDecoder::new(limited);
        scan_stream(&mut gz, scanner, p, 0, &mut ff, pace)
    } else {
        let mut f = &file;
        match f.seek(SeekFrom::Start(offset)) {
            Ok(_) => {
                let mut limited = pace.reader(f.take(size - offset));
                scan_stream(&mut limited, scanner, p, lines, &mut ff, pace)
            }
            Err(e) => Err((e, 0, 0)),
        }
    };
    let (resume_rel, resume_lines) = match outcome {
        Ok(r) => r,
        Err((e, _, _)) => {
            ff.error = Some(if ff.gzip {
                format!("cannot decompress: {}", io_reason(&e))
            } else {
                io_reason(&e)
            });
            return (ff, None);
        }
    };
    ff.to_offset = if ff.gzip { size } else { offset + resume_rel };
    // Hits on the partial last line are found again next run.
    let transient = |h: &&HitFact| !ff.gzip && h.line > resume_lines;
    let stored_hits = ff.hits.iter().filter(|h| !transient(h)).cloned().collect();
    let stored_total = ff.hits_total - ff.hits.iter().filter(transient).count() as u64;
    let st = FileState {
        dev: meta.dev(),
        ino: meta.ino(),
        path: shown.to_owned(),
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
}
