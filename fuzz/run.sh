#!/bin/sh
# Runs one fuzz target for SECONDS (default 600), one process, lowest priority.
# Usage: fuzz/run.sh TARGET [SECONDS] [extra libFuzzer flags...]
# The grown corpus goes to fuzz/corpus/TARGET (not committed), crashes to
# fuzz/artifacts/TARGET, the log to fuzz/logs/TARGET.log.
set -eu
cd "$(dirname "$0")"
t=$1; secs=${2:-600}; shift; [ $# -gt 0 ] && shift
mkdir -p "corpus/$t" logs
nice -n 19 cargo +nightly fuzz run "$t" -O --debug-assertions "corpus/$t" "seeds/$t" -- \
  -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -jobs=1 -workers=1 \
  -print_final_stats=1 "$@" > "logs/$t.run" 2>&1 || true
mv -f fuzz-0.log "logs/$t.log" 2>/dev/null || true
tail -n 25 "logs/$t.log" 2>/dev/null || tail -n 25 "logs/$t.run"
