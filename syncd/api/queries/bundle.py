"""Statements the list bundle is built from (with ``tickets.ticket_total``); the handler runs
them in one repeatable-read, read-only transaction so the header and the rows describe the same
snapshot."""

from __future__ import annotations

import asyncpg
from asyncpg.cursor import Cursor


async def active_keys(conn: asyncpg.Connection, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's active signing keys (public half) in creation order."""
    return await conn.fetch(
        "SELECT kid, public_key, status FROM signing_keys WHERE event_id = $1 AND status ="
        " 'active' ORDER BY created_at",
        event_id,
    )


async def change_seq(conn: asyncpg.Connection, event_id: int) -> int:
    """Reads the event's change-feed position (``events.change_seq``)."""
    return await conn.fetchval("SELECT change_seq FROM events WHERE event_id = $1", event_id)


async def bundle_tickets(conn: asyncpg.Connection, event_id: int) -> Cursor:
    """Reads the event's tickets in ``ticket_id`` order as a cursor (fetched in batches)."""
    return await conn.cursor(
        "SELECT ticket_id, nonce, status, zone, category, holder, valid_from, valid_until,"
        " group_ref FROM tickets"
        " WHERE event_id = $1 ORDER BY ticket_id",
        event_id,
    )


async def has_groups(conn: asyncpg.Connection, event_id: int) -> bool:
    """Reads whether a ticket of the event belongs to a group (the list's ``group`` column)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM tickets WHERE event_id = $1 AND group_ref <> '')",
            event_id,
        )
    )
