//! The `with` map of an `admin_access` check.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    #[serde(default = "default_sshd_config")]
    pub sshd_config: String,
    /// Ask `sshd -T` for the effective configuration when sshd is installed
    /// and the host's own root is checked.
    #[serde(default = "yes")]
    pub use_sshd_t: bool,
    /// Accepted values of `PermitRootLogin`.
    #[serde(default = "default_root_login")]
    pub permit_root_login: Vec<String>,
    #[serde(default)]
    pub allow_password_authentication: bool,
    /// The people allowed administrative access.
    #[serde(default)]
    pub roster: Vec<Person>,
    /// A YAML file (`roster: [{name, accounts, keys}, …]`, the shape of
    /// `roster`) kept apart from the policy, e.g. `/etc/vigil/roster.yaml`;
    /// its people join `roster`. Missing or invalid: the check is `error`.
    #[serde(default)]
    pub roster_file: Option<String>,
    #[serde(default = "default_admin_groups")]
    pub admin_groups: Vec<String>,
    #[serde(default = "default_passwd")]
    pub passwd: String,
    #[serde(default = "default_group")]
    pub group: String,
    /// The sudoers file; what it includes is read too. A host without it
    /// (no sudo) grants nothing there.
    #[serde(default = "default_sudoers")]
    pub sudoers: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Person {
    pub name: String,
    /// Login accounts this person uses; their `name` when empty.
    #[serde(default)]
    pub accounts: Vec<String>,
    /// Key fingerprints as `ssh-keygen -lf` prints them (`SHA256:…`).
    #[serde(default)]
    pub keys: Vec<String>,
}

impl Person {
    pub(crate) fn account_names(&self) -> Vec<&str> {
        if self.accounts.is_empty() {
            vec![self.name.as_str()]
        } else {
            self.accounts.iter().map(String::as_str).collect()
        }
    }
}

fn default_sshd_config() -> String {
    "/etc/ssh/sshd_config".into()
}
fn yes() -> bool {
    true
}
fn default_root_login() -> Vec<String> {
    vec!["no".into()]
}
fn default_admin_groups() -> Vec<String> {
    vec!["sudo".into(), "wheel".into()]
}
fn default_passwd() -> String {
    "/etc/passwd".into()
}
fn default_sudoers() -> String {
    "/etc/sudoers".into()
}
fn default_group() -> String {
    "/etc/group".into()
}
