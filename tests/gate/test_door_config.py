"""Issue 13 where its branches met: the kiosk's settings under H4's strict GATE_* check, the
documented env example taken as it is written, and ``--source stdin`` under systemd.

Every test runs a real ``gate`` subprocess on a real SQLite database.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from gate.feedback.staff import hash_pin
from tests.gate.scan.rungate import RunningGate, prepared

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "env" / "gate.env.example"
UNIT = ROOT / "deploy" / "gate" / "tessera-gate.service"
_LINE = re.compile(r"^(?:#\s*)?(GATE_[A-Z0-9_]+)=(.*)$")


def _gate(
    data: Path, *args: str, env: dict[str, str], stdin: IO[bytes] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("GATE_")}
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        capture_output=True,
        text=True,
        env={**clean, "GATE_DATA_DIR": str(data), **env},
        stdin=stdin,
        input=None if stdin is not None else "",
        timeout=60,
    )


def example_lines() -> dict[str, str]:
    """Every NAME=value line of the example, commented or not, as systemd would read it."""
    found = {}
    for line in EXAMPLE.read_text().splitlines():
        if match := _LINE.match(line.strip()):
            found[match[1]] = match[2].strip().strip('"')
    return found


def test_gate_run_starts_with_the_staff_pin_hash_set(tmp_path: Path) -> None:
    """Scenario: H4 made unknown GATE_* variables fatal, and GATE_STAFF_PIN (an alias outside
    the GATE_DISPLAY_ prefix) counted as unknown: `gate run` refused every gate with a PIN
    ("did you mean GATE_DISPLAY_STAFF_PIN?"), so no kiosk could ever offer staff actions."""
    data = prepared(tmp_path)
    pin = str(hash_pin("739164"))
    check = _gate(data, "run", "--check-config", env={"GATE_STAFF_PIN": pin})
    assert check.returncode == 0, check.stderr
    gate = RunningGate(data, "kiosk", display_enabled="true", display_port="0", staff_pin=pin)
    gate.wait_for_log("gate started")
    code, stderr, _ = gate.stop(signal.SIGTERM)
    assert code == 0, stderr
    assert "no such setting" not in stderr


def test_a_plain_pin_is_refused_under_its_own_name(tmp_path: Path) -> None:
    """Scenario: the PIN itself in GATE_STAFF_PIN was reported as GATE_DISPLAY_GATE_STAFF_PIN,
    a variable that does not exist; the message names GATE_STAFF_PIN and never the PIN."""
    done = _gate(tmp_path, "run", "--check-config", env={"GATE_STAFF_PIN": "739164"})
    assert done.returncode == 1
    assert "  GATE_STAFF_PIN: " in done.stderr and "GATE_DISPLAY_GATE" not in done.stderr
    assert "739164" not in done.stderr + done.stdout


def test_every_line_of_the_env_example_is_accepted_as_written(tmp_path: Path) -> None:
    """Scenario: an operator uncomments the example's lines as they stand; `GATE_REENTRY=`,
    `GATE_CAMERA_FPS=` or `GATE_CAMERA_ROI=` ("Default: unset") stopped the gate with "Input
    should be a valid number", and `GATE_CREDENTIAL_FILE=` became the folder "."."""
    data = prepared(tmp_path)
    env = {**example_lines(), "GATE_DATA_DIR": str(data), "GATE_STAFF_PIN": str(hash_pin("7391"))}
    assert {"GATE_REENTRY", "GATE_CAMERA_FPS", "GATE_STAFF_PIN", "GATE_EVDEV_LAYOUT"} <= set(env)
    done = _gate(data, "run", "--check-config", env=env)
    assert done.returncode == 0, done.stderr
    assert '"credential_file": null' in done.stdout and '"reentry": null' in done.stdout


def test_a_bad_part_setting_is_named_once_and_rightly(tmp_path: Path) -> None:
    """Scenario: GATE_CAMERA_FPS=banana was reported twice, the second time as GATE_FPS, a
    variable that does not exist (the part's error surfaced again through GateSettings)."""
    done = _gate(tmp_path, "run", "--check-config", env={"GATE_CAMERA_FPS": "banana"})
    assert done.returncode == 1
    named = re.findall(r"^  (GATE_[A-Z_]+):", done.stderr, re.MULTILINE)
    assert named == ["GATE_CAMERA_FPS"], done.stderr


def test_an_endless_hold_on_the_screen_is_refused_at_start(tmp_path: Path) -> None:
    """Scenario: GATE_DISPLAY_HOLD_SECONDS=inf passed the check, then every decision failed in
    the kiosk sink (int(inf) is an OverflowError) and the screen showed nothing at all."""
    for name in ("GATE_DISPLAY_HOLD_SECONDS", "GATE_DISPLAY_STATUS_INTERVAL"):
        done = _gate(tmp_path, "run", "--check-config", env={name: "inf"})
        assert done.returncode == 1 and f"  {name}: " in done.stderr, done.stderr


def test_check_config_needs_no_standard_input(tmp_path: Path) -> None:
    """Scenario: `gate run --check-config` (default source stdin) from a unit or a cron job,
    standard input /dev/null: it checks, it does not refuse for want of a scanner."""
    with open(os.devnull, "rb") as null:
        done = _gate(prepared(tmp_path), "run", "--check-config", env={}, stdin=null)
    assert done.returncode == 0, done.stderr


def test_source_stdin_on_dev_null_refuses_instead_of_a_restart_loop(tmp_path: Path) -> None:
    """Scenario: under systemd standard input is /dev/null: `gate run --source stdin` read end
    of input at once and exited 0, and Restart=always started it again every 2 s forever.
    Now it exits 2 naming the sources that work there, and the unit does not restart on 2."""
    data = prepared(tmp_path)
    with open(os.devnull, "rb") as null:
        done = _gate(data, "run", "--source", "stdin", env={}, stdin=null)
    assert done.returncode == 2
    assert "serial:PATH, evdev:PATH or kiosk" in done.stderr and "Traceback" not in done.stderr
    assert "RestartPreventExitStatus=2" in UNIT.read_text()
    piped = _gate(data, "run", "--source", "stdin", env={"GATE_DISPLAY_ENABLED": "false"})
    assert piped.returncode == 0, piped.stderr  # a pipe (here at its end) is still fine
