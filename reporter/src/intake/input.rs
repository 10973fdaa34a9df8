//! What an incident submission is and how it is checked, apart from the
//! routes. The pure decoding and checks live in `vigil_rules::incident` (so
//! the fuzz crate reaches them without linking the reporter); these wrappers
//! keep the intake's `String` messages for its routes and store.

use vigil_rules::incident::{self as pure, IncidentError};
pub use vigil_rules::incident::{IncidentSubmission, ValidIncident, MAX_SHORT_CHARS};

fn msg(e: IncidentError) -> String {
    e.to_string()
}

pub fn check_text(name: &str, v: &str, max: usize, multiline: bool) -> Result<(), String> {
    pure::check_text(name, v, max, multiline).map_err(msg)
}

/// Checks lengths and characters; Ok(None) for a honeypot hit.
/// `max_summary` and `max_description` count characters.
pub fn validate(
    s: IncidentSubmission,
    max_summary: usize,
    max_description: usize,
) -> Result<Option<ValidIncident>, String> {
    pure::validate(s, max_summary, max_description).map_err(msg)
}

/// Decodes `application/x-www-form-urlencoded` strictly.
pub fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    pure::decode_form(body).map_err(msg)
}

pub fn submission_from_form(pairs: Vec<(String, String)>) -> Result<IncidentSubmission, String> {
    pure::submission_from_form(pairs).map_err(msg)
}

/// A JSON body: UTF-8, then the fields and no others.
pub fn from_json(body: &[u8]) -> Result<IncidentSubmission, String> {
    pure::from_json(body).map_err(msg)
}

/// A form body (`application/x-www-form-urlencoded`), decoded strictly.
pub fn from_form(body: &[u8]) -> Result<IncidentSubmission, String> {
    pure::from_form(body).map_err(msg)
}
