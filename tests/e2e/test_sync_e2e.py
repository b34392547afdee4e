"""End to end with real processes: syncd, two gates, Postgres, RabbitMQ, and real outages.

In every scenario each admitted check-in ends up exactly once in Postgres (same gate + seq the
gate printed) and at least once on the exchange (deduplicated by message_id), and the counts
agree. Outages are a few seconds long: they prove the same as long ones.
"""

from __future__ import annotations

import asyncio
import sqlite3

from tests.e2e.event_stack import Stack, drain_queue
from tests.e2e.stack import Gate, eventually


def _feed_seq(stack: Stack, gate_name: str) -> int:
    rows = stack.sql(
        "SELECT max(f.seq) AS s FROM change_feed f JOIN gates g ON g.gate_id = f.gate_id"
        " WHERE g.name = $1 AND f.gate_seq IS NOT NULL",  # its check-ins, not gate.* changes
        gate_name,
    )
    return int(rows[0]["s"] or 0)


def _cursor(gate: Gate) -> int:
    db = sqlite3.connect(f"file:{gate.data_dir / 'gate.sqlite3'}?mode=ro", uri=True, timeout=5)
    try:
        return int(db.execute("SELECT cursor FROM sync_state").fetchone()[0] or 0)
    finally:
        db.close()


def _settle_and_count(stack: Stack, gates: list[Gate]) -> None:
    """Stop the gates, then: Postgres holds exactly what they decided; the exchange has it all."""
    for g in gates:
        g.stop()
    printed = {(g.name, d["seq"]): d["decision"] for g in gates for d in g.decisions}
    stored = {
        (r["name"], r["seq"]): r["outcome"]
        for r in stack.sql(
            "SELECT g.name, c.seq, c.outcome FROM checkins c JOIN gates g USING (gate_id)"
        )
    }
    assert stored == printed  # exactly once each, same outcome
    # A row leaves the outbox only once the broker confirmed its message.
    eventually(lambda: not stack.sql("SELECT 1 FROM outbox"), "outbox relayed")
    seen = dict(asyncio.run(drain_queue(stack.queue)))  # message_id -> key: duplicates folded
    per_key = {k: sum(1 for v in seen.values() if v == k) for k in set(seen.values())}
    admitted = sum(1 for v in printed.values() if v == "admit")
    assert per_key.get("checkin.performed", 0) + per_key.get("checkout.performed", 0) == admitted
    assert per_key.get("checkin.invalid", 0) == len(printed) - admitted


def test_gates_online_offline_conflict_and_sigkill(stack: Stack) -> None:
    a, b = stack.gate("A"), stack.gate("B")
    assert a.scan(stack.codes[0])["decision"] == "admit"
    eventually(lambda: _cursor(b) >= _feed_seq(stack, "A") > 0, "B applied A's admission")
    refused = b.scan(stack.codes[0])
    assert refused["decision"] == "deny" and "A" in refused["message"]  # online: refused at B
    stack.net.cut()  # both gates offline
    for code in stack.codes[1:6]:
        assert a.scan(code)["decision"] == "admit"
    for code in [stack.codes[1], *stack.codes[6:9]]:
        assert b.scan(code)["decision"] == "admit"  # ticket 1 admitted at both while apart
    a.scan("T1:not-a-ticket")
    a.kill()  # SIGKILL: its journal is on disk
    stack.net.restore()
    a.start()
    assert a.scan(stack.codes[9])["decision"] == "admit"
    eventually(lambda: stack.sql("SELECT 1 FROM checkins WHERE conflict"), "conflict flagged")
    conflicts = stack.api.get(f"/api/v1/events/{stack.event_id}/conflicts").json()["conflicts"]
    assert len(conflicts) == 1
    _settle_and_count(stack, [a, b])


def test_broker_database_and_syncd_outages_lose_nothing(stack: Stack) -> None:
    a, b = stack.gate("A"), stack.gate("B")
    stack.amqp.cut()  # broker unreachable: check-ins still stored, messages wait in the outbox
    for code in stack.codes[:5]:
        a.scan(code)
    eventually(lambda: stack.syncd.get("/readyz").status_code == 503, "readyz says broker down")
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 5, "stored while broker down")
    assert stack.sql("SELECT 1 FROM outbox")
    stack.amqp.restore()
    eventually(lambda: stack.syncd.get("/readyz").status_code == 200, "relay reconnected")
    stack.pg.cut()  # database gone: pushes get 503, gates keep scanning and retry
    for code in stack.codes[5:10]:
        b.scan(code)
    stack.pg.restore()
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 10, "stored after Postgres")
    for code in stack.codes[10:20]:
        a.scan(code)
    stack.syncd.kill()  # in the middle of A's pushes
    for code in stack.codes[20:25]:
        b.scan(code)
    stack.syncd.start()
    eventually(lambda: len(stack.sql("SELECT 1 FROM checkins")) == 25, "stored after restart")
    _settle_and_count(stack, [a, b])
