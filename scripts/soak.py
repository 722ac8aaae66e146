#!/usr/bin/env python3
"""Soak test of `tracejoin serve`'s memory limiter (driver of scripts/soak).

Starts a release `serve` on loopback (free ports from the OS) with
--memory-limit LIMIT and the event caps raised out of the way, so that the
memory limiter is what binds, then for SECONDS floods it, all at once, with:
  - the OpenTelemetry Python SDK (BatchSpanProcessor + OTLP exporter), one
    process over gRPC and one over HTTP/protobuf, server spans with children;
  - a raw client, one process over gRPC and one over HTTP (some of it gzip),
    hand-built 2000-span messages with ~200-byte attributes, resending the
    same message after every "busy, retry later";
  - idle TCP connections to both ports, slowloris HTTP headers and two
    HTTP bodies dribbled in slowly.
Prints serve's RSS and the accepted/refused counts every 5 s; then stops the
load (the SDKs flush what they hold), stops serve with SIGTERM and checks that
every span serve acknowledged came out of --json (IN == OUT) and that its
peak RSS stayed under the limit. Exit 0 when both hold, 1 otherwise.

Bounds: SECONDS <= 540 and about 60 s more for start, drain and shutdown;
loopback only; writes only under DIR (target/soak). Every process it starts
is killed on exit, Ctrl-C or SIGTERM (and, via PR_SET_PDEATHSIG, if this
driver is killed outright).

    scripts/soak [SECONDS] [LIMIT]   (the wrapper; it picks the venv's Python)
    python scripts/soak.py --seconds 120 --memory-limit 512MiB --bin target/release/tracejoin --dir target/soak
"""

import argparse
import ctypes
import gzip
import http.client
import mmap
import multiprocessing as mp
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time

KINDS = ("sdk_grpc", "sdk_http", "raw_grpc", "raw_http", "slow_http")
NAMES = {
    "sdk_grpc": "SDK gRPC",
    "sdk_http": "SDK HTTP",
    "raw_grpc": "raw gRPC",
    "raw_http": "raw HTTP",
    "slow_http": "slow HTTP body",
}
# Counters per kind, in one shared array of int64 (each kind is written by
# one process only, so no cross-process lock is needed).
FIELDS = (
    "acked",  # spans the server acknowledged (IN)
    "refused",  # attempts answered "busy, retry later" (429 / RESOURCE_EXHAUSTED)
    "other",  # attempts that failed otherwise (connection errors, other statuses)
    "created",  # SDK: spans ended by the application
    "handed",  # SDK: spans the BatchSpanProcessor handed to the exporter
    "failed",  # spans given up on after an answer (SDK retries exhausted, 4xx)
    "dropped",  # SDK: spans its own queue dropped (client side)
    "uncertain",  # spans sent without a definite answer (timeout, reset mid-call)
    "abandoned",  # raw: spans still refused when the drain deadline came
    "left",  # SDK: spans still queued, or being exported, when it gave up
)
F = {name: i for i, name in enumerate(FIELDS)}
BATCH = 2000  # spans per raw message
PAD = 200  # bytes of the padded attributes
DRAIN_S = 20  # after SECONDS: how long the clients may keep retrying / flushing
TOTAL_S = 590  # the whole driver's budget (the wrapper's timeout is 600 s)
ROUTES = [
    ("GET", "/api/items/{id}", "/api/items/{}"),
    ("POST", "/api/orders", "/api/orders"),
    ("GET", "/api/users/{id}/cart", "/api/users/{}/cart"),
    ("DELETE", "/api/sessions/{id}", "/api/sessions/{}"),
]


class Slot:
    """One kind's counters in the shared array; a thread lock because `+=`
    on a shared array element is not atomic between threads."""

    def __init__(self, arr, kind):
        self.arr, self.base, self.lock = arr, KINDS.index(kind) * len(FIELDS), threading.Lock()

    def add(self, field, n=1):
        with self.lock:
            self.arr[self.base + F[field]] += n

    def set(self, field, n):
        with self.lock:
            self.arr[self.base + F[field]] = n

    def get(self, field):
        return self.arr[self.base + F[field]]


