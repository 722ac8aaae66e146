"""What storefront.py and catalog.py share: JSON-lines logging for uvicorn and
the service (python-json-logger), the gateway's X-Request-Id in every record,
and the real OpenTelemetry SDK writing spans as OTLP/JSON lines.

The OTLP/JSON encoding is tests/realstack/backend.py's (the SDK's own encoder,
one export batch per line). Here several processes (catalog and both storefront
releases) write the same otel/traces.jsonl: each batch goes out as one
write(2) on an O_APPEND descriptor, so lines of different processes never
interleave.
"""

import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "realstack"))  # backend.py, stack.py

import backend  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.logging import LoggingInstrumentor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402

# The gateway's X-Request-Id in every log record, and uvicorn's log_config:
# the same as tests/realstack/fastapi's (backend.py).
request_id_var = backend.request_id_var
logging_config = backend.logging_config


class AppendFile:
    """A JSON-lines file several processes append to: one write(2) per line
    on an O_APPEND descriptor (Linux keeps a regular file's write whole)."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, line):
        data = (line + "\n").encode()
        with self.lock:
            while data:
                data = data[os.write(self.fd, data):]


def setup_telemetry(service, version, instance, otel_dir):
    resource = Resource.create({"service.name": service, "service.version": version,
                                "service.instance.id": instance})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(
        backend.OtlpJsonSpanExporter(AppendFile(os.path.join(otel_dir, "traces.jsonl"))),
        schedule_delay_millis=300))
    trace.set_tracer_provider(provider)
    # otelTraceID/otelSpanID/otelServiceName on every log record; no OTel log
    # export (the export holds the log files and the spans).
    LoggingInstrumentor().instrument(tracer_provider=provider, inject_trace_context=True,
                                     enable_log_auto_instrumentation=False)
    return provider


def add_request_id_middleware(app):
    """Copies the gateway's X-Request-Id into the context variable the log
    filter reads (it outlives the server span: uvicorn's "Exception in ASGI
    application" record keeps it)."""
    from fastapi import Request

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request_id_var.set(request.headers.get("x-request-id", "-"))
        return await call_next(request)


def serve(app, port, log_path):
    import uvicorn

    # uvicorn applies log_config (logging.config.dictConfig) before it serves.
    uvicorn.run(app, host="127.0.0.1", port=port, log_config=logging_config(log_path),
                timeout_graceful_shutdown=3)
