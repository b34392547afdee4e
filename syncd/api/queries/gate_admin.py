"""Statements on ``gates`` for the organiser's gate handlers (create, list, new code, revoke),
and the one a gate's drill report writes (``record_drill``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from syncd.api.queries import Conn

GATE_COLUMNS = (
    "gate_id, event_id, name, zone, device, enrolled_at, revoked_at, code_expires_at,"
    " acked_seq, skew, last_push_at, created_at, last_drill_at, last_drill_result, last_drill"
)
"""The columns every gate answer carries (``gate_admin.gate_json`` shapes them)."""


async def insert_gate(
    conn: Conn, event_id: int, name: str, zone: str, code_hash: bytes, expires: datetime
) -> asyncpg.Record:
    """Writes a new pending gate of the event (its org copied from the event) with an
    enrolment code; returns it."""
    return await conn.fetchrow(
        "INSERT INTO gates (event_id, org_id, name, zone, code_hash, code_expires_at)"
        " SELECT event_id, org_id, $2, $3, $4, $5 FROM events WHERE event_id = $1"
        f" RETURNING {GATE_COLUMNS}",
        event_id,
        name,
        zone,
        code_hash,
        expires,
    )


async def event_gates(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's gates in ``gate_id`` order."""
    return await conn.fetch(
        f"SELECT {GATE_COLUMNS} FROM gates WHERE event_id = $1 ORDER BY gate_id", event_id
    )


async def update_gate(
    conn: Conn, gate_id: int, event_id: int, sets: str, *args: Any, active_only: bool = False
) -> asyncpg.Record | None:
    """Writes ``sets`` (a fixed SET list from the handlers; its values are ``$3`` on) on one gate
    of the event; ``active_only`` leaves a revoked gate untouched. None if nothing matched."""
    guard = " AND revoked_at IS NULL" if active_only else ""
    return await conn.fetchrow(
        f"UPDATE gates SET {sets} WHERE gate_id = $1 AND event_id = $2{guard}"
        f" RETURNING {GATE_COLUMNS}",
        gate_id,
        event_id,
        *args,
    )


async def gate_exists(conn: Conn, gate_id: int, event_id: int) -> bool | None:
    """Reads whether the event has this gate (true, or None if not)."""
    return await conn.fetchval(
        "SELECT true FROM gates WHERE gate_id = $1 AND event_id = $2", gate_id, event_id
    )


async def record_drill(
    conn: Conn, gate_id: int, result: str, drill: dict[str, Any]
) -> asyncpg.Record | None:
    """Writes the gate's last drill (result and board, a dict: the pool's jsonb codec encodes
    it) with syncd's clock; a revoked gate is left untouched. Returns the time stored, or None
    if nothing matched."""
    return await conn.fetchrow(
        "UPDATE gates SET last_drill_at = now(), last_drill_result = $2, last_drill = $3::jsonb"
        " WHERE gate_id = $1 AND revoked_at IS NULL RETURNING last_drill_at",
        gate_id,
        result,
        drill,
    )
