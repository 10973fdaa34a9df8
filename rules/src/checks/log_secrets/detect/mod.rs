//! The detectors: pure functions over bytes.
//!
//! [`Scanner::scan`] takes a buffer of whole lines and reports [`Hit`]s. It
//! makes one pass of an Aho-Corasick automaton over the buffer for the
//! detectors' literals (plus a byte-stride pass for card numbers and the user's
//! `extra_patterns` as whole-buffer regex searches), then runs the full
//! detectors only on the candidate lines, each clipped to a window of at most
//! `max_line` bytes around the literal.
//!
//! INVARIANT: a secret's bytes never leave this module: a [`Hit`] carries the
//! line number, the code and an excerpt in which every secret found on that
//! line is replaced by `[REDACTED]`.

use std::ops::Range;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

use super::card;
use super::Code;

mod bytes;
mod literals;

pub use bytes::count_newlines;
use bytes::*;
use literals::*;

/// What the scanner reports for one secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// 1-based line number, counted from the start of the scanned buffer plus
    /// `first_line - 1`.
    pub line: u64,
    pub code: Code,
    /// The extra pattern's name, or the card network.
    pub detail: Option<String>,
    /// The line with every secret replaced by `[REDACTED]`, clipped.
    pub excerpt: String,
}

/// A user pattern from `extra_patterns`.
#[derive(Debug, Clone)]
pub struct Extra {
    pub name: String,
    pub regex: Regex,
}

/// What a detector found: its code, detail and the secret's span.
type Found = (Code, Option<String>, Range<usize>);

/// The excerpt given when a redacted excerpt still shows a secret.
pub const WITHHELD: &str = "[excerpt withheld: it still held a secret after redaction]";

/// Why the detectors could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScannerError {
    #[error("extra pattern `{name}`: {message}")]
    ExtraPattern { name: String, message: String },
    #[error("built-in detector `{pattern}` does not compile: {message}")]
    BuiltIn { pattern: String, message: String },
    #[error("prefilter: {0}")]
    Prefilter(String),
}

/// Compiled detectors.
#[derive(Debug, Clone)]
pub struct Scanner {
    /// `None` when no enabled detector has literals (`card_number` alone).
    ac: Option<AhoCorasick>,
    /// Whether `url_credentials` is on: its candidates come from `@`.
    urls: bool,
    bits: Vec<u16>,
    extras: Vec<Extra>,
    max_line: usize,
    /// Detectors whose hits are reported; the others still run on candidate
    /// lines so that excerpts never show their secrets.
    emit: Vec<Code>,
    /// Whether only some detectors are enabled: then every detector runs on
    /// each candidate line, for redaction.
    subset: bool,
    cards: bool,
    key: Regex,
    sql: Regex,
    user_opt: Regex,
    basic: Regex,
    url: Regex,
    bearer: Regex,
    privkey: Regex,
    hash: Regex,
    aws: Regex,
    aws_secret: Regex,
    github: Regex,
    slack: Regex,
    stripe: Regex,
}

fn re(s: &str) -> Result<Regex, ScannerError> {
    Regex::new(s).map_err(|e| ScannerError::BuiltIn {
        pattern: s.to_owned(),
        message: e.to_string(),
    })
}

