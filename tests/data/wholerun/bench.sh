#!/usr/bin/env bash
# Whole-run benchmark (issue 11): `vigil-agent check --policy policies/papyrs.yaml`
# (release build) on a prepared host, beside `lynis audit system --quick`.
#
#   bash tests/data/wholerun/bench.sh          # RUNS=3 of each, as root
#
# Environment: RUNS (default 3), LYNIS_RUNS (default 2, 0 skips Lynis),
# AGENT (default target/release/vigil-agent, built here if missing),
# BENCH_DIR (default /tmp/vigil-wholerun), BENCH_NETNS (default vigil-wholerun: set
# another to run two benches side by side), KEEP=1 leaves the prepared host up.
#
# What it prepares (and stops/removes on exit, also on failure or Ctrl-C):
# - network namespace `vigil-wholerun` with the nftables ruleset of
#   ruleset.nft (the `firewall` check reads the kernel of the namespace it
#   runs in, so the agent runs under `ip netns exec`);
# - in it, `openssl s_server` on 127.0.0.1:443 with a chain from a private
#   CA named "Gandi ... (vigil bench)" for papyrs.example;
# - in it, PostgreSQL 15: a primary (127.0.0.1:5432) and two streaming
#   standbys (5433, 5434), as tests/mirror.rs starts them;
# - clamd (Debian clamav-daemon) on a unix socket with a test-written
#   database (EICAR .hdb + one .ndb line), as tests/clamav.rs does;
# - three restic repositories with 7 nightly snapshots each (1 h .. 145 h old)
#   of /srv/papyrs and /var/backups/postgresql (relative to the bench data dir);
# - web/app logs (~60 MB, one gzip'd rotation) and an nginx config dir;
# - the file_integrity baseline (`vigil-agent baseline`).
# The policy is copied with only the paths of those things changed:
# prepare_policy.py lists each change. The host's own /etc/shadow,
# sshd_config, /var/log, dpkg database, /usr/local/bin are checked as they are.
#
# Measured (measure.py): wall, CPU (user+sys of the agent and every helper
# program it ran: restic, nft, ...), the agent's own peak RSS (VmHWM) and the
# largest process of the tree (ru_maxrss). Per-check durations come from the
# JSON report (`duration_ms`; checks run concurrently, 8 at a time).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
WS=$(cd "$HERE/../../.." && pwd)
B=${BENCH_DIR:-/tmp/vigil-wholerun}
NS=${BENCH_NETNS:-vigil-wholerun}
RUNS=${RUNS:-3}
LYNIS_RUNS=${LYNIS_RUNS:-2}
AGENT=${AGENT:-$WS/target/release/vigil-agent}
PGBIN=/usr/lib/postgresql/15/bin

need() { command -v "$1" >/dev/null || { echo "bench needs \`$1\`: apt-get install -y --no-install-recommends $2" >&2; exit 2; }; }
[ "$(id -u)" = 0 ] || { echo "run as root (network namespace, clamd, postgres)" >&2; exit 2; }
need ip iproute2; need nft nftables; need openssl openssl; need clamd clamav-daemon
need restic restic; need runuser util-linux; need python3 python3
python3 -c 'import yaml' 2>/dev/null || { echo "bench needs PyYAML: apt-get install -y --no-install-recommends python3-yaml" >&2; exit 2; }
[ -x $PGBIN/postgres ] || { echo "bench needs PostgreSQL 15: apt-get install -y --no-install-recommends postgresql-15" >&2; exit 2; }
if [ "$LYNIS_RUNS" != 0 ]; then need lynis lynis; fi

pg() { runuser -u postgres -- "$PGBIN/$1" "${@:2}"; }

case "$B" in /tmp/?*|/var/tmp/?*) ;; *) echo "BENCH_DIR must be under /tmp or /var/tmp (it is removed)" >&2; exit 2;; esac

cleanup() {
    set +e
    if [ -f "$B/clamav/clamd.pid.bench" ]; then kill "$(cat "$B/clamav/clamd.pid.bench")" 2>/dev/null; fi
    if [ -f "$B/tls/s_server.pid" ]; then kill "$(cat "$B/tls/s_server.pid")" 2>/dev/null; fi
    for d in standby2 standby1 primary; do
        [ -f "$B/pg/$d/postmaster.pid" ] && ip netns exec $NS runuser -u postgres -- "$PGBIN/pg_ctl" stop -m immediate -D "$B/pg/$d" >/dev/null 2>&1
    done
    ip netns del $NS 2>/dev/null
    rm -rf "$B"
}
# Idempotent: whatever a previous (killed) run left is stopped first.
cleanup
if [ "${KEEP:-0}" != 1 ]; then trap cleanup EXIT; fi
set -e
mkdir -p "$B" && chmod 755 "$B"
echo "== preparing the host under $B"

