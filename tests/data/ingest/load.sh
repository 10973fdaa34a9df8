#!/usr/bin/env bash
# External ingest load (issue 22, items 4 and 5): real vigil-agent reports,
# 100+ enrolled hosts, wrk with one connection per agent, against a fresh
# `vigil-reporter serve` (plain HTTP). Prints reports/s, p50/p99 and the
# statuses; fails on any 5xx or other non-2xx, on a `database is locked` in
# the reporter's log, and unless the store holds exactly the reports
# answered 201 (plus, at most, the one request per connection that wrk
# abandoned in flight when it stopped, which the reporter may have stored).
#
#   tests/data/ingest/load.sh                         # SQLite in a temp dir
#   PG=1 tests/data/ingest/load.sh                    # a PostgreSQL cluster of its own
#   DATABASE_URL=postgres://... tests/data/ingest/load.sh
#
# Knobs (environment): HOSTS (100), LARGE (hosts posting the ~400 kB report,
# 10), DURATION (30s), BIN (target/release; REPORTER and AGENT name the two
# binaries apart), KEEP=1 keeps the work directory, LOG sets the reporter's VIGIL_LOG
# (warn; `vigil_reporter::ingest=debug` logs each group commit's phases).
# Needs: wrk, curl, sqlite3 or psql, and as root for PG=1 the PostgreSQL
# server binaries (apt-get install wrk curl sqlite3 postgresql).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
BIN=${BIN:-$root/target/release}
HOSTS=${HOSTS:-100}
LARGE=${LARGE:-10}
DURATION=${DURATION:-30s}
reporter=${REPORTER:-$BIN/vigil-reporter}
agent=${AGENT:-$BIN/vigil-agent}
policy=$root/policies/papyrs.yaml

for tool in wrk curl; do
  command -v $tool >/dev/null || { echo "load.sh needs $tool (apt-get install $tool)" >&2; exit 2; }
done
for b in "$reporter" "$agent"; do
  [ -x "$b" ] || { echo "no $b: cargo build --release -p vigil-reporter -p vigil-agent" >&2; exit 2; }
done

