"""API tokens of the caller's organisation (admin only) and ``whoami``.

A token's text is returned once, at creation; only its SHA-256 is stored.
"""

from __future__ import annotations

import logging
from typing import Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from syncd.api.common import pool
from syncd.api.queries import Conn
from syncd.api.queries import tokens as q
from syncd.vault import hash_token, new_token
from syncd.web.auth import forget_credential, principal_of
from syncd.web.errors import not_found
from syncd.web.operations import op
from syncd.web.params import UINT64, json_response, path_int, read_model

log = logging.getLogger("syncd.tokens")


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "organiser", "viewer"]


async def insert_token(conn: Conn, org_id: int, name: str, role: str) -> tuple[int, str]:
    """Create a token; returns (token_id, token text). The text is not stored anywhere."""
    token = new_token()
    token_id = await q.insert_token(conn, org_id, name, role, hash_token(token))
    log.info("token created", extra={"token_id": token_id, "org_id": org_id, "role": role})
    return int(token_id), token


def _token_json(row: asyncpg.Record) -> dict:
    return {
        "token_id": row["token_id"],
        "name": row["name"],
        "role": row["role"],
        "created_at": row["created_at"].isoformat(),
        "revoked_at": row["revoked_at"].isoformat() if row["revoked_at"] else None,
    }


@op("GET", "/api/v1/whoami", "The calling token's organisation and role.", tag="tokens")
async def whoami(request: web.Request) -> web.Response:
    principal = principal_of(request)
    name = await q.org_name(pool(request), principal.org_id)
    return json_response(
        {
            "org_id": principal.org_id,
            "org": name,
            "role": principal.role,
            "token_id": principal.subject_id,
        }
    )


@op("GET", "/api/v1/tokens", "List the organisation's API tokens.", role="admin", tag="tokens")
async def list_tokens(request: web.Request) -> web.Response:
    rows = await q.org_tokens(pool(request), principal_of(request).org_id)
    return json_response({"tokens": [_token_json(r) for r in rows]})


@op(
    "POST",
    "/api/v1/tokens",
    "Create an API token; its text is shown only in this answer.",
    role="admin",
    body=TokenIn,
    tag="tokens",
    ok_status=201,
)
async def create_token(request: web.Request) -> web.Response:
    body = await read_model(request, TokenIn)
    token_id, token = await insert_token(
        pool(request), principal_of(request).org_id, body.name, body.role
    )
    return json_response(
        {"token_id": token_id, "name": body.name, "role": body.role, "token": token}, status=201
    )


@op("DELETE", "/api/v1/tokens/{token_id}", "Revoke an API token.", role="admin", tag="tokens")
async def revoke_token(request: web.Request) -> web.Response:
    token_id = path_int(request, "token_id", UINT64 >> 1)
    row = await q.revoke_token(pool(request), token_id, principal_of(request).org_id)
    if row is None:
        raise not_found("token")
    forget_credential(request, "token", token_id)  # other replicas: Postgres tells them
    return json_response(_token_json(row))
