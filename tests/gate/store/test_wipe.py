"""Wipe on revoke (issue 18): the holder data leaves the database file and its log for real,
the journal stays exactly as it was, and a wipe cut short finishes when it runs again.

The raw bytes of ``gate.sqlite3`` and ``gate.sqlite3-wal`` are read as a thief with the SD card
would read them. Names are first planted where SQLite leaves deleted text (free space in pages,
free pages, the log) with ``secure_delete`` off, as a build without it would, and each test checks
that they are there before it checks they are gone, so it can fail.
"""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path

import pytest

from gate.store.db import Store
from gate.store.snapshot import import_snapshot
from gate.store.syncstate import mark_synced
from gate.store.wipe import PERSONAL, mark_revoked, revocation, wipe_holder_data
from shared.bundle import BundleTicket
from shared.errors import BundleError
from tessera_dev.sample_event import SAT_18, bundle_bytes, code, loaded_store, pipeline

NAMES = ["Quenby Zanzibar-Holloway", "Mürþa Ólafsdóttir", "Ximena Pérez-Quintanilla"]
OLD_NAME = "Wilbur Oldname-Reissued"  # replaced before the wipe: only in free space by then
GROUP = "Familie Zanzibar-Holloway"
LISTED = [
    BundleTicket(1, 11, "valid", 1, "GA", NAMES[0], group=GROUP),
    BundleTicket(2, 22, "valid", 1, "VIP", NAMES[1], group=GROUP),
    BundleTicket(3, 33, "valid", 1, "GA", NAMES[2]),
    BundleTicket(4, 44, "valid", 1, "GA", OLD_NAME),
    *[BundleTicket(i, i, "valid", 1, "GA", f"Filler Person {i:05d}") for i in range(10, 3000)],
]


def raw(path: Path) -> bytes:
    """The database file and its write-ahead log, as bytes on disk."""
    log = path.with_name(path.name + "-wal")
    return path.read_bytes() + (log.read_bytes() if log.exists() else b"")


def spellings(name: str) -> list[bytes]:
    """How a name can sit in the file: as written (UTF-8) and folded (the search key)."""
    from gate.store.search import fold

    return [name.encode(), (fold(name) or "").encode()]


async def named_store(tmp_path: Path) -> Store:
    """A gate with LISTED loaded, one name replaced and a copy dropped, all with secure_delete
    off (deleted text stays in the file), two scans in the journal, one of them synced."""
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LISTED))
    await store.conn.execute("PRAGMA secure_delete = OFF")
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.conn.execute(
        "UPDATE tickets SET holder = 'Walter New', search = 'walter new' WHERE ticket_id = 4"
    )
    await store.conn.execute("CREATE TABLE tickets_staging AS SELECT * FROM tickets")
    await store.conn.execute("DROP TABLE tickets_staging")
    await store.conn.execute("CREATE TABLE tickets_staging AS SELECT * FROM tickets LIMIT 5")
    gate = pipeline(store)
    assert (await gate.process(code(1, 11))).admitted
    assert (await gate.process(code(3, 33))).admitted
    await mark_synced(store, 1, skew=0, warning=None, now=SAT_18)
    return store


async def journal(store: Store) -> list[tuple[object, ...]]:
    rows = await store.conn.execute_fetchall("SELECT * FROM journal ORDER BY seq")
    return [tuple(r) for r in rows]


