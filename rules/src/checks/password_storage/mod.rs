//! `password_storage`: stored passwords are salted slow hashes.
//!
//! The collector reads `/etc/shadow` and/or an application database and hands
//! each stored value to [`classify`] at once, so the facts carry the scheme and
//! its cost parameters, never the hash.
//!
//! The parts: [`params`], [`facts`], [`parse`] ([`classify`]), [`evidence`]
//! and the judge here.

mod evidence;
mod facts;
mod params;
mod parse;

use std::collections::BTreeMap;

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FindingCode, Verdict};

pub use evidence::{Evidence, SourceEvidence};
pub use facts::{Entry, Facts, Source, Stored};
pub use params::{Params, SqlSource, SCHEMES};
pub use parse::classify;

pub struct PasswordStorage;

finding_codes! {
    pub enum Code {
        EmptyPassword = ("empty_password", Critical, "an account can log in with an empty password"),
        Unrecognized = ("unrecognized_or_plaintext", Critical, "a stored password is in no known hash format: possibly plain text"),
        Unsalted = ("unsalted_hash", Critical, "a password hash without a salt"),
        WeakScheme = ("weak_scheme", High, "a fast or broken scheme (DES, MD5, unsalted digests)"),
        NotAllowed = ("scheme_not_allowed", High, "a hash scheme outside the policy's `allowed` list"),
        LowCost = ("low_cost", Medium, "a slow hash with fewer rounds or less memory than the policy asks"),
        WeakestAcceptable = ("weakest_acceptable_scheme", Info, "sha512-crypt (or sha256-crypt) at the policy's rounds: accepted, but the weakest scheme allowed (no memory cost, fast on GPUs)"),
        Malformed = ("malformed_line", Medium, "a line of the password file could not be parsed"),
    }
}

const WEAK: &[&str] = &[
    "des_crypt",
    "bsdi_crypt",
    "md5_crypt",
    "unsalted_md5",
    "unsalted_sha1",
    "unsalted_sha256",
    "unsalted_sha512",
    "pbkdf2_sha1",
];

/// The SHA-crypt family: accepted at its rounds, but the weakest scheme a
/// policy may allow (only iterations, no memory cost).
const WEAKEST_ACCEPTABLE: &[&str] = &["sha512_crypt", "sha256_crypt"];

