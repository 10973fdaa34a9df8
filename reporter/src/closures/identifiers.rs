//! The identifiers a closure erases from logs: specific enough that erasing
//! them cannot blank ordinary lines fleet-wide (issue 19 item 17).

/// Words found in ordinary log lines: an identifier equal to one would blank
/// every matching line fleet-wide (issue 19 item 17).
pub(super) const COMMON_WORDS: &[&str] = &[
    "accepted",
    "account",
    "admin",
    "administrator",
    "apache",
    "authentication",
    "backup",
    "client",
    "closed",
    "configuration",
    "connection",
    "connections",
    "cron",
    "daemon",
    "debug",
    "default",
    "disconnected",
    "error",
    "example",
    "failed",
    "failure",
    "http",
    "https",
    "info",
    "kernel",
    "localhost",
    "login",
    "logout",
    "nginx",
    "notice",
    "papyrs",
    "password",
    "postgres",
    "postgresql",
    "request",
    "response",
    "restic",
    "root",
    "server",
    "service",
    "session",
    "sshd",
    "started",
    "starting",
    "stopped",
    "sudo",
    "syslog",
    "systemd",
    "test",
    "unattended-upgrades",
    "user",
    "users",
    "warning",
    "www-data",
];

pub(super) fn is_common_word(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    COMMON_WORDS.contains(&l.as_str())
}

/// Whether `id` is specific enough to purge log lines by: 6 to 256
/// characters, no whitespace or control characters, not a common word, and
/// either holding a digit or at least 12 characters long; digits alone need 8.
pub fn check_identifier(id: &str) -> Result<(), String> {
    let n = id.chars().count();
    if !(6..=256).contains(&n) {
        return Err(format!(
            "identifier `{id}` must be 6 to 256 characters: a shorter one matches unrelated log lines"
        ));
    }
    if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "identifier `{id}` holds whitespace or a control character"
        ));
    }
    if is_common_word(id) {
        return Err(format!(
            "identifier `{id}` is a common word in logs: it would blank every line carrying it"
        ));
    }
    let digits = id.chars().filter(char::is_ascii_digit).count();
    if digits == n && n < 8 {
        return Err(format!(
            "identifier `{id}` is a short number: it needs 8 digits or more"
        ));
    }
    if digits == 0 && n < 12 {
        return Err(format!(
            "identifier `{id}` is not specific: give one with a digit, or of 12 characters or more"
        ));
    }
    Ok(())
}

/// The account id is always one of the identifiers: it must not be a common
/// word and needs 4 characters or more.
pub(super) fn check_account_as_identifier(account: &str) -> Result<(), String> {
    if account.chars().count() < 4 || is_common_word(account) {
        return Err(format!(
            "account `{account}` would be purged from logs as an identifier, but it is too short or a common word"
        ));
    }
    Ok(())
}
