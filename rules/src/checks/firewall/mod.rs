//! `firewall`: inbound traffic is denied by default, only the policy's ports
//! are reachable, and every listening socket is either allowed or filtered.
//!
//! Facts: the raw `nft -j list ruleset`, `iptables-save` and `ip6tables-save`
//! outputs and the listening sockets with their owning processes. Judgement
//! parses the rulesets ([`nft`], [`iptables`]) into one model ([`eval`]) and
//! evaluates it for every port, protocol and family: sets, ranges, named sets,
//! jumps, gotos, verdict maps and conntrack state included. What the model does
//! not know is an error naming it, never a pass.

mod error;
pub mod eval;
mod evidence;
mod facts;
mod params;
pub mod parse;

pub use error::RulesetError;
pub use evidence::{Evidence, LayerSeen};
pub use facts::{Facts, Output, Socket};
pub use params::{Backend, Params};
pub use parse::{iptables, nft, proc_net};

use std::collections::BTreeMap;

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{Finding, FindingCode, Verdict};
use eval::{CtState, Family, Layer, Probe, Proto};

pub struct Firewall;

finding_codes! {
    pub enum Code {
        NoDefaultDeny = ("no_default_deny", High, "inbound traffic of a family is not dropped by default"),
        PortNotAllowed = ("port_not_allowed", High, "a port the policy does not allow is reachable from outside"),
        ListeningPortExposed = ("listening_port_exposed", High, "a process listens on a port the firewall lets through but the policy does not allow"),
        EstablishedNotAccepted = ("established_not_accepted", Medium, "replies to outbound connections (ct state established) are dropped"),
        AllowedPortClosed = ("allowed_port_closed", Info, "a port the policy allows, with a listener, is not reachable"),
    }
}

const PROTOS: [Proto; 2] = [Proto::Tcp, Proto::Udp];
const FAMILIES: [Family; 2] = [Family::V4, Family::V6];

/// Builds the layers to evaluate from the facts, as `backend` asks.
pub fn layers(backend: Backend, facts: &Facts) -> Result<Vec<Layer>, RulesetError> {
    let ipt = |o: &Output, fam: Family, tool: &str| -> Result<Option<eval::Table>, RulesetError> {
        match o {
            Output::Text(t) => iptables::parse(t, fam),
            Output::Failed(why) => Err(RulesetError::Tool(format!("{tool}-save failed: {why}"))),
            Output::Absent => Err(RulesetError::Tool(format!("{tool}-save is not installed"))),
        }
    };
    let ipt_layer = |name: &str| -> Result<Layer, RulesetError> {
        let mut l = Layer {
            name: name.into(),
            tables: Vec::new(),
        };
        l.tables
            .extend(ipt(&facts.iptables, Family::V4, "iptables")?);
        l.tables
            .extend(ipt(&facts.ip6tables, Family::V6, "ip6tables")?);
        Ok(l)
    };
    match backend {
        Backend::Nftables => match &facts.nft {
            Output::Text(t) => Ok(vec![nft::parse(t, &[])?]),
            Output::Failed(why) => Err(RulesetError::Tool(format!(
                "`nft -j list ruleset` failed: {why}"
            ))),
            Output::Absent => Err(RulesetError::Tool(
                "nft is not installed (package `nftables`)".into(),
            )),
        },
        Backend::Iptables => Ok(vec![ipt_layer("iptables")?]),
        Backend::Auto => {
            let mut out = Vec::new();
            // iptables' own filter tables, when iptables-save can read them.
            // iptables-nft prints a table it cannot represent (one nft made)
            // with a warning and no rules: that table is nft's to show.
            let ipt_ok = |o: &Output| matches!(o, Output::Text(t) if t.contains("*filter") && !t.contains("incompatible"));
            let have_ipt = ipt_ok(&facts.iptables) || ipt_ok(&facts.ip6tables);
            let nf_tables = facts.iptables_variant.as_deref() == Some("nf_tables");
            let mut skip: Vec<&str> = Vec::new();
            if have_ipt {
                let mut l = Layer {
                    name: if nf_tables {
                        "iptables (nf_tables)"
                    } else {
                        "iptables (legacy)"
                    }
                    .into(),
                    tables: Vec::new(),
                };
                if ipt_ok(&facts.iptables) {
                    l.tables
                        .extend(ipt(&facts.iptables, Family::V4, "iptables")?);
                    skip.push("ip filter");
                }
                if ipt_ok(&facts.ip6tables) {
                    l.tables
                        .extend(ipt(&facts.ip6tables, Family::V6, "ip6tables")?);
                    skip.push("ip6 filter");
                }
                out.push(l);
            }
            // Legacy tables beside iptables-nft: a layer of their own.
            if nf_tables && (ipt_ok(&facts.iptables_legacy) || ipt_ok(&facts.ip6tables_legacy)) {
                let mut l = Layer {
                    name: "iptables (legacy)".into(),
                    tables: Vec::new(),
                };
                if ipt_ok(&facts.iptables_legacy) {
                    l.tables
                        .extend(ipt(&facts.iptables_legacy, Family::V4, "iptables-legacy")?);
                }
                if ipt_ok(&facts.ip6tables_legacy) {
                    l.tables.extend(ipt(
                        &facts.ip6tables_legacy,
                        Family::V6,
                        "ip6tables-legacy",
                    )?);
                }
                out.push(l);
            }
            match &facts.nft {
                Output::Text(t) => {
                    // With iptables-nft the `ip filter` and `ip6 filter`
                    // tables are iptables' own, read above from iptables-save;
                    // with legacy iptables both layers filter in turn.
                    let skip = if nf_tables { skip } else { Vec::new() };
                    out.push(nft::parse(t, &skip)?);
                }
                Output::Failed(why) => {
                    return Err(RulesetError::Tool(format!(
                        "`nft -j list ruleset` failed: {why}"
                    )))
                }
                Output::Absent if out.is_empty() => {
                    return Err(RulesetError::Tool(
                        "neither nft nor iptables-save is available to read the firewall".into(),
                    ))
                }
                Output::Absent => {}
            }
            Ok(out)
        }
    }
}

