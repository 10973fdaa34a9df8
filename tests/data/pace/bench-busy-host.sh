#!/usr/bin/env bash
# The agent's effect on a busy host (issue 13): a CPU-bound load on every core
# (stress-ng) and a disk-bound one (fio, direct I/O on a multi-GB file) run
# alone, then beside `vigil-agent check` running log_secrets + file_integrity
# (dpkg_verify of this host) + a clamav scan, once at normal priority without
# a budget and once with `--idle --read-budget 50` (the daemon's defaults).
# Prints the loads' throughput in each case and the agent's run time.
#
#   cargo build --release -p vigil-agent
#   bash tests/data/pace/bench-busy-host.sh [WORKDIR]   # as root; Debian: stress-ng fio clamav-daemon
#
# Environment: LOG_GB (default 1), SCAN_MB (default 200), FIO_GB (default 4),
# CPU_LOAD (stress-ng --cpu-load percent, default 100), ALONE_SECS (default 60),
# AGENT (default target/release/vigil-agent), MODES (default "alone normal idle").
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
work=${1:-/var/tmp/vigil-pace-bench}
agent=${AGENT:-$repo/target/release/vigil-agent}
log_gb=${LOG_GB:-1}
scan_mb=${SCAN_MB:-200}
fio_gb=${FIO_GB:-4}
cpu_load=${CPU_LOAD:-100}
alone_secs=${ALONE_SECS:-60}
modes=${MODES-alone normal idle}
cores=$(nproc)

for t in stress-ng fio clamd; do
    command -v "$t" >/dev/null || { echo "needs $t (apt-get install stress-ng fio clamav-daemon)" >&2; exit 2; }
done
[ -x "$agent" ] || { echo "no $agent: cargo build --release -p vigil-agent" >&2; exit 2; }

logs="$work/logs"
upload="$work/upload"
mkdir -p "$logs" "$upload" "$work/state" "$work/clamd/db"

# --- data (made once) ------------------------------------------------------
if [ ! -f "$logs/.done" ]; then
    python3 - "$logs" "$log_gb" <<'EOF'
import sys, random
out, gb = sys.argv[1], float(sys.argv[2])
rnd = random.Random(13)
lines = []
for i in range(20000):
    kind = rnd.random()
    if kind < 0.5:
        lines.append(f'10.0.{i%250}.{i%200} - - [26/Nov/2026:01:{i%60:02d}:00 +0000] "GET /api/v1/items/{i}?page={i%7} HTTP/1.1" 200 {i*3%9000} "-" "Mozilla/5.0"\n')
    elif kind < 0.8:
        lines.append(f'2026-11-26T01:{i%60:02d}:00Z web-1 app[{i}]: request id={i:08x} user_id={i%977} took {i%300}ms status=ok\n')
    elif kind < 0.9999:
        lines.append(f'Nov 26 01:{i%60:02d}:00 web-1 sshd[{i}]: Accepted publickey for deploy from 10.1.{i%250}.7 port {1024+i} ssh2\n')
    else:
        lines.append(f'2026-11-26T01:00:00Z web-1 app[{i}]: login failed password=hunter{i}\n')
block = "".join(lines).encode()
files = 8
per = int(gb * 1e9 / files)
for f in range(files):
    with open(f"{out}/app-{f}.log", "wb") as fh:
        n = 0
        while n < per:
            fh.write(block); n += len(block)
EOF
    touch "$logs/.done"
fi
if [ ! -f "$upload/.done" ]; then
    for i in $(seq 1 $((scan_mb * 2))); do
        head -c 524288 /dev/urandom > "$upload/f$i.bin"
    done
    touch "$upload/.done"
fi
if [ ! -f "$work/fio.dat" ]; then
    fio --name=prep --filename="$work/fio.dat" --size="${fio_gb}G" --rw=write --bs=1M \
        --direct=1 --ioengine=libaio --iodepth=8 >/dev/null
fi

# --- clamd on a private socket, with a one-line signature database ---------
printf '0123456789abcdef0123456789abcdef:68:Bench-Test-Signature\n' > "$work/clamd/db/bench.hdb"
cat > "$work/clamd/clamd.conf" <<EOF
Foreground yes
LocalSocket $work/clamd/clamd.sock
DatabaseDirectory $work/clamd/db
TemporaryDirectory $work/clamd
PidFile $work/clamd/clamd.pid
LogFile $work/clamd/clamd.log
StreamMaxLength 30M
SelfCheck 3600
EOF
clamd --config-file="$work/clamd/clamd.conf" &
clamd_pid=$!
loads=()
cleanup() {
    for p in "${loads[@]}" "$clamd_pid"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 1 90); do
    [ -S "$work/clamd/clamd.sock" ] && break
    sleep 1
