//! End to end with real daemons: a reporter and `vigil-agent run` on four
//! hosts in the three erasure roles (an app server holding the sample site and
//! its logs, two backup servers with real restic repositories, an offline
//! backup host with its own). Staff open a closure; the agents learn their
//! tasks from `GET /api/v1/erasures`, export, delete and prove absence; the
//! closure walks every state to `closed`, waiting while one backup host is
//! down (stale); the certificate verifies offline. Every snapshot holds
//! several customers (issue 21): afterwards no snapshot in any repository
//! holds the account's paths and none of its blobs is left in the packs,
//! every other account's files are still in every snapshot that held them,
//! and the backup checks (BK-1/BK-2's `backup_freshness`) still pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use vigil_tests::*;

const IDS: [&str; 2] = ["u-1842", "acme.papyrs.example"];

/// One host's files: its root directory and the policy it runs.
struct HostFiles {
    root: PathBuf,
}

impl HostFiles {
    fn new(base: &Path, name: &str) -> HostFiles {
        let root = base.join(name);
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let log: String = (0..200)
            .map(|i| match i % 4 {
                0 => format!("{i} GET /sites/acme/pages/{i} user=u-1842\n"),
                1 => format!("{i} GET /sites/bob/pages/{i} user=u-0007\n"),
                2 => format!("{i} host=acme.papyrs.example status=200\n"),
                _ => format!("{i} cron: nightly job done\n"),
            })
            .collect();
        std::fs::write(root.join("logs/app.log"), log).unwrap();
        HostFiles { root }
    }

    fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_string_lossy().into_owned()
    }

    /// Writes the host's policy: the GDPR-4 erasure check with `with`, plus
    /// the logs phase every host proves.
    fn policy(&self, mut with: Value) -> PathBuf {
        with["logs"] = json!({"paths": [self.path("logs/*.log")], "purge": true});
        with["hook_timeout"] = json!("2m");
        let p = self.root.join("policy.yaml");
        single_check_policy("GDPR-4", "erasure", "erasure", &with.to_string())
            .timeout("5m")
            .write(&p);
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.root.join("logs/app.log")).unwrap()
    }
}

fn restic_repo(bin: &Path, host: &HostFiles, sites: &Path) -> Restic {
    let pass = host.root.join("restic.pass");
    std::fs::write(&pass, "fleet-erasure-pass\n").unwrap();
    let mut r = Restic::new(&host.root.join("restic"), &pass);
    r.bin = bin.to_owned();
    r.cmd(&["init", "-q"]);
    // Nightly sets of every site (several customers per snapshot), and one of bob alone.
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    r.cmd(&["backup", "-q", sites.join("bob").to_str().unwrap()]);
    r
}

/// Per snapshot (by its time, which `rewrite` keeps): the file paths of the
/// accounts other than acme.
fn others_by_snapshot(r: &Restic) -> std::collections::BTreeMap<String, Vec<String>> {
    let snaps: Value = serde_json::from_str(&r.cmd(&["snapshots", "--json"])).unwrap();
    snaps
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let ls = r.cmd(&["ls", s["id"].as_str().unwrap()]);
            let others: Vec<String> = ls
                .lines()
                .filter(|l| l.contains("/sites/bob") || l.contains("/sites/carol"))
                .map(String::from)
                .collect();
            (s["time"].as_str().unwrap().to_owned(), others)
        })
        .collect()
}

/// The blob ids (sha256) of acme's files small enough to be one blob.
fn acme_blobs(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let b = std::fs::read(&p).unwrap();
                if !b.is_empty() && b.len() < 512 * 1024 {
                    out.push(sha256_hex(&b));
                }
            }
        }
    }
    assert!(out.len() > 5);
    out
}

/// Every audit entry's kind and data, read one by one through the proof
/// route; the log must verify.
fn audit_kinds(r: &Reporter, staff: &str) -> Vec<(String, Value)> {
    let (s, v) = r.get_json(staff, "/api/v1/audit/verify");
    assert_eq!((s, &v["ok"]), (200, &json!(true)), "{v}");
    (0..v["entries"].as_u64().unwrap())
        .map(|seq| {
            let (s, p) = r.get_json(staff, &format!("/api/v1/audit/proof?seq={seq}"));
            assert_eq!(s, 200, "{p}");
            let e = &p["entry"];
            (e["kind"].as_str().unwrap().to_owned(), e["data"].clone())
        })
        .collect()
}

fn closure(r: &Reporter, admin: &str) -> Value {
    let (s, c) = r.get_json(admin, "/api/v1/accounts/acme/closure");
    assert_eq!(s, 200, "{c}");
    c
}

