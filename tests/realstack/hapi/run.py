#!/usr/bin/env python3
"""A real hapi service ("catalog") behind a real nginx, instrumented with the
real OpenTelemetry JS SDK, failing for real through its libraries; a seeded mix
of requests, and the cause injected for each request in a truth CSV that
tracejoin never reads. Standard library only.

usage: run.py OUT_DIR TRUTH_CSV [--seed N] [--requests N]

Needs node_modules: run `npm ci --prefix tests/realstack/hapi` first.

OUT_DIR receives:
  gateway/access.log    nginx, combined + key=value fields (generate.py's format)
  catalog/catalog.log   hapi-pino JSON lines (the service's stdout)
  otel/traces.jsonl     OTLP/JSON spans, one export batch per line
  otel/logs.jsonl       OTLP/JSON log records (pino via instrumentation-pino), one batch per line
"""

import argparse
import base64
import csv
import gzip
import hashlib
import hmac
import http.client
import http.server
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/realstack
import stack  # noqa: E402
SERVICE = "catalog"
JWT_SECRET = "catalog-shared-secret-0123456789abcdef"
PRICING_TOKEN = "pricing-api-token-catalog-4f1c2e"
# pricing's per-tenant quota (calls per minute); soylent is on the free plan
PRICING_QUOTA = {"soylent": 1}
PRICING_QUOTA_DEFAULT = 600
DEP_TIMEOUT_MS = 500
HANG_SECONDS = 3.0

NGINX_CONF = r"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log info;
events {{ worker_connections 256; }}
http {{
""" + stack.NGINX_HTTP_COMMON + r"""
  upstream catalog {{ server 127.0.0.1:{service_port}; keepalive 8; }}

  server {{
    listen 127.0.0.1:{port};
    server_name api.example.test;
    root {prefix}/html;
    access_log {out}/gateway/access.log tracejoin;
    add_header X-Request-Id $request_id always;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-Id $request_id;
    proxy_set_header X-Forwarded-For $remote_addr;
    client_max_body_size 1m;

    location /v1/ {{ proxy_pass http://catalog; }}
  }}
}}
"""


# --- ports: ../stack.py's (a dead port stays bound for the whole run) -------

free_port, dead_port, wait_port = stack.free_port, stack.dead_port, stack.wait_port


# --- the OTel Collector stand-in --------------------------------------------

class Collector(http.server.ThreadingHTTPServer):
    """Accepts OTLP/HTTP JSON on /v1/traces and /v1/logs and appends each
    export request as one line, as the Collector's file exporter does."""
    daemon_threads = True

    def __init__(self, port, otel_dir):
        self.files = {"/v1/traces": os.path.join(otel_dir, "traces.jsonl"),
                      "/v1/logs": os.path.join(otel_dir, "logs.jsonl")}
        for p in self.files.values():
            open(p, "w").close()
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), CollectorHandler)


class CollectorHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self._body()
        path = self.path.split("?")[0]
        target = self.server.files.get(path)
        if target is None:
            self._answer(404, b'{"code":5,"message":"not found"}')
            return
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        line = json.dumps(json.loads(body), separators=(",", ":"))
        with self.server.lock, open(target, "a") as f:
            f.write(line + "\n")
        self._answer(200, b"{}")

    def _body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


# --- the dependency ("pricing") ---------------------------------------------

class Pricing(http.server.ThreadingHTTPServer):
    """GET /prices/{id}, an OAuth2 resource server with a per-tenant quota.

    Every call needs `Authorization: Bearer PRICING_TOKEN`, else 401 with
    RFC 6750's `WWW-Authenticate: Bearer error="invalid_token"` and a JSON body.
    The shard that serves ids 3xxx has already rotated its keys and no longer
    accepts catalog's token (the same 401). Each `X-Tenant-Id` gets
    PRICING_QUOTA calls a minute (fixed window); over it, 429 with Retry-After.
    Then the product id's first digit picks the behaviour:
    9 -> 503 (http.server's own error page), 8 -> hangs, 7 -> 200 with an HTML
    page, 6 -> hangs on the first request for that id only, 5 -> the record of
    the next pricing release (currency renamed to currency_code for even ids,
    amount an object for odd ids), else a JSON price."""
    daemon_threads = True

    def __init__(self, port, stop):
        self.stop = stop
        self.seen = set()
        self.windows = {}  # tenant -> (window start, calls)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", port), PricingHandler)

    def take(self, tenant):
        """One call of the tenant's quota: the seconds until the window resets
        when it is used up, else None."""
        now = time.monotonic()
        with self.lock:
            start, calls = self.windows.get(tenant, (now, 0))
            if now - start >= 60:
                start, calls = now, 0
            if calls >= PRICING_QUOTA.get(tenant, PRICING_QUOTA_DEFAULT):
                return max(1, int(60 - (now - start)))
            self.windows[tenant] = (start, calls + 1)
            return None


