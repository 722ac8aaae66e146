#!/usr/bin/env python3
"""catalog: service B, a FastAPI service run by uvicorn behind storefront,
instrumented with the real OpenTelemetry SDK (FastAPIInstrumentor,
RedisInstrumentor, LoggingInstrumentor). Its dependency is Redis (redis-py's
asyncio client with the library's default retry policy).

usage: catalog.py --port N --redis-port N --log FILE --otel DIR [--version V]

  GET  /products/{id}   cache-aside: HGETALL product:{id}; on a miss the record
                        comes from the catalog's own table and is cached
                        (HSET + EXPIRE)
  POST /carts/{user}    HINCRBY cart:{user} {product_id} {quantity}, HLEN
  GET  /orders/{id}     the order history (in process: no Redis on this route)

A Redis failure is not handled: redis-py's ConnectionError reaches uvicorn,
which logs "Exception in ASGI application" and answers 500.
"""

import argparse
import contextlib
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import common  # noqa: E402  (also puts tests/realstack on sys.path)
import redis.asyncio as aioredis  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: E402
from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: E402
from pydantic import BaseModel, Field  # noqa: E402

log = logging.getLogger("catalog")

NAMES = ["espresso cup", "french press", "grinder", "kettle", "filter papers", "tamper", "scale",
         "milk jug", "dripper", "thermos"]


def product_record(product_id):
    """The catalog's own table (what a cache miss reads)."""
    return {"id": str(product_id), "name": f"{NAMES[product_id % len(NAMES)]} #{product_id}",
            "price_cents": str(500 + (product_id * 137) % 9500), "currency": "EUR",
            "stock": str((product_id * 31) % 40)}


def order_record(order_id):
    """The order history, kept in process."""
    lines = [{"sku": f"SKU-{(order_id * 7 + k) % 500 + 1:04d}", "qty": 1 + (order_id + k) % 3,
              "price_cents": 500 + ((order_id + k) * 137) % 9500} for k in range(1 + order_id % 3)]
    return {"order_id": order_id, "state": ["paid", "shipped", "delivered"][order_id % 3],
            "lines": lines, "total_cents": sum(line["qty"] * line["price_cents"] for line in lines),
            "currency": "EUR"}


class CartItem(BaseModel):
    product_id: int = Field(gt=0)
    quantity: int = Field(ge=1, le=10)


def create_app(args, tracer_provider):
    # redis-py's defaults (retry: 10 attempts, exponential backoff with jitter, cap 1 s).
    cache = aioredis.Redis(host="127.0.0.1", port=args.redis_port, decode_responses=True)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await cache.aclose()
        tracer_provider.force_flush()

    app = FastAPI(title="catalog", version=args.version, lifespan=lifespan)
    common.add_request_id_middleware(app)

    @app.get("/products/{product_id}")
    async def get_product(product_id: int):
        key = f"product:{product_id}"
        doc = await cache.hgetall(key)
        if not doc:
            doc = product_record(product_id)
            await cache.hset(key, mapping=doc)
            await cache.expire(key, 300)
            log.info("product %d cached", product_id)
        return {"id": int(doc["id"]), "name": doc["name"], "price_cents": int(doc["price_cents"]),
                "currency": doc["currency"], "stock": int(doc["stock"])}

    @app.post("/carts/{user}", status_code=201)
    async def add_to_cart(user: str, item: CartItem):
        key = f"cart:{user}"
        quantity = await cache.hincrby(key, str(item.product_id), item.quantity)
        size = await cache.hlen(key)
        log.info("cart of %s: product %d x%d", user, item.product_id, quantity)
        return {"user": user, "product_id": item.product_id, "quantity": quantity, "items": size}

    @app.get("/orders/{order_id}")
    async def get_order(order_id: int):
        return order_record(order_id)

    FastAPIInstrumentor.instrument_app(app, tracer_provider=tracer_provider)
    return app


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--redis-port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--otel", required=True)
    ap.add_argument("--version", default="3.2.1")
    args = ap.parse_args()
    tracer_provider = common.setup_telemetry("catalog", args.version, "catalog-1", args.otel)
    RedisInstrumentor().instrument(tracer_provider=tracer_provider)
    app = create_app(args, tracer_provider)
    common.serve(app, args.port, args.log)


if __name__ == "__main__":
    main()
