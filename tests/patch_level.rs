//! `patch_level` end to end: fixture hosts (`--root`) built from
//! `tests/data/patch_level/base` plus one overlay folder per scenario, dpkg's
//! own version ordering checked against `dpkg --compare-versions`, and one
//! run against this machine's real dpkg database and apt lists.

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use vigil_rules::checks::patch_level::{dpkg_version, status};
use vigil_tests::*;

/// A fixture host: the base tree with `scenario`'s files laid over it.
fn host(scenario: Option<&str>) -> FixtureHost {
    let h = FixtureHost::new();
    let data = workspace().join("tests/data/patch_level");
    h.copy_tree(&data.join("base/root"));
    if let Some(s) = scenario {
        h.copy_tree(&data.join(s).join("root"));
    }
    h
}

/// Sets a file's modification time, as apt or cron would have left it.
fn age(h: &FixtureHost, path: &str, days: u32) {
    let full = h.root().join(path.trim_start_matches('/'));
    let st = Command::new("touch")
        .arg("-d")
        .arg(format!("{days} days ago"))
        .arg(&full)
        .status()
        .unwrap();
    assert!(st.success(), "touch {}", full.display());
}

fn check(h: &FixtureHost, with: &str) -> serde_json::Value {
    let policy = h.write(
        "/policy.yaml",
        &format!(
            "policy:\n  id: pl\n  version: \"1\"\n  title: pl\ncontrols:\n  - id: SP-6\n    title: patches\n    checks:\n      - id: patch\n        type: patch_level\n        with:\n          max_days_since_update: 2\n{with}"
        ),
    );
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
        "--root",
        h.root().to_str().unwrap(),
    ]);
    let r = report_json(&o);
    check_of(&r, "SP-6", "patch").clone()
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
fn up_to_date_host_passes() {
    let h = host(None);
    let c = check(&h, "          advisories: /tracker.json\n");
    assert_eq!(c["status"], "pass", "{c}");
    assert_eq!(codes(&c), Vec::<String>::new());
    assert_eq!(c["evidence"]["installed"], 8);
    assert_eq!(c["evidence"]["indices"], 2);
    assert_eq!(c["evidence"]["advisories"]["open"], 0);
    assert_eq!(
        c["evidence"]["advisories"]["format"],
        "security-tracker-json"
    );
}

#[test]
fn without_a_feed_it_says_advisories_were_not_checked() {
    let h = host(None);
    let c = check(&h, "");
    assert_eq!(c["status"], "pass", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("not checked: advisories"),
        "{c}"
    );
}

#[test]
fn pending_security_updates_by_origin() {
    let h = host(Some("pending_security"));
    let c = check(&h, "");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        [
            "pending_security_update",
            "pending_security_update",
            "pending_security_update"
        ]
    );
    let m = messages(&c);
    assert!(m[0].contains("curl 7.88.1-10+deb12u8 installed, 7.88.1-10+deb12u12 available from Debian bookworm-security"), "{m:?}");
    // base-files from bookworm-updates is pending, but not a security update.
    assert_eq!(c["evidence"]["pending"], 4);
    assert_eq!(c["evidence"]["pending_security"], 3);
    // Tolerating three security updates passes; capping all updates does not.
    let c = check(&h, "          max_pending_security: 3\n");
    assert_eq!(c["status"], "pass", "{c}");
    let c = check(
        &h,
        "          max_pending_security: 3\n          max_pending: 2\n",
    );
    assert_eq!(
        c["findings"].as_array().unwrap().last().unwrap()["code"],
        "pending_updates"
    );
}

#[test]
fn neglected_host() {
    let h = host(Some("neglected"));
    for f in [
        "/var/lib/apt/periodic/update-success-stamp",
        "/var/lib/apt/periodic/unattended-upgrades-stamp",
        "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
        "/var/lib/apt/lists/deb.debian.org_debian-security_dists_bookworm-security_InRelease",
    ] {
        age(&h, f, 10);
    }
    let c = check(&h, "");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(
        codes(&c),
        [
            "apt_stale",
            "unattended_upgrades_off",
            "reboot_required",
            "kernel_outdated"
        ]
    );
    let m = messages(&c);
    assert!(m[0].contains("10.0 days ago"), "{m:?}");
    assert!(m[1].contains("`0`"), "{m:?}");
    assert!(m[2].contains("linux-image-6.1.0-27-amd64, libc6"), "{m:?}");
    assert!(
        m[3].contains("running kernel 6.1.0-26-amd64") && m[3].contains("6.1.115-1"),
        "{m:?}"
    );
}

