"""The sync worker's revoke path against the in-memory syncd (issue 18, wipe on revoke): a 401
wipes and stops every call, a 403 does not, a gate started revoked finishes its wipe without a
call, and a new enrolment carries the journal over, by itself or under a running worker."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from gate import commands
from gate.store.syncstate import read_sync_state
from gate.store.wipe import mark_revoked, revocation
from gate.sync.client import SyncClient
from gate.sync.worker import SyncWorker, WorkerConfig
from shared.errors import RejectReason
from tessera_dev.sample_event import SAT_18, Clock, code
from tests.gate.sync.fakesyncd import CREDENTIAL, FakeSyncd
from tests.gate.sync.kit import SERVER, Gate, enrolled_gate, until

NEW_CREDENTIAL = "tsg_the-new-gates-credential"


async def names(gate: Gate) -> list[str]:
    rows = await gate.store.conn.execute_fetchall(
        "SELECT holder FROM tickets WHERE holder IS NOT NULL ORDER BY ticket_id"
    )
    return [r[0] for r in rows]


async def journal(gate: Gate) -> list[tuple[Any, ...]]:
    rows = await gate.store.conn.execute_fetchall("SELECT * FROM journal ORDER BY seq")
    return [tuple(r) for r in rows]


def revoke(fake: FakeSyncd) -> None:
    """The organiser revokes the gate; a new gate (id 5, a code) is created for the device."""
    fake.credential = NEW_CREDENTIAL  # the old one is now unknown: 401
    fake.gate_id = 5
    fake.codes["CODE-2"] = True


async def test_a_401_wipes_keeps_the_journal_and_calls_syncd_no_more(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        assert "Ada Lovelace" in await names(gate)
        await gate.pipeline.process(code(1, 11))
        kept = await journal(gate)
        revoke(fake)
        await gate.worker.run()  # learns it on its first call, wipes, returns (no cred file)
        calls = len(fake.requests)
        assert gate.worker.status.state == "revoked"
        assert await names(gate) == []
        assert await journal(gate) == kept
        assert (await revocation(gate.store)).holder_data == "deleted"
        await gate.worker.run()  # again, as after a restart: no call, nothing to wipe
        assert len(fake.requests) == calls


@pytest.mark.parametrize("status", [403, 401], ids=["forbidden", "a-proxy-login"])
async def test_only_syncd_saying_unauthorized_is_a_revocation(tmp_path: Path, status: int) -> None:
    """A 403 (a valid credential, an endpoint not for it) or a 401 that is not syncd's JSON
    (a proxy in front of it): sync stops, names and scanning stay."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        await gate.pipeline.process(code(1, 11))
        fake.faults = [status, status]
        await gate.worker.run()
        assert gate.worker.status.state == "stopped"
        assert gate.store.revoked_at is None and "Ada Lovelace" in await names(gate)
        assert (await gate.pipeline.process(code(2, 22))).admitted


async def test_a_gate_that_died_before_its_wipe_finishes_it_at_the_next_start(
    tmp_path: Path,
) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        await mark_revoked(gate.store, SAT_18, "gate credential revoked")  # then it died
        calls = len(fake.requests)
        await gate.worker.start()
        assert gate.worker.status.state == "revoked"
        await until(lambda: asyncio.sleep(0, gate.store.wiped_at is not None))
        await gate.worker.stop()
        assert await names(gate) == [] and len(fake.requests) == calls


