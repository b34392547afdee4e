"""Statements on ``wallet_links`` and the holder-bound side of ``tickets`` (the wallet handlers)."""

from __future__ import annotations

import asyncpg

from syncd import signing
from syncd.api.queries import Conn

HOLDER_COLUMNS = (
    "t.ticket_id, t.event_id, t.nonce, t.kid, t.zone, t.valid_from, t.valid_until, t.category,"
    " t.holder, t.status, t.holder_key"
)
"""What a pass is signed from and what the wallet page shows."""
_LINK = (
    f"SELECT {HOLDER_COLUMNS}, l.claims, l.claims_total, l.claimed_at"
    " FROM wallet_links l JOIN tickets t ON t.ticket_id = l.ticket_id AND t.event_id = l.event_id"
    " WHERE l.token_hash = $1"
)


async def put_link(conn: Conn, ticket_id: int, event_id: int, token_hash: bytes) -> None:
    """Writes the ticket's one claim link: a new token replaces the old (its per-link claims
    start again; the total stays)."""
    await conn.execute(
        "INSERT INTO wallet_links (ticket_id, event_id, token_hash) VALUES ($1, $2, $3)"
        " ON CONFLICT (ticket_id) DO UPDATE SET token_hash = excluded.token_hash,"
        " created_at = now(), claims = 0",
        ticket_id,
        event_id,
        token_hash,
    )


async def link_event(conn: Conn, token_hash: bytes) -> int | None:
    """Reads the event a link belongs to (to take the event's lock before the ticket's)."""
    return await conn.fetchval(
        "SELECT event_id FROM wallet_links WHERE token_hash = $1", token_hash
    )


async def lock_event(conn: Conn, event_id: int) -> None:
    """Takes the event's row lock: feed writers take it first, so claims do too."""
    await conn.execute("SELECT 1 FROM events WHERE event_id = $1 FOR UPDATE", event_id)


async def link(conn: Conn, token_hash: bytes, *, lock: bool = False) -> asyncpg.Record | None:
    """Reads a link's ticket (the pass columns) and claim counts; ``lock`` locks both rows."""
    return await conn.fetchrow(_LINK + (" FOR UPDATE OF l, t" if lock else ""), token_hash)


async def bind_holder(
    conn: Conn, ticket_id: int, event_id: int, holder_key: bytes, signer: bytes
) -> asyncpg.Record:
    """Writes a claim: the ticket is reissued (new nonce, the signer's key) bound to the
    holder's key; returns the pass columns."""
    return await conn.fetchrow(
        "UPDATE tickets t SET holder_key = $3, kid = $4, nonce = "
        + signing.NEW_NONCE_SQL.format(old="nonce")
        + ", issued_at = now(), updated_at = now() WHERE ticket_id = $1 AND event_id = $2"
        f" RETURNING {HOLDER_COLUMNS}",
        ticket_id,
        event_id,
        holder_key,
        signer,
    )


async def count_claim(conn: Conn, ticket_id: int, device: str) -> asyncpg.Record:
    """Writes one claim to the link's counts; returns them."""
    return await conn.fetchrow(
        "UPDATE wallet_links SET claims = claims + 1, claims_total = claims_total + 1,"
        " claimed_at = now(), device = $2 WHERE ticket_id = $1"
        " RETURNING claims, claims_total, claimed_at",
        ticket_id,
        device,
    )


async def ticket_wallet(conn: Conn, ticket_id: int) -> asyncpg.Record | None:
    """Reads what the organiser sees of a ticket's wallet: link, claims, last device."""
    return await conn.fetchrow(
        "SELECT created_at, claims, claims_total, claimed_at, device FROM wallet_links"
        " WHERE ticket_id = $1",
        ticket_id,
    )