class PricingHandler(http.server.BaseHTTPRequestHandler):
    server_version = "pricing/1.0"

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if len(parts) != 2 or parts[0] != "prices" or not parts[1].isdigit():
            self.send_error(404)
            return
        pid = parts[1]
        try:
            if self.headers.get("Authorization") != "Bearer " + PRICING_TOKEN or pid[0] == "3":
                self._json(401, {"error": "invalid_token", "error_description": "The access token is invalid"},
                           {"WWW-Authenticate": 'Bearer realm="pricing", error="invalid_token", '
                                                'error_description="The access token is invalid"'})
                return
            wait = self.server.take(self.headers.get("X-Tenant-Id") or "-")
            if wait is not None:
                self._json(429, {"error": "rate_limited", "message": "quota exceeded for this tenant"},
                           {"Retry-After": str(wait)})
                return
            if pid[0] == "9":
                self.send_error(503)
                return
            if pid[0] == "8":
                self.server.stop.wait(HANG_SECONDS)
            elif pid[0] == "6":
                with self.server.lock:
                    first = pid not in self.server.seen
                    self.server.seen.add(pid)
                if first:
                    self.server.stop.wait(HANG_SECONDS)
            if pid[0] == "7":
                body = b"<!DOCTYPE html>\n<html><head><title>pricing</title></head><body></body></html>\n"
                ctype = "text/html"
            elif pid[0] == "5":
                amount = int(pid) % 97 + 0.99
                rec = ({"id": int(pid), "amount": amount, "currency_code": "EUR"} if int(pid) % 2 == 0 else
                       {"id": int(pid), "amount": {"value": amount, "currency": "EUR"}})
                body = json.dumps(rec).encode()
                ctype = "application/json"
            else:
                body = json.dumps({"id": int(pid), "amount": int(pid) % 97 + 0.99, "currency": "EUR"}).encode()
                ctype = "application/json"
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up (its timeout)

    def _json(self, status, obj, headers):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


# --- JWTs (HS256, as @hapi/jwt verifies them) -------------------------------

def _b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(payload, key=JWT_SECRET):
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    sig = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def access_token(sub, now, expired=False, key=JWT_SECRET):
    iat = now - 7200 if expired else now - 5
    exp = now - 3600 if expired else now + 900
    return jwt({"aud": "urn:audience:catalog", "iss": "urn:issuer:auth", "sub": sub, "iat": iat, "exp": exp}, key)


# --- scenarios ----------------------------------------------------------------

# name, weight in the incident phase, injected cause
SCENARIOS = [
    ("ok_list", 8, None), ("ok_get", 8, None), ("ok_create", 5, None), ("ok_search", 4, None),
    ("ok_export", 3, None), ("ok_retry_recovered", 4, None),
    ("auth_missing", 3, "auth"), ("auth_expired", 4, "auth"), ("auth_malformed", 2, "auth"),
    ("auth_bad_signature", 2, "auth"), ("auth_link_expired", 3, "auth"),
    ("routing_unknown_path", 3, "routing"), ("routing_wrong_method", 2, "routing"),
    ("quota_search", 6, "quota"),
    ("transform_bad_json", 2, "transform"), ("transform_validation", 4, "transform"),
    ("transform_too_large", 2, "transform"), ("transform_dependency_garbage", 3, "transform"),
    ("transform_response_schema", 3, "transform"), ("quota_dependency_429", 3, "quota"),
    ("auth_dependency_401", 3, "auth"),
    ("upstream_refused", 5, "upstream"), ("upstream_timeout", 2, "upstream"), ("upstream_5xx", 3, "upstream"),
]
HEALTHY = [s for s in SCENARIOS if s[2] is None]
SEARCHERS = ["acme", "umbrella", "initech", "hooli", "stark", "wayne", "wonka", "tyrell"]


