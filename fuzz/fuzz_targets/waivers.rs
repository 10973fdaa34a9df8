//! The waivers file, read against the shipped policy (policies/papyrs.yaml).
//! Properties: no panic, no hang; parsing is deterministic; every waiver
//! names a control of the policy.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::papyrs;
use vigil_rules::waivers;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = papyrs();
    let first = waivers::parse(text, "fuzz.waivers.yaml", policy);
    let again = waivers::parse(text, "fuzz.waivers.yaml", policy);
    assert_eq!(first, again, "waivers parsing is not deterministic");
    if let Ok(ws) = first {
        for w in &ws {
            assert!(
                policy.control(&w.control).is_some(),
                "a waiver of an unknown control"
            );
            let _ = w.applies_to("web-1.example.org", &["web".to_owned()]);
        }
    }
});
