"""The backend of the real-stack scenario: two small HTTP services instrumented
with the real OpenTelemetry Python SDK.

- orders: JSON log lines (Python logging, structlog-like keys) + spans
- payments: logfmt log lines + OTel log records + spans

Spans and OTel logs are encoded by the SDK's own OTLP encoder
(opentelemetry-exporter-otlp-proto-common) and written as OTLP/JSON, one export
batch per line — the layout of the OpenTelemetry Collector's file exporter.
"""

import base64
import contextvars
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.propagate import extract
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    LogRecordExporter,
    LogRecordExportResult,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

_ID_KEYS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids(node):
    """proto3 JSON writes bytes as base64; OTLP/JSON wants hex ids."""
    if isinstance(node, dict):
        for k, v in list(node.items()):
            if k in _ID_KEYS and isinstance(v, str):
                node[k] = base64.b64decode(v).hex()
            else:
                _hex_ids(v)
    elif isinstance(node, list):
        for v in node:
            _hex_ids(v)
    return node


def otlp_json(message):
    d = MessageToDict(message, use_integers_for_enums=True, preserving_proto_field_name=False)
    return json.dumps(_hex_ids(d), separators=(",", ":"))


class _JsonLinesFile:
    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="utf-8")

    def write(self, line):
        with self.lock:
            self.f.write(line + "\n")
            self.f.flush()


class OtlpJsonSpanExporter(SpanExporter):
    def __init__(self, out):
        self.out = out

    def export(self, spans):
        self.out.write(otlp_json(encode_spans(spans)))
        return SpanExportResult.SUCCESS

    def shutdown(self):
        pass


class OtlpJsonLogExporter(LogRecordExporter):
    def __init__(self, out):
        self.out = out

    def export(self, batch):
        self.out.write(otlp_json(encode_logs(batch)))
        return LogRecordExportResult.SUCCESS

    def shutdown(self):
        pass

    def force_flush(self, timeout_millis=30000):
        return True


CONTEXT_KEYS = ("request_id", "trace_id", "span_id", "consumer", "order")


def context_fields(record):
    return {k: getattr(record, k) for k in CONTEXT_KEYS if hasattr(record, k)}


class JsonFormatter(logging.Formatter):
    def format(self, record):
        doc = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + ".%06dZ" % int((record.created % 1) * 1e6),
            "level": record.levelname.lower(),
            "service": "orders",
            "logger": record.name,
            "event": record.getMessage(),
        }
        doc.update(context_fields(record))
        return json.dumps(doc)


class LogfmtFormatter(logging.Formatter):
    def format(self, record):
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + ".%03dZ" % int(
            (record.created % 1) * 1000
        )
        parts = [f"time={ts}", f"level={record.levelname}", "service=payments"]
        msg = record.getMessage().replace('"', '\\"')
        parts.append(f'msg="{msg}"')
        for k, v in context_fields(record).items():
            v = str(v)
            parts.append(f'{k}="{v}"' if " " in v else f"{k}={v}")
        return " ".join(parts)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # nginx closing idle keepalive connections at shutdown is not an error.
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


def otlp_exporters(otlp):
    """The SDK's real OTLP exporters, for `tracejoin serve`: otlp is
    (protocol, endpoint, token) with protocol "grpc" or "http". Several
    endpoints, comma-separated, get one exporter each, every span and log
    record routed to one of them by its trace id (ByTraceId)."""
    protocol, endpoint, token = otlp
    if "," in endpoint:
        pairs = [otlp_exporters((protocol, e, token)) for e in endpoint.split(",")]
        return (ByTraceId([p[0] for p in pairs], lambda s: s.context.trace_id),
                ByTraceId([p[1] for p in pairs], lambda r: r.log_record.trace_id or 0))
    headers = {"authorization": f"Bearer {token}"} if token else None
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return (OTLPSpanExporter(endpoint=endpoint, insecure=True, headers=headers),
                OTLPLogExporter(endpoint=endpoint, insecure=True, headers=headers))
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return (OTLPSpanExporter(endpoint=endpoint + "/v1/traces", headers=headers),
            OTLPLogExporter(endpoint=endpoint + "/v1/logs", headers=headers))