impl Scanner {
    /// `max_line`: the widest window of a line examined around a candidate.
    /// `enabled`: the built-in detectors whose hits are reported.
    pub fn new(
        extras: Vec<Extra>,
        max_line: usize,
        enabled: &[Code],
    ) -> Result<Self, ScannerError> {
        let mask = enabled.iter().fold(0u16, |m, c| m | bit_of(*c));
        let literals: Vec<&(&str, u16)> = LITERALS.iter().filter(|(_, b)| b & mask != 0).collect();
        let ac = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals.iter().map(|(l, _)| l))
            .map_err(|e| ScannerError::Prefilter(e.to_string()))?;
        let subset = super::DETECTORS.iter().any(|d| !enabled.contains(d));
        Ok(Scanner {
            ac: (!literals.is_empty()).then_some(ac),
            urls: mask & URL != 0,
            bits: literals.iter().map(|(_, b)| *b).collect(),
            extras,
            max_line: max_line.max(256),
            emit: enabled.to_vec(),
            subset,
            cards: enabled.contains(&Code::CardNumber),
            key: re(concat!(
                r#"(?i)(?:^|[^a-z0-9_])((?:[a-z0-9]+[_.\-])*(?:pg|my)?(?:password|passwd|passphrase|pwd|pass)(?:_?confirm(?:ation)?|2)?)"#,
                r#"(\\?["']?)([ \t]*)(=>|=|:)([ \t]*)"#
            ))?,
            sql: re(concat!(
                r#"(?i)\b(?:password|passwd|passphrase|identified\s+by)\s+"#,
                r#"(E?'(?:[^'\\]|''|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`)"#
            ))?,
            // `curl -u user:password`, `--user 'user:password'` (a command
            // line in sudo's or auditd's log)
            user_opt: re(r#"(?:^|\s)(?:-u|--user)(?:\s+|=)["']?[^\s:"']*["']?:["']?([^\s"']+)"#)?,
            basic: re(r"(?i)\bbasic\s+([A-Za-z0-9+/]{6,}={0,2})")?,
            url: re(
                r#"(?i)\b[a-z][a-z0-9+.\-]{1,15}://[^\s/:@?#"'<>]*:([^\s/@?#"'<>]+)@[a-z0-9\[]"#,
            )?,
            bearer: re(r"(?i)\bbearer\s+([A-Za-z0-9\-._~+/]{16,}=*)")?,
            privkey: re(r"-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY( BLOCK)?-----")?,
            // `(?:[./A-Za-z0-9]|\\/)`: a hash in JSON written with escaped
            // slashes (`"$2y$10$ab\/cd…"`, PHP's `json_encode`) counts `\/` as `/`.
            hash: re(concat!(
                r"(\$2[abxy]\$\d\d\$(?:[./A-Za-z0-9]|\\/){53}",
                r"|\$[156]\$(?:rounds=\d+\$)?(?:[./A-Za-z0-9]|\\/){1,16}\$(?:[./A-Za-z0-9]|\\/){22,86}",
                r"|\$g?y\$[./A-Za-z0-9]+\$(?:[./A-Za-z0-9]|\\/)+\$(?:[./A-Za-z0-9]|\\/){43}",
                r"|\$7\$[./A-Za-z0-9]{11,}\$[./A-Za-z0-9]{43}",
                r"|\$argon2(?:id|i|d)\$(?:v=\d+\$)?m=\d+,t=\d+,p=\d+\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]{16,}",
                r"|\$?pbkdf2[-_]sha\d+\$\d+\$[A-Za-z0-9+/.]+\$[A-Za-z0-9+/.=]{16,})"
            ))?,
            // Not `\b`: a key after
            // `%3D` (URL-encoded `=`) or `_` (`AWS_KEY_AKIA…`) counts too.
            aws: re(
                r"(?:^|[^A-Z0-9]|%3[Dd])((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16})(?:[^A-Za-z0-9]|$)",
            )?,
            aws_secret: re(
                r#"(?i)aws_secret_access_key["']?\s*[=:]\s*["']?([A-Za-z0-9/+]{40})\b"#,
            )?,
            github: re(r"\b(gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{60,255})\b")?,
            // Slack's token shapes (as gitleaks' rules spell them): bot,
            // user/refresh, app-level, configuration, legacy; webhooks.
            slack: re(concat!(
                r"\b(xoxb-[0-9]{10,13}-[0-9]{10,13}[a-zA-Z0-9-]*|xoxb-[0-9]{8,14}-[a-zA-Z0-9]{18,26}",
                r"|xox[pe](?:-[0-9]{10,13}){3}-[a-zA-Z0-9-]{28,34}",
                r"|(?i:xapp-\d-[A-Z0-9]+-\d+-[a-z0-9]+)",
                r"|(?i:xoxe\.xox[bp]-\d-[A-Z0-9]{163,166})|(?i:xoxe-\d-[A-Z0-9]{146})",
                r"|xox[ar]-(?:\d-)?[0-9a-zA-Z]{8,48}|xox[os]-\d+-\d+-\d+-[a-fA-F\d]+",
                r"|xox[abposr]-[0-9]{8,}-[A-Za-z0-9-]{8,}[A-Za-z0-9]",
                r"|hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9+/]{43,56}",
                r"|hooks\.slack\.com/(?:services|workflows|triggers)/T[A-Za-z0-9_]+/[AB][A-Za-z0-9_]+/[A-Za-z0-9_/]{16,})",
            ))?,
            stripe: re(r"\b((?:sk|rk)_live_[A-Za-z0-9]{20,})\b")?,
        })
    }

