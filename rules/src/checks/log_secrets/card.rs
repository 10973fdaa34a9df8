//! Payment card numbers: a cheap candidate search (64-byte bit masks of
//! digit-or-separator bytes), then Luhn and issuer prefixes on each candidate.
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
fn class(buf: &[u8], i: usize) -> u8 {
    match at(buf, i) {
        b'0'..=b'9' => DIGIT,
        b' ' | b'-' => SEP,
        _ => 0,
    }
}

/// The fewest digits of a card, hence the fewest bytes of its run.
const MIN_DIGITS: usize = 13;

/// Bit `i` set when `block[i]` is a digit or a separator. Written so that
/// the compiler vectorizes the classification; the 0/1 bytes are packed
/// eight at a time with one multiplication.
fn class_mask(block: &[u8; 64]) -> u64 {
    let mut flags = [0u8; 64];
    for (f, &c) in flags.iter_mut().zip(block.iter()) {
        *f = u8::from((c.wrapping_sub(b'0') < 10) | (c == b' ') | (c == b'-'));
    }
    let mut m = 0u64;
    for (k, eight) in flags.chunks_exact(8).enumerate() {
        let x = u64::from_le_bytes(<[u8; 8]>::try_from(eight).unwrap_or([0; 8]));
        m |= (x.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * k);
    }
    m
}

/// The runs of digits and single separators between digits in `buf` that
/// hold at least 13 digits with a group starting with an issuer digit, in
/// order, without overlaps.
///
/// Such a run spans at least 13 consecutive digit-or-separator bytes. The
/// buffer is classified 64 bytes at a time into a bit mask (vectorized, no
/// branch per byte); shifts find where 13 set bits in a row start, and only
/// there is the stretch walked and split into runs (most of a log, digits and
/// blanks included, never gets that far).
pub fn candidates(buf: &[u8], mut push: impl FnMut(Span)) {
    // The end of the last stretch walked: stretches are walked once.
    let mut done = 0usize;
    let mut handle = |m: u64, next: u64, base: usize, done: &mut usize| {
        // Bit i: bytes base+i .. base+i+13 are all digits or separators
        // (looking into the next block's mask).
        let w = u128::from(m) | (u128::from(next) << 64);
        let mut r = w & (w >> 1);
        r &= r >> 2;
        r &= r >> 4;
        r &= r >> 5;
        let mut starts = r as u64;
        while starts != 0 {
            let i = base + starts.trailing_zeros() as usize;
            starts &= starts - 1;
            if i < *done {
                continue;
            }
            let mut s = i;
            while s > 0 && class(buf, s - 1) != 0 {
                s -= 1;
            }
            let mut e = i + 1;
            while e < buf.len() && class(buf, e) != 0 {
                e += 1;
            }
            runs_in(buf, s, e, &mut push);
            *done = e;
        }
    };
    let mut blocks = buf.chunks_exact(64);
    let mut base = 0usize;
    // Each block is handled once the next one's mask is known.
    let mut pending: Option<(u64, usize)> = None;
    for block in &mut blocks {
        let m = class_mask(<&[u8; 64]>::try_from(block).unwrap_or(&[0; 64]));
        if let Some((pm, pbase)) = pending.take() {
            handle(pm, m, pbase, &mut done);
        }
        pending = Some((m, base));
        base += 64;
    }
    let rest = blocks.remainder();
    let mut tail = [0u8; 64];
    for (t, &c) in tail.iter_mut().zip(rest) {
        *t = c;
    }
    let tm = if rest.is_empty() {
        0
    } else {
        class_mask(&tail) & (u64::MAX >> (64 - rest.len()))
    };
    if let Some((pm, pbase)) = pending.take() {
        handle(pm, tm, pbase, &mut done);
    }
    if !rest.is_empty() {
        handle(tm, 0, base, &mut done);
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
                if buf[end].is_ascii_digit()
                    || (is_sep(buf[end]) && buf.get(end + 1).is_some_and(u8::is_ascii_digit))
                {
                    end += 1;
                } else {
                    break;
                }
            }
            let digits = buf[start..end]
                .iter()
                .filter(|c| c.is_ascii_digit())
                .count();
            if digits >= 13 && may_hold_card(&buf[start..end]) {
                out.push(start..end);
            }
            i = end + 1;
        }
        out
    }

    #[test]
    fn the_mask_search_finds_every_run_the_naive_walk_finds() {
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
