//! Pacing of the file-heavy checks (`log_secrets`, `file_integrity`,
//! `clamav`), so that a scan never hurts the production it watches:
//!
//! - **Stop**: each check gets its own stop switch ([`Pace::for_check`]),
//!   thrown when the check's future is dropped (the engine's `timeout`). The
//!   blocking readers look at it before every file and every buffer, so a
//!   timed-out check really stops its threads instead of reading on unseen.
//! - **Read budget**: one token bucket ([`Bucket`]) per run, shared by every
//!   file-heavy check of that run: a reader takes tokens for each buffer before
//!   it reads it (and gives back what it did not get), with a burst of one
//!   second's worth. Bytes read by time `t` ≤ budget × `t` + burst.
//! - **Idle priority**: the threads doing that work (dedicated threads, never
//!   shared pool threads, since a lowered priority cannot be raised again
//!   without `CAP_SYS_NICE`) set themselves to nice 19 and the idle I/O class.
//!   Both are per-thread on Linux.

use std::io::{self, Read};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// CPU and I/O priority of the threads that read files for a check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanPriority {
    /// The priority the agent runs at.
    #[default]
    Normal,
    /// Nice 19 and the idle I/O class: the disk and the CPU go to everything
    /// else first.
    Idle,
}

/// One MB of the read budget: 10^6 bytes, as `dd` and `fio` count.
pub const MB: u64 = 1_000_000;

/// The daemon's read budget when the config sets none (MB/s).
pub const DAEMON_READ_BUDGET_MB_PER_S: u64 = 50;

/// Nanounits per byte in the bucket: integer arithmetic, exact in tests.
const NANO: i128 = 1_000_000_000;

/// A token bucket in bytes: `rate` bytes per second, at most `burst` ahead.
#[derive(Debug)]
pub struct Bucket {
    rate: u64,
    burst: u64,
    state: Mutex<BucketState>,
}

#[derive(Debug)]
struct BucketState {
    /// Available bytes × 10^9; negative while readers are queued for tokens.
    tokens: i128,
    last: Instant,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Bucket {
    /// A full bucket of `rate` bytes per second with a burst of one second.
    pub fn new(rate: u64, now: Instant) -> Bucket {
        let rate = rate.max(1);
        Bucket {
            rate,
            burst: rate,
            state: Mutex::new(BucketState {
                tokens: i128::from(rate) * NANO,
                last: now,
            }),
        }
    }

    pub fn rate(&self) -> u64 {
        self.rate
    }

    pub fn burst(&self) -> u64 {
        self.burst
    }

    /// Takes `n` bytes' worth of tokens at `now` and returns how long the
    /// caller must wait before reading them. Later callers queue behind
    /// earlier ones (the debt is shared), so whatever is granted by time `t`
    /// never exceeds `burst + rate × (t − creation)`.
    pub fn reserve(&self, n: u64, now: Instant) -> Duration {
        let mut s = lock(&self.state);
        if now > s.last {
            let elapsed =
                i128::try_from(now.duration_since(s.last).as_nanos()).unwrap_or(i128::MAX);
            s.tokens = s
                .tokens
                .saturating_add(elapsed.saturating_mul(i128::from(self.rate)))
                .min(i128::from(self.burst) * NANO);
            s.last = now;
        }
        s.tokens -= i128::from(n) * NANO;
        if s.tokens >= 0 {
            return Duration::ZERO;
        }
        // ceil(deficit / rate) nanoseconds
        let rate = i128::from(self.rate);
        let ns = (-s.tokens + rate - 1) / rate;
        Duration::from_nanos(u64::try_from(ns).unwrap_or(u64::MAX))
    }

    /// Gives back tokens taken for bytes that were not read.
    pub fn refund(&self, n: u64) {
        let mut s = lock(&self.state);
        s.tokens = s
            .tokens
            .saturating_add(i128::from(n) * NANO)
            .min(i128::from(self.burst) * NANO);
    }
}

/// The error readers return once their check was stopped.
#[derive(Debug, Clone, Copy)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stopped: the check ran past its timeout")
    }
}

impl std::error::Error for Stopped {}

/// Whether an I/O error is a reader noticing that its check was stopped.
pub fn is_stopped(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<Stopped>())
}