#[test]
fn unattended_upgrades_enabled_but_not_running() {
    let h = host(None);
    age(&h, "/var/lib/apt/periodic/unattended-upgrades-stamp", 9);
    let c = check(&h, "");
    assert_eq!(codes(&c), ["unattended_upgrades_stale"], "{c}");
}

#[test]
fn debsecan_feed_open_advisories() {
    let h = host(Some("advisories"));
    let c = check(&h, "          advisories: file:///debsecan-bookworm\n");
    assert_eq!(c["status"], "fail", "{c}");
    assert_eq!(codes(&c), ["open_advisory", "open_advisory"]);
    let f = &c["findings"][0];
    assert_eq!(f["subject"], "CVE-2025-0167 curl");
    assert_eq!(f["severity"], "low");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("installed curl 7.88.1-10+deb12u8") && m.contains("fixed in 7.88.1-10+deb12u12"),
        "{m}"
    );
    assert_eq!(c["findings"][1]["subject"], "CVE-2025-9086 curl");
    assert_eq!(c["findings"][1]["severity"], "medium");
    assert_eq!(c["evidence"]["advisories"]["format"], "debsecan");
    // Without a fix in the release, ncurses is not installed anyway; with
    // include_unfixed nothing changes for curl and openssl here.
    let c = check(
        &h,
        "          advisories: /debsecan-bookworm\n          include_unfixed: true\n",
    );
    assert_eq!(codes(&c).len(), 2);
}

#[test]
fn tracker_json_open_advisory() {
    let h = host(Some("advisories"));
    let c = check(
        &h,
        "          advisories: /tracker.json\n          release: bookworm\n",
    );
    assert_eq!(codes(&c), ["open_advisory"], "{c}");
    let m = c["findings"][0]["message"].as_str().unwrap();
    assert!(
        m.starts_with("CVE-2024-13176 affects source package openssl")
            && m.contains("3.0.15-1~deb12u1")
            && m.contains("fixed in 3.0.16-1~deb12u1")
            && m.ends_with("urgency medium"),
        "{m}"
    );
}

#[test]
fn corrupt_status_is_an_error_with_its_line() {
    let h = host(Some("corrupt_status"));
    let c = check(&h, "");
    assert_eq!(c["status"], "error", "{c}");
    let s = c["summary"].as_str().unwrap();
    assert!(
        s.contains("/var/lib/dpkg/status") && s.contains("line 21"),
        "{s}"
    );
}

#[test]
fn truncated_feed_is_an_error() {
    let h = host(Some("truncated_feed"));
    let c = check(&h, "          advisories: /tracker.json\n");
    assert_eq!(c["status"], "error", "{c}");
    assert!(
        c["summary"].as_str().unwrap().contains("not valid at line"),
        "{c}"
    );
    let c = check(&h, "          advisories: /missing.json\n");
    assert_eq!(c["status"], "error", "{c}");
}

#[test]
fn network_feeds_are_refused_at_validation() {
    let h = host(None);
    let policy = h.write(
        "/policy.yaml",
        "policy:\n  id: pl\n  version: \"1\"\n  title: pl\ncontrols:\n  - id: SP-6\n    title: p\n    checks:\n      - id: patch\n        type: patch_level\n        with:\n          advisories: https://security-tracker.debian.org/tracker/data/json\n",
    );
    let o = run_agent(&["validate", "--policy", policy.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("file:// URLs"), "{}", stderr(&o));
}

/// A deterministic generator of valid Debian versions that exercise every
/// rule: epochs, `~`, letters, `+`, `.`, leading zeros, revisions.
fn versions(n: usize) -> Vec<String> {
    let mut seed: u64 = 0x5eed_1234_abcd;
    let mut next = |m: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % m
    };
    let parts = [
        "0", "1", "01", "2", "10", "9", "a", "b", "z", "~", "~~", "~rc1", "+", "+b1", ".", "+dfsg",
        "~bpo", "A", "-",
    ];
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let mut v = String::new();
        match next(5) {
            0 => v.push_str("1:"),
            1 => v.push_str("0:"),
            2 => v.push_str("2:"),
            _ => {}
        }
        v.push_str(&next(4).to_string());
        for _ in 0..next(5) {
            let p = parts[next(parts.len() as u64 - 1) as usize];
            v.push_str(p);
        }
        if next(2) == 0 {
            v.push('-');
            v.push_str(&next(3).to_string());
            for _ in 0..next(3) {
                v.push_str(parts[next(parts.len() as u64 - 1) as usize]);
            }
        }
        if dpkg_version::parse(&v).is_ok() && !v.ends_with('-') && !v.contains(":-") {
            out.push(v);
        }
    }
    out
}

