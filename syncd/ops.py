"""Operations endpoints: liveness, readiness (Postgres and RabbitMQ), Prometheus metrics, and
the broker connection other parts (the outbox relay) share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aio_pika
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from syncd.db import POOL
from syncd.middleware import METRICS
from syncd.routing import op

log = logging.getLogger("syncd.ops")


class Broker:
    """A lazily (re)opened aio-pika connection; ``check`` never raises."""

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self._url = url
        self._timeout = timeout
        self.connection: aio_pika.abc.AbstractConnection | None = None
        self._lock = asyncio.Lock()

    async def connect(self) -> aio_pika.abc.AbstractConnection:
        async with self._lock:
            if self.connection is None or self.connection.is_closed:
                self.connection = await aio_pika.connect(self._url, timeout=self._timeout)
            return self.connection

    async def check(self) -> str | None:
        """None when the broker answers, else a short reason (without credentials)."""
        try:
            conn = await self.connect()
            channel = await conn.channel()
            await channel.close()
        except Exception as exc:
            return type(exc).__name__
        return None

    async def close(self) -> None:
        if self.connection is not None and not self.connection.is_closed:
            await self.connection.close()


BROKER = web.AppKey("broker", Broker)


def broker_ctx(url: str):  # type: ignore[no-untyped-def]
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        broker = Broker(url)
        app[BROKER] = broker
        if await broker.check() is not None:
            log.warning("RabbitMQ not reachable at start; /readyz will say so")
        yield
        await broker.close()

    return ctx


@op("GET", "/healthz", "Liveness: the process answers.", role=None, tag="ops")
async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _check_db(request: web.Request) -> str | None:
    try:
        await asyncio.wait_for(request.app[POOL].fetchval("SELECT 1"), 3)
    except Exception as exc:
        return type(exc).__name__
    return None


@op(
    "GET",
    "/readyz",
    "Readiness: Postgres and RabbitMQ answer (503 otherwise).",
    role=None,
    tag="ops",
)
async def readyz(request: web.Request) -> web.Response:
    db, broker = await asyncio.gather(_check_db(request), request.app[BROKER].check())
    checks = {"database": db or "ok", "broker": broker or "ok"}
    ready = db is None and broker is None
    return web.json_response(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status=200 if ready else 503,
    )


@op("GET", "/metrics", "Prometheus metrics.", role=None, tag="ops", produces="text/plain")
async def metrics(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
