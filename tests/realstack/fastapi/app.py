#!/usr/bin/env python3
"""accounts: a FastAPI service run by uvicorn, instrumented with the real
OpenTelemetry Python SDK (FastAPIInstrumentor, HTTPXClientInstrumentor,
LoggingInstrumentor). Every failure comes from a library, in its own words.

usage: app.py --port N --ledger URL --notifier URL --log FILE --otel DIR --jwt-key KEY
              --ledger-tokens TENANT=JWT,...

The ledger's /limits API wants a bearer token per tenant (--ledger-tokens: the
service's own credentials, one per tenant, minted by the ledger's operators).

Logging: one JSON-lines file (python-json-logger) for the service's own logger,
uvicorn.error (incl. "Exception in ASGI application" tracebacks), uvicorn.access
and slowapi: all propagate to the root logger, whose file handler writes them.
LoggingInstrumentor adds otelTraceID/otelSpanID/otelServiceName to every record
and installs the OTel LoggingHandler on the root logger, so the same records
also go out as OTLP logs (otel/logs.jsonl). A small middleware puts the
gateway's X-Request-Id into a context variable that a logging filter copies
into each record as request_id.

Spans and logs are encoded by the SDK's OTLP encoder and written as OTLP/JSON,
one export batch per line (tests/realstack/backend.py's exporters).
"""

import argparse
import contextlib
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # tests/realstack: backend.py

import httpx  # noqa: E402
import jwt  # noqa: E402
import uvicorn  # noqa: E402
from fastapi import Depends, FastAPI, HTTPException, Request  # noqa: E402
from fastapi.exception_handlers import request_validation_exception_handler  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry._logs import set_logger_provider  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: E402
from opentelemetry.instrumentation.logging import LoggingInstrumentor  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor  # noqa: E402
from opentelemetry.sdk.resources import Resource  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402
from slowapi import Limiter, _rate_limit_exceeded_handler  # noqa: E402
from slowapi.errors import RateLimitExceeded  # noqa: E402
from slowapi.util import get_remote_address  # noqa: E402

import backend  # noqa: E402

SERVICE = "accounts"
# The gateway's X-Request-Id, set per request by the middleware below and
# written into every log record (backend.py: shared with tests/incidents).
request_id_var = backend.request_id_var
logging_config = backend.logging_config
log = logging.getLogger("accounts")


def setup_telemetry(otel_dir):
    resource = Resource.create({"service.name": SERVICE, "service.version": "2.3.0"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(
        backend.OtlpJsonSpanExporter(backend._JsonLinesFile(os.path.join(otel_dir, "traces.jsonl"))),
        schedule_delay_millis=300))
    trace.set_tracer_provider(tracer_provider)
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(
        backend.OtlpJsonLogExporter(backend._JsonLinesFile(os.path.join(otel_dir, "logs.jsonl"))),
        schedule_delay_millis=300))
    set_logger_provider(logger_provider)
    # otelTraceID/otelSpanID/otelServiceName on every record, and the OTel
    # LoggingHandler on the root logger (the global logger provider above).
    LoggingInstrumentor().instrument(tracer_provider=tracer_provider, inject_trace_context=True)
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
    return tracer_provider, logger_provider


class AccountIn(BaseModel):
    owner: str = Field(min_length=1)
    currency: str = Field(pattern="^[A-Z]{3}$")
    credit_limit: int = Field(gt=0)


class ImportIn(BaseModel):
    rows: list[dict]


class Limits(BaseModel):
    account: int
    credit_limit: int
    currency: str
    overdraft: bool


def consumer_key(request: Request):
    return request.headers.get("x-consumer-id") or get_remote_address(request)


