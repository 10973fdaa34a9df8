//! `backup_freshness` against real restic repositories made by the test:
//! snapshots with chosen times (`restic backup --time`), then the agent judges
//! fresh, stale, too few sets, one location, a wrong password and a corrupted
//! repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{SystemTime, UNIX_EPOCH};

use vigil_tests::*;

/// The repository password: distinctive, so a leak is easy to spot.
const PASSWORD: &str = "bk-Zebra-Quartz-7731-never-print";
const WRONG: &str = "bk-Wrong-Otter-4409-never-print";

struct Lab {
    dir: tempfile::TempDir,
    restic: PathBuf,
}

impl Lab {
    fn new() -> Self {
        let restic = require_tool("restic", "restic");
        let dir = tempfile::Builder::new()
            .prefix("vigil-backup-")
            .tempdir()
            .unwrap();
        let lab = Lab { dir, restic };
        std::fs::write(lab.path("restic.pass"), format!("{PASSWORD}\n")).unwrap();
        std::fs::write(lab.path("wrong.pass"), format!("{WRONG}\n")).unwrap();
        // The data backed up, as `srv/www/...` relative to `data/`, so the
        // snapshot holds `/srv/www/...`.
        let site = lab.path("data/srv/www/site-1");
        std::fs::create_dir_all(&site).unwrap();
        std::fs::write(site.join("index.html"), "<h1>papyrs</h1>\n").unwrap();
        lab
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn restic(&self, repo: &Path, args: &[&str]) -> Output {
        let o = Restic {
            bin: self.restic.clone(),
            repo: repo.to_owned(),
            pass: self.path("restic.pass"),
            cwd: Some(self.path("data")),
        }
        .output(args);
        assert!(
            o.status.success(),
            "restic {args:?}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        o
    }

    /// A repository with one snapshot per age (hours before now).
    fn repo(&self, name: &str, ages_hours: &[u64]) -> PathBuf {
        let repo = self.path(name);
        self.restic(&repo, &["init", "--quiet"]);
        for age in ages_hours {
            let t = time_hours_ago(*age);
            self.restic(
                &repo,
                &["backup", "--quiet", "--host", "papyrs", "--time", &t, "srv"],
            );
        }
        repo
    }

    /// Runs the agent on a policy whose one check has `with` as given.
    fn check(&self, with: &str) -> (Output, serde_json::Value) {
        let file = self.write_policy(with);
        let o = self.agent_check(&file, false).output().unwrap();
        let report = report_json(&o);
        let check = check_of(&report, "BK-T", "restic").clone();
        (o, check)
    }

    /// `vigil-agent check --format json` of `policy` with this lab's state
    /// and restic cache, no restic password from the environment. `logged`:
    /// in a private mount namespace where `/usr/bin/restic` is
    /// [`Lab::restic_wrapper`], which logs each invocation.
    fn agent_check(&self, policy: &Path, logged: bool) -> Command {
        let mut c = if logged {
            let mut c = Command::new(require_tool("unshare", "util-linux"));
            c.args(["--mount", "--propagation", "private", "sh", "-c"])
                .arg("mount --bind \"$1\" /usr/bin/restic && shift && exec \"$@\"")
                .arg("sh")
                .arg(self.restic_wrapper().0)
                .arg(agent());
            c
        } else {
            Command::new(agent())
        };
        c.args(["check", "--policy"])
            .arg(policy)
            .args(["--format", "json", "--state-dir"])
            .arg(self.path("state"))
            .env("RESTIC_CACHE_DIR", self.path("cache"))
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_FILE")
            .env("NO_COLOR", "1");
        c
    }

    /// A `restic` that appends "$RESTIC_REPOSITORY $RESTIC_PASSWORD_FILE
    /// ARGS" to its log, then runs the real one: (wrapper, log).
    fn restic_wrapper(&self) -> (PathBuf, PathBuf) {
        let wrapper = self.path("restic-wrapper");
        let log = self.path("restic-calls.log");
        if !wrapper.exists() {
            let real = self.path("restic.real");
            std::fs::copy(&self.restic, &real).unwrap();
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\necho \"$RESTIC_REPOSITORY $RESTIC_PASSWORD_FILE $*\" >> '{}'\nexec '{}' \"$@\"\n",
                    log.display(),
                    real.display()
                ),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        (wrapper, log)
    }

    /// `policy.yaml`: one control `BK-T` whose one check `restic` has `with`.
    fn write_policy(&self, with: &str) -> PathBuf {
        let policy = format!(
            "policy: {{id: bk-test, version: \"1\", title: Backup test}}\n\
             controls:\n  - id: BK-T\n    title: backups\n    checks:\n      - id: restic\n        type: backup_freshness\n        timeout: 5m\n        with:\n{}",
            with.lines()
                .map(|l| format!("          {l}\n"))
                .collect::<String>()
        );
        let file = self.path("policy.yaml");
        std::fs::write(&file, policy).unwrap();
        file
    }

    fn source(&self, repo: &Path, site: &str, pass: &str) -> String {
        format!(
            "  - {{kind: restic, location: \"{}\", password_file: \"{}\"{}}}\n",
            repo.display(),
            self.path(pass).display(),
            if site.is_empty() {
                String::new()
            } else {
                format!(", site: {site}")
            }
        )
    }
}

/// `YYYY-MM-DD HH:MM:SS` in UTC, `hours` ago.
fn time_hours_ago(hours: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t = now - hours * 3600;
    let o = Command::new("date")
        .args(["-u", "-d", &format!("@{t}"), "+%Y-%m-%d %H:%M:%S"])
        .output()
        .unwrap();
    stdout(&o).trim().to_owned()
}

fn status(check: &serde_json::Value) -> &str {
    check["status"].as_str().unwrap_or("")
}

#[test]
fn fresh_sets_in_two_locations_pass() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[74, 50, 2]);
    let b = lab.repo("repo-b", &[51, 27, 3]);
    let with = format!(
        "sources:\n{}{}max_age_hours: 26\nmin_sets: 3\nmin_locations: 2\nrequired_paths: [/srv/www]\nread_data_subset: \"100%\"",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass"),
    );
    let (o, check) = lab.check(&with);
    assert_eq!(status(&check), "pass", "{check}");
    assert_eq!(o.status.code(), Some(0));
    assert!(codes(&check).is_empty(), "{check}");
    let summary = check["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("2 hosts with fresh backups, newest 2.0 h old"),
        "{summary}"
    );
}

