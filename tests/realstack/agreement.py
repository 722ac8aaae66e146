#!/usr/bin/env python3
"""Compares tracejoin's verdicts with a realstack truth CSV, next to a
status-only baseline (what the HTTP status alone would say).

usage: agreement.py TRUTH_CSV (OUT_DIR | --json FILE) [--tracejoin BIN] [-v]

OUT_DIR is run through `tracejoin analyze --json OUT_DIR`; --json FILE reads
that output from a file instead. A truth row is matched to the verdict whose
request_id, or any of whose `ids`, is the row's request id (ids compared the way
tracejoin normalises them: hex-and-dash ids lowercased without dashes).
"""
import argparse
import collections
import csv
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_BIN = os.path.join(HERE, "..", "..", "target", "debug", "tracejoin")
LABELS = ["auth", "routing", "quota", "transform", "upstream", "unknown", "none", "missing"]


def baseline(status):
    """The status-only baseline: the label a status code alone suggests."""
    s = int(status)
    if s in (401, 403):
        return "auth"
    if s in (404, 405):
        return "routing"
    if s == 429:
        return "quota"
    if s in (400, 413, 414, 415, 422):
        return "transform"
    if 500 <= s <= 599:
        return "upstream"
    return "none"


def norm(i):
    if i and re.fullmatch(r"[0-9A-Fa-f-]+", i):
        return i.replace("-", "").lower()
    return i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("truth")
    ap.add_argument("out_dir", nargs="?")
    ap.add_argument("--json", dest="json_file")
    ap.add_argument("--tracejoin", default=os.path.abspath(DEFAULT_BIN))
    ap.add_argument("-v", "--verbose", action="store_true", help="list every disagreement")
    args = ap.parse_args()
    if args.json_file:
        text = open(args.json_file).read()
    elif args.out_dir:
        proc = subprocess.run([args.tracejoin, "analyze", "--json", args.out_dir],
                              capture_output=True, text=True)
        if proc.returncode not in (0, 1):  # 1 = input errors reported, the verdicts are still there
            sys.exit(f"tracejoin exited {proc.returncode}: {proc.stderr[-2000:]}")
        text = proc.stdout
        errors = [l for l in proc.stderr.splitlines() if l.strip()]
        if proc.returncode == 1 or errors:
            print(f"tracejoin exit {proc.returncode}; stderr (last lines):")
            for l in errors[-6:]:
                print("   ", l[:200])
    else:
        ap.error("give OUT_DIR or --json FILE")

    verdicts = [json.loads(l) for l in text.splitlines() if l.strip().startswith("{")]
    by_id = {}
    for v in verdicts:
        for i in [v.get("request_id")] + list(v.get("ids") or []):
            if i:
                by_id.setdefault(norm(i), v)
    with open(args.truth, newline="") as f:
        truth = list(csv.DictReader(f))

    agree = base_agree = 0
    merged = 0
    matrix = collections.Counter()
    per_scenario = collections.defaultdict(collections.Counter)
    wrong = []
    seen = collections.Counter()
    for t in truth:
        v = by_id.get(norm(t["request_id"]))
        got = "missing" if v is None else (v.get("label") or "none")
        if v is not None:
            seen[id(v)] += 1
        matrix[(t["label"], got)] += 1
        per_scenario[t["scenario"]][(t["label"], got)] += 1
        if got == t["label"]:
            agree += 1
        else:
            wrong.append(f'{t["request_id"]} {t["scenario"]} status {t["status"]}: expected {t["label"]}, '
                         f'got {got}' + (f' (rule {v.get("rule")}, flags {v.get("flags")})' if v else ""))
        if baseline(t["status"]) == t["label"]:
            base_agree += 1
    merged = sum(n for n in seen.values() if n > 1)
    n = len(truth)
    print(f"truth rows: {n}; tracejoin requests: {len(verdicts)}; "
          f"truth rows sharing one tracejoin request with another row: {merged}")
    print(f"agreement: {agree}/{n} = {100.0 * agree / n:.1f}%")
    print(f"status-only baseline: {base_agree}/{n} = {100.0 * base_agree / n:.1f}%")
    print("confusion matrix (rows: truth, columns: tracejoin)")
    print("%10s" % "" + "".join("%10s" % l for l in LABELS))
    for want in LABELS:
        if any(w == want for w, _ in matrix):
            print("%10s" % want + "".join("%10s" % (matrix.get((want, got), "") or ".") for got in LABELS))
    print("per scenario (truth -> tracejoin: count), where they differ:")
    for sc in sorted(per_scenario):
        bad = {k: c for k, c in per_scenario[sc].items() if k[0] != k[1]}
        if bad:
            total = sum(per_scenario[sc].values())
            print(f"  {sc} ({total}): " + ", ".join(f"{w}->{g}: {c}" for (w, g), c in sorted(bad.items())))
    if truth and "attempt" in truth[0]:
        # --retry-in-trace: the attempt number and the request it retries.
        ok = bad = 0
        misses = []
        for t in truth:
            v = by_id.get(norm(t["request_id"])) or {}
            got = (str(v.get("attempt") or ""), norm(v.get("retry_of") or ""))
            want = (t["attempt"], norm(t["retry_of"]))
            if got == want:
                ok += 1
            else:
                bad += 1
                misses.append(f'{t["request_id"]} {t["scenario"]}: attempt/retry_of expected {want}, got {got}')
        print(f"attempt/retry_of agreement: {ok}/{len(truth)} "
              f"({sum(1 for t in truth if t['attempt'])} rows are attempts of a retried operation)")
        wrong += misses
    for w in wrong if args.verbose else wrong[:10]:
        print("  " + w)


if __name__ == "__main__":
    main()