if [ ! -x "$AGENT" ]; then
    (cd "$WS" && cargo build --release -p vigil-agent --bin vigil-agent)
fi

# --- network namespace + nftables ------------------------------------------
ip netns add $NS
ip -n $NS link set lo up
ip netns exec $NS nft -f "$HERE/ruleset.nft"

# --- TLS: private "Gandi" CA, a 90-day RSA-2048 leaf, s_server on :443 --------
mkdir -p "$B/etc/ssl/papyrs" "$B/tls"
S="$B/etc/ssl/papyrs"
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 -keyout "$B/tls/ca.key" -out "$S/ca.pem" \
    -subj "/C=FR/O=Gandi/CN=Gandi Standard SSL CA 2 (vigil bench)" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$S/privkey.pem" -out "$B/tls/leaf.csr" -subj "/CN=papyrs.example" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:papyrs.example\n' >"$B/tls/leaf.ext"
openssl x509 -req -in "$B/tls/leaf.csr" -CA "$S/ca.pem" -CAkey "$B/tls/ca.key" -CAcreateserial -days 90 -sha256 \
    -extfile "$B/tls/leaf.ext" -out "$S/cert.pem" 2>/dev/null
cat "$S/cert.pem" >"$S/fullchain.pem"
ip netns exec $NS openssl s_server -quiet -accept 127.0.0.1:443 -cert "$S/cert.pem" -key "$S/privkey.pem" \
    -www </dev/null >"$B/tls/s_server.log" 2>&1 &
echo $! >"$B/tls/s_server.pid"

# --- clamd with a test-written database ---------------------------------------
mkdir -p "$B/clamav/db"
echo "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature" >"$B/clamav/db/test.hdb"
echo "Vigil-Bench-Pattern:0:*:$(printf 'vigil-bench-made-up-malware-pattern' | od -An -tx1 | tr -d ' \n')" >"$B/clamav/db/test.ndb"
cat >"$B/clamav/clamd.conf" <<EOF
Foreground yes
LocalSocket $B/clamav/clamd.ctl
DatabaseDirectory $B/clamav/db
TemporaryDirectory $B/clamav
PidFile $B/clamav/clamd.pid
LogFile $B/clamav/clamd.log
SelfCheck 3600
EOF
clamd -c "$B/clamav/clamd.conf" >/dev/null 2>&1 &
echo $! >"$B/clamav/clamd.pid.bench"

# --- data: the site tree, uploads, a database dump, nginx config --------------
D="$B/data"
python3 - "$D" "$B" <<'EOF'
import os, random, sys
d, b = sys.argv[1], sys.argv[2]
rnd = random.Random(11)
for site in range(40):
    p = f"{d}/srv/papyrs/sites/acct-{site:03}"
    os.makedirs(p, exist_ok=True)
    for page in range(25):
        open(f"{p}/page-{page}.md", "w").write(f"# Page {page}\n" + "lorem ipsum dolor sit amet " * rnd.randint(10, 400))
os.makedirs(f"{d}/srv/papyrs/uploads", exist_ok=True)
for i in range(200):  # ~20 MB of uploads for clamd
    open(f"{d}/srv/papyrs/uploads/upload-{i:03}.bin", "wb").write(rnd.randbytes(rnd.randint(20_000, 180_000)))
os.makedirs(f"{d}/var/backups/postgresql", exist_ok=True)
open(f"{d}/var/backups/postgresql/papyrs.sql", "w").write("INSERT INTO pages VALUES (1, 'x');\n" * 20000)
os.makedirs(f"{b}/etc/nginx/sites-enabled", exist_ok=True)
open(f"{b}/etc/nginx/nginx.conf", "w").write("user www-data;\nworker_processes auto;\nhttp { include sites-enabled/*; }\n")
open(f"{b}/etc/nginx/sites-enabled/papyrs", "w").write(
    "server { listen 443 ssl; server_name papyrs.example;\n  ssl_certificate /etc/ssl/papyrs/fullchain.pem;\n  ssl_certificate_key /etc/ssl/papyrs/privkey.pem; }\n")
EOF

