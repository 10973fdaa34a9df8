//! What the agent hands over of a chain: the certificates as presented and
//! what validating them against the trust anchors found.

use serde::{Deserialize, Serialize};

/// A chain as presented (leaf first) and what validating it found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainFacts {
    /// Each certificate as base64 DER, in the order presented.
    pub chain: Vec<String>,
    pub trust: Trust,
}

/// Chain validation against the trust anchors (webpki, done by the agent).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trust {
    /// Where the trust anchors came from, e.g. `system (146 roots) + /etc/ssl/ca.pem`.
    pub anchors: String,
    pub outcome: TrustOutcome,
    /// The validator's own words when the chain was not trusted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrustOutcome {
    /// A path to a trust anchor was built and every signature on it verified.
    Trusted,
    /// No presented certificate or trust anchor issued the top of the chain.
    UnknownIssuer,
    /// A signature on the path uses an algorithm or key the validator refuses
    /// (SHA-1, MD5, RSA below 2048 bits): trust could not be established.
    WeakAlgorithm,
    /// Any other validation failure (bad signature, not a CA, wrong usage...).
    Invalid,
}
