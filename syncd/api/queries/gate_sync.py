"""Statements the gate-facing handlers run themselves (enrolment, peers). The push goes through
``syncd.checkins``, the feed and presence through ``syncd.feed``, the snapshot's event read is
``events.event_by_id``."""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn

_ENROLL = """UPDATE gates SET code_hash = NULL, code_expires_at = NULL, credential_hash = $2,
    device = $3, enrolled_at = now()
WHERE code_hash = $1 AND code_expires_at > now() AND revoked_at IS NULL
RETURNING gate_id, name, event_id"""
# Named as the feed's gate columns, so ``syncd.feed.read.gate_change`` shapes both.
_PEERS = """SELECT gate_id AS p_gate, name AS p_name, peer_cert, peer_urls,
    revoked_at IS NOT NULL AS p_revoked
FROM gates WHERE event_id = $1 AND gate_id <> $2
    AND (enrolled_at IS NOT NULL OR revoked_at IS NOT NULL)
ORDER BY gate_id"""


async def enroll_gate(
    conn: Conn, code_hash: bytes, credential_hash: bytes, device: str
) -> asyncpg.Record | None:
    """Writes the enrolment: the open, unexpired code of a gate that is not revoked is used up
    and replaced by the credential. None if no gate has that code."""
    return await conn.fetchrow(_ENROLL, code_hash, credential_hash, device)


async def gate_keys(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads every signing key of the event (public half and status) in creation order."""
    return await conn.fetch(
        "SELECT kid, public_key, status FROM signing_keys WHERE event_id = $1"
        " ORDER BY created_at, kid",
        event_id,
    )


async def certify_gate(conn: Conn, gate_id: int, peer_key: bytes, cert: bytes) -> None:
    """Writes the gate's peer key and syncd's certificate of it (a new enrolment replaces both)."""
    await conn.execute(
        "UPDATE gates SET peer_key = $2, peer_cert = $3 WHERE gate_id = $1", gate_id, peer_key, cert
    )


async def report_urls(conn: Conn, gate_id: int, urls: list[str]) -> None:
    """Writes where the gate's peer server answers on the venue LAN."""
    await conn.execute("UPDATE gates SET peer_urls = $2 WHERE gate_id = $1", gate_id, urls)


async def event_peers(conn: Conn, event_id: int, gate_id: int) -> list[asyncpg.Record]:
    """Reads the event's other gates that enrolled (or were revoked), in gate_id order."""
    return await conn.fetch(_PEERS, event_id, gate_id)