# --- logs: nginx access logs and the app log (no secrets in them) -----------
python3 - "$B/var/log" <<'EOF'
import gzip, os, random, sys
root = sys.argv[1]
rnd = random.Random(7)
os.makedirs(f"{root}/nginx", exist_ok=True); os.makedirs(f"{root}/papyrs", exist_ok=True)
paths = ["/", "/login", "/s/acct-{}/page-{}", "/api/v1/pages/{}", "/static/app.{}.js", "/u/{}/avatar.png"]
agents = ["Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1.15", "curl/7.88.1"]
def access(n):
    out = []
    for i in range(n):
        ip = f"203.0.113.{rnd.randint(1, 254)}"
        p = rnd.choice(paths).format(rnd.randint(1, 999), rnd.randint(1, 99))
        out.append(f'{ip} - - [25/Nov/2026:{i % 24:02}:{i % 60:02}:{(i * 7) % 60:02} +0000] "GET {p}?page={i} HTTP/1.1" '
                   f'{rnd.choice([200, 200, 200, 304, 404])} {rnd.randint(200, 90000)} "https://papyrs.example/" "{rnd.choice(agents)}"\n')
    return "".join(out)
open(f"{root}/nginx/access.log", "w").write(access(200_000))      # ~35 MB
open(f"{root}/nginx/access.log.1", "w").write(access(60_000))
with gzip.open(f"{root}/nginx/access.log.2.gz", "wt") as f:
    f.write(access(60_000))
def request_id():
    # 16 hex digits with at least one letter: an all-digit id can be a
    # Luhn-valid "card number" (the card detector rightly flags those).
    while True:
        r = f"{rnd.getrandbits(64):016x}"
        if not r.isdigit():
            return r
app = []
for i in range(80_000):
    app.append(f"2026-11-25T{i % 24:02}:{i % 60:02}:00Z INFO papyrs.web request_id={request_id()} "
               f"account=acct-{rnd.randint(1, 999):03} user={rnd.randint(1, 9999)} action=page.save ms={rnd.randint(3, 900)}\n")
open(f"{root}/papyrs/app.log", "w").write("".join(app))
open(f"{root}/nginx/error.log", "w").write("2026/11/25 03:00:00 [notice] 1#1: signal process started\n" * 100)
EOF

# --- restic: three repositories, 7 nightly sets each -------------------------
mkdir -p "$B/etc/vigil" "$B/backup" "$B/cache"
printf 'vigil-wholerun-bench-restic-password\n' >"$B/etc/vigil/restic.pass"
chmod 600 "$B/etc/vigil/restic.pass"
export RESTIC_PASSWORD_FILE="$B/etc/vigil/restic.pass" RESTIC_CACHE_DIR="$B/cache" TZ=UTC
now=$(date -u +%s)
for repo in restic-local restic-remote restic-offline; do
    restic -r "$B/backup/$repo" init --quiet
    for k in 6 5 4 3 2 1 0; do
        t=$(date -u -d "@$((now - (1 + 24 * k) * 3600))" '+%Y-%m-%d %H:%M:%S')
        (cd "$D" && restic -r "$B/backup/$repo" backup --quiet --host papyrs --time "$t" srv var >/dev/null)
    done
done
unset RESTIC_PASSWORD_FILE

# --- PostgreSQL 15: primary and two streaming standbys in the namespace ------
mkdir -p "$B/pg" && chown postgres:postgres "$B/pg"
pgconf() { # data port extra
    printf "\nport = %s\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nwal_level = replica\nmax_wal_senders = 6\nmax_replication_slots = 6\nhot_standby = on\nwal_receiver_status_interval = 1s\nfsync = off\nsynchronous_commit = off\nshared_buffers = 16MB\n%s" \
        "$2" "$B/pg" "$3" >>"$1/postgresql.auto.conf"
}
nspg() { ip netns exec $NS runuser -u postgres -- "$PGBIN/$1" "${@:2}"; }
pg initdb -D "$B/pg/primary" -A trust -U postgres --no-sync >/dev/null
pgconf "$B/pg/primary" 5432 ""
nspg pg_ctl start -w -t 30 -D "$B/pg/primary" -l "$B/pg/primary.log" >/dev/null
for n in 1 2; do
    nspg pg_basebackup -h 127.0.0.1 -p 5432 -U postgres -D "$B/pg/standby$n" -R -X stream -C -S "vigil_slot$n" --no-sync
    pgconf "$B/pg/standby$n" $((5432 + n)) "primary_conninfo = 'host=127.0.0.1 port=5432 user=postgres application_name=papyrs-standby-$n'
"
    nspg pg_ctl start -w -t 30 -D "$B/pg/standby$n" -l "$B/pg/standby$n.log" >/dev/null
done
nspg psql -h 127.0.0.1 -p 5432 -U postgres -XAtq -c \
    "CREATE TABLE pages (id serial PRIMARY KEY, account text, body text); INSERT INTO pages (account, body) SELECT 'acct-' || (g % 40), 'page ' || g FROM generate_series(1, 10000) g" >/dev/null
