#!/bin/bash
# Per-control CPU and peak RSS of papyrs' BK-1..3 over two local restic
# repositories (7 nightly snapshots each, 1 h to 145 h old), with and without
# the listing cache. Not part of `cargo test`. Needs: restic, python3, time.
#
#   BEFORE=/path/to/agent-without-cache AFTER=target/release/vigil-agent \
#     bash tests/data/backup/listing_cache_bench/bench.sh
#
# Modes: cold = a fresh --state-dir every run (what every run cost before the
# cache); warm = the state dir of a previous run, repositories unchanged.
set -euo pipefail
WS=$(cd "$(dirname "$0")/../../../.." && pwd)
AFTER=${AFTER:-$WS/target/release/vigil-agent}
BEFORE=${BEFORE:-}
B=$(mktemp -d /tmp/vigil-bkbench-XXXXXX)
trap 'rm -rf "$B"' EXIT
export RESTIC_CACHE_DIR=$B/restic-cache
mkdir -p "$B/data/srv/papyrs/sites" "$B/data/var/backups/postgresql"
echo "bench-Pass-9931" > "$B/restic.pass"; chmod 600 "$B/restic.pass"
for i in $(seq 1 300); do head -c 20000 /dev/urandom > "$B/data/srv/papyrs/sites/page$i.html"; done
head -c 3000000 /dev/urandom > "$B/data/var/backups/postgresql/papyrs.dump"
for r in repo-local repo-backup1; do
    restic -r "$B/$r" --password-file "$B/restic.pass" --no-cache init --quiet
    for age in 145 121 97 73 49 25 1; do
        t=$(date -u -d "@$(( $(date +%s) - age * 3600 ))" "+%Y-%m-%d %H:%M:%S")
        head -c 100000 /dev/urandom > "$B/data/srv/papyrs/sites/new-$age.html"
        (cd "$B/data" && restic -r "$B/$r" --password-file "$B/restic.pass" --no-cache \
            backup --quiet --host papyrs --time "$t" srv var)
    done
done
# BK-1..3 as in papyrs.yaml; the sftp repository becomes the second local one.
python3 - "$WS/policies/papyrs.yaml" "$B" <<'PY'
import sys
src, b = open(sys.argv[1]).read(), sys.argv[2]
head = src[:src.index('controls:')]
bk = src[src.index('  - id: BK-1\n'):src.index('  - id: BK-4\n')]
bk = bk.replace('/srv/backup/restic-local', f'{b}/repo-local').replace('/etc/vigil/restic.pass', f'{b}/restic.pass')
bk = bk.replace('location: "sftp:backup@backup-1.papyrs.internal:/restic"', f'location: {b}/repo-backup1, site: backup-1')
assert bk.count(f'{b}/repo-backup1') == 4, 'papyrs.yaml BK-1..3 changed: update this script'
open(f'{b}/bk.yaml', 'w').write(head + 'controls:\n' + bk)
PY
run() { # label agent cold|warm controls...
    local label=$1 bin=$2 mode=$3; shift 3
    local ctl=() st=$B/state-$label c
    for c in "$@"; do ctl+=(--control "$c"); done
    if [ "$mode" = warm ]; then
        rm -rf "$st"; "$bin" check --policy "$B/bk.yaml" "${ctl[@]}" --state-dir "$st" --format json >/dev/null || true
    fi
    for k in 1 2 3; do
        [ "$mode" = cold ] && rm -rf "$st"
        /usr/bin/time -v "$bin" check --policy "$B/bk.yaml" "${ctl[@]}" --state-dir "$st" \
            --format json > "$B/out.json" 2> "$B/time.txt" || true
        awk -F': ' -v l="$label $mode $* run$k" -v load="$(cut -d' ' -f1 /proc/loadavg)" '
            /User time/{u=$2} /System time/{s=$2} /Maximum resident/{m=$2} /Elapsed/{w=$2}
            END {printf "%s cpu=%.2fs peak=%.1fMB wall=%s load1=%s\n", l, u+s, m/1024, w, load}' "$B/time.txt"
    done
}
for c in "BK-1" "BK-2" "BK-3" "BK-1 BK-2 BK-3"; do
    # shellcheck disable=SC2086
    { [ -n "$BEFORE" ] && run before "$BEFORE" cold $c; } || true
    # shellcheck disable=SC2086
    run after "$AFTER" cold $c
    # shellcheck disable=SC2086
    run after "$AFTER" warm $c
done
