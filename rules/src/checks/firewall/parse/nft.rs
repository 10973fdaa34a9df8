//! Parses `nft -j list ruleset` (libnftables JSON, schema 1) into the model.
//!
//! Only tables of families `ip`, `ip6` and `inet` filter inbound packets here;
//! `arp`, `bridge` and `netdev` tables are skipped. An expression this parser
//! does not know is kept on its rule: evaluating that rule is an error naming
//! it, so nothing unknown is ever taken to pass.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::checks::firewall::error::RulesetError;
use crate::checks::firewall::eval::{
    Action, Chain, Cond, Family, Key, Layer, Op, Proto, Rule, Table, Val,
};

type Sets = BTreeMap<(String, String, String), Vec<Val>>;

/// Parses the JSON text. `skip` names tables (`family name`) to leave out.
pub fn parse(text: &str, skip: &[&str]) -> Result<Layer, RulesetError> {
    parse_json(text, skip).map_err(RulesetError::Nft)
}

fn parse_json(text: &str, skip: &[&str]) -> Result<Layer, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "nft JSON is not valid at line {} column {}: {e}",
            e.line(),
            e.column()
        )
    })?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("nft JSON has no `nftables` array")?;

    let mut tables: BTreeMap<(String, String), Table> = BTreeMap::new();
    let mut sets: Sets = BTreeMap::new();
    let mut rule_counts: BTreeMap<(String, String, String), usize> = BTreeMap::new();

    // First pass: tables, chains, sets.
    for item in items {
        let Some(obj) = item.as_object() else {
            return Err("nft JSON: an entry of `nftables` is not an object".into());
        };
        if let Some(t) = obj.get("table") {
            let (fam, name) = (s(t, "family")?, s(t, "name")?);
            let Some(families) = families_of(&fam) else {
                continue;
            };
            if skip.contains(&format!("{fam} {name}").as_str()) {
                continue;
            }
            tables.insert(
                (fam.clone(), name.clone()),
                Table {
                    name: format!("{fam} {name}"),
                    families,
                    chains: BTreeMap::new(),
                },
            );
        } else if let Some(c) = obj.get("chain") {
            let key = (s(c, "family")?, s(c, "table")?);
            let Some(table) = tables.get_mut(&key) else {
                continue;
            };
            let name = s(c, "name")?;
            let hook = c.get("hook").and_then(Value::as_str);
            let typ = c.get("type").and_then(Value::as_str);
            table.chains.insert(
                name.clone(),
                Chain {
                    name,
                    input_hook: hook == Some("input") && typ.unwrap_or("filter") == "filter",
                    policy_drop: c.get("policy").and_then(Value::as_str) == Some("drop"),
                    priority: c.get("prio").and_then(Value::as_i64).unwrap_or(0),
                    rules: Vec::new(),
                },
            );
        } else if let Some(set) = obj.get("set") {
            let key = (s(set, "family")?, s(set, "table")?, s(set, "name")?);
            let mut vals = Vec::new();
            if let Some(elems) = set.get("elem").and_then(Value::as_array) {
                for e in elems {
                    // `{"elem": {"val": X, "timeout": ..}}` wraps a value.
                    let e = e.get("elem").and_then(|x| x.get("val")).unwrap_or(e);
                    vals.push(value(e).map_err(|w| format!("set `{}`: {w}", key.2))?);
                }
            }
            sets.insert(key, vals);
        }
    }

    // Second pass: rules.
    for item in items {
        let Some(r) = item.get("rule") else { continue };
        let (fam, tname, cname) = (s(r, "family")?, s(r, "table")?, s(r, "chain")?);
        let Some(table) = tables.get_mut(&(fam.clone(), tname.clone())) else {
            continue;
        };
        let n = rule_counts
            .entry((fam.clone(), tname.clone(), cname.clone()))
            .or_default();
        *n += 1;
        let place = format!(
            "{fam} {tname} {cname} rule {n}{}",
            r.get("handle")
                .and_then(Value::as_u64)
                .map(|h| format!(" (handle {h})"))
                .unwrap_or_default()
        );
        let exprs = r
            .get("expr")
            .and_then(Value::as_array)
            .ok_or_else(|| format!("{place}: no `expr` list"))?;
        let rule = parse_rule(exprs, place, &fam, &tname, &sets);
        let chain = table
            .chains
            .get_mut(&cname)
            .ok_or_else(|| format!("a rule in the unknown chain `{cname}` of `{fam} {tname}`"))?;
        chain.rules.push(rule);
    }

    Ok(Layer {
        name: "nftables".into(),
        tables: tables.into_values().collect(),
    })
}

fn families_of(fam: &str) -> Option<Vec<Family>> {
    match fam {
        "ip" => Some(vec![Family::V4]),
        "ip6" => Some(vec![Family::V6]),
        "inet" => Some(vec![Family::V4, Family::V6]),
        _ => None,
    }
}

