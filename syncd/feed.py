"""The per-event change feed: every ticket and key change appends here in its own transaction.

``seq`` is gap-free and commit-ordered per event: ``reserve`` bumps ``events.change_seq`` and
the row lock it takes is held until the writer commits, so a reader that has seen seq N will
never later find a smaller one appearing. Bulk writers reserve N numbers once and insert with
``INSERT ... SELECT base + row_number()``.
"""

from __future__ import annotations

import asyncpg

TICKET_KINDS = ("added", "reissued", "updated", "revoked", "blocked", "unblocked")


async def reserve(conn: asyncpg.Connection, event_id: int, count: int) -> int:
    """Reserve ``count`` seqs; returns the base (the first reserved seq is base + 1)."""
    base = await conn.fetchval(
        "UPDATE events SET change_seq = change_seq + $2 WHERE event_id = $1"
        " RETURNING change_seq - $2",
        event_id,
        count,
    )
    assert base is not None, "event vanished inside its transaction"
    return int(base)


async def append_ticket(conn: asyncpg.Connection, kind: str, ticket: asyncpg.Record) -> None:
    base = await reserve(conn, ticket["event_id"], 1)
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind, ticket_id, kid, nonce, status, zone,"
        " category) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        ticket["event_id"],
        base + 1,
        f"ticket.{kind}",
        ticket["ticket_id"],
        ticket["kid"],
        ticket["nonce"],
        ticket["status"],
        ticket["zone"],
        ticket["category"],
    )


async def append_key(conn: asyncpg.Connection, event_id: int, kind: str, kid: bytes) -> None:
    base = await reserve(conn, event_id, 1)
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind, kid) VALUES ($1, $2, $3, $4)",
        event_id,
        base + 1,
        f"key.{kind}",
        kid,
    )


BULK_FROM_PLAN = """
INSERT INTO change_feed (event_id, seq, kind, ticket_id, kid, nonce, status, zone, category)
SELECT t.event_id, $2 + row_number() OVER (ORDER BY t.ticket_id), $3, t.ticket_id, t.kid,
       t.nonce, t.status, t.zone, t.category
FROM tickets t WHERE t.ticket_id IN (SELECT ticket_id FROM {source}) AND t.event_id = $1
"""
