"""The event figures (``syncd.api.stats.figures``) are exactly what the statements they replaced
gave. Those statements, as they stood before the figures were made cheap at scale (one read of
the event's check-ins per figure set instead of several, and a per-gate inside count that no
longer scans every ticket's latest admission once per gate), are kept here verbatim as the
oracle: ``old_figures`` is the old ``figures()``.

Each case builds an event in SQL (every outcome, annulled admissions and annul rows, exits, ties
on corrected time, entries on both sides of the automatic check-out, unknown ticket ids, another
event's tickets, an admission without a ticket, a check-in of a gate that no longer exists,
gates without zone, a gate with no check-in, drills) and compares the two answers read in one
repeatable-read transaction, so both describe the same moment.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from dataclasses import dataclass, field
from datetime import time as wall_time
from typing import Any

import asyncpg
import pytest

from shared.checkout import latest_checkout
from syncd.api import stats
from syncd.api.gate_admin import drill_json
from syncd.api.queries import events as event_q

# --- the oracle: the statements and the assembly as they were ----------------------------------

_OLD_LATEST = """latest AS MATERIALIZED (
    SELECT ticket_id, gate_id,
           direction = 'in' AND at >= coalesce($2::float8, '-Infinity') AS inside
    FROM (SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction, at FROM checkins
          WHERE event_id = $1 AND outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL
          ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC) l)"""

_OLD_TOTALS = f"""WITH {_OLD_LATEST}
SELECT (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'admit'
                                        AND direction = 'in' AND NOT annulled) AS admitted,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'admit'
                                        AND direction = 'out' AND NOT annulled) AS exits,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'admit'
                                        AND annulled) AS annulled,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'passed') AS passed,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'tailgate')
           AS tailgates,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND outcome = 'deny') AS denied,
       (SELECT count(*) FROM checkins WHERE event_id = $1 AND conflict) AS conflicts,
       (SELECT count(*) FROM latest WHERE inside) AS inside"""

_OLD_PER_GATE = f"""WITH {_OLD_LATEST}
SELECT g.gate_id, g.name, g.zone, g.skew, g.last_push_at, g.acked_seq,
       g.last_drill_at, g.last_drill_result,
       ARRAY(SELECT i ->> 'name' FROM jsonb_array_elements(g.last_drill -> 'items') i
             WHERE i ->> 'status' = 'fail') AS drill_failing,
       ARRAY(SELECT i ->> 'name' FROM jsonb_array_elements(g.last_drill -> 'items') i
             WHERE i ->> 'status' = 'warn') AS drill_warning,
       count(c.*) FILTER (WHERE c.outcome = 'admit' AND c.direction = 'in' AND NOT c.annulled)
           AS admitted,
       count(c.*) FILTER (WHERE c.outcome = 'admit' AND c.direction = 'out' AND NOT c.annulled)
           AS exits,
       count(c.*) FILTER (WHERE c.outcome = 'admit' AND c.annulled) AS annulled,
       count(c.*) FILTER (WHERE c.outcome = 'passed') AS passed,
       count(c.*) FILTER (WHERE c.outcome = 'tailgate') AS tailgates,
       count(c.*) FILTER (WHERE c.outcome = 'deny') AS denied,
       count(c.*) FILTER (WHERE c.conflict) AS conflicts,
       (SELECT count(*) FROM latest l WHERE l.gate_id = g.gate_id AND l.inside) AS inside
FROM gates g LEFT JOIN checkins c ON c.event_id = $1 AND c.gate_id = g.gate_id
WHERE g.event_id = $1 GROUP BY g.gate_id ORDER BY g.gate_id"""

_OLD_PER_CATEGORY = f"""WITH {_OLD_LATEST}
SELECT t.category, count(*) FILTER (WHERE l.inside) AS inside, count(*) AS seen
FROM latest l JOIN tickets t ON t.event_id = $1 AND t.ticket_id = l.ticket_id
GROUP BY t.category ORDER BY 1"""

_OLD_DENIALS = """SELECT coalesce(reason, 'unknown') AS reason, count(*) AS n FROM checkins
WHERE event_id = $1 AND outcome = 'deny' GROUP BY 1 ORDER BY 2 DESC"""

_OLD_PER_MINUTE = """SELECT floor(at / 60) * 60 AS minute, count(*) AS scans,
       count(*) FILTER (WHERE outcome = 'admit' AND NOT annulled) AS admitted
