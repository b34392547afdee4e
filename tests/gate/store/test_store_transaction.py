"""Store.transaction() under cancellation, with another process holding SQLite's write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from gate.store.db import Store


async def test_cancelled_while_waiting_for_the_write_lock_leaves_no_transaction_open(
    tmp_path: Path,
) -> None:
    """The gate's writer waits on BEGIN IMMEDIATE while `gate import-list` (here: another
    connection) writes, and is cancelled (a timeout, shutdown). The BEGIN still completes in
    aiosqlite's thread once the lock is free; it must not leave the connection in a
    transaction, or every later check-in fails with "cannot start a transaction within a
    transaction"."""
    store = await Store.open(tmp_path / "gate.sqlite3")
    other = sqlite3.connect(tmp_path / "gate.sqlite3", isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")

        async def write() -> None:
            async with store.transaction() as conn:
                await conn.execute("CREATE TABLE scratch (x)")

        waiting = asyncio.create_task(write())
        await asyncio.sleep(0.3)  # it is waiting on the lock now (busy_timeout is 15 s)
        waiting.cancel()
        other.execute("ROLLBACK")  # the lock is free: the BEGIN in the thread goes through
        with pytest.raises(asyncio.CancelledError):
            await waiting
        await store.conn.execute("SELECT 1")  # the thread has run whatever was queued
        assert not store.conn.in_transaction
        async with store.transaction() as conn:  # and the next writer is not refused
            await conn.execute("CREATE TABLE scratch (x)")
        rows = await store.conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE name = 'scratch'"
        )
        assert len(list(rows)) == 1
    finally:
        other.close()
        await store.close()
