//! The rule model both backends parse into, and its evaluation.
//!
//! A probe packet is an inbound packet from outside (never on loopback) with
//! a family, a transport protocol, a destination port and a conntrack state.
//! Conditions the model does not track (source addresses, rate limits,
//! interface names other than loopback) are *maybe*: an accept behind them
//! may happen, a drop behind them may not. The outcome is therefore an
//! over-approximation of what is reachable, never an under-approximation.

use std::collections::{BTreeMap, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn name(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
    pub fn number(self) -> u64 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CtState {
    New,
    Established,
}

impl CtState {
    fn name(self) -> &'static str {
        match self {
            CtState::New => "new",
            CtState::Established => "established",
        }
    }
}

/// An inbound packet arriving on a non-loopback interface.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub family: Family,
    pub proto: Proto,
    pub dport: u16,
    pub ct: CtState,
}

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tri {
    True,
    False,
    Maybe,
}

impl Tri {
    fn and(self, o: Tri) -> Tri {
        match (self, o) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::True, Tri::True) => Tri::True,
            _ => Tri::Maybe,
        }
    }
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Maybe => Tri::Maybe,
        }
    }
    fn from(b: bool) -> Tri {
        if b {
            Tri::True
        } else {
            Tri::False
        }
    }
}

/// A value in a match or a set: a number, an inclusive range, or a word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Val {
    Num(u64),
    Range(u64, u64),
    Word(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
}

/// What a condition looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Key {
    /// The destination port; `Some(proto)` also requires that protocol.
    Dport(Option<Proto>),
    /// The transport protocol (numbers or names).
    L4proto,
    /// `ipv4` / `ipv6`.
    Nfproto,
    /// The input interface name or index; only loopback is known.
    Iif,
    /// Conntrack state names.
    CtState,
    /// Something the model does not track, e.g. a source address.
    Untracked(String),
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// The condition only holds for this family (payload of `ip`/`ip6`).
    pub family: Option<Family>,
    /// The condition only holds for this protocol (payload of `tcp`/`udp`).
    pub proto: Option<Proto>,
    pub key: Key,
    pub op: Op,
    pub vals: Vec<Val>,
}

impl Cond {
    pub fn new(key: Key, op: Op, vals: Vec<Val>) -> Self {
        Cond {
            family: None,
            proto: None,
            key,
            op,
            vals,
        }
    }

    fn eval(&self, p: &Probe) -> Tri {
        if self.family.is_some_and(|f| f != p.family) || self.proto.is_some_and(|x| x != p.proto) {
            return Tri::False;
        }
        let hit = |t: Tri| -> Tri {
            match self.op {
                Op::Ne => t.not(),
                _ => t,
            }
        };
        match &self.key {
            Key::Dport(proto) => {
                if proto.is_some_and(|x| x != p.proto) {
                    return Tri::False;
                }
                let port = u64::from(p.dport);
                match self.op {
                    Op::Eq | Op::Ne => hit(Tri::from(self.vals.iter().any(|v| match v {
                        Val::Num(n) => *n == port,
                        Val::Range(a, b) => *a <= port && port <= *b,
                        Val::Word(_) => false,
                    }))),
                    op => {
                        let Some(Val::Num(n)) = self.vals.first() else {
                            return Tri::Maybe;
                        };
                        Tri::from(match op {
                            Op::Lt => port < *n,
                            Op::Gt => port > *n,
                            Op::Le => port <= *n,
                            _ => port >= *n,
                        })
                    }
                }
            }
            Key::L4proto => hit(Tri::from(self.vals.iter().any(|v| match v {
                Val::Num(n) => *n == p.proto.number(),
                Val::Range(a, b) => *a <= p.proto.number() && p.proto.number() <= *b,
                Val::Word(w) => w == p.proto.name(),
            }))),
            Key::Nfproto => hit(Tri::from(self.vals.iter().any(|v| match v {
                Val::Word(w) => {
                    (w == "ipv4" && p.family == Family::V4)
                        || (w == "ipv6" && p.family == Family::V6)
                }
                Val::Num(n) => {
                    (*n == 2 && p.family == Family::V4) || (*n == 10 && p.family == Family::V6)
                }
                Val::Range(..) => false,
            }))),
            Key::Iif => {
                // The probe comes from outside: never loopback, name unknown.
                let all_lo = self
                    .vals
                    .iter()
                    .all(|v| matches!(v, Val::Word(w) if w == "lo"));
                if all_lo && !self.vals.is_empty() {
                    hit(Tri::False)
                } else {
                    Tri::Maybe
                }
            }
            Key::CtState => hit(Tri::from(
                self.vals
                    .iter()
                    .any(|v| matches!(v, Val::Word(w) if w == p.ct.name())),
            )),
            Key::Untracked(_) => Tri::Maybe,
        }
    }
}

