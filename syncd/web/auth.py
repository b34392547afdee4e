"""Who is calling: bearer credentials resolved to a ``Principal``, checked per operation.

A credential's prefix picks its resolver (``tsr_`` API tokens here; a gate credential, scoped to
one event, registers its own prefix). Every operation names the principal kinds and the least
role it accepts; the middleware refuses everything else before a handler runs. Tenancy (org
scoping) is enforced in the handlers' queries, which always filter by ``principal.org_id``.
The lookup needs Postgres; when it cannot be reached its error propagates to
``middleware.errors``, which answers 503 with Retry-After (never a 500). Failed lookups (401)
feed ``throttle``'s per-address limit, which sits in front of this middleware.

``PrincipalCache`` keeps a credential's principal (keyed by the credential's SHA-256, never the
credential) for ``auth_cache_seconds``, so 10,000 long-polling gates do not cost a query per
request. Postgres announces every revoked, deleted or replaced credential (migration 0008) and
the notifier drops it from every replica's cache at once; only while this replica's LISTEN
connection is down can a revoked credential live on, at most the cache's lifetime. Refusals are
never cached: they go through the failure limit.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.protocol import GATE_CREDENTIAL_PREFIX
from syncd.keys import POOL, PRINCIPALS, RESOLVERS
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


class PrincipalCache:
    """Credential hash -> (principal, expiry), bounded, the least recently used dropped first."""

    def __init__(
        self, ttl: float, size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl = ttl
        self.size = size
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[Principal, float]] = OrderedDict()

    def get(self, key: bytes) -> Principal | None:
        found = self._entries.get(key)
        if found is None:
            return None
        if found[1] <= self._clock():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found[0]

    def put(self, key: bytes, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = (principal, self._clock() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def forget(self, kind: str, subject_id: int) -> None:
        """A credential changed (``kind`` "gate" or "token"); ``"*"``: anything may have."""
        if kind == "*":
            self._entries.clear()
            return
        kind = "gate" if kind == "gate" else "token"
        stale = [
            key
            for key, (p, _) in self._entries.items()
            if p.kind == kind and p.subject_id == subject_id
        ]
        for key in stale:
            del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


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
    principal = await resolve(request.app, credential.strip())
    if principal is None:
        raise _unauthorized("token is not valid")
    return principal


async def resolve(app: web.Application, credential: str) -> Principal | None:
    """Who ``credential`` is, from the cache or Postgres; None: nobody (or revoked)."""
    cache = app[PRINCIPALS]
    key = hash_token(credential)
    if (cached := cache.get(key)) is not None:
        return cached
    for prefix, resolver in app[RESOLVERS].items():
        if credential.startswith(prefix) and len(credential) < 256:
            principal = await resolver(app[POOL], credential)
            if principal is not None:
                cache.put(key, principal)
                return principal
    return None


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


def forget_credential(request: web.Request, kind: str, subject_id: int) -> None:
    """Drop a credential this request changed from this replica's cache now (the others hear
    of it from Postgres after the commit; this replica too, but a reply may come first)."""
    request.app[PRINCIPALS].forget(kind, subject_id)
