//! `admin_access`: administrative access is restricted to key personnel.
//!
//! Facts: the effective sshd settings (from `sshd -T` or the config files with
//! their `Include`s and `Match` blocks), the accounts with a login shell, the
//! members of the admin groups, and the fingerprints of every authorized key.
//! Judgement: root login and password logins are off, and every key and every
//! admin is on the policy's roster. Admins are the members of `admin_groups`
//! and every principal sudoers lets run commands as root ([`sudoers`]);
//! keys sshd takes from elsewhere (`AuthorizedKeysCommand`,
//! `TrustedUserCAKeys`) are reported, since no file shows them.

use std::collections::{BTreeMap, BTreeSet};

mod evidence;
mod facts;
mod params;
mod parse;
pub mod sudoers;

pub use evidence::{Evidence, KeySeen, SshdSeen};
pub use facts::{Account, AuthorizedKey, Facts, Group, MatchSetting, Sshd, SudoersFacts};
pub use params::{Params, Person};
pub use parse::{key_fingerprint, parse_roster_file, KeyError, RosterError};

use super::{CheckKind, JudgeCtx};
use crate::finding_codes;
use crate::verdict::{FileLocation, FindingCode, Verdict};

pub struct AdminAccess;

finding_codes! {
    pub enum Code {
        RootLoginPermitted = ("root_login_permitted", High, "sshd lets root log in in a way the policy does not allow"),
        PasswordAuthentication = ("password_authentication_enabled", High, "sshd accepts passwords"),
        KeyboardInteractive = ("keyboard_interactive_enabled", Medium, "sshd accepts keyboard-interactive (PAM password) logins"),
        EmptyPasswords = ("empty_passwords_permitted", Critical, "sshd accepts empty passwords"),
        UnknownKey = ("unknown_key", High, "an authorized key that belongs to nobody on the roster"),
        KeyOnWrongAccount = ("key_on_wrong_account", Medium, "a rostered key authorized for an account its owner does not use"),
        UnreadableKey = ("unparsable_key", Medium, "a line of an authorized_keys file that is not a public key"),
        UnrosteredAdmin = ("unrostered_admin", High, "a member of an admin group who is not on the roster"),
        ExtraRoot = ("extra_uid0_account", Critical, "an account other than root with uid 0"),
        SshdAbsent = ("sshd_absent", Info, "no sshd configuration: no remote shell access by ssh"),
        AuthorizedKeysCommand = ("authorized_keys_command", Info, "sshd takes keys from `AuthorizedKeysCommand`, which no file shows: those keys are not checked against the roster"),
        TrustedUserCaKeys = ("trusted_user_ca_keys", Info, "sshd accepts user certificates signed by `TrustedUserCAKeys`: any principal so signed logs in without an authorized_keys line"),
    }
}

impl CheckKind for AdminAccess {
    type Params = Params;
    type Facts = Facts;
    type Evidence = Evidence;
    type Code = Code;
    const SUMMARY: &'static str = "sshd allows no root or password logins, and only rostered people hold keys and admin groups";

    fn validate(p: &Params) -> Vec<(Option<&'static str>, String)> {
        let mut out = Vec::new();
        for v in &p.permit_root_login {
            if ![
                "no",
                "prohibit-password",
                "without-password",
                "forced-commands-only",
                "yes",
            ]
            .contains(&v.as_str())
            {
                out.push((
                    Some("permit_root_login"),
                    format!("`{v}` is not a PermitRootLogin value"),
                ));
            }
        }
        for person in &p.roster {
            for k in &person.keys {
                if !k.starts_with("SHA256:") {
                    out.push((
                        Some("roster"),
                        format!(
                            "key `{k}` of {}: write fingerprints as `SHA256:…` (ssh-keygen -lf)",
                            person.name
                        ),
                    ));
                }
            }
        }
        out
    }

