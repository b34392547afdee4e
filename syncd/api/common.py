"""Helpers every resource handler uses: the org-scoped event lookup and shared path params."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from syncd.api.queries import Conn
from syncd.api.queries import events as q
from syncd.keys import POOL, VAULT
from syncd.vault import KeyVault
from syncd.web.auth import principal_of
from syncd.web.errors import not_found
from syncd.web.params import UINT32, path_int


def pool(request: web.Request) -> asyncpg.Pool:
    return request.app[POOL]


def vault(request: web.Request) -> KeyVault:
    return request.app[VAULT]


def event_id_of(request: web.Request) -> int:
    return path_int(request, "event_id", UINT32)


async def load_event(conn: Conn, request: web.Request, *, lock: bool = False) -> asyncpg.Record:
    """The path's event if it belongs to the caller's organisation, else 404 (never 403: the
    existence of another tenant's event is not disclosed)."""
    principal = principal_of(request)
    event_id = event_id_of(request)
    if principal.event_id is not None and principal.event_id != event_id:
        raise not_found("event")
    row = await q.org_event(conn, event_id, principal.org_id, lock=lock)
    if row is None:
        raise not_found("event")
    return row


def event_json(row: asyncpg.Record) -> dict[str, Any]:
    data = dict(row)
    for key in ("starts_at", "ends_at", "created_at", "updated_at"):
        data[key] = data[key].isoformat() if data[key] else None
    return data
