"""Postgres access: the asyncpg pool (a ``cleanup_ctx``), its session limits, and what counts
as "the database is down". The schema itself is ``syncd.migrate``'s.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.errors import ConfigError
from syncd.keys import POOL
from syncd.migrate import schema_behind

# asyncpg's ways of saying "no database": refused or dropped connections, a server starting up,
# shutting down or out of connection slots (53300), a pool closing, a timed-out connect, and a
# connection whose backend was terminated while it sat idle in the pool (the server's FATAL
# arrives before the socket closes; the next query then raises InternalClientError "cannot
# switch to state N; another operation (2) is in progress", MagicStack/asyncpg#784).
DB_DOWN: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    EOFError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Server-side limits of every pooled session, in seconds: no statement runs longer than
    ``statement``, no transaction stays idle longer than ``idle_in_transaction`` (Postgres
    ends the session and frees its locks). A long legitimate job raises its own limit with
    ``SET LOCAL statement_timeout`` (the list push does)."""

    statement: float = 60.0
    idle_in_transaction: float = 60.0

    def server_settings(self) -> dict[str, str]:
        return {
            "statement_timeout": str(int(self.statement * 1000)),
            "idle_in_transaction_session_timeout": str(int(self.idle_in_transaction * 1000)),
        }


async def create_pool(
    url: str, min_size: int = 1, max_size: int = 10, timeouts: Timeouts | None = None
) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            url,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            server_settings=(timeouts or Timeouts()).server_settings(),
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigError(f"cannot connect to Postgres: {type(exc).__name__}: {exc}") from exc
    assert pool is not None
    return pool


@dataclass
class PoolCtx:
    """``cleanup_ctx`` that opens the pool, checks the schema, and closes the pool on shutdown."""

    url: str
    min_size: int
    max_size: int
    check_schema: bool
    timeouts: Timeouts = Timeouts()

    async def __call__(self, app: web.Application) -> AsyncIterator[None]:
        pool = await create_pool(self.url, self.min_size, self.max_size, self.timeouts)
        try:
            if self.check_schema:
                async with pool.acquire() as conn:
                    todo = await schema_behind(conn)
                if todo:
                    names = ", ".join(todo)
                    raise ConfigError(f"database schema is behind ({names}); run: syncd migrate")
            app[POOL] = pool
            yield
        finally:
            await pool.close()
