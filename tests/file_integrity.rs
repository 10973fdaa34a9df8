//! `file_integrity` end to end: a fixture dpkg database with a tampered file, a
//! missing file and an edited conffile; a baseline written by
//! `vigil-agent baseline`, then edits, then the exact diff.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use vigil_tests::{check_of, codes, copy_dir, report_json, run_agent, stderr, stdout, workspace};

fn policy(dir: &Path, with: &str) -> String {
    let path = dir.join("policy.yaml");
    let text = format!(
        "policy:\n  id: fi-test\n  version: \"1\"\n  title: file integrity test\ncontrols:\n  - id: SP-7\n    title: system software unchanged\n    checks:\n      - id: integrity\n        type: file_integrity\n        with:\n{with}"
    );
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

fn check(policy: &str, root: &Path, state: &Path) -> serde_json::Value {
    let o = run_agent(&[
        "check",
        "--policy",
        policy,
        "--format",
        "json",
        "--root",
        root.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let r = report_json(&o);
    check_of(&r, "SP-7", "integrity").clone()
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
