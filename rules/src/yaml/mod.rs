//! Located YAML: a node tree where every node knows its line and column, and a
//! serde deserializer over it that reports problems at the node they concern.
//!
//! serde_yaml stops at the first error and keeps no positions once a value is
//! parsed, so a policy with three mistakes would show one. Here the document is
//! parsed once (yaml-rust2's marked events) into [`Node`]s; validation walks the
//! tree and collects every [`Diag`], and typed parameter structs are filled by
//! [`from_node`], which records *every* unknown key of a struct before failing.

mod de;
mod parse;

pub use de::{from_node, DeError};
pub use parse::{parse, MAX_ALIAS_NODES, MAX_DEPTH};

use yaml_rust2::scanner::Marker;

/// A position in a YAML document, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    fn from_marker(m: &Marker) -> Self {
        Loc {
            line: u32::try_from(m.line()).unwrap_or(u32::MAX),
            col: u32::try_from(m.col())
                .unwrap_or(u32::MAX - 1)
                .saturating_add(1),
        }
    }
}

/// One problem in a document, at a place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diag {
    pub loc: Loc,
    pub message: String,
}

impl Diag {
    pub fn new(loc: Loc, message: impl Into<String>) -> Self {
        Diag {
            loc,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or nothing at all.
    Null,
    /// Any scalar. `plain` is false for quoted and block scalars, which are
    /// always strings.
    Scalar {
        value: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in document order.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub kind: NodeKind,
    pub loc: Loc,
}

impl Node {
    /// A short word for error messages: "a mapping", "a list", ...
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Null => "nothing".into(),
            NodeKind::Scalar { value, .. } => format!("`{}`", shorten(value)),
            NodeKind::Seq(_) => "a list".into(),
            NodeKind::Map(_) => "a mapping".into(),
        }
    }

    pub fn as_map(&self) -> Option<&[(Node, Node)]> {
        match &self.kind {
            NodeKind::Map(m) => Some(m),
            _ => None,
        }
    }

    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Seq(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar (numbers and booleans included).
    pub fn as_scalar(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Looks a key up in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.as_scalar() == Some(key))
            .map(|(_, v)| v)
    }
}

fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod hostile;
#[cfg(test)]
mod tests;
