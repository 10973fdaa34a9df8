//! sudoers, read purely: [`parse`] turns one file's text into [`Entry`]s
//! (includes, aliases, user specifications), and [`grants_as_root`] resolves
//! the entries of every file, in the order sudo reads them, into the
//! principals that may run commands as root.
//!
//! Covered: line continuations, comments, `#include`/`@include` and
//! `#includedir`/`@includedir` (the agent follows them, see
//! `agent/src/collect/admin_access.rs`), `User_Alias`, `Runas_Alias`,
//! `Host_Alias` and `Cmnd_Alias` (several per line with `:`), negated list
//! items, `Defaults` (skipped), and user specifications with runas lists and
//! tags. A specification's runas list defaults to root; one whose runas list
//! names `ALL`, `root`, `#0` or an alias of them grants root. Host lists are
//! not judged: a grant on any host counts.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// One logical line of a sudoers file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// `#include` / `@include`: a file (relative paths are relative to the
    /// including file's directory).
    Include { path: String, line: u64 },
    /// `#includedir` / `@includedir`.
    IncludeDir { path: String, line: u64 },
    /// `User_Alias`, `Runas_Alias`, `Host_Alias`, `Cmnd_Alias`.
    Alias {
        kind: String,
        name: String,
        members: Vec<String>,
    },
    /// `users hosts = (runas) commands`.
    Spec {
        users: Vec<String>,
        runas_root: RunasRoot,
        commands: String,
        line: u64,
    },
}

/// Whether a specification's runas lists grant root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunasRoot {
    Yes,
    No,
    /// Depends on these `Runas_Alias` names.
    Aliases(Vec<String>),
}

/// A principal granted commands as root, where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RootGrant {
    /// `alice`, `%admins`, `#1001`, `ALL`, `+netgroup`, `%:group`.
    pub principal: String,
    pub file: String,
    pub line: u64,
    /// The command list as written (shortened).
    pub commands: String,
}

/// Joins continued lines (`\` at the end) and drops comments; returns
/// `(first line number, text)`.
fn logical_lines(text: &str) -> Vec<(u64, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0u64;
    for (i, raw) in text.lines().enumerate() {
        let n = i as u64 + 1;
        if cur.is_empty() {
            start = n;
        }
        let line = raw.trim_end();
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        let l = std::mem::take(&mut cur);
        let trimmed = l.trim();
        if !trimmed.is_empty() {
            out.push((start, trimmed.to_owned()));
        }
    }
    if !cur.trim().is_empty() {
        out.push((start, cur.trim().to_owned()));
    }
    out
}

/// Drops a `#` comment, keeping `#include`-style directives and `#123` uids
/// (a `#` followed by a digit inside a list).
fn strip_comment(line: &str) -> &str {
    let bytes = line.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' {
            let next = bytes.get(i + 1).copied();
            if next.is_some_and(|c| c.is_ascii_digit()) {
                continue;
            }
            return line.get(..i).unwrap_or_default().trim_end();
        }
    }
    line
}

fn split_list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

/// Parses one file's text.
pub fn parse(text: &str) -> Vec<Entry> {
    let mut out = Vec::new();
    for (line, l) in logical_lines(text) {
        for (prefix, dir) in [
            ("#includedir", true),
            ("@includedir", true),
            ("#include", false),
            ("@include", false),
        ] {
            if let Some(rest) = l.strip_prefix(prefix) {
                if rest.starts_with(char::is_whitespace) {
                    let path = rest.trim().trim_matches('"').to_owned();
                    out.push(if dir {
                        Entry::IncludeDir { path, line }
                    } else {
                        Entry::Include { path, line }
                    });
                }
                break;
            }
        }
        if l.starts_with("#include") || l.starts_with("@include") {
            continue;
        }
        let l = strip_comment(&l);
        if l.is_empty() {
            continue;
        }
        let first = l.split_whitespace().next().unwrap_or_default();
        if first.starts_with("Defaults") {
            continue;
        }
        let kind = match first {
            "User_Alias" | "Runas_Alias" | "Host_Alias" | "Cmnd_Alias" | "Cmd_Alias" => {
                Some(first.replace("Cmd_", "Cmnd_"))
            }
            _ => None,
        };
        if let Some(kind) = kind {
            let rest = l.get(first.len()..).unwrap_or_default();
            for def in rest.split(':') {
                if let Some((name, members)) = def.split_once('=') {
                    out.push(Entry::Alias {
                        kind: kind.clone(),
                        name: name.trim().to_owned(),
                        members: split_list(members),
                    });
                }
            }
            continue;
        }
        if let Some(spec) = parse_spec(l, line) {
            out.push(spec);
        }
    }
    out
}

