//! The host inventory (issue 24, item 8): a real `vigil-agent check` report
//! carries the OS (from the root's os-release), kernel, architecture,
//! uptime, boot time, CPU and memory; the reporter stores it with the report
//! and the staff host page shows it, checked in headless Chromium with a
//! screenshot kept under `target/screenshots/inventory/`.

use std::process::Command;

use serde_json::Value;
use vigil_tests::*;

/// `vigil-agent check` of papyrs.yaml's SP-9 (an attestation: no host
/// files needed) on a root whose os-release names a made-up OS.
fn agent_report(root: &FixtureHost, host: &str) -> Value {
    root.write(
        "etc/os-release",
        "PRETTY_NAME=\"Testix 7.1 (lab)\"\nNAME=\"Testix\"\nVERSION_ID=\"7.1\"\nID=testix\n",
    );
    let policy = workspace().join("policies/papyrs.yaml");
    let o = run_agent(&[
        "check",
        "--policy",
        policy.to_str().unwrap(),
        "--control",
        "SP-9",
        "--host",
        host,
        "--format",
        "json",
        "--root",
        root.root().to_str().unwrap(),
        "--state-dir",
        root.root().join("var/lib/vigil").to_str().unwrap(),
    ]);
    report_json(&o)
}

fn proc_text(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[test]
fn a_real_report_carries_the_inventory() {
    let root = FixtureHost::new();
    let r = agent_report(&root, "inv-1");
    let inv = &r["inventory"];
    assert_eq!(inv["os_name"], "Testix", "{inv}");
    assert_eq!(inv["os_version"], "7.1");
    assert_eq!(inv["os_pretty_name"], "Testix 7.1 (lab)");
    assert_eq!(inv["root"], root.root().to_str().unwrap());
    assert_eq!(inv["kernel"], proc_text("/proc/sys/kernel/osrelease"));
    let uname_m = Command::new("uname").arg("-m").output().unwrap();
    assert_eq!(inv["arch"], stdout(&uname_m).trim());
    let cpus = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count() as u64;
    assert_eq!(inv["cpu_count"].as_u64(), Some(cpus), "{inv}");
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|m| m.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        });
    if let Some(m) = model {
        assert_eq!(inv["cpu_model"], m.as_str());
    }
    let kib: u64 = proc_text("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|l| l.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    assert_eq!(inv["memory_bytes"].as_u64(), Some(kib * 1024));
    // Uptime and boot time agree with /proc/uptime and each other.
    let up: f64 = proc_text("/proc/uptime")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let got = inv["uptime_seconds"].as_u64().unwrap() as f64;
    assert!((up - got).abs() < 120.0, "uptime {got} vs /proc {up}");
    let boot: chrono::DateTime<chrono::Utc> = inv["boot_time"].as_str().unwrap().parse().unwrap();
    let expected = chrono::Utc::now() - chrono::Duration::seconds(up as i64);
    assert!(
        (boot - expected).num_seconds().abs() < 120,
        "{boot} vs {expected}"
    );
}

fn login_link(r: &Reporter, staff: &str) -> String {
    let v: Value = r
        .client()
        .post(format!("{}/api/v1/login-links", r.base))
        .bearer_auth(staff)
        .send()
        .unwrap()
        .json()
        .unwrap();
    v["path"].as_str().unwrap().to_owned()
}

#[test]
fn the_host_page_shows_the_inventory() {
    require_tool("chromium", "chromium");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("reporter.yaml");
    let policy = workspace().join("policies/papyrs.yaml");
    std::fs::write(&cfg, format!("policy: {}\n", policy.display())).unwrap();
    let r = Reporter::start(
        &dir.path().join("data"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let staff = r.add_user("alice", "admin");
    let token = r.enroll("inv-1", 86_400);
    let root = FixtureHost::new();
    let report = agent_report(&root, "inv-1");
    let kernel = report["inventory"]["kernel"].as_str().unwrap().to_owned();
    let resp = r
        .client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(&token)
        .json(&report)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{}", resp.text().unwrap());
    // Stored as sent: the API hands the inventory back.
    let stored = r.newest_report(&staff, "inv-1").unwrap();
    assert_eq!(stored["inventory"], report["inventory"], "{stored}");

    let page = r
        .client()
        .get(format!("{}/reports/hosts/inv-1", r.base))
        .bearer_auth(&staff)
        .send()
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let page = page.text().unwrap();
    for want in [
        "<h2>Inventory</h2>",
        "<th>Operating system</th><td>Testix 7.1 (lab)</td>",
        &format!("<th>Kernel</th><td>{kernel}</td>"),
        "<th>Memory</th>",
        "<th>Uptime</th>",
        "<th>Booted</th>",
    ] {
        assert!(page.contains(want), "the host page lacks `{want}`:\n{page}");
    }

    // The same page in a real browser, with a screenshot to look at.
    let shots = workspace().join("target/screenshots/inventory");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let next = "?next=%2Freports%2Fhosts%2Finv-1";
    let dom = chromium(
        profile.path(),
        &["--dump-dom"],
        &format!("{}{}{next}", r.base, login_link(&r, &staff)),
    );
    assert!(
        dom.contains("Inventory") && dom.contains("Testix 7.1 (lab)"),
        "{dom}"
    );
    assert!(dom.contains(&kernel), "{dom}");
    let png = shots.join("host-inv-1.png");
    let _ = std::fs::remove_file(&png);
    chromium(
        profile.path(),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1280,900",
        ],
        &format!("{}{}{next}", r.base, login_link(&r, &staff)),
    );
    let size = std::fs::metadata(&png).map(|m| m.len()).unwrap_or(0);
    assert!(
        size > 10_000,
        "screenshot {} is {size} bytes",
        png.display()
    );

    // A host whose reports carry no inventory (an older agent) has no table.
    let old = r.enroll("old-1", 86_400);
    let mut older = agent_report(&root, "old-1");
    older.as_object_mut().unwrap().remove("inventory");
    older["report_id"] = Value::String(uuid::Uuid::new_v4().to_string());
    let resp = r
        .client()
        .post(format!("{}/api/v1/reports", r.base))
        .bearer_auth(&old)
        .json(&older)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let page = r
        .client()
        .get(format!("{}/reports/hosts/old-1", r.base))
        .bearer_auth(&staff)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(
        page.contains("Host old-1") && !page.contains("Inventory"),
        "{page}"
    );
}
