use super::*;

fn ctx() -> JudgeCtx {
    JudgeCtx {
        now: chrono::Utc::now(),
        host: "t".into(),
    }
}

fn params() -> Params {
    Params {
        backend: Backend::Auto,
        allowed_tcp: vec![22, 80, 443],
        allowed_udp: vec![],
        require_default_deny: true,
        check_listening: true,
    }
}

fn nft_facts(json: &str) -> Facts {
    Facts {
        nft: Output::Text(json.into()),
        iptables_variant: Some("nf_tables".into()),
        iptables: Output::Text(String::new()),
        ip6tables: Output::Text(String::new()),
        ..Facts::default()
    }
}

fn codes(v: &Verdict) -> Vec<(String, String)> {
    v.findings
        .iter()
        .map(|f| (f.code.clone(), f.subject.clone()))
        .collect()
}

macro_rules! fixture {
    ($case:literal, $file:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/data/firewall/",
            $case,
            "/",
            $file
        ))
    };
}

#[test]
fn default_deny_passes() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("default_deny", "ruleset.json")),
        &ctx(),
    );
    assert_eq!(v.status, crate::verdict::CheckStatus::Pass, "{v:?}");
    assert_eq!(v.evidence["reachable"]["tcp/IPv4"], "22, 80, 443");
}

#[test]
fn open_policy_fails_everything() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("open_policy", "ruleset.json")),
        &ctx(),
    );
    let c = codes(&v);
    assert!(
        c.contains(&("no_default_deny".into(), "IPv4".into())),
        "{c:?}"
    );
    assert!(c.contains(&("no_default_deny".into(), "IPv6".into())));
    assert!(
        c.contains(&(
            "port_not_allowed".into(),
            "tcp/1-21, 23-79, 81-442, 444-65535".into()
        )),
        "{c:?}"
    );
    assert!(c.contains(&("port_not_allowed".into(), "udp/1-65535".into())));
}

#[test]
fn one_port_too_many() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("port_too_many", "ruleset.json")),
        &ctx(),
    );
    let c = codes(&v);
    assert_eq!(
        c,
        vec![
            ("port_not_allowed".into(), "tcp/8080".into()),
            ("port_not_allowed".into(), "udp/5353".into())
        ]
    );
    assert!(
        v.findings[1].message.contains("over IPv4 but"),
        "{}",
        v.findings[1].message
    );
}

#[test]
fn ipv6_left_open() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("ipv6_open", "ruleset.json")),
        &ctx(),
    );
    let c = codes(&v);
    assert_eq!(
        c.first(),
        Some(&("no_default_deny".into(), "IPv6".into())),
        "{c:?}"
    );
    assert!(!c.contains(&("no_default_deny".into(), "IPv4".into())));
    assert!(v
        .findings
        .iter()
        .skip(1)
        .all(|f| f.message.contains("over IPv6 but")));
}

#[test]
fn catch_all_reject_is_default_deny() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("catch_all_reject", "ruleset.json")),
        &ctx(),
    );
    assert_eq!(v.status, crate::verdict::CheckStatus::Pass, "{v:?}");
}

#[test]
fn named_set_and_jump() {
    let mut p = params();
    p.allowed_udp = vec![123];
    let v = crate::checks::judged::<Firewall>(
        &p,
        &nft_facts(fixture!("named_set", "ruleset.json")),
        &ctx(),
    );
    // 8000-8010 from the set; udp 53 returns to the input chain and is dropped.
    assert_eq!(
        codes(&v),
        vec![("port_not_allowed".into(), "tcp/8000-8010".into())]
    );
}

#[test]
fn unknown_expression_is_an_error_naming_it() {
    let v = crate::checks::judged::<Firewall>(
        &params(),
        &nft_facts(fixture!("unknown_expression", "ruleset.json")),
        &ctx(),
    );
    assert_eq!(v.status, crate::verdict::CheckStatus::Error);
    assert!(
        v.summary.contains("concat") && v.summary.contains("inet filter input rule 2"),
        "{}",
        v.summary
    );
}

#[test]
fn truncated_json_is_an_error() {
    let text = fixture!("default_deny", "ruleset.json");
    let v =
        crate::checks::judged::<Firewall>(&params(), &nft_facts(&text[..text.len() / 2]), &ctx());
    assert_eq!(v.status, crate::verdict::CheckStatus::Error);
    assert!(v.summary.contains("not valid at line"), "{}", v.summary);
}

#[test]
fn iptables_nft_tables_are_read_from_iptables_save() {
    let facts = Facts {
        nft: Output::Text(fixture!("iptables_backend", "ruleset.json").into()),
        iptables_variant: Some("nf_tables".into()),
        iptables: Output::Text(fixture!("iptables_backend", "iptables-save.txt").into()),
        ip6tables: Output::Text(fixture!("iptables_backend", "ip6tables-save.txt").into()),
        ..Facts::default()
    };
    let v = crate::checks::judged::<Firewall>(&params(), &facts, &ctx());
    assert_eq!(
        codes(&v),
        vec![("port_not_allowed".into(), "tcp/9000-9001".into())],
        "{v:?}"
    );
    // The nft view alone holds xt matches: an error that names them.
    let mut p = params();
    p.backend = Backend::Nftables;
    let v = crate::checks::judged::<Firewall>(&p, &facts, &ctx());
    assert_eq!(v.status, crate::verdict::CheckStatus::Error);
    assert!(v.summary.contains("xt"), "{}", v.summary);
}

