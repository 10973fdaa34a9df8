//! Facts for `admin_access`: sshd's effective settings, accounts, groups and
//! authorized keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use vigil_rules::checks::admin_access::sudoers::{
    grants_as_root, includedir_takes, parse as parse_sudoers, Entry,
};
use vigil_rules::checks::admin_access::{
    key_fingerprint, Account, AuthorizedKey, Facts, Group, MatchSetting, Params, Sshd, SudoersFacts,
};

use super::host::{io_reason, read_optional, HostCtx};
use crate::collect::CollectError;

pub fn collect(p: &Params, ctx: &HostCtx) -> Result<Facts, CollectError> {
    let mut facts = Facts::default();
    if let Some(file) = &p.roster_file {
        match read_optional(&ctx.path(file)) {
            Ok(Some(text)) => {
                match vigil_rules::checks::admin_access::parse_roster_file(&text, file) {
                    Ok(people) => facts.roster_from_file = people,
                    Err(e) => facts.errors.push(format!("roster file: {e}")),
                }
            }
            Ok(None) => facts.errors.push(format!(
                "roster file `{file}` does not exist: who may administer this host is unknown"
            )),
            Err(e) => facts.errors.push(e.to_string()),
        }
    }
    let passwd_path = ctx.path(&p.passwd);
    match read_optional(&passwd_path) {
        Ok(Some(text)) => facts.accounts = parse_passwd(&text),
        Ok(None) => facts.errors.push(format!("`{}` does not exist", p.passwd)),
        Err(e) => facts.errors.push(e.to_string()),
    }
    match read_optional(&ctx.path(&p.group)) {
        Ok(Some(text)) => facts.groups = parse_group(&text),
        Ok(None) => facts.errors.push(format!("`{}` does not exist", p.group)),
        Err(e) => facts.errors.push(e.to_string()),
    }

    facts.sudoers = collect_sudoers(&p.sudoers, ctx, &mut facts.errors);

    let config = ctx.path(&p.sshd_config);
    if config.exists() {
        let mut parsed = ConfigFiles::default();
        if let Err(e) = parsed.read(&config, ctx, None, 0) {
            facts.errors.push(e.to_string());
        }
        let mut sshd = Sshd {
            source: p.sshd_config.clone(),
            settings: parsed.global,
            matches: parsed.matches,
        };
        if p.use_sshd_t && ctx.is_live() {
            match sshd_t(&config) {
                Ok(settings) => {
                    sshd.settings = settings;
                    sshd.source = "sshd -T".into();
                }
                // Without sshd or its host keys, the files are the best account.
                Err(why) => sshd.source = format!("{} (sshd -T unavailable: {why})", p.sshd_config),
            }
        }
        let key_files = sshd
            .settings
            .get("authorizedkeysfile")
            .cloned()
            .unwrap_or_else(|| ".ssh/authorized_keys .ssh/authorized_keys2".into());
        collect_keys(&mut facts, ctx, &key_files);
        facts.sshd = Some(sshd);
    } else {
        collect_keys(
            &mut facts,
            ctx,
            ".ssh/authorized_keys .ssh/authorized_keys2",
        );
    }
    Ok(facts)
}

fn sshd_t(config: &Path) -> Result<BTreeMap<String, String>, String> {
    let sshd = ["/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .ok_or_else(|| "sshd is not installed".to_owned())?;
    let out = Command::new(sshd)
        .arg("-T")
        .arg("-f")
        .arg(config)
        .output()
        .map_err(|e| format!("cannot run {sshd}: {}", io_reason(&e)))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err
            .lines()
            .last()
            .unwrap_or("sshd -T failed")
            .trim()
            .to_owned());
    }
    let mut settings = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once(' ') {
            settings
                .entry(k.to_ascii_lowercase())
                .or_insert_with(|| v.trim().to_owned());
        }
    }
    Ok(settings)
}

/// sshd_config files with their `Include`s: global settings (first value
/// wins, as in sshd) and settings inside `Match` blocks.
#[derive(Default)]
struct ConfigFiles {
    global: BTreeMap<String, String>,
    matches: Vec<MatchSetting>,
}

