//! The judge, parsers and location rules of `backup_freshness`.

use super::*;
use crate::verdict::CheckStatus;
use chrono::{DateTime, Utc};

fn utc() -> Zone {
    parse_zone("UTC").unwrap()
}

fn ctx() -> JudgeCtx {
    JudgeCtx {
        now: "2026-11-25T08:00:00Z".parse().unwrap(),
        host: "h".into(),
    }
}

fn params(yaml: &str) -> Params {
    crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
}

fn source(loc: &str, site: &str, times: &[&str]) -> SourceFacts {
    SourceFacts {
        kind: Kind::Restic,
        location: loc.into(),
        site: site.into(),
        local: false,
        mount: None,
        sets: times
            .iter()
            .enumerate()
            .map(|(i, t)| BackupSet {
                id: format!("s{i}"),
                time: t.parse().unwrap(),
                host: None,
            })
            .collect(),
        encryption_mode: Some("repokey".into()),
        required_paths: vec![],
        data_check: None,
        checksum: None,
        cached_listing: None,
        error: None,
    }
}

fn codes(v: &Verdict) -> Vec<&str> {
    v.findings.iter().map(|f| f.code.as_str()).collect()
}

const TWO: &str = "sources: [{kind: restic, location: /a}, {kind: restic, location: 'sftp:b@h:/r'}]\nmin_sets: 2\nmin_locations: 2";