fn parse_spec(l: &str, line: u64) -> Option<Entry> {
    let (lhs, rhs) = l.split_once('=')?;
    // `alice, bob  host1, host2`: commas glue list items together.
    let mut glued = String::new();
    let mut prev_comma = false;
    for tok in lhs.split_whitespace() {
        if !glued.is_empty() && !prev_comma && !tok.starts_with(',') {
            glued.push(' ');
        }
        glued.push_str(tok);
        prev_comma = tok.ends_with(',');
    }
    let users = split_list(glued.split(' ').next()?);
    if users.is_empty() {
        return None;
    }
    let rhs = rhs.trim();
    // Runas lists: `(users)`, `(users:groups)` or `(:groups)`.
    let mut runas_root = RunasRoot::No;
    let mut aliases = Vec::new();
    let mut saw_runas = false;
    let mut rest = rhs;
    while let Some(open) = rest.find('(') {
        let Some(close) = rest.get(open..).and_then(|r| r.find(')')) else {
            break;
        };
        let inside = rest.get(open + 1..open + close).unwrap_or_default();
        saw_runas = true;
        let users_part = inside.split(':').next().unwrap_or_default();
        for u in split_list(users_part) {
            if u.starts_with('!') {
                continue;
            }
            match u.as_str() {
                "ALL" | "root" | "#0" => runas_root = RunasRoot::Yes,
                a if a
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') =>
                {
                    aliases.push(a.to_owned())
                }
                _ => {}
            }
        }
        rest = rest.get(open + close + 1..).unwrap_or_default();
    }
    // No runas list before the first command: root by default.
    let after_tags = rhs
        .trim_start_matches(|c: char| c.is_ascii_uppercase() || c == '_' || c == ':' || c == ' ');
    if !saw_runas || !rhs.starts_with('(') && !after_tags.starts_with('(') {
        runas_root = RunasRoot::Yes;
    }
    if runas_root == RunasRoot::No && !aliases.is_empty() {
        runas_root = RunasRoot::Aliases(aliases);
    }
    let mut commands: String = rhs.chars().take(120).collect();
    if rhs.chars().count() > 120 {
        commands.push('…');
    }
    Some(Entry::Spec {
        users,
        runas_root,
        commands,
        line,
    })
}

/// Every principal granted commands as root by `files` (each file's path and
/// entries, in the order sudo reads them), aliases expanded.
pub fn grants_as_root(files: &[(String, Vec<Entry>)]) -> Vec<RootGrant> {
    let mut aliases: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for (_, entries) in files {
        for e in entries {
            if let Entry::Alias {
                kind,
                name,
                members,
            } = e
            {
                aliases.insert((kind.clone(), name.clone()), members.clone());
            }
        }
    }
    let runas_is_root = |name: &str| {
        let mut seen = BTreeSet::new();
        let mut stack = vec![name.to_owned()];
        while let Some(n) = stack.pop() {
            if !seen.insert(n.clone()) {
                continue;
            }
            for m in aliases
                .get(&("Runas_Alias".to_owned(), n))
                .into_iter()
                .flatten()
            {
                match m.as_str() {
                    "ALL" | "root" | "#0" => return true,
                    m if m.starts_with('!') => {}
                    m => stack.push(m.to_owned()),
                }
            }
        }
        false
    };
    let expand_users = |users: &[String]| {
        let mut out = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = users.to_vec();
        while let Some(u) = stack.pop() {
            if u.starts_with('!') || !seen.insert(u.clone()) {
                continue;
            }
            match aliases.get(&("User_Alias".to_owned(), u.clone())) {
                Some(members) if u != "ALL" => stack.extend(members.iter().cloned()),
                _ => {
                    out.insert(u);
                }
            }
        }
        out
    };
    let mut out = Vec::new();
    for (file, entries) in files {
        for e in entries {
            let Entry::Spec {
                users,
                runas_root,
                commands,
                line,
            } = e
            else {
                continue;
            };
            let root = match runas_root {
                RunasRoot::Yes => true,
                RunasRoot::No => false,
                RunasRoot::Aliases(a) => a.iter().any(|n| runas_is_root(n)),
            };
            if !root {
                continue;
            }
            for principal in expand_users(users) {
                out.push(RootGrant {
                    principal: principal.trim_matches('"').to_owned(),
                    file: file.clone(),
                    line: *line,
                    commands: commands.clone(),
                });
            }
        }
    }
    out
}

