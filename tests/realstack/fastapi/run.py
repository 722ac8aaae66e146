#!/usr/bin/env python3
"""A real FastAPI service behind a real nginx, failing through its libraries.

usage: run.py OUT_DIR TRUTH_CSV [--seed N] [--requests N] [--nginx PATH]

Starts the "ledger" dependency (ledger.py, in this process), the "accounts"
FastAPI service (app.py, uvicorn, in a subprocess) and nginx (Debian package)
as the gateway; sends a seeded mix of requests; writes what an on-call engineer
would export:

  gateway/access.log     nginx, combined + key=value fields (generate.py's format)
  gateway/error.log      nginx's error log at its default level (error)
  accounts/accounts.log  JSON lines (python-json-logger): the app, uvicorn.error,
                         uvicorn.access and slowapi loggers
  otel/traces.jsonl      OTLP/JSON spans (FastAPI + HTTPX instrumentation)
  otel/logs.jsonl        OTLP/JSON log records (the same log records, via LoggingInstrumentor)

and TRUTH_CSV: request_id,scenario,label,method,path,status,trace_id - the
cause we injected (label none when the request succeeded); trace_id is the
trace id of the traceparent the client sent (empty: it sent none). See README.md.
"""

import argparse
import collections
import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))  # tests/realstack

import jwt  # noqa: E402

import generate  # noqa: E402  (free_port, dead_port, wait_port, send_one)
import stack  # noqa: E402
import ledger as ledger_mod  # noqa: E402

NGINX_CONF = r"""
{user}
worker_processes 1;
daemon off;
pid {prefix}/nginx.pid;
error_log {out}/gateway/error.log;
events {{ worker_connections 256; }}
http {{
""" + stack.NGINX_HTTP_COMMON + r"""
  upstream accounts {{ server 127.0.0.1:{app_port}; keepalive 8; }}
  upstream reports {{ server 127.0.0.1:{dead_port}; }}

  server {{
    listen 127.0.0.1:{port};
    server_name api.example.test;
    access_log {out}/gateway/access.log tracejoin;
    add_header X-Request-Id $request_id always;
    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_set_header Host $host;
    proxy_set_header X-Request-Id $request_id;
    client_max_body_size 1m;

    location / {{ proxy_pass http://accounts; }}
    location = /v1/accounts/import {{ client_max_body_size 1k; proxy_pass http://accounts; }}
    location ~ ^/v1/accounts/[0-9]+/export$ {{ proxy_read_timeout 1s; proxy_pass http://accounts; }}
    location /v1/reports {{ proxy_pass http://reports; }}
  }}
}}
"""

JWT_KEY = "realstack-accounts-signing-key-0123456789"
OTHER_KEY = "some-other-issuers-signing-key-9876543210"
LEDGER_KEY = "realstack-ledger-signing-key-abcdef0123456789"

# name, weight in the incident phase, injected cause (None: a healthy request)
SCENARIOS = [
    ("ok_get", 20, None), ("ok_create", 10, None), ("ok_statement", 6, None),
    ("ok_retry", 5, None), ("ok_import", 3, None), ("ok_limits", 4, None),
    ("quota_search", 10, "quota"),
    ("auth_missing", 3, "auth"), ("auth_malformed", 3, "auth"), ("auth_bad_signature", 3, "auth"),
    ("auth_expired", 3, "auth"), ("auth_expired_unhandled", 3, "auth"),
    ("routing_not_found", 4, "routing"), ("routing_method", 3, "routing"),
    ("transform_bad_json", 3, "transform"), ("transform_schema", 4, "transform"),
    ("transform_too_large", 3, "transform"), ("transform_dependency_garbage", 4, "transform"),
    ("transform_response_model", 4, "transform"), ("quota_dependency_429", 4, "quota"),
    ("auth_dependency_401", 4, "auth"),
    ("upstream_refused", 4, "upstream"), ("upstream_timeout", 3, "upstream"), ("upstream_5xx", 4, "upstream"),
    ("upstream_gateway_refused", 3, "upstream"), ("upstream_gateway_timeout", 3, "upstream"),
]
HEALTHY = [s for s in SCENARIOS if s[2] is None]

