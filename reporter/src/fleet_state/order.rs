//! Policy order for controls: the policy's own order, then natural order
//! (SP-2 before SP-10).

use std::collections::HashMap;

/// Position of each policy control id.
pub fn policy_order(policy: &[(String, String)]) -> HashMap<&str, usize> {
    let mut m = HashMap::new();
    for (i, (id, _)) in policy.iter().enumerate() {
        m.entry(id.as_str()).or_insert(i);
    }
    m
}

/// Sort key: policy position first, then controls outside the policy by id
/// in natural order (SP-2 before SP-10).
pub fn order_key<'a>(order: &HashMap<&str, usize>, id: &'a str) -> (usize, Vec<NaturalPart<'a>>) {
    (order.get(id).copied().unwrap_or(usize::MAX), natural(id))
}

/// A piece of an id for natural ordering: digits compare as numbers.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum NaturalPart<'a> {
    Num(u64),
    Text(&'a str),
}

fn natural(s: &str) -> Vec<NaturalPart<'_>> {
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = s.as_bytes();
    while start < bytes.len() {
        let digit = bytes.get(start).is_some_and(u8::is_ascii_digit);
        let mut end = start;
        while end < bytes.len() && bytes.get(end).is_some_and(u8::is_ascii_digit) == digit {
            end += 1;
        }
        let part = s.get(start..end).unwrap_or_default();
        out.push(if digit {
            NaturalPart::Num(part.parse().unwrap_or(u64::MAX))
        } else {
            NaturalPart::Text(part)
        });
        start = end;
    }
    out
}
