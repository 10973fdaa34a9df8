//! What the agent collects for `admin_access`: sshd's effective settings,
//! accounts, groups, authorized keys and what sudoers grants.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::params::Person;
use super::sudoers;

/// sshd's effective settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sshd {
    /// `sshd -T` or the config file path.
    pub source: String,
    /// Lowercased keyword to its effective value, outside any `Match`.
    pub settings: BTreeMap<String, String>,
    /// Settings inside `Match` blocks, which apply to some connections only.
    #[serde(default)]
    pub matches: Vec<MatchSetting>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchSetting {
    pub criteria: String,
    pub keyword: String,
    pub value: String,
    pub file: String,
    pub line: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    /// Whether the shell allows a login (not nologin/false).
    pub login: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    pub members: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthorizedKey {
    pub account: String,
    pub file: String,
    pub line: u64,
    /// `SHA256:…`, or the reason the line could not be read.
    pub fingerprint: Result<String, String>,
    #[serde(default)]
    pub key_type: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facts {
    /// `None` when sshd is not installed (no config file).
    pub sshd: Option<Sshd>,
    pub accounts: Vec<Account>,
    pub groups: Vec<Group>,
    pub keys: Vec<AuthorizedKey>,
    /// sudoers and what it includes; `None` when there is no sudoers file
    /// (or facts from an agent before sudoers was read).
    #[serde(default)]
    pub sudoers: Option<SudoersFacts>,
    /// Files that exist but could not be read: the check is then `error`.
    #[serde(default)]
    pub errors: Vec<String>,
    /// The people of `roster_file`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roster_from_file: Vec<Person>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SudoersFacts {
    /// Every file read, in sudo's order.
    pub files: Vec<String>,
    /// Principals granted commands as root.
    pub root_grants: Vec<sudoers::RootGrant>,
}
