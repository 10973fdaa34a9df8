//! Scans that never hurt production (issue 13), end to end with the built
//! agent: a timed-out `log_secrets` check really stops reading, a read budget
//! is honoured, and the scan threads run at idle CPU and I/O priority only
//! when asked to.
//!
//! No assertion here is a wall-clock bound on the test: work is measured as
//! the agent's CPU time (getrusage of the child, through bash's `times`) and
//! the budget from the agent's own accounting (its report's evidence and its
//! debug log).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use vigil_tests::{
    agent, check_of, check_yaml, control_yaml, policy_yaml, report_json, require_tool, stderr,
    write_policy, FixtureHost,
};

/// A log whose every line holds a secret assignment: the slowest kind of text
/// for the scanner, so a whole scan costs seconds of CPU on little disk.
fn write_dense_log(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut written = 0;
    let mut i = 0u64;
    while written < bytes {
        let line = format!(
            "2026-11-26T01:{:02}:00Z web-1 app[{i}]: GET /api/v1/items?id={i}&session=abc{i} user=alice{i} status=200 password=hunter{i} ref=https://example.org/x?token=t{i}\n",
            i % 60
        );
        f.write_all(line.as_bytes()).unwrap();
        written += line.len();
        i += 1;
    }
    f.flush().unwrap();
}

/// Plain log lines with nothing to find.
fn write_plain_log(path: &Path, bytes: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let line =
        b"2026-11-26T01:00:00Z web-1 nginx: 10.0.0.7 \"GET /index.html HTTP/1.1\" 200 5120\n";
    let mut data = Vec::with_capacity(bytes + line.len());
    while data.len() < bytes {
        data.extend_from_slice(line);
    }
    std::fs::write(path, data).unwrap();
}

/// Writes a policy of `controls` (list items) on the fixture host.
fn pace_policy(host: &FixtureHost, controls: &str) -> String {
    write_policy(&host.root().join("policy.yaml"), &policy_yaml(controls))
}

/// Control `LS` holding a whole (not incremental) log scan `scan` of `paths`.
fn log_control(timeout: &str, paths: &str) -> String {
    control_yaml(
        "LS",
        &check_yaml(
            "scan",
            "log_secrets",
            Some(timeout),
            &format!("paths: [{paths}]\nincremental: false"),
        ),
    )
}

/// Seconds of `0m1.234s`.
fn secs(t: &str) -> f64 {
    let (m, s) = t.trim_end_matches('s').split_once('m').unwrap();
    m.parse::<f64>().unwrap() * 60.0 + s.parse::<f64>().unwrap()
}

struct Measured {
    report: serde_json::Value,
    stderr: String,
    /// User + system CPU seconds of the agent process (all its threads).
    cpu: f64,
}

/// Runs `vigil-agent check` under bash and reads the agent's CPU time from
/// `times` (getrusage of bash's children), printed last on stderr.
fn check_measured(host: &FixtureHost, policy: &str, extra: &[&str]) -> Measured {
    let out = check_args(
        Command::new("bash")
            .arg("-c")
            .arg("\"$@\"; rc=$?; times >&2; exit $rc")
            .arg("bash")
            .arg(agent()),
        host,
        policy,
        extra,
    )
    .output()
    .unwrap();
    let err = stderr(&out);
    let children = err.trim_end().lines().last().unwrap_or_default().to_owned();
    let mut parts = children.split_whitespace();
    let (user, sys) = (parts.next().unwrap(), parts.next().unwrap());
    Measured {
        report: report_json(&out),
        cpu: secs(user) + secs(sys),
        stderr: err,
    }
}

