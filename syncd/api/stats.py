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
_COUNTED = ("admitted", "exits", "annulled", "passed", "tailgates", "denied", "conflicts")
_FIGURES = (*_COUNTED, "inside")  # an answer's totals and a gate's figures, in this order


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


def _gate_row(r: Any, figures: dict[str, int] | None) -> dict[str, Any]:
    """A gate's answer: its row, its ``figures`` (None: all 0), then its last drill."""
    data = {**dict(r), **(figures or dict.fromkeys(_FIGURES, 0))}
    data["last_push_at"] = data["last_push_at"].isoformat() if data["last_push_at"] else None
    data["last_drill"] = drill_json(r)  # when, green/amber/red, the failing items' names
    for key in ("last_drill_at", "last_drill_result", "drill_failing", "drill_warning"):
        del data[key]
    return data


def _per_gate(
    counts: list[asyncpg.Record], presence: list[asyncpg.Record]
) -> dict[int, dict[str, int]]:
    """Each gate id's figures (``_FIGURES``) from the rows of ``q.counts`` and ``q.presence``:
    a gate without check-ins is absent (all 0); a gate that is gone is present (its check-ins
    count in the totals, as they always did, but it has no gate row to show them)."""
    gates: dict[int, dict[str, int]] = {}
    for r in counts:
        g = gates.setdefault(r["gate_id"], dict.fromkeys(_FIGURES, 0))
        for key in _COUNTED:
            g[key] += r[key]
    for r in presence:
        gates.setdefault(r["gate_id"], dict.fromkeys(_FIGURES, 0))["inside"] += r["inside"]
    return gates


def _categories(presence: list[asyncpg.Record]) -> dict[str, dict[str, int]]:
    """Inside and seen per category of the event's own tickets, in the rows' (category) order."""
    categories: dict[str, dict[str, int]] = {}
    for r in presence:
        if r["category"] is not None:
            c = categories.setdefault(r["category"], {"inside": 0, "seen": 0})
            c["inside"] += r["inside"]
            c["seen"] += r["seen"]
    return categories


def _denials(counts: list[asyncpg.Record]) -> dict[str, int]:
    """Denials per reason, most frequent first (equal counts by reason)."""
    reasons: dict[str, int] = {}
    for r in counts:
        if r["reason"] is not None:
            reasons[r["reason"]] = reasons.get(r["reason"], 0) + r["denied"]
    return dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))


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
    shows the same, read the same way.

    Its cost grows with the event, so it reads the check-ins once per figure set: ``q.counts``
    (every check-in, counted per gate and denial reason) and ``q.presence`` (each ticket's
    latest admission, counted per category and gate) return a few hundred rows, added up here
    into the totals, the gates, the categories and the denials (scripts/bench_stats)."""
    eid = event["event_id"]
    now = time.time()
    checkout = latest_checkout(now, event["timezone"], event["checkout_time"])
    counts = await q.counts(conn, eid)
    presence = await q.presence(conn, eid, checkout)
    per_gate = _per_gate(counts, presence)
    totals = {k: sum(g[k] for g in per_gate.values()) for k in _FIGURES}
    gates = [_gate_row(r, per_gate.get(r["gate_id"])) for r in await q.gates(conn, eid)]
    categories = _categories(presence)
    denials = _denials(counts)
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
