#!/usr/bin/env python3
"""Makes a store N times as large as SRC without running anything, for scripts/bench: DST gets
SRC's files hard-linked as they are, plus, for copies 1..N-1, every file of each of SRC's runs
hard-linked again under a new run id (the run id is part of every file name: part-RUN-0001.parquet,
ids-RUN-PARTITION-0001.parquet), and a manifest recording the original runs and every copy.
The id index of a copy points at the original run's files (its rows name them), which hold the same
rows. `tracejoin query --store DST "SELECT count(*) FROM requests"` then counts N times SRC's requests.
Deterministic (copy ids are hashes of the run id and the copy number). Needs SRC and DST on one
file system; DST is replaced.

usage: link_store.py SRC DST N
"""
import hashlib
import json
import os
import shutil
import sys


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    manifest = json.load(open(os.path.join(src, "manifest.json")))
    runs = [r["run"] for r in manifest["runs"]]
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    copies = {run: [hashlib.sha256(("%s-%d" % (run, i)).encode()).hexdigest()[:16] for i in range(1, n)]
              for run in runs}
    files = 0
    for root, _, names in os.walk(src):
        rel = os.path.relpath(root, src)
        os.makedirs(os.path.join(tmp, rel), exist_ok=True)
        for name in names:
            if not name.endswith(".parquet"):
                continue
            path = os.path.join(root, name)
            os.link(path, os.path.join(tmp, rel, name))
            files += 1
            for run in runs:
                if "-%s-" % run in name:
                    for new in copies[run]:
                        os.link(path, os.path.join(tmp, rel, name.replace("-%s-" % run, "-%s-" % new)))
                        files += 1
    entries = list(manifest["runs"])
    for entry in manifest["runs"]:
        for new in copies[entry["run"]]:
            copy = dict(entry)
            copy["run"] = new
            entries.append(copy)
    manifest["runs"] = entries
    with open(os.path.join(tmp, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=2)
    shutil.rmtree(dst, ignore_errors=True)
    os.rename(tmp, dst)
    print("%s: %d runs, %d files (hard links to %s)" % (dst, len(entries), files, src), file=sys.stderr)


if __name__ == "__main__":
    main()
