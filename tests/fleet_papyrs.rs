//! A fleet by role, end to end: a reporter and one `vigil-agent run` per
//! Papyrs role (app, db, backup, offline_backup), each with its own files and
//! state, running one fleet policy whose controls carry `roles` like
//! policies/papyrs.yaml: a TLS certificate made by `openssl` on the app
//! server, real restic repositories on the backup hosts, erasure readiness on
//! the app and backup hosts, an attestation everywhere.
//!
//! Asserts that a correctly configured fleet shows every control pass or
//! attested on every host it applies to (no error, no unknown) and `n/a`
//! elsewhere, that `vigil-agent check --role R` exits 0 for each role, and
//! that breaking one thing per role (a certificate about to expire on the
//! app server, an old backup on the backup server, an old backup on the
//! offline host) turns exactly that control to `fail` on exactly that host.
//!
//! Not covered here yet (see the report of issue 20): PostgreSQL primary and
//! standby for BK-4, nftables firewalls in network namespaces for SP-5, and
//! clamd for SP-7; the db host runs only the every-host control.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use vigil_tests::*;

const ROLES: [(&str, &str); 4] = [
    ("web-1", "app"),
    ("db-1", "db"),
    ("backup-1", "backup"),
    ("offline-1", "offline_backup"),
];

fn openssl(dir: &Path, args: &[&str]) {
    let bin = require_tool("openssl", "openssl");
    let o = Command::new(bin)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A private CA and a leaf for papyrs.example valid `days` days, as
/// `fullchain.pem` (leaf then CA) in `dir`; the CA alone in `ca.pem`.
fn certificate(dir: &Path, days: u32) {
    std::fs::create_dir_all(dir).unwrap();
    if !dir.join("ca.pem").exists() {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "3650",
                "-subj",
                "/CN=Fleet Test Gandi CA",
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=papyrs.example",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:papyrs.example\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            &days.to_string(),
            "-extfile",
            "ext.cnf",
        ],
    );
    let chain = std::fs::read_to_string(dir.join("leaf.pem")).unwrap()
        + &std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    std::fs::write(dir.join("fullchain.pem"), chain).unwrap();
}

/// A restic repository at `dir/restic` holding `data` backed up now.
fn repository(dir: &Path, data: &Path) -> Restic {
    std::fs::create_dir_all(dir).unwrap();
    let pass = dir.join("restic.pass");
    std::fs::write(&pass, "fleet-papyrs-pass\n").unwrap();
    let r = Restic::new(&dir.join("restic"), &pass);
    r.cmd(&["init", "-q"]);
    r.cmd(&["backup", "-q", data.to_str().unwrap()]);
    r
}

