"""The drill's local checks, each red and green, on a real store in tmp_path: the list (loaded,
signed by a trusted key, its age), the keys, the journal, the disk, the hooks (real commands),
and the clock's verdict on a measured skew."""

from __future__ import annotations

import re
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from gate.drill import local, network
from gate.drill.settings import DrillSettings
from gate.feedback.hooks import HookSettings
from gate.settings import GateSettings
from gate.store.records import JournalEntry
from gate.store.syncstate import SyncState
from tests.gate.feedback.realgate import EVENT, RealGate, make_gate, tickets

NOT_ENROLLED = SyncState()
ENROLLED = SyncState(server_url="http://syncd.test", gate_id=2, event_id=EVENT, acked_seq=4)


async def _gate(tmp_path: Path) -> RealGate:
    return await make_gate(tmp_path, tickets(3))


async def _sql(gate: RealGate, sql: str, *args: object) -> None:
    async with gate.store.transaction() as conn:
        await conn.execute(sql, args)
    await gate.store.refresh()


async def test_a_fresh_signed_list_is_green(tmp_path: Path) -> None:
    gate = await _gate(tmp_path)
    try:
        item = await local.check_list(gate.settings, gate.store, NOT_ENROLLED, time.time())
    finally:
        await gate.store.close()
    assert item.status == "ok", item
    assert re.fullmatch(
        r"3 tickets \(Summer Night\), signed by [0-9a-f]{8}, [012] s old", item.figure
    )


async def test_no_list_is_red(tmp_path: Path) -> None:
    from gate.store.db import Store

    store = await Store.open(tmp_path / "gate.sqlite3")
    try:
        item = await local.check_list(GateSettings(data_dir=tmp_path), store, NOT_ENROLLED, 0)
    finally:
        await store.close()
    assert (item.status, item.figure) == ("fail", "no list loaded")


async def test_an_old_list_is_red_unless_the_feed_kept_it_fresh(tmp_path: Path) -> None:
    """A USB-loaded list from yesterday is red; the same list on an enrolled gate that pulled
    syncd's feed a minute ago is current."""
    gate = await _gate(tmp_path)
    now = time.time()
    try:
        await _sql(gate, "UPDATE events SET list_issued_at = ?", int(now - 13 * 3600))
        old = await local.check_list(gate.settings, gate.store, NOT_ENROLLED, now)
        pulled = SyncState(server_url="http://syncd.test", event_id=EVENT, last_pull_at=now - 60)
        fed = await local.check_list(gate.settings, gate.store, pulled, now)
        looser = GateSettings(data_dir=tmp_path, parts=[DrillSettings(list_max_age=24)])
        lenient = await local.check_list(looser, gate.store, NOT_ENROLLED, now)
    finally:
        await gate.store.close()
    assert old.status == "fail" and "13.0 h old" in old.figure and "older than 12.0 h" in old.detail
    assert fed.status == "ok" and "60 s old" in fed.figure
    assert lenient.status == "ok"


async def test_a_list_whose_signer_is_no_longer_trusted_or_is_short_of_tickets_is_red(
    tmp_path: Path,
) -> None:
    gate = await _gate(tmp_path)
    now = time.time()
    try:
        await _sql(gate, "DELETE FROM tickets WHERE ticket_id = 1002")
        short = await local.check_list(gate.settings, gate.store, NOT_ENROLLED, now)
        await _sql(gate, "UPDATE keys SET trusted = 0")
        untrusted = await local.check_list(gate.settings, gate.store, NOT_ENROLLED, now)
    finally:
        await gate.store.close()
    assert short.status == "fail" and "2 tickets held, 3 loaded" in short.detail
    assert untrusted.status == "fail" and "a key this gate distrusts" in untrusted.detail


async def test_keys_green_then_red_without_an_active_key(tmp_path: Path) -> None:
    gate = await _gate(tmp_path)
    try:
        good = await local.check_keys(gate.store)
        await _sql(gate, "UPDATE keys SET status = 'retired'")
        retired = await local.check_keys(gate.store)
        await _sql(gate, "UPDATE keys SET status = 'active', event_id = 99, trusted = 1")
        other_event = await local.check_keys(gate.store)
    finally:
        await gate.store.close()
    assert good.status == "ok" and good.figure.startswith(f"1 trusted; event {EVENT}: ")
    assert (retired.status, retired.figure) == ("fail", "no trusted key")
    assert other_event.status == "fail" and "no active ticket key" in other_event.detail


async def _scan(gate: RealGate, at: float) -> None:
    await gate.store.record_scan(
        JournalEntry(
            direction="in", outcome="deny", reason="unknown", scanned_at=at, via="scanner", gate="B"
        )
    )


async def test_the_journal_is_green_drained_amber_young_and_red_old(tmp_path: Path) -> None:
    gate = await _gate(tmp_path)
    now = time.time()
    try:
        drained = await local.check_journal(gate.store, ENROLLED, True, now)
        await _scan(gate, now - 5)
        young = await local.check_journal(gate.store, ENROLLED, True, now)
        await _scan(gate, now - 7200)
        old = await local.check_journal(gate.store, ENROLLED, True, now)
        alone = await local.check_journal(gate.store, NOT_ENROLLED, False, now)
    finally:
        await gate.store.close()
    assert (drained.status, drained.figure) == ("ok", "drained, syncd holds seq 4")
    assert young.status == "warn" and young.figure == "1 scans not at syncd, oldest 5 s"
    assert old.status == "fail" and old.figure == "2 scans not at syncd, oldest 2.0 h"
    assert (alone.status, alone.figure) == ("skip", "2 scans kept here")


