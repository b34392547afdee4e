"""The statements only the dashboard runs (``api/dashboard.py``, ``dashboard/seen.py``); its
figures are the stats endpoint's (``queries/stats.py``), read in the same transaction."""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn

# Admissions per minute per gate: the stats' per_minute "admitted" (admit, not annulled, both
# directions) split by gate, so the gates of one minute add up to the stats' figure.
_PER_MINUTE_GATE = """SELECT floor(at / 60) * 60 AS minute, gate_id,
       count(*) FILTER (WHERE outcome = 'admit' AND NOT annulled) AS admitted
FROM checkins WHERE event_id = $1 AND at >= $2 AND outcome IN ('admit', 'deny')
GROUP BY 1, 2 ORDER BY 1, 2"""

_SEEN = """SELECT g.gate_id, g.enrolled_at IS NOT NULL AS enrolled,
       g.revoked_at IS NOT NULL AS revoked, extract(epoch FROM s.seen_at)::float8 AS seen_at,
       s.backlog, extract(epoch FROM s.backlog_at)::float8 AS backlog_at
FROM gates g LEFT JOIN gate_seen s ON s.gate_id = g.gate_id
WHERE g.event_id = $1 ORDER BY g.gate_id"""

# The sightings, and one tessera_figures notification per event they touch (its open
# dashboards show the gates' new state at once, on every replica).
_RECORD_SEEN = """WITH w AS (
    INSERT INTO gate_seen (gate_id, seen_at, backlog, backlog_at)
    SELECT u.g, to_timestamp(u.t), u.b, CASE WHEN u.b IS NULL THEN NULL ELSE to_timestamp(u.t) END
    FROM unnest($1::bigint[], $2::float8[], $3::bigint[]) AS u(g, t, b)
    ON CONFLICT (gate_id) DO UPDATE SET
        seen_at = greatest(gate_seen.seen_at, excluded.seen_at),
        backlog = CASE WHEN excluded.backlog_at >= coalesce(gate_seen.backlog_at, '-infinity')
                       THEN excluded.backlog ELSE gate_seen.backlog END,
        backlog_at = greatest(gate_seen.backlog_at, excluded.backlog_at)
    RETURNING gate_id)
SELECT count(pg_notify('tessera_figures', e.event_id::text))
FROM (SELECT DISTINCT g.event_id FROM gates g JOIN w ON w.gate_id = g.gate_id) e"""


async def per_minute_gate(conn: Conn, event_id: int, since: float) -> list[asyncpg.Record]:
    """Reads admissions per minute (by corrected time) and gate from ``since`` on."""
    return await conn.fetch(_PER_MINUTE_GATE, event_id, since)


async def seen(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads each gate of the event: enrolled, revoked, last seen and last reported backlog
    (Unix seconds; None: never)."""
    return await conn.fetch(_SEEN, event_id)


async def record_seen(
    conn: Conn, gates: list[int], at: list[float], backlogs: list[int | None]
) -> None:
    """Writes sightings (gate, Unix time, backlog or None); a later sighting or backlog wins,
    whichever replica writes first. Notifies the events' dashboards."""
    await conn.fetchval(_RECORD_SEEN, gates, at, backlogs)