for _ in $(seq 150); do
    c=$(nspg psql -h 127.0.0.1 -p 5432 -U postgres -XAtq -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming' AND replay_lsn = pg_current_wal_lsn()")
    [ "$c" = 2 ] && break
    sleep 0.2
done
[ "$c" = 2 ] || { echo "standbys did not catch up" >&2; exit 1; }
printf 'postgres://postgres@127.0.0.1:5432/postgres\n' >"$B/etc/vigil/pg-monitor.dsn"
chmod 600 "$B/etc/vigil/pg-monitor.dsn"

# --- clamd ready? ------------------------------------------------------------
for _ in $(seq 450); do
    if python3 -c "
import socket,sys
s=socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect('$B/clamav/clamd.ctl'); s.sendall(b'zPING\0')
sys.exit(0 if s.recv(16).startswith(b'PONG') else 1)" 2>/dev/null; then ready=1; break; fi
    sleep 0.2
done
[ "${ready:-}" = 1 ] || { echo "clamd did not answer PING" >&2; cat "$B/clamav/clamd.log" >&2; exit 1; }

# --- the prepared policies and the baseline ----------------------------------
echo "== policy changes (prepare_policy.py):"
python3 "$HERE/prepare_policy.py" "$WS/policies/papyrs.yaml" "$B" "$B/papyrs-full.yaml" "$B/papyrs-nodpkg.yaml"
"$AGENT" validate --policy "$B/papyrs-full.yaml" >/dev/null
"$AGENT" validate --policy "$B/papyrs-nodpkg.yaml" >/dev/null
mkdir -p "$B/var/lib/vigil" "$B/reports"
"$AGENT" baseline --policy "$B/papyrs-full.yaml" --control SP-7 --state-dir "$B/state-baseline" >/dev/null

# --- runs ----------------------------------------------------------------------
RESULTS="$B/results.jsonl"
: >"$RESULTS"
agent_run() { # label policy state_dir [more agent arguments]
    MEASURE_STDERR="$B/reports/$1.stderr" python3 "$HERE/measure.py" "$1" -- \
        ip netns exec $NS env RESTIC_CACHE_DIR="$B/cache" NO_COLOR=1 \
        "$AGENT" check --policy "$2" --state-dir "$3" --format json --output "$B/reports/$1.json" "${@:4}" >>"$RESULTS"
    tail -n1 "$RESULTS"
}
echo "== runs (load average before: $(cut -d' ' -f1-3 /proc/loadavg))"
for i in $(seq "$RUNS"); do
    # cold: a fresh state dir (log_secrets reads every log, clamav scans
    # every file) and an empty restic cache; warm: the same state again.
    rm -rf "$B/state-nodpkg-$i" "$B/cache" && mkdir -p "$B/cache"
    agent_run "nodpkg-cold-$i" "$B/papyrs-nodpkg.yaml" "$B/state-nodpkg-$i"
    agent_run "nodpkg-warm-$i" "$B/papyrs-nodpkg.yaml" "$B/state-nodpkg-$i"
    rm -rf "$B/state-full-$i"
    agent_run "full-cold-$i" "$B/papyrs-full.yaml" "$B/state-full-$i"
    agent_run "full-warm-$i" "$B/papyrs-full.yaml" "$B/state-full-$i"
done
# Each control alone (warm state of the last run, page cache warm): which
# controls cost the CPU time and the memory. SP-7 alone with and without
# dpkg_verify.
if [ "${PER_CONTROL:-1}" = 1 ] && [ "$RUNS" -gt 0 ]; then
    for c in $(python3 -c "import sys,yaml; print(' '.join(c['id'] for c in yaml.safe_load(open(sys.argv[1]))['controls']))" "$B/papyrs-nodpkg.yaml"); do
        agent_run "alone-$c-1" "$B/papyrs-nodpkg.yaml" "$B/state-nodpkg-$RUNS" --control "$c"
    done
    agent_run "alone-SP-7+dpkg_verify-1" "$B/papyrs-full.yaml" "$B/state-full-$RUNS" --control SP-7
fi
for i in $(seq "$LYNIS_RUNS"); do
    MEASURE_STDERR="$B/reports/lynis-$i.stderr" python3 "$HERE/measure.py" "lynis-$i" -- \
        lynis audit system --quick --no-colors --logfile "$B/reports/lynis-$i.log" --report-file "$B/reports/lynis-$i.dat" >>"$RESULTS"
    tail -n1 "$RESULTS"
done

python3 "$HERE/summarize.py" "$RESULTS" "$B/reports"
if [ -n "${SAVE_TO:-}" ]; then mkdir -p "$SAVE_TO" && cp -r "$RESULTS" "$B/reports" "$SAVE_TO"/; fi
