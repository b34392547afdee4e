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
from syncd.web.operations import Param, op
from syncd.web.params import json_response, query_int

_LATEST = """latest AS MATERIALIZED (
    SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction FROM checkins
    WHERE event_id = $1 AND outcome = 'admit' AND ticket_id IS NOT NULL
    ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC)"""

_TOTALS = f"""WITH {_LATEST}
SELECT (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'admit'
                                        AND direction = 'in') AS admitted,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'admit'
                                        AND direction = 'out') AS exits,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'deny') AS denied,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND conflict) AS conflicts,
       (SELECT count(*) FROM latest WHERE direction = 'in') AS inside"""

_PER_GATE = f"""WITH {_LATEST}
SELECT g.gate_id, g.name, g.zone, g.skew, g.last_push_at, g.acked_seq,
       count(c.*) FILTER (WHERE c.outcome = 'admit' AND c.direction = 'in') AS admitted,
       count(c.*) FILTER (WHERE c.outcome = 'admit' AND c.direction = 'out') AS exits,
       count(c.*) FILTER (WHERE c.outcome = 'deny') AS denied,
       count(c.*) FILTER (WHERE c.conflict) AS conflicts,
       (SELECT count(*) FROM latest l WHERE l.gate_id = g.gate_id AND l.direction = 'in')
           AS inside
FROM gates g LEFT JOIN checkins c ON c.event_id = $1 AND c.gate_id = g.gate_id
WHERE g.event_id = $1 GROUP BY g.gate_id ORDER BY g.gate_id"""

_PER_CATEGORY = f"""WITH {_LATEST}
SELECT t.category, count(*) FILTER (WHERE l.direction = 'in') AS inside, count(*) AS seen
FROM latest l JOIN tickets t ON t.event_id = $1 AND t.ticket_id = l.ticket_id
GROUP BY t.category ORDER BY 1"""

_DENIALS = """SELECT coalesce(reason, 'unknown') AS reason, count(*) AS n FROM checkins
WHERE event_id = $1 AND outcome = 'deny' GROUP BY 1 ORDER BY 2 DESC"""

_PER_MINUTE = """SELECT floor(at / 60) * 60 AS minute, count(*) AS scans,
       count(*) FILTER (WHERE outcome = 'admit') AS admitted
FROM checkins WHERE event_id = $1 AND at >= $2 GROUP BY 1 ORDER BY 1"""


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
        totals = dict(await conn.fetchrow(_TOTALS, eid))
        gates = [_gate_row(r) for r in await conn.fetch(_PER_GATE, eid)]
        categories = {
            r["category"]: {"inside": r["inside"], "seen": r["seen"]}
            for r in await conn.fetch(_PER_CATEGORY, eid)
        }
        denials = {r["reason"]: r["n"] for r in await conn.fetch(_DENIALS, eid)}
        since = (time.time() // 60 - minutes + 1) * 60
        per_minute = [dict(r) for r in await conn.fetch(_PER_MINUTE, eid, since)]
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


_CONFLICTS = """SELECT c.ticket_id, c.gate_id, g.name AS gate_name, c.seq, c.at, c.scanned_at,
       c.skew, c.via, e.gate_id AS entry_gate_id, eg.name AS entry_gate_name, e.at AS entry_at
FROM checkins c JOIN gates g ON g.event_id = c.event_id AND g.gate_id = c.gate_id
LEFT JOIN LATERAL (
    SELECT gate_id, at FROM checkins p
    WHERE p.event_id = c.event_id AND p.ticket_id = c.ticket_id AND p.outcome = 'admit'
      AND p.direction = 'in' AND NOT p.conflict
      AND (p.at, p.gate_id, p.seq) < (c.at, c.gate_id, c.seq)
    ORDER BY p.at DESC, p.gate_id DESC, p.seq DESC LIMIT 1) e ON true
LEFT JOIN gates eg ON eg.event_id = c.event_id AND eg.gate_id = e.gate_id
WHERE c.event_id = $1 AND c.conflict ORDER BY c.at LIMIT $2"""


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
    rows = await pool(request).fetch(_CONFLICTS, event["event_id"], limit)
    return json_response({"conflicts": [dict(r) for r in rows]})
