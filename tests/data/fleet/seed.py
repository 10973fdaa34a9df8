#!/usr/bin/env python3
"""Seeds a running vigil-reporter with a fleet for the view benchmarks
(issue 22): N hosts enrolled and reporting through the API, and 30 days of
daily roll-ups.

What is seeded how (30 days x hourly x 10,000 hosts would be 7.2 M reports,
about 50 GB at ~7 kB a report, which this shared machine can neither post
nor store in the time given):

  enroll   N hosts through POST /api/v1/enroll (roles granted by a role
           secret: 80 % app, 10 % db, 10 % backup + offline_backup).
  rounds   R hourly rounds through POST /api/v1/reports: every host posts
           one papyrs-shaped report (its role's controls, a few failing with
           findings) finished at now - (R - 1 - r) hours. The reporter keeps
           latest_results / latest_hosts / control_daily itself (ingest).
  rollups  29 earlier days of control_daily written with SQL into the
           reporter's SQLite database (the ingest only writes today's row):
           today's rows copied to each earlier day with a failure rate that
           drifts, so the trend has a shape.
  pad      K copies of every stored report written with SQL (new report ids,
           finished/received K days earlier): the
           "stored reports" the views must not read. Used to measure the views
           at two report counts.

Usage:
  seed.py enroll  BASE SECRET N TOKENS.tsv
  seed.py rounds  BASE TOKENS.tsv R [THREADS]
  seed.py rollups DB_PATH
  seed.py pad     DB_PATH K
"""
import http.client
import json
import sqlite3
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import datetime, timedelta, timezone

ROLE_CONTROLS = {
    # control -> the roles it applies to (policies/papyrs.yaml); absent: all
    "SP-1": {"app"}, "SP-2": {"app"}, "GDPR-5": {"app"},
    "BK-1": {"backup", "offline_backup"}, "BK-2": {"backup", "offline_backup"},
    "BK-3": {"backup"},
}
CONTROLS = [
    ("SP-1", "tls_endpoint"), ("SP-2", "admin_access"), ("SP-3", "password_storage"),
    ("SP-4", "patch_level"), ("SP-5", "firewall"), ("SP-6", "admin_access"),
    ("SP-7", "admin_access"), ("SP-8", "attestation"), ("SP-9", "attestation"),
    ("SP-10", "attestation"), ("GDPR-1", "attestation"), ("GDPR-2", "attestation"),
    ("GDPR-3", "attestation"), ("GDPR-4", "erasure"), ("GDPR-5", "portable_export"),
    ("BK-1", "backup_freshness"), ("BK-2", "backup_freshness"), ("BK-3", "backup_freshness"),
    ("BK-4", "mirror_lag"),
]


def roles_of(i):
    k = i % 10
    if k < 8:
        return "app", ["app"]
    if k == 8:
        return "db", ["db"]
    return "backup", ["backup", "offline_backup"]


def host_name(i):
    return "%s-%05d" % (roles_of(i)[0], i)


def conn_for(base):
    u = urllib.parse.urlparse(base)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=60)


