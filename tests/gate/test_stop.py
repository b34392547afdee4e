"""A stop (SIGTERM from systemd, Ctrl-C at a terminal) of a real `gate run`, for every source.

Regression: SIGTERM or Ctrl-C of `gate run --source stdin` aborted with "Fatal Python error:
_enter_buffered_busy" (exit 134) every time: a daemon thread was blocked in a buffered stdin
read at interpreter shutdown. Now every source exits 0, and what was shown is in the journal.
"""

from __future__ import annotations

import os
import signal
import tty
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from gate.scan.evdev_source import pack_events
from tessera_dev.sample_event import code
from tessera_dev.synth import CONDITIONS, script, write_video
from tests.gate.scan.rungate import RunningGate, journal, prepared
from tests.gate.scan.test_keymap import typed

SIGNALS = [signal.SIGTERM, signal.SIGINT]
STOP_BOUND = 10  # a hang guard, not a speed figure


@contextmanager
def stdin_gate(
    data_dir: Path, tmp_path: Path
) -> Iterator[tuple[RunningGate, Callable[[str], None]]]:
    gate = RunningGate(data_dir, "stdin")
    yield gate, lambda text: gate.write(text.encode() + b"\n")


@contextmanager
def serial_gate(
    data_dir: Path, tmp_path: Path
) -> Iterator[tuple[RunningGate, Callable[[str], None]]]:
    master, slave = os.openpty()
    tty.setraw(slave)
    gate = RunningGate(data_dir, f"serial:{os.ttyname(slave)}")
    gate.wait_for_log("serial scanner connected")
    try:
        yield gate, lambda text: os.write(master, text.encode() + b"\r") and None
    finally:
        os.close(master)
        os.close(slave)


@contextmanager
def evdev_gate(
    data_dir: Path, tmp_path: Path
) -> Iterator[tuple[RunningGate, Callable[[str], None]]]:
    fifo = tmp_path / "scanner.fifo"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer is there before the gate opens it
    gate = RunningGate(data_dir, f"evdev:{fifo}")
    gate.wait_for_log("evdev scanner connected")
    try:
        yield gate, lambda text: os.write(writer, pack_events(typed(text + "\n", "us"))) and None
    finally:
        os.close(writer)


@contextmanager
def video_gate(
    data_dir: Path, tmp_path: Path
) -> Iterator[tuple[RunningGate, Callable[[str], None]]]:
    """A video that shows ticket 1 at once, then an empty door for 20 s (still playing)."""
    video = tmp_path / "door.avi"
    frames = script([code(1, 11), *[None] * 300], CONDITIONS[0], (320, 240), hold=6, gap=2)
    write_video(video, (shot.image for shot in frames), 30)
    yield RunningGate(data_dir, str(video), debounce_seconds="30"), lambda text: None


SOURCES = {"stdin": stdin_gate, "serial": serial_gate, "evdev": evdev_gate, "video": video_gate}


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_a_stop_exits_0_and_keeps_what_was_shown(tmp_path: Path, kind: str, sig: int) -> None:
    data_dir = prepared(tmp_path)
    with SOURCES[kind](data_dir, tmp_path) as (gate, scan):
        gate.wait_for_log("gate started")
        scan(code(1, 11))
        (shown,) = gate.next_decisions(1, timeout=60)
        exit_code, stderr, _ = gate.stop(sig, STOP_BOUND)
    assert exit_code == 0, stderr
    assert "Fatal Python error" not in stderr and "Traceback" not in stderr
    assert shown["decision"] == "admit" and shown["ticket_id"] == 1
    assert [(seq, outcome) for seq, outcome, _ in journal(data_dir)] == [(1, "admit")]


@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_stop_mid_burst_cuts_no_scan(tmp_path: Path, sig: int) -> None:
    """Every scan the gate took in hand is committed and shown; nothing half-written."""
    data_dir = prepared(tmp_path)
    gate = RunningGate(data_dir, "stdin")
    gate.wait_for_log("gate started")
    burst = "".join(f"{code(1, 11)}\n" if i % 2 else "junk\n" for i in range(3000))
    gate.write(burst.encode())
    gate.next_decisions(20)
    exit_code, stderr, _ = gate.stop(sig, STOP_BOUND)
    assert exit_code == 0, stderr
    shown = 20 + gate.decisions.qsize()
    rows = journal(data_dir)
    assert len(rows) == shown and [row[0] for row in rows] == list(range(1, shown + 1))
