#!/usr/bin/env python3
"""Hostile load against a vigil-reporter on loopback (standard library only).

Starts its own reporter (plain HTTP on 127.0.0.1, a throwaway data directory,
the default intake limits), then runs bounded phases one after the other:

  intake    floods POST /api/v1/incidents and POST /report-incident from 20
            loopback source addresses: valid submissions, honeypot hits,
            malformed JSON and forms, wrong content types, bodies declared
            or sent beyond the intake limit (chunked, no length).
  reports   floods POST /api/v1/reports: valid reports of 4 enrolled agents,
            duplicates, another host's report, unknown / malformed / missing /
            staff tokens, garbage JSON, a few bodies beyond the 4 MiB limit.
  slowloris many connections that send their request headers a byte at a
            time, connections that send nothing, connections that go idle
            after one request, and slow bodies; the server must close them.

A separate process probes GET /healthz every 50 ms (new connection each time)
from the start of the first phase to the end of the last (the load generator
runs at nice 10, the reporter and the probe at the caller's priority); every probe must be
answered 200 within --probe-limit-ms (100 ms). Afterwards the store must hold
exactly the incidents and reports that were legitimately accepted.

Prints a summary and writes it as JSON (--json FILE). Exits 0 when every
assertion holds, 1 otherwise (each failure printed), 2 when it cannot run.

    python3 tests/hostile/load.py --reporter target/debug/vigil-reporter \\
        --agent target/debug/vigil-agent --mode short
"""

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "hostile-load-enroll-secret-0123456789"

MODES = {
    # seconds per phase, concurrency, slowloris connections
    "short": dict(intake=4.0, reports=5.0, slowloris=13.0, workers=24, slow_conns=150),
    "full": dict(intake=20.0, reports=25.0, slowloris=35.0, workers=48, slow_conns=800),
}


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- the probe (its own process, so the load generator cannot delay it) -------


def probe_loop(port, interval, stop, out):
    samples = []
    req = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    next_at = time.monotonic()
    while not stop.is_set():
        t0 = time.monotonic()
        status = 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2.0) as s:
                s.sendall(req)
                buf = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    buf += chunk
                line = buf.split(b"\r\n", 1)[0].split()
                status = int(line[1]) if len(line) > 1 else 0
        except OSError:
            status = -1
        t1 = time.monotonic()
        samples.append((time.time(), (t1 - t0) * 1000.0, status))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    out.send(samples)
    out.close()


# --- a minimal HTTP/1.1 client over asyncio streams ----------------------------


async def http(port, method, path, headers=None, body=b"", src=None, chunked=False, timeout=15.0):
    """One request on a new connection; returns (status, body) or (-1, error)."""
    local = (src, 0) if src else None
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection("127.0.0.1", port, local_addr=local), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        return -1, f"connect: {e!r}"
    try:
        h = {"Host": "127.0.0.1", "Connection": "close"}
        h.update(headers or {})
        if chunked:
            h["Transfer-Encoding"] = "chunked"
        elif "Content-Length" not in h and (body or method == "POST"):
            h["Content-Length"] = str(len(body))
        head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        writer.write(head.encode())
        if chunked:
            for i in range(0, len(body), 8192):
                part = body[i:i + 8192]
                writer.write(b"%x\r\n" % len(part) + part + b"\r\n")
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(body)
        try:
            await asyncio.wait_for(writer.drain(), timeout)
        except (ConnectionError, OSError):
            pass  # the server may answer (413) and close before reading it all
        data = await asyncio.wait_for(reader.read(), timeout)
    except (OSError, asyncio.TimeoutError) as e:
        data = b""
        err = repr(e)
    else:
        err = None
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except (OSError, asyncio.TimeoutError):
            pass
    if not data.startswith(b"HTTP/1."):
        return -1, err or "no response"
    status = int(data.split(b" ", 2)[1])
    body_out = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return status, body_out


class Tally:
    def __init__(self):
        self.counts = {}
        self.total = 0
        self.errors = []

    def add(self, kind, status):
        self.counts.setdefault(kind, {})
        self.counts[kind][str(status)] = self.counts[kind].get(str(status), 0) + 1
        self.total += 1