/// What a rule does when it matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Accept,
    Drop,
    Return,
    Jump(String),
    Goto(String),
    /// No verdict: counters, logs, comments.
    Continue,
    /// A verdict map: the first entry whose condition holds decides;
    /// none holding means continue.
    Map(Vec<(Cond, Action)>),
}

/// One rule: all conditions must hold, then the action applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Where the rule is, for messages (`inet filter input #3`).
    pub place: String,
    pub conds: Vec<Cond>,
    pub action: Action,
    /// The expression the parser did not understand: evaluating this rule is an error.
    pub unsupported: Option<String>,
}

impl Cond {
    /// Ports where this condition's truth may change, for a port key.
    fn port_bounds(&self, out: &mut Vec<u64>) {
        if !matches!(self.key, Key::Dport(_)) {
            return;
        }
        for v in &self.vals {
            match v {
                Val::Num(n) => out.extend([*n, n + 1]),
                Val::Range(a, b) => out.extend([*a, b + 1]),
                Val::Word(_) => {}
            }
        }
    }
}

fn action_bounds(a: &Action, out: &mut Vec<u64>) {
    if let Action::Map(entries) = a {
        for (c, a) in entries {
            c.port_bounds(out);
            action_bounds(a, out);
        }
    }
}

impl Rule {
    /// Ports where this rule's port matches may change.
    pub fn port_bounds(&self, out: &mut Vec<u64>) {
        for c in &self.conds {
            c.port_bounds(out);
        }
        action_bounds(&self.action, out);
    }

    /// A drop whose conditions hold for every new inbound packet of family
    /// `f` (none at all, or e.g. `iifname != "lo"`): a catch-all.
    pub fn is_catch_all_drop(&self, f: Family) -> bool {
        if self.unsupported.is_some() || self.action != Action::Drop {
            return false;
        }
        [Proto::Tcp, Proto::Udp].into_iter().all(|proto| {
            [1u16, 1024, 65535].into_iter().all(|dport| {
                let p = Probe {
                    family: f,
                    proto,
                    dport,
                    ct: CtState::New,
                };
                self.conds.iter().all(|c| c.eval(&p) == Tri::True)
            })
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    /// Set for base chains on the input hook of a filter type.
    pub input_hook: bool,
    /// `Some(true)` for policy drop.
    pub policy_drop: bool,
    pub priority: i64,
    pub rules: Vec<Rule>,
}

/// A table (nftables) or the iptables `filter` table of one family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// `inet filter`, `ip6 filter`, `iptables filter`, for messages.
    pub name: String,
    pub families: Vec<Family>,
    pub chains: BTreeMap<String, Chain>,
}

/// One filtering layer (nftables, or legacy iptables): a packet must be
/// accepted by every input base chain of its family to get through.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Layer {
    pub name: String,
    pub tables: Vec<Table>,
}

/// What can happen to a packet in a chain.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Outcomes {
    accept: bool,
    drop: bool,
    /// Falls off the end or returns.
    fall: bool,
}

const MAX_DEPTH: usize = 32;

/// Outcomes of chains already run for one probe, by (chain, depth): chains
/// that jump several times into the same chain would otherwise be evaluated
/// exponentially often.
type Memo = HashMap<(String, usize), Outcomes>;

