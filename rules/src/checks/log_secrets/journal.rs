//! The systemd journal's export format (`journalctl -o export`), read one
//! entry at a time: `NAME=value\n` text fields, `NAME\n<u64 LE length><bytes>\n`
//! binary ones, and a blank line after each entry. Only the fields the scan
//! needs are kept; the others are read past.

use std::io::{BufRead, Read};

/// One journal entry's fields of interest.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Entry {
    pub cursor: Option<String>,
    /// Microseconds since the epoch.
    pub realtime_us: Option<u64>,
    pub identifier: Option<Vec<u8>>,
    pub message: Option<Vec<u8>>,
}

impl Entry {
    /// The entry as one line to scan: `IDENT: MESSAGE`, newlines inside
    /// the message turned into spaces.
    pub fn line(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if let Some(i) = &self.identifier {
            out.extend_from_slice(i);
            out.extend_from_slice(b": ");
        }
        if let Some(m) = &self.message {
            out.extend(m.iter().map(|c| if *c == b'\n' { b' ' } else { *c }));
        }
        out
    }
}

/// Reads the next entry; `None` at the end of the stream. Fields longer than
/// `max_field` bytes are cut to that length (the rest is read past).
pub fn next_entry(r: &mut impl BufRead, max_field: usize) -> std::io::Result<Option<Entry>> {
    let mut e = Entry::default();
    let mut any = false;
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = r
            .by_ref()
            .take(max_field as u64 + 4096)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(any.then_some(e));
        }
        if line == b"\n" {
            if any {
                return Ok(Some(e));
            }
            continue;
        }
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Some(eq) = memchr::memchr(b'=', body) {
            let (name, value) = (
                body.get(..eq).unwrap_or(&[]),
                body.get(eq + 1..).unwrap_or(&[]),
            );
            keep(&mut e, name, value.to_vec());
            // a text line longer than the cap: read past the rest of it
            if !line.ends_with(b"\n") {
                let mut sink = Vec::new();
                r.read_until(b'\n', &mut sink)?;
            }
        } else {
            let name = body.to_vec();
            let mut len = [0u8; 8];
            r.read_exact(&mut len)?;
            let len = u64::from_le_bytes(len);
            let mut value = Vec::new();
            r.by_ref()
                .take(len.min(max_field as u64))
                .read_to_end(&mut value)?;
            let rest = len.saturating_sub(value.len() as u64);
            std::io::copy(&mut r.by_ref().take(rest), &mut std::io::sink())?;
            let mut nl = [0u8; 1];
            r.read_exact(&mut nl)?;
            keep(&mut e, &name, value);
        }
        any = true;
    }
}

fn keep(e: &mut Entry, name: &[u8], value: Vec<u8>) {
    match name {
        b"__CURSOR" => e.cursor = Some(String::from_utf8_lossy(&value).into_owned()),
        b"__REALTIME_TIMESTAMP" => {
            e.realtime_us = std::str::from_utf8(&value)
                .ok()
                .and_then(|s| s.parse().ok());
        }
        b"SYSLOG_IDENTIFIER" => e.identifier = Some(value),
        b"MESSAGE" => e.message = Some(value),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_binary_fields() {
        let mut s = b"__CURSOR=s=1;i=2\n__REALTIME_TIMESTAMP=1764700000000000\nSYSLOG_IDENTIFIER=app\nMESSAGE=password=hunter2\n_PID=1\n\n".to_vec();
        s.extend_from_slice(b"__CURSOR=s=1;i=3\nMESSAGE\n");
        s.extend_from_slice(&8u64.to_le_bytes());
        s.extend_from_slice(b"a\nb\x00pw=x\n");
        s.extend_from_slice(b"BIN\n");
        s.extend_from_slice(&3u64.to_le_bytes());
        s.extend_from_slice(b"xyz\n\n");
        let mut r = &s[..];
        let a = next_entry(&mut r, 1 << 16).unwrap().unwrap();
        assert_eq!(a.cursor.as_deref(), Some("s=1;i=2"));
        assert_eq!(a.realtime_us, Some(1_764_700_000_000_000));
        assert_eq!(a.line(), b"app: password=hunter2");
        let b = next_entry(&mut r, 1 << 16).unwrap().unwrap();
        assert_eq!(b.line(), b"a b\x00pw=x");
        assert_eq!(b.cursor.as_deref(), Some("s=1;i=3"));
        assert_eq!(next_entry(&mut r, 1 << 16).unwrap(), None);
    }

    #[test]
    fn long_fields_are_cut_and_read_past() {
        let mut s = b"MESSAGE\n".to_vec();
        s.extend_from_slice(&10u64.to_le_bytes());
        s.extend_from_slice(b"0123456789\n__CURSOR=c\n\n");
        let mut r = &s[..];
        let e = next_entry(&mut r, 4).unwrap().unwrap();
        assert_eq!(e.message.as_deref(), Some(&b"0123"[..]));
        assert_eq!(e.cursor.as_deref(), Some("c"));
    }
}
