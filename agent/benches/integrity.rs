//! `file_integrity` throughput: dpkg_verify over this machine's package set,
//! and a SHA-256 baseline (write, then compare) of a tree.
//!
//! dpkg_verify's first run is a full pass (its verification cache, in a
//! state directory of the bench's own, starts empty); later runs take
//! unchanged files from the cache. `VIGIL_BENCH_FULL=1` makes every run a
//! full pass.
//!
//! `cargo bench -p vigil-agent --bench integrity -- [TREE]`; TREE defaults to
//! `$VIGIL_BENCH_TREE`, and the baseline half is skipped without either.
//! Prints files/s, MB/s and CPU seconds per run. dpkg_verify runs on the
//! check's own pool (`thread_pool`), or on `VIGIL_BENCH_THREADS` threads.
//! See docs/benchmarks/clamav-integrity.md.

use std::path::PathBuf;
use std::time::Instant;

use vigil_agent::collect::file_integrity::{dpkg_verify, thread_pool, write_baseline};
use vigil_agent::collect::{self, HostCtx};
use vigil_rules::checks::file_integrity::Params;

fn main() {
    let ctx = HostCtx::live();
    let runs: usize = std::env::var("VIGIL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    // the check's own pool, or `VIGIL_BENCH_THREADS` threads to compare
    let pool = match std::env::var("VIGIL_BENCH_THREADS")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(n) => rayon::ThreadPoolBuilder::new().num_threads(n).build().ok(),
        None => thread_pool(&ctx.pace).ok(),
    };
    let Some(pool) = pool else {
        println!("cannot start the hashing threads");
        return;
    };
    println!("threads: {}", pool.current_num_threads());
    let state = std::env::temp_dir().join("vigil-bench-integrity-state");
    let _ = std::fs::remove_dir_all(&state);
    let dctx = HostCtx {
        state_dir: state.clone(),
        ..ctx.clone()
    };
    let always_full = std::env::var_os("VIGIL_BENCH_FULL").is_some();
    if let Ok(l) = std::fs::read_to_string("/proc/loadavg") {
        println!("load average: {}", l.trim());
    }
    for run in 1..=runs {
        if always_full {
            let _ = std::fs::remove_dir_all(&state);
        }
        let t = Instant::now();
        let cpu0 = cpu_seconds();
        let every = std::time::Duration::from_secs(24 * 3600);
        match pool.install(|| dpkg_verify(&PathBuf::from("/var/lib/dpkg"), every, &dctx)) {
            Ok(d) => {
                let s = t.elapsed().as_secs_f64();
                let cpu = cpu_seconds()
                    .zip(cpu0)
                    .map(|((u1, s1), (u0, s0))| (u1 - u0, s1 - s0));
                let files = d.files_checked + d.conffiles_checked;
                println!(
                    "dpkg_verify run {run} ({}): {} packages, {files} files ({} hashed, {} from the cache), {:.0} MB in {s:.2}s = {:.0} files/s, {:.0} MB/s, CPU {}, {} problems",
                    if d.full_pass { "full pass" } else { "cached" },
                    d.packages,
                    d.files_hashed,
                    d.files_from_cache,
                    d.bytes_read as f64 / 1e6,
                    files as f64 / s,
                    d.bytes_read as f64 / 1e6 / s,
                    cpu.map_or("?".into(), |(u, s)| format!("{u:.2} user + {s:.2} sys s")),
                    d.problems.len()
                );
            }
            Err(e) => println!("dpkg_verify: {e}"),
        }
    }

    let tree = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .or_else(|| std::env::var("VIGIL_BENCH_TREE").ok());
    let Some(tree) = tree else {
        let _ = std::fs::remove_dir_all(&state);
        println!("baseline: no tree given, skipped");
        return;
    };
    let ctx = HostCtx {
        root: PathBuf::from("/"),
        state_dir: state.clone(),
        pace: Default::default(),
    };
    let baseline = std::env::temp_dir().join("vigil-bench-baseline.json");
    let p = Params {
        dpkg_verify: false,
        dpkg_admin_dir: "/var/lib/dpkg".into(),
        conffiles_fail: false,
        full_pass_every: None,
        paths: vec![tree.clone()],
        baseline: Some(baseline.display().to_string()),
        exclude: vec![],
    };
    let bytes: u64 = walk_bytes(&tree);
    for run in 1..=runs {
        let t = Instant::now();
        match write_baseline(&p, &ctx) {
            Ok(w) => {
                let s = t.elapsed().as_secs_f64();
                println!(
                    "baseline write run {run}: {} files, {:.0} MB in {s:.2}s = {:.0} files/s, {:.0} MB/s",
                    w.entries,
                    bytes as f64 / 1e6,
                    w.entries as f64 / s,
                    bytes as f64 / 1e6 / s
                );
            }
            Err(e) => println!("baseline: {e}"),
        }
        let t = Instant::now();
        let spec = vigil_rules::checks::CheckSpec::FileIntegrity(p.clone());
        let rt = tokio::runtime::Runtime::new().ok();
        let facts = rt.map(|rt| rt.block_on(collect::collect(&spec, &ctx)));
        let s = t.elapsed().as_secs_f64();
        if let Some(Ok(vigil_rules::checks::Facts::FileIntegrity(f))) = facts {
            if let Some(b) = f.baseline {
                println!(
                    "baseline compare run {run}: {} files, {:.0} MB in {s:.2}s = {:.0} files/s, {:.0} MB/s, {} diffs",
                    b.files_now,
                    bytes as f64 / 1e6,
                    b.files_now as f64 / s,
                    bytes as f64 / 1e6 / s,
                    b.diffs.len()
                );
            }
        }
    }
    let _ = std::fs::remove_file(&baseline);
    let _ = std::fs::remove_dir_all(&state);
}

/// User and system CPU seconds of this process so far (all its threads),
/// from `/proc/self/stat` (fields 14 and 15, in USER_HZ = 100 ticks).
fn cpu_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // the command name (field 2) may hold spaces: count from its closing paren
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split(' ').collect();
    let tick = |i: usize| f.get(i)?.parse::<f64>().ok().map(|t| t / 100.0);
    Some((tick(11)?, tick(12)?))
}

fn walk_bytes(tree: &str) -> u64 {
    walkdir::WalkDir::new(tree)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
