//! The verification cache of `dpkg_verify`: for every package file hashed,
//! a key of (path read, expected MD5), a digest of the file's stat identity
//! when it was hashed (the agent's `collect::stat_identity`: device, inode, size, mtime
//! and ctime in ns) and the
//! outcome (matched / did not match).
//!
//! A later run that finds the same key with the same identity takes the
//! outcome without reading the file. Writing a file through the filesystem
//! always sets its ctime to the present (userspace cannot set ctime:
//! `utimensat`, `touch -d` set mtime and atime, and ctime to now), so new
//! content means a new identity. What the cache does not see — writes to the
//! raw block device under the filesystem, a clock set back to an old ctime —
//! the periodic full pass does.
//!
//! On disk: a binary file, so 93 000 entries take 2.3 MB and load in
//! milliseconds (JSON would be ~15 MB to parse):
//!
//! ```text
//! magic "VGDPKGC\0" · version u32 · record size u32 · last full pass i64
//! (Unix seconds) · count u64 · count × (key [16] · identity [8] · outcome u8),
//! sorted by key, no key twice · SHA-256 of everything before it [32]
//! ```
//!
//! Integers are little-endian. A file that is short, long, unsorted or
//! whose checksum does not match is corrupt: the caller discards it and
//! hashes everything.
//!
//! Pure: the agent opens, reads and saves the file
//! (`agent/src/collect/file_integrity/cache.rs`); this module only decodes
//! and encodes bytes, so unit tests and the `dpkg_cache` fuzz target call it.

use std::io::{BufReader, BufWriter, Read, Write};

use sha2::{Digest, Sha256};

/// Bumped when the layout or the meaning of a key or identity changes: a
/// cache of another version is not used (a full pass rebuilds it).
pub const VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"VGDPKGC\0";
const HEADER: usize = 8 + 4 + 4 + 8 + 8;
const RECORD: usize = 16 + 8 + 1;
const SUM: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Matched,
    Mismatched,
}

impl Outcome {
    fn byte(self) -> u8 {
        match self {
            Outcome::Matched => 1,
            Outcome::Mismatched => 2,
        }
    }
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Outcome::Matched),
            2 => Some(Outcome::Mismatched),
            _ => None,
        }
    }
}

/// One file's entry: 25 bytes in memory as on disk (byte arrays only, so
/// no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    pub key: [u8; 16],
    pub ident: [u8; 8],
    pub outcome: Outcome,
}

/// The key of a file: 128 bits of SHA-256 over the path read (after
/// diversions) and the MD5 dpkg expects. An upgraded package (a new
/// expected MD5) has new keys, so its files are hashed again.
pub fn key(path: &[u8], md5: &[u8; 16]) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update((path.len() as u64).to_le_bytes());
    h.update(path);
    h.update(md5);
    array(&h.finalize(), 0)
}

/// A cache as read: when every file was last hashed, and the records.
#[derive(Debug, Default)]
pub struct Cache {
    pub last_full_pass: i64,
    recs: Vec<Rec>,
}

impl Cache {
    pub fn get(&self, key: &[u8; 16]) -> Option<&Rec> {
        self.recs
            .binary_search_by(|r| r.key.cmp(key))
            .ok()
            .and_then(|i| self.recs.get(i))
    }

    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }
}

/// Why a cache file was not used.
#[derive(Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Written by another format version (not damage: a full pass rebuilds it).
    Version(u32),
    /// Damaged or not a cache at all.
    Corrupt(String),
}

/// Reads a cache from `r` (the whole file), checking its layout, order and
/// checksum as it goes; records are never held twice.
/// The time of the last full pass, from the header alone (nothing else of
/// the file is read or checked).
pub fn last_full_pass(mut r: impl Read) -> Result<i64, Unusable> {
    let mut head = [0u8; HEADER];
    r.read_exact(&mut head)
        .map_err(|_| Unusable::Corrupt("shorter than its header".into()))?;
    parse_header(&head).map(|(last, _)| last)
}

