"""The SQL of a list push, set-based, inside the caller's transaction (``push`` drives it).

1. COPY the checked records (``parse.check_list`` wrote them, duplicates already refused) into a
   temporary ``stage`` table in one statement.
2. Take the event row lock (serialises pushes and feed writers of this event), then per batch
   one statement joins the batch's stage rows to the current tickets and classifies each row:
   added, reissued
   (admission-relevant change: zone, validity, holder, or reinstating a ticket a complete push
   had revoked), updated (category, email or group: the QR stays good), same; it inserts,
   updates and appends the change feed (``INSERT ... SELECT``) from that one materialised plan.
3. A complete push then revokes the event's tickets missing from the file.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from syncd.signing import NEW_NONCE_SQL

STAGE = """CREATE TEMP TABLE stage (
    row_no integer, external_ref text COLLATE "C", holder text, email text, category text,
    zone integer, valid_from bigint, valid_until bigint, group_ref text) ON COMMIT DROP"""

APPLY = """WITH p AS MATERIALIZED (
SELECT s.row_no, s.external_ref, s.holder, s.email, s.category, s.zone, s.valid_from,
       s.valid_until, s.group_ref, c.change,
       CASE WHEN c.change = 'added' THEN nextval('ticket_id_seq') ELSE t.ticket_id END
           AS ticket_id,
       CASE WHEN c.change IN ('added', 'reissued') THEN {nonce} ELSE t.nonce END AS nonce,
       CASE WHEN c.change IN ('added', 'reissued') THEN $2::bytea ELSE t.kid END AS kid,
       CASE WHEN t.status IS NULL OR (t.status = 'revoked' AND t.status_source = 'push')
            THEN 'valid' ELSE t.status END AS status
FROM stage s
LEFT JOIN LATERAL (  -- one unique-index probe per row, whatever the statistics say
    SELECT ticket_id, nonce, kid, status, status_source, zone, valid_from, valid_until, holder,
           category, email, group_ref FROM tickets
    WHERE event_id = $1 AND external_ref = s.external_ref) t ON true
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.ticket_id IS NULL THEN 'added'
    WHEN t.status = 'revoked' AND t.status_source = 'push' THEN 'reissued'
    WHEN (t.zone, t.valid_from, t.valid_until, t.holder)
         IS DISTINCT FROM (s.zone, s.valid_from, s.valid_until, s.holder) THEN 'reissued'
    WHEN (t.category, t.email, t.group_ref) IS DISTINCT FROM (s.category, s.email, s.group_ref)
         THEN 'updated'
    ELSE 'same' END AS change) c
