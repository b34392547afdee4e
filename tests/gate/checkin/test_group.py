"""Group admission: one admitted scan lets the rest of its group in, each ticket decided and
journaled on its own, in one transaction with the scan.

The list: group ORD-1 is tickets 1-6 (2 and 6 fine, 3 already inside, 4 revoked, 5 for the VIP
zone only at a Main gate), ticket 7 is in another group, 8 in none; event 8 has a ticket of a
group with the same name, which must never follow. Everything real: a SQLite store, signed
bundles, the pipeline as `gate run` builds it.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.checkin.pipeline import Pipeline
from gate.door.annul import AnnulRefused
from gate.feedback.hooks import CommandHooks, HookSettings
from gate.settings import GateSettings
from gate.store.db import Store
from gate.store.groups import group_size
from gate.store.importer import import_bundle
from gate.store.syncstate import unsynced_batch
from shared.bundle import BundleTicket
from tessera_dev.sample_event import Clock, bundle_bytes, bundle_key, code, loaded_store, pipeline

MAIN, VIP = 0b01, 0b10
GROUP = "ORD-1"
LIST = [
    BundleTicket(1, 11, "valid", MAIN, "GA", "Ada", group=GROUP),
    BundleTicket(2, 22, "valid", MAIN, "GA", "Bo", group=GROUP),
    BundleTicket(3, 33, "valid", MAIN, "GA", "Cy", group=GROUP),
    BundleTicket(4, 44, "revoked", MAIN, "GA", "Di", group=GROUP),
    BundleTicket(5, 55, "valid", VIP, "VIP", "Ed", group=GROUP),
    BundleTicket(6, 66, "valid", MAIN, "GA", "Flo", group=GROUP),
    BundleTicket(7, 77, "valid", MAIN, "GA", "Gus", group="ORD-2"),
    BundleTicket(8, 88, "valid", MAIN, "GA", "Hal"),
]
OTHER_KEY = Ed25519PrivateKey.generate()
OTHER_EVENT = 8


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    """LIST loaded (event 7), ticket 3 already inside; event 8 with a ticket of group ORD-1."""
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(LIST))
    await store.trust(OTHER_KEY.public_key())
    other = bundle_bytes(
        [BundleTicket(1, 11, "valid", MAIN, "GA", "Other Ada", group=GROUP)],
        signer=OTHER_KEY,
        keys=[bundle_key(OTHER_KEY)],
        event_id=OTHER_EVENT,
    )
    await import_bundle(store, io.BytesIO(other))
    assert (await pipeline(store).process(code(3, 33))).admitted
    try:
        yield store
    finally:
        await store.close()


async def _journal(store: Store) -> list[tuple[int, int, str, str | None, str, str]]:
    rows = await store.conn.execute_fetchall(
        "SELECT seq, ticket_id, decision, reason, via, direction FROM journal ORDER BY seq"
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def _inside(store: Store, event_id: int = 7) -> set[int]:
    rows = await store.conn.execute_fetchall(
        "SELECT ticket_id FROM entry_state WHERE event_id = ? AND inside = 1", (event_id,)
    )
    return {r[0] for r in rows}


async def test_one_scan_admits_the_group_each_ticket_on_its_own(store: Store) -> None:
    before = len(await _journal(store))
    gate = pipeline(store, zones=["Main"], group_admit=True)
    decision = await gate.process(code(1, 11), via="camera")
    assert decision.admitted and decision.ticket_id == 1 and decision.via == "camera"
    group = decision.group
    assert group is not None
    assert (
        group.message == "Group of 6: 3 admitted, 1 already inside, 1 cancelled, 1 wrong entrance"
    )
    assert (group.size, group.admitted, group.too_large) == (6, 3, False)
    assert group.refused == {"already_inside": 1, "revoked": 1, "wrong_zone": 1}
    # Each member journaled on its own row, via "group", after the scan's own row.
    rows = (await _journal(store))[before:]
    assert [(t, d, r, v) for _, t, d, r, v, _ in rows] == [
        (1, "admit", None, "camera"),
        (2, "admit", None, "group"),
        (3, "deny", "already_inside", "group"),
        (4, "deny", "revoked", "group"),
        (5, "deny", "wrong_zone", "group"),
        (6, "admit", None, "group"),
    ]
    assert [m.decision.seq for m in group.members] == [r[0] for r in rows[1:]]
    assert decision.seq == rows[0][0]
    # Another group, no group, and the same group name in another event stay outside.
    assert await _inside(store) == {1, 2, 3, 6}
    assert await _inside(store, OTHER_EVENT) == set()
    # The JSON every sink and `gate run` prints carries the summary and each member.
    data = decision.to_json()
    assert data["group"]["message"] == group.message
    assert [(m["ticket_id"], m["decision"], m["reason"]) for m in data["group"]["members"]] == [
        (2, "admit", None),
        (3, "deny", "already_inside"),
        (4, "deny", "revoked"),
        (5, "deny", "wrong_zone"),
        (6, "admit", None),
    ]
    # Sync pushes them as ordinary check-ins, in seq order.
    pushed = [(r.ticket_id, r.outcome, r.via) for r in await unsynced_batch(store, 100)][before:]
    assert pushed == [(t, d, v) for _, t, d, _, v, _ in rows]


async def test_group_admission_is_off_by_default(store: Store) -> None:
    before = len(await _journal(store))
    decision = await pipeline(store, zones=["Main"]).process(code(1, 11))
    assert decision.admitted and decision.group is None
    assert len(await _journal(store)) == before + 1
    assert await _inside(store) == {1, 3}


async def test_a_refused_scan_admits_nobody(store: Store) -> None:
    """A revoked member's code (and one already inside) is refused alone: no group follows."""
    gate = pipeline(store, zones=["Main"], group_admit=True)
    before = len(await _journal(store))
    for ticket_id, nonce in ((4, 44), (3, 33)):
        decision = await gate.process(code(ticket_id, nonce))
        assert not decision.admitted and decision.group is None
    assert len(await _journal(store)) == before + 2
    assert await _inside(store) == {3}


