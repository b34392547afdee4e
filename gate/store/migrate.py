"""Ordered SQL migrations: ``migrations/NNNN_name.sql``, each applied once, in one transaction.

The applied versions live in ``schema_migrations``. A database newer than this code (a version
we do not have a file for) is refused rather than guessed at.
"""

from __future__ import annotations

import logging
import re
import time
from importlib import resources

import aiosqlite

from shared.errors import ConfigError

log = logging.getLogger(__name__)
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def migration_files() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) for every bundled migration, in order."""
    found = []
    for item in resources.files("gate.store.migrations").iterdir():
        match = _NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise ConfigError(f"migration versions are not 1..n without gaps: {versions}")
    return found


async def apply_migrations(conn: aiosqlite.Connection) -> int:
    """Apply what is missing; returns the schema version now in force.

    Safe when two processes open a new database at once: a migration that fails because the
    other process applied it first is not an error.
    """
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    files = migration_files()
    current = await _version(conn)
    if current > len(files):
        raise ConfigError(f"database schema version {current} is newer than this gate software")
    for version, name, sql in files[current:]:
        script = (
            f"BEGIN IMMEDIATE;\n{sql}\n"
            f"INSERT INTO schema_migrations VALUES ({version}, '{name}', {time.time()});\nCOMMIT;"
        )
        try:
            await conn.executescript(script)
        except aiosqlite.Error:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            if await _version(conn) < version:
                raise
        log.info("schema at version %d", version, extra={"migration": name})
    return len(files)


async def _version(conn: aiosqlite.Connection) -> int:
    rows = await conn.execute_fetchall("SELECT coalesce(max(version), 0) FROM schema_migrations")
    return int(next(iter(rows))[0])
