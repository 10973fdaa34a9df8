//! `log_secrets` end to end: the built agent scans fixture roots.
//!
//! The corpus (`tests/data/logs/corpus`, made by `make_corpus.py`) names
//! every line of realistic nginx, sshd, PostgreSQL, Rails, Django, Node and
//! syslog logs as a true positive (with its codes) or a true negative; the
//! scan must find exactly the positives, and no secret may appear anywhere in
//! the JSON report.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use vigil_tests::{
    agent_check, check_of, codes, report_json, require_tool, run_agent, single_check_policy,
    stderr, workspace, FixtureHost,
};

fn data() -> std::path::PathBuf {
    workspace().join("tests/data/logs")
}

/// Writes a policy with one control `LS` holding one `log_secrets` check `scan`.
fn policy(host: &FixtureHost, with: &str) -> String {
    single_check_policy("LS", "scan", "log_secrets", with).write(&host.root().join("policy.yaml"))
}

struct Run {
    report: Value,
    raw: String,
}

fn run(host: &FixtureHost, policy: &str, state: &Path) -> Run {
    let out = agent_check(policy)
        .root(host.root())
        .state_dir(state)
        .output();
    let report = report_json(&out);
    assert!(
        out.status.code().is_some(),
        "agent killed: {}",
        stderr(&out)
    );
    Run {
        report,
        raw: String::from_utf8_lossy(&out.stdout).into_owned(),
    }
}

fn scan(r: &Run) -> &Value {
    check_of(&r.report, "LS", "scan")
}

