"""Helpers every resource handler uses: the org-scoped event lookup and shared path params."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from syncd.keys import POOL, VAULT
from syncd.vault import KeyVault
from syncd.web.auth import principal_of
from syncd.web.errors import not_found
from syncd.web.params import UINT32, path_int

EVENT_COLUMNS = (
    "event_id, name, venue, starts_at, ends_at, timezone, zones, reentry, created_at, updated_at"
)


def pool(request: web.Request) -> asyncpg.Pool:
    return request.app[POOL]


def vault(request: web.Request) -> KeyVault:
    return request.app[VAULT]


def event_id_of(request: web.Request) -> int:
    return path_int(request, "event_id", UINT32)


async def load_event(
    conn: asyncpg.Connection | asyncpg.Pool, request: web.Request, *, lock: bool = False
) -> asyncpg.Record:
    """The path's event if it belongs to the caller's organisation, else 404 (never 403: the
    existence of another tenant's event is not disclosed)."""
    principal = principal_of(request)
    event_id = event_id_of(request)
    if principal.event_id is not None and principal.event_id != event_id:
        raise not_found("event")
    row = await conn.fetchrow(
        f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = $1 AND org_id = $2"
        + (" FOR UPDATE" if lock else ""),
        event_id,
        principal.org_id,
    )
    if row is None:
        raise not_found("event")
    return row


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    for key in ("starts_at", "ends_at", "created_at", "updated_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data
