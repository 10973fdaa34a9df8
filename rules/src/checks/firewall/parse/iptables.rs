//! Parses `iptables-save` / `ip6tables-save` output into the model: the
//! `filter` table's `INPUT` chain and the chains it reaches. Match modules and
//! targets this parser does not know make their rule unsupported, and
//! evaluating it an error that names them.

use std::collections::BTreeMap;

use crate::checks::firewall::error::RulesetError;
use crate::checks::firewall::eval::{
    Action, Chain, Cond, Family, Key, Op, Proto, Rule, Table, Val,
};

/// Parses one family's save output. `Ok(None)` when it has no `*filter` table.
pub fn parse(text: &str, family: Family) -> Result<Option<Table>, RulesetError> {
    parse_save(text, family).map_err(RulesetError::Iptables)
}

fn parse_save(text: &str, family: Family) -> Result<Option<Table>, String> {
    let tool = match family {
        Family::V4 => "iptables",
        Family::V6 => "ip6tables",
    };
    if let Some(warn) = text.lines().find(|l| l.contains("incompatible")) {
        return Err(format!(
            "{tool}-save cannot show the rules: {}",
            warn.trim_start_matches('#').trim()
        ));
    }
    let mut chains: BTreeMap<String, Chain> = BTreeMap::new();
    let mut in_filter = false;
    let mut seen_filter = false;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let lineno = i + 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(t) = line.strip_prefix('*') {
            in_filter = t == "filter";
            seen_filter |= in_filter;
            continue;
        }
        if line == "COMMIT" {
            in_filter = false;
            continue;
        }
        if !in_filter {
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let mut parts = decl.split_whitespace();
            let name = parts
                .next()
                .ok_or_else(|| format!("{tool}-save line {lineno}: a chain without a name"))?;
            let policy = parts.next().unwrap_or("-");
            chains.insert(
                name.to_owned(),
                Chain {
                    name: name.to_owned(),
                    input_hook: name == "INPUT",
                    policy_drop: policy == "DROP",
                    priority: 0,
                    rules: Vec::new(),
                },
            );
            continue;
        }
        let tokens = tokenize(line).map_err(|e| format!("{tool}-save line {lineno}: {e}"))?;
        let (Some("-A"), Some(chain)) = (tokens.first().map(String::as_str), tokens.get(1)) else {
            return Err(format!(
                "{tool}-save line {lineno}: expected `-A CHAIN ...`, found `{line}`"
            ));
        };
        let n = counts.entry(chain.clone()).or_default();
        *n += 1;
        let place = format!("{tool} filter {chain} rule {n} (line {lineno})");
        let rule = parse_rule(tokens.get(2..).unwrap_or_default(), place, family);
        chains
            .get_mut(chain)
            .ok_or_else(|| {
                format!("{tool}-save line {lineno}: the chain `{chain}` is not declared")
            })?
            .rules
            .push(rule);
    }
    if !seen_filter {
        return Ok(None);
    }
    Ok(Some(Table {
        name: format!("{tool} filter"),
        families: vec![family],
        chains,
    }))
}

fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                has = true;
            }
            c if c.is_whitespace() && !quoted => {
                if has || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            c => cur.push(c),
        }
    }
    if quoted {
        return Err("an unterminated quote".into());
    }
    if has || !cur.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn ports(spec: &str) -> Result<Vec<Val>, String> {
    spec.split(',')
        .map(|p| {
            let num = |x: &str| {
                x.parse::<u64>()
                    .map_err(|_| format!("`{x}` is not a port number"))
            };
            match p.split_once(':') {
                Some((a, b)) => Ok(Val::Range(
                    if a.is_empty() { 0 } else { num(a)? },
                    if b.is_empty() { 65535 } else { num(b)? },
                )),
                None => Ok(Val::Num(num(p)?)),
            }
        })
        .collect()
}

fn parse_rule(args: &[String], place: String, family: Family) -> Rule {
    let mut rule = Rule {
        place,
        conds: Vec::new(),
        action: Action::Continue,
        unsupported: None,
    };
    if let Err(e) = parse_args(args, &mut rule, family) {
        rule.unsupported = Some(e);
    }
    rule
}