fn stopped() -> io::Error {
    io::Error::other(Stopped)
}

/// One check's stop switch and read accounting.
#[derive(Debug, Default)]
struct CheckToken {
    /// The check type, for the debug line when the last holder lets go.
    label: &'static str,
    stopped: AtomicBool,
    wake: Mutex<()>,
    cv: Condvar,
    bytes: AtomicU64,
    waited_ns: AtomicU64,
    started: OnceLock<Instant>,
    /// Progress for a terminal: the work the check expects (bytes and/or
    /// files, 0 when unknown) and the files it finished.
    total_bytes: AtomicU64,
    total_items: AtomicU64,
    items_done: AtomicU64,
    /// What an item is (`files`, `packages`).
    unit: OnceLock<&'static str>,
}

/// How far one check has come, as [`Pace::progress`] reads it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckProgress {
    pub bytes: u64,
    pub total_bytes: u64,
    pub items: u64,
    pub total_items: u64,
    /// What an item is: `files`, `packages`.
    pub unit: &'static str,
}

impl Drop for CheckToken {
    fn drop(&mut self) {
        if self.label.is_empty() {
            return;
        }
        let bytes = self.bytes.load(Ordering::Relaxed);
        let waited_ms = self.waited_ns.load(Ordering::Relaxed) / 1_000_000;
        let elapsed_ms = self.started.get().map_or(0, |s| {
            u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX)
        });
        if self.stopped.load(Ordering::Relaxed) {
            tracing::debug!(
                "pace: {} stopped after its timeout; its readers had read {bytes} bytes in {elapsed_ms} ms and waited {waited_ms} ms for the read budget",
                self.label
            );
        } else if bytes > 0 {
            tracing::debug!(
                "pace: {} read {bytes} bytes in {elapsed_ms} ms and waited {waited_ms} ms for the read budget",
                self.label
            );
        }
    }
}

/// How a check's readers behave: priority, the run's read budget, the
/// check's stop switch. Cheap to clone; clones share all three.
#[derive(Debug, Clone, Default)]
pub struct Pace {
    priority: ScanPriority,
    budget: Option<Arc<Bucket>>,
    token: Arc<CheckToken>,
}

/// Throws its check's stop switch when dropped, unless disarmed.
#[derive(Debug)]
pub struct StopOnDrop {
    pace: Option<Pace>,
}

impl StopOnDrop {
    /// The check finished: nothing to stop.
    pub fn disarm(mut self) {
        self.pace = None;
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        if let Some(p) = self.pace.take() {
            p.stop();
        }
    }
}

impl Pace {
    /// A run's pacing: `read_budget_mb_per_s` 0 means unlimited. The bucket
    /// starts full now.
    pub fn new(priority: ScanPriority, read_budget_mb_per_s: u64) -> Pace {
        Pace {
            priority,
            budget: (read_budget_mb_per_s > 0).then(|| {
                Arc::new(Bucket::new(
                    read_budget_mb_per_s.saturating_mul(MB),
                    Instant::now(),
                ))
            }),
            token: Arc::default(),
        }
    }

