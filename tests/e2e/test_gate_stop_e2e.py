"""A stop of an enrolled kiosk gate (real syncd, Postgres, RabbitMQ) while the kiosk page holds
an open staff session and its event stream, and while a push to a hung syncd is in flight.

syncd is frozen with SIGSTOP, so the gate's TCP connections are accepted by the kernel and
never answered: the push waits (GATE_SYNC_TIMEOUT is 60 s here). A SIGTERM must still exit 0
well before that: the scan is committed and shown, the push in flight is abandoned (it stays
in the journal for the next start), and nothing is cut.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import subprocess
import sys
import time

from playwright.async_api import Browser, expect

from gate.feedback.staff import hash_pin
from tests.e2e.event_stack import Stack, stack
from tests.e2e.stack import Gate, eventually
from tests.gate.feedback.conftest import unlock
from tests.gate.feedback.test_wedge import free_port, scan, wait_for_page
from tests.support.chromium import chromium_browser

__all__ = ["chromium_browser", "stack"]  # fixtures (chromium_browser is "browser"), used by name
PIN = "739164"
PUSHED = "SELECT 1 FROM checkins c JOIN gates g USING (gate_id) WHERE g.name = 'Door K'"
STOP_BOUND = 10  # a hang guard far below the 60 s push timeout, not a speed figure


def start_kiosk_gate(stack: Stack, port: int) -> tuple[Gate, subprocess.Popen[str]]:
    created = stack.api.post(f"/api/v1/events/{stack.event_id}/gates", json={"name": "Door K"})
    gate = Gate("Door K", stack.tmp / "door-k", f"http://127.0.0.1:{stack.net.port}")
    gate.enroll(created.json()["code"])
    env = {
        **gate._env(),
        "GATE_DISPLAY_PORT": str(port),
        "GATE_STAFF_PIN": str(hash_pin(PIN)),
        "GATE_SYNC_TIMEOUT": "60",
        "GATE_LOG_LEVEL": "INFO",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate", "run", "--source", "kiosk"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    return gate, proc


def stop_and_time(proc: subprocess.Popen[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        _out, err = proc.communicate(timeout=STOP_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err, time.monotonic() - started


async def test_sigterm_with_a_staff_session_open_and_a_push_in_flight_exits_0(
    stack: Stack, browser: Browser
) -> None:
    """Scenario: systemctl stop while staff are signed in on the kiosk page (its event stream
    open) and the gate's push hangs on an unresponsive syncd: the gate exits 0 at once, the
    scans it showed are in its journal, and the one syncd never acknowledged is still there to
    push after the restart."""
    port = free_port()
    gate, proc = await asyncio.to_thread(start_kiosk_gate, stack, port)
    assert stack.syncd.proc is not None
    try:
        url = f"http://127.0.0.1:{port}/"
        await wait_for_page(url, proc)
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.goto(url)
        await unlock(page, PIN)
        await scan(page, stack.codes[0])
        await expect(page.locator("#verdict")).to_have_text("ADMIT")
        await asyncio.to_thread(eventually, lambda: stack.sql(PUSHED), "first scan pushed")
        stack.syncd.proc.send_signal(signal.SIGSTOP)
        await page.locator("body").click(position={"x": 5, "y": 5})  # focus off the search box
        await scan(page, stack.codes[1])
        await expect(page.locator("#verdict")).to_have_text("ADMIT")
        await asyncio.sleep(1.5)  # the push of the second scan is now waiting on syncd
        code, err, took = await asyncio.to_thread(stop_and_time, proc)
        await page.close()
    finally:
        stack.syncd.proc.send_signal(signal.SIGCONT)
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"stop took {took:.2f} s")
    assert code == 0, err
    assert "Traceback" not in err and "Fatal Python error" not in err
    with sqlite3.connect(gate.data_dir / "gate.sqlite3") as db:
        rows = db.execute("SELECT seq, decision, via FROM journal ORDER BY seq").fetchall()
        (acked,) = db.execute("SELECT acked_seq FROM sync_state").fetchone()
    assert rows == [(1, "admit", "kiosk"), (2, "admit", "kiosk")]
    # The second scan's push never got an answer: it waits in the journal, never marked synced
    # (whether the first push was answered before syncd froze depends on the machine's load).
    assert acked <= 1