# The status each scenario is expected to get (a mismatch is reported, and the
# truth label follows what really happened: see truth_label).
EXPECTED = {
    "ok_get": 200, "ok_create": 201, "ok_statement": 200, "ok_retry": 200, "ok_import": 202, "ok_limits": 200,
    "quota_search": (200, 429), "auth_missing": 401, "auth_malformed": 401, "auth_bad_signature": 401,
    "auth_expired": 401, "auth_expired_unhandled": 500, "routing_not_found": 404, "routing_method": 405,
    "transform_bad_json": 422, "transform_schema": 422, "transform_too_large": 413,
    "transform_dependency_garbage": 502, "upstream_refused": 502, "upstream_timeout": 504,
    "upstream_5xx": 502, "upstream_gateway_refused": 502, "upstream_gateway_timeout": 504,
    "transform_response_model": 500, "quota_dependency_429": 503, "auth_dependency_401": 502,
}


def token(consumer, kind="valid"):
    now = int(time.time())
    if kind == "expired":
        return jwt.encode({"sub": consumer, "iat": now - 7200, "exp": now - 3600}, JWT_KEY, algorithm="HS256")
    if kind == "other_key":
        return jwt.encode({"sub": consumer, "iat": now, "exp": now + 3600}, OTHER_KEY, algorithm="HS256")
    return jwt.encode({"sub": consumer, "iat": now, "exp": now + 3600}, JWT_KEY, algorithm="HS256")


def ledger_tokens():
    """The accounts service's own credentials for the ledger's /limits API, one
    per tenant: 30-day tokens. umbrella's rotation was missed: it expired
    yesterday, and the ledger rejects it (PyJWT: "Signature has expired")."""
    now = int(time.time())
    tokens = {}
    for tenant, issued in (("acme", now - 86400), ("globex", now - 3 * 86400), ("umbrella", now - 31 * 86400)):
        tokens[tenant] = jwt.encode({"sub": "accounts", "tenant": tenant, "aud": "ledger", "iat": issued,
                                     "exp": issued + 30 * 86400}, LEDGER_KEY, algorithm="HS256")
    return ",".join(f"{t}={tok}" for t, tok in tokens.items())