    /// Scans `buf` (whole lines; a trailing partial line is fine) whose first
    /// line is number `first_line`. Hits come in line order. Returns the
    /// number of newlines in `buf`.
    pub fn scan(&self, buf: &[u8], first_line: u64, out: &mut Vec<Hit>) -> u64 {
        // Candidate windows: (start, end, detector bits), sorted by start.
        let mut cands: Vec<(usize, usize, u16)> = Vec::new();
        let mut last: Option<(usize, usize, u16)> = None;
        let add = |pos: usize,
                   bits: u16,
                   cands: &mut Vec<(usize, usize, u16)>,
                   last: &mut Option<(usize, usize, u16)>| {
            if let Some((s, e, b)) = last.as_mut() {
                if pos >= *s && pos < *e {
                    *b |= bits;
                    return;
                }
            }
            let (s, e) = self.window(buf, pos);
            if let Some(prev) = last.take() {
                cands.push(prev);
            }
            *last = Some((s, e, bits));
        };
        for m in self.ac.iter().flat_map(|ac| ac.find_iter(buf)) {
            let bits = self.bits.get(m.pattern().as_usize()).copied().unwrap_or(0);
            // `password` is in many lines that assign nothing (`Failed
            // password for`, `/users/password/new`): only a key followed by
            // `=`, `:` or a quoted SQL value is a candidate.
            if bits & KEY != 0 && !may_assign(buf, m.end()) {
                continue;
            }
            add(m.start(), bits, &mut cands, &mut last);
        }
        if let Some(l) = last.take() {
            cands.push(l);
        }
        if self.urls {
            // `scheme://user:pass@host`: `@` is rarer than `://` (in every
            // referrer), and the authority before it is checked backwards.
            let mut more = Vec::new();
            let mut l = None;
            for at in memchr::memchr_iter(b'@', buf) {
                if authority_has_password(buf, at) {
                    add(at, URL, &mut more, &mut l);
                }
            }
            if let Some(x) = l.take() {
                more.push(x);
            }
            cands.extend(more);
        }
        if self.cards {
            let mut more = Vec::new();
            let mut l = None;
            card::candidates(buf, |run| add(run.start, CARD, &mut more, &mut l));
            if let Some(x) = l.take() {
                more.push(x);
            }
            cands.extend(more);
        }
        for x in &self.extras {
            let mut more = Vec::new();
            let mut l = None;
            for m in x.regex.find_iter(buf) {
                add(m.start(), EXTRA, &mut more, &mut l);
            }
            if let Some(x) = l.take() {
                more.push(x);
            }
            cands.extend(more);
        }
        if cands.is_empty() {
            return count_newlines(buf);
        }
        cands.sort_unstable_by_key(|c| (c.0, c.1));
        // Merge windows of the same line.
        let mut merged: Vec<(usize, usize, u16)> = Vec::with_capacity(cands.len());
        for c in cands {
            match merged.last_mut() {
                Some(m) if m.0 == c.0 => {
                    m.1 = m.1.max(c.1);
                    m.2 |= c.2;
                }
                _ => merged.push(c),
            }
        }
        let mut line = first_line;
        let mut cursor = 0usize;
        for (s, e, bits) in merged {
            if s < cursor {
                // A window inside a long line already examined.
                continue;
            }
            line += count_newlines(buf.get(cursor..s).unwrap_or(&[]));
            cursor = s;
            if let Some(text) = buf.get(s..e) {
                self.scan_line(text, bits, line, out);
            }
        }
        line - first_line + count_newlines(buf.get(cursor..).unwrap_or(&[]))
    }

