//! Payment card numbers: a cheap byte-stride candidate search (a probe every
//! 13th byte), then Luhn and issuer prefixes on each candidate.
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

/// Byte classes: digits and separators (a card's bytes).
const DIGIT: u8 = 1;
const SEP: u8 = 2;
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut d = b'0';
    while d <= b'9' {
        t[d as usize] = DIGIT;
        d += 1;
    }
    t[b' ' as usize] = SEP;
    t[b'-' as usize] = SEP;
    t
};

fn class(buf: &[u8], i: usize) -> u8 {
    CLASS
        .get(usize::from(at(buf, i)))
        .copied()
        .unwrap_or(0)
}

/// The fewest digits of a card, hence the fewest bytes of its run.
const MIN_DIGITS: usize = 13;

/// The runs of digits and single separators between digits in `buf` that
/// hold at least 13 digits with a group starting with an issuer digit, in
/// order, without overlaps.
///
/// Such a run spans at least 13 consecutive digit-or-separator bytes, so
/// probing every 13th byte lands in each one; a probe on any other byte
/// (most of a log) costs one table lookup. Around a probe that lands on a
/// digit or separator, the whole stretch of such bytes is walked once and
/// split into runs.
pub fn candidates(buf: &[u8], mut push: impl FnMut(Span)) {
    let mut p = 0;
    while p < buf.len() {
        // A stretch of 13+ bytes through `p` reaches 6 bytes to one side
        // of it: those quick looks reject most digits and blanks of a log.
        let side = |d: isize| {
            p.checked_add_signed(d)
                .is_some_and(|i| i < buf.len() && class(buf, i) != 0)
        };
        if class(buf, p) == 0 || !((side(3) && side(6)) || (side(-3) && side(-6))) {
            p += MIN_DIGITS;
            continue;
        }
        // The stretch of digit-or-separator bytes around `p`.
        let mut s = p;
        while s > 0 && class(buf, s - 1) != 0 {
            s -= 1;
        }
        let mut e = p + 1;
        while e < buf.len() && class(buf, e) != 0 {
            e += 1;
        }
        if e - s >= MIN_DIGITS {
            runs_in(buf, s, e, &mut push);
        }
        // Any later run of 13+ bytes starts after `e` and holds one of the
        // next probes.
        p = e + 1;
    }
}

/// Splits the stretch `buf[s..e]` of digits and separators into maximal runs
/// (digits, with single separators between digits) and pushes the card-sized
/// ones.
fn runs_in(buf: &[u8], s: usize, e: usize, push: &mut impl FnMut(Span)) {
    let mut i = s;
    while i < e {
        if class(buf, i) != DIGIT {
            i += 1;
            continue;
        }
        let start = i;
        let mut digits = 0usize;
        let mut end = i;
        while end < e {
            if class(buf, end) == DIGIT {
                digits += 1;
                end += 1;
            } else if end + 1 < e && class(buf, end + 1) == DIGIT {
                end += 1;
            } else {
                break;
            }
        }
        if digits >= MIN_DIGITS && may_hold_card(buf.get(start..end).unwrap_or(&[])) {
            push(start..end);
        }
        i = end + 1;
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

    /// Every maximal run with 13+ digits and an issuer-digit group, byte by
    /// byte: what the probing search must find.
    fn naive(buf: &[u8]) -> Vec<Span> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            if !buf[i].is_ascii_digit() {
                i += 1;
                continue;
            }
            let start = i;
            let mut end = i;
            while end < buf.len() {
                if buf[end].is_ascii_digit() {
                    end += 1;
                } else if is_sep(buf[end]) && buf.get(end + 1).is_some_and(u8::is_ascii_digit) {
                    end += 1;
                } else {
                    break;
                }
            }
            let digits = buf[start..end].iter().filter(|c| c.is_ascii_digit()).count();
            if digits >= 13 && may_hold_card(&buf[start..end]) {
                out.push(start..end);
            }
            i = end + 1;
        }
        out
    }

    #[test]
    fn probing_finds_every_run_the_naive_walk_finds() {
        let alphabet = b"0123456789012345678945 - -a:\n";
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in [0usize, 1, 12, 13, 14, 25, 26, 27, 100, 1000, 5000] {
            for _ in 0..200 {
                let buf: Vec<u8> = (0..len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Long digit stretches now and then.
                        let r = (x % 1000) as usize;
                        if r < 900 {
                            alphabet[r % 20]
                        } else {
                            alphabet[r % alphabet.len()]
                        }
                    })
                    .collect();
                let mut got = Vec::new();
                candidates(&buf, |r| got.push(r));
                assert_eq!(got, naive(&buf), "{:?}", String::from_utf8_lossy(&buf));
            }
        }
        // Runs in one stretch, split by a double separator.
        let s = b"x 4111 1111 1111 1111  5555-5555-5555-4444 y";
        let mut got = Vec::new();
        candidates(s, |r| got.push(r));
        assert_eq!(got, vec![2..21, 23..42]);
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