fn start(rep: &Reporter, agent: &mut DaemonAgent) {
    let o = agent.enroll(ENROLL_SECRET);
    assert!(
        o.status.success(),
        "enroll {}: {}",
        agent.host,
        String::from_utf8_lossy(&o.stderr)
    );
    // Requested roles are trusted once an admin approves them (issue 19).
    rep.approve_roles(&agent.host);
    agent.start(&[]);
}

fn logs_of(agents: &[&DaemonAgent]) -> String {
    agents
        .iter()
        .map(|a| format!("--- {} ---\n{}", a.host, a.log()))
        .collect()
}

#[test]
fn agents_in_three_roles_carry_a_closure_to_closed() {
    let restic = require_tool("restic", "restic");
    let version = String::from_utf8_lossy(
        &Command::new(&restic)
            .arg("version")
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        !version.starts_with("restic 0.14") && !version.starts_with("restic 0.13"),
        "restic >= 0.15 is needed (`restic rewrite`); found `{}`: install restic 0.18 from Debian 13 as .ci/run does",
        version.trim()
    );
    let dir = tempfile::Builder::new()
        .prefix("vigil-fleet-erasure-")
        .tempdir()
        .unwrap();
    let base = dir.path();

    // The app server: the sample site as `acme`, a second account `bob`.
    let app = HostFiles::new(base, "app-1");
    let sites = app.root.join("sites");
    copy_dir(
        &workspace().join("examples/papyrs-site/site"),
        &sites.join("acme"),
    );
    std::fs::create_dir_all(sites.join("bob/pages")).unwrap();
    std::fs::write(sites.join("bob/site.json"), "{\"account\": \"bob\"}\n").unwrap();
    std::fs::write(sites.join("bob/pages/index.md"), "# Bob's bakery\n").unwrap();
    std::fs::create_dir_all(sites.join("carol/attachments")).unwrap();
    std::fs::write(sites.join("carol/site.json"), "{\"account\": \"carol\"}\n").unwrap();
    std::fs::write(
        sites.join("carol/attachments/price-list.txt"),
        "bread 3.20\n",
    )
    .unwrap();
    let blobs = acme_blobs(&sites.join("acme"));
    let exports = app.root.join("exports");
    let site_tpl = format!("{}/{{account}}", sites.display());
    let app_policy = app.policy(json!({
        "export": {"site_root": site_tpl, "output_dir": exports},
        "site": {"paths": [site_tpl], "remove_paths": true},
    }));

    // Backup hosts and the offline host: restic repositories of the sites.
    let backup_with = |h: &HostFiles, phase: &str, r: &Restic| {
        h.policy(json!({
            phase: {"restic": [{"repository": r.repo, "password_file": r.pass, "delete": "rewrite"}],
                    "paths_in_backup": [site_tpl]},
        }))
    };
    let b1 = HostFiles::new(base, "backup-1");
    let r1 = restic_repo(&restic, &b1, &sites);
    let b1_policy = backup_with(&b1, "local_backups", &r1);
    let b2 = HostFiles::new(base, "backup-2");
    let r2 = restic_repo(&restic, &b2, &sites);
    let b2_policy = backup_with(&b2, "local_backups", &r2);
    let off = HostFiles::new(base, "offline-1");
    let r3 = restic_repo(&restic, &off, &sites);
    let off_policy = backup_with(&off, "offline_backups", &r3);
    let mut before = Vec::new();
    for r in [&r1, &r2, &r3] {
        assert!(r.all_paths().contains("/acme/pages/"));
        assert!(blobs.iter().all(|b| r.has_blob(b)));
        before.push(others_by_snapshot(r));
    }

    let cfg = base.join("reporter.yaml");
    std::fs::write(
        &cfg,
        // Every host proves the logs phase here (the default is the app servers).
        "erasure:\n  cooling_off: 4s\n  offline_retention: 365d\n  roles: {export: [app], site: [app], local_backups: [backup], offline_backups: [offline_backup], logs: [\"*\"]}\n",
    )
    .unwrap();
    let rep = Reporter::start(
        &base.join("reporter"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let admin = rep.add_user("alice", "admin");

    let extra = "";
    let mut a_app = DaemonAgent::with_policy("app-1", &rep.base, &["app"], &app_policy, extra);
    let mut a_b1 = DaemonAgent::with_policy("backup-1", &rep.base, &["backup"], &b1_policy, extra);
    let mut a_b2 = DaemonAgent::with_policy("backup-2", &rep.base, &["backup"], &b2_policy, extra);
    let mut a_off = DaemonAgent::with_policy(
        "offline-1",
        &rep.base,
        &["offline_backup"],
        &off_policy,
        extra,
    );
    for a in [&mut a_app, &mut a_b1, &mut a_b2, &mut a_off] {
        start(&rep, a);
    }
    wait_until(60, "every host to report", || {
        let (_, hosts) = rep.get_json(&admin, "/api/v1/hosts");
        hosts["hosts"]
            .as_array()
            .is_some_and(|h| h.iter().filter(|h| !h["last_report_at"].is_null()).count() == 4)
    });
    // With nothing pending, the erasure check proves the host is ready
    // (contract, "Erasure readiness"): a pass with that evidence, no task.
    let (_, reports) = rep.get_json(&admin, "/api/v1/reports?host=app-1&limit=1");
    let id = reports["reports"][0]["report_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, report) = rep.get_json(&admin, &format!("/api/v1/reports/{id}"));
    let c = &report["controls"][0]["checks"][0];
    assert_eq!(c["status"], "pass", "{report:#}");
    assert_eq!(c["evidence"]["tasks"], json!([]), "{report:#}");
    assert_eq!(
        c["evidence"]["readiness"]["ready"],
        json!(true),
        "{report:#}"
    );

    // backup-2 goes down before the closure: the local backups will wait for it.
    assert_eq!(a_b2.stop(), 0);

    let resp = rep
        .client()
        .post(format!("{}/api/v1/accounts/acme/closure", rep.base))
        .bearer_auth(&admin)
        .json(&json!({"requested_by": "owner, ticket 8812", "reason": "account closed", "identifiers": IDS}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    // Export: the app host writes the archive; the site stays during cooling-off.
    wait_until(60, "export_ready", || {
        closure(&rep, &admin)["state"] == "export_ready"
    });
    let archives: Vec<_> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    assert!(
        sites.join("acme/site.json").exists(),
        "site erased during cooling-off"
    );

    // The app host hands the proved archive in; staff make an expiring link
    // that anyone holding it can download with, until it expires.
    let archive = std::fs::read(&archives[0]).unwrap();
    let link = |who: &str, valid_for: &str| {
        rep.client()
            .post(format!("{}/api/v1/accounts/acme/export/link", rep.base))
            .bearer_auth(who)
            .json(&json!({"valid_for": valid_for}))
            .send()
            .unwrap()
    };
    let auditor = rep.add_user("bob", "auditor");
    assert_eq!(link(&auditor, "1h").status().as_u16(), 403);
    let mut made = None;
    wait_until(60, "the export to be uploaded", || {
        let r = link(&admin, "1h");
        let s = r.status().as_u16();
        assert!(s == 201 || s == 409, "{s}");
        if s == 201 {
            made = Some(r.json::<Value>().unwrap());
        }
        s == 201
    });
    let made = made.unwrap();
    assert_eq!(made["sha256"], sha256_hex(&archive));
    assert_eq!(made["host"], "app-1");
    let anonymous = reqwest::blocking::Client::new();
    let got = anonymous
        .get(format!("{}{}", rep.base, made["path"].as_str().unwrap()))
        .send()
        .unwrap();
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(
        got.headers()["content-disposition"],
        "attachment; filename=\"acme-export.tar.gz\""
    );
    assert_eq!(got.bytes().unwrap().as_ref(), archive.as_slice());
    let short = link(&admin, "1s").json::<Value>().unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let expired = anonymous
        .get(format!("{}{}", rep.base, short["path"].as_str().unwrap()))
        .send()
        .unwrap();
    assert_eq!(expired.status().as_u16(), 410);
    let forged = format!("{}/exports/{}", rep.base, "A".repeat(43));
    assert_eq!(anonymous.get(forged).send().unwrap().status().as_u16(), 404);
    // The one download that was served is in the audit log once; the
    // expired and the forged link are not.
    let downloads = audit_kinds(&rep, &admin)
        .into_iter()
        .filter(|(kind, _)| kind == "export.downloaded")
        .collect::<Vec<_>>();
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert_eq!(downloads[0].1["account"], "acme");
    assert_eq!(downloads[0].1["sha256"], sha256_hex(&archive));

    // Site, then local backups: waiting while backup-2 is stale.
    wait_until(90, "site_erased", || {
        let c = closure(&rep, &admin);
        assert_ne!(c["state"], "blocked", "{c:#}\n{}", logs_of(&[&a_app]));
        c["state"] == "site_erased"
    });
    assert!(!sites.join("acme").exists());
    assert!(sites.join("bob/site.json").exists());
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while r1.all_paths().contains("/acme") {
        assert!(
            std::time::Instant::now() < deadline,
            "backup-1 did not rewrite its snapshots:\n{:#}\n{}",
            closure(&rep, &admin),
            logs_of(&[&a_b1])
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    let c = closure(&rep, &admin);
    assert_eq!(c["state"], "site_erased", "{c:#}");
    let p = c["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["phase"] == "local_backups")
        .unwrap()
        .clone();
    assert!(
        p.to_string().contains("backup-2"),
        "the waiting phase does not name backup-2: {p:#}"
    );

    // backup-2 comes back; the closure runs to the end.
    a_b2.start(&[]);
    // Each backup host learns the account's blob ids, rewrites, prunes with
    // --max-unused 0 and proves every blob gone: slower than a plain forget.
    let deadline = std::time::Instant::now() + Duration::from_secs(420);
    while closure(&rep, &admin)["state"] != "closed" && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
    }
    let c = closure(&rep, &admin);
    assert_eq!(
        c["state"],
        "closed",
        "{c:#}\n{}",
        logs_of(&[&a_app, &a_b1, &a_b2, &a_off])
    );
    wait_until(5, "closed", || {
        let c = closure(&rep, &admin);
        assert_ne!(
            c["state"],
            "blocked",
            "{c:#}\n{}",
            logs_of(&[&a_app, &a_b1, &a_b2, &a_off])
        );
        c["state"] == "closed"
    });
    let c = closure(&rep, &admin);
    let seen: Vec<&str> = c["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["to"].as_str())
        .collect();
    assert_eq!(
        seen,
        [
            "requested",
            "export_ready",
            "site_erased",
            "local_backups_erased",
            "offline_backups_erased",
            "logs_purged",
            "closed"
        ],
        "{c:#}"
    );

    // Nothing of acme anywhere, not even in the packs; every other
    // account's files still in every snapshot that held them.
    for (r, before) in [&r1, &r2, &r3].into_iter().zip(&before) {
        let paths = r.all_paths();
        assert!(!paths.contains("/acme"), "{paths}");
        assert!(paths.contains("/bob/site.json"), "{paths}");
        for b in &blobs {
            assert!(
                !r.has_blob(b),
                "blob {b} of acme still in {}",
                r.repo.display()
            );
        }
        let after = others_by_snapshot(r);
        assert_eq!(
            &after,
            before,
            "another account's files changed in {}",
            r.repo.display()
        );
        assert!(
            after
                .values()
                .filter(|o| o.iter().any(|p| p.contains("/carol/")))
                .count()
                == 2
        );
        r.cmd(&["check", "--retry-lock", "2m", "--read-data"]);
    }
    assert!(sites.join("carol/attachments/price-list.txt").exists());
    // The backup checks still pass on every repository.
    for (h, r) in [(&b1, &r1), (&b2, &r2), (&off, &r3)] {
        let p = single_check_policy(
            "BK-1",
            "restic",
            "backup_freshness",
            &format!(
                "sources: [{{kind: restic, location: {}, password_file: {}}}]\nmax_age_hours: 26\nmin_sets: 3",
                r.repo.display(),
                r.pass.display()
            ),
        )
        .write(&h.root.join("bk.yaml"));
        let o = agent_check(&p).state_dir(h.root.join("bk-state")).output();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // The certificate's evidence names the deletion runs, not only a later verification.
    let (_, c) = rep.get_json(&admin, "/api/v1/accounts/acme/closure");
    let text = c.to_string();
    assert!(
        text.contains("restic rewrite in") && text.contains("restic prune --max-unused 0"),
        "{c:#}"
    );
    for h in [&app, &b1, &b2, &off] {
        let log = h.log();
        assert!(
            !IDS.iter().any(|id| log.contains(id)) && !log.contains("/sites/acme/"),
            "{log}"
        );
        // The live file is purged in place: erased lines are blanked, not cut.
        let kept = log.lines().filter(|l| !l.trim().is_empty()).count();
        assert_eq!(kept, 100, "{log}");
        assert!(log.contains("user=u-0007") && log.contains("cron: nightly job done"));
    }

    // The certificate verifies offline and fails once one byte changes.
    let (s, cert) = rep.get_json(&admin, "/api/v1/accounts/acme/closure/certificate");
    assert_eq!(s, 200, "{cert}");
    let hosts = cert.to_string();
    for h in ["app-1", "backup-1", "backup-2", "offline-1"] {
        assert!(hosts.contains(h), "certificate does not name {h}");
    }
    let file = base.join("certificate.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&cert).unwrap()).unwrap();
    let verify = |f: &Path| {
        Command::new(binary("vigil-reporter", "vigil-reporter"))
            .args(["audit", "verify", "--certificate"])
            .arg(f)
            .arg("--data")
            .arg(&rep.data)
            .output()
            .unwrap()
    };
    let o = verify(&file);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(&file).unwrap();
    let forged = text.replacen("backup-2", "backup-9", 1);
    assert_ne!(forged, text);
    std::fs::write(&file, forged).unwrap();
    assert!(!verify(&file).status.success());

    for a in [&mut a_app, &mut a_b1, &mut a_b2, &mut a_off] {
        assert_eq!(a.stop(), 0, "{}", a.log());
    }
}
