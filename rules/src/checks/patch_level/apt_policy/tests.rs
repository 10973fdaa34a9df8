use super::*;

fn file(suite: &str, codename: &str) -> PackageFile {
    PackageFile {
        name: format!("{suite}_Packages"),
        origin: "Debian".into(),
        label: "Debian".into(),
        suite: suite.into(),
        codename: codename.into(),
        version: "12.8".into(),
        site: "deb.debian.org".into(),
        component: "main".into(),
        arch: "amd64".into(),
        ..PackageFile::default()
    }
}

fn backports() -> PackageFile {
    PackageFile {
        not_automatic: true,
        but_automatic_upgrades: true,
        label: "Debian Backports".into(),
        origin: "Debian Backports".into(),
        version: String::new(),
        ..file("stable-backports", "bookworm-backports")
    }
}

fn pins(text: &str) -> Vec<Pin> {
    let (p, w) = preferences(text, "prefs").unwrap();
    assert!(w.is_empty(), "{w:?}");
    p
}

const PKG: PackageRef<'static> = PackageRef {
    name: "curl",
    arch: "amd64",
    native: Some("amd64"),
};

fn ver(v: &'static str, files: &[usize]) -> Version<'static> {
    Version {
        version: v,
        source: "curl",
        source_version: v,
        files: files.to_vec(),
    }
}

#[test]
fn preferences_stanzas_and_errors() {
    let text = "# backports\nExplanation: keep it low\nPackage: *\nPin: release a=stable-backports\nPin-Priority: 100\n\nPackage: curl libcurl4\nPin: version 7.88*\nPin-Priority: 1001\n\nPackage: nothing\nExplanation: no pin: skipped\n\nPackage: *\nPin: origin \"\"\nPin-Priority: never\n";
    let (p, w) = preferences(text, "f").unwrap();
    assert!(w.is_empty(), "{w:?}");
    assert_eq!(p.len(), 3);
    assert!(
        p[0].general()
            && p[0].kind == "release"
            && p[0].data == "a=stable-backports"
            && p[0].priority == 100
    );
    assert_eq!(p[0].line, 2);
    assert_eq!(p[1].packages, ["curl", "libcurl4"]);
    assert_eq!(
        (p[1].kind.as_str(), p[1].data.as_str(), p[1].priority),
        ("version", "7.88*", 1001)
    );
    assert_eq!(p[2].priority, NEVER);
    // Errors name the file and the line of the stanza.
    let e = preferences("Package: a\nPin: release a=x\n", "/etc/apt/preferences.d/x")
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "`/etc/apt/preferences.d/x` line 1: no Pin-Priority (or 0) given"
    );
    let e = preferences("Pin: release a=x\nPin-Priority: 5\n", "f")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("line 1") && e.contains("without `Package`"),
        "{e}"
    );
    let e = preferences("Package: a\nPin: release a=x\nPin-Priority: 40000\n", "f")
        .unwrap_err()
        .to_string();
    assert!(e.contains("-32768 to 32767"), "{e}");
    let e = preferences("Package: a\nPin: release a=x\nPin-Priority: never\n", "f")
        .unwrap_err()
        .to_string();
    assert!(e.contains("only allowed with `Package: *`"), "{e}");
    // A kind apt does not know, or `version` in a general pin: a warning.
    let (p, w) = preferences("Package: *\nPin: version 1.0\nPin-Priority: 5\n\nPackage: a\nPin: label x\nPin-Priority: 5\n", "f").unwrap();
    assert!(p.is_empty());
    assert_eq!(w.len(), 2, "{w:?}");
}

#[test]
fn fnmatch_as_apt_uses_it() {
    assert!(fnmatch("*", ""));
    assert!(fnmatch("bookworm*", "bookworm-backports"));
    assert!(!fnmatch("bookworm", "bookworm-backports"));
    assert!(fnmatch("b?o*-[a-c]ackports", "bookworm-backports"));
    assert!(fnmatch("[!x]ookworm", "bookworm"));
    assert!(!fnmatch("[!b]ookworm", "bookworm"));
    assert!(fnmatch("a\\*", "a*"));
    assert!(!fnmatch("a\\*", "ab"));
    assert!(fnmatch("*a*b*c", "xxaxxbxxc"));
    assert!(!fnmatch("*a*b*c", "xxaxxbxx"));
    assert!(fnmatch("[", "["));
    // Case is ignored, as apt passes FNM_CASEFOLD.
    assert!(Pattern::new("Debian*").matches(Some("debian backports")));
    assert!(Pattern::new("/^deb.*ports$/").matches(Some("Debian Backports")));
    assert!(!Pattern::new("*").matches(None));
}

