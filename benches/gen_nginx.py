#!/usr/bin/env python3
"""Writes N nginx combined lines with appended rid= rt= urt= us= fields (~160 bytes
a line), with a realistic mix of statuses, for the whole-run benchmark.

usage: gen_nginx.py N OUT
"""
import random
import sys
import time

n, out = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)
paths = ["/v1/orders", "/v1/orders/%d", "/v1/payments", "/v1/search?q=x", "/admin/stats", "/v2/orders"]
agents = ["curl/8.5.0", "okhttp/4.12.0", "Mozilla/5.0 (X11; Linux x86_64)", "python-requests/2.32.3"]
t0 = int(time.mktime((2026, 11, 24, 10, 0, 0, 0, 0, 0)))
with open(out, "w") as f:
    for i in range(n):
        r = rng.random()
        if r < 0.90:
            status, us = rng.choice([200, 200, 200, 201, 204]), None
        elif r < 0.93:
            status, us = 502, "502"
        elif r < 0.95:
            status, us = 401, "-"
        elif r < 0.97:
            status, us = 404, "-"
        elif r < 0.98:
            status, us = 429, "-"
        else:
            status, us = 504, "504"
        if us is None:
            us = str(status)
        rt = rng.random() * 0.3
        urt = "-" if us == "-" else "%.3f" % (rt * 0.9)
        path = rng.choice(paths)
        if "%d" in path:
            path = path % rng.randint(1, 99999)
        ts = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(t0 + i // 1000))
        f.write('10.%d.%d.%d - - [%s] "GET %s HTTP/1.1" %d %d "-" "%s" rid=%032x rt=%.3f urt=%s us=%s\n' % (
            rng.randint(0, 255), rng.randint(0, 255), rng.randint(1, 254), ts, path, status,
            rng.randint(0, 20000), rng.choice(agents), rng.getrandbits(128), rt, urt, us))
