//! Facts for `file_integrity`: dpkg's md5sums checked in parallel, and a
//! SHA-256 baseline of chosen paths (written by `vigil-agent baseline`)
//! compared with what is there now.
//!
//! dpkg_verify keeps a verification cache in the state directory (see
//! [`cache`]): between full passes (`full_pass_every`), a file whose stat
//! identity and expected MD5 are unchanged since it was hashed keeps that
//! outcome without being read.
//!
//! A check hashes on a thread pool of its own, its threads at the configured
//! priority; every buffer comes out of the run's read budget, and a stopped
//! (timed-out) check ends at the next file or buffer.

use vigil_rules::checks::file_integrity::{Facts, Params};

use super::host::HostCtx;
use crate::collect::CollectError;
use crate::pace::{self, Pace, PoolError};

mod baseline;
pub mod cache;
mod dpkg;

pub use baseline::{write_baseline, BaselineFile, Entry, Written};
use dpkg::cached_run_likely;
pub use dpkg::dpkg_verify;

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

pub(super) fn with_buf<R>(f: impl FnOnce(&mut [u8]) -> R) -> R {
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
pub fn thread_pool(pace: &Pace) -> Result<rayon::ThreadPool, PoolError> {
    sized_pool(pace, MIN_THREADS)
}

/// A pool of `min` threads or one per core if more.
fn sized_pool(pace: &Pace, min: usize) -> Result<rayon::ThreadPool, PoolError> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pace = pace.clone();
    rayon::ThreadPoolBuilder::new()
        .num_threads(cores.max(min))
        .thread_name(|i| format!("vigil-integrity-{i}"))
        .start_handler(move |_| pace.enter_thread())
        .build()
        .map_err(|source| PoolError {
            name: "vigil-integrity".into(),
            source,
        })
}

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    // Between full passes dpkg_verify reads only the few files whose
    // identity changed: one thread per core then, not the [`MIN_THREADS`] a
    // full pass needs to keep the disk busy (each idle thread still costs
    // its stack and malloc arena: ~2 MB of the whole run's peak here).
    let pool = if p.dpkg_verify && cached_run_likely(p, ctx) {
        sized_pool(&ctx.pace, 1)?
    } else {
        thread_pool(&ctx.pace)?
    };
    let facts = pool.install(|| collect_here(p, ctx));
    if ctx.pace.is_stopped() {
        return Err(pace::Stopped.into());
    }
    Ok(facts)
}

fn collect_here(p: &Params, ctx: &HostCtx) -> Facts {
    let mut facts = Facts::default();
    if p.dpkg_verify {
        match dpkg_verify(&ctx.path(&p.dpkg_admin_dir), p.full_pass_every(), ctx) {
            Ok(d) => facts.dpkg = Some(d),
            Err(e) => facts.errors.push(e),
        }
    }
    if let Some(b) = &p.baseline {
        match baseline::compare_baseline(p, b, ctx) {
            Ok(b) => facts.baseline = Some(b),
            Err(e) => facts.errors.push(e.to_string()),
        }
    }
    facts
}