/// Whether a packet gets through every layer.
fn passes(layers: &[Layer], p: &Probe) -> Result<bool, RulesetError> {
    for l in layers {
        if !l.may_accept(p)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Reachable ports (index = port) for NEW packets of one family and protocol.
///
/// Only ports where some rule's port match can change are evaluated: every
/// port between two such boundaries meets the same rules the same way.
pub fn reachable(
    layers: &[Layer],
    family: Family,
    proto: Proto,
) -> Result<Vec<bool>, RulesetError> {
    let mut bounds: Vec<u64> = vec![1];
    for l in layers {
        for t in &l.tables {
            for c in t.chains.values() {
                for r in &c.rules {
                    r.port_bounds(&mut bounds);
                }
            }
        }
    }
    bounds.retain(|b| (1..=65535).contains(b));
    bounds.sort_unstable();
    bounds.dedup();
    let mut out = vec![false; 65536];
    for (i, start) in bounds.iter().enumerate() {
        let end = bounds.get(i + 1).map_or(65535, |n| n - 1);
        let p = Probe {
            family,
            proto,
            dport: u16::try_from(*start).unwrap_or(u16::MAX),
            ct: CtState::New,
        };
        let open = passes(layers, &p)?;
        let (s, e) = (
            usize::try_from(*start).unwrap_or(0),
            usize::try_from(end).unwrap_or(0),
        );
        if let Some(slots) = out.get_mut(s..=e) {
            slots.iter_mut().for_each(|x| *x = open);
        }
    }
    Ok(out)
}

fn ranges(ports: &[u16]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while let Some(&a) = ports.get(i) {
        let mut b = a;
        while ports.get(i + 1) == Some(&b.saturating_add(1)) && b < u16::MAX {
            b += 1;
            i += 1;
        }
        out.push(if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        });
        i += 1;
    }
    out.join(", ")
}

fn fam_names(fams: &[Family]) -> String {
    fams.iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(" and ")
}

impl CheckKind for Firewall {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str = "inbound traffic is denied by default, only allowed ports are reachable, every listener is covered";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.allowed_tcp.contains(&0) {
            out.push((Some("allowed_tcp"), "port 0 is not a port".into()));
        }
        if p.allowed_udp.contains(&0) {
            out.push((Some("allowed_udp"), "port 0 is not a port".into()));
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let layers = match layers(p.backend, facts) {
            Ok(l) => l,
            Err(e) => return Verdict::error(e.to_string()),
        };
        let allowed = |proto: Proto| match proto {
            Proto::Tcp => &p.allowed_tcp,
            Proto::Udp => &p.allowed_udp,
        };
        let mut findings: Vec<Finding> = Vec::new();
        let mut deny_chains = BTreeMap::new();

        // Default deny, per family.
        for fam in FAMILIES {
            let chains: Vec<String> = layers
                .iter()
                .flat_map(|l| l.default_deny_chains(fam))
                .collect();
            deny_chains.insert(fam.name().to_owned(), chains.clone());
            if chains.is_empty() && p.require_default_deny {
                let why = if layers.iter().any(|l| l.has_input_chain(fam)) {
                    "no input chain drops by policy or ends in a catch-all drop or reject"
                } else {
                    "no input chain filters it at all"
                };
                findings.push(Code::NoDefaultDeny.finding(
                    fam.name(),
                    format!(
                        "inbound {} traffic is not denied by default: {why}",
                        fam.name()
                    ),
                ));
            }
        }

        // Reachable ports, per protocol and family.
        let mut open: Vec<(Proto, Family, Vec<bool>)> = Vec::new();
        for proto in PROTOS {
            for fam in FAMILIES {
                match reachable(&layers, fam, proto) {
                    Ok(r) => open.push((proto, fam, r)),
                    Err(e) => return Verdict::error(e.to_string()),
                }
            }
        }
        let reach = |proto: Proto, fam: Family, port: u16| -> bool {
            open.iter()
                .find(|(p, f, _)| *p == proto && *f == fam)
                .and_then(|(_, _, r)| r.get(usize::from(port)).copied())
                .unwrap_or(false)
        };
        let mut open_ports: BTreeMap<String, Vec<u16>> = BTreeMap::new();
        for proto in PROTOS {
            // One finding per protocol and set of families, listing port ranges.
            let mut groups: Vec<(Vec<Family>, Vec<u16>)> = Vec::new();
            for port in 1..=u16::MAX {
                let fams: Vec<Family> = FAMILIES
                    .into_iter()
                    .filter(|f| reach(proto, *f, port))
                    .collect();
                if fams.is_empty() {
                    continue;
                }
                for f in &fams {
                    open_ports
                        .entry(format!("{}/{}", proto.name(), f.name()))
                        .or_default()
                        .push(port);
                }
                if allowed(proto).contains(&port) {
                    continue;
                }
                match groups.iter_mut().find(|(gf, _)| *gf == fams) {
                    Some((_, ports)) => ports.push(port),
                    None => groups.push((fams, vec![port])),
                }
            }
            for (fams, ports) in groups {
                let r = ranges(&ports);
                findings.push(Code::PortNotAllowed.finding(
                    format!("{}/{r}", proto.name()),
                    format!(
                        "{} port{} {r} reachable over {} but not in allowed_{}",
                        proto.name(),
                        if ports.len() == 1 { "" } else { "s" },
                        fam_names(&fams),
                        proto.name()
                    ),
                ));
            }
        }
        // Summarize open ports as ranges in the evidence.
        let reachable_ranges: BTreeMap<String, String> = open_ports
            .into_iter()
            .map(|(k, ports)| (k, ranges(&ports)))
            .collect();

        // Replies must get back in where the default is deny.
        for fam in FAMILIES {
            let denies = layers
                .iter()
                .any(|l| !l.default_deny_chains(fam).is_empty());
            if !denies {
                continue;
            }
            let probe = Probe {
                family: fam,
                proto: Proto::Tcp,
                dport: 40000,
                ct: CtState::Established,
            };
            match passes(&layers, &probe) {
                Ok(true) => {}
                Ok(false) => findings.push(Code::EstablishedNotAccepted.finding(
                    fam.name(),
                    format!(
                        "{} packets of established connections are dropped: add `ct state established,related accept`",
                        fam.name()
                    ),
                )),
                Err(e) => return Verdict::error(e.to_string()),
            }
        }

        // Listening sockets.
        let mut listening: u64 = 0;
        if p.check_listening {
            let sockets = match &facts.sockets {
                Ok(s) => s,
                Err(e) => return Verdict::error(format!("cannot read listening sockets: {e}")),
            };
            let mut seen = std::collections::BTreeSet::new();
            for s in sockets.iter().filter(|s| !s.is_loopback()) {
                listening += 1;
                let proto = if s.proto == "udp" {
                    Proto::Udp
                } else {
                    Proto::Tcp
                };
                let fams: Vec<Family> = s
                    .families()
                    .into_iter()
                    .filter(|f| reach(proto, *f, s.port))
                    .collect();
                let who = match (&s.process, s.pid) {
                    (Some(name), Some(pid)) => format!("`{name}` (pid {pid})"),
                    (Some(name), None) => format!("`{name}`"),
                    _ => "an unknown process".into(),
                };
                let subject = format!("{}/{}", s.proto, s.port);
                if !allowed(proto).contains(&s.port) {
                    if !fams.is_empty() && seen.insert((subject.clone(), who.clone())) {
                        findings.push(Code::ListeningPortExposed.finding(
                            subject,
                            format!(
                                "{who} listens on {}:{} ({}) and the firewall lets {} traffic to it through; allowed_{} does not list it",
                                if s.address.contains(':') { format!("[{}]", s.address) } else { s.address.clone() },
                                s.port,
                                s.proto,
                                fam_names(&fams),
                                s.proto
                            ),
                        ));
                    }
                } else if fams.is_empty() && seen.insert((subject.clone(), who.clone())) {
                    findings.push(Code::AllowedPortClosed.finding(
                        subject,
                        format!(
                            "{who} listens on allowed {} port {} but the firewall drops it",
                            s.proto, s.port
                        ),
                    ));
                }
            }
        }

        let evidence = Evidence {
            layers: layers
                .iter()
                .map(|l| LayerSeen {
                    name: l.name.clone(),
                    tables: l.tables.iter().map(|t| t.name.clone()).collect(),
                })
                .collect(),
            default_deny_chains: deny_chains,
            reachable: reachable_ranges,
            listening_checked: p.check_listening,
            listening_sockets: listening,
        };
        let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
        Verdict::from_findings(
            findings,
            format!(
                "{}only allowed ports reachable ({}), {listening} listening socket(s) covered",
                if p.require_default_deny {
                    "default deny for IPv4 and IPv6, "
                } else {
                    ""
                },
                names.join(" + ")
            ),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests;
