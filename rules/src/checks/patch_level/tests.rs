use super::*;
use crate::verdict::CheckStatus;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn ctx() -> JudgeCtx {
    JudgeCtx {
        now: now(),
        host: "t".into(),
    }
}

fn params() -> Params {
    serde_json::from_str("{}").unwrap()
}

fn pkg(name: &str, version: &str, source: &str) -> Installed {
    Installed {
        name: name.into(),
        arch: "amd64".into(),
        version: version.into(),
        source: source.into(),
        source_version: version.into(),
    }
}

fn avail(name: &str, version: &str, security: bool) -> Available {
    Available {
        name: name.into(),
        arch: "amd64".into(),
        version: version.into(),
        security,
        origin: if security {
            "Debian bookworm-security"
        } else {
            "Debian bookworm"
        }
        .into(),
        file: None,
        source: String::new(),
        source_version: String::new(),
    }
}

fn healthy() -> Facts {
    let mut periodic = BTreeMap::new();
    periodic.insert("Unattended-Upgrade".into(), "1".into());
    periodic.insert("Update-Package-Lists".into(), "1".into());
    Facts {
        installed: vec![
            pkg("curl", "7.88.1-10+deb12u8", "curl"),
            pkg("libcurl4", "7.88.1-10+deb12u8", "curl"),
            pkg("unattended-upgrades", "2.9.1+nmu3", "unattended-upgrades"),
            pkg(
                "linux-image-6.1.0-26-amd64",
                "6.1.112-1",
                "linux-signed-amd64",
            ),
        ],
        available: vec![avail("curl", "7.88.1-10+deb12u8", false)],
        indices: 3,
        apt_updated: Some(now() - chrono::Duration::hours(5)),
        apt_updated_from: "update-success-stamp".into(),
        unattended: Unattended {
            installed: true,
            periodic,
            last_run: Some(now() - chrono::Duration::hours(20)),
        },
        reboot_required: None,
        running_kernel: Some("6.1.0-26-amd64".into()),
        advisories: None,
        errors: vec![],
        ..Facts::default()
    }
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.findings.iter().map(|f| f.code.as_str()).collect()
}

#[test]
fn healthy_host_passes_and_says_what_it_did_not_check() {
    let v = crate::checks::judged::<PatchLevel>(&params(), &healthy(), &ctx());
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    assert!(
        v.summary.contains("not checked: advisories"),
        "{}",
        v.summary
    );
}

#[test]
fn pending_security_update_by_origin() {
    let mut f = healthy();
    f.available.push(avail("curl", "7.88.1-10+deb12u12", true));
    f.available
        .push(avail("libcurl4", "7.88.1-10+deb12u9", false));
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(codes(&v), vec!["pending_security_update"]);
    assert!(v.findings[0]
        .message
        .contains("7.88.1-10+deb12u12 available from Debian bookworm-security"));
    let mut p = params();
    p.max_pending_security = 1;
    let v = crate::checks::judged::<PatchLevel>(&p, &f, &ctx());
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    p.max_pending = Some(1);
    assert_eq!(
        codes(&crate::checks::judged::<PatchLevel>(&p, &f, &ctx())),
        vec!["pending_security_update", "pending_updates"]
    );
}

#[test]
fn stale_apt_unattended_reboot_kernel() {
    let mut f = healthy();
    f.apt_updated = Some(now() - chrono::Duration::days(9));
    f.unattended
        .periodic
        .insert("Unattended-Upgrade".into(), "0".into());
    f.reboot_required = Some(vec!["linux-image-6.1.0-27-amd64".into()]);
    f.installed.push(pkg(
        "linux-image-6.1.0-27-amd64",
        "6.1.115-1",
        "linux-signed-amd64",
    ));
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(
        codes(&v),
        vec![
            "apt_stale",
            "unattended_upgrades_off",
            "reboot_required",
            "kernel_outdated"
        ]
    );
    assert!(v.findings[2].message.contains("linux-image-6.1.0-27-amd64"));
}

#[test]
fn open_advisories_from_a_feed() {
    let mut f = healthy();
    let feed = "VERSION 1\nCVE-2024-0001,,curl bug\nCVE-2024-0002,,old\nCVE-2024-0003,,minor\n\ncurl,0,SH F,7.88.1-10+deb12u9,\ncurl,1,SM F,7.88.1-10+deb12u5,\ncurl,2,SL  ,,\n\n";
    f.advisories = Some(Ok(AdvisoryFeed {
        source: "feed".into(),
        format: "debsecan".into(),
        release: "bookworm".into(),
        advisories: feeds::debsecan(feed, &|_| true).unwrap(),
    }));
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(codes(&v), vec!["open_advisory"]);
    let m = &v.findings[0].message;
    assert!(
        m.contains("CVE-2024-0001")
            && m.contains("7.88.1-10+deb12u8")
            && m.contains("fixed in 7.88.1-10+deb12u9"),
        "{m}"
    );
    assert_eq!(v.findings[0].severity, Severity::High);
}

