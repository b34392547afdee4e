"""A gate on a full disk, on a real full filesystem (a small tmpfs mounted for the test).

Regression for issue 13.7: at start a full disk was a raw ``sqlite3.OperationalError``
traceback; while running, "Not recorded: scan again" denials carried no reason code and no
ticket id. Now the start fails with one line naming the database file and the cause, and a scan
that cannot be written is a DENY with reason ``not_recorded`` and the ticket id it read (the
person is not admitted); once space is back, the next scan is recorded. `gate import-list` that
runs out of space mid-way says so in one line and leaves the old list in force.

The tmpfs needs root (mount); the fixture unmounts it whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.bundle import BundleTicket
from tessera_dev.sample_event import bundle_bytes, code, loaded_store


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs at tmp_path/disk, unmounted after the test."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs for the full-disk test (needs root): {done.stderr}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk: Path, leave: int = 0) -> Path:
    """Write zeros until the filesystem has no block left (then give back ``leave`` bytes);
    returns the filler file."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while out.write(b"\0" * 4096):
                pass
        except OSError:
            pass
    assert shutil.disk_usage(disk).free == 0
    if leave:
        os.truncate(filler, filler.stat().st_size - leave)
    return filler


def _env(data: Path) -> dict[str, str]:
    env = {**os.environ, "GATE_DATA_DIR": str(data), "GATE_NAME": "Gate B"}
    return {**env, "GATE_DEBOUNCE_SECONDS": "0"}


def test_start_on_a_full_disk_names_the_file_and_the_cause(small_disk: Path) -> None:
    fill(small_disk)
    data = small_disk / "data"
    for command in (["run", "--source", "stdin"], ["status"], ["admit", "1"], ["lookup", "x"]):
        done = subprocess.run(
            [sys.executable, "-m", "gate", *command],
            capture_output=True,
            text=True,
            env=_env(data),
            input="",  # a pipe: /dev/null on stdin is refused before the database is opened
            timeout=60,
        )
        assert done.returncode != 0, command
        assert "Traceback" not in done.stderr
        assert f"cannot open the gate database {data / 'gate.sqlite3'}" in done.stderr
        assert "database or disk is full" in done.stderr


async def _ready_list(small_disk: Path) -> Path:
    """The default list, loaded on the small disk (a few hundred kB free afterwards)."""
    data = small_disk / "data"
    store = await loaded_store(data / "gate.sqlite3")
    await store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    await store.close()
    return data


def _decision(gate: subprocess.Popen[str], text: str) -> dict[str, object]:
    assert gate.stdin is not None and gate.stdout is not None
    gate.stdin.write(text + "\n")
    gate.stdin.flush()
    return dict(json.loads(gate.stdout.readline()))


def test_scans_on_a_disk_that_fills_up_are_denied_with_the_ticket(small_disk: Path) -> None:
    data = asyncio.run(_ready_list(small_disk))
    gate = subprocess.Popen(
        [sys.executable, "-m", "gate", "run", "--source", "stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(data),
    )
    try:
        assert _decision(gate, code(1, 11))["decision"] == "admit"
        filler = fill(small_disk)
        denials = [_decision(gate, code(t, t * 11)) for t in (2, 5, 6)]
        for ticket, denial in zip((2, 5, 6), denials, strict=True):
            assert (denial["decision"], denial["reason"]) == ("deny", "not_recorded")
            assert (denial["ticket_id"], denial["message"]) == (ticket, "Not recorded: scan again")
        assert gate.poll() is None  # the gate keeps running
        filler.unlink()
        time.sleep(0.1)
        again = _decision(gate, code(2, 22))
        assert (again["decision"], again["ticket_id"]) == ("admit", 2), again
    finally:
        gate.terminate()
        _out, err = gate.communicate(timeout=30)
    assert "Traceback" not in err
    logs = [json.loads(line) for line in err.splitlines()]
    assert any(r["msg"].startswith("could not record a scan") for r in logs)


def test_import_list_on_a_full_disk_keeps_the_old_list(small_disk: Path, tmp_path: Path) -> None:
    """`gate import-list` that runs out of space says so in one line; the old list stays."""
    data = asyncio.run(_ready_list(small_disk))
    bigger = [BundleTicket(i, i, holder=f"Guest {i}") for i in range(1, 20_001)]
    bundle = tmp_path / "big.bundle"
    bundle.write_bytes(bundle_bytes(bigger))
    filler = fill(small_disk, leave=128 * 1024)  # room to open, not for 20,000 tickets
    done = subprocess.run(
        [sys.executable, "-m", "gate", "import-list", "-q", str(bundle)],
        capture_output=True,
        text=True,
        env=_env(data),
        timeout=120,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"could not write to the gate database {data / 'gate.sqlite3'}" in done.stderr
    assert "database or disk is full" in done.stderr
    filler.unlink()
    admitted = subprocess.run(
        [sys.executable, "-m", "gate", "admit", "1"], capture_output=True, text=True, env=_env(data)
    )
    assert json.loads(admitted.stdout)["holder"] == "Ada Lovelace"  # the old list's ticket 1
