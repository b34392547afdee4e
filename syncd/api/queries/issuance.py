"""Statements on ``tickets`` for issuance: the CSV export's streamed cursor and a page of the
printable sheet (the export's count is ``tickets.ticket_total``)."""

from __future__ import annotations

import asyncpg
from asyncpg.cursor import CursorFactory

from syncd.api.queries import Conn

ISSUE_SELECT = (
    "SELECT ticket_id, external_ref, nonce, kid, zone, valid_from, valid_until, category,"
    " holder, email, status FROM tickets"
)
"""What a QR, an export row and a sheet card are made of (no ``event_id``: the caller adds it)."""


def export_tickets(conn: asyncpg.Connection, event_id: int) -> CursorFactory:
    """Reads all of the event's tickets in ``ticket_id`` order, 5000 rows per fetch; iterate it
    with ``async for`` inside the caller's transaction."""
    return conn.cursor(
        f"{ISSUE_SELECT} WHERE event_id = $1 ORDER BY ticket_id", event_id, prefetch=5000
    )


async def sheet_page(
    conn: Conn, event_id: int, after: int, external_ref: str | None, limit: int
) -> list[asyncpg.Record]:
    """Reads a keyset page of the event's valid tickets after ``after``, optionally one
    external reference only."""
    return await conn.fetch(
        f"{ISSUE_SELECT} WHERE event_id = $1 AND status = 'valid' AND ticket_id > $2"
        " AND ($3::text IS NULL OR external_ref = $3) ORDER BY ticket_id LIMIT $4",
        event_id,
        after,
        external_ref,
        limit,
    )
