#!/usr/bin/env bash
# Ingest latency while anonymous clients poll the public routes, with a
# 1,000,000-entry audit log (issue 19, item 2). Not a test: figures go to
# BENCHMARKS.md.
#
#   bash tests/data/audit/bench-checkpoint-flood.sh [ENTRIES] [SECONDS]
#
# Builds the release reporter, seeds ENTRIES audit entries straight into a
# fresh SQLite store (their leaf hashes are random: the checkpoint path hashes
# leaves, it does not check signatures), enrolls one agent, then runs for
# SECONDS: `wrk` posting reports (4 connections, a fresh report id each)
# while 4 `wrk` connections poll /api/v1/audit/checkpoint, /trust.json and
# /brochure.pdf in turn. Twice: with the default public limit, and with the
# limit off (`per_minute: 0`), which shows the lock-free checkpoint and the
# cache alone. Prints wrk's latency distributions. Needs wrk, python3, curl.
set -euo pipefail
ENTRIES=${1:-1000000}
SECONDS_RUN=${2:-30}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
HERE="$ROOT/tests/data/audit"
for t in wrk python3 curl; do
    command -v "$t" >/dev/null || { echo "needs $t (apt-get install $t)" >&2; exit 2; }
done
(cd "$ROOT" && cargo build --release -p vigil-reporter)
BIN="$ROOT/target/release/vigil-reporter"
WORK=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
DATA="$WORK/data"
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
export VIGIL_ENROLL_SECRET=bench-enroll-secret-0123456789 VIGIL_LOG=warn

start() { # config
    "$BIN" serve --plain-http --listen "127.0.0.1:$PORT" --data "$DATA" --config "$1" &
    PID=$!
    for _ in $(seq 1 600); do
        curl -sf "$BASE/healthz" >/dev/null && return 0
        sleep 0.5
    done
    echo "the reporter did not start" >&2; exit 1
}

echo "plain_http: true" > "$WORK/init.yaml"
start "$WORK/init.yaml"; kill $PID; wait $PID || true
echo "seeding $ENTRIES audit entries"
python3 - "$DATA/vigil.db" "$ENTRIES" <<'PY'
import os, sqlite3, sys, json
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
rows = ((i, 1764000000000 + i, "report.ingested", "bench-seed",
         json.dumps({"report_id": "seed-%d" % i}), os.urandom(32).hex(), "c2VlZA==")
        for i in range(n))
c.executemany("INSERT INTO audit_log (seq, ts, kind, actor, data, leaf_hash, sig) VALUES (?,?,?,?,?,?,?)", rows)
c.commit()
PY

run() { # label, config text
    printf '%s\n' "$2" > "$WORK/bench.yaml"
    local t0=$(date +%s.%N)
    start "$WORK/bench.yaml"
    echo "== $1: started (tree built) in $(echo "$(date +%s.%N) - $t0" | bc) s"
    export BENCH_HOST=bench-$RANDOM
    TOKEN=$(curl -sf -X POST "$BASE/api/v1/enroll" -H 'content-type: application/json' \
        -d "{\"secret\":\"$VIGIL_ENROLL_SECRET\",\"host\":\"$BENCH_HOST\",\"interval_secs\":3600}" \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    TOKEN=$TOKEN wrk -t2 -c4 -d"${SECONDS_RUN}s" -s "$HERE/poll.lua" "$BASE" > "$WORK/poll.txt" &
    local poller=$!
    TOKEN=$TOKEN wrk -t2 -c4 -d"${SECONDS_RUN}s" --latency -s "$HERE/ingest.lua" "$BASE"
    wait $poller || true
    echo "-- pollers (4 connections):"
    grep -E "Requests/sec|Non-2xx|requests in|Latency" "$WORK/poll.txt"
    kill $PID; wait $PID || true
}
run "default public limit" "plain_http: true"
run "public limit off" $'plain_http: true\npublic_limit: {per_minute: 0}'
