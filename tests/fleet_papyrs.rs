//! A Papyrs fleet by role, end to end, on one machine (issue 20).
//!
//! Four hosts, each in its own network namespace with its own files, state
//! and agent config derived from examples/papyrs-fleet/agent-ROLE.yaml:
//!
//! | host | role | what is real |
//! |---|---|---|
//! | web-1 | `app` | an HTTPS server on 443 (OpenSSL through Python's `ssl`: TLS 1.2+, AEAD suites, HSTS) and the redirect on 80, a certificate made by `openssl` under a private "Gandi" CA, the site files, their logs and heartbeat mirror, the erasure hook and the export |
//! | db-1 | `db` | PostgreSQL primary on 5432 and two streaming standbys (on loopback, told apart by `application_name`), the app's database |
//! | backup-1 | `backup` | restic repositories (seven nightly sets in two locations) |
//! | offline-1 | `offline_backup` | the offline restic repository |
//!
//! Every namespace loads its role's nftables ruleset from
//! examples/papyrs-fleet/ and SP-5 reads it there; one clamd (a signature
//! database of two test signatures) serves every host's SP-7 over its unix
//! socket. A reporter hands out the test policy; each host's `vigil-agent
//! run` reaches it through a forwarder into the namespace (so the agent's
//! `server` stays a loopback `http://` URL).
//!
//! The test policy holds the checks of policies/papyrs.yaml that this machine
//! can make true, each with papyrs.yaml's `roles` and parameters except for
//! paths and these substitutions: a private CA named `Fleet Test Gandi CA`
//! (`ca_file`) stands for Gandi; on backup-1, BK-1/BK-2/BK-3's sftp location
//! is a second local repository with `site: offline-copy` (restic over sftp
//! would need an sshd and keys); GDPR-4's logs phase has no `journal` (CI
//! containers run no journald); no check has `every`, so every control runs
//! at the config's `interval` (10 s) and a break shows within one interval.
//! The test asserts that the scoping matches papyrs.yaml check by check. The
//! checks of papyrs.yaml it leaves out are listed, with why, in `LEFT_OUT`.
//!
//! Asserted: `vigil-agent check --config` exits 0 for each role's config in
//! its namespace, holding exactly the role's controls; via the reporter's
//! posture API every control is `pass` or `attested` on every host it
//! applies to (no error, no unknown, none missing) and not applicable
//! elsewhere; then one break per role (an expired certificate file on
//! web-1, a stopped standby on db-1, a port opened on backup-1, an old
//! backup on offline-1) turns exactly that control `fail` on exactly that
//! host, every other control and host staying as they were.
//!
//! Runtime: 53 s and 72 s in two runs once built, on 2 cores shared with
//! other builds (load average 14-19), measured 2026-12-03 with `cargo test
//! -p vigil-tests --test fleet_papyrs`: the fleet was healthy 34-35 s in and
//! the breaks showed 8-14 s later; the rest is the no-op `cargo build` of
//! the support library and stopping the daemons.
//! Runs as root (network namespaces, nftables, PostgreSQL as `postgres`),
//! as .ci/run does, and needs python3 for the HTTPS server and forwarder
//! (tests/data/fleet_papyrs/helper.py).

use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use vigil_tests::*;

const HOSTS: [(&str, &str); 4] = [
    ("web-1", "app"),
    ("db-1", "db"),
    ("backup-1", "backup"),
    ("offline-1", "offline_backup"),
];

/// Where the agents reach the reporter inside their namespace.
const REPORTER_PORT_IN_NS: u16 = 8443;

/// Checks of policies/papyrs.yaml not in the test policy, and why: each reads
/// the state of the whole machine (/etc, /var/log, the journal, dpkg, apt),
/// which the four hosts of this test share, so one machine cannot stand for
/// four correctly configured hosts; the daemon has no `--root` (only
/// `check`, `facts` and `baseline` have). Their own tests cover them on
/// fixture roots.
const LEFT_OUT: &[(&str, &str, &str)] = &[
    ("SP-3", "system-password-hashes", "the machine's /etc/shadow (tests/security.rs, rules password_storage tests)"),
    ("SP-3", "app-password-hashes", "runs on every host against the app database; with SP-3's other checks left out it would stand alone (tests/security.rs)"),
    ("SP-3", "password-free-logs", "the machine's /var/log and systemd journal, absent in CI containers (tests/log_secrets.rs)"),
    ("SP-4", "ssh-and-admins", "the machine's sshd_config, sudoers and admin groups (tests/agent_cli.rs, fixture roots)"),
    ("SP-6", "packages-current", "the machine's dpkg and apt state, which a CI image does not keep patched (tests/patch_level.rs)"),
    ("SP-7", "system-software", "`dpkg --verify` of the whole machine takes minutes (tests/file_integrity.rs)"),
    ("SP-8", "processor-pci-attestation", "SP-8's log checks are left out, so SP-8 is"),
    ("SP-8", "no-card-numbers-in-logs", "the machine's /var/log (tests/log_secrets.rs)"),
    ("SP-8", "no-card-numbers-stored", "SP-8's log checks are left out, so SP-8 is"),
];