fn parse_args(args: &[String], rule: &mut Rule, family: Family) -> Result<(), String> {
    let mut proto: Option<Proto> = None;
    let mut negate = false;
    let mut i = 0;
    let arg = |i: usize| -> Result<&str, String> {
        args.get(i).map(String::as_str).ok_or_else(|| {
            format!(
                "`{}` without a value",
                args.get(i.wrapping_sub(1))
                    .map(String::as_str)
                    .unwrap_or("?")
            )
        })
    };
    let op = |neg: bool| if neg { Op::Ne } else { Op::Eq };
    while let Some(tok) = args.get(i) {
        let t = tok.as_str();
        i += 1;
        if t == "!" {
            negate = true;
            continue;
        }
        let neg = std::mem::take(&mut negate);
        match t {
            "-p" | "--protocol" => {
                let p = arg(i)?;
                i += 1;
                proto = match p {
                    "tcp" | "6" => Some(Proto::Tcp),
                    "udp" | "17" => Some(Proto::Udp),
                    _ => None,
                };
                if p != "all" && p != "0" {
                    let v = match p.parse::<u64>() {
                        Ok(n) => Val::Num(n),
                        Err(_) => Val::Word(if p == "icmpv6" {
                            "ipv6-icmp".into()
                        } else {
                            p.to_owned()
                        }),
                    };
                    rule.conds.push(Cond::new(Key::L4proto, op(neg), vec![v]));
                }
                if neg {
                    proto = None;
                }
            }
            "-s" | "--source" | "-d" | "--destination" | "-o" | "--out-interface" => {
                let v = arg(i)?;
                i += 1;
                rule.conds.push(Cond::new(
                    Key::Untracked(format!("{t} {v}")),
                    Op::Eq,
                    Vec::new(),
                ));
            }
            "-i" | "--in-interface" => {
                let v = arg(i)?;
                i += 1;
                let v = if v.ends_with('+') {
                    format!("{v}*")
                } else {
                    v.to_owned()
                };
                rule.conds
                    .push(Cond::new(Key::Iif, op(neg), vec![Val::Word(v)]));
            }
            "-f" | "--fragment" => {
                rule.conds.push(Cond::new(
                    Key::Untracked("fragment".into()),
                    Op::Eq,
                    Vec::new(),
                ));
            }
            "-m" | "--match" => {
                let m = arg(i)?;
                i += 1;
                match m {
                    "tcp" | "udp" | "multiport" | "conntrack" | "state" | "comment" | "limit"
                    | "addrtype" | "icmp" | "icmp6" | "mark" | "connlimit" | "hashlimit"
                    | "pkttype" | "iprange" | "length" | "ttl" | "hl" | "recent" | "time"
                    | "owner" | "physdev" | "mac" | "connmark" | "tcpmss" => {}
                    other => return Err(format!("the match module `{other}`")),
                }
            }
            "--dport" | "--destination-port" | "--dports" | "--destination-ports" | "--ports" => {
                let spec = arg(i)?;
                i += 1;
                let Some(p) = proto else {
                    return Err(format!("`{t}` without `-p tcp` or `-p udp`"));
                };
                let mut c = Cond::new(Key::Dport(Some(p)), op(neg), ports(spec)?);
                if t == "--ports" {
                    // Source or destination: the destination may match.
                    c = Cond::new(
                        Key::Untracked(format!("--ports {spec}")),
                        Op::Eq,
                        Vec::new(),
                    );
                    c.proto = Some(p);
                }
                rule.conds.push(c);
            }
            "--ctstate" | "--state" => {
                let v = arg(i)?;
                i += 1;
                let vals = v
                    .split(',')
                    .map(|s| Val::Word(s.to_ascii_lowercase()))
                    .collect();
                rule.conds.push(Cond::new(Key::CtState, op(neg), vals));
            }
            "--comment" | "--log-prefix" | "--log-level" | "--reject-with" | "--log-uid" => {
                i += 1;
            }
            "--log-tcp-sequence" | "--log-tcp-options" | "--log-ip-options" => {}
            "--tcp-flags" => {
                i += 2;
                let mut c = Cond::new(Key::Untracked(t.to_owned()), Op::Eq, Vec::new());
                c.proto = Some(Proto::Tcp);
                rule.conds.push(c);
            }
            "-j" | "--jump" | "-g" | "--goto" => {
                let target = arg(i)?;
                i += 1;
                rule.action = match target {
                    "ACCEPT" => Action::Accept,
                    "DROP" | "REJECT" => Action::Drop,
                    "RETURN" => Action::Return,
                    "LOG" | "NFLOG" | "ULOG" | "MARK" | "CONNMARK" | "CT" | "AUDIT" => {
                        Action::Continue
                    }
                    chain if t.starts_with("-g") || t == "--goto" => Action::Goto(chain.to_owned()),
                    chain
                        if chain.chars().all(|c| c.is_ascii_uppercase() || c == '_')
                            && !chain.is_empty()
                            && is_known_target(chain) =>
                    {
                        return Err(format!("the target `{chain}`"))
                    }
                    chain => Action::Jump(chain.to_owned()),
                };
            }
            // Options of known modules whose values the model does not track.
            _ if t.starts_with("--") => {
                if let Some(v) = args.get(i) {
                    if !v.starts_with('-') && v != "!" {
                        i += 1;
                    }
                }
                let mut c = Cond::new(Key::Untracked(t.to_owned()), Op::Eq, Vec::new());
                c.proto = if t == "--syn" || t == "--tcp-flags" {
                    Some(Proto::Tcp)
                } else {
                    None
                };
                rule.conds.push(c);
            }
            other => return Err(format!("the option `{other}`")),
        }
    }
    let _ = family;
    Ok(())
}

/// Targets that change packets or hand them elsewhere: not modelled.
fn is_known_target(t: &str) -> bool {
    matches!(
        t,
        "NFQUEUE"
            | "QUEUE"
            | "TPROXY"
            | "DNAT"
            | "SNAT"
            | "MASQUERADE"
            | "REDIRECT"
            | "TEE"
            | "SET"
    )
}
