#!/usr/bin/env python3
"""Incidents with known intervals on a real stack, under normal traffic.

usage: run.py OUT_DIR TRUTH_DIR [--seed N] [--nginx PATH] [--redis-server PATH]

    client (this driver) -> nginx (gateway) -> storefront (FastAPI) -> catalog (FastAPI) -> Redis

Starts redis-server, catalog, two storefront releases (blue 1.4.0, serving
everything; green 2.0.0, idle until the deploy) and nginx; sends a seeded mix
of requests (~25/s, several routes, plus background noise); and switches four
faults on and off at known times while the traffic runs:

  redis-down    redis-server killed, restarted on the same port 20 s later
  key-rotation  the token issuer signs with a new key; storefront trusts it
                only after it re-reads its keys file (SIGHUP) 10 s later
  rate-limit    nginx limit_req lowered to 2r/s (reload), restored 15 s later
  bad-deploy    nginx routes /orders/ to the green release (reload), whose
                order mapping fails its response_model; rolled back 15 s later

OUT_DIR gets what an on-call engineer would export:

  gateway/access.log            nginx, log_format tracejoin (tests/realstack/stack.py)
  gateway/error.log             nginx's error log at its default level (error)
  storefront/storefront.log     JSON lines of the blue release (1.4.0)
  storefront/storefront-green.log  JSON lines of the green release (2.0.0)
  catalog/catalog.log           JSON lines of catalog
  otel/traces.jsonl             OTLP/JSON spans of all three processes

TRUTH_DIR gets faults.json (each fault's interval, label, origin and path)
and requests.csv (one row per request sent, with its truth). See README.md.
"""

import argparse
import collections
import csv
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "realstack"))

import jwt  # noqa: E402

import stack  # noqa: E402  (NGINX_HTTP_COMMON, free_port, wait_port, stop)

