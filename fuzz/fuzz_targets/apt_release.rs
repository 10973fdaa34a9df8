//! apt's `Release`/`InRelease` files (with or without the OpenPGP armour)
//! through `PackageFile::from_release`, and list file names through
//! `index_name_parts`. Input: the first line is the list file's name, the
//! rest the Release text.
//! Properties: no panic, no hang; parsing is deterministic; the package file
//! keeps the name it was given, is never the status file, and its default
//! priority is one of apt's three (1, 500, or 100 for `ButAutomaticUpgrades`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::split_lines;
use vigil_rules::checks::patch_level::apt_policy::{index_name_parts, PackageFile};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parts = split_lines(text, 2);
    let (name, body) = match parts.as_slice() {
        [n, b] => (*n, *b),
        [b] => ("", *b),
        _ => return,
    };
    let prefix = name.split("_binary-").next().unwrap_or_default();
    let _ = index_name_parts(name, prefix);
    let parsed = PackageFile::from_release(body, name);
    assert_eq!(
        parsed,
        PackageFile::from_release(body, name),
        "not deterministic"
    );
    let Ok(f) = parsed else {
        return;
    };
    assert_eq!(f.name, name);
    assert!(!f.status);
    let expected = if f.but_automatic_upgrades {
        100
    } else if f.not_automatic {
        1
    } else {
        500
    };
    assert_eq!(f.default_priority(), expected);
    let _ = (f.is_security(), f.describe());
});
