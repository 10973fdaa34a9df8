//! `file_integrity` end to end: a fixture dpkg database with a tampered file, a
//! missing file and an edited conffile; a baseline written by
//! `vigil-agent baseline`, then edits, then the exact diff.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vigil_tests::{
    agent_check, check_of, codes, copy_dir, report_json, run_agent, single_check_policy, stderr,
    stdout, workspace, AgentCheck,
};

/// Control SP-7 holding the file_integrity check `integrity`, written in `dir`.
fn policy(dir: &Path, with: &str) -> String {
    single_check_policy("SP-7", "integrity", "file_integrity", with).write(&dir.join("policy.yaml"))
}

/// `check --format json` of `policy` on the fixture `root`, state in `state`.
fn check_cmd(policy: &str, root: &Path, state: &Path) -> AgentCheck {
    agent_check(policy).root(root).state_dir(state)
}

fn check(policy: &str, root: &Path, state: &Path) -> serde_json::Value {
    check_cmd(policy, root, state).check_of("SP-7", "integrity")
}

fn messages(c: &serde_json::Value) -> Vec<String> {
    c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn dpkg_database_with_tampered_missing_and_edited_conffile() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_dir(
        &workspace().join("tests/data/file_integrity/dpkg_tampered/root"),
        &root,
    );
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        [
            "package_file_missing",
            "package_file_changed",
            "conffile_changed"
        ]
    );
    assert_eq!(
        messages(&c),
        [
            "`/usr/share/doc/hello/README` of package hello is missing",
            "`/usr/lib/tools/tool` of package tools differs from its md5sum",
            "`/etc/hello.conf` of package hello (conffile) was edited",
        ]
    );
    // the removed package (config-files) and the obsolete conffile are not checked
    assert_eq!(c["evidence"]["dpkg"]["packages"], 2);
    assert_eq!(c["evidence"]["dpkg"]["files_checked"], 3);
    assert_eq!(c["evidence"]["dpkg"]["conffiles_checked"], 2);
    let severities: Vec<&str> = c["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["severity"].as_str().unwrap())
        .collect();
    assert_eq!(severities, ["medium", "high", "info"]);

    // The conffile alone fails only when asked to.
    std::fs::write(root.join("usr/lib/tools/tool"), "tool v1\n").unwrap();
    // git keeps no empty folders: the missing file's folder may be gone too.
    std::fs::create_dir_all(root.join("usr/share/doc/hello")).unwrap();
    std::fs::write(root.join("usr/share/doc/hello/README"), "original readme\n").unwrap();
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(codes(&c), ["conffile_changed"]);
    let p = policy(
        tmp.path(),
        "          dpkg_verify: true\n          conffiles_fail: true\n",
    );
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "fail", "{c}");
}

#[test]
fn no_dpkg_database_is_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "error", "{c}");
    assert!(c["summary"]
        .as_str()
        .unwrap()
        .contains("cannot read dpkg status `/var/lib/dpkg/status`"));
}

#[test]
fn a_package_file_whose_name_is_not_utf8_is_checked_byte_for_byte() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let info = root.join("var/lib/dpkg/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::write(
        root.join("var/lib/dpkg/status"),
        "Package: latin\nStatus: install ok installed\nVersion: 1\n",
    )
    .unwrap();
    // `caf\xe9` is Latin-1, not UTF-8: the md5sums line and the file name are those bytes
    let mut line = b"deed62a3a3573b278fba35609eec2509  usr/share/latin/caf\xe9\n".to_vec();
    line.extend_from_slice(b"deed62a3a3573b278fba35609eec2509  usr/share/latin/with space\n");
    std::fs::write(info.join("latin.md5sums"), line).unwrap();
    let dir = root.join("usr/share/latin");
    std::fs::create_dir_all(&dir).unwrap();
    let name = dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::write(&name, "latin-1 name\n").unwrap();
    std::fs::write(dir.join("with space"), "latin-1 name\n").unwrap();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["evidence"]["dpkg"]["files_checked"], 2);

    std::fs::write(&name, "changed\n").unwrap();
    let c = check(&p, &root, &tmp.path().join("state"));
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(codes(&c), ["package_file_changed"]);
    assert_eq!(
        messages(&c),
        ["`/usr/share/latin/caf\u{fffd}` of package latin differs from its md5sum"]
    );
}

