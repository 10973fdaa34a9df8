//! Tokens and secrets.
//!
//! A token is `PREFIX_<lookup>_<secret>`: 8 random bytes of lookup (hex) to
//! find the row, 32 random bytes of secret (base64url) of which only the
//! SHA-256 digest is stored. A fast digest is right for 256-bit random secrets
//! (a slow hash would cap ingest at a few hundred reports a second); argon2 is
//! for the passwords people choose.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub const AGENT_PREFIX: &str = "vgl";
pub const STAFF_PREFIX: &str = "vgs";

pub struct NewToken {
    /// Shown once to its owner.
    pub token: String,
    pub lookup: String,
    pub digest: String,
}

pub fn new_token(prefix: &str) -> NewToken {
    let mut lookup = [0u8; 8];
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut lookup);
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let lookup = hex::encode(lookup);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    NewToken {
        token: format!("{prefix}_{lookup}_{secret}"),
        digest: digest(&secret),
        lookup,
    }
}

pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Splits a presented token into (lookup, secret) when it has our shape.
pub fn parse_token<'a>(token: &'a str, prefix: &str) -> Option<(&'a str, &'a str)> {
    let rest = token.strip_prefix(prefix)?.strip_prefix('_')?;
    let (lookup, secret) = rest.split_once('_')?;
    (lookup.len() == 16 && lookup.bytes().all(|b| b.is_ascii_hexdigit()) && secret.len() == 43)
        .then_some((lookup, secret))
}

/// Compares a presented secret with a stored digest in constant time.
pub fn verify(secret: &str, stored_digest: &str) -> bool {
    digest(secret)
        .as_bytes()
        .ct_eq(stored_digest.as_bytes())
        .into()
}

/// Compares two secrets in constant time (through their digests, so length
/// does not leak either).
pub fn secrets_equal(a: &str, b: &str) -> bool {
    Sha256::digest(a.as_bytes())
        .ct_eq(&Sha256::digest(b.as_bytes()))
        .into()
}

/// An argon2id hash (PHC string) of a staff password.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("cannot hash the password: {e}"))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_only_digests_verify() {
        let t = new_token(AGENT_PREFIX);
        let (lookup, secret) = parse_token(&t.token, AGENT_PREFIX).unwrap();
        assert_eq!(lookup, t.lookup);
        assert!(verify(secret, &t.digest));
        assert!(!verify("x", &t.digest));
        assert!(parse_token(&t.token, STAFF_PREFIX).is_none());
        assert!(parse_token("vgl_short_x", AGENT_PREFIX).is_none());
        assert_ne!(new_token(AGENT_PREFIX).token, t.token);
    }

    #[test]
    fn passwords_are_salted_argon2() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert!(a.starts_with("$argon2id$"));
        assert_ne!(a, b, "salted");
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong", &a));
    }
}
