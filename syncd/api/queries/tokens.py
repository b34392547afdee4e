"""Statements on ``api_tokens`` and ``orgs`` for the token handlers and ``whoami``."""

from __future__ import annotations

import asyncpg

from syncd.api.queries import Conn


async def org_name(conn: Conn, org_id: int) -> str | None:
    """Reads ``orgs.name`` of one organisation."""
    return await conn.fetchval("SELECT name FROM orgs WHERE org_id = $1", org_id)


async def insert_token(conn: Conn, org_id: int, name: str, role: str, token_hash: bytes) -> int:
    """Writes one ``api_tokens`` row; returns its ``token_id``."""
    return await conn.fetchval(
        "INSERT INTO api_tokens (org_id, name, role, token_hash) VALUES ($1, $2, $3, $4)"
        " RETURNING token_id",
        org_id,
        name,
        role,
        token_hash,
    )


async def org_tokens(conn: Conn, org_id: int) -> list[asyncpg.Record]:
    """Reads the organisation's tokens in ``token_id`` order."""
    return await conn.fetch(
        "SELECT token_id, name, role, created_at, revoked_at FROM api_tokens WHERE org_id = $1"
        " ORDER BY token_id",
        org_id,
    )


async def revoke_token(conn: Conn, token_id: int, org_id: int) -> asyncpg.Record | None:
    """Writes ``revoked_at`` (kept if already set) on the organisation's token; None if absent."""
    return await conn.fetchrow(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())"
        " WHERE token_id = $1 AND org_id = $2"
        " RETURNING token_id, name, role, created_at, revoked_at",
        token_id,
        org_id,
    )
