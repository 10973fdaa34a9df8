//! Incident submissions (`POST /api/v1/incidents` JSON and the
//! `/report-incident` form) through the decoding and validation the
//! reporter's intake calls (`vigil_rules::incident`, pure, so the fuzz build
//! does not link the reporter). Input: the first byte picks JSON or form.
//! Properties: no panic, no hang; what validation accepts is trimmed,
//! non-empty, within the limits and free of control characters.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::select;
use vigil_rules::incident as intake_input;

const MAX_SUMMARY: usize = 200;
const MAX_DESCRIPTION: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Some((which, body)) = select(data, 2) else {
        return;
    };
    let sub = match which {
        0 => intake_input::from_json(body),
        _ => intake_input::from_form(body),
    };
    let Ok(sub) = sub else { return };
    let Ok(Some(v)) = intake_input::validate(sub, MAX_SUMMARY, MAX_DESCRIPTION) else {
        return;
    };
    assert!(!v.summary.is_empty() && v.summary.trim() == v.summary);
    assert!(!v.description.is_empty() && v.description.trim() == v.description);
    assert!(v.summary.chars().count() <= MAX_SUMMARY);
    assert!(v.description.chars().count() <= MAX_DESCRIPTION);
    assert!(!v.summary.chars().any(char::is_control));
    for o in [&v.contact, &v.affected_area].into_iter().flatten() {
        assert!(
            !o.is_empty()
                && o.chars().count() <= intake_input::MAX_SHORT_CHARS
                && !o.chars().any(char::is_control)
        );
    }
});
