//! What the agent collects for `attestation`: nothing.

use serde::{Deserialize, Serialize};

/// Nothing is collected from the host.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {}