def request_for(name, rng):
    """(method, path, headers, body) for a scenario."""
    now = int(time.time())
    consumer = rng.choice(["acme", "umbrella", "initech", "hooli"])
    h = {"User-Agent": "realstack-client/1.0", "Accept": "application/json", "X-Consumer-Id": consumer}
    auth = dict(h, Authorization="Bearer " + access_token(consumer, now))
    js = {"Content-Type": "application/json"}
    pid = rng.randint(1000, 2999)  # ids pricing answers normally
    if name == "ok_list":
        return "GET", "/v1/products", auth, None
    if name == "ok_get":
        return "GET", f"/v1/products/{pid}", auth, None
    if name == "ok_create":
        body = {"name": rng.choice(["lamp", "chair", "desk"]), "price": rng.randint(5, 500) + 0.5,
                "tags": rng.sample(["home", "office", "sale", "new"], 2)}
        return "POST", "/v1/products", dict(auth, **js), json.dumps(body)
    if name in ("ok_search", "quota_search"):
        user = "globex" if name == "quota_search" else rng.choice(SEARCHERS)
        hdr = dict(h, **{"X-Consumer-Id": user, "Authorization": "Bearer " + access_token(user, now)})
        return "GET", "/v1/search?q=" + rng.choice(["kettle", "toast", "blend", "e"]), hdr, None
    if name in ("ok_export", "auth_link_expired"):
        eid = rng.randint(100, 999)
        exp = now - 600 if name == "auth_link_expired" else now + 600
        link = jwt({"sub": f"export-{eid}", "iat": exp - 900, "exp": exp})
        return "GET", f"/v1/exports/{eid}?token={link}", h, None
    if name == "ok_retry_recovered":
        return "GET", f"/v1/products/{rng.randint(6000, 6999)}", auth, None
    if name == "auth_missing":
        return "GET", "/v1/products", h, None
    if name == "auth_expired":
        return "GET", f"/v1/products/{pid}", dict(h, Authorization="Bearer " + access_token(consumer, now, expired=True)), None
    if name == "auth_malformed":
        cut = access_token(consumer, now).rsplit(".", 1)[0]  # a token pasted without its signature
        return "GET", "/v1/products", dict(h, Authorization="Bearer " + cut), None
    if name == "auth_bad_signature":
        tok = access_token(consumer, now, key="catalog-staging-secret-fedcba9876543210")
        return "GET", f"/v1/products/{pid}", dict(h, Authorization="Bearer " + tok), None
    if name == "routing_unknown_path":
        return "GET", rng.choice(["/v1/product", "/v1/categories", f"/v1/products/{pid}/reviews"]), auth, None
    if name == "routing_wrong_method":
        return rng.choice([("DELETE", f"/v1/products/{pid}"), ("PUT", "/v1/products")]) + (auth, None)
    if name == "transform_bad_json":
        return "POST", "/v1/products", dict(auth, **js), '{"name": "lamp", "price": 12.5,}'
    if name == "transform_validation":
        body = rng.choice([{"name": "lamp", "price": -rng.randint(1, 50)}, {"price": 10}, {"name": "x", "price": 3}])
        return "POST", "/v1/products", dict(auth, **js), json.dumps(body)
    if name == "transform_too_large":
        body = {"name": "lamp", "price": 12.5, "tags": ["t" * 60] * 64}
        return "POST", "/v1/products", dict(auth, **js), json.dumps(body)
    if name == "transform_dependency_garbage":
        return "GET", f"/v1/products/{rng.randint(7000, 7999)}", auth, None
    if name == "upstream_refused":
        return "GET", f"/v1/products/{pid}/stock", auth, None
    if name == "upstream_timeout":
        return "GET", f"/v1/products/{rng.randint(8000, 8999)}", auth, None
    if name == "upstream_5xx":
        return "GET", f"/v1/products/{rng.randint(9000, 9999)}", auth, None
    if name == "transform_response_schema":
        return "GET", f"/v1/products/{rng.randint(5000, 5999)}", auth, None
    if name == "quota_dependency_429":
        hdr = dict(h, **{"X-Consumer-Id": "soylent", "Authorization": "Bearer " + access_token("soylent", now)})
        return "GET", f"/v1/products/{pid}", hdr, None
    if name == "auth_dependency_401":
        return "GET", f"/v1/products/{rng.randint(3000, 3999)}", auth, None
    raise ValueError(name)


def expected_label(name, label, status):
    """The injected cause, given whether the failure actually happened."""
    if name in ("quota_search", "ok_search"):
        return "quota" if status == 429 else "none"
    if name == "quota_dependency_429":  # soylent's pricing quota: the first calls of a minute get through
        if status not in (200, 503):
            print(f"warning: {name} answered {status}", file=sys.stderr)
        return "quota" if status == 503 else "none"
    if label is None:
        if status >= 400:
            print(f"warning: {name} failed with {status}", file=sys.stderr)
        return "none"
    if status < 400:
        print(f"warning: {name} did not fail ({status}): labelled none", file=sys.stderr)
        return "none"
    return label


def send(port, job):
    i, name, label, method, path, headers, body, traceparent = job
    if traceparent:
        headers = dict(headers, traceparent=traceparent)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request(method, path, body=body.encode() if body is not None else None, headers=headers)
        resp = conn.getresponse()
        resp.read()
        trace_id = traceparent.split("-")[1] if traceparent else ""
        return i, name, label, method, path, resp.status, resp.getheader("X-Request-Id", ""), trace_id
    finally:
        conn.close()


