//! End to end: the `erasure` check type through `vigil-agent check`, on fixture
//! roots holding the sample site (examples/papyrs-site), a real SQLite
//! database, a real restic repository and live-appended logs.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};
use vigil_tests::*;

const IDS: [&str; 3] = ["acme", "u-1842", "acme.papyrs.example"];

fn sample_site() -> PathBuf {
    workspace().join("examples/papyrs-site/site")
}

/// A fixture root with the sample site as `acme` and a second account `bob`.
fn host_with_sites() -> FixtureHost {
    let host = FixtureHost::new();
    copy_dir(&sample_site(), &host.root().join("srv/papyrs/sites/acme"));
    host.write(
        "/srv/papyrs/sites/bob/site.json",
        "{\"account\": \"bob\"}\n",
    );
    host
}

/// Writes a policy with one erasure check whose `with` is `with` (JSON is YAML).
fn policy(host: &FixtureHost, with: &Value) -> String {
    single_check_policy("GDPR-4", "erasure", "erasure", &with.to_string())
        .timeout("10m")
        .write(&host.root().join("policy.yaml"))
}

fn run(host: &FixtureHost, with: &Value) -> Value {
    let p = policy(host, with);
    // The erasure journal (what each deletion did) stays with the fixture host.
    agent_check(&p)
        .root(host.root())
        .state_dir(host.root().join("var/lib/vigil/state"))
        .check_of("GDPR-4", "erasure")
}

fn task(phase: &str) -> Value {
    json!({"account": "acme", "phase": phase, "identifiers": IDS})
}

