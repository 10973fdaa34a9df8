#!/bin/bash
# Agent resident memory while idle in daemon mode with policies/papyrs.yaml.
set -euo pipefail
WS=$(cd "$(dirname "$0")/../../.." && pwd)
AGENT=${AGENT:-$WS/target/release/vigil-agent}
REPORTER=$WS/target/debug/vigil-reporter
D=$(mktemp -d /tmp/vigil-daemon-bench.XXXX)
PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
VIGIL_ENROLL_SECRET=bench-secret-0123456789 VIGIL_LOG=warn $REPORTER serve --plain-http --listen 127.0.0.1:$PORT --data $D/rep >/dev/null 2>&1 &
RP=$!
trap 'kill $RP 2>/dev/null; kill $AP 2>/dev/null; true' EXIT
sleep 2
cat > $D/agent.yaml <<EOT
server: http://127.0.0.1:$PORT
host: bench-1
token_file: $D/token
policy: $WS/policies/papyrs.yaml
spool: $D/spool
state_dir: $D/state
interval: 15m
EOT
VIGIL_ENROLL_SECRET=bench-secret-0123456789 $AGENT enroll --config $D/agent.yaml
RUST_LOG=info $AGENT run --config $D/agent.yaml 2>$D/agent.log &
AP=$!
# first run comes within a minute (jitter); wait for it, then idle
for i in $(seq 1 90); do grep -q "report(s) delivered" $D/agent.log && break; sleep 1; done
grep -c "report spooled" $D/agent.log
sleep ${IDLE:-30}
for i in 1 2 3; do grep -E "VmRSS|VmHWM" /proc/$AP/status | tr -s ' ' | paste -sd' '; sleep 2; done
grep -E "Threads" /proc/$AP/status
kill -TERM $AP; wait $AP; echo "agent exit $?"
tail -3 $D/agent.log
rm -rf $D
