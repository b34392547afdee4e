"""Every decision rule of docs/design.md section 2, through the real pipeline on real SQLite."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gate.store.db import Store
from shared.base45 import b45decode, b45encode
from shared.errors import RejectReason
from shared.ticket import PREFIX, generate_private_key
from tessera_dev.sample_event import (
    EVENT,
    KEY,
    SAT_18,
    Clock,
    bundle_bytes,
    bundle_key,
    code,
    loaded_store,
    pipeline,
)

R = RejectReason


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await loaded_store(tmp_path / "gate.sqlite3")
    yield store
    await store.close()


async def test_admit_is_recorded_before_it_is_returned(store: Store) -> None:
    decision = await pipeline(store).process(code(1, 11))
    assert (decision.outcome, decision.reason, decision.message) == ("admit", None, "Welcome")
    assert (decision.category, decision.holder, decision.seq) == ("GA", "Ada Lovelace", 1)
    row = await store.conn.execute_fetchall("SELECT ticket_id, decision, via FROM journal")
    assert list(row) == [(1, "admit", "scanner")]


@pytest.mark.parametrize(
    ("text", "reason", "message"),
    [
        ("https://example.com/", R.not_a_ticket, "Not a ticket"),
        ("T1:NOT-BASE45-AT-ALL", R.malformed, "Forged or damaged code"),
        (code(1, 11, key=generate_private_key()), R.unknown_key, "Not a ticket for this event"),
        (code(1, 11, event_id=8), R.wrong_event, "Ticket for another event"),
        (code(99, 1), R.unknown_ticket, "Unknown ticket"),
        (code(1, 10), R.reissued, "Ticket reissued: ask for the latest QR"),
        (code(3, 33), R.revoked, "Ticket cancelled"),
        (code(4, 44), R.blocked, "Ticket blocked: call a supervisor"),
    ],
)
async def test_each_denial_has_its_reason_and_message(
    store: Store, text: str, reason: RejectReason, message: str
) -> None:
    decision = await pipeline(store).process(text)
    assert (decision.outcome, decision.reason, decision.message) == ("deny", reason, message)
    rows = await store.conn.execute_fetchall("SELECT decision, reason FROM journal")
    assert list(rows) == [("deny", reason.value)]


async def test_forged_signature(store: Store) -> None:
    raw = bytearray(b45decode(code(1, 11)[len(PREFIX) :]))
    raw[40] ^= 1
    decision = await pipeline(store).process(PREFIX + b45encode(bytes(raw)))
    assert (decision.reason, decision.message) == (R.bad_signature, "Forged or damaged code")
    assert decision.ticket_id is None


async def test_retired_key(tmp_path: Path) -> None:
    old = generate_private_key()
    keys = [bundle_key(KEY), bundle_key(old, "retired")]
    store = await loaded_store(tmp_path / "g.sqlite3", bundle_bytes(keys=keys))
    try:
        decision = await pipeline(store).process(code(1, 11, key=old))
        assert decision.reason is R.key_retired
        assert (await pipeline(store).process(code(1, 11))).admitted
    finally:
        await store.close()


async def test_wrong_zone_names_the_tickets_zone(store: Store) -> None:
    decision = await pipeline(store, zones=["Main"]).process(code(2, 22))
    assert (decision.reason, decision.message) == (R.wrong_zone, "Wrong entrance: VIP")
    assert (await pipeline(store, zones=["1"]).process(code(2, 22))).admitted
    assert (await pipeline(store, zones=["main"]).process(code(6, 66))).admitted


async def test_already_inside_says_when_and_where(store: Store) -> None:
    clock = Clock(SAT_18 + 3720)  # 19:02 in Berlin
    assert (await pipeline(store, clock).process(code(1, 11))).admitted
    clock.now += 600
    decision = await pipeline(store, clock, gate_name="Gate C").process(code(1, 11))
    assert (decision.reason, decision.message) == (
        R.already_inside,
        "Already checked in 19:02 at Gate B",
    )


async def test_reentry_policies(store: Store) -> None:
    text = code(5, 55)
    entry = pipeline(store, mode="both")
    assert (await entry.process(text)).admitted
    out = await entry.process(text, direction="out")
    assert (out.outcome, out.direction, out.message) == ("admit", "out", "Exit recorded")
    never = await pipeline(store, reentry="never").process(text)
    assert never.reason is R.reentry_denied and never.message.startswith("No re-entry: left")
    again = await pipeline(store).process(text)  # the event's policy: after_exit
    assert (again.outcome, again.message) == ("admit", "Welcome back")
    assert (await pipeline(store, reentry="always").process(text)).admitted


async def test_exit_of_someone_not_inside(store: Store) -> None:
    decision = await pipeline(store, mode="exit").process(code(5, 55))
    assert (decision.reason, decision.direction) == (R.not_inside, "out")


async def test_direction_switch_only_in_mode_both(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot switch"):
        pipeline(store, mode="entry").set_direction("out")


@pytest.mark.parametrize("tolerance", [0, 300])
async def test_clock_tolerance_at_both_ends(store: Store, tolerance: int) -> None:
    start, end = SAT_18, SAT_18 + 6 * 3600
    text = code(1, 11, valid_from=start, valid_until=end)
    clock = Clock()
    gate = pipeline(store, clock, clock_tolerance=tolerance, reentry="always")
    for now, ok in [
        (start - tolerance - 1, False),
        (start - tolerance, True),
        (end + tolerance, True),
        (end + tolerance + 1, False),
    ]:
        clock.now = now
        decision = await gate.process(text)
        assert decision.admitted is ok, (now - start, decision)
    clock.now = start - tolerance - 1
    early = await gate.process(text)
    assert (early.reason, early.message) == (R.not_yet_valid, "Not valid until Sat 18:00")
    clock.now = end + tolerance + 1
    assert (await gate.process(text)).message == "Ticket expired Sun 00:00"


async def test_manual_admit_applies_list_rules_and_is_recorded_as_manual(store: Store) -> None:
    gate = pipeline(store)
    assert [m.entry.ticket_id for m in await gate.search("grace") if m.entry] == [2]
    decision = await gate.manual_admit(1)
    assert (decision.outcome, decision.via) == ("admit", "manual")
    assert (await gate.manual_admit(1)).reason is R.already_inside
    assert (await gate.manual_admit(3)).reason is R.revoked
    assert (await gate.manual_admit(12345)).reason is R.unknown_ticket
    found = await gate.search("1")
    assert found[0].state is not None and found[0].state.inside


async def test_seq_is_gap_free_and_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "gate.sqlite3"
    store = await loaded_store(path)
    gate = pipeline(store)
    seqs = [(await gate.process(t)).seq for t in [code(1, 11), "junk", code(1, 11), code(5, 55)]]
    await store.close()
    assert seqs == [1, 2, 3, 4]
    store = await Store.open(path)
    try:
        decision = await pipeline(store).process(code(1, 11))
        assert (decision.reason, decision.seq) == (R.already_inside, 5)
        assert store.events[EVENT].ticket_count == 6
    finally:
        await store.close()


async def test_remote_checkins_apply_newest_first(store: Store) -> None:
    await store.apply_remote(EVENT, 5, "in", SAT_18 - 60, "Gate A")
    await store.apply_remote(EVENT, 5, "out", SAT_18 - 120, "Gate A")  # older: ignored
    decision = await pipeline(store).process(code(5, 55))
    assert decision.reason is R.already_inside
    assert decision.message == "Already checked in 17:59 at Gate A"


async def test_keys_loaded_by_another_process_are_picked_up(tmp_path: Path) -> None:
    path = tmp_path / "gate.sqlite3"
    running = await Store.open(path)
    other = await loaded_store(path)  # like `gate import-list` beside `gate run`
    try:
        assert (await pipeline(running).process(code(1, 11))).admitted
    finally:
        await other.close()
        await running.close()
