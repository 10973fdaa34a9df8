//! Why a firewall could not be judged: a tool that prints the rules is
//! missing or failed, or the rules hold what the model cannot read. Each
//! reads as the message the verdict shows.

/// Why the rulesets could not be read or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RulesetError {
    /// A program that prints the rules is not installed or failed.
    #[error("{0}")]
    Tool(String),
    /// `nft -j list ruleset` printed what the parser cannot read.
    #[error("{0}")]
    Nft(String),
    /// `iptables-save` printed what the parser cannot read.
    #[error("{0}")]
    Iptables(String),
    /// Evaluating a packet met a construct the model does not know.
    #[error("{0}")]
    Eval(String),
}
