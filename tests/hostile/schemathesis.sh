#!/usr/bin/env bash
# Runs schemathesis against /api/v1/openapi.json of a fresh vigil-reporter on
# loopback: no 5xx, and every status code, content type, header and body as
# the document says. Staff routes run with an admin token, agent routes with
# an enrolled agent's token (see schemathesis.toml).
#
#   tests/hostile/schemathesis.sh            # short: 25 examples per operation
#   HOSTILE_EXAMPLES=500 tests/hostile/schemathesis.sh
#
# Every check runs but two, on purpose:
# - positive_data_acceptance: the reporter validates beyond what JSON Schema
#   says (no control characters, trimmed non-empty text, a report whose
#   statuses agree with its checks, host-name characters); a schema-valid body
#   may rightly get 400.
# - ensure_resource_availability: a submission that fills the honeypot field
#   gets an ordinary-looking 201 with a tracking id but is not stored, by
#   design (bots must not learn they were caught).
#
# Needs schemathesis (`pip install 'schemathesis==4.32.5'`): found on PATH, in
# $SCHEMATHESIS, or in target/hostile-venv/bin.
set -euo pipefail
. "$(dirname "$0")/common.sh"

find_schemathesis() {
  local c
  for c in "${SCHEMATHESIS:-}" "$HOSTILE_ROOT/target/hostile-venv/bin/schemathesis" \
           "$(command -v schemathesis || true)"; do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  echo "hostile: schemathesis is not installed: pip install 'schemathesis==4.32.5' (or set SCHEMATHESIS=/path/to/schemathesis)" >&2
  exit 3
}
ST="$(find_schemathesis)"

examples="${HOSTILE_EXAMPLES:-25}"
work="$(mktemp -d -t vigil-hostile-st.XXXXXX)"
trap 'stop_reporter; rm -rf "$work"' EXIT

# The intake's per-address hour limit would answer most generated submissions
# 429 (documented, but it hides the validation behind it): raised here. The
# load script tests the limit itself.
cat >"$work/reporter.yaml" <<YAML
intake:
  per_address_per_hour: 1000000
YAML
start_reporter "$work/data" "$work/reporter.yaml"
export VIGIL_STAFF_TOKEN VIGIL_AGENT_TOKEN
VIGIL_STAFF_TOKEN="$(staff_token "$work/data" hostile-admin)"
VIGIL_AGENT_TOKEN="$(agent_token hostile-agent)"

status=0
# schemathesis keeps a cache (.schemathesis/) in its working directory: the throwaway one.
cd "$work"
"$ST" --config-file "$HOSTILE_ROOT/tests/hostile/schemathesis.toml" --no-color run \
  "$REPORTER_BASE/api/v1/openapi.json" \
  --checks "${HOSTILE_CHECKS:-all}" \
  --exclude-checks "${HOSTILE_EXCLUDE_CHECKS:-positive_data_acceptance,ensure_resource_availability}" \
  --max-examples "$examples" \
  --workers "${HOSTILE_WORKERS:-2}" \
  --seed "${HOSTILE_SEED:-20261126}" \
  --request-timeout 10 \
  --generation-database none \
  --report-dir "$work/report" ${HOSTILE_ST_ARGS:-} || status=$?

if grep -q "panicked" "$REPORTER_LOG"; then
  echo "hostile: the reporter panicked:" >&2
  grep -A3 "panicked" "$REPORTER_LOG" >&2
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "--- reporter log (tail) ---" >&2
  tail -n 40 "$REPORTER_LOG" >&2
fi
exit "$status"