FROM checkins WHERE event_id = $1 AND at >= $2 AND outcome IN ('admit', 'deny')
GROUP BY 1 ORDER BY 1"""


def _old_gate_row(r: Any) -> dict[str, Any]:
    data = dict(r)
    data["last_push_at"] = data["last_push_at"].isoformat() if data["last_push_at"] else None
    data["last_drill"] = drill_json(r)
    for key in ("last_drill_at", "last_drill_result", "drill_failing", "drill_warning"):
        del data[key]
    return data


def _old_zones(gates: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    figures = ("admitted", "exits", "inside", "denied", "annulled", "passed", "tailgates")
    zones: dict[str, dict[str, int]] = {}
    for g in gates:
        z = zones.setdefault(g["zone"], dict.fromkeys(figures, 0))
        for key in z:
            z[key] += g[key]
    return zones


def _old_drills(gates: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(("green", "amber", "red", "never"), 0)
    for g in gates:
        counts[g["last_drill"]["result"] if g["last_drill"] else "never"] += 1
    return counts


async def old_figures(
    conn: asyncpg.Connection, event: asyncpg.Record, minutes: int, since: float
) -> dict[str, Any]:
    """``stats.figures`` as it was, on the old statements (``since`` given: no minute flips
    between the two answers)."""
    eid = event["event_id"]
    checkout = latest_checkout(time.time(), event["timezone"], event["checkout_time"])
    totals = dict(await conn.fetchrow(_OLD_TOTALS, eid, checkout))
    gates = [_old_gate_row(r) for r in await conn.fetch(_OLD_PER_GATE, eid, checkout)]
    categories = {
        r["category"]: {"inside": r["inside"], "seen": r["seen"]}
        for r in await conn.fetch(_OLD_PER_CATEGORY, eid, checkout)
    }
    denials = {r["reason"]: r["n"] for r in await conn.fetch(_OLD_DENIALS, eid)}
    per_minute = [dict(r) for r in await conn.fetch(_OLD_PER_MINUTE, eid, since)]
    return {
        "event_id": eid,
        "at": time.time(),
        "checked_out_at": checkout,
        **totals,
        "gates": gates,
        "drills": _old_drills(gates),
        "zones": _old_zones(gates),
        "categories": categories,
        "denials": denials,
        "per_minute": per_minute,
    }


# --- building events -------------------------------------------------------------------------

_INSERT = """INSERT INTO checkins (gate_id, seq, event_id, scan_id, ticket_id, direction, outcome,
    reason, via, scanned_at, at, skew, conflict, ref_seq, annulled)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'scanner', $9, $9, 0, $10, $11, $12)"""


@dataclass
class Night:
    """An event being built: its gates' next seqs, and its rows."""

    conn: asyncpg.Connection
    event_id: int
    seqs: dict[int, int] = field(default_factory=dict)
    rows: list[tuple[Any, ...]] = field(default_factory=list)

    def add(
        self,
        gate: int,
        ticket: int | None,
        at: float,
        outcome: str = "admit",
        direction: str = "in",
        **kw: Any,
    ) -> int:
        """One check-in row (flags ``reason``, ``conflict``, ``ref``, ``annulled``); its seq."""
        self.seqs[gate] = seq = self.seqs.get(gate, 0) + 1
        self.rows.append(
            (gate, seq, self.event_id, uuid.uuid4().bytes, ticket, direction, outcome,
             kw.get("reason"), at, kw.get("conflict", False), kw.get("ref"),
             kw.get("annulled", False))
        )  # fmt: skip
        return seq

    async def store(self) -> None:
        await self.conn.executemany(_INSERT, self.rows)
        self.rows.clear()


async def _org(conn: asyncpg.Connection, name: str) -> int:
    org: int = await conn.fetchval("INSERT INTO orgs (name) VALUES ($1) RETURNING org_id", name)
    return org


async def _event(conn: asyncpg.Connection, org: int, checkout: float | None) -> int:
    """An event in UTC, its automatic check-out at the wall time of ``checkout`` (None: off)."""
    wall = None if checkout is None else time.gmtime(checkout)
    eid: int = await conn.fetchval(
        "INSERT INTO events (org_id, name, timezone, checkout_time) VALUES ($1, 'Night', 'UTC',"
        " $2) RETURNING event_id",
        org,
        None if wall is None else wall_time(wall.tm_hour, wall.tm_min),
    )
    return eid