WHERE s.row_no BETWEEN $4 AND $5
), added AS (
INSERT INTO tickets (ticket_id, event_id, external_ref, nonce, kid, zone, valid_from,
    valid_until, category, holder, email, group_ref)
SELECT ticket_id, $1, external_ref, nonce, kid, zone, valid_from, valid_until, category, holder,
       email, group_ref FROM p WHERE change = 'added'
), changed AS (
UPDATE tickets t SET nonce = p.nonce, kid = p.kid, zone = p.zone,
    valid_from = p.valid_from, valid_until = p.valid_until, category = p.category,
    holder = p.holder, email = p.email, group_ref = p.group_ref, status = p.status,
    updated_at = now(),
    issued_at = CASE WHEN p.change = 'reissued' THEN now() ELSE t.issued_at END
FROM p WHERE t.ticket_id = p.ticket_id AND p.change IN ('reissued', 'updated')
), feed AS (
INSERT INTO change_feed (event_id, seq, kind, ticket_id)
SELECT $1, $3 + row_number() OVER (ORDER BY row_no), 'ticket.' || change, ticket_id
FROM p WHERE change <> 'same'
)
SELECT change, count(*) AS n FROM p GROUP BY change""".format(
    nonce=NEW_NONCE_SQL.format(old="coalesce(t.nonce, 0)")
)

APPLY_FRESH = """WITH p AS MATERIALIZED (
SELECT s.row_no, s.external_ref, s.holder, s.email, s.category, s.zone, s.valid_from,
       s.valid_until, s.group_ref, nextval('ticket_id_seq') AS ticket_id,
       (floor(random() * 4294967296))::bigint AS nonce
FROM stage s WHERE s.row_no BETWEEN $4 AND $5
), added AS (
INSERT INTO tickets (ticket_id, event_id, external_ref, nonce, kid, zone, valid_from,
    valid_until, category, holder, email, group_ref)
SELECT ticket_id, $1, external_ref, nonce, $2::bytea, zone, valid_from, valid_until, category,
       holder, email, group_ref FROM p
), feed AS (
INSERT INTO change_feed (event_id, seq, kind, ticket_id)
SELECT $1, $3 + row_number() OVER (ORDER BY row_no), 'ticket.added', ticket_id FROM p
)
SELECT 'added' AS change, count(*) AS n FROM p"""
"""The first list of an event: every row is new (the file has no duplicates), so no lookup."""

REVOKE_MISSING = """WITH gone AS (
    UPDATE tickets t SET status = 'revoked', status_source = 'push', updated_at = now()
    WHERE t.event_id = $1 AND t.status <> 'revoked'
      AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.external_ref = t.external_ref)
    RETURNING t.ticket_id)
INSERT INTO change_feed (event_id, seq, kind, ticket_id)
SELECT $1, $2 + row_number() OVER (ORDER BY ticket_id), 'ticket.revoked', ticket_id FROM gone"""


WORK_MEM = "128MB"
"""Keeps a batch's sort and the complete push's anti-join in memory."""


class Phases:
    """Wall-clock seconds spent per phase of a push (summed over batches), for the log line."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def mark(self, name: str) -> None:
        now = time.perf_counter()
        self.seconds[name] = round(self.seconds.get(name, 0.0) + now - self._last, 3)
        self._last = now


@dataclass
class PushResult:
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    revoked: int = 0

    def to_json(self) -> dict:
        keys = ("added", "reissued", "updated", "same")
        return {
            "rows": self.rows,
            **{k: self.counts.get(k, 0) for k in keys},
            "revoked": self.revoked,
        }


async def create_stage(conn: asyncpg.Connection) -> None:
    await conn.execute(STAGE)
    await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


async def copy_file(conn: asyncpg.Connection, path: Path) -> None:
    """Stream the worker's file (``copytext``) into COPY as it is, then index the batches' row
    numbers (one sort after the load costs less than an index updated row by row)."""
    await conn.copy_to_table("stage", source=path, format="text")
    await conn.execute("CREATE INDEX ON stage (row_no)")


async def refresh_statistics(conn: asyncpg.Connection) -> None:
    """ANALYZE counts this transaction's own inserts; without it, a table that grew inside the
    push still looks small to the planner and the per-batch UPDATE join can go quadratic."""
    await conn.execute("ANALYZE tickets")


async def has_tickets(conn: asyncpg.Connection, event_id: int) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM tickets WHERE event_id = $1)", event_id)
    )


async def apply_batch(
    conn: asyncpg.Connection,
    event_id: int,
    signer: bytes,
    base: int,
    batch: range,
    fresh: bool = False,
) -> dict[str, int]:
    """Upsert the ``batch`` rows of ``stage``; feed seqs start after ``base``. Returns counts."""
    sql = APPLY_FRESH if fresh else APPLY
    rows = await conn.fetch(sql, event_id, signer, base, batch[0], batch[-1])
    return {r["change"]: r["n"] for r in rows}


async def revoke_missing(conn: asyncpg.Connection, event_id: int, base: int) -> int:
    """Revoke the event's tickets absent from the whole stage (one hash anti-join)."""
    await conn.execute("ANALYZE stage")
    return int((await conn.execute(REVOKE_MISSING, event_id, base)).rsplit(" ", 1)[-1])
