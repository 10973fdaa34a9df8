//! The systemd journal, read with `journalctl -o export` from the cursor
//! where the last run stopped.
//!
//! Why `journalctl -o export` and not the journal files: the files'
//! format (hash tables, entry arrays, compressed objects, sealing) is
//! systemd's to change and journalctl reads every version of it, merges
//! the system and user journals, follows rotation and vacuuming, and hands
//! out stable cursors; export (rather than `-o json`) carries binary
//! messages as raw bytes with a length instead of number arrays, so it is
//! cheap to parse one entry at a time while it streams.
//!
//! Each entry becomes one line `IDENT: MESSAGE`; hits carry the entry's
//! ordinal (counted since the state began) as their line and a timestamp in
//! the excerpt. Hits of earlier runs are reported again while the journal
//! still holds their entries (older than its first entry: vacuumed, gone).

use std::io::{BufReader, Read};
use std::process::{Command, Stdio};

use vigil_rules::checks::log_secrets::detect::{Hit, Scanner};
use vigil_rules::checks::log_secrets::journal::{next_entry, Entry};
use vigil_rules::checks::log_secrets::{FileFacts, HitFact, Params, ReadMode};

use super::state::JournalState;
use crate::collect::host::{io_reason, HostCtx};

/// Bytes of entries scanned at once.
const BATCH: usize = 1 << 20;

fn journalctl(ctx: &HostCtx) -> Command {
    let mut cmd = Command::new("journalctl");
    cmd.args(["-o", "export", "--no-pager", "-q"]);
    if !ctx.is_live() {
        cmd.arg(format!(
            "--directory={}",
            ctx.path("/var/log/journal").display()
        ));
    }
    cmd.stdin(Stdio::null());
    cmd
}