#[test]
fn default_priorities() {
    let files = vec![
        PackageFile::dpkg_status(),
        file("stable", "bookworm"),
        backports(),
        PackageFile {
            not_automatic: true,
            ..file("experimental", "rc-buggy")
        },
    ];
    let p = AptPolicy::new(&files, &[], None).unwrap();
    assert_eq!(
        (0..4).map(|i| p.file_priority(i)).collect::<Vec<_>>(),
        [100, 500, 100, 1]
    );
    assert_eq!(files[2].describe(), "release o=Debian Backports,a=stable-backports,n=bookworm-backports,l=Debian Backports,c=main,b=amd64");
}

#[test]
fn general_pins_first_match_wins_and_never_overrides() {
    let files = vec![
        PackageFile::dpkg_status(),
        file("stable", "bookworm"),
        file("stable-security", "bookworm-security"),
        backports(),
    ];
    let p = AptPolicy::new(&files, &pins("Package: *\nPin: release n=bookworm-security\nPin-Priority: 700\n\nPackage: *\nPin: release o=Debian\nPin-Priority: 200\n\nPackage: *\nPin: release a=now\nPin-Priority: 50\n"), None).unwrap();
    // security matched first (700 stays), stable by origin, backports' origin differs.
    assert_eq!(
        (0..4).map(|i| p.file_priority(i)).collect::<Vec<_>>(),
        [50, 200, 700, 100]
    );
    let p = AptPolicy::new(&files, &pins("Package: *\nPin: release o=Debian\nPin-Priority: 200\n\nPackage: *\nPin: release n=bookworm\nPin-Priority: never\n"), None).unwrap();
    assert_eq!(p.file_priority(1), NEVER);
    assert_eq!(p.file_priority(2), 200);
    // The default release (990) comes before the preferences.
    let p = AptPolicy::new(
        &files,
        &pins("Package: *\nPin: release n=bookworm-backports\nPin-Priority: 600\n"),
        Some("bookworm-backports"),
    )
    .unwrap();
    assert_eq!(p.file_priority(3), 990);
    assert!(AptPolicy::new(&files, &[], Some("sid"))
        .unwrap_err()
        .to_string()
        .contains("`sid`"));
    assert!(AptPolicy::new(&files, &[], Some("a=sid")).is_ok());
    // `release 12*` is a version; a plain word matches suite or codename;
    // c= and b= the index; origin the site.
    for (data, want) in [
        ("release 12*", [false, true, true, false]),
        ("release bookworm", [false, true, false, false]),
        ("release stable-security", [false, false, true, false]),
        ("release c=main,b=amd64", [false, true, true, true]),
        ("origin deb.debian.org", [false, true, true, true]),
        ("origin \"\"", [false, false, false, false]),
        ("release *", [true, true, true, true]),
        ("release l=Debian Backports", [false, false, false, true]),
    ] {
        let (kind, d) = data.split_once(' ').unwrap();
        let m = Matcher::new(kind, d);
        let got: Vec<bool> = files.iter().map(|f| m.file_match(f)).collect();
        assert_eq!(got, want, "{data}");
    }
}

