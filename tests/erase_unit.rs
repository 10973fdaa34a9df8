//! Erasure under the unit (issue 21, "Under the unit"): the agent runs in a
//! mount namespace with the unit's read-only/read-write layout (the fixture
//! root bind-mounted read-only, its ReadWritePaths writable again) and with
//! the unit's capability bounding set (`setpriv`). With the shipped
//! `vigil-agent.service` the erasure must be `error` with the preflight's
//! reason and delete nothing; with the drop-in `vigil-agent erase-unit`
//! prints, it must succeed.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

const IDS: [&str; 3] = ["acme", "u-1842", "acme.papyrs.example"];
/// The shipped unit's CapabilityBoundingSet, as setpriv names them.
const SHIPPED_CAPS: [&str; 3] = ["dac_read_search", "net_admin", "sys_ptrace"];

fn host() -> FixtureHost {
    let host = FixtureHost::new();
    host.write("/srv/papyrs/sites/acme/pages/index.md", "# acme\n");
    host.write(
        "/srv/papyrs/sites/bob/site.json",
        "{\"account\": \"bob\"}\n",
    );
    host.write(
        "/var/log/papyrs/app.log",
        "GET /sites/acme/ 200\nGET /sites/bob/ 200\n",
    );
    std::fs::create_dir_all(host.root().join("var/lib/vigil/state")).unwrap();
    host
}

fn policy(host: &FixtureHost) -> String {
    let with = json!({
        "tasks": [
            {"account": "acme", "phase": "site", "identifiers": IDS},
            {"account": "acme", "phase": "logs", "identifiers": IDS},
        ],
        "site": {"paths": ["/srv/papyrs/sites/{account}"], "remove_paths": true},
        "logs": {"paths": ["/var/log/papyrs/app.log*"], "purge": true},
    });
    single_check_policy("GDPR-4", "erasure", "erasure", &with.to_string())
        .timeout("5m")
        .write(&host.root().join("etc/vigil/policy.yaml"))
}

fn require_root() {
    let o = Command::new("id").arg("-u").output().expect("id -u");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        "0",
        "these tests build mount namespaces and capability sets: run them as root"
    );
}

/// Runs `vigil-agent check` on `host` with the fixture root read-only but
/// for `rw` (host paths) and the bounding set `caps`; returns the erasure check.
fn run_sandboxed(host: &FixtureHost, p: &str, rw: &[String], caps: &[String]) -> Value {
    require_root();
    require_tool("unshare", "util-linux");
    require_tool("setpriv", "util-linux");
    let root = host.root().to_string_lossy().into_owned();
    let mut script = String::from(
        "set -e\nmount --bind \"$ROOT\" \"$ROOT\"\nmount -o remount,bind,ro \"$ROOT\"\n",
    );
    for (i, path) in rw.iter().enumerate() {
        let under = host.root().join(path.trim_start_matches('/'));
        std::fs::create_dir_all(&under).unwrap();
        script.push_str(&format!(
            "mount --bind \"$RW{i}\" \"$RW{i}\"\nmount -o remount,bind,rw \"$RW{i}\"\n"
        ));
    }
    let bounding: String = std::iter::once("-all".to_owned())
        .chain(caps.iter().map(|c| format!("+{c}")))
        .collect::<Vec<_>>()
        .join(",");
    script.push_str(&format!(
        "exec setpriv --inh-caps=-all --ambient-caps=-all --bounding-set={bounding} \"$AGENT\" check --policy \"$POLICY\" --root \"$ROOT\" --state-dir \"$ROOT/var/lib/vigil/state\" --format json\n"
    ));
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("ROOT", &root)
        .env("AGENT", agent())
        .env("POLICY", p)
        .env("NO_COLOR", "1");
    for (i, path) in rw.iter().enumerate() {
        cmd.env(
            format!("RW{i}"),
            host.root().join(path.trim_start_matches('/')),
        );
    }
    let o = cmd.output().expect("cannot run unshare");
    let r = report_json(&o);
    check_of(&r, "GDPR-4", "erasure").clone()
}