/// The evidence shape the reporter reads, and the digest over `checked`.
fn assert_evidence(c: &Value, phase: &str, done: bool) -> Vec<String> {
    let tasks = c["evidence"]["tasks"].as_array().expect("evidence.tasks");
    assert_eq!(tasks.len(), 1, "{c:#}");
    let t = &tasks[0];
    assert_eq!(t["account"], "acme");
    assert_eq!(t["phase"], phase);
    assert_eq!(t["done"], done, "{c:#}");
    let checked: Vec<String> = t["checked"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    assert!(!checked.is_empty());
    let canonical = serde_json::to_string(&checked).unwrap();
    assert_eq!(t["digest"], sha256_hex(canonical.as_bytes()));
    checked
}

fn python() -> PathBuf {
    require_tool("python3", "python3")
}

fn sqlite(db: &Path, script: &str) {
    let code = "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()";
    let ok = Command::new(python())
        .args(["-c", code])
        .arg(db)
        .arg(script)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

// With no task pending the check proves readiness (contract, "Erasure
// readiness"); it used to be `skipped`, so GDPR-4 was never verified.
#[test]
fn no_task_proves_readiness_and_other_phases_are_not_ours() {
    let host = host_with_sites();
    let site = json!({"paths": ["/srv/papyrs/sites/{account}"]});
    let c = run(&host, &json!({"site": site}));
    assert_eq!(c["status"], "pass", "{c:#}");
    assert_eq!(c["evidence"]["tasks"], json!([]));
    assert_eq!(
        c["evidence"]["readiness"]["phases"],
        json!(["site"]),
        "{c:#}"
    );
    let c = run(
        &host,
        &json!({"site": site, "tasks": [task("offline_backups")]}),
    );
    assert_eq!(c["status"], "pass", "{c:#}");
    // A deleter that cannot run is named: a hook that does not exist.
    let c = run(
        &host,
        &json!({"site": {"paths": ["/srv/papyrs/sites/{account}"], "hook": ["/nonexistent/papyrs-admin", "{account}"]}}),
    );
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(c["findings"][0]["code"], "erasure_not_ready", "{c:#}");
    assert!(
        c["findings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/papyrs-admin"),
        "{c:#}"
    );
    // Nothing of the site was touched.
    assert!(host
        .root()
        .join("srv/papyrs/sites/acme/pages/index.md")
        .exists());
}

#[test]
fn an_unsafe_account_id_is_refused() {
    let host = host_with_sites();
    let p = policy(
        &host,
        &json!({"tasks": [{"account": "../bob", "phase": "site"}],
                "site": {"paths": ["/srv/papyrs/sites/{account}"], "remove_paths": true}}),
    );
    let o = run_agent(&["validate", "--policy", &p]);
    assert_ne!(o.status.code(), Some(0));
    assert!(
        stderr(&o).contains("is not `[A-Za-z0-9._-]+`"),
        "{}",
        stderr(&o)
    );
    assert!(host.root().join("srv/papyrs/sites/bob/site.json").exists());
}

#[test]
fn site_phase_fails_until_paths_and_rows_are_gone() {
    let host = host_with_sites();
    let db = host.root().join("srv/papyrs/app.db");
    sqlite(
        &db,
        "create table pages(account text, slug text); \
         insert into pages values ('acme','index'),('acme','menu'),('bob','index');",
    );
    let sql = json!({"dsn": format!("sqlite://{}", db.display()),
                     "query": "SELECT count(*) FROM pages WHERE account = $1"});

    // Verify only: both the directory and the rows remain.
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}"], "sql": sql}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(codes(&c), ["data_remaining", "data_remaining"]);
    let checked = assert_evidence(&c, "site", false);
    assert_eq!(
        checked,
        ["path /srv/papyrs/sites/acme: present", "sql: 2 rows"]
    );

    // A hook that fails: its exit code and last stderr line, scrubbed.
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}"], "sql": sql,
                               "hook": ["sh", "-c", "echo \"first\" >&2; echo \"cannot delete $0: db password=hunter2\" >&2; exit 4", "{account}"]}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail");
    assert_eq!(
        codes(&c),
        ["hook_failed", "data_remaining", "data_remaining"]
    );
    let msg = c["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("(exit 4)") && msg.contains("cannot delete acme: db password=[REDACTED]"),
        "{msg}"
    );
    assert!(!serde_json::to_string(&c).unwrap().contains("hunter2"));

    // A hook that deletes the rows, the built-in deleter removes the directory.
    let hook = json!([python(), "-c",
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('delete from pages where account=?', (sys.argv[2],)); c.commit()",
        db, "{account}"]);
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}"], "sql": sql,
                               "hook": hook, "remove_paths": true}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "site", true);
    assert_eq!(checked.len(), 4, "{checked:?}");
    assert!(
        checked[0].starts_with("hook /usr/bin/python3: ok at "),
        "{checked:?}"
    );
    assert!(
        checked[1].starts_with("remove /srv/papyrs/sites/acme: ok (1 match(es), "),
        "{checked:?}"
    );
    assert_eq!(
        checked[2..],
        ["path /srv/papyrs/sites/acme: absent", "sql: 0 rows"]
    );
    assert!(!host.root().join("srv/papyrs/sites/acme").exists());
    assert!(host.root().join("srv/papyrs/sites/bob/site.json").exists());

    // A database that cannot be read is an error, never a pass.
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}"],
                               "sql": {"dsn": "sqlite:///nonexistent/dir/x.db", "query": "select 0"}}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "error", "{c:#}");
}