def request_for(name, rng):
    """(method, path, headers, body) for a scenario."""
    consumer = rng.choice(["acme", "globex", "umbrella"])
    h = {"X-Consumer-Id": consumer, "User-Agent": "realstack-client/1.0",
         "Authorization": "Bearer " + token(consumer)}
    normal = rng.randint(1000, 7999)
    if name == "ok_get":
        return "GET", f"/v1/accounts/{normal}", h, None
    if name == "ok_create":
        doc = {"owner": consumer, "currency": rng.choice(["EUR", "USD"]), "credit_limit": rng.randint(1, 50) * 100}
        return "POST", "/v1/accounts", dict(h, **{"Content-Type": "application/json"}), json.dumps(doc).encode()
    if name == "ok_statement":
        return "GET", f"/v1/statements/{normal}", h, None
    if name == "ok_retry":
        return "GET", f"/v1/accounts/{rng.randint(8000, 8199)}", h, None
    if name in ("ok_limits", "transform_response_model", "auth_dependency_401"):
        # Tenant umbrella's ledger credential has expired (ledger_tokens).
        tenant = "umbrella" if name == "auth_dependency_401" else rng.choice(["acme", "globex"])
        h.update({"X-Consumer-Id": tenant, "Authorization": "Bearer " + token(tenant)})
        account = rng.randint(9000, 9199) if name == "transform_response_model" else normal
        return "GET", f"/v1/accounts/{account}/limits", h, None
    if name == "quota_dependency_429":
        return "GET", f"/v1/accounts/{rng.randint(8800, 8999)}", h, None
    if name == "ok_import":
        doc = {"rows": [{"owner": consumer, "currency": "EUR", "credit_limit": 100}]}
        return "POST", "/v1/accounts/import", dict(h, **{"Content-Type": "application/json"}), json.dumps(doc).encode()
    if name == "quota_search":
        return "GET", "/v1/search?q=" + rng.choice(["smith", "acme", "overdue", "eur"]), h, None
    if name == "auth_missing":
        del h["Authorization"]
        return "GET", f"/v1/accounts/{normal}", h, None
    if name == "auth_malformed":
        h["Authorization"] = "Bearer " + rng.choice([
            "undefined",                                   # a client that lost its token
            token(consumer).rsplit(".", 1)[0],             # truncated: two segments
            "eyJhbGciOiJIUzI1NiJ9x." + token(consumer).split(".", 1)[1],  # damaged header
        ])
        return "GET", f"/v1/accounts/{normal}", h, None
    if name == "auth_bad_signature":
        h["Authorization"] = "Bearer " + token(consumer, "other_key")
        return "GET", f"/v1/accounts/{normal}", h, None
    if name == "auth_expired":
        h["Authorization"] = "Bearer " + token(consumer, "expired")
        return "GET", f"/v1/accounts/{normal}", h, None
    if name == "auth_expired_unhandled":
        h["Authorization"] = "Bearer " + token(consumer, "expired")
        return "GET", f"/v1/statements/{normal}", h, None
    if name == "routing_not_found":
        return "GET", rng.choice([f"/v1/account/{normal}", f"/v2/accounts/{normal}", f"/v1/accounts/{normal}/history"]), h, None
    if name == "routing_method":
        return rng.choice(["DELETE", "PATCH"]), f"/v1/accounts/{normal}", h, None
    if name == "transform_bad_json":
        body = rng.choice([b"{'owner': 'acme', 'currency': 'EUR'}", b'{"owner": "acme", "currency": "EUR",',
                           b"owner=acme&currency=EUR&credit_limit=100"])
        return "POST", "/v1/accounts", dict(h, **{"Content-Type": "application/json"}), body
    if name == "transform_schema":
        doc = rng.choice([{"owner": consumer, "currency": "EUR", "credit_limit": -100},
                          {"owner": consumer, "currency": "euro", "credit_limit": 100},
                          {"owner": consumer, "credit_limit": 100}])
        return "POST", "/v1/accounts", dict(h, **{"Content-Type": "application/json"}), json.dumps(doc).encode()
    if name == "transform_too_large":
        doc = {"rows": [{"owner": f"{consumer}-{i}", "currency": "EUR", "credit_limit": 100} for i in range(60)]}
        return "POST", "/v1/accounts/import", dict(h, **{"Content-Type": "application/json"}), json.dumps(doc).encode()
    if name == "transform_dependency_garbage":
        return "GET", f"/v1/accounts/{rng.randint(8200, 8399)}", h, None
    if name == "upstream_refused":
        return "POST", f"/v1/accounts/{normal}/notify", h, b""
    if name == "upstream_timeout":
        return "GET", f"/v1/accounts/{rng.randint(8600, 8799)}", h, None
    if name == "upstream_5xx":
        return "GET", f"/v1/accounts/{rng.randint(8400, 8599)}", h, None
    if name == "upstream_gateway_refused":
        return "GET", f"/v1/reports/{normal}", h, None
    if name == "upstream_gateway_timeout":
        return "GET", f"/v1/accounts/{normal}/export", h, None
    raise ValueError(name)


def truth_label(name, label, status):
    """The injected cause, given whether the failure actually happened.

    A request that got a 5xx it was not meant to get met a failure we did not
    inject but that is real all the same: uvicorn closes a keep-alive connection
    after "Exception in ASGI application", and nginx, which had put it back in
    its upstream keepalive cache, answers a POST sent on it 502 ("recv() failed
    (104: Connection reset by peer) while reading response header from
    upstream"; a GET nginx retries). That is an upstream failure."""
    want = EXPECTED[name]
    if status not in (want if isinstance(want, tuple) else (want,)) and status >= 500:
        return "upstream"
    if label is None or status < 400:
        return "none"
    return label


def send(port, job):
    i, name, label, method, path, headers, body, tp = job
    status, rid = generate.send_one(port, method, path, headers, body, tp)
    return i, name, label, method, path, status, rid, tp.split("-")[1] if tp else ""


