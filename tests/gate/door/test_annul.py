"""Annulling an admission on the gate (issue 18): a journal row of its own that puts the
ticket back, refused with a reason when it cannot stand; passages, tailgates and the timeout.
Real SQLite stores and real pipelines; the clock is the pipeline's own injected clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from gate.door.annul import AnnulRefused, annul
from gate.door.gpio import follow_edges, parse_line
from gate.door.passage import PassageLane, PassageRefused
from gate.door.settings import PassageSettings
from gate.store.db import Store
from gate.store.stats import read_stats
from gate.store.syncstate import apply_changes, unsynced_batch
from gate.sync.worker import _checkin
from shared.bundle import BundleTicket
from shared.protocol import ChangesPage, CheckinIn
from tessera_dev.sample_event import (
    EVENT,
    SAT_18,
    Clock,
    bundle_bytes,
    code,
    loaded_store,
    pipeline,
)
from tests.support.feed import enrol_offline

TICKETS = [BundleTicket(i, 10 + i, "valid", 0b1, "GA", f"Holder {i}") for i in range(1, 6)]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(TICKETS))
    try:
        yield s
    finally:
        await s.close()


def scan_of(ticket_id: int) -> str:
    return code(ticket_id, 10 + ticket_id, zone=0b1)


async def journal(store: Store) -> list[tuple[Any, ...]]:
    rows = await store.conn.execute_fetchall(
        "SELECT seq, ticket_id, direction, decision, reason, via, ref_seq FROM journal ORDER BY seq"
    )
    return [tuple(r) for r in rows]


async def test_annul_puts_the_ticket_back_and_a_rescan_admits(store: Store) -> None:
    clock = Clock(SAT_18)
    gate = pipeline(store, clock, reentry="never")
    first = await gate.process(scan_of(1))
    assert first.admitted and first.seq == 1
    assert (await gate.process(scan_of(1))).reason.value == "already_inside"  # type: ignore[union-attr]
    before = await read_stats(store, clock.now)
    clock.now += 20
    done = await gate.annul()  # the latest admission
    assert (done.seq, done.ref_seq, done.ticket_id, done.direction) == (3, 1, 1, "in")
    assert done.message == "Entry annulled: Ticket 1 (Holder 1) is outside again"
    state = (await store.lookup(EVENT, 1)).state
    assert state is not None and not state.inside and state.entries == 0
    assert state.last_in_at is None  # it was the first entry: "never" lets them in again
    after = await read_stats(store, clock.now)
    assert after.admitted_today == before.admitted_today - 1
    assert after.inside_now == before.inside_now - 1
    clock.now += 5
    again = await gate.process(scan_of(1))
    assert again.admitted, again
    rows = await journal(store)
    assert rows[2] == (3, 1, "in", "annul", "staff", "staff", 1)  # its own row, never an edit
    assert rows[0][3] == "admit"  # the admission stays as it was


async def test_annulled_exit_puts_the_ticket_inside_again(store: Store) -> None:
    clock = Clock(SAT_18)
    entry = pipeline(store, clock)
    assert (await entry.process(scan_of(2))).admitted
    clock.now += 60
    exit_ = pipeline(store, clock, mode="exit")
    out = await exit_.process(scan_of(2))
    assert out.admitted and out.direction == "out"
    done = await exit_.annul(out.seq)
    assert done.message.startswith("Exit annulled")
    state = (await store.lookup(EVENT, 2)).state
    assert state is not None and state.inside and state.entries == 1


async def test_what_cannot_be_annulled_is_refused_and_nothing_written(store: Store) -> None:
    clock = Clock(SAT_18)
    gate = pipeline(store, clock, annul_window=300)
    with pytest.raises(AnnulRefused, match="admitted no one yet"):
        await gate.annul()
    denied = await gate.process("T1:garbage")
    with pytest.raises(AnnulRefused, match="not an admission"):
        await gate.annul(denied.seq)
    with pytest.raises(AnnulRefused, match="No scan 99"):
        await gate.annul(99)
    admitted = await gate.process(scan_of(3))
    await gate.annul(admitted.seq)
    with pytest.raises(AnnulRefused, match="already annulled"):
        await gate.annul(admitted.seq)
    with pytest.raises(AnnulRefused, match="not an admission"):
        await gate.annul(admitted.seq + 1)  # the annulment itself
    late = await gate.process(scan_of(4))
    clock.now += 301
    with pytest.raises(AnnulRefused, match="5 min old: only admissions of the last 5 min"):
        await gate.annul(late.seq)
    # Moved on: in, then out (another lane): the entry can no longer be undone.
    entered = await gate.process(scan_of(5))
    clock.now += 10
    assert (await pipeline(store, clock, mode="exit").process(scan_of(5))).admitted
    with pytest.raises(AnnulRefused, match="has moved since"):
        await gate.annul(entered.seq)
    kinds = [r[3] for r in await journal(store)]
    assert kinds.count("annul") == 1


async def test_two_processes_cannot_annul_one_admission_twice(store: Store, tmp_path: Path) -> None:
    clock = Clock(SAT_18)
    admitted = await pipeline(store, clock).process(scan_of(1))
    other = await Store.open(store.path)  # `gate annul` in a terminal beside `gate run`
    try:
        results = await asyncio.gather(
            annul(store, admitted.seq, gate="Gate B", now=clock.now, window=300),
            annul(other, admitted.seq, gate="Gate B", now=clock.now, window=300),
            return_exceptions=True,
        )
    finally:
        await other.close()
    assert sorted(type(r).__name__ for r in results) == ["AnnulRefused", "Annulment"]


async def test_annulment_is_pushed_with_its_ref_seq(store: Store) -> None:
    clock = Clock(SAT_18)
    gate = pipeline(store, clock)
    admitted = await gate.process(scan_of(1))
    await gate.annul()
    rows = await unsynced_batch(store, 10)
    pushed = [_checkin(r) for r in rows]
    assert [(c.outcome, c.ref_seq) for c in pushed] == [("admit", None), ("annul", admitted.seq)]
    assert all(isinstance(c, CheckinIn) for c in pushed)


async def test_another_gates_annulment_from_the_feed(store: Store) -> None:
    """syncd's feed says North admitted ticket 1, then annulled it: this gate lets it in."""
    await enrol_offline(store, Path("cred"), gate_id=2, server_url="http://syncd.invalid")

    def page(cursor: str, kind: str, seq: int, ref: int | None = None) -> ChangesPage:
        checkin = {
            "ticket_id": 1,
            "gate_id": 1,
            "gate_name": "North",
            "direction": "in",
            "at": SAT_18 - 30,
            "seq": seq,
            "ref_seq": ref,
        }
        return ChangesPage.model_validate(
            {"cursor": cursor, "changes": [{"seq": int(cursor), "kind": kind, "checkin": checkin}]}
        )

    await apply_changes(store, page("1", "checkin.in", 1), now=SAT_18)
    gate = pipeline(store, Clock(SAT_18))
    assert (await gate.process(scan_of(1))).reason.value == "already_inside"  # type: ignore[union-attr]
    await apply_changes(store, page("2", "checkin.annulled", 2, ref=1), now=SAT_18)
    assert (await gate.process(scan_of(1))).admitted
    # An annulment of North's entry does not undo a later movement made here.
    await apply_changes(store, page("3", "checkin.annulled", 3, ref=1), now=SAT_18)
    state = (await store.lookup(EVENT, 1)).state
    assert state is not None and state.inside and state.last_in_gate == "Gate B"


