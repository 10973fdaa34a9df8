//! Debian version ordering, exactly as dpkg orders versions
//! (`lib/dpkg/version.c`: epoch, then upstream and revision by `verrevcmp`).

use std::cmp::Ordering;

/// A parsed `[epoch:]upstream[-revision]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version<'a> {
    pub epoch: u64,
    pub upstream: &'a str,
    pub revision: &'a str,
}

/// A version dpkg rejects, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("empty version")]
    Empty,
    #[error("version `{0}` has embedded spaces")]
    EmbeddedSpaces(String),
    #[error("epoch in version `{0}` is not a number")]
    EpochNotANumber(String),
    #[error("epoch in version `{0}` is too big")]
    EpochTooBig(String),
    #[error("version `{0}` has an empty upstream part")]
    EmptyUpstream(String),
}

/// Parses a version as dpkg does; `Err` for what dpkg rejects.
pub fn parse(v: &str) -> Result<Version<'_>, VersionError> {
    let v = v.trim();
    if v.is_empty() {
        return Err(VersionError::Empty);
    }
    if v.chars().any(char::is_whitespace) {
        return Err(VersionError::EmbeddedSpaces(v.to_owned()));
    }
    let (epoch, rest) = match v.split_once(':') {
        Some((e, rest)) => {
            if e.is_empty() || !e.bytes().all(|b| b.is_ascii_digit()) {
                return Err(VersionError::EpochNotANumber(v.to_owned()));
            }
            let epoch = e
                .parse::<u64>()
                .map_err(|_| VersionError::EpochTooBig(v.to_owned()))?;
            (epoch, rest)
        }
        None => (0, v),
    };
    let (upstream, revision) = match rest.rfind('-') {
        Some(i) => (rest.get(..i).unwrap_or(""), rest.get(i + 1..).unwrap_or("")),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(VersionError::EmptyUpstream(v.to_owned()));
    }
    Ok(Version {
        epoch,
        upstream,
        revision,
    })
}

fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) => i32::from(c) + 256,
    }
}

/// dpkg's `verrevcmp`.
fn verrevcmp(a: &[u8], b: &[u8]) -> Ordering {
    let (mut i, mut j) = (0usize, 0usize);
    let at = |s: &[u8], k: usize| s.get(k).copied();
    let digit = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_digit());
    while at(a, i).is_some() || at(b, j).is_some() {
        let mut first_diff: i32 = 0;
        while (at(a, i).is_some() && !digit(at(a, i))) || (at(b, j).is_some() && !digit(at(b, j))) {
            let ac = order(at(a, i));
            let bc = order(at(b, j));
            if ac != bc {
                return ac.cmp(&bc);
            }
            i += 1;
            j += 1;
        }
        while at(a, i) == Some(b'0') {
            i += 1;
        }
        while at(b, j) == Some(b'0') {
            j += 1;
        }
        while digit(at(a, i)) && digit(at(b, j)) {
            if first_diff == 0 {
                first_diff = i32::from(at(a, i).unwrap_or(0)) - i32::from(at(b, j).unwrap_or(0));
            }
            i += 1;
            j += 1;
        }
        if digit(at(a, i)) {
            return Ordering::Greater;
        }
        if digit(at(b, j)) {
            return Ordering::Less;
        }
        if first_diff != 0 {
            return first_diff.cmp(&0);
        }
    }
    Ordering::Equal
}

/// Compares two parsed versions.
pub fn cmp_parsed(a: &Version<'_>, b: &Version<'_>) -> Ordering {
    a.epoch
        .cmp(&b.epoch)
        .then_with(|| verrevcmp(a.upstream.as_bytes(), b.upstream.as_bytes()))
        .then_with(|| verrevcmp(a.revision.as_bytes(), b.revision.as_bytes()))
}

/// Compares two version strings; `Err` names a version dpkg would reject.
pub fn compare(a: &str, b: &str) -> Result<Ordering, VersionError> {
    Ok(cmp_parsed(&parse(a)?, &parse(b)?))
}

/// Compares leniently: an unparsable version sorts as its raw text through
/// `verrevcmp`, which is how dpkg treats versions it only warns about.
pub fn compare_lenient(a: &str, b: &str) -> Ordering {
    match (parse(a), parse(b)) {
        (Ok(x), Ok(y)) => cmp_parsed(&x, &y),
        _ => verrevcmp(a.as_bytes(), b.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Ordering::*;

    #[test]
    fn dpkg_examples() {
        for (a, b, o) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.0-0", Equal),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("1.0-1", "1.0-1~bpo1", Greater),
            ("2.30-1", "2.3-1", Greater),
            ("1.0a", "1.0", Greater),
            ("1.0~~", "1.0~", Less),
            ("1.001", "1.1", Equal),
            ("0:1.0", "1.0", Equal),
            ("7.88.1-10+deb12u8", "7.88.1-10+deb12u12", Less),
        ] {
            assert_eq!(compare(a, b), Ok(o), "{a} vs {b}");
        }
        assert!(compare("a:1", "1").is_err());
        assert!(compare("", "1").is_err());
    }
}