work=$(mktemp -d /tmp/vigil-ingest-load.XXXXXX)
chmod 755 "$work"
pids=()
pg_stop=""
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$pg_stop" ]; then eval "$pg_stop" >/dev/null 2>&1 || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# --- 1. report templates from the real agent ---------------------------------
# The agent checks this machine against papyrs.yaml for a host named
# `loadhost`; the templates keep its findings, evidence and attestations and
# get placeholders for the values each request makes fresh.
mkdir -p "$work/templates"
gen() { # name, agent args...
  local name=$1; shift
  local out="$work/templates/$name.raw.json"
  # exit status 1/2 = failing controls, which is what we want in the report
  # its own state directory: never the host's /var/lib/vigil
  "$agent" check --policy "$policy" --format json --host loadhost --state-dir "$work/agent-state" "$@" --output "$out" || [ $? -le 2 ]
  [ -s "$out" ] || { echo "vigil-agent check $* wrote no report" >&2; exit 1; }
  # Compact, as the daemon ships it, with placeholders for the values each
  # request makes fresh (python3 keeps integers and key order exactly).
  python3 - "$out" "$work/templates/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["report_id"], r["started_at"], r["finished_at"] = "@RID@", "@START@", "@END@"
open(sys.argv[2], "w").write(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
PY
  grep -q '@RID@' "$work/templates/$name.json" && grep -q '@END@' "$work/templates/$name.json"
  printf '  %-6s %7d bytes  %s\n' "$name" "$(stat -c %s "$work/templates/$name.json")" \
    "$(grep -o '"summary":{[^}]*}' "$work/templates/$name.json" | tail -1)"
}
c() { for x in "$@"; do printf -- '--control %s ' "$x"; done; }
echo "report templates (vigil-agent check, policies/papyrs.yaml):"
# shellcheck disable=SC2046
gen web $(c SP-1 SP-2 SP-3 SP-4 SP-5 SP-8 SP-9 SP-10 GDPR-1 GDPR-2 GDPR-3 GDPR-4 GDPR-5 BK-4)
# shellcheck disable=SC2046
gen app --role app $(c SP-4 SP-5 SP-8 SP-9 SP-10 GDPR-1 GDPR-2 GDPR-3)
# shellcheck disable=SC2046
gen backup --role backup $(c SP-3 SP-5 BK-1 BK-2 BK-3 SP-9)
# shellcheck disable=SC2046
gen db --role db $(c SP-6 SP-9 GDPR-1)
# patch-level findings plus an unbaselined file_integrity tree: 300+ kB
# shellcheck disable=SC2046
gen large --role app $(c SP-6 SP-7 SP-9)
typical=(web app backup db)

# --- 2. a fresh reporter -------------------------------------------------------
db_url=${DATABASE_URL:-}
if [ "${PG:-0}" = 1 ] && [ -z "$db_url" ]; then
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  [ -x "$pgbin/initdb" ] || { echo "PG=1 needs PostgreSQL's server binaries (apt-get install postgresql)" >&2; exit 2; }
  pgport=$(free_port)
  mkdir -p "$work/pg" && chown postgres:postgres "$work/pg"
  runuser -u postgres -- "$pgbin/initdb" -D "$work/pg/data" --auth=trust -U postgres >/dev/null
  # Stock settings (fsync on, synchronous_commit on): as durable as SQLite's FULL.
  runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -l "$work/pg/log" -w \
    -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
  pg_stop="runuser -u postgres -- $pgbin/pg_ctl -D $work/pg/data -m fast stop"
  psql -h 127.0.0.1 -p "$pgport" -U postgres -qc "CREATE DATABASE vigil"
  db_url="postgres://postgres@127.0.0.1:$pgport/vigil"
fi
port=$(free_port)
base="http://127.0.0.1:$port"
secret=load-test-enroll-secret-0123456789
mkdir -p "$work/data"
(
  if [ -n "$db_url" ]; then export VIGIL_DATABASE_URL=$db_url; else unset VIGIL_DATABASE_URL; fi
  VIGIL_ENROLL_SECRET=$secret VIGIL_LOG=${LOG:-warn} exec "$reporter" serve --listen "127.0.0.1:$port" \
    --data "$work/data" --plain-http
) >"$work/reporter.log" 2>&1 &
rpid=$!
pids+=("$rpid")
for _ in $(seq 300); do
  curl -fs "$base/healthz" >/dev/null && break
  kill -0 "$rpid" 2>/dev/null || { cat "$work/reporter.log" >&2; exit 1; }
  sleep 0.1
done
echo "reporter pid $rpid on $base, store ${db_url:-sqlite in $work/data/vigil.db}"

# --- 3. enroll the hosts -------------------------------------------------------
: >"$work/hosts"
for i in $(seq "$HOSTS"); do
  host=$(printf 'load-%04d' "$i")
  token=$(curl -fsS "$base/api/v1/enroll" -H 'Content-Type: application/json' \
    -d "{\"secret\":\"$secret\",\"host\":\"$host\",\"interval_secs\":3600,\"roles\":[]}" |
    grep -o '"token":"[^"]*"' | cut -d'"' -f4)
  [ -n "$token" ] || { echo "enrolling $host gave no token" >&2; exit 1; }
  if [ "$i" -le "$LARGE" ]; then t=large; else t=${typical[$(( (i - LARGE - 1) % ${#typical[@]} ))]}; fi
  echo "$host $token $work/templates/$t.json" >>"$work/hosts"
done
echo "enrolled $HOSTS hosts: $LARGE post the large report, the others web/app/backup/db in turn"

# --- 4. the load -----------------------------------------------------------------
mkdir -p "$work/out"
echo "load: $(uptime | sed 's/.*load average/load average/') on $(nproc) CPUs"
echo "wrk -t $HOSTS -c $HOSTS -d $DURATION --timeout 30s (one connection per agent)"
# CPU seconds (user + system) of a process so far
cpu_of() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
r_cpu0=$(cpu_of "$rpid")
wrk -t "$HOSTS" -c "$HOSTS" -d "$DURATION" --timeout 30s -s "$here/post.lua" "$base/api/v1/reports" \
  -- "$work/hosts" "$work/out" >"$work/wrk.out" &
wpid=$!
w_cpu=0
while kill -0 "$wpid" 2>/dev/null; do w_cpu=$(cpu_of "$wpid" 2>/dev/null || echo "$w_cpu"); sleep 0.5; done
wait "$wpid"
r_cpu=$(echo "$(cpu_of "$rpid") - $r_cpu0" | bc)
cat "$work/wrk.out"
result=$(grep '^RESULT' "$work/wrk.out")
get() { echo "$result" | tr ' ' '\n' | sed -n "s/^$1=//p"; }
echo "CPU during the run: reporter $r_cpu s, wrk >= $w_cpu s;" \
  "reporter $(echo "scale=0; $r_cpu * 1000000 / ($(get ok) + 1)" | bc) µs CPU per stored report" \
  "(2 idle cores would allow ~$(echo "scale=0; 2 * ($(get ok) + 1) / ($r_cpu + $w_cpu)" | bc)/s for reporter + wrk)"

# --- 5. what the store holds -------------------------------------------------------
sleep 1 # answers abandoned by wrk may still be committing
cat "$work"/out/ok-* | sort >"$work/ok.ids"
cat "$work"/out/pending-* | sort >"$work/pending.ids"
if [ -n "$db_url" ]; then
  psql "$db_url" -Atc "SELECT report_id FROM reports" | sort >"$work/stored.ids"
else
  sqlite3 "$work/data/vigil.db" "SELECT report_id FROM reports" | sort >"$work/stored.ids"
fi
ok=$(wc -l <"$work/ok.ids")
stored=$(wc -l <"$work/stored.ids")
lost=$(comm -23 "$work/ok.ids" "$work/stored.ids" | wc -l)
extra=$(comm -13 "$work/ok.ids" "$work/stored.ids" | sort)
unexplained=$(comm -23 <(echo "$extra" | sed '/^$/d') "$work/pending.ids" | wc -l)
extra_n=$(echo "$extra" | sed '/^$/d' | wc -l)
echo "store: $stored reports; answered 201: $ok; 201 but not stored: $lost; stored beyond the 201s: $extra_n (of $(wc -l <"$work/pending.ids") abandoned in flight), unexplained: $unexplained"

fail=0
[ "$(get s5xx)" = 0 ] || { echo "FAIL: $(get s5xx) answers were 5xx" >&2; fail=1; }
[ "$(get non2xx)" = 0 ] || { echo "FAIL: $(get non2xx) answers were not 2xx" >&2; fail=1; }
[ "$ok" = "$(get ok)" ] || { echo "FAIL: $ok ids written, $(get ok) counted" >&2; fail=1; }
[ "$lost" = 0 ] || { echo "FAIL: $lost reports answered 201 are not in the store" >&2; fail=1; }
[ "$unexplained" = 0 ] || { echo "FAIL: $unexplained stored reports were never answered nor in flight" >&2; fail=1; }
if grep -qi 'database is locked' "$work/reporter.log"; then
  echo "FAIL: the reporter logged 'database is locked':" >&2
  grep -i 'database is locked' "$work/reporter.log" | head -3 >&2
  fail=1
fi
grep -iE 'error|warn' "$work/reporter.log" | head -5 || true
[ "$fail" = 0 ] && echo "OK: $(get rps) reports/s stored, p50 $(get p50_ms) ms, p99 $(get p99_ms) ms, no 5xx, no lock errors"
exit $fail
