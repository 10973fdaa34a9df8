//! `password_storage`'s parameters: which sources to read and the costs a
//! slow hash must reach.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    /// A shadow(5) file, e.g. `/etc/shadow`.
    #[serde(default)]
    pub shadow: Option<String>,
    /// An application database holding password hashes.
    #[serde(default)]
    pub sql: Option<SqlSource>,
    /// Schemes accepted as salted slow hashes.
    #[serde(default = "default_allowed")]
    pub allowed: Vec<String>,
    #[serde(default = "default_sha512_rounds")]
    pub min_sha_crypt_rounds: u64,
    #[serde(default = "default_bcrypt_cost")]
    pub min_bcrypt_cost: u64,
    #[serde(default = "default_pbkdf2")]
    pub min_pbkdf2_iterations: u64,
    /// Argon2 memory in KiB (OWASP: 19 MiB with t=2).
    #[serde(default = "default_argon2_m")]
    pub min_argon2_memory_kib: u64,
    #[serde(default = "default_scrypt_ln")]
    pub min_scrypt_log_n: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqlSource {
    /// `sqlite:///path/app.db` or `postgres://user@host/db`. Prefer `dsn_file`
    /// or `dsn_env` when the connection string holds a password.
    #[serde(default)]
    pub dsn: Option<String>,
    #[serde(default)]
    pub dsn_file: Option<String>,
    #[serde(default)]
    pub dsn_env: Option<String>,
    /// Returns the hash in its first column and, optionally, a row label
    /// (user id) in a second.
    pub query: String,
    /// A query returning no rows is an error (nothing found is not proof)
    /// unless this is set.
    #[serde(default)]
    pub allow_empty: bool,
}

pub const SCHEMES: &[&str] = &[
    "yescrypt",
    "gost_yescrypt",
    "sha512_crypt",
    "sha256_crypt",
    "md5_crypt",
    "bcrypt",
    "argon2id",
    "argon2i",
    "argon2d",
    "scrypt",
    "pbkdf2_sha256",
    "pbkdf2_sha512",
    "pbkdf2_sha1",
    "des_crypt",
    "bsdi_crypt",
    "unsalted_md5",
    "unsalted_sha1",
    "unsalted_sha256",
    "unsalted_sha512",
];

fn default_allowed() -> Vec<String> {
    [
        "yescrypt",
        "gost_yescrypt",
        "sha512_crypt",
        "bcrypt",
        "argon2id",
        "argon2i",
        "scrypt",
        "pbkdf2_sha256",
        "pbkdf2_sha512",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}
fn default_sha512_rounds() -> u64 {
    5000
}
fn default_bcrypt_cost() -> u64 {
    10
}
fn default_pbkdf2() -> u64 {
    600_000
}
fn default_argon2_m() -> u64 {
    19_456
}
fn default_scrypt_ln() -> u64 {
    15
}
