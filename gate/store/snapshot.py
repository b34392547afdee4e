"""Load a full snapshot (a signed list bundle from syncd) without stopping the door.

``gate.store.importer`` loads a bundle in one transaction, which holds the write lock for the
whole read (about 20 s for 1,000,000 tickets): fine for `gate import-list` before doors open,
not while scanning. Here the tickets go into a staging table in short transactions (scans
interleave between them, deciding from the old list), and only after the bundle's signature
checks out does one short transaction swap the staging table in, with the event, keys and
sync cursor. A refused, broken or interrupted snapshot leaves the old list in force. A
revoked gate (gate.store.wipe) stages nothing, and one revoked while staging swaps nothing in
(the wipe drops what was staged): its names must not come back.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from collections.abc import Callable
from contextlib import suppress
from typing import IO

import aiosqlite

from gate.store.db import Store
from gate.store.importer import (
    ImportResult,
    _batch,
    _SignerProbe,
    _store_event,
    _store_keys,
    admit_signers,
    ticket_insert,
    trusted_keys,
)
from shared.bundle import BundleReader
from shared.errors import BundleError

_SLICE = 1_000
_STAGING = "tickets_staging"
_REVOKED = "syncd revoked this gate: it loads no list until it is enrolled again"


async def import_snapshot(
    store: Store, stream: IO[bytes], *, progress: Callable[[int], object] | None = None
) -> tuple[ImportResult, str]:
    """Stream a snapshot in beside the live list, then swap; returns the result and cursor.

    Raises ``BundleError`` (the old list stays) when the bundle is refused.
    """
    started = time.perf_counter()
    probe = _SignerProbe()
    reader = await asyncio.to_thread(BundleReader, stream, probe)
    event_id = reader.header.event.event_id
    admit_signers(probe, await trusted_keys(store), event_id)
    try:
        count, categories, known = await _stage(store, reader, progress)
        await asyncio.to_thread(reader.finish)
        async with store.transaction() as conn:
            if await _revoked(conn):  # learnt while staging: names must not come back
                raise BundleError(_REVOKED)
            new = [(cid, label) for label, cid in categories.items() if cid > known]
            await conn.executemany("INSERT INTO categories VALUES (?, ?)", new)
            await conn.execute("DROP TABLE tickets")
            await conn.execute("ALTER TABLE tickets_staging RENAME TO tickets")
            await _store_event(conn, reader.header, count, probe.asked)
            await _store_keys(conn, reader.header)
            await conn.execute(
                "UPDATE sync_state SET cursor = ?, snapshot_at = ?, last_pull_at = ?",
                (reader.header.cursor or "", time.time(), time.time()),
            )
    except sqlite3.IntegrityError as exc:
        raise BundleError(f"snapshot breaks the list's rules: {exc}") from exc
    finally:
        # Best effort: a full disk must not hide why the snapshot failed; the next one drops it.
        with suppress(sqlite3.Error):
            async with store.transaction() as conn:
                await conn.execute("DROP TABLE IF EXISTS tickets_staging")
    await store.conn.execute("PRAGMA incremental_vacuum")
    await store.refresh()
    signer = probe.asked.hex() if probe.asked else ""
    elapsed = time.perf_counter() - started
    result = ImportResult(event_id, reader.header.event.name, count, signer, elapsed)
    return result, reader.header.cursor or ""


async def _staging_ddl(conn: aiosqlite.Connection) -> list[str]:
    """``tickets``' own DDL and indexes under the staging name: they can never drift apart.

    An index is made under its other name (``_a`` <-> ``_b``): the live one still exists, and
    the swap keeps the staging table's (SQLite renames tables, not indexes).
    """
    rows = await conn.execute_fetchall(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = 'tickets' AND sql IS NOT NULL"
    )
    ddl = []
    for kind, name, sql in rows:
        # After a swap SQLite keeps the renamed table's name quoted in its DDL.
        sql = re.sub(r'\bON\s+"?tickets"?\s*\(', f"ON {_STAGING} (", str(sql))
        sql = re.sub(r'^CREATE TABLE\s+"?tickets"?', f"CREATE TABLE {_STAGING}", sql)
        if kind == "index":
            sql = sql.replace(name, _other_name(name), 1)
        ddl.append(sql)
    return sorted(ddl, key=lambda text: not text.startswith("CREATE TABLE"))


def _other_name(index: str) -> str:
    return index[:-2] + ("_b" if index.endswith("_a") else "_a")


async def _stage(
    store: Store, reader: BundleReader, progress: Callable[[int], object] | None
) -> tuple[int, dict[str, int], int]:
    """Fill the staging table: other events' tickets, then the bundle's, a batch at a time."""
    event_id = reader.header.event.event_id
    async with store.transaction() as conn:
        if await _revoked(conn):
            raise BundleError(_REVOKED)
        await conn.execute("DROP TABLE IF EXISTS tickets_staging")
        for ddl in await _staging_ddl(conn):
            await conn.execute(ddl)
        await conn.execute(
            "INSERT INTO tickets_staging SELECT * FROM tickets WHERE event_id != ?", (event_id,)
        )
        categories = await _categories(conn)
    known = max(categories.values(), default=0)
    batches = reader.batches(_SLICE)
    count = 0
    while rows := await asyncio.to_thread(_batch, batches, event_id, categories):
        for start in range(0, len(rows), _SLICE):  # short transactions: scans slip in between
            async with store.transaction() as conn:
                await conn.executemany(ticket_insert(_STAGING), rows[start : start + _SLICE])
        count += len(rows)
        if progress:
            progress(len(rows))
    return count, categories, known


async def _revoked(conn: aiosqlite.Connection) -> bool:
    """syncd revoked this gate (gate.store.wipe): a revoked gate keeps no names."""
    rows = await conn.execute_fetchall("SELECT revoked_at FROM sync_state")
    return any(row[0] is not None for row in rows)


async def _categories(conn: aiosqlite.Connection) -> dict[str, int]:
    rows = await conn.execute_fetchall("SELECT label, category_id FROM categories")
    return {label: cid for label, cid in rows}