/// The files of an `#includedir` sudo reads: names without a `.` and not
/// ending in `~`, in lexical order.
pub fn includedir_takes(name: &str) -> bool {
    !name.contains('.') && !name.ends_with('~') && !name.is_empty()
}

#[cfg(test)]
#[allow(clippy::indexing_slicing, reason = "tests fail by panicking")]
mod tests {
    use super::*;

    fn principals(text: &str) -> Vec<String> {
        let g = grants_as_root(&[("/etc/sudoers".to_owned(), parse(text))]);
        g.into_iter().map(|g| g.principal).collect()
    }

    #[test]
    fn debian_default_and_includes() {
        let text = "# comment\nDefaults\tenv_reset\nDefaults:alice !lecture\nroot\tALL=(ALL:ALL) ALL\n%sudo\tALL=(ALL:ALL) ALL\n@includedir /etc/sudoers.d\n#includedir /etc/sudoers.old\n#include extra\n";
        let e = parse(text);
        assert!(e.contains(&Entry::IncludeDir {
            path: "/etc/sudoers.d".into(),
            line: 6
        }));
        assert!(e.contains(&Entry::IncludeDir {
            path: "/etc/sudoers.old".into(),
            line: 7
        }));
        assert!(e.contains(&Entry::Include {
            path: "extra".into(),
            line: 8
        }));
        assert_eq!(principals(text), ["root", "%sudo"]);
    }

    #[test]
    fn runas_and_aliases() {
        let text = r"User_Alias ADMINS = alice, bob : OPS = %ops, ADMINS
Runas_Alias ROOTISH = root, operator
Runas_Alias APP = papyrs
Cmnd_Alias RESTART = /bin/systemctl restart papyrs
ADMINS ALL = (ALL) NOPASSWD: ALL
carol ALL = (papyrs) ALL
dave ALL = (APP) ALL
erin ALL = (ROOTISH) RESTART
frank, grace  web1, web2 = /usr/bin/apt-get update
heidi ALL = NOPASSWD: (root) /bin/ls
ivan ALL = (:adm) /bin/journalctl
#1001 ALL = ALL
judy ALL = (ALL:ALL) ALL # trailing comment
kim ALL = (bob) /bin/ls, \
   (root) /bin/cat
";
        let mut got = principals(text);
        got.sort();
        assert_eq!(
            got,
            ["#1001", "alice", "bob", "erin", "frank", "grace", "heidi", "judy", "kim"]
        );
        // An alias of aliases expands too.
        let mut got = principals("User_Alias A = alice\nUser_Alias B = A, %wheel\nB ALL=ALL\n");
        got.sort();
        assert_eq!(got, ["%wheel", "alice"]);
        // Negations are not grants; an alias loop ends.
        assert_eq!(
            principals("User_Alias A = B\nUser_Alias B = A, !mallory\nA ALL=ALL\n"),
            Vec::<String>::new()
        );
    }

    #[test]
    fn includedir_names() {
        assert!(includedir_takes("90-cloud-init-users"));
        assert!(!includedir_takes("old~"));
        assert!(!includedir_takes("x.dpkg-old"));
    }
}
