//! Located YAML: a node tree where every node knows its line and column, and a
//! serde deserializer over it that reports problems at the node they concern.
//!
//! serde_yaml stops at the first error and keeps no positions once a value is
//! parsed, so a policy with three mistakes would show one. Here the document is
//! parsed once (yaml-rust2's marked events) into [`Node`]s; validation walks the
//! tree and collects every [`Diag`], and typed parameter structs are filled by
//! [`from_node`], which records *every* unknown key of a struct before failing.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

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

/// Parses one YAML document. Syntax errors, several documents, duplicate keys
/// and non-scalar keys come back as located diagnostics.
pub fn parse(text: &str) -> Result<Node, Vec<Diag>> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    // The events one by one, not `Parser::load`: that recurses once per
    // nesting level and overflows the stack on deep input.
    loop {
        match parser.next_token() {
            Ok((Event::StreamEnd, _)) => break,
            Ok((ev, mark)) => builder.on_event(ev, mark),
            Err(e) => {
                return Err(vec![Diag::new(
                    Loc::from_marker(e.marker()),
                    format!("invalid YAML: {}", e.info()),
                )])
            }
        }
    }
    let mut diags = builder.diags;
    if builder.docs.len() > 1 {
        if let Some(second) = builder.docs.get(1) {
            diags.push(Diag::new(
                second.loc,
                "expected one YAML document, found several",
            ));
        }
    }
    if !diags.is_empty() {
        return Err(diags);
    }
    Ok(builder.docs.into_iter().next().unwrap_or(Node {
        kind: NodeKind::Null,
        loc: Loc { line: 1, col: 1 },
    }))
}

/// Nesting deeper than this is refused: the tree is walked recursively
/// (validation, deserialization, clone, drop), and a policy needs a handful.
pub const MAX_DEPTH: usize = 64;

/// Nodes that aliases may add to a document in all: a few aliases are
/// convenient, nested ones grow exponentially ("billion laughs").
pub const MAX_ALIAS_NODES: usize = 10_000;

enum Frame {
    Seq(Loc, Vec<Node>, usize),
    Map(Loc, MapFrame, usize),
}

/// A mapping being built: its entries, the key waiting for its value, and
/// the keys seen (so duplicate detection stays linear in the entries).
#[derive(Default)]
struct MapFrame {
    entries: Vec<(Node, Node)>,
    pending: Option<Node>,
    scalar_keys: HashMap<(String, bool), u32>,
    null_key: Option<u32>,
}

/// An anchored node with its size and height, to bound what aliases add.
struct Anchored {
    node: Node,
    nodes: usize,
    height: usize,
}

/// (nodes, height) of a tree; recursion is bounded by [`MAX_DEPTH`].
fn measure(node: &Node) -> (usize, usize) {
    let children: Box<dyn Iterator<Item = &Node>> = match &node.kind {
        NodeKind::Seq(items) => Box::new(items.iter()),
        NodeKind::Map(entries) => Box::new(entries.iter().flat_map(|(k, v)| [k, v])),
        _ => Box::new(std::iter::empty()),
    };
    children.fold((1, 1), |(n, h), c| {
        let (cn, ch) = measure(c);
        (n.saturating_add(cn), h.max(ch.saturating_add(1)))
    })
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    docs: Vec<Node>,
    anchors: HashMap<usize, Anchored>,
    diags: Vec<Diag>,
    /// Collections opened beyond [`MAX_DEPTH`], still to be closed; their
    /// contents are dropped.
    skipping: usize,
    /// Nodes added by aliases so far.
    alias_nodes: usize,
    alias_refused: bool,
}