#[test]
fn a_hook_that_hangs_is_killed_at_its_timeout() {
    let host = host_with_sites();
    agent(); // built before the clock starts
    let started = std::time::Instant::now();
    let with = json!({"tasks": [task("site")], "hook_timeout": "1s",
                      "site": {"paths": ["/srv/papyrs/sites/{account}"], "hook": ["sleep", "60"]}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail");
    assert_eq!(codes(&c), ["hook_failed", "data_remaining"]);
    assert!(c["findings"][0]["message"]
        .as_str()
        .unwrap()
        .contains("timed out"));
    assert!(started.elapsed().as_secs() < 30);
}

/// restic >= 0.15 (for `rewrite`); .ci/run installs 0.18 from Debian 13.
fn restic_with_rewrite() -> PathBuf {
    let bin = require_tool("restic", "restic");
    let version = stdout(&Command::new(&bin).arg("version").output().unwrap());
    let minor: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        minor >= 15,
        "restic >= 0.15 is needed (`restic rewrite`); found `{}`: install restic 0.18 from Debian 13 as .ci/run does",
        version.trim()
    );
    bin
}

/// Every file of the sample site that is small enough to be one blob (its
/// sha256 is its blob id), with that id.
fn small_file_blobs(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut rel = Vec::new();
    walk(dir, dir, &mut rel);
    for r in rel {
        let bytes = std::fs::read(dir.join(&r)).unwrap();
        if !bytes.is_empty() && bytes.len() < 512 * 1024 {
            files.push((dir.join(&r), sha256_hex(&bytes)));
        }
    }
    assert!(files.len() > 5, "{files:?}");
    files
}

fn backup_with(repo: &str, delete: &str, in_backup: &str, phase: &str) -> Value {
    json!({"tasks": [task(phase)],
        phase: {"restic": [{"repository": repo, "password_file": "/etc/vigil/restic.pass", "delete": delete}],
                "paths_in_backup": [in_backup]}})
}

#[test]
fn backups_fail_until_no_snapshot_contains_the_account() {
    restic_with_rewrite();
    let host = host_with_sites();
    let sites = host.root().join("srv/papyrs/sites");
    let pass = host.write("/etc/vigil/restic.pass", "erasure-test-pass\n");
    let repo = host.root().join("srv/backup/restic");
    let r = Restic::new(&repo, &pass);
    r.cmd(&["init", "-q"]);
    // Two snapshots with both accounts, one with bob only.
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    r.cmd(&["backup", "-q", sites.join("bob").to_str().unwrap()]);
    let blobs = small_file_blobs(&sites.join("acme"));
    assert!(blobs.iter().all(|(_, id)| r.has_blob(id)));

    let in_backup = format!("{}/{{account}}", sites.display());
    let mut with = backup_with("/srv/backup/restic", "none", &in_backup, "local_backups");
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(
        codes(&c),
        ["backup_still_contains", "backup_still_contains"]
    );
    let checked = assert_evidence(&c, "local_backups", false);
    assert!(
        checked[0].starts_with("restic /srv/backup/restic: 2 snapshot(s) of 3 contain "),
        "{checked:?}"
    );
    assert!(
        checked[1].contains("blob(s) are still in the repository's packs"),
        "{checked:?}"
    );

    // A wrong password cannot verify anything: error.
    host.write("/etc/vigil/wrong.pass", "nope\n");
    let mut bad = with.clone();
    bad["local_backups"]["restic"][0]["password_file"] = json!("/etc/vigil/wrong.pass");
    let c = run(&host, &bad);
    assert_eq!(c["status"], "error", "{c:#}");
    assert!(!serde_json::to_string(&c)
        .unwrap()
        .contains("erasure-test-pass"));

    // Issue 21: `forget` would destroy bob's backups too: it is refused for
    // every snapshot that holds anything besides acme's paths.
    with["local_backups"]["restic"][0]["delete"] = json!("forget");
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail", "{c:#}");
    assert_eq!(
        codes(&c),
        [
            "hook_failed",
            "backup_still_contains",
            "backup_still_contains"
        ]
    );
    let msg = c["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("refused for 2 snapshot(s) that also hold other data"),
        "{msg}"
    );
    let snaps: Value = serde_json::from_str(&r.cmd(&["snapshots", "--json"])).unwrap();
    assert_eq!(snaps.as_array().unwrap().len(), 3);

    // `rewrite`: the snapshots lose acme's paths and keep bob's; the packs
    // are repacked so that none of acme's blobs is left (issue 21, item 6).
    with["local_backups"]["restic"][0]["delete"] = json!("rewrite");
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "local_backups", true);
    assert!(
        checked[0].starts_with("restic rewrite in /srv/backup/restic: ok (2 snapshot(s) rewritten without the account's paths"),
        "{checked:?}"
    );
    assert!(
        checked[1].starts_with("restic prune --max-unused 0 in /srv/backup/restic: ok"),
        "{checked:?}"
    );
    assert!(
        checked[2].starts_with("restic /srv/backup/restic: no snapshot of 3 contains "),
        "{checked:?}"
    );
    assert!(
        checked[3].starts_with("restic /srv/backup/restic blobs: none of the account's ")
            && checked[3].ends_with("(`restic cat blob` answers not found)"),
        "{checked:?}"
    );
    for (f, id) in &blobs {
        assert!(!r.has_blob(id), "{} still in the packs", f.display());
    }
    // bob's file is in every snapshot, and restorable.
    let snaps: Value = serde_json::from_str(&r.cmd(&["snapshots", "--json"])).unwrap();
    for s in snaps.as_array().unwrap() {
        let ls = r.cmd(&["ls", s["id"].as_str().unwrap()]);
        assert!(
            ls.contains("bob/site.json") && !ls.contains("/acme"),
            "{ls}"
        );
    }
    let dump = r.cmd(&[
        "dump",
        "latest",
        sites.join("bob/site.json").to_str().unwrap(),
    ]);
    assert_eq!(dump, "{\"account\": \"bob\"}\n");
    r.cmd(&["check", "--read-data"]);

    // Verify-only again: still passes, and still names the deletion runs
    // that made the data go (issue 21, item 8).
    with["local_backups"]["restic"][0]["delete"] = json!("none");
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "local_backups", true);
    assert!(
        checked[0].starts_with("earlier run: restic rewrite in /srv/backup/restic: ok")
            && checked[1].starts_with("earlier run: restic prune --max-unused 0"),
        "{checked:?}"
    );
}

