//! What the agent hands over for `password_storage`: each stored value
//! already classified, never the value itself.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What one stored password field is, without the field itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Stored {
    /// `!`, `*`, `!!` or a hash behind `!`: no password login.
    Locked,
    /// An empty field: login without a password.
    Empty,
    Hash {
        scheme: String,
        /// Cost parameters: `rounds`, `cost`, `m`, `t`, `p`, `i`, `ln`.
        #[serde(default)]
        params: BTreeMap<String, u64>,
        salted: bool,
    },
    /// Not a format we know: plain text or an exotic scheme.
    Unrecognized { length: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The account name or the row label.
    pub subject: String,
    /// `FILE:LINE` or `sql row N`.
    pub place: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    pub stored: Stored,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Source {
    /// `/etc/shadow` or `sql`.
    pub name: String,
    #[serde(default)]
    pub entries: Vec<Entry>,
    /// Why the source could not be read; the check is then `error`.
    #[serde(default)]
    pub error: Option<String>,
    /// Lines that could not be parsed (`line`, reason).
    #[serde(default)]
    pub malformed: Vec<(u64, String)>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    pub sources: Vec<Source>,
}