/// (file, line, code) of every finding with a location and line.
fn located(check: &Value) -> BTreeSet<(String, u64, String)> {
    check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let loc = f.get("location")?;
            Some((
                loc["file"].as_str()?.to_owned(),
                loc["line"].as_u64()?,
                f["code"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

fn file_evidence<'a>(check: &'a Value, path: &str) -> &'a Value {
    check["evidence"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == path)
        .unwrap_or_else(|| panic!("no evidence for {path}: {}", check["evidence"]))
}

#[test]
fn corpus_has_full_precision_and_recall_and_no_secret_leaks() {
    let host = FixtureHost::new();
    host.copy_tree(&data().join("corpus/root"));
    let state = tempfile::tempdir().unwrap();
    let pol = policy(
        &host,
        "paths: [/var/log/*.log]\nmax_findings_per_file: 100000",
    );
    let r = run(&host, &pol, state.path());
    let check = scan(&r);
    assert_eq!(check["status"], "fail", "{check}");

    let mut expected = BTreeSet::new();
    let mut secrets: Vec<String> = Vec::new();
    let (mut positives, mut negatives) = (0, 0);
    for entry in std::fs::read_dir(data().join("corpus/expect")).unwrap() {
        let path = entry.unwrap().path();
        let source = path.file_stem().unwrap().to_string_lossy().into_owned();
        for row in std::fs::read_to_string(&path).unwrap().lines() {
            let cols: Vec<&str> = row.split('\t').collect();
            let line: u64 = cols[0].parse().unwrap();
            if cols[1] == "-" {
                negatives += 1;
            }
            for code in cols[1].split(',').filter(|c| *c != "-") {
                positives += 1;
                expected.insert((format!("/var/log/{source}.log"), line, code.to_owned()));
            }
            if let Some(s) = cols.get(3) {
                secrets.extend(s.split(',').filter(|s| !s.is_empty()).map(String::from));
            }
        }
    }
    assert!(positives >= 80 && negatives >= 250, "corpus too small");
    let found = located(check);
    let false_pos: Vec<_> = found.difference(&expected).collect();
    let missed: Vec<_> = expected.difference(&found).collect();
    let tp = found.intersection(&expected).count() as f64;
    let precision = tp / found.len().max(1) as f64;
    let recall = tp / expected.len() as f64;
    assert!(
        false_pos.is_empty() && missed.is_empty(),
        "precision {precision:.3}, recall {recall:.3}\nfalse positives: {false_pos:#?}\nmissed: {missed:#?}"
    );
    assert_eq!(precision, 1.0);
    assert_eq!(recall, 1.0);

    // Every finding shows where the secret was, but not the secret.
    for f in check["findings"].as_array().unwrap() {
        assert!(
            f["excerpt"].as_str().unwrap().contains("[REDACTED]")
                || f["code"] == "private_key_block",
            "{f}"
        );
    }
    assert!(!secrets.is_empty());
    for s in &secrets {
        assert!(
            !r.raw.contains(s.as_str()),
            "secret `{s}` appears in the JSON report"
        );
    }
    // Nor in the state the agent keeps.
    for e in walk(state.path()) {
        let text = std::fs::read_to_string(&e).unwrap();
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()),
                "secret `{s}` in state file {}",
                e.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

const CLEAN: &str = "Nov 25 10:00:00 web-1 app[1]: request ok\n";

#[test]
fn incremental_runs_resume_follow_rotation_and_notice_truncation() {
    let host = FixtureHost::new();
    let state = tempfile::tempdir().unwrap();
    let log = host.write(
        "/var/log/app/app.log",
        &format!("{CLEAN}app[1]: login password=Fir5t-Secret\n"),
    );
    let pol = policy(&host, "paths: [\"/var/log/app/app.log*\"]");

    // First run: the whole file.
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "fail");
    assert_eq!(
        located(c),
        BTreeSet::from([(
            "/var/log/app/app.log".into(),
            2,
            "password_assignment".into()
        )])
    );
    assert_eq!(file_evidence(c, "/var/log/app/app.log")["mode"], "full");

    // Appended lines: only they are read, the earlier finding stays.
    let appended = format!("{CLEAN}app[1]: retry pwd=S3cond-Secret\n");
    let before = std::fs::metadata(&log).unwrap().len();
    std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    let mut text = std::fs::read_to_string(&log).unwrap();
    text.push_str(&appended);
    std::fs::write(&log, &text).unwrap();
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    let ev = file_evidence(c, "/var/log/app/app.log");
    assert_eq!(ev["mode"], "resumed");
    assert_eq!(ev["from_offset"], before);
    assert_eq!(ev["bytes_scanned"], appended.len() as u64);
    assert_eq!(
        located(c),
        BTreeSet::from([
            (
                "/var/log/app/app.log".into(),
                2,
                "password_assignment".into()
            ),
            (
                "/var/log/app/app.log".into(),
                4,
                "password_assignment".into()
            ),
        ])
    );
    assert!(!r.raw.contains("Fir5t-Secret") && !r.raw.contains("S3cond-Secret"));

    // Rotation (logrotate's rename + create): the old inode is followed to
    // its new name and not read again; the new file is read from the start.
    std::fs::rename(&log, host.root().join("var/log/app/app.log.1")).unwrap();
    host.write("/var/log/app/app.log", CLEAN);
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    let ev = file_evidence(c, "/var/log/app/app.log.1");
    assert_eq!(ev["mode"], "resumed");
    assert_eq!(ev["rotated_from"], "/var/log/app/app.log");
    assert_eq!(ev["bytes_scanned"], 0);
    assert_eq!(file_evidence(c, "/var/log/app/app.log")["mode"], "full");
    assert_eq!(
        located(c),
        BTreeSet::from([
            (
                "/var/log/app/app.log.1".into(),
                2,
                "password_assignment".into()
            ),
            (
                "/var/log/app/app.log.1".into(),
                4,
                "password_assignment".into()
            ),
        ])
    );

    // Truncation (copytruncate): shorter than the offset, read again; the
    // old findings go with the old content.
    let rotated = host.root().join("var/log/app/app.log.1");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&rotated)
        .unwrap()
        .set_len(0)
        .unwrap();
    std::fs::write(&rotated, "x\n").unwrap();
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(
        file_evidence(c, "/var/log/app/app.log.1")["mode"],
        "truncated"
    );
    assert_eq!(c["status"], "pass", "{c}");
    assert!(located(c).is_empty());

    // Same size, new content (inode reused after truncate + rewrite): the
    // first-block hash tells.
    std::fs::write(&rotated, "y\n").unwrap();
    let r = run(&host, &pol, state.path());
    assert_eq!(
        file_evidence(scan(&r), "/var/log/app/app.log.1")["mode"],
        "truncated"
    );
}

#[test]
fn gzip_rotations_are_read_as_streams_and_skipped_when_unchanged() {
    let gzip = require_tool("gzip", "gzip");
    let host = FixtureHost::new();
    let state = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..5000 {
        text.push_str(&format!("Nov 24 10:00:00 web-1 app[1]: request {i} ok\n"));
    }
    text.push_str("Nov 24 11:00:00 web-1 app[1]: charge card=5555-5555-5555-4444 failed\n");
    let plain = host.write("/var/log/app.log.2", &text);
    let st = Command::new(gzip).arg("-9").arg(&plain).status().unwrap();
    assert!(st.success());
    host.write("/var/log/app.log", CLEAN);
    let pol = policy(
        &host,
        "paths: [/var/log/app.log, \"/var/log/app.log.*.gz\"]\ndetectors: [card_number]",
    );
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        located(c),
        BTreeSet::from([("/var/log/app.log.2.gz".into(), 5001, "card_number".into())])
    );
    let ev = file_evidence(c, "/var/log/app.log.2.gz");
    assert_eq!(ev["gzip"], true);
    assert_eq!(ev["bytes_scanned"], text.len() as u64);
    assert!(!r.raw.contains("5555-5555-5555-4444") && !r.raw.contains("5555555555554444"));

    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(
        file_evidence(c, "/var/log/app.log.2.gz")["mode"],
        "unchanged"
    );
    assert_eq!(codes(c), ["card_number"]);

    // A corrupt archive is an unreadable file: the check is an error.
    host.write("/var/log/app.log.3.gz", "not gzip at all\n");
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "error", "{c}");
    assert!(codes(c).contains(&"unreadable_file".to_owned()));
}

