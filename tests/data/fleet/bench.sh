#!/usr/bin/env bash
# The fleet views at 10,000 hosts (issue 22): a release reporter on SQLite,
# seeded by tests/data/fleet/seed.py (see its docstring for what is seeded
# how), then each view measured with wrk (external, staff Bearer token) at
# two stored-report counts: after the API rounds, and after padding the
# store with copies of every report (the views must not read them).
#
#   bash tests/data/fleet/bench.sh [HOSTS] [ROUNDS] [PAD] [SECONDS]
#   defaults: 10000 hosts, 2 hourly rounds through the API, 10 pad copies, 20 s per view
#
# Needs: target/release/vigil-reporter (cargo build --release -p vigil-reporter), wrk, curl, python3.
# SHOTS=DIR: also keeps headless Chromium screenshots of the overview and a
# control page at this size in DIR (overview.png, control-SP-5.png).
# INGEST=N (and PACE_MS, default 1000): while the views are measured, N of the
# seeded hosts keep posting real `vigil-agent check` reports (role app), each
# every PACE_MS, through tests/data/ingest/paced.lua: every ingest commit
# makes the views' cache reload, as in a fleet that reports all the time.
# Needs target/release/vigil-agent for the report template.
set -euo pipefail
HOSTS=${1:-10000}
ROUNDS=${2:-2}
PAD=${3:-10}
SECS=${4:-20}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
BIN=${BIN:-$ROOT/target/release/vigil-reporter}
SEED="python3 $ROOT/tests/data/fleet/seed.py"
WORK=${WORK:-$(mktemp -d /tmp/fleet-bench.XXXXXX)}
PORT=${PORT:-18622}
BASE=http://127.0.0.1:$PORT
SECRET=bench-enroll-secret-0123456789
ROLE_SECRET=bench-role-secret-0123456789
command -v wrk >/dev/null || { echo "install wrk (apt-get install wrk)"; exit 1; }
[ -x "$BIN" ] || { echo "build $BIN first: cargo build --release -p vigil-reporter"; exit 1; }

cat > "$WORK/reporter.yaml" <<YAML
policy: $ROOT/policies/papyrs.yaml
organization: Bench
enroll_role_secrets:
  - secret: $ROLE_SECRET
    roles: [app, db, backup, offline_backup]
YAML
VIGIL_ENROLL_SECRET=$SECRET VIGIL_LOG=warn "$BIN" serve --plain-http --listen 127.0.0.1:$PORT \
  --data "$WORK/data" --config "$WORK/reporter.yaml" > "$WORK/reporter.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -sf "$BASE/healthz" >/dev/null 2>&1 && break; sleep 0.2; done
TOKEN=$("$BIN" user add bench --role admin --data "$WORK/data")
DB=$WORK/data/vigil.db

t0=$(date +%s)
$SEED enroll "$BASE" "$ROLE_SECRET" "$HOSTS" "$WORK/tokens.tsv"
echo "enrolled $HOSTS hosts in $(( $(date +%s) - t0 )) s"
t0=$(date +%s)
$SEED rounds "$BASE" "$WORK/tokens.tsv" "$ROUNDS"
echo "posted $ROUNDS rounds in $(( $(date +%s) - t0 )) s"
$SEED rollups "$DB"