impl ConfigFiles {
    fn read(
        &mut self,
        file: &Path,
        ctx: &HostCtx,
        mut current_match: Option<String>,
        depth: u32,
    ) -> Result<(), String> {
        if depth > 16 {
            return Err(format!(
                "`{}`: Include nested more than 16 deep",
                ctx.display(file)
            ));
        }
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read `{}`: {}", ctx.display(file), io_reason(&e)))?;
        let shown = ctx.display(file);
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let (keyword, value) = split_directive(line);
            let kw = keyword.to_ascii_lowercase();
            match kw.as_str() {
                "match" => {
                    current_match = if value.eq_ignore_ascii_case("all") {
                        None
                    } else {
                        Some(value.to_owned())
                    };
                }
                "include" => {
                    for pattern in value.split_whitespace() {
                        let host_pattern = if pattern.starts_with('/') {
                            pattern.to_owned()
                        } else {
                            format!("/etc/ssh/{pattern}")
                        };
                        let full = ctx.path(&host_pattern);
                        let mut paths: Vec<PathBuf> = glob::glob(&full.to_string_lossy())
                            .map_err(|e| {
                                format!("{shown}:{}: bad Include pattern `{pattern}`: {e}", i + 1)
                            })?
                            .filter_map(Result::ok)
                            .collect();
                        paths.sort();
                        for p in paths {
                            self.read(&p, ctx, current_match.clone(), depth + 1)?;
                        }
                    }
                }
                _ => match &current_match {
                    None => {
                        self.global.entry(kw).or_insert_with(|| value.to_owned());
                    }
                    Some(criteria) => self.matches.push(MatchSetting {
                        criteria: criteria.clone(),
                        keyword: keyword.to_owned(),
                        value: value.to_owned(),
                        file: shown.clone(),
                        line: (i + 1) as u64,
                    }),
                },
            }
        }
        Ok(())
    }
}

/// `Keyword value`, `Keyword=value` or `Keyword = value`.
fn split_directive(line: &str) -> (&str, &str) {
    let end = line
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(line.len());
    let (k, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let rest = rest.strip_prefix('=').unwrap_or(rest).trim();
    (k, rest.trim_matches('"'))
}

pub fn parse_passwd(text: &str) -> Vec<Account> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            let shell = f.get(6).copied().unwrap_or("").to_owned();
            let login = !(shell.is_empty()
                || shell.ends_with("/nologin")
                || shell.ends_with("/false")
                || shell.ends_with("/sync")
                || shell.ends_with("/shutdown")
                || shell.ends_with("/halt"));
            Some(Account {
                name: f.first()?.to_string(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                home: f.get(5).copied().unwrap_or("").to_owned(),
                shell,
                login,
            })
        })
        .collect()
}

pub fn parse_group(text: &str) -> Vec<Group> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(Group {
                name: f.first()?.to_string(),
                gid: f.get(2)?.parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// sudoers and every file it includes, in sudo's order, parsed by
/// `vigil_rules::checks::admin_access::sudoers`. `None` when `sudoers` does
/// not exist; an included file that cannot be read is an error (sudo itself
/// would refuse to run).
fn collect_sudoers(sudoers: &str, ctx: &HostCtx, errors: &mut Vec<String>) -> Option<SudoersFacts> {
    let top = ctx.path(sudoers);
    match read_optional(&top) {
        Ok(Some(_)) => {}
        Ok(None) => return None,
        Err(e) => {
            errors.push(e.to_string());
            return None;
        }
    }
    let mut files: Vec<(String, Vec<Entry>)> = Vec::new();
    read_sudoers_file(sudoers, ctx, 0, &mut files, errors);
    let root_grants = grants_as_root(&files);
    Some(SudoersFacts {
        files: files.into_iter().map(|(f, _)| f).collect(),
        root_grants,
    })
}

fn read_sudoers_file(
    host_path: &str,
    ctx: &HostCtx,
    depth: u32,
    files: &mut Vec<(String, Vec<Entry>)>,
    errors: &mut Vec<String>,
) {
    // sudo stops at 128 levels; a loop ends here much sooner.
    if depth > 16 {
        errors.push(format!(
            "`{host_path}`: sudoers includes nested more than 16 deep"
        ));
        return;
    }
    let text = match read_optional(&ctx.path(host_path)) {
        Ok(Some(t)) => t,
        Ok(None) => {
            errors.push(format!(
                "`{host_path}` is included by sudoers but does not exist"
            ));
            return;
        }
        Err(e) => {
            errors.push(e.to_string());
            return;
        }
    };
    let entries = parse_sudoers(&text);
    let dir = Path::new(host_path)
        .parent()
        .map_or_else(|| "/".to_owned(), |d| d.display().to_string());
    let absolute = |p: &str| {
        if p.starts_with('/') {
            p.to_owned()
        } else {
            format!("{}/{p}", dir.trim_end_matches('/'))
        }
    };
    let includes: Vec<(bool, String)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::Include { path, .. } => Some((false, absolute(path))),
            Entry::IncludeDir { path, .. } => Some((true, absolute(path))),
            _ => None,
        })
        .collect();
    files.push((host_path.to_owned(), entries));
    for (is_dir, inc) in includes {
        if !is_dir {
            read_sudoers_file(&inc, ctx, depth + 1, files, errors);
            continue;
        }
        let mut names: Vec<String> = match std::fs::read_dir(ctx.path(&inc)) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| includedir_takes(n))
                .collect(),
            // sudo skips a missing includedir.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                errors.push(format!("cannot read `{inc}`: {}", io_reason(&e)));
                continue;
            }
        };
        names.sort();
        for n in names {
            let f = format!("{}/{n}", inc.trim_end_matches('/'));
            if ctx.path(&f).is_file() {
                read_sudoers_file(&f, ctx, depth + 1, files, errors);
            }
        }
    }
}

