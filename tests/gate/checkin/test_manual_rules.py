"""Every decision rule on every path: a QR scan, `gate admit` (a subprocess) and the kiosk's
/api/admit (HTTP on the real display app).

Regression for issue 13.1: a manual admit let expired and not-yet-valid tickets in, because the
gate's list had no validity dates. The list now carries them and a manual admit applies every
rule of docs/design.md section 2 except the signature. "Reissued" (the nonce) needs a code, so it is
a QR-only rule: a manual admit has no nonce to compare (tested for the QR path only).

The kiosk test posts to /api/admit as the page does, with no staff credential: this branch's
kiosk takes none. ``kiosk_admit`` is the one place to add it once the staff PIN lands.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from gate.checkin.messages import day_time
from gate.feedback.display import Display
from gate.feedback.display_backend import PipelineBackend
from gate.feedback.display_settings import DisplaySettings
from gate.store.db import Store
from shared.bundle import BundleTicket
from tessera_dev.sample_event import Clock, bundle_bytes, code, loaded_store, pipeline
from tests.gate.feedback.conftest import PIN, PIN_HASH
from tests.gate.test_cli import gate

NOW = int(time.time())
HOUR = 3600
MAIN, VIP = 0b01, 0b10
# ticket id -> (list row, what every path must decide)
LIST = {
    1: (BundleTicket(1, 11, "valid", MAIN, "GA", "Ada"), None),
    2: (BundleTicket(2, 22, "valid", MAIN, "GA", "Bo", 0, NOW - HOUR), "expired"),
    3: (BundleTicket(3, 33, "valid", MAIN, "GA", "Cy", NOW + 24 * HOUR, 0), "not_yet_valid"),
    4: (BundleTicket(4, 44, "revoked", MAIN, "GA", "Di"), "revoked"),
    5: (BundleTicket(5, 55, "blocked", MAIN, "GA", "Ed"), "blocked"),
    6: (BundleTicket(6, 66, "valid", VIP, "VIP", "Flo"), "wrong_zone"),
    7: (BundleTicket(7, 77, "valid", MAIN, "GA", "Gus"), "already_inside"),
}
UNKNOWN = 99
CASES = [(tid, reason) for tid, (_, reason) in LIST.items()] + [(UNKNOWN, "unknown_ticket")]
IDS = [reason or "admit" for _, reason in CASES]


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    """A gate folder with LIST loaded and ticket 7 already inside (admitted by a scan)."""
    data = bundle_bytes([row for row, _ in LIST.values()])
    store = await loaded_store(tmp_path / "data" / "gate.sqlite3", data)
    try:
        first = await pipeline(store, Clock(time.time()), zones=["Main"]).process(_code(7))
        assert first.admitted
    finally:
        await store.close()
    return tmp_path / "data"


def _code(ticket_id: int, nonce: int | None = None) -> str:
    """The QR of a ticket as issued: its signed fields are the list row's."""
    row = LIST[ticket_id][0] if ticket_id in LIST else BundleTicket(ticket_id, 9)
    return code(
        ticket_id,
        row.nonce if nonce is None else nonce,
        zone=row.zone,
        valid_from=row.valid_from,
        valid_until=row.valid_until,
    )


def _reason(decision: dict[str, object]) -> object:
    return decision["reason"] if decision["decision"] == "deny" else None


@pytest.mark.parametrize(("ticket_id", "reason"), CASES, ids=IDS)
async def test_rule_on_a_qr_scan(data_dir: Path, ticket_id: int, reason: str | None) -> None:
    store = await Store.open(data_dir / "gate.sqlite3")
    try:
        scans = pipeline(store, Clock(time.time()), zones=["Main"])
        decision = (await scans.process(_code(ticket_id))).to_json()
    finally:
        await store.close()
    assert _reason(decision) == reason and decision["ticket_id"] == ticket_id


async def test_reissued_on_a_qr_scan(data_dir: Path) -> None:
    """The nonce rule needs a code: an old QR of ticket 1 is refused as reissued."""
    store = await Store.open(data_dir / "gate.sqlite3")
    try:
        scans = pipeline(store, Clock(time.time()), zones=["Main"])
        decision = await scans.process(_code(1, nonce=10))
    finally:
        await store.close()
    assert decision.reason is not None and decision.reason.value == "reissued"