def post(conn, path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    conn.request("POST", path, body=json.dumps(body), headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def enroll(base, secret, n, out):
    lock = threading.Lock()
    rows = {}

    def work(lo, hi):
        c = conn_for(base)
        for i in range(lo, hi):
            _, roles = roles_of(i)
            s, data = post(c, "/api/v1/enroll", {"secret": secret, "host": host_name(i),
                                                 "roles": roles, "interval_secs": 3600})
            if s != 201:
                raise SystemExit("enroll %s: %s %s" % (host_name(i), s, data[:200]))
            with lock:
                rows[i] = json.loads(data)["token"]

    threads = [threading.Thread(target=work, args=(t * n // 8, (t + 1) * n // 8)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        for i in range(n):
            f.write("%s\t%s\n" % (host_name(i), rows[i]))


def check(cid, ty, status, findings):
    return {"id": cid.lower() + "-1", "type": ty, "status": status,
            "summary": "%d finding(s)" % len(findings) if findings else "ok",
            "findings": findings, "evidence": {}, "duration_ms": 3}


def report(i, host, finished, rnd):
    role, roles = roles_of(i)
    controls = []
    summary = {"pass": 0, "fail": 0, "error": 0, "attested": 0, "skipped": 0, "waived": 0, "unknown": 0}
    for cid, ty in CONTROLS:
        scope = ROLE_CONTROLS.get(cid)
        if scope and not scope.intersection(roles):
            continue
        findings, status = [], "pass"
        h = (i * 2654435761 + sum(map(ord, cid)) * 7919) % 1000
        if cid == "SP-5" and h < 30:
            status = "fail"
            findings = [{"code": "port_not_allowed", "severity": "high", "subject": "0.0.0.0:9200",
                         "message": "tcp/9200 (elasticsearch) accepts connections from anywhere"}]
        elif cid == "SP-4" and (h + rnd) % 100 == 0:
            status = "fail"
            findings = [{"code": "security_update_pending", "severity": "high", "subject": p,
                         "message": "%s has a pending security update" % p} for p in ("openssl", "libc6", "sudo")]
        elif cid == "SP-7" and h < 5:
            status = "error"
        elif ty == "attestation":
            status = "pass"
        cstatus = {"fail": "fail", "error": "error"}.get(status, "attested" if ty == "attestation" else "pass")
        summary[cstatus] += 1
        controls.append({"id": cid, "title": cid + " title", "status": cstatus,
                         "checks": [check(cid, ty, status, findings)]})
    t = finished.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (finished.microsecond // 1000)
    return {"schema": "vigil.report/v1", "report_id": str(uuid.uuid4()),
            "agent": {"host": host, "version": "0.1.0"},
            "policy": {"id": "papyrs-security", "version": "2017-11-17.1", "sha256": "b" * 64},
            "started_at": t, "finished_at": t, "controls": controls, "summary": summary}


def rounds(base, tokens, r, threads=16):
    hosts = [line.rstrip("\n").split("\t") for line in open(tokens)]
    now = datetime.now(timezone.utc)
    for rnd in range(r):
        at = now - timedelta(hours=r - 1 - rnd)
        t0 = time.time()
        errors = []

        def work(lo, hi):
            c = conn_for(base)
            for i in range(lo, hi):
                host, token = hosts[i]
                s, data = post(c, "/api/v1/reports", report(i, host, at - timedelta(seconds=i % 600), rnd), token)
                if s not in (200, 201):
                    errors.append((host, s, data[:200]))

        n = len(hosts)
        ts = [threading.Thread(target=work, args=(k * n // threads, (k + 1) * n // threads)) for k in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        if errors:
            raise SystemExit("round %d: %d errors, first %r" % (rnd, len(errors), errors[0]))
        print("round %d/%d: %d reports in %.1f s" % (rnd + 1, r, n, time.time() - t0), flush=True)


def rollups(db):
    c = sqlite3.connect(db, timeout=60)
    day = 86_400_000
    today = c.execute("SELECT MAX(day) FROM control_daily").fetchone()[0]
    rows = c.execute("SELECT control_id, status, hosts FROM control_daily WHERE day = ?", (today,)).fetchall()
    for back in range(1, 30):
        d = today - back * day
        # a failure rate drifting down towards today: more fails 30 days ago
        extra = 1.0 + back / 15.0
        by = {}
        for cid, status, hosts in rows:
            by.setdefault(cid, {})[status] = hosts
        for cid, st in by.items():
            total = sum(st.values())
            fail = min(total, int(st.get("fail", 0) * extra))
            moved = fail - st.get("fail", 0)
            new = dict(st)
            new["fail"] = fail
            good = "attested" if "attested" in new else "pass"
            new[good] = max(0, new.get(good, 0) - moved)
            for status, hosts in new.items():
                if hosts:
                    c.execute("INSERT OR REPLACE INTO control_daily (control_id, day, status, hosts, fresh) VALUES (?,?,?,?,?)",
                              (cid, d, status, hosts, hosts))
    c.commit()
    print("control_daily rows:", c.execute("SELECT COUNT(*) FROM control_daily").fetchone()[0])


def pad(db, k):
    c = sqlite3.connect(db, timeout=60)
    hour = 3_600_000
    for j in range(1, k + 1):
        shift = j * hour * 24  # a day apart, older than every real report
        c.execute("""INSERT INTO reports (report_id, agent_id, host, policy_id, policy_version, policy_sha256,
                     started_at, finished_at, received_at, summary, body, body_zstd)
                     SELECT report_id || '-pad%d', agent_id, host, policy_id, policy_version, policy_sha256,
                     started_at - ?, finished_at - ?, received_at - ?, summary, body, body_zstd
                     FROM reports WHERE report_id NOT LIKE '%%-pad%%'""" % j, (shift, shift, shift))
        c.commit()
        print("pad %d/%d: %d stored reports" % (j, k, c.execute("SELECT COUNT(*) FROM reports").fetchone()[0]), flush=True)


if __name__ == "__main__":
    a = sys.argv[1:]
    if not a:
        raise SystemExit(__doc__)
    if a[0] == "enroll":
        enroll(a[1], a[2], int(a[3]), a[4])
    elif a[0] == "rounds":
        rounds(a[1], a[2], int(a[3]), int(a[4]) if len(a) > 4 else 16)
    elif a[0] == "rollups":
        rollups(a[1])
    elif a[0] == "pad":
        pad(a[1], int(a[2]))
    else:
        raise SystemExit(__doc__)
