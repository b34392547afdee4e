"""Scanner line sources through a real `gate run`: stdin (a pipe), serial (a pty), evdev (events).

Each source frames its bytes with the same rules (gate.scan.lines); these tests check that the
rules hold end to end, in decisions printed by a real gate process and rows in its journal.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tty
from pathlib import Path

import pytest

from gate.scan.device import parse_spec
from gate.scan.evdev_source import pack_events
from gate.scan.keymap import KEY_ENTER, PRESS, RELEASE
from gate.scan.serial_source import SerialSettings
from shared.errors import ConfigError
from tessera_dev.sample_event import code
from tests.gate.scan.rungate import RunningGate, journal, prepared
from tests.gate.scan.test_keymap import typed

NOT_A_TICKET = "not_a_ticket"


def _outcomes(decisions: list[dict[str, object]]) -> list[tuple[object, object]]:
    return [
        (d["decision"], d["ticket_id"] if d["decision"] == "admit" else d["reason"])
        for d in decisions
    ]


def test_stdin_follows_the_line_rules(tmp_path: Path) -> None:
    """Regression: trailing space/tab -> "Forged", CR-only merged two scans, 4 KiB pieces."""
    data_dir = prepared(tmp_path)
    scans = (
        f"{code(1, 11)} \t\n{code(2, 22)}\r{code(5, 55)}\r".encode()
        + b"x" * 100_000
        + b"\n"
        + b"j" * 4096
        + f"{code(6, 66)}\n{code(6, 66)}\r\n".encode()
    )
    run = subprocess.run(
        [sys.executable, "-m", "gate", "run", "--source", "stdin"],
        input=scans,
        capture_output=True,
        env={**os.environ, "GATE_DATA_DIR": str(data_dir), "GATE_DEBOUNCE_SECONDS": "0"},
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    decisions = [json.loads(line) for line in run.stdout.splitlines()]
    assert _outcomes(decisions) == [
        ("admit", 1),
        ("admit", 2),
        ("admit", 5),
        ("deny", NOT_A_TICKET),  # 100 kB of junk: one denial, not 25
        ("deny", NOT_A_TICKET),  # junk glued before a valid code: one denial, no admit
        ("admit", 6),
    ]
    assert [row[1] for row in journal(data_dir)] == ["admit"] * 3 + ["deny"] * 2 + ["admit"]


def test_serial_scanner_on_a_pty_with_cr_suffix_and_replug(tmp_path: Path) -> None:
    """A USB-CDC scanner: CR-only line ends, codes split across reads, unplugged and back."""
    data_dir = prepared(tmp_path)
    link = tmp_path / "ttyACM-scanner"  # a stable udev-like name for a changing device
    master, slave = os.openpty()
    tty.setraw(slave)
    link.symlink_to(os.ttyname(slave))
    gate = RunningGate(data_dir, f"serial:{link}?baud=115200")
    try:
        gate.wait_for_log("serial scanner connected")
        first = f"{code(1, 11)}\r{code(5, 55)}\r".encode()
        os.write(master, first[:30])
        os.write(master, first[30:] + b" \t" + b"y" * 5000 + b"\r")
        assert _outcomes(gate.next_decisions(3)) == [
            ("admit", 1),
            ("admit", 5),
            ("deny", NOT_A_TICKET),
        ]
        os.close(master)  # unplugged
        os.close(slave)
        gate.wait_for_log("serial scanner lost")
        master, slave = os.openpty()
        tty.setraw(slave)
        link.unlink()
        link.symlink_to(os.ttyname(slave))  # plugged in again, another /dev/pts number
        gate.wait_for_log("serial scanner connected", count=2)
        os.write(master, f"{code(6, 66)}\r".encode())
        assert _outcomes(gate.next_decisions(1)) == [("admit", 6)]
    finally:
        exit_code, stderr, _ = gate.stop()
        os.close(master)
        os.close(slave)
    assert exit_code == 0, stderr
    assert [(row[1], row[2]) for row in journal(data_dir)] == [("admit", "serial")] * 2 + [
        ("deny", "serial"),
        ("admit", "serial"),
    ]


def test_serial_bad_option_is_refused_before_start(tmp_path: Path) -> None:
    data_dir = prepared(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "gate", "run", "--source", "serial:/dev/ttyACM0?baud=fast"],
        capture_output=True,
        text=True,
        env={**os.environ, "GATE_DATA_DIR": str(data_dir)},
        timeout=60,
    )
    assert run.returncode == 2 and "baud" in run.stderr and "Traceback" not in run.stderr


def test_evdev_replays_recorded_key_events_in_the_de_layout(tmp_path: Path) -> None:
    """A HID scanner set to German: the recorded events go through the real evdev source."""
    data_dir = prepared(tmp_path)
    events = typed(code(1, 11) + "\n", "de") + typed(f" {code(5, 55)}\t", "de")
    events += [(KEY_ENTER, PRESS), (KEY_ENTER, RELEASE)]
    recording = tmp_path / "scanner.events"
    syn = pack_events([(0, 0)], type_=0)  # EV_SYN reports between keys are skipped
    recording.write_bytes(b"".join(pack_events([e]) + syn for e in events))
    gate = RunningGate(data_dir, f"evdev:{recording}?layout=de")
    assert gate.wait() == 0, "".join(gate.stderr)
    assert _outcomes(gate.next_decisions(2)) == [("admit", 1), ("admit", 5)]
    assert [(row[1], row[2]) for row in journal(data_dir)] == [("admit", "evdev")] * 2


def test_evdev_with_the_wrong_layout_damages_codes_not_the_gate(tmp_path: Path) -> None:
    data_dir = prepared(tmp_path)
    recording = tmp_path / "scanner.events"
    recording.write_bytes(pack_events(typed(code(1, 11) + "\n", "de")))
    gate = RunningGate(data_dir, f"evdev:{recording}?layout=us")
    assert gate.wait() == 0
    (decision,) = gate.next_decisions(1)
    assert decision["decision"] == "deny"


def test_serial_options_from_the_spec_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Regression: GATE_SERIAL_BYTESIZE=8 (a string from the environment) was refused."""
    monkeypatch.setenv("GATE_SERIAL_BYTESIZE", "8")
    monkeypatch.setenv("GATE_SERIAL_BAUD", "19200")
    path, s = parse_spec(
        "serial:/dev/ttyUSB0?bytesize=7&stopbits=2&parity=E", "serial", SerialSettings()
    )
    assert (path, s.baud, s.bytesize, s.stopbits, s.parity) == ("/dev/ttyUSB0", 19200, 7, 2, "E")
    for bad in ("serial:/dev/x?stopbits=3", "serial:/dev/x?speed=9600", "serial:", "serial:/x?=&"):
        with pytest.raises(ConfigError):
            parse_spec(bad, "serial", SerialSettings())


