//! YAML text into a located [`Node`] tree: yaml-rust2's marked events, one by
//! one, with bounds on depth and on what aliases may add.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::{Diag, Loc, Node, NodeKind};

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
