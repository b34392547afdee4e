"""The pre-doors drill end to end: real syncd, real gate processes, `gate drill` and `tessera`.

A gate drills green and syncd shows it; with syncd stopped the drill is red within seconds and
says it could not report; a red drill (a hook that fails) is stored and organisers see which
item failed; a revoked gate's report is refused and shows as such. Peers are drilled by the
peer handshake: a running peer proves itself, a stopped one is red.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from tessera_dev.netproxy import _free_port
from tests.e2e.event_stack import Stack
from tests.e2e.stack import Gate, eventually


def drill(gate: Gate, *args: str, **env: str) -> tuple[int, dict[str, Any], float]:
    """`gate drill --json` as the door staff run it: (exit status, board, seconds)."""
    started = time.monotonic()
    out = subprocess.run(
        [sys.executable, "-m", "gate", "drill", "--json", *args],
        env={**gate._env(), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    board = json.loads(out.stdout) if out.stdout.startswith("{") else {"stderr": out.stderr}
    return out.returncode, board, time.monotonic() - started


def statuses(board: dict[str, Any]) -> dict[str, str]:
    return {i["name"]: i["status"] for i in board["items"]}


def tessera(stack: Stack, *args: str) -> str:
    token = str(stack.api.headers["Authorization"]).split()[1]
    env = {**os.environ, "TESSERA_CLI_URL": str(stack.api.base_url), "TESSERA_CLI_TOKEN": token}
    out = subprocess.run(
        [sys.executable, "-m", "tessera_cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def last_drill(stack: Stack, name: str) -> dict[str, Any] | None:
    gates = stack.api.get(f"/api/v1/events/{stack.event_id}/gates").json()["gates"]
    found: dict[str, Any] | None = next(g for g in gates if g["name"] == name)["last_drill"]
    return found


def test_drills_green_red_offline_and_revoked_as_syncd_and_organisers_see_them(
    stack: Stack,
) -> None:
    north = stack.gate("North", start=False)
    status, board, _ = drill(north)
    assert status == 0 and board["result"] == "green", board
    assert statuses(board) == {
        "list": "ok",
        "keys": "ok",
        "camera": "skip",
        "camera_feed": "skip",
        "syncd": "ok",
        "clock": "ok",
        "journal": "ok",
        "disk": "ok",
        "peers": "skip",
        "hooks": "skip",
    }
    assert board["reported"] and board["report"].startswith("Reported to syncd (127.0.0.1:")
    stored = last_drill(stack, "North")
    assert stored is not None and stored["result"] == "green" and stored["problems"] == []
    assert "\tdrill green " in tessera(stack, "gate", "list", str(stack.event_id))

    # a hook that fails: red, exit 1, and still reported with the failing item named
    status, board, _ = drill(north, GATE_HOOK_ON_ADMIT="/bin/false")
    assert status == 1 and statuses(board)["hooks"] == "fail" and board["reported"]
    stored = last_drill(stack, "North")
    assert stored is not None and (stored["result"], stored["failing"]) == ("red", ["hooks"])
    assert stored["problems"][0]["figure"].startswith("admit exit 1 in ")
    stats = tessera(stack, "stats", str(stack.event_id))
    assert (
        "drill RED " in stats and "(hooks)" in stats and "drills: green 0  amber 0  red 1" in stats
    )

    # syncd stopped while the gate scans offline: red within seconds, not reported
    north.start()
    stack.syncd.stop()
    assert north.scan(stack.codes[0])["decision"] == "admit"
    status, board, seconds = drill(north)
    found = statuses(board)
    assert status == 1 and (found["syncd"], found["clock"], found["journal"]) == (
        "fail",
        "warn",
        "warn",
    ), board
    assert not board["reported"] and board["report"].startswith("Not reported to syncd")
    assert seconds < 30, "the drill must not hang on a stopped syncd"  # a hang guard
    stack.syncd.start()
    stored = last_drill(stack, "North")
    assert stored is not None and stored["result"] == "red"  # the offline drill never arrived
    eventually(lambda: drill(north)[1]["result"] == "green", "the journal drains, all green")
    north.stop()

    # revoked: the gate has not heard yet, its report is refused and the drill says so
    gate_id = stack.api.get(f"/api/v1/events/{stack.event_id}/gates").json()["gates"][0]["gate_id"]
    stack.api.delete(f"/api/v1/events/{stack.event_id}/gates/{gate_id}").raise_for_status()
    status, board, _ = drill(north)
    syncd = next(i for i in board["items"] if i["name"] == "syncd")
    assert status == 1 and syncd["status"] == "fail" and "refused the credential" in syncd["figure"]
    assert board["report"] == "Not reported to syncd: the credential was refused."


def _mesh(port: int, peers: list[str]) -> dict[str, str]:
    return {
        "GATE_PEER_PORT": str(port),
        "GATE_PEER_HOST": "127.0.0.1",
        "GATE_PEERS": ",".join(peers),
        "GATE_PEER_HEARTBEAT": "0.5",
    }


def test_peers_prove_themselves_and_a_stopped_peer_is_red(stack: Stack) -> None:
    port_a, port_b = _free_port(), _free_port()
    url_a, url_b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    a = stack.gate("A", **_mesh(port_a, [url_a, url_b]))
    b = stack.gate("B", start=False, **_mesh(port_b, [url_a, url_b]))  # its own URL is skipped
    eventually(lambda: (a.data_dir / "peers.json").exists(), "A serves its peers")
    status, board, _ = drill(b)
    peers = next(i for i in board["items"] if i["name"] == "peers")
    assert peers["status"] == "ok" and peers["figure"].startswith("1 of 1 proved: A "), board
    a.stop()
    status, board, _ = drill(b)
    peers = next(i for i in board["items"] if i["name"] == "peers")
    assert status == 1 and peers["status"] == "fail", board
    assert peers["figure"] == f"0 of 1 proved: 127.0.0.1:{port_a} unreachable"