    /// The check expects to read `bytes` bytes (for progress only).
    pub fn expect_bytes(&self, bytes: u64) {
        self.token.total_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The check expects to go through `n` items, `unit` (`files`,
    /// `packages`) saying what they are (for progress only).
    pub fn expect_items(&self, n: u64, unit: &'static str) {
        let _ = self.token.unit.set(unit);
        self.token.total_items.store(n, Ordering::Relaxed);
    }

    /// `n` more items are done (for progress only).
    pub fn items_done(&self, n: u64) {
        self.token.items_done.fetch_add(n, Ordering::Relaxed);
    }

    /// How far this check has come.
    pub fn progress(&self) -> CheckProgress {
        let t = &self.token;
        CheckProgress {
            bytes: t.bytes.load(Ordering::Relaxed),
            total_bytes: t.total_bytes.load(Ordering::Relaxed),
            items: t.items_done.load(Ordering::Relaxed),
            total_items: t.total_items.load(Ordering::Relaxed),
            unit: t.unit.get().copied().unwrap_or("files"),
        }
    }

    pub fn priority(&self) -> ScanPriority {
        self.priority
    }

    /// The run's budget in bytes per second, if any.
    pub fn budget(&self) -> Option<u64> {
        self.budget.as_ref().map(|b| b.rate())
    }

    /// The same priority and bucket, with a fresh stop switch for one check.
    pub fn for_check(&self, label: &'static str) -> Pace {
        let token = CheckToken {
            label,
            stopped: AtomicBool::new(false),
            wake: Mutex::new(()),
            cv: Condvar::new(),
            bytes: AtomicU64::new(0),
            waited_ns: AtomicU64::new(0),
            started: OnceLock::from(Instant::now()),
            total_bytes: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            items_done: AtomicU64::new(0),
            unit: OnceLock::new(),
        };
        Pace {
            priority: self.priority,
            budget: self.budget.clone(),
            token: Arc::new(token),
        }
    }

    /// A guard that stops this check when dropped (a timed-out future).
    pub fn stop_on_drop(&self) -> StopOnDrop {
        StopOnDrop {
            pace: Some(self.clone()),
        }
    }

    /// Stops this check's readers: every later [`Pace::check`], read or
    /// budget wait fails with [`Stopped`].
    pub fn stop(&self) {
        self.token.stopped.store(true, Ordering::SeqCst);
        let _g = lock(&self.token.wake);
        self.token.cv.notify_all();
    }

    pub fn is_stopped(&self) -> bool {
        self.token.stopped.load(Ordering::SeqCst)
    }

    /// `Err(Stopped)` once the check was stopped: call before each file.
    pub fn check(&self) -> io::Result<()> {
        if self.is_stopped() {
            Err(stopped())
        } else {
            Ok(())
        }
    }

    /// Bytes read through this check's readers so far.
    pub fn bytes_read(&self) -> u64 {
        self.token.bytes.load(Ordering::Relaxed)
    }

    /// Sleeps `d` unless stopped first; `true` when stopped.
    fn sleep(&self, d: Duration) -> bool {
        let deadline = Instant::now() + d;
        let mut g = lock(&self.token.wake);
        loop {
            if self.is_stopped() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            g = match self.token.cv.wait_timeout(g, deadline - now) {
                Ok((g, _)) => g,
                Err(e) => e.into_inner().0,
            };
        }
    }

    /// Takes `n` bytes from the read budget, waiting for them if need be.
    pub fn take(&self, n: u64) -> io::Result<()> {
        self.check()?;
        let Some(bucket) = &self.budget else {
            return Ok(());
        };
        let wait = bucket.reserve(n, Instant::now());
        if wait > Duration::ZERO {
            self.token.waited_ns.fetch_add(
                u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
            if self.sleep(wait) {
                bucket.refund(n);
                return Err(stopped());
            }
        }
        Ok(())
    }

    /// Gives back budget taken for bytes that were not read.
    pub fn give_back(&self, n: u64) {
        if let Some(b) = &self.budget {
            b.refund(n);
        }
    }

    /// The most one read asks for under a budget: small enough to keep the
    /// pace smooth, large enough to keep reads efficient.
    fn max_read(&self) -> usize {
        match &self.budget {
            None => usize::MAX,
            Some(b) => usize::try_from(b.rate() / 8)
                .unwrap_or(usize::MAX)
                .clamp(64 << 10, 1 << 20),
        }
    }

    /// Wraps a reader: every read checks the stop switch and takes its
    /// bytes from the budget first.
    pub fn reader<R: Read>(&self, inner: R) -> PacedRead<R> {
        PacedRead {
            inner,
            pace: self.clone(),
            max: self.max_read(),
        }
    }

    /// Reads a whole file through the budget.
    pub fn read_file(&self, path: &std::path::Path) -> io::Result<Vec<u8>> {
        self.check()?;
        let f = std::fs::File::open(path)?;
        let mut buf = Vec::new();
        self.reader(f).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Puts the calling thread at the configured priority. Only for threads
    /// made for this work: a pooled thread would stay at idle afterwards.
    pub fn enter_thread(&self) {
        if self.priority == ScanPriority::Idle {
            if let Err(e) = set_idle_priority() {
                static WARNED: OnceLock<()> = OnceLock::new();
                if WARNED.set(()).is_ok() {
                    tracing::warn!("cannot lower the scan threads' priority: {e}");
                }
            }
        }
    }

    /// A thread pool of its own for one check's parallel reading, its
    /// threads at the configured priority. Dropped with the check.
    pub fn thread_pool(&self, name: &'static str) -> Result<rayon::ThreadPool, PoolError> {
        let pace = self.clone();
        rayon::ThreadPoolBuilder::new()
            .thread_name(move |i| format!("{name}-{i}"))
            .start_handler(move |_| pace.enter_thread())
            .build()
            .map_err(|source| PoolError {
                name: name.to_owned(),
                source,
            })
    }
}

/// A check's thread pool could not be started.
#[derive(Debug, thiserror::Error)]
#[error("cannot start the {name} threads: {source}")]
pub struct PoolError {
    /// The threads' name prefix (`vigil-integrity`).
    pub name: String,
    #[source]
    pub source: rayon::ThreadPoolBuildError,
}

/// nice 19 and `IOPRIO_CLASS_IDLE` for the calling thread (both per-thread on
/// Linux: `setpriority(PRIO_PROCESS, tid)`, `ioprio_set(IOPRIO_WHO_PROCESS, tid)`).
fn set_idle_priority() -> Result<(), String> {
    let tid = rustix::thread::gettid();
    rustix::process::setpriority_process(Some(tid), 19).map_err(|e| format!("setpriority: {e}"))?;
    ioprio::set_priority(
        ioprio::Target::Process(ioprio::Pid::from_raw(tid.as_raw_nonzero().get())),
        ioprio::Priority::new(ioprio::Class::Idle),
    )
    .map_err(|e| format!("ioprio_set: {e}"))
}

/// A reader under a [`Pace`]; see [`Pace::reader`].
#[derive(Debug)]
pub struct PacedRead<R> {
    inner: R,
    pace: Pace,
    max: usize,
}

impl<R: Read> Read for PacedRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = buf.len().min(self.max);
        self.pace.take(want as u64)?;
        let Some(part) = buf.get_mut(..want) else {
            return Ok(0);
        };
        match self.inner.read(part) {
            Ok(n) => {
                self.pace.give_back((want - n) as u64);
                self.pace.token.bytes.fetch_add(n as u64, Ordering::Relaxed);
                Ok(n)
            }
            Err(e) => {
                self.pace.give_back(want as u64);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_new_bucket_holds_one_second_and_then_paces() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0);
        assert_eq!(b.burst(), 1000);
        assert_eq!(b.reserve(1000, t0), Duration::ZERO);
        assert_eq!(b.reserve(500, t0), S / 2);
        // the next reader queues behind the first one's debt
        assert_eq!(b.reserve(500, t0), S);
        // half a second later, half of that debt is paid
        assert_eq!(b.reserve(0, t0 + S / 2), S / 2);
    }

    #[test]
    fn idle_time_refills_only_up_to_the_burst() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0);
        assert_eq!(b.reserve(1000, t0), Duration::ZERO);
        let later = t0 + 3600 * S;
        assert_eq!(b.reserve(1000, later), Duration::ZERO);
        assert_eq!(b.reserve(1, later), Duration::from_millis(1));
    }

    #[test]
    fn refunds_return_tokens_but_never_above_the_burst() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0);
        assert_eq!(b.reserve(1500, t0), S / 2);
        b.refund(700);
        assert_eq!(b.reserve(200, t0), Duration::ZERO);
        b.refund(1_000_000);
        assert_eq!(b.reserve(1000, t0), Duration::ZERO);
        assert_eq!(b.reserve(1, t0), Duration::from_millis(1));
    }

    #[test]
    fn readers_larger_than_the_burst_still_get_through() {
        let t0 = Instant::now();
        let b = Bucket::new(1000, t0);
        assert_eq!(b.reserve(4000, t0), 3 * S);
    }

    #[test]
    fn granted_bytes_never_exceed_rate_times_time_plus_burst() {
        // Three simulated readers on a deterministic clock: each reserves its
        // next buffer at the time it was granted the previous one.
        let t0 = Instant::now();
        let rate = 3_000u64;
        let b = Bucket::new(rate, t0);
        let sizes = [700u64, 1300, 4100];
        let mut next = [t0; 3];
        let mut grants: Vec<(Instant, u64)> = Vec::new();
        for round in 0..200 {
            let i = round % 3;
            let at = next[i];
            let wait = b.reserve(sizes[i], at);
            next[i] = at + wait;
            grants.push((next[i], sizes[i]));
        }
        grants.sort_by_key(|g| g.0);
        let mut total = 0u64;
        for (at, n) in &grants {
            total += n;
            let allowed = b.burst() as f64 + rate as f64 * (*at - t0).as_secs_f64();
            assert!(total as f64 <= allowed + 1.0, "{total} > {allowed}");
        }
        // and the budget is used, not wasted: the last grant is close to the bound
        let (last, _) = grants.last().unwrap();
        let allowed = b.burst() as f64 + rate as f64 * (*last - t0).as_secs_f64();
        assert!(
            total as f64 >= allowed - 4100.0 * 3.0,
            "{total} vs {allowed}"
        );
    }

    #[test]
    fn a_stopped_check_fails_its_reads_and_waits() {
        let pace = Pace::new(ScanPriority::Normal, 1).for_check("");
        let mut r = pace.reader(&b"abcdef"[..]);
        let mut buf = [0u8; 4];
        assert_eq!(r.read(&mut buf).unwrap(), 4);
        assert_eq!(pace.bytes_read(), 4);
        pace.stop();
        let e = r.read(&mut buf).unwrap_err();
        assert!(is_stopped(&e));
        assert!(pace.check().is_err());
        assert!(pace.take(10 * MB).is_err());
    }

    #[test]
    fn a_wait_for_the_budget_ends_when_the_check_is_stopped() {
        // 1 MB/s: ten more MB would be a ten-second wait.
        let pace = Pace::new(ScanPriority::Normal, 1).for_check("");
        pace.take(MB).unwrap();
        let other = pace.clone();
        let waiter = std::thread::spawn(move || other.take(10 * MB));
        // Stop as soon as the waiter is in its wait (or before: either way it fails).
        pace.stop();
        let e = waiter.join().unwrap().unwrap_err();
        assert!(is_stopped(&e));
    }

    #[test]
    fn clones_share_the_switch_and_checks_get_their_own() {
        let run = Pace::new(ScanPriority::Idle, 50);
        let a = run.for_check("a");
        let b = run.for_check("b");
        let guard = a.stop_on_drop();
        drop(guard);
        assert!(a.clone().is_stopped());
        assert!(!b.is_stopped());
        let g = b.stop_on_drop();
        g.disarm();
        assert!(!b.is_stopped());
        assert_eq!(b.budget(), Some(50 * MB));
        assert_eq!(b.priority(), ScanPriority::Idle);
        assert_eq!(Pace::new(ScanPriority::Normal, 0).budget(), None);
    }

    #[test]
    fn paced_reads_are_capped_and_budget_is_returned_for_short_reads() {
        let pace = Pace::new(ScanPriority::Normal, 16).for_check("");
        let data = vec![7u8; 3 << 20];
        let mut r = pace.reader(&data[..]);
        let mut buf = vec![0u8; 4 << 20];
        // 16 MB/s: one read asks for at most 1 MiB
        assert_eq!(r.read(&mut buf).unwrap(), 1 << 20);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 2 << 20);
        assert_eq!(pace.bytes_read(), 3 << 20);
    }

    #[test]
    fn idle_priority_is_set_on_the_calling_thread_only() {
        let pace = Pace::new(ScanPriority::Idle, 0);
        let before = rustix::process::getpriority_process(None).unwrap();
        let seen = std::thread::spawn(move || {
            pace.enter_thread();
            let tid = rustix::thread::gettid();
            let io = ioprio::get_priority(ioprio::Target::Process(ioprio::Pid::from_raw(
                tid.as_raw_nonzero().get(),
            )))
            .unwrap();
            (rustix::process::getpriority_process(Some(tid)).unwrap(), io)
        })
        .join()
        .unwrap();
        assert_eq!(seen.0, 19);
        assert_eq!(seen.1.class(), Some(ioprio::Class::Idle));
        assert_eq!(rustix::process::getpriority_process(None).unwrap(), before);
    }
}