    /// The window of the line holding `pos`, at most `max_line` bytes.
    fn window(&self, buf: &[u8], pos: usize) -> (usize, usize) {
        let half = self.max_line / 2;
        let lo = pos.saturating_sub(half);
        let hi = (pos + half).min(buf.len());
        let start =
            memchr::memrchr(b'\n', buf.get(lo..pos).unwrap_or(&[])).map_or(lo, |i| lo + i + 1);
        let end = memchr::memchr(b'\n', buf.get(pos..hi).unwrap_or(&[])).map_or(hi, |i| pos + i);
        (start, end)
    }

    /// Runs every detector woken by `bits` on one line; all secret spans of
    /// the line are redacted in every excerpt of it.
    pub fn scan_line(&self, line: &[u8], bits: u16, n: u64, out: &mut Vec<Hit>) {
        let found = self.detect(line, bits);
        if found.is_empty() {
            return;
        }
        self.report(line, n, found, out);
    }

    /// Every detector woken by `bits` (all with `u16::MAX`) over one line:
    /// what each found, and where.
    fn detect(&self, line: &[u8], bits: u16) -> Vec<Found> {
        let mut found: Vec<Found> = Vec::new();
        let all = bits == u16::MAX || self.subset;
        let on = |b: u16| all || bits & b != 0;
        if on(PASSWORD) {
            self.passwords(line, &mut found);
        }
        if on(BASIC) {
            for c in self.basic.captures_iter(line) {
                if let Some(m) = c.get(1) {
                    if decodes_to_credentials(m.as_bytes()) {
                        found.push((Code::BasicAuthHeader, None, m.range()));
                    }
                }
            }
        }
        if on(URL) && memchr::memchr(b'@', line).is_some() {
            for c in self.url.captures_iter(line) {
                if let Some(m) = c.get(1) {
                    if !is_placeholder(m.as_bytes()) {
                        found.push((Code::UrlCredentials, None, m.range()));
                    }
                }
            }
        }
        if on(BEARER) {
            for c in self.bearer.captures_iter(line) {
                if let Some(m) = c.get(1) {
                    let t = m.as_bytes();
                    if t.iter().any(u8::is_ascii_digit) || t.len() >= 32 {
                        found.push((Code::BearerToken, None, m.range()));
                    }
                }
            }
        }
        if on(PRIVKEY) {
            if let Some(m) = self.privkey.find(line) {
                // Whatever follows the header on this line (a flattened key)
                // is key material; a header and its footer with nothing
                // between is an empty template.
                let end = memchr::memmem::find(line.get(m.end()..).unwrap_or(&[]), b"-----END")
                    .map_or(line.len(), |i| m.end() + i);
                let between = line.get(m.end()..end).unwrap_or(&[]);
                let empty = end < line.len() && between.iter().all(u8::is_ascii_whitespace);
                if !empty {
                    found.push((Code::PrivateKeyBlock, None, m.end()..end));
                }
            }
        }
        if on(HASH) {
            for m in self.hash.find_iter(line) {
                found.push((Code::PasswordHash, None, m.range()));
            }
        }
        if on(AWS) {
            for c in self.aws.captures_iter(line) {
                if let Some(m) = c.get(1) {
                    if !m.as_bytes().ends_with(b"EXAMPLE") && varied(m.as_bytes().get(4..)) {
                        found.push((Code::AwsAccessKeyId, None, m.range()));
                    }
                }
            }
            for c in self.aws_secret.captures_iter(line) {
                if let Some(m) = c.get(1) {
                    if !m.as_bytes().ends_with(b"EXAMPLEKEY") {
                        found.push((Code::AwsSecretAccessKey, None, m.range()));
                    }
                }
            }
        }
        if on(GITHUB) {
            for m in self.github.find_iter(line) {
                // `ghp_xxxx…`: a placeholder
                let t = m.as_bytes();
                let body = t.strip_prefix(b"github_pat_").or_else(|| t.get(4..));
                if distinct(body) >= 3 {
                    found.push((Code::GithubToken, None, m.range()));
                }
            }
        }
        if on(SLACK)
            && (memchr::memmem::find(line, b"xox").is_some()
                || memchr::memmem::find(line, b"xapp-").is_some()
                || memchr::memmem::find(line, b"hooks.slack.com").is_some())
        {
            for m in self.slack.find_iter(line) {
                // `xoxb-xxxxxxxxxxx-xxxx…`, `xoxp-5723…-####`: placeholders
                let next = line.get(m.end()).copied();
                if distinct(m.as_bytes().get(5..)) >= 3
                    && !matches!(next, Some(b'#' | b'*' | b'<' | b'{' | b'$'))
                {
                    found.push((Code::SlackToken, None, m.range()));
                }
            }
        }
        if on(STRIPE) {
            for m in self.stripe.find_iter(line) {
                found.push((Code::StripeSecretKey, None, m.range()));
            }
        }
        if self.cards || self.subset || on(CARD) {
            card::find_cards(line, |span, net| {
                found.push((Code::CardNumber, Some(net.to_owned()), span));
            });
        }
        if on(EXTRA) {
            for x in &self.extras {
                for c in x.regex.captures_iter(line) {
                    let m = c.name("secret").or_else(|| c.get(1)).or_else(|| c.get(0));
                    if let Some(m) = m {
                        if !m.is_empty() {
                            found.push((Code::ExtraPattern, Some(x.name.clone()), m.range()));
                        }
                    }
                }
            }
        }
        found
    }