done

# --- the policy -----------------------------------------------------------
cat > "$work/policy.yaml" <<EOF
policy:
  id: pace-bench
  version: "1"
  title: pace benchmark
controls:
  - id: LOGS
    title: logs
    checks:
      - id: logs
        type: log_secrets
        timeout: 60m
        with:
          paths: [$logs/*.log]
          incremental: false
  - id: DPKG
    title: packages
    checks:
      - id: dpkg
        type: file_integrity
        timeout: 60m
        with:
          dpkg_verify: true
          dpkg_admin_dir: /var/lib/dpkg
  - id: AV
    title: uploads
    checks:
      - id: av
        type: clamav
        timeout: 60m
        with:
          address: unix:$work/clamd/clamd.sock
          self_test: false
          database_directory: $work/clamd/db
          max_signature_age_hours: 1000000
          scan_paths: [$upload]
EOF
evict() { # drop the bench files (only those) from the page cache
    for f in "$logs"/*.log "$upload"/*.bin; do
        dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true
    done
}

start_loads() {
    stress-ng --cpu "$cores" --cpu-load "$cpu_load" --cpu-method matrixprod \
        --metrics-brief --timeout 0 --yaml "$work/stress.yaml" >"$work/stress.out" 2>&1 &
    loads=($!)
    fio --name=busy --filename="$work/fio.dat" --size="${fio_gb}G" --rw=rw --rwmixread=50 \
        --bs=256k --direct=1 --ioengine=libaio --iodepth=8 --time_based --runtime=86400 \
        --output-format=json --output="$work/fio.json" >/dev/null 2>&1 &
    loads+=($!)
    sleep 5 # warm up
}

stop_loads() {
    kill -INT "${loads[@]}" 2>/dev/null || true
    wait "${loads[@]}" 2>/dev/null || true
    loads=()
}

report_loads() { # mode seconds load-average-before
    local bogo fio_r fio_w
    bogo=$(awk '/bogo-ops-per-second-real-time/ {printf "%.1f", $2}' "$work/stress.yaml")
    read -r fio_r fio_w < <(python3 -c '
import json,sys
t=open(sys.argv[1]).read(); j=json.loads(t[t.index("{"):]); job=j["jobs"][0]
print(round(job["read"]["bw_bytes"]/1e6,1), round(job["write"]["bw_bytes"]/1e6,1))' "$work/fio.json")
    printf '%-7s load1 before %5s  window %6.1fs  stress-ng %s bogo-ops/s  fio read %s MB/s write %s MB/s\n' \
        "$1" "$3" "$2" "$bogo" "$fio_r" "$fio_w"
}

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GiB, $(uname -r), $(date -u +%FT%TZ)"
echo "load: stress-ng --cpu $cores --cpu-load $cpu_load; fio rw 50/50 256k direct iodepth 8 on ${fio_gb} GB"
echo "agent: log_secrets ${log_gb} GB, dpkg_verify of this host, clamav ${scan_mb} MB"
for mode in $modes; do
    rm -rf "$work/state" && mkdir -p "$work/state" # no scan cache: every run streams to clamd
    evict
    sync
    pre=$(cut -d' ' -f1 /proc/loadavg)
    start_loads
    t0=$(date +%s.%N)
    case $mode in
        alone) sleep "$alone_secs"; cpu="-" ;;
        normal|idle)
            extra=()
            [ "$mode" = idle ] && extra=(--idle --read-budget 50)
            out=$(bash -c '"$@" >/dev/null; times' bash "$agent" check --policy "$work/policy.yaml" \
                --state-dir "$work/state" --format json --output "$work/report-$mode.json" "${extra[@]}" || true)
            cpu=$(echo "$out" | tail -1)
            ;;
    esac
    t1=$(date +%s.%N)
    stop_loads
    secs=$(echo "$t1 - $t0" | bc)
    report_loads "$mode" "$secs" "$pre"
    if [ "$mode" != alone ]; then
        python3 - "$work/report-$mode.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for c in r["controls"]:
    for k in c["checks"]:
        print("    %-5s %-6s %7.1fs  %s" % (k["id"], k["status"], k["duration_ms"] / 1000, k["summary"][:90]))
EOF
        echo "    agent CPU (user sys): $cpu"
    fi
done