#[test]
fn version_order_matches_dpkg() {
    require_tool("dpkg", "dpkg");
    let vs = versions(3000);
    let mut pairs: Vec<(String, String)> =
        vs.chunks(2).map(|c| (c[0].clone(), c[1].clone())).collect();
    // Near neighbours, where orderings usually go wrong.
    for v in vs.iter().take(150) {
        pairs.push((v.clone(), format!("{v}~")));
        pairs.push((v.clone(), format!("{v}+1")));
        pairs.push((v.clone(), format!("{v}0")));
    }
    // Each pair carries our answer; dpkg confirms it with one call per pair.
    let ours: Vec<&str> = pairs
        .iter()
        .map(|(a, b)| match dpkg_version::compare(a, b).unwrap() {
            std::cmp::Ordering::Less => "lt",
            std::cmp::Ordering::Equal => "eq",
            std::cmp::Ordering::Greater => "gt",
        })
        .collect();
    for op in ["lt", "eq", "gt"] {
        assert!(
            ours.iter().filter(|o| **o == op).count() > 50,
            "too few `{op}` pairs"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    // Two shells in parallel, each over half of the pairs.
    let half = pairs.len() / 2;
    let mut children = Vec::new();
    for (n, range) in [(0..half), (half..pairs.len())].into_iter().enumerate() {
        let input = dir.path().join(format!("pairs{n}"));
        let text: String = range
            .map(|i| format!("{} {} {}\n", pairs[i].0, ours[i], pairs[i].1))
            .collect();
        std::fs::write(&input, text).unwrap();
        children.push(
            Command::new("sh")
                .args([
                    "-c",
                    r#"while read a op b; do if dpkg --compare-versions "$a" "$op" "$b"; then echo y; else echo "n $a $op $b"; fi; done < "$1""#,
                    "sh",
                    input.to_str().unwrap(),
                ])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    let mut answers = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        answers.extend(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .map(String::from),
        );
    }
    let dpkg_secs = started.elapsed().as_secs_f64();
    assert_eq!(answers.len(), pairs.len());
    let differ: Vec<&String> = answers.iter().filter(|l| *l != "y").collect();
    assert!(
        differ.is_empty(),
        "{} of {} pairs: dpkg disagrees with `a op b`: {:?}",
        differ.len(),
        pairs.len(),
        &differ[..differ.len().min(10)]
    );
    let ours_started = Instant::now();
    for (a, b) in &pairs {
        let _ = dpkg_version::compare(a, b);
    }
    eprintln!(
        "{} pairs: dpkg {dpkg_secs:.2}s, ours {:?}",
        pairs.len(),
        ours_started.elapsed()
    );
}

/// This machine's dpkg database: parsed, and every installed version
/// ordered, well under a second.
#[test]
fn real_dpkg_database() {
    let path = Path::new("/var/lib/dpkg/status");
    assert!(path.exists(), "this test needs a Debian host (dpkg)");
    let started = Instant::now();
    let text = std::fs::read_to_string(path).unwrap();
    let installed = status::installed(&text).unwrap();
    let mut versions: Vec<&str> = installed.iter().map(|i| i.version.as_str()).collect();
    versions.sort_by(|a, b| dpkg_version::compare_lenient(a, b));
    let took = started.elapsed();
    assert!(installed.len() > 50, "{} packages", installed.len());
    assert!(installed.iter().any(|i| i.name == "dpkg"));
    assert!(took.as_millis() < 500, "took {took:?}");
    // The count agrees with dpkg-query.
    let o = Command::new("dpkg-query")
        .args(["-W", "-f", "${db:Status-Abbrev}\n"])
        .output()
        .unwrap();
    let installed_by_dpkg = String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter(|l| {
            l.starts_with("ii")
                || l.starts_with("iU")
                || l.starts_with("iF")
                || l.starts_with("iW")
                || l.starts_with("it")
                || l.starts_with("hi")
        })
        .count();
    assert_eq!(installed.len(), installed_by_dpkg);
}

/// The agent on this machine: its pending counts agree with apt's own.
#[test]
fn live_host_agrees_with_apt() {
    require_tool("apt", "apt");
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("p.yaml");
    std::fs::write(&policy, "policy:\n  id: pl\n  version: \"1\"\n  title: pl\ncontrols:\n  - id: SP-6\n    title: patches\n    checks:\n      - id: patch\n        type: patch_level\n        with: {}\n").unwrap();
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let r = report_json(&o);
    let c = check_of(&r, "SP-6", "patch");
    assert_ne!(c["status"], "error", "{c}");
    let apt = Command::new("apt")
        .args(["list", "--upgradable"])
        .output()
        .unwrap();
    let lines: Vec<String> = String::from_utf8_lossy(&apt.stdout)
        .lines()
        .filter(|l| l.contains("[upgradable from"))
        .map(String::from)
        .collect();
    assert_eq!(c["evidence"]["pending"], lines.len(), "{c}");
    let security = lines.iter().filter(|l| l.contains("-security")).count();
    assert_eq!(c["evidence"]["pending_security"], security);
}

/// A feed server on the loopback address, stopped on drop.
struct FeedServer(std::process::Child, u16);

impl FeedServer {
    fn start(dir: &Path) -> Self {
        let python = require_tool("python3", "python3");
        let script = "import http.server,functools,sys\nh=functools.partial(http.server.SimpleHTTPRequestHandler, directory=sys.argv[1])\ns=http.server.HTTPServer(('127.0.0.1',0),h)\nprint(s.server_port,flush=True)\ns.serve_forever()\n";
        let mut child = Command::new(python)
            .args(["-c", script, dir.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let port = line.trim().parse().unwrap();
        FeedServer(child, port)
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn feed_over_loopback_http() {
    let h = host(Some("advisories"));
    let server = FeedServer::start(h.root());
    let c = check(
        &h,
        &format!(
            "          advisories: http://127.0.0.1:{}/debsecan-bookworm\n",
            server.1
        ),
    );
    assert_eq!(codes(&c), ["open_advisory", "open_advisory"], "{c}");
    let c = check(
        &h,
        &format!(
            "          advisories: http://127.0.0.1:{}/nothing-here\n",
            server.1
        ),
    );
    assert_eq!(c["status"], "error", "{c}");
    assert!(c["summary"].as_str().unwrap().contains("404"), "{c}");
}

/// A suite of the test's own apt archive: its Release fields and packages
/// (`name version arch`).
struct Suite {
    suite: &'static str,
    codename: &'static str,
    label: &'static str,
    flags: &'static str,
    packages: &'static [(&'static str, &'static str, &'static str)],
}

const SUITES: &[Suite] = &[
    Suite {
        suite: "stable",
        codename: "vigil-stable",
        label: "vigil",
        flags: "",
        packages: &[
            ("alpha", "1.0-2", "amd64"),
            ("beta", "1.0-1", "amd64"),
            ("theta", "1.1", "all"),
            ("iota", "1.3-1", "amd64"),
            ("lambda", "2.0-1", "amd64"),
            ("epsilon", "1.0-1", "amd64"),
            ("delta", "1.0-1", "amd64"),
        ],
    },
    Suite {
        suite: "stable-security",
        codename: "vigil-stable-security",
        label: "vigil-Security",
        flags: "",
        packages: &[("eta", "1.0-1+sec1", "amd64")],
    },
    Suite {
        suite: "extra",
        codename: "vigil-extra",
        label: "vigil",
        flags: "",
        packages: &[
            ("beta", "2.0-1", "amd64"),
            ("gamma", "1.5-1", "amd64"),
            ("iota", "1.2-5", "amd64"),
        ],
    },
    Suite {
        suite: "backports",
        codename: "vigil-backports",
        label: "vigil Backports",
        flags: "NotAutomatic: yes\nButAutomaticUpgrades: yes\n",
        packages: &[
            ("delta", "3.0-1~bpo1", "amd64"),
            ("epsilon", "2.1-1~bpo1", "amd64"),
        ],
    },
    Suite {
        suite: "experimental",
        codename: "vigil-experimental",
        label: "vigil",
        flags: "NotAutomatic: yes\n",
        packages: &[("zeta", "9.0-1", "amd64"), ("alpha", "5.0-1", "amd64")],
    },
];

/// Installed: `name version arch`.
const INSTALLED: &[(&str, &str, &str)] = &[
    ("dpkg", "1.21.22", "amd64"),
    ("alpha", "1.0-1", "amd64"),
    ("beta", "1.0-1", "amd64"),
    ("gamma", "1.0-1", "amd64"),
    ("delta", "1.0-1", "amd64"),
    ("epsilon", "2.0-1~bpo1", "amd64"),
    ("zeta", "1.0-1", "amd64"),
    ("eta", "1.0-1", "amd64"),
    ("theta", "1.0", "all"),
    ("iota", "1.0-1", "amd64"),
    ("lambda", "1.0-1", "amd64"),
];

/// An apt root of the test's own: a `file:` archive of five suites
/// (hand-written Packages and Release files), dpkg's status, sources and
/// preferences, and the apt.conf that points apt at it all. Returns the
/// root and that apt.conf, to pass as `APT_CONFIG`.
fn apt_root() -> (FixtureHost, std::path::PathBuf) {
    use sha2::Digest as _;
    let h = FixtureHost::new();
    let root = h.root().to_path_buf();
    let repo = root.join("repo");
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S UTC");
    let mut sources = String::new();
    for s in SUITES {
        let mut packages = String::new();
        for (name, version, arch) in s.packages {
            packages.push_str(&format!(
                "Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: vigil <t@example.org>\nInstalled-Size: 1\nFilename: pool/{name}_{version}_{arch}.deb\nSize: 1000\nSHA256: {}\nDescription: a test package\n\n",
                "0".repeat(64)
            ));
        }
        let dir = repo.join("dists").join(s.suite);
        std::fs::create_dir_all(dir.join("main/binary-amd64")).unwrap();
        std::fs::write(dir.join("main/binary-amd64/Packages"), &packages).unwrap();
        let release = format!(
            "Origin: vigil-test\nLabel: {}\nSuite: {}\nCodename: {}\nVersion: 1.0\nDate: {date}\nArchitectures: amd64\nComponents: main\n{}SHA256:\n {} {} main/binary-amd64/Packages\n",
            s.label,
            s.suite,
            s.codename,
            s.flags,
            hex::encode(sha2::Sha256::digest(packages.as_bytes())),
            packages.len()
        );
        std::fs::write(dir.join("Release"), release).unwrap();
        sources.push_str(&format!(
            "deb [trusted=yes] file:{} {} main\n",
            repo.display(),
            s.suite
        ));
    }
    let status: String = INSTALLED
        .iter()
        .map(|(name, version, arch)| {
            format!("Package: {name}\nStatus: install ok installed\nPriority: optional\nMaintainer: vigil <t@example.org>\nInstalled-Size: 1\nArchitecture: {arch}\nVersion: {version}\nDescription: a test package\n\n")
        })
        .collect();
    h.write("/var/lib/dpkg/status", &status);
    h.write("/etc/apt/sources.list", &sources);
    // extra is pinned at 100 for every package (as backports by default);
    // gamma is taken from extra anyway, iota's 1.2 series forced, lambda
    // never upgraded from stable; a `.bak` file apt ignores would lift zeta.
    h.write(
        "/etc/apt/preferences",
        "Explanation: the extra suite only on request\nPackage: *\nPin: release a=extra\nPin-Priority: 100\n",
    );
    h.write(
        "/etc/apt/preferences.d/10-gamma",
        "# gamma follows extra\nPackage: gamma\nPin: release n=vigil-extra\nPin-Priority: 600\n",
    );
    h.write(
        "/etc/apt/preferences.d/20-iota.pref",
        "Package: io*\nPin: version 1.2*\nPin-Priority: 1001\n",
    );
    h.write(
        "/etc/apt/preferences.d/30_lambda",
        "Package: lambda\nPin: release o=vigil-test, a=stable\nPin-Priority: -1\n",
    );
    h.write(
        "/etc/apt/preferences.d/zeta.bak",
        "Package: zeta\nPin: release a=experimental\nPin-Priority: 990\n",
    );
    for d in [
        "/etc/apt/apt.conf.d",
        "/etc/apt/preferences.d",
        "/var/lib/apt/lists/partial",
        "/var/cache/apt/archives/partial",
        "/var/log/apt",
    ] {
        std::fs::create_dir_all(root.join(d.trim_start_matches('/'))).unwrap();
    }
    let conf = root.join("apt.conf");
    std::fs::write(
        &conf,
        format!(
            "Dir \"{r}/\";\nDir::State::status \"{r}/var/lib/dpkg/status\";\nDir::Log \"{r}/var/log/apt\";\nAPT::Architecture \"amd64\";\nAPT::Architectures {{ \"amd64\"; }};\nDebug::NoLocking \"true\";\nAPT::Sandbox::User \"root\";\nAcquire::Languages \"none\";\n",
            r = root.display()
        ),
    )
    .unwrap();
    (h, conf)
}

/// Runs an apt tool on the test's own root (`APT_CONFIG` and `-o Dir=`),
/// never on this machine's /etc/apt.
fn apt_on(conf: &Path, root: &Path, tool: &str, args: &[&str]) -> String {
    let bin = require_tool(tool, "apt");
    let o = Command::new(bin)
        .env("APT_CONFIG", conf)
        .arg("-o")
        .arg(format!("Dir={}/", root.display()))
        .args(args)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "{tool} {args:?}: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// vigil's candidates agree with real apt's on an archive with a suite
/// pinned at 100, specific, glob, version and negative pins, NotAutomatic
/// and ButAutomaticUpgrades suites, and a preferences file apt ignores.
#[test]
fn pinned_suites_agree_with_apt_policy() {
    let (h, conf) = apt_root();
    let root = h.root().to_path_buf();
    apt_on(&conf, &root, "apt-get", &["update", "-qq"]);
    // apt's upgradable list: `name/suite version arch [upgradable from: old]`.
    let list = apt_on(&conf, &root, "apt", &["list", "--upgradable"]);
    let mut apt_pending: Vec<String> = list
        .lines()
        .filter(|l| l.contains("[upgradable from"))
        .map(|l| {
            let mut w = l.split_whitespace();
            let name = w.next().unwrap().split('/').next().unwrap();
            format!("{name} {}", w.next().unwrap())
        })
        .collect();
    apt_pending.sort();
    // What the pins are for: apt itself honours them as designed.
    assert_eq!(
        apt_pending,
        [
            "alpha 1.0-2",
            "epsilon 2.1-1~bpo1",
            "eta 1.0-1+sec1",
            "gamma 1.5-1",
            "iota 1.2-5",
            "theta 1.1"
        ],
        "{list}"
    );

    let c = check(&h, "          require_unattended_upgrades: false\n          check_reboot: false\n          check_kernel: false\n          max_pending_security: 5\n");
    assert_ne!(c["status"], "error", "{c}");
    let ev = &c["evidence"];
    let mut ours: Vec<String> = ev["pending_list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let w: Vec<&str> = l.as_str().unwrap().split_whitespace().collect();
            format!("{} {}", w[0], w[3])
        })
        .collect();
    ours.sort();
    assert_eq!(ours, apt_pending, "{ev}");
    assert_eq!(ev["pending_security"], 1, "{ev}");
    assert_eq!(ev["pins"], 4, "the .bak file is not read: {ev}");
    // beta (extra at 100), delta (backports), zeta and alpha 5.0
    // (experimental), lambda (-1), iota 1.3 (1.2* at 1001): newer versions
    // the priorities keep out.
    assert_eq!(ev["held_back_by_priority"], 6, "{ev}");

    // Each package's candidate, as `apt-cache policy` names it.
    let names: Vec<&str> = INSTALLED.iter().map(|(n, _, _)| *n).collect();
    let mut args = vec!["policy"];
    args.extend(&names);
    let policy = apt_on(&conf, &root, "apt-cache", &args);
    let mut apt_cand: Vec<String> = Vec::new();
    let mut cur = String::new();
    for l in policy.lines() {
        if !l.starts_with(' ') && l.ends_with(':') {
            cur = l.trim_end_matches(':').to_owned();
        } else if let Some(v) = l.trim().strip_prefix("Candidate: ") {
            apt_cand.push(format!("{cur} {v}"));
        }
    }
    apt_cand.sort();
    let mut our_cand: Vec<String> = INSTALLED
        .iter()
        .map(|(n, v, _)| {
            ours.iter()
                .find(|p| p.split(' ').next() == Some(*n))
                .cloned()
                .unwrap_or_else(|| format!("{n} {v}"))
        })
        .collect();
    our_cand.sort();
    assert_eq!(our_cand, apt_cand, "{policy}");

    // The package files' priorities, as `apt-cache policy` lists them:
    // `PRIO URI suite/comp arch Packages` then `release v=…,o=…,a=…`.
    let files = apt_on(&conf, &root, "apt-cache", &["policy"]);
    let mut apt_files: Vec<String> = Vec::new();
    let mut prio = String::new();
    for l in files.lines() {
        let t = l.trim();
        if let Some(rel) = t.strip_prefix("release ") {
            apt_files.push(format!("{prio} release {rel}"));
        } else if let Some(p) = t
            .split_whitespace()
            .next()
            .filter(|p| p.parse::<i32>().is_ok())
        {
            prio = p.to_owned();
        }
    }
    apt_files.sort();
    let mut our_files: Vec<String> = ev["package_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect();
    our_files.sort();
    assert_eq!(our_files, apt_files, "{files}");
    assert!(
        apt_files.contains(
            &"100 release v=1.0,o=vigil-test,a=extra,n=vigil-extra,l=vigil,c=main,b=amd64"
                .to_owned()
        ),
        "{apt_files:?}"
    );
}

/// A policy of one patch_level check taking its advisories from the reporter.
const REPORTER_FEED_POLICY: &str = "policy:\n  id: pl\n  version: \"1\"\n  title: pl\ncontrols:\n  - id: SP-6\n    title: patches\n    checks:\n      - id: patch\n        type: patch_level\n        with:\n          advisories: reporter\n          release: bookworm\n          require_unattended_upgrades: false\n          check_reboot: false\n          check_kernel: false\n          max_pending_security: 100000\n";

/// The reporter keeps one advisory feed: fetched from its configured URL
/// on schedule (a loopback server here), handed to agents with an ETag,
/// and used by the daemon's patch_level check.
#[test]
fn reporter_fetches_the_feed_and_agents_use_it() {
    let h = host(Some("advisories"));
    let server = FeedServer::start(h.root());
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("reporter.yaml");
    std::fs::write(
        &cfg,
        format!(
            "advisories:\n  url: http://127.0.0.1:{}/debsecan-bookworm\n  every: 1s\n",
            server.1
        ),
    )
    .unwrap();
    let r = Reporter::start(
        &data.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let token = r.enroll("feed-host", 60);
    let get = |etag: Option<&str>| {
        let mut q = r
            .client()
            .get(format!("{}/api/v1/advisories", r.base))
            .bearer_auth(&token);
        if let Some(e) = etag {
            q = q.header("If-None-Match", e);
        }
        q.send().unwrap()
    };
    wait_until(30, "the reporter fetched its feed", || {
        get(None).status() == 200
    });
    let resp = get(None);
    let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let text = resp.text().unwrap();
    assert!(text.starts_with("VERSION 1\n"), "inflated: {}", &text[..40]);
    assert_eq!(etag.len(), 66, "{etag}");
    assert_eq!(get(Some(&etag)).status(), 304);
    assert_eq!(get(Some("\"other\"")).status(), 200);
    // Without an agent token: refused.
    let anon = r
        .client()
        .get(format!("{}/api/v1/advisories", r.base))
        .send()
        .unwrap();
    assert_eq!(anon.status(), 401);

    // The daemon fetches it and its patch_level check reads it.
    let policy = h.write("/reporter-feed-policy.yaml", REPORTER_FEED_POLICY);
    let mut a = DaemonAgent::with_policy("feed-host", &r.base, &[], &policy, "");
    std::fs::create_dir_all(a.dir.path().join("state")).unwrap();
    std::fs::write(a.token_file(), &token).unwrap();
    a.start(&[]);
    let staff = r.add_user("sec", "admin");
    wait_until(60, "a report with the reporter's feed", || {
        r.newest_report(&staff, "feed-host").is_some_and(|rep| {
            rep["controls"][0]["checks"][0]["evidence"]["advisories"]["format"] == "debsecan"
        })
    });
    let kept = a.dir.path().join("state/checks/advisories/feed");
    assert_eq!(std::fs::read_to_string(kept).unwrap(), text);
    a.stop();
}

/// An admin uploads the feed; what the agent's parser refuses is refused;
/// no feed at all makes the check `error`, never a quiet pass.
#[test]
fn admin_uploads_the_feed_and_no_feed_is_an_error() {
    let h = host(Some("advisories"));
    let data = tempfile::tempdir().unwrap();
    let r = Reporter::start(&data.path().join("data"), false, None, &[]);
    let token = r.enroll("up-host", 60);
    let (s, body) = r.get_json(&token, "/api/v1/advisories");
    assert_eq!(s, 404, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("PUT /api/v1/advisories"),
        "{body}"
    );

    // The agent holds no copy: `advisories: reporter` is an error.
    let policy = h.write("/reporter-feed-policy.yaml", REPORTER_FEED_POLICY);
    let state = tempfile::tempdir().unwrap();
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
        "--root",
        h.root().to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    let rep = report_json(&o);
    let c = check_of(&rep, "SP-6", "patch");
    assert_eq!(c["status"], "error", "{c}");
    assert!(
        c["summary"]
            .as_str()
            .unwrap()
            .contains("advisories: reporter"),
        "{c}"
    );

    let put = |who: &str, body: Vec<u8>| {
        r.client()
            .put(format!("{}/api/v1/advisories", r.base))
            .bearer_auth(who)
            .body(body)
            .send()
            .unwrap()
    };
    let viewer = r.add_user("viewer", "auditor");
    let admin = r.add_user("admin", "admin");
    let feed = std::fs::read(h.root().join("tracker.json")).unwrap();
    assert_eq!(
        put(&token, feed.clone()).status(),
        401,
        "an agent token is not staff"
    );
    assert_eq!(put(&viewer, feed.clone()).status(), 403);
    let bad = put(&admin, b"VERSION 1\nCVE-1,,x\n".to_vec());
    assert_eq!(bad.status(), 400);
    assert!(bad.text().unwrap().contains("truncated"));
    let ok = put(&admin, feed.clone());
    assert_eq!(ok.status(), 200);
    let info: serde_json::Value = ok.json().unwrap();
    assert_eq!(info["format"], "security-tracker-json", "{info}");
    assert_eq!(info["changed"], true);
    assert_eq!(info["updated_by"], "admin");
    let again: serde_json::Value = put(&admin, feed.clone()).json().unwrap();
    assert_eq!(again["changed"], false);
    // Both routes are in the OpenAPI document.
    let (_, doc) = r.get_json(&admin, "/api/v1/openapi.json");
    let route = &doc["paths"]["/api/v1/advisories"];
    assert!(
        route["get"].is_object() && route["put"].is_object(),
        "{route}"
    );
    // The upload is in the audit log, which still verifies.
    let (s, v) = r.get_json(&admin, "/api/v1/audit/verify");
    assert_eq!((s, &v["ok"]), (200, &serde_json::json!(true)), "{v}");

    // The agent's copy, as the daemon keeps it, is what the check reads.
    let got = r
        .client()
        .get(format!("{}/api/v1/advisories", r.base))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(got.as_bytes(), &feed[..]);
    std::fs::create_dir_all(state.path().join("advisories")).unwrap();
    std::fs::write(state.path().join("advisories/feed"), &got).unwrap();
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--format",
        "json",
        "--root",
        h.root().to_str().unwrap(),
        "--state-dir",
        state.path().to_str().unwrap(),
    ]);
    let rep = report_json(&o);
    let c = check_of(&rep, "SP-6", "patch");
    assert_eq!(codes(c), ["open_advisory"], "{c}");
    assert_eq!(c["evidence"]["advisories"]["source"], "reporter");
}
