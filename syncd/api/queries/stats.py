"""The statements behind the live figures and the conflict list (``api/stats.py``).

The figure reads run in the handler's one repeatable-read, read-only transaction, so they
describe one moment. Each reads what it needs of the event's check-ins once: ``counts`` every
check-in, ``presence`` each ticket's latest admission; ``api/stats.py`` adds their few rows up
into the totals, the gates, the categories and the denials. Every join to ``tickets`` is on the
event's own rows (``t.event_id`` = $1): a check-in for another event's ticket never lends that
ticket's category (see ``api/stats.py``).
"""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn

# The event's check-ins counted once, per gate and, for denials, per reason ("unknown" when the
# gate sent none; NULL on every other row): first by the columns the figures tell apart (a few
# hundred groups), then those groups into the figures. Gates are not joined: a check-in counts
# in the totals even if its gate is gone; api/stats.py joins the small result to the gates.
_COUNTS = """WITH k AS (
    SELECT gate_id, outcome, direction, annulled, conflict,
           CASE WHEN outcome = 'deny' THEN coalesce(reason, 'unknown') END AS reason,
           count(*) AS n
    FROM checkins WHERE event_id = $1 GROUP BY 1, 2, 3, 4, 5, 6)
SELECT gate_id, reason,
       coalesce(sum(n) FILTER (WHERE outcome = 'admit' AND direction = 'in' AND NOT annulled),
                0)::bigint AS admitted,
       coalesce(sum(n) FILTER (WHERE outcome = 'admit' AND direction = 'out' AND NOT annulled),
                0)::bigint AS exits,
       coalesce(sum(n) FILTER (WHERE outcome = 'admit' AND annulled), 0)::bigint AS annulled,
       coalesce(sum(n) FILTER (WHERE outcome = 'passed'), 0)::bigint AS passed,
       coalesce(sum(n) FILTER (WHERE outcome = 'tailgate'), 0)::bigint AS tailgates,
       coalesce(sum(n) FILTER (WHERE outcome = 'deny'), 0)::bigint AS denied,
       coalesce(sum(n) FILTER (WHERE conflict), 0)::bigint AS conflicts
FROM k GROUP BY gate_id, reason"""

# Each ticket's latest admission (by corrected time; ties: gate_id, seq), counted per category
# and gate: ``inside``, an entry made at or after $2, the boundary of the event's automatic
# check-out (NULL: none, shared.checkout); ``seen``, all of them. The category is NULL for a
# ticket id that is none of the event's own (unknown, or another event's). Ordered by category
# (NULL last), so api/stats.py keeps the categories in the database's collation order. The
# admissions come in DISTINCT ON order from the index checkins_latest (migration 0014): no sort.
_PRESENCE = """SELECT t.category, l.gate_id,
       count(*) FILTER (WHERE l.direction = 'in' AND l.at >= coalesce($2::float8, '-Infinity'))
           AS inside,
       count(*) AS seen
FROM (SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction, at FROM checkins
      WHERE event_id = $1 AND outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL
      ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC) l
LEFT JOIN tickets t ON t.event_id = $1 AND t.ticket_id = l.ticket_id
GROUP BY 1, 2 ORDER BY 1, 2"""

_GATES = """SELECT g.gate_id, g.name, g.zone, g.skew, g.last_push_at, g.acked_seq,
       g.last_drill_at, g.last_drill_result,
       ARRAY(SELECT i ->> 'name' FROM jsonb_array_elements(g.last_drill -> 'items') i
             WHERE i ->> 'status' = 'fail') AS drill_failing,
       ARRAY(SELECT i ->> 'name' FROM jsonb_array_elements(g.last_drill -> 'items') i
             WHERE i ->> 'status' = 'warn') AS drill_warning
FROM gates g WHERE g.event_id = $1 ORDER BY g.gate_id"""

_PER_MINUTE = """SELECT floor(at / 60) * 60 AS minute, count(*) AS scans,
       count(*) FILTER (WHERE outcome = 'admit' AND NOT annulled) AS admitted
FROM checkins WHERE event_id = $1 AND at >= $2 AND outcome IN ('admit', 'deny')
GROUP BY 1 ORDER BY 1"""

_CONFLICTS = """SELECT c.ticket_id, c.gate_id, g.name AS gate_name, c.seq, c.at, c.scanned_at,
       c.skew, c.via, e.gate_id AS entry_gate_id, eg.name AS entry_gate_name, e.at AS entry_at
FROM checkins c JOIN gates g ON g.event_id = c.event_id AND g.gate_id = c.gate_id
LEFT JOIN LATERAL (
    SELECT gate_id, at FROM checkins p
    WHERE p.event_id = c.event_id AND p.ticket_id = c.ticket_id AND p.outcome = 'admit'
      AND NOT p.annulled
      AND p.direction = 'in' AND NOT p.conflict
      AND (p.at, p.gate_id, p.seq) < (c.at, c.gate_id, c.seq)
    ORDER BY p.at DESC, p.gate_id DESC, p.seq DESC LIMIT 1) e ON true
LEFT JOIN gates eg ON eg.event_id = c.event_id AND eg.gate_id = e.gate_id
WHERE c.event_id = $1 AND c.conflict ORDER BY c.at LIMIT $2"""


async def counts(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's admitted, exits, annulled, passed, tailgates, denied and conflicts
    counts per gate and, for denials, reason (NULL: not a denial), in no particular order."""
    return await conn.fetch(_COUNTS, event_id)


async def presence(
    conn: Conn, event_id: int, boundary: float | None = None
) -> list[asyncpg.Record]:
    """Reads the tickets inside now and seen (admitted at least once) per category and gate
    of their latest admission, in category order (NULL, last: not the event's own ticket);
    inside leaves out entries before ``boundary`` (the automatic check-out's; None: none)."""
    return await conn.fetch(_PRESENCE, event_id, boundary)


async def gates(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads each gate of the event with its last drill, in ``gate_id`` order."""
    return await conn.fetch(_GATES, event_id)


async def per_minute(conn: Conn, event_id: int, since: float) -> list[asyncpg.Record]:
    """Reads scans and admissions per minute (by corrected time) from ``since`` on."""
    return await conn.fetch(_PER_MINUTE, event_id, since)


async def conflicts(conn: Conn, event_id: int, limit: int) -> list[asyncpg.Record]:
    """Reads up to ``limit`` conflicting admissions of the event, oldest first, each with the
    entry it conflicts with."""
    return await conn.fetch(_CONFLICTS, event_id, limit)