#[test]
fn restic_fixture_parses() {
    let json = include_str!("../../../../tests/data/backup/restic_snapshots/snapshots.json");
    let sets = parse_restic_snapshots(json).unwrap();
    assert_eq!(sets.len(), 2);
    assert_eq!(
        sets[0].time,
        "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(sets[1].id, "4c5b8f12");
    assert_eq!(sets[1].host.as_deref(), Some("papyrs"));
    assert!(parse_restic_snapshots("Fatal: wrong password").is_err());
}

#[test]
fn borg_times_take_the_policy_zone() {
    let json = include_str!("../../../../tests/data/backup/borg_list/list.json");
    let z = parse_zone("Europe/Amsterdam").unwrap();
    let sets = parse_borg_list(json, z).unwrap();
    // 03:00 in Amsterdam in November is 02:00 UTC.
    assert_eq!(
        sets[0].time,
        "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let sets = parse_borg_list(json, utc()).unwrap();
    assert_eq!(
        sets[0].time,
        "2026-11-24T03:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    let info = include_str!("../../../../tests/data/backup/borg_list/info.json");
    assert_eq!(parse_borg_encryption(info).unwrap(), "repokey-blake2");
    let z = parse_zone("+01:00").unwrap();
    assert_eq!(
        parse_time("2026-11-24T03:00:00", z).unwrap(),
        "2026-11-24T02:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert!(parse_zone("Mars/Olympus").is_err());
}

#[test]
fn dated_names_and_manifests() {
    let z = utc();
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    assert_eq!(
        set_time_from_name("site-2026-11-24T02-30-00.tar.gz", z),
        Some(t("2026-11-24T02:30:00Z"))
    );
    assert_eq!(
        set_time_from_name("2026-11-24_023000", z),
        Some(t("2026-11-24T02:30:00Z"))
    );
    assert_eq!(
        set_time_from_name("backup-20261124-0230", z),
        Some(t("2026-11-24T02:30:00Z"))
    );
    assert_eq!(
        set_time_from_name("20261124", z),
        Some(t("2026-11-24T00:00:00Z"))
    );
    assert_eq!(
        set_time_from_name("2026-11-24", z),
        Some(t("2026-11-24T00:00:00Z"))
    );
    assert_eq!(set_time_from_name("lost+found", z), None);
    assert_eq!(set_time_from_name("v12345678901", z), None);
    let m = include_str!("../../../../tests/data/backup/manifest/MANIFEST");
    let entries = parse_manifest(m, z).unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[1].file, "sites 2026-11-24.tar");
    assert!(parse_manifest("2026-11-24 nothex f", z).is_err());
}

#[test]
fn restic_ls_lines() {
    assert_eq!(
        restic_ls_path(r#"{"name":"www","type":"dir","path":"/srv/www","struct_type":"node"}"#),
        Some("/srv/www".into())
    );
    assert_eq!(
        restic_ls_path(r#"{"time":"x","struct_type":"snapshot"}"#),
        None
    );
    assert!(path_covers("/srv/www/a", "/srv/www"));
    assert!(path_covers("/srv/www", "/srv/www/"));
    assert!(!path_covers("/srv/www2", "/srv/www"));
}

#[test]
fn transport_by_scheme_and_mount() {
    let t = |k, l| judge_transport(k, l, None);
    assert!(matches!(
        t(Kind::Restic, "sftp:backup@b1:/restic"),
        Transport::Encrypted { .. }
    ));
    assert!(matches!(
        t(Kind::Restic, "rest:https://b1:8000/"),
        Transport::Encrypted { .. }
    ));
    assert!(matches!(
        t(Kind::Restic, "s3:https://s3.example/b"),
        Transport::Encrypted { .. }
    ));
    assert!(matches!(
        t(Kind::Restic, "s3:s3.amazonaws.com/b"),
        Transport::Encrypted { .. }
    ));
    assert!(matches!(
        t(Kind::Restic, "rest:http://b1:8000/"),
        Transport::Plain { .. }
    ));
    assert!(matches!(
        t(Kind::Directory, "ftp://b1/x"),
        Transport::Plain { .. }
    ));
    assert!(matches!(
        t(Kind::Directory, "rsync://b1/x"),
        Transport::Plain { .. }
    ));
    assert!(matches!(
        t(Kind::Borg, "ssh://borg@b1/./repo"),
        Transport::Encrypted { .. }
    ));
    assert!(matches!(
        t(Kind::Borg, "borg@b1:repo"),
        Transport::Encrypted { .. }
    ));
    assert_eq!(t(Kind::Restic, "/srv/backup/restic"), Transport::Local);
    let nfs = Mount {
        mount_point: "/mnt/nas".into(),
        fs_type: "nfs4".into(),
        source: "nas:/export".into(),
        options: "rw,vers=4.2,sec=sys".into(),
    };
    assert!(matches!(
        judge_transport(Kind::Restic, "/mnt/nas/r", Some(&nfs)),
        Transport::Plain { .. }
    ));
    let sealed = Mount {
        options: "rw,sec=krb5p".into(),
        ..nfs
    };
    assert!(matches!(
        judge_transport(Kind::Restic, "/mnt/nas/r", Some(&sealed)),
        Transport::Encrypted { .. }
    ));
    assert_eq!(
        default_site(Kind::Restic, "sftp:backup@backup-1.papyrs.internal:/restic"),
        "backup-1.papyrs.internal"
    );
    assert_eq!(default_site(Kind::Restic, "/srv/backup/r"), "local");
    assert_eq!(
        default_site(Kind::Restic, "rest:https://u:p@b2.example:8000/r"),
        "b2.example"
    );
    assert_eq!(default_site(Kind::Borg, "ssh://borg@b3:22/./repo"), "b3");
    assert_eq!(
        redact_location("rest:https://u:s3cret@h:8000/r"),
        "rest:https://u:[REDACTED]@h:8000/r"
    );
}

#[test]
fn fresh_everywhere_passes() {
    let p = params(TWO);
    let facts = Facts {
        host_names: vec![],
        sources: vec![
            source(
                "/a",
                "local",
                &["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"],
            ),
            source(
                "sftp:b@b1:/r",
                "b1",
                &["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"],
            ),
        ],
    };
    let v = crate::checks::judged::<BackupFreshness>(&p, &facts, &ctx());
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    assert_eq!(v.summary, "2 hosts with fresh backups, newest 6.0 h old");
    assert_eq!(v.evidence["fresh_hosts"], serde_json::json!(["b1", "h"]));
    assert_eq!(v.evidence["sources"][0]["host"], "h");
}

#[test]
fn stale_few_and_one_location_fail_with_details() {
    let p = params(TWO);
    let facts = Facts {
        host_names: vec![],
        sources: vec![
            source("/a", "local", &["2026-11-25T02:00:00Z"]),
            source(
                "sftp:b@b1:/r",
                "b1",
                &["2026-11-20T02:00:00Z", "2026-11-21T02:00:00Z"],
            ),
        ],
    };
    let v = crate::checks::judged::<BackupFreshness>(&p, &facts, &ctx());
    assert_eq!(v.status, CheckStatus::Fail);
    assert_eq!(codes(&v), ["too_few_sets", "stale", "too_few_locations"]);
    assert!(
        v.findings[1].message.contains("4.2 days old"),
        "{}",
        v.findings[1].message
    );
    assert!(v.findings[1].message.contains("26 h"));
    assert!(v.findings[0]
        .message
        .contains("keeps 1 set, the policy asks for at least 2"));
}

#[test]
fn plain_transport_fails_unless_local() {
    let p = params("sources: [{kind: restic, location: 'rest:http://b:8000/'}]");
    let mut s = source("rest:http://b:8000/", "rest:b", &["2026-11-25T02:00:00Z"]);
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![s.clone()],
        },
        &ctx(),
    );
    assert_eq!(codes(&v), ["unencrypted_transport"]);
    s.local = true;
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![s],
        },
        &ctx(),
    );
    assert_eq!(v.status, CheckStatus::Pass);
}

#[test]
fn unreadable_source_is_an_error() {
    let p = params(TWO);
    let mut bad = source("/a", "local", &[]);
    bad.error = Some("wrong password or no key found".into());
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![bad],
        },
        &ctx(),
    );
    assert_eq!(v.status, CheckStatus::Error);
    assert!(v.summary.contains("wrong password"));
}