async def _gate(
    conn: asyncpg.Connection, eid: int, org: int, name: str, zone: str, drill: str | None = None
) -> int:
    """A gate; ``drill``: its last drill's result, with a failed and a warned item."""
    board = {
        "ran_at": time.time(),
        "seconds": 3.0,
        "items": [
            {"name": "camera", "status": "fail", "figure": "", "detail": ""},
            {"name": "clock", "status": "warn", "figure": "4 s", "detail": "drift"},
            {"name": "disk", "status": "ok", "figure": "", "detail": ""},
        ],
    }
    gate: int = await conn.fetchval(
        "INSERT INTO gates (event_id, org_id, name, zone, skew, last_push_at, acked_seq,"
        " last_drill_at, last_drill_result, last_drill) VALUES ($1, $2, $3, $4, 0.25, now(), 7,"
        " CASE WHEN $5::text IS NULL THEN NULL ELSE now() END, $5, $6::jsonb) RETURNING gate_id",
        eid,
        org,
        name,
        zone,
        drill,
        None if drill is None else json.dumps(board),
    )
    return gate


async def _tickets(conn: asyncpg.Connection, eid: int, categories: list[str]) -> list[int]:
    ids: list[int] = []
    for category in categories:
        ids.append(
            await conn.fetchval(
                "INSERT INTO tickets (event_id, external_ref, nonce, kid, zone, category)"
                " VALUES ($1, $2, 1, '\\x00010203', 1, $3) RETURNING ticket_id",
                eid,
                f"ref-{uuid.uuid4().hex}",
                category,
            )
        )
    return ids