def _disk(tmp_path: Path, scans: int, hours: float) -> GateSettings:
    return GateSettings(data_dir=tmp_path, parts=[DrillSettings(scans_per_hour=scans, hours=hours)])


def test_the_disk_is_red_without_room_for_the_day_amber_below_twice_it(tmp_path: Path) -> None:
    free = shutil.disk_usage(tmp_path).free
    room = _disk(tmp_path, 100, 1)
    assert local.check_disk(room).status == "ok"
    huge = _disk(tmp_path, 1_000_000, 168)  # 172 TB
    red = local.check_disk(huge)
    assert red.status == "fail" and "168 h at 1,000,000 scans/h need" in red.figure
    # a day that needs three quarters of what is free: room, but not twice
    hours = (free * 0.75 - local.RESERVE_BYTES) / (1_000_000 * local.BYTES_PER_SCAN)
    assert 0 < hours <= 168, "this test needs a disk with 0.1 to 230 TB free"
    assert local.check_disk(_disk(tmp_path, 1_000_000, hours)).status == "warn"


def _script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text(f"#!{sys.executable}\nimport os, sys, time\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _hooks(tmp_path: Path, admit: str = "", deny: str = "", timeout: float = 5) -> GateSettings:
    return GateSettings(
        data_dir=tmp_path, parts=[HookSettings(on_admit=admit, on_deny=deny, timeout=timeout)]
    )


async def test_hooks_fire_with_the_drill_marker(tmp_path: Path) -> None:
    seen = tmp_path / "seen.txt"
    record = (
        f"open({str(seen)!r}, 'a').write(' '.join(os.environ[k] for k in"
        " ('TESSERA_OUTCOME', 'TESSERA_REASON', 'TESSERA_DRILL')) + '|' +"
        " os.environ['TESSERA_TICKET_ID'] + '\\n')"
    )
    hook = _script(tmp_path, "buzzer", record)
    item = await local.check_hooks(_hooks(tmp_path, f"{hook} --token s3cret", hook))
    assert item.status == "ok", item
    assert item.figure.startswith("admit exit 0 in ") and "; deny exit 0 in " in item.figure
    assert sorted(seen.read_text().splitlines()) == ["admit drill 1|", "deny drill 1|"]
    assert "s3cret" not in item.figure + item.detail and "buzzer" not in item.figure


async def test_a_failing_missing_or_hanging_hook_is_red(tmp_path: Path) -> None:
    failing = _script(tmp_path, "relay", "sys.exit(3)")
    hanging = _script(tmp_path, "stuck", "time.sleep(60)")
    item = await local.check_hooks(_hooks(tmp_path, failing, "/nonexistent/buzzer"))
    assert item.status == "fail" and "admit exit 3 in" in item.figure
    assert "deny cannot start (No such file or directory)" in item.figure
    started = time.monotonic()
    stuck = await local.check_hooks(_hooks(tmp_path, hanging, timeout=0.5))
    assert stuck.status == "fail" and stuck.figure == "admit killed after 0.5 s"
    assert time.monotonic() - started < 30  # killed, not waited for (a hang guard)


async def test_no_hooks_is_skipped_not_red(tmp_path: Path) -> None:
    item = await local.check_hooks(GateSettings(data_dir=tmp_path))
    assert item.status == "skip"


@pytest.mark.parametrize(
    ("skew", "status"),
    [(0.3, "ok"), (-1.9, "ok"), (4.0, "warn"), (-30.0, "warn"), (400.0, "fail"), (-301.5, "fail")],
)
def test_the_clock_is_amber_beyond_the_warning_red_beyond_the_tolerance(
    skew: float, status: str
) -> None:
    settings = GateSettings()
    probe = network.Probe(ms=4, status=200, skew=skew, error=0.5)
    item = network._clock(settings, NOT_ENROLLED, probe, time.time())
    assert item.status == status, item
    assert ("behind" if skew > 0 else "ahead of") in item.figure


def test_an_unread_clock_is_amber_with_the_last_known_skew() -> None:
    state = SyncState(server_url="http://x", skew=1.25, last_push_at=time.time() - 600)
    item = network._clock(GateSettings(), state, network.Probe(failure="unreachable"), time.time())
    assert (
        item.status == "warn"
        and item.figure == "gate clock 1.2 s behind syncd at the last push, 10 min ago"
    )


async def test_peers_are_skipped_without_a_mesh_and_red_when_it_cannot_run(tmp_path: Path) -> None:
    """GATE_PEER_PORT unset: no mesh, skipped. Set on a gate with no peer certificate (enrolled
    before peers existed, or never): the mesh would stay off, so the drill says so in red."""
    from gate.peer.settings import PeerSettings

    gate = await _gate(tmp_path)
    try:
        off = await network.check_peers(GateSettings(data_dir=tmp_path), gate.store)
        mesh = GateSettings(data_dir=tmp_path, parts=[PeerSettings(port=8766)])
        broken = await network.check_peers(mesh, gate.store)
    finally:
        await gate.store.close()
    assert (off.status, off.detail) == ("skip", "GATE_PEER_PORT is unset")
    assert broken.status == "fail" and "no peer certificate" in broken.detail
