#!/usr/bin/env python3
"""Recall and precision of vigil's log_secrets on a public corpus plus our own lines.

Public corpus: the labelled true positives (`tps`) and false positives (`fps`) of
gitleaks' rules (cmd/generate/config/rules/*.go), fetched to this machine; only
whole single-line string literals are taken (samples generated at run time are
not). Their files are not committed: pass the gitleaks checkout.

    python3 measure.py /work/.mirror/gitleaks+gitleaks/repo target/debug/vigil-agent

A true-positive line of a rule in vigil's scope must give a finding; any
finding on an `fps` line or an innocent own line is a false positive.
"""
import json, os, re, subprocess, sys, tempfile

# gitleaks rule file -> in vigil's scope (a detector of it claims that class)
RULES = {"aws.go": True, "github.go": True, "slack.go": True, "stripe.go": True,
         "privatekey.go": True, "curl.go": True, "jwt.go": False, "generic.go": False}

def literals(block):
    out = []
    for m in re.finditer(r'(?m)^\s*(`[^`\n]*`|"(?:[^"\\\n]|\\.)*")\s*,\s*(?://.*)?$', block):
        s = m.group(1)
        out.append(s[1:-1] if s[0] == '`' else json.loads(s))
    return out

# True positives of an in-scope rule file that vigil does not claim to find:
# Amazon Bedrock API keys (aws.go), Stripe test and `rk_prod_` keys (vigil
# finds live keys), generic `Authorization: Token …`/`Api-Token` headers and
# Basic credentials with an empty password (curl.go).
OUT_OF_SCOPE = re.compile(r"ABSK|bedrock|sk_test_|rk_prod_|Api-Token|Authorization: ?Token|Authorization: +[0-9a-f]{8}-|Authorization:eyJ|sha256~|\bToken: ")

def in_scope(s):
    return not OUT_OF_SCOPE.search(s)

def blocks(src, kind):
    """The bodies of `kind := []string{...}` and `kind = append(kind, ...)`,
    brackets balanced outside string literals."""
    for m in re.finditer(kind + r'\s*:?=\s*(\[\]string\{|append\(' + kind + r',)', src):
        i, depth, out = m.end(), 1, []
        while i < len(src) and depth:
            c = src[i]
            if c in '`"':
                j = src.index(c, i + 1) if c == '`' else re.compile(r'"(?:[^"\\\n]|\\.)*"').match(src, i).end() - 1
                out.append(src[i:j + 1]); i = j + 1; continue
            if c == '/' and src.startswith('//', i):
                j = src.find('\n', i); i = len(src) if j < 0 else j; continue
            depth += c in '({[' ; depth -= c in ')}]'
            out.append(c); i += 1
        yield ''.join(out)

def gitleaks(repo):
    cases = []
    for name, scope in RULES.items():
        src = subprocess.run(["git", "-C", repo, "show", f"HEAD:cmd/generate/config/rules/{name}"],
                             capture_output=True, text=True).stdout
        for kind in ("tps", "fps"):
            for block in blocks(src, kind):
                for s in literals(block):
                    if "\n" in s or not s.strip():
                        continue
                    cases.append((f"gitleaks/{name}", kind == "tps", scope and in_scope(s), s))
    return cases

def own(path):
    cases = []
    for row in open(path, encoding="utf-8"):
        if row.startswith("#") or not row.strip():
            continue
        label, line = row.rstrip("\n").split("\t", 1)
        cases.append(("own", label != "-", True, line))
    return cases

def main():
    repo, agent = sys.argv[1], sys.argv[2]
    here = os.path.dirname(os.path.abspath(__file__))
    cases = gitleaks(repo) + own(os.path.join(here, "own.tsv"))
    with tempfile.TemporaryDirectory() as d:
        os.makedirs(f"{d}/root/var/log")
        with open(f"{d}/root/var/log/corpus.log", "w", encoding="utf-8") as f:
            for c in cases:
                f.write(c[3].replace("\n", " ") + "\n")
        pol = f"{d}/p.yaml"
        open(pol, "w").write("policy: {id: m, version: '1', title: m}\ncontrols:\n  - id: M\n    title: m\n    checks:\n      - id: s\n        type: log_secrets\n        with: {paths: [/var/log/corpus.log], max_findings_per_file: 100000, incremental: false}\n")
        out = subprocess.run([agent, "check", "--policy", pol, "--format", "json", "--root", f"{d}/root",
                              "--state-dir", f"{d}/state"], capture_output=True, text=True).stdout
    report = json.loads(out)
    hit_lines = set()
    for c in report["controls"][0]["checks"][0]["findings"]:
        loc = c.get("location") or {}
        if loc.get("line"):
            hit_lines.add(loc["line"])
    stats = {}
    for i, (src, pos, scope, line) in enumerate(cases, 1):
        s = stats.setdefault(src, {"tp": 0, "fn": 0, "fp": 0, "tn": 0, "out_of_scope_found": 0, "out_of_scope": 0})
        hit = i in hit_lines
        if pos and not scope:
            s["out_of_scope"] += 1
            s["out_of_scope_found"] += hit
        elif pos:
            s["tp" if hit else "fn"] += 1
            if not hit:
                print(f"missed ({src}): {line[:120]}", file=sys.stderr)
        else:
            s["fp" if hit else "tn"] += 1
            if hit:
                print(f"false positive ({src}): {line[:120]}", file=sys.stderr)
    tot = {k: sum(s[k] for s in stats.values()) for k in ("tp", "fn", "fp", "tn")}
    for name, s in sorted(stats.items()) + [("all", tot)]:
        tp, fn, fp = s["tp"], s["fn"], s["fp"]
        rec = tp / (tp + fn) if tp + fn else float("nan")
        prec = tp / (tp + fp) if tp + fp else float("nan")
        extra = f", out of scope found {s['out_of_scope_found']}/{s['out_of_scope']}" if s.get("out_of_scope") else ""
        print(f"{name:24} tp {tp:3} fn {fn:3} fp {fp:3} tn {s['tn']:3}  recall {rec:.3f}  precision {prec:.3f}{extra}")

main()