#[test]
fn forget_erases_snapshots_of_the_account_alone() {
    restic_with_rewrite();
    let host = host_with_sites();
    let sites = host.root().join("srv/papyrs/sites");
    let pass = host.write("/etc/vigil/restic.pass", "erasure-test-pass\n");
    let r = Restic::new(&host.root().join("srv/backup/restic"), &pass);
    r.cmd(&["init", "-q"]);
    r.cmd(&["backup", "-q", sites.join("acme").to_str().unwrap()]);
    r.cmd(&["backup", "-q", sites.join("bob").to_str().unwrap()]);
    let blobs = small_file_blobs(&sites.join("acme"));
    let in_backup = format!("{}/{{account}}", sites.display());
    let with = backup_with(
        "/srv/backup/restic",
        "forget",
        &in_backup,
        "offline_backups",
    );
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "offline_backups", true);
    assert!(
        checked[0]
            .starts_with("restic forget in /srv/backup/restic: ok (1 snapshot(s) forgotten: "),
        "{checked:?}"
    );
    for (f, id) in &blobs {
        assert!(!r.has_blob(id), "{} still in the packs", f.display());
    }
    let ls = r.cmd(&["ls", "latest"]);
    assert!(ls.contains("bob/site.json"));
}

// Issue 19: a backup holding the repository's lock made the erasure's
// `restic rewrite` fail at once (exit 11, "repository is already locked").
// The agent now waits for the lock (`--retry-lock`) and then erases.
#[test]
fn erasure_waits_for_a_lock_another_restic_holds() {
    restic_with_rewrite();
    let host = host_with_sites();
    let sites = host.root().join("srv/papyrs/sites");
    let pass = host.write("/etc/vigil/restic.pass", "erasure-test-pass\n");
    let r = Restic::new(&host.root().join("srv/backup/restic"), &pass);
    r.cmd(&["init", "-q"]);
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    let blobs = small_file_blobs(&sites.join("acme"));

    // A concurrent backup from a pipe the test holds open: restic keeps its
    // lock until the pipe closes.
    let mut backup = Command::new(&r.bin)
        .arg("-r")
        .arg(&r.repo)
        .arg("--password-file")
        .arg(&r.pass)
        .args([
            "--no-cache",
            "backup",
            "-q",
            "--stdin",
            "--stdin-filename",
            "db.sql",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = backup.stdin.take().unwrap();
    pipe.write_all(b"-- a slow dump\n").unwrap();
    wait_until(30, "the concurrent backup to hold a lock", || {
        !r.cmd(&["list", "locks", "--no-lock"]).trim().is_empty()
    });
    // Without waiting, an exclusive command fails on that lock, as the
    // agent's did before.
    let o = r.output(&["forget", "--keep-last", "100"]);
    assert!(
        !o.status.success() && stderr(&o).contains("locked"),
        "{}",
        stderr(&o)
    );

    let hold = std::time::Duration::from_secs(8);
    let released = std::thread::spawn(move || {
        std::thread::sleep(hold);
        drop(pipe);
        let o = backup.wait_with_output().unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        std::time::Instant::now()
    });
    let started = std::time::Instant::now();
    let in_backup = format!("{}/{{account}}", sites.display());
    let with = backup_with("/srv/backup/restic", "rewrite", &in_backup, "local_backups");
    let c = run(&host, &with);
    let done = std::time::Instant::now();
    let released = released.join().unwrap();
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "local_backups", true);
    assert!(
        checked[0].starts_with("restic rewrite in /srv/backup/restic: ok"),
        "{checked:?}"
    );
    // It waited for the backup: it finished after the lock was released.
    assert!(
        done > released && done.duration_since(started) >= hold,
        "the erasure did not wait for the lock"
    );
    for (f, id) in &blobs {
        assert!(!r.has_blob(id), "{} still in the packs", f.display());
    }
    // The concurrent backup is kept.
    let snaps = r.cmd(&["snapshots", "--json"]);
    assert!(snaps.contains("/db.sql"), "{snaps}");
}

#[test]
fn rotation_is_proved_not_assumed() {
    restic_with_rewrite();
    let host = host_with_sites();
    let sites = host.root().join("srv/papyrs/sites");
    let pass = host.write("/etc/vigil/restic.pass", "erasure-test-pass\n");
    let r = Restic::new(&host.root().join("srv/backup/offline"), &pass);
    r.cmd(&["init", "-q"]);
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let requested = chrono::Utc::now().to_rfc3339();
    let in_backup = format!("{}/{{account}}", sites.display());
    let mut with = backup_with(
        "/srv/backup/offline",
        "rotation",
        &in_backup,
        "offline_backups",
    );

    // Without the request time nothing can be proved.
    let c = run(&host, &with);
    assert_eq!(c["status"], "error", "{c:#}");
    with["tasks"][0]["requested_at"] = json!(requested);
    let c = run(&host, &with);
    assert_eq!(c["status"], "fail", "{c:#}");
    let checked = assert_evidence(&c, "offline_backups", false);
    assert!(
        checked
            .iter()
            .any(|l| l.contains("rotation: 1 snapshot(s) older than the closure request remain")),
        "{checked:?}"
    );
    // The operator's rotation: a new set without acme, the old one forgotten.
    std::fs::remove_dir_all(sites.join("acme")).unwrap();
    r.cmd(&["backup", "-q", sites.to_str().unwrap()]);
    r.cmd(&[
        "forget",
        "-q",
        "--keep-last",
        "1",
        "--prune",
        "--max-unused",
        "0",
    ]);
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "offline_backups", true);
    assert!(
        checked.iter().any(
            |l| l.contains("rotation: none of 1 snapshot(s) is older than the closure request")
        ),
        "{checked:?}"
    );
    // No deletion was run by the agent in rotation mode.
    assert!(checked
        .iter()
        .all(|l| !l.contains("restic rewrite") && !l.contains("restic forget")));
}

