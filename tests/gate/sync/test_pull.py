"""Pull: pages apply atomically, another gate's admission is refused here, snapshots replace
the list without a half state, a revoked credential stops sync and scanning."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest

from gate import commands
from gate.store.syncstate import ChangeError, apply_changes, read_sync_state
from gate.sync.client import AuthRejectedError as AuthRejected
from gate.sync.status import sync_summary
from gate.sync.worker import REVOKED
from shared.bundle import BundleTicket
from shared.errors import RejectReason
from shared.protocol import Change, ChangesPage, CheckinChange, KeyInfo, TicketChange
from tessera_dev.sample_event import KEY, SAT_18, bundle_key, code
from tests.gate.sync.fakesyncd import CREDENTIAL, FakeSyncd
from tests.gate.sync.kit import SERVER, Gate, enrolled_gate, settings_for


def admitted_at_a(ticket_id: int, at: float = SAT_18 - 60) -> Change:
    checkin = CheckinChange(
        ticket_id=ticket_id, gate_id=1, gate_name="Gate A", direction="in", at=at
    )
    return Change(seq=0, kind="checkin.in", checkin=checkin)


def ticket(ticket_id: int, nonce: int, status: str = "valid", kind: str = "added") -> Change:
    t = TicketChange(ticket_id=ticket_id, nonce=nonce, status=status, zone=1, category="GA")  # type: ignore[arg-type]
    return Change(seq=0, kind=f"ticket.{kind}", ticket=t)


async def tickets(gate: Gate) -> list[tuple[int, int, int]]:
    rows = await gate.store.conn.execute_fetchall(
        "SELECT ticket_id, nonce, status FROM tickets ORDER BY ticket_id"
    )
    return [tuple(r) for r in rows]  # type: ignore[misc]


async def test_enrol_stores_a_0600_credential_pins_keys_and_loads_the_list(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        cred = gate.settings.credential_path
        assert cred.read_text().strip() == CREDENTIAL
        assert stat.S_IMODE(cred.stat().st_mode) == 0o600
        assert CREDENTIAL not in caplog.text
        state = await read_sync_state(gate.store)
        assert (state.gate_id, state.event_id, state.cursor) == (2, 7, "0")
        assert state.snapshot_at is not None and len(await tickets(gate)) == 6
        assert [k.hex() for k in await gate.store.trusted_keyring()] == [bundle_key(KEY).kid]
        assert not (tmp_path / "snapshot.partial").exists()


async def test_a_used_enrolment_code_is_refused(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake):
        pass
    with pytest.raises(AuthRejected):
        await commands.enroll(
            settings_for(tmp_path / "other"), SERVER, "CODE-1", transport=fake.transport()
        )
    assert not (tmp_path / "other" / "credential").exists()


async def test_a_ticket_admitted_at_gate_a_is_refused_here_after_a_pull(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        fake.feed.append(admitted_at_a(1))
        assert await gate.worker.pull_once() == 1
        decision = await gate.pipeline.process(code(1, 11))
        assert decision.reason == RejectReason.already_inside
        assert "Gate A" in decision.message
        assert (await read_sync_state(gate.store)).cursor == "1"


async def test_own_checkins_in_the_feed_are_not_applied_twice(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        await gate.pipeline.process(code(1, 11))
        mine = CheckinChange(
            ticket_id=1, gate_id=2, gate_name="Gate B", direction="in", at=SAT_18 + 5
        )
        fake.feed.append(Change(seq=1, kind="checkin.in", checkin=mine))
        await gate.worker.pull_once()
        rows = await gate.store.conn.execute_fetchall("SELECT entries FROM entry_state")
        assert [r[0] for r in rows] == [1]


async def test_list_changes_apply_reissue_revoke_and_new_tickets(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        fake.feed += [
            ticket(1, 99, kind="reissued"),
            ticket(5, 55, "revoked", "revoked"),
            ticket(42, 4242),
        ]
        assert await gate.worker.pull_once() == 3
        old_qr = await gate.pipeline.process(code(1, 11))
        assert old_qr.reason == RejectReason.reissued
        assert (await gate.pipeline.process(code(5, 55))).reason == RejectReason.revoked
        assert (await gate.pipeline.process(code(42, 4242))).admitted
        assert gate.store.events[7].ticket_count == 6  # reloaded below
        await gate.store.refresh()
        assert gate.store.events[7].ticket_count == 7


async def test_a_page_that_fails_midway_changes_nothing(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        before = await tickets(gate)
        bad_key = KeyInfo(kid="00000000", public_key="A" * 43)
        page = ChangesPage(
            cursor="3",
            changes=[
                ticket(1, 99, kind="reissued"),
                admitted_at_a(2),
                Change(seq=3, kind="key.added", key=bad_key),
            ],
        )
        with pytest.raises(ChangeError):
            await apply_changes(gate.store, page, now=SAT_18)
        assert await tickets(gate) == before
        assert not list(await gate.store.conn.execute_fetchall("SELECT * FROM entry_state"))
        assert (await read_sync_state(gate.store)).cursor == "0"


async def test_long_pages_are_followed_and_a_quick_empty_answer_pauses(tmp_path: Path) -> None:
    fake = FakeSyncd(page_size=2)
    async with enrolled_gate(tmp_path, fake, long_poll=20, idle_pause=1.5) as gate:
        fake.feed += [ticket(100 + i, i) for i in range(5)]
        applied = [await gate.worker.pull_once() for _ in range(4)]
        assert applied == [2, 2, 1, 0]
        assert gate.sleeps.seen == [1.5]  # only after the empty answer that came back at once


async def test_snapshot_required_reloads_list_and_presence(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        fake.feed += [ticket(1, 11, kind="updated")] * 3
        fake.floor = 3  # the gate's cursor "0" is too old now
        fake.tickets = [*fake.tickets[:5], BundleTicket(77, 7, "valid", 1, "GA", "New")]
        fake.inside = [admitted_at_a(2).checkin]  # type: ignore[list-item]
        await gate.worker.pull_once()
        ids = [t[0] for t in await tickets(gate)]
        assert ids == [1, 2, 3, 4, 5, 77]
        assert (await read_sync_state(gate.store)).cursor == "3"
        assert (await gate.pipeline.process(code(2, 22))).reason == RejectReason.already_inside
        tables = await gate.store.conn.execute_fetchall(
            "SELECT name FROM sqlite_master WHERE name = 'tickets_staging'"
        )
        assert not list(tables)


async def test_a_forged_snapshot_leaves_the_old_list(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    import tests.gate.sync.fakesyncd as fakemod

    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        before = await tickets(gate)
        fake.floor = 1
        fake.tickets = [BundleTicket(666, 6)]
        real = fakemod.KEY
        fakemod.KEY = Ed25519PrivateKey.generate()
        try:
            with pytest.raises(Exception, match="untrusted key"):
                await gate.worker.pull_once()
        finally:
            fakemod.KEY = real
        assert await tickets(gate) == before


async def test_a_revoked_credential_stops_sync_cleanly_and_scanning_with_it(
    tmp_path: Path,
) -> None:
    """Wipe on revoke (issue 18): a revoked gate stops syncing without a crash loop and
    refuses the next scan; the scan it made before stays in its journal, unsynced."""
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        fake.revoked = True  # the organiser revokes the gate
        await gate.pipeline.process(code(1, 11))
        await gate.worker.run()  # returns: no crash loop (no credential file to wait for)
        assert gate.worker.status.state == "revoked"
        assert gate.worker.status.last_error == REVOKED
        assert len(fake.requests) <= 4 + 2  # enrolment's four, then one push and one pull
        refused = await gate.pipeline.process(code(2, 22))
        assert (refused.outcome, refused.reason) == ("deny", RejectReason.gate_revoked)
        summary = await sync_summary(gate.store, gate.settings, SAT_18)
        assert summary["state"] == "revoked" and summary["backlog"] == 1
        assert summary["holder_data"] == "deleted"


async def test_status_reports_online_backlog_and_skew(tmp_path: Path) -> None:
    fake = FakeSyncd()
    async with enrolled_gate(tmp_path, fake) as gate:
        await gate.pipeline.process(code(1, 11))
        summary = await sync_summary(gate.store, gate.settings, SAT_18)
        assert summary["backlog"] == 1 and summary["skew_s"] is None
        await gate.worker.drain()
        summary = await sync_summary(gate.store, gate.settings, SAT_18 + 1)
        assert summary["state"] == "online" and summary["backlog"] == 0
        assert summary["skew_s"] == pytest.approx(1_781_366_400.0 - SAT_18)
        text = commands.format_status({**(await commands.status(gate.settings))})
        assert "Sync:" in text and "backlog 0" in text