impl Builder {
    fn push_value(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            let (nodes, height) = measure(&node);
            self.anchors.insert(
                anchor,
                Anchored {
                    node: node.clone(),
                    nodes,
                    height,
                },
            );
        }
        match self.stack.last_mut() {
            None => self.docs.push(node),
            Some(Frame::Seq(_, items, _)) => items.push(node),
            Some(Frame::Map(_, m, _)) => match m.pending.take() {
                None => {
                    if node.as_scalar().is_none() && node.kind != NodeKind::Null {
                        self.diags.push(Diag::new(
                            node.loc,
                            "mapping keys must be plain words, not lists or mappings",
                        ));
                    }
                    m.pending = Some(node);
                }
                Some(key) => {
                    // Lists and mappings as keys are refused above; only
                    // words and null can repeat.
                    let first = match &key.kind {
                        NodeKind::Scalar { value, plain } => {
                            match m.scalar_keys.entry((value.clone(), *plain)) {
                                std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                                std::collections::hash_map::Entry::Vacant(e) => {
                                    e.insert(key.loc.line);
                                    None
                                }
                            }
                        }
                        NodeKind::Null => {
                            let first = m.null_key;
                            m.null_key.get_or_insert(key.loc.line);
                            first
                        }
                        _ => None,
                    };
                    if let Some(line) = first {
                        self.diags.push(Diag::new(
                            key.loc,
                            format!("duplicate key {} (first at line {line})", key.describe()),
                        ));
                    } else {
                        m.entries.push((key, node));
                    }
                }
            },
        }
    }

    fn too_deep(&mut self, loc: Loc) {
        if self.skipping == 0 {
            self.diags.push(Diag::new(
                loc,
                format!("the document nests deeper than {MAX_DEPTH} levels"),
            ));
        }
    }

    fn open(&mut self, frame: Frame, loc: Loc) {
        if self.skipping > 0 || self.stack.len() >= MAX_DEPTH {
            self.too_deep(loc);
            self.skipping += 1;
        } else {
            self.stack.push(frame);
        }
    }

    fn alias(&mut self, id: usize, loc: Loc) {
        let Some(a) = self.anchors.get(&id) else {
            self.diags
                .push(Diag::new(loc, "alias to an unknown anchor"));
            return;
        };
        if self.stack.len().saturating_add(a.height) > MAX_DEPTH {
            self.too_deep(loc);
            self.push_value(
                Node {
                    kind: NodeKind::Null,
                    loc,
                },
                0,
            );
            return;
        }
        let total = self.alias_nodes.saturating_add(a.nodes);
        if total > MAX_ALIAS_NODES {
            if !self.alias_refused {
                self.alias_refused = true;
                self.diags.push(Diag::new(
                    loc,
                    format!("aliases expand to more than {MAX_ALIAS_NODES} nodes"),
                ));
            }
            self.push_value(
                Node {
                    kind: NodeKind::Null,
                    loc,
                },
                0,
            );
            return;
        }
        self.alias_nodes = total;
        let mut node = a.node.clone();
        node.loc = loc;
        self.push_value(node, 0);
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let loc = Loc::from_marker(&mark);
        if self.skipping > 0 {
            match ev {
                Event::SequenceStart(..) | Event::MappingStart(..) => self.skipping += 1,
                Event::SequenceEnd | Event::MappingEnd => {
                    self.skipping -= 1;
                    if self.skipping == 0 {
                        // The refused collection stands as null.
                        self.push_value(
                            Node {
                                kind: NodeKind::Null,
                                loc,
                            },
                            0,
                        );
                    }
                }
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(value, style, anchor, _tag) => {
                let plain = style == TScalarStyle::Plain;
                let kind = if plain && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL")
                {
                    NodeKind::Null
                } else {
                    NodeKind::Scalar { value, plain }
                };
                self.push_value(Node { kind, loc }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.open(Frame::Seq(loc, Vec::new(), anchor), loc),
            Event::MappingStart(anchor, _) => {
                self.open(Frame::Map(loc, MapFrame::default(), anchor), loc)
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq(l, items, anchor)) => self.push_value(
                    Node {
                        kind: NodeKind::Seq(items),
                        loc: l,
                    },
                    anchor,
                ),
                Some(Frame::Map(l, m, anchor)) => self.push_value(
                    Node {
                        kind: NodeKind::Map(m.entries),
                        loc: l,
                    },
                    anchor,
                ),
                None => {}
            },
            Event::Alias(id) => self.alias(id, loc),
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart
            | Event::DocumentEnd => {}
        }
    }
}

// ---------------------------------------------------------------------------
// serde over nodes
// ---------------------------------------------------------------------------

/// A deserialization problem; the location is filled in by the innermost node
/// that saw it.
#[derive(Debug, Clone)]
pub struct DeError {
    loc: Option<Loc>,
    message: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            loc: None,
            message: tidy_serde_message(&msg.to_string()),
        }
    }
}

/// serde's messages name Rust types ("invalid type: string \"x\", expected u32");
/// say it in the policy author's words.
fn tidy_serde_message(msg: &str) -> String {
    let mut m = msg
        .replace("invalid type: ", "")
        .replace("invalid value: ", "");
    for (from, to) in [
        ("expected u8", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u64", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a mapping"),
        ("missing field", "missing key"),
    ] {
        m = m.replace(from, to);
    }
    m
}