#[test]
fn unreadable_inputs_are_errors() {
    let mut f = healthy();
    f.errors.push("`/var/lib/dpkg/status` line 4: bad".into());
    assert_eq!(
        crate::checks::judged::<PatchLevel>(&params(), &f, &ctx()).status,
        CheckStatus::Error
    );
    let mut f = healthy();
    f.advisories = Some(Err("feed is truncated".into()));
    assert_eq!(
        crate::checks::judged::<PatchLevel>(&params(), &f, &ctx()).status,
        CheckStatus::Error
    );
    let mut f = healthy();
    f.installed.clear();
    assert_eq!(
        crate::checks::judged::<PatchLevel>(&params(), &f, &ctx()).status,
        CheckStatus::Error
    );
}

#[test]
fn no_indices_means_stale_not_pass() {
    let mut f = healthy();
    f.indices = 0;
    assert_eq!(
        codes(&crate::checks::judged::<PatchLevel>(&params(), &f, &ctx())),
        vec!["apt_stale"]
    );
}

#[test]
fn candidates_follow_apt_pinning() {
    let mut f = healthy();
    let stable = PackageFile {
        origin: "Debian".into(),
        suite: "stable".into(),
        codename: "bookworm".into(),
        component: "main".into(),
        arch: "amd64".into(),
        ..PackageFile::default()
    };
    let bpo = PackageFile {
        suite: "stable-backports".into(),
        codename: "bookworm-backports".into(),
        not_automatic: true,
        but_automatic_upgrades: true,
        ..stable.clone()
    };
    f.files = vec![stable, bpo];
    let from = |mut a: Available, file: usize| {
        a.file = Some(file);
        a
    };
    f.available = vec![
        from(avail("curl", "7.88.1-10+deb12u8", false), 0),
        from(avail("curl", "8.14.1-2~bpo12+1", false), 1),
        from(avail("libcurl4", "7.88.1-10+deb12u9", false), 0),
    ];
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    assert_eq!(v.evidence["pending"], 1, "{}", v.evidence);
    assert_eq!(
        v.evidence["pending_list"][0],
        "libcurl4 7.88.1-10+deb12u8 -> 7.88.1-10+deb12u9 (Debian bookworm)"
    );
    assert_eq!(v.evidence["held_back_by_priority"], 1);
    // A specific pin raising backports for curl makes it a candidate.
    let (pins, _) = apt_policy::preferences(
        "Package: curl\nPin: release a=stable-backports\nPin-Priority: 500\n",
        "/etc/apt/preferences",
    )
    .unwrap();
    f.pins = pins;
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(v.evidence["pending"], 2, "{}", v.evidence);
    assert_eq!(v.evidence["held_back_by_priority"], 0);
    // An unknown default release is an error, as apt refuses it.
    f.default_release = Some("trixie".into());
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(v.status, CheckStatus::Error);
    assert!(
        v.summary.contains("Default-Release `trixie`"),
        "{}",
        v.summary
    );
}

#[test]
fn a_security_fix_kept_out_by_a_pin_is_a_finding() {
    let mut f = healthy();
    let sec = PackageFile {
        origin: "Debian".into(),
        label: "Debian-Security".into(),
        suite: "stable-security".into(),
        codename: "bookworm-security".into(),
        ..PackageFile::default()
    };
    f.files = vec![sec];
    let mut a = avail("curl", "7.88.1-10+deb12u12", true);
    a.file = Some(0);
    f.available = vec![a];
    let (pins, _) = apt_policy::preferences(
        "Package: curl\nPin: release l=Debian-Security\nPin-Priority: -1\n",
        "/etc/apt/preferences.d/hold",
    )
    .unwrap();
    f.pins = pins;
    let v = crate::checks::judged::<PatchLevel>(&params(), &f, &ctx());
    assert_eq!(codes(&v), vec!["security_update_held_back"], "{v:?}");
    assert!(
        v.findings[0].message.contains("7.88.1-10+deb12u12"),
        "{}",
        v.findings[0].message
    );
    assert_eq!(v.evidence["pending"], 0);
}
