"""Postgres access: the asyncpg pool (a ``cleanup_ctx``) and ordered SQL migrations.

Migrations are ``syncd/migrations/NNNN_name.sql``, applied in order, each in its own transaction
under an advisory lock so replicas started together cannot race. A checksum per applied file
catches an edited migration. ``syncd serve`` refuses to start while any are pending.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources

import asyncpg
from aiohttp import web

from shared.errors import ConfigError

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
_LOCK_ID = 0x7E55E2A
_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load_migrations() -> list[Migration]:
    folder = resources.files("syncd") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def _applied(conn: asyncpg.Connection) -> dict[int, str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, checksum FROM schema_migrations")
    return {r["version"]: r["checksum"] for r in rows}


async def pending(conn: asyncpg.Connection) -> list[Migration]:
    """Migrations not yet applied; ``ConfigError`` if an applied one was edited."""
    done = await _applied(conn)
    for m in load_migrations():
        if m.version in done and done[m.version] != m.checksum:
            raise ConfigError(f"migration {m.version:04d}_{m.name} changed after it was applied")
    return [m for m in load_migrations() if m.version not in done]


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """Apply every pending migration; returns those applied."""
    applied = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(_LEDGER)
        for m in await pending(conn):
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
            applied.append(m)
    return applied


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


POOL = web.AppKey("pool", asyncpg.Pool)


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
                    todo = await pending(conn)
                if todo:
                    names = ", ".join(f"{m.version:04d}_{m.name}" for m in todo)
                    raise ConfigError(f"database schema is behind ({names}); run: syncd migrate")
            app[POOL] = pool
            yield
        finally:
            await pool.close()