fn write(root: &Path, path: &str, text: &str, mode: u32) {
    let full = root.join(path.trim_start_matches('/'));
    std::fs::create_dir_all(full.parent().unwrap()).unwrap();
    std::fs::write(&full, text).unwrap();
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn baseline_then_edits_then_the_exact_diff() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let state = tmp.path().join("state");
    write(
        &root,
        "/usr/local/bin/deploy",
        "#!/bin/sh\necho deploy\n",
        0o755,
    );
    write(
        &root,
        "/usr/local/bin/backup",
        "#!/bin/sh\necho backup\n",
        0o755,
    );
    write(
        &root,
        "/usr/local/bin/report",
        "#!/bin/sh\necho report\n",
        0o755,
    );
    write(&root, "/usr/local/bin/cache/skip.tmp", "x", 0o644);
    write(
        &root,
        "/etc/nginx/nginx.conf",
        "worker_processes 2;\n",
        0o644,
    );
    std::os::unix::fs::symlink("deploy", root.join("usr/local/bin/dep")).unwrap();
    let p = policy(
        tmp.path(),
        "          dpkg_verify: false\n          paths: [/usr/local/bin, /etc/nginx]\n          exclude: [/usr/local/bin/cache]\n          baseline: /var/lib/vigil/baseline-sp7.json\n",
    );

    // No baseline yet: error, saying how to make one.
    let c = check(&p, &root, &state);
    assert_eq!(c["status"], "error", "{c}");
    assert!(c["summary"]
        .as_str()
        .unwrap()
        .contains("vigil-agent baseline"));

    let o = run_agent(&[
        "baseline",
        "--policy",
        &p,
        "--control",
        "SP-7",
        "--root",
        root.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("wrote 5 entries to `/var/lib/vigil/baseline-sp7.json`"),
        "{}",
        stdout(&o)
    );
    let bfile = root.join("var/lib/vigil/baseline-sp7.json");
    let bytes = std::fs::read(&bfile).unwrap();
    let sha = {
        use std::process::Command;
        let out = Command::new("sha256sum").arg(&bfile).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned()
    };

    let c = check(&p, &root, &state);
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(c["evidence"]["baseline"]["sha256"], sha.as_str());
    assert_eq!(c["evidence"]["baseline"]["recorded_sha256"], sha.as_str());
    assert_eq!(c["evidence"]["baseline"]["files_now"], 5);

    // Edits: content (same size), mode, removal, addition, symlink target.
    write(
        &root,
        "/usr/local/bin/deploy",
        "#!/bin/sh\necho DEPLOY\n",
        0o755,
    );
    std::fs::set_permissions(
        root.join("usr/local/bin/backup"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    std::fs::remove_file(root.join("usr/local/bin/report")).unwrap();
    write(
        &root,
        "/etc/nginx/conf.d/evil.conf",
        "location / {}\n",
        0o644,
    );
    write(&root, "/usr/local/bin/cache/other.tmp", "ignored", 0o644);
    std::fs::remove_file(root.join("usr/local/bin/dep")).unwrap();
    std::os::unix::fs::symlink("backup", root.join("usr/local/bin/dep")).unwrap();
    std::os::unix::fs::chown(root.join("etc/nginx/nginx.conf"), Some(33), Some(33)).unwrap();

    let c = check(&p, &root, &state);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        messages(&c),
        [
            "`/etc/nginx/conf.d/evil.conf` was added",
            "`/etc/nginx/nginx.conf` changed: owner 0:0 -> 33:33",
            "`/usr/local/bin/backup` changed: mode 0755 -> 0777",
            "`/usr/local/bin/dep` changed: target deploy -> backup",
            "`/usr/local/bin/deploy` changed: content",
            "`/usr/local/bin/report` was removed",
        ]
    );
    assert_eq!(
        codes(&c),
        [
            "file_added",
            "file_changed",
            "file_changed",
            "file_changed",
            "file_changed",
            "file_removed"
        ]
    );

    // Someone rewrites the baseline to hide the change: the recorded hash differs.
    let mut doctored: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    doctored["entries"]["/usr/local/bin/backup"]["mode"] = "0777".into();
    std::fs::write(&bfile, serde_json::to_vec_pretty(&doctored).unwrap()).unwrap();
    let c = check(&p, &root, &state);
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(codes(&c)[0], "baseline_tampered");
    assert!(!messages(&c)
        .iter()
        .any(|m| m.starts_with("`/usr/local/bin/backup`")));
}

// ---------------------------------------------------------------- the verification cache

/// The tampered fixture (hello's README missing, tools' binary changed,
/// hello's conffile edited), its files older than the 2 s within which a
/// changed file's outcome is not cached.
fn aged_fixture() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    copy_dir(
        &workspace().join("tests/data/file_integrity/dpkg_tampered/root"),
        &root,
    );
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let state = tmp.path().join("state");
    (tmp, root, state)
}

const TAMPERED: [&str; 3] = [
    "package_file_missing",
    "package_file_changed",
    "conffile_changed",
];

fn dpkg_ev(c: &serde_json::Value) -> &serde_json::Value {
    &c["evidence"]["dpkg"]
}

fn cache_file(state: &Path) -> std::path::PathBuf {
    let dir = state.join("file_integrity");
    let found: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cache"))
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].clone()
}

