#!/usr/bin/env python3
"""Prints the whole-run bench table from results.jsonl and the JSON reports.

usage: summarize.py RESULTS_JSONL REPORTS_DIR
"""
import json, os, statistics, sys
from collections import defaultdict

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
reports = sys.argv[2]
groups = defaultdict(list)
for r in rows:
    groups[r["label"].rsplit("-", 1)[0]].append(r)

def span(vals, fmt):
    vals = sorted(vals)
    med = statistics.median(vals)
    return f"{fmt.format(med)} ({fmt.format(vals[0])}–{fmt.format(vals[-1])})" if len(vals) > 1 else fmt.format(med)

print()
print("| run | n | wall s | CPU s (user+sys) | agent VmHWM MB | tree max RSS MB | exit | load1 |")
print("|---|---|---|---|---|---|---|---|")
for g, rs in groups.items():
    print(f"| {g} | {len(rs)} | {span([r['wall_s'] for r in rs], '{:.2f}')} | {span([r['cpu_s'] for r in rs], '{:.2f}')} | "
          f"{span([r['own_hwm_mb'] for r in rs], '{:.1f}')} | {span([r['tree_maxrss_mb'] for r in rs], '{:.1f}')} | "
          f"{','.join(sorted({str(r['exit']) for r in rs}))} | {span([r['load1'] for r in rs], '{:.1f}')} |")

# Per-check durations (median over runs) and statuses, per agent group.
for g, rs in groups.items():
    if g.startswith(("lynis", "alone")):
        continue
    durations = defaultdict(list)
    statuses = defaultdict(set)
    for r in rs:
        path = os.path.join(reports, r["label"] + ".json")
        try:
            rep = json.load(open(path))
        except (OSError, ValueError):
            continue
        for c in rep.get("controls", []):
            for k in c.get("checks", []):
                key = f"{c['id']}/{k['id']} ({k.get('type', '?')})"
                durations[key].append(k.get("duration_ms", 0))
                statuses[key].add(k.get("status", "?"))
    if not durations:
        continue
    print(f"\n{g}: per-check duration_ms (median over {len(rs)} runs; checks run concurrently), slowest first")
    print("| check | ms | status |")
    print("|---|---|---|")
    for key, ds in sorted(durations.items(), key=lambda kv: -statistics.median(kv[1])):
        print(f"| {key} | {statistics.median(ds):.0f} | {'/'.join(sorted(statuses[key]))} |")