def create_app(args, tracer_provider, logger_provider):
    ledger = httpx.AsyncClient(base_url=args.ledger, timeout=httpx.Timeout(1.0))
    ledger_exports = httpx.AsyncClient(base_url=args.ledger, timeout=httpx.Timeout(10.0))
    notifier = httpx.AsyncClient(base_url=args.notifier, timeout=httpx.Timeout(1.0))
    bearer = HTTPBearer()
    ledger_tokens = dict(kv.split("=", 1) for kv in args.ledger_tokens.split(",") if kv)
    limiter = Limiter(key_func=consumer_key)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        for client in (ledger, ledger_exports, notifier):
            await client.aclose()
        tracer_provider.force_flush()
        logger_provider.force_flush()

    app = FastAPI(title="accounts", lifespan=lifespan)
    app.state.limiter = limiter
    app.add_exception_handler(RateLimitExceeded, _rate_limit_exceeded_handler)

    @app.middleware("http")
    async def request_id(request: Request, call_next):
        request_id_var.set(request.headers.get("x-request-id", "-"))
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    async def log_validation_error(request: Request, exc: RequestValidationError):
        log.warning("RequestValidationError: %s", exc.errors())
        return await request_validation_exception_handler(request, exc)

    def claims(credentials: HTTPAuthorizationCredentials = Depends(bearer)):
        try:
            return jwt.decode(credentials.credentials, args.jwt_key, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            log.warning("jwt.decode failed", exc_info=True)
            raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"})

    def dependency_failed(exc, status, headers=None):
        span = trace.get_current_span()
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise HTTPException(status_code=status, headers=headers)

    def upstream_status(exc, default=502):
        """The answer to our client when the ledger failed: a ledger that
        throttles us makes us unavailable for a while (503, its Retry-After)."""
        if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code == 429:
            retry_after = exc.response.headers.get("retry-after")
            return 503, ({"Retry-After": retry_after} if retry_after else None)
        return default, None

    async def ledger_get(path, headers=None):
        """GET from the ledger; one retry on a dropped connection or a 5xx."""
        headers = dict(headers or {}, **{"X-Request-Id": request_id_var.get()})
        for attempt in (1, 2):
            try:
                resp = await ledger.get(path, headers=headers)
                resp.raise_for_status()
                return resp
            except (httpx.HTTPStatusError, httpx.TransportError) as exc:
                if attempt == 2 or isinstance(exc, httpx.TimeoutException):
                    raise
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
                    raise  # a 4xx answers the same on a retry
                log.warning("GET %s%s failed, retrying (attempt %d of 2)", args.ledger, path, attempt,
                            exc_info=True)

    @app.get("/v1/accounts/{account_id}")
    async def get_account(account_id: int, user=Depends(claims)):
        try:
            resp = await ledger_get(f"/balances/{account_id}")
        except httpx.TimeoutException as exc:
            log.exception("GET %s/balances/%d failed", args.ledger, account_id)
            dependency_failed(exc, 504)
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            log.exception("GET %s/balances/%d failed", args.ledger, account_id)
            dependency_failed(exc, *upstream_status(exc))
        try:
            balance = resp.json()
        except ValueError as exc:
            log.exception("cannot read the ledger's answer for account %d", account_id)
            dependency_failed(exc, 502)
        log.info("account %d read for %s", account_id, user.get("sub"))
        return {"id": account_id, "owner": user.get("sub"), "balance": balance["balance"],
                "currency": balance["currency"]}

    @app.get("/v1/accounts/{account_id}/limits", response_model=Limits)
    async def get_limits(account_id: int, user=Depends(claims)):
        # The ledger's record goes out as it is: response_model validates it.
        tenant = user.get("sub")
        try:
            resp = await ledger_get(f"/limits/{account_id}",
                                    {"Authorization": "Bearer " + ledger_tokens.get(tenant, "")})
        except httpx.TimeoutException as exc:
            log.exception("GET %s/limits/%d failed", args.ledger, account_id)
            dependency_failed(exc, 504)
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            log.exception("GET %s/limits/%d failed", args.ledger, account_id)
            dependency_failed(exc, *upstream_status(exc))
        log.info("limits of account %d read for %s", account_id, tenant)
        return resp.json()

    @app.get("/v1/statements/{account_id}")
    async def get_statement(account_id: int, credentials: HTTPAuthorizationCredentials = Depends(bearer)):
        # Decodes the token itself and only expects a malformed one: any other
        # PyJWT error (an expired token) escapes to the framework.
        try:
            user = jwt.decode(credentials.credentials, args.jwt_key, algorithms=["HS256"])
        except jwt.DecodeError as exc:
            raise HTTPException(status_code=401, detail=str(exc))
        log.info("statement for account %d sent to %s", account_id, user.get("sub"))
        return {"id": account_id, "lines": []}

    @app.get("/v1/accounts/{account_id}/export")
    async def export_account(account_id: int, user=Depends(claims)):
        resp = await ledger_exports.get(f"/exports/{account_id}", headers={"X-Request-Id": request_id_var.get()})
        resp.raise_for_status()
        log.info("export of account %d ready", account_id)
        return resp.json()

    @app.post("/v1/accounts", status_code=201)
    async def create_account(account: AccountIn, user=Depends(claims)):
        log.info("account created for %s", account.owner)
        return {"owner": account.owner, "currency": account.currency, "credit_limit": account.credit_limit}

    @app.post("/v1/accounts/import", status_code=202)
    async def import_accounts(doc: ImportIn, user=Depends(claims)):
        log.info("import of %d rows queued", len(doc.rows))
        return {"queued": len(doc.rows)}

    @app.post("/v1/accounts/{account_id}/notify", status_code=202)
    async def notify(account_id: int, user=Depends(claims)):
        try:
            resp = await notifier.post("/notifications", json={"account": account_id, "template": "statement"},
                                       headers={"X-Request-Id": request_id_var.get()})
            resp.raise_for_status()
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            log.exception("POST %s/notifications failed", args.notifier)
            dependency_failed(exc, 502)
        log.info("notification queued for account %d", account_id)
        return {"queued": True}

    @app.get("/v1/search")
    @limiter.limit("3/minute")
    async def search(request: Request, q: str = "", user=Depends(claims)):
        log.info("search %r by %s", q, user.get("sub"))
        return {"q": q, "items": []}

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--ledger", required=True)
    ap.add_argument("--notifier", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--otel", required=True)
    ap.add_argument("--jwt-key", required=True)
    ap.add_argument("--ledger-tokens", default="")
    args = ap.parse_args()
    tracer_provider, logger_provider = setup_telemetry(args.otel)
    app = create_app(args, tracer_provider, logger_provider)
    # uvicorn applies log_config (logging.config.dictConfig) before it serves.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=logging_config(args.log),
                timeout_graceful_shutdown=3)


if __name__ == "__main__":
    main()
