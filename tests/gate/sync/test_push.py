"""Push: nothing lost, nothing marked synced that syncd did not acknowledge, retries idempotent,
backoff jittered and capped. The failures are injected with httpx.MockTransport."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from gate.store.syncstate import read_sync_state, unsynced_batch
from gate.sync.client import OfflineError as Offline
from gate.sync.client import ProtocolError
from tessera_dev.sample_event import code
from tests.gate.sync.fakesyncd import FakeSyncd
from tests.gate.sync.kit import Gate, enrolled_gate, until


async def scan_all(gate: Gate, count: int) -> None:
    for i in range(count):
        await gate.pipeline.process(code(1 + i % 6, 11 * (1 + i % 6)) if i < 6 else f"junk {i}")


async def synced(gate: Gate) -> set[int]:
    rows = await gate.store.conn.execute_fetchall("SELECT seq FROM journal WHERE synced = 1")
    return {r[0] for r in rows}


async def journal(gate: Gate) -> dict[int, str]:
    rows = await gate.store.conn.execute_fetchall("SELECT seq, hex(scan_id) FROM journal")
    return {seq: scan.lower() for seq, scan in rows}


async def test_drain_sends_everything_in_seq_order_in_batches(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake, batch_size=4) as gate:
        await scan_all(gate, 10)
        assert await gate.worker.drain() == 10
        assert [[c.seq for c in p.checkins] for p in fake.pushes] == [
            [1, 2, 3, 4],
            [5, 6, 7, 8],
            [9, 10],
        ]
        assert {s: c.scan_id for s, c in fake.stored.items()} == await journal(gate)
        assert await synced(gate) == set(range(1, 11))
        assert gate.worker.status.backlog == 0 and gate.worker.status.online
        assert (await read_sync_state(gate.store)).acked_seq == 10


@pytest.mark.parametrize("fault", ["connect", "timeout", 503, 502, 429])
async def test_a_failed_push_marks_nothing_and_the_retry_delivers(
    tmp_path: Path, fault: object
) -> None:
    fake = FakeSyncd(faults=[fault])
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 5)
        with pytest.raises(Offline):
            await gate.worker.drain()
        assert await synced(gate) == set()
        assert await gate.worker.retrying(gate.worker.drain) == 5
        assert await synced(gate) == set(range(1, 6))
        assert sorted(fake.stored) == [1, 2, 3, 4, 5]


async def test_an_answer_lost_after_syncd_stored_the_batch_is_retried_idempotently(
    tmp_path: Path,
) -> None:
    """syncd killed mid-push: it committed, the gate never heard; the retry stores nothing new."""
    fake = FakeSyncd(faults=["lost", "lost"])
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 3)
        for _ in range(2):
            with pytest.raises(Offline):
                await gate.worker.drain()
            assert await synced(gate) == set()
        assert await gate.worker.drain() == 0  # all three already held: nothing new stored
        assert len(fake.pushes) == 3 and sorted(fake.stored) == [1, 2, 3]
        assert await synced(gate) == {1, 2, 3}


async def test_a_partial_ack_marks_only_what_syncd_holds(tmp_path: Path) -> None:
    fake = FakeSyncd(partial=2)
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 5)
        batch = await unsynced_batch(gate.store, 100)
        await gate.worker.push_batch(batch)
        assert await synced(gate) == {1, 2}
        await gate.worker.drain()  # the rest goes, two at a time
        assert await synced(gate) == set(range(1, 6)) and sorted(fake.stored) == [1, 2, 3, 4, 5]


async def test_an_ack_beyond_the_batch_marks_only_the_batch(tmp_path: Path) -> None:
    """A duplicate or confused ack (acked_seq past what was sent) never marks unsent rows."""
    fake = FakeSyncd(ack_override=1000)
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 5)
        await gate.worker.push_batch(await unsynced_batch(gate.store, 3))
        await gate.worker.push_batch(await unsynced_batch(gate.store, 3))  # same ack again
        assert await synced(gate) == set(range(1, 6))
        assert sorted(fake.stored) == [1, 2, 3, 4, 5]


async def test_rows_syncd_no_longer_holds_are_sent_again(tmp_path: Path) -> None:
    """syncd restored from an older backup: the gate's copy is the only one, so it resends."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake, batch_size=2) as gate:
        await scan_all(gate, 6)
        await gate.worker.drain()
        for seq in (4, 5, 6):
            del fake.stored[seq]
        await scan_all(gate, 1)  # seq 7
        fake.ack_override = 3
        await gate.worker.push_batch(await unsynced_batch(gate.store, 2))
        assert await synced(gate) == {1, 2, 3}
        fake.ack_override = None
        await gate.worker.drain()
        assert sorted(fake.stored) == list(range(1, 8))
        assert await synced(gate) == set(range(1, 8))


async def test_a_clashing_journal_is_refused_and_nothing_marked(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 2)
        held = fake.stored[1] = (await _fake_checkin(gate, 1)).model_copy(
            update={"scan_id": "f" * 32}
        )
        with pytest.raises(ProtocolError) as info:
            await gate.worker.drain()
        assert info.value.status == 409 and fake.stored[1] == held
        assert await synced(gate) == set()


async def _fake_checkin(gate: Gate, seq: int):  # type: ignore[no-untyped-def]
    from gate.sync.worker import _checkin

    return _checkin((await unsynced_batch(gate.store, seq))[seq - 1])


async def test_backoff_is_exponential_with_full_jitter_and_capped(tmp_path: Path) -> None:
    random.seed(6)
    fake = FakeSyncd(faults=[503] * 12)
    async with enrolled_gate(tmp_path, fake, backoff_initial=0.5, backoff_max=8.0) as gate:
        await scan_all(gate, 1)
        assert await gate.worker.retrying(gate.worker.drain) == 1
        waits = gate.sleeps.seen
        assert len(waits) == 12 and gate.worker.status.retries == 12
        assert all(0 <= w <= min(8.0, 0.5 * 2**i) for i, w in enumerate(waits))
        assert len(set(waits)) == 12  # jittered: no two alike
        assert max(waits[6:]) > 4.0  # it grew toward the cap
        assert gate.worker.status.state == "online" and gate.worker.status.last_error is None


async def test_offline_state_is_shown_while_retrying(tmp_path: Path) -> None:
    fake = FakeSyncd(faults=["connect", "connect"])
    async with enrolled_gate(tmp_path, fake) as gate:
        await scan_all(gate, 1)
        states: list[str] = []

        async def watch(seconds: float) -> None:
            states.append(gate.worker.status.state)

        gate.worker._sleep = watch
        await gate.worker.retrying(gate.worker.drain)
        assert states == ["offline", "offline"] and gate.worker.status.state == "online"
        assert (await read_sync_state(gate.store)).last_error is None


async def test_a_new_scan_wakes_the_push_at_once(tmp_path: Path) -> None:
    """No interval elapses (it is an hour): the append event alone triggers the push."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake, push_interval=3600, long_poll=0) as gate:
        await gate.worker.start()
        try:
            await until(_true(lambda: gate.worker.status.online))
            await scan_all(gate, 1)
            await until(_true(lambda: 1 in fake.stored))
            await until(lambda: _is(synced(gate), {1}))
        finally:
            await gate.worker.stop()


def _true(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def condition() -> bool:
        return check()

    return condition


async def _is(value: Awaitable[object], expected: object) -> bool:
    return await value == expected
