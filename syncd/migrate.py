"""The schema: ordered SQL migrations, then repeatable scripts, applied by ``syncd migrate``.

**Versioned migrations** are ``syncd/migrations/NNNN_name.sql``, applied once each, in order,
and append-only: a checksum per applied file (``schema_migrations``) catches an edited one.

**Repeatable scripts** (``REPEATABLE``) define server-side functions that the code calls, kept
beside that code (``syncd/checkins/store_push.sql``) instead of being copied into a new
migration at each change, as Flyway's repeatable scripts are. Each is run again, after every
versioned migration, whenever its checksum differs from the one recorded in
``schema_repeatables``; so a database migrated before the script existed gets it at its next
``syncd migrate``. A script must be safe to run any number of times (``CREATE OR REPLACE``).

Everything runs in one transaction under an advisory lock, so replicas started together cannot
race. ``syncd serve`` refuses to start while a migration is pending or a script is stale.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import asyncpg

from shared.errors import ConfigError

_LOCK_ID = 0x7E55E2A
_LEDGER = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""
_REPEATABLE_LEDGER = """CREATE TABLE IF NOT EXISTS schema_repeatables (
    name text PRIMARY KEY, checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now())"""
_RECORD_REPEATABLE = """INSERT INTO schema_repeatables (name, checksum) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET checksum = excluded.checksum, applied_at = now()"""
# (package, file) of each repeatable script, in the order they run.
REPEATABLE = (("syncd.checkins", "store_push.sql"),)


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)

    @property
    def label(self) -> str:
        return f"{self.version:04d}_{self.name}"


@dataclass(frozen=True, slots=True)
class Repeatable:
    name: str  # e.g. "checkins/store_push.sql"
    sql: str

    @property
    def checksum(self) -> str:
        return _checksum(self.sql)


def load_migrations() -> list[Migration]:
    folder = resources.files("syncd") / "migrations"
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, rest = entry.name.partition("_")
            found.append(Migration(int(number), rest.removesuffix(".sql"), entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def load_repeatables() -> list[Repeatable]:
    found = []
    for package, filename in REPEATABLE:
        folder = package.removeprefix("syncd.").replace(".", "/")
        text = (resources.files(package) / filename).read_text()
        found.append(Repeatable(f"{folder}/{filename}", text))
    return found


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
            raise ConfigError(f"migration {m.label} changed after it was applied")
    return [m for m in load_migrations() if m.version not in done]


async def stale_repeatables(conn: asyncpg.Connection) -> list[Repeatable]:
    """Repeatable scripts never run on this database, or changed since they last ran."""
    exists = await conn.fetchval("SELECT to_regclass('schema_repeatables') IS NOT NULL")
    rows = await conn.fetch("SELECT name, checksum FROM schema_repeatables") if exists else []
    done = {r["name"]: r["checksum"] for r in rows}
    return [r for r in load_repeatables() if done.get(r.name) != r.checksum]


async def schema_behind(conn: asyncpg.Connection) -> list[str]:
    """What ``syncd migrate`` would apply (names), empty when the schema is up to date."""
    todo = [m.label for m in await pending(conn)]
    return todo + [r.name for r in await stale_repeatables(conn)]


async def migrate_all(conn: asyncpg.Connection) -> tuple[list[Migration], list[Repeatable]]:
    """Apply every pending migration, then every stale repeatable script; returns both."""
    applied, rerun = [], []
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
        await conn.execute(_REPEATABLE_LEDGER)
        for r in await stale_repeatables(conn):
            await conn.execute(r.sql)
            await conn.execute(_RECORD_REPEATABLE, r.name, r.checksum)
            rerun.append(r)
    return applied, rerun


async def migrate(conn: asyncpg.Connection) -> list[Migration]:
    """``migrate_all``; returns the versioned migrations applied."""
    applied, _ = await migrate_all(conn)
    return applied
