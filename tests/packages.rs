//! The Debian packages (issue 26): `packaging/build-debs.sh` builds both from
//! the test binaries, `dpkg -i` installs them on this machine, and what users
//! of `apt`/`dpkg` expect is checked: files and modes, the reporter's system
//! user, units that `systemd-analyze verify` accepts, no service started
//! without its config, and a purge that leaves nothing behind.
//!
//! Needs root and dpkg (CI runs as root). It installs into `/`, so it refuses
//! to run where vigil is already installed or configured.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use vigil_tests::*;

fn run(cmd: &mut Command) -> std::process::Output {
    let o = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn mode(p: &str) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{p}: {e}"))
        .permissions()
        .mode()
        & 0o7777
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn uid_of(user: &str) -> Option<u32> {
    let o = Command::new("getent")
        .args(["passwd", user])
        .output()
        .ok()?;
    let line = String::from_utf8_lossy(&o.stdout).into_owned();
    line.split(':').nth(2)?.parse().ok()
}

#[test]
fn debs_build_install_verify_and_purge() {
    assert_eq!(
        current_uid(),
        0,
        "tests/packages.rs installs packages with dpkg and needs root (CI runs as root)"
    );
    for tool in ["dpkg-deb", "dpkg", "systemd-analyze", "adduser", "strip"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "`{tool}` is missing: apt-get install dpkg adduser systemd binutils"
        );
    }
    for p in ["/etc/vigil", "/var/lib/vigil", "/var/lib/vigil-reporter"] {
        assert!(
            !Path::new(p).exists(),
            "{p} exists: this test installs vigil into / and would overwrite it"
        );
    }
    assert!(!installed("vigil-agent") && !installed("vigil-reporter"));

    let agent = agent();
    let reporter = binary("vigil-reporter", "vigil-reporter");
    let bin_dir = agent.parent().unwrap();
    assert_eq!(bin_dir, reporter.parent().unwrap());
    let out = tempfile::tempdir().unwrap();
    let o = run(
        Command::new(workspace().join("packaging/build-debs.sh")).args([
            "--bin-dir",
            bin_dir.to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--fast",
        ]),
    );
    let debs: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(debs.len(), 2, "{debs:?}");
    for deb in &debs {
        let info = run(Command::new("dpkg-deb").args(["--info", deb]));
        let info = String::from_utf8_lossy(&info.stdout).into_owned();
        assert!(info.contains("Package: vigil-"), "{info}");
        assert!(info.contains("Depends: libc6"), "{info}");
        // Everything in the archive is owned by root.
        let list = run(Command::new("dpkg-deb").args(["--contents", deb]));
        for line in String::from_utf8_lossy(&list.stdout).lines() {
            assert!(line.contains(" root/root "), "{deb}: {line}");
        }
    }

    // Installed: a cleanup guard purges whatever happens below.
    struct Purge;
    impl Drop for Purge {
        fn drop(&mut self) {
            let _ = Command::new("dpkg")
                .args(["--purge", "vigil-agent", "vigil-reporter"])
                .output();
        }
    }
    let guard = Purge;
    let o = run(Command::new("dpkg").arg("-i").args(&debs));
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(installed("vigil-agent") && installed("vigil-reporter"));
    // Not configured yet: the scripts say what to do and start nothing.
    assert!(said.contains("write /etc/vigil/agent.yaml"), "{said}");
    assert!(said.contains("write /etc/vigil/reporter.yaml"), "{said}");

    for (path, want) in [
        ("/usr/bin/vigil-agent", 0o755),
        ("/usr/bin/vigil-reporter", 0o755),
        ("/lib/systemd/system/vigil-agent.service", 0o644),
        ("/lib/systemd/system/vigil-reporter.service", 0o644),
        ("/usr/share/vigil/policies/papyrs.yaml", 0o644),
        ("/etc/vigil", 0o755),
        ("/var/lib/vigil", 0o700),
        ("/var/lib/vigil-reporter", 0o700),
    ] {
        assert_eq!(mode(path), want, "{path}");
    }
    // The installed binaries run and the packaged policy validates.
    let v = run(Command::new("/usr/bin/vigil-agent").args([
        "validate",
        "--policy",
        "/usr/share/vigil/policies/papyrs.yaml",
    ]));
    assert!(v.status.success());
    run(Command::new("/usr/bin/vigil-reporter").arg("--help"));

    // The reporter's user: a system account without a login shell, owning
    // its data directory; the agent's state stays root's.
    let uid = uid_of("vigil-reporter").expect("no vigil-reporter user after install");
    assert!(uid < 1000, "vigil-reporter is not a system user: uid {uid}");
    let passwd = run(Command::new("getent").args(["passwd", "vigil-reporter"]));
    assert!(String::from_utf8_lossy(&passwd.stdout)
        .trim_end()
        .ends_with("/usr/sbin/nologin"));
    assert_eq!(
        std::fs::metadata("/var/lib/vigil-reporter").unwrap().uid(),
        uid
    );
    assert_eq!(std::fs::metadata("/var/lib/vigil").unwrap().uid(), 0);

    // Units: verified as installed; each waits for its config.
    for unit in ["vigil-agent.service", "vigil-reporter.service"] {
        let path = format!("/lib/systemd/system/{unit}");
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("ConditionPathExists=/etc/vigil/"), "{unit}");
        let o = Command::new("systemd-analyze")
            .args(["verify", &path])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(o.status.success(), "systemd-analyze verify {unit}: {err}");
        assert!(!err.contains(unit), "systemd-analyze verify {unit}: {err}");
    }
    let reporter_unit =
        std::fs::read_to_string("/lib/systemd/system/vigil-reporter.service").unwrap();
    assert!(!reporter_unit.contains("DynamicUser"));

    // Purge leaves nothing: files, directories, the user.
    drop(guard);
    assert!(!installed("vigil-agent") && !installed("vigil-reporter"));
    for p in [
        "/usr/bin/vigil-agent",
        "/usr/bin/vigil-reporter",
        "/lib/systemd/system/vigil-agent.service",
        "/usr/share/vigil",
        "/etc/vigil",
        "/var/lib/vigil",
        "/var/lib/vigil-reporter",
    ] {
        assert!(!Path::new(p).exists(), "{p} left after purge");
    }
    assert_eq!(uid_of("vigil-reporter"), None, "user left after purge");
}

fn current_uid() -> u32 {
    let o = Command::new("id").arg("-u").output().unwrap();
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}