class ByTraceId(SpanExporter, LogRecordExporter):
    """Stands in for the OpenTelemetry Collector's `loadbalancing` exporter
    with `routing_key: traceID`: each item of a batch goes to one backend,
    chosen by its trace id, so a trace's spans and log records all reach the
    same one. (The Collector hashes the trace id onto a ring of backends;
    a hash of it modulo the backends routes alike for this purpose. The low
    bits alone would not: the realstack's trace ids are not uniform there.)"""

    def __init__(self, exporters, trace_id):
        self.exporters = exporters
        self.trace_id = trace_id

    def export(self, batch):
        parts = [[] for _ in self.exporters]
        for item in batch:
            digest = hashlib.sha256(self.trace_id(item).to_bytes(16, "big")).digest()
            parts[int.from_bytes(digest[:8], "big") % len(self.exporters)].append(item)
        results = [e.export(p) for e, p in zip(self.exporters, parts) if p]
        # A failure anywhere is the batch's failure (SUCCESS is 0 in both enums).
        return max(results, key=lambda r: r.value)

    def shutdown(self):
        for e in self.exporters:
            e.shutdown()

    def force_flush(self, timeout_millis=30000):
        return all(e.force_flush(timeout_millis) for e in self.exporters)


class GatewayShipper(threading.Thread):
    """Stands in for the OpenTelemetry Collector's `filelog` receiver in front
    of its `loadbalancing` exporter: tails the gateway's access log and sends
    each line as a log record whose body is the line as written, with the
    attributes `log.file.name` (the receiver's `include_file_name`, on by
    default), `log.file.path` and `log.file.record_number` (its
    `include_file_path` and `include_file_record_number`), and the trace id a
    `regex_parser` with a `trace` block takes from the line's traceparent. The records go out through the SDK's real
    OTLP/HTTP log exporter, routed by trace id (ByTraceId); a line without
    trace context goes to a backend picked at random, as the exporter does
    for a record with an empty trace id."""

    TRACEPARENT = re.compile(r"\b00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}\b")

    def __init__(self, path, endpoints, token=None, seed=0):
        super().__init__(daemon=True)
        self.path = path
        self.rng = random.Random(seed)
        self.exporter = otlp_exporters(("http", endpoints, token))[1]
        if isinstance(self.exporter, ByTraceId):
            self.exporter.trace_id = lambda r: r.log_record.trace_id or self.rng.getrandbits(128)
        self.resource = Resource.create({"service.name": "nginx"})
        self.stopping = threading.Event()
        self.offset = 0
        self.records = 0

    def run(self):
        while not self.stopping.wait(0.2):
            self.ship()

    def ship(self):
        from opentelemetry._logs import LogRecord
        from opentelemetry.sdk._logs import ReadableLogRecord

        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        if end == 0:
            return
        self.offset += end
        batch = []
        for raw in data[:end].splitlines():
            line = raw.decode("utf-8", "replace")
            m = self.TRACEPARENT.search(line)
            self.records += 1
            record = LogRecord(
                observed_timestamp=time.time_ns(),
                body=line,
                attributes={
                    "log.file.name": os.path.basename(self.path),
                    "log.file.path": self.path,
                    "log.file.record_number": self.records,
                },
                trace_id=int(m.group(1), 16) if m else None,
            )
            batch.append(ReadableLogRecord(log_record=record, resource=self.resource))
        self.exporter.export(batch)

    def stop(self):
        self.stopping.set()
        self.join()
        self.ship()
        self.exporter.shutdown()