async def test_a_group_larger_than_the_limit_is_not_expanded(store: Store) -> None:
    """A crafted list cannot make one scan write thousands of rows: past GATE_GROUP_MAX the
    scan counts for its own ticket only, and the screen says to scan the others."""
    gate = pipeline(store, zones=["Main"], group_admit=True, group_max=5)
    before = len(await _journal(store))
    decision = await gate.process(code(2, 22))
    assert decision.admitted and decision.group is not None
    assert decision.group.too_large and decision.group.members == ()
    assert decision.group.message == "Group of more than 5: scan each ticket"
    assert len(await _journal(store)) == before + 1
    assert await group_size(store, 7, 2, 5) == 6  # counted to the limit + 1
    exact = pipeline(store, zones=["Main"], group_admit=True, group_max=6)
    assert (await exact.process(code(1, 11))).group.size == 6  # type: ignore[union-attr]


async def test_a_huge_group_costs_one_row(tmp_path: Path) -> None:
    rows = [BundleTicket(i, i, group="BIG") for i in range(1, 20_001)]
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(rows))
    try:
        decision = await pipeline(store, group_admit=True).process(code(7, 7))
        assert decision.admitted and decision.group is not None and decision.group.too_large
        assert len(await _journal(store)) == 1
    finally:
        await store.close()


async def test_staff_choose_per_admit_whatever_the_setting(store: Store) -> None:
    """`gate admit --group` / the kiosk's "Admit group" on a gate with group admission off;
    "Admit 1" (group=False) on a gate with it on."""
    off = pipeline(store, zones=["Main"])
    decision = await off.manual_admit(2, group=True)
    assert decision.via == "manual" and decision.group is not None
    assert (
        decision.group.message
        == "Group of 6: 3 admitted, 1 already inside, 1 cancelled, 1 wrong entrance"
    )
    on = pipeline(store, zones=["Main"], group_admit=True)
    alone = await on.manual_admit(7, group=False)
    assert alone.admitted and alone.group is None
    plain = await on.manual_admit(8)  # no group: nothing to add
    assert plain.admitted and plain.group is None


async def test_a_group_leaves_together(store: Store) -> None:
    """At an exit, the members inside leave with the scanned one; the others are "not inside"."""
    await pipeline(store, zones=["Main"], group_admit=True).process(code(1, 11))
    assert await _inside(store) == {1, 2, 3, 6}
    exits = pipeline(store, zones=["Main"], group_admit=True, mode="exit")
    assert (await exits.manual_admit(2, group=False)).admitted
    decision = await exits.process(code(1, 11))
    assert decision.admitted and decision.group is not None
    assert decision.group.message == (
        "Group of 6: 3 left, 1 not inside, 1 cancelled, 1 wrong entrance"
    )
    assert await _inside(store) == set()


async def test_a_failed_write_records_none_of_the_group(store: Store) -> None:
    """One transaction: when a member's row cannot be written (here a trigger stands in for a
    full disk), the scan and every member roll back, and the screen says "Not recorded"."""
    await store.conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON journal WHEN NEW.ticket_id = 6"
        " BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END"
    )
    before = await _journal(store)
    gate = pipeline(store, zones=["Main"], group_admit=True)
    decision = await gate.process(code(1, 11))
    assert (decision.outcome, decision.reason) == ("deny", "not_recorded")
    assert decision.ticket_id == 1 and decision.group is None
    assert await _journal(store) == before
    assert await _inside(store) == {3}
    await store.conn.execute("DROP TRIGGER boom")
    assert (await gate.process(code(1, 11))).group.admitted == 3  # type: ignore[union-attr]


