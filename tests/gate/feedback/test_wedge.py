"""A keyboard-wedge scanner typing into the kiosk page of a real `gate run` process.

The gate runs as a subprocess on a real SQLite list, with no terminal: as ``gate run --source
kiosk``, with exactly the arguments of deploy/gate/tessera-gate.service (``--source camera``,
here with the camera unplugged), and as a stdin gate (the page serves every source). Chromium
types codes with ``page.keyboard.type`` then Enter, as a USB scanner does; the ADMIT must be on
the screen and in the journal.
"""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from gate.feedback.display_api import MAX_SCAN_CHARS
from tessera_dev.sample_event import code, loaded_store

ROOT = Path(__file__).resolve().parents[3]
GATE_UNIT = ROOT / "deploy" / "gate" / "tessera-gate.service"


def unit_arguments() -> list[str]:
    """The `gate` arguments of the appliance unit's ExecStart line."""
    line = next(x for x in GATE_UNIT.read_text().splitlines() if x.startswith("ExecStart="))
    argv = shlex.split(line.removeprefix("ExecStart="))
    assert argv[0].endswith("/bin/gate"), argv
    return argv[1:]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A gate folder with the kit's list (Ada Lovelace is ticket 1, Grace Hopper ticket 2)."""

    async def prepare() -> None:
        store = await loaded_store(tmp_path / "data" / "gate.sqlite3")
        await store.close()

    asyncio.run(prepare())
    return tmp_path / "data"


def start_gate(data_dir: Path, args: list[str], port: int) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "GATE_DATA_DIR": str(data_dir),
        "GATE_NAME": "Gate W",
        "GATE_DISPLAY_PORT": str(port),
        "GATE_CAMERA_SOURCE": "/dev/video97",  # the unit's camera: not plugged in here
    }
    return subprocess.Popen(
        [sys.executable, "-m", "gate", *args],
        stdin=subprocess.PIPE,  # kept open and silent; closing it ends a stdin gate
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


async def wait_for_page(url: str, proc: subprocess.Popen[str]) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(200):
            assert proc.poll() is None, proc.communicate()[1]
            try:
                async with http.get(url) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("the gate never served its kiosk page")


@pytest.fixture(
    params=[["run", "--source", "kiosk"], unit_arguments(), ["run", "--source", "stdin"]],
    ids=["kiosk", "unit", "stdin"],
)
def gate(
    request: pytest.FixtureRequest, data_dir: Path
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    proc = start_gate(data_dir, request.param, port)
    yield f"http://127.0.0.1:{port}/", proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


async def scan(page: Page, text: str) -> None:
    """What a wedge scanner does: type the code as keys, then Enter."""
    await page.keyboard.type(text)
    await page.keyboard.press("Enter")


async def test_a_wedge_scan_on_the_page_is_admitted_and_journaled(
    browser: Browser, data_dir: Path, gate: tuple[str, subprocess.Popen[str]]
) -> None:
    url, proc = gate
    await wait_for_page(url, proc)
    page = await browser.new_page(viewport={"width": 800, "height": 480})
    await page.goto(url)
    await expect(page.locator("#gate-name")).to_have_text("Gate W")
    await expect(page.locator("#staff-open")).to_be_hidden()  # no PIN set: no staff actions

    await scan(page, code(1, 11))
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await expect(page.locator("#holder")).to_have_text("Ada Lovelace")
    await scan(page, code(1, 11))  # a scanner that sends the code twice: one scan
    await scan(page, "x" * (MAX_SCAN_CHARS + 50))
    await expect(page.locator("#message")).to_have_text("Not a ticket")
    await page.keyboard.type("  " + code(2, 22))
    await page.keyboard.press("Tab")  # scanners often end with Tab or add spaces
    await page.keyboard.press("Enter")
    await expect(page.locator("#holder")).to_have_text("Grace Hopper")
    await expect(page.locator("#verdict")).to_have_text("ADMIT")
    await page.close()

    if "stdin" not in proc.args:
        proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=15)  # closes stdin: EOF ends a stdin gate
    assert proc.returncode == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    assert [(d["decision"], d["ticket_id"]) for d in printed] == [
        ("admit", 1),
        ("deny", None),
        ("admit", 2),
    ], err
    with sqlite3.connect(data_dir / "gate.sqlite3") as db:
        rows = db.execute("SELECT decision, reason, via, ticket_id FROM journal ORDER BY seq")
        assert rows.fetchall() == [
            ("admit", None, "kiosk", 1),
            ("deny", "not_a_ticket", "kiosk", None),
            ("admit", None, "kiosk", 2),
        ]
