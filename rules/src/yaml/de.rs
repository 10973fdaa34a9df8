//! serde over located nodes: [`from_node`] fills a typed struct from a
//! [`Node`] and reports every problem at the node it concerns.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::{shorten, Diag, Loc, Node, NodeKind};

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
