//! Payment card numbers: a cheap byte-stride candidate search, then Luhn and
//! issuer prefixes on each candidate.
//!
//! A card is 13 to 19 digits, written plain or in groups separated by one
//! space or dash, with no letter, digit or `_` right before or after.

/// A card candidate's byte range in the examined slice.
pub type Span = std::ops::Range<usize>;

fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'-'
}

fn at(buf: &[u8], i: usize) -> u8 {
    buf.get(i).copied().unwrap_or(0)
}

/// The maximal run of digits and single separators between digits around `p`.
fn run_around(buf: &[u8], p: usize) -> Option<Span> {
    let b = at(buf, p);
    let mut start = p;
    if is_sep(b) {
        if !(p > 0 && at(buf, p - 1).is_ascii_digit()) {
            return None;
        }
        start = p - 1;
    } else if !b.is_ascii_digit() {
        return None;
    }
    // Walk left.
    while start > 0 {
        let prev = at(buf, start - 1);
        if prev.is_ascii_digit() {
            start -= 1;
        } else if is_sep(prev) && start >= 2 && at(buf, start - 2).is_ascii_digit() {
            start -= 2;
        } else {
            break;
        }
    }
    // Walk right.
    let mut end = p + 1;
    loop {
        let next = at(buf, end);
        if next.is_ascii_digit() {
            end += 1;
        } else if is_sep(next) && at(buf, end + 1).is_ascii_digit() {
            end += 2;
        } else {
            break;
        }
    }
    if end > buf.len() {
        end = buf.len();
    }
    Some(start..end)
}

fn is_digit_or_sep(b: u8) -> bool {
    b.is_ascii_digit() || is_sep(b)
}

/// Whether a group of the run starts with an issuer's first digit (2-6):
/// millisecond timestamps (`1764…`) and the like are dropped here.
fn may_hold_card(run: &[u8]) -> bool {
    let mut start = true;
    for &b in run {
        if start && (b'2'..=b'6').contains(&b) {
            return true;
        }
        start = is_sep(b);
    }
    false
}

/// Positions in `buf` around which a card number may be: cheap, checks every
/// 8th byte (a card spans at least 13 bytes). Returns the runs of digits and
/// separators holding at least 13 digits, in order, without overlaps.
pub fn candidates(buf: &[u8], mut push: impl FnMut(Span)) {
    const STRIDE: usize = 8;
    let mut p = 0;
    while p < buf.len() {
        let b = at(buf, p);
        let interesting = b.is_ascii_digit()
            || (is_sep(b)
                && p > 0
                && at(buf, p - 1).is_ascii_digit()
                && at(buf, p + 1).is_ascii_digit());
        // A run of 13+ bytes through `p` reaches 6 bytes to one side of it.
        let ds = |i: Option<usize>| i.is_some_and(|i| is_digit_or_sep(at(buf, i)));
        let long_enough = (ds(p.checked_add(3)) && ds(p.checked_add(6)))
            || (ds(p.checked_sub(3)) && ds(p.checked_sub(6)));
        if interesting && long_enough {
            if let Some(run) = run_around(buf, p) {
                let digits = buf
                    .get(run.clone())
                    .map_or(0, |r| r.iter().filter(|c| c.is_ascii_digit()).count());
                let next = run.end + 1;
                if digits >= 13 && may_hold_card(buf.get(run.clone()).unwrap_or(&[])) {
                    push(run);
                }
                p = next.max(p + 1);
                continue;
            }
        }
        p += STRIDE;
    }
}