#[test]
fn stale_location_fails_and_no_longer_counts() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    let b = lab.repo("repo-b", &[60, 30]);
    let with = format!(
        "sources:\n{}{}min_locations: 2",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass"),
    );
    let (o, check) = lab.check(&with);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&check), ["stale", "too_few_locations"]);
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(msg.contains(&b.display().to_string()), "{msg}");
    assert!(msg.contains("30.0 h old"), "{msg}");
    assert!(msg.contains("older than the policy's 26 h"), "{msg}");
}

#[test]
fn too_few_sets_and_missing_path_fail() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[50, 26, 1]);
    let b = lab.repo("repo-b", &[1]);
    let with = format!(
        "sources:\n{}{}min_sets: 3\nmin_locations: 1\nrequired_paths: [/srv/www/site-1, /srv/mail]",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass"),
    );
    let (_, check) = lab.check(&with);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(
        codes(&check),
        [
            "missing_path",
            "too_few_sets",
            "missing_path",
            "too_few_locations"
        ]
    );
    let msgs: Vec<&str> = check["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    assert!(
        msgs[1].contains("keeps 1 set, the policy asks for at least 3"),
        "{msgs:?}"
    );
    assert!(msgs[0].contains("does not contain `/srv/mail`"), "{msgs:?}");
}

/// The name `vigil-agent check` reports as its host (no config, no
/// `--host`): the kernel hostname, lower case.
fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn two_repositories_on_one_host_are_one_location() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[3]);
    let b = lab.repo("repo-b", &[4]);
    // No `site`: both are paths on this host, so both are this host.
    let with = format!(
        "sources:\n{}{}min_locations: 2",
        lab.source(&a, "", "restic.pass"),
        lab.source(&b, "", "restic.pass"),
    );
    let (_, check) = lab.check(&with);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(codes(&check), ["too_few_locations"]);
    let host = this_host();
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains(&format!(
            "1 distinct host holds a fresh backup ({}), the policy asks for at least 2",
            host.to_ascii_lowercase()
        )),
        "{msg}"
    );
    assert!(
        msg.contains(&format!(
            "`{}` on {}",
            b.display(),
            host.to_ascii_lowercase()
        )),
        "{msg}"
    );
}