#[test]
fn second_run_takes_unchanged_files_from_the_cache_and_a_restored_mtime_does_not_hide_a_change() {
    let (tmp, root, state) = aged_fixture();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");

    let first = check(&p, &root, &state);
    assert_eq!(first["status"], "fail", "{first}");
    assert_eq!(codes(&first), TAMPERED);
    let d = dpkg_ev(&first);
    assert_eq!(d["full_pass"], true, "{d}");
    assert_eq!(d["full_pass_reason"], "no verification cache yet");
    // hello, tool and both conffiles; the missing README is not read
    assert_eq!(d["files_hashed"], 4);
    assert_eq!(d["files_from_cache"], 0);
    assert_eq!(d["full_pass_every"], "1day");
    assert!(d["cache_warning"].is_null(), "{d}");

    let second = check(&p, &root, &state);
    assert_eq!(second["status"], "fail", "{second}");
    assert_eq!(codes(&second), TAMPERED);
    assert_eq!(messages(&second), messages(&first));
    let d = dpkg_ev(&second);
    assert_eq!(d["full_pass"], false, "{d}");
    assert!(d["full_pass_reason"].is_null(), "{d}");
    assert_eq!(d["files_hashed"], 0);
    assert_eq!(d["files_from_cache"], 4);
    assert_eq!(d["bytes_read"], 0);
    assert_eq!(d["last_full_pass"], dpkg_ev(&first)["last_full_pass"]);

    // Same size, other content, mtime put back: the ctime still moves.
    let hello = root.join("usr/bin/hello");
    let before = std::fs::metadata(&hello).unwrap();
    let old = std::fs::read(&hello).unwrap();
    let mut new = old.clone();
    new[0] ^= 0x20;
    std::fs::write(&hello, &new).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&hello)
        .unwrap()
        .set_modified(before.modified().unwrap())
        .unwrap();
    let after = std::fs::metadata(&hello).unwrap();
    assert_eq!(after.modified().unwrap(), before.modified().unwrap());
    assert_eq!(after.len(), before.len());

    let third = check(&p, &root, &state);
    assert_eq!(third["status"], "fail", "{third}");
    assert_eq!(
        codes(&third),
        [
            "package_file_changed",
            "package_file_missing",
            "package_file_changed",
            "conffile_changed"
        ]
    );
    assert_eq!(
        messages(&third)[0],
        "`/usr/bin/hello` of package hello differs from its md5sum"
    );
    let d = dpkg_ev(&third);
    assert_eq!(
        (d["files_hashed"].as_u64(), d["files_from_cache"].as_u64()),
        (Some(1), Some(3))
    );

    // Put back (content only): hashed again, and it matches.
    std::fs::write(&hello, &old).unwrap();
    let fourth = check(&p, &root, &state);
    assert_eq!(codes(&fourth), TAMPERED);
    assert_eq!(dpkg_ev(&fourth)["files_hashed"], 1);
}

#[test]
fn a_package_upgrade_hashes_the_files_whose_md5_changed() {
    let (tmp, root, state) = aged_fixture();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    let first = check(&p, &root, &state);
    assert_eq!(codes(&first), TAMPERED);

    // The md5sums now expect other content for /usr/bin/hello; the file
    // itself (and its stat identity) is unchanged.
    let sums = root.join("var/lib/dpkg/info/hello.md5sums");
    let text = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(
        &sums,
        text.replace(
            "22c3683b094136c3398391ae71b20f04  usr/bin/hello",
            "0123456789abcdef0123456789abcdef  usr/bin/hello",
        ),
    )
    .unwrap();
    let c = check(&p, &root, &state);
    assert_eq!(
        messages(&c)[0],
        "`/usr/bin/hello` of package hello differs from its md5sum",
        "{c}"
    );
    let d = dpkg_ev(&c);
    assert_eq!(d["full_pass"], false, "{d}");
    assert_eq!(
        (d["files_hashed"].as_u64(), d["files_from_cache"].as_u64()),
        (Some(1), Some(3))
    );

    // And back: the old sum's entry is gone from the cache (only this run's
    // files are kept), so it is hashed again, and matches.
    std::fs::write(&sums, text).unwrap();
    let c = check(&p, &root, &state);
    assert_eq!(codes(&c), TAMPERED);
    assert_eq!(dpkg_ev(&c)["files_hashed"], 1);
}