/// The number after `prefix` in the agent's debug line that starts with `line`.
fn logged_number(log: &str, line: &str, prefix: &str) -> Option<u64> {
    let l = log.lines().find(|l| l.contains(line))?;
    let rest = l.split(prefix).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_timed_out_scan_stops_reading_and_is_an_error() {
    let host = FixtureHost::new();
    // Two files, so two reader threads.
    let size = 24 << 20;
    write_dense_log(&host.root().join("var/log/big/a.log"), size);
    write_dense_log(&host.root().join("var/log/big/b.log"), size);
    let total = std::fs::metadata(host.root().join("var/log/big/a.log"))
        .unwrap()
        .len()
        + std::fs::metadata(host.root().join("var/log/big/b.log"))
            .unwrap()
            .len();

    // What a whole scan costs.
    let full_policy = pace_policy(&host, &log_control("10m", "/var/log/big/*.log"));
    let full = check_measured(&host, &full_policy, &[]);
    let scan = check_of(&full.report, "LS", "scan");
    assert_eq!(scan["status"], "fail", "{scan}");
    assert_eq!(scan["evidence"]["bytes_scanned"], total, "{scan}");
    assert!(
        full.cpu >= 3.0,
        "premise: a whole scan should cost seconds of CPU, it cost {:.2}s; make the log larger",
        full.cpu
    );

    // The same scan with a tiny timeout, beside a check that keeps the run
    // going for 5 s without using CPU (clamd that never answers): a scan that
    // went on reading after its timeout would spend that time on the CPU.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    // HOLD: a clamd that never answers.
    let hold = control_yaml(
        "HOLD",
        &check_yaml(
            "wait",
            "clamav",
            Some("5s"),
            &format!("address: tcp://127.0.0.1:{port}\nself_test: false"),
        ),
    );
    let policy = pace_policy(&host, &(log_control("200ms", "/var/log/big/*.log") + &hold));
    let cut = check_measured(&host, &policy, &[]);
    drop(silent);
    let scan = check_of(&cut.report, "LS", "scan");
    assert_eq!(scan["status"], "error", "{scan}");
    assert_eq!(scan["summary"], "timed out after 200ms", "{scan}");
    assert_eq!(
        check_of(&cut.report, "HOLD", "wait")["summary"],
        "timed out after 5s"
    );

    eprintln!(
        "whole scan: {:.2}s CPU; timed out after 200ms: {:.2}s CPU",
        full.cpu, cut.cpu
    );
    // The readers noticed the stop and let go, having read part of the logs.
    let read = logged_number(
        &cut.stderr,
        "pace: log_secrets stopped after its timeout",
        "had read ",
    )
    .unwrap_or_else(|| panic!("no stop line in the agent's log:\n{}", cut.stderr));
    assert!(read < total, "read {read} of {total} bytes");
    // And the CPU they used is a fraction of a whole scan's.
    assert!(
        cut.cpu * 5.0 < full.cpu,
        "the timed-out run used {:.2}s of CPU, a whole scan {:.2}s: the scan went on after its timeout",
        cut.cpu,
        full.cpu
    );
}

/// Nice values and I/O classes of the agent's threads, sampled until it exits.
fn watch_threads(child: &mut std::process::Child) -> (usize, Vec<(i64, String)>) {
    let ionice = require_tool("ionice", "util-linux");
    let pid = child.id();
    let mut samples = 0;
    let mut seen = Vec::new();
    while child.try_wait().unwrap().is_none() {
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for t in tasks.flatten() {
                let tid = t.file_name().to_string_lossy().into_owned();
                let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
                    continue;
                };
                // Fields after the `(comm)`: state is field 3, nice field 19.
                let Some(after) = stat.rsplit_once(')').map(|x| x.1) else {
                    continue;
                };
                let nice: i64 = after
                    .split_whitespace()
                    .nth(16)
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(0);
                let class = Command::new(&ionice)
                    .args(["-p", &tid])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                    .unwrap_or_default();
                if !class.is_empty() {
                    seen.push((nice, class));
                }
            }
            samples += 1;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    (samples, seen)
}

/// `check` of `policy` on the fixture host, with the pace's debug lines.
fn check_args<'c>(
    cmd: &'c mut Command,
    host: &FixtureHost,
    policy: &str,
    extra: &[&str],
) -> &'c mut Command {
    cmd.args(["check", "--policy", policy, "--format", "json", "--root"])
        .arg(host.root())
        .arg("--state-dir")
        .arg(host.root().join("state"))
        .args(extra)
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "vigil_agent::pace=debug")
}

fn spawn_check(host: &FixtureHost, policy: &str, extra: &[&str]) -> std::process::Child {
    check_args(&mut Command::new(agent()), host, policy, extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn the_read_budget_is_honoured_and_idle_is_opt_in_for_check() {
    let host = FixtureHost::new();
    // 3 MB at 1 MB/s with a 1 MB burst: at least two seconds of reading,
    // whatever the machine's speed.
    let size = 3_000_000;
    write_plain_log(&host.root().join("var/log/app/app.log"), size);
    let size = std::fs::metadata(host.root().join("var/log/app/app.log"))
        .unwrap()
        .len();
    let policy = pace_policy(&host, &log_control("5m", "/var/log/app/*.log"));

    for idle in [true, false] {
        let mut args = vec!["--read-budget", "1"];
        if idle {
            args.push("--idle");
        }
        let mut child = spawn_check(&host, &policy, &args);
        let (samples, seen) = watch_threads(&mut child);
        let out = child.wait_with_output().unwrap();
        let report = report_json(&out);
        let scan = check_of(&report, "LS", "scan");
        assert_eq!(scan["status"], "pass", "{scan}");

        // The agent's own accounting: bytes read by time t <= 1 MB/s × t + 1 MB.
        let bytes = scan["evidence"]["bytes_scanned"].as_u64().unwrap();
        let elapsed_ms = scan["evidence"]["elapsed_ms"].as_u64().unwrap();
        assert_eq!(bytes, size);
        assert!(
            bytes <= elapsed_ms * 1_000 + 1_000_000,
            "{bytes} bytes in {elapsed_ms} ms is over a budget of 1 MB/s + 1 MB burst"
        );
        let log = stderr(&out);
        let logged = logged_number(&log, "pace: log_secrets read ", "read ")
            .unwrap_or_else(|| panic!("no pace line in the agent's log:\n{log}"));
        let logged_ms = logged_number(&log, "pace: log_secrets read ", "bytes in ").unwrap();
        let waited = logged_number(&log, "pace: log_secrets read ", "and waited ").unwrap();
        assert!(logged >= bytes, "{log}");
        assert!(logged <= logged_ms * 1_000 + 1_000_000, "{log}");
        assert!(waited > 0, "the budget never made a reader wait: {log}");

        assert!(samples > 0, "the agent exited before its threads were seen");
        let idle_threads = seen
            .iter()
            .filter(|(nice, class)| *nice == 19 && class == "idle")
            .count();
        if idle {
            assert!(
                idle_threads > 0,
                "--idle: no thread at nice 19 and the idle I/O class in {seen:?}"
            );
            // The runtime's own threads (timers, the other checks) stay at normal priority.
            assert!(seen.iter().any(|(nice, _)| *nice == 0), "{seen:?}");
        } else {
            assert!(
                seen.iter()
                    .all(|(nice, class)| *nice == 0 && class != "idle"),
                "check without --idle lowered a priority: {seen:?}"
            );
        }
    }
}
