#!/usr/bin/env bash
# Ingest latency while anonymous clients poll the public routes, with a
# 1,000,000-entry audit log (issue 19, item 2). Not a test: figures go to
# BENCHMARKS.md ("Audit checkpoints under load").
#
#   bash tests/data/audit/bench-checkpoint-flood.sh [ENTRIES] [SECONDS]
#
# Builds the release reporter (VIGIL_REPORTER_BIN overrides), starts it once
# on a fresh SQLite data dir and stops it, then seeds ENTRIES audit entries
# straight into `audit_log` with python3's sqlite3 (the bulk path: one
# executemany, ~10 s for 1M; leaf hashes are random and signatures dummies:
# the checkpoint path hashes leaves, it does not check signatures, so
# `audit verify` is not meaningful on this store). Then three runs of
# SECONDS each, every one on a fresh reporter process and a new host:
#
#   1. ingest alone: `wrk` posting real-shaped reports (ingest.lua, 4
#      connections, a fresh report id each);
#   2. the same while 4 `wrk` connections poll /api/v1/audit/checkpoint,
#      /trust.json and /brochure.pdf in turn (poll.lua), default public limit;
#   3. the same with the public limit off (`public_limit: {per_minute: 0}`),
#      which shows the lock-free checkpoint and the render cache alone.
#
# Prints wrk's latency distributions, the pollers' rate and status counts,
# and the reporter's peak RSS (VmHWM). Needs wrk, python3, curl.
set -euo pipefail
ENTRIES=${1:-1000000}
SECONDS_RUN=${2:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE="$ROOT/tests/data/audit"
for t in wrk python3 curl; do
    command -v "$t" >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 2; }
done
if [ -n "${VIGIL_REPORTER_BIN:-}" ]; then
    BIN=$VIGIL_REPORTER_BIN
else
    (cd "$ROOT" && cargo build --release -p vigil-reporter)
    BIN="$ROOT/target/release/vigil-reporter"
fi
WORK=$(mktemp -d)
PID=
cleanup() {
    [ -n "$PID" ] && kill "$PID" 2>/dev/null || true
    kill $(jobs -p) 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
DATA="$WORK/data"
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
export VIGIL_ENROLL_SECRET=bench-enroll-secret-0123456789 VIGIL_LOG=warn

start() { # config
    "$BIN" serve --plain-http --listen "127.0.0.1:$PORT" --data "$DATA" --config "$1" \
        2>>"$WORK/reporter.log" &
    PID=$!
    for _ in $(seq 1 1200); do
        curl -sf "$BASE/healthz" >/dev/null && return 0
        kill -0 "$PID" 2>/dev/null || { tail -20 "$WORK/reporter.log" >&2; exit 1; }
        sleep 0.25
    done
    echo "the reporter did not start" >&2; exit 1
}
stop() {
    kill "$PID"; wait "$PID" || true; PID=
}
ms_since() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }

echo "plain_http: true" > "$WORK/init.yaml"
start "$WORK/init.yaml"; stop
t0=$(date +%s%N)
python3 - "$DATA/vigil.db" "$ENTRIES" <<'PY'
import os, sqlite3, sys, json
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
first = c.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM audit_log").fetchone()[0]
rows = ((first + i, 1764000000000 + i, "report.ingested", "bench-seed",
         json.dumps({"report_id": "seed-%d" % i}), os.urandom(32).hex(), "c2VlZA==")
        for i in range(n))
c.executemany("INSERT INTO audit_log (seq, ts, kind, actor, data, leaf_hash, sig) VALUES (?,?,?,?,?,?,?)", rows)
c.commit()
print("audit_log now holds %d entries" % c.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0])
PY
echo "seeded $ENTRIES entries in $(ms_since "$t0") ms"

run() { # label, pollers (0 or 4), config text
    printf '%s\n' "$3" > "$WORK/bench.yaml"
    local t0
    t0=$(date +%s%N)
    start "$WORK/bench.yaml"
    echo
    echo "== $1: reporter ready (frontier built from the stored leaves) in $(ms_since "$t0") ms"
    export BENCH_HOST=bench-$RANDOM
    TOKEN=$(curl -sf -X POST "$BASE/api/v1/enroll" -H 'content-type: application/json' \
        -d "{\"secret\":\"$VIGIL_ENROLL_SECRET\",\"host\":\"$BENCH_HOST\",\"interval_secs\":3600}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    export TOKEN
    local poller=
    if [ "$2" -gt 0 ]; then
        wrk -t2 -c"$2" -d"${SECONDS_RUN}s" -s "$HERE/poll.lua" "$BASE" > "$WORK/poll.txt" &
        poller=$!
    fi
    echo "-- ingest (4 connections):"
    wrk -t2 -c4 -d"${SECONDS_RUN}s" --latency -s "$HERE/ingest.lua" "$BASE"
    if [ -n "$poller" ]; then
        wait "$poller" || true
        echo "-- pollers ($2 connections):"
        grep -E "Latency|requests in|Requests/sec|Non-2xx|^status" "$WORK/poll.txt"
    fi
    echo "-- reporter peak RSS: $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status")"
    stop
}
run "ingest alone" 0 "plain_http: true"
run "4 pollers, default public limit" 4 "plain_http: true"
run "4 pollers, public limit off" 4 $'plain_http: true\npublic_limit: {per_minute: 0}'
