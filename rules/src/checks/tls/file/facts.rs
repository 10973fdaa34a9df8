//! What the agent collects for `tls_certificate_file`: the chain read from
//! the file and its validation.

use serde::{Deserialize, Serialize};

use crate::checks::tls::cert::ChainFacts;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub path: String,
    /// The chain read from the file, or why it could not be read.
    pub result: Option<Result<ChainFacts, String>>,
}