def die_with_parent():
    """PR_SET_PDEATHSIG: the kernel kills us if the driver dies, even by SIGKILL."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)


def child_setup(log_path):
    """Start of every load process: Ctrl-C is the driver's to handle, and the
    SDK's "retrying" warnings go to a file rather than the terminal."""
    import logging

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    die_with_parent()
    # Loopback only: no proxy from the environment may come in between.
    for k in ("NO_PROXY", "no_proxy"):
        os.environ[k] = "127.0.0.1,localhost"
    logging.basicConfig(filename=log_path, level=logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def sleep_until(t):
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


# ---- the OpenTelemetry SDK ----

def sdk_worker(kind, port, stop, arr, log_path):
    child_setup(log_path)
    import grpc
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExportResult
    from opentelemetry.trace import SpanKind, Status, StatusCode

    c = Slot(arr, kind)
    # The exporters retry RESOURCE_EXHAUSTED / 429 themselves, up to 6
    # attempts within `timeout`: the HTTP one waits Retry-After; the gRPC one
    # backs off 1, 2, 4, 8 s (it looks for RetryInfo in a trailer of its own,
    # not in the status details where serve and the OTLP spec put it).
    if kind == "sdk_grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        UNSURE = (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED, grpc.StatusCode.UNKNOWN)

        class CountingStub:
            """Counts every refused attempt, retries included."""

            def __init__(self, stub):
                self.stub = stub

            def Export(self, *a, **kw):
                try:
                    return self.stub.Export(*a, **kw)
                except grpc.RpcError as e:
                    c.add("refused" if e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED else "other")
                    if e.code() in UNSURE:
                        # Cut off client-side: serve may have taken it all the same.
                        req = kw.get("request") or a[0]
                        c.add("uncertain", sum(len(ss.spans) for rs in req.resource_spans
                                               for ss in rs.scope_spans))
                    raise

        class Exporter(OTLPSpanExporter):
            def _initialize_channel_and_stub(self):
                super()._initialize_channel_and_stub()
                self._client = CountingStub(self._client)

        exporter = Exporter(endpoint=f"127.0.0.1:{port}", insecure=True, timeout=30)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces", timeout=30)
        transport = exporter._client._transport
        request = transport.request

        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

        def counting_request(*a, **kw):
            r = request(*a, **kw)
            if r.status_code == 429:
                c.add("refused")
            elif r.status_code is None or r.status_code >= 300:
                c.add("other")
                if r.status_code is None and not transport.is_connection_error(r.error):
                    # No answer (a timeout): serve may have taken it all the same.
                    req = ExportTraceServiceRequest.FromString(kw["data"])
                    c.add("uncertain", sum(len(ss.spans) for rs in req.resource_spans
                                           for ss in rs.scope_spans))
            return r

        transport.request = counting_request

    # IN counts what the server acknowledged: a SUCCESS of export().
    export = exporter.export

    def counting_export(spans):
        n = len(spans)
        c.add("handed", n)
        r = export(spans)
        c.add("acked" if r == SpanExportResult.SUCCESS else "failed", n)
        return r

    exporter.export = counting_export

    provider = TracerProvider(resource=Resource.create({"service.name": f"soak-{kind.replace('_', '-')}"}))
    bsp = BatchSpanProcessor(exporter, max_queue_size=50_000, schedule_delay_millis=100,
                             max_export_batch_size=512)
    provider.add_span_processor(bsp)
    tracer = provider.get_tracer("tracejoin-soak")
    rnd = random.Random()
    created = 0
    while not stop.is_set():
        for _ in range(100):
            method, route, path = ROUTES[rnd.randrange(len(ROUTES))]
            r = rnd.random()
            status = 503 if r < 0.02 else 500 if r < 0.05 else 404 if r < 0.08 else 200
            children = rnd.randrange(3)
            with tracer.start_as_current_span(
                f"{method} {route}", kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "url.path": path.format(rnd.randrange(10**6)),
                            "http.route": route, "http.response.status_code": status},
            ) as span:
                for i in range(children):
                    with tracer.start_as_current_span("SELECT items" if i == 0 else "GET inventory",
                                                      kind=SpanKind.CLIENT):
                        pass
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            created += 1 + children
        c.set("created", created)

    # Flush what the SDK still holds; it may still be refused and retry.
    # Shutting the provider down aborts retries still waiting.
    for step in (provider.force_flush, provider.shutdown):
        t = threading.Thread(target=step, daemon=True)
        t.start()
        t.join(DRAIN_S if step == provider.force_flush else 5)
    queued = len(bsp._batch_processor._queue)
    in_export = c.get("handed") - c.get("acked") - c.get("failed")
    c.set("left", queued + in_export)
    c.set("dropped", created - c.get("handed") - queued)
    os._exit(0)


