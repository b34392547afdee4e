"""Issue 12 point 4 and the clock part of point 10: one gate's bad push never fails another's.

Every field of a push is checked against its column before it is grouped (a named 422), and a
push Postgres still refuses inside a group commit fails alone while the others are stored.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.protocol import CheckinIn, PushRequest
from syncd.checkins.pusher import Pusher, Stored
from syncd.checkins.pusher import PushFailedError as PushFailed
from syncd.checkins.pusher import PushRefusedError as PushRefused
from tests.syncd.conftest import Org
from tests.syncd.gatekit import enrolled_gate, event_with_tickets, send


def _row(seq: float, ticket: int | None, at: float, **over: Any) -> dict[str, Any]:
    return {
        "seq": seq,
        "scan_id": secrets.token_hex(16),
        "ticket_id": ticket,
        "direction": "in",
        "outcome": "admit",
        "reason": None,
        "via": "scanner",
        "scanned_at": at,
        **over,
    }


POISONS = {
    "seq": ({"seq": 2**63}, "checkins.0.seq"),
    "ticket_id_uint64_max": ({"ticket_id": 2**64 - 1}, "checkins.0.ticket_id"),
    "ticket_id_negative": ({"ticket_id": -1}, "checkins.0.ticket_id"),
    "scanned_at_huge": ({"scanned_at": 1e308}, "checkins.0.scanned_at"),
    "scanned_at_negative": ({"scanned_at": -1.0}, "checkins.0.scanned_at"),
    # Wrong JSON types were coerced (false stored as 0.0, "5" as 5): schemathesis found them.
    "scanned_at_false": ({"scanned_at": False}, "checkins.0.scanned_at"),
    "seq_text": ({"seq": "5"}, "checkins.0.seq"),
    "seq_true": ({"seq": True}, "checkins.0.seq"),
    "ticket_id_fraction": ({"ticket_id": 7.5}, "checkins.0.ticket_id"),
}


@pytest.mark.parametrize("poison", POISONS, ids=list(POISONS))
async def test_a_poisonous_push_among_concurrent_pushes_of_two_orgs_is_refused_alone(
    client: TestClient, org_a: Org, org_b: Org, db_url: str, poison: str
) -> None:
    """Scenario: 30 of 300 valid pushes got 400 because one gate's seq >= 2^63 sat in their
    group commit. Now gates of two organisations push at once beside the poisonous one: every
    valid push is stored, the bad one alone gets a 422 naming its field."""
    ea, ta = await event_with_tickets(client, org_a, n=3)
    eb, tb = await event_with_tickets(client, org_b, n=3)
    gates = [(await enrolled_gate(client, org_a, ea, f"A{i}"), ta[i % 3]) for i in range(6)]
    gates += [(await enrolled_gate(client, org_b, eb, f"B{i}"), tb[i % 3]) for i in range(6)]
    bad = await enrolled_gate(client, org_a, ea, "bad")
    over, field = POISONS[poison]
    pushes = [send(client, g, [g.checkin(t), g.checkin(t, "out")]) for g, t in gates]
    pushes.insert(5, send(client, bad, [{**bad.checkin(ta[0]), **over}]))
    results = await asyncio.gather(*pushes)
    status, body = results.pop(5)
    assert status == 422 and body["error"] == "invalid", body
    assert [p["field"] for p in body["problems"]] == [field]
    assert [s for s, _ in results] == [200] * 12
    assert all(b["acked_seq"] == 2 and b["stored"] == 2 for _, b in results)
    conn = await asyncpg.connect(db_url)
    try:
        stored = await conn.fetch("SELECT gate_id, count(*) FROM checkins GROUP BY 1")
    finally:
        await conn.close()
    assert dict(stored) == {g.gate_id: 2 for g, _ in gates}  # nothing of the bad gate


async def test_integral_floats_are_integers_as_json_schema_says(
    client: TestClient, org_a: Org
) -> None:
    """JSON Schema counts 291.0 as an integer; a strict push model still takes it as 291."""
    event, tickets = await event_with_tickets(client, org_a, n=1)
    gate = await enrolled_gate(client, org_a, event, "G")
    status, body = await send(client, gate, [_row(1.0, tickets[0], time.time())])
    assert (status, body["acked_seq"]) == (200, 1), body


async def test_a_ticket_id_of_2_to_the_63_minus_1_is_stored_whole_and_above_it_refused(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """Scenario: a ticket id of 2^64-1 was stored as NULL. The largest id syncd can issue is
    stored as it is; a larger one names no ticket anywhere and is refused by name."""
    eid, _ = await event_with_tickets(client, org_a, n=1)
    gate = await enrolled_gate(client, org_a, eid, "G")
    status, body = await send(client, gate, [gate.checkin(2**63 - 1, outcome="deny")])
    assert status == 200 and body["stored"] == 1, body
    status, body = await send(client, gate, [gate.checkin(2**63, outcome="deny")])
    assert status == 422 and body["problems"][0]["field"] == "checkins.0.ticket_id", body
    conn = await asyncpg.connect(db_url)
    try:
        ids = await conn.fetch("SELECT ticket_id FROM checkins WHERE gate_id = $1", gate.gate_id)
    finally:
        await conn.close()
    assert [r[0] for r in ids] == [2**63 - 1]


@pytest.mark.parametrize("sent_at", [1e308, -1.0, 2.0**32])
async def test_a_sent_at_beyond_any_clock_is_a_named_422(
    client: TestClient, org_a: Org, sent_at: float
) -> None:
    """Scenario: ``sent_at`` of 1e308 produced a 300-digit warning; it is refused by name."""
    eid, tickets = await event_with_tickets(client, org_a, n=1)
    gate = await enrolled_gate(client, org_a, eid, "G")
    status, body = await send(client, gate, [gate.checkin(tickets[0])], sent_at=sent_at)
    assert status == 422 and [p["field"] for p in body["problems"]] == ["sent_at"], body


async def test_a_gate_clock_at_1970_is_corrected_and_warned_about_in_few_digits(
    client: TestClient, org_a: Org, caplog: pytest.LogCaptureFixture
) -> None:
    """A gate whose RTC battery died reads 1970: its push is kept (skew corrects it), the
    warning and the log line carry a bounded, rounded number."""
    caplog.set_level(logging.WARNING, "syncd.gatesync")
    eid, tickets = await event_with_tickets(client, org_a, n=1)
    gate = await enrolled_gate(client, org_a, eid, "G")
    status, body = await send(client, gate, [gate.checkin(tickets[0], at=5.0)], sent_at=10.0)
    assert status == 200 and body["stored"] == 1, body
    assert body["skew"] > 1.7e9 and len(body["clock_warning"]) < 100, body
    skews = [r.__dict__["skew"] for r in caplog.records if r.getMessage() == "gate clock off"]
    assert len(skews) == 1 and abs(skews[0]) < 2**32 and len(str(skews[0])) <= 14, skews


def _push(rows: list[dict[str, Any]], sent_at: float) -> PushRequest:
    """A push built without validation: what would reach the Pusher if the model missed it."""
    checkins = [CheckinIn.model_construct(**r) for r in rows]
    return PushRequest.model_construct(sent_at=sent_at, checkins=checkins)


async def _gates(pool: asyncpg.Pool, orgs: int, per_org: int) -> list[int]:
    for o in range(orgs):
        await pool.execute(
            "WITH o AS (INSERT INTO orgs (name) VALUES ($1) RETURNING org_id),"
            " e AS (INSERT INTO events (org_id, name) SELECT org_id, 'e' FROM o"
            "       RETURNING event_id, org_id)"
            " INSERT INTO gates (event_id, org_id, name)"
            " SELECT event_id, org_id, 'g' || i FROM e, generate_series(1, $2) i",
            f"org{o}",
            per_org,
        )
    return [r[0] for r in await pool.fetch("SELECT gate_id FROM gates ORDER BY gate_id")]


async def test_a_push_postgres_refuses_inside_a_group_fails_alone_and_the_group_still_commits(
    db_url: str,
) -> None:
    """Scenario: values that slip past the model (here built unvalidated) reach one group commit
    with 16 valid pushes of two organisations: an out-of-range seq (refused by the driver), a
    time sum that overflows float8 (refused by Postgres) and a gate deleted while its push
    waited. Each bad one alone fails, named; the 16 are stored, still sharing commits."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=2)
    assert pool is not None
    try:
        gates = await _gates(pool, orgs=2, per_org=8)
        now = time.time()
        pusher = Pusher(concurrency=1)
        good = [pusher.store(pool, g, _push([_row(1, g, now)], now), 0.0) for g in gates]
        poisons = [
            pusher.store(pool, gates[3], _push([_row(2**63, 1, now)], now), 0.0),
            pusher.store(pool, gates[9], _push([_row(2, 1, 1e308)], now), 1e308),
            pusher.store(pool, 10**9, _push([_row(1, 1, now)], now), 0.0),
        ]
        results = await asyncio.gather(*good[:7], *poisons, *good[7:], return_exceptions=True)
        rows = dict(await pool.fetch("SELECT gate_id, count(*) FROM checkins GROUP BY 1"))
        feed = await pool.fetchval("SELECT count(*) FROM change_feed")
    finally:
        await pool.close()
    seq, overflow, gone = results[7:10]
    assert isinstance(seq, PushRefused) and seq.state == "22000", seq
    assert isinstance(overflow, PushRefused) and overflow.state == "22003", overflow
    assert isinstance(gone, PushFailed) and gone.state == "P0001", gone
    ok = results[:7] + results[10:]
    assert all(isinstance(r, Stored) and r.stored == 1 and r.acked_seq == 1 for r in ok), ok
    assert rows == dict.fromkeys(gates, 1) and feed == 16
    assert pusher.pushes == 16 and pusher.groups <= 3 * math.ceil(math.log2(19)), pusher.groups


async def test_a_database_gone_fails_the_group_at_once_without_bisecting(db_url: str) -> None:
    """A closed pool says nothing about the pushes: every member learns it, none is retried."""
    pool = await asyncpg.create_pool(db_url, min_size=1, max_size=1)
    assert pool is not None
    gates = await _gates(pool, orgs=1, per_org=4)
    await pool.close()
    now = time.time()
    pusher = Pusher(concurrency=1)
    results = await asyncio.gather(
        *(pusher.store(pool, g, _push([_row(1, g, now)], now), 0.0) for g in gates),
        return_exceptions=True,
    )
    assert all(isinstance(r, asyncpg.InterfaceError) for r in results), results
    assert pusher.groups == 0
