#!/usr/bin/env python3
"""Runs one command and prints one JSON line: wall seconds, CPU seconds
(user + sys of the command and every descendant it waited for, from wait4),
the tree's peak RSS (ru_maxrss: the largest single process of the tree, e.g.
restic) and the command's own peak (VmHWM of its /proc/PID/status, sampled
every 10 ms until it exits; `ip netns exec` execs, so that is the agent).

usage: measure.py LABEL -- COMMAND...
"""
import json, os, subprocess, sys, time

label = sys.argv[1]
cmd = sys.argv[sys.argv.index("--") + 1:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(os.environ.get("MEASURE_STDERR", "/dev/null"), "ab"))
hwm_kb = 0
status = f"/proc/{p.pid}/status"
while True:
    pid, st, ru = os.wait4(p.pid, os.WNOHANG)
    if pid:
        break
    try:
        with open(status) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    hwm_kb = max(hwm_kb, int(line.split()[1]))
    except (OSError, ValueError):
        pass
    time.sleep(0.01)
wall = time.monotonic() - t0
print(json.dumps({
    "label": label,
    "exit": os.waitstatus_to_exitcode(st),
    "wall_s": round(wall, 3),
    "cpu_s": round(ru.ru_utime + ru.ru_stime, 3),
    "user_s": round(ru.ru_utime, 3),
    "sys_s": round(ru.ru_stime, 3),
    "tree_maxrss_mb": round(ru.ru_maxrss / 1024, 1),
    "own_hwm_mb": round(hwm_kb / 1024, 1),
    "load1": round(os.getloadavg()[0], 2),
}))
