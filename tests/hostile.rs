//! Hostile input at the service, in short mode (tests/hostile/README.md has
//! the long runs): schemathesis against the reporter's own OpenAPI document
//! (no 5xx, every status, content type and body as documented), and a load
//! script that floods the intake and report routes, sends oversized bodies,
//! bad tokens and slow clients while a probe checks that `/healthz` still
//! answers within 100 ms, then counts what the store kept.
//!
//! The two run one after the other (a lock), so the probe measures the
//! reporter under the script's load, not under schemathesis.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use vigil_tests::*;

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PIP_HINT: &str = "pip install 'schemathesis==4.32.5'";

/// schemathesis from $SCHEMATHESIS, target/hostile-venv, or PATH.
fn schemathesis() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(p) = std::env::var_os("SCHEMATHESIS") {
        candidates.push(p.into());
    }
    candidates.push(workspace().join("target/hostile-venv/bin/schemathesis"));
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|d| d.join("schemathesis")));
    }
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "this test needs schemathesis: `{PIP_HINT}` (on PATH), or \
                 `python3 -m venv target/hostile-venv && target/hostile-venv/bin/{PIP_HINT}`, \
                 or set SCHEMATHESIS=/path/to/schemathesis (.ci/run installs it)"
            )
        })
}

#[test]
fn schemathesis_finds_no_server_error_and_no_spec_mismatch() {
    let st = schemathesis();
    let reporter = binary("vigil-reporter", "vigil-reporter");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let o = Command::new("bash")
        .arg(workspace().join("tests/hostile/schemathesis.sh"))
        .env("SCHEMATHESIS", &st)
        .env("VIGIL_REPORTER_BIN", &reporter)
        .env("HOSTILE_EXAMPLES", "25")
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/hostile/schemathesis.sh: {e}"));
    let out = format!("{}\n{}", stdout(&o), stderr(&o));
    assert!(
        o.status.success(),
        "schemathesis found problems (exit {:?}):\n{out}",
        o.status.code()
    );
    // It did test something: every documented operation.
    assert!(out.contains("passed"), "{out}");
    assert!(!out.contains("Tested: 0"), "{out}");
}

#[test]
fn floods_oversized_bodies_bad_tokens_and_slow_clients_leave_healthz_fast_and_the_store_clean() {
    require_tool("python3", "python3");
    let reporter = binary("vigil-reporter", "vigil-reporter");
    let agent = agent();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let summary = tempfile::NamedTempFile::new().unwrap();
    let o = Command::new("python3")
        .arg(workspace().join("tests/hostile/load.py"))
        // The test asserts liveness (every probe answered, none starved for
        // 2 s); the 100 ms figure is measured by the full mode for BENCHMARKS.md,
        // not asserted here: timing bounds in tests flake on a loaded machine.
        .args(["--mode", "short", "--probe-limit-ms", "2000", "--reporter"])
        .arg(&reporter)
        .arg("--agent")
        .arg(&agent)
        .arg("--json")
        .arg(summary.path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tests/hostile/load.py: {e}"));
    let out = format!("{}\n{}", stdout(&o), stderr(&o));
    assert!(
        o.status.success(),
        "the load script failed (exit {:?}):\n{out}",
        o.status.code()
    );
    let s: serde_json::Value =
        serde_json::from_slice(&std::fs::read(summary.path()).unwrap()).unwrap();
    let ph = &s["phases"];
    // Each phase did what it says: legitimate work accepted, abuse refused.
    let n = |phase: &str, kind: &str, status: &str| {
        ph[phase]["statuses"][kind][status].as_u64().unwrap_or(0)
    };
    assert!(n("intake", "valid", "201") >= 1, "{out}");
    assert!(
        n("intake", "valid", "429") >= 1,
        "the hour limit never hit: {out}"
    );
    assert!(n("intake", "wrong_type", "415") >= 1, "{out}");
    // An oversized body is answered 413 before it is read; the client may see
    // the reset of the connection instead (-1), never a success.
    let refused = |phase: &str, kind: &str| n(phase, kind, "413") + n(phase, kind, "-1");
    assert!(refused("intake", "declared_huge") >= 1, "{out}");
    assert!(n("reports", "valid", "201") >= 10, "{out}");
    assert!(n("reports", "duplicate", "200") >= 1, "{out}");
    assert!(n("reports", "other_host", "403") >= 1, "{out}");
    assert!(n("reports", "unknown_token", "401") >= 1, "{out}");
    assert!(refused("reports", "huge") >= 1, "{out}");
    for (phase, kind) in [
        ("intake", "declared_huge"),
        ("intake", "chunked_huge"),
        ("reports", "huge"),
    ] {
        for ok in ["200", "201"] {
            assert_eq!(n(phase, kind, ok), 0, "{phase}/{kind} accepted: {out}");
        }
    }
    assert!(
        n("slowloris", "slow_headers", "closed_by_server") >= 1,
        "{out}"
    );
    assert_eq!(s["failures"].as_array().map(Vec::len), Some(0), "{out}");
    assert_eq!(s["probe"]["failed"], 0, "{out}");
    assert_eq!(s["probe"]["over_limit"], 0, "{out}");
    eprintln!(
        "healthz under load: p99 {} ms, max {} ms over {} probes",
        s["probe"]["p99_ms"], s["probe"]["max_ms"], s["probe"]["count"]
    );
}