/// Deserializes a node into `T`, collecting every unknown key (with its
/// location) and the first type error.
pub fn from_node<T: DeserializeOwned>(node: &Node) -> Result<T, Vec<Diag>> {
    let sink = RefCell::new(Vec::new());
    let result = T::deserialize(NodeDe { node, sink: &sink });
    let mut diags = sink.into_inner();
    match result {
        Ok(v) if diags.is_empty() => Ok(v),
        Ok(_) => Err(diags),
        Err(e) => {
            diags.push(Diag::new(e.loc.unwrap_or(node.loc), e.message));
            diags.sort_by_key(|d| d.loc);
            Err(diags)
        }
    }
}

#[derive(Clone, Copy)]
struct NodeDe<'a> {
    node: &'a Node,
    sink: &'a RefCell<Vec<Diag>>,
}

impl<'a> NodeDe<'a> {
    fn locate<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|mut e| {
            if e.loc.is_none() {
                e.loc = Some(self.node.loc);
            }
            e
        })
    }

    fn scalar(&self) -> Result<&'a str, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, .. } => Ok(value),
            _ => Err(DeError {
                loc: Some(self.node.loc),
                message: format!("expected a single value, found {}", self.node.describe()),
            }),
        }
    }

    fn wrong(&self, what: &str) -> DeError {
        DeError {
            loc: Some(self.node.loc),
            message: format!("expected {what}, found {}", self.node.describe()),
        }
    }

    fn parse_num<T: std::str::FromStr>(&self, what: &str) -> Result<T, DeError> {
        let s = self.scalar()?;
        let cleaned = s.replace('_', "");
        cleaned.parse::<T>().map_err(|_| self.wrong(what))
    }
}

macro_rules! de_num {
    ($($method:ident $visit:ident $ty:ty, $what:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            let n: $ty = self.parse_num($what)?;
            self.locate(visitor.$visit(n))
        }
    )*};
}

impl<'de, 'a> de::Deserializer<'de> for NodeDe<'a> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.kind {
            NodeKind::Null => visitor.visit_unit(),
            NodeKind::Scalar { value, plain } => {
                if *plain {
                    if let Some(b) = parse_bool(value) {
                        return self.locate(visitor.visit_bool(b));
                    }
                    if let Ok(i) = value.parse::<i64>() {
                        return self.locate(visitor.visit_i64(i));
                    }
                    if let Ok(f) = value.parse::<f64>() {
                        if value.chars().any(|c| c.is_ascii_digit()) {
                            return self.locate(visitor.visit_f64(f));
                        }
                    }
                }
                visitor.visit_str(value)
            }
            NodeKind::Seq(_) => return self.deserialize_seq(visitor),
            NodeKind::Map(_) => return self.deserialize_map(visitor),
        };
        self.locate(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let s = self.scalar()?;
        match parse_bool(s) {
            Some(b) => self.locate(visitor.visit_bool(b)),
            None => Err(self.wrong("`true` or `false`")),
        }
    }

    de_num! {
        deserialize_i8 visit_i64 i64, "a whole number";
        deserialize_i16 visit_i64 i64, "a whole number";
        deserialize_i32 visit_i64 i64, "a whole number";
        deserialize_i64 visit_i64 i64, "a whole number";
        deserialize_u8 visit_u64 u64, "a whole number";
        deserialize_u16 visit_u64 u64, "a whole number";
        deserialize_u32 visit_u64 u64, "a whole number";
        deserialize_u64 visit_u64 u64, "a whole number";
        deserialize_f32 visit_f64 f64, "a number";
        deserialize_f64 visit_f64 f64, "a number";
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let s = self.scalar().map_err(|_| self.wrong("text"))?;
        self.locate(visitor.visit_str(s))
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => self.locate(visitor.visit_none()),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node.kind {
            NodeKind::Null => self.locate(visitor.visit_unit()),
            _ => Err(self.wrong("nothing")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Seq(items) => {
                let access = SeqAccess {
                    iter: items.iter(),
                    sink: self.sink,
                };
                self.locate(visitor.visit_seq(access))
            }
            _ => Err(self.wrong("a list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => {
                let refs: Vec<&(Node, Node)> = entries.iter().collect();
                self.locate(visitor.visit_map(MapAccess {
                    iter: refs.into_iter(),
                    value: None,
                    sink: self.sink,
                }))
            }
            _ => Err(self.wrong("a mapping")),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Map(entries) => {
                let mut known = Vec::with_capacity(entries.len());
                for entry in entries {
                    let key = entry.0.as_scalar().unwrap_or("");
                    if fields.contains(&key) {
                        known.push(entry);
                    } else {
                        self.sink.borrow_mut().push(Diag::new(
                            entry.0.loc,
                            format!(
                                "unknown key `{key}` (expected one of: {})",
                                fields.join(", ")
                            ),
                        ));
                    }
                }
                self.locate(visitor.visit_map(MapAccess {
                    iter: known.into_iter(),
                    value: None,
                    sink: self.sink,
                }))
            }
            _ => Err(self.wrong("a mapping")),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match &self.node.kind {
            NodeKind::Scalar { value, .. } => {
                if !variants.contains(&value.as_str()) {
                    return Err(DeError {
                        loc: Some(self.node.loc),
                        message: format!(
                            "unknown value `{}` (expected one of: {})",
                            shorten(value),
                            variants.join(", ")
                        ),
                    });
                }
                let de: de::value::StrDeserializer<'_, DeError> =
                    value.as_str().into_deserializer();
                self.locate(visitor.visit_enum(de))
            }
            NodeKind::Map(entries) if entries.len() == 1 => {
                let (k, v) = match entries.first() {
                    Some((k, v)) => (k, v),
                    None => return Err(self.wrong("a variant")),
                };
                self.locate(visitor.visit_enum(EnumAccess {
                    key: k,
                    value: v,
                    sink: self.sink,
                }))
            }
            _ => Err(self.wrong(&format!("one of: {}", variants.join(", ")))),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "True" | "TRUE" | "yes" | "Yes" | "on" => Some(true),
        "false" | "False" | "FALSE" | "no" | "No" | "off" => Some(false),
        _ => None,
    }
}

struct SeqAccess<'a> {
    iter: std::slice::Iter<'a, Node>,
    sink: &'a RefCell<Vec<Diag>>,
}

impl<'de, 'a> de::SeqAccess<'de> for SeqAccess<'a> {
    type Error = DeError;
    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some(node) => {
                let de = NodeDe {
                    node,
                    sink: self.sink,
                };
                de.locate(seed.deserialize(de)).map(Some)
            }
            None => Ok(None),
        }
    }
}