    fn judge(p: &Params, facts: &Facts, _ctx: &JudgeCtx) -> Verdict {
        let mut findings = Vec::new();
        if let Some(sshd) = &facts.sshd {
            judge_sshd(p, sshd, &mut findings);
        } else {
            findings.push(Code::SshdAbsent.finding(
                &p.sshd_config,
                format!("`{}` does not exist", p.sshd_config),
            ));
        }

        // Keys.
        let mut owner_of: BTreeMap<&str, &Person> = BTreeMap::new();
        for person in p.roster.iter().chain(&facts.roster_from_file) {
            for k in &person.keys {
                owner_of.insert(k.as_str(), person);
            }
        }
        for k in &facts.keys {
            let loc = Some(FileLocation {
                file: k.file.clone(),
                line: Some(k.line),
            });
            match &k.fingerprint {
                Err(why) => {
                    let mut f = Code::UnreadableKey
                        .finding(&k.account, format!("{}:{}: {why}", k.file, k.line));
                    f.location = loc;
                    findings.push(f);
                }
                Ok(fp) => match owner_of.get(fp.as_str()) {
                    None => {
                        let mut f = Code::UnknownKey.finding(
                            &k.account,
                            format!(
                                "{} key {fp} authorized for `{}` is on no one's roster entry",
                                k.key_type, k.account
                            ),
                        );
                        f.location = loc;
                        findings.push(f);
                    }
                    Some(person)
                        if !person.account_names().contains(&k.account.as_str())
                            && k.account != "root" =>
                    {
                        let mut f = Code::KeyOnWrongAccount.finding(
                            &k.account,
                            format!("key {fp} of {} is authorized for `{}`, which is not one of their accounts", person.name, k.account),
                        );
                        f.location = loc;
                        findings.push(f);
                    }
                    Some(_) => {}
                },
            }
        }

        // Admin groups.
        let rostered: BTreeSet<&str> = p
            .roster
            .iter()
            .chain(&facts.roster_from_file)
            .flat_map(|r| r.account_names())
            .collect();
        let mut admins: BTreeSet<(&str, &str)> = BTreeSet::new();
        for g in facts
            .groups
            .iter()
            .filter(|g| p.admin_groups.contains(&g.name))
        {
            for m in &g.members {
                admins.insert((m.as_str(), g.name.as_str()));
            }
            for a in facts.accounts.iter().filter(|a| a.gid == g.gid) {
                admins.insert((a.name.as_str(), g.name.as_str()));
            }
        }
        for (member, group) in &admins {
            if !rostered.contains(member) && *member != "root" {
                findings.push(Code::UnrosteredAdmin.finding(
                    *member,
                    format!("`{member}` is in admin group `{group}` but on no roster entry"),
                ));
            }
        }
        // sudoers: each principal granted root, expanded to accounts; one
        // finding per account (those already found in an admin group are not
        // repeated).
        let mut sudo_admins: BTreeMap<String, String> = BTreeMap::new();
        for g in facts.sudoers.iter().flat_map(|s| &s.root_grants) {
            let at = format!("{}:{}", g.file, g.line);
            let loc = || {
                Some(FileLocation {
                    file: g.file.clone(),
                    line: Some(g.line),
                })
            };
            let p = g.principal.as_str();
            let accounts: Vec<String> = if let Some(group) = p.strip_prefix('%') {
                if group.starts_with(':') {
                    let mut f = Code::UnrosteredAdmin.finding(
                        p,
                        format!("{at}: non-Unix group `{group}` may run commands as root; its members cannot be checked against the roster"),
                    );
                    f.location = loc();
                    findings.push(f);
                    continue;
                }
                let (name, gid) = match group.strip_prefix('#') {
                    Some(n) => (None, n.parse::<u32>().ok()),
                    None => (
                        Some(group),
                        facts.groups.iter().find(|x| x.name == group).map(|x| x.gid),
                    ),
                };
                let mut members: BTreeSet<String> = BTreeSet::new();
                for x in facts
                    .groups
                    .iter()
                    .filter(|x| Some(x.name.as_str()) == name || Some(x.gid) == gid)
                {
                    members.extend(x.members.iter().cloned());
                }
                members.extend(
                    facts
                        .accounts
                        .iter()
                        .filter(|a| Some(a.gid) == gid)
                        .map(|a| a.name.clone()),
                );
                members.into_iter().collect()
            } else if p == "ALL" {
                let mut f = Code::UnrosteredAdmin.finding(
                    p,
                    format!("{at}: every user may run commands as root ({})", g.commands),
                );
                f.location = loc();
                findings.push(f);
                continue;
            } else if p.starts_with('+') {
                let mut f = Code::UnrosteredAdmin.finding(
                    p,
                    format!("{at}: netgroup `{p}` may run commands as root; its members cannot be checked against the roster"),
                );
                f.location = loc();
                findings.push(f);
                continue;
            } else if let Some(uid) = p.strip_prefix('#') {
                let uid = uid.parse::<u32>().ok();
                let names: Vec<String> = facts
                    .accounts
                    .iter()
                    .filter(|a| Some(a.uid) == uid)
                    .map(|a| a.name.clone())
                    .collect();
                if names.is_empty() {
                    vec![p.to_owned()]
                } else {
                    names
                }
            } else {
                vec![p.to_owned()]
            };
            for a in accounts {
                if a == "root"
                    || rostered.contains(a.as_str())
                    || admins.iter().any(|(m, _)| *m == a)
                    || sudo_admins.contains_key(&a)
                {
                    continue;
                }
                let via = if p == a {
                    String::new()
                } else {
                    format!(" (through `{p}`)")
                };
                let mut f = Code::UnrosteredAdmin.finding(
                    a.as_str(),
                    format!("{at}: `{a}` may run commands as root{via} but is on no roster entry"),
                );
                f.location = loc();
                findings.push(f);
                sudo_admins.insert(a, at.clone());
            }
        }
        if let Some(sshd) = &facts.sshd {
            let set = |k: &str| {
                sshd.settings
                    .get(k)
                    .filter(|v| !v.eq_ignore_ascii_case("none") && !v.is_empty())
            };
            if let Some(cmd) = set("authorizedkeyscommand") {
                findings.push(Code::AuthorizedKeysCommand.finding(
                    &sshd.source,
                    format!("AuthorizedKeysCommand `{cmd}`: keys it returns are not checked against the roster"),
                ));
            }
            if let Some(ca) = set("trustedusercakeys") {
                findings.push(Code::TrustedUserCaKeys.finding(
                    &sshd.source,
                    format!("TrustedUserCAKeys `{ca}`: certificates it signed log in without an authorized key"),
                ));
            }
        }
        for a in facts
            .accounts
            .iter()
            .filter(|a| a.uid == 0 && a.name != "root")
        {
            findings.push(Code::ExtraRoot.finding(&a.name, format!("`{}` has uid 0", a.name)));
        }

        let evidence = Evidence {
            sshd: facts.sshd.as_ref().map(|s| SshdSeen {
                source: s.source.clone(),
                permitrootlogin: s.settings.get("permitrootlogin").cloned(),
                passwordauthentication: s.settings.get("passwordauthentication").cloned(),
                kbdinteractiveauthentication: s
                    .settings
                    .get("kbdinteractiveauthentication")
                    .cloned(),
                match_blocks: s.matches.len(),
            }),
            login_accounts: facts
                .accounts
                .iter()
                .filter(|a| a.login)
                .map(|a| a.name.clone())
                .collect(),
            keys: facts
                .keys
                .iter()
                .map(|k| KeySeen {
                    account: k.account.clone(),
                    fingerprint: k.fingerprint.as_ref().ok().cloned(),
                })
                .collect(),
            admins: admins.iter().map(|(m, g)| format!("{m} ({g})")).collect(),
            sudoers: facts.sudoers.clone(),
        };
        if !facts.errors.is_empty() {
            let mut v = Verdict::error(facts.errors.join("; "));
            v.findings = findings;
            v.evidence = crate::verdict::to_json(&evidence);
            return v;
        }
        let ok = format!(
            "{} keys and {} admins, all rostered; {}",
            facts.keys.len(),
            admins.len(),
            match &facts.sshd {
                Some(s) => format!(
                    "root login {}, passwords {}",
                    s.settings
                        .get("permitrootlogin")
                        .map_or("prohibit-password", String::as_str),
                    s.settings
                        .get("passwordauthentication")
                        .map_or("yes", String::as_str)
                ),
                None => "no sshd".into(),
            }
        );
        Verdict::from_findings(findings, ok, evidence)
    }
}