def test_stdin_from_a_file_a_terminal_and_dev_null(tmp_path: Path) -> None:
    """`< codes.txt` (no poll on regular files), a terminal (a wedge scanner in a session);
    /dev/null (systemd's standard input) is refused with exit 2."""
    data_dir = prepared(tmp_path)
    codes = tmp_path / "codes.txt"
    codes.write_text(f"{code(1, 11)}\r\n{code(5, 55)}")  # the last line has no line end
    with codes.open("rb") as stdin:
        gate = RunningGate(data_dir, "stdin", stdin=stdin.fileno())
        assert gate.wait() == 0
    assert _outcomes(gate.next_decisions(2)) == [("admit", 1), ("admit", 5)]
    with open(os.devnull, "rb") as stdin:  # systemd's stdin: refused, never a restart loop
        null = RunningGate(data_dir, "stdin", stdin=stdin.fileno())
        assert null.wait() == 2 and "serial:PATH, evdev:PATH or kiosk" in "".join(null.stderr)

    master, slave = os.openpty()  # cooked mode: the terminal turns the scanner's CR into LF
    gate = RunningGate(data_dir, "stdin", stdin=slave)
    try:
        gate.wait_for_log("gate started")
        os.write(master, f"{code(6, 66)}\r".encode())
        assert _outcomes(gate.next_decisions(1)) == [("admit", 6)]
    finally:
        exit_code, stderr, _ = gate.stop(signal.SIGINT)
        os.close(master)
        os.close(slave)
    assert exit_code == 0 and "Fatal Python error" not in stderr, stderr