#[test]
fn a_corrupt_cache_is_discarded_with_a_log_line_and_a_full_pass() {
    let (tmp, root, state) = aged_fixture();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    let first = check(&p, &root, &state);
    let file = cache_file(&state);
    let mut bytes = std::fs::read(&file).unwrap();
    // the last byte is the checksum's
    *bytes.last_mut().unwrap() ^= 0xff;
    std::fs::write(&file, &bytes).unwrap();

    let o = check_cmd(&p, &root, &state)
        .env("RUST_LOG", "warn")
        .output();
    let log = stderr(&o);
    assert!(
        log.contains("discarding the corrupt verification cache")
            && log.contains("checksum mismatch"),
        "{log}"
    );
    let c = check_of(&report_json(&o), "SP-7", "integrity").clone();
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(messages(&c), messages(&first));
    let d = dpkg_ev(&c);
    assert_eq!(d["full_pass"], true, "{d}");
    assert_eq!(d["files_hashed"], 4);
    assert!(
        d["full_pass_reason"]
            .as_str()
            .unwrap()
            .contains("was corrupt (checksum mismatch) and was discarded"),
        "{d}"
    );
    // rebuilt: the next run uses it
    let c = check(&p, &root, &state);
    assert_eq!(dpkg_ev(&c)["files_from_cache"], 4);

    // Not a cache at all (truncated to nothing): the same.
    std::fs::write(&file, b"").unwrap();
    let c = check(&p, &root, &state);
    assert_eq!(messages(&c), messages(&first));
    assert_eq!(dpkg_ev(&c)["full_pass"], true);
}

#[test]
fn a_cache_that_cannot_be_written_is_a_warning_and_verification_still_happens() {
    let (tmp, root, _) = aged_fixture();
    // the state directory is a file: nothing can be created under it
    let state = tmp.path().join("state-is-a-file");
    std::fs::write(&state, "").unwrap();
    let p = policy(tmp.path(), "          dpkg_verify: true\n");
    for _ in 0..2 {
        let c = check(&p, &root, &state);
        assert_eq!(c["status"], "fail", "{c}");
        assert_eq!(codes(&c), TAMPERED);
        let d = dpkg_ev(&c);
        assert_eq!(d["full_pass"], true, "{d}");
        assert_eq!(d["files_hashed"], 4);
        assert!(
            d["cache_warning"]
                .as_str()
                .unwrap()
                .contains("cannot write the verification cache"),
            "{d}"
        );
        assert!(
            d["cache_warning"]
                .as_str()
                .unwrap()
                .contains("the next run hashes every file again"),
            "{d}"
        );
    }
}

#[test]
fn full_pass_every_elapsed_means_a_full_pass() {
    let (tmp, root, state) = aged_fixture();
    let p = policy(
        tmp.path(),
        "          dpkg_verify: true\n          full_pass_every: 1s\n",
    );
    let first = check(&p, &root, &state);
    assert_eq!(dpkg_ev(&first)["full_pass"], true);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let c = check(&p, &root, &state);
    assert_eq!(messages(&c), messages(&first));
    let d = dpkg_ev(&c);
    assert_eq!(d["full_pass"], true, "{d}");
    assert_eq!(d["files_hashed"], 4);
    assert!(
        d["full_pass_reason"]
            .as_str()
            .unwrap()
            .contains("`full_pass_every` is 1s"),
        "{d}"
    );
    assert_eq!(d["full_pass_every"], "1s");
    assert_ne!(d["last_full_pass"], dpkg_ev(&first)["last_full_pass"]);

    // A bad value is refused before anything runs.
    for bad in ["0s", "soon", "90d"] {
        let p = policy(
            tmp.path(),
            &format!("          dpkg_verify: true\n          full_pass_every: {bad}\n"),
        );
        let o = run_agent(&["validate", "--policy", &p]);
        assert!(!o.status.success(), "{bad}: {}", stdout(&o));
        let out = format!("{}{}", stdout(&o), stderr(&o));
        assert!(
            (out.contains(&format!("`{bad}`")) || out.contains("`full_pass_every` is 90 days"))
                && out.contains("nothing was run"),
            "{bad}: {}{}",
            stdout(&o),
            stderr(&o)
        );
    }
}