/// Issue 24, BK-2: a location is the host that holds it. A second repository
/// said to be on this host's own name, dotted and in capitals (as an sftp URL
/// to itself would be), is this host again; on another host it counts.
#[test]
fn a_copy_on_this_hosts_own_name_is_not_a_second_location() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[3, 27]);
    let b = lab.repo("repo-b", &[4, 28]);
    let host = this_host().to_ascii_lowercase();
    let own = format!("{}.papyrs.internal.", host.to_ascii_uppercase());
    let with = format!(
        "sources:\n{}{}min_locations: 2\nmin_sets: 2",
        lab.source(&a, "", "restic.pass"),
        lab.source(&b, &format!("\"{own}\""), "restic.pass"),
    );
    let (o, check) = lab.check(&with);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(codes(&check), ["too_few_locations"], "{check}");
    let sources = check["evidence"]["sources"].as_array().unwrap();
    assert_eq!(sources[0]["host"], host.as_str(), "{check}");
    assert_eq!(sources[1]["host"], host.as_str(), "{check}");
    assert_eq!(check["evidence"]["fresh_hosts"], serde_json::json!([host]));
    // `localhost` is this host too.
    let with = format!(
        "sources:\n{}{}min_locations: 2",
        lab.source(&a, "", "restic.pass"),
        lab.source(&b, "localhost", "restic.pass"),
    );
    let (_, check) = lab.check(&with);
    assert_eq!(codes(&check), ["too_few_locations"], "{check}");
    // Another host: two locations.
    let with = format!(
        "sources:\n{}{}min_locations: 2\nmin_sets: 2",
        lab.source(&a, "", "restic.pass"),
        lab.source(&b, "offline-1.papyrs.internal", "restic.pass"),
    );
    let (o, check) = lab.check(&with);
    assert_eq!(status(&check), "pass", "{check}");
    assert_eq!(o.status.code(), Some(0));
    let mut want = vec![host.clone(), "offline-1.papyrs.internal".to_owned()];
    want.sort();
    assert_eq!(check["evidence"]["fresh_hosts"], serde_json::json!(want));
}

/// papyrs.yaml's BK-2 on the offline host (`--role offline_backup`): its own
/// repository, a real one under `--root`, with a week of nightly sets
/// passes; with three it fails `too_few_sets`; the backup server's check
/// does not run there.
#[test]
fn papyrs_bk2_reads_the_offline_repository_on_the_offline_host() {
    let lab = Lab::new();
    let root = lab.path("root");
    std::fs::create_dir_all(root.join("srv/backup")).unwrap();
    std::fs::create_dir_all(root.join("etc/vigil")).unwrap();
    std::fs::copy(
        lab.path("restic.pass"),
        root.join("etc/vigil/restic-offline.pass"),
    )
    .unwrap();
    let run = |lab: &Lab| {
        let o = Command::new(agent())
            .args(["check", "--policy"])
            .arg(workspace().join("policies/papyrs.yaml"))
            .args([
                "--role",
                "offline_backup",
                "--control",
                "BK-2",
                "--format",
                "json",
                "--root",
            ])
            .arg(&root)
            .arg("--state-dir")
            .arg(lab.path("state"))
            .env("RESTIC_CACHE_DIR", lab.path("cache"))
            .env_remove("RESTIC_PASSWORD")
            .env_remove("RESTIC_PASSWORD_FILE")
            .output()
            .unwrap();
        let report = report_json(&o);
        let checks = report["controls"][0]["checks"].as_array().unwrap().clone();
        assert_eq!(
            checks.len(),
            1,
            "only the offline host's check runs: {report}"
        );
        (o, checks[0].clone())
    };
    lab.repo(
        "root/srv/backup/restic-offline",
        &[2, 26, 50, 74, 98, 122, 146],
    );
    let (o, check) = run(&lab);
    assert_eq!(check["id"], "offline-sets");
    assert_eq!(status(&check), "pass", "{check}");
    assert_eq!(o.status.code(), Some(0));
    assert!(
        check["summary"]
            .as_str()
            .unwrap()
            .starts_with("1 host with fresh backups, newest 2.0 h old"),
        "{check}"
    );
    std::fs::remove_dir_all(root.join("srv/backup/restic-offline")).unwrap();
    lab.repo("root/srv/backup/restic-offline", &[2, 26, 50]);
    let (_, check) = run(&lab);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(codes(&check), ["too_few_sets"], "{check}");
    let msg = check["findings"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("keeps 3 sets, the policy asks for at least 7"),
        "{msg}"
    );
}

