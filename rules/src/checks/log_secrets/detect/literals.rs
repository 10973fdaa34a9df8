//! The literals the prefilter looks for, and the detectors each wakes.

use super::super::Code;

// Detector bits.
pub(super) const PASSWORD: u16 = 1 << 0;
pub(super) const BASIC: u16 = 1 << 1;
pub(super) const URL: u16 = 1 << 2;
pub(super) const BEARER: u16 = 1 << 3;
pub(super) const PRIVKEY: u16 = 1 << 4;
pub(super) const HASH: u16 = 1 << 5;
pub(super) const AWS: u16 = 1 << 6;
pub(super) const GITHUB: u16 = 1 << 7;
pub(super) const SLACK: u16 = 1 << 8;
pub(super) const STRIPE: u16 = 1 << 9;
pub(super) const CARD: u16 = 1 << 10;
pub(super) const EXTRA: u16 = 1 << 11;
/// Marks the literals of a password key: a candidate only when
/// [`may_assign`] says so.
pub(super) const KEY: u16 = 1 << 12;

/// Literals and the detectors they wake. Case variants are listed so that the
/// automaton can stay case-sensitive (and so use its SIMD searcher).
pub(super) const LITERALS: &[(&str, u16)] = &[
    ("pass", PASSWORD | KEY),
    ("Pass", PASSWORD | KEY),
    ("PASS", PASSWORD | KEY),
    ("pwd", PASSWORD | KEY),
    ("Pwd", PASSWORD | KEY),
    ("PWD", PASSWORD | KEY),
    ("--user", PASSWORD),
    ("-u ", PASSWORD),
    ("IDENTIFIED", PASSWORD),
    ("identified", PASSWORD),
    ("asic ", BASIC),
    ("ASIC ", BASIC),
    ("earer", BEARER),
    ("EARER", BEARER),
    ("PRIVATE KEY", PRIVKEY),
    ("$2a$", HASH),
    ("$2b$", HASH),
    ("$2y$", HASH),
    ("$2x$", HASH),
    ("$1$", HASH),
    ("$5$", HASH),
    ("$6$", HASH),
    ("$y$", HASH),
    ("$gy$", HASH),
    ("$7$", HASH),
    ("$argon2", HASH),
    ("pbkdf2", HASH),
    ("AKIA", AWS),
    ("ASIA", AWS),
    ("ABIA", AWS),
    ("ACCA", AWS),
    ("A3T", AWS),
    ("ws_secret_access_key", AWS),
    ("WS_SECRET_ACCESS_KEY", AWS),
    ("ghp_", GITHUB),
    ("gho_", GITHUB),
    ("ghu_", GITHUB),
    ("ghs_", GITHUB),
    ("ghr_", GITHUB),
    ("github_pat_", GITHUB),
    ("xox", SLACK),
    ("xapp-", SLACK),
    ("hooks.slack", SLACK),
    ("_live_", STRIPE),
];

pub(super) fn bit_of(c: Code) -> u16 {
    match c {
        Code::PasswordAssignment => PASSWORD,
        Code::BasicAuthHeader => BASIC,
        Code::UrlCredentials => URL,
        Code::BearerToken => BEARER,
        Code::PrivateKeyBlock => PRIVKEY,
        Code::PasswordHash => HASH,
        Code::AwsAccessKeyId | Code::AwsSecretAccessKey => AWS,
        Code::GithubToken => GITHUB,
        Code::SlackToken => SLACK,
        Code::StripeSecretKey => STRIPE,
        Code::CardNumber => CARD,
        _ => 0,
    }
}