/// The header's last full pass and record count, once its magic, version
/// and record size check out.
fn parse_header(head: &[u8; HEADER]) -> Result<(i64, u64), Unusable> {
    let corrupt = |why: &str| Unusable::Corrupt(why.to_owned());
    if head.get(..8) != Some(&MAGIC[..]) {
        return Err(corrupt("not a vigil dpkg cache (bad magic)"));
    }
    let version = u32::from_le_bytes(array(head, 8));
    if version != VERSION {
        return Err(Unusable::Version(version));
    }
    if u32::from_le_bytes(array(head, 12)) as usize != RECORD {
        return Err(corrupt("record size does not match its version"));
    }
    Ok((
        i64::from_le_bytes(array(head, 16)),
        u64::from_le_bytes(array(head, 24)),
    ))
}

pub fn decode(r: impl Read) -> Result<Cache, Unusable> {
    let corrupt = |why: &str| Unusable::Corrupt(why.to_owned());
    let mut r = BufReader::with_capacity(64 << 10, r);
    let mut sum = Sha256::new();
    let mut head = [0u8; HEADER];
    r.read_exact(&mut head)
        .map_err(|_| corrupt("shorter than its header"))?;
    sum.update(head);
    let (last_full_pass, count) = parse_header(&head)?;
    // a count from a damaged header must not size an allocation by itself
    let count = usize::try_from(count).map_err(|_| corrupt("impossible record count"))?;
    if count > 64 << 20 {
        return Err(corrupt("impossible record count"));
    }
    let mut recs = Vec::with_capacity(count.min(1 << 20));
    let mut rec = [0u8; RECORD];
    let mut prev: Option<[u8; 16]> = None;
    for _ in 0..count {
        r.read_exact(&mut rec)
            .map_err(|_| corrupt("shorter than its record count"))?;
        sum.update(rec);
        let k: [u8; 16] = array(&rec, 0);
        let i: [u8; 8] = array(&rec, 16);
        let outcome = rec
            .get(24)
            .copied()
            .and_then(Outcome::from_byte)
            .ok_or_else(|| corrupt("unknown outcome"))?;
        if prev.is_some_and(|p| p >= k) {
            return Err(corrupt("records out of order"));
        }
        prev = Some(k);
        recs.push(Rec {
            key: k,
            ident: i,
            outcome,
        });
    }
    let mut stored = [0u8; SUM];
    r.read_exact(&mut stored)
        .map_err(|_| corrupt("no checksum"))?;
    if r.read(&mut [0u8; 1]).map_or(true, |n| n != 0) {
        return Err(corrupt("longer than its record count"));
    }
    if sum.finalize().as_slice() != stored {
        return Err(corrupt("checksum mismatch"));
    }
    Ok(Cache {
        last_full_pass,
        recs,
    })
}

/// `N` bytes of `b` from `at` (zeros past its end).
fn array<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut x = [0u8; N];
    if let Some(s) = b.get(at..at + N) {
        x.copy_from_slice(s);
    }
    x
}

/// Writes `recs` (sorted by key, no key twice: see [`sort`]) to `w`.
pub fn encode(w: impl Write, last_full_pass: i64, recs: &[Rec]) -> std::io::Result<()> {
    let mut w = BufWriter::with_capacity(64 << 10, w);
    let mut sum = Sha256::new();
    let mut put = |w: &mut BufWriter<_>, b: &[u8]| {
        sum.update(b);
        w.write_all(b)
    };
    put(&mut w, MAGIC)?;
    put(&mut w, &VERSION.to_le_bytes())?;
    put(&mut w, &(RECORD as u32).to_le_bytes())?;
    put(&mut w, &last_full_pass.to_le_bytes())?;
    put(&mut w, &(recs.len() as u64).to_le_bytes())?;
    for r in recs {
        put(&mut w, &r.key)?;
        put(&mut w, &r.ident)?;
        put(&mut w, &[r.outcome.byte()])?;
    }
    let d = sum.finalize();
    w.write_all(&d)?;
    w.flush()
}

