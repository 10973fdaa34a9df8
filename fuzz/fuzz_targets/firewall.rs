//! Firewall rulesets: `nft -j list ruleset` JSON and `iptables-save` /
//! `ip6tables-save` text, parsed into one model and evaluated for every
//! port (jumps, gotos, sets, verdict maps). The judgement after it (a loop
//! over all 65,535 ports building evidence) is left out: it reads no input
//! and would cut the rate to a few runs a second.
//! Input: the first byte picks nft JSON, iptables-save or ip6tables-save.
//! Properties: no panic, no hang (jump loops must be caught); a ruleset
//! that parses evaluates to a decision for every port of both families.
#![no_main]
use libfuzzer_sys::fuzz_target;
use vigil_fuzz::select;
use vigil_rules::checks::firewall::eval::{Family, Proto};
use vigil_rules::checks::firewall::{layers, reachable, Backend, Facts, Output};

fuzz_target!(|data: &[u8]| {
    let Some((which, rest)) = select(data, 3) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let empty = || Output::Text(String::new());
    let (backend, facts) = match which {
        0 => (
            Backend::Nftables,
            Facts {
                nft: Output::Text(text.to_owned()),
                iptables_variant: None,
                iptables: Output::Absent,
                ip6tables: Output::Absent,
                iptables_legacy: Output::Absent,
                ip6tables_legacy: Output::Absent,
                sockets: Ok(Vec::new()),
            },
        ),
        n => (
            Backend::Iptables,
            Facts {
                nft: Output::Absent,
                iptables_variant: Some("legacy".into()),
                iptables: if n == 1 {
                    Output::Text(text.to_owned())
                } else {
                    empty()
                },
                ip6tables: if n == 2 {
                    Output::Text(text.to_owned())
                } else {
                    empty()
                },
                iptables_legacy: Output::Absent,
                ip6tables_legacy: Output::Absent,
                sockets: Ok(Vec::new()),
            },
        ),
    };
    if let Ok(ls) = layers(backend, &facts) {
        for fam in [Family::V4, Family::V6] {
            for proto in [Proto::Tcp, Proto::Udp] {
                if let Ok(open) = reachable(&ls, fam, proto) {
                    assert_eq!(open.len(), 65536);
                }
            }
        }
    }
});