fn s(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(|x| {
            x.as_str()
                .map(String::from)
                .or_else(|| x.as_u64().map(|n| n.to_string()))
        })
        .ok_or_else(|| format!("nft JSON: an object lacks `{key}`"))
}

fn parse_rule(exprs: &[Value], place: String, fam: &str, table: &str, sets: &Sets) -> Rule {
    let mut rule = Rule {
        place,
        conds: Vec::new(),
        action: Action::Continue,
        unsupported: None,
    };
    for e in exprs {
        match statement(e, fam, table, sets) {
            Ok(Stmt::Cond(c)) => rule.conds.push(c),
            Ok(Stmt::Action(a)) => {
                // The first verdict ends the rule.
                if rule.action == Action::Continue {
                    rule.action = a;
                }
            }
            Ok(Stmt::Nothing) => {}
            Err(what) => {
                rule.unsupported.get_or_insert(what);
            }
        }
    }
    rule
}

enum Stmt {
    Cond(Cond),
    Action(Action),
    Nothing,
}

fn one(e: &Value) -> Option<(&String, &Value)> {
    let obj: &Map<String, Value> = e.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.iter().next()
}

fn describe(e: &Value) -> String {
    let mut t = e.to_string();
    if t.len() > 120 {
        let cut = (0..=120)
            .rev()
            .find(|i| t.is_char_boundary(*i))
            .unwrap_or(0);
        t.truncate(cut);
        t.push('…');
    }
    format!("`{t}`")
}

fn statement(e: &Value, fam: &str, table: &str, sets: &Sets) -> Result<Stmt, String> {
    let Some((name, body)) = one(e) else {
        return Err(describe(e));
    };
    Ok(match name.as_str() {
        "match" => Stmt::Cond(match_cond(body, fam, table, sets).map_err(|w| {
            if w.is_empty() {
                describe(e)
            } else {
                w
            }
        })?),
        "accept" => Stmt::Action(Action::Accept),
        "drop" | "reject" => Stmt::Action(Action::Drop),
        "return" => Stmt::Action(Action::Return),
        "continue" => Stmt::Action(Action::Continue),
        "jump" | "goto" => {
            let target = body
                .get("target")
                .and_then(Value::as_str)
                .ok_or_else(|| describe(e))?
                .to_owned();
            Stmt::Action(if name == "jump" {
                Action::Jump(target)
            } else {
                Action::Goto(target)
            })
        }
        // Statements without a verdict that do not change the packet's fate.
        "counter" | "log" | "comment" | "notrack" | "mangle" => Stmt::Nothing,
        // A rate limit or quota matches some packets only.
        "limit" | "quota" => {
            Stmt::Cond(Cond::new(Key::Untracked(name.clone()), Op::Eq, Vec::new()))
        }
        "vmap" => {
            let key = body.get("key").ok_or_else(|| describe(e))?;
            let (base, _) = key_of(key).map_err(|_| describe(e))?;
            let data = body.get("data").ok_or_else(|| describe(e))?;
            let entries = if let Some(named) = data.as_str() {
                return Err(format!(
                    "a verdict map by name ({named}) in `{fam} {table}`"
                ));
            } else {
                data.get("set")
                    .and_then(Value::as_array)
                    .ok_or_else(|| describe(e))?
            };
            let mut out = Vec::new();
            for pair in entries {
                let (k, v) = match pair.as_array().map(Vec::as_slice) {
                    Some([k, v]) => (k, v),
                    _ => return Err(describe(e)),
                };
                let mut c = base.clone();
                c.vals = vec![value(k)?];
                let Stmt::Action(a) = statement(v, fam, table, sets)? else {
                    return Err(describe(e));
                };
                out.push((c, a));
            }
            Stmt::Action(Action::Map(out))
        }
        _ => return Err(describe(e)),
    })
}

/// The condition a `match` tests; `Err("")` for an unknown shape.
fn match_cond(body: &Value, fam: &str, table: &str, sets: &Sets) -> Result<Cond, String> {
    let op = match body.get("op").and_then(Value::as_str).unwrap_or("==") {
        "==" | "in" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        ">" => Op::Gt,
        "<=" => Op::Le,
        ">=" => Op::Ge,
        _ => return Err(String::new()),
    };
    let left = body.get("left").ok_or(String::new())?;
    let right = body.get("right").ok_or(String::new())?;
    let (mut cond, tracked) = key_of(left)?;
    // INVARIANT: untracked keys evaluate to maybe whatever their operator,
    // and implied-protocol keys keep their own `==`.
    if tracked {
        cond.op = op;
        cond.vals = values(right, fam, table, sets)?;
    }
    Ok(cond)
}