/// Luhn checksum over ASCII digits.
pub fn luhn(digits: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.iter().rev().enumerate() {
        let mut v = u32::from(d.saturating_sub(b'0'));
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

fn prefix_num(digits: &[u8], n: usize) -> u32 {
    digits
        .iter()
        .take(n)
        .fold(0u32, |acc, d| acc * 10 + u32::from(d.saturating_sub(b'0')))
}

/// The card network of a number by its issuer prefix and length, if any.
pub fn issuer(digits: &[u8]) -> Option<&'static str> {
    let len = digits.len();
    let p1 = prefix_num(digits, 1);
    let p2 = prefix_num(digits, 2);
    let p3 = prefix_num(digits, 3);
    let p4 = prefix_num(digits, 4);
    let p6 = prefix_num(digits, 6);
    if p1 == 4 && matches!(len, 13 | 16 | 19) {
        return Some("visa");
    }
    if ((51..=55).contains(&p2) || (2221..=2720).contains(&p4)) && len == 16 {
        return Some("mastercard");
    }
    if (p2 == 34 || p2 == 37) && len == 15 {
        return Some("amex");
    }
    if (p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 || (622_126..=622_925).contains(&p6))
        && (16..=19).contains(&len)
    {
        return Some("discover");
    }
    if ((3528..=3589).contains(&p4)) && (16..=19).contains(&len) {
        return Some("jcb");
    }
    if ((300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39) && (14..=19).contains(&len) {
        return Some("diners");
    }
    if p2 == 62 && (16..=19).contains(&len) {
        return Some("unionpay");
    }
    if (p2 == 50 || (56..=58).contains(&p2) || p4 == 6304 || p4 == 6759 || p4 == 6761 || p4 == 6763)
        && (13..=19).contains(&len)
    {
        return Some("maestro");
    }
    None
}

/// Within a run of digit groups, the first span of whole groups that is a
/// Luhn-valid card of a known issuer. Returns the span (relative to `run`)
/// and the network.
pub fn card_in_run(run: &[u8]) -> Option<(Span, &'static str)> {
    // Group boundaries.
    let mut groups: Vec<Span> = Vec::new();
    let mut s = 0;
    for (i, b) in run.iter().enumerate() {
        if is_sep(*b) {
            groups.push(s..i);
            s = i + 1;
        }
    }
    groups.push(s..run.len());
    let mut digits = Vec::with_capacity(24);
    for first in 0..groups.len() {
        digits.clear();
        for last in first..groups.len() {
            let g = groups.get(last)?;
            digits.extend_from_slice(run.get(g.clone())?);
            if digits.len() > 19 {
                break;
            }
            if digits.len() >= 13 && luhn(&digits) {
                if let Some(net) = issuer(&digits) {
                    let start = groups.get(first)?.start;
                    return Some((start..g.end, net));
                }
            }
        }
    }
    None
}

/// A card found in `line`: its span and network. `line` is a whole line (or
/// window); runs touching a letter or `_` are identifiers, not cards.
pub fn find_cards(line: &[u8], mut push: impl FnMut(Span, &'static str)) {
    candidates(line, |run| {
        let before = if run.start == 0 {
            0
        } else {
            at(line, run.start - 1)
        };
        let after = at(line, run.end);
        let wordy = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if wordy(before) || wordy(after) {
            return;
        }
        if let Some(r) = line.get(run.clone()) {
            if let Some((span, net)) = card_in_run(r) {
                push(run.start + span.start..run.start + span.end, net);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cards(s: &str) -> Vec<(String, &'static str)> {
        let mut v = Vec::new();
        find_cards(s.as_bytes(), |sp, n| v.push((s[sp].to_string(), n)));
        v
    }

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn finds_test_cards_in_every_layout() {
        assert_eq!(
            cards("card=4111111111111111&x"),
            vec![("4111111111111111".into(), "visa")]
        );
        assert_eq!(
            cards("pan 4111 1111 1111 1111 ok"),
            vec![("4111 1111 1111 1111".into(), "visa")]
        );
        assert_eq!(
            cards("5555-5555-5555-4444"),
            vec![("5555-5555-5555-4444".into(), "mastercard")]
        );
        assert_eq!(
            cards("amex 3782 822463 10005."),
            vec![("3782 822463 10005".into(), "amex")]
        );
        assert_eq!(
            cards("\"6011111111111117\""),
            vec![("6011111111111117".into(), "discover")]
        );
        assert_eq!(
            cards("order 42 card 4111111111111111"),
            vec![("4111111111111111".into(), "visa")]
        );
    }

    #[test]
    fn ignores_non_cards() {
        assert!(cards("id=4111111111111112").is_empty()); // Luhn fails
        assert!(cards("ts=1764109640123456789").is_empty()); // no issuer
        assert!(cards("sha=a4111111111111111f").is_empty()); // inside a hex word
        assert!(cards("2026-11-25 22:34:00 1234").is_empty());
        assert!(cards("uuid 0000000000000000").is_empty());
        assert!(cards("").is_empty());
        assert!(cards("4").is_empty());
        assert!(cards("4111 1111 1111 111-").is_empty());
    }
}