stop = stack.stop


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("truth")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--requests", type=int, default=250)
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    started = time.time()

    out = os.path.abspath(args.out)
    for sub in ("gateway", "accounts", "otel"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    for rel in ("gateway/access.log", "gateway/error.log", "accounts/accounts.log",
                "otel/traces.jsonl", "otel/logs.jsonl"):
        open(os.path.join(out, rel), "w").close()
    prefix = tempfile.mkdtemp(prefix="tracejoin-realstack-fastapi-")
    os.makedirs(os.path.join(prefix, "tmp"))

    ledger = app = gateway = None
    rows = []
    try:
        ledger = ledger_mod.Ledger(generate.free_port(), LEDGER_KEY)
        ledger.start()
        notifier_port = generate.dead_port()  # the notification service is down: refused
        app_port = generate.free_port()
        env = dict(os.environ,
                   OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_SERVER_REQUEST="x-request-id",
                   PYTHONUNBUFFERED="1")
        app_stderr = open(os.path.join(prefix, "app-stderr.log"), "w")
        app = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "app.py"), "--port", str(app_port),
             "--ledger", f"http://127.0.0.1:{ledger.port}", "--notifier", f"http://127.0.0.1:{notifier_port}",
             "--log", os.path.join(out, "accounts", "accounts.log"), "--otel", os.path.join(out, "otel"),
             "--jwt-key", JWT_KEY, "--ledger-tokens", ledger_tokens()],
            env=env, stdout=app_stderr, stderr=subprocess.STDOUT)
        port = generate.free_port()
        conf = NGINX_CONF.format(user="user root;" if os.geteuid() == 0 else "", prefix=prefix, out=out,
                                 port=port, app_port=app_port, dead_port=generate.dead_port())
        conf_path = os.path.join(prefix, "nginx.conf")
        with open(conf_path, "w") as f:
            f.write(conf)
        gateway = subprocess.Popen([args.nginx, "-p", prefix, "-c", conf_path])
        generate.wait_port(app_port, timeout=30)
        generate.wait_port(port)

        jobs = []
        for i in range(args.requests):
            # The first fifth is a healthy baseline; then the incident starts.
            pool = HEALTHY if i < args.requests // 5 else SCENARIOS
            name, _, label = rng.choices(pool, weights=[s[1] for s in pool])[0]
            method, path, headers, body = request_for(name, rng)
            tp = None
            if rng.random() < 0.8:  # an instrumented caller: a fresh trace per request
                tp = "00-%032x-%016x-01" % (rng.getrandbits(128) | 1, rng.getrandbits(64) | 1)
            if rng.random() < 0.15:  # a client sending its own request id (logged as xrid)
                headers = dict(headers, **{"X-Request-Id": "cli-%08x" % rng.getrandbits(32)})
            jobs.append((i, name, label, method, path, headers, body, tp))
        with ThreadPoolExecutor(max_workers=4) as ex:
            futures = []
            for job in jobs:
                futures.append(ex.submit(send, port, job))
                time.sleep(0.01)
            rows = [fu.result() for fu in futures]
        if app.poll() is not None:
            raise RuntimeError(f"the app exited early ({app.returncode}); see {prefix}/app-stderr.log")
    except BaseException:
        print(f"run failed; app output kept in {prefix}", file=sys.stderr)
        prefix_keep = True
        raise
    else:
        prefix_keep = False
    finally:
        time.sleep(0.5)
        stop(gateway)
        stop(app, timeout=15)  # uvicorn: graceful shutdown, lifespan flushes the exporters
        if ledger:
            ledger.stop()
        time.sleep(0.2)
        stderr_path = os.path.join(prefix, "app-stderr.log")
        if os.path.exists(stderr_path) and os.path.getsize(stderr_path):
            # Everything the app logs goes to its log file: anything here is unexpected.
            with open(stderr_path) as f:
                print("app stderr:\n" + f.read()[-3000:], file=sys.stderr)
        if not prefix_keep:
            shutil.rmtree(prefix, ignore_errors=True)

    rows.sort(key=lambda r: r[0])
    mismatch = collections.Counter()
    with open(args.truth, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")  # plain lines: readers split on "\n"
        w.writerow(["request_id", "scenario", "label", "method", "path", "status", "trace_id"])
        for i, name, label, method, path, status, rid, trace_id in rows:
            want = EXPECTED[name]
            if status not in (want if isinstance(want, tuple) else (want,)):
                mismatch[(name, status)] += 1
            w.writerow([rid, name, truth_label(name, label, status), method, path, status, trace_id])
    for (name, status), n in sorted(mismatch.items()):
        print(f"warning: {name} got status {status} ({n}x), expected {EXPECTED[name]}", file=sys.stderr)
    failed = sum(1 for r in rows if r[5] >= 400)
    print(f"{len(rows)} requests ({failed} failed) in {time.time() - started:.1f}s -> {out}; "
          f"truth in {args.truth}", file=sys.stderr)


if __name__ == "__main__":
    main()