class Service:
    def __init__(self, name, port, log_path, log_formatter, spans_out, logs_out=None, otlp=None):
        self.name = name
        self.port = port
        self.provider = TracerProvider(resource=Resource.create({"service.name": name, "service.version": "1.4.2"}))
        self.provider.add_span_processor(
            BatchSpanProcessor(OtlpJsonSpanExporter(spans_out), schedule_delay_millis=300)
        )
        # otlp: one (protocol, endpoints, token) or a list of them, each fed the same spans.
        lives = [otlp_exporters(o) for o in (otlp if isinstance(otlp, list) else [otlp] if otlp else [])]
        for live in lives:
            # The same spans, also sent live to `tracejoin serve` by the SDK's exporter.
            self.provider.add_span_processor(BatchSpanProcessor(live[0], schedule_delay_millis=300))
        self.tracer = self.provider.get_tracer("tracejoin.realstack." + name)
        self.log = logging.getLogger(name)
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        fh = logging.FileHandler(log_path)
        fh.setFormatter(log_formatter)
        self.log.addHandler(fh)
        self.log_provider = None
        if logs_out is not None:
            self.log_provider = LoggerProvider(resource=Resource.create({"service.name": name}))
            self.log_provider.add_log_record_processor(
                BatchLogRecordProcessor(OtlpJsonLogExporter(logs_out), schedule_delay_millis=300)
            )
            for live in lives:
                self.log_provider.add_log_record_processor(
                    BatchLogRecordProcessor(live[1], schedule_delay_millis=300))
            self.log.addHandler(LoggingHandler(level=logging.INFO, logger_provider=self.log_provider))
        self.server = _QuietServer(("127.0.0.1", port), self.handler_class())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.provider.force_flush()
        self.provider.shutdown()
        if self.log_provider:
            self.log_provider.force_flush()
            self.log_provider.shutdown()

    def handler_class(self):
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                service.handle(self)

            def do_POST(self):
                service.handle(self)

        return Handler

    def info(self, level, msg, rid, span, **extra):
        ctx = span.get_span_context()
        fields = {"request_id": rid, "trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
        fields.update(extra)
        self.log.log(level, msg, extra=fields)

    def handle(self, h):
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        rid = h.headers.get("X-Request-Id", "")
        path = h.path.split("?")[0]
        route = self.route_of(path)
        # The headers object itself: its lookups ignore case, as HTTP header names do
        # (Go proxies such as Caddy forward `Traceparent`; a dict would miss it).
        parent = extract(h.headers)
        with self.tracer.start_as_current_span(
            f"{h.command} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": h.command,
                "url.path": path,
                "http.route": route,
                "http.request.header.x-request-id": [rid],
                "user_agent.original": h.headers.get("User-Agent", ""),
                "server.address": "127.0.0.1",
                "server.port": self.port,
            },
        ) as span:
            status, payload = self.dispatch(h, path, body, rid, span)
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        try:
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            # The gateway gave up first (proxy_read_timeout): that is the scenario.
            pass


class Orders(Service):
    def route_of(self, path):
        if path.startswith("/v1/orders/") and path != "/v1/orders/import":
            return "/v1/orders/{id}"
        return path

    def dispatch(self, h, path, body, rid, span):
        consumer = h.headers.get("X-Consumer-Id", "-")
        if path == "/auth/check":
            token = h.headers.get("X-Token", "")
            if token == "expired":
                self.info(logging.WARNING, "token expired for consumer %s (exp 2026-11-24T09:00:00Z)" % consumer, rid, span)
                return 401, {"error": "token expired"}
            if token == "revoked":
                self.info(logging.WARNING, "access denied: token revoked", rid, span)
                return 403, {"error": "forbidden"}
            return 200, {}
        if path == "/slow":
            time.sleep(1.6)
            self.info(logging.INFO, "report generated", rid, span)
            return 200, {"ok": True}
        if path.startswith("/v1/orders/") and h.command == "GET":
            if h.headers.get("X-Scope") == "none":
                self.info(logging.WARNING, "forbidden: missing scope orders:read for consumer %s" % consumer, rid, span)
                return 403, {"error": "forbidden"}
            with self.tracer.start_as_current_span("SELECT orders", kind=SpanKind.CLIENT,
                                                   attributes={"db.system": "postgresql", "db.operation.name": "SELECT"}):
                time.sleep(random.uniform(0.001, 0.004))
            self.info(logging.INFO, "order fetched", rid, span, order=path.rsplit("/", 1)[1])
            return 200, {"id": path.rsplit("/", 1)[1]}
        if path == "/v1/orders" and h.command == "POST":
            try:
                doc = json.loads(body or b"{}")
            except ValueError as e:
                self.info(logging.WARNING, "cannot deserialize request body: %s" % e, rid, span)
                return 400, {"error": "bad json"}
            if doc.get("amount", 0) <= 0:
                self.info(logging.WARNING, "schema validation failed: amount must be > 0 (got %r)" % doc.get("amount"), rid, span)
                return 422, {"error": "validation"}
            with self.tracer.start_as_current_span("INSERT orders", kind=SpanKind.CLIENT,
                                                   attributes={"db.system": "postgresql", "db.operation.name": "INSERT"}):
                time.sleep(random.uniform(0.002, 0.006))
            self.info(logging.INFO, "order created", rid, span)
            return 201, {"ok": True}
        if path == "/v1/orders/import" and h.command == "POST":
            # Reached only when a gateway lets the body through (Caddy's request_body
            # max_size cuts it short instead of refusing it).
            try:
                rows = json.loads(body or b"{}").get("rows", [])
            except ValueError as e:
                self.info(logging.WARNING, "cannot deserialize request body: %s" % e, rid, span)
                return 400, {"error": "bad json"}
            self.info(logging.INFO, "import accepted: %d rows" % len(rows), rid, span)
            return 202, {"ok": True}
        if path in ("/v1/orders", "/v1/search", "/v1/export", "/v1/reports", "/admin/stats"):
            self.info(logging.INFO, "served %s" % path, rid, span)
            return 200, {"items": []}
        self.info(logging.WARNING, "no handler for %s %s" % (h.command, path), rid, span)
        return 404, {"error": "not found"}