fn judge_sshd(p: &Params, sshd: &Sshd, findings: &mut Vec<crate::verdict::Finding>) {
    let get = |k: &str, default: &'static str| {
        sshd.settings
            .get(k)
            .map_or(default, String::as_str)
            .to_ascii_lowercase()
    };
    let mut check = |scope: &str, keyword: &str, value: &str, loc: Option<FileLocation>| {
        let v = value.to_ascii_lowercase();
        let finding = match keyword {
            "permitrootlogin"
                if !p
                    .permit_root_login
                    .iter()
                    .any(|a| a == &v || (a == "prohibit-password" && v == "without-password")) =>
            {
                Some((
                    Code::RootLoginPermitted,
                    format!(
                        "{scope}PermitRootLogin is `{v}` (allowed: {})",
                        p.permit_root_login.join(", ")
                    ),
                ))
            }
            "passwordauthentication" if v == "yes" && !p.allow_password_authentication => Some((
                Code::PasswordAuthentication,
                format!("{scope}PasswordAuthentication is `yes`"),
            )),
            "kbdinteractiveauthentication" | "challengeresponseauthentication"
                if v == "yes" && !p.allow_password_authentication =>
            {
                Some((
                    Code::KeyboardInteractive,
                    format!("{scope}KbdInteractiveAuthentication is `yes`"),
                ))
            }
            "permitemptypasswords" if v == "yes" => Some((
                Code::EmptyPasswords,
                format!("{scope}PermitEmptyPasswords is `yes`"),
            )),
            _ => None,
        };
        if let Some((code, msg)) = finding {
            let mut f = code.finding(&sshd.source, msg);
            f.location = loc;
            findings.push(f);
        }
    };
    check(
        "",
        "permitrootlogin",
        &get("permitrootlogin", "prohibit-password"),
        None,
    );
    check(
        "",
        "passwordauthentication",
        &get("passwordauthentication", "yes"),
        None,
    );
    // keyboard-interactive asks for passwords only through PAM on Linux.
    if get("usepam", "no") == "yes" {
        let kbd = sshd
            .settings
            .get("kbdinteractiveauthentication")
            .or_else(|| sshd.settings.get("challengeresponseauthentication"))
            .map_or("yes".to_owned(), |v| v.to_ascii_lowercase());
        check("", "kbdinteractiveauthentication", &kbd, None);
    }
    check(
        "",
        "permitemptypasswords",
        &get("permitemptypasswords", "no"),
        None,
    );
    for m in &sshd.matches {
        let loc = Some(FileLocation {
            file: m.file.clone(),
            line: Some(m.line),
        });
        check(
            &format!("in `Match {}`: ", m.criteria),
            &m.keyword.to_ascii_lowercase(),
            &m.value,
            loc,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::CheckStatus;

    // `ssh-keygen -lf` prints SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4 for this key.
    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICLrBKXFuYkX4Yhst05fyEuUMcSDGbG8pPbECemkWn9A alice@laptop";

    #[test]
    fn fingerprints_match_ssh_keygen() {
        let (t, fp) = key_fingerprint(KEY).unwrap();
        assert_eq!(t, "ssh-ed25519");
        assert_eq!(fp, "SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4");
        let with_opts = format!("command=\"echo a b\",no-pty {KEY}");
        assert_eq!(key_fingerprint(&with_opts).unwrap().1, fp);
        assert!(key_fingerprint("ssh-ed25519 AAAA!!").is_err());
        assert!(key_fingerprint(
            "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIBkoQH7aEWXQn6NsJNmVRa6xjV0fA5pbMSjnC0Ua93Lh"
        )
        .unwrap_err()
        .to_string()
        .contains("does not match"));
        assert!(key_fingerprint("hello world").is_err());
    }

    fn params(yaml: &str) -> Params {
        crate::yaml::from_node(&crate::yaml::parse(yaml).unwrap()).unwrap()
    }

    fn ctx() -> JudgeCtx {
        JudgeCtx {
            now: chrono::Utc::now(),
            host: "h".into(),
        }
    }

    #[test]
    fn roster_file_people_count_and_its_errors_are_located() {
        let people = parse_roster_file(
            "roster:\n  - name: alice\n    keys: ['SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4']\n",
            "/etc/vigil/roster.yaml",
        )
        .unwrap();
        assert_eq!(people[0].name, "alice");
        let p: Params = crate::yaml::from_node(
            &crate::yaml::parse("roster_file: /etc/vigil/roster.yaml\n").unwrap(),
        )
        .unwrap();
        let mut f = good_facts();
        let v = crate::checks::judged::<AdminAccess>(&p, &f, &ctx());
        assert_eq!(
            v.status,
            crate::verdict::CheckStatus::Fail,
            "nobody rostered: {v:?}"
        );
        f.roster_from_file = people;
        let v = crate::checks::judged::<AdminAccess>(&p, &f, &ctx());
        assert_eq!(v.status, crate::verdict::CheckStatus::Pass, "{v:?}");
        let e =
            parse_roster_file("roster:\n  - name: bob\n    colour: red\n", "r.yaml").unwrap_err();
        assert!(e.0.starts_with("r.yaml:3:5: unknown key `colour`"), "{e}");
    }

    fn good_facts() -> Facts {
        Facts {
            roster_from_file: vec![],
            sshd: Some(Sshd {
                source: "sshd -T".into(),
                settings: [
                    ("permitrootlogin", "no"),
                    ("passwordauthentication", "no"),
                    ("usepam", "yes"),
                    ("kbdinteractiveauthentication", "no"),
                ]
                .iter()
                .map(|(k, v)| ((*k).into(), (*v).into()))
                .collect(),
                matches: vec![],
            }),
            accounts: vec![Account {
                name: "alice".into(),
                uid: 1000,
                gid: 1000,
                home: "/home/alice".into(),
                shell: "/bin/bash".into(),
                login: true,
            }],
            groups: vec![Group {
                name: "sudo".into(),
                gid: 27,
                members: vec!["alice".into()],
            }],
            keys: vec![AuthorizedKey {
                account: "alice".into(),
                file: "/home/alice/.ssh/authorized_keys".into(),
                line: 1,
                fingerprint: Ok("SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4".into()),
                key_type: "ssh-ed25519".into(),
            }],
            sudoers: None,
            errors: vec![],
        }
    }

    const ROSTER: &str = "roster:\n  - name: alice\n    keys: ['SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4']\n";

    #[test]
    fn sudoers_grants_are_admins() {
        let text = "root ALL=(ALL:ALL) ALL\n%sudo ALL=(ALL:ALL) ALL\n%ops ALL=(ALL) NOPASSWD: /usr/bin/systemctl\ndeploy ALL=(papyrs) ALL\n#1001 ALL=ALL\n+admins ALL=ALL\n";
        let mut f = good_facts();
        f.groups.push(Group {
            name: "ops".into(),
            gid: 50,
            members: vec!["carol".into(), "alice".into()],
        });
        f.accounts.push(Account {
            name: "dave".into(),
            uid: 1001,
            gid: 50,
            home: "/home/dave".into(),
            shell: "/bin/bash".into(),
            login: true,
        });
        f.sudoers = Some(SudoersFacts {
            files: vec!["/etc/sudoers.d/ops".into()],
            root_grants: sudoers::grants_as_root(&[(
                "/etc/sudoers.d/ops".into(),
                sudoers::parse(text),
            )]),
        });
        let v = crate::checks::judged::<AdminAccess>(&params(ROSTER), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        let got: Vec<(&str, &str)> = v
            .findings
            .iter()
            .map(|f| (f.code.as_str(), f.subject.as_str()))
            .collect();
        // carol and dave through %ops (dave by primary group), dave again by
        // uid is not repeated; a netgroup cannot be checked; alice is
        // rostered, deploy runs as papyrs only.
        assert_eq!(
            got,
            [
                ("unrostered_admin", "carol"),
                ("unrostered_admin", "dave"),
                ("unrostered_admin", "+admins"),
            ],
            "{v:#?}"
        );
        let carol = &v.findings[0];
        assert_eq!(carol.location.as_ref().unwrap().line, Some(3));
        assert!(
            carol.message.contains("through `%ops`"),
            "{}",
            carol.message
        );
    }

    #[test]
    fn keys_from_elsewhere_are_reported() {
        let mut f = good_facts();
        let sshd = f.sshd.as_mut().unwrap();
        sshd.settings.insert(
            "authorizedkeyscommand".into(),
            "/usr/bin/sss_ssh_authorizedkeys".into(),
        );
        sshd.settings
            .insert("trustedusercakeys".into(), "/etc/ssh/user_ca.pub".into());
        let v = crate::checks::judged::<AdminAccess>(&params(ROSTER), &f, &ctx());
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(codes, ["authorized_keys_command", "trusted_user_ca_keys"]);
        let mut f = good_facts();
        let sshd = f.sshd.as_mut().unwrap();
        sshd.settings
            .insert("authorizedkeyscommand".into(), "none".into());
        assert!(
            crate::checks::judged::<AdminAccess>(&params(ROSTER), &f, &ctx())
                .findings
                .is_empty()
        );
    }

    #[test]
    fn rostered_host_passes() {
        let v = crate::checks::judged::<AdminAccess>(&params(ROSTER), &good_facts(), &ctx());
        assert_eq!(v.status, CheckStatus::Pass, "{v:?}");
        assert!(
            v.summary.starts_with("1 keys and 1 admins, all rostered"),
            "{}",
            v.summary
        );
    }

    #[test]
    fn each_weakness_has_its_code() {
        let mut f = good_facts();
        let sshd = f.sshd.as_mut().unwrap();
        sshd.settings.insert("permitrootlogin".into(), "yes".into());
        sshd.settings.remove("passwordauthentication");
        sshd.matches.push(MatchSetting {
            criteria: "Address 10.0.0.0/8".into(),
            keyword: "PermitEmptyPasswords".into(),
            value: "yes".into(),
            file: "/etc/ssh/sshd_config".into(),
            line: 40,
        });
        f.groups.push(Group {
            name: "wheel".into(),
            gid: 10,
            members: vec!["mallory".into()],
        });
        f.accounts.push(Account {
            name: "toor".into(),
            uid: 0,
            gid: 0,
            home: "/root".into(),
            shell: "/bin/sh".into(),
            login: true,
        });
        f.keys.push(AuthorizedKey {
            account: "deploy".into(),
            file: "/home/deploy/.ssh/authorized_keys".into(),
            line: 2,
            fingerprint: Ok("SHA256:other".into()),
            key_type: "ssh-rsa".into(),
        });
        f.keys.push(AuthorizedKey {
            account: "bob".into(),
            file: "/home/bob/.ssh/authorized_keys".into(),
            line: 1,
            fingerprint: Ok("SHA256:+xI1NSpVR9E68tjM9t6BG5IQPxTGoGDE+kObUlmRHT4".into()),
            key_type: "ssh-ed25519".into(),
        });
        let v = crate::checks::judged::<AdminAccess>(&params(ROSTER), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Fail);
        let codes: Vec<&str> = v.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(
            codes,
            [
                "root_login_permitted",
                "password_authentication_enabled",
                "empty_passwords_permitted",
                "unknown_key",
                "key_on_wrong_account",
                "unrostered_admin",
                "extra_uid0_account"
            ]
        );
        assert_eq!(v.findings[2].location.as_ref().unwrap().line, Some(40));
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let mut f = good_facts();
        f.errors
            .push("cannot read `/etc/group`: permission denied".into());
        let v = crate::checks::judged::<AdminAccess>(&params(ROSTER), &f, &ctx());
        assert_eq!(v.status, CheckStatus::Error);
    }
}