async def test_a_key_retired_by_another_process_admits_no_group(store: Store) -> None:
    """Regression guard for the stale cache: another process (`gate import-list`, a sync) retired
    the signing key after this gate cached it. The group check-in notices, records nothing,
    and the scan is judged again with the new keys: refused, and nobody of the group let in."""
    other = sqlite3.connect(store.path)
    other.execute("UPDATE keys SET status = 'retired' WHERE event_id = 7")
    other.commit()
    other.close()
    before = await _journal(store)
    gate = pipeline(store, zones=["Main"], group_admit=True)
    decision = await gate.process(code(1, 11))
    assert (decision.outcome, decision.reason, decision.group) == ("deny", "key_retired", None)
    assert len(await _journal(store)) == len(before) + 1
    assert await _inside(store) == {3}


async def test_gate_admit_group_and_no_group(store: Store) -> None:
    """`gate admit --group` (a subprocess, beside the open store) on a gate with group admission
    off; `--no-group` on one with it on (GATE_GROUP_ADMIT=true) admits the one ticket only."""
    data = store.path.parent
    grouped = await asyncio.to_thread(gate, data, "admit", "2", "--group", zones="Main")
    decision = json.loads(grouped.stdout)
    assert grouped.returncode == 0, grouped.stderr
    assert decision["via"] == "manual" and decision["group"]["message"] == (
        "Group of 6: 3 admitted, 1 already inside, 1 cancelled, 1 wrong entrance"
    )
    alone = await asyncio.to_thread(
        gate, data, "admit", "7", "--no-group", zones="Main", group_admit="true"
    )
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["group"] is None
    assert await _inside(store) == {1, 2, 3, 6, 7}
    refused = await asyncio.to_thread(gate, data, "admit", "2", "--group", zones="Main")
    assert refused.returncode == 1 and json.loads(refused.stdout)["group"] is None


def gate(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GATE_DATA_DIR": str(data), "GATE_NAME": "Gate B"}
    environ.update({f"GATE_{k.upper()}": v for k, v in env.items()})
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )


async def test_the_admit_hook_hears_how_many_went_in(store: Store, tmp_path: Path) -> None:
    """A turnstile relay on GATE_HOOK_ON_ADMIT gets TESSERA_ADMITTED: 3 for the group scan,
    1 for a ticket alone."""
    out = tmp_path / "admitted.txt"
    write = "import os,sys; open(sys.argv[1],'a').write(os.environ['TESSERA_ADMITTED']+'\\n')"
    hooks = CommandHooks(HookSettings(on_admit=f'{sys.executable} -c "{write}" {out}'))
    settings = GateSettings(gate_name="Gate B", data_dir=tmp_path, zones=["Main"], group_admit=True)
    gate = Pipeline(store, settings, [hooks], clock=Clock())
    await gate.process(code(1, 11))
    await hooks.drain()
    await gate.process(code(8, 88))
    await hooks.drain()
    assert out.read_text() == "3\n1\n"


@pytest.mark.parametrize("printed", [True, False], ids=["names", "no-names"])
async def test_the_daemon_prints_holder_names_only_when_allowed(
    store: Store, printed: bool
) -> None:
    """`gate run`'s decision lines on stdout: the systemd unit sets GATE_PRINT_HOLDERS=false,
    as stdout is the system journal there (a wipe on revoke cannot reach it). Then no name of
    the scanned ticket or of its group's members is printed; the decision is all there."""
    environ = {**os.environ, "GATE_DATA_DIR": str(store.path.parent), "GATE_NAME": "Gate B"}
    environ |= {"GATE_ZONES": "Main", "GATE_GROUP_ADMIT": "true", "GATE_DISPLAY_ENABLED": "false"}
    environ |= {"GATE_PRINT_HOLDERS": str(printed).lower(), "GATE_DEBOUNCE_SECONDS": "0"}
    run = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gate", "run", "--source", "stdin"],
        input=code(1, 11) + "\n",
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    [line] = run.stdout.splitlines()
    decision = json.loads(line)
    members = decision["group"]["members"]
    assert decision["decision"] == "admit" and decision["ticket_id"] == 1
    assert [m["ticket_id"] for m in members] == [2, 3, 4, 5, 6]
    names = [decision["holder"], *(m["holder"] for m in members)]
    if printed:
        assert names == ["Ada", "Bo", "Cy", "Di", "Ed", "Flo"]
    else:
        assert names == [None] * 6
        assert not any(n in line for n in ("Ada", "Bo", "Cy", "Di", "Ed", "Flo"))


