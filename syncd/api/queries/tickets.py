"""Statements on ``tickets`` for the ticket handlers (list, show, the single-ticket actions)."""

from __future__ import annotations

import asyncpg

from syncd import signing
from syncd.api.queries import Conn

TICKET_COLUMNS = (
    "ticket_id, event_id, external_ref, nonce, kid, zone, valid_from, valid_until, category,"
    ' holder, email, group_ref AS "group", status, status_source, issued_at, updated_at,'
    " holder_key IS NOT NULL AS holder_bound"
)
"""The columns every ticket answer carries (``tickets.ticket_json`` shapes them)."""


async def ticket_total(conn: Conn, event_id: int) -> int:
    """Reads how many tickets the event has (any status)."""
    return await conn.fetchval("SELECT count(*) FROM tickets WHERE event_id = $1", event_id)


async def event_ticket(conn: Conn, ticket_id: int, event_id: int) -> asyncpg.Record | None:
    """Reads one ticket of the event."""
    return await conn.fetchrow(
        f"SELECT {TICKET_COLUMNS} FROM tickets WHERE ticket_id = $1 AND event_id = $2",
        ticket_id,
        event_id,
    )


_FILTERS = """event_id = $1 AND ticket_id > $2
AND ($3::text IS NULL OR external_ref = $3) AND ($4::text IS NULL OR status = $4)"""
_PAGE = f"SELECT {TICKET_COLUMNS} FROM tickets WHERE {_FILTERS} ORDER BY ticket_id LIMIT $5"
# The partial index tickets_group (migration 0015) holds grouped tickets only: the plan must see
# group_ref <> '' spelt out to use it whatever the parameter is.
GROUP_PAGE = f"""SELECT {TICKET_COLUMNS} FROM tickets
WHERE {_FILTERS} AND group_ref <> '' AND group_ref = $6 ORDER BY ticket_id LIMIT $5"""


async def ticket_page(
    conn: Conn,
    event_id: int,
    after: int,
    external_ref: str | None,
    status: str | None,
    limit: int,
    group: str | None = None,
) -> list[asyncpg.Record]:
    """Reads a keyset page of the event's tickets after ``after``, optionally filtered."""
    if group is None:
        return await conn.fetch(_PAGE, event_id, after, external_ref, status, limit)
    return await conn.fetch(GROUP_PAGE, event_id, after, external_ref, status, limit, group)


async def set_ticket_state(
    conn: Conn,
    ticket: asyncpg.Record,
    new_status: str | None,
    signer: bytes,
    renonce: bool,
) -> asyncpg.Record:
    """Writes a manual action on one ticket: its status (kept if None), its key, and with
    ``renonce`` a new nonce and ``issued_at``; returns the ticket."""
    return await conn.fetchrow(
        "UPDATE tickets SET status = coalesce($2, status), status_source = 'manual',"
        " kid = $3, nonce = CASE WHEN $4 THEN "
        + signing.NEW_NONCE_SQL.format(old="nonce")
        + " ELSE nonce END, issued_at = CASE WHEN $4 THEN now() ELSE issued_at END,"
        " updated_at = now() WHERE ticket_id = $1 AND event_id = $5"
        f" RETURNING {TICKET_COLUMNS}",
        ticket["ticket_id"],
        new_status,
        signer,
        renonce,
        ticket["event_id"],
    )