FAILING=$(sqlite3 "$DB" "SELECT host FROM latest_results WHERE status = 'fail' ORDER BY host LIMIT 1")
measure() {
  local label=$1
  echo "== $label: $(sqlite3 "$DB" 'SELECT COUNT(*) FROM reports') stored reports, $(sqlite3 "$DB" 'SELECT COUNT(*) FROM latest_hosts') hosts, db $(du -h "$DB" | cut -f1)"
  for path in / /api/v1/posture "/reports/hosts" "/reports/hosts?status=fail" "/reports/hosts/$FAILING" /reports/controls/SP-5 "/reports/controls/SP-5?status=fail"; do
    bytes=$(curl -s -o /dev/null -w '%{size_download} %{http_code}' -H "Authorization: Bearer $TOKEN" "$BASE$path")
    echo "-- $path: bytes/status $bytes; load $(cut -d' ' -f1-3 /proc/loadavg)"
    wrk -t2 -c4 -d"${SECS}s" --latency -H "Authorization: Bearer $TOKEN" "$BASE$path" \
      | grep -E "Requests/sec|^ +50%|^ +99%|Non-2xx|Socket errors" | tr -s ' ' | paste -sd' '
  done
}
shots() {
  [ -n "${SHOTS:-}" ] || return 0
  command -v chromium >/dev/null || { echo "SHOTS needs chromium (apt-get install chromium)"; return 1; }
  mkdir -p "$SHOTS"
  for pair in overview:/ control-SP-5:/reports/controls/SP-5; do
    name=${pair%%:*}; path=${pair#*:}
    link=$(curl -s -X POST -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/login-links" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["path"])')
    next=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$path")
    profile=$(mktemp -d)
    timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run \
      --hide-scrollbars --user-data-dir="$profile" --window-size=1280,2400 \
      --screenshot="$SHOTS/$name.png" "$BASE$link?next=$next" >/dev/null 2>&1 || true
    rm -rf "$profile"
    echo "screenshot $SHOTS/$name.png: $(stat -c %s "$SHOTS/$name.png" 2>/dev/null || echo missing) bytes"
  done
}
ingest_start() {
  [ -n "${INGEST:-}" ] || return 0
  local agent=$ROOT/target/release/vigil-agent
  [ -x "$agent" ] || { echo "INGEST needs $agent (cargo build --release -p vigil-agent)"; exit 1; }
  "$agent" check --policy "$ROOT/policies/papyrs.yaml" --format json --host loadhost --role app \
    --state-dir "$WORK/agent-state" --control SP-4 --control SP-5 --control SP-8 --control SP-9 --control SP-10 \
    --control GDPR-1 --control GDPR-2 --control GDPR-3 --output "$WORK/app.raw.json" >/dev/null || [ $? -le 2 ]
  python3 - "$WORK/app.raw.json" "$WORK/app.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
r["report_id"], r["started_at"], r["finished_at"] = "@RID@", "@START@", "@END@"
open(sys.argv[2], "w").write(json.dumps(r, separators=(",", ":"), ensure_ascii=False))
PY
  head -n "$INGEST" "$WORK/tokens.tsv" | awk -v t="$WORK/app.json" -F'\t' '{print $1, $2, t}' > "$WORK/ingest-hosts"
  mkdir -p "$WORK/ingest-out"
  wrk -t "$INGEST" -c "$INGEST" -d 1h --timeout 30s -s "$ROOT/tests/data/ingest/paced.lua" \
    "$BASE/api/v1/reports" -- "$WORK/ingest-hosts" "$WORK/ingest-out" "${PACE_MS:-1000}" > "$WORK/ingest.out" 2>&1 &
  INGEST_PID=$!
  sleep 3
  echo "ingest: $INGEST hosts posting every ${PACE_MS:-1000} ms ($(cat "$WORK"/ingest-out/ok-* | wc -l) stored in the first 3 s)"
}
ingest_stop() {
  [ -n "${INGEST_PID:-}" ] || return 0
  local before; before=$(sqlite3 "$DB" 'SELECT COUNT(*) FROM reports')
  kill -INT "$INGEST_PID" 2>/dev/null || true
  wait "$INGEST_PID" 2>/dev/null || true
  grep -E "RESULT|statuses" "$WORK/ingest.out" || true
  echo "ingest stopped: $before stored reports"
}
ingest_start
measure "after the API rounds"
ingest_stop
shots
$SEED pad "$DB" "$PAD"
measure "after padding"
echo "work dir: $WORK"
