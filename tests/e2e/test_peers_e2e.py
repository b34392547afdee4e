"""Gates that tell each other, end to end: real syncd, real gate processes, real cuts.

With syncd stopped, an admission at one gate is refused at the others through the peer mesh
alone; syncd's later feed of the same admission moves nothing twice. Two gates whose LAN link
and uplink are both cut admit the same ticket; after healing syncd flags exactly one conflict.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from tessera_dev.netproxy import TcpProxy, _free_port
from tests.e2e.event_stack import Stack
from tests.e2e.stack import Gate, eventually


def _peers(gate: Gate) -> dict[str, Any]:
    return dict(json.loads((gate.data_dir / "peers.json").read_text()))


def _online(gate: Gate, count: int) -> bool:
    return _peers(gate)["online"] >= count


def _entry(gate: Gate, ticket_id: int) -> tuple[int, int, str] | None:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT inside, entries, last_in_gate FROM entry_state WHERE ticket_id = ?",
            (ticket_id,),
        ).fetchone()
        return None if row is None else (int(row[0]), int(row[1]), str(row[2]))
    finally:
        db.close()


def _ticket_id(code: str, stack: Stack) -> int:
    from shared.ticket import parse_ticket

    return parse_ticket(code).ticket_id


def _mesh_env(port: int, peers: list[str], **more: str) -> dict[str, str]:
    return {
        "GATE_PEER_PORT": str(port),
        "GATE_PEER_HOST": "127.0.0.1",
        "GATE_PEERS": ",".join(peers),
        "GATE_PEER_HEARTBEAT": "0.5",
        "GATE_PEER_RETRY_MAX": "1",
        **more,
    }


def test_three_gates_refuse_a_double_with_syncd_stopped(stack: Stack) -> None:
    ports = [_free_port() for _ in range(3)]
    urls = [f"http://127.0.0.1:{p}" for p in ports]
    gates = [  # every gate is given every URL, its own included (one config for the venue)
        stack.gate(name, **_mesh_env(port, urls))
        for name, port in zip(("A", "B", "C"), ports, strict=True)
    ]
    a, b, c = gates
    for g in gates:
        eventually(lambda g=g: _online(g, 2), f"{g.name} follows both other gates")
    stack.syncd.stop()
    code, ticket = stack.codes[0], _ticket_id(stack.codes[0], stack)
    assert a.scan(code)["decision"] == "admit"
    for g in (b, c):
        eventually(lambda g=g: _entry(g, ticket) is not None, f"{g.name} heard of A's admission")
        refused = g.scan(code)
        assert refused["decision"] == "deny", refused
        assert refused["reason"] == "already_inside" and "at A" in refused["message"]
    assert [row["state"] for row in _peers(a)["peers"]] == ["online", "online"]  # not itself
    status = subprocess.run(
        [sys.executable, "-m", "gate", "status"], env=a._env(), capture_output=True, text=True
    )
    assert status.returncode == 0, status.stderr
    assert "Peers:           2 of 2 online" in status.stdout
    assert re.search(r"B \(#\d+\)\s+ONLINE\s+heard \d+ s ago", status.stdout), status.stdout
    # syncd comes back: A's admission arrives at C again through the feed, and moves nothing.
    stack.syncd.start()
    eventually(lambda: _cursor_at_head(stack, c), "C applied the feed")
    assert _entry(c, ticket) == (1, 1, "A")
    for g in gates:
        g.stop()


def _cursor_at_head(stack: Stack, gate: Gate) -> bool:
    head = stack.sql("SELECT change_seq FROM events WHERE event_id = $1", stack.event_id)[0][0]
    pushed = stack.sql("SELECT count(*) FROM checkins WHERE outcome = 'admit'")[0][0]
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        cursor = int(db.execute("SELECT cursor FROM sync_state").fetchone()[0] or 0)
    finally:
        db.close()
    return pushed >= 1 and cursor >= head


def test_split_lan_and_uplink_ends_in_exactly_one_conflict(stack: Stack, tmp_path: Path) -> None:
    port_a, port_b = _free_port(), _free_port()
    with (
        TcpProxy("127.0.0.1", port_a, _free_port()) as to_a,
        TcpProxy("127.0.0.1", port_b, _free_port()) as to_b,
    ):
        url_a, url_b = f"http://127.0.0.1:{to_a.port}", f"http://127.0.0.1:{to_b.port}"
        # each gate is reached only through its proxy, also when syncd tells the other its URL
        a = stack.gate("A", **_mesh_env(port_a, [url_b], GATE_PEER_ADVERTISE=url_a))
        b = stack.gate("B", **_mesh_env(port_b, [url_a], GATE_PEER_ADVERTISE=url_b))
        for g in (a, b):
            eventually(lambda g=g: _online(g, 1), f"{g.name} follows the other gate")
        stack.net.cut()
        to_a.cut()
        to_b.cut()
        code = stack.codes[3]
        assert a.scan(code)["decision"] == "admit"
        assert b.scan(code)["decision"] == "admit"  # apart: both doors let the holder in
        to_a.restore()
        to_b.restore()
        stack.net.restore()
        eventually(
            lambda: stack.sql("SELECT 1 FROM checkins WHERE conflict"), "syncd flags the conflict"
        )
        eventually(
            lambda: stack.sql("SELECT count(*) FROM checkins")[0][0] == 2, "both admissions stored"
        )
        conflicts = stack.api.get(f"/api/v1/events/{stack.event_id}/conflicts").json()
        assert len(conflicts["conflicts"]) == 1
        eventually(lambda: _online(a, 1) and _online(b, 1), "the LAN link is back")
        assert a.scan(code)["decision"] == "deny"
        a.stop()
        b.stop()
