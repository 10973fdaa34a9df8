//! Policy unit-test files (`*.test.yaml`), read against the shipped policy,
//! and every case they hold run. Properties: no panic, no hang.
//! The file name points nowhere, so `facts_file` reads find nothing.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use vigil_fuzz::papyrs;
use vigil_rules::policytest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let policy = papyrs();
    if let Ok(cases) = policytest::parse(
        text,
        Path::new("/nonexistent/vigil-fuzz/p.test.yaml"),
        policy,
    ) {
        for c in &cases {
            let _ = policytest::run(c, policy);
        }
    }
});
