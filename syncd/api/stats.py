"""Live check-in figures and the conflict list for organisers.

All figures come from the stored check-ins (what gates have pushed so far; an offline gate's
scans count once it reconnects). "Inside" means the ticket's latest admission, by corrected
time, is an entry made since the event's automatic check-out, if it has one (``checked_out_at``,
shared.checkout). Zones are the zones of the gates that admitted (a gate created without a zone
counts under "").

Tenancy: a gate may push any ticket id. Its check-in is kept (it is the gate's record) and
counts in the totals as an unknown ticket, but every join to ``tickets`` is on the event's own
rows (``t.event_id`` = the event), so another event's ticket (another organisation's) never
lends its category or anything else: categories count the event's own tickets only.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from aiohttp import web

from shared.checkout import latest_checkout
from syncd.api.common import load_event, pool
from syncd.api.gate_admin import drill_json
from syncd.api.queries import stats as q
from syncd.web.operations import Param, op
from syncd.web.params import json_response, query_int

_ZONE_FIGURES = ("admitted", "exits", "inside", "denied", "annulled", "passed", "tailgates")


def _zones(gates: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    zones: dict[str, dict[str, int]] = {}
    for g in gates:
        z = zones.setdefault(g["zone"], dict.fromkeys(_ZONE_FIGURES, 0))
        for key in z:
            z[key] += g[key]
    return zones


def _drills(gates: list[dict[str, Any]]) -> dict[str, int]:
    """How many gates' last drill was green, amber or red, and how many never drilled."""
    counts = dict.fromkeys(("green", "amber", "red", "never"), 0)
    for g in gates:
        counts[g["last_drill"]["result"] if g["last_drill"] else "never"] += 1
    return counts


def _gate_row(r: Any) -> dict[str, Any]:
    data = dict(r)
    data["last_push_at"] = data["last_push_at"].isoformat() if data["last_push_at"] else None
    data["last_drill"] = drill_json(r)  # when, green/amber/red, the failing items' names
    for key in ("last_drill_at", "last_drill_result", "drill_failing", "drill_warning"):
        del data[key]
    return data


@op(
    "GET",
    "/api/v1/events/{event_id}/stats",
    "Live figures: admitted, inside now, per gate (with its last pre-doors drill), zone and"
    " category, scans per minute, denials by reason, conflicts.",
    tag="stats",
    query=(
        Param(
            "minutes",
            {"type": "integer", "minimum": 1, "maximum": 1440},
            "scans-per-minute window (default 60)",
        ),
    ),
)
async def stats(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    minutes = query_int(request, "minutes", 60, 1, 1440)
    async with (
        pool(request).acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        return json_response(await figures(conn, event, minutes))


def window_start(minutes: int, now: float) -> float:
    """The first minute of a ``minutes``-long per-minute window ending at ``now``'s minute."""
    return (now // 60 - minutes + 1) * 60


async def figures(
    conn: asyncpg.Connection, event: asyncpg.Record, minutes: int, since: float | None = None
) -> dict[str, Any]:
    """The figures of ``event`` (a row with event_id, timezone, checkout_time): the stats
    answer, per minute from ``since`` (default: ``window_start``). Run it in a repeatable-read
    transaction, so they describe one moment; the organisers' dashboard (api/dashboard.py)
    shows the same, read the same way."""
    eid = event["event_id"]
    now = time.time()
    checkout = latest_checkout(now, event["timezone"], event["checkout_time"])
    totals = dict(await q.totals(conn, eid, checkout))
    gates = [_gate_row(r) for r in await q.per_gate(conn, eid, checkout)]
    categories = {
        r["category"]: {"inside": r["inside"], "seen": r["seen"]}
        for r in await q.per_category(conn, eid, checkout)
    }
    denials = {r["reason"]: r["n"] for r in await q.denials(conn, eid)}
    since = window_start(minutes, time.time()) if since is None else since
    per_minute = [dict(r) for r in await q.per_minute(conn, eid, since)]
    return {
        "event_id": eid,
        "at": time.time(),
        "checked_out_at": checkout,  # automatic check-out: entries before it are not inside
        **totals,
        "gates": gates,
        "drills": _drills(gates),
        "zones": _zones(gates),
        "categories": categories,
        "denials": denials,
        "per_minute": per_minute,
    }


@op(
    "GET",
    "/api/v1/events/{event_id}/conflicts",
    "Admissions flagged as conflicts (a ticket admitted again while already inside), with the"
    " entry they conflict with.",
    tag="stats",
    query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 10000}),),
)
async def conflicts(request: web.Request) -> web.Response:
    event = await load_event(pool(request), request)
    limit = query_int(request, "limit", 1000, 1, 10000)
    rows = await q.conflicts(pool(request), event["event_id"], limit)
    return json_response({"conflicts": [dict(r) for r in rows]})