#[test]
fn candidate_rules() {
    let files = vec![
        PackageFile::dpkg_status(),
        file("stable", "bookworm"),
        backports(),
        PackageFile {
            not_automatic: true,
            ..file("experimental", "rc-buggy")
        },
    ];
    let p = AptPolicy::new(&files, &[], None).unwrap();
    let installed = ver("7.88.1-10", &[0, 1]);
    let versions = vec![
        installed.clone(),
        ver("7.88.1-10+deb12u5", &[1]),
        ver("8.5.0-1~bpo12+1", &[2]),
        ver("8.9.0-1", &[3]),
    ];
    // Backports (100) and experimental (1) lose to stable's 500.
    assert_eq!(p.candidate(&PKG, &versions, Some("7.88.1-10")), Some(1));
    // Installed from backports: it tracks backports (100 == 100, higher version).
    let versions = vec![
        ver("8.4.0-1~bpo12+1", &[0, 2]),
        ver("7.88.1-10+deb12u5", &[1]),
        ver("8.5.0-1~bpo12+1", &[2]),
    ];
    assert_eq!(
        p.candidate(&PKG, &versions, Some("8.4.0-1~bpo12+1")),
        Some(2)
    );
    // Not installed: the highest priority, never a file at 1 over 500.
    let versions = vec![ver("7.88.1-10+deb12u5", &[1]), ver("8.9.0-1", &[3])];
    assert_eq!(p.candidate(&PKG, &versions, None), Some(0));
    // A priority below 1000 never downgrades; 1001 does.
    let versions = vec![ver("7.88.1-10+deb12u5", &[0]), ver("7.88.1-10", &[1])];
    assert_eq!(
        p.candidate(&PKG, &versions, Some("7.88.1-10+deb12u5")),
        Some(0)
    );
    let down = pins("Package: curl\nPin: version 7.88.1-10\nPin-Priority: 1001\n");
    let p2 = AptPolicy::new(&files, &down, None).unwrap();
    assert_eq!(
        p2.candidate(&PKG, &versions, Some("7.88.1-10+deb12u5")),
        Some(1)
    );
    // A negative priority is never chosen: the installed one stays.
    let neg = pins("Package: curl\nPin: release a=stable\nPin-Priority: -1\n");
    let p3 = AptPolicy::new(&files, &neg, None).unwrap();
    let versions = vec![ver("7.88.1-10", &[0]), ver("7.88.1-10+deb12u5", &[1])];
    assert_eq!(p3.candidate(&PKG, &versions, Some("7.88.1-10")), Some(0));
    // Specific pins: the first that matches a version rules it; other
    // packages and other architectures are untouched.
    let sp = pins("Package: curl\nPin: release a=stable-backports\nPin-Priority: 500\n\nPackage: curl\nPin: release a=stable-backports\nPin-Priority: 50\n");
    let p4 = AptPolicy::new(&files, &sp, None).unwrap();
    let versions = vec![
        installed.clone(),
        ver("7.88.1-10+deb12u5", &[1]),
        ver("8.5.0-1~bpo12+1", &[2]),
    ];
    assert_eq!(p4.candidate(&PKG, &versions, Some("7.88.1-10")), Some(2));
    let other = PackageRef {
        name: "wget",
        ..PKG
    };
    assert_eq!(p4.candidate(&other, &versions, Some("7.88.1-10")), Some(1));
    let i386 = PackageRef {
        arch: "i386",
        ..PKG
    };
    assert_eq!(p4.candidate(&i386, &versions, Some("7.88.1-10")), Some(1));
    // Globs, regexes and src: names.
    for name in ["cu*", "/^c.rl$/", "src:curl", "curl:amd64", "curl:any"] {
        let g = pins(&format!(
            "Package: {name}\nPin: release n=bookworm-backports\nPin-Priority: 990\n"
        ));
        let pg = AptPolicy::new(&files, &g, None).unwrap();
        assert_eq!(
            pg.candidate(&PKG, &versions, Some("7.88.1-10")),
            Some(2),
            "{name}"
        );
    }
    // A version glob.
    let vg = pins("Package: curl\nPin: version 8.*\nPin-Priority: 600\n");
    let pv = AptPolicy::new(&files, &vg, None).unwrap();
    assert_eq!(pv.candidate(&PKG, &versions, Some("7.88.1-10")), Some(2));
    // A file pinned `never` makes its versions never candidates, even
    // with a specific pin.
    let nv = pins("Package: curl\nPin: version 8.*\nPin-Priority: 600\n\nPackage: *\nPin: release a=stable-backports\nPin-Priority: never\n");
    let pn = AptPolicy::new(&files, &nv, None).unwrap();
    assert_eq!(pn.candidate(&PKG, &versions, Some("7.88.1-10")), Some(1));
}

#[test]
fn release_files_and_list_names() {
    let f = PackageFile::from_release("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: Debian Backports\nLabel: Debian Backports\nSuite: stable-backports\nCodename: bookworm-backports\nNotAutomatic: yes\nButAutomaticUpgrades: yes\n-----BEGIN PGP SIGNATURE-----\nxx\n", "x_InRelease").unwrap();
    assert!(f.not_automatic && f.but_automatic_upgrades);
    assert_eq!(f.default_priority(), 100);
    assert_eq!(f.codename, "bookworm-backports");
    let (site, comp, arch) = index_name_parts(
        "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages.lz4",
        "deb.debian.org_debian_dists_bookworm_",
    );
    assert_eq!(
        (site.as_str(), comp.as_str(), arch.as_str()),
        ("deb.debian.org", "main", "amd64")
    );
    let (site, comp, arch) = index_name_parts(
        "_tmp_repo_dists_extra_contrib_binary-all_Packages",
        "_tmp_repo_dists_extra_",
    );
    assert_eq!(
        (site.as_str(), comp.as_str(), arch.as_str()),
        ("", "contrib", "all")
    );
    let (site, comp, _) = index_name_parts(
        "security.debian.org:8080_dists_buster_updates_main_binary-amd64_Packages",
        "security.debian.org:8080_dists_buster_",
    );
    assert_eq!(
        (site.as_str(), comp.as_str()),
        ("security.debian.org", "updates/main")
    );
}
