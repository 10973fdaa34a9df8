//! Recognizing a stored password field (shadow(5), crypt(3) and the common
//! application formats): pure, so unit tests and fuzzing call it.

use super::facts::Stored;

/// The crypt alphabet `./0-9A-Za-z`: a digit's value.
fn itoa64(c: char) -> Option<u64> {
    const A: &str = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    A.find(c).map(|i| i as u64)
}

fn b64_crypt(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '.' || c == '/'
}

/// Recognizes a stored password value. The value is not kept.
pub fn classify(field: &str) -> Stored {
    let f = field.trim();
    if f.is_empty() {
        return Stored::Empty;
    }
    if f.starts_with('!') || f.starts_with('*') {
        return Stored::Locked;
    }
    let hash = |scheme: &str, params: Vec<(&str, u64)>, salted: bool| Stored::Hash {
        scheme: scheme.to_owned(),
        params: params.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
        salted,
    };
    let parts: Vec<&str> = f.split('$').collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or("");
    if f.starts_with('$') {
        match part(1) {
            "y" => return hash("yescrypt", vec![], !part(3).is_empty()),
            "gy" => return hash("gost_yescrypt", vec![], !part(3).is_empty()),
            "7" => {
                // `$7$` + N as one itoa64 digit (log2 N) + r and p (5 each) + salt.
                let setting = part(2);
                let ln = setting.chars().next().and_then(itoa64);
                let salted = setting.len() > 11 && parts.len() >= 4;
                let params = ln.map(|ln| vec![("ln", ln)]).unwrap_or_default();
                return hash("scrypt", params, salted);
            }
            id @ ("6" | "5") => {
                let scheme = if id == "6" {
                    "sha512_crypt"
                } else {
                    "sha256_crypt"
                };
                let (rounds, salt) = match part(2).strip_prefix("rounds=") {
                    Some(r) => (r.parse().unwrap_or(0), part(3)),
                    None => (5000, part(2)),
                };
                return hash(
                    scheme,
                    vec![("rounds", rounds)],
                    !salt.is_empty() && parts.len() >= 4,
                );
            }
            "1" | "apr1" => return hash("md5_crypt", vec![], !part(2).is_empty()),
            "2a" | "2b" | "2y" | "2x" => {
                let cost = part(2).parse().unwrap_or(0);
                return hash("bcrypt", vec![("cost", cost)], part(3).len() >= 22);
            }
            a @ ("argon2id" | "argon2i" | "argon2d") => {
                let mut params = Vec::new();
                for seg in parts.iter().skip(2) {
                    for kv in seg.split(',') {
                        if let Some((k, v)) = kv.split_once('=') {
                            if let (k @ ("m" | "t" | "p"), Ok(v)) = (k, v.parse::<u64>()) {
                                params.push((k, v));
                            }
                        }
                    }
                }
                let salted = parts.len() >= 5;
                return hash(a, params, salted);
            }
            "scrypt" => {
                let mut params = Vec::new();
                for kv in part(2).split(',') {
                    if let Some((k, v)) = kv.split_once('=') {
                        if let (k @ ("ln" | "r" | "p"), Ok(v)) = (k, v.parse::<u64>()) {
                            params.push((k, v));
                        }
                    }
                }
                return hash("scrypt", params, !part(3).is_empty());
            }
            p @ ("pbkdf2-sha256" | "pbkdf2-sha512" | "pbkdf2" | "pbkdf2-sha1") => {
                let scheme = match p {
                    "pbkdf2-sha256" => "pbkdf2_sha256",
                    "pbkdf2-sha512" => "pbkdf2_sha512",
                    _ => "pbkdf2_sha1",
                };
                let raw = part(2);
                let iters = raw.strip_prefix("i=").unwrap_or(raw);
                let iters = iters.split(',').next().unwrap_or("").parse().unwrap_or(0);
                return hash(scheme, vec![("i", iters)], !part(3).is_empty());
            }
            _ => return Stored::Unrecognized { length: f.len() },
        }
    }
    // Django's `algorithm$iterations$salt$hash` and friends.
    match part(0) {
        "pbkdf2_sha256" | "pbkdf2_sha1" | "pbkdf2_sha512" if parts.len() == 4 => {
            let scheme = part(0);
            return hash(
                scheme,
                vec![("i", part(1).parse().unwrap_or(0))],
                !part(2).is_empty(),
            );
        }
        "argon2" if parts.len() >= 2 => {
            let inner = format!(
                "${}",
                parts.get(1..).map(|p| p.join("$")).unwrap_or_default()
            );
            return classify(&inner);
        }
        "bcrypt" | "bcrypt_sha256" => {
            let inner = format!(
                "${}",
                parts
                    .get(1..)
                    .map(|p| p.join("$"))
                    .unwrap_or_default()
                    .trim_start_matches('$')
            );
            return classify(&inner);
        }
        _ => {}
    }
    if f.len() == 13 && f.chars().all(b64_crypt) {
        return hash("des_crypt", vec![], true);
    }
    if f.len() == 20 && f.starts_with('_') && f.chars().skip(1).all(b64_crypt) {
        return hash("bsdi_crypt", vec![], true);
    }
    if f.chars().all(|c| c.is_ascii_hexdigit()) {
        let scheme = match f.len() {
            32 => Some("unsalted_md5"),
            40 => Some("unsalted_sha1"),
            64 => Some("unsalted_sha256"),
            128 => Some("unsalted_sha512"),
            _ => None,
        };
        if let Some(s) = scheme {
            return hash(s, vec![], false);
        }
    }
    Stored::Unrecognized { length: f.len() }
}