async def test_annul_last_after_a_group_scan_undoes_the_whole_group(store: Store) -> None:
    """ "Annul last" (kiosk, `gate annul --last`) undoes what the kiosk just showed: every
    admission of the group scan, each with an annul row of its own, in one transaction. The
    members it denied, and ticket 3 (inside before the scan), stay as they were."""
    clock = Clock()
    gate = pipeline(store, clock, zones=["Main"], group_admit=True)
    scanned = await gate.process(code(1, 11))
    assert scanned.group is not None and scanned.group.admitted == 3
    admitted = [
        scanned.seq,
        *(m.decision.seq for m in scanned.group.members if m.decision.admitted),
    ]
    assert await _inside(store) == {1, 2, 3, 6}
    clock.now += 30
    done = await gate.annul()
    assert [done.ref_seq, *(m.ref_seq for m in done.members)] == admitted
    assert done.message == (
        "Group entry annulled: 3 tickets are outside again (Ticket 1 (Ada) and 2 more)"
    )
    assert done.to_json()["members"] == [
        {"seq": done.seq + 1, "ref_seq": admitted[1], "ticket_id": 2, "holder": "Bo"},
        {"seq": done.seq + 2, "ref_seq": admitted[2], "ticket_id": 6, "holder": "Flo"},
    ]
    rows = (await _journal(store))[-3:]
    assert [(t, d, v) for _, t, d, _, v, _ in rows] == [(1, "annul", "staff")] + [
        (t, "annul", "staff") for t in (2, 6)
    ]
    assert await _inside(store) == {3}
    # Each member's annulment is pushed as a row of its own with its admission's seq.
    batch = await unsynced_batch(store, 100)
    assert [(r.ticket_id, r.ref_seq) for r in batch if r.outcome == "annul"] == [
        (1, admitted[0]),
        (2, admitted[1]),
        (6, admitted[2]),
    ]
    with pytest.raises(AnnulRefused, match="already annulled"):
        await gate.annul()  # the same scan again: nothing left to undo


async def test_a_group_member_that_moved_on_stays_and_one_seq_annuls_one(store: Store) -> None:
    clock = Clock()
    gate = pipeline(store, clock, zones=["Main"], group_admit=True)
    scanned = await gate.process(code(1, 11))
    assert scanned.group is not None
    bo, flo = (m.decision.seq for m in scanned.group.members if m.decision.admitted)
    clock.now += 10
    exit_ = pipeline(store, clock, zones=["Main"], mode="exit")
    assert (await exit_.process(code(6, 66))).admitted  # Flo left: her entry is history now
    clock.now += 10
    single = await gate.annul(bo)  # a SEQ alone is that admission alone
    assert (single.ref_seq, single.members, single.skipped) == (bo, (), 0)
    assert await _inside(store) == {1, 3}
    rest = await gate.annul(scanned.seq, whole_scan=True)  # SEQ --group: the rest of it
    assert (rest.ref_seq, rest.members, rest.skipped) == (scanned.seq, (), 2)  # Bo, Flo
    assert rest.message == "Entry annulled: Ticket 1 (Ada) is outside again"
    assert await _inside(store) == {3}
    journal = await _journal(store)
    assert [r[1] for r in journal if r[2] == "annul"] == [2, 1]  # nothing written for Flo
    assert flo not in [r[0] for r in journal if r[2] == "annul"]


async def test_gate_annul_group_on_the_command_line(store: Store) -> None:
    """`gate annul SEQ` (a member: that one), then `gate annul SEQ --group` (the rest of the
    scan), `--last` after a later single scan (that scan only), in subprocesses."""
    now = Clock(time.time())  # the commands judge the annul window by the real clock
    gate_ = pipeline(store, now, zones=["Main"], group_admit=True)
    scanned = await gate_.process(code(1, 11))
    assert scanned.group is not None
    bo = scanned.group.members[0].decision.seq
    assert (await pipeline(store, now, zones=["Main"]).process(code(8, 88))).admitted  # alone
    one = await asyncio.to_thread(gate, store.path.parent, "annul", str(bo), "--json")
    assert one.returncode == 0, one.stderr
    assert json.loads(one.stdout)["members"] == [] and json.loads(one.stdout)["ticket_id"] == 2
    last = await asyncio.to_thread(gate, store.path.parent, "annul", "--last")
    assert last.stdout.strip() == "Entry annulled: Ticket 8 (Hal) is outside again", last.stderr
    rest = await asyncio.to_thread(gate, store.path.parent, "annul", str(bo), "--group", "--json")
    assert rest.returncode == 0, rest.stderr
    data = json.loads(rest.stdout)
    assert (data["ticket_id"], [m["ticket_id"] for m in data["members"]]) == (1, [6])
    assert data["skipped"] == 1  # Bo: annulled before
    assert await _inside(store) == {3}
