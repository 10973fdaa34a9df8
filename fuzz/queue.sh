#!/bin/sh
# Runs the given targets one after another (never two at once), each for
# SECONDS. Usage: fuzz/queue.sh SECONDS TARGET...
secs=$1; shift
for t in "$@"; do
  echo "== $t $(date -u +%FT%TZ)"
  "$(dirname "$0")/run.sh" "$t" "$secs"
done
echo "== done $(date -u +%FT%TZ)"
