"""Statements on ``events`` (and the per-event reads of ``tickets`` and ``signing_keys`` that the
event and key handlers answer with)."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.checkout import parse_checkout_time
from syncd.api.queries import Conn

EVENT_COLUMNS = (
    "event_id, name, venue, starts_at, ends_at, timezone, zones, reentry, rotating,"
    " rotation_period, to_char(checkout_time, 'HH24:MI') AS checkout_time, capacity,"
    " created_at, updated_at"
)
"""The columns every event answer carries (``common.event_json`` shapes them); the check-out
time as it travels everywhere, "HH:MM" (None: off)."""


def _params(values: dict[str, Any]) -> list[Any]:
    """Column values as asyncpg binds them: the check-out time as a ``time``."""
    return [
        parse_checkout_time(v) if k == "checkout_time" and v is not None else v
        for k, v in values.items()
    ]


async def org_event(
    conn: Conn, event_id: int, org_id: int, *, lock: bool = False
) -> asyncpg.Record | None:
    """Reads one event of the organisation; ``lock`` takes its row lock (``FOR UPDATE``)."""
    return await conn.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1 AND org_id = $2"
        + (" FOR UPDATE" if lock else ""),
        event_id,
        org_id,
    )


async def event_by_id(conn: Conn, event_id: int | None) -> asyncpg.Record | None:
    """Reads one event by id alone (the caller has already scoped it, e.g. a gate's own event)."""
    return await conn.fetchrow(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1", event_id)


async def insert_event(conn: Conn, org_id: int, values: dict[str, Any]) -> asyncpg.Record:
    """Writes a new event of the organisation with the given columns; returns it."""
    columns = ["org_id", *values]
    placeholders = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    return await conn.fetchrow(
        f"INSERT INTO events ({', '.join(columns)}) VALUES ({placeholders})"
        f" RETURNING {EVENT_COLUMNS}",
        org_id,
        *_params(values),
    )


async def org_events(conn: Conn, org_id: int) -> list[asyncpg.Record]:
    """Reads the organisation's events in ``event_id`` order."""
    return await conn.fetch(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE org_id = $1 ORDER BY event_id", org_id
    )


async def ticket_counts(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's ticket count per status (rows of ``status``, ``n``)."""
    return await conn.fetch(
        "SELECT status, count(*) AS n FROM tickets WHERE event_id = $1 GROUP BY status",
        event_id,
    )


async def update_event(conn: Conn, event_id: int, values: dict[str, Any]) -> asyncpg.Record:
    """Writes the given columns (and ``updated_at``) of one event; returns it. ``values`` is
    non-empty and its keys are model field names, never client text. Setting the check-out time
    or the time zone (even to the same value) restarts ``checkout_since``: no boundary before
    now is announced under the new rule (syncd/checkout/timer.py)."""
    sets = ", ".join(f"{k} = ${i}" for i, k in enumerate(values, start=2))
    if "checkout_time" in values or "timezone" in values:
        sets += ", checkout_since = now()"
    return await conn.fetchrow(
        f"UPDATE events SET {sets}, updated_at = now() WHERE event_id = $1"
        f" RETURNING {EVENT_COLUMNS}",
        event_id,
        *_params(values),
    )


async def event_keys(conn: Conn, event_id: int) -> list[asyncpg.Record]:
    """Reads the event's signing keys (public half only) in creation order."""
    return await conn.fetch(
        "SELECT kid, public_key, status, is_signer, created_at, retired_at FROM signing_keys"
        " WHERE event_id = $1 ORDER BY created_at, kid",
        event_id,
    )
