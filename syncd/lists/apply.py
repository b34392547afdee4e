"""The SQL of a list push, set-based, inside the caller's transaction (``push`` drives it).

1. COPY each batch of records into a temporary ``stage`` table (binary COPY), noting a 64-bit
   hash of each external reference on the way (``Duplicates``).
2. Refuse duplicate external references within the file: only rows whose hashes collide are
   looked up in ``stage`` to confirm and report them.
3. Take the event row lock (serialises pushes and feed writers of this event), then per batch
   one statement joins the batch's stage rows to the current tickets and classifies each row:
   added, reissued
   (admission-relevant change: zone, validity, holder, or reinstating a ticket a complete push
   had revoked), updated (category or email), same; it inserts, updates and appends the change
   feed (``INSERT ... SELECT``) from that one materialised plan.
4. A complete push then revokes the event's tickets missing from the file.
"""

from __future__ import annotations

import time
from array import array
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import numpy as np

from syncd.lists.rows import Problem, Record
from syncd.signing import NEW_NONCE_SQL

STAGE = """CREATE TEMP TABLE stage (
    row_no integer, external_ref text COLLATE "C", holder text, email text, category text,
    zone integer, valid_from bigint, valid_until bigint) ON COMMIT DROP"""

APPLY = """WITH p AS MATERIALIZED (
SELECT s.row_no, s.external_ref, s.holder, s.email, s.category, s.zone, s.valid_from,
       s.valid_until, c.change,
       CASE WHEN c.change = 'added' THEN nextval('ticket_id_seq') ELSE t.ticket_id END
           AS ticket_id,
       CASE WHEN c.change IN ('added', 'reissued') THEN {nonce} ELSE t.nonce END AS nonce,
       CASE WHEN c.change IN ('added', 'reissued') THEN $2::bytea ELSE t.kid END AS kid,
       CASE WHEN t.status IS NULL OR (t.status = 'revoked' AND t.status_source = 'push')
            THEN 'valid' ELSE t.status END AS status
FROM stage s
LEFT JOIN LATERAL (  -- one unique-index probe per row, whatever the statistics say
    SELECT ticket_id, nonce, kid, status, status_source, zone, valid_from, valid_until, holder,
           category, email FROM tickets
    WHERE event_id = $1 AND external_ref = s.external_ref) t ON true
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.ticket_id IS NULL THEN 'added'
    WHEN t.status = 'revoked' AND t.status_source = 'push' THEN 'reissued'
    WHEN (t.zone, t.valid_from, t.valid_until, t.holder)
         IS DISTINCT FROM (s.zone, s.valid_from, s.valid_until, s.holder) THEN 'reissued'
    WHEN (t.category, t.email) IS DISTINCT FROM (s.category, s.email) THEN 'updated'
    ELSE 'same' END AS change) c
WHERE s.row_no BETWEEN $4 AND $5
), added AS (
INSERT INTO tickets (ticket_id, event_id, external_ref, nonce, kid, zone, valid_from,
    valid_until, category, holder, email)
SELECT ticket_id, $1, external_ref, nonce, kid, zone, valid_from, valid_until, category, holder,
       email FROM p WHERE change = 'added'
), changed AS (
UPDATE tickets t SET nonce = p.nonce, kid = p.kid, zone = p.zone,
    valid_from = p.valid_from, valid_until = p.valid_until, category = p.category,
    holder = p.holder, email = p.email, status = p.status, updated_at = now(),
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
       s.valid_until, nextval('ticket_id_seq') AS ticket_id,
       (floor(random() * 4294967296))::bigint AS nonce
FROM stage s WHERE s.row_no BETWEEN $4 AND $5
), added AS (
INSERT INTO tickets (ticket_id, event_id, external_ref, nonce, kid, zone, valid_from,
    valid_until, category, holder, email)
SELECT ticket_id, $1, external_ref, nonce, $2::bytea, zone, valid_from, valid_until, category,
       holder, email FROM p
), feed AS (
INSERT INTO change_feed (event_id, seq, kind, ticket_id)
SELECT $1, $3 + row_number() OVER (ORDER BY row_no), 'ticket.added', ticket_id FROM p
)
SELECT 'added' AS change, count(*) AS n FROM p"""
"""The first list of an event: every row is new, so no lookup. A repeated reference fails the
unique index; the caller applies this under a savepoint and reports the duplicate."""

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


class Duplicates:
    """Finds repeated external references with 16 bytes per row instead of a set of strings."""

    def __init__(self) -> None:
        self._hashes = array("q")
        self._rows = array("q")

    async def watch(self, records: AsyncIterator[Record]) -> AsyncIterator[Record]:
        hashes, rows = self._hashes.append, self._rows.append
        async for record in records:
            hashes(hash(record[1]))
            rows(record[0])
            yield record

    def suspects(self) -> list[int]:
        """Row numbers whose reference hash is not unique (a superset of the duplicates)."""
        hashes = np.frombuffer(self._hashes, dtype=np.int64)
        _, inverse, counts = np.unique(hashes, return_inverse=True, return_counts=True)
        rows = np.frombuffer(self._rows, dtype=np.int64)
        return [int(r) for r in rows[counts[inverse] > 1]]

    async def problems(self, conn: asyncpg.Connection, limit: int) -> list[Problem]:
        suspects = self.suspects()
        if not suspects:
            return []
        found = await conn.fetch(
            "SELECT row_no, external_ref FROM stage WHERE row_no = ANY($1::int[]) ORDER BY row_no",
            suspects,
        )
        by_ref: dict[str, list[int]] = defaultdict(list)
        for r in found:
            by_ref[r["external_ref"]].append(r["row_no"])
        return sorted(
            (
                Problem(row, "external_ref", f"duplicate of row {rows[0]}")
                for rows in by_ref.values()
                for row in rows[1:]
            ),
            key=lambda p: p.row,
        )[:limit]


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
    await conn.execute("CREATE INDEX ON stage (row_no)")
    await conn.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")


async def copy_batch(conn: asyncpg.Connection, batch: list[Record]) -> None:
    await conn.copy_records_to_table("stage", records=batch)


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
    batch: list[Record],
    fresh: bool = False,
) -> dict[str, int]:
    """Upsert the batch's rows of ``stage``; feed seqs start after ``base``. Returns counts."""
    sql = APPLY_FRESH if fresh else APPLY
    rows = await conn.fetch(sql, event_id, signer, base, batch[0][0], batch[-1][0])
    return {r["change"]: r["n"] for r in rows}


async def revoke_missing(conn: asyncpg.Connection, event_id: int, base: int) -> int:
    """Revoke the event's tickets absent from the whole stage (one hash anti-join)."""
    await conn.execute("ANALYZE stage")
    return int((await conn.execute(REVOKE_MISSING, event_id, base)).rsplit(" ", 1)[-1])
