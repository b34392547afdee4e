"""The statements behind the live figures and the conflict list (``api/stats.py``).

The five figure reads run in the handler's one repeatable-read, read-only transaction, so they
describe one moment. Every join to ``tickets`` is on the event's own rows (``t.event_id`` = $1):
a check-in for another event's ticket never lends that ticket's category (see ``api/stats.py``).
"""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn

# Each ticket's latest admission; ``inside``: an entry made at or after $2, the boundary of the
# event's automatic check-out (NULL: none, shared.checkout).
_LATEST = """latest AS MATERIALIZED (
    SELECT ticket_id, gate_id,
           direction = 'in' AND at >= coalesce($2::float8, '-Infinity') AS inside
    FROM (SELECT DISTINCT ON (ticket_id) ticket_id, gate_id, direction, at FROM checkins
          WHERE event_id = $1 AND outcome = 'admit' AND NOT annulled AND ticket_id IS NOT NULL
          ORDER BY ticket_id, at DESC, gate_id DESC, seq DESC) l)"""

_TOTALS = f"""WITH {_LATEST}
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

_PER_GATE = f"""WITH {_LATEST}
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

_PER_CATEGORY = f"""WITH {_LATEST}
SELECT t.category, count(*) FILTER (WHERE l.inside) AS inside, count(*) AS seen
FROM latest l JOIN tickets t ON t.event_id = $1 AND t.ticket_id = l.ticket_id
GROUP BY t.category ORDER BY 1"""

_DENIALS = """SELECT coalesce(reason, 'unknown') AS reason, count(*) AS n FROM checkins
WHERE event_id = $1 AND outcome = 'deny' GROUP BY 1 ORDER BY 2 DESC"""

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


async def totals(conn: Conn, event_id: int, boundary: float | None = None) -> asyncpg.Record:
    """Reads the event's admitted, exits, denied, conflicts and inside-now counts; inside
    leaves out entries before ``boundary`` (the automatic check-out's; None: none)."""
    return await conn.fetchrow(_TOTALS, event_id, boundary)


async def per_gate(
    conn: Conn, event_id: int, boundary: float | None = None
) -> list[asyncpg.Record]:
    """Reads each gate of the event with its figures and its last drill, in ``gate_id``
    order (``boundary`` as for ``totals``)."""
    return await conn.fetch(_PER_GATE, event_id, boundary)


async def per_category(
    conn: Conn, event_id: int, boundary: float | None = None
) -> list[asyncpg.Record]:
    """Reads inside-now and seen counts per category of the event's own admitted tickets
    (``boundary`` as for ``totals``)."""
    return await conn.fetch(_PER_CATEGORY, event_id, boundary)


async def denials(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's denial count per reason, most frequent first."""
    return await conn.fetch(_DENIALS, event_id)


async def per_minute(conn: Conn, event_id: int, since: float) -> list[asyncpg.Record]:
    """Reads scans and admissions per minute (by corrected time) from ``since`` on."""
    return await conn.fetch(_PER_MINUTE, event_id, since)


async def conflicts(conn: Conn, event_id: int, limit: int) -> list[asyncpg.Record]:
    """Reads up to ``limit`` conflicting admissions of the event, oldest first, each with the
    entry it conflicts with."""
    return await conn.fetch(_CONFLICTS, event_id, limit)