fn acme_site(host: &FixtureHost) -> PathBuf {
    host.root().join("srv/papyrs/sites/acme/pages/index.md")
}

fn log(host: &FixtureHost) -> String {
    std::fs::read_to_string(host.root().join("var/log/papyrs/app.log")).unwrap()
}

fn shipped_caps() -> Vec<String> {
    SHIPPED_CAPS.iter().map(|c| c.to_string()).collect()
}

#[test]
fn under_the_shipped_unit_the_erasure_is_refused_and_nothing_deleted() {
    let host = host();
    let p = policy(&host);
    let c = run_sandboxed(&host, &p, &["/var/lib/vigil".to_owned()], &shipped_caps());
    assert_eq!(c["status"], "error", "{c:#}");
    let reason = c.to_string();
    assert!(
        reason.contains("the sandbox would stop this erasure"),
        "{c:#}"
    );
    // Which path and which capabilities stop it.
    assert!(
        reason.contains("`/srv/papyrs/sites` is on a read-only file system"),
        "{c:#}"
    );
    assert!(
        reason.contains("`/var/log/papyrs/app.log` is on a read-only file system"),
        "{c:#}"
    );
    assert!(
        reason.contains(
            "CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER not in the effective capability set"
        ),
        "{c:#}"
    );
    assert!(acme_site(&host).exists(), "nothing may be deleted");
    assert!(log(&host).contains("/sites/acme/"), "nothing may be purged");
}

#[test]
fn writable_paths_without_the_capabilities_are_refused_too() {
    let host = host();
    let p = policy(&host);
    let rw: Vec<String> = ["/var/lib/vigil", "/srv/papyrs/sites", "/var/log/papyrs"]
        .map(String::from)
        .to_vec();
    let c = run_sandboxed(&host, &p, &rw, &shipped_caps());
    assert_eq!(c["status"], "error", "{c:#}");
    let reason = c.to_string();
    assert!(!reason.contains("read-only file system"), "{c:#}");
    assert!(reason.contains("CAP_DAC_OVERRIDE"), "{c:#}");
    assert!(acme_site(&host).exists());
    assert!(log(&host).contains("/sites/acme/"));
}

#[test]
fn under_the_generated_drop_in_the_erasure_succeeds() {
    let host = host();
    let p = policy(&host);
    let o = run_agent(&["erase-unit", "--policy", &p]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let unit = stdout(&o);
    // The unit's own ReadWritePaths, then the drop-in's.
    let mut rw = vec!["/var/lib/vigil".to_owned()];
    let mut caps = shipped_caps();
    for line in unit.lines() {
        if let Some(p) = line.strip_prefix("ReadWritePaths=") {
            rw.push(p.trim_start_matches('-').to_owned());
        }
        if let Some(c) = line.strip_prefix("CapabilityBoundingSet=") {
            caps.extend(
                c.split_whitespace()
                    .map(|c| c.trim_start_matches("CAP_").to_lowercase()),
            );
        }
    }
    assert!(rw.contains(&"/srv/papyrs/sites".to_owned()), "{unit}");
    assert!(rw.contains(&"/var/log/papyrs".to_owned()), "{unit}");
    assert!(caps.contains(&"chown".to_owned()), "{unit}");
    let c = run_sandboxed(&host, &p, &rw, &caps);
    assert_eq!(c["status"], "pass", "{c:#}");
    assert!(!acme_site(&host).exists());
    assert!(host.root().join("srv/papyrs/sites/bob/site.json").exists());
    let log = log(&host);
    assert!(!log.contains("/sites/acme/"), "{log}");
    assert!(log.contains("/sites/bob/"), "{log}");
}

#[test]
fn a_policy_whose_erasure_only_verifies_needs_no_drop_in() {
    let host = FixtureHost::new();
    let p = single_check_policy(
        "C-1",
        "erasure",
        "erasure",
        "{site: {paths: ['/srv/sites/{account}']}}",
    )
    .write(&host.root().join("policy.yaml"));
    let o = run_agent(&["erase-unit", "--policy", &p]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("no erasure check"), "{}", stderr(&o));
}
