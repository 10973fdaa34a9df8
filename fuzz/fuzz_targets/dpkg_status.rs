//! deb822 files: dpkg's `status` (installed packages), apt's `Packages`
//! indices and `Release`/`InRelease` files. Input: the first byte picks one.
//! Properties: no panic, no hang; every installed package's version parses.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::select;
use vigil_rules::checks::patch_level::dpkg_version;
use vigil_rules::checks::patch_level::status::{installed, packages_index, paragraphs, Release};

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 4) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which {
        0 => {
            if let Ok(pkgs) = installed(text) {
                for p in &pkgs {
                    assert!(
                        dpkg_version::parse(&p.version).is_ok(),
                        "accepted a bad version {:?}",
                        p.version
                    );
                }
            }
        }
        1 => {
            let release = Release::parse("Origin: Debian\nLabel: Debian-Security\nSuite: stable-security\nCodename: bookworm-security\n").unwrap_or_default();
            let _ = packages_index(text, &|n: &str| !n.starts_with('z'), &release);
        }
        2 => {
            if let Ok(r) = Release::parse(text) {
                let _ = (r.is_security(), r.describe());
            }
        }
        _ => {
            if let Ok(ps) = paragraphs(text, None) {
                for p in &ps {
                    assert!(p.line >= 1);
                }
            }
        }
    }
});
