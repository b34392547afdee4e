"""`gate drill` as a real process: the board, exit 1 on red only, --json, colour on a terminal
and never with NO_COLOR or into a pipe, and a syncd that never answers cannot hang it."""

from __future__ import annotations

import json
import os
import pty
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from click.testing import CliRunner

from gate.__main__ import cli
from gate.sync.credential import write_credential
from tests.gate.feedback.realgate import make_gate, tickets

ESC = "\x1b["


def run(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "GATE_DATA_DIR": str(data), "GATE_NAME": "Gate B", **env}
    return subprocess.run(
        [sys.executable, "-m", "gate", "drill", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=120,
    )


async def _loaded(tmp_path: Path) -> Path:
    gate = await make_gate(tmp_path, tickets(3))
    await gate.store.close()
    return tmp_path / "gate"


def test_drill_help() -> None:
    result = CliRunner().invoke(cli, ["drill", "--help"])
    assert result.exit_code == 0
    for option in ("--json", "--camera / --no-camera", "--no-hooks", "GATE_DRILL_TIMEOUT"):
        assert option in result.output


async def test_a_loaded_gate_is_green_exit_0_and_plain_text_in_a_pipe(tmp_path: Path) -> None:
    data = await _loaded(tmp_path)
    out = run(data)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("Drill of Gate B, ")
    assert lines[1].split()[:2] == ["OK", "list"] and "3 tickets (Summer Night)" in lines[1]
    assert any(line.split()[:2] == ["SKIP", "camera"] for line in lines)
    assert lines[-1] == "GREEN: 0 failed, 0 to look at."
    assert ESC not in out.stdout


async def test_an_empty_gate_is_red_exit_1_and_json_says_why(tmp_path: Path) -> None:
    out = run(tmp_path / "empty", "--json")
    assert out.returncode == 1
    board = json.loads(out.stdout)
    assert board["result"] == "red" and board["gate_name"] == "Gate B"
    items = {i["name"]: i for i in board["items"]}
    assert items["list"] == {
        "name": "list",
        "status": "fail",
        "figure": "no list loaded",
        "detail": "enrol the gate or run `gate import-list`",
    }
    assert items["keys"]["status"] == "fail" and board["report"] is None


async def test_hooks_run_unless_told_not_to(tmp_path: Path) -> None:
    data = await _loaded(tmp_path)
    marker = tmp_path / "fired"
    hook = f"{sys.executable} -c \"open('{marker}', 'w').write('x')\""
    skipped = run(data, "--json", "--no-hooks", GATE_HOOK_ON_ADMIT=hook)
    hooks = next(i for i in json.loads(skipped.stdout)["items"] if i["name"] == "hooks")
    assert hooks["status"] == "skip" and not marker.exists()
    fired = run(data, "--json", GATE_HOOK_ON_ADMIT=hook)
    assert fired.returncode == 0 and marker.read_text() == "x"


def _on_a_terminal(data: Path, **env: str) -> str:
    leader, follower = pty.openpty()
    environ = {**os.environ, "GATE_DATA_DIR": str(data), **env}
    environ.pop("NO_COLOR", None)
    environ.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gate", "drill"],
        stdout=follower,
        stderr=subprocess.DEVNULL,
        env=environ,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(60)
    os.close(leader)
    return b"".join(chunks).decode()


async def test_colour_on_a_terminal_unless_no_color(tmp_path: Path) -> None:
    data = await _loaded(tmp_path)
    coloured = _on_a_terminal(data)
    assert f"{ESC}32m" in coloured and "GREEN" in coloured  # green OK and result
    plain = _on_a_terminal(data, NO_COLOR="1")
    assert "GREEN: 0 failed" in plain and ESC not in plain


@contextmanager
def silent_server() -> Iterator[int]:
    """A TCP port that accepts and then never answers: a hung syncd or a dead proxy."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        listener.close()


async def test_a_syncd_that_never_answers_is_red_within_the_probe_timeout(tmp_path: Path) -> None:
    data = await _loaded(tmp_path)
    write_credential(data / "credential", "tsg_" + "c" * 43)
    with silent_server() as port:
        started = time.monotonic()
        out = run(data, "--json", GATE_SERVER_URL=f"http://127.0.0.1:{port}")
        seconds = time.monotonic() - started
    board = json.loads(out.stdout)
    items = {i["name"]: i for i in board["items"]}
    assert out.returncode == 1
    assert items["syncd"]["figure"] == f"127.0.0.1:{port} no answer in 2 s", items["syncd"]
    assert items["clock"] == {
        "name": "clock",
        "status": "warn",
        "figure": "unknown",
        "detail": "syncd's clock could not be read now",
    }
    assert board["report"].startswith("Not reported to syncd") and not board["reported"]
    assert seconds < 30, "a hang guard: the probe is bounded by GATE_SYNC_PROBE_TIMEOUT"
    assert "tsg_" not in out.stdout + out.stderr