# -- passages --------------------------------------------------------------------------------
def lane_for(store: Store, clock: Clock, timeout: float = 10, **kw: Any) -> PassageLane:
    return PassageLane(
        store,
        PassageSettings(confirm=True, timeout=timeout),
        gate="Gate B",
        annul_window=300,
        clock=clock,
        **kw,
    )


async def test_passages_confirm_in_order_and_tailgates_are_recorded(store: Store) -> None:
    clock = Clock(SAT_18)
    lane = lane_for(store, clock)
    gate = pipeline(store, clock)
    gate.sinks.append(lane)
    a = await gate.process(scan_of(1))
    b = await gate.process(scan_of(2))
    first = await lane.passage("gpio")
    second = await lane.passage("http")
    tail = await lane.passage("gpio")
    assert (first.outcome, first.ref_seq) == ("passed", a.seq)
    assert (second.outcome, second.ref_seq) == ("passed", b.seq)
    assert (tail.outcome, tail.ref_seq, tail.ticket_id) == ("tailgate", None, None)
    rows = await journal(store)
    assert [r[3] for r in rows] == ["admit", "admit", "passed", "passed", "tailgate"]
    assert lane.status() == {"waiting": 0, "passed": 2, "tailgates": 1, "timed_out": 0}
    pushed = [_checkin(r) for r in await unsynced_batch(store, 10)]
    assert [c.outcome for c in pushed][-3:] == ["passed", "passed", "tailgate"]


async def test_no_passage_in_time_annuls_and_a_restart_remembers(store: Store) -> None:
    clock = Clock(SAT_18)
    shown: list[Any] = []

    async def notify(done: Any) -> None:
        shown.append(done)

    lane = lane_for(store, clock, timeout=10, notify=notify)
    gate = pipeline(store, clock)
    gate.sinks.append(lane)
    await lane.start()
    try:
        waited = await gate.process(scan_of(3))
        clock.now += 9
        await asyncio.sleep(0.4)
        assert lane.status()["waiting"] == 1
        clock.now += 2
        for _ in range(40):
            if shown:
                break
            await asyncio.sleep(0.05)
        assert [a.ref_seq for a in shown] == [waited.seq]
        assert shown[0].reason == "not_passed"
        state = (await store.lookup(EVENT, 3)).state
        assert state is not None and not state.inside
        # An admission made just before a restart still waits, and times out after it.
        pending = await gate.process(scan_of(4))
    finally:
        await lane.stop()
    restarted = lane_for(store, clock, timeout=10, notify=notify)
    await restarted.reload()
    assert [w.seq for w in restarted.waiting] == [pending.seq]
    clock.now += 11
    assert (await restarted.passage("http")).outcome == "tailgate"  # too late: annulled first
    kinds = [(r[3], r[4], r[6]) for r in await journal(store)]
    assert ("annul", "not_passed", pending.seq) in kinds


