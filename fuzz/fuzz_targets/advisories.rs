//! Advisory feeds: debsecan's `VERSION 1` text and the security tracker's
//! JSON (told apart by content, as the agent does), then matched against an
//! installed package set. Properties: no panic, no hang.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_rules::checks::patch_level::feeds;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = feeds::format_of(text);
    if let Ok(advs) = feeds::parse(text, "bookworm", &|p: &str| !p.starts_with('z')) {
        for a in &advs {
            assert!(
                !a.package.starts_with('z'),
                "the package filter was ignored"
            );
        }
    }
    let _ = feeds::debsecan(text, &|_| true);
});
