//! `vigil-agent` as users run it: validate, check on fixture hosts and on this
//! machine, output formats, selection, timeouts and exit codes.

use std::path::Path;
use std::process::Command;

use vigil_tests::*;

/// Every folder under tests/data/hosts/ is a scenario: `root/` is the host,
/// `policy.yaml` the policy, `expected.json` the exit code and, per
/// `CONTROL/CHECK`, the status and the finding codes in order.
#[test]
fn fixture_host_scenarios() {
    let dir = workspace().join("tests/data/hosts");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 5,
        "scenarios missing under {}",
        dir.display()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected.json")).unwrap())
                .unwrap();
        let o = agent_check(case.join("policy.yaml"))
            .root(case.join("root"))
            .args(["--host", &name])
            .output();
        assert_eq!(
            o.status.code(),
            expected["exit"].as_i64().map(|c| c as i32),
            "{name}: exit code; stderr: {}",
            stderr(&o)
        );
        let report = report_json(&o);
        assert_eq!(report["schema"], "vigil.report/v1");
        assert_eq!(report["agent"]["host"], name.as_str());
        for (path, want) in expected["checks"].as_object().unwrap() {
            let (control, check) = path.split_once('/').unwrap();
            let got = check_of(&report, control, check);
            assert_eq!(
                got["status"], want["status"],
                "{name} {path}: {}",
                got["summary"]
            );
            let want_codes: Vec<String> = want["codes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_owned())
                .collect();
            assert_eq!(codes(got), want_codes, "{name} {path}: {got:#}");
        }
    }
}

/// No stored password or key material leaves the agent, whatever the format.
#[test]
fn secrets_from_the_host_never_reach_the_report() {
    let case = workspace().join("tests/data/hosts/weak-hashes");
    let shadow = std::fs::read_to_string(case.join("root/etc/shadow")).unwrap();
    let secrets: Vec<&str> = shadow
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .filter(|f| f.len() > 3)
        .collect();
    assert!(secrets.contains(&"Winter2017!"));
    for format in ["json", "table", "junit", "sarif"] {
        let o = run_agent(&[
            "check",
            "--policy",
            case.join("policy.yaml").to_str().unwrap(),
            "--root",
            case.join("root").to_str().unwrap(),
            "--format",
            format,
        ]);
        let out = stdout(&o) + &stderr(&o);
        for s in &secrets {
            assert!(
                !out.contains(s),
                "{format} output holds a stored password field"
            );
        }
        assert!(
            !out.contains("AAAAC3NzaC1lZDI1NTE5"),
            "{format} output holds a public key blob"
        );
    }
}

/// Our fingerprints are the ones `ssh-keygen -lf` prints for the same keys.
#[test]
fn fingerprints_agree_with_ssh_keygen() {
    let keygen = require_tool("ssh-keygen", "openssh-client");
    let case = workspace().join("tests/data/hosts/hardened");
    let report = agent_check(case.join("policy.yaml"))
        .root(case.join("root"))
        .args(["--control", "SP-4"])
        .report();
    let ours: Vec<String> = check_of(&report, "SP-4", "ssh")["evidence"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["fingerprint"].as_str().unwrap().to_owned())
        .collect();
    let mut theirs = Vec::new();
    for f in [
        "home/alice/.ssh/authorized_keys",
        "home/bob/.ssh/authorized_keys",
        "srv/deploy/.ssh/authorized_keys",
    ] {
        let out = Command::new(&keygen)
            .arg("-lf")
            .arg(case.join("root").join(f))
            .output()
            .unwrap();
        assert!(out.status.success());
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            theirs.push(line.split_whitespace().nth(1).unwrap().to_owned());
        }
    }
    let mut a = ours.clone();
    a.sort();
    theirs.sort();
    assert_eq!(a, theirs);
    assert_eq!(ours.len(), 4);
}

const BAD_POLICY: &str = "policy:
  id: broken
  version: \"1\"
  title: Three mistakes
controls:
  - id: C-1
    title: First
    checks:
      - id: a
        type: attestation
        every: sometimes
        with: {by: x, on: 2026-01-01, evidence: e, valid_for: 1d}
  - id: C-1
    title: Second
    checks:
      - id: b
        type: telepathy
";