# --- phases ---------------------------------------------------------------------

SOURCES = [f"127.0.0.{i}" for i in range(2, 22)]
OVERSIZED = ("chunked_huge", "declared_huge", "huge")


def incident_json(**extra):
    d = {"summary": f"hostile load {uuid.uuid4().hex[:8]}", "description": "a flood, on purpose",
         "contact": "load@example.invalid"}
    d.update(extra)
    return json.dumps(d).encode()


async def intake_phase(port, seconds, workers, tally, legit):
    deadline = time.monotonic() + seconds
    rng = random.Random(11)

    async def worker(w):
        while time.monotonic() < deadline:
            src = rng.choice(SOURCES)
            kind = rng.choice(["valid", "valid", "form", "honeypot", "bad_json", "bad_form",
                               "wrong_type", "declared_huge", "chunked_huge", "unknown_field"])
            jh = {"Content-Type": "application/json"}
            fh = {"Content-Type": "application/x-www-form-urlencoded"}
            if kind == "valid":
                st, _ = await http(port, "POST", "/api/v1/incidents", jh, incident_json(), src)
                if st == 201:
                    legit["incidents"] += 1
            elif kind == "form":
                body = b"summary=form+flood&description=hostile+load&contact=x"
                st, _ = await http(port, "POST", "/report-incident", fh, body, src)
                if st == 200:
                    legit["incidents"] += 1
            elif kind == "honeypot":
                st, _ = await http(port, "POST", "/api/v1/incidents", jh,
                                   incident_json(website="http://spam.example"), src)
            elif kind == "bad_json":
                st, _ = await http(port, "POST", "/api/v1/incidents", jh, b'{"summary": "x", "descr', src)
            elif kind == "bad_form":
                st, _ = await http(port, "POST", "/report-incident", fh, b"summary=%ZZ&description=%C3%28", src)
            elif kind == "wrong_type":
                st, _ = await http(port, "POST", "/api/v1/incidents", {"Content-Type": "text/plain"},
                                   incident_json(), src)
            elif kind == "declared_huge":
                # declares 10 MB, sends 64 KiB: refused on the header
                st, _ = await http(port, "POST", "/api/v1/incidents",
                                   {**jh, "Content-Length": "10000000"}, b"x" * 65536, src)
            elif kind == "chunked_huge":
                st, _ = await http(port, "POST", "/api/v1/incidents", jh,
                                   b'{"summary": "' + b"A" * 200_000 + b'"}', src, chunked=True)
            else:
                st, _ = await http(port, "POST", "/api/v1/incidents", jh, incident_json(admin=True), src)
            tally.add(kind, st)

    await asyncio.gather(*(worker(w) for w in range(workers)))


async def reports_phase(port, seconds, workers, tally, legit, template, tokens, staff):
    deadline = time.monotonic() + seconds
    rng = random.Random(13)
    hosts = list(tokens)
    sent = {h: [] for h in hosts}

    def report_for(host):
        r = json.loads(json.dumps(template))
        r["report_id"] = str(uuid.uuid4())
        r["agent"]["host"] = host
        return r

    def fake_token(prefix):
        return f"{prefix}_{os.urandom(8).hex()}_{'A' * 43}"

    async def worker(w):
        while time.monotonic() < deadline:
            kind = rng.choice(["valid", "valid", "valid", "duplicate", "other_host", "unknown_token",
                               "malformed_token", "no_token", "staff_token", "garbage", "huge"])
            host = rng.choice(hosts)
            auth = {"Authorization": f"Bearer {tokens[host]}", "Content-Type": "application/json"}
            if kind == "valid":
                if len(sent[host]) >= 950:  # the listing shows at most 1000
                    continue
                r = report_for(host)
                st, _ = await http(port, "POST", "/api/v1/reports", auth, json.dumps(r).encode())
                if st == 201:
                    sent[host].append(r)
                    legit["reports"] += 1
            elif kind == "duplicate":
                if not sent[host]:
                    continue
                st, _ = await http(port, "POST", "/api/v1/reports", auth,
                                   json.dumps(rng.choice(sent[host])).encode())
            elif kind == "other_host":
                other = hosts[(hosts.index(host) + 1) % len(hosts)]
                st, _ = await http(port, "POST", "/api/v1/reports", auth,
                                   json.dumps(report_for(other)).encode())
            elif kind in ("unknown_token", "malformed_token", "no_token", "staff_token"):
                h = {"Content-Type": "application/json"}
                if kind == "unknown_token":
                    h["Authorization"] = f"Bearer {fake_token('vgl')}"
                elif kind == "malformed_token":
                    h["Authorization"] = "Bearer " + rng.choice(["vgl_", "x" * 5000, "vgl_zz_zz", "' OR 1=1 --"])
                elif kind == "staff_token":
                    h["Authorization"] = f"Bearer {staff}"
                st, _ = await http(port, "POST", "/api/v1/reports", h, json.dumps(report_for(host)).encode())
            elif kind == "garbage":
                st, _ = await http(port, "POST", "/api/v1/reports", auth, os.urandom(512))
            else:
                if tally.counts.get("huge", {}).get("413", 0) >= 6:
                    continue
                st, _ = await http(port, "POST", "/api/v1/reports", auth,
                                   b'{"schema": "' + b"A" * (5 * 1024 * 1024) + b'"}')
            tally.add(kind, st)

    await asyncio.gather(*(worker(w) for w in range(workers)))
    return sent


