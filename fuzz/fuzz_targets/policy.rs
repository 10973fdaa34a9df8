//! The policy loader (YAML → located nodes → validated `Policy`).
//! Properties: no panic, no hang; a policy that loads, written back as
//! policy text, loads again to the same `Policy`; every diagnostic is located.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::{normalized, policy_text};
use vigil_rules::policy;

fuzz_target!(|data: &[u8]| {
    match policy::parse(data, "fuzz.yaml") {
        Ok(p) => {
            let text = policy_text(&p);
            let back = policy::parse(text.as_bytes(), "again.yaml").unwrap_or_else(|d| {
                panic!("a loaded policy written back does not load:\n{d}\n{text}")
            });
            assert_eq!(
                normalized(p),
                normalized(back),
                "round trip changed the policy"
            );
        }
        Err(d) => {
            assert!(!d.diags.is_empty(), "an error without a diagnostic");
            for x in &d.diags {
                assert!(
                    x.loc.line >= 1 && x.loc.col >= 1,
                    "unlocated diagnostic: {x:?}"
                );
            }
        }
    }
});
