"""Apply a checked list, set-based, inside the caller's transaction.

1. COPY the records into a temporary ``stage`` table (binary COPY from the streamed body).
2. Refuse duplicate external references within the file.
3. Take the event row lock (serialises pushes and feed writers of this event), build a ``plan``
   joining stage to the current tickets: added, reissued (admission-relevant change: zone,
   validity, holder, or reinstating a ticket a complete push had revoked), updated (category or
   email), same.
4. Insert, update, then write the change feed with ``INSERT ... SELECT``; a complete push revokes
   the event's tickets missing from the file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from syncd.lists.rows import Problem, Record
from syncd.signing import NEW_NONCE_SQL

STAGE = """CREATE TEMP TABLE stage (
    row_no integer, external_ref text, holder text, email text, category text, zone integer,
    valid_from bigint, valid_until bigint) ON COMMIT DROP"""

DUPLICATES = """SELECT external_ref, array_agg(row_no ORDER BY row_no) AS rows FROM stage
GROUP BY external_ref HAVING count(*) > 1 ORDER BY min(row_no) LIMIT $1"""

PLAN_TABLE = """CREATE TEMP TABLE plan (
    row_no integer, external_ref text, holder text, email text, category text, zone integer,
    valid_from bigint, valid_until bigint, change text, ticket_id bigint, nonce bigint,
    kid bytea, status text) ON COMMIT DROP"""

PLAN = """INSERT INTO plan
SELECT s.row_no, s.external_ref, s.holder, s.email, s.category, s.zone, s.valid_from,
       s.valid_until, c.change,
       coalesce(t.ticket_id, nextval('ticket_id_seq')) AS ticket_id,
       CASE WHEN c.change IN ('added', 'reissued') THEN {nonce} ELSE t.nonce END AS nonce,
       CASE WHEN c.change IN ('added', 'reissued') THEN $2::bytea ELSE t.kid END AS kid,
       CASE WHEN t.status IS NULL OR (t.status = 'revoked' AND t.status_source = 'push')
            THEN 'valid' ELSE t.status END AS status
FROM stage s
LEFT JOIN tickets t ON t.event_id = $1 AND t.external_ref = s.external_ref
CROSS JOIN LATERAL (SELECT CASE
    WHEN t.ticket_id IS NULL THEN 'added'
    WHEN t.status = 'revoked' AND t.status_source = 'push' THEN 'reissued'
    WHEN (t.zone, t.valid_from, t.valid_until, t.holder)
         IS DISTINCT FROM (s.zone, s.valid_from, s.valid_until, s.holder) THEN 'reissued'
    WHEN (t.category, t.email) IS DISTINCT FROM (s.category, s.email) THEN 'updated'
    ELSE 'same' END AS change) c""".format(nonce=NEW_NONCE_SQL.format(old="coalesce(t.nonce, 0)"))

INSERT = """INSERT INTO tickets (ticket_id, event_id, external_ref, nonce, kid, zone, valid_from,
    valid_until, category, holder, email)
SELECT ticket_id, $1, external_ref, nonce, kid, zone, valid_from, valid_until, category, holder,
       email FROM plan WHERE change = 'added'"""

UPDATE = """UPDATE tickets t SET nonce = p.nonce, kid = p.kid, zone = p.zone,
    valid_from = p.valid_from, valid_until = p.valid_until, category = p.category,
    holder = p.holder, email = p.email, status = p.status, updated_at = now(),
    issued_at = CASE WHEN p.change = 'reissued' THEN now() ELSE t.issued_at END
FROM plan p WHERE t.ticket_id = p.ticket_id AND p.change IN ('reissued', 'updated')"""

FEED = """INSERT INTO change_feed (event_id, seq, kind, ticket_id, kid, nonce, status, zone,
    category)
SELECT $1, $2 + row_number() OVER (ORDER BY row_no), 'ticket.' || change, ticket_id, kid, nonce,
       status, zone, category FROM plan WHERE change <> 'same'"""

REVOKE_MISSING = """WITH gone AS (
    UPDATE tickets t SET status = 'revoked', status_source = 'push', updated_at = now()
    WHERE t.event_id = $1 AND t.status <> 'revoked'
      AND NOT EXISTS (SELECT 1 FROM stage s WHERE s.external_ref = t.external_ref)
    RETURNING t.ticket_id, t.kid, t.nonce, t.zone, t.category)
INSERT INTO change_feed (event_id, seq, kind, ticket_id, kid, nonce, status, zone, category)
SELECT $1, $2 + row_number() OVER (ORDER BY ticket_id), 'ticket.revoked', ticket_id, kid, nonce,
       'revoked', zone, category FROM gone"""


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


async def stage(conn: asyncpg.Connection, records: AsyncIterator[Record]) -> None:
    await conn.execute(STAGE)
    await conn.copy_records_to_table("stage", records=records)


async def duplicates(conn: asyncpg.Connection, limit: int) -> list[Problem]:
    rows = await conn.fetch(DUPLICATES, limit)
    return [
        Problem(r["rows"][i], "external_ref", f"duplicate of row {r['rows'][0]}")
        for r in rows
        for i in range(1, len(r["rows"]))
    ][:limit]


def _count(status: str) -> int:
    return int(status.rsplit(" ", 1)[-1])


async def apply(
    conn: asyncpg.Connection, event_id: int, signer: bytes, *, complete: bool
) -> PushResult:
    """Upsert ``stage`` into the event (the caller holds the event row lock)."""
    await conn.execute(PLAN_TABLE)
    await conn.execute(PLAN, event_id, signer)
    result = PushResult()
    for row in await conn.fetch("SELECT change, count(*) AS n FROM plan GROUP BY change"):
        result.counts[row["change"]] = row["n"]
    result.rows = sum(result.counts.values())
    await conn.execute(INSERT, event_id)
    await conn.execute(UPDATE)
    base = await conn.fetchval("SELECT change_seq FROM events WHERE event_id = $1", event_id)
    changed = _count(await conn.execute(FEED, event_id, base))
    if complete:
        result.revoked = _count(await conn.execute(REVOKE_MISSING, event_id, base + changed))
    await conn.execute(
        "UPDATE events SET change_seq = change_seq + $2 WHERE event_id = $1",
        event_id,
        changed + result.revoked,
    )
    return result
