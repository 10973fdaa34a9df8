//! Pure parsers of what the firewall collector reads: `nft -j list ruleset`
//! ([`nft`]), `iptables-save` ([`iptables`]), both into the model of
//! [`super::eval`], and the `/proc/net` socket tables ([`proc_net`]).

pub mod iptables;
pub mod nft;
pub mod proc_net;
