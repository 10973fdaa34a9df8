//! Byte-level helpers of the detectors: where a value starts and ends,
//! which values are placeholders, cheap supersets of the regexes that gate
//! them, and the redacted excerpt.

use std::ops::Range;

use base64::Engine as _;

/// Values that stand for a password without being one.
pub(super) fn is_placeholder(v: &[u8]) -> bool {
    let v = trim_quotes(v);
    if v.is_empty() {
        return true;
    }
    if v.iter().all(|c| {
        matches!(
            c,
            b'*' | b'x' | b'X' | b'#' | b'.' | b'-' | b'?' | b'%' | b'0'
        )
    }) && !v.iter().all(|c| *c == b'0')
    {
        return true;
    }
    if v.len() >= 2 {
        let (f, l) = (v.first().copied(), v.last().copied());
        if matches!((f, l), (Some(b'<'), Some(b'>')) | (Some(b'{'), Some(b'}'))) {
            return true;
        }
    }
    if v.starts_with(b"${") || v.starts_with(b"$(") || v.starts_with(b"%(") || v.starts_with(b"{{")
    {
        return true;
    }
    if v.first() == Some(&b'$')
        && v.iter()
            .skip(1)
            .all(|c| c.is_ascii_uppercase() || *c == b'_' || c.is_ascii_digit())
    {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    let inner: &[u8] = lower
        .strip_prefix(b"[")
        .and_then(|s| s.strip_suffix(b"]"))
        .or_else(|| lower.strip_prefix(b"(").and_then(|s| s.strip_suffix(b")")))
        .unwrap_or(&lower);
    const WORDS: &[&[u8]] = &[
        b"redacted",
        b"filtered",
        b"hidden",
        b"masked",
        b"removed",
        b"scrubbed",
        b"omitted",
        b"sensitive",
        b"secret",
        b"none",
        b"null",
        b"nil",
        b"undefined",
        b"true",
        b"false",
        b"empty",
        b"not set",
        b"unset",
        b"n/a",
        b"%s",
        b"%r",
        b"?",
        b"password",
        b"your_password",
        b"yourpassword",
        b"changeme_placeholder",
        b"...",
    ];
    WORDS.contains(&inner)
}

pub(super) fn trim_quotes(v: &[u8]) -> &[u8] {
    let mut v = v;
    while let [b'"' | b'\'' | b'\\', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b'"' | b'\'' | b'\\'] = v {
        v = rest;
    }
    v
}

/// Whether the `@` at `at` ends a URL authority with `user:password`: the
/// bytes before it, back to the first delimiter, hold a `:` and follow `://`.
/// A superset of what the `url` regex matches there.
pub(super) fn authority_has_password(buf: &[u8], at: usize) -> bool {
    let lo = at.saturating_sub(512);
    let mut colon = false;
    let mut i = at;
    while i > lo {
        match buf.get(i - 1).copied().unwrap_or(b' ') {
            b':' => colon = true,
            b'/' | b'?' | b'#' | b'@' | b'"' | b'\'' | b'<' | b'>' => break,
            b if b.is_ascii_whitespace() || b == 0x0b => break,
            _ => {}
        }
        i -= 1;
    }
    colon && i >= 3 && buf.get(i - 3..i) == Some(b"://")
}

/// Whether the password-ish literal ending at `end` may be a key the `key`
/// or `sql` regexes match: the rest of the word, then `=`/`:` (after an
/// optional `\`, quote and blanks) or blanks and a quoted SQL string.
/// A superset of those regexes at this position.
pub(super) fn may_assign(buf: &[u8], end: usize) -> bool {
    let at = |i: usize| buf.get(i).copied().unwrap_or(b'\n');
    let mut i = end;
    let lim = end + 64;
    while i < lim && (at(i).is_ascii_alphanumeric() || at(i) == b'_') {
        i += 1;
    }
    let word_end = i;
    if at(i) == b'\\' {
        i += 1;
    }
    if matches!(at(i), b'"' | b'\'') {
        i += 1;
    }
    while matches!(at(i), b' ' | b'\t') {
        i += 1;
    }
    if matches!(at(i), b'=' | b':') {
        return true;
    }
    // SQL: `PASSWORD 'x'`, `IDENTIFIED BY 'x'` (`\s` may be any blank).
    let mut j = word_end;
    while j < word_end + 64 && (at(j).is_ascii_whitespace() || at(j) == 0x0b || at(j) >= 0x80) {
        j += 1;
    }
    j > word_end
        && (matches!(at(j), b'\'' | b'"' | b'`')
            || (matches!(at(j), b'E' | b'e') && at(j + 1) == b'\''))
}

/// Whether a random-looking tail has at least 8 distinct bytes (a real key
/// id's 16 base32 characters have about 13): `AKIAXXXXXXXXXXXXXXXX` is a
/// placeholder.
pub(super) fn varied(tail: Option<&[u8]>) -> bool {
    distinct(tail) >= 8
}

/// The number of distinct bytes (letters and digits) in `b`.
pub(super) fn distinct(b: Option<&[u8]>) -> usize {
    let mut seen = [false; 256];
    let mut n = 0;
    for &c in b.unwrap_or(&[]) {
        if !c.is_ascii_alphanumeric() {
            continue;
        }
        if let Some(s) = seen.get_mut(usize::from(c)) {
            if !*s {
                *s = true;
                n += 1;
            }
        }
    }
    n
}

/// Counts `\n` bytes (memchr's vectorized count).
pub fn count_newlines(buf: &[u8]) -> u64 {
    memchr::memchr_iter(b'\n', buf).count() as u64
}

/// The value after `key=`/`key: ` starting at `at`: a quoted string (up to
/// its closing quote, or an escaped quote in flattened JSON) or a bare word.
pub(super) fn value_at(line: &[u8], at: usize, quoted_key: bool) -> Option<Range<usize>> {
    let rest = line.get(at..)?;
    let mut i = 0;
    if rest.first() == Some(&b'\\') {
        i = 1;
    }
    // `'password': ['…']` (a Python/Django list of values).
    if rest.get(i) == Some(&b'[') && matches!(rest.get(i + 1), Some(b'"' | b'\'')) {
        i += 1;
    }
    let q = rest.get(i).copied();
    if let Some(q @ (b'"' | b'\'')) = q {
        let start = at + i + 1;
        let body = line.get(start..)?;
        let end = body
            .iter()
            .position(|c| *c == q || *c == b'\\')
            .unwrap_or(body.len());
        return (end > 0).then_some(start..start + end);
    }
    // A bare value: a key in quotes (`"password": 123`) ends at `,` or `}`;
    // otherwise at space, `&`, `,`, `;` and closing brackets.
    let body = line.get(at..)?;
    // `[FILTERED]`, `<redacted>`, `{{password}}`: a bracketed placeholder.
    if let Some(close) = match body.first() {
        Some(b'[') => Some(b']'),
        Some(b'<') => Some(b'>'),
        Some(b'(') => Some(b')'),
        Some(b'{') => Some(b'}'),
        _ => None,
    } {
        if let Some(i) = body.iter().take(64).position(|c| *c == close) {
            let end = if close == b'}' && body.get(i + 1) == Some(&b'}') {
                i + 2
            } else {
                i + 1
            };
            return Some(at..at + end);
        }
    }
    let end = body
        .iter()
        .position(|c| {
            matches!(
                c,
                b' ' | b'\t'
                    | b'&'
                    | b','
                    | b';'
                    | b'"'
                    | b'\''
                    | b'}'
                    | b']'
                    | b')'
                    | b'\r'
                    | b'\n'
                    | b'\\'
            ) || (quoted_key && *c == b'}')
        })
        .unwrap_or(body.len());
    if end == 0 {
        return None;
    }
    let v = body.get(..end)?;
    // `password: <none>` styles and `key=value` with the key named only.
    if v == b"<" {
        return None;
    }
    Some(at..at + end)
}

pub(super) fn decodes_to_credentials(b64: &[u8]) -> bool {
    let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) else {
        return false;
    };
    let Ok(s) = std::str::from_utf8(&raw) else {
        return false;
    };
    match s.split_once(':') {
        // a JSON object (a JWT header sent as `Basic`) is not user:password
        Some((user, _)) if user.starts_with('{') => false,
        Some((user, pass)) => {
            !user.chars().any(char::is_control)
                && !pass.is_empty()
                && !pass.chars().any(char::is_control)
        }
        None => false,
    }
}

