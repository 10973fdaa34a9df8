//! `password_storage`'s evidence, typed: how many entries each source held
//! and how many stored passwords of each scheme. Serialized to the same JSON
//! as before.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The check's evidence.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Evidence {
    pub sources: Vec<SourceEvidence>,
    /// Stored passwords by scheme (`locked`, `empty`, `unrecognized` or the
    /// hash scheme).
    pub schemes: BTreeMap<String, u32>,
}

/// One source as read.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct SourceEvidence {
    /// `/etc/shadow` or `sql`.
    pub name: String,
    /// How many entries it held.
    pub entries: usize,
    /// Why it could not be read.
    pub error: Option<String>,
}
