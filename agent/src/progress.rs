//! Progress of a `vigil-agent check` on a terminal: which checks are running
//! and, for the long ones (dpkg verification, log scans, clamd scans), how
//! far they are, as files or bytes done of the total.
//!
//! The engine registers each running check, with its [`Pace`], on the run's
//! [`Board`] (`RunOptions::board`); collectors that know their amount of work say so with
//! [`Pace::expect_items`] / [`Pace::expect_bytes`], and the bytes their paced
//! readers read are counted already. A [`Ticker`] redraws one status line on
//! stderr a few times a second and erases it at the end. Nothing of this is
//! shown when stderr is not a terminal or the output is JSON, and none of it
//! reaches the report.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::pace::{CheckProgress, Pace};

/// The checks of one run: how many in all, how many done, which are running.
#[derive(Debug, Default)]
pub struct Board {
    total: AtomicU64,
    done: AtomicU64,
    next_id: AtomicU64,
    running: Mutex<Vec<Running>>,
}

#[derive(Debug)]
struct Running {
    id: u64,
    label: String,
    started: Instant,
    pace: Pace,
}

/// Removes its check from the board when the check ends (or is dropped).
#[derive(Debug)]
pub struct Entry {
    board: Arc<Board>,
    id: u64,
}

impl Drop for Entry {
    fn drop(&mut self) {
        if let Ok(mut r) = self.board.running.lock() {
            r.retain(|e| e.id != self.id);
        }
        self.board.done.fetch_add(1, Ordering::Relaxed);
    }
}

impl Board {
    /// The run has `n` checks.
    pub fn set_total(&self, n: u64) {
        self.total.store(n, Ordering::Relaxed);
    }

    /// `label` (`CONTROL/CHECK`) started, reading through `pace`.
    pub fn start(self: &Arc<Self>, label: String, pace: Pace) -> Entry {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut r) = self.running.lock() {
            r.push(Running {
                id,
                label,
                started: Instant::now(),
                pace,
            });
        }
        Entry {
            board: self.clone(),
            id,
        }
    }

    /// The status line as it stands, at most `width` characters.
    pub fn line(&self, width: usize) -> String {
        let running: Vec<(String, Duration, CheckProgress)> = match self.running.lock() {
            Ok(r) => r
                .iter()
                .map(|e| (e.label.clone(), e.started.elapsed(), e.pace.progress()))
                .collect(),
            Err(_) => Vec::new(),
        };
        render(
            self.done.load(Ordering::Relaxed),
            self.total.load(Ordering::Relaxed),
            &running,
            width,
        )
    }
}

/// The status line: `[done/total] LABEL how-far · LABEL how-far …`, longest
/// running first, cut to `width` characters.
pub fn render(
    done: u64,
    total: u64,
    running: &[(String, Duration, CheckProgress)],
    width: usize,
) -> String {
    let mut running: Vec<_> = running.iter().collect();
    running.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut line = format!("[{done}/{total}]");
    for (label, elapsed, p) in running {
        line.push(' ');
        line.push_str(label);
        line.push(' ');
        line.push_str(&how_far(*elapsed, p));
        line.push_str(" ·");
    }
    if line.ends_with(" ·") {
        line.truncate(line.len() - " ·".len());
    }
    if line.chars().count() > width {
        let cut: String = line.chars().take(width.saturating_sub(1)).collect();
        line = cut + "…";
    }
    line
}

fn how_far(elapsed: Duration, p: &CheckProgress) -> String {
    let secs = elapsed.as_secs();
    let items = p.items.min(p.total_items);
    let bytes = p.bytes.min(p.total_bytes);
    if let Some(pct) = items.saturating_mul(100).checked_div(p.total_items) {
        format!(
            "{}/{} {} {pct}%",
            thousands(p.items.min(p.total_items)),
            thousands(p.total_items),
            p.unit
        )
    } else if let Some(pct) = bytes.saturating_mul(100).checked_div(p.total_bytes) {
        format!(
            "{}/{} {pct}%",
            human_bytes(p.bytes.min(p.total_bytes)),
            human_bytes(p.total_bytes)
        )
    } else if p.bytes > 0 {
        format!("{} read, {secs}s", human_bytes(p.bytes))
    } else {
        format!("{secs}s")
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn human_bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GB", 1_000_000_000), ("MB", 1_000_000), ("kB", 1_000)];
    for (unit, size) in UNITS {
        if n >= size {
            let whole = n / size;
            let tenth = (n % size) * 10 / size;
            return format!("{whole}.{tenth} {unit}");
        }
    }
    format!("{n} B")
}

/// Redraws the board's line on stderr until dropped, then erases it.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    /// Starts drawing `board` every 200 ms.
    pub fn start(board: Arc<Board>) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                let width = terminal_width();
                let mut err = std::io::stderr();
                while !flag.load(Ordering::Relaxed) {
                    // `\r` and "erase to end of line": one line, redrawn.
                    let _ = write!(err, "\r\x1b[K{}", board.line(width));
                    let _ = err.flush();
                    std::thread::sleep(Duration::from_millis(200));
                }
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            })
            .ok();
        Ticker { stop, thread }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The terminal's width from `COLUMNS`, else 100.
fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse::<usize>().ok())
        .filter(|w| *w >= 20)
        .unwrap_or(100)
        .saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(bytes: u64, total_bytes: u64, items: u64, total_items: u64) -> CheckProgress {
        CheckProgress {
            bytes,
            total_bytes,
            items,
            total_items,
            unit: "files",
        }
    }

    #[test]
    fn line_shows_counts_and_each_running_check() {
        let running = vec![
            (
                "SP-3/password-free-logs".to_owned(),
                Duration::from_secs(2),
                p(45_100_000, 60_000_000, 0, 0),
            ),
            (
                "SP-7/system-software".to_owned(),
                Duration::from_secs(9),
                p(0, 0, 12_345, 93_129),
            ),
            (
                "SP-1/public-https".to_owned(),
                Duration::from_secs(1),
                p(0, 0, 0, 0),
            ),
        ];
        let line = render(3, 19, &running, 200);
        assert_eq!(
            line,
            "[3/19] SP-7/system-software 12,345/93,129 files 13% · SP-3/password-free-logs 45.1 MB/60.0 MB 75% · SP-1/public-https 1s"
        );
    }

    #[test]
    fn line_is_cut_to_the_width() {
        let running = vec![(
            "SP-7/system-software".to_owned(),
            Duration::from_secs(1),
            p(5_000, 0, 0, 0),
        )];
        let line = render(0, 1, &running, 20);
        assert_eq!(line.chars().count(), 20);
        assert!(line.ends_with('…'));
        assert_eq!(render(1, 1, &[], 80), "[1/1]");
    }

    #[test]
    fn board_tracks_running_checks_and_their_pace() {
        let board = Arc::new(Board::default());
        board.set_total(2);
        let pace = Pace::default().for_check("file_integrity");
        pace.expect_items(10, "files");
        pace.items_done(4);
        let a = board.start("C-1/a".into(), pace);
        let b = board.start("C-2/b".into(), Pace::default().for_check("x"));
        let line = board.line(200);
        assert!(line.starts_with("[0/2] "), "{line}");
        assert!(line.contains("C-1/a 4/10 files 40%"), "{line}");
        drop(a);
        let line = board.line(200);
        assert!(line.starts_with("[1/2] C-2/b "), "{line}");
        drop(b);
        assert_eq!(board.line(200), "[2/2]");
    }
}