async def test_enrolling_again_learns_the_revocation_and_carries_the_journal(
    tmp_path: Path,
) -> None:
    """The device was off when it was revoked: `gate enroll` finds out with the old credential
    first, wipes, then the new gate sends what the old one never delivered, as its seq 1."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        assert (await gate.pipeline.process(code(1, 11))).admitted
        await gate.worker.drain()  # seq 1 is at syncd under gate 2
        assert (await gate.pipeline.process(code(2, 22))).admitted  # seq 2: offline, unsynced
        unsent = (await journal(gate))[1]
        revoke(fake)
        old, fake.stored = fake.stored, {}  # the new gate's check-ins, held apart
        result = await commands.enroll(
            gate.settings, SERVER, "CODE-2", "test", transport=fake.transport()
        )
        assert result["gate_id"] == 5
        assert result["carried"] == {"from_gate": 2, "archived": 2, "carried": 1, "kept": 0}
        await gate.store.refresh()
        assert gate.store.revoked_at is None and "Ada Lovelace" in await names(gate)
        async with SyncClient(SERVER, NEW_CREDENTIAL, transport=fake.transport()) as client:
            worker = SyncWorker(gate.store, client, WorkerConfig(data_dir=tmp_path))
            await worker.drain()
        assert list(old) == [1] and list(fake.stored) == [1]
        assert fake.stored[1].scan_id == bytes(unsent[1]).hex()  # old seq 2, now the new seq 1
        assert old[1].scan_id != fake.stored[1].scan_id  # nothing delivered twice
        state = await read_sync_state(gate.store)
        assert (state.gate_id, state.acked_seq, state.revoked_at) == (5, 1, None)


async def test_another_gates_journal_is_not_taken_over_while_that_gate_is_live(
    tmp_path: Path,
) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        fake.gate_id, fake.codes["CODE-2"] = 5, True  # gate 2's credential still works
        with pytest.raises(ValueError, match="which syncd has not revoked"):
            await commands.enroll(gate.settings, SERVER, "CODE-2", transport=fake.transport())
        assert "Ada Lovelace" in await names(gate)


async def test_a_running_revoked_gate_resumes_once_enrolled_again(tmp_path: Path) -> None:
    """No restart needed: `gate enroll` from another process, and the running worker syncs as
    the new gate within a poll; the pipeline scans again, names are back."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        config = WorkerConfig(
            data_dir=tmp_path,
            credential_file=gate.settings.credential_path,
            revoke_poll=0.05,
            push_interval=0.05,
            backoff_initial=0.01,
            backoff_max=0.05,
            long_poll=0.2,
            idle_pause=0.05,
        )
        client = SyncClient(SERVER, CREDENTIAL, timeout=2, transport=fake.transport())
        worker = SyncWorker(gate.store, client, config, clock=Clock())
        await worker.start()
        try:
            revoke(fake)
            assert (await gate.pipeline.process(code(1, 11))).admitted  # not learnt yet
            await until(lambda: asyncio.sleep(0, gate.store.wiped_at is not None))
            refused = await gate.pipeline.process(code(2, 22))
            assert refused.reason == RejectReason.gate_revoked
            fake.stored = {}
            await commands.enroll(gate.settings, SERVER, "CODE-2", transport=fake.transport())
            await until(lambda: asyncio.sleep(0, 1 in fake.stored and worker.status.online))
            again = await gate.pipeline.process(code(2, 22))
            assert again.admitted and again.holder == "Grace Hopper" and again.seq == 2
            await until(lambda: asyncio.sleep(0, 2 in fake.stored))
        finally:
            await worker.stop()


async def test_a_gate_enrolled_again_before_it_learnt_the_revocation_is_not_wiped_after(
    tmp_path: Path,
) -> None:
    """Regression guard: `gate enroll` ran while `gate run` held the old credential in memory.
    When syncd then refuses that old credential, it is not the new gate's revocation: the
    worker takes up the new credential from the file, and the names stay."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        assert (await gate.pipeline.process(code(1, 11))).admitted  # seq 1, never pushed
        revoke(fake)
        fake.stored = {}
        result = await commands.enroll(gate.settings, SERVER, "CODE-2", transport=fake.transport())
        assert result["carried"] == {"from_gate": 2, "archived": 1, "carried": 1, "kept": 0}
        config = WorkerConfig(
            data_dir=tmp_path,
            credential_file=gate.settings.credential_path,
            revoke_poll=0.05,
            long_poll=0.2,
            idle_pause=0.05,
        )
        old = SyncClient(SERVER, CREDENTIAL, timeout=2, transport=fake.transport())
        worker = SyncWorker(gate.store, old, config, clock=Clock())
        await worker.start()
        try:
            await until(lambda: asyncio.sleep(0, 1 in fake.stored))  # with the new credential
            await until(lambda: asyncio.sleep(0, worker.status.online))
            assert gate.store.revoked_at is None and "Ada Lovelace" in await names(gate)
            assert (await gate.pipeline.process(code(2, 22))).admitted
        finally:
            await worker.stop()
        assert (await read_sync_state(gate.store)).revoked_at is None