# --- processes ----------------------------------------------------------------

stop_proc = stack.stop


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=250)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--node", default=shutil.which("node") or "node")
    args = ap.parse_args()
    if not os.path.isdir(os.path.join(HERE, "node_modules")):
        sys.exit("run.py: tests/realstack/hapi/node_modules is missing; "
                 "run `npm ci --prefix tests/realstack/hapi` first")
    rng = random.Random(args.seed)
    started = time.time()

    out = os.path.abspath(args.out)
    for sub in ("gateway", SERVICE, "otel"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    prefix = tempfile.mkdtemp(prefix="tracejoin-realstack-hapi-")
    for sub in ("tmp", "html"):
        os.makedirs(os.path.join(prefix, sub))

    stop = threading.Event()
    servers, procs = [], {}
    rows = []
    try:
        collector = Collector(free_port(), os.path.join(out, "otel"))
        pricing = Pricing(free_port(), stop)
        for srv in (collector, pricing):
            threading.Thread(target=srv.serve_forever, daemon=True).start()
            servers.append(srv)

        service_port = free_port()
        env = dict(os.environ,
                   PORT=str(service_port), JWT_SECRET=JWT_SECRET,
                   PRICING_URL=f"http://127.0.0.1:{pricing.server_address[1]}", PRICING_TOKEN=PRICING_TOKEN,
                   INVENTORY_URL=f"http://127.0.0.1:{dead_port()}",
                   DEP_TIMEOUT_MS=str(DEP_TIMEOUT_MS),
                   OTEL_SERVICE_NAME=SERVICE,
                   OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
                   OTEL_FLUSH_DELAY_MS="500")
        log = open(os.path.join(out, SERVICE, f"{SERVICE}.log"), "w")
        err = open(os.path.join(prefix, f"{SERVICE}.stderr"), "w")
        procs["node"] = subprocess.Popen([args.node, "--require", "./tracing.js", "server.js"],
                                         cwd=HERE, env=env, stdout=log, stderr=err)
        log.close()
        err.close()

        port = free_port()
        conf = NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "",
                                 prefix=prefix, out=out, port=port, service_port=service_port)
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        procs["nginx"] = subprocess.Popen([args.nginx, "-p", prefix, "-c", conf_path])
        wait_port(service_port, proc=procs["node"])
        wait_port(port, proc=procs["nginx"])

        jobs = []
        for i in range(args.requests):
            # The first fifth is a healthy baseline; then the incident starts.
            pool = HEALTHY if i < args.requests // 5 else SCENARIOS
            name, _, label = rng.choices(pool, weights=[s[1] for s in pool])[0]
            method, path, headers, body = request_for(name, rng)
            tp = None
            if rng.random() < 0.8:  # an instrumented caller: a fresh trace per request
                tp = "00-%032x-%016x-01" % (rng.getrandbits(128) | 1, rng.getrandbits(64) | 1)
            if rng.random() < 0.15:  # a client that sends an id of its own
                headers = dict(headers, **{"X-Request-Id": "cli-%08x" % rng.getrandbits(32)})
            jobs.append((i, name, label, method, path, headers, body, tp))
        with ThreadPoolExecutor(max_workers=4) as ex:
            futures = []
            for job in jobs:
                futures.append(ex.submit(send, port, job))
                time.sleep(0.01)
            rows = [fu.result() for fu in futures]
        time.sleep(0.3)
    except BaseException:
        errfile = os.path.join(prefix, f"{SERVICE}.stderr")
        if os.path.exists(errfile):
            sys.stderr.write(open(errfile).read()[-3000:])
        raise
    finally:
        stop.set()
        stop_proc(procs.get("node"))  # SIGTERM: the SDK flushes spans and logs to the collector
        stop_proc(procs.get("nginx"))
        time.sleep(0.2)
        for srv in servers:
            srv.shutdown()
            srv.server_close()
        shutil.rmtree(prefix, ignore_errors=True)

    with open(args.truth, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["request_id", "scenario", "label", "method", "path", "status", "trace_id"])
        for i, name, label, method, path, status, rid, trace_id in sorted(rows):
            w.writerow([rid, name, expected_label(name, label, status), method, path, status, trace_id])
    failed = sum(1 for r in rows if r[5] >= 400)
    print(f"{len(rows)} requests ({failed} failed) in {time.time() - started:.1f}s -> {out}; "
          f"truth in {args.truth}", file=sys.stderr)


if __name__ == "__main__":
    main()