#[test]
fn unencrypted_borg_and_missing_paths_fail() {
    let p = params("sources: [{kind: borg, location: /b}]\nrequired_paths: [/srv/www]");
    let mut s = source("/b", "local", &["2026-11-25T02:00:00Z"]);
    s.kind = Kind::Borg;
    s.encryption_mode = Some("none".into());
    s.required_paths = vec![PathPresence {
        path: "/srv/www".into(),
        present: false,
    }];
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![s],
        },
        &ctx(),
    );
    assert_eq!(
        codes(&v),
        [
            "unencrypted_repository",
            "missing_path",
            "too_few_locations"
        ]
    );
}

/// Issue 24, BK-2: `min_locations` counts hosts. A path is this host,
/// a URL its host, a name of this host (short or dotted, loopback, one of
/// `host_names`) is this host, a path on a network mount is the server's.
#[test]
fn locations_are_hosts_not_paths() {
    let p = params(TWO);
    let ctx = JudgeCtx {
        now: "2026-11-25T08:00:00Z".parse().unwrap(),
        host: "backup-1".into(),
    };
    let times = ["2026-11-24T02:00:00Z", "2026-11-25T02:00:00Z"];
    let remote = |loc: &str| source(loc, &default_site(Kind::Restic, loc), &times);
    let judge = |sources: Vec<SourceFacts>, names: &[&str]| {
        crate::checks::judged::<BackupFreshness>(
            &p,
            &Facts {
                host_names: names.iter().map(|n| (*n).to_owned()).collect(),
                sources,
            },
            &ctx,
        )
    };
    // The papyrs layout before issue 24: sftp to the backup server itself.
    let v = judge(
        vec![
            source("/srv/backup/restic-local", "local", &times),
            remote("sftp:backup@backup-1.papyrs.internal:/restic"),
        ],
        &[],
    );
    assert_eq!(codes(&v), ["too_few_locations"], "{v:?}");
    let m = &v.findings[0].message;
    assert!(
        m.starts_with(
            "1 distinct host holds a fresh backup (backup-1), the policy asks for at least 2"
        ),
        "{m}"
    );
    assert!(
        m.contains("`/srv/backup/restic-local` on backup-1, `sftp:backup@backup-1.papyrs.internal:/restic` on backup-1"),
        "{m}"
    );
    assert_eq!(v.evidence["sources"][1]["host"], "backup-1");
    // The offline host is another host.
    let v = judge(
        vec![
            source("/srv/backup/restic-local", "local", &times),
            remote("sftp:backup@offline-1.papyrs.internal:/srv/backup/restic-offline"),
        ],
        &[],
    );
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    assert_eq!(
        v.evidence["fresh_hosts"],
        serde_json::json!(["backup-1", "offline-1.papyrs.internal"])
    );
    // Loopback and the host's other names are this host.
    for (loc, names) in [
        ("sftp:backup@localhost:/r", &[][..]),
        ("sftp:backup@127.0.1.1:/r", &[][..]),
        ("rest:https://[::1]:8000/r", &[][..]),
        ("sftp:backup@bk.example.org:/r", &["bk.example.org"][..]),
        ("sftp:backup@BACKUP-1.:/r", &[][..]),
    ] {
        let v = judge(vec![source("/a", "local", &times), remote(loc)], names);
        assert_eq!(codes(&v), ["too_few_locations"], "{loc}: {v:?}");
    }
    // Two names of one remote host count once.
    let v = judge(
        vec![
            remote("sftp:b@b1:/r"),
            remote("rest:https://B1.example.:8000/"),
        ],
        &[],
    );
    assert_eq!(codes(&v), ["too_few_locations"], "{v:?}");
    // A path on an NFS mount is on the NFS server.
    let mut nfs = source("/mnt/nas/r", "local", &times);
    nfs.local = true;
    nfs.mount = Some(Mount {
        mount_point: "/mnt/nas".into(),
        fs_type: "nfs4".into(),
        source: "nas-1.example:/export".into(),
        options: "rw,sec=sys".into(),
    });
    let v = judge(vec![source("/a", "local", &times), nfs], &[]);
    assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
    assert_eq!(
        v.evidence["fresh_hosts"],
        serde_json::json!(["backup-1", "nas-1.example"])
    );
    // Facts of older agents (no host_names) still judge.
    let old: Facts = serde_json::from_value(serde_json::json!({"sources": []})).unwrap();
    assert!(old.host_names.is_empty());
}