/// Sorts records by key and keeps one per key (a path listed twice, by two
/// packages with the same MD5, is one file).
pub fn sort(recs: &mut Vec<Rec>) {
    recs.sort_unstable_by_key(|r| r.key);
    recs.dedup_by(|a, b| a.key == b.key);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recs(n: u8) -> Vec<Rec> {
        let mut v: Vec<Rec> = (0..n)
            .map(|i| Rec {
                key: key(format!("/usr/bin/f{i}").as_bytes(), &[i; 16]),
                ident: [i; 8],
                outcome: if i % 3 == 0 {
                    Outcome::Mismatched
                } else {
                    Outcome::Matched
                },
            })
            .collect();
        sort(&mut v);
        v
    }

    fn bytes(last: i64, r: &[Rec]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, last, r).unwrap();
        out
    }

    #[test]
    fn the_header_alone_gives_the_last_full_pass() {
        let b = bytes(1_790_000_000, &recs(3));
        assert_eq!(last_full_pass(&b[..]).unwrap(), 1_790_000_000);
        assert_eq!(last_full_pass(&b[..HEADER]).unwrap(), 1_790_000_000);
        assert!(matches!(
            last_full_pass(&b[..HEADER - 1]),
            Err(Unusable::Corrupt(_))
        ));
        let mut bad = b.clone();
        bad[0] ^= 1;
        assert!(matches!(
            last_full_pass(&bad[..]),
            Err(Unusable::Corrupt(_))
        ));
        let mut newer = b;
        newer[8] = 9;
        assert!(matches!(
            last_full_pass(&newer[..]),
            Err(Unusable::Version(9))
        ));
    }

    #[test]
    fn round_trip() {
        let r = recs(50);
        let b = bytes(1_790_000_000, &r);
        assert_eq!(b.len(), HEADER + 50 * RECORD + SUM);
        let c = decode(&b[..]).unwrap();
        assert_eq!(c.last_full_pass, 1_790_000_000);
        assert_eq!(c.recs, r);
        for x in &r {
            assert_eq!(c.get(&x.key), Some(x));
        }
        assert_eq!(c.get(&key(b"/usr/bin/other", &[0; 16])), None);
        // empty is a valid cache too
        let c = decode(&bytes(5, &[])[..]).unwrap();
        assert_eq!((c.last_full_pass, c.len()), (5, 0));
    }

    #[test]
    fn every_damage_is_corrupt() {
        let good = bytes(7, &recs(20));
        // every single flipped bit, anywhere, is seen
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0x10;
            let e = decode(&b[..]).unwrap_err();
            if (8..12).contains(&i) {
                // the version field: another version, not used either
                assert!(matches!(e, Unusable::Version(_)), "byte {i}: {e:?}");
            } else {
                assert!(matches!(e, Unusable::Corrupt(_)), "byte {i}: {e:?}");
            }
        }
        // short at every length, and too long
        for n in 0..good.len() {
            assert!(
                matches!(decode(&good[..n]), Err(Unusable::Corrupt(_))),
                "{n}"
            );
        }
        let mut long = good.clone();
        long.push(0);
        assert_eq!(
            decode(&long[..]).unwrap_err(),
            Unusable::Corrupt("longer than its record count".into())
        );
        assert!(matches!(
            decode(&b"{\"not\": \"a cache\"}"[..]),
            Err(Unusable::Corrupt(_))
        ));
    }

    #[test]
    fn records_must_be_sorted_even_with_a_good_checksum() {
        let mut r = recs(5);
        r.swap(1, 3);
        assert_eq!(
            decode(&bytes(1, &r)[..]).unwrap_err(),
            Unusable::Corrupt("records out of order".into())
        );
        let mut r = recs(5);
        r[2] = r[1];
        assert!(decode(&bytes(1, &r)[..]).is_err());
    }

    #[test]
    fn another_version_is_not_corruption() {
        let mut b = bytes(1, &recs(3));
        b[8] = 99;
        assert_eq!(decode(&b[..]).unwrap_err(), Unusable::Version(99));
    }

    #[test]
    fn keys_differ_by_path_and_md5() {
        assert_ne!(key(b"/a", &[1; 16]), key(b"/a", &[2; 16]));
        assert_ne!(key(b"/a", &[1; 16]), key(b"/b", &[1; 16]));
        // the length prefix keeps path bytes from sliding into the md5
        let mut m = [1u8; 16];
        m[0] = b'x';
        assert_ne!(key(b"/ax", &[1; 16]), key(b"/a", &m));
    }

    #[test]
    fn sort_keeps_one_per_key() {
        let mut r = recs(4);
        r.extend(recs(4));
        sort(&mut r);
        assert_eq!(r, recs(4));
    }
}
