//! Report JSON as the reporter ingests it (`POST /api/v1/reports`): the
//! `vigil.report/v1` shape, then `report::validate`.
//! Properties: no panic, no hang; a report that is accepted serializes and
//! reads back to an equal report that is accepted again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::ctx;
use vigil_rules::report::{self, Report};

fuzz_target!(|data: &[u8]| {
    let Ok(r) = serde_json::from_slice::<Report>(data) else {
        return;
    };
    let now = ctx().now;
    if report::validate(&r, now).is_err() {
        return;
    }
    let text = serde_json::to_string(&r)
        .unwrap_or_else(|e| panic!("an accepted report does not serialize: {e}"));
    let back: Report = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("an accepted report does not read back: {e}\n{text}"));
    assert_eq!(r, back, "round trip changed the report");
    assert!(report::validate(&back, now).is_ok());
    let _ = r.all_ok();
});
