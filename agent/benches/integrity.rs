//! `file_integrity` throughput: dpkg_verify over this machine's package set,
//! and a SHA-256 baseline (write, then compare) of a tree.
//!
//! `cargo bench -p vigil-agent --bench integrity -- [TREE]`; TREE defaults to
//! `$VIGIL_BENCH_TREE`, and the baseline half is skipped without either.
//! Prints files/s and MB/s per run. See docs/benchmarks/clamav-integrity.md.

use std::path::PathBuf;
use std::time::Instant;

use vigil_agent::collect::file_integrity::{dpkg_verify, write_baseline};
use vigil_agent::collect::{self, HostCtx};
use vigil_rules::checks::file_integrity::Params;

fn main() {
    let ctx = HostCtx::live();
    let runs: usize = std::env::var("VIGIL_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!("threads: {}", rayon::current_num_threads());
    for run in 1..=runs {
        let t = Instant::now();
        match dpkg_verify(&PathBuf::from("/var/lib/dpkg"), &ctx) {
            Ok(d) => {
                let s = t.elapsed().as_secs_f64();
                let files = d.files_checked + d.conffiles_checked;
                println!(
                    "dpkg_verify run {run}: {} packages, {files} files, {:.0} MB in {s:.2}s = {:.0} files/s, {:.0} MB/s, {} problems",
                    d.packages,
                    d.bytes_read as f64 / 1e6,
                    files as f64 / s,
                    d.bytes_read as f64 / 1e6 / s,
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
        println!("baseline: no tree given, skipped");
        return;
    };
    let state = std::env::temp_dir().join("vigil-bench-integrity-state");
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

fn walk_bytes(tree: &str) -> u64 {
    walkdir::WalkDir::new(tree)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}