/// Issue 19, item 8: a symlink planted in a site directory made the root
/// agent delete files outside the site (with a `{account}/*/*` glob).
#[test]
fn a_symlink_in_a_site_is_never_followed() {
    let host = host_with_sites();
    let outside = host.root().join("etc/important");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("config"), "keep me").unwrap();
    std::os::unix::fs::symlink(&outside, host.root().join("srv/papyrs/sites/acme/evil")).unwrap();
    std::os::unix::fs::symlink(
        outside.join("config"),
        host.root().join("srv/papyrs/sites/acme/pages/config-link"),
    )
    .unwrap();
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}/*/*"], "remove_paths": true}});
    let c = run(&host, &with);
    assert_eq!(
        std::fs::read_to_string(outside.join("config")).unwrap(),
        "keep me",
        "a file outside the site was deleted"
    );
    // The link itself was matched: reported and left, never followed.
    assert_eq!(c["status"], "fail", "{c:#}");
    let s = serde_json::to_string(&c).unwrap();
    assert!(s.contains("symbolic link"), "{c:#}");
    assert!(!host
        .root()
        .join("srv/papyrs/sites/acme/pages/index.md")
        .exists());

    // Removing the whole site unlinks the links inside it, nothing outside.
    let with = json!({"tasks": [task("site")],
                      "site": {"paths": ["/srv/papyrs/sites/{account}"], "remove_paths": true}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    assert!(!host.root().join("srv/papyrs/sites/acme").exists());
    assert_eq!(
        std::fs::read_to_string(outside.join("config")).unwrap(),
        "keep me"
    );
    assert!(host.root().join("srv/papyrs/sites/bob/site.json").exists());
}

/// Issue 19, item 8: a symlinked log made the purge rewrite a file outside
/// the log directory.
#[test]
fn a_symlinked_log_is_not_rewritten() {
    let host = FixtureHost::new();
    let dir = host.root().join("var/log/papyrs");
    std::fs::create_dir_all(&dir).unwrap();
    let outside = host.root().join("etc/shadow-like");
    host.write("/etc/shadow-like", "root line acme\nother\n");
    std::os::unix::fs::symlink(&outside, dir.join("app.log.1")).unwrap();
    // A hard link to a file outside: rewriting it would change that file.
    let hard = host.write("/etc/hard-target", "acme was here\n");
    std::fs::hard_link(&hard, dir.join("app.log.2")).unwrap();
    std::fs::write(dir.join("app.log"), "GET /sites/acme/ 200\nkeep\n").unwrap();
    let with = json!({"tasks": [task("logs")],
                      "logs": {"paths": ["/var/log/papyrs/app.log*"], "purge": true}});
    let c = run(&host, &with);
    assert_eq!(
        std::fs::read_to_string(&outside).unwrap(),
        "root line acme\nother\n"
    );
    assert_eq!(std::fs::read_to_string(&hard).unwrap(), "acme was here\n");
    // What could not be purged is not proved: error, naming the link.
    assert_eq!(c["status"], "error", "{c:#}");
    let s = serde_json::to_string(&c).unwrap();
    assert!(
        s.contains("symbolic link") && s.contains("hard links"),
        "{c:#}"
    );
    // The real log was purged.
    assert_eq!(
        std::fs::read_to_string(dir.join("app.log")).unwrap(),
        "                    \nkeep\n"
    );
}

fn gz(path: &Path, text: &str) {
    let o = Command::new("gzip")
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = o;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    std::fs::write(path, out.stdout).unwrap();
}

fn gunzip(path: &Path) -> String {
    let o = Command::new("gzip").arg("-dc").arg(path).output().unwrap();
    assert!(o.status.success());
    stdout(&o)
}

fn carries_id(line: &str) -> bool {
    line.contains("user=u-1842")
        || line.contains("/sites/acme/")
        || line.contains("acme.papyrs.example")
}

#[test]
fn log_purge_on_a_live_appended_file_loses_no_other_line() {
    require_tool("gzip", "gzip");
    let host = FixtureHost::new();
    let dir = host.root().join("var/log/papyrs");
    std::fs::create_dir_all(&dir).unwrap();
    let live = dir.join("app.log");
    // A large live log, so that the purge takes a while.
    let mut pre = String::new();
    let mut expected: Vec<String> = Vec::new();
    for i in 0..150_000 {
        let line = match i % 10 {
            0 => format!("pre {i} GET /sites/acme/pages/menu 200"),
            3 => format!("pre {i} login user=u-1842 ok"),
            5 => format!("pre {i} GET /sites/acmecorp/index 200 acme-corp"),
            _ => format!("pre {i} GET /sites/bob/pages/index 200"),
        };
        if !carries_id(&line) {
            expected.push(line.clone());
        }
        pre.push_str(&line);
        pre.push('\n');
    }
    std::fs::write(&live, &pre).unwrap();
    std::fs::write(
        dir.join("app.log.1"),
        "old 1 host=acme.papyrs.example\nold 2 bob\n",
    )
    .unwrap();
    gz(
        &dir.join("app.log.2.gz"),
        "older 1 user=u-1842\nolder 2 bob\nolder 3 acmecorp\n",
    );
    expected.extend([
        "old 2 bob".to_owned(),
        "older 2 bob".into(),
        "older 3 acmecorp".into(),
    ]);
    for f in ["app.log", "app.log.1", "app.log.2.gz"] {
        let p = dir.join(f);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::chown(&p, Some(4242), Some(4243)).unwrap();
    }
    let ino = std::fs::metadata(&live).unwrap().ino();

    // The "logging daemon": appends continuously with O_APPEND, one write per line.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (stop, live) = (stop.clone(), live.clone());
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&live)
                .unwrap();
            let mut written = Vec::new();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let line = if i.is_multiple_of(7) {
                    format!("live {i} login user=u-1842 ok")
                } else {
                    format!("live {i} GET /sites/bob/x 200")
                };
                f.write_all(format!("{line}\n").as_bytes()).unwrap();
                if !carries_id(&line) {
                    written.push(line);
                }
                i += 1;
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
            written
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(100));
    let with = json!({"tasks": [task("logs")],
                      "logs": {"paths": ["/var/log/papyrs/app.log*"], "purge": true}});
    let size_before = std::fs::metadata(&live).unwrap().len();
    let first = run(&host, &with);
    let size_after = std::fs::metadata(&live).unwrap().len();
    std::thread::sleep(std::time::Duration::from_millis(100));
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(
        size_after > size_before,
        "the writer appended during the purge"
    );
    // Lines the writer added after the purge's last pass may remain: never an error.
    assert_ne!(first["status"], "error", "{first:#}");
    assert!(
        codes(&first).iter().all(|c| c == "lines_remaining"),
        "{first:#}"
    );

    // Once the writer has stopped, a second run leaves nothing.
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    let checked = assert_evidence(&c, "logs", true);
    assert!(
        checked.contains(&"log /var/log/papyrs/app.log: no line carries an identifier".to_owned()),
        "{checked:?}"
    );
    assert!(checked
        .contains(&"log /var/log/papyrs/app.log.2.gz: no line carries an identifier".to_owned()));

    let mut all: Vec<String> = Vec::new();
    for f in ["app.log", "app.log.1"] {
        all.extend(
            std::fs::read_to_string(dir.join(f))
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    all.extend(gunzip(&dir.join("app.log.2.gz")).lines().map(String::from));
    let kept: Vec<&String> = all.iter().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        kept.iter().all(|l| !carries_id(l)),
        "an identifier line remains"
    );
    let mut counts = std::collections::HashMap::new();
    for l in &kept {
        *counts.entry(l.as_str()).or_insert(0) += 1;
    }
    assert!(written.len() > 100, "the writer ran: {}", written.len());
    for l in expected.iter().chain(written.iter()) {
        assert_eq!(
            counts.get(l.as_str()),
            Some(&1),
            "line `{l}` lost or doubled"
        );
    }
    assert_eq!(kept.len(), expected.len() + written.len());
    // The live file is the same inode; every file kept owner, group and mode.
    assert_eq!(std::fs::metadata(&live).unwrap().ino(), ino);
    for f in ["app.log", "app.log.1", "app.log.2.gz"] {
        let m = std::fs::metadata(dir.join(f)).unwrap();
        assert_eq!(
            (m.uid(), m.gid(), m.mode() & 0o7777),
            (4242, 4243, 0o640),
            "{f}"
        );
    }
    assert_eq!(
        std::fs::read_dir(&dir).unwrap().count(),
        3,
        "no temporary file left"
    );
}

#[test]
fn logs_matching_no_file_are_not_proof() {
    let host = FixtureHost::new();
    let with =
        json!({"tasks": [task("logs")], "logs": {"paths": ["/var/log/none/*.log"], "purge": true}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "error", "{c:#}");
}

#[test]
fn export_of_the_sample_site_matches_its_manifest() {
    require_tool("tar", "tar");
    let host = host_with_sites();
    let with = json!({"tasks": [task("export")],
                      "export": {"site_root": "/srv/papyrs/sites/{account}", "output_dir": "/var/lib/vigil/exports"}});
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");
    assert_evidence(&c, "export", true);
    let t = &c["evidence"]["tasks"][0];
    assert_eq!(t["archive"], "/var/lib/vigil/exports/acme-export.tar.gz");
    let archive = host.root().join("var/lib/vigil/exports/acme-export.tar.gz");
    assert_eq!(
        t["archive_sha256"],
        sha256_hex(&std::fs::read(&archive).unwrap())
    );
    assert_eq!(
        std::fs::metadata(&archive).unwrap().mode() & 0o077,
        0,
        "archive readable by others"
    );

    let out = tempfile::tempdir().unwrap();
    let ok = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(out.path())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.path().join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["format"], "papyrs-export/1");
    assert_eq!(manifest["account"], "acme");
    let files = manifest["files"].as_array().unwrap();
    assert_eq!(t["manifest_entries"], files.len());
    let mut listed = std::collections::BTreeSet::new();
    for f in files {
        let path = f["path"].as_str().unwrap();
        let bytes = std::fs::read(out.path().join(path)).unwrap();
        assert_eq!(f["size"], bytes.len(), "{path}");
        assert_eq!(f["sha256"], sha256_hex(&bytes), "{path}");
        listed.insert(path.to_owned());
    }
    // Every file unpacked is in the manifest.
    let mut unpacked = Vec::new();
    walk(out.path(), out.path(), &mut unpacked);
    for p in &unpacked {
        assert!(
            p == "manifest.json" || listed.contains(p),
            "{p} not in the manifest"
        );
    }

    // Pages as Markdown (the original) and HTML.
    for page in ["index", "menu", "about", "catering"] {
        let md = std::fs::read(out.path().join(format!("pages/{page}.md"))).unwrap();
        assert_eq!(
            md,
            std::fs::read(sample_site().join(format!("pages/{page}.md"))).unwrap()
        );
        let html = std::fs::read_to_string(out.path().join(format!("pages/{page}.html"))).unwrap();
        assert!(
            html.starts_with("<!DOCTYPE html>") && html.contains("<h1>"),
            "{page}"
        );
    }
    let menu = std::fs::read_to_string(out.path().join("pages/menu.html")).unwrap();
    assert!(menu.contains("<title>Menu</title>") && menu.contains("<table>"));
    // Attachments byte for byte.
    for a in [
        "logo.png",
        "menu-2026.pdf",
        "opening-hours.txt",
        "photos/storefront.png",
    ] {
        assert_eq!(
            std::fs::read(out.path().join("attachments").join(a)).unwrap(),
            std::fs::read(sample_site().join("attachments").join(a)).unwrap(),
            "{a}"
        );
    }
    // Discussions as JSON and CSV.
    for d in ["menu", "catering"] {
        let j: Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("discussions/{d}.json"))).unwrap(),
        )
        .unwrap();
        let csv = std::fs::read_to_string(out.path().join(format!("discussions/{d}.csv"))).unwrap();
        assert!(csv.starts_with("id,reply_to,author,at,body\r\n"));
        assert_eq!(
            csv.matches("\r\n").count(),
            j["comments"].as_array().unwrap().len() + 1,
            "{d}"
        );
    }
    let menu_csv = std::fs::read_to_string(out.path().join("discussions/menu.csv")).unwrap();
    assert!(menu_csv.contains("\"Best croissants in town,\nno contest.\""));
    assert!(menu_csv
        .contains("\"Not yet, but a buckwheat loaf is coming in December, \"\"promise\"\".\""));
    // Form records as JSON and CSV, columns in the schema's order.
    let contact = std::fs::read_to_string(out.path().join("forms/contact/records.csv")).unwrap();
    assert!(contact.starts_with("submitted_at,name,email,message\r\n"));
    assert!(contact.contains("\"Ana, Silva\""));
    let records: Value = serde_json::from_slice(
        &std::fs::read(out.path().join("forms/contact/records.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(records.as_array().unwrap().len(), 3);
    assert_eq!(records[2]["name"], "Ana, Silva");
    let orders =
        std::fs::read_to_string(out.path().join("forms/catering-order/records.csv")).unwrap();
    assert!(orders.starts_with("submitted_at,name,phone,date,occasion,guests\r\n"));
    assert!(orders.contains(",wedding,60\r\n"));
    assert!(out.path().join("forms/catering-order/schema.json").exists());
    assert!(out.path().join("site.json").exists());

    // A second run keeps the archive that still verifies: same digest.
    let again = run(&host, &with);
    assert_eq!(
        again["evidence"]["tasks"][0]["archive_sha256"],
        t["archive_sha256"]
    );

    // A damaged archive is replaced by a fresh one that verifies.
    let mut bytes = std::fs::read(&archive).unwrap();
    let n = bytes.len();
    bytes.truncate(n / 2);
    std::fs::write(&archive, &bytes).unwrap();
    let c = run(&host, &with);
    assert_eq!(c["status"], "pass", "{c:#}");

    // A site that does not exist cannot be exported: error.
    let mut gone = with.clone();
    gone["tasks"][0]["account"] = json!("nobody");
    let c = run(&host, &gone);
    assert_eq!(c["status"], "error", "{c:#}");
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
        }
    }
}

#[test]
fn the_example_policy_validates() {
    let p = workspace().join("tests/data/erasure/policy.yaml");
    let o = run_agent(&["validate", "--policy", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}