#[test]
fn wrong_password_is_an_error_and_never_printed() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    let with = format!("sources:\n{}", lab.source(&a, "", "wrong.pass"));
    let (o, check) = lab.check(&with);
    assert_eq!(status(&check), "error", "{check}");
    assert_eq!(o.status.code(), Some(1));
    let summary = check["summary"].as_str().unwrap();
    assert!(summary.contains("wrong password"), "{summary}");
    for out in [stdout(&o), stderr(&o)] {
        assert!(!out.contains(PASSWORD) && !out.contains(WRONG), "{out}");
    }
    // The table format too.
    let table = Command::new(agent())
        .args(["check", "--format", "table", "--policy"])
        .arg(lab.path("policy.yaml"))
        .arg("--state-dir")
        .arg(lab.path("state"))
        .env("RESTIC_CACHE_DIR", lab.path("cache"))
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&table), stderr(&table));
    assert!(all.contains("wrong password"), "{all}");
    assert!(!all.contains(PASSWORD) && !all.contains(WRONG), "{all}");
}

#[test]
fn corrupted_repository_is_an_error() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    let b = lab.repo("repo-b", &[2]);
    // Overwrite the repository's config with garbage of the same length.
    let config = a.join("config");
    let len = std::fs::metadata(&config).unwrap().len() as usize;
    std::fs::write(&config, vec![0x5a_u8; len]).unwrap();
    let with = format!(
        "sources:\n{}{}",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass"),
    );
    let (_, check) = lab.check(&with);
    assert_eq!(status(&check), "error", "{check}");
    let summary = check["summary"].as_str().unwrap();
    assert!(summary.contains(&a.display().to_string()), "{summary}");
    assert!(summary.contains("`restic snapshots` failed"), "{summary}");
}

#[test]
fn damaged_pack_fails_the_data_check() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    // Flip the content of every data pack: snapshots still list, data is gone.
    for dir in std::fs::read_dir(a.join("data")).unwrap() {
        for pack in std::fs::read_dir(dir.unwrap().path()).unwrap() {
            let p = pack.unwrap().path();
            let len = std::fs::metadata(&p).unwrap().len() as usize;
            std::fs::write(&p, vec![0xa5_u8; len]).unwrap();
        }
    }
    let with = format!(
        "sources:\n{}read_data_subset: \"100%\"",
        lab.source(&a, "", "restic.pass")
    );
    let (_, check) = lab.check(&with);
    assert_eq!(status(&check), "fail", "{check}");
    assert_eq!(codes(&check), ["data_check_failed", "too_few_locations"]);
}

impl Lab {
    /// A borg repository (`repokey` or `none`) with one archive per age.
    fn borg_repo(&self, name: &str, encryption: &str, ages_hours: &[u64]) -> PathBuf {
        let borg = require_tool("borg", "borgbackup");
        let repo = self.path(name);
        let run = |args: Vec<String>| {
            let o = Command::new(&borg)
                .current_dir(self.path("data"))
                .env(
                    "BORG_PASSCOMMAND",
                    format!("cat {}", self.path("restic.pass").display()),
                )
                .env("BORG_BASE_DIR", self.path("borg-base"))
                .env("BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK", "yes")
                .env("TZ", "UTC")
                .args(&args)
                .output()
                .unwrap();
            assert!(o.status.success(), "borg {args:?}: {}", stderr(&o));
        };
        run(vec![
            "init".into(),
            "-e".into(),
            encryption.into(),
            repo.display().to_string(),
        ]);
        for (i, age) in ages_hours.iter().enumerate() {
            let t = time_hours_ago(*age).replace(' ', "T");
            run(vec![
                "create".into(),
                "--timestamp".into(),
                t,
                format!("{}::set-{i}", repo.display()),
                "srv".into(),
            ]);
        }
        repo
    }
}