    /// Turns what [`Self::detect`] found on line `n` into hits, each with an
    /// excerpt that shows none of the line's secrets.
    fn report(&self, line: &[u8], n: u64, mut found: Vec<Found>, out: &mut Vec<Hit>) {
        // Every span is redacted in every excerpt of the line, and so is
        // every other occurrence of a secret's bytes on the line (the same
        // password logged again under another key: `password=x … pw_raw=x`).
        let mut spans: Vec<Range<usize>> = found.iter().map(|k| k.2.clone()).collect();
        let mut again = Vec::new();
        for sp in &spans {
            let Some(value) = line.get(sp.clone()).filter(|v| !v.is_empty()) else {
                continue;
            };
            for at in memchr::memmem::find_iter(line, value) {
                let r = at..at + value.len();
                if !spans.contains(&r) {
                    again.push(r);
                }
            }
        }
        spans.extend(again);
        // One secret is one finding: a password value that another detector
        // recognises (`password=$6$…`, `password=ghp_…`) is reported by that
        // detector; a span inside another span of another detector (a token
        // inside a URL) is dropped.
        let specific: Vec<Range<usize>> = found
            .iter()
            .filter(|f| f.0 != Code::PasswordAssignment)
            .map(|f| f.2.clone())
            .collect();
        found.retain(|f| {
            f.0 != Code::PasswordAssignment
                || !specific
                    .iter()
                    .any(|s| s.start <= f.2.start + 1 && f.2.end <= s.end + 1)
        });
        found.sort_by_key(|f| (f.2.start, std::cmp::Reverse(f.2.end)));
        let mut kept: Vec<(Code, Option<String>, Range<usize>)> = Vec::new();
        for f in found {
            let inside = kept.iter().any(|k| {
                k.2.start <= f.2.start && f.2.end <= k.2.end && (k.0 != f.0 || k.2 == f.2)
            });
            if !inside {
                kept.push(f);
            }
        }
        for (code, detail, span) in kept {
            if code != Code::ExtraPattern && !self.emit.contains(&code) {
                continue;
            }
            out.push(Hit {
                line: n,
                code,
                detail,
                excerpt: self.checked_excerpt(line, &spans, span.start),
            });
        }
    }

    /// [`excerpt`], then the excerpt itself scanned again with every
    /// detector before it leaves: whatever is found there (a secret the
    /// line's own windows missed, a value the redaction cut in two) is
    /// redacted too, and an excerpt still holding a secret or a secret's
    /// bytes after that is withheld.
    fn checked_excerpt(&self, line: &[u8], spans: &[Range<usize>], focus: usize) -> String {
        let mut text = excerpt(line, spans, focus);
        for _ in 0..3 {
            let found = self.detect(text.as_bytes(), u16::MAX);
            if found.is_empty() {
                break;
            }
            let more: Vec<Range<usize>> = found.iter().map(|f| f.2.clone()).collect();
            text = excerpt(text.as_bytes(), &more, 0);
        }
        let leaks = !self.detect(text.as_bytes(), u16::MAX).is_empty()
            || spans.iter().any(|sp| {
                line.get(sp.clone()).is_some_and(|v| {
                    v.len() >= 3 && memchr::memmem::find(text.as_bytes(), v).is_some()
                })
            });
        if leaks {
            return WITHHELD.to_owned();
        }
        text
    }

