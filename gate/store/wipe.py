"""Wipe on revoke: a gate syncd revoked deletes its holder data and decides nothing more.

What a revoked gate keeps and loses:

- **Lost: every name.** ``tickets.holder``, its search key ``tickets.search`` (and the
  ``tickets_search_a``/``_b`` index over it) and the group reference (``PERSONAL``) are set NULL;
  a half-loaded snapshot (``tickets_staging``) is dropped; a snapshot download left in the data
  folder (``snapshot.partial``, a bundle with names) is overwritten with zeros and removed.
- **Kept: the journal, untouched** (ticket ids, times, decisions; no names), with its synced
  flags, so nothing this gate decided is lost: a new enrolment delivers what syncd has not got
  (``gate.store.carry``). Keys, ticket ids and entry state stay too; they name nobody.

Deleting a value in SQLite leaves its bytes in the page's free space, on free pages and in the
write-ahead log. So the wipe runs with ``PRAGMA secure_delete = ON`` (deleted content is
overwritten with zeros), then ``VACUUM`` rebuilds the file (free pages and slack from before,
written without secure_delete, go too), then ``wal_checkpoint(TRUNCATE)`` copies the clean pages
over the old ones and empties the log. Only then is ``sync_state.wiped_at`` set. Every step can
run again: a gate that died halfway wipes again at its next start (``revoked_at`` set,
``wiped_at`` NULL). What the wipe cannot reach: blocks the file system or the flash controller
already let go of (a file that shrank), the system journal (``gate run`` prints each decision,
with the name, on stdout) and copies outside the data folder; full-disk encryption covers those.

The order is what makes a crash safe: ``mark_revoked`` commits ``revoked_at`` first (from then
on the pipeline refuses every scan, after a restart too), then the wipe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from gate.store.db import Store

log = logging.getLogger(__name__)
PERSONAL = ("holder", "search", "group_ref")
"""Columns of ``tickets`` that can name a person (a group reference may be a family name)."""
LEFTOVER_FILES = ("snapshot.partial",)
"""Files in the data folder that can hold a list with names (a download cut off by a crash)."""
_CHECKPOINT_TRIES = 50


class WipeError(Exception):
    """The wipe could not finish (disk error, a reader holding the log); it runs again later."""


@dataclass(frozen=True, slots=True)
class WipeResult:
    tickets: int  # tickets whose holder data was deleted now (0 when a wipe runs again)
    files: list[str]  # leftover files overwritten and removed
    seconds: float


@dataclass(frozen=True, slots=True)
class Revocation:
    """What `gate status` and the kiosk say about a revocation."""

    revoked_at: float | None
    wiped_at: float | None
    named: int  # tickets that still carry holder data

    @property
    def holder_data(self) -> str | None:
        """None (not revoked), 'deleted', or 'deleting' (the wipe has not finished)."""
        if self.revoked_at is None:
            return None
        return "deleted" if self.wiped_at is not None and not self.named else "deleting"


async def mark_revoked(store: Store, now: float, message: str) -> None:
    """Record that syncd refused this gate's credential: from now on every scan is refused.

    The store's flag is set before the write, so a gate whose disk fails still refuses."""
    store.revoked_at = store.revoked_at or now
    async with store.transaction() as conn:
        await conn.execute(
            "UPDATE sync_state SET revoked_at = ?, wiped_at = NULL, last_error = ?"
            " WHERE revoked_at IS NULL",
            (now, message),
        )


async def wipe_holder_data(store: Store, data_dir: Path, *, now: float) -> WipeResult:
    """Delete every name from the database file, its log and the data folder (module docstring).

    Idempotent. Raises ``WipeError`` (or ``sqlite3.Error``/``OSError``) when a step fails;
    ``wiped_at`` is then not set and the caller runs it again."""
    started = time.perf_counter()
    files = [name for name in LEFTOVER_FILES if _shred(data_dir / name)]
    async with store._lock:  # the store's one writer; VACUUM runs outside any transaction
        previous = await _pragma(store, "secure_delete")
        await store.conn.execute("PRAGMA secure_delete = ON")
        try:
            tickets = await _forget_names(store)
            await store.conn.execute("VACUUM")
            await _checkpoint(store)
            await store.conn.execute("UPDATE sync_state SET wiped_at = ?", (now,))
            await _checkpoint(store)
        finally:
            await store.conn.execute(f"PRAGMA secure_delete = {int(previous)}")
    store.wiped_at = now
    seconds = time.perf_counter() - started
    log.warning(
        "holder data deleted from this gate",
        extra={"tickets": tickets, "files": files, "seconds": round(seconds, 2)},
    )
    return WipeResult(tickets, files, seconds)


async def revocation(store: Store) -> Revocation:
    """The revocation and wipe state as the database has it (another process may be wiping)."""
    rows = await store.conn.execute_fetchall("SELECT revoked_at, wiped_at FROM sync_state")
    revoked_at, wiped_at = next(iter(rows), (None, None))
    named = 0
    if revoked_at is not None:
        named = await _count(store, f"SELECT count(*) FROM tickets WHERE {await _any_named(store)}")
    return Revocation(revoked_at, wiped_at, named)


async def _forget_names(store: Store) -> int:
    """One transaction: every personal column NULL, a staged snapshot dropped."""
    named, columns = await _any_named(store), await _columns(store)
    assert columns, "tickets has no holder column"
    await store.conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = await store.conn.execute(
            f"UPDATE tickets SET {', '.join(f'{c} = NULL' for c in columns)} WHERE {named}"
        )
        await store.conn.execute("DROP TABLE IF EXISTS tickets_staging")
    except BaseException:
        await store.conn.execute("ROLLBACK")
        raise
    await store.conn.execute("COMMIT")
    return cursor.rowcount


async def _checkpoint(store: Store) -> None:
    """Copy the log into the file and empty it; a reader in another process may hold it a
    moment (``busy``): wait for it a while, then give up (``WipeError``)."""
    for _ in range(_CHECKPOINT_TRIES):
        rows = await store.conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        busy, _log, _done = next(iter(rows))
        if not busy:
            return
        await asyncio.sleep(0.1)
    raise WipeError("the write-ahead log could not be emptied: another process keeps reading it")


def _shred(path: Path) -> bool:
    """Overwrite ``path`` with zeros, flush it to disk, remove it; False when it is not there."""
    try:
        fd = os.open(path, os.O_WRONLY)
    except FileNotFoundError:
        return False
    try:
        size = os.fstat(fd).st_size
        zeros = bytes(min(size, 1 << 20))
        for start in range(0, size, len(zeros) or 1):
            os.write(fd, zeros[: size - start])
        os.fsync(fd)
    finally:
        os.close(fd)
    path.unlink()
    return True


async def _columns(store: Store) -> tuple[str, ...]:
    """The ``PERSONAL`` columns this database's ``tickets`` has (a migration may add one)."""
    rows = await store.conn.execute_fetchall("SELECT name FROM pragma_table_info('tickets')")
    found = {row[0] for row in rows}
    return tuple(c for c in PERSONAL if c in found)


async def _any_named(store: Store) -> str:
    return " OR ".join(f"{c} IS NOT NULL" for c in await _columns(store)) or "0"


async def _pragma(store: Store, name: str) -> int:
    return await _count(store, f"PRAGMA {name}")


async def _count(store: Store, sql: str) -> int:
    rows = await store.conn.execute_fetchall(sql)
    return int(next(iter(rows))[0])