#[test]
fn borg_times_zone_encryption_and_paths() {
    let lab = Lab::new();
    let enc = lab.borg_repo("borg-enc", "repokey", &[30, 20]);
    let plain = lab.borg_repo("borg-plain", "none", &[2]);
    let pass = lab.path("restic.pass");
    let source = |repo: &Path, site: &str| {
        format!(
            "  - {{kind: borg, location: \"{}\", password_file: \"{}\", site: {site}}}\n",
            repo.display(),
            pass.display()
        )
    };
    let run = |with: String| {
        let policy = lab.path("borg-policy.yaml");
        std::fs::write(
            &policy,
            format!(
                "policy: {{id: b, version: \"1\", title: B}}\ncontrols:\n  - id: BK-T\n    title: t\n    checks:\n      - id: borg\n        type: backup_freshness\n        timeout: 5m\n        with:\n{}",
                with.lines().map(|l| format!("          {l}\n")).collect::<String>()
            ),
        )
        .unwrap();
        let o = lab
            .agent_check(&policy, false)
            .env("BORG_BASE_DIR", lab.path("borg-base"))
            .output()
            .unwrap();
        assert!(!stdout(&o).contains(PASSWORD) && !stderr(&o).contains(PASSWORD));
        check_of(&report_json(&o), "BK-T", "borg").clone()
    };
    // Naive borg times read as UTC: the 20 h old archive is fresh.
    let check = run(format!(
        "sources:\n{}min_sets: 2\nrequired_paths: [/srv/www/site-1]",
        source(&enc, "backup-1")
    ));
    assert_eq!(status(&check), "pass", "{check}");
    // Read as UTC+10 they are ten hours older: 30 h, stale.
    let check = run(format!(
        "sources:\n{}time_zone: \"+10:00\"",
        source(&enc, "backup-1")
    ));
    assert_eq!(codes(&check), ["stale", "too_few_locations"], "{check}");
    // An unencrypted repository fails; a set missing a required path makes
    // its location not count.
    let check = run(format!(
        "sources:\n{}{}min_locations: 2\nrequired_paths: [/srv/mail]",
        source(&enc, "backup-1"),
        source(&plain, "backup-2")
    ));
    assert_eq!(
        codes(&check),
        [
            "missing_path",
            "unencrypted_repository",
            "missing_path",
            "too_few_locations"
        ],
        "{check}"
    );
}

#[test]
fn directory_of_dated_sets_and_manifest() {
    let host = FixtureHost::new();
    host.copy_tree(&workspace().join("tests/data/backup/directory/root"));
    // Tonight's set, named for the current time.
    let now = stdout(
        &Command::new("date")
            .args(["-u", "-d", "-1 hour", "+%Y-%m-%dT%H-%M-%S"])
            .output()
            .unwrap(),
    )
    .trim()
    .to_owned();
    host.write(
        &format!("/srv/backup/sets/{now}/srv/www/site-1/index.html"),
        "<h1>papyrs</h1>\n",
    );
    let policy = host.write(
        "/etc/vigil/policy.yaml",
        "policy: {id: d, version: \"1\", title: D}\ncontrols:\n  - id: BK-T\n    title: t\n    checks:\n      - id: sets\n        type: backup_freshness\n        timeout: 5m\n        with:\n          sources: [{kind: directory, location: /srv/backup/sets, site: disk}]\n          min_sets: 3\n          required_paths: [/srv/www/site-1]\n      - id: manifest\n        type: backup_freshness\n        timeout: 5m\n        with:\n          sources: [{kind: directory, location: /srv/backup/archives, manifest: MANIFEST}]\n",
    );
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--root",
        host.root().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let report = report_json(&o);
    let sets = check_of(&report, "BK-T", "sets");
    assert_eq!(status(sets), "pass", "{sets}");
    let manifest = check_of(&report, "BK-T", "manifest");
    assert_eq!(
        codes(manifest),
        ["stale", "checksum_mismatch", "too_few_locations"],
        "{manifest}"
    );
    let msg = manifest["findings"][1]["message"].as_str().unwrap();
    assert!(msg.contains("set `sites 2026-11-21.tar`"), "{msg}");
}

