//! Reading the matched files: each file's state looked at first
//! ([`prepare`]), then the reading shared by the threads ([`par_map`]): whole
//! files, and a large plain file in segments cut at line boundaries
//! ([`scan_part`]), put back in order with absolute line numbers
//! ([`finish`]). Gzip files are read as a stream ([`scan_stream`]).
//!
//! INVARIANT: only redacted [`HitFact`]s leave `scan_stream`; the buffers
//! holding raw log bytes are never formatted into a message.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use vigil_rules::checks::log_secrets::detect::Scanner;
use vigil_rules::checks::log_secrets::{FileFacts, HitFact, Params, ReadMode};

use super::open_regular;
use super::state::{head_hash, FileState, HEAD};
use crate::collect::host::io_reason;
use crate::pace::Pace;

/// Bytes read per chunk.
const CHUNK: usize = 1 << 20;
/// Bytes scanned between two looks at the stop switch: a timed-out scan
/// stops within one of these, not one whole chunk.
const STEP: usize = 256 << 10;

/// A file whose state was looked at.
pub(super) enum Prepared {
    /// Nothing to read: an error, or a compressed file unchanged since the
    /// last run.
    Done(FileFacts, Option<FileState>),
    Read(Pending),
}

/// A file to read from `offset` (plain) or whole (gzip) up to `size`.
pub(super) struct Pending {
    pub(super) file: File,
    pub(super) ff: FileFacts,
    pub(super) dev: u64,
    pub(super) ino: u64,
    pub(super) size: u64,
    pub(super) head_len: u64,
    pub(super) head: String,
    pub(super) offset: u64,
    /// Lines before `offset`.
    pub(super) lines: u64,
}

/// One piece of reading: segment `part` of `parts` of a file.
pub(super) struct Job {
    pub(super) file: usize,
    pub(super) part: usize,
    pub(super) parts: usize,
}

/// What a job found. Line numbers of `hits` count from the segment's start.
pub(super) struct Part {
    /// The segment read, `[start, end)` in the file (plain files).
    pub(super) start: u64,
    pub(super) end: u64,
    /// Just past its last complete line, relative to `start`.
    pub(super) complete: u64,
    /// Newlines in the segment (complete lines).
    pub(super) newlines: u64,
    pub(super) hits: Vec<HitFact>,
    pub(super) hits_total: u64,
    pub(super) bytes_scanned: u64,
    pub(super) error: Option<String>,
}

/// Runs `f(i)` for `i` in `0..n` on up to `threads` threads at the check's
/// priority; results in order (`None` where a stopped check skipped one).
pub(super) fn par_map<T: Send>(
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
pub(super) const MIN_SEGMENT: u64 = 16 << 20;

/// How many segments `len` bytes are read in: one per thread, none smaller
/// than `min`.
pub(super) fn segments(len: u64, threads: usize, min: u64) -> usize {
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
    pub(super) file: &'a File,
    pub(super) pos: u64,
    pub(super) end: u64,
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
pub(super) fn prepare(
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
pub(super) fn scan_part(
    r: &Pending,
    job: &Job,
    scanner: &Scanner,
    p: &Params,
    pace: &Pace,
) -> Part {
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
pub(super) fn finish(r: Pending, parts: Vec<Part>, p: &Params) -> (FileFacts, Option<FileState>) {
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
pub(super) fn scan_stream(
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
pub(super) fn scan_pieces(
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
}