#[test]
fn unreadable_files_and_empty_globs_are_never_a_pass() {
    let host = FixtureHost::new();
    let state = tempfile::tempdir().unwrap();
    host.write("/var/log/ok.log", CLEAN);
    std::os::unix::fs::symlink(
        "/nonexistent/vigil-log-secrets",
        host.root().join("var/log/broken.log"),
    )
    .unwrap();
    // A symlink (here a dangling one) is never followed (issue 19, item
    // 11): reported as skipped, not read, not an error.
    let pol = policy(&host, "paths: [/var/log/*.log]");
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(codes(c), ["skipped_file"]);
    // A file that cannot be read (a corrupt gzip) is an error.
    host.write("/var/log/old.log.1.gz", "not gzip at all\n");
    let pol = policy(&host, "paths: [/var/log/ok.log, /var/log/*.gz]");
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(codes(c), ["unreadable_file"]);
    std::fs::remove_file(host.root().join("var/log/old.log.1.gz")).unwrap();
    std::fs::remove_file(host.root().join("var/log/broken.log")).unwrap();

    // No file at all: an error, and the glob is named.
    let pol = policy(&host, "paths: [/var/log/nginx/*.log]");
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(c["status"], "error", "{c}");
    assert_eq!(codes(c), ["no_files_matched"]);

    // One glob empty beside others: a finding (fail); `optional_paths` may be empty.
    let pol = policy(&host, "paths: [/var/log/ok.log, /var/log/nginx/*.log]");
    assert_eq!(scan(&run(&host, &pol, state.path()))["status"], "fail");
    let pol = policy(
        &host,
        "paths: [/var/log/ok.log]\noptional_paths: [/var/log/nginx/*.log]",
    );
    assert_eq!(scan(&run(&host, &pol, state.path()))["status"], "pass");
}

