"""A revoked gate enrolled again as a new gate (issue 18, wipe on revoke): its journal is
archived under the old id, what syncd acknowledged leaves the journal, the rest is renumbered
1..n for the new identity (scan ids, times, annulment links intact), and nothing else moves."""

from __future__ import annotations

from pathlib import Path

from gate.settings import GateSettings
from gate.store.carry import archive_summary, carry_journal
from gate.store.db import Store
from gate.store.records import JournalEntry
from gate.store.syncstate import mark_synced
from gate.sync.status import format_sync, sync_summary
from tessera_dev.sample_event import SAT_18, code, loaded_store, pipeline


async def _annul(store: Store, seq: int, ticket_id: int) -> int:
    entry = JournalEntry(
        direction="in",
        outcome="annul",
        reason="staff",
        scanned_at=SAT_18 + seq,
        via="staff",
        gate="Gate B",
        event_id=7,
        ticket_id=ticket_id,
        ref_seq=seq,
    )
    return await store.record_scan(entry)


async def _rows(store: Store, table: str, order: str = "seq") -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in await store.conn.execute_fetchall(f"SELECT * FROM {table} ORDER BY {order}")
    ]


async def journal_of_a_revoked_gate(tmp_path: Path) -> Store:
    """Seqs 1-2 synced (admissions of tickets 1 and 2); 3 a denial, 4 an admission of ticket 6,
    5 an annulment of seq 1 (synced: it cannot travel), 6 an annulment of seq 4."""
    store = await loaded_store(tmp_path / "gate.sqlite3")
    gate = pipeline(store)
    assert (await gate.process(code(1, 11))).seq == 1
    assert (await gate.process(code(2, 22))).seq == 2
    assert not (await gate.process(code(4, 44))).admitted  # blocked: seq 3
    assert (await gate.process(code(6, 66))).seq == 4
    assert await _annul(store, 1, 1) == 5
    assert await _annul(store, 4, 6) == 6
    await mark_synced(store, 2, skew=0, warning=None, now=SAT_18)
    return store


async def test_the_unsynced_rows_travel_renumbered_and_the_rest_is_archived(
    tmp_path: Path,
) -> None:
    store = await journal_of_a_revoked_gate(tmp_path)
    try:
        before = {r[0]: r for r in await _rows(store, "journal")}
        inside = await _rows(store, "entry_state", "ticket_id")
        async with store.transaction() as conn:
            carried = await carry_journal(conn, 2, SAT_18 + 100)
        assert (carried.archived, carried.carried, carried.kept) == (6, 3, 1)

        after = await _rows(store, "journal")
        assert [r[0] for r in after] == [1, 2, 3]  # the new gate's seqs, gap-free from 1
        for new, old in zip(after, (before[3], before[4], before[6]), strict=True):
            assert new[1:11] == old[1:11]  # scan_id, ticket, direction, decision ... synced=0
        assert after[2][11] == 2  # the annulment of old seq 4 points at its new seq
        assert await _rows(store, "entry_state", "ticket_id") == inside

        archive = await _rows(store, "journal_archive")
        assert [(r[0], r[1], r[11], r[13]) for r in archive] == [
            (2, 1, 1, None),
            (2, 2, 1, None),
            (2, 3, 0, 1),
            (2, 4, 0, 2),
            (2, 5, 0, None),  # the annulment of synced seq 1: kept here only
            (2, 6, 0, 3),
        ]
        assert [r[2] for r in archive] == [before[s][1] for s in range(1, 7)]  # scan ids
        assert await archive_summary(store) == [
            {"from_gate": 2, "archived": 6, "carried": 3, "kept": 1}
        ]
        assert (await pipeline(store).process(code(5, 55))).seq == 4  # the journal goes on
        summary = await sync_summary(store, GateSettings(data_dir=tmp_path), SAT_18)
        assert (
            "Earlier gate #2: 6 scans archived on this gate, 3 sent on as this gate's,"
            " 1 never sent: they cannot travel (kept here only)"
        ) in format_sync(summary)
    finally:
        await store.close()


async def test_a_fully_synced_journal_starts_the_new_gate_at_seq_1(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "gate.sqlite3")
    try:
        gate = pipeline(store)
        for ticket_id, nonce in ((1, 11), (2, 22)):
            assert (await gate.process(code(ticket_id, nonce))).admitted
        await mark_synced(store, 2, skew=0, warning=None, now=SAT_18)
        async with store.transaction() as conn:
            carried = await carry_journal(conn, 9, SAT_18)
        assert (carried.archived, carried.carried, carried.kept) == (2, 0, 0)
        assert await _rows(store, "journal") == []
        assert (await gate.process(code(6, 66))).seq == 1
    finally:
        await store.close()


async def test_nothing_travels_to_a_gate_of_another_event(tmp_path: Path) -> None:
    """syncd files a push under the pushing gate's event: scans of the old event must not
    become the new event's. They all stay in the archive, reported as kept."""
    store = await journal_of_a_revoked_gate(tmp_path)
    try:
        async with store.transaction() as conn:
            carried = await carry_journal(conn, 2, SAT_18, same_event=False)
        assert (carried.archived, carried.carried, carried.kept) == (6, 0, 4)
        assert await _rows(store, "journal") == []
        assert (await pipeline(store).process(code(5, 55))).seq == 1
    finally:
        await store.close()
