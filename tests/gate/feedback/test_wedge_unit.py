"""`gate run` as deploy/gate/tessera-gate.service starts it serves a wedge scanner through the
kiosk page (issue 13's done-when), with the unit's whole environment, not only its arguments.

systemd is not running in the test machine, so the test does what the unit does: the ExecStart
command line (and the drop-in's ``--source kiosk`` line the unit documents), the unit's
``Environment=`` plus its ``EnvironmentFile`` (deploy/env/gate.env.example as setup-kiosk
installs it, quotes removed as systemd does, with the staff PIN hash the README tells operators
to add), standard input /dev/null (systemd's default) and no terminal. Only the data folder and
the port are moved into the test's own. Chromium types the code; the journal must say
via=kiosk. (The unit's ``User=tessera`` is not reproduced: the test's Python lives under
/root.)
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from gate.feedback.staff import hash_pin
from tessera_dev.sample_event import code
from tests.gate.feedback.test_wedge import GATE_UNIT, data_dir, free_port, scan, wait_for_page

__all__ = ["data_dir"]  # the fixture, used by name
ROOT = GATE_UNIT.parents[2]
EXAMPLE = ROOT / "deploy" / "env" / "gate.env.example"
_ACTIVE = re.compile(r"^(GATE_[A-Z0-9_]+)=(.*)$")


def unit_commands() -> dict[str, list[str]]:
    """The unit's ExecStart argv and the kiosk-only drop-in's, from the unit file."""
    lines = GATE_UNIT.read_text().splitlines()
    found = {}
    for line in lines:
        text = line.lstrip("#").strip()
        if text.startswith("ExecStart=/"):
            argv = shlex.split(text.removeprefix("ExecStart="))
            found["dropin" if line.startswith("#") else "unit"] = argv
    assert set(found) == {"unit", "dropin"}, found
    return found


def unit_environment() -> dict[str, str]:
    """Environment= then EnvironmentFile= (the example), as systemd reads them."""
    env: dict[str, str] = {}
    for line in GATE_UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            name, _, value = line.removeprefix("Environment=").partition("=")
            env[name] = value
        elif line.startswith("EnvironmentFile="):
            assert line.endswith("/etc/tessera/gate.env")
            for entry in EXAMPLE.read_text().splitlines():
                if match := _ACTIVE.match(entry.strip()):
                    env[match[1]] = match[2].strip().strip('"')
    return env


def start_unit(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "gate", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,  # no controlling terminal, as under systemd
    )


@pytest.mark.parametrize("which", ["unit", "dropin"])
async def test_the_unit_command_and_env_serve_a_wedge_scanner_on_the_page(
    browser: Browser, data_dir: Path, which: str
) -> None:
    """Scenario: the appliance as installed, with GATE_STAFF_PIN added as the README says: the
    unit's gate refused to start ("GATE_STAFF_PIN: no such setting") and Restart=always looped;
    now a code typed by a wedge scanner into the kiosk page is ADMIT and journaled via=kiosk,
    and SIGTERM (systemctl stop) exits 0."""
    argv = unit_commands()[which]
    assert argv[0] == "/opt/tessera/venv/bin/gate"
    port = free_port()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    env = {**clean, **unit_environment(), "GATE_STAFF_PIN": str(hash_pin("739164"))}
    assert env["GATE_NAME"] == "Gate A" and env["GATE_CAMERA_SOURCE"] == "/dev/video0"
    env |= {"GATE_DATA_DIR": str(data_dir), "GATE_DISPLAY_PORT": str(port)}
    proc = start_unit(argv[1:], env)
    try:
        url = f"http://127.0.0.1:{port}/"
        await wait_for_page(url, proc)
        page = await browser.new_page(viewport={"width": 800, "height": 480})
        await page.goto(url)
        await expect(page.locator("#gate-name")).to_have_text("Gate A")
        await expect(page.locator("#staff-open")).to_be_visible()  # the PIN is set
        await scan(page, code(1, 11) + " ")
        await expect(page.locator("#verdict")).to_have_text("ADMIT")
        await expect(page.locator("#holder")).to_have_text("Ada Lovelace")
        await page.close()
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    with sqlite3.connect(data_dir / "gate.sqlite3") as db:
        rows = db.execute("SELECT decision, via, ticket_id FROM journal ORDER BY seq").fetchall()
    assert rows == [("admit", "kiosk", 1)]
