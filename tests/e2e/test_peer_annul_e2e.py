"""Annulments over the peer mesh, end to end: two real `gate run` processes peered, syncd
stopped, staff annulling with `gate annul --last` beside the running gate.

Regression: with syncd unreachable, gate B learnt of A's admission through the mesh but not of
its annulment, so the holder whose entry was annulled (the turnstile did not turn) was refused
at B as "already inside". Now B lets them in; when syncd is back, its feed moves nothing twice.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from typing import Any

from shared.ticket import parse_ticket
from tessera_dev.netproxy import _free_port
from tests.e2e.event_stack import Stack
from tests.e2e.stack import Gate, eventually


def _peers(gate: Gate) -> dict[str, Any]:
    return dict(json.loads((gate.data_dir / "peers.json").read_text()))


def _counts(gate: Gate) -> tuple[int, int, int]:
    """(protocol, annulled, ignored) of the gate's one peer link, as its peers.json says."""
    (link,) = _peers(gate)["peers"]
    return (link["protocol"], link["annulled"], link["ignored"])


def _read(gate: Gate, sql: str, *args: object) -> Any:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return db.execute(sql, args).fetchone()
    finally:
        db.close()


def _entry(gate: Gate, ticket_id: int) -> tuple[int, int, str | None] | None:
    """(inside, entries, last_in_gate) of a ticket, read beside the running gate."""
    row = _read(
        gate,
        "SELECT inside, entries, last_in_gate FROM entry_state WHERE ticket_id = ?",
        ticket_id,
    )
    return None if row is None else (int(row[0]), int(row[1]), row[2])


def _mesh_env(port: int, peer: int) -> dict[str, str]:
    return {
        "GATE_PEER_PORT": str(port),
        "GATE_PEER_HOST": "127.0.0.1",
        "GATE_PEERS": f"http://127.0.0.1:{peer}",
        "GATE_PEER_HEARTBEAT": "0.5",
        "GATE_PEER_RETRY_MAX": "1",
    }


def _annul_last(gate: Gate) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "gate", "annul", "--last", "--json"],
        env=gate._env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _fed(stack: Stack, gate: Gate) -> bool:
    """syncd holds both admissions and the annulment, and the gate applied its feed to the end."""
    stored = stack.sql("SELECT count(*) FROM checkins WHERE outcome IN ('admit', 'annul')")
    head = stack.sql("SELECT change_seq FROM events WHERE event_id = $1", stack.event_id)
    cursor = int(_read(gate, "SELECT cursor FROM sync_state")[0] or 0)
    return bool(stored[0][0] == 3 and cursor >= head[0][0])


def test_an_entry_annulled_at_a_lets_the_holder_in_at_b_without_syncd(stack: Stack) -> None:
    port_a, port_b = _free_port(), _free_port()
    a = stack.gate("A", start=True, **_mesh_env(port_a, port_b))
    b = stack.gate("B", start=True, **_mesh_env(port_b, port_a))
    try:
        eventually(lambda: _peers(a)["online"] == _peers(b)["online"] == 1, "A and B follow")
        stack.syncd.stop()
        code = stack.codes[5]
        ticket = parse_ticket(code).ticket_id
        admitted = a.scan(code)
        assert admitted["decision"] == "admit"
        eventually(lambda: _entry(b, ticket) == (1, 1, "A"), "B heard of A's admission")
        # The turnstile did not turn: staff annul the entry at A, from a terminal.
        annulled = _annul_last(a)
        assert (annulled["ticket_id"], annulled["ref_seq"]) == (ticket, admitted["seq"])
        assert _entry(a, ticket) == (0, 0, None)
        eventually(lambda: _entry(b, ticket) == (0, 0, None), "B applied A's annulment")
        counted = (2, 1, 0)  # protocol 2, one annulment applied, none ignored
        eventually(lambda: _counts(b) == counted, "B's peers.json counts the annulment")
        # Before annulments travelled, B refused here: "already inside (at A)".
        again = b.scan(code)
        assert again["decision"] == "admit", again
        eventually(lambda: _entry(a, ticket) == (1, 1, "B"), "A heard of B's admission")
        # syncd comes back: its feed brings A's admission and annulment to B again, and moves
        # nothing (B's own entry stands); A's side likewise.
        stack.syncd.start()
        eventually(lambda: _fed(stack, a) and _fed(stack, b), "both gates applied the feed")
        assert _entry(b, ticket) == (1, 1, "B")
        assert _entry(a, ticket) == (1, 1, "B")
    finally:
        a.stop()
        b.stop()
