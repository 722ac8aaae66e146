#!/usr/bin/env python3
"""storefront: service A, a FastAPI service run by uvicorn behind nginx,
instrumented with the real OpenTelemetry SDK (FastAPIInstrumentor,
HTTPXClientInstrumentor, LoggingInstrumentor). It verifies the caller's bearer
JWT with PyJWT and calls catalog with httpx.

usage: storefront.py --port N --catalog URL --keys FILE --log FILE --otel DIR
                     --version V --instance NAME

  GET  /health          no auth, no catalog
  GET  /products/{id}   -> catalog GET /products/{id} (-> Redis)
  POST /cart            body {product_id, quantity} -> catalog POST /carts/{user} (-> Redis)
  GET  /orders/{id}     -> catalog GET /orders/{id}, mapped to `Order` (response_model)

Trusted signing keys: the JSON file --keys ({"keys": [...]}), read at start
and again on SIGHUP only (a token signed with a key published in the file
after the last read fails: PyJWT's InvalidSignatureError).

Release 2.x maps an order's total for display ("12.50 EUR"): the new mapping
no longer fits the `Order` response_model, and FastAPI raises
ResponseValidationError (500).
"""

import argparse
import contextlib
import json
import logging
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (also puts tests/realstack on sys.path)
import httpx  # noqa: E402
import jwt  # noqa: E402
from fastapi import Depends, FastAPI, HTTPException, Request  # noqa: E402
from fastapi.exception_handlers import request_validation_exception_handler  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer  # noqa: E402
from opentelemetry import trace  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: E402
from opentelemetry.trace import Status, StatusCode  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

log = logging.getLogger("storefront")


class CartIn(BaseModel):
    product_id: int = Field(gt=0)
    quantity: int = Field(ge=1, le=10)


class OrderLine(BaseModel):
    sku: str
    quantity: int
    unit_price: float


class Order(BaseModel):
    id: int
    status: str
    lines: list[OrderLine]
    total: float
    currency: str


def map_order_v1(o):
    return {"id": o["order_id"], "status": o["state"],
            "lines": [{"sku": ln["sku"], "quantity": ln["qty"], "unit_price": ln["price_cents"] / 100}
                      for ln in o["lines"]],
            "total": o["total_cents"] / 100, "currency": o["currency"]}


def map_order_v2(o):
    """Release 2: the total formatted for display."""
    doc = map_order_v1(o)
    doc["total"] = f"{o['total_cents'] / 100:.2f} {o['currency']}"
    return doc


class TrustedKeys:
    def __init__(self, path):
        self.path = path
        self.keys = []
        self.load()

    def load(self):
        with open(self.path) as f:
            self.keys = list(json.load(f)["keys"])

    def decode(self, token):
        """PyJWT with each trusted key; the last key's error is the answer."""
        keys = self.keys
        for i, key in enumerate(keys):
            try:
                return jwt.decode(token, key, algorithms=["HS256"], audience="storefront")
            except jwt.InvalidSignatureError:
                if i == len(keys) - 1:
                    raise


def create_app(args, tracer_provider):
    catalog = httpx.AsyncClient(base_url=args.catalog, timeout=httpx.Timeout(10.0))
    bearer = HTTPBearer()
    trusted = TrustedKeys(args.keys)
    map_order = map_order_v2 if args.version.startswith("2.") else map_order_v1

    def reload_keys():
        trusted.load()
        log.info("signing keys reloaded from %s: %d trusted", os.path.basename(args.keys), len(trusted.keys))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        import asyncio

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_keys)
        yield
        await catalog.aclose()
        tracer_provider.force_flush()

    app = FastAPI(title="storefront", version=args.version, lifespan=lifespan)
    common.add_request_id_middleware(app)

    @app.exception_handler(RequestValidationError)
    async def log_validation_error(request: Request, exc: RequestValidationError):
        log.warning("RequestValidationError: %s", exc.errors())
        return await request_validation_exception_handler(request, exc)

    def claims(credentials: HTTPAuthorizationCredentials = Depends(bearer)):
        try:
            return trusted.decode(credentials.credentials)
        except jwt.InvalidTokenError as exc:
            log.warning("jwt.decode failed", exc_info=True)
            raise HTTPException(status_code=401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"})

    async def catalog_call(method, path, **kw):
        headers = {"X-Request-Id": common.request_id_var.get()}
        try:
            resp = await catalog.request(method, path, headers=headers, **kw)
            resp.raise_for_status()
            return resp
        except (httpx.HTTPStatusError, httpx.TransportError) as exc:
            log.exception("%s %s%s failed", method, args.catalog, path)
            span = trace.get_current_span()
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
            raise HTTPException(status_code=504 if isinstance(exc, httpx.TimeoutException) else 502)

    @app.get("/health")
    async def health():
        return {"status": "ok", "version": args.version}

    @app.get("/products/{product_id}")
    async def get_product(product_id: int, user=Depends(claims)):
        resp = await catalog_call("GET", f"/products/{product_id}")
        return resp.json()

    @app.post("/cart", status_code=201)
    async def add_to_cart(item: CartIn, user=Depends(claims)):
        resp = await catalog_call("POST", f"/carts/{user['sub']}", json=item.model_dump())
        return resp.json()

    @app.get("/orders/{order_id}", response_model=Order)
    async def get_order(order_id: int, user=Depends(claims)):
        resp = await catalog_call("GET", f"/orders/{order_id}")
        return map_order(resp.json())

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--catalog", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--otel", required=True)
    ap.add_argument("--version", default="1.4.0")
    ap.add_argument("--instance", default="storefront-blue")
    args = ap.parse_args()
    tracer_provider = common.setup_telemetry("storefront", args.version, args.instance, args.otel)
    HTTPXClientInstrumentor().instrument(tracer_provider=tracer_provider)
    app = create_app(args, tracer_provider)
    common.serve(app, args.port, args.log)


if __name__ == "__main__":
    main()