/// Starts tests/data/fleet_papyrs/helper.py with `args` and waits for `ready`.
fn helper(mut cmd: Command, args: &[&str]) -> Child {
    let script = workspace().join("tests/data/fleet_papyrs/helper.py");
    let mut child = cmd
        .arg(script)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready", "helper {args:?} did not start");
    child
}

/// A restic repository holding `sets` backups of `data`, one a night, the
/// newest now.
fn repository(repo: &Path, pass: &Path, data: &[&Path], sets: i64) -> Restic {
    std::fs::create_dir_all(repo.parent().unwrap()).unwrap();
    std::fs::create_dir_all(pass.parent().unwrap()).unwrap();
    std::fs::write(pass, "fleet-papyrs-pass\n").unwrap();
    let r = Restic::new(repo, pass);
    r.cmd(&["init", "-q"]);
    for night in (0..sets).rev() {
        let when = (chrono::Utc::now() - chrono::Duration::days(night))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let mut args = vec!["backup", "-q", "--time", &when];
        args.extend(data.iter().map(|p| p.to_str().unwrap()));
        r.cmd(&args);
    }
    r
}

/// The example agent config of `role` with this test's paths: the reporter
/// through the namespace's forwarder, the token, spool and state in `dir`,
/// a 10 s interval. `host` and `roles` stay the example's.
fn agent_config(role: &str, dir: &Path, policy: &Path) -> String {
    let example = workspace().join(format!("examples/papyrs-fleet/agent-{role}.yaml"));
    let text = std::fs::read_to_string(&example).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let key = line.split(':').next().unwrap_or("");
        let value = match key {
            "server" => Some(format!("http://127.0.0.1:{REPORTER_PORT_IN_NS}")),
            "ca_file" => None,
            "token_file" => Some(dir.join("state/token").display().to_string()),
            "policy" => Some(policy.display().to_string()),
            "spool" => Some(dir.join("state/spool").display().to_string()),
            "state_dir" => Some(dir.join("state/checks").display().to_string()),
            "interval" => Some("10s".to_owned()),
            _ => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        if let Some(v) = value {
            out.push_str(&format!("{key}: {v}\n"));
        }
    }
    out
}

/// What the app server's cron job does every minute: the time into the
/// site's heartbeat file, and the mirror's copy of it.
fn heartbeat(base: &Path) {
    let now = chrono::Utc::now().timestamp();
    for hb in [
        "web-1/srv/papyrs/sites/.vigil-heartbeat",
        "web-1/srv/papyrs-mirror/sites/.vigil-heartbeat",
    ] {
        std::fs::write(base.join(hb), format!("{now}\n")).unwrap();
    }
}

fn control<'a>(posture: &'a Value, id: &str) -> &'a Value {
    posture["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {posture:#}"))
}

/// The controls of the test policy and the roles each applies to (empty:
/// every host; a control whose checks are all scoped applies to theirs), in
/// policy order.
fn scoping(policy: &vigil_rules::policy::Policy) -> Vec<(String, Vec<String>)> {
    policy
        .controls
        .iter()
        .map(|c| (c.id.clone(), c.effective_roles()))
        .collect()
}

/// The test policy's scoping is papyrs.yaml's: every control and check it
/// holds is there with the same type and `roles`, and every check of
/// papyrs.yaml it lacks is in `LEFT_OUT`.
fn assert_scoped_like_papyrs(test: &vigil_rules::policy::Policy) {
    let papyrs = vigil_rules::policy::load(&workspace().join("policies/papyrs.yaml"))
        .unwrap_or_else(|e| panic!("policies/papyrs.yaml: {e}"));
    let mut covered = Vec::new();
    for c in &test.controls {
        let p = papyrs
            .controls
            .iter()
            .find(|p| p.id == c.id)
            .unwrap_or_else(|| panic!("{} is not a control of papyrs.yaml", c.id));
        assert_eq!(c.roles, p.roles, "roles of {}", c.id);
        for k in &c.checks {
            let pk = p
                .checks
                .iter()
                .find(|pk| pk.id == k.id)
                .unwrap_or_else(|| panic!("{}/{} is not in papyrs.yaml", c.id, k.id));
            assert_eq!(k.roles, pk.roles, "roles of {}/{}", c.id, k.id);
            assert_eq!(k.spec.type_name(), pk.spec.type_name(), "{}/{}", c.id, k.id);
            covered.push((c.id.clone(), k.id.clone()));
        }
    }
    let mut missing: Vec<(String, String)> = papyrs
        .controls
        .iter()
        .flat_map(|c| c.checks.iter().map(|k| (c.id.clone(), k.id.clone())))
        .filter(|ck| !covered.contains(ck))
        .collect();
    missing.sort();
    let mut left_out: Vec<(String, String)> = LEFT_OUT
        .iter()
        .map(|(c, k, _)| ((*c).to_owned(), (*k).to_owned()))
        .collect();
    left_out.sort();
    assert_eq!(
        missing, left_out,
        "papyrs.yaml checks not in the fleet test"
    );
}

