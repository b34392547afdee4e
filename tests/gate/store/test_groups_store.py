"""The gate's list keeps each ticket's group: from `gate import-list`, a staged snapshot and the
feed; the members' index survives the snapshot swap (its name alternates _a/_b); an older
database is migrated (no group until the list comes again, so the cursor starts over)."""

from __future__ import annotations

import io
import sqlite3
import time
from pathlib import Path

from gate.store.db import Store
from gate.store.groups import group_size
from gate.store.migrate import migration_files
from gate.store.snapshot import import_snapshot
from gate.store.syncstate import apply_changes, read_sync_state
from shared.bundle import BundleTicket
from shared.protocol import Change, ChangesPage, TicketChange
from tessera_dev.sample_event import EVENT, bundle_bytes, loaded_store

LIST = [
    BundleTicket(1, 11, group="FAM"),
    BundleTicket(2, 22, group="FAM"),
    BundleTicket(3, 33),
    BundleTicket(4, 44, group="ORD-7"),
]
MEMBERS = "SELECT ticket_id FROM tickets WHERE event_id = ? AND group_ref = ? ORDER BY ticket_id"


async def _groups(store: Store) -> dict[int, str | None]:
    rows = await store.conn.execute_fetchall("SELECT ticket_id, group_ref FROM tickets")
    return {r[0]: r[1] for r in rows}


async def _group_indexes(store: Store) -> list[str]:
    rows = await store.conn.execute_fetchall(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'tickets_group_%'"
    )
    return [r[0] for r in rows]


async def _plan(store: Store) -> str:
    rows = await store.conn.execute_fetchall(f"EXPLAIN QUERY PLAN {MEMBERS}", (EVENT, "FAM"))
    return " ".join(str(r[-1]) for r in rows)


async def test_import_and_snapshot_keep_groups_and_the_index(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LIST))
    try:
        assert await _groups(store) == {1: "FAM", 2: "FAM", 3: None, 4: "ORD-7"}
        assert [await group_size(store, EVENT, t, 20) for t in (1, 2, 3, 4, 99)] == [2, 2, 0, 1, 0]
        assert "tickets_group_a" in await _plan(store)
        regrouped = [BundleTicket(1, 11), *LIST[1:3], BundleTicket(4, 44, group="FAM")]
        await import_snapshot(store, io.BytesIO(bundle_bytes(regrouped)))
        assert await _groups(store) == {1: None, 2: "FAM", 3: None, 4: "FAM"}
        assert await _group_indexes(store) == ["tickets_group_b"]
        assert "tickets_group_b" in await _plan(store)
        await import_snapshot(store, io.BytesIO(bundle_bytes(LIST)))
        assert await _group_indexes(store) == ["tickets_group_a"]
        assert await _groups(store) == {1: "FAM", 2: "FAM", 3: None, 4: "ORD-7"}
    finally:
        await store.close()


async def test_the_feed_moves_tickets_between_groups(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LIST))
    try:
        await store.conn.execute("UPDATE sync_state SET event_id = ?, gate_id = 1", (EVENT,))
        page = ChangesPage(
            cursor="3",
            changes=[
                Change(seq=1, kind="ticket.updated", ticket=_change(1, "")),
                Change(seq=2, kind="ticket.updated", ticket=_change(3, "FAM")),
                Change(seq=3, kind="ticket.added", ticket=_change(9, "ORD-7")),
            ],
        )
        assert await apply_changes(store, page, now=time.time()) == 3
        assert await _groups(store) == {1: None, 2: "FAM", 3: "FAM", 4: "ORD-7", 9: "ORD-7"}
    finally:
        await store.close()


def _change(ticket_id: int, group: str) -> TicketChange:
    return TicketChange(
        ticket_id=ticket_id, nonce=ticket_id * 11, status="valid", zone=1, group=group
    )


async def test_an_older_database_gets_groups_and_reads_the_list_again(tmp_path: Path) -> None:
    """A gate upgraded with tickets on its list: the column is added empty and the sync cursor
    starts over, so the next pull (or snapshot) brings every ticket's group."""
    path = tmp_path / "gate.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    db.create_function("tessera_fold", 1, lambda text: text, deterministic=True)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at REAL NOT NULL)"
    )
    for version, name, sql in migration_files()[:6]:
        db.executescript(sql)
        db.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (version, name))
    db.execute("INSERT INTO tickets (event_id, ticket_id, nonce, zone) VALUES (7, 1, 11, 1)")
    db.execute("UPDATE sync_state SET cursor = '42'")
    db.close()
    store = await Store.open(path)
    try:
        assert await _groups(store) == {1: None}
        assert (await read_sync_state(store)).cursor == ""
        assert await _group_indexes(store) == ["tickets_group_a"]
    finally:
        await store.close()
