"""The organisers' live dashboard: its page, its figures and their stream (issue 19).

``/dashboard/`` is a static page (``syncd/dashboard/static``): the organiser signs in with an API
token (viewer role and up; kept in the tab's sessionStorage only), picks an event and watches it.
The page reads ``GET /api/v1/events/{event_id}/dashboard/stream`` with ``fetch`` and the token in
the Authorization header (an EventSource cannot send one, and a token in the URL would land in
access logs). The stream is the hub's (``syncd/dashboard/hub.py``): one computation of an
event's figures per change, written to all its open dashboards.

The figures are the stats endpoint's, computed by the same function in the same kind of
transaction (``stats.figures``), under ``stats``; so the dashboard and ``tessera stats`` cannot
disagree. Added beside them: admissions per minute per gate (they add up to the stats'
``per_minute`` admitted), each gate's online state (``syncd/dashboard/seen.py``), its last
reported backlog, and the event's capacity per zone. Tenancy is the API's: another
organisation's event is a 404, a gate credential a 403, like every event endpoint.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from aiohttp import web

from shared.tasks import stop
from syncd.api import stats
from syncd.api.common import load_event, pool
from syncd.api.queries import dashboard as q
from syncd.api.queries import events as event_q
from syncd.dashboard.hub import DashboardHub, HubConfig, Viewer, frame
from syncd.dashboard.seen import is_online
from syncd.keys import DASHBOARD, NOTIFIER, POOL, SETTINGS
from syncd.web.auth import principal_of, resolve
from syncd.web.operations import op
from syncd.web.params import json_response
from syncd.web.static_page import StaticPage

STATIC = Path(__file__).resolve().parents[1] / "dashboard" / "static"
MINUTES = 60  # the chart's window: the last hour, by minute
DASHBOARD_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'none'"
)
_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".md": "text/plain",
    "": "text/plain",  # LICENSE
}


# -- figures ----------------------------------------------------------------------------------


async def figures(conn: asyncpg.Connection, event: asyncpg.Record, online: float) -> dict:
    """The dashboard's figures of ``event``, read in one repeatable-read transaction."""
    now = time.time()
    since = stats.window_start(MINUTES, now)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        shown = await stats.figures(conn, event, MINUTES, since)
        seen = await q.seen(conn, event["event_id"])
        minutes = await q.per_minute_gate(conn, event["event_id"], since)
    pushed = {g["gate_id"]: g["last_push_at"] for g in shown["gates"]}
    return {
        "event": {
            "event_id": event["event_id"],
            "name": event["name"],
            "venue": event["venue"],
            "timezone": event["timezone"],
            "zones": list(event["zones"]),
            "capacity": event["capacity"],
        },
        "at": now,
        "online_seconds": online,
        "stats": shown,
        "gates": {str(r["gate_id"]): _gate(r, pushed.get(r["gate_id"]), now, online) for r in seen},
        "chart": _chart(minutes, since, now),
    }


def _gate(row: asyncpg.Record, pushed: str | None, now: float, window: float) -> dict[str, Any]:
    """A gate's connection: online (seen within ``window`` s), seen, reported backlog."""
    pushed_at = _unix(pushed)
    state = "revoked" if row["revoked"] else "enrolled" if row["enrolled"] else "pending"
    return {
        "state": state,
        "online": state == "enrolled" and is_online(row["seen_at"], pushed_at, now, window),
        "seen_at": row["seen_at"],
        "backlog": row["backlog"],
        "backlog_at": row["backlog_at"],
    }


def _unix(iso: str | None) -> float | None:
    return datetime.fromisoformat(iso).timestamp() if iso else None