# ---- the raw client ----

def raw_message(service, n=BATCH):
    """An n-span ExportTraceServiceRequest and a function that gives its
    spans fresh ids and timestamps (every span its own trace: one request)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", service
    ss = rs.scope_spans.add()
    ss.scope.name = "tracejoin-soak-raw"
    rnd = random.Random()
    for i in range(n):
        method, route, path = ROUTES[i % len(ROUTES)]
        s = ss.spans.add()
        s.name, s.kind = f"{method} {route}", 2  # SERVER
        status = 502 if i % 17 == 0 else 200
        for k, v in (("http.request.method", method), ("url.path", path.format(i)), ("http.route", route),
                     ("user_agent.original", f"soak/{i} " + "u" * PAD),
                     ("app.payload", "".join(rnd.choice("abcdefghij") for _ in range(PAD)))):
            kv = s.attributes.add()
            kv.key, kv.value.string_value = k, v
        kv = s.attributes.add()
        kv.key, kv.value.int_value = "http.response.status_code", status
        if status >= 500:
            s.status.code = 2
    spans = ss.spans

    def fresh():
        ids = os.urandom(24 * n)
        now = time.time_ns()
        for i, s in enumerate(spans):
            s.trace_id = ids[24 * i:24 * i + 16]
            s.span_id = ids[24 * i + 16:24 * i + 24]
            s.start_time_unix_nano = now - 3_000_000
            s.end_time_unix_nano = now
        return req

    return fresh


def raw_worker(kind, port, stop, arr, log_path, deadline_wall, threads=2):
    """Sends as fast as it can from `threads` threads, each its own connection;
    a refused message is resent unchanged until accepted or the drain deadline."""
    child_setup(log_path)
    import logging

    import grpc
    from google.rpc.error_details_pb2 import RetryInfo
    from google.rpc.status_pb2 import Status
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tsg

    c = Slot(arr, kind)
    log = logging.getLogger(kind)

    def retry_delay(e):
        """The RetryInfo in the status details (grpc-status-details-bin), as
        the OTLP specification puts it. (The Python SDK's exporter looks for a
        `google.rpc.retryinfo-bin` trailer instead, so it misses it and backs
        off exponentially.)"""
        for k, v in e.trailing_metadata() or ():
            if k == "grpc-status-details-bin":
                for d in Status.FromString(v).details:
                    if d.Is(RetryInfo.DESCRIPTOR):
                        info = RetryInfo()
                        d.Unpack(info)
                        return info.retry_delay.seconds + info.retry_delay.nanos / 1e9
        return None

    def grpc_sender(n):
        ch = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.enable_http_proxy", 0)])
        stub = tsg.TraceServiceStub(ch)
        fresh = raw_message(f"soak-raw-grpc-{n}")
        sent = 0
        while not stop.is_set():
            req = fresh()
            comp = grpc.Compression.Gzip if sent % 4 == 0 else grpc.Compression.NoCompression
            sent += 1
            while True:
                try:
                    resp = stub.Export(req, timeout=60, compression=comp)
                    c.add("acked", BATCH - resp.partial_success.rejected_spans)
                    break
                except grpc.RpcError as e:
                    code = e.code()
                    if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                        c.add("refused")
                        delay = retry_delay(e)
                        if delay is None:
                            log.warning("RESOURCE_EXHAUSTED without RetryInfo: %s", e.details())
                            delay = 1.0
                    elif code == grpc.StatusCode.UNAVAILABLE:
                        # Not connected: nothing reached the server.
                        c.add("other")
                        delay = 0.2
                    else:
                        # Timed out or cut off: the server may or may not have it.
                        c.add("other")
                        c.add("uncertain", BATCH)
                        log.warning("gRPC %s: %s", code, e.details())
                        break
                if time.time() + delay > deadline_wall:
                    c.add("abandoned", BATCH)
                    break
                time.sleep(delay)
        ch.close()

    def http_sender(n):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        fresh = raw_message(f"soak-raw-http-{n}")
        sent = 0
        while not stop.is_set():
            body = fresh().SerializeToString()
            headers = {"Content-Type": "application/x-protobuf"}
            if sent % 4 == 0:
                body = gzip.compress(body, compresslevel=1)
                headers["Content-Encoding"] = "gzip"
            sent += 1
            while True:
                try:
                    conn.request("POST", "/v1/traces", body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    # No answer: the server may or may not have it. Not resent
                    # (a duplicate would inflate OUT), counted apart.
                    conn.close()
                    c.add("other")
                    c.add("uncertain", BATCH)
                    log.warning("HTTP: %r", e)
                    break
                if resp.status == 200:
                    rejected = ts.ExportTraceServiceResponse.FromString(data).partial_success.rejected_spans
                    c.add("acked", BATCH - rejected)
                    break
                if resp.status in (429, 502, 503, 504):
                    c.add("refused" if resp.status == 429 else "other")
                    delay = float(resp.getheader("Retry-After") or 1)
                else:
                    c.add("other")
                    c.add("failed", BATCH)
                    log.warning("HTTP %s: %s", resp.status, data[:200])
                    break
                if time.time() + delay > deadline_wall:
                    c.add("abandoned", BATCH)
                    break
                time.sleep(delay)
        conn.close()

    sender = grpc_sender if kind == "raw_grpc" else http_sender
    ts_ = [threading.Thread(target=sender, args=(n,)) for n in range(threads)]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    os._exit(0)


# ---- slow and idle connections (threads of the driver) ----

class Slow:
    """~20 idle connections to each port, 10 slowloris HTTP headers (a byte
    every 300 ms, never finished), 2 HTTP bodies dribbled over ~half the run.
    Only the slow bodies carry spans (counted as kind slow_http)."""

    def __init__(self, grpc_port, http_port, seconds, arr, stop):
        self.gp, self.hp, self.seconds, self.stop = grpc_port, http_port, seconds, stop
        self.c = Slot(arr, "slow_http")
        self.idle, self.loris = [], []
        self.loris_reconnects = 0
        self.threads = []
        self.body_log = []
        self.drain_until = time.monotonic() + seconds + DRAIN_S

    def start(self):
        for port in (self.gp, self.hp):
            for _ in range(20):
                self.idle.append(socket.create_connection(("127.0.0.1", port)))
        for _ in range(10):
            self.loris.append(self._loris_conn())
        self.threads.append(threading.Thread(target=self._slowloris, daemon=True))
        for n in range(2):
            self.threads.append(threading.Thread(target=self._slow_body, args=(n,), daemon=True))
        for t in self.threads:
            t.start()

    def _loris_conn(self):
        s = socket.create_connection(("127.0.0.1", self.hp))
        s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                  b"Content-Type: application/x-protobuf\r\nX-Slow: ")
        return s

    def _slowloris(self):
        while not self.stop.wait(0.3):
            for i, s in enumerate(self.loris):
                try:
                    s.send(b"a")
                except OSError:
                    # The server hung up on it: a real attacker reconnects.
                    s.close()
                    self.loris_reconnects += 1
                    try:
                        self.loris[i] = self._loris_conn()
                    except OSError:
                        pass

    def _slow_body(self, n):
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        spans = 50  # a body of ~25 KB
        fresh = raw_message(f"soak-slow-body-{n}", spans)
        req = fresh()
        chunk = 64
        while not self.stop.is_set():
            body = req.SerializeToString()
            pause = max(0.05, (self.seconds / 2) / (len(body) / chunk))
            while True:
                started = time.monotonic()
                sent = False
                s = None
                try:
                    s = socket.create_connection(("127.0.0.1", self.hp), timeout=60)
                    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                              b"Content-Type: application/x-protobuf\r\n"
                              b"Content-Length: %d\r\n\r\n" % len(body))
                    for i in range(0, len(body), chunk):
                        if self.stop.is_set():
                            s.sendall(body[i:])  # the run is over: finish it at once
                            break
                        s.sendall(body[i:i + chunk])
                        time.sleep(pause)
                    sent = True
                    resp = http.client.HTTPResponse(s)
                    resp.begin()
                    data = resp.read()
                except (OSError, http.client.HTTPException) as e:
                    self.c.add("other")
                    self.body_log.append((type(e).__name__, time.monotonic() - started))
                    if sent:
                        # Sent whole, no answer: serve may have it; not resent.
                        self.c.add("uncertain", spans)
                        break
                    if time.monotonic() > self.drain_until:
                        self.c.add("abandoned", spans)
                        break
                    time.sleep(0.2)
                    continue
                finally:
                    if s is not None:
                        s.close()
                self.body_log.append((resp.status, time.monotonic() - started))
                if resp.status == 200:
                    rejected = ExportTraceServiceResponse.FromString(data).partial_success.rejected_spans
                    self.c.add("acked", spans - rejected)
                    break
                if resp.status == 429:
                    self.c.add("refused")
                    time.sleep(float(resp.getheader("Retry-After") or 1))
                    if not self.stop.is_set() or time.monotonic() < self.drain_until:
                        continue
                    self.c.add("abandoned", spans)
                    break
                self.c.add("other")
                self.c.add("failed", spans)
                break
            # A new message (fresh ids) for the next slow upload.
            fresh()

    def finish(self):
        """Joins the slow bodies; tells which idle connections serve closed."""
        for t in self.threads:
            t.join(DRAIN_S + 5)
        closed = 0
        for s in self.idle:
            try:
                closed += s.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
        for s in self.idle + self.loris:
            s.close()
        return closed


# ---- serve ----

def parse_size(s):
    """serve's own sizes: GiB, MiB, KiB, B or a plain number of bytes."""
    m = re.fullmatch(r"\s*(\d+)\s*(GiB|MiB|KiB|B)?\s*", s)
    if not m:
        print(f"soak: {s!r} is not a size (e.g. 512MiB, 1GiB)", file=sys.stderr)
        sys.exit(2)
    return int(m.group(1)) << {"GiB": 30, "MiB": 20, "KiB": 10, "B": 0, None: 0}[m.group(2)]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, key):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def count_out(path):
    """OUT: the events of every emitted request; a line with `revision` > 1
    supersedes the last earlier line of its trace, so it replaces it.
    Regular expressions over 64 MiB chunks, not a JSON parse per line: a long
    run emits millions of lines, and the run must end within its budget."""
    events_re = re.compile(rb',"events":(\d+),"join":')
    evicted_re = re.compile(rb',"flags":\[[^\]]*"evicted"')
    revision_re = re.compile(rb',"revision":(\d+)')
    line_re = re.compile(rb'"trace_id":(?:null|"([^"]*)").*,"events":(\d+),"join":')
    out = lines = found = evicted = 0
    revisions = []  # (offset of the line, its line) for revision > 1
    with open(path, "rb") as f:
        offset, rest = 0, b""
        while True:
            block = f.read(64 << 20)
            chunk = rest + block
            cut = chunk.rfind(b"\n") + 1 if block else len(chunk)
            chunk, rest = chunk[:cut], chunk[cut:]
            lines += chunk.count(b"\n") + (not block and bool(chunk) and not chunk.endswith(b"\n"))
            counts = events_re.findall(chunk)
            found += len(counts)
            out += sum(map(int, counts))
            evicted += len(evicted_re.findall(chunk))
            for m in revision_re.finditer(chunk):
                if int(m.group(1)) > 1:
                    start = chunk.rfind(b"\n", 0, m.start()) + 1
                    revisions.append((offset + start, chunk[start:chunk.find(b"\n", m.end())]))
            offset += len(chunk)
            if not block:
                break
        # Take back what each revision supersedes: the last earlier line of its
        # trace (recent: serve re-opens only requests it still retains).
        missing = 0
        if revisions:
            f.seek(0)
            data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            for at, line in revisions:
                m = line_re.search(line)
                prev_at = data.rfind(b'"trace_id":"%s"' % m.group(1), 0, at) if m and m.group(1) else -1
                if prev_at < 0:
                    missing += 1
                    continue
                start = data.rfind(b"\n", 0, prev_at) + 1
                prev = line_re.search(data[start:data.find(b"\n", prev_at)])
                out -= int(prev.group(2))
            data.close()
    return out, lines, evicted, len(revisions), lines - found, missing


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--memory-limit", default="512MiB")
    ap.add_argument("--bin", default="target/release/tracejoin")
    ap.add_argument("--dir", default="target/soak")
    a = ap.parse_args()
    if not 10 <= a.seconds <= 540:
        print("soak: SECONDS must be in 10..540 so that the whole run stays under 10 minutes", file=sys.stderr)
        sys.exit(2)
    limit = parse_size(a.memory_limit)
    begun = time.monotonic()
    # The binary under test (it may be rebuilt while this runs).
    built = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(a.bin).st_mtime))
    os.makedirs(a.dir, exist_ok=True)
    paths = {k: os.path.join(a.dir, f) for k, f in (
        ("json", "serve.jsonl"), ("err", "serve.err"), ("out", "serve.out"), ("rss", "rss.tsv"),
        ("clients", "clients.log"))}
    for p in paths.values():
        if os.path.exists(p):
            os.remove(p)

    procs, serve, slow = [], None, None
    stop = mp.get_context("spawn").Event()
    slow_stop = threading.Event()

    def on_signal(signum, _frame):
        # Once: a Ctrl-C reaches us twice (from the terminal and from
        # `timeout`), and the second must not interrupt the clean-up.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        gp, hp = free_port(), free_port()
        while hp == gp:
            hp = free_port()
        env = {k: v for k, v in os.environ.items() if k != "TRACEJOIN_TOKEN"}
        cmd = [a.bin, "serve", "--grpc", f"127.0.0.1:{gp}", "--http", f"127.0.0.1:{hp}",
               "--memory-limit", a.memory_limit, "--window", "2s", "--stats-interval", "5s",
               "--json", paths["json"],
               # Caps far above what fits in the limit: the memory limiter binds.
               "--max-open", "10000000", "--max-events", "100000000", "--max-queued-events", "2000000"]
        serve = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=open(paths["out"], "wb"),
                                 stderr=open(paths["err"], "wb"), env=env, preexec_fn=die_with_parent,
                                 start_new_session=True)  # Ctrl-C is ours to handle
        for _ in range(100):
            if serve.poll() is not None:
                sys.exit(f"soak: serve exited with {serve.returncode} at start; see {paths['err']}")
            try:
                for port in (gp, hp):
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            sys.exit("soak: serve did not listen within 10 s")

        print(f"soak: serve pid {serve.pid} on 127.0.0.1 gRPC {gp} HTTP {hp}, --memory-limit {a.memory_limit} "
              f"(soft mark {limit * 4 // 5 >> 20} MiB), {a.seconds} s of load", flush=True)
        ctx = mp.get_context("spawn")
        arr = ctx.RawArray("q", len(KINDS) * len(FIELDS))
        deadline_wall = time.time() + a.seconds + DRAIN_S
        procs = [
            ctx.Process(target=sdk_worker, args=("sdk_grpc", gp, stop, arr, paths["clients"]), daemon=True),
            ctx.Process(target=sdk_worker, args=("sdk_http", hp, stop, arr, paths["clients"]), daemon=True),
            ctx.Process(target=raw_worker, args=("raw_grpc", gp, stop, arr, paths["clients"], deadline_wall),
                        daemon=True),
            ctx.Process(target=raw_worker, args=("raw_http", hp, stop, arr, paths["clients"], deadline_wall),
                        daemon=True),
        ]
        for p in procs:
            p.start()
        slow = Slow(gp, hp, a.seconds, arr, slow_stop)
        slow.start()

        def total(field, kinds=KINDS):
            return sum(Slot(arr, k).get(field) for k in kinds)

        t0 = time.monotonic()
        samples = []
        last_acked, last_t = 0, 0
        rss_log = open(paths["rss"], "w")
        rss_log.write("seconds\trss_kib\tacked\trefused\n")
        print(f"{'t':>5}  {'RSS MiB':>7}  {'accepted spans':>14}  {'refused':>7}  {'spans/s':>8}")
        for tick in range(1, a.seconds + 1):
            sleep_until(t0 + tick)
            rss = status_kib(serve.pid, "VmRSS")
            if serve.poll() is not None or rss is None:
                print(f"soak: serve exited ({serve.poll()}) during the load; see {paths['err']}")
                break
            acked, refused = total("acked"), total("refused")
            samples.append(rss)
            rss_log.write(f"{tick}\t{rss}\t{acked}\t{refused}\n")
            if tick % 5 == 0:
                print(f"{tick:>4}s  {rss >> 10:>7}  {acked:>14,}  {refused:>7,}  "
                      f"{(acked - last_acked) / (tick - last_t):>8,.0f}", flush=True)
                last_acked, last_t = acked, tick
        rss_log.close()

        # Stop the load; the clients flush and retry for up to DRAIN_S.
        print(f"soak: stopping the load; clients flush and retry for up to {DRAIN_S} s", flush=True)
        stop.set()
        slow_stop.set()
        for p in procs:
            p.join(max(1.0, deadline_wall + 10 - time.time()))
            if p.is_alive():
                print(f"soak: a client (pid {p.pid}) did not stop; killed (its counts may be incomplete)")
                p.kill()
                p.join()
        idle_closed = slow.finish()

        # Stop serve: it finishes requests in flight and emits every open request.
        hwm_before = status_kib(serve.pid, "VmHWM") or 0
        rusage = None
        wait_s = min(120.0, max(10.0, TOTAL_S - 15 - (time.monotonic() - begun)))
        end = time.monotonic() + wait_s
        if serve.returncode is None:
            serve.send_signal(signal.SIGTERM)
        while serve.returncode is None and time.monotonic() < end:
            pid, status, ru = os.wait4(serve.pid, os.WNOHANG)
            if pid:
                serve.returncode = os.waitstatus_to_exitcode(status)
                rusage = ru
                break
            time.sleep(0.1)
        if serve.returncode is None:
            print(f"soak: serve did not exit within {wait_s:.0f} s of SIGTERM; killed")
            serve.kill()
            serve.wait()
        # ru_maxrss: the kernel's high-water mark of serve's RSS, shutdown included.
        peak_kib = max(hwm_before, rusage.ru_maxrss if rusage else 0, max(samples, default=0))

        out, lines, evicted, revised, bad, orphan_revisions = count_out(paths["json"])
        err = open(paths["err"], errors="replace").read().splitlines()
        stats = [l for l in err if " received " in l]
        memline = [l for l in err if l.startswith("tracejoin: memory ")]
        received = int(re.search(r"received (\d+) spans", stats[-1]).group(1)) if stats else None
        serve_refused = re.search(r"refused (\d+) busy, (\d+) memory", stats[-1]) if stats else None

        s = {k: Slot(arr, k) for k in KINDS}
        IN = total("acked")
        ok_rss = peak_kib * 1024 < limit
        ok_count = IN == out
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
        mem = next((int(l.split()[1]) >> 20 for l in open("/proc/meminfo") if l.startswith("MemTotal")), 0)

        print()
        print(f"== tracejoin serve soak: {a.seconds} s, --memory-limit {a.memory_limit} ==")
        w = 16
        print(f"{'':<{w}} {'accepted spans':>14} {'refused':>8} {'other err':>9} {'uncertain':>9} "
              f"{'given up':>9} {'SDK dropped':>11}")
        for k in KINDS:
            given_up = s[k].get("failed") + s[k].get("abandoned") + s[k].get("left")
            dropped = s[k].get("dropped") if k.startswith("sdk") else None
            print(f"{NAMES[k]:<{w}} {s[k].get('acked'):>14,} {s[k].get('refused'):>8,} {s[k].get('other'):>9,} "
                  f"{s[k].get('uncertain'):>9,} {given_up:>9,} {'' if dropped is None else f'{dropped:,}':>11}")
        print(f"{'total':<{w}} {IN:>14,} {total('refused'):>8,} {total('other'):>9,} "
              f"{total('uncertain'):>9,} "
              f"{total('failed') + total('abandoned') + total('left'):>9,} "
              f"{total('dropped'):>11,}")
        for k in ("sdk_grpc", "sdk_http"):
            print(f"  {NAMES[k]}: {s[k].get('created'):,} spans created, {s[k].get('handed'):,} handed to the "
                  f"exporter, {s[k].get('failed'):,} in exports that failed after retries, "
                  f"{s[k].get('left'):,} still queued or exporting at the drain deadline")
        print("  (given up: failed after an answer, or still refused / queued at the drain deadline: never"
              " acknowledged, so not in IN; uncertain: no answer, may be in OUT)")
        print(f"peak RSS (VmHWM)   {peak_kib / 1024:,.0f} MiB of {limit >> 20} MiB: "
              f"{'under the limit' if ok_rss else 'OVER THE LIMIT'}"
              f" (soft mark {limit * 4 // 5 >> 20} MiB; RSS at the end of the load {samples[-1] >> 10 if samples else 0} MiB)")
        print(f"IN  (acknowledged) {IN:,} spans")
        print(f"OUT (emitted)      {out:,} events in {lines:,} JSON lines ({revised:,} revisions superseding an "
              f"earlier line{f', {orphan_revisions} of them without one' if orphan_revisions else ''}"
              f"{f', {bad} unreadable lines' if bad else ''})")
        print(f"IN == OUT          {'yes' if ok_count else f'NO: OUT - IN = {out - IN:+,}'}")
        if not ok_count and 0 < out - IN <= total("uncertain"):
            print("                   (OUT exceeds IN by no more than the uncertain spans: sends that timed out"
                  " client-side yet reached serve)")
        if received is not None:
            print(f"serve received     {received:,} spans (its own count; "
                  f"{'= IN' if received == IN else f'IN - received = {IN - received:+,}'})")
        if serve_refused:
            b, m = int(serve_refused.group(1)), int(serve_refused.group(2))
            print(f"serve refused      {b:,} busy + {m:,} memory = {b + m:,} "
                  f"(clients saw {total('refused'):,})")
        print(f"evicted requests   {evicted:,}")
        outcomes = {}
        for status, secs in slow.body_log:
            outcomes.setdefault(status, []).append(secs)
        print(f"slow connections   40 idle ({idle_closed} closed by serve), 10 slowloris "
              f"({slow.loris_reconnects} reconnects after serve hung up), 2 slow bodies: "
              f"{len(slow.body_log)} uploads: "
              + (", ".join(f"{st} x{len(v)} after {min(v):.0f}-{max(v):.0f} s" for st, v in outcomes.items())
                 or "none finished"))
        print(f"serve exit status  {serve.returncode}")
        print(f"serve stats        {stats[-1] if stats else '(none)'}")
        print(f"serve memory       {memline[-1] if memline else '(none)'}")
        print(f"binary             {a.bin} (modified {built})")
        print(f"machine            {len(os.sched_getaffinity(0))} cores (nproc), {cpu}, {mem} GiB, "
              f"load average {os.getloadavg()[0]:.1f}")
        print(f"files              {a.dir}/ (serve.jsonl, serve.err, serve.out, rss.tsv, clients.log)")
        good = ok_count and ok_rss and serve.returncode == 0
        print(f"result             {'PASS' if good else 'FAIL'}")
        return 0 if good else 1
    except KeyboardInterrupt as e:
        print(f"\nsoak: interrupted ({e}); stopping everything", file=sys.stderr)
        return 130
    finally:
        stop.set()
        slow_stop.set()
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
        if serve is not None and serve.poll() is None:
            serve.send_signal(signal.SIGTERM)
            try:
                serve.wait(5)
            except subprocess.TimeoutExpired:
                serve.kill()
                serve.wait()


if __name__ == "__main__":
    sys.exit(main())