    fn passwords(&self, line: &[u8], found: &mut Vec<Found>) {
        for c in self.key.captures_iter(line) {
            let (Some(key), Some(sep), Some(all)) = (c.get(1), c.get(4), c.get(0)) else {
                continue;
            };
            let spaced = |g: usize| c.get(g).is_some_and(|w| !w.is_empty());
            let k = key.as_bytes().to_ascii_lowercase();
            // Bare `pass` is too common a word (`tests pass: 3`): only as a
            // query/form key (`pass=`) or with a prefix (`db_pass`).
            if k.ends_with(b"pass") && k.len() == 4 && sep.as_bytes() != b"=" {
                continue;
            }
            let before = key.start().checked_sub(1).and_then(|i| line.get(i));
            // `pam_unix(passwd:chauthtok)`: a PAM service and its facility,
            // not a key. `(password: hunter2)` in an exception message is.
            if before == Some(&b'(') && sep.as_bytes() == b":" && !spaced(5) {
                let rest = line.get(all.end()..).unwrap_or(&[]);
                let word = rest
                    .iter()
                    .position(|c| !c.is_ascii_alphabetic())
                    .map_or(rest, |i| rest.get(..i).unwrap_or(&[]));
                if matches!(
                    word,
                    b"auth" | b"account" | b"session" | b"chauthtok" | b"password"
                ) && rest.get(word.len()) == Some(&b')')
                {
                    continue;
                }
            }
            // `?pass= HTTP/1.1`, `password= host=db`: an empty value. Spaces
            // after `=` count only when there are some before it too
            // (`password = hunter2`).
            if sep.as_bytes() != b":" && spaced(5) && !spaced(3) {
                continue;
            }
            let quoted_key = c.get(2).is_some_and(|q| !q.is_empty());
            if let Some(v) = value_at(line, all.end(), quoted_key) {
                let bytes = line.get(v.clone()).unwrap_or(&[]);
                let quoted = matches!(line.get(all.end()), Some(b'"' | b'\'' | b'\\'));
                // `PWD=/home/alice` (sudo, env dumps): a working directory.
                if k.ends_with(b"pwd") && matches!(bytes.first(), Some(b'/' | b'~')) {
                    continue;
                }
                // `passwd: Authentication token manipulation error`: prose.
                let after = line.get(v.end..v.end + 2).unwrap_or(&[]);
                if sep.as_bytes() == b":"
                    && !quoted
                    && bytes.iter().all(u8::is_ascii_alphabetic)
                    && matches!(after, [b' ', c] if c.is_ascii_alphabetic())
                {
                    continue;
                }
                if !is_placeholder(bytes) {
                    found.push((Code::PasswordAssignment, None, v));
                }
            }
        }
        for c in self.user_opt.captures_iter(line) {
            if let Some(m) = c.get(1) {
                // `-u user:pass`, `--user "xxx:yyy"`, `-u <user:password>`:
                // documentation, not a credential
                let v = m.as_bytes().to_ascii_lowercase();
                let doc = matches!(
                    v.as_slice(),
                    b"pass" | b"password" | b"passwd" | b"token" | b"secret" | b"test"
                ) || v.ends_with(b">")
                    || distinct(Some(&v)) <= 1;
                if !doc && !is_placeholder(m.as_bytes()) {
                    found.push((Code::PasswordAssignment, None, m.range()));
                }
            }
        }
        for c in self.sql.captures_iter(line) {
            if let Some(m) = c.get(1) {
                // `E'…'`: the value starts after the quote
                let skip = if matches!(m.as_bytes().first(), Some(b'E' | b'e')) {
                    2
                } else {
                    1
                };
                let inner = m.start() + skip..m.end().saturating_sub(1);
                let bytes = line.get(inner.clone()).unwrap_or(&[]);
                if !is_placeholder(bytes) && inner.start < inner.end {
                    found.push((Code::PasswordAssignment, None, inner));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
