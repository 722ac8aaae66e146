#!/usr/bin/env python3
"""Batch beyond one machine: `tracejoin analyze` over time shards, on Spark.

The driver plans time shards over [--from, --to); each Spark task runs the
tracejoin binary on its executor for one shard:

    tracejoin analyze INPUT... --shard-start S --shard-end E --out STORE

Every shard reads the inputs from the shared path (a mounted bucket, NFS, HDFS
fuse: wherever the executors see the same files), keeps the events within
--guard of its shard and emits exactly the requests that started inside it;
a request that straddles a boundary belongs to the shard it started in. Each
shard writes its own run (its own run id) into the one store, whose manifest
is updated under a lock; the union of the shards is the single run's answer.
Query the store with `tracejoin query`, `report`, `incidents`, or Spark itself
(`spark.read.parquet(STORE + "/requests")`).

usage: spark-submit examples/spark/shards.py --input PATH [--input PATH...] --store DIR
           --from T --to T (--shards N | --width SECONDS | --cuts T,T,...) [--guard 5m]
           [--tracejoin BIN] [--master local[4]]
       (or plain python with pyspark installed)

T: RFC 3339 (2026-11-25T21:00:00Z). The binary must be at the same path on
every executor (--tracejoin, default `tracejoin` on PATH). Prints one JSON line
per shard (start, end, exit code, requests written) and exits 1 if a shard
failed; exit code 1 of tracejoin (some input lines unparseable, reported) is
not a failure.
"""

import argparse
import datetime as dt
import json
import re
import subprocess
import sys


def parse_time(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00")).astimezone(dt.timezone.utc)


def rfc3339(t):
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def plan(start, end, shards=None, width=None, cuts=None):
    """Contiguous shards covering [start, end): no gap, no overlap."""
    if cuts is not None:
        points = [start] + sorted(parse_time(c) for c in cuts) + [end]
        return [(rfc3339(a), rfc3339(b)) for a, b in zip(points, points[1:]) if a < b]
    if width is None:
        width = (end - start) / shards
    else:
        width = dt.timedelta(seconds=width)
    out, s = [], start
    while s < end:
        e = min(s + width, end)
        out.append((rfc3339(s), rfc3339(e)))
        s = e
    return out


def run_shards(binary, inputs, store, guard):
    def run(shards):
        for start, end in shards:
            cmd = [binary, "analyze", *inputs, "--shard-start", start, "--shard-end", end,
                   "--shard-guard", guard, "--out", store]
            p = subprocess.run(cmd, capture_output=True, text=True)
            m = re.search(r"wrote (\d+) requests \((\d+) failed\)", p.stderr)
            yield {
                "start": start, "end": end, "exit": p.returncode,
                "requests": int(m.group(1)) if m else None,
                "failed": int(m.group(2)) if m else None,
                "stderr": "" if p.returncode in (0, 1) else p.stderr[-2000:],
            }
    return run


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", action="append", required=True)
    ap.add_argument("--store", required=True)
    ap.add_argument("--from", dest="start", required=True)
    ap.add_argument("--to", dest="end", required=True)
    size = ap.add_mutually_exclusive_group(required=True)
    size.add_argument("--shards", type=int)
    size.add_argument("--width", type=float, help="seconds")
    size.add_argument("--cuts", help="the boundaries between shards, comma-separated RFC 3339 times")
    ap.add_argument("--guard", default="5m")
    ap.add_argument("--tracejoin", default="tracejoin")
    ap.add_argument("--master", default=None, help="e.g. local[4]; default: spark-submit's")
    args = ap.parse_args()

    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName("tracejoin-shards").config("spark.ui.enabled", "false")
    if args.master:
        builder = builder.master(args.master)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    shards = plan(parse_time(args.start), parse_time(args.end), args.shards, args.width,
                  args.cuts.split(",") if args.cuts else None)
    results = (spark.sparkContext.parallelize(shards, len(shards))
               .mapPartitions(run_shards(args.tracejoin, args.input, args.store, args.guard))
               .collect())
    spark.stop()
    for r in results:
        print(json.dumps(r, sort_keys=True))
    sys.exit(1 if any(r["exit"] not in (0, 1) for r in results) else 0)


if __name__ == "__main__":
    main()