async def test_staff_annul_while_waiting_is_not_confirmed_by_the_next_passage(
    store: Store,
) -> None:
    clock = Clock(SAT_18)
    lane = lane_for(store, clock)
    gate = pipeline(store, clock)
    gate.sinks.append(lane)
    wrong = await gate.process(scan_of(1))
    right = await gate.process(scan_of(2))
    await gate.annul(wrong.seq)  # the wrong person: staff undo it before anyone passes
    passed = await lane.passage("http")
    assert passed.ref_seq == right.seq


class FakeLine:
    """A GPIO line (no chip on a test machine): each wait yields the next batch of edges."""

    def __init__(self, batches: list[int]) -> None:
        self.batches = batches
        self.released = False
        self.pending = 0

    def wait_edge_events(self, timeout: timedelta) -> bool:
        if not self.batches:
            return False
        self.pending = self.batches.pop(0)
        return True

    def read_edge_events(self) -> list[object]:
        return [object()] * self.pending

    def release(self) -> None:
        self.released = True


async def test_gpio_edges_are_passages(store: Store) -> None:
    clock = Clock(SAT_18)
    line = FakeLine([1, 2])
    lane = lane_for(store, clock, edges=lambda spec: line)
    lane.settings = PassageSettings(confirm=True, timeout=10, gpio="gpiochip0:17")
    gate = pipeline(store, clock)
    gate.sinks.append(lane)
    admitted = await gate.process(scan_of(5))
    await lane.start()
    for _ in range(100):
        if lane.status()["tailgates"] == 2:
            break
        await asyncio.sleep(0.02)
    await lane.stop()
    assert lane.status()["passed"] == 1 and lane.status()["tailgates"] == 2
    assert line.released
    rows = await journal(store)
    assert [(r[3], r[5], r[6]) for r in rows[1:]] == [
        ("passed", "gpio", admitted.seq),
        ("tailgate", "gpio", None),
        ("tailgate", "gpio", None),
    ]


async def test_follow_edges_survives_a_failing_passage_and_stops() -> None:
    line = FakeLine([3])
    calls = 0
    stop = asyncio.Event()

    async def on_passage() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            stop.set()
        raise OSError("disk full")  # logged; the next edge is still read

    assert await follow_edges(line, on_passage, stop) == 3
    assert line.released


def test_gpio_line_spec() -> None:
    assert parse_line("gpiochip0:17") == ("/dev/gpiochip0", 17, "rising")
    assert parse_line("/dev/gpiochip2:4:falling") == ("/dev/gpiochip2", 4, "falling")
    for bad in ("17", "gpiochip0", "gpiochip0:x", "/etc/passwd:1", "gpiochip0:1:both"):
        with pytest.raises(ValueError, match="CHIP:LINE"):
            PassageSettings(gpio=bad)
    with pytest.raises(ValueError, match="16 characters"):
        PassageSettings(token="short")


async def test_a_group_admission_waits_for_one_passage_per_member(store: Store) -> None:
    """Found on review: only the scanned ticket waited, so its group's passages were tailgates."""
    listed = [BundleTicket(i, 10 + i, "valid", 0b1, "GA", f"H{i}", group="ORD") for i in (1, 2, 3)]
    await store.close()
    grouped = await loaded_store(store.path.with_name("groups.sqlite3"), bundle_bytes(listed))
    try:
        clock = Clock(SAT_18)
        lane = lane_for(grouped, clock)
        gate = pipeline(grouped, clock, group_admit=True)
        gate.sinks.append(lane)
        scanned = await gate.process(scan_of(2))
        assert scanned.group is not None and scanned.group.admitted == 3
        assert len(lane.waiting) == 3
        outcomes = [(await lane.passage("gpio")).outcome for _ in range(4)]
        assert outcomes == ["passed", "passed", "passed", "tailgate"]
    finally:
        await grouped.close()


async def test_a_revoked_gate_annuls_nothing_and_records_no_passage(store: Store) -> None:
    """A revoked gate's journal stays as it was at the revocation (gate.store.wipe): staff
    annulments and turnstile signals are refused like scans."""
    clock = Clock(SAT_18)
    lane = lane_for(store, clock)
    gate = pipeline(store, clock)
    gate.sinks.append(lane)
    admitted = await gate.process(scan_of(1))
    before = await journal(store)
    store.revoked_at = clock.now  # as mark_revoked leaves it
    with pytest.raises(AnnulRefused, match="Gate revoked"):
        await gate.annul(admitted.seq)
    with pytest.raises(PassageRefused, match="gate revoked"):
        await lane.passage("gpio")
    assert await journal(store) == before
