"""Door operations end to end with real processes (issue 18): syncd, two `gate run` processes,
Postgres and RabbitMQ. Lane A confirms passages (its kiosk port takes POST /api/passage, as a
turnstile controller sends it); an admission with no passage is annulled by itself; staff annul
at gate B with `gate annul --last` beside the running gate; every gate and syncd agree."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys

import httpx

from tessera_dev.netproxy import _free_port
from tests.e2e.event_stack import Stack, drain_queue
from tests.e2e.stack import Gate, eventually


def _entry(gate: Gate, ticket_id: int) -> tuple[int, int] | None:
    """(inside, entries) of a ticket in a gate's database, read beside the running gate."""
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute(
            "SELECT inside, entries FROM entry_state WHERE ticket_id = ?", (ticket_id,)
        ).fetchone()
        return (int(row[0]), int(row[1])) if row else None
    finally:
        db.close()


def _gate_cli(gate: Gate, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gate", *args],
        env=gate._env(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_passage_timeout_and_staff_annul_across_gates(stack: Stack) -> None:
    port = _free_port()
    lane = stack.gate(
        "Lane A",
        GATE_DISPLAY_ENABLED="true",
        GATE_DISPLAY_PORT=str(port),
        GATE_PASSAGE_CONFIRM="true",
        GATE_PASSAGE_TIMEOUT="2",
    )
    other = stack.gate("Gate B")
    turnstile = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)

    def passage() -> dict:
        resp = turnstile.post("/api/passage", json={})
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    try:
        eventually(lambda: turnstile.get("/api/staff").status_code == 200, "lane A's page up")
        # 1. Admitted, and the turnstile turns: passed.
        first = lane.scan(stack.codes[0])
        assert first["decision"] == "admit"
        went = passage()
        assert (went["outcome"], went["ref_seq"]) == ("passed", first["seq"])
        # 2. Admitted, nobody goes through: annulled by itself after 2 s ...
        second = lane.scan(stack.codes[1])
        ticket = second["ticket_id"]
        assert second["decision"] == "admit"
        eventually(lambda: _entry(lane, ticket) == (0, 0), "lane A annulled it", 15)
        # ... and gate B learns it through syncd: the ticket is outside there too.
        eventually(lambda: _entry(other, ticket) == (0, 0), "gate B got the annulment", 30)
        assert other.scan(stack.codes[1])["decision"] == "admit"
        # 3. Staff at gate B undo that admission from a terminal beside the running gate.
        done = _gate_cli(other, "annul", "--last", "--json")
        assert done.returncode == 0, done.stderr
        annulled = json.loads(done.stdout)
        assert annulled["ticket_id"] == ticket and annulled["direction"] == "in"
        again = _gate_cli(other, "annul", "--last")
        assert again.returncode == 1 and "already annulled" in again.stderr
        # 4. A passage with nobody admitted: a tailgate.
        assert passage()["outcome"] == "tailgate"

        def figures() -> dict | None:
            s = stack.api.get(f"/api/v1/events/{stack.event_id}/stats").json()
            wanted = (s["admitted"], s["annulled"], s["passed"], s["tailgates"], s["inside"])
            return s if wanted == (1, 2, 1, 1, 1) else None

        stats = eventually(figures, "syncd's figures", 30)
        lane_row = next(g for g in stats["gates"] if g["name"] == "Lane A")
        assert (lane_row["admitted"], lane_row["annulled"], lane_row["passed"]) == (1, 1, 1)
        assert lane_row["tailgates"] == 1
        eventually(lambda: _entry(lane, ticket) == (0, 0), "lane A has gate B's annulment", 30)
        # The organiser's terminal shows the same.
        env = {
            **os.environ,
            "TESSERA_CLI_URL": str(stack.api.base_url),
            "TESSERA_CLI_TOKEN": stack.api.headers["Authorization"].split()[1],
        }
        out = subprocess.run(
            [sys.executable, "-m", "tessera_cli", "stats", str(stack.event_id)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert "annulled 2  passed 1  tailgates 1" in out.stdout
    finally:
        turnstile.close()
        lane.stop()
        other.stop()
    # Every door operation reached the exchange, once each.
    eventually(lambda: not stack.sql("SELECT 1 FROM outbox"), "outbox relayed")
    keys = list(dict(asyncio.run(drain_queue(stack.queue))).values())
    assert keys.count("checkin.annulled") == 2
    assert keys.count("checkin.passed") == 1 and keys.count("checkin.tailgate") == 1