/// Checks of one run share each repository's `restic snapshots` (and `restic
/// ls` of one snapshot): the agent runs in a private mount namespace where
/// `/usr/bin/restic` is a wrapper logging each invocation, then running the
/// real restic.
#[test]
fn one_run_lists_each_repository_once() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[50, 26, 2]);
    let b = lab.repo("repo-b", &[51, 27, 3]);
    let (_, log) = lab.restic_wrapper();

    let both = format!(
        "{}{}",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass")
    );
    let indent = |s: &str| {
        s.lines()
            .map(|l| format!("          {l}\n"))
            .collect::<String>()
    };
    let check = |id: &str, with: &str| {
        format!(
            "      - id: {id}\n        type: backup_freshness\n        timeout: 5m\n        with:\n{}",
            indent(with)
        )
    };
    let paths = "min_locations: 2\nrequired_paths: [/srv/www]";
    let policy = format!(
        "policy: {{id: bk-share, version: \"1\", title: Shared listings}}\ncontrols:\n  - id: BK-S\n    title: backups\n    checks:\n{}{}{}{}{}",
        check("first", &format!("sources:\n{both}{paths}")),
        check("second", &format!("sources:\n{both}{paths}")),
        check("third", &format!("sources:\n{both}min_locations: 2")),
        check("wrong-1", &format!("sources:\n{}", lab.source(&a, "", "wrong.pass"))),
        check("wrong-2", &format!("sources:\n{}", lab.source(&a, "", "wrong.pass"))),
    );
    let file = lab.path("policy.yaml");
    std::fs::write(&file, policy).unwrap();
    let o = lab.agent_check(&file, true).output().unwrap();
    let report = report_json(&o);
    for id in ["first", "second", "third"] {
        let c = check_of(&report, "BK-S", id);
        assert_eq!(status(c), "pass", "{c}");
    }
    // A failed listing is shared too, and each check reports it itself.
    for id in ["wrong-1", "wrong-2"] {
        let c = check_of(&report, "BK-S", id);
        assert_eq!(status(c), "error", "{c}");
        assert!(
            c["summary"].as_str().unwrap().contains("wrong password"),
            "{c}"
        );
    }
    for out in [stdout(&o), stderr(&o)] {
        assert!(!out.contains(PASSWORD) && !out.contains(WRONG), "{out}");
    }

    let calls = std::fs::read_to_string(&log).unwrap();
    let count = |repo: &Path, pass: &str, cmd: &str| {
        let prefix = format!("{} {} ", repo.display(), lab.path(pass).display());
        calls
            .lines()
            .filter(|l| {
                l.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.split_whitespace().any(|w| w == cmd))
            })
            .count()
    };
    // Five checks, eight sources: one `snapshots` per repository and password
    // file, one `ls` per repository (first and second ask the same paths).
    assert_eq!(count(&a, "restic.pass", "snapshots"), 1, "{calls}");
    assert_eq!(count(&b, "restic.pass", "snapshots"), 1, "{calls}");
    assert_eq!(count(&a, "wrong.pass", "snapshots"), 1, "{calls}");
    assert_eq!(count(&a, "restic.pass", "ls"), 1, "{calls}");
    assert_eq!(count(&b, "restic.pass", "ls"), 1, "{calls}");
    assert_eq!(calls.lines().count(), 5, "{calls}");
}

/// One agent run under the logging restic wrapper: its check and the restic
/// commands it started.
struct Logged {
    out: Output,
    check: serde_json::Value,
    calls: String,
}

impl Logged {
    /// How many `restic CMD` (`snapshots`, `ls`, `check`) ran on `repo`.
    fn count(&self, repo: &Path, cmd: &str) -> usize {
        let prefix = format!("{} ", repo.display());
        self.calls
            .lines()
            .filter(|l| {
                l.strip_prefix(&prefix)
                    .is_some_and(|rest| rest.split_whitespace().any(|w| w == cmd))
            })
            .count()
    }

    /// The evidence's `listing` of the source at `i` (null: listed by restic).
    fn listing(&self, i: usize) -> &serde_json::Value {
        &self.check["evidence"]["sources"][i]["listing"]
    }
}

impl Lab {
    /// Runs the agent (with `RUST_LOG=warn`) in a private mount namespace
    /// where `/usr/bin/restic` is a wrapper logging each invocation, then
    /// running the real restic.
    fn check_logged(&self, with: &str) -> Logged {
        let (_, log) = self.restic_wrapper();
        std::fs::write(&log, "").unwrap();
        let file = self.write_policy(with);
        let out = self
            .agent_check(&file, true)
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let check = check_of(&report_json(&out), "BK-T", "restic").clone();
        for text in [stdout(&out), stderr(&out)] {
            assert!(!text.contains(PASSWORD) && !text.contains(WRONG), "{text}");
        }
        Logged {
            out,
            check,
            calls: std::fs::read_to_string(&log).unwrap(),
        }
    }

