"""The staff PIN: hashed with scrypt, guessing locked out, sessions that end; `gate staff-pin`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from gate.__main__ import cli
from gate.feedback.display_settings import DisplaySettings
from gate.feedback.staff import (
    MAX_LOCKOUT,
    PinGuard,
    PinHash,
    PinHashError,
    StaffSessions,
    hash_pin,
)
from tessera_dev.sample_event import Clock


def test_a_pin_hash_verifies_only_its_pin_and_round_trips() -> None:
    made = hash_pin("2468")
    again = PinHash.parse(str(made))
    assert again == made and again.verify("2468")
    assert not again.verify("2469") and not again.verify("") and not again.verify("24680")
    assert hash_pin("2468").salt != made.salt  # salted: the same PIN, another hash


@pytest.mark.parametrize("pin", ["123", "x" * 65])
def test_a_pin_too_short_or_too_long_is_refused(pin: str) -> None:
    with pytest.raises(ValueError, match="4 to 64"):
        hash_pin(pin)


@pytest.mark.parametrize(
    "text",
    [
        "1234",
        "scrypt:16384:8:1:zz:00",
        "scrypt:16383:8:1:00112233445566778899:00112233445566778899aabbccddeeff",
        "scrypt:16384:8:1:00:00112233445566778899aabbccddeeff",
        "pbkdf2:16384:8:1:00112233445566778899:00112233445566778899aabbccddeeff",
    ],
)
def test_only_a_real_hash_is_a_staff_pin_setting(text: str) -> None:
    with pytest.raises(PinHashError):
        PinHash.parse(text)


def test_the_pin_itself_in_the_setting_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Someone puts GATE_STAFF_PIN=739164: the gate refuses to start and the PIN is not logged."""
    monkeypatch.setenv("GATE_STAFF_PIN", "739164")
    with pytest.raises(ValidationError) as caught:
        DisplaySettings()
    assert "GATE_STAFF_PIN" in str(caught.value) and "gate staff-pin" in str(caught.value)
    assert "739164" not in str(caught.value)
    monkeypatch.setenv("GATE_STAFF_PIN", str(hash_pin("739164")))
    pin = DisplaySettings().pin_hash()
    assert pin is not None and pin.verify("739164")


def test_wrong_pins_lock_out_for_longer_each_round() -> None:
    clock = Clock()
    guard = PinGuard(max_failures=3, lockout=30, clock=clock)
    for _ in range(2):
        guard.failed()
    assert guard.retry_after() == 0
    guard.failed()
    assert guard.retry_after() == 30
    clock.now += 30
    assert guard.retry_after() == 0
    for _ in range(3):
        guard.failed()
    assert guard.retry_after() == 60  # the second round doubles
    for _ in range(30):
        guard.failed()
    assert guard.retry_after() == MAX_LOCKOUT
    guard.succeeded()
    assert guard.retry_after() == 0


def test_sessions_expire_end_and_stay_bounded() -> None:
    clock = Clock()
    sessions = StaffSessions(lifetime=60, limit=3, clock=clock)
    first = sessions.start()
    assert sessions.remaining(first) == 60 and sessions.remaining("forged") == 0
    clock.now += 59.5
    assert sessions.remaining(first) == 0.5
    clock.now += 1
    assert sessions.remaining(first) == 0 and sessions.remaining(None) == 0
    tokens = [sessions.start() for _ in range(5)]
    assert [sessions.remaining(t) > 0 for t in tokens] == [False, False, True, True, True]
    sessions.end(tokens[-1])
    assert sessions.remaining(tokens[-1]) == 0


def test_gate_staff_pin_prints_a_hash_never_the_pin() -> None:
    result = CliRunner().invoke(cli, ["staff-pin"], input="739164\n739164\n")
    assert result.exit_code == 0, result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("GATE_STAFF_PIN=scrypt:") and "739164" not in line
    assert PinHash.parse(line.removeprefix("GATE_STAFF_PIN=")).verify("739164")
    mismatch = CliRunner().invoke(cli, ["staff-pin"], input="739164\n739165\n\n")
    assert "GATE_STAFF_PIN=" not in mismatch.output
    short = CliRunner().invoke(cli, ["staff-pin", "--pin", "12"])
    assert short.exit_code == 2 and "4 to 64" in short.output


def test_gate_run_with_the_pin_itself_in_the_setting_refuses_to_start(tmp_path: Path) -> None:
    """`gate run` names GATE_STAFF_PIN and exits; the PIN appears in no output (the journal)."""
    env = {**os.environ, "GATE_DATA_DIR": str(tmp_path), "GATE_STAFF_PIN": "739164"}
    run = subprocess.run(
        [sys.executable, "-m", "gate", "run", "--source", "kiosk"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 1 and "GATE_STAFF_PIN" in run.stderr
    assert "739164" not in run.stderr + run.stdout
