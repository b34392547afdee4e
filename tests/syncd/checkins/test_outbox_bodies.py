"""The outbox messages a push writes are exact JSON, whatever the text in them (they are built
as text in Postgres, not by a JSON library: see syncd/migrations/0004_push.sql)."""

from __future__ import annotations

import json
import secrets
import time

import asyncpg
import pytest
from pydantic import ValidationError

from shared.protocol import PushRequest
from syncd.checkins.pusher import store_push

GATE_NAME = 'Nord "Tür" \\ 1\t<>\u2028✓'


async def _gate(conn: asyncpg.Connection, reentry: str = "after_exit") -> tuple[int, int]:
    await conn.execute("INSERT INTO orgs (name) VALUES ('o')")
    event = await conn.fetchval(
        "INSERT INTO events (org_id, name, reentry) SELECT org_id, 'e', $1 FROM orgs"
        " RETURNING event_id",
        reentry,
    )
    gate = await conn.fetchval(
        "INSERT INTO gates (event_id, org_id, name) SELECT event_id, org_id, $1 FROM events"
        " RETURNING gate_id",
        GATE_NAME,
    )
    return int(gate), int(event)


async def test_checkin_messages_are_exact_json(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        gate, event = await _gate(conn)
        now = 1_790_000_000.123456
        rows = [
            {
                "seq": 1,
                "scan_id": "ab" * 16,
                "ticket_id": 2**63 - 1,
                "direction": "in",
                "outcome": "admit",
                "scanned_at": now,
            },
            {
                "seq": 2,
                "scan_id": "cd" * 16,
                "ticket_id": None,
                "direction": "in",
                "outcome": "deny",
                "reason": 'forged "sig" \\ \x01',
                "via": "manual",
                "scanned_at": 1e-7,
            },
            {
                "seq": 3,
                "scan_id": "ef" * 16,
                "ticket_id": 7,
                "direction": "out",
                "outcome": "admit",
                "scanned_at": now + 1,
            },
            {  # door operations: each a row of its own, about an earlier admission
                "seq": 4,
                "scan_id": "01" * 16,
                "ticket_id": 7,
                "direction": "out",
                "outcome": "passed",
                "via": "gpio",
                "scanned_at": now + 2,
                "ref_seq": 3,
            },
            {
                "seq": 5,
                "scan_id": "02" * 16,
                "ticket_id": 2**63 - 1,
                "direction": "in",
                "outcome": "annul",
                "reason": "staff",
                "via": "kiosk",
                "scanned_at": now + 3,
                "ref_seq": 1,
            },
            {
                "seq": 6,
                "scan_id": "03" * 16,
                "ticket_id": None,
                "direction": "in",
                "outcome": "tailgate",
                "via": "http",
                "scanned_at": now + 4,
            },
        ]
        before = time.time()
        stored = await store_push(
            conn, gate, PushRequest.model_validate({"sent_at": now, "checkins": rows}), 0.25
        )
        bodies = [
            (r["routing_key"], r["body"])
            for r in await conn.fetch("SELECT routing_key, body FROM outbox ORDER BY id")
        ]
    finally:
        await conn.close()
    assert stored.stored == 6
    messages = [(key, json.loads(body)) for key, body in bodies]
    assert [key for key, _ in messages] == [
        "checkin.performed",
        "checkin.invalid",
        "checkout.performed",
        "checkin.passed",
        "checkin.annulled",
        "checkin.tailgate",
    ]
    for (key, m), row in zip(messages, rows, strict=True):
        assert before - 1 < m.pop("stored_at") < time.time() + 1
        assert m == {
            "type": key,
            "event_id": event,
            "gate_id": gate,
            "gate_name": GATE_NAME,
            "seq": row["seq"],
            "scan_id": row["scan_id"],
            "ticket_id": row["ticket_id"],
            "direction": row["direction"],
            "outcome": row["outcome"],
            "reason": row.get("reason"),
            "via": row.get("via", "scanner"),
            "scanned_at": row["scanned_at"],  # floats come back exactly
            "at": row["scanned_at"] + 0.25,
            "skew": 0.25,
            "ref_seq": row.get("ref_seq"),
        }


async def test_conflict_messages_are_exact_json(db_url: str) -> None:
    conn = await asyncpg.connect(db_url)
    try:
        gate, _ = await _gate(conn)
        now = 1_790_000_000.5
        for seq in (1, 2):  # the same ticket in twice: the second admission is the conflict
            row = {
                "seq": seq,
                "scan_id": secrets.token_hex(16),
                "ticket_id": 9,
                "direction": "in",
                "outcome": "admit",
                "scanned_at": now + seq,
            }
            await store_push(
                conn, gate, PushRequest.model_validate({"sent_at": now, "checkins": [row]}), 0.0
            )
        body = await conn.fetchval("SELECT body FROM outbox WHERE routing_key = 'checkin.conflict'")
    finally:
        await conn.close()
    m = json.loads(body)
    assert m["gate_name"] == GATE_NAME and m["seq"] == 2 and m["ticket_id"] == 9
    assert m["entry"] == {"gate_id": gate, "gate_name": GATE_NAME, "at": now + 1}


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_a_push_with_a_time_that_is_not_a_finite_number_is_refused(bad: str) -> None:
    row = (
        '{"seq": 1, "scan_id": "' + "ab" * 16 + '", "ticket_id": 1, "direction": "in",'
        ' "outcome": "admit", "scanned_at": ' + bad + "}"
    )
    with pytest.raises(ValidationError):
        PushRequest.model_validate_json('{"sent_at": 1.0, "checkins": [' + row + "]}")
    with pytest.raises(ValidationError):
        PushRequest.model_validate_json('{"sent_at": ' + bad + ', "checkins": []}')