/// The time of the journal's first entry (µs), if it can be read.
fn head_time(ctx: &HostCtx) -> Option<u64> {
    let mut child = journalctl(ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let first = child
        .stdout
        .take()
        .map(BufReader::new)
        .and_then(|mut r| next_entry(&mut r, 1 << 16).ok().flatten());
    let _ = child.kill();
    let _ = child.wait();
    first.and_then(|e| e.realtime_us)
}

pub(super) fn scan(
    scanner: &Scanner,
    p: &Params,
    ctx: &HostCtx,
    prev: Option<JournalState>,
) -> (FileFacts, Option<JournalState>) {
    let shown = if ctx.is_live() {
        "journal".to_owned()
    } else {
        "journal:/var/log/journal".to_owned()
    };
    let mut ff = FileFacts {
        path: shown,
        ..Default::default()
    };
    let mut st = JournalState::default();
    if let Some(prev) = prev.filter(|_| p.incremental) {
        match run(scanner, p, ctx, Some(&prev.cursor), prev.lines) {
            Ok(r) => {
                // Earlier hits, while the journal still holds their entries.
                let head = head_time(ctx).unwrap_or(0);
                for (h, t) in prev.hits.into_iter().zip(prev.hit_times) {
                    if t >= head {
                        st.hits.push(h);
                        st.hit_times.push(t);
                    }
                }
                st.hits_total = st.hits.len() as u64;
                ff.mode = ReadMode::Resumed;
                return finish(ff, st, r, prev.cursor, p);
            }
            // A cursor the journal no longer knows: read it all again.
            Err(_) => ff.mode = ReadMode::Truncated,
        }
    }
    match run(scanner, p, ctx, None, 0) {
        Ok(r) => finish(ff, st, r, String::new(), p),
        Err(e) => {
            ff.error = Some(e);
            (ff, None)
        }
    }
}

struct Scanned {
    cursor: Option<String>,
    lines: u64,
    first_line: u64,
    bytes: u64,
    hits: Vec<(HitFact, u64)>,
}

fn finish(
    mut ff: FileFacts,
    mut st: JournalState,
    r: Scanned,
    old_cursor: String,
    p: &Params,
) -> (FileFacts, Option<JournalState>) {
    for (h, t) in r.hits {
        st.hits_total += 1;
        if st.hits.len() < p.max_findings_per_file {
            st.hits.push(h);
            st.hit_times.push(t);
        }
    }
    st.cursor = r.cursor.unwrap_or(old_cursor);
    st.lines = r.lines;
    ff.from_offset = r.first_line;
    ff.to_offset = r.lines;
    ff.bytes_scanned = r.bytes;
    ff.hits = st.hits.clone();
    ff.hits_total = st.hits_total;
    let keep = !st.cursor.is_empty();
    (ff, keep.then_some(st))
}

/// Runs journalctl (after `cursor`), scanning every entry; entries are
/// numbered from `lines + 1`.
fn run(
    scanner: &Scanner,
    p: &Params,
    ctx: &HostCtx,
    cursor: Option<&str>,
    lines: u64,
) -> Result<Scanned, String> {
    let mut cmd = journalctl(ctx);
    if let Some(c) = cursor {
        cmd.arg(format!("--after-cursor={c}"));
    }
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                "`journalctl` not found: install systemd's journalctl or set `journal: false`"
                    .to_owned()
            } else {
                format!("cannot run journalctl: {}", io_reason(&e))
            }
        })?;
    let mut out = Scanned {
        cursor: None,
        lines,
        first_line: lines,
        bytes: 0,
        hits: Vec::new(),
    };
    let read = (|| -> std::io::Result<()> {
        let Some(stdout) = child.stdout.take() else {
            return Ok(());
        };
        let mut r = BufReader::with_capacity(1 << 20, ctx.pace.reader(stdout));
        let mut buf: Vec<u8> = Vec::with_capacity(BATCH + 4096);
        let mut times: Vec<u64> = Vec::new();
        let mut hits: Vec<Hit> = Vec::new();
        let flush =
            |buf: &mut Vec<u8>, times: &mut Vec<u64>, out: &mut Scanned, hits: &mut Vec<Hit>| {
                let first = out.lines + 1 - times.len() as u64;
                scanner.scan(buf, first, hits);
                for h in hits.drain(..) {
                    let t = usize::try_from(h.line - first)
                        .ok()
                        .and_then(|i| times.get(i))
                        .copied()
                        .unwrap_or(0);
                    let mut f = HitFact::from(h);
                    f.excerpt = format!("{} {}", stamp(t), f.excerpt);
                    out.hits.push((f, t));
                }
                buf.clear();
                times.clear();
            };
        loop {
            let entry: Option<Entry> = next_entry(&mut r, p.max_line_bytes)?;
            let Some(e) = entry else { break };
            let line = e.line();
            out.bytes += line.len() as u64 + 1;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            times.push(e.realtime_us.unwrap_or(0));
            out.lines += 1;
            if e.cursor.is_some() {
                out.cursor = e.cursor;
            }
            if buf.len() >= BATCH {
                ctx.pace.check()?;
                flush(&mut buf, &mut times, &mut out, &mut hits);
            }
        }
        flush(&mut buf, &mut times, &mut out, &mut hits);
        Ok(())
    })();
    if let Err(e) = read {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("reading the journal: {}", io_reason(&e)));
    }
    let mut err = String::new();
    if let Some(mut s) = child.stderr.take() {
        let _ = s.by_ref().take(4096).read_to_string(&mut err);
    }
    let status = child
        .wait()
        .map_err(|e| format!("journalctl: {}", io_reason(&e)))?;
    if !status.success() {
        let first = err.lines().next().unwrap_or("").trim().to_owned();
        return Err(format!("journalctl failed ({status}): {first}"));
    }
    Ok(out)
}

/// `2026-12-02T16:00:00Z`, or `-` for an entry without a time.
fn stamp(us: u64) -> String {
    i64::try_from(us / 1_000_000)
        .ok()
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map_or_else(
            || "-".to_owned(),
            |t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )
}
