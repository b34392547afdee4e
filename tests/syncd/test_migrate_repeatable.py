"""Repeatable scripts (``syncd/checkins/store_push.sql``) beside append-only migrations: a
database migrated by the code before the scripts existed migrates cleanly with this code."""

from __future__ import annotations

import asyncio

import asyncpg
from click.testing import CliRunner

from syncd.__main__ import cli as syncd_cli
from syncd.migrate import (
    load_migrations,
    load_repeatables,
    migrate_all,
    pending,
    schema_behind,
    stale_repeatables,
)
from tests.syncd.conftest import MASTER_KEY

_FUNCTIONS = (
    "SELECT pg_get_functiondef(p.oid) FROM pg_proc p WHERE p.proname = 'tessera_store_push'"
)


async def _migrate_as_before(conn: asyncpg.Connection) -> None:
    """What ``syncd migrate`` did before repeatable scripts: the versioned files and their
    ledger, nothing else (the same statements as the old ``syncd.db.migrate``)."""
    async with conn.transaction():
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
            " name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for m in load_migrations():
            await conn.execute(m.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )


async def test_a_database_migrated_by_the_old_code_migrates_cleanly(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await _migrate_as_before(conn)
        [before] = [r[0] for r in await conn.fetch(_FUNCTIONS)]  # 0005's function
        assert await pending(conn) == []
        assert await schema_behind(conn) == ["checkins/store_push.sql"]
        applied, rerun = await migrate_all(conn)
        assert applied == [] and [r.name for r in rerun] == ["checkins/store_push.sql"]
        assert await schema_behind(conn) == [] and await migrate_all(conn) == ([], [])
        # The script replaced 0005's function (door operations added p_ref); the older
        # signature is now only a call of the new one (a rolling upgrade), no second body.
        after = sorted(r[0] for r in await conn.fetch(_FUNCTIONS))
        [body] = [f for f in after if "p_ref bigint[]" in f]
        [shim] = [f for f in after if f is not body]
        assert "p_ref" not in before and "p_ref" not in shim and "array_fill" in shim
        assert "hashint8(g.event_id)" in before and "hashint8(g.event_id)" in body
        assert "hashint8" not in shim
    finally:
        await conn.close()


async def test_an_edited_script_is_applied_again(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        applied, rerun = await migrate_all(conn)
        assert len(applied) == len(load_migrations()) and rerun == load_repeatables()
        await conn.execute("UPDATE schema_repeatables SET checksum = 'edited'")
        assert await stale_repeatables(conn) == load_repeatables()
        assert await migrate_all(conn) == ([], load_repeatables())
        assert await stale_repeatables(conn) == []
    finally:
        await conn.close()


async def test_serve_refuses_a_stale_script_until_migrate(pg_url: str) -> None:
    conn = await asyncpg.connect(pg_url)
    try:
        await _migrate_as_before(conn)
    finally:
        await conn.close()
    env = {"SYNCD_DATABASE_URL": pg_url, "SYNCD_MASTER_KEY": MASTER_KEY}

    def run(*args: str) -> str:
        result = CliRunner().invoke(syncd_cli, list(args), env=env, catch_exceptions=False)
        return result.output

    check = await asyncio.to_thread(run, "serve", "--check-config")
    assert "syncd migrate" in check
    migrated = await asyncio.to_thread(run, "migrate")
    assert "applied repeatable checkins/store_push.sql" in migrated
    assert "0 migration(s) applied, 1 repeatable script(s)" in migrated
    assert (await asyncio.to_thread(run, "serve", "--check-config")).strip() == "configuration OK"
    assert "up to date" in await asyncio.to_thread(run, "migrate")
