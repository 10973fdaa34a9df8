//! The `with` map of an `attestation` check.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::duration::PolicyDuration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// Who attests: a person or role with a way to reach them.
    pub by: String,
    /// The day of the attestation, `YYYY-MM-DD`.
    #[serde(with = "crate::duration::date")]
    pub on: NaiveDate,
    /// Where the evidence is: a document, ticket, audit report.
    pub evidence: String,
    /// How long the attestation holds, e.g. `365d`.
    pub valid_for: PolicyDuration,
    /// What exactly is attested, in plain words.
    #[serde(default)]
    pub statement: Option<String>,
}
