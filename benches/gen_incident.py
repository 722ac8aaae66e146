#!/usr/bin/env python3
"""Clones the bundled incident (sample-logs/: an nginx access log, two backend logs, OTLP/JSON traces
and logs; 300 requests from 911 events) K times into OUT/, same folder layout, for scripts/bench.

Clone k (0..K-1):
  - fresh ids: every request id, trace id and span id (32 or 16 hex characters, wherever they occur:
    `rid=`, `tp=`, JSON fields, OTLP traceId/spanId/parentSpanId, header attributes) has its first 6
    hex characters replaced by the clone's own 6-hex prefix, and every correlation id `cli-XXXXXXXX`
    gets that prefix inserted after `cli-`. The same original id becomes the same new id in every
    file of a clone (joins hold within a clone) and different ids in different clones (never across).
    Uniqueness is checked: no two original ids map to one new id.
  - shifted clocks: every timestamp moves by k * PERIOD whole seconds, PERIOD = the incident's span
    (first to last timestamp, rounded up) + a 1 s gap, so clones follow each other and every file
    stays in time order. Each file's own spelling is kept: nginx `[$time_local]` and `msec=`,
    ISO `"timestamp"` (orders) and `time=` (payments), OTLP `*UnixNano` strings. Timestamps inside
    messages (a token's `exp ...`) are text and left alone.

Fast: each file is cut once into literal pieces and slots (an id prefix, or the whole seconds of a
timestamp: the sub-second digits are untouched by a whole-second shift), so a clone is a join of the
pieces with that clone's slot values. Deterministic (seeded). 3,300 clones (~3 M events, ~1.4 GB)
take well under a minute.

usage: gen_incident.py K OUT [SRC]       (SRC defaults to sample-logs next to benches/)
"""
import calendar
import itertools
import math
import os
import random
import re
import sys
import time

# One alternation; each slot kind a named group. Ids are hex runs of exactly 32 or 16 characters.
SLOTS = re.compile(
    r"(?P<clf>(?<=\[)\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d(?= [+-]\d{4}\]))"
    r"|(?P<msec>(?<=msec=)\d{10}(?=\.\d))"
    r"|(?P<iso>(?<=\"timestamp\": \")\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"
    r"|(?P<iso2>(?<=time=)\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)"
    r"|(?P<nano>(?<=UnixNano\":\")\d{10}(?=\d{9}\"))"
    r"|(?<=cli-)(?P<cli>)(?=[0-9a-f]{8}(?![0-9A-Za-z]))"
    r"|(?<![0-9A-Za-z])(?P<id>[0-9a-f]{6})(?=[0-9a-f]{26}(?![0-9A-Za-z])|[0-9a-f]{10}(?![0-9A-Za-z]))"
)
ID_RE = re.compile(r"(?<![0-9A-Za-z])(?:[0-9a-f]{32}|[0-9a-f]{16})(?![0-9A-Za-z])")
PREFIX = "P"  # the slot key of a clone's id prefix


def seconds(kind, text):
    if kind == "clf":
        return calendar.timegm(time.strptime(text, "%d/%b/%Y:%H:%M:%S"))
    if kind in ("iso", "iso2"):
        return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%S"))
    return int(text)  # msec, nano: epoch seconds


def spell(kind, secs):
    if kind == "clf":
        return time.strftime("%d/%b/%Y:%H:%M:%S", time.gmtime(secs))
    if kind in ("iso", "iso2"):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    return str(secs)


def cut(text):
    """text -> (literal pieces, slot keys); len(pieces) == len(slots) + 1."""
    pieces, slots, at = [], [], 0
    for m in SLOTS.finditer(text):
        kind = m.lastgroup
        pieces.append(text[at:m.start()])
        if kind == "id":
            slots.append(PREFIX)  # replaces the id's first 6 characters
        elif kind == "cli":
            slots.append(PREFIX)  # inserted before the 8 hex characters
        else:
            slots.append((kind, seconds(kind, m.group())))
        at = m.end()
    pieces.append(text[at:])
    return pieces, slots


def main():
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    k_clones, out = int(sys.argv[1]), sys.argv[2]
    src = sys.argv[3] if len(sys.argv) == 4 else os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                                "..", "sample-logs")
    files = []
    for root, _, names in os.walk(src):
        for name in sorted(names):
            if not name.startswith("."):
                path = os.path.join(root, name)
                files.append((os.path.relpath(path, src), open(path, encoding="utf-8").read()))
    files.sort()

    templates = [(rel, cut(text)) for rel, text in files]
    secs = sorted({s[1] for _, (_, slots) in templates for s in slots if s != PREFIX})
    span = secs[-1] - secs[0]
    period = math.ceil(span + 1) + 1  # whole seconds: first to last timestamp's second, plus a 1 s gap

    # Every original id, and a check that prefix replacement keeps them apart within a clone.
    ids = {m.group() for _, text in files for m in ID_RE.finditer(text)}
    assert len({i[6:] + str(len(i)) for i in ids}) == len(ids), "two ids differ only in their first 6 characters"

    rng = random.Random(20261125)
    prefixes = ["%06x" % p for p in rng.sample(range(1 << 24), k_clones)]

    handles = {}
    for rel, _ in templates:
        os.makedirs(os.path.dirname(os.path.join(out, rel)), exist_ok=True)
        handles[rel] = open(os.path.join(out, rel), "w", encoding="utf-8", buffering=1 << 22)
    kinds = sorted({s[0] for _, (_, slots) in templates for s in slots if s != PREFIX})
    for k in range(k_clones):
        shift = k * period
        values = {PREFIX: prefixes[k]}
        for kind in kinds:
            for s in secs:
                values[(kind, s)] = spell(kind, s + shift)
        for rel, (pieces, slots) in templates:
            vals = list(map(values.__getitem__, slots))
            vals.append("")
            handles[rel].write("".join(itertools.chain.from_iterable(zip(pieces, vals))))
    for h in handles.values():
        h.close()
    print("%d clones of %s (%d files, %d ids, %d s apart) in %s" % (k_clones, src, len(files), len(ids), period, out),
          file=sys.stderr)


if __name__ == "__main__":
    main()