#[test]
fn three_mistakes_three_located_errors_and_nothing_runs() {
    let host = FixtureHost::new();
    let policy = host.write("/policy.yaml", BAD_POLICY);
    let p = policy.to_str().unwrap();
    for cmd in ["validate", "check"] {
        let o = run_agent(&[cmd, "--policy", p]);
        assert_eq!(o.status.code(), Some(2), "{cmd}");
        let err = stderr(&o);
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(p)).collect();
        assert_eq!(lines.len(), 3, "{err}");
        assert!(
            lines[0].starts_with(&format!(
                "{p}:11:16: `every`: `sometimes` is not a duration"
            )),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].starts_with(&format!(
                "{p}:13:9: duplicate control id `C-1` (first at line 6)"
            )),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].starts_with(&format!("{p}:17:15: unknown check type `telepathy`")),
            "{}",
            lines[2]
        );
        assert!(
            stdout(&o).is_empty(),
            "{cmd} printed a report for an invalid policy"
        );
    }
}

#[test]
fn papyrs_policy_is_valid_and_checks_this_machine() {
    let policy = workspace().join("policies/papyrs.yaml");
    let o = run_agent(&["validate", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("19 controls"), "{}", stdout(&o));

    // Its own state dir: the checks' state (log offsets, dpkg_verify's
    // cache) stays out of this machine's /var/lib/vigil.
    let state = tempfile::tempdir().unwrap();
    let o = agent_check(&policy).state_dir(state.path()).output();
    let code = o.status.code();
    assert!(
        code == Some(0) || code == Some(1),
        "exit {code:?}: {}",
        stderr(&o)
    );
    let r = report_json(&o);
    assert_eq!(r["schema"], "vigil.report/v1");
    assert_eq!(r["policy"]["id"], "papyrs-security");
    assert_eq!(r["policy"]["sha256"].as_str().unwrap().len(), 64);
    let controls = r["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 19);
    let s = &r["summary"];
    let total: u64 = ["pass", "fail", "error", "attested", "waived", "unknown"]
        .iter()
        .map(|k| s[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, 19);
    // The exit code follows the statuses.
    let all_ok = controls
        .iter()
        .all(|c| ["pass", "attested", "waived"].contains(&c["status"].as_str().unwrap()));
    assert_eq!(code == Some(0), all_ok);
    // Every control carries its source item and real checks ran.
    assert!(controls.iter().all(|c| c["source"].is_string()));
    assert_ne!(check_of(&r, "SP-4", "ssh-and-admins")["status"], "skipped");
}

#[test]
fn real_sshd_t_is_used_on_the_live_root() {
    let sshd = require_tool("sshd", "openssh-server");
    let keygen = require_tool("ssh-keygen", "openssh-client");
    let host = FixtureHost::new();
    let key = host.root().join("hostkey");
    assert!(Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap()
        .success());
    let config = host.write(
        "/sshd_config",
        &format!("HostKey {}\nPermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM yes\n", key.display()),
    );
    // sshd refuses to start, even for -T, without its privilege separation
    // directory, which exists wherever sshd runs.
    std::fs::create_dir_all("/run/sshd").unwrap();
    // sshd -T itself must accept it, or the test proves nothing.
    assert!(Command::new(&sshd)
        .arg("-T")
        .arg("-f")
        .arg(&config)
        .output()
        .unwrap()
        .status
        .success());
    let policy = single_check_policy(
        "A",
        "ssh",
        "admin_access",
        &format!("sshd_config: {}", config.display()),
    )
    .write(&host.root().join("policy.yaml"));
    let r = agent_check(&policy).report();
    let c = check_of(&r, "A", "ssh");
    assert_eq!(c["evidence"]["sshd"]["source"], "sshd -T", "{c:#}");
    assert_eq!(c["evidence"]["sshd"]["permitrootlogin"], "yes");
    assert!(
        codes(c).contains(&"root_login_permitted".to_owned()),
        "{c:#}"
    );
}

/// Writes a policy of one control `A` holding `checks` (list items).
fn control_a(host: &FixtureHost, checks: &str) -> String {
    write_policy(
        &host.root().join("policy.yaml"),
        &policy_yaml(&control_yaml("A", checks)),
    )
}

const ATTESTED: &str = "      - id: att\n        type: attestation\n        with: {by: ops, on: 2026-01-01, evidence: e, valid_for: 36500d}\n";

#[test]
fn a_hung_check_times_out_and_the_run_finishes() {
    // A server that accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _hold = std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let host = FixtureHost::new();
    let policy = control_a(
        &host,
        &format!("      - id: hung\n        type: password_storage\n        timeout: 1s\n        with:\n          sql: {{dsn: 'postgres://vigil@127.0.0.1:{port}/app', query: 'select 1'}}\n{ATTESTED}"),
    );
    let o = agent_check(&policy).output();
    let r = report_json(&o);
    assert_eq!(o.status.code(), Some(1));
    let hung = check_of(&r, "A", "hung");
    assert_eq!(hung["status"], "error");
    assert_eq!(hung["summary"], "timed out after 1s");
    assert_eq!(check_of(&r, "A", "att")["status"], "pass");
    assert_eq!(r["controls"][0]["status"], "error");
}

#[test]
fn password_hashes_in_an_application_database() {
    let python = require_tool("python3", "python3");
    let host = FixtureHost::new();
    let db = host.root().join("app.db");
    let script = format!(
        "import sqlite3; c=sqlite3.connect('{}'); c.execute('create table users(id integer, email text, password text)'); \
         c.executemany('insert into users values (?,?,?)', [(1,'a@x','$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaA'),(2,'b@x','5f4dcc3b5aa765d61d8327deb882cf99'),(3,'c@x','pbkdf2_sha256$1000$salt$hash')]); c.commit()",
        db.display()
    );
    assert!(Command::new(python)
        .arg("-c")
        .arg(script)
        .status()
        .unwrap()
        .success());
    let policy = control_a(
        &host,
        &format!("      - id: app\n        type: password_storage\n        with:\n          sql: {{dsn: 'sqlite://{}', query: 'select password, email from users order by id'}}\n", db.display()),
    );
    let o = agent_check(&policy).output();
    let r = report_json(&o);
    let c = check_of(&r, "A", "app");
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(codes(c), ["unsalted_hash", "weak_scheme", "low_cost"]);
    assert_eq!(c["findings"][0]["subject"], "b@x");
    assert!(!stdout(&o).contains("5f4dcc3b5aa765d61d8327deb882cf99"));

    // An empty result is not proof.
    let policy = control_a(
        &host,
        &format!("      - id: app\n        type: password_storage\n        with:\n          sql: {{dsn: 'sqlite://{}', query: 'select password from users where 0'}}\n", db.display()),
    );
    let r = agent_check(&policy).report();
    let c = check_of(&r, "A", "app");
    assert_eq!(c["status"], "error");
    assert!(c["summary"].as_str().unwrap().contains("no rows"));
}

#[test]
fn formats_selection_and_output_file() {
    let case = workspace().join("tests/data/hosts/strangers");
    let policy = case.join("policy.yaml");
    let root = case.join("root");
    let args = |fmt: &'static str| -> Vec<String> {
        [
            "check",
            "--policy",
            policy.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--format",
            fmt,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let run = |a: Vec<String>| run_agent(&a.iter().map(String::as_str).collect::<Vec<_>>());

    let table = stdout(&run(args("table")));
    assert!(table.starts_with("CONTROL  STATUS    REASON\n"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("SP-4     fail")),
        "{table}"
    );
    assert!(!table.contains('\x1b'), "colour outside a terminal");

    let junit = stdout(&run(args("junit")));
    assert!(junit.starts_with("<?xml"));
    assert!(junit.contains("failures=\"1\""), "{junit}");

    let sarif: serde_json::Value = serde_json::from_str(&stdout(&run(args("sarif")))).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(results
        .iter()
        .any(|r| r["ruleId"] == "admin_access/unknown_key"));

    // --control selects; an unknown id is a usage error naming it.
    let mut a = args("json");
    a.extend(["--control".into(), "SP-3".into()]);
    let o = run(a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report_json(&o);
    assert_eq!(r["controls"].as_array().unwrap().len(), 1);
    let mut a = args("json");
    a.extend(["--control".into(), "SP-99".into()]);
    let o = run(a);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no control `SP-99`"), "{}", stderr(&o));

    // --output writes the file and nothing to stdout.
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("report.json");
    let mut a = args("json");
    a.extend(["--output".into(), file.to_str().unwrap().into()]);
    let o = run(a);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let r: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(r["schema"], "vigil.report/v1");
}

#[test]
fn invalid_config_is_located_and_stops_the_run() {
    let host = FixtureHost::new();
    let policy = control_a(&host, ATTESTED);
    let config = host.write(
        "/agent.yaml",
        "server: https://r.example:8443\nhots: web-1\n",
    );
    let o = run_agent(&[
        "check",
        "--policy",
        &policy,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{}:2:1: unknown key `hots`", config.display())),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());

    let config = host.write("/agent.yaml", "host: web-7\nroles: [app]\n");
    let o = agent_check(&policy)
        .args(["--config", config.to_str().unwrap()])
        .output();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report_json(&o);
    assert_eq!(r["agent"]["host"], "web-7");
    assert_eq!(r["agent"]["roles"][0], "app");
}

#[test]
fn missing_policy_file_is_exit_2_with_its_name() {
    let o = run_agent(&["check", "--policy", "/nonexistent/policy.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("cannot read `/nonexistent/policy.yaml`"),
        "{}",
        stderr(&o)
    );
    assert!(!Path::new("/nonexistent").exists());
}

/// Issue 26: every finding code carries a remediation, in JSON and in the
/// table; `--json` stays an alias of `--format json`.
#[test]
fn types_lists_a_remediation_for_every_code() {
    let o = run_agent(&["types", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0));
    let types: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let types = types.as_array().unwrap();
    assert!(types.len() >= 13);
    let mut codes = 0;
    for t in types {
        for c in t["codes"].as_array().unwrap() {
            codes += 1;
            for key in ["code", "severity", "meaning", "remediation"] {
                let v = c[key].as_str().unwrap_or("");
                assert!(
                    !v.trim().is_empty(),
                    "{}/{}: no `{key}`",
                    t["name"],
                    c["code"]
                );
            }
        }
    }
    assert!(codes > 100, "only {codes} codes");
    let alias = run_agent(&["types", "--json"]);
    assert_eq!(alias.stdout, o.stdout);
    let table = run_agent(&["types"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.contains("fix: Set `PermitEmptyPasswords no`"),
        "{text}"
    );
    let bad = run_agent(&["types", "--format", "yaml"]);
    assert_eq!(bad.status.code(), Some(2));
}

/// Issue 26: a finding in a report names its remediation (`TYPE/CODE`).
#[test]
fn findings_carry_their_remediation_id() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("self-signed.pem");
    let key = rcgen::generate_simple_self_signed(vec!["papyrs.example".into()]).unwrap();
    std::fs::write(&cert, key.cert.pem()).unwrap();
    let policy = single_check_policy(
        "C-1",
        "k",
        "tls_certificate_file",
        &format!("{{path: {}}}", cert.display()),
    )
    .write(&dir.path().join("p.yaml"));
    let o = agent_check(&policy).output();
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let check = &report["controls"][0]["checks"][0];
    let findings = check["findings"].as_array().unwrap();
    assert!(!findings.is_empty(), "{check}");
    for f in findings {
        assert_eq!(
            f["remediation"].as_str().unwrap(),
            format!("tls/{}", f["code"].as_str().unwrap())
        );
    }
}

/// Issue 26: on a terminal `check` shows the running controls and how far
/// they are, then erases the line; piped, or with `--format json`, it shows
/// nothing of it, and the report never carries it.
#[test]
fn progress_only_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir(&logs).unwrap();
    for i in 0..50 {
        std::fs::write(
            logs.join(format!("app-{i}.log")),
            "GET / 200\n".repeat(20_000),
        )
        .unwrap();
    }
    let policy = single_check_policy(
        "C-1",
        "scan",
        "log_secrets",
        &format!("{{paths: [\"{}/*.log\"]}}", logs.display()),
    )
    .write(&dir.path().join("p.yaml"));
    let agent = agent();
    let cmd = |format: &str| {
        format!(
            "{} check --policy {} --state-dir {} {format}",
            agent.display(),
            policy,
            dir.path().join("state").display()
        )
    };
    // `script` (util-linux) runs the agent on a pseudo-terminal.
    let on_tty = |format: &str| {
        let o = Command::new("script")
            .args(["-qfec", &cmd(format), "/dev/null"])
            .env("COLUMNS", "120")
            .output()
            .expect("`script` is missing: apt-get install bsdutils");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = on_tty("");
    // The first line is drawn at once, maybe before the check registered;
    // which checks a line names is the unit tests' part (`progress::tests`).
    assert!(shown.contains("\r\x1b[K[0/1]"), "{shown:?}");
    // The line is erased before the table is printed.
    let erased = shown.rfind("\r\x1b[K").unwrap();
    assert!(shown[erased..].contains("C-1"), "{shown:?}");
    let json_on_tty = on_tty("--format json");
    assert!(!json_on_tty.contains("\x1b[K"), "{json_on_tty:?}");
    let piped = Command::new(&agent)
        .args(["check", "--policy", &policy, "--state-dir"])
        .arg(dir.path().join("state2"))
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("\x1b[K"));
    let report = String::from_utf8_lossy(&piped.stdout);
    assert!(
        !report.contains("[0/1]") && !report.contains("\x1b"),
        "{report}"
    );
}
