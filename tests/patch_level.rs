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