struct MapAccess<'a, I: Iterator<Item = &'a (Node, Node)>> {
    iter: I,
    value: Option<&'a Node>,
    sink: &'a RefCell<Vec<Diag>>,
}

impl<'de, 'a, I: Iterator<Item = &'a (Node, Node)>> de::MapAccess<'de> for MapAccess<'a, I> {
    type Error = DeError;
    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.value = Some(v);
                let de = NodeDe {
                    node: k,
                    sink: self.sink,
                };
                de.locate(seed.deserialize(de)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(node) => {
                let de = NodeDe {
                    node,
                    sink: self.sink,
                };
                de.locate(seed.deserialize(de))
            }
            None => Err(de::Error::custom("value without a key")),
        }
    }
}

struct EnumAccess<'a> {
    key: &'a Node,
    value: &'a Node,
    sink: &'a RefCell<Vec<Diag>>,
}

impl<'de, 'a> de::EnumAccess<'de> for EnumAccess<'a> {
    type Error = DeError;
    type Variant = VariantAccess<'a>;
    fn variant_seed<V: de::DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DeError> {
        let de = NodeDe {
            node: self.key,
            sink: self.sink,
        };
        let v = de.locate(seed.deserialize(de))?;
        Ok((
            v,
            VariantAccess {
                node: self.value,
                sink: self.sink,
            },
        ))
    }
}

struct VariantAccess<'a> {
    node: &'a Node,
    sink: &'a RefCell<Vec<Diag>>,
}