impl CheckKind for PasswordStorage {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str =
        "stored passwords (shadow, application databases) are salted slow hashes";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        if p.shadow.is_none() && p.sql.is_none() {
            out.push((None, "give `shadow`, `sql` or both".to_owned()));
        }
        for s in &p.allowed {
            if !SCHEMES.contains(&s.as_str()) {
                out.push((
                    Some("allowed"),
                    format!("unknown scheme `{s}` (known: {})", SCHEMES.join(", ")),
                ));
            }
        }
        if let Some(sql) = &p.sql {
            if !super::one_dsn_source(&sql.dsn, &sql.dsn_file, &sql.dsn_env) {
                out.push((
                    Some("sql"),
                    "`sql` takes exactly one of `dsn`, `dsn_file`, `dsn_env`".to_owned(),
                ));
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut tally: BTreeMap<String, u32> = BTreeMap::new();
        for src in &facts.sources {
            if let Some(e) = &src.error {
                errors.push(format!("{}: {e}", src.name));
                continue;
            }
            for (line, why) in &src.malformed {
                let mut f = Code::Malformed.finding(&src.name, format!("line {line}: {why}"));
                f.location = Some(crate::verdict::FileLocation {
                    file: src.name.clone(),
                    line: Some(*line),
                });
                findings.push(f);
            }
            for e in &src.entries {
                let mut push = |code: Code, msg: String| {
                    let mut f = code.finding(&e.subject, format!("{}: {msg}", e.place));
                    if let Some(file) = &e.file {
                        f.location = Some(crate::verdict::FileLocation {
                            file: file.clone(),
                            line: e.line,
                        });
                    }
                    findings.push(f);
                };
                let key = match &e.stored {
                    Stored::Locked => "locked".to_owned(),
                    Stored::Empty => {
                        push(
                            Code::EmptyPassword,
                            format!("`{}` has an empty password field", e.subject),
                        );
                        "empty".to_owned()
                    }
                    Stored::Unrecognized { length } => {
                        push(
                            Code::Unrecognized,
                            format!("`{}` has a stored value of {length} characters in no known hash format", e.subject),
                        );
                        "unrecognized".to_owned()
                    }
                    Stored::Hash {
                        scheme,
                        params,
                        salted,
                    } => {
                        if !salted {
                            push(
                                Code::Unsalted,
                                format!("`{}` uses {scheme} without a salt", e.subject),
                            );
                        }
                        if WEAK.contains(&scheme.as_str()) {
                            push(
                                Code::WeakScheme,
                                format!("`{}` uses the weak scheme {scheme}", e.subject),
                            );
                        } else if !p.allowed.iter().any(|a| a == scheme) {
                            push(
                                Code::NotAllowed,
                                format!("`{}` uses {scheme}, not in the allowed list", e.subject),
                            );
                        }
                        let low = |k: &str, min: u64| {
                            params
                                .get(k)
                                .is_some_and(|v| *v < min)
                                .then(|| (k.to_owned(), params.get(k).copied().unwrap_or(0), min))
                        };
                        let weak_cost = match scheme.as_str() {
                            "sha512_crypt" | "sha256_crypt" => {
                                low("rounds", p.min_sha_crypt_rounds)
                            }
                            "bcrypt" => low("cost", p.min_bcrypt_cost),
                            s if s.starts_with("pbkdf2") => low("i", p.min_pbkdf2_iterations),
                            s if s.starts_with("argon2") => low("m", p.min_argon2_memory_kib),
                            "scrypt" => low("ln", p.min_scrypt_log_n),
                            _ => None,
                        };
                        let accepted = !WEAK.contains(&scheme.as_str())
                            && p.allowed.iter().any(|a| a == scheme);
                        if let Some((k, v, min)) = weak_cost {
                            push(
                                Code::LowCost,
                                format!(
                                    "`{}` uses {scheme} with {k}={v}, below the policy's {min}",
                                    e.subject
                                ),
                            );
                        } else if accepted
                            && *salted
                            && WEAKEST_ACCEPTABLE.contains(&scheme.as_str())
                        {
                            let rounds = params.get("rounds").copied().unwrap_or(0);
                            push(
                                Code::WeakestAcceptable,
                                format!(
                                    "`{}` uses {scheme} with rounds={rounds}: accepted, but the weakest allowed scheme; rehash with yescrypt, argon2id or bcrypt at the next login",
                                    e.subject
                                ),
                            );
                        }
                        scheme.clone()
                    }
                };
                *tally.entry(key).or_default() += 1;
            }
        }
        let total: u32 = tally.values().sum();
        let breakdown = tally
            .iter()
            .map(|(k, v)| format!("{v} {k}"))
            .collect::<Vec<_>>()
            .join(", ");
        let evidence = Evidence {
            sources: facts
                .sources
                .iter()
                .map(|s| SourceEvidence {
                    name: s.name.clone(),
                    entries: s.entries.len(),
                    error: s.error.clone(),
                })
                .collect(),
            schemes: tally,
        };
        if !errors.is_empty() {
            let mut v = Verdict::error(errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }
        if facts.sources.is_empty() {
            return Verdict::error("no password source was read");
        }
        Verdict::from_findings(
            findings,
            format!("{total} stored passwords checked: {breakdown}"),
            evidence,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;

    fn scheme(s: &str) -> (String, BTreeMap<String, u64>, bool) {
        match classify(s) {
            Stored::Hash {
                scheme,
                params,
                salted,
            } => (scheme, params, salted),
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn recognizes_the_common_schemes() {
        assert_eq!(classify(""), Stored::Empty);
        assert_eq!(classify("!"), Stored::Locked);
        assert_eq!(classify("*"), Stored::Locked);
        assert_eq!(classify("!$6$abc$def"), Stored::Locked);
        assert_eq!(
            scheme("$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7").0,
            "yescrypt"
        );
        let (s, p, salted) = scheme("$6$rounds=1000$saltsalt$hash");
        assert_eq!(
            (s.as_str(), p["rounds"], salted),
            ("sha512_crypt", 1000, true)
        );
        let (_, p, _) = scheme("$6$saltsalt$hash");
        assert_eq!(p["rounds"], 5000);
        assert_eq!(scheme("$1$salt$hash").0, "md5_crypt");
        let (s, p, _) = scheme("$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW");
        assert_eq!((s.as_str(), p["cost"]), ("bcrypt", 12));
        let (s, p, salted) = scheme("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g");
        assert_eq!(
            (s.as_str(), p["m"], p["t"], salted),
            ("argon2id", 65536, 3, true)
        );
        let (s, p, _) = scheme("pbkdf2_sha256$600000$salt$hash=");
        assert_eq!((s.as_str(), p["i"]), ("pbkdf2_sha256", 600000));
        assert_eq!(scheme("$scrypt$ln=16,r=8,p=1$c2FsdA$aGFzaA").1["ln"], 16);
        assert_eq!(scheme("abJnggxhB/yWI").0, "des_crypt");
        let (s, _, salted) = scheme("5f4dcc3b5aa765d61d8327deb882cf99");
        assert_eq!((s.as_str(), salted), ("unsalted_md5", false));
        assert_eq!(classify("hunter2"), Stored::Unrecognized { length: 7 });
    }

    fn judge_fields(fields: &[&str]) -> Verdict {
        let p: Params =
            crate::yaml::from_node(&crate::yaml::parse("shadow: /etc/shadow").unwrap()).unwrap();
        judge_with(&p, fields)
    }

    fn judge_with(p: &Params, fields: &[&str]) -> Verdict {
        let entries = fields
            .iter()
            .enumerate()
            .map(|(i, f)| Entry {
                subject: format!("u{i}"),
                place: format!("shadow:{i}"),
                file: None,
                line: None,
                stored: classify(f),
            })
            .collect();
        let facts = Facts {
            sources: vec![Source {
                name: "/etc/shadow".into(),
                entries,
                error: None,
                malformed: vec![],
            }],
        };
        crate::checks::judged::<PasswordStorage>(
            p,
            &facts,
            &JudgeCtx {
                now: chrono::Utc::now(),
                host: "h".into(),
            },
        )
    }

    #[test]
    fn slow_salted_hashes_pass() {
        let v = judge_fields(&["$y$j9T$salt$hash", "*", "!", "$6$salt$hash"]);
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert_eq!(
            v.summary,
            "4 stored passwords checked: 2 locked, 1 sha512_crypt, 1 yescrypt"
        );
    }

    #[test]
    fn each_bad_kind_has_its_code() {
        let v = judge_fields(&[
            "",
            "$1$salt$hash",
            "secret",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "$6$rounds=1000$s$h",
            "$5$s$h",
        ]);
        assert_eq!(v.status, CheckStatus::Fail);
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "empty_password",
                "weak_scheme",
                "unrecognized_or_plaintext",
                "unsalted_hash",
                "weak_scheme",
                "low_cost",
                "scheme_not_allowed"
            ]
        );
        assert!(!v.findings.iter().any(|f| f.message.contains("secret")));
    }

    fn codes(v: &Verdict) -> Vec<&str> {
        v.findings.iter().map(|f| f.code.as_str()).collect()
    }

    /// Each cost threshold at its edge: one below fails with `low_cost`, the
    /// threshold itself passes (bcrypt 10, argon2id m = 19 MiB, scrypt
    /// N = 2^15 in PHC and `$7$` form, PBKDF2 600,000 in PHC and Django form).
    #[test]
    fn cost_thresholds_at_the_edge() {
        let salt53 = "R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW";
        for (below, at) in [
            (format!("$2b$09${salt53}"), format!("$2b$10${salt53}")),
            (
                "$argon2id$v=19$m=19455,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".to_owned(),
            ),
            (
                "$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA".to_owned(),
                "$scrypt$ln=15,r=8,p=1$c2FsdA$aGFzaA".to_owned(),
            ),
            (
                "$7$CU..../....saltsaltsalt$aGFzaGhhc2g".to_owned(),
                "$7$DU..../....saltsaltsalt$aGFzaGhhc2g".to_owned(),
            ),
            (
                "$pbkdf2-sha256$599999$c2FsdA$aGFzaA".to_owned(),
                "$pbkdf2-sha256$600000$c2FsdA$aGFzaA".to_owned(),
            ),
            (
                "pbkdf2_sha256$599999$salt$hash=".to_owned(),
                "pbkdf2_sha256$600000$salt$hash=".to_owned(),
            ),
        ] {
            let v = judge_fields(&[&below]);
            assert_eq!(v.status, CheckStatus::Fail, "{below}: {v:?}");
            assert_eq!(codes(&v), ["low_cost"], "{below}");
            assert_eq!(v.findings[0].severity, crate::verdict::Severity::Medium);
            let v = judge_fields(&[&at]);
            assert_eq!(v.status, CheckStatus::Pass, "{at}: {v:?}");
            assert!(v.findings.is_empty(), "{at}: {v:?}");
        }
        assert_eq!(scheme("$7$DU..../....saltsaltsalt$aGFzaGhhc2g").1["ln"], 15);
    }

    /// sha512-crypt at 5,000 rounds or more passes with an informational
    /// `weakest_acceptable_scheme`; below 5,000 it fails with `low_cost` only.
    #[test]
    fn sha512_crypt_is_the_weakest_acceptable() {
        for field in [
            "$6$saltsalt$hash",
            "$6$rounds=5000$saltsalt$hash",
            "$6$rounds=656000$saltsalt$hash",
        ] {
            let v = judge_fields(&[field]);
            assert_eq!(v.status, CheckStatus::Pass, "{field}: {v:?}");
            assert_eq!(codes(&v), ["weakest_acceptable_scheme"], "{field}");
            assert_eq!(v.findings[0].severity, crate::verdict::Severity::Info);
            assert!(
                v.findings[0].message.contains("rounds="),
                "{}",
                v.findings[0].message
            );
        }
        let v = judge_fields(&["$6$rounds=4999$saltsalt$hash"]);
        assert_eq!(v.status, CheckStatus::Fail);
        assert_eq!(codes(&v), ["low_cost"]);
        // Not allowed: the policy's word wins, no "acceptable" note.
        let p: Params = crate::yaml::from_node(
            &crate::yaml::parse("shadow: /etc/shadow\nallowed: [yescrypt]").unwrap(),
        )
        .unwrap();
        let v = judge_with(&p, &["$6$saltsalt$hash"]);
        assert_eq!(codes(&v), ["scheme_not_allowed"]);
        // The strong schemes carry no note.
        let v = judge_fields(&[
            "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7",
        ]);
        assert!(v.findings.is_empty(), "{v:?}");
    }

    /// A plain value and an unsalted digest are `critical`.
    #[test]
    fn plain_and_unsalted_are_critical() {
        use crate::verdict::Severity;
        for (field, code) in [
            ("correct horse battery staple", "unrecognized_or_plaintext"),
            ("hunter2", "unrecognized_or_plaintext"),
            ("5f4dcc3b5aa765d61d8327deb882cf99", "unsalted_hash"),
            ("5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8", "unsalted_hash"),
        ] {
            let v = judge_fields(&[field]);
            assert_eq!(v.status, CheckStatus::Fail, "{field}");
            let f = v.findings.iter().find(|f| f.code == code).unwrap();
            assert_eq!(f.severity, Severity::Critical, "{field}");
            assert!(
                !f.message.contains(field),
                "the value leaked: {}",
                f.message
            );
        }
    }

    #[test]
    fn unreadable_source_is_an_error_not_a_pass() {
        let p: Params =
            crate::yaml::from_node(&crate::yaml::parse("shadow: /etc/shadow").unwrap()).unwrap();
        let facts = Facts {
            sources: vec![Source {
                name: "/etc/shadow".into(),
                entries: vec![],
                error: Some("permission denied".into()),
                malformed: vec![],
            }],
        };
        let v = crate::checks::judged::<PasswordStorage>(
            &p,
            &facts,
            &JudgeCtx {
                now: chrono::Utc::now(),
                host: "h".into(),
            },
        );
        assert_eq!(v.status, CheckStatus::Error);
        assert!(v.summary.contains("permission denied"));
    }
}