NGINX_CONF = r"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {out}/gateway/error.log;
events {{ worker_connections 1024; }}
http {{
""" + stack.NGINX_HTTP_COMMON + r"""
  limit_req_zone $binary_remote_addr zone=api:1m rate={rate};
  upstream storefront_blue {{ server 127.0.0.1:{blue_port}; keepalive 16; }}
  upstream storefront_green {{ server 127.0.0.1:{green_port}; keepalive 16; }}

  server {{
    listen 127.0.0.1:{port};
    server_name shop.example.test;
    access_log {out}/gateway/access.log tracejoin;
    add_header X-Request-Id $request_id always;
    limit_req zone=api burst={burst} nodelay;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-Id $request_id;

    location / {{ proxy_pass http://storefront_blue; }}
    location /orders/ {{ proxy_pass http://storefront_{orders}; }}
  }}
}}
"""

NORMAL_LIMIT = ("1000r/s", 200)
LOWERED_LIMIT = ("2r/s", 2)

KEY_1 = "storefront-issuer-key-2025-01-a1b2c3d4e5f60718293a"
KEY_2 = "storefront-issuer-key-2025-07-f0e1d2c3b4a5968778695"

# Requests per second of normal traffic. The episodes' edges are measured
# from the requests that met the fault: at 25/s the least-used faulted route
# (/orders/, 28 %) still gets ~7 requests a second, so its first and last
# failure fall well within a second of the switch (at 17/s, ~1 run in 50
# would miss by more than a second for want of a request).
RATE = 25.0
TOTAL = 120.0  # seconds of traffic
# name, switched on at (s after the traffic started), duration (s)
SCHEDULE = [("redis-down", 12.0, 20.0), ("key-rotation", 44.0, 10.0),
            ("rate-limit", 66.0, 15.0), ("bad-deploy", 93.0, 15.0)]
FAULT_TRUTH = {
    "redis-down": ("upstream", "redis", ["nginx", "storefront", "catalog", "redis"]),
    "key-rotation": ("auth", "storefront", ["nginx", "storefront"]),
    "rate-limit": ("quota", "nginx", ["nginx"]),
    "bad-deploy": ("transform", "storefront", ["nginx", "storefront", "catalog"]),
}
FAULT_NOTES = {
    "redis-down": "redis-server SIGKILLed (start: after it was reaped) and restarted on the same port "
                  "(end: once it listens). catalog's redis-py retries (its default policy: 10 attempts, "
                  "backoff capped at 1 s) for about 4 s before its ConnectionError reaches uvicorn: a "
                  "request fails about 4 s after it was sent, and requests sent in the last ~4 s of the "
                  "interval mostly succeed once Redis is back. Only /products/ and /cart touch Redis.",
    "key-rotation": "The issuer (this driver) signs new tokens with a new key and publishes it in "
                    "storefront's keys file (start); storefront re-reads the file on SIGHUP, sent to both "
                    "releases 10 s later (end: once both logged the reload). Every authenticated route fails "
                    "with 401 in between.",
    "rate-limit": "nginx limit_req zone rate lowered from 1000r/s burst=200 to 2r/s burst=2 nodelay (reload; "
                  "start: once the new worker runs and the old one exited), restored the same way (end). "
                  "Rejected requests get nginx's default limit_req_status 503 and never reach storefront.",
    "bad-deploy": "nginx reload routing /orders/ to storefront 2.0.0 (green; start), reload back to 1.4.0 "
                  "(blue; end). green calls catalog (200) and then fails its response_model "
                  "(ResponseValidationError, 500): the request crossed nginx, storefront and catalog; the "
                  "failure starts in storefront.",
}

USERS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi"]
MIX = [("product", 40), ("cart", 20), ("order", 28), ("health", 12)]
NOISE = ["noauth", "scanner", "badbody"]
SCANNER_PATHS = ["/wp-login.php", "/.env", "/phpmyadmin/index.php", "/.git/config", "/cgi-bin/luci",
                 "/admin/config.php", "/actuator/health", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php"]
# The services each kind of request crosses when it works (and when it fails
# in the background's own way).
SERVICE_PATH = {"product": "nginx>storefront>catalog>redis", "cart": "nginx>storefront>catalog>redis",
                "order": "nginx>storefront>catalog", "health": "nginx>storefront",
                "noauth": "nginx>storefront", "scanner": "nginx>storefront", "badbody": "nginx>storefront"}
BACKGROUND = {"noauth": (401, "auth"), "scanner": (404, "routing"), "badbody": (422, "transform")}
BOUNDARY = 0.5


class Issuer:
    """The token issuer: signs with its current key (kid k1, then k2)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.kid, self.key = "k1", KEY_1

    def rotate(self):
        with self.lock:
            self.kid, self.key = "k2", KEY_2

    def token(self, user):
        with self.lock:
            kid, key = self.kid, self.key
        now = int(time.time())
        tok = jwt.encode({"sub": user, "aud": "storefront", "iat": now, "exp": now + 900}, key,
                         algorithm="HS256", headers={"kid": kid})
        return tok, kid


def build_schedule(rng):
    """[(offset, kind, method, path, body, user, traceparent)], sorted by offset."""
    reqs = []
    t = 0.2
    while t < TOTAL:
        kind = rng.choices([k for k, _ in MIX], weights=[w for _, w in MIX])[0]
        reqs.append([t, kind])
        t += rng.expovariate(RATE)
    for kind in NOISE:
        t = rng.uniform(1.0, 4.0)
        while t < TOTAL:
            reqs.append([t, kind])
            t += rng.uniform(3.0, 6.0)
    reqs.sort(key=lambda r: (r[0], r[1]))
    out = []
    for t, kind in reqs:
        user = rng.choice(USERS)
        body = None
        if kind == "product":
            method, path = "GET", f"/products/{rng.randint(1, 300)}"
        elif kind == "cart":
            method, path = "POST", "/cart"
            body = json.dumps({"product_id": rng.randint(1, 300), "quantity": rng.randint(1, 3)}).encode()
        elif kind == "order":
            method, path = "GET", f"/orders/{rng.randint(1000, 1999)}"
        elif kind == "health":
            method, path = "GET", "/health"
        elif kind == "noauth":
            method, path = "GET", rng.choice([f"/products/{rng.randint(1, 300)}", f"/orders/{rng.randint(1000, 1999)}"])
        elif kind == "scanner":
            method, path = rng.choice(["GET", "GET", "POST"]), rng.choice(SCANNER_PATHS)
        else:  # badbody
            method, path = "POST", "/cart"
            body = rng.choice([json.dumps({"product_id": "twelve", "quantity": 1}).encode(),
                               json.dumps({"product_id": 12, "quantity": 0}).encode(),
                               json.dumps({"product_id": 12}).encode(),
                               b'{"product_id": 12, "quantity": 1',
                               b"product_id=12&quantity=1"])
        tp = None
        if kind in ("product", "cart", "order") and rng.random() < 0.5:
            tp = "00-%032x-%016x-01" % (rng.getrandbits(128) | 1, rng.getrandbits(64) | 1)
        out.append((t, kind, method, path, body, user, tp))
    return out


def send(port, issuer, i, req):
    t, kind, method, path, body, user, tp = req
    headers = {"Host": "shop.example.test"}
    kid = ""
    if kind == "scanner":
        headers["User-Agent"] = "Mozilla/5.0 zgrab/0.x"
    elif kind == "noauth":
        headers["User-Agent"] = "curl/7.88.1"
    else:
        headers["User-Agent"] = "shop-web/3.1"
        headers["X-Consumer-Id"] = user
        tok, kid = issuer.token(user)
        headers["Authorization"] = "Bearer " + tok
    if body is not None:
        headers["Content-Type"] = "application/json"
    if tp:
        headers["traceparent"] = tp
    sent_at = time.time()
    status, rid, payload = 0, "", b""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        status, rid = resp.status, resp.getheader("X-Request-Id", "")
        conn.close()
    except (OSError, http.client.HTTPException) as exc:
        payload = repr(exc).encode()
    return {"i": i, "request_id": rid, "sent_at": sent_at, "method": method, "path": path, "status": status,
            "kind": kind, "kid": kid, "trace_id": tp.split("-")[1] if tp else "",
            "from_gateway": b"<center>nginx" in payload, "body": payload[:300].decode("utf-8", "replace"),
            "done_at": time.time()}


def children(pid):
    kids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            kids.add(int(d))
    return kids


class Stack:
    def __init__(self, args, out, prefix):
        self.args, self.out, self.prefix = args, out, prefix
        self.procs = {}
        self.conf_path = os.path.join(prefix, "nginx.conf")
        self.keys_path = os.path.join(prefix, "storefront-keys.json")
        self.redis_port = stack.free_port()
        self.catalog_port = stack.free_port()
        self.blue_port = stack.free_port()
        self.green_port = stack.free_port()
        self.port = stack.free_port()
        self.limit = NORMAL_LIMIT
        self.orders = "blue"
        self.env = dict(os.environ, OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST="x-request-id",
                        PYTHONUNBUFFERED="1")

    def spawn(self, name, argv, **kw):
        errf = open(os.path.join(self.prefix, f"{name}-stderr.log"), "a")
        # Its own process group, so that cleanup reaches every child it forks.
        proc = subprocess.Popen(argv, stdout=errf, stderr=subprocess.STDOUT, start_new_session=True,
                                env=self.env, **kw)
        errf.close()
        self.procs[name] = proc
        return proc

    def start_redis(self):
        proc = self.spawn("redis", [self.args.redis_server, "--port", str(self.redis_port), "--bind", "127.0.0.1",
                                    "--save", "", "--appendonly", "no", "--dir", self.prefix,
                                    "--logfile", os.path.join(self.prefix, "redis.log")])
        stack.wait_port(self.redis_port, timeout=10, proc=proc)

    def write_keys(self, keys):
        tmp = self.keys_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"keys": keys}, f)
        os.replace(tmp, self.keys_path)

    def write_nginx_conf(self):
        rate, burst = self.limit
        conf = NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "", prefix=self.prefix,
                                 out=self.out, port=self.port, blue_port=self.blue_port,
                                 green_port=self.green_port, rate=rate, burst=burst, orders=self.orders)
        with open(self.conf_path, "w") as f:
            f.write(conf)

    def start(self):
        py = sys.executable
        self.start_redis()
        self.write_keys([KEY_1])
        self.spawn("catalog", [py, os.path.join(HERE, "catalog.py"), "--port", str(self.catalog_port),
                               "--redis-port", str(self.redis_port),
                               "--log", os.path.join(self.out, "catalog", "catalog.log"),
                               "--otel", os.path.join(self.out, "otel")])
        for name, port, version, log in (("blue", self.blue_port, "1.4.0", "storefront.log"),
                                         ("green", self.green_port, "2.0.0", "storefront-green.log")):
            self.spawn(name, [py, os.path.join(HERE, "storefront.py"), "--port", str(port),
                              "--catalog", f"http://127.0.0.1:{self.catalog_port}", "--keys", self.keys_path,
                              "--log", os.path.join(self.out, "storefront", log),
                              "--otel", os.path.join(self.out, "otel"), "--version", version,
                              "--instance", f"storefront-{name}"])
        self.write_nginx_conf()
        os.makedirs(os.path.join(self.prefix, "tmp"), exist_ok=True)
        self.spawn("nginx", [self.args.nginx, "-p", self.prefix, "-c", self.conf_path])
        for name, port in (("catalog", self.catalog_port), ("blue", self.blue_port),
                           ("green", self.green_port), ("nginx", self.port)):
            stack.wait_port(port, timeout=30, proc=self.procs[name])

    def reload_nginx(self):
        """nginx -s reload; returns once the new worker runs and the old ones
        have exited (they stop accepting at once, and finish what is in flight)."""
        master = self.procs["nginx"].pid
        old = children(master)
        self.write_nginx_conf()
        # (its "signal process started" notice goes to stderr: kept only when it fails)
        done = subprocess.run([self.args.nginx, "-p", self.prefix, "-c", self.conf_path, "-s", "reload"],
                              capture_output=True, text=True)
        if done.returncode:
            raise RuntimeError(f"nginx -s reload failed ({done.returncode}): {done.stderr.strip()}")
        end = time.time() + 10
        while time.time() < end:
            now = children(master)
            if now - old and not (now & old):
                return
            time.sleep(0.005)
        raise RuntimeError("nginx reload: no new worker within 10 s")

    def sighup_storefronts(self):
        """SIGHUP to both releases; returns once both logged the reload."""
        logs = {name: os.path.join(self.out, "storefront", log)
                for name, log in (("blue", "storefront.log"), ("green", "storefront-green.log"))}
        offsets = {name: os.path.getsize(path) for name, path in logs.items()}
        for name in logs:
            self.procs[name].send_signal(signal.SIGHUP)
        end = time.time() + 10
        pending = set(logs)
        while pending and time.time() < end:
            for name in list(pending):
                with open(logs[name], "rb") as f:
                    f.seek(offsets[name])
                    if b"signing keys reloaded" in f.read():
                        pending.discard(name)
            time.sleep(0.005)
        if pending:
            raise RuntimeError(f"storefront {sorted(pending)} did not reload its keys")

    # The faults: each switch returns once it has taken effect.
    def switch(self, name, on, issuer):
        if name == "redis-down":
            if on:
                proc = self.procs["redis"]
                proc.send_signal(signal.SIGKILL)
                proc.wait()
            else:
                self.start_redis()
        elif name == "key-rotation":
            if on:
                self.write_keys([KEY_1, KEY_2])  # published; storefront reads it on SIGHUP only
                issuer.rotate()
            else:
                self.sighup_storefronts()
        elif name == "rate-limit":
            self.limit = LOWERED_LIMIT if on else NORMAL_LIMIT
            self.reload_nginx()
        elif name == "bad-deploy":
            self.orders = "green" if on else "blue"
            self.reload_nginx()
        return time.time()

    def stop(self):
        # The gateway first, then the services (SIGTERM: uvicorn's lifespan
        # flushes the span exporter), Redis last.
        for name in ("nginx", "blue", "green", "catalog", "redis"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            try:
                stack.stop(proc, timeout=15)
            finally:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # anything left in its group
                except (ProcessLookupError, PermissionError):
                    pass


def truth(r, faults):
    """(label, origin, service_path, cause) of one request."""
    kind, status = r["kind"], r["status"]
    if 200 <= status < 400:
        return "", "", SERVICE_PATH[kind], ""

    def during(name):
        f = faults[name]
        return f["start"] - BOUNDARY <= r["sent_at"] <= f["end"] + BOUNDARY

    def fault(name):
        label, origin, path = FAULT_TRUTH[name]
        return label, origin, ">".join(path), name

    if status == 503 and r["from_gateway"] and during("rate-limit"):
        return fault("rate-limit")
    if kind in BACKGROUND and status == BACKGROUND[kind][0]:
        return BACKGROUND[kind][1], "storefront", SERVICE_PATH[kind], "background"
    if status == 401 and r["kid"] == "k2" and during("key-rotation") and "Signature verification failed" in r["body"]:
        return fault("key-rotation")
    if status == 502 and not r["from_gateway"] and kind in ("product", "cart") and during("redis-down"):
        return fault("redis-down")
    if status == 500 and kind == "order" and during("bad-deploy"):
        return fault("bad-deploy")
    return ("upstream" if status >= 500 or status == 0 else ""), "", SERVICE_PATH[kind], "unexpected"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--redis-server", default=shutil.which("redis-server") or "/usr/bin/redis-server")
    args = ap.parse_args()
    started = time.time()
    out, truth_dir = os.path.abspath(args.out), os.path.abspath(args.truth)
    if os.path.commonpath([out, truth_dir]) in (out, truth_dir):
        sys.exit("OUT_DIR and TRUTH_DIR must be separate folders (the tool reads all of OUT_DIR)")
    for sub in ("gateway", "storefront", "catalog", "otel"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for rel in ("gateway/access.log", "gateway/error.log", "storefront/storefront.log",
                "storefront/storefront-green.log", "catalog/catalog.log", "otel/traces.jsonl"):
        open(os.path.join(out, rel), "w").close()
    os.makedirs(truth_dir, exist_ok=True)

    def on_term(signum, frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_term)

    schedule = build_schedule(random.Random(args.seed))
    prefix = tempfile.mkdtemp(prefix="tracejoin-incidents-")
    st = Stack(args, out, prefix)
    issuer = Issuer()
    faults = {}
    rows = []
    keep = True
    stop_sending = threading.Event()
    try:
        st.start()
        ready = time.time()
        t0 = time.time() + 0.2
        with ThreadPoolExecutor(max_workers=96) as ex:
            futures = []

            def dispatch():
                for i, req in enumerate(schedule):
                    delay = t0 + req[0] - time.time()
                    if stop_sending.wait(delay) if delay > 0 else stop_sending.is_set():
                        return
                    futures.append(ex.submit(send, st.port, issuer, i, req))

            dispatcher = threading.Thread(target=dispatch, daemon=True)
            dispatcher.start()
            try:
                for name, at, duration in SCHEDULE:
                    time.sleep(max(0.0, t0 + at - time.time()))
                    start = st.switch(name, True, issuer)
                    time.sleep(max(0.0, start + duration - time.time()))
                    end = st.switch(name, False, issuer)
                    label, origin, path = FAULT_TRUTH[name]
                    faults[name] = {"name": name, "label": label, "origin": origin, "path": path,
                                    "start": start, "end": end, "notes": FAULT_NOTES[name]}
                    print(f"{name}: {start - t0:6.2f}s .. {end - t0:6.2f}s", file=sys.stderr)
            finally:
                if len(faults) < len(SCHEDULE):
                    stop_sending.set()
                dispatcher.join()
            rows = [fu.result() for fu in futures]
        traffic_end = time.time()
        for name, proc in st.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited early ({proc.returncode}); see {prefix}/{name}-stderr.log")
        keep = False
    except BaseException:
        print(f"run failed; process output kept in {prefix}", file=sys.stderr)
        raise
    finally:
        time.sleep(0.5)  # the span processors' last batch (300 ms)
        st.stop()
        for name in ("catalog", "blue", "green"):
            path = os.path.join(prefix, f"{name}-stderr.log")
            if os.path.exists(path) and os.path.getsize(path):
                # Everything the services log goes to their log files: anything here is unexpected.
                with open(path) as f:
                    print(f"{name} stderr:\n" + f.read()[-3000:], file=sys.stderr)
        if not keep:
            shutil.rmtree(prefix, ignore_errors=True)

    switches = [t for f in faults.values() for t in (f["start"], f["end"])]
    fault_list = []
    for name, _, _ in SCHEDULE:
        f = dict(faults[name])
        f["start_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(f["start"])) + ".%03dZ" % (f["start"] % 1 * 1000)
        f["end_iso"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(f["end"])) + ".%03dZ" % (f["end"] % 1 * 1000)
        fault_list.append(f)
    with open(os.path.join(truth_dir, "faults.json"), "w") as f:
        json.dump(fault_list, f, indent=2)
        f.write("\n")

    rows.sort(key=lambda r: r["i"])
    per_cause = collections.Counter()
    unexpected = []
    with open(os.path.join(truth_dir, "requests.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["request_id", "sent_at", "method", "path", "status", "label", "origin", "service_path",
                    "cause", "boundary", "kind", "trace_id"])
        for r in rows:
            label, origin, service_path, cause = truth(r, faults)
            boundary = int(any(abs(r["sent_at"] - s) <= BOUNDARY for s in switches))
            if cause:
                per_cause[cause] += 1
            if cause == "unexpected":
                unexpected.append(r)
            w.writerow([r["request_id"], "%.6f" % r["sent_at"], r["method"], r["path"], r["status"], label, origin,
                        service_path, cause, boundary, r["kind"], r["trace_id"]])
    for r in unexpected[:20]:
        print(f"warning: unexpected failure: {r['method']} {r['path']} ({r['kind']}) -> {r['status']} "
              f"rid={r['request_id']} body={r['body'][:120]!r}", file=sys.stderr)
    failed = sum(per_cause.values())
    print(f"{len(rows)} requests, {failed} failed in {traffic_end - ready:.1f}s of traffic "
          f"({time.time() - started:.1f}s in all) -> {out}; truth in {truth_dir}")
    for name, _, _ in SCHEDULE + [("background", 0, 0), ("unexpected", 0, 0)]:
        print(f"  {name:13s} {per_cause.get(name, 0):4d} failed")


if __name__ == "__main__":
    main()
