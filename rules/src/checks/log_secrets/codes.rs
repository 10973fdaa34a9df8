//! The finding codes of `log_secrets`, and which of them are the built-in
//! detectors a policy may name in `detectors`.

use crate::finding_codes;

finding_codes! {
    pub enum Code {
        PasswordAssignment = ("password_assignment", Critical, "a password value logged as `password=…`, `\"password\": \"…\"`, `passwd: …` or in SQL (`PASSWORD '…'`)"),
        BasicAuthHeader = ("basic_auth_header", Critical, "an `Authorization: Basic` value that decodes to user:password"),
        UrlCredentials = ("url_credentials", Critical, "a URL with a password in it (`scheme://user:pass@host`)"),
        BearerToken = ("bearer_token", High, "a bearer token (`Authorization: Bearer …`)"),
        PrivateKeyBlock = ("private_key_block", Critical, "a PEM private key block"),
        PasswordHash = ("password_hash", High, "a crypt(3) or PHC password hash (bcrypt, sha512-crypt, yescrypt, argon2, scrypt, pbkdf2)"),
        CardNumber = ("card_number", Critical, "a payment card number: 13-19 digits, Luhn-valid, of a known issuer"),
        AwsAccessKeyId = ("aws_access_key_id", High, "an AWS access key id (`AKIA…`, `ASIA…`)"),
        AwsSecretAccessKey = ("aws_secret_access_key", Critical, "an AWS secret access key after `aws_secret_access_key`"),
        GithubToken = ("github_token", High, "a GitHub token (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`)"),
        SlackToken = ("slack_token", High, "a Slack token (`xoxb-`, `xoxp-`, …) or incoming-webhook URL"),
        StripeSecretKey = ("stripe_secret_key", Critical, "a Stripe live secret or restricted key (`sk_live_`, `rk_live_`)"),
        ExtraPattern = ("extra_pattern", High, "a match of one of the policy's `extra_patterns`"),
        SkippedFile = ("skipped_file", Info, "a path matched by `paths` is not a regular file (a symlink, a FIFO, a socket, a device, or under a symlinked directory): it is not followed or read"),
        UnreadableFile = ("unreadable_file", High, "a file matched by `paths` could not be read: the check is an error"),
        NoFilesMatched = ("no_files_matched", Medium, "a glob of `paths` matched no file: nothing found is not proof"),
        FindingsTruncated = ("findings_truncated", Info, "more hits in a file than `max_findings_per_file`; the rest are counted"),
        UnusedAllow = ("unused_allow", Info, "an `allow` entry matched no hit this run"),
    }
}

/// The built-in detectors' codes, as `detectors` may name them.
pub const DETECTORS: &[Code] = &[
    Code::PasswordAssignment,
    Code::BasicAuthHeader,
    Code::UrlCredentials,
    Code::BearerToken,
    Code::PrivateKeyBlock,
    Code::PasswordHash,
    Code::CardNumber,
    Code::AwsAccessKeyId,
    Code::AwsSecretAccessKey,
    Code::GithubToken,
    Code::SlackToken,
    Code::StripeSecretKey,
];
