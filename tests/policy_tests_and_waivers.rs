//! `vigil-agent test` (policy unit tests) and `check --waivers` on real
//! fixture hosts.

use vigil_tests::*;

#[test]
fn the_papyrs_policy_tests_pass_and_a_flipped_expectation_fails() {
    let policy = workspace().join("policies/papyrs.yaml");
    let o = run_agent(&["test", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains(" passed, 0 failed"), "{}", stdout(&o));

    // The same tests with one expectation flipped.
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&workspace().join("policies"), dir.path());
    let tests = dir.path().join("papyrs.test.yaml");
    let text = std::fs::read_to_string(&tests).unwrap();
    let flipped = text.replacen(
        "facts_file: facts/logs-clean.json\n    expect: {status: pass}",
        "facts_file: facts/logs-clean.json\n    expect: {status: fail}",
        1,
    );
    assert_ne!(flipped, text);
    std::fs::write(&tests, flipped).unwrap();
    let o = run_agent(&[
        "test",
        "--policy",
        dir.path().join("papyrs.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(
        out.contains(
            "FAIL  logs without secrets pass (SP-3/password-free-logs): expected fail, got pass"
        ),
        "{out}"
    );
    assert!(out.contains(" passed, 1 failed"));

    // A case naming a check the policy lacks is an invalid file.
    std::fs::write(
        &tests,
        text.replacen("check: password-free-logs", "check: nope", 1),
    )
    .unwrap();
    let o = run_agent(&[
        "test",
        "--policy",
        dir.path().join("papyrs.yaml").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("policy has no check `SP-3/nope`"),
        "{}",
        stderr(&o)
    );
}

fn waivers_file(dir: &std::path::Path, control: &str, expires: &str) -> String {
    let p = dir.join("waivers.yaml");
    std::fs::write(
        &p,
        format!(
            "waivers:\n  - id: W-1\n    control: {control}\n    hosts: [\"*\"]\n    justification: legacy sshd until the migration\n    approved_by: ciso@papyrs.example\n    approved_on: 2026-01-01\n    expires: {expires}\n"
        ),
    )
    .unwrap();
    p.to_string_lossy().into_owned()
}

fn check_with_waivers(case: &str, waivers: &str) -> std::process::Output {
    let c = workspace().join("tests/data/hosts").join(case);
    run_agent(&[
        "check",
        "--policy",
        c.join("policy.yaml").to_str().unwrap(),
        "--root",
        c.join("root").to_str().unwrap(),
        "--waivers",
        waivers,
        "--format",
        "json",
    ])
}

#[test]
fn waivers_accept_a_failure_until_they_expire_and_never_hide_an_error() {
    let dir = tempfile::tempdir().unwrap();
    // In date: the failing SP-4 becomes waived, the check keeps its findings, exit 0.
    let o = check_with_waivers("weak-sshd", &waivers_file(dir.path(), "SP-4", "2099-12-31"));
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = report_json(&o);
    let sp4 = r["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "SP-4")
        .unwrap();
    assert_eq!(sp4["status"], "waived");
    assert_eq!(sp4["checks"][0]["status"], "fail");
    assert_eq!(sp4["checks"][0]["waived_by"], "W-1");
    assert!(!codes(&sp4["checks"][0]).is_empty());
    assert_eq!(r["summary"]["waived"], 1);

    // Expired yesterday: the control fails again with `waiver_expired`.
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let o = check_with_waivers("weak-sshd", &waivers_file(dir.path(), "SP-4", &yesterday));
    assert_eq!(o.status.code(), Some(1));
    let r = report_json(&o);
    let c = check_of(&r, "SP-4", "ssh");
    assert!(codes(c).contains(&"waiver_expired".to_owned()), "{c}");
    assert!(stderr(&o).contains("waiver `W-1` has expired"));

    // An error is never waived.
    let o = check_with_waivers(
        "unreadable",
        &waivers_file(dir.path(), "SP-3", "2099-12-31"),
    );
    assert_eq!(o.status.code(), Some(1));
    let r = report_json(&o);
    assert_eq!(
        r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "SP-3")
            .unwrap()["status"],
        "error"
    );

    // A waiver for a control the policy lacks is a located error; nothing runs.
    let w = waivers_file(dir.path(), "SP-99", "2099-12-31");
    let o = check_with_waivers("weak-sshd", &w);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&format!("{w}:3:14: waiver `W-1` names no control")),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
}