/// Longest excerpt kept, in characters.
pub(super) const EXCERPT_CHARS: usize = 200;

/// The line with every span replaced by `[REDACTED]`, control characters
/// escaped, clipped around `focus`.
pub(super) fn excerpt(line: &[u8], spans: &[Range<usize>], focus: usize) -> String {
    let mut sorted: Vec<&Range<usize>> = spans.iter().collect();
    sorted.sort_by_key(|s| s.start);
    let mut out: Vec<u8> = Vec::with_capacity(line.len().min(1024));
    let mut pos = 0;
    let mut focus_at = 0;
    for s in sorted {
        if s.start < pos {
            // Overlapping spans: extend the redaction.
            pos = pos.max(s.end);
            continue;
        }
        out.extend_from_slice(line.get(pos..s.start).unwrap_or(&[]));
        if s.start == focus {
            focus_at = out.len();
        }
        out.extend_from_slice(b"[REDACTED]");
        pos = s.end;
    }
    out.extend_from_slice(line.get(pos..).unwrap_or(&[]));
    let text = String::from_utf8_lossy(&out);
    let text: String = text
        .trim_end_matches(['\r', '\n'])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= EXCERPT_CHARS {
        return text;
    }
    // Clip around the focus (a byte offset in `out`, roughly a char offset).
    let center = text
        .char_indices()
        .position(|(i, _)| i >= focus_at)
        .unwrap_or(0);
    let start = center.saturating_sub(EXCERPT_CHARS / 2);
    let end = (start + EXCERPT_CHARS).min(chars.len());
    let start = end.saturating_sub(EXCERPT_CHARS);
    let mut s: String = chars
        .get(start..end)
        .map(|c| c.iter().collect())
        .unwrap_or_default();
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}
