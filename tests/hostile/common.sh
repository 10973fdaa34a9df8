# Shared by the hostile scripts: find the built reporter, pick a free port,
# start a reporter on loopback with a throwaway data directory, stop it on exit.
# Sourced, not run.

HOSTILE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

reporter_bin() {
  if [ -n "${VIGIL_REPORTER_BIN:-}" ]; then
    echo "$VIGIL_REPORTER_BIN"
  elif [ -x "$HOSTILE_ROOT/target/debug/vigil-reporter" ]; then
    echo "$HOSTILE_ROOT/target/debug/vigil-reporter"
  else
    echo "hostile: no vigil-reporter binary: run \`cargo build -p vigil-reporter\` or set VIGIL_REPORTER_BIN" >&2
    exit 2
  fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# start_reporter DATA_DIR CONFIG_FILE: sets REPORTER_PID, REPORTER_BASE, REPORTER_LOG.
start_reporter() {
  local data="$1" config="$2" port
  port="$(free_port)"
  REPORTER_LOG="$data.log"
  VIGIL_ENROLL_SECRET="$HOSTILE_SECRET" VIGIL_LOG="${VIGIL_LOG:-warn}" \
    "$(reporter_bin)" serve --plain-http --listen "127.0.0.1:$port" --data "$data" --config "$config" \
    >/dev/null 2>"$REPORTER_LOG" &
  REPORTER_PID=$!
  REPORTER_BASE="http://127.0.0.1:$port"
  for _ in $(seq 1 300); do
    if python3 - "$REPORTER_BASE" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/healthz", timeout=1).read()
PY
    then
      return 0
    fi
    if ! kill -0 "$REPORTER_PID" 2>/dev/null; then
      echo "hostile: vigil-reporter exited at start:" >&2
      cat "$REPORTER_LOG" >&2
      exit 2
    fi
    sleep 0.1
  done
  echo "hostile: vigil-reporter did not become ready on $REPORTER_BASE" >&2
  exit 2
}

stop_reporter() {
  if [ -n "${REPORTER_PID:-}" ]; then
    kill "$REPORTER_PID" 2>/dev/null || true
    wait "$REPORTER_PID" 2>/dev/null || true
    REPORTER_PID=
  fi
}

# staff_token DATA_DIR NAME: adds an admin and prints its token.
staff_token() {
  "$(reporter_bin)" user add "$2" --role admin --data "$1" 2>/dev/null
}

# agent_token HOST: enrolls HOST and prints the agent token.
agent_token() {
  python3 - "$REPORTER_BASE" "$HOSTILE_SECRET" "$1" <<'PY'
import json, sys, urllib.request
base, secret, host = sys.argv[1:4]
req = urllib.request.Request(base + "/api/v1/enroll", method="POST",
    data=json.dumps({"secret": secret, "host": host}).encode(),
    headers={"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(req, timeout=10))["token"])
PY
}

HOSTILE_SECRET="hostile-enroll-secret-$(python3 -c 'import secrets; print(secrets.token_hex(8))')"
