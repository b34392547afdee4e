"""The automatic check-out at the gate (shared/checkout.py): an entry before the event's latest
check-out instant is yesterday's. Through the real pipeline on real SQLite, with the clock
moved by hand; the gate has no network in any of these tests."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gate.checkin.decide import Context, decide
from gate.commands import format_status, status
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.importer import import_bundle
from gate.store.records import EntryState, EventInfo, ListEntry, LocalState
from gate.store.stats import read_stats
from gate.store.syncstate import apply_changes
from shared.errors import BundleError, RejectReason
from shared.protocol import ChangesPage
from tessera_dev.sample_event import (
    EVENT,
    SAT_18,
    Clock,
    bundle_bytes,
    code,
    loaded_store,
    pipeline,
)
from tests.support.feed import enrol_offline, event_updated

R = RejectReason
SUN_4 = SAT_18 + 10 * 3600  # Sun 2026-06-14 04:00 in Berlin: the check-out


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(checkout_time="04:00"))
    yield store
    await store.close()


async def test_inside_last_night_is_admitted_after_the_checkout(store: Store) -> None:
    assert store.events[EVENT].checkout_time == "04:00"
    clock = Clock(SAT_18)
    gate = pipeline(store, clock)
    assert (await gate.process(code(1, 11))).admitted
    clock.now = SUN_4 - 1  # 03:59:59: still last night
    late = await gate.process(code(1, 11))
    assert (late.reason, late.message) == (
        R.already_inside,
        "Already checked in Sat 18:00 at Gate B",
    )
    clock.now = SUN_4  # 04:00 sharp: a new day, a first entry
    today = await gate.process(code(1, 11))
    assert (today.outcome, today.message) == ("admit", "Welcome")
    clock.now = SUN_4 + 60  # and today's entry counts as usual
    assert (await gate.process(code(1, 11))).reason is R.already_inside


async def test_without_a_checkout_time_inside_stays_inside(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "g.sqlite3")
    try:
        assert store.events[EVENT].checkout_time is None
        clock = Clock(SAT_18)
        assert (await pipeline(store, clock).process(code(1, 11))).admitted
        clock.now = SUN_4 + 86400 * 3
        assert (await pipeline(store, clock).process(code(1, 11))).reason is R.already_inside
    finally:
        await store.close()


async def test_reentry_never_lets_a_multi_day_pass_in_once_a_day(store: Store) -> None:
    clock = Clock(SAT_18)
    gate = pipeline(store, clock, mode="both", reentry="never")
    text = code(5, 55)
    assert (await gate.process(text)).admitted
    assert (await gate.process(text, direction="out")).admitted
    assert (await gate.process(text, direction="in")).reason is R.reentry_denied
    clock.now = SUN_4 + 3600  # Sunday 05:00
    assert (await gate.process(text)).message == "Welcome"
    assert (await gate.process(text, direction="out")).admitted
    sunday = await gate.process(text, direction="in")
    assert (sunday.reason, sunday.message) == (R.reentry_denied, "No re-entry: left 05:00")
    clock.now = SUN_4 + 86400  # Monday 04:00
    assert (await gate.process(text)).admitted


async def test_an_exit_after_the_checkout_finds_no_entry(store: Store) -> None:
    clock = Clock(SAT_18)
    gate = pipeline(store, clock, mode="both")
    assert (await gate.process(code(1, 11))).admitted
    clock.now = SUN_4 + 1800
    out = await gate.process(code(1, 11), direction="out")
    assert (out.outcome, out.reason, out.message) == (
        "deny",
        R.not_inside,
        "Checked out at 04:00: no entry to exit",
    )
    assert (await gate.process(code(1, 11), direction="in")).admitted
    assert (await gate.process(code(1, 11), direction="out")).admitted  # today's entry


async def test_the_display_counts_inside_since_the_checkout(store: Store) -> None:
    clock = Clock(SAT_18)
    assert (await pipeline(store, clock).process(code(1, 11))).admitted
    assert (await read_stats(store, SAT_18 + 60)).inside_now == 1
    assert (await read_stats(store, SUN_4)).inside_now == 0  # checked out
    clock.now = SUN_4 + 60
    assert (await pipeline(store, clock).process(code(2, 22))).admitted
    assert (await read_stats(store, SUN_4 + 120)).inside_now == 1  # ticket 2, not ticket 1
    assert (await read_stats(store, SUN_4 + 86400)).inside_now == 0


def test_decide_is_pure_and_reads_the_clock_it_is_given() -> None:
    """Same state, same event: the answer depends on ``now`` alone (no clock read in decide)."""
    event = EventInfo(EVENT, "Fest", "Pacific/Kiritimati", "after_exit", checkout_time="04:00")
    entry = ListEntry(EVENT, 1, 11, "valid", 0xFFFF, "GA", None)
    boundary = datetime(2026, 6, 12, 14, tzinfo=UTC).timestamp()  # Sat 04:00 at +14
    state = EntryState(inside=True, last_in_at=boundary - 60, last_in_gate="A", entries=1)
    settings = GateSettings(gate_name="B")
    local = LocalState(entry, state)
    before = decide(None, local, event, Context(settings, "in", boundary - 1))
    after = decide(None, local, event, Context(settings, "in", boundary))
    assert (before.reason, after.outcome, after.message) == (R.already_inside, "admit", "Welcome")


async def test_a_bundle_with_a_bad_checkout_time_is_refused(tmp_path: Path) -> None:
    store = await loaded_store(tmp_path / "g.sqlite3")
    try:
        with pytest.raises(BundleError, match="check-out time '25:00'"):
            await import_bundle(store, io.BytesIO(bundle_bytes(checkout_time="25:00")))
        assert store.events[EVENT].checkout_time is None  # the old list stays in force
    finally:
        await store.close()


def _event_page(seq: int, checkout: str | None) -> ChangesPage:
    settings = {"name": "Fest", "timezone": "Europe/Berlin", "reentry": "after_exit"}
    return event_updated(seq, {**settings, "checkout_time": checkout})


async def test_the_feed_turns_the_checkout_on_and_off(tmp_path: Path) -> None:
    """``event.updated`` carries the setting: the next decision uses it, with no new list."""
    store = await loaded_store(tmp_path / "g.sqlite3")
    try:
        await enrol_offline(store, tmp_path / "cred")
        clock = Clock(SAT_18)
        gate = pipeline(store, clock)
        assert (await gate.process(code(1, 11))).admitted
        assert (await gate.process(code(2, 22))).admitted
        clock.now = SUN_4 + 60
        assert (await gate.process(code(1, 11))).reason is R.already_inside
        await apply_changes(store, _event_page(5, "04:00"), now=SUN_4)
        assert store.events[EVENT].checkout_time == "04:00"
        assert (await gate.process(code(1, 11))).message == "Welcome"
        await apply_changes(store, _event_page(6, None), now=SUN_4)
        assert store.events[EVENT].checkout_time is None
        assert (await gate.process(code(2, 22))).reason is R.already_inside
    finally:
        await store.close()


def test_a_feed_change_with_a_bad_checkout_time_is_refused() -> None:
    with pytest.raises(ValueError, match="checkout_time"):
        _event_page(5, "4:00")


async def test_gate_status_names_the_checkout(store: Store, tmp_path: Path) -> None:
    shown = format_status(await status(GateSettings(gate_name="B", data_dir=tmp_path)))
    assert "Check-out:       everyone outside at 04:00 (Europe/Berlin)" in shown.splitlines()