impl<'de, 'a> de::VariantAccess<'de> for VariantAccess<'a> {
    type Error = DeError;
    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }
    fn newtype_variant_seed<T: de::DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DeError> {
        seed.deserialize(NodeDe {
            node: self.node,
            sink: self.sink,
        })
    }
    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_seq(
            NodeDe {
                node: self.node,
                sink: self.sink,
            },
            visitor,
        )
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        de::Deserializer::deserialize_struct(
            NodeDe {
                node: self.node,
                sink: self.sink,
            },
            "",
            fields,
            visitor,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct P {
        name: String,
        port: u16,
        #[serde(default)]
        tags: Vec<String>,
    }

    #[test]
    fn locations_are_one_based() {
        let n = parse("a: 1\nb:\n  - x\n").unwrap();
        let b = n.get("b").unwrap();
        assert_eq!(b.as_seq().unwrap()[0].loc, Loc { line: 3, col: 5 });
        assert_eq!(n.get("a").unwrap().loc, Loc { line: 1, col: 4 });
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_place() {
        let n = parse("name: x\nport: 80\nnmae: y\nprot: 1\n").unwrap();
        let errs = from_node::<P>(&n).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert_eq!(errs[0].loc, Loc { line: 3, col: 1 });
        assert!(errs[0].message.contains("unknown key `nmae`"));
        assert_eq!(errs[1].loc, Loc { line: 4, col: 1 });
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let n = parse("name: x\nport: eighty\n").unwrap();
        let errs = from_node::<P>(&n).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].loc, Loc { line: 2, col: 7 });
        assert!(
            errs[0].message.contains("whole number"),
            "{}",
            errs[0].message
        );
    }

    #[test]
    fn missing_key_points_at_the_mapping() {
        let n = parse("x: 1\nthing:\n  name: a\n").unwrap();
        let errs = from_node::<P>(n.get("thing").unwrap()).unwrap_err();
        assert!(errs[0].message.contains("missing key `port`"), "{errs:?}");
        assert_eq!(errs[0].loc.line, 3);
    }

    #[test]
    fn duplicate_keys_and_syntax_errors() {
        let errs = parse("a: 1\nb: 2\na: 3\n").unwrap_err();
        assert_eq!(errs[0].loc.line, 3);
        assert!(errs[0]
            .message
            .contains("duplicate key `a` (first at line 1)"));
        let errs = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(errs[0].message.starts_with("invalid YAML"));
    }

    #[test]
    fn quoted_numbers_stay_text_and_plain_numbers_read_as_text_too() {
        #[derive(Deserialize)]
        struct V {
            a: String,
            b: String,
        }
        let n = parse("a: \"1.2\"\nb: 1.2\n").unwrap();
        let v: V = from_node(&n).unwrap();
        assert_eq!((v.a.as_str(), v.b.as_str()), ("1.2", "1.2"));
    }

    #[test]
    fn anchors_and_aliases_are_followed() {
        let n = parse("a: &x {name: n, port: 1}\nb: *x\n").unwrap();
        let p: P = from_node(n.get("b").unwrap()).unwrap();
        assert_eq!(p.port, 1);
    }
}

/// Inputs that once hung or crashed the loader (found by reading and by
/// `fuzz/`): they must come back as located diagnostics, quickly.
#[cfg(test)]
mod hostile {
    use super::*;

    fn first_message(text: &str) -> String {
        match parse(text) {
            Ok(_) => String::from("(parsed)"),
            Err(d) => d.first().map(|d| d.message.clone()).unwrap_or_default(),
        }
    }

    #[test]
    fn deep_flow_nesting_is_refused_not_a_stack_overflow() {
        let text = format!("a: {}{}\n", "[".repeat(100), "]".repeat(100));
        let msg = first_message(&text);
        assert!(msg.contains("deeper than 64"), "{msg}");
        // Past yaml-rust2's own flow limit (255) it is the scanner that refuses.
        let n = 200_000;
        let text = format!("a: {}{}\n", "[".repeat(n), "]".repeat(n));
        let msg = first_message(&text);
        assert!(msg.contains("recursion limit"), "{msg}");
    }

    #[test]
    fn deep_block_nesting_is_refused() {
        let mut text = String::new();
        for i in 0..2_000 {
            text.push_str(&" ".repeat(i));
            text.push_str("k:\n");
        }
        let msg = first_message(&text);
        assert!(msg.contains("deeper than"), "{msg}");
    }

    #[test]
    fn alias_expansion_is_bounded() {
        // "Billion laughs": nine levels of ten aliases each.
        let mut text = String::from("l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..=9 {
            let p = i - 1;
            text.push_str(&format!(
                "l{i}: &l{i} [*l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}, *l{p}]\n"
            ));
        }
        let msg = first_message(&text);
        assert!(msg.contains("aliases"), "{msg}");
    }

    #[test]
    fn a_few_aliases_still_work() {
        let n = parse("a: &x {k: v}\nb: *x\nc: [*x, *x]\n").unwrap();
        assert_eq!(
            n.get("b")
                .and_then(|b| b.get("k"))
                .and_then(Node::as_scalar),
            Some("v")
        );
    }

    #[test]
    fn many_keys_are_not_quadratic() {
        let mut text = String::new();
        for i in 0..200_000 {
            text.push_str(&format!("k{i}: {i}\n"));
        }
        text.push_str("k7: again\n");
        let t = std::time::Instant::now();
        let msg = first_message(&text);
        assert!(msg.contains("duplicate key"), "{msg}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            t.elapsed()
        );
    }
}