def _chart(rows: list[asyncpg.Record], since: float, now: float) -> dict[str, Any]:
    """Admissions per minute per gate, every minute of the window (0 where none)."""
    minutes = [since + 60 * i for i in range(int((now - since) // 60) + 1)]
    index = {m: i for i, m in enumerate(minutes)}
    series: dict[str, list[int]] = {}
    for r in rows:
        if (i := index.get(float(r["minute"]))) is not None:
            series.setdefault(str(r["gate_id"]), [0] * len(minutes))[i] = r["admitted"]
    return {"minutes": minutes, "gates": series}


async def compute(app: web.Application, event_id: int) -> bytes:
    """One figures frame of ``event_id`` for all its open dashboards (the hub's ``compute``)."""
    async with app[POOL].acquire() as conn:
        event = await event_q.event_by_id(conn, event_id)
        if event is None:
            return frame("figures", {"event": {"event_id": event_id}, "gone": True})
        body = await figures(conn, event, app[SETTINGS].gate_online_seconds)
    return frame("figures", body)


# -- the API ----------------------------------------------------------------------------------


@op(
    "GET",
    "/api/v1/events/{event_id}/dashboard",
    "The dashboard's figures once: the stats answer (`stats`), admissions per minute per gate"
    " (`chart`), each gate's online state and reported backlog (`gates`), the capacity.",
    tag="stats",
)
async def dashboard_figures(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    async with pool(request).acquire() as conn:
        body = await figures(conn, event, request.app[SETTINGS].gate_online_seconds)
    return json_response(body)


@op(
    "GET",
    "/api/v1/events/{event_id}/dashboard/stream",
    "The dashboard's figures pushed as server-sent events (`event: figures`, the answer of"
    " GET .../dashboard each) whenever they change, for as long as the client stays connected.",
    tag="stats",
    produces="text/event-stream",
)
async def dashboard_stream(request: web.Request) -> web.StreamResponse:
    event = await load_event(pool(request), request)
    principal = principal_of(request)
    credential = request.headers.get("Authorization", "").partition(" ")[2].strip()
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "X-Accel-Buffering": "no"}
    )
    await response.prepare(request)
    viewer = Viewer(
        event["event_id"], principal.subject_id, credential, response, request.transport
    )
    await request.app[DASHBOARD].watch(viewer)
    return response


# -- the page ---------------------------------------------------------------------------------


_PAGE = StaticPage(STATIC, DASHBOARD_CSP, _TYPES)


def _static(name: str) -> web.Response:
    return _PAGE.response(name)


@op(
    "GET",
    "/dashboard/",
    "The organisers' live dashboard page.",
    role=None,
    tag="dashboard",
    produces="text/html",
)
async def page(request: web.Request) -> web.Response:
    return _static("index.html")


@op("GET", "/dashboard/{name}", "A file of the dashboard page.", role=None, tag="dashboard")
async def page_file(request: web.Request) -> web.Response:
    return _static(request.match_info["name"])


@op(
    "GET",
    "/dashboard/vendor/{name}",
    "A vendored library of the dashboard page.",
    role=None,
    tag="dashboard",
)
async def vendor_file(request: web.Request) -> web.Response:
    return _static("vendor/" + request.match_info["name"])


# -- the replica's hub ------------------------------------------------------------------------


def dashboard_ctx(app: web.Application) -> AsyncIterator[None]:
    """``cleanup_ctx`` after the pool and the notifier: the replica's dashboard hub."""
    return _dashboard(app)


async def _dashboard(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]

    async def token_of(credential: str) -> int | None:
        principal = await resolve(app, credential)
        return principal.subject_id if principal is not None and principal.kind == "token" else None

    config = HubConfig(
        interval=settings.dashboard_interval,
        refresh=settings.dashboard_refresh,
        per_token=settings.dashboard_streams_per_token,
    )
    hub = DashboardHub(functools.partial(compute, app), config, token_of)
    notifier = app[NOTIFIER]
    notifier.on_figures.append(hub.kick)
    notifier.on_credentials.append(hub.credentials_changed)
    app[DASHBOARD] = hub
    task = asyncio.create_task(hub.run(), name="dashboard-ticker")
    yield
    await stop(task)
    await hub.stop()


async def close_dashboards(app: web.Application) -> None:
    """``on_shutdown``: end every open dashboard, so the server need not wait for them."""
    if DASHBOARD in app:
        app[DASHBOARD].close_all()