async def test_the_wipe_leaves_no_name_in_the_file_or_its_log(tmp_path: Path) -> None:
    store = await named_store(tmp_path)
    try:
        before = raw(store.path)
        for name in [*NAMES, OLD_NAME, GROUP]:
            assert name.encode() in before, name  # the test can fail: the bytes are there
        assert b"wilbur oldname" in before  # the old search key too
        kept = await journal(store)
        inside = await store.conn.execute_fetchall("SELECT * FROM entry_state")

        await mark_revoked(store, SAT_18, "gate credential revoked")
        result = await wipe_holder_data(store, tmp_path, now=SAT_18 + 1)

        after = raw(store.path)
        for name in [*NAMES, OLD_NAME, GROUP, "Walter New", "Filler Person"]:
            for spelling in spellings(name):
                assert spelling not in after, spelling
        assert result.tickets == len(LISTED)
        assert await journal(store) == kept  # rows and synced flags, byte for byte
        assert await store.conn.execute_fetchall("SELECT * FROM entry_state") == inside
        columns = ", ".join(PERSONAL)
        assert not await store.conn.execute_fetchall(
            f"SELECT {columns} FROM tickets WHERE coalesce({columns}) IS NOT NULL"
        )
        assert (await store.lookup(7, 2)).entry is not None  # ticket rows stay, nameless
        assert await store.search("zanzibar") == []
        tables = await store.conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE name = 'tickets_staging'"
        )
        assert not list(tables)
        state = await revocation(store)
        assert (state.revoked_at, state.wiped_at, state.holder_data) == (
            SAT_18,
            SAT_18 + 1,
            "deleted",
        )
        wal = store.path.with_name(store.path.name + "-wal")
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        await store.close()


async def test_a_wipe_cut_short_finishes_when_it_runs_again(tmp_path: Path) -> None:
    """Regression guard: a gate that died after the names were set NULL but before the
    rebuild (the text still in free space) is clean after the next wipe; the state says so."""
    store = await named_store(tmp_path)
    try:
        await mark_revoked(store, SAT_18, "gate credential revoked")
        await store.conn.execute("UPDATE tickets SET holder = NULL, search = NULL")
        await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        assert NAMES[0].encode() in raw(store.path)  # where the dead process left it
        assert (await revocation(store)).holder_data == "deleting"
    finally:
        await store.close()
    store = await Store.open(tmp_path / "gate.sqlite3")  # the next start
    try:
        assert store.revoked_at == SAT_18 and store.wiped_at is None
        await wipe_holder_data(store, tmp_path, now=SAT_18 + 5)
        assert NAMES[0].encode() not in raw(store.path)
        assert GROUP.encode() not in raw(store.path)
        again = await wipe_holder_data(store, tmp_path, now=SAT_18 + 6)  # idempotent
        assert again.tickets == 0
    finally:
        await store.close()


async def test_a_snapshot_download_left_behind_is_overwritten_and_removed(
    tmp_path: Path,
) -> None:
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LISTED))
    partial = tmp_path / "snapshot.partial"
    partial.write_bytes(bundle_bytes(LISTED))
    try:
        result = await wipe_holder_data(store, tmp_path, now=SAT_18)
        assert result.files == ["snapshot.partial"]
        assert not partial.exists()
    finally:
        await store.close()


async def test_the_revocation_is_on_disk_before_the_wipe(tmp_path: Path) -> None:
    """A gate that dies right after learning the revocation still refuses scans at its next
    start, and its revocation time is the first one (learning it again changes nothing)."""
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LISTED))
    try:
        await mark_revoked(store, SAT_18, "gate credential revoked")
        await mark_revoked(store, SAT_18 + 60, "gate credential revoked")
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "gate.sqlite3")
    try:
        row = db.execute("SELECT revoked_at, wiped_at, last_error FROM sync_state").fetchone()
    finally:
        db.close()
    assert row == (SAT_18, None, "gate credential revoked")


async def test_a_list_loaded_after_the_revocation_is_refused(tmp_path: Path) -> None:
    """Regression guard: a snapshot or `gate import-list` that was staging when the gate
    learnt its revocation must not swap the names back in after the wipe."""
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LISTED))
    try:
        await mark_revoked(store, SAT_18, "gate credential revoked")
        await wipe_holder_data(store, tmp_path, now=SAT_18 + 1)
        with pytest.raises(BundleError, match="revoked"):
            await import_snapshot(store, io.BytesIO(bundle_bytes(LISTED)))
        assert NAMES[0].encode() not in raw(store.path)
        assert await store.search("zanzibar") == []
    finally:
        await store.close()
