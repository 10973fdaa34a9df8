//! What to do about each finding code: one short remediation per code, with a
//! reference where one applies.
//!
//! Kept as one table beside the registry, keyed by the same `TYPE/CODE` names
//! as `codes.snapshot.txt`, so a reviewer reads every remediation in one
//! place and a unit test fails when a code has none. The two TLS check types
//! share their certificate codes, so their entries are written once under
//! the family name `tls`.

use serde::Serialize;

/// How to fix one finding code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Remediation {
    /// `TYPE/CODE`: the id reports carry and SARIF rules are named by.
    pub id: &'static str,
    /// What to change, with the command or configuration line where one exists.
    pub text: &'static str,
    /// A standard, RFC or vendor document, where one applies (a URL when the
    /// source has a stable one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<&'static str>,
}

/// `(family/code, remediation, reference)`; a family is a check type's name,
/// or `tls` for the codes `tls_endpoint` and `tls_certificate_file` share.
type Entry = (&'static str, &'static str, Option<&'static str>);

const OWASP_PASSWORDS: Option<&str> =
    Some("https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html");
const SSHD_CONFIG: Option<&str> =
    Some("sshd_config(5); CIS Debian Linux Benchmark, section \"Configure SSH Server\"");
const RFC5280: Option<&str> = Some("RFC 5280, section 4.1.2.5 (validity)");
const BCP195: Option<&str> = Some("RFC 9325 (BCP 195): recommendations for secure use of TLS");
const RESTIC_DOCS: Option<&str> = Some("https://restic.readthedocs.io/en/stable/");
const PG_REPLICATION: Option<&str> =
    Some("https://www.postgresql.org/docs/current/warm-standby.html#STREAMING-REPLICATION");
const UNATTENDED: Option<&str> = Some("https://wiki.debian.org/UnattendedUpgrades");
const GDPR_17: Option<&str> = Some("GDPR Art. 17 (right to erasure)");

static TABLE: &[Entry] = &[
    // --- admin_access ---------------------------------------------------
    ("admin_access/empty_passwords_permitted", "Set `PermitEmptyPasswords no` in /etc/ssh/sshd_config (and any file it includes), then `systemctl reload ssh`.", SSHD_CONFIG),
    ("admin_access/extra_uid0_account", "Give the account its own uid (`usermod -u NEW_UID NAME`) or remove it (`userdel NAME`); only root may have uid 0. Investigate how it got there: an unexpected uid 0 account is a sign of compromise.", Some("CIS Debian Linux Benchmark, \"Ensure root is the only UID 0 account\"")),
    ("admin_access/key_on_wrong_account", "Remove the key from that account's authorized_keys, or add the account to its owner's roster entry if the access is intended.", None),
    ("admin_access/keyboard_interactive_enabled", "Set `KbdInteractiveAuthentication no` (older OpenSSH: `ChallengeResponseAuthentication no`) in /etc/ssh/sshd_config and reload sshd; administrators log in with keys.", SSHD_CONFIG),
    ("admin_access/password_authentication_enabled", "Set `PasswordAuthentication no` in /etc/ssh/sshd_config (check `Match` blocks and included files too) and reload sshd; give every administrator a key on the roster first.", SSHD_CONFIG),
    ("admin_access/root_login_permitted", "Set `PermitRootLogin no` (or the value the policy's `permit_root_login` allows, e.g. `prohibit-password`) in /etc/ssh/sshd_config and reload sshd; administrators log in as themselves and use sudo.", SSHD_CONFIG),
    ("admin_access/sshd_absent", "Nothing to fix if the host is administered without ssh; otherwise point `sshd_config` at the server's configuration file.", None),
    ("admin_access/authorized_keys_command", "Make sure the `AuthorizedKeysCommand` program only returns keys of rostered people (or check its source with another control); vigil cannot see those keys.", SSHD_CONFIG),
    ("admin_access/trusted_user_ca_keys", "Restrict which principals may log in (`AuthorizedPrincipalsFile`) and issue certificates only to rostered people; vigil cannot list who holds one.", SSHD_CONFIG),
    ("admin_access/unknown_key", "Remove the key from the authorized_keys file, or add its fingerprint (`ssh-keygen -lf FILE`) to the person's roster entry if they are key personnel.", Some("CIS Debian Linux Benchmark, \"Ensure sshd access is configured\"")),
    ("admin_access/unparsable_key", "Fix or delete the line in the authorized_keys file: each line is `[options] TYPE BASE64 [comment]`.", Some("sshd(8), section AUTHORIZED_KEYS FILE FORMAT")),
    ("admin_access/unrostered_admin", "Remove the account from the admin group or sudoers rule (`gpasswd -d NAME sudo`, or edit /etc/sudoers.d with `visudo`), or add the person to the roster if they are key personnel.", Some("sudoers(5); ISO/IEC 27001:2022 A.8.2 (privileged access rights)")),
    // --- attestation ----------------------------------------------------
    ("attestation/dated_in_future", "Correct the attestation's `on` date to the day it was made.", None),
    ("attestation/expired", "Review the control again, collect fresh evidence, and update `on` (and `evidence`) in the policy; then sign and publish it.", None),
    ("attestation/expiring_soon", "Schedule the review now: collect fresh evidence and update `on` before the attestation expires.", None),
    // --- backup_freshness -----------------------------------------------
    ("backup_freshness/checksum_mismatch", "Treat the set as damaged: run the backup again, and find out why the stored file differs from its manifest (disk, transfer, tampering).", None),
    ("backup_freshness/data_check_failed", "Run `restic check --read-data` on the repository to see what is damaged, `restic repair packs`/`repair snapshots` (restic >= 0.16) or start a new repository, and run a fresh backup.", RESTIC_DOCS),
    ("backup_freshness/future_set", "Fix the clock of the host that wrote the set (`timedatectl status`; enable NTP with `timedatectl set-ntp true`).", None),
    ("backup_freshness/missing_path", "Add the path to the nightly backup job (e.g. `restic backup ... /srv/papyrs`), or correct `required_paths` if the data moved.", None),
    ("backup_freshness/no_sets", "Run the backup job for this location and check its timer (`systemctl list-timers`) and logs; a location without sets protects nothing.", None),
    ("backup_freshness/stale", "Find out why last night's backup did not run or failed (`journalctl -u YOUR-BACKUP-UNIT`), fix it, and run it now.", None),
    ("backup_freshness/too_few_locations", "Send backups to another location (a second repository on another host or site) and keep it fresh.", Some("ISO/IEC 27001:2022 A.8.13 (information backup)")),
    ("backup_freshness/too_few_sets", "Keep more sets: loosen the retention (`restic forget --keep-daily 7 ...`) or wait until enough nightly sets exist.", None),
    ("backup_freshness/unencrypted_repository", "Create a new encrypted repository (`borg init --encryption=repokey-blake2`), move the backups there, and retire the unencrypted one.", Some("https://borgbackup.readthedocs.io/en/stable/usage/init.html")),
    ("backup_freshness/unencrypted_transport", "Reach the location over an encrypted transport: sftp:, rest:https:// or s3 over https, or an encrypted mount; never rest:http://, ftp:// or plain NFS/SMB.", None),
    // --- clamav ---------------------------------------------------------
    ("clamav/custom_database_only", "Nothing to fix if custom signatures are intended; otherwise run freshclam (`systemctl enable --now clamav-freshclam`) so clamd loads the official databases.", None),
    ("clamav/file_too_large", "Raise `max_file_size_mb` (and clamd's `StreamMaxLength`) if such files must be scanned, or exclude the path deliberately.", Some("clamd.conf(5)")),
    ("clamav/infected_file", "Quarantine the file (move it out of reach, keep a copy for analysis), find how it got there, and treat the host as possibly compromised until you know.", None),
    ("clamav/scan_error", "Look at clamd's log (`journalctl -u clamav-daemon`) for the file; fix permissions or clamd limits so it can be scanned.", None),
    ("clamav/scan_path_missing", "Create the directory, or remove it from `scan_paths` if it no longer exists on this host.", None),
    ("clamav/self_test_error", "Check clamd's limits and log (`journalctl -u clamav-daemon`): it must be able to scan a small stream (`StreamMaxLength`, permissions on its socket).", None),
    ("clamav/self_test_not_detected", "clamd is not detecting anything: check that it loaded its databases (`clamdscan --version`), restart it (`systemctl restart clamav-daemon`) and run freshclam.", Some("https://www.eicar.org/download-anti-malware-testfile/")),
    ("clamav/signature_date_unknown", "Run freshclam (`systemctl enable --now clamav-freshclam`) and point `database_directory` at clamd's DatabaseDirectory so the age can be read.", None),
    ("clamav/signatures_stale", "Check that freshclam runs (`systemctl status clamav-freshclam`, `journalctl -u clamav-freshclam`) and can reach its mirror; run `freshclam` by hand once.", None),
    // --- erasure --------------------------------------------------------
    ("erasure/backup_still_contains", "Let the agent erase the account's paths from that repository (`delete: rewrite`, then prune with `--max-unused 0`), or forget the snapshots if they hold only this account.", GDPR_17),
    ("erasure/data_remaining", "Delete the remaining site data (the paths or rows named in the finding) with the site's deletion hook, then let the check prove it again.", GDPR_17),
    ("erasure/erasure_not_ready", "Fix what the finding names so the host could erase now: install the hook and make it executable, give the agent the restic password file, and make the site, repository and log paths writable under the agent's unit (examples/papyrs-fleet has a drop-in per role).", GDPR_17),
    ("erasure/export_invalid", "Rebuild the export archive (the daemon retries the task); if it fails again, check free space in `output_dir` and the site's files.", Some("docs/export-format.md")),
    ("erasure/hook_failed", "Run the hook by hand as the agent's service would (same user, same sandbox) to see its error; fix it and let the daemon retry.", None),
    ("erasure/lines_remaining", "Let the purge rewrite the named log files (`logs.purge: true`), or rotate them out; check that the log directory is writable under the agent's unit.", GDPR_17),
    // --- file_integrity -------------------------------------------------
    ("file_integrity/baseline_tampered", "Treat it as an incident: the baseline was changed outside `vigil-agent baseline`. Rebuild it from a known-good state and find out who changed it.", None),
    ("file_integrity/conffile_changed", "Nothing to fix if the edit is intended (configuration management); otherwise compare with the package's version (`dpkg --verify PACKAGE`) and revert.", None),
    ("file_integrity/conffile_missing", "Restore the file from the package (`apt-get install --reinstall -o Dpkg::Options::=--force-confmiss PACKAGE`) or confirm the removal was intended.", None),
    ("file_integrity/file_added", "Find out where the file came from; remove it if unexpected, or update the baseline (`vigil-agent baseline`) after a reviewed change.", None),
    ("file_integrity/file_changed", "Compare the file with a known-good copy; revert an unexpected change, or update the baseline (`vigil-agent baseline`) after a reviewed change.", None),
    ("file_integrity/file_removed", "Restore the file from a backup or its source, or update the baseline (`vigil-agent baseline`) if the removal was reviewed.", None),
    ("file_integrity/package_file_changed", "Reinstall the package (`apt-get install --reinstall PACKAGE`) and investigate: a changed system binary is a sign of compromise.", Some("dpkg(1) --verify; CIS Debian Linux Benchmark, \"Filesystem Integrity Checking\"")),
    ("file_integrity/package_file_missing", "Reinstall the package (`apt-get install --reinstall PACKAGE`).", None),
    ("file_integrity/package_file_unreadable", "Check the file's permissions and the disk (`dmesg` for I/O errors); the agent must be able to read every package file.", None),
    // --- firewall -------------------------------------------------------
    ("firewall/allowed_port_closed", "Nothing to fix if the service is meant to be unreachable; otherwise open the port for it in the firewall ruleset.", None),
    ("firewall/established_not_accepted", "Add `ct state established,related accept` at the top of the input chain so replies to outbound connections get in.", Some("https://wiki.nftables.org/wiki-nftables/index.php/Simple_ruleset_for_a_server")),
    ("firewall/listening_port_exposed", "Stop the service or bind it to 127.0.0.1, or drop the port in the firewall; add it to `allowed_tcp`/`allowed_udp` only if it must be public.", Some("CIS Debian Linux Benchmark, \"Ensure nftables firewall rules exist for all open ports\"")),
    ("firewall/no_default_deny", "Give the input chain a drop policy: `nft add chain inet filter input '{ type filter hook input priority 0; policy drop; }'` (after accepting loopback, established and the allowed ports), and persist it in /etc/nftables.conf.", Some("CIS Debian Linux Benchmark, \"Ensure nftables default deny firewall policy\"")),
    ("firewall/port_not_allowed", "Remove the rule that accepts the port, or add the port to the policy's allowed list if it must be reachable.", None),
    // --- log_secrets ----------------------------------------------------
    ("log_secrets/aws_access_key_id", "Deactivate the key in IAM, issue a new one, stop the application from logging it, and purge the log file.", Some("https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html")),
    ("log_secrets/aws_secret_access_key", "Deactivate the key pair in IAM now, issue a new one, stop the application from logging it, and purge the log file.", Some("https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html")),
    ("log_secrets/basic_auth_header", "Change the password, stop logging the Authorization header (e.g. nginx `log_format` without `$http_authorization`), and purge the log file.", Some("OWASP Logging Cheat Sheet")),
    ("log_secrets/bearer_token", "Revoke the token, stop logging Authorization headers, and purge the log file.", Some("OWASP Logging Cheat Sheet")),
    ("log_secrets/card_number", "Find which code path wrote a card number (we must never receive one), fix it, purge the file and its backups, and report it as a possible PCI DSS incident.", Some("PCI DSS v4.0 requirement 3.3 and 3.4")),
    ("log_secrets/extra_pattern", "Remove the value from the log and stop the application from writing it; rotate the secret if it is one.", None),
    ("log_secrets/findings_truncated", "Fix the first findings; raise `max_findings_per_file` to see the rest.", None),
    ("log_secrets/github_token", "Revoke the token on GitHub (Settings, Developer settings), stop logging it, and purge the log file.", Some("https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/token-expiration-and-revocation")),
    ("log_secrets/no_files_matched", "Correct the glob in `paths` (or move it to `optional_paths` if the files may legitimately be absent): nothing scanned is not proof.", None),
    ("log_secrets/password_assignment", "Change the password, make the application mask it before logging (log the user, never the credential), and purge the log file and its rotations.", Some("OWASP Logging Cheat Sheet; Papyrs Security Policy item 3")),
    ("log_secrets/password_hash", "Stop logging password hashes (they can be cracked offline), purge the log file, and ask the affected users to change their passwords.", OWASP_PASSWORDS),
    ("log_secrets/private_key_block", "Treat the key as compromised: replace it (new key and certificate), stop the program that logged it, and purge the log file.", None),
    ("log_secrets/skipped_file", "The path is a symlink, FIFO, device or directory where a log file was expected: point `paths` at the real file (the agent never follows links out of the scanned paths) or remove the entry.", None),
    ("log_secrets/slack_token", "Revoke the token or webhook in Slack's app settings, stop logging it, and purge the log file.", None),
    ("log_secrets/stripe_secret_key", "Roll the key in the Stripe dashboard now, stop logging it, and purge the log file.", Some("https://docs.stripe.com/keys")),
    ("log_secrets/unreadable_file", "Give the agent read access to the file (it runs as root with CAP_DAC_READ_SEARCH under the shipped unit) or remove it from `paths`.", None),
    ("log_secrets/unused_allow", "Remove the `allow` entry if the false positive it covered is gone.", None),
    ("log_secrets/url_credentials", "Change the password, stop logging full URLs with credentials (log the host only), and purge the log file.", Some("OWASP Logging Cheat Sheet")),
    // --- mirror_lag -----------------------------------------------------
    ("mirror_lag/heartbeat_invalid", "Check the job that writes the mirror's heartbeat file: it must write one RFC 3339 time or Unix timestamp.", None),
    ("mirror_lag/heartbeat_missing", "Start the mirroring job (and its heartbeat writer) for this mirror, or correct the heartbeat path.", None),
    ("mirror_lag/heartbeat_stale", "Find out why the mirror stopped receiving changes (the sync job's log, the network, disk space) and restart it.", None),
    ("mirror_lag/lag_exceeded", "Find what slows the replica (network, disk, long queries with `hot_standby_feedback`), and watch `pg_stat_replication` until it catches up.", PG_REPLICATION),
    ("mirror_lag/lag_unknown", "Upgrade the standby or enable `track_commit_timestamp`/feedback so the primary reports its lag; until then the lag is not known.", Some("https://www.postgresql.org/docs/current/monitoring-stats.html#MONITORING-PG-STAT-REPLICATION-VIEW")),
    ("mirror_lag/replay_paused", "Resume replay on the standby (`SELECT pg_wal_replay_resume();`) unless it was paused on purpose.", Some("https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-CONTROL")),
    ("mirror_lag/replica_not_streaming", "Check the standby's log: it may still be catching up from archive or taking a base backup; make sure `primary_conninfo` is right.", PG_REPLICATION),
    ("mirror_lag/standby_not_streaming", "Check `primary_conninfo` and the standby's log (`journalctl -u postgresql@15-main`), and that the primary allows it in pg_hba.conf.", PG_REPLICATION),
    ("mirror_lag/too_few_replicas", "Bring up another streaming standby on a separate physical host (`pg_basebackup -R -D ...`) and check it appears in `pg_stat_replication`.", PG_REPLICATION),
    ("mirror_lag/wrong_role", "Point the check at the right server, or fail the role back over if a promotion happened by accident.", None),
    // --- password_storage -----------------------------------------------
    ("password_storage/empty_password", "Lock the account (`passwd -l NAME`) or set a password; no account may log in without one.", Some("CIS Debian Linux Benchmark, \"Ensure /etc/shadow password fields are not empty\"")),
    ("password_storage/low_cost", "Raise the cost for new hashes (bcrypt cost >= 10, argon2id m >= 19 MiB, scrypt N >= 2^15, PBKDF2 >= 600,000 iterations) and rehash each password at its next login.", OWASP_PASSWORDS),
    ("password_storage/malformed_line", "Fix the line with `vipw -s` (for /etc/shadow) or correct the query's column.", None),
    ("password_storage/scheme_not_allowed", "Rehash with an allowed scheme at the next login (e.g. yescrypt or sha512-crypt in /etc/login.defs `ENCRYPT_METHOD`; argon2id or bcrypt in the application).", OWASP_PASSWORDS),
    ("password_storage/unrecognized_or_plaintext", "Treat the value as a plain-text password: force a reset for the account and store only salted slow hashes (argon2id, bcrypt, yescrypt).", OWASP_PASSWORDS),
    ("password_storage/unsalted_hash", "Rehash with a salted slow scheme (argon2id, bcrypt, yescrypt) and force a reset for the account.", OWASP_PASSWORDS),
    ("password_storage/weakest_acceptable_scheme", "Nothing fails: sha512-crypt at 5,000+ rounds is accepted. To get out of the weakest allowed scheme, set `ENCRYPT_METHOD YESCRYPT` in /etc/login.defs (or argon2id/bcrypt in the application) so each password is rehashed at its next change or login.", OWASP_PASSWORDS),
    ("password_storage/weak_scheme", "Rehash with a slow salted scheme (argon2id, bcrypt, yescrypt, sha512-crypt) and force a reset for the accounts still on the weak one.", OWASP_PASSWORDS),
    // --- patch_level ----------------------------------------------------
    ("patch_level/apt_stale", "Refresh the package lists (`apt-get update`) and check the timer that does it (`systemctl status apt-daily.timer`).", None),
    ("patch_level/kernel_outdated", "Reboot into the newer kernel at the next maintenance window.", None),
    ("patch_level/kernel_unmanaged", "Nothing to fix in a container or with a custom kernel; keep that kernel patched by its own process.", None),
    ("patch_level/open_advisory", "Upgrade the package to the fixed version (`apt-get install --only-upgrade PACKAGE`), or waive the advisory with a justification if no fix exists.", Some("https://www.debian.org/security/")),
    ("patch_level/pending_security_update", "Install the security updates now (`apt-get update && apt-get upgrade`), and let unattended-upgrades do it nightly.", UNATTENDED),
    ("patch_level/pending_updates", "Install the pending updates (`apt-get upgrade`) at the next maintenance window.", None),
    ("patch_level/reboot_required", "Reboot the host (see /var/run/reboot-required.pkgs for why) at the next maintenance window.", None),
    ("patch_level/security_update_held_back", "Find the pin or NotAutomatic archive that keeps the fix out (`apt-cache policy PACKAGE`), and lower or remove it so the security archive's version becomes the candidate; then `apt-get upgrade`.", None),
    ("patch_level/unattended_upgrades_off", "`apt-get install unattended-upgrades` and enable it: `dpkg-reconfigure -plow unattended-upgrades` (writes APT::Periodic::Unattended-Upgrade \"1\").", UNATTENDED),
    ("patch_level/unattended_upgrades_stale", "Check why unattended-upgrades has not run (`systemctl status apt-daily-upgrade.timer`, /var/log/unattended-upgrades/).", UNATTENDED),
    // --- tls (tls_endpoint and tls_certificate_file) --------------------
    ("tls/chain_order", "Serve the chain in order: the leaf first, then each certificate's issuer (nginx: `ssl_certificate` is the leaf followed by the intermediates).", Some("RFC 8446, section 4.4.2")),
    ("tls/expired", "Renew the certificate now and reload the server; automate renewal (certbot/ACME or the CA's API) with monitoring.", RFC5280),
    ("tls/expiring_soon", "Renew the certificate before it expires and reload the server.", RFC5280),
    ("tls/hsts_missing", "Send `Strict-Transport-Security: max-age=31536000; includeSubDomains` on every HTTPS response (nginx: `add_header Strict-Transport-Security \"max-age=31536000; includeSubDomains\" always;`).", Some("RFC 6797")),
    ("tls/hsts_too_short", "Raise the header's `max-age` to at least `min_hsts_max_age` (six months; a year is usual).", Some("RFC 6797, section 6.1.1")),
    ("tls/no_https_redirect", "Make plain HTTP answer only with a permanent redirect to HTTPS (nginx: `return 301 https://$host$request_uri;` in the port 80 server).", Some("RFC 9110, section 15.4; Papyrs Security Policy item 5")),
    ("tls/weak_cipher", "Offer only AEAD suites with forward secrecy for TLS 1.2 (ECDHE with AES-GCM or ChaCha20-Poly1305; nginx: `ssl_ciphers ECDHE+AESGCM:ECDHE+CHACHA20;`).", BCP195),
    ("tls/weak_cipher_not_probed", "Nothing to fix; set `probe_weak_ciphers: true` where the agent can reach the endpoint to know.", None),
    ("tls/hostname_mismatch", "Issue a certificate whose subjectAltName covers the served name, or correct `server_name`.", Some("RFC 6125")),
    ("tls/incomplete_chain", "Append the CA's intermediate certificate(s) to the served chain (nginx: fullchain.pem in `ssl_certificate`).", Some("RFC 8446, section 4.4.2")),
    ("tls/issuer_mismatch", "Get the certificate from the CA the policy names (e.g. Gandi), or change `issuer_contains` if the policy changed.", Some("Papyrs Security Policy item 2")),
    ("tls/no_certificate", "Configure a certificate on the endpoint (or fix the file path).", None),
    ("tls/no_ocsp_stapling", "Enable OCSP stapling (nginx: `ssl_stapling on; ssl_stapling_verify on;` with a resolver).", Some("RFC 6066, section 8")),
    ("tls/not_yet_valid", "Check the server's clock, or wait until the certificate's not-before date before deploying it.", RFC5280),
    ("tls/old_protocol", "Disable TLS 1.0/1.1 (nginx: `ssl_protocols TLSv1.2 TLSv1.3;`) and reload the server.", BCP195),
    ("tls/old_protocol_not_probed", "Nothing to fix; to know, run the check where it can probe old protocols.", None),
    ("tls/self_signed", "Replace the certificate with one issued by a trusted CA.", None),
    ("tls/unparsable_certificate", "Replace the certificate file with a valid PEM/DER certificate from the CA.", None),
    ("tls/untrusted_chain", "Serve a certificate issued by a CA in the system trust store (or set `ca_file` for a private CA) with its intermediates.", None),
    ("tls/weak_key", "Issue a new certificate with an RSA key of at least 2048 bits or an EC key of at least 256 bits.", Some("NIST SP 800-57 Part 1; BSI TR-02102-2")),
    ("tls/weak_signature", "Reissue the certificate signed with SHA-256 or stronger.", BCP195),
];

/// The remediation family of a check type: `tls` for both TLS types.
fn family(check_type: &str) -> &str {
    match check_type {
        "tls_endpoint" | "tls_certificate_file" => "tls",
        other => other,
    }
}

/// The remediation for `code` of `check_type`, if the table has one.
pub fn for_code(check_type: &str, code: &str) -> Option<Remediation> {
    let fam = family(check_type);
    TABLE.iter().find_map(|(id, text, reference)| {
        let (f, c) = id.split_once('/')?;
        (f == fam && c == code).then_some(Remediation {
            id,
            text,
            reference: *reference,
        })
    })
}

/// Every table entry, for docs.
pub fn all() -> impl Iterator<Item = Remediation> {
    TABLE.iter().map(|(id, text, reference)| Remediation {
        id,
        text,
        reference: *reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::check_types;
    use std::collections::HashSet;

    #[test]
    fn every_code_has_a_remediation() {
        let mut missing = Vec::new();
        for t in check_types() {
            for c in &t.codes {
                match for_code(t.name, c.code) {
                    Some(r) if !r.text.trim().is_empty() => {}
                    _ => missing.push(format!("{}/{}", t.name, c.code)),
                }
            }
        }
        assert!(
            missing.is_empty(),
            "codes without a remediation in rules/src/checks/remediation.rs: {missing:?}"
        );
    }

    #[test]
    fn every_entry_names_a_code_that_exists_once() {
        let codes: HashSet<String> = check_types()
            .iter()
            .flat_map(|t| {
                t.codes
                    .iter()
                    .map(move |c| format!("{}/{}", family(t.name), c.code))
            })
            .collect();
        let mut seen = HashSet::new();
        for r in all() {
            assert!(seen.insert(r.id), "`{}` listed twice", r.id);
            assert!(codes.contains(r.id), "`{}` is not a finding code", r.id);
        }
    }

    #[test]
    fn tls_types_share_their_certificate_entries() {
        let a = for_code("tls_endpoint", "expired");
        let b = for_code("tls_certificate_file", "expired");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert!(for_code("tls_certificate_file", "old_protocol").is_some());
        assert!(for_code("tls_endpoint", "hsts_missing").is_some());
        assert!(for_code("firewall", "expired").is_none());
    }
}
