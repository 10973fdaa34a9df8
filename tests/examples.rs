//! Every example under examples/ validates and gives its expected exit code.

use vigil_tests::*;

#[test]
fn every_example_runs_as_documented() {
    let dir = workspace().join("examples");
    let mut ran = 0;
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        // examples/systemd holds the service units (docs/agent-daemon.md), not a policy;
        // examples/papyrs-fleet holds per-role configs, run by tests/fleet_papyrs.rs
        .filter(|p| p.is_dir() && !p.ends_with("systemd") && !p.ends_with("papyrs-fleet"))
        .collect();
    entries.sort();
    for ex in entries {
        let name = ex.file_name().unwrap().to_string_lossy().into_owned();
        let policy = ex.join("policy.yaml");
        assert!(ex.join("README.md").exists(), "{name} has no README.md");
        let o = run_agent(&["validate", "--policy", policy.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let want: i32 = std::fs::read_to_string(ex.join("expected-exit"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let state = tempfile::tempdir().unwrap();
        let mut check = agent_check(&policy).state_dir(state.path());
        let root = ex.join("root");
        if root.is_dir() {
            check = check.root(&root);
        }
        let o = check.output();
        assert_eq!(
            o.status.code(),
            Some(want),
            "{name}: {}\n{}",
            stdout(&o),
            stderr(&o)
        );
        report_json(&o);
        ran += 1;
    }
    assert!(ran >= 2, "no examples ran");
}