    /// The listing cache files in the state directory.
    fn cache_files(&self) -> Vec<PathBuf> {
        match std::fs::read_dir(self.path("state/backup_freshness")) {
            Ok(rd) => rd.map(|e| e.unwrap().path()).collect(),
            Err(_) => vec![],
        }
    }

    /// The id of the newest snapshot of `repo`.
    fn newest_snapshot(&self, repo: &Path) -> String {
        let o = self.restic(repo, &["snapshots", "--json", "--latest", "1"]);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let snaps = v.as_array().unwrap();
        snaps
            .iter()
            .max_by_key(|s| s["time"].as_str().unwrap().to_owned())
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// An unchanged local repository is listed from the state directory's cache:
/// the second run starts no `restic snapshots` or `restic ls` and gives the
/// same verdict, while `restic check --read-data-subset` still runs every time.
/// A new snapshot, then a forgotten one, makes restic list that repository
/// (and only that one) again.
#[test]
fn unchanged_repository_is_listed_from_the_cache() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[74, 50, 2]);
    let b = lab.repo("repo-b", &[51, 27, 3]);
    let with = format!(
        "sources:\n{}{}min_sets: 3\nmin_locations: 2\nrequired_paths: [/srv/www]\nread_data_subset: \"1/10\"",
        lab.source(&a, "disk-a", "restic.pass"),
        lab.source(&b, "disk-b", "restic.pass"),
    );
    let first = lab.check_logged(&with);
    assert_eq!(status(&first.check), "pass", "{}", first.check);
    for repo in [&a, &b] {
        for cmd in ["snapshots", "ls", "check"] {
            assert_eq!(first.count(repo, cmd), 1, "{cmd}: {}", first.calls);
        }
    }
    assert!(first.listing(0).is_null() && first.listing(1).is_null());
    assert_eq!(lab.cache_files().len(), 2, "{:?}", lab.cache_files());

    let second = lab.check_logged(&with);
    assert_eq!(status(&second.check), "pass", "{}", second.check);
    assert_eq!(second.check["summary"], first.check["summary"]);
    assert_eq!(second.check["findings"], first.check["findings"]);
    // Only the read-back ran.
    assert_eq!(second.count(&a, "check"), 1, "{}", second.calls);
    assert_eq!(second.count(&b, "check"), 1, "{}", second.calls);
    assert_eq!(second.calls.lines().count(), 2, "{}", second.calls);
    for i in [0, 1] {
        let l = second.listing(i);
        assert_eq!(l["from_cache"], true, "{}", second.check);
        assert_eq!(l["required_paths_cached"], true, "{}", second.check);
        assert!(l["unchanged_since"].is_string() && l["listed_at"].is_string());
    }
    assert!(stderr(&second.out).is_empty(), "{}", stderr(&second.out));

    // Tonight's backup at repo-a: restic lists it (and ls its new snapshot).
    lab.restic(
        &a,
        &[
            "backup",
            "--quiet",
            "--host",
            "papyrs",
            "--time",
            &time_hours_ago(1),
            "srv",
        ],
    );
    let third = lab.check_logged(&with);
    assert_eq!(status(&third.check), "pass", "{}", third.check);
    let summary = third.check["summary"].as_str().unwrap();
    assert!(summary.contains("newest 1.0 h old"), "{summary}");
    assert_eq!(third.count(&a, "snapshots"), 1, "{}", third.calls);
    assert_eq!(third.count(&a, "ls"), 1, "{}", third.calls);
    assert_eq!(third.count(&b, "snapshots"), 0, "{}", third.calls);
    assert_eq!(third.count(&b, "ls"), 0, "{}", third.calls);
    assert!(third.listing(0).is_null(), "{}", third.check);
    assert_eq!(third.listing(1)["from_cache"], true, "{}", third.check);

    // That snapshot forgotten again: back to the 2 h old one.
    let newest = lab.newest_snapshot(&a);
    lab.restic(&a, &["forget", "--quiet", &newest]);
    let fourth = lab.check_logged(&with);
    let summary = fourth.check["summary"].as_str().unwrap();
    assert!(summary.contains("newest 2.0 h old"), "{summary}");
    assert_eq!(fourth.count(&a, "snapshots"), 1, "{}", fourth.calls);
    assert_eq!(fourth.count(&b, "snapshots"), 0, "{}", fourth.calls);
}