def gate_admit(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATE_DATA_DIR": str(data_dir), "GATE_NAME": "Gate B"}
    env["GATE_ZONES"] = "Main"
    return subprocess.run(
        [sys.executable, "-m", "gate", "admit", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


@pytest.mark.parametrize(("ticket_id", "reason"), CASES, ids=IDS)
def test_rule_on_gate_admit(data_dir: Path, ticket_id: int, reason: str | None) -> None:
    result = gate_admit(data_dir, str(ticket_id))
    decision = json.loads(result.stdout)
    assert _reason(decision) == reason, decision
    assert result.returncode == (0 if reason is None else 1)
    assert (decision["via"], decision["ticket_id"]) == ("manual", ticket_id)
    assert isinstance(decision["seq"], int)  # recorded, admit or deny


@pytest.fixture
async def kiosk(data_dir: Path) -> AsyncIterator[Display]:
    store = await Store.open(data_dir / "gate.sqlite3")
    display = Display(DisplaySettings(port=0, status_interval=0.2, staff_pin=PIN_HASH))
    display.backend = PipelineBackend(pipeline(store, Clock(time.time()), zones=["Main"]))
    await display.start()
    try:
        yield display
    finally:
        await display.stop()
        await store.close()


async def kiosk_admit(display: Display, ticket_id: int) -> dict[str, object]:
    """What the page sends: the staff PIN (a session cookie), then "Admit"."""
    jar = aiohttp.CookieJar(unsafe=True)  # keeps the 127.0.0.1 cookie as a browser does
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.post(display.url + "api/staff/login", json={"pin": PIN}) as resp:
            assert resp.status == 200, await resp.text()
        async with http.post(display.url + "api/admit", json={"ticket_id": ticket_id}) as resp:
            assert resp.status == 200, await resp.text()
            return dict(await resp.json())


@pytest.mark.parametrize(("ticket_id", "reason"), CASES, ids=IDS)
async def test_rule_on_the_kiosk(kiosk: Display, ticket_id: int, reason: str | None) -> None:
    decision = await kiosk_admit(kiosk, ticket_id)
    assert _reason(decision) == reason, decision
    assert decision["ticket_id"] == ticket_id


async def test_manual_window_forgives_the_clock_tolerance(tmp_path: Path) -> None:
    """A manual admit 30 s after valid_until passes with 60 s of tolerance, not with none;
    30 s before valid_from likewise: the same grace the QR path gives."""
    until, since = NOW - 30, NOW + 30
    rows = [BundleTicket(1, 1, valid_until=until), BundleTicket(2, 2, valid_from=since)]
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(rows))
    try:
        strict = pipeline(store, Clock(NOW), clock_tolerance=0)
        assert [(await strict.manual_admit(t)).reason for t in (1, 2)] == [
            "expired",
            "not_yet_valid",
        ]
        lenient = pipeline(store, Clock(NOW), clock_tolerance=60)
        assert all([(await lenient.manual_admit(t)).admitted for t in (1, 2)])
    finally:
        await store.close()


async def test_manual_denial_names_the_window_in_the_event_time(tmp_path: Path) -> None:
    """Door staff read when the ticket becomes valid, in the event's time zone."""
    sat_18 = 1781366400  # Sat 2026-06-13 18:00 Europe/Berlin
    rows = [BundleTicket(1, 1, valid_from=sat_18)]
    store = await loaded_store(tmp_path / "gate.sqlite3", bundle_bytes(rows))
    try:
        decision = await pipeline(store, Clock(sat_18 - 86_400)).manual_admit(1)
    finally:
        await store.close()
    assert decision.message == "Not valid until Sat 18:00"


def test_lookup_shows_the_window_before_an_admit(data_dir: Path) -> None:
    """Door staff see why a ticket will be refused before they press admit."""
    done = gate(data_dir.parent, "lookup", "Bo")
    assert f"valid until {day_time(NOW - HOUR, 'Europe/Berlin')}" in done.stdout, done.stderr
    plain = gate(data_dir.parent, "lookup", "Ada").stdout
    assert "#1  Ada" in plain and "valid from" not in plain and "valid until" not in plain
