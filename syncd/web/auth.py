"""Who is calling: bearer credentials resolved to a ``Principal``, checked per operation.

A credential's prefix picks its resolver (``tsr_`` API tokens here; a gate credential, scoped to
one event, registers its own prefix). Every operation names the principal kinds and the least
role it accepts; the middleware refuses everything else before a handler runs. Tenancy (org
scoping) is enforced in the handlers' queries, which always filter by ``principal.org_id``.
The lookup needs Postgres; when it cannot be reached its error propagates to
``middleware.errors``, which answers 503 with Retry-After (never a 500). Failed lookups (401)
feed ``throttle``'s per-address limit, which sits in front of this middleware.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.protocol import GATE_CREDENTIAL_PREFIX
from syncd.keys import POOL, RESOLVERS
from syncd.vault import TOKEN_PREFIX, hash_token
from syncd.web.errors import ApiError
from syncd.web.operations import ROLES, operation_of


@dataclass(frozen=True, slots=True)
class Principal:
    kind: str  # "token" (organiser API token) or "gate" (one gate of one event)
    org_id: int
    role: str = "viewer"
    subject_id: int = 0  # token_id or gate_id; safe to log
    event_id: int | None = None  # set for principals scoped to one event

    def can(self, role: str) -> bool:
        return self.role in ROLES and ROLES.index(self.role) >= ROLES.index(role)


Resolver = Callable[[asyncpg.Pool, str], Awaitable[Principal | None]]
PRINCIPAL = web.RequestKey("principal", Principal)


async def resolve_api_token(pool: asyncpg.Pool, token: str) -> Principal | None:
    row = await pool.fetchrow(
        "SELECT token_id, org_id, role FROM api_tokens"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        hash_token(token),
    )
    if row is None:
        return None
    return Principal("token", row["org_id"], row["role"], row["token_id"])


async def resolve_gate(pool: asyncpg.Pool, credential: str) -> Principal | None:
    """A ``tsg_`` gate credential: scoped to its gate's event, refused once revoked."""
    row = await pool.fetchrow(
        "SELECT gate_id, org_id, event_id FROM gates"
        " WHERE credential_hash = $1 AND revoked_at IS NULL",
        hash_token(credential),
    )
    if row is None:
        return None
    return Principal("gate", row["org_id"], "gate", row["gate_id"], row["event_id"])


def default_resolvers() -> dict[str, Resolver]:
    return {TOKEN_PREFIX: resolve_api_token, GATE_CREDENTIAL_PREFIX: resolve_gate}


def _unauthorized(message: str) -> ApiError:
    return ApiError(401, "unauthorized", message)


async def authenticate(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, credential = header.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        raise _unauthorized("send Authorization: Bearer <token>")
    credential = credential.strip()
    for prefix, resolve in request.app[RESOLVERS].items():
        if credential.startswith(prefix) and len(credential) < 256:
            principal = await resolve(request.app[POOL], credential)
            if principal is not None:
                return principal
    raise _unauthorized("token is not valid")


@web.middleware
async def auth_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    operation = operation_of(request)
    if operation is None or operation.role is None:
        return await handler(request)
    principal = await authenticate(request)
    if principal.kind not in operation.principals:
        raise ApiError(403, "forbidden", "this credential cannot use this endpoint")
    if principal.kind == "token" and not principal.can(operation.role):
        raise ApiError(403, "forbidden", f"this endpoint needs the {operation.role} role")
    request[PRINCIPAL] = principal
    return await handler(request)


def principal_of(request: web.Request) -> Principal:
    return request[PRINCIPAL]