class Payments(Service):
    # Idempotency keys seen with the "flaky" card: the first charge attempt of a
    # key times out at the bank, a retry with the same key succeeds (used only
    # by generate.py --retry-in-trace).
    _flaky_seen = set()
    _flaky_lock = threading.Lock()

    def route_of(self, path):
        return path

    def flaky_first_attempt(self, h, doc):
        if doc.get("card") != "4000-0000-0000-0259":
            return False
        key = h.headers.get("Idempotency-Key", "")
        with self._flaky_lock:
            first = key not in self._flaky_seen
            self._flaky_seen.add(key)
        return first

    def dispatch(self, h, path, body, rid, span):
        consumer = h.headers.get("X-Consumer-Id", "-")
        if path == "/v1/payments" and h.command == "POST":
            doc = json.loads(body or b"{}")
            if consumer == "globex" and doc.get("burst"):
                self.info(logging.WARNING, "rate limit exceeded for consumer globex (100 req/min)", rid, span,
                          consumer=consumer)
                return 429, {"error": "rate limited"}
            with self.tracer.start_as_current_span("POST bank-api /charge", kind=SpanKind.CLIENT,
                                                   attributes={"server.address": "bank.internal", "http.request.method": "POST"}) as client:
                if doc.get("card") == "4000-0000-0000-0119" or self.flaky_first_attempt(h, doc):
                    time.sleep(0.05)
                    err = TimeoutError("bank-api did not answer within 50 ms")
                    client.record_exception(err)
                    client.set_status(Status(StatusCode.ERROR, "timeout"))
                    self.info(logging.ERROR, "charge failed: dependency bank-api timed out", rid, span,
                              consumer=consumer)
                    span.record_exception(err)
                    return 500, {"error": "internal"}
                time.sleep(random.uniform(0.002, 0.008))
            self.info(logging.INFO, "payment captured", rid, span, consumer=consumer)
            return 201, {"ok": True}
        self.info(logging.INFO, "served %s" % path, rid, span)
        return 200, {}


# ---- JSON-lines logging of the FastAPI services (tests/realstack/fastapi, tests/incidents) ----

# The gateway's X-Request-Id of the request being served: a middleware sets
# it, a logging filter copies it into every record as `request_id`.
request_id_var = contextvars.ContextVar("request_id", default="-")


class RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.request_id = request_id_var.get()
        return True


def logging_config(path):
    """uvicorn's log_config: the service's logger, uvicorn.error (with the
    "Exception in ASGI application" tracebacks), uvicorn.access and every
    library logger propagate to the root logger, whose handler writes one
    JSON line each (python-json-logger)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(levelname)s %(name)s %(message)s",
                "timestamp": True,
            }
        },
        "handlers": {
            "file": {"class": "logging.FileHandler", "filename": path, "formatter": "json",
                     "filters": ["request_id"]},
        },
        "root": {"level": "INFO", "handlers": ["file"]},
        "loggers": {
            "uvicorn": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "INFO", "handlers": [], "propagate": True},
        },
    }