/// Replaces the repository's only set by one made three days ago.
fn make_backup_old(r: &Restic, data: &Path) {
    let old = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    // The daemons read the repository every second (a shared lock each
    // time): restic 0.14 has no --retry-lock, so retry here.
    for args in [
        &["backup", "-q", "--time", &old, data.to_str().unwrap()][..],
        &["forget", "-q", "--keep-last", "1"][..],
    ] {
        let mut tries = 0;
        loop {
            let o = r.output(args);
            if o.status.success() {
                break;
            }
            tries += 1;
            assert!(
                tries < 60,
                "restic {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
}

fn statuses(posture: &Value, control: &str) -> Value {
    posture["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == control)
        .unwrap_or_else(|| panic!("no {control} in {posture:#}"))
        .clone()
}

// Not finished (issue 20 stays open): the healthy fleet passed once, the
// breaks were never seen to pass, and PostgreSQL, nftables and clamd are not
// in it yet. It takes over 12 minutes on 2 cores. Run it by hand with
// `cargo test -p vigil-tests --test fleet_papyrs -- --ignored`.
#[test]
#[ignore = "unfinished fleet test (issue 20): run with --ignored"]
fn a_papyrs_fleet_by_role_passes_and_each_break_fails_one_control_on_one_host() {
    require_tool("restic", "restic");
    let dir = tempfile::Builder::new()
        .prefix("vigil-fleet-papyrs-")
        .tempdir()
        .unwrap();
    let base = dir.path();
    let p = |rel: &str| base.join(rel).to_string_lossy().into_owned();

    // web-1: the served certificate, the site and its logs.
    certificate(&base.join("web-1/ssl"), 90);
    let sites = base.join("web-1/sites");
    copy_dir(
        &workspace().join("examples/papyrs-site/site"),
        &sites.join("acme"),
    );
    std::fs::create_dir_all(base.join("web-1/logs")).unwrap();
    std::fs::write(base.join("web-1/logs/papyrs.log"), "GET / 200\n").unwrap();
    // backup-1 and offline-1: restic repositories of the sites.
    let local = repository(&base.join("backup-1"), &sites);
    let offline = repository(&base.join("offline-1"), &sites);

    let policy = format!(
        r#"policy: {{id: papyrs-fleet-test, version: "1", title: Papyrs fleet (test)}}
controls:
  - id: SP-2
    title: Encryption certificates are signed by GANDI
    roles: [app]
    checks:
      - id: served-certificate
        type: tls_certificate_file
        with: {{path: "{cert}", ca_file: "{ca}", issuer_contains: Gandi, min_days_remaining: 21, min_rsa_bits: 2048}}
  - id: SP-9
    title: The servers are physically secured
    checks:
      - id: datacentre-attestation
        type: attestation
        with: {{by: ops@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "ISO 27001 certificate"}}
  - id: GDPR-4
    title: A closed account's data is destroyed in three phases
    checks:
      - id: three-phase-erasure
        type: erasure
        roles: [app]
        with:
          site: {{paths: ["{sites}/{{account}}"], remove_paths: true}}
          logs: {{paths: ["{logs}/*.log"], purge: true}}
      - id: local-backups-erasure
        type: erasure
        roles: [backup]
        with:
          local_backups: {{restic: [{{repository: "{lrepo}", password_file: "{lpass}", delete: forget}}], paths_in_backup: ["{sites}/{{account}}"]}}
      - id: offline-backups-erasure
        type: erasure
        roles: [offline_backup]
        with:
          offline_backups: {{restic: [{{repository: "{orepo}", password_file: "{opass}", delete: forget}}], paths_in_backup: ["{sites}/{{account}}"]}}
  - id: GDPR-5
    title: Customers can download a portable backup of their site
    roles: [app]
    checks:
      - id: portable-export
        type: erasure
        with: {{export: {{site_root: "{sites}/{{account}}", output_dir: "{exports}"}}}}
  - id: BK-1
    title: Backups are made of all client data every night
    roles: [backup, offline_backup]
    checks:
      - id: nightly-restic
        type: backup_freshness
        roles: [backup]
        with: {{sources: [{{kind: restic, location: "{lrepo}", password_file: "{lpass}"}}], max_age_hours: 26}}
      - id: offline-restic
        type: backup_freshness
        roles: [offline_backup]
        with: {{sources: [{{kind: restic, location: "{orepo}", password_file: "{opass}"}}], max_age_hours: 26}}
"#,
        cert = p("web-1/ssl/fullchain.pem"),
        ca = p("web-1/ssl/ca.pem"),
        sites = sites.display(),
        logs = p("web-1/logs"),
        exports = p("web-1/exports"),
        lrepo = local.repo.display(),
        lpass = local.pass.display(),
        orepo = offline.repo.display(),
        opass = offline.pass.display(),
    );
    let policy_path = base.join("papyrs-fleet.yaml");
    std::fs::write(&policy_path, &policy).unwrap();
    let o = run_agent(&["validate", "--policy", policy_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));

    // One-shot runs by role exit 0, each holding only its role's controls.
    let applies: [(&str, &[&str]); 4] = [
        ("app", &["SP-2", "SP-9", "GDPR-4", "GDPR-5"]),
        ("db", &["SP-9"]),
        ("backup", &["SP-9", "GDPR-4", "BK-1"]),
        ("offline_backup", &["SP-9", "GDPR-4", "BK-1"]),
    ];
    for (role, controls) in applies {
        let state = tempfile::tempdir().unwrap();
        let o = run_agent(&[
            "check",
            "--policy",
            policy_path.to_str().unwrap(),
            "--role",
            role,
            "--format",
            "json",
            "--state-dir",
            state.path().to_str().unwrap(),
        ]);
        let r = report_json(&o);
        assert_eq!(o.status.code(), Some(0), "{role}: {r:#}\n{}", stderr(&o));
        assert_eq!(r["agent"]["roles"], json!([role]));
        let ids: Vec<&str> = r["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, controls, "{role}");
        for c in r["controls"].as_array().unwrap() {
            assert!(
                c["status"] == "pass" || c["status"] == "attested",
                "{role}: {c:#}"
            );
        }
    }

    // The fleet: a reporter handing out this policy, one daemon per role.
    let cfg = base.join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "policy: {}\nerasure:\n  roles: {{export: [app], site: [app], local_backups: [backup], offline_backups: [offline_backup], logs: [app]}}\n",
            policy_path.display()
        ),
    )
    .unwrap();
    let rep = Reporter::start(
        &base.join("reporter"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let admin = rep.add_user("alice", "admin");
    let mut agents: Vec<DaemonAgent> = ROLES
        .iter()
        .map(|(host, role)| DaemonAgent::with_policy(host, &rep.base, &[role], &policy_path, ""))
        .collect();
    for a in &mut agents {
        let o = a.enroll(ENROLL_SECRET);
        assert!(o.status.success(), "enroll {}: {}", a.host, stderr(&o));
        a.start(&[]);
    }
    let logs = |agents: &[DaemonAgent]| -> String {
        agents
            .iter()
            .map(|a| format!("--- {} ---\n{}", a.host, a.log()))
            .collect()
    };

    // Every control passes or is attested on every host it applies to.
    let expect_all_good = |posture: &Value| -> Result<(), String> {
        for c in posture["controls"].as_array().unwrap() {
            let counts = c["counts"].as_object().unwrap();
            let good: u64 = ["pass", "attested"]
                .iter()
                .map(|s| counts.get(*s).and_then(Value::as_u64).unwrap_or(0))
                .sum();
            let all: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
            if good != all || all != c["applicable_hosts"].as_u64().unwrap() || all == 0 {
                return Err(format!("{}: {c:#}", c["id"]));
            }
        }
        Ok(())
    };
    let mut last = Value::Null;
    wait_until(90, "every applicable control to pass on every host", || {
        let (_, posture) = rep.get_json(&admin, "/api/v1/posture");
        let ok = expect_all_good(&posture).is_ok();
        last = posture;
        ok
    });
    let posture = last.clone();
    let sp2 = statuses(&posture, "SP-2");
    assert_eq!(sp2["applicable_hosts"], 1, "{sp2:#}");
    assert_eq!(
        sp2["hosts_not_applicable"],
        json!(["backup-1", "db-1", "offline-1"])
    );
    let bk1 = statuses(&posture, "BK-1");
    assert_eq!(bk1["roles"], json!(["backup", "offline_backup"]));
    assert_eq!(bk1["applicable_hosts"], 2);
    assert_eq!(statuses(&posture, "SP-9")["applicable_hosts"], 4);
    // GDPR-4 and GDPR-5 pass with no closure pending: readiness is proved.
    let gdpr4 = statuses(&posture, "GDPR-4");
    assert_eq!(gdpr4["status"], "pass", "{gdpr4:#}");
    assert_eq!(gdpr4["applicable_hosts"], 3);
    let web = rep.newest_report(&admin, "web-1").unwrap();
    let export = check_of(&web, "GDPR-5", "portable-export");
    assert_eq!(export["evidence"]["readiness"]["ready"], true, "{export:#}");

    // The overview shows n/a where a control does not apply.
    let html = rep
        .client()
        .get(format!("{}/", rep.base))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .text()
        .unwrap();
    if html.contains("id=\"matrix\"") {
        assert!(html.contains("n/a"), "{html}");
    }

    // Break one thing per role.
    certificate(&base.join("web-1/ssl"), 5); // 5 days left, 21 required
    make_backup_old(&local, &sites);
    make_backup_old(&offline, &sites);
    let mut last = Value::Null;
    wait_until(120, "the three breaks to show", || {
        let (_, posture) = rep.get_json(&admin, "/api/v1/posture");
        let done = statuses(&posture, "SP-2")["hosts_failing"] == json!(["web-1"])
            && statuses(&posture, "BK-1")["hosts_failing"] == json!(["backup-1", "offline-1"]);
        last = posture;
        done
    });
    let posture = last;
    for c in posture["controls"].as_array().unwrap() {
        let id = c["id"].as_str().unwrap();
        let failing = match id {
            "SP-2" => json!(["web-1"]),
            "BK-1" => json!(["backup-1", "offline-1"]),
            _ => json!([]),
        };
        assert_eq!(
            c["hosts_failing"],
            failing,
            "{id}: {c:#}\n{}",
            logs(&agents)
        );
        assert_eq!(c["hosts_error"], json!([]), "{id}: {c:#}");
        assert_eq!(c["hosts_unknown"], json!([]), "{id}: {c:#}");
    }
    let web = rep.newest_report(&admin, "web-1").unwrap();
    assert_eq!(
        codes(check_of(&web, "SP-2", "served-certificate")),
        ["expiring_soon"]
    );
    let bk = rep.newest_report(&admin, "backup-1").unwrap();
    assert_eq!(check_of(&bk, "BK-1", "nightly-restic")["status"], "fail");
    for a in &mut agents {
        a.stop();
    }
}
