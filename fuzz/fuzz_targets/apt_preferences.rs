//! apt preferences files (`/etc/apt/preferences`, `preferences.d/*`) through
//! `apt_policy::preferences`, then the pins it accepts through `AptPolicy`
//! (general pins set file priorities; specific pins with globs, `/regex/`,
//! `src:` and `:ARCH` names choose a candidate) against three fixed package
//! files and two versions of one package. Input: the preferences text.
//! Properties: no panic, no hang; parsing is deterministic; every accepted
//! pin has a non-zero priority in apt's range (or `never`, only for
//! `Package: *`), a known kind and a line of the input; a chosen candidate
//! is one of the versions and has a priority above 0.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_rules::checks::patch_level::apt_policy::{
    preferences, AptPolicy, PackageFile, PackageRef, Version, NEVER,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = preferences(text, "fuzz");
    assert_eq!(parsed, preferences(text, "fuzz"), "not deterministic");
    let Ok((pins, _warnings)) = parsed else {
        return;
    };
    let lines = text.lines().count().max(1);
    for p in &pins {
        assert!(p.priority != 0, "accepted priority 0: {p:?}");
        assert!(
            p.priority == NEVER || (NEVER < p.priority && p.priority <= i32::from(i16::MAX)),
            "priority out of range: {p:?}"
        );
        assert!(
            p.priority != NEVER || p.general(),
            "`never` on a specific pin: {p:?}"
        );
        assert!(
            matches!(
                p.kind.as_str(),
                "version" | "source-version" | "release" | "origin"
            ),
            "unknown kind accepted: {p:?}"
        );
        assert!(p.line >= 1 && p.line <= lines, "line {} of {lines}", p.line);
    }
    let files = [
        PackageFile {
            name: "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages".into(),
            origin: "Debian".into(),
            label: "Debian".into(),
            suite: "stable".into(),
            codename: "bookworm".into(),
            version: "12.8".into(),
            site: "deb.debian.org".into(),
            component: "main".into(),
            arch: "amd64".into(),
            ..PackageFile::default()
        },
        PackageFile {
            name: "deb.debian.org_debian_dists_bookworm-backports_main_binary-amd64_Packages"
                .into(),
            origin: "Debian Backports".into(),
            label: "Debian Backports".into(),
            suite: "stable-backports".into(),
            codename: "bookworm-backports".into(),
            not_automatic: true,
            but_automatic_upgrades: true,
            site: "deb.debian.org".into(),
            component: "main".into(),
            arch: "all".into(),
            ..PackageFile::default()
        },
        PackageFile::dpkg_status(),
    ];
    let Ok(policy) = AptPolicy::new(&files, &pins, None) else {
        return;
    };
    let versions = [
        Version {
            version: "1.2.3-1",
            source: "nodejs",
            source_version: "1.2.3-1",
            files: vec![0, 2],
        },
        Version {
            version: "1.4~bpo12+1",
            source: "nodejs",
            source_version: "1.4~bpo12+1",
            files: vec![1],
        },
    ];
    for name in ["nodejs", "libnode108"] {
        let pkg = PackageRef {
            name,
            arch: "amd64",
            native: Some("amd64"),
        };
        if let Some(i) = policy.candidate(&pkg, &versions, Some("1.2.3-1")) {
            let v = versions.get(i).expect("candidate out of range");
            assert!(policy.priority(&pkg, v) > 0, "candidate with priority <= 0");
        }
    }
});
