"""Live check-in figures and the conflict list for organisers.

All figures come from the stored check-ins (what gates have pushed so far; an offline gate's
scans count once it reconnects). "Inside" means the ticket's latest admission, by corrected
time, is an entry. Zones are the zones of the gates that admitted (a gate created without a
zone counts under "").

Tenancy: a gate may push any ticket id. Its check-in is kept (it is the gate's record) and
counts in the totals as an unknown ticket, but every join to ``tickets`` is on the event's own
rows (``t.event_id`` = the event), so another event's ticket (another organisation's) never
lends its category or anything else: categories count the event's own tickets only.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from syncd.api.common import load_event, pool
from syncd.api.queries import stats as q
from syncd.web.operations import Param, op
from syncd.web.params import json_response, query_int


def _zones(gates: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    zones: dict[str, dict[str, int]] = {}
    for g in gates:
        z = zones.setdefault(g["zone"], {"admitted": 0, "exits": 0, "inside": 0, "denied": 0})
        for key in z:
            z[key] += g[key]
    return zones


def _gate_row(r: Any) -> dict[str, Any]:
    data = dict(r)
    data["last_push_at"] = data["last_push_at"].isoformat() if data["last_push_at"] else None
    return data


@op(
    "GET",
    "/api/v1/events/{event_id}/stats",
    "Live figures: admitted, inside now, per gate, zone and category, scans per minute,"
    " denials by reason, conflicts.",
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
    eid = event["event_id"]
    async with (
        pool(request).acquire() as conn,
        conn.transaction(isolation="repeatable_read", readonly=True),
    ):
        totals = dict(await q.totals(conn, eid))
        gates = [_gate_row(r) for r in await q.per_gate(conn, eid)]
        categories = {
            r["category"]: {"inside": r["inside"], "seen": r["seen"]}
            for r in await q.per_category(conn, eid)
        }
        denials = {r["reason"]: r["n"] for r in await q.denials(conn, eid)}
        since = (time.time() // 60 - minutes + 1) * 60
        per_minute = [dict(r) for r in await q.per_minute(conn, eid, since)]
    return json_response(
        {
            "event_id": eid,
            "at": time.time(),
            **totals,
            "gates": gates,
            "zones": _zones(gates),
            "categories": categories,
            "denials": denials,
            "per_minute": per_minute,
        }
    )


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
