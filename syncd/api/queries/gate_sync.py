"""Statements the gate-facing handlers run themselves (enrolment). The push goes through
``syncd.checkins``, the feed and presence through ``syncd.feed``, the snapshot's event read is
``events.event_by_id``."""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn

_ENROLL = """UPDATE gates SET code_hash = NULL, code_expires_at = NULL, credential_hash = $2,
    device = $3, enrolled_at = now()
WHERE code_hash = $1 AND code_expires_at > now() AND revoked_at IS NULL
RETURNING gate_id, name, event_id"""


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
