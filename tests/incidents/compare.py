#!/usr/bin/env python3
"""Compares tracejoin's verdicts with run.py's truth, per cause.

usage: compare.py TRUTH_DIR (--json FILE | --tracejoin BIN OUT_DIR)

TRUTH_DIR: run.py's requests.csv and faults.json. --json: the output of
`tracejoin analyze --json OUT_DIR`; --tracejoin runs it. Standard library only.

Per cause (each fault, "background", "unexpected", and "healthy" for requests
that did not fail): how many requests, how many the tool found failed, how many
it gave the truth's label, and its labels. When the tool's lines carry `cause`
({service, ...}) and `path` (the services crossed), the origin and the path are
compared too. Requests sent within 0.5 s of a fault switch (boundary=1) are
counted apart.
"""

import argparse
import collections
import csv
import json
import os
import subprocess
import sys


def tool_lines(args):
    if args.json:
        with open(args.json) as f:
            text = f.read()
    else:
        text = subprocess.run([args.tracejoin, "analyze", "--json", args.out_dir], check=True,
                              capture_output=True, text=True).stdout
    by_id = {}
    for line in text.splitlines():
        if line.strip():
            doc = json.loads(line)
            for rid in [doc.get("request_id")] + list(doc.get("ids") or []):
                if rid:
                    by_id.setdefault(rid, doc)
    return by_id


def tool_origin(doc):
    cause = doc.get("cause")
    if isinstance(cause, dict):
        return cause.get("service")
    return None


def tool_path(doc):
    path = doc.get("path_services", doc.get("services_path"))
    if path is None and isinstance(doc.get("path"), list):
        path = doc["path"]  # the contract's planned `path` key: the services crossed
    return ">".join(path) if isinstance(path, list) else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("truth")
    ap.add_argument("--json")
    ap.add_argument("--tracejoin")
    ap.add_argument("out_dir", nargs="?")
    args = ap.parse_args()
    if not args.json and not (args.tracejoin and args.out_dir):
        ap.error("give --json FILE, or --tracejoin BIN OUT_DIR")
    with open(os.path.join(args.truth, "requests.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(args.truth, "faults.json")) as f:
        faults = json.load(f)
    tool = tool_lines(args)

    order = [f["name"] for f in faults] + ["background", "unexpected", "healthy"]
    stats = {c: collections.Counter() for c in order}
    labels = {c: collections.Counter() for c in order}
    missing = 0
    for r in rows:
        cause = r["cause"] or "healthy"
        doc = tool.get(r["request_id"])
        s = stats[cause]
        part = "b_" if r["boundary"] == "1" else ""
        s[part + "n"] += 1
        if doc is None:
            missing += 1
            s[part + "not_found"] += 1
            continue
        if doc.get("failed"):
            s[part + "failed"] += 1
            labels[cause][doc.get("label")] += 1
        if (doc.get("label") or "") == r["label"]:
            s[part + "label_ok"] += 1
        origin = tool_origin(doc)
        if origin is not None and r["origin"]:
            s[part + "origin_seen"] += 1
            s[part + "origin_ok"] += origin == r["origin"]
        path = tool_path(doc)
        if path is not None and r["label"]:
            s[part + "path_seen"] += 1
            s[part + "path_ok"] += path == r["service_path"]

    truth_label = {f["name"]: f["label"] for f in faults}
    print(f"{len(rows)} requests in the truth, {len(tool)} ids in the tool's output, {missing} truth rows not found")
    print(f"{'cause':13s} {'label':9s} {'n':>5s} {'failed':>6s} {'label ok':>8s}  "
          f"{'origin ok':>9s} {'path ok':>9s}  tool labels (all rows) | boundary: n failed label-ok")
    for c in order:
        s = stats[c]
        if not s["n"] and not s["b_n"]:
            continue
        lab = truth_label.get(c, {"healthy": "-", "background": "*", "unexpected": "?"}.get(c))
        origin = f"{s['origin_ok']}/{s['origin_seen']}" if s["origin_seen"] else "-"
        path = f"{s['path_ok']}/{s['path_seen']}" if s["path_seen"] else "-"
        mix = ", ".join(f"{k}:{v}" for k, v in labels[c].most_common()) or "-"
        print(f"{c:13s} {lab:9s} {s['n']:5d} {s['failed']:6d} {s['label_ok']:8d}  {origin:>9s} {path:>9s}  "
              f"{mix:22s} | {s['b_n']} {s['b_failed']} {s['b_label_ok']}")
    # Background failures per kind of noise, for a closer look.
    bg = collections.Counter()
    for r in rows:
        if r["cause"] == "background":
            doc = tool.get(r["request_id"]) or {}
            bg[(r["kind"], r["label"], doc.get("label"))] += 1
    if bg:
        print("background (kind, truth label, tool label): "
              + ", ".join(f"{k}:{v}" for k, v in sorted(bg.items(), key=str)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
