#!/usr/bin/env bash
# Peak memory of the reporter under a flood of wrong logins (issue 19,
# item 3: 256 concurrent wrong logins took it to 5.7 GB). Not a test (the
# test is tests/security.rs `login_flood_stays_small_and_is_throttled`):
# figures go to BENCHMARKS.md ("Login flood").
#
#   bash tests/data/security/bench-login-flood.sh [CONNECTIONS] [SECONDS]
#
# Builds the release reporter (VIGIL_REPORTER_BIN overrides), adds one admin
# (`carol`), then `wrk` keeps CONNECTIONS connections (default 256) posting
# wrong passwords to /login for SECONDS (default 20) from one address.
# Prints the status counts (401 wrong password, 429 throttled), the
# reporter's RSS before and its peak RSS (VmHWM) after. Needs wrk, curl.
set -euo pipefail
CONNS=${1:-256}
SECONDS_RUN=${2:-20}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
for t in wrk curl; do
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
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; rm -rf "$WORK"' EXIT
PORT=$((20000 + RANDOM % 20000))
BASE="http://127.0.0.1:$PORT"
export VIGIL_ENROLL_SECRET=bench-enroll-secret-0123456789 VIGIL_LOG=warn
echo "correct horse battery staple" |
    "$BIN" user add carol --role admin --password-stdin --data "$WORK/data" >/dev/null
"$BIN" serve --plain-http --listen "127.0.0.1:$PORT" --data "$WORK/data" 2>"$WORK/reporter.log" &
PID=$!
for _ in $(seq 1 200); do
    curl -sf "$BASE/healthz" >/dev/null && break
    sleep 0.1
done
echo "RSS before: $(awk '/VmRSS/ {print $2, $3}' "/proc/$PID/status")"
wrk -t2 -c"$CONNS" -d"${SECONDS_RUN}s" --timeout 10s --latency \
    -s "$ROOT/tests/data/security/login.lua" "$BASE"
echo "RSS after: $(awk '/VmRSS/ {print $2, $3}' "/proc/$PID/status")"
echo "peak RSS (VmHWM): $(awk '/VmHWM/ {print $2, $3}' "/proc/$PID/status")"
