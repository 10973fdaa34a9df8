//! The evidence an `attestation` verdict carries.

use serde::{Deserialize, Serialize};

/// Who attested what, when, and until when it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    pub by: String,
    /// `YYYY-MM-DD`.
    pub on: String,
    /// Where the evidence is.
    pub evidence: String,
    /// `YYYY-MM-DD`: the first day it no longer holds.
    pub expires: String,
    pub statement: Option<String>,
}
