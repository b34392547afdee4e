"""The per-event change feed: every ticket and key change appends here in its own transaction.

``seq`` is gap-free and commit-ordered per event: ``reserve`` bumps ``events.change_seq`` and
the row lock it takes is held until the writer commits, so a reader that has seen seq N will
never later find a smaller one appearing. Bulk writers hold the event row lock and insert with
``INSERT ... SELECT base + row_number()``. A feed row names what changed (ticket_id, kid, or
gate_id: with gate_seq a check-in, without one a gate enrolled or revoked; none for
``event.updated``, whose settings readers take from ``events``);
readers join ``tickets`` / ``signing_keys`` for the current state, so a row is small and a
reader never acts on a stale copy.
"""

from __future__ import annotations

import asyncpg

TICKET_KINDS = ("added", "reissued", "updated", "revoked", "blocked", "unblocked")
KEY_KINDS = ("added", "retired")
GATE_KINDS = ("enrolled", "revoked")
EVENT_KINDS = ("updated",)


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


async def append_ticket(conn: asyncpg.Connection, kind: str, event_id: int, ticket_id: int) -> None:
    await append_tickets(conn, kind, event_id, [ticket_id])


async def append_tickets(
    conn: asyncpg.Connection, kind: str, event_id: int, ticket_ids: list[int]
) -> None:
    assert kind in TICKET_KINDS
    base = await reserve(conn, event_id, len(ticket_ids))
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind, ticket_id)"
        " SELECT $1, $2 + row_number() OVER (ORDER BY id), $3, id FROM unnest($4::bigint[]) id",
        event_id,
        base,
        f"ticket.{kind}",
        ticket_ids,
    )


async def append_key(conn: asyncpg.Connection, event_id: int, kind: str, kid: bytes) -> None:
    assert kind in KEY_KINDS
    base = await reserve(conn, event_id, 1)
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind, kid) VALUES ($1, $2, $3, $4)",
        event_id,
        base + 1,
        f"key.{kind}",
        kid,
    )


async def append_gate(conn: asyncpg.Connection, event_id: int, kind: str, gate_id: int) -> None:
    """A gate enrolled (its peer certificate is new) or was revoked: peers learn it here."""
    assert kind in GATE_KINDS
    await conn.execute("SELECT set_config('tessera.feed_writer', 'gates', true)")
    base = await reserve(conn, event_id, 1)  # no tickets.updated for it (0006_peers.sql)
    await conn.execute("SELECT set_config('tessera.feed_writer', '', true)")
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind, gate_id) VALUES ($1, $2, $3, $4)",
        event_id,
        base + 1,
        f"gate.{kind}",
        gate_id,
    )


async def append_event(conn: asyncpg.Connection, event_id: int) -> None:
    """The event's settings changed (rotation, re-entry, zones ...): gates read them here."""
    await conn.execute("SELECT set_config('tessera.feed_writer', 'event', true)")
    base = await reserve(conn, event_id, 1)  # no tickets.updated for it (0007_wallet.sql)
    await conn.execute("SELECT set_config('tessera.feed_writer', '', true)")
    await conn.execute(
        "INSERT INTO change_feed (event_id, seq, kind) VALUES ($1, $2, 'event.updated')",
        event_id,
        base + 1,
    )