#[test]
fn extra_patterns_and_allow() {
    let host = FixtureHost::new();
    let state = tempfile::tempdir().unwrap();
    host.write(
        "/var/log/app.log",
        "api call key=PAPYRS-7f3a9c1e2d\nfixture password=Fixture-Only-Pw\n",
    );
    let pol = policy(
        &host,
        "paths: [/var/log/app.log]\nincremental: false\nextra_patterns:\n  - {name: papyrs_api_key, regex: \"key=(?P<secret>PAPYRS-[0-9a-f]{10})\"}\nallow:\n  - {location: \"/var/log/app.log:2\", reason: test fixture account}",
    );
    let r = run(&host, &pol, state.path());
    let c = scan(&r);
    assert_eq!(codes(c), ["extra_pattern"]);
    assert!(c["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("papyrs_api_key"));
    assert!(!r.raw.contains("PAPYRS-7f3a9c1e2d") && !r.raw.contains("Fixture-Only-Pw"));
}

#[test]
fn papyrs_policy_validates() {
    let out = run_agent(&[
        "validate",
        "--policy",
        &workspace()
            .join("policies/papyrs.yaml")
            .display()
            .to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// Writes journal entries (export format) into `ROOT/var/log/journal/` with
/// systemd-journal-remote: real journal files, read by the real journalctl.
fn write_journal(root: &Path, name: &str, entries: &[(&str, &str)], t0: u64) {
    let remote = Path::new("/usr/lib/systemd/systemd-journal-remote");
    assert!(
        remote.exists(),
        "install systemd-journal-remote (Debian package `systemd-journal-remote`)"
    );
    require_tool("journalctl", "systemd");
    let dir = root.join("var/log/journal");
    std::fs::create_dir_all(&dir).unwrap();
    let mut export = String::new();
    for (i, (ident, msg)) in entries.iter().enumerate() {
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\nSYSLOG_IDENTIFIER={ident}\nMESSAGE={msg}\n_HOSTNAME=web-1\n\n",
            t0 + i as u64 * 1_000_000,
            t0 / 1000 + i as u64 + 1,
        ));
    }
    use std::io::Write;
    let mut child = Command::new(remote)
        .arg(format!("--output={}", dir.join(name).display()))
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success());
}

/// Issue 24, item 3: the journal was never scanned ("never logged" held for
/// /var/log only). Now `journal: true` reads it with journalctl from a
/// cursor saved in the state dir: a second run reads nothing again but
/// still reports the earlier hit, and new entries are read.
#[test]
fn the_journal_is_scanned_incrementally() {
    let host = FixtureHost::new();
    let root = host.root().to_path_buf();
    write_journal(
        &root,
        "one.journal",
        &[
            (
                "sshd",
                "Accepted publickey for alice from 10.0.0.2 port 50022 ssh2",
            ),
            (
                "papyrs",
                "login failed (user: bob, password: Hunter2Secret)",
            ),
            ("nginx", "GET /login 200"),
        ],
        1_764_700_000_000_000,
    );
    let state = tempfile::tempdir().unwrap();
    let pol = policy(&host, "journal: true\ndetectors: [password_assignment]");
    let r = run(&host, &pol, state.path());
    let check = scan(&r);
    assert_eq!(check["status"], "fail", "{check}");
    assert!(!r.raw.contains("Hunter2Secret"), "{}", r.raw);
    let found = located(check);
    assert_eq!(
        found,
        [(
            "journal:/var/log/journal".to_owned(),
            2,
            "password_assignment".to_owned()
        )]
        .into()
    );
    let ex = check["findings"][0]["excerpt"].as_str().unwrap();
    assert!(
        ex.starts_with("2025-12-02T18:26:41Z papyrs: login failed"),
        "{ex}"
    );
    assert_eq!(
        file_evidence(check, "journal:/var/log/journal")["mode"],
        "full"
    );

    // Again: resumed after the cursor, nothing read, the hit still there.
    let r = run(&host, &pol, state.path());
    let check = scan(&r);
    let ev = file_evidence(check, "journal:/var/log/journal");
    assert_eq!(ev["mode"], "resumed", "{ev}");
    assert_eq!(ev["bytes_scanned"], 0, "{ev}");
    assert_eq!(located(check).len(), 1);

    // New entries (another journal file): only they are read.
    write_journal(
        &root,
        "two.journal",
        &[("papyrs", "retry with password \"Winter2026!\"")],
        1_764_800_000_000_000,
    );
    let r = run(&host, &pol, state.path());
    let check = scan(&r);
    assert!(!r.raw.contains("Winter2026"), "{}", r.raw);
    let lines: Vec<u64> = located(check).into_iter().map(|f| f.1).collect();
    assert_eq!(lines, [2, 4], "{check}");
}

/// Issue 24, item 7: SP-8 checked /var/log only. A `sql` source scans a
/// sampled query's rows (here a real SQLite database) and `paths` an
/// uploads directory, for card numbers, redacted.
#[test]
fn card_numbers_in_uploads_and_a_sampled_query_are_found_redacted() {
    let host = FixtureHost::new();
    let root = host.root().to_path_buf();
    let uploads = root.join("srv/papyrs/uploads/acme");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(
        uploads.join("minutes.txt"),
        "order 1042 shipped, ref 2026-11-25\n",
    )
    .unwrap();
    std::fs::write(
        uploads.join("expenses.csv"),
        "date,what,amount,card\n2026-10-02,Hotel,212.40,5555 5555 5555 4444\n",
    )
    .unwrap();
    let db = root.join("papyrs.db");
    let st = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import sqlite3; c=sqlite3.connect({:?}); c.execute('create table pages(id integer, title text, body text)'); \
             c.executemany('insert into pages values (?,?,?)', [(i, 'page %d' % i, 'nothing here %d' % (i * 7919)) for i in range(1, 500)]); \
             c.execute(\"insert into pages values (500, 'Billing', 'please charge 4111-1111-1111-1111 exp 04/28')\"); c.commit()",
            db.display().to_string()
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let state = tempfile::tempdir().unwrap();
    let pol = policy(
        &host,
        &format!(
            "optional_paths: [\"/srv/papyrs/uploads/**/*\"]\nsql:\n  dsn: \"sqlite://{}\"\n  query: \"SELECT title, body FROM pages ORDER BY id\"\n  sample_rows: 1000\ndetectors: [card_number]",
            db.display()
        ),
    );
    let r = run(&host, &pol, state.path());
    let check = scan(&r);
    assert_eq!(check["status"], "fail", "{check}");
    let found = located(check);
    let q = "sql `SELECT title, body FROM pages ORDER BY id`".to_owned();
    assert_eq!(
        found,
        [
            (
                "/srv/papyrs/uploads/acme/expenses.csv".to_owned(),
                2,
                "card_number".to_owned()
            ),
            (q.clone(), 500, "card_number".to_owned()),
        ]
        .into(),
        "{check}"
    );
    assert!(
        !r.raw.contains("4111-1111") && !r.raw.contains("5555 5555"),
        "{}",
        r.raw
    );

    // Sampling: only the first rows are read.
    let pol = policy(
        &host,
        &format!(
            "optional_paths: [\"/srv/papyrs/uploads/acme/minutes.txt\"]\nsql:\n  dsn: \"sqlite://{}\"\n  query: \"SELECT title, body FROM pages ORDER BY id\"\n  sample_rows: 100\ndetectors: [card_number]",
            db.display()
        ),
    );
    let check = scan(&run(&host, &pol, state.path())).clone();
    assert_eq!(check["status"], "pass", "{check}");

    // A database that cannot be opened is an error, never a pass.
    let pol = policy(
        &host,
        "sql:\n  dsn: \"sqlite:///nonexistent/dir/x.db\"\n  query: \"SELECT 1\"\ndetectors: [card_number]",
    );
    let check = scan(&run(&host, &pol, state.path())).clone();
    assert_eq!(check["status"], "error", "{check}");
    assert_eq!(check["findings"][0]["code"], "unreadable_file");
}