async def slowloris_phase(port, seconds, conns, tally, result):
    """Each connection trickles its headers; we note when the server closes it."""
    start = time.monotonic()
    deadline = start + seconds
    closed_after = []
    still_open = 0
    opened = 0
    refused = 0

    async def one(i, style):
        nonlocal still_open, opened, refused
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            refused += 1
            return
        opened += 1
        t0 = time.monotonic()
        if style == "headers":
            data = (b"POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    + b"X-Pad: " + b"a" * 4000)
        elif style == "idle_after_request":
            data = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        elif style == "slow_body":
            data = (b"POST /api/v1/incidents HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 4000\r\n\r\n" + b"{" + b" " * 3998 + b"}")
        else:  # silent
            data = b""
        pos = 0
        closed = False
        try:
            if style == "idle_after_request":
                writer.write(data)
                await writer.drain()
                await reader.readuntil(b"\r\n\r\n")
                pos = len(data)
            while time.monotonic() < deadline:
                if pos < len(data):
                    step = 1 if style != "slow_body" or pos > 200 else 200
                    writer.write(data[pos:pos + step])
                    pos += step
                    await writer.drain()
                try:
                    chunk = await asyncio.wait_for(reader.read(4096), 0.25)
                except asyncio.TimeoutError:
                    continue
                if chunk:
                    # the server answered (408 for a slow body): read on until it closes
                    if chunk.startswith(b"HTTP/1."):
                        tally.add(f"slow_{style}_answer", int(chunk.split(b" ", 2)[1]))
                    continue
                closed = True
                break
        except (OSError, asyncio.IncompleteReadError):
            closed = True
        if closed:
            closed_after.append(time.monotonic() - t0)
            tally.add(f"slow_{style}", "closed_by_server")
        else:
            still_open += 1
            tally.add(f"slow_{style}", "still_open_at_end")
        writer.close()

    styles = ["headers"] * 6 + ["silent"] * 2 + ["idle_after_request", "slow_body"]
    tasks = []
    for i in range(conns):
        tasks.append(asyncio.create_task(one(i, styles[i % len(styles)])))
        await asyncio.sleep(0.002)
    await asyncio.gather(*tasks)
    result.update(opened=opened, refused=refused, still_open=still_open,
                  closed=len(closed_after),
                  max_close_s=round(max(closed_after), 2) if closed_after else None)


# --- driver ---------------------------------------------------------------------


def percentile(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def staff_get(port, token, path):
    async def go():
        return await http(port, "GET", path, {"Authorization": f"Bearer {token}"})
    st, body = asyncio.run(go())
    if st != 200:
        raise RuntimeError(f"GET {path}: {st} {body[:200]!r}")
    return json.loads(body)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reporter", default=os.path.join(ROOT, "target/debug/vigil-reporter"))
    ap.add_argument("--agent", default=os.path.join(ROOT, "target/debug/vigil-agent"))
    ap.add_argument("--mode", choices=sorted(MODES), default="short")
    ap.add_argument("--probe-limit-ms", type=float, default=100.0)
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--keep", action="store_true", help="keep the data directory")
    args = ap.parse_args()
    m = MODES[args.mode]
    for b in (args.reporter, args.agent):
        if not os.access(b, os.X_OK):
            print(f"load.py: `{b}` is not an executable; build the workspace first", file=sys.stderr)
            return 2

    work = tempfile.mkdtemp(prefix="vigil-hostile-load.")
    data = os.path.join(work, "data")
    port = free_port()
    env = dict(os.environ, VIGIL_ENROLL_SECRET=SECRET, VIGIL_LOG="warn")
    env.pop("VIGIL_DATABASE_URL", None)
    log = open(os.path.join(work, "reporter.log"), "wb")
    rep = subprocess.Popen([args.reporter, "serve", "--plain-http", "--listen", f"127.0.0.1:{port}",
                            "--data", data], env=env, stdout=subprocess.DEVNULL, stderr=log)
    failures = []
    summary = {"mode": args.mode, "phases": {}}
    try:
        for _ in range(300):
            if rep.poll() is not None:
                print("load.py: the reporter exited at start", file=sys.stderr)
                return 2
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.1)
        staff = subprocess.run([args.reporter, "user", "add", "load-admin", "--role", "admin", "--data", data],
                               env=env, capture_output=True, check=True).stdout.decode().strip()
        template = json.loads(subprocess.run(
            [args.agent, "check", "--policy", os.path.join(ROOT, "tests/data/daemon/policy.yaml"),
             "--format", "json"], capture_output=True, check=False).stdout)
        tokens = {}

        async def enroll_all():
            for i in range(4):
                host = f"load-{i}"
                st, body = await http(port, "POST", "/api/v1/enroll", {"Content-Type": "application/json"},
                                      json.dumps({"secret": SECRET, "host": host}).encode())
                if st != 201:
                    raise RuntimeError(f"enroll {host}: {st} {body!r}")
                tokens[host] = json.loads(body)["token"]
        asyncio.run(enroll_all())

        stop = mp.Event()
        rx, tx = mp.Pipe(duplex=False)
        probe = mp.Process(target=probe_loop, args=(port, 0.05, stop, tx), daemon=True)
        probe.start()
        # The attackers share this machine's cores with the reporter and the
        # probe; on a real network they would not. Lower their priority so the
        # probe measures the reporter, not the scheduler.
        os.nice(10)
        time.sleep(0.5)  # a quiet baseline
        legit = {"incidents": 0, "reports": 0}
        bounds = {}

        def run_phase(name, coro_fn):
            t = Tally()
            t0 = time.time()
            extra = asyncio.run(coro_fn(t))
            t1 = time.time()
            bounds[name] = (t0, t1)
            summary["phases"][name] = {
                "seconds": round(t1 - t0, 2),
                "requests": t.total,
                "requests_per_s": round(t.total / max(t1 - t0, 1e-9), 1),
                "statuses": t.counts,
            }
            return extra

        run_phase("intake", lambda t: intake_phase(port, m["intake"], m["workers"], t, legit))
        sent = run_phase("reports", lambda t: reports_phase(port, m["reports"], m["workers"], t, legit,
                                                             template, tokens, staff))
        slow = {}
        run_phase("slowloris", lambda t: slowloris_phase(port, m["slowloris"], m["slow_conns"], t, slow))
        summary["phases"]["slowloris"]["connections"] = slow
        time.sleep(0.3)
        stop.set()
        samples = rx.recv()
        probe.join(5)

        # --- the probes ---
        lat = [s[1] for s in samples]
        bad = [s for s in samples if s[2] != 200]
        slow_probes = [s for s in samples if s[1] > args.probe_limit_ms]
        summary["probe"] = {
            "count": len(samples),
            "failed": len(bad),
            "over_limit": len(slow_probes),
            "limit_ms": args.probe_limit_ms,
            "p50_ms": round(percentile(lat, 50), 2) if lat else None,
            "p99_ms": round(percentile(lat, 99), 2) if lat else None,
            "max_ms": round(max(lat), 2) if lat else None,
        }
        for name, (t0, t1) in bounds.items():
            ph = [s[1] for s in samples if t0 <= s[0] <= t1]
            summary["phases"][name]["probe"] = {
                "count": len(ph),
                "p99_ms": round(percentile(ph, 99), 2) if ph else None,
                "max_ms": round(max(ph), 2) if ph else None,
            }
        if len(samples) < 20:
            failures.append(f"only {len(samples)} probes were made")
        if bad:
            failures.append(f"{len(bad)} /healthz probes failed (status {sorted({s[2] for s in bad})})")
        if slow_probes:
            worst = max(s[1] for s in slow_probes)
            failures.append(f"{len(slow_probes)} /healthz probes took over {args.probe_limit_ms:.0f} ms "
                            f"(worst {worst:.1f} ms)")

        # --- what the store holds ---
        inc = staff_get(port, staff, "/api/v1/incidents?limit=1000")["incidents"]
        summary["stored"] = {"incidents": len(inc), "incidents_accepted": legit["incidents"]}
        if len(inc) != legit["incidents"]:
            failures.append(f"the store holds {len(inc)} incidents; {legit['incidents']} were accepted")
        if len(inc) > 10 * len(SOURCES):
            failures.append(f"{len(inc)} incidents from {len(SOURCES)} addresses: the hour limit did not hold")
        stored_reports = 0
        for host, reps in sent.items():
            got = staff_get(port, staff, f"/api/v1/reports?host={host}&limit=1000")["reports"]
            ids = [r["report_id"] for r in got]
            stored_reports += len(ids)
            if len(set(ids)) != len(ids):
                failures.append(f"{host}: a report stored twice")
            if set(ids) != {r["report_id"] for r in reps}:
                failures.append(f"{host}: stored {len(ids)} reports, {len(reps)} were accepted "
                                f"({len(set(ids) - {r['report_id'] for r in reps})} unexpected)")
        summary["stored"].update(reports=stored_reports, reports_accepted=legit["reports"])
        if stored_reports != legit["reports"]:
            failures.append(f"the store holds {stored_reports} reports; {legit['reports']} were accepted")

        # --- statuses that must never appear, and slow connections left open ---
        for name, ph in summary["phases"].items():
            for kind, sts in ph["statuses"].items():
                for st in sts:
                    if st.startswith("5"):
                        failures.append(f"{name}/{kind}: {sts[st]} answers with status {st}")
                    # An oversized body is refused before it is read whole; the
                    # server closes while the client still sends, and the kernel
                    # may reset the connection before the 413 is read: allowed.
                    if st == "-1" and not kind.startswith("slow_") and kind not in OVERSIZED:
                        failures.append(f"{name}/{kind}: {sts[st]} requests got no answer")
        sl = summary["phases"]["slowloris"]["statuses"]
        for style in ("slow_headers", "slow_silent", "slow_idle_after_request"):
            left = sl.get(style, {}).get("still_open_at_end", 0)
            if left:
                failures.append(f"{left} `{style}` connections were still open after "
                                f"{m['slowloris']:.0f} s: the server does not time out slow clients")
        # A slow body is bounded by the 30 s request timeout (408).
        if m["slowloris"] > 32 and sl.get("slow_slow_body", {}).get("still_open_at_end", 0):
            failures.append("slow bodies were still being read after 32 s")
        if rep.poll() is not None:
            failures.append(f"the reporter died (exit {rep.returncode})")
        reporter_log = open(os.path.join(work, "reporter.log"), encoding="utf-8", errors="replace").read()
        if "panicked" in reporter_log:
            failures.append("the reporter panicked: " + reporter_log[reporter_log.index("panicked"):][:300])
    finally:
        rep.terminate()
        try:
            rep.wait(10)
        except subprocess.TimeoutExpired:
            rep.kill()
        log.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"data kept in {work}", file=sys.stderr)

    summary["failures"] = failures
    text = json.dumps(summary, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