#[test]
fn host_names_and_mount_servers() {
    assert!(same_host("backup-1", "backup-1.papyrs.internal"));
    assert!(same_host(
        "Backup-1.Papyrs.Internal.",
        "backup-1.papyrs.internal"
    ));
    assert!(!same_host("backup-1.a.example", "backup-1.b.example"));
    assert!(!same_host("backup-1", "backup-2.papyrs.internal"));
    assert!(!same_host("10", "10.0.0.1"));
    let this = ThisHost::new("web-1", &["web-1.example".into()]);
    assert!(this.is("WEB-1") && this.is("web-1.example") && this.is("localhost"));
    assert!(this.is("127.0.0.1") && this.is("::1") && !this.is("web-2"));
    let m = |fs: &str, src: &str| Mount {
        mount_point: "/mnt".into(),
        fs_type: fs.into(),
        source: src.into(),
        options: String::new(),
    };
    assert_eq!(
        mount_server(&m("nfs4", "nas-1:/export")).as_deref(),
        Some("nas-1")
    );
    assert_eq!(
        mount_server(&m("cifs", "//NAS-2/share")).as_deref(),
        Some("nas-2")
    );
    assert_eq!(
        mount_server(&m("fuse.sshfs", "u@h3.example:/x")).as_deref(),
        Some("h3.example")
    );
    assert_eq!(
        mount_server(&m("ceph", "mon1:6789,mon2:6789:/")).as_deref(),
        Some("mon1")
    );
    assert_eq!(
        mount_server(&m("nfs", "[fd00::5]:/e")).as_deref(),
        Some("fd00::5")
    );
    assert_eq!(mount_server(&m("ext4", "/dev/sda1")), None);
    assert_eq!(
        default_site(Kind::Restic, "s3:s3.amazonaws.com/bucket"),
        "s3.amazonaws.com"
    );
    assert_eq!(default_site(Kind::Restic, "b2:bucket:path"), "b2");
    assert_eq!(
        default_site(Kind::Restic, "rclone:remote:path"),
        "rclone:remote"
    );
    assert_eq!(default_site(Kind::Directory, "file:///srv/x"), "local");
    assert_eq!(
        loopback_host_names(
            "127.0.0.1\tlocalhost\n127.0.1.1 Backup-1.papyrs.internal backup-1 # me\n10.0.0.5 offline-1\n::1 ip6-localhost ip6-loopback\nbad line\n"
        ),
        ["localhost", "backup-1.papyrs.internal", "backup-1", "ip6-localhost", "ip6-loopback"]
    );
}

#[test]
fn validation_catches_mistakes() {
    let p = params("sources: [{kind: directory, location: rel, password_file: /x}]\nmin_locations: 3\ntime_zone: Nowhere/Land");
    let problems = BackupFreshness::validate(&p);
    assert_eq!(problems.len(), 4, "{problems:?}");
}

/// A listing from the agent's cache is judged against now like any other
/// (a set that was fresh when cached goes stale) and says so in evidence.
#[test]
fn cached_listing_is_judged_against_now_and_shown() {
    let p = params("sources: [{kind: restic, location: /a}]");
    let mut s = source("/a", "local", &["2026-11-24T02:00:00Z"]);
    s.cached_listing = Some(CachedListing {
        listed_at: "2026-11-24T03:00:00Z".parse().unwrap(),
        unchanged_since: "2026-11-24T02:05:00Z".parse().unwrap(),
        required_paths_cached: false,
    });
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![s],
        },
        &ctx(),
    );
    assert_eq!(codes(&v), ["stale", "too_few_locations"]);
    let l = &v.evidence["sources"][0]["listing"];
    assert_eq!(l["from_cache"], true);
    assert_eq!(l["unchanged_since"], "2026-11-24T02:05:00Z");
    let plain = source("/a", "local", &["2026-11-25T02:00:00Z"]);
    let v = crate::checks::judged::<BackupFreshness>(
        &p,
        &Facts {
            host_names: vec![],
            sources: vec![plain],
        },
        &ctx(),
    );
    assert_eq!(v.status, CheckStatus::Pass);
    assert!(v.evidence["sources"][0].get("listing").is_none());
}