fn collect_keys(facts: &mut Facts, ctx: &HostCtx, key_files: &str) {
    let accounts: Vec<Account> = facts
        .accounts
        .iter()
        .filter(|a| a.login || a.uid == 0)
        .cloned()
        .collect();
    for a in accounts {
        for pattern in key_files.split_whitespace() {
            if pattern.eq_ignore_ascii_case("none") {
                continue;
            }
            let expanded = pattern
                .replace("%h", &a.home)
                .replace("%u", &a.name)
                .replace("%%", "%");
            let host_path = if expanded.starts_with('/') {
                expanded
            } else {
                format!("{}/{expanded}", a.home.trim_end_matches('/'))
            };
            let path = ctx.path(&host_path);
            let text = match read_optional(&path) {
                Ok(Some(t)) => t,
                Ok(None) => continue,
                Err(e) => {
                    facts.errors.push(e.to_string());
                    continue;
                }
            };
            for (i, line) in text.lines().enumerate() {
                let l = line.trim();
                if l.is_empty() || l.starts_with('#') {
                    continue;
                }
                let (key_type, fingerprint) = match key_fingerprint(l) {
                    Ok((t, fp)) => (t, Ok(fp)),
                    Err(e) => (String::new(), Err(e.to_string())),
                };
                facts.keys.push(AuthorizedKey {
                    account: a.name.clone(),
                    file: host_path.clone(),
                    line: (i + 1) as u64,
                    fingerprint,
                    key_type,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_in_every_spelling() {
        assert_eq!(
            split_directive("PermitRootLogin no"),
            ("PermitRootLogin", "no")
        );
        assert_eq!(
            split_directive("PermitRootLogin=no"),
            ("PermitRootLogin", "no")
        );
        assert_eq!(
            split_directive("PermitRootLogin = no"),
            ("PermitRootLogin", "no")
        );
        assert_eq!(
            split_directive("AuthorizedKeysFile \"/etc/keys/%u\""),
            ("AuthorizedKeysFile", "/etc/keys/%u")
        );
    }

    #[test]
    fn includes_matches_and_first_value_wins() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("etc/ssh");
        std::fs::create_dir_all(ssh.join("sshd_config.d")).unwrap();
        std::fs::write(ssh.join("sshd_config"), "Include /etc/ssh/sshd_config.d/*.conf\nPermitRootLogin yes\nPasswordAuthentication no\nMatch User backup\n  PasswordAuthentication yes\nMatch all\nUsePAM yes\n").unwrap();
        std::fs::write(
            ssh.join("sshd_config.d/10-root.conf"),
            "PermitRootLogin no\n",
        )
        .unwrap();
        let ctx = HostCtx {
            root: dir.path().to_owned(),
            state_dir: dir.path().join("state"),
            pace: Default::default(),
        };
        let mut c = ConfigFiles::default();
        c.read(&ctx.path("/etc/ssh/sshd_config"), &ctx, None, 0)
            .unwrap();
        assert_eq!(c.global["permitrootlogin"], "no");
        assert_eq!(c.global["usepam"], "yes");
        assert_eq!(c.matches.len(), 1);
        assert_eq!(c.matches[0].criteria, "User backup");
        assert_eq!(c.matches[0].line, 5);
        assert_eq!(c.matches[0].file, "/etc/ssh/sshd_config");
    }

    #[test]
    fn include_loops_are_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join("etc/ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        std::fs::write(ssh.join("sshd_config"), "Include /etc/ssh/sshd_config\n").unwrap();
        let ctx = HostCtx {
            root: dir.path().to_owned(),
            state_dir: dir.path().join("state"),
            pace: Default::default(),
        };
        let err = ConfigFiles::default()
            .read(&ctx.path("/etc/ssh/sshd_config"), &ctx, None, 0)
            .unwrap_err();
        assert!(err.contains("nested more than 16 deep"), "{err}");
    }

    #[test]
    fn passwd_and_group() {
        let a = parse_passwd("root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nbroken\n");
        assert_eq!(a.len(), 2);
        assert!(a[0].login && !a[1].login);
        let g = parse_group("sudo:x:27:alice,bob\nadm:x:4:\n");
        assert_eq!(g[0].members, ["alice", "bob"]);
        assert!(g[1].members.is_empty());
    }
}