/// A cache file that is not one is discarded with a log line; restic lists
/// the repository and the cache is written anew.
#[test]
fn corrupt_cache_is_discarded_and_logged() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    let with = format!(
        "sources:\n{}required_paths: [/srv/www]",
        lab.source(&a, "", "restic.pass")
    );
    let first = lab.check_logged(&with);
    assert_eq!(status(&first.check), "pass", "{}", first.check);
    let files = lab.cache_files();
    assert_eq!(files.len(), 1, "{files:?}");
    let text = std::fs::read_to_string(&files[0]).unwrap();
    // Small: ids, times and which required paths were found, no listing.
    assert!(text.len() < 1024, "{text}");
    assert!(!text.contains("index.html"), "{text}");
    std::fs::write(&files[0], &text[..text.len() / 2]).unwrap();

    let second = lab.check_logged(&with);
    assert_eq!(status(&second.check), "pass", "{}", second.check);
    assert_eq!(second.count(&a, "snapshots"), 1, "{}", second.calls);
    assert_eq!(second.count(&a, "ls"), 1, "{}", second.calls);
    let log = stderr(&second.out);
    assert!(log.contains("discarding the restic listing cache"), "{log}");
    assert!(second.listing(0).is_null(), "{}", second.check);

    let third = lab.check_logged(&with);
    assert_eq!(third.calls, "", "{}", third.calls);
    assert_eq!(third.listing(0)["from_cache"], true, "{}", third.check);

    // An unwritable cache changes nothing but the next run's work.
    std::fs::remove_dir_all(lab.path("state")).unwrap();
    std::fs::write(lab.path("state"), "not a directory").unwrap();
    let fourth = lab.check_logged(&with);
    assert_eq!(status(&fourth.check), "pass", "{}", fourth.check);
    assert_eq!(fourth.count(&a, "snapshots"), 1, "{}", fourth.calls);
    let log = stderr(&fourth.out);
    assert!(
        log.contains("cannot write the restic listing cache"),
        "{log}"
    );
}

/// The password file and the repository's keys are part of the cache's key:
/// a rewritten password file or a changed repository password makes restic
/// run, and a wrong password is an `error`, never a cached pass. A failed
/// listing is not cached.
#[test]
fn changed_password_lists_again_and_errors_are_not_cached() {
    let lab = Lab::new();
    let a = lab.repo("repo-a", &[2]);
    std::fs::copy(lab.path("restic.pass"), lab.path("agent.pass")).unwrap();
    let with = format!("sources:\n{}", lab.source(&a, "", "agent.pass"));
    let first = lab.check_logged(&with);
    assert_eq!(status(&first.check), "pass", "{}", first.check);
    assert_eq!(lab.check_logged(&with).calls, "");

    // The same password written again: restic checks it.
    std::fs::write(lab.path("agent.pass"), format!("{PASSWORD}\n")).unwrap();
    let again = lab.check_logged(&with);
    assert_eq!(status(&again.check), "pass", "{}", again.check);
    assert_eq!(again.count(&a, "snapshots"), 1, "{}", again.calls);

    // A wrong password in the file: an error, each time (nothing cached).
    std::fs::write(lab.path("agent.pass"), format!("{WRONG}\n")).unwrap();
    for _ in 0..2 {
        let wrong = lab.check_logged(&with);
        assert_eq!(status(&wrong.check), "error", "{}", wrong.check);
        assert!(wrong.check["summary"]
            .as_str()
            .unwrap()
            .contains("wrong password"));
        assert_eq!(wrong.count(&a, "snapshots"), 1, "{}", wrong.calls);
    }
    std::fs::write(lab.path("agent.pass"), format!("{PASSWORD}\n")).unwrap();
    assert_eq!(status(&lab.check_logged(&with).check), "pass");
    assert_eq!(lab.check_logged(&with).calls, "");

    // The repository's password changed (restic key passwd): the file the
    // agent holds is now wrong.
    let o = Command::new(&lab.restic)
        .arg("-r")
        .arg(&a)
        .args(["--no-cache", "--password-file"])
        .arg(lab.path("restic.pass"))
        .args(["key", "passwd", "--new-password-file"])
        .arg(lab.path("wrong.pass"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let changed = lab.check_logged(&with);
    assert_eq!(status(&changed.check), "error", "{}", changed.check);
    assert!(changed.check["summary"]
        .as_str()
        .unwrap()
        .contains("wrong password"));
    assert_eq!(changed.count(&a, "snapshots"), 1, "{}", changed.calls);
}
