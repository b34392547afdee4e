"""Wipe on revoke with a real ``syncd serve`` (issue 18): the organiser revokes a gate that is
following its feed; within a couple of seconds the holder names are gone from the gate's
database file and log, the next scan is refused, and its unsynced journal is untouched. Then
the organiser creates a new gate, `gate enroll` runs beside the running worker, and the gate
scans and syncs again as the new gate, its undelivered scan carried over."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from gate import commands
from gate.checkin.pipeline import Pipeline
from gate.settings import GateSettings
from gate.store.db import Store
from gate.sync.client import SyncClient
from gate.sync.worker import SyncWorker, WorkerConfig
from shared.errors import RejectReason
from tests.support.live_syncd import (  # noqa: F401  (the fixtures)
    default_server,
    enrolled_gate,
    event_with_list,
    new_organiser_api,
    until,
)
from tests.syncd.conftest import db_url  # noqa: F401  (the fixture)

NAMES = ["Quirinus Wipe-Testerman", "Zelda Ünverzagt", "Ottoline Revokedale", "Bartholomew Ynys"]
LIST = "external_ref,holder_name\n" + "".join(f"W{i},{n}\n" for i, n in enumerate(NAMES))


async def event_with_names(api: httpx.AsyncClient) -> tuple[int, list[str]]:
    eid, tickets = await event_with_list(api, LIST, name="Wiped")
    by_ref = {t["external_ref"]: t["ticket_id"] for t in tickets}
    codes = []
    for i in range(len(NAMES)):
        qr = await api.get(f"/api/v1/events/{eid}/tickets/{by_ref[f'W{i}']}/qr")
        codes.append(qr.text.strip())
    return eid, codes


def on_disk(db: Path) -> bytes:
    wal = db.with_name(db.name + "-wal")
    return db.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def journal(db: Path) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT * FROM journal ORDER BY seq").fetchall()
    finally:
        conn.close()


def synced(gate: LiveGate) -> list[object]:
    return [row[10] for row in journal(gate.settings.db_path)]


async def gate_checkins(db: str, gate_id: int) -> list[tuple[int, str]]:
    """(seq, scan_id) syncd holds for a gate, read from Postgres (the test's own database)."""
    conn = await asyncpg.connect(db)
    try:
        rows = await conn.fetch(
            "SELECT seq, encode(scan_id, 'hex') AS s FROM checkins WHERE gate_id = $1 ORDER BY seq",
            gate_id,
        )
    finally:
        await conn.close()
    return [(r["seq"], r["s"]) for r in rows]


@dataclass
class LiveGate:
    settings: GateSettings
    store: Store
    pipeline: Pipeline
    gate_id: int
    base: str

    def worker(self) -> SyncWorker:
        """A worker as `gate run` builds it (it waits for a new enrolment when revoked)."""
        client = SyncClient(self.base, self.settings.credential_path.read_text().strip())
        config = replace(WorkerConfig.from_settings(self.settings), long_poll=5.0)
        return SyncWorker(self.store, client, replace(config, revoke_poll=0.2))


@asynccontextmanager
async def live_gate(api: httpx.AsyncClient, eid: int, data_dir: Path) -> AsyncIterator[LiveGate]:
    async with enrolled_gate(api, eid, data_dir) as gate:
        pipeline = Pipeline(gate.store, gate.settings)
        yield LiveGate(gate.settings, gate.store, pipeline, gate.gate_id, gate.base)


async def test_a_gate_revoked_while_following_wipes_within_seconds(
    api: httpx.AsyncClient, tmp_path: Path
) -> None:
    eid, codes = await event_with_names(api)
    async with live_gate(api, eid, tmp_path) as gate:
        worker = gate.worker()
        await worker.start()
        try:
            await until(lambda: asyncio.sleep(0, worker.status.online))
            first = await gate.pipeline.process(codes[0])
            assert first.admitted and first.holder == NAMES[0]
            await until(lambda: asyncio.sleep(0, synced(gate) == [1]), 5.0)
            assert all(n.encode() in on_disk(gate.settings.db_path) for n in NAMES)
            kept = journal(gate.settings.db_path)
            await asyncio.sleep(0.3)  # following the stream
            resp = await api.delete(f"/api/v1/events/{eid}/gates/{gate.gate_id}")
            assert resp.status_code == 200
            took = await until(lambda: asyncio.sleep(0, gate.store.wiped_at is not None), 10.0)
            assert took < 3.0, took  # within a couple of seconds (the bar: 1 s to learn it)
            raw = on_disk(gate.settings.db_path)
            assert not [n for n in NAMES if n.encode() in raw]
            refused = await gate.pipeline.process(codes[1])
            assert (refused.outcome, refused.reason) == ("deny", RejectReason.gate_revoked)
            assert journal(gate.settings.db_path) == kept
        finally:
            await worker.stop()


async def test_a_gate_started_revoked_wipes_then_comes_back_as_a_new_gate(
    api: httpx.AsyncClient,
    db_url: str,  # noqa: F811
    tmp_path: Path,
) -> None:
    """Revoked while it was off, with a scan syncd never got: its first call is refused, it
    wipes and keeps that scan; enrolled again beside the running worker, the scan reaches
    syncd as the new gate's seq 1 (the old gate keeps only what it delivered)."""
    eid, codes = await event_with_names(api)
    async with live_gate(api, eid, tmp_path) as gate:
        worker = gate.worker()
        await worker.start()
        await until(lambda: asyncio.sleep(0, worker.status.online))
        assert (await gate.pipeline.process(codes[0])).admitted
        await until(lambda: asyncio.sleep(0, synced(gate) == [1]), 5.0)
        await worker.stop()  # the gate goes off
        assert (await gate.pipeline.process(codes[1])).seq == 2  # never pushed
        kept = journal(gate.settings.db_path)
        assert [row[10] for row in kept] == [1, 0]  # synced: seq 1 yes, seq 2 no
        resp = await api.delete(f"/api/v1/events/{eid}/gates/{gate.gate_id}")
        assert resp.status_code == 200

        worker = gate.worker()
        await worker.start()  # its first call is refused
        try:
            await until(lambda: asyncio.sleep(0, gate.store.wiped_at is not None), 10.0)
            raw = on_disk(gate.settings.db_path)
            assert not [n for n in NAMES if n.encode() in raw]
            assert journal(gate.settings.db_path) == kept
            refused = await gate.pipeline.process(codes[2])
            assert refused.reason == RejectReason.gate_revoked

            again = (await api.post(f"/api/v1/events/{eid}/gates", json={"name": "Door 2"})).json()
            result = await commands.enroll(gate.settings, gate.base, again["code"], "wipe-test")
            assert result["carried"] == {
                "from_gate": gate.gate_id,
                "archived": 2,
                "carried": 1,
                "kept": 0,
            }
            await until(lambda: gate_checkins(db_url, again["gate_id"]), 10.0)
            assert await gate_checkins(db_url, again["gate_id"]) == [(1, bytes(kept[1][1]).hex())]
            assert [seq for seq, _ in await gate_checkins(db_url, gate.gate_id)] == [1]
            back = await gate.pipeline.process(codes[2])
            assert back.admitted and back.holder == NAMES[2] and back.seq == 2
            await until(
                lambda: asyncio.sleep(0, worker.status.online and not worker.status.backlog)
            )
        finally:
            await worker.stop()
        assert len(await gate_checkins(db_url, again["gate_id"])) == 2