async def both(conn: asyncpg.Connection, eid: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The new and the old figures of ``eid``, read at one moment, as JSON would carry them
    (the answer's own timestamp left out)."""
    event = await event_q.event_by_id(conn, eid)
    since = stats.window_start(60, time.time())
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        new = await stats.figures(conn, event, 60, since)
        old = await old_figures(conn, event, 60, since)
    for answer in (new, old):
        assert isinstance(answer.pop("at"), float)
    return new, old


def as_json(answer: dict[str, Any]) -> str:
    return json.dumps(answer, default=str)


# --- the cases -------------------------------------------------------------------------------


@dataclass
class Door:
    """Org A's event with its gates, tickets and org B's event."""

    night: Night
    north: int
    south: int
    side: int  # no zone
    idle: int  # no check-in
    ours: list[int]  # categories GA, GA, VIP, VIP, Crew, GA, "", GA, Staff
    theirs: list[int]  # org B's tickets, category SecretB
    boundary: float


async def door(conn: asyncpg.Connection) -> Door:
    now = time.time()
    org_a, org_b = await _org(conn, "Org A"), await _org(conn, "Org B")
    eid = await _event(conn, org_a, now - 1800)
    boundary = latest_checkout(now, "UTC", time.strftime("%H:%M", time.gmtime(now - 1800)))
    assert boundary is not None
    north = await _gate(conn, eid, org_a, "North", "Main", "red")
    south = await _gate(conn, eid, org_a, "South", "VIP", "green")
    side = await _gate(conn, eid, org_a, "Side", "")
    idle = await _gate(conn, eid, org_a, "Idle", "Main", "amber")
    cats = ["GA", "GA", "VIP", "VIP", "Crew", "GA", "", "GA", "Staff"]
    ours = await _tickets(conn, eid, cats)
    eb = await _event(conn, org_b, None)
    b_gate = await _gate(conn, eb, org_b, "B-door", "")
    theirs = await _tickets(conn, eb, ["SecretB", "SecretB"])
    b_night = Night(conn, eb)
    b_night.add(b_gate, theirs[0], now - 100)
    b_night.add(b_gate, theirs[1], now - 90, "deny", reason="revoked")
    b_night.add(b_gate, ours[0], now - 80)  # B's gate pushes A's ticket id: none of A's figures
    await b_night.store()
    night = Night(conn, eid)
    return Door(night, north, south, side, idle, ours, theirs, boundary)


async def test_every_figure_equals_the_old_statements_on_a_varied_event(
    db_url: str,
) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        d = await door(conn)
        n, b, t = d.night, d.boundary, d.ours
        n.add(d.north, t[0], b - 3600)  # inside before the check-out: seen, not inside
        n.add(d.north, t[1], b + 100)
        n.add(d.south, t[1], b + 200, direction="out")  # out again
        n.add(d.north, t[2], b)  # exactly at the boundary: inside
        n.add(d.north, t[3], b - 0.001)  # a millisecond before it: not inside
        seq = n.add(d.south, t[2], b + 5, direction="out", annulled=True)  # an annulled exit
        n.add(d.south, t[2], b + 6, "annul", direction="out", reason="staff", ref=seq)
        seq = n.add(d.north, t[4], b + 50, annulled=True)  # annulled: Crew is never seen
        n.add(d.north, t[4], b + 51, "annul", reason="no passage", ref=seq)
        n.add(d.north, t[5], b + 10)  # the same corrected time at two gates: gate_id decides
        n.add(d.south, t[5], b + 10, conflict=True)
        n.add(d.side, t[6], b + 60)  # a gate without zone, a ticket without category
        n.add(d.north, t[7], b + 70)
        n.add(d.north, t[7], b + 80, direction="out")
        n.add(d.south, t[7], b + 90)  # back in, at another gate
        n.add(d.north, t[8], b + 95)
        n.add(d.north, t[8], b + 96, direction="out")  # Staff: seen, none inside
        n.add(d.north, d.theirs[0], b + 20)  # org B's ticket: counted, lends no category
        n.add(d.south, d.theirs[0], b + 21, conflict=True)
        n.add(d.north, 999_999_001, b + 30)  # on no list at all
        n.add(d.north, None, b + 40)  # an admission without a ticket: counted, never inside
        n.add(9_999_999, 999_999_002, b + 45)  # a gate that no longer exists: totals only
        n.add(d.north, None, b + 41, "passed", ref=2)
        n.add(d.south, t[1], b + 101, "passed", ref=1)
        n.add(d.side, None, b + 42, "tailgate")
        for i, reason in enumerate(["unknown_ticket"] * 4 + ["already_inside"] * 3):
            n.add(d.south if i % 2 else d.north, t[i % 3], b + 300 + i, "deny", reason=reason)
        n.add(d.north, None, b + 400, "deny")  # no reason: "unknown", as is the next one
        n.add(d.side, 999_999_003, b + 401, "deny", reason="unknown")
        n.add(d.side, t[0], b - 7200, "deny", reason="wrong_zone")  # outside the hour
        n.add(d.south, t[0], b - 7100, "admit", direction="out")  # outside the hour
        await n.store()
        new, old = await both(conn, n.event_id)
        assert as_json(new) == as_json(old)
        assert new["gates"][-1]["gate_id"] == d.idle and new["gates"][-1]["admitted"] == 0
        assert list(new["categories"]) == ["", "GA", "Staff", "VIP"]
        assert new["denials"] == {
            "unknown_ticket": 4, "already_inside": 3, "unknown": 2, "wrong_zone": 1
        }  # fmt: skip
        assert (new["admitted"], new["exits"], new["annulled"], new["inside"]) == (15, 4, 2, 7)
        assert (new["conflicts"], new["passed"], new["tailgates"]) == (2, 2, 1)
        sql = "UPDATE events SET checkout_time = NULL WHERE event_id = $1"
        await conn.execute(sql, n.event_id)  # no check-out: the earlier entries count inside
        new, old = await both(conn, n.event_id)
        assert as_json(new) == as_json(old) and new["inside"] == 9
    finally:
        await conn.close()


async def test_an_event_without_check_ins_and_an_unknown_event(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        d = await door(conn)
        new, old = await both(conn, d.night.event_id)
        assert as_json(new) == as_json(old)
        assert new["admitted"] == 0 and len(new["gates"]) == 4 and new["categories"] == {}
    finally:
        await conn.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_random_nights_give_the_old_figures(db_url: str, seed: int) -> None:
    """Many rows on few tickets and few distinct times: ties, re-entries, annulments and
    conflicts everywhere. Denials of equal count may come in any order (the old statement
    left it to the hash table), so their order is checked by count only."""
    rng = random.Random(seed)
    conn = await asyncpg.connect(db_url)
    try:
        d = await door(conn)
        n = d.night
        gates = [d.north, d.south, d.side, 9_999_999]
        tickets = [*d.ours, *d.theirs, 999_999_001, 999_999_002, None]
        times = [d.boundary + rng.choice([-1, 1]) * rng.randrange(0, 5000, 250) for _ in range(9)]
        outcomes = ["admit"] * 8 + ["deny", "passed", "tailgate", "annul"]
        reasons = [None, "unknown", "already_inside", "revoked", "wrong_zone", ""]
        for _ in range(600):
            outcome = rng.choice(outcomes)
            n.add(
                rng.choice(gates),
                rng.choice(tickets),
                rng.choice(times),
                outcome,
                rng.choice(["in", "in", "out"]),
                reason=rng.choice(reasons) if outcome == "deny" else None,
                annulled=outcome == "admit" and rng.random() < 0.15,
                conflict=outcome == "admit" and rng.random() < 0.1,
                ref=1 if outcome in ("annul", "passed") else None,
            )
        await n.store()
        new, old = await both(conn, n.event_id)
        new_denials, old_denials = new.pop("denials"), old.pop("denials")
        assert as_json(new) == as_json(old)
        assert new_denials == old_denials and len(new_denials) >= 4
        assert list(new_denials.values()) == sorted(new_denials.values(), reverse=True)
        assert new["inside"] > 0 and new["annulled"] > 0 and new["conflicts"] > 0
    finally:
        await conn.close()