/// The key of a match's left side: the condition without values, and
/// whether its values matter to the model.
fn key_of(left: &Value) -> Result<(Cond, bool), String> {
    let Some((kind, body)) = one(left) else {
        return Err(describe(left));
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or_default();
    let fam_of = |p: &str| match p {
        "ip" => Some(Family::V4),
        "ip6" => Some(Family::V6),
        _ => None,
    };
    let proto_of = |p: &str| match p {
        "tcp" => Some(Proto::Tcp),
        "udp" => Some(Proto::Udp),
        _ => None,
    };
    let untracked = |what: String| (Cond::new(Key::Untracked(what), Op::Eq, Vec::new()), false);
    Ok(match kind.as_str() {
        "payload" => {
            let (proto, f) = (field("protocol"), field("field"));
            match (proto, f) {
                ("tcp" | "udp", "dport") => (
                    Cond::new(Key::Dport(proto_of(proto)), Op::Eq, Vec::new()),
                    true,
                ),
                ("th", "dport") => (Cond::new(Key::Dport(None), Op::Eq, Vec::new()), true),
                ("ip", "protocol") | ("ip6", "nexthdr") => {
                    let mut c = Cond::new(Key::L4proto, Op::Eq, Vec::new());
                    c.family = fam_of(proto);
                    (c, true)
                }
                ("ip" | "ip6", _) => {
                    let (mut c, t) = untracked(format!("{proto} {f}"));
                    c.family = fam_of(proto);
                    (c, t)
                }
                ("tcp" | "udp", _) => {
                    let (mut c, t) = untracked(format!("{proto} {f}"));
                    c.proto = proto_of(proto);
                    (c, t)
                }
                ("th", _) => untracked(format!("th {f}")),
                // Any test of an icmp/sctp field implies that protocol,
                // which a tcp/udp probe never is.
                ("icmp" | "icmpv6" | "sctp" | "dccp", _) => {
                    let word = if proto == "icmpv6" {
                        "ipv6-icmp"
                    } else {
                        proto
                    };
                    (
                        Cond::new(Key::L4proto, Op::Eq, vec![Val::Word(word.to_owned())]),
                        false,
                    )
                }
                _ if body.get("base").is_some() => untracked("raw payload".into()),
                _ => return Err(describe(left)),
            }
        }
        "meta" => match field("key") {
            "l4proto" => (Cond::new(Key::L4proto, Op::Eq, Vec::new()), true),
            "nfproto" => (Cond::new(Key::Nfproto, Op::Eq, Vec::new()), true),
            "iif" | "iifname" => (Cond::new(Key::Iif, Op::Eq, Vec::new()), true),
            "iiftype" | "iifgroup" | "mark" | "skuid" | "skgid" | "pkttype" | "cpu" | "cgroup"
            | "length" | "priority" | "protocol" | "nftrace" | "rtclassid" | "ibrname" | "time"
            | "day" | "hour" => untracked(format!("meta {}", field("key"))),
            _ => return Err(describe(left)),
        },
        "ct" => match field("key") {
            "state" => (Cond::new(Key::CtState, Op::Eq, Vec::new()), true),
            "status" | "mark" | "direction" | "helper" | "zone" | "count" | "saddr" | "daddr"
            | "original" | "reply" | "expiration" | "l3proto" | "protocol" | "proto-src"
            | "proto-dst" | "label" | "bytes" | "packets" => {
                untracked(format!("ct {}", field("key")))
            }
            _ => return Err(describe(left)),
        },
        "fib" | "socket" | "rt" | "ipsec" | "exthdr" | "tcp option" | "sctp chunk" => {
            untracked(kind.clone())
        }
        _ => return Err(describe(left)),
    })
}

fn values(right: &Value, fam: &str, table: &str, sets: &Sets) -> Result<Vec<Val>, String> {
    if let Some(name) = right.as_str().and_then(|r| r.strip_prefix('@')) {
        return sets
            .get(&(fam.to_owned(), table.to_owned(), name.to_owned()))
            .cloned()
            .ok_or_else(|| format!("the set `@{name}` is not defined in `{fam} {table}`"));
    }
    if let Some(list) = right.as_array() {
        return list.iter().map(value).collect();
    }
    if let Some(set) = right.get("set").and_then(Value::as_array) {
        return set.iter().map(value).collect();
    }
    Ok(vec![value(right)?])
}

fn value(v: &Value) -> Result<Val, String> {
    if let Some(n) = v.as_u64() {
        return Ok(Val::Num(n));
    }
    if let Some(w) = v.as_str() {
        return Ok(service(w).map_or_else(|| Val::Word(w.to_owned()), Val::Num));
    }
    if let Some(r) = v.get("range").and_then(Value::as_array) {
        if let [a, b] = r.as_slice() {
            if let (Ok(Val::Num(a)), Ok(Val::Num(b))) = (value(a), value(b)) {
                return Ok(Val::Range(a, b));
            }
        }
    }
    if v.get("prefix").is_some() {
        // An address prefix: a value the model does not track.
        return Ok(Val::Word(v.to_string()));
    }
    Err(describe(v))
}

/// Well-known service names nft may print instead of port numbers.
fn service(w: &str) -> Option<u64> {
    Some(match w {
        "ssh" => 22,
        "smtp" => 25,
        "domain" => 53,
        "http" => 80,
        "ntp" => 123,
        "https" => 443,
        "submission" => 587,
        "imaps" => 993,
        _ => return None,
    })
}