#[allow(clippy::too_many_lines)]
#[test]
fn a_papyrs_fleet_by_role_passes_and_each_break_fails_one_control_on_one_host() {
    let started = Instant::now();
    require_tool("restic", "restic");
    require_tool("python3", "python3");
    let dir = tempfile::Builder::new()
        .prefix("vigil-fleet-papyrs-")
        .tempdir()
        .unwrap();
    let base = dir.path();
    let p = |rel: &str| base.join(rel).display().to_string();
    let mut children = Children::default();

    let ns: BTreeMap<&str, Netns> = HOSTS.iter().map(|(h, _)| (*h, Netns::new(h))).collect();
    let examples = workspace().join("examples/papyrs-fleet");
    for (host, role) in HOSTS {
        // Both backup roles share one ruleset: ssh only.
        let file = if role == "offline_backup" {
            "backup"
        } else {
            role
        };
        let ruleset = examples.join(format!("nftables-{file}.conf"));
        ns[host].nft(&["-f", ruleset.to_str().unwrap()]);
    }

    // web-1: the site, an upload, the logs, the erasure hook, the heartbeat
    // and its mirror, the certificate and the web server.
    let sites = base.join("web-1/srv/papyrs/sites");
    copy_dir(
        &workspace().join("examples/papyrs-site/site"),
        &sites.join("acme"),
    );
    std::fs::create_dir_all(base.join("web-1/srv/papyrs/uploads")).unwrap();
    std::fs::create_dir_all(base.join("web-1/var/lib/vigil/exports")).unwrap();
    let srv = base.join("web-1/srv/papyrs");
    std::fs::write(base.join("web-1/srv/papyrs/uploads/logo.txt"), "a logo\n").unwrap();
    std::fs::create_dir_all(base.join("web-1/var/log/papyrs")).unwrap();
    std::fs::write(base.join("web-1/var/log/papyrs/papyrs.log"), "GET / 200\n").unwrap();
    std::fs::create_dir_all(base.join("web-1/usr/local/bin")).unwrap();
    let hook = base.join("web-1/usr/local/bin/papyrs-admin");
    std::fs::write(&hook, "#!/bin/sh\nexit 0\n").unwrap();
    run_ok(Command::new("chmod").arg("0755").arg(&hook));
    std::fs::create_dir_all(base.join("web-1/srv/papyrs-mirror/sites")).unwrap();
    heartbeat(base);
    let ssl = base.join("web-1/etc/ssl/papyrs");
    private_ca_certificate(&ssl, 90);
    children.0.push(helper(
        ns["web-1"].cmd(require_tool("python3", "python3")),
        &[
            "web",
            &p("web-1/etc/ssl/papyrs/fullchain.pem"),
            &p("web-1/etc/ssl/papyrs/privkey.pem"),
        ],
    ));
    // Every host: the software SP-7 scans.
    std::fs::create_dir_all(base.join("all/usr/local/bin")).unwrap();
    std::fs::write(
        base.join("all/usr/local/bin/backup.sh"),
        "#!/bin/sh\nrestic backup /srv\n",
    )
    .unwrap();
    let pgdump = base.join("db-1/var/backups/postgresql");
    std::fs::create_dir_all(&pgdump).unwrap();
    std::fs::write(pgdump.join("papyrs.sql"), "-- pg_dump of papyrs\n").unwrap();

    // The slow parts side by side: PostgreSQL, clamd, restic.
    let (pg, clamd, local, copy, offline) = std::thread::scope(|s| {
        let pg = s.spawn(|| {
            // The primary on 5432 (every address of the namespace, as on a
            // real database server) and two standbys on 127.0.0.1:5433, :5434.
            let pg = PgReplication::start(&Streaming {
                netns: Some(&ns["db-1"].name),
                primary_port: 5432,
                primary_listen: "*",
                standby_ports: &[5433, 5434],
                application_name: "papyrs-standby",
            });
            pg.sql(5432, "postgres", "CREATE DATABASE papyrs");
            pg.sql(5432, "papyrs", "CREATE TABLE pages (id serial PRIMARY KEY, account text, body text); INSERT INTO pages (account, body) VALUES ('acme', 'Welcome')");
            wait_until(60, "two streaming standbys", || {
                pg.sql(5432, "postgres", "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'") == "2"
            });
            pg
        });
        let clamd = s.spawn(|| Clamd::start(&base.join("clamd")));
        let both = [srv.as_path(), pgdump.as_path()];
        let local = s.spawn(move || {
            repository(
                &base.join("backup-1/srv/backup/restic-local"),
                &base.join("backup-1/etc/vigil/restic.pass"),
                &both,
                7,
            )
        });
        let copy = s.spawn(move || {
            repository(
                &base.join("backup-1/srv/backup/restic-copy"),
                &base.join("backup-1/etc/vigil/restic-copy.pass"),
                &both,
                7,
            )
        });
        let offline = repository(
            &base.join("offline-1/srv/backup/restic-offline"),
            &base.join("offline-1/etc/vigil/restic-offline.pass"),
            &[srv.as_path(), pgdump.as_path()],
            1,
        );
        (
            pg.join().unwrap(),
            clamd.join().unwrap(),
            local.join().unwrap(),
            copy.join().unwrap(),
            offline,
        )
    });
    std::fs::create_dir_all(base.join("db-1/etc/vigil")).unwrap();
    std::fs::create_dir_all(base.join("web-1/etc/vigil")).unwrap();
    for (file, db) in [
        ("db-1/etc/vigil/pg-monitor.dsn", "postgres"),
        ("web-1/etc/vigil/papyrs-db.dsn", "papyrs"),
    ] {
        std::fs::write(
            base.join(file),
            format!("postgres://postgres@127.0.0.1:5432/{db}\n"),
        )
        .unwrap();
        run_ok(Command::new("chmod").arg("0600").arg(base.join(file)));
    }

    let policy = format!(
        r#"# papyrs.yaml's checks that one machine can make true (tests/fleet_papyrs.rs).
policy: {{id: papyrs-fleet-test, version: "1", title: Papyrs fleet (test)}}
controls:
  - id: SP-1
    title: All traffic between the service and end users is protected by strong TLS
    roles: [app]
    checks:
      - id: public-https
        type: tls_endpoint
        timeout: 60s
        with: {{address: 127.0.0.1:443, server_name: papyrs.example, ca_file: "{ca}", min_protocol: "1.2", min_days_remaining: 21, min_rsa_bits: 2048, min_ec_bits: 256, hsts: true, min_hsts_max_age: 15552000, http_address: 127.0.0.1:80}}
      - id: public-https-www
        type: tls_endpoint
        timeout: 60s
        with: {{address: 127.0.0.1:443, server_name: www.papyrs.example, ca_file: "{ca}", min_protocol: "1.2", min_days_remaining: 21, min_rsa_bits: 2048, min_ec_bits: 256, hsts: true, min_hsts_max_age: 15552000, http_address: 127.0.0.1:80}}
  - id: SP-2
    title: Encryption certificates are created and signed by GANDI
    roles: [app]
    checks:
      - id: served-certificate
        type: tls_certificate_file
        with: {{path: "{cert}", ca_file: "{ca}", server_name: papyrs.example, issuer_contains: Gandi, min_days_remaining: 21, min_rsa_bits: 2048}}
      - id: served-live
        type: tls_endpoint
        timeout: 60s
        with: {{addresses: [127.0.0.1:443], server_name: papyrs.example, ca_file: "{ca}", issuer_contains: Gandi, min_days_remaining: 21}}
      - id: served-live-www
        type: tls_endpoint
        timeout: 60s
        with: {{addresses: [127.0.0.1:443], server_name: www.papyrs.example, ca_file: "{ca}", issuer_contains: Gandi, min_days_remaining: 21}}
  - id: SP-5
    title: The servers are protected by firewalls
    checks:
      - id: inbound-firewall
        type: firewall
        roles: [app]
        with: {{backend: auto, allowed_tcp: [22, 80, 443], allowed_udp: [], require_default_deny: true, check_listening: true}}
      - id: db-firewall
        type: firewall
        roles: [db]
        with: {{backend: auto, allowed_tcp: [22, 5432], allowed_udp: [], require_default_deny: true, check_listening: true}}
      - id: backup-firewall
        type: firewall
        roles: [backup, offline_backup]
        with: {{backend: auto, allowed_tcp: [22], allowed_udp: [], require_default_deny: true, check_listening: true}}
  - id: SP-7
    title: A virus scanner monitors the integrity of the system software
    checks:
      - id: clamd
        type: clamav
        timeout: 30m
        with: {{address: "unix:{clamd_sock}", max_signature_age_hours: 48, self_test: true, database_directory: "{clamd_db}", scan_paths: ["{all}/usr/local/bin"]}}
      - id: clamd-uploads
        type: clamav
        roles: [app]
        timeout: 30m
        with: {{address: "unix:{clamd_sock}", max_signature_age_hours: 48, self_test: false, database_directory: "{clamd_db}", scan_paths: ["{web}/srv/papyrs/uploads"]}}
  - id: SP-9
    title: The servers are physically secured and monitored 24/7
    checks:
      - id: datacentre-attestation
        type: attestation
        with: {{by: operations@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "Hosting provider's ISO 27001 certificate"}}
  - id: SP-10
    title: Papyrs adheres to the EU General Data Protection Regulation
    checks:
      - id: gdpr-programme-attestation
        type: attestation
        with: {{by: dpo@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "Record of processing activities"}}
  - id: GDPR-1
    title: Data stored by customers is kept apart from data stored about customers
    checks:
      - id: data-inventory-attestation
        type: attestation
        with: {{by: dpo@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "Data inventory"}}
  - id: GDPR-2
    title: The only PII collected is what invoicing needs
    checks:
      - id: pii-minimisation-attestation
        type: attestation
        with: {{by: dpo@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "Record of processing activities"}}
  - id: GDPR-3
    title: All data stored by customers is treated as though it contains PII
    checks:
      - id: treat-as-pii-attestation
        type: attestation
        with: {{by: dpo@papyrs.example, on: 2026-11-25, valid_for: 3650d, evidence: "Handling rules"}}
  - id: GDPR-4
    title: A closed account's data is destroyed in three phases
    checks:
      - id: three-phase-erasure
        type: erasure
        roles: [app]
        timeout: 30m
        with:
          hook_timeout: 10m
          site:
            hook: ["{web}/usr/local/bin/papyrs-admin", delete-site, "{{account}}"]
            paths: ["{web}/srv/papyrs/sites/{{account}}"]
            sql: {{dsn_file: "{web}/etc/vigil/papyrs-db.dsn", query: "SELECT count(*) FROM pages WHERE account = $1"}}
          logs: {{paths: ["{web}/var/log/papyrs/*.log*"], purge: true}}
      - id: local-backups-erasure
        type: erasure
        roles: [backup]
        timeout: 30m
        with:
          local_backups:
            restic: [{{repository: "{lrepo}", password_file: "{lpass}", delete: rewrite}}]
            paths_in_backup: ["{web}/srv/papyrs/sites/{{account}}"]
      - id: offline-backups-erasure
        type: erasure
        roles: [offline_backup]
        timeout: 30m
        with:
          offline_backups:
            restic: [{{repository: "{orepo}", password_file: "{opass}", delete: rewrite}}]
            paths_in_backup: ["{web}/srv/papyrs/sites/{{account}}"]
  - id: GDPR-5
    title: Customers can download a portable backup of their site
    roles: [app]
    checks:
      - id: portable-export
        type: erasure
        timeout: 30m
        with: {{export: {{site_root: "{web}/srv/papyrs/sites/{{account}}", output_dir: "{web}/var/lib/vigil/exports"}}}}
  - id: BK-1
    title: Backups are made of all client data every night
    roles: [backup, offline_backup]
    checks:
      - id: nightly-restic
        type: backup_freshness
        roles: [backup]
        timeout: 5m
        with:
          sources:
            - {{kind: restic, location: "{lrepo}", password_file: "{lpass}"}}
            - {{kind: restic, location: "{crepo}", password_file: "{cpass}", site: offline-copy}}
          max_age_hours: 26
          required_paths: ["{web}/srv/papyrs", "{db}/var/backups/postgresql"]
      - id: restic-data-sample
        type: backup_freshness
        roles: [backup]
        timeout: 60m
        with:
          sources:
            - {{kind: restic, location: "{lrepo}", password_file: "{lpass}"}}
            - {{kind: restic, location: "{crepo}", password_file: "{cpass}", site: offline-copy}}
          max_age_hours: 26
          read_data_subset: "1/30"
          command_timeout_seconds: 3000
      - id: offline-restic
        type: backup_freshness
        roles: [offline_backup]
        timeout: 5m
        with:
          sources:
            - {{kind: restic, location: "{orepo}", password_file: "{opass}"}}
          max_age_hours: 26
          required_paths: ["{web}/srv/papyrs", "{db}/var/backups/postgresql"]
  - id: BK-2
    title: Multiple sets of backups are kept in multiple locations
    roles: [backup, offline_backup]
    checks:
      - id: sets-and-locations
        type: backup_freshness
        roles: [backup]
        timeout: 5m
        with:
          sources:
            - {{kind: restic, location: "{lrepo}", password_file: "{lpass}"}}
            - {{kind: restic, location: "{crepo}", password_file: "{cpass}", site: offline-copy}}
          max_age_hours: 26
          min_sets: 7
          min_locations: 2
      # offline-1's own set (the test makes one). A week's window here, so
      # that offline-1's break (a newest set three days old) fails BK-1 alone.
      - id: offline-sets
        type: backup_freshness
        roles: [offline_backup]
        timeout: 5m
        with:
          sources:
            - {{kind: restic, location: "{orepo}", password_file: "{opass}"}}
          max_age_hours: 170
          min_sets: 1
  - id: BK-3
    title: Backups are transferred over an encrypted connection
    roles: [backup]
    checks:
      - id: encrypted-transport
        type: backup_freshness
        timeout: 5m
        with:
          sources:
            - {{kind: restic, location: "{lrepo}", password_file: "{lpass}"}}
            - {{kind: restic, location: "{crepo}", password_file: "{cpass}", site: offline-copy}}
          require_encrypted_transport: true
          require_encrypted_repository: true
  - id: BK-4
    title: User data is continuously mirrored to multiple physical servers
    checks:
      - id: postgres-replicas
        type: mirror_lag
        roles: [db]
        timeout: 30s
        with: {{postgres: {{dsn_file: "{db}/etc/vigil/pg-monitor.dsn", min_replicas: 2, max_lag_seconds: 60}}}}
      - id: site-files-mirror
        type: mirror_lag
        roles: [app]
        timeout: 30s
        with:
          heartbeat:
            mirrors: ["{web}/srv/papyrs/sites/.vigil-heartbeat", "{web}/srv/papyrs-mirror/sites/.vigil-heartbeat"]
            max_lag_seconds: 300
"#,
        ca = p("web-1/etc/ssl/papyrs/ca.pem"),
        cert = p("web-1/etc/ssl/papyrs/fullchain.pem"),
        web = p("web-1"),
        db = p("db-1"),
        all = p("all"),
        clamd_sock = clamd.socket().display(),
        clamd_db = clamd.database().display(),
        lrepo = local.repo.display(),
        lpass = local.pass.display(),
        crepo = copy.repo.display(),
        cpass = copy.pass.display(),
        orepo = offline.repo.display(),
        opass = offline.pass.display(),
    );
    let policy_path = base.join("papyrs-fleet-test.yaml");
    std::fs::write(&policy_path, &policy).unwrap();
    let o = run_agent(&["validate", "--policy", policy_path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let test_policy = vigil_rules::policy::load(&policy_path).unwrap();
    assert_scoped_like_papyrs(&test_policy);
    let applies_to = |role: &str| -> Vec<String> {
        test_policy
            .controls
            .iter()
            .filter(|c| c.applies_to(&[role.to_owned()]))
            .map(|c| c.id.clone())
            .collect()
    };

    // The reporter, reached from each namespace on 127.0.0.1:8443; the app
    // server reaches the database as it would over the network.
    let cfg = base.join("reporter.yaml");
    let example_reporter = std::fs::read_to_string(examples.join("reporter.yaml")).unwrap();
    let erasure = &example_reporter[example_reporter
        .find("\nerasure:")
        .expect("reporter.yaml has an erasure section")..];
    std::fs::write(
        &cfg,
        format!(
            "policy: {}\norganization: Papyrs{erasure}",
            policy_path.display()
        ),
    )
    .unwrap();
    let rep = Reporter::start(
        &base.join("reporter"),
        false,
        None,
        &["--config", cfg.to_str().unwrap()],
    );
    let admin = rep.add_user("alice", "admin");
    let mut pairs: Vec<String> = HOSTS
        .iter()
        .map(|(h, _)| format!("{}:{REPORTER_PORT_IN_NS}=-:{}", ns[h].name, rep.port))
        .collect();
    pairs.push(format!(
        "{}:5432={}:5432",
        ns["web-1"].name, ns["db-1"].name
    ));
    let pairs: Vec<&str> = pairs.iter().map(String::as_str).collect();
    let mut fwd = Command::new(require_tool("python3", "python3"));
    fwd.stderr(Stdio::null());
    children
        .0
        .push(helper(fwd, &[&["fwd"][..], &pairs].concat()));

    // Each role's config, as in examples/papyrs-fleet, in its host.
    let mut agents: Vec<DaemonAgent> = HOSTS
        .iter()
        .map(|(host, role)| {
            let a = DaemonAgent::with_policy(host, &rep.base, &[role], &policy_path, "");
            let text = agent_config(role, a.dir.path(), &policy_path);
            assert!(text.contains(&format!("\nhost: {host}\n")), "{text}");
            assert!(text.contains(&format!("\nroles: [{role}]\n")), "{text}");
            std::fs::write(a.config(), text).unwrap();
            a
        })
        .collect();

    // `vigil-agent check --config` exits 0 on each, with only its role's controls.
    heartbeat(base);
    let policy_path = &policy_path;
    std::thread::scope(|s| {
        for (a, (host, role)) in agents.iter().zip(HOSTS) {
            let ns = &ns[host];
            let want = applies_to(role);
            s.spawn(move || {
                let state = tempfile::tempdir().unwrap();
                let o = ns
                    .cmd(agent())
                    .args([
                        "check",
                        "--policy",
                        policy_path.to_str().unwrap(),
                        "--config",
                    ])
                    .arg(a.config())
                    .args([
                        "--format",
                        "json",
                        "--state-dir",
                        state.path().to_str().unwrap(),
                    ])
                    .output()
                    .unwrap();
                let r = report_json(&o);
                assert_eq!(o.status.code(), Some(0), "{host}: {r:#}\n{}", stderr(&o));
                assert_eq!(r["agent"]["roles"], json!([role]), "{host}");
                let ids: Vec<&str> = r["controls"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["id"].as_str().unwrap())
                    .collect();
                assert_eq!(ids, want, "{host}");
            });
        }
    });

    // The fleet: one daemon per host, in its namespace.
    heartbeat(base);
    for (a, (host, _)) in agents.iter_mut().zip(HOSTS) {
        let o = ns[host]
            .cmd(agent())
            .args(["enroll", "--config"])
            .arg(a.config())
            .env("VIGIL_ENROLL_SECRET", ENROLL_SECRET)
            .output()
            .unwrap();
        assert!(o.status.success(), "enroll {host}: {}", stderr(&o));
        rep.approve_roles(host);
        let log = std::fs::File::create(a.log_path()).unwrap();
        a.child = Some(
            ns[host]
                .cmd(agent())
                .args(["run", "--config"])
                .arg(a.config())
                .env("RUST_LOG", "info")
                .env_remove("NOTIFY_SOCKET")
                .env_remove("WATCHDOG_USEC")
                .env_remove("JOURNAL_STREAM")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap(),
        );
    }
    let logs = |agents: &[DaemonAgent]| -> String {
        agents
            .iter()
            .map(|a| format!("--- {} ---\n{}", a.host, a.log()))
            .collect()
    };

    // Every control passes or is attested on every host it applies to.
    let hosts_of = |roles: &[String]| -> Vec<&str> {
        HOSTS
            .iter()
            .filter(|(_, r)| roles.is_empty() || roles.iter().any(|x| x == r))
            .map(|(h, _)| *h)
            .collect()
    };
    let good = |c: &Value| -> bool {
        let counts = c["counts"].as_object().unwrap();
        let all: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
        let ok: u64 = ["pass", "attested"]
            .iter()
            .map(|s| counts.get(*s).and_then(Value::as_u64).unwrap_or(0))
            .sum();
        all > 0 && ok == all && Some(all) == c["applicable_hosts"].as_u64()
    };
    let mut posture: Value;
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        posture = rep.get_json(&admin, "/api/v1/posture").1;
        if posture["controls"]
            .as_array()
            .is_some_and(|cs| cs.iter().all(good))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every control passed in 180 s: {posture:#}\n{}",
            logs(&agents)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let healthy_at = started.elapsed();
    for (id, roles) in scoping(&test_policy) {
        let c = control(&posture, &id);
        let on = hosts_of(&roles);
        assert_eq!(c["applicable_hosts"], on.len(), "{id}: {c:#}");
        let mut off: Vec<&str> = HOSTS
            .iter()
            .map(|(h, _)| *h)
            .filter(|h| !on.contains(h))
            .collect();
        off.sort();
        assert_eq!(c["hosts_not_applicable"], json!(off), "{id}: {c:#}");
    }
    assert_eq!(control(&posture, "GDPR-4")["status"], "pass");
    let web = rep.newest_report(&admin, "web-1").unwrap();
    let export = check_of(&web, "GDPR-5", "portable-export");
    assert_eq!(export["evidence"]["readiness"]["ready"], true, "{export:#}");
    let html = rep
        .client()
        .get(format!("{}/", rep.base))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("n/a"), "the overview shows no n/a cell");

    // One break per role.
    heartbeat(base);
    // web-1: the certificate file is replaced by an expired one; nginx (here
    // the Python server) still serves the old one until reloaded.
    private_ca_certificate(&ssl, -1);
    // db-1: a standby stops.
    pg.stop(&pg.path("standby2"));
    // backup-1: rsync's port opened to the world.
    ns["backup-1"].nft(&[
        "add", "rule", "inet", "filter", "input", "tcp", "dport", "873", "accept",
    ]);
    // offline-1: the newest set is from three days ago.
    let old = (chrono::Utc::now() - chrono::Duration::days(3))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let fresh: Value =
        serde_json::from_str(&offline.cmd(&["--retry-lock", "2m", "snapshots", "--json"])).unwrap();
    offline.cmd(&[
        "--retry-lock",
        "2m",
        "backup",
        "-q",
        "--time",
        &old,
        srv.to_str().unwrap(),
        pgdump.to_str().unwrap(),
    ]);
    let mut forget = vec!["--retry-lock", "2m", "forget", "-q"];
    forget.extend(
        fresh
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap()),
    );
    offline.cmd(&forget);

    let breaks = [
        ("SP-2", "web-1"),
        ("BK-4", "db-1"),
        ("SP-5", "backup-1"),
        ("BK-1", "offline-1"),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        posture = rep.get_json(&admin, "/api/v1/posture").1;
        let seen = breaks
            .iter()
            .all(|(c, h)| control(&posture, c)["hosts_failing"] == json!([h]));
        if seen {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the breaks did not show in 120 s: {posture:#}\n{}",
            logs(&agents)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // Exactly these, and every other control and host as before.
    for (id, roles) in scoping(&test_policy) {
        let c = control(&posture, &id);
        let failing: Vec<&str> = breaks
            .iter()
            .filter(|(b, _)| *b == id)
            .map(|(_, h)| *h)
            .collect();
        // What the hosts reported, when this control is not as expected.
        let why = || -> String {
            HOSTS
                .iter()
                .filter_map(|(h, _)| rep.newest_report(&admin, h))
                .flat_map(|r| {
                    let host = r["agent"]["host"].clone();
                    r["controls"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|c| c["id"] == id.as_str())
                        .flat_map(|c| c["checks"].as_array().cloned().unwrap_or_default())
                        .filter(|k| k["status"] != "pass")
                        .map(move |k| format!("{host}: {k:#}\n"))
                        .collect::<Vec<_>>()
                })
                .collect()
        };
        if c["hosts_failing"] != json!(failing)
            || c["hosts_error"] != json!([])
            || c["hosts_unknown"] != json!([])
        {
            panic!("{id}: {c:#}\n{}\n{}", why(), logs(&agents));
        }
        let counts = c["counts"].as_object().unwrap();
        let ok: u64 = ["pass", "attested"]
            .iter()
            .map(|s| counts.get(*s).and_then(Value::as_u64).unwrap_or(0))
            .sum();
        assert_eq!(
            ok as usize + failing.len(),
            hosts_of(&roles).len(),
            "{id}: {c:#}"
        );
    }
    let newest = |host: &str| rep.newest_report(&admin, host).unwrap();
    let web = newest("web-1");
    assert_eq!(
        codes(check_of(&web, "SP-2", "served-certificate")),
        // An expired leaf no longer chains to a trusted root either.
        ["expired", "untrusted_chain"]
    );
    assert_eq!(check_of(&web, "SP-2", "served-live")["status"], "pass");
    let db = newest("db-1");
    assert_eq!(
        codes(check_of(&db, "BK-4", "postgres-replicas")),
        ["too_few_replicas"]
    );
    let bk = newest("backup-1");
    let fw = check_of(&bk, "SP-5", "backup-firewall");
    assert_eq!(codes(fw), ["port_not_allowed"], "{fw:#}");
    assert_eq!(fw["findings"][0]["subject"], "tcp/873");
    let off = newest("offline-1");
    assert_eq!(
        codes(check_of(&off, "BK-1", "offline-restic")),
        // Its one location holds no fresh set, so fewer than `min_locations` (1) do.
        ["stale", "too_few_locations"]
    );

    for a in &mut agents {
        assert_eq!(a.stop(), 0, "{}: {}", a.host, a.log());
    }
    eprintln!(
        "fleet_papyrs: healthy after {healthy_at:.0?}, breaks seen after {:.0?}",
        started.elapsed()
    );
    drop(children);
}