#[test]
fn listening_socket_cross_check() {
    let mut facts = nft_facts(fixture!("port_too_many", "ruleset.json"));
    facts.sockets = Ok(vec![
        Socket {
            proto: "tcp".into(),
            v6: true,
            address: "::".into(),
            port: 8080,
            process: Some("python3".into()),
            pid: Some(42),
        },
        Socket {
            proto: "tcp".into(),
            v6: false,
            address: "127.0.0.1".into(),
            port: 5432,
            process: None,
            pid: None,
        },
        Socket {
            proto: "tcp".into(),
            v6: false,
            address: "0.0.0.0".into(),
            port: 9999,
            process: None,
            pid: None,
        },
    ]);
    let v = crate::checks::judged::<Firewall>(&params(), &facts, &ctx());
    let exposed: Vec<&Finding> = v
        .findings
        .iter()
        .filter(|f| f.code == "listening_port_exposed")
        .collect();
    assert_eq!(exposed.len(), 1);
    assert!(
        exposed[0].message.contains("`python3` (pid 42)"),
        "{}",
        exposed[0].message
    );
    assert!(exposed[0].message.contains("IPv4 and IPv6"));
}

#[test]
fn missing_tools_are_errors() {
    let facts = Facts {
        sockets: Ok(vec![]),
        ..Facts::default()
    };
    assert_eq!(
        crate::checks::judged::<Firewall>(&params(), &facts, &ctx()).status,
        crate::verdict::CheckStatus::Error
    );
}

#[test]
fn iptables_parser_locates_bad_lines() {
    let e = iptables::parse(
        "*filter\n:INPUT DROP [0:0]\n-A INPUT -m set --match-set x src -j ACCEPT\nCOMMIT\n",
        Family::V4,
    )
    .map(|t| t.map(|t| t.chains["INPUT"].rules[0].unsupported.clone()));
    assert_eq!(e, Ok(Some(Some("the match module `set`".into()))));
    assert!(iptables::parse("*filter\n-A INPUT -j ACCEPT\n", Family::V4)
        .unwrap_err()
        .to_string()
        .contains("line 2"));
}

#[test]
fn replies_dropped_when_established_is_not_accepted() {
    let json = r#"{"nftables":[{"table":{"family":"inet","name":"f"}},
      {"chain":{"family":"inet","table":"f","name":"in","type":"filter","hook":"input","prio":0,"policy":"drop"}},
      {"rule":{"family":"inet","table":"f","chain":"in","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"set":[22,80,443]}}},{"accept":null}]}}]}"#;
    let v = crate::checks::judged::<Firewall>(&params(), &nft_facts(json), &ctx());
    assert_eq!(
        codes(&v),
        vec![
            ("established_not_accepted".into(), "IPv4".into()),
            ("established_not_accepted".into(), "IPv6".into())
        ]
    );
}

#[test]
fn loopback_and_source_conditions() {
    // `iifname != "lo"` drop first: outside traffic is dropped before the accept.
    let json = r#"{"nftables":[{"table":{"family":"ip","name":"f"}},
      {"chain":{"family":"ip","table":"f","name":"in","type":"filter","hook":"input","prio":0,"policy":"accept"}},
      {"rule":{"family":"ip","table":"f","chain":"in","expr":[{"match":{"op":"in","left":{"ct":{"key":"state"}},"right":["established","related"]}},{"accept":null}]}},
      {"rule":{"family":"ip","table":"f","chain":"in","expr":[{"match":{"op":"==","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.0.0.0","len":8}}}},{"match":{"op":"==","left":{"payload":{"protocol":"tcp","field":"dport"}},"right":{"range":[6000,6001]}}},{"accept":null}]}},
      {"rule":{"family":"ip","table":"f","chain":"in","expr":[{"match":{"op":"!=","left":{"meta":{"key":"iifname"}},"right":"lo"}},{"drop":null}]}}]}"#;
    let mut p = params();
    p.require_default_deny = false;
    let v = crate::checks::judged::<Firewall>(&p, &nft_facts(json), &ctx());
    // The source-restricted accept may let 6000-6001 in; the rest is dropped
    // for IPv4. IPv6 has no table at all.
    let c = codes(&v);
    assert!(
        c.contains(&("port_not_allowed".into(), "tcp/6000-6001".into())),
        "{c:?}"
    );
    assert_eq!(v.evidence["reachable"]["tcp/IPv4"], "6000-6001");
    assert_eq!(v.evidence["reachable"]["tcp/IPv6"], "1-65535");
    // `iifname != "lo" drop` holds for every packet from outside: a catch-all.
    assert_eq!(
        v.evidence["default_deny_chains"]["IPv4"],
        serde_json::json!(["ip f in"])
    );
    assert_eq!(
        v.evidence["default_deny_chains"]["IPv6"],
        serde_json::json!([])
    );
}

/// Chains that each jump twice into the next: evaluated naively, 2^32 runs
/// of the last chain (a hang). Each chain is evaluated once per probe.
#[test]
fn fan_out_of_jumps_is_not_exponential() {
    let mut text = String::from("*filter\n:INPUT DROP [0:0]\n");
    for i in 0..30 {
        text.push_str(&format!(":C{i} - [0:0]\n"));
    }
    text.push_str("-A INPUT -j C0\n");
    for i in 0..29 {
        let next = i + 1;
        text.push_str(&format!("-A C{i} -j C{next}\n-A C{i} -j C{next}\n"));
    }
    text.push_str("-A C29 -p tcp --dport 22 -j ACCEPT\nCOMMIT\n");
    let facts = Facts {
        iptables: Output::Text(text),
        ip6tables: Output::Text(String::new()),
        ..Facts::default()
    };
    let mut p = params();
    p.backend = Backend::Iptables;
    let t = std::time::Instant::now();
    let v = crate::checks::judged::<Firewall>(&p, &facts, &ctx());
    assert!(
        t.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        t.elapsed()
    );
    assert_ne!(v.status, crate::verdict::CheckStatus::Error, "{v:?}");
}
