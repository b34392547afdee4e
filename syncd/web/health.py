"""Operations endpoints: liveness, readiness (Postgres and RabbitMQ), Prometheus metrics."""

from __future__ import annotations

import asyncio

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from syncd.keys import BROKER, METRICS, POOL
from syncd.web.operations import op


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