impl Table {
    fn run_chain(
        &self,
        chain: &str,
        p: &Probe,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Outcomes, String> {
        if let Some(o) = memo.get(&(chain.to_owned(), depth)) {
            return Ok(*o);
        }
        let out = self.run_chain_uncached(chain, p, depth, memo)?;
        memo.insert((chain.to_owned(), depth), out);
        Ok(out)
    }

    fn run_chain_uncached(
        &self,
        chain: &str,
        p: &Probe,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<Outcomes, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "jumps nest deeper than {MAX_DEPTH} in `{}`",
                self.name
            ));
        }
        let c = self
            .chains
            .get(chain)
            .ok_or_else(|| format!("jump to the missing chain `{chain}` in `{}`", self.name))?;
        let mut out = Outcomes::default();
        for rule in &c.rules {
            let mut m = Tri::True;
            for cond in &rule.conds {
                m = m.and(cond.eval(p));
                if m == Tri::False {
                    break;
                }
            }
            if m == Tri::False {
                continue;
            }
            if let Some(what) = &rule.unsupported {
                return Err(format!("unsupported expression {what} at {}", rule.place));
            }
            let (res, cont) = self.apply(&rule.action, p, depth, memo)?;
            out.accept |= res.accept;
            out.drop |= res.drop;
            // A return ends this chain; a continue goes on.
            out.fall |= res.fall;
            if m == Tri::True && !cont {
                return Ok(out);
            }
        }
        out.fall = true;
        Ok(out)
    }

    /// The outcomes of an action and whether evaluation may go on after it.
    fn apply(
        &self,
        a: &Action,
        p: &Probe,
        depth: usize,
        memo: &mut Memo,
    ) -> Result<(Outcomes, bool), String> {
        let none = Outcomes::default();
        Ok(match a {
            Action::Accept => (
                Outcomes {
                    accept: true,
                    ..none
                },
                false,
            ),
            Action::Drop => (Outcomes { drop: true, ..none }, false),
            Action::Return => (Outcomes { fall: true, ..none }, false),
            Action::Continue => (none, true),
            Action::Jump(t) => {
                let r = self.run_chain(t, p, depth + 1, memo)?;
                // Falling off a jumped-to chain continues here.
                (
                    Outcomes {
                        accept: r.accept,
                        drop: r.drop,
                        fall: false,
                    },
                    r.fall,
                )
            }
            Action::Goto(t) => (self.run_chain(t, p, depth + 1, memo)?, false),
            Action::Map(entries) => {
                let mut out = none;
                let mut cont = true;
                for (cond, act) in entries {
                    let m = cond.eval(p);
                    if m == Tri::False {
                        continue;
                    }
                    let (r, c) = self.apply(act, p, depth, memo)?;
                    out.accept |= r.accept;
                    out.drop |= r.drop;
                    out.fall |= r.fall;
                    if m == Tri::True {
                        cont = c;
                        break;
                    }
                }
                (out, cont)
            }
        })
    }
}

impl Layer {
    fn input_chains(&self, f: Family) -> impl Iterator<Item = (&Table, &Chain)> {
        self.tables
            .iter()
            .filter(move |t| t.families.contains(&f))
            .flat_map(|t| {
                t.chains
                    .values()
                    .filter(|c| c.input_hook)
                    .map(move |c| (t, c))
            })
    }

    /// Whether the packet may be accepted by this layer.
    pub fn may_accept(&self, p: &Probe) -> Result<bool, super::RulesetError> {
        self.accepts(p).map_err(super::RulesetError::Eval)
    }

    fn accepts(&self, p: &Probe) -> Result<bool, String> {
        for (t, c) in self.input_chains(p.family) {
            let o = t.run_chain(&c.name, p, 0, &mut Memo::new())?;
            let accepted = o.accept || (o.fall && !c.policy_drop);
            if !accepted {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The input base chains of family `f` that drop what nothing else
    /// accepted: policy drop, or a final catch-all drop/reject.
    pub fn default_deny_chains(&self, f: Family) -> Vec<String> {
        self.input_chains(f)
            .filter(|(_, c)| {
                c.policy_drop || c.rules.last().is_some_and(|r| r.is_catch_all_drop(f))
            })
            .map(|(t, c)| format!("{} {}", t.name, c.name))
            .collect()
    }

    pub fn has_input_chain(&self, f: Family) -> bool {
        self.input_chains(f).next().is_some()
    }
}
