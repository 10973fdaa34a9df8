#!/usr/bin/env python3
"""Writes the prepared copies of policies/papyrs.yaml the whole-run bench uses.

Only parameters that name paths or a remote host that do not exist on this
machine change; every change is listed in CHANGES (and in
docs/benchmarks/wholerun.md). Each replacement must match exactly as often as
expected, so an edit of papyrs.yaml makes the bench fail instead of silently
benchmarking something else.

usage: prepare_policy.py POLICY BENCH_DIR OUT_FULL OUT_NO_DPKG
"""
import sys

policy, bench, out_full, out_nodpkg = sys.argv[1:5]
B = bench.rstrip("/")

CHANGES = [
    # (old text, new text, expected count, why)
    # SP-1: the endpoint is 127.0.0.1:443 inside the bench's network namespace
    # (unchanged); its certificate comes from the bench's private "Gandi" CA.
    ("          min_protocol: \"1.2\"\n",
     f"          min_protocol: \"1.2\"\n          ca_file: {B}/etc/ssl/papyrs/ca.pem\n", 1,
     "SP-1: trust the bench CA (ca_file added)"),
    # SP-2: the certificate file and its CA.
    ("          path: /etc/ssl/papyrs/fullchain.pem\n",
     f"          path: {B}/etc/ssl/papyrs/fullchain.pem\n          ca_file: {B}/etc/ssl/papyrs/ca.pem\n", 1,
     "SP-2: certificate path under the bench dir, ca_file added"),
    # SP-3 / SP-8: the host's /var/log is kept; the bench's generated web logs
    # are added beside it.
    ("          paths:\n            - /var/log/**/*.log\n",
     f"          paths:\n            - /var/log/**/*.log\n            - {B}/var/log/**/*.log\n", 2,
     "SP-3, SP-8: generated logs added to paths"),
    ("            - /var/log/**/*.log.[0-9]*.gz\n",
     f"            - /var/log/**/*.log.[0-9]*.gz\n            - {B}/var/log/**/*.log.[0-9]\n            - {B}/var/log/**/*.log.[0-9]*.gz\n", 2,
     "SP-3, SP-8: generated rotated logs added to optional_paths"),
    # SP-7: clamd and its database, the uploads dir, nginx config, baseline.
    ("          address: unix:/var/run/clamav/clamd.ctl\n",
     f"          address: unix:{B}/clamav/clamd.ctl\n", 1, "SP-7: clamd socket"),
    ("          database_directory: /var/lib/clamav\n",
     f"          database_directory: {B}/clamav/db\n", 1, "SP-7: clamd database directory"),
    ("          scan_paths: [/usr/local/bin, /srv/papyrs/uploads]\n",
     f"          scan_paths: [/usr/local/bin, {B}/data/srv/papyrs/uploads]\n", 1, "SP-7: uploads dir"),
    ("          paths: [/usr/local/bin, /etc/nginx]\n          baseline: /var/lib/vigil/baseline-sp7.json\n",
     f"          paths: [/usr/local/bin, {B}/etc/nginx]\n          baseline: {B}/var/lib/vigil/baseline-sp7.json\n", 1,
     "SP-7: nginx config dir and baseline file"),
    # BK-1..3: the local repository and, for the sftp backup server (not
    # reachable from here), a second local repository.
    ("location: /srv/backup/restic-local, password_file: /etc/vigil/restic.pass}",
     f"location: {B}/backup/restic-local, password_file: {B}/etc/vigil/restic.pass}}", 4,
     "BK-1..3: local repository and password file"),
    ("location: \"sftp:backup@backup-1.papyrs.internal:/restic\", password_file: /etc/vigil/restic.pass}",
     f"location: {B}/backup/restic-remote, password_file: {B}/etc/vigil/restic.pass, site: backup-1}}", 4,
     "BK-1..3: the sftp repository replaced by a second local one (site: backup-1)"),
    # GDPR-4: skipped with no closure pending; paths changed so nothing on the
    # host could be touched even if it ran.
    ("{repository: /srv/backup/restic-local, password_file: /etc/vigil/restic.pass, delete: forget}",
     f"{{repository: {B}/backup/restic-local, password_file: {B}/etc/vigil/restic.pass, delete: forget}}", 1,
     "GDPR-4: local repository"),
    ("{repository: /srv/backup/restic-offline, password_file: /etc/vigil/restic-offline.pass, delete: forget}",
     f"{{repository: {B}/backup/restic-offline, password_file: {B}/etc/vigil/restic.pass, delete: forget}}", 1,
     "GDPR-4: offline repository"),
    # BK-4: the monitor DSN (the primary inside the namespace).
    ("            dsn_file: /etc/vigil/pg-monitor.dsn\n",
     f"            dsn_file: {B}/etc/vigil/pg-monitor.dsn\n", 1, "BK-4: DSN file"),
]

text = open(policy, encoding="utf-8").read()
for old, new, count, why in CHANGES:
    n = text.count(old)
    if n != count:
        sys.exit(f"prepare_policy: `{why}`: expected {count} match(es) of {old!r}, found {n}; "
                 "papyrs.yaml changed: update tests/data/wholerun/prepare_policy.py")
    text = text.replace(old, new)
open(out_full, "w", encoding="utf-8").write(text)

old = "          dpkg_verify: true\n"
if text.count(old) != 1:
    sys.exit("prepare_policy: no single `dpkg_verify: true` in SP-7")
# `full_pass_every` belongs to dpkg_verify: without it, validation refuses it.
full_pass = "          full_pass_every: 24h\n"
if text.count(full_pass) != 1:
    sys.exit("prepare_policy: no single `full_pass_every: 24h` in SP-7")
nodpkg = text.replace(old, "          dpkg_verify: false\n").replace(full_pass, "")
open(out_nodpkg, "w", encoding="utf-8").write(nodpkg)
for _, _, _, why in CHANGES:
    print(f"  - {why}")
