//! What tests read back from the reporter's answers: a closure's history,
//! the answers to reports sent more than once.

use serde_json::Value;

/// Every state a closure goes through, in order, when each phase is proved.
pub const CLOSURE_STATES_IN_ORDER: [&str; 7] = [
    "requested",
    "export_ready",
    "site_erased",
    "local_backups_erased",
    "offline_backups_erased",
    "logs_purged",
    "closed",
];

/// The states a closure's `history` went to, in order.
pub fn closure_history_states(closure: &Value) -> Vec<&str> {
    closure["history"]
        .as_array()
        .unwrap_or_else(|| panic!("a closure without a `history` list: {closure:#}"))
        .iter()
        .map(|h| {
            h["to"]
                .as_str()
                .unwrap_or_else(|| panic!("a history entry without `to`: {h:#}"))
        })
        .collect()
}

/// Each report id was sent exactly twice, and answered once 201 stored and
/// once 200 a duplicate; `reports` is how many distinct ids were sent and
/// `what` says how the two answers came about (for the failure message).
pub fn assert_each_report_stored_once(
    answers: &[(String, u16, Option<bool>)],
    reports: usize,
    what: &str,
) {
    let mut per_id: std::collections::HashMap<&str, Vec<(u16, Option<bool>)>> =
        std::collections::HashMap::new();
    for (id, status, stored) in answers {
        per_id.entry(id).or_default().push((*status, *stored));
    }
    assert_eq!(per_id.len(), reports);
    for (id, mut answers) in per_id {
        answers.sort();
        assert_eq!(
            answers,
            vec![(200, Some(false)), (201, Some(true))],
            "report {id}: {what}"
        );
    }
}
