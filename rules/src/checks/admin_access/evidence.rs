//! The evidence an `admin_access` verdict carries.

use serde::{Deserialize, Serialize};

use super::facts::SudoersFacts;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub sshd: Option<SshdSeen>,
    /// Accounts whose shell allows a login.
    pub login_accounts: Vec<String>,
    pub keys: Vec<KeySeen>,
    /// `member (group or sudoers grant)`.
    pub admins: Vec<String>,
    pub sudoers: Option<SudoersFacts>,
}

/// The sshd settings that decide remote access.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshdSeen {
    /// `sshd -T` or the config file path.
    pub source: String,
    pub permitrootlogin: Option<String>,
    pub passwordauthentication: Option<String>,
    pub kbdinteractiveauthentication: Option<String>,
    /// How many settings sit inside `Match` blocks.
    pub match_blocks: usize,
}

/// One authorized key: whose, and its fingerprint when the line is a key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeySeen {
    pub account: String,
    pub fingerprint: Option<String>,
}
