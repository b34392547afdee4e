"""Annulments, passages and tailgates as syncd stores them (issue 18): an annulment marks its
gate's admission, which then counts nowhere (presence, figures, conflicts) and reaches every
gate through the feed; passages and tailgates count per gate."""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, changes, enrolled_gate, event_with_tickets, send


def door_row(gate: Gate, outcome: str, ticket: int | None, ref: int | None, **kw: Any) -> dict:
    gate.seq += 1
    row = {
        "seq": gate.seq,
        "scan_id": uuid.uuid4().hex,
        "ticket_id": ticket,
        "direction": kw.get("direction", "in"),
        "outcome": outcome,
        "reason": kw.get("reason"),
        "via": kw.get("via", "kiosk"),
        "scanned_at": kw.get("at", time.time()),
        "ref_seq": ref,
    }
    gate.sent.append(row)
    return row


async def stats(client: TestClient, org: Org, eid: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/events/{eid}/stats", headers=org.h("viewer"))
    assert resp.status == 200
    return dict(await resp.json())


async def test_annulment_undoes_an_admission_everywhere(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    south = await enrolled_gate(client, org_a, eid, "South")
    t0 = time.time() - 60
    admit = north.checkin(tickets[0], at=t0)
    other = north.checkin(tickets[1], at=t0 + 1)
    status, _ = await send(client, north, [admit, other])
    assert status == 200
    before = await stats(client, org_a, eid)
    assert (before["admitted"], before["inside"], before["annulled"]) == (2, 2, 0)

    status, body = await send(
        client, north, [door_row(north, "annul", tickets[0], admit["seq"], reason="staff")]
    )
    assert status == 200 and body["acked_seq"] == 3
    after = await stats(client, org_a, eid)
    assert (after["admitted"], after["inside"], after["annulled"]) == (1, 1, 1)
    gate_row = next(g for g in after["gates"] if g["gate_id"] == north.gate_id)
    assert (gate_row["admitted"], gate_row["annulled"], gate_row["inside"]) == (1, 1, 1)
    assert after["per_minute"] and sum(m["admitted"] for m in after["per_minute"]) == 1
    assert sum(m["scans"] for m in after["per_minute"]) == 2  # an annulment is no scan

    # Another gate learns it from the feed: the entry, then its annulment (with ref_seq).
    page = await changes(client, south)
    kinds = [(c["kind"], c["checkin"]["ticket_id"]) for c in page["changes"] if c["checkin"]]
    assert kinds == [
        ("checkin.in", tickets[0]),
        ("checkin.in", tickets[1]),
        ("checkin.annulled", tickets[0]),
    ]
    annulled = page["changes"][-1]["checkin"]
    assert annulled["ref_seq"] == admit["seq"] and annulled["gate_name"] == "North"
    # ... and a gate that starts from a snapshot sees only who is really inside.
    resp = await client.get("/api/v1/gate/presence", headers=south.h())
    inside = [c["ticket_id"] for c in (await resp.json())["inside"]]
    assert inside == [tickets[1]]


async def test_annulled_entry_is_no_conflict(client: TestClient, org_a: Org) -> None:
    """Admitted at North, annulled (the turnstile did not turn), then admitted at South: the
    second entry is the only one, not a double entry."""
    eid, tickets = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    south = await enrolled_gate(client, org_a, eid, "South")
    t0 = time.time() - 30
    await send(client, south, [south.checkin(tickets[0], at=t0 + 10)])  # pushed first
    first = north.checkin(tickets[0], at=t0)
    status, _ = await send(client, north, [first])
    assert status == 200
    assert (await stats(client, org_a, eid))["conflicts"] == 1  # South's entry, for now
    # North's annulment comes later: South's flag is recomputed and cleared.
    rows = [door_row(north, "annul", tickets[0], first["seq"], at=t0 + 5, reason="not_passed")]
    status, _ = await send(client, north, rows)
    assert status == 200
    figures = await stats(client, org_a, eid)
    assert (figures["conflicts"], figures["inside"], figures["admitted"]) == (0, 1, 1)
    resp = await client.get(f"/api/v1/events/{eid}/conflicts", headers=org_a.h("viewer"))
    assert (await resp.json())["conflicts"] == []


async def test_admission_and_its_annulment_in_one_batch(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    admit = north.checkin(tickets[2])
    rows = [admit, door_row(north, "annul", tickets[2], admit["seq"], reason="staff")]
    status, _ = await send(client, north, rows)
    assert status == 200
    figures = await stats(client, org_a, eid)
    assert (figures["admitted"], figures["inside"], figures["annulled"]) == (0, 0, 1)


async def test_passages_and_tailgates_count_per_gate(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    lane = await enrolled_gate(client, org_a, eid, "Lane 1")
    admit = lane.checkin(tickets[0])
    rows = [
        admit,
        door_row(lane, "passed", tickets[0], admit["seq"], via="gpio"),
        door_row(lane, "tailgate", None, None, via="gpio"),
        door_row(lane, "tailgate", None, None, via="http"),
    ]
    status, _ = await send(client, lane, rows)
    assert status == 200
    figures = await stats(client, org_a, eid)
    assert (figures["passed"], figures["tailgates"], figures["admitted"]) == (1, 2, 1)
    assert figures["denied"] == 0  # a tailgate is not a denied scan
    row = next(g for g in figures["gates"] if g["gate_id"] == lane.gate_id)
    assert (row["passed"], row["tailgates"]) == (1, 2)
    assert figures["zones"][""]["tailgates"] == 2


async def test_an_annulment_cannot_reach_another_gates_admission(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """ref_seq names the pushing gate's own journal: a gate cannot undo another's entry."""
    eid, tickets = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    rogue = await enrolled_gate(client, org_a, eid, "Rogue")
    admit = north.checkin(tickets[0])
    await send(client, north, [admit])
    rogue.seq = admit["seq"]  # its own seq 1 does not exist; it names North's seq
    status, _ = await send(
        client, rogue, [door_row(rogue, "annul", tickets[0], admit["seq"], reason="staff")]
    )
    assert status == 200  # kept as Rogue's record, and changes nothing
    figures = await stats(client, org_a, eid)
    assert (figures["admitted"], figures["inside"], figures["annulled"]) == (1, 1, 0)
    conn = await asyncpg.connect(db_url)
    try:
        marked = await conn.fetchval("SELECT count(*) FROM checkins WHERE annulled")
    finally:
        await conn.close()
    assert marked == 0


async def test_malformed_door_rows_are_refused_whole(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    gate = await enrolled_gate(client, org_a, eid, "North")
    base = {"scan_id": "ab" * 16, "ticket_id": tickets[0], "direction": "in", "scanned_at": 1.0}
    for bad in (
        {"seq": 2, "outcome": "annul"},  # no ref_seq
        {"seq": 2, "outcome": "annul", "ref_seq": 2},  # itself
        {"seq": 2, "outcome": "passed", "ref_seq": 3},  # a later seq
        {"seq": 2, "outcome": "admit", "ref_seq": 1},  # an admission names none
        {"seq": 2, "outcome": "tailgate", "ref_seq": 1},
        {"seq": 2, "outcome": "annul", "ref_seq": 0},
        {"seq": 2, "outcome": "annul", "ref_seq": "1"},
        {"seq": 2, "outcome": "annul", "ref_seq": 2**63},
        {"seq": 2, "outcome": "undo", "ref_seq": 1},
    ):
        status, body = await send(client, gate, [{**base, **bad}])
        assert status == 422, (bad, body)
    figures = await stats(client, org_a, eid)
    assert figures["annulled"] == 0 and figures["admitted"] == 0


_OLD_STORE = """SELECT acked, stored, conflicts, event_id, adm_seqs, adm_tickets, adm_kinds
FROM tessera_store_push($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"""
"""The call of a syncd from before door operations (its pusher.py), word for word."""


async def test_a_replica_on_the_older_code_still_stores_pushes(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """A rolling upgrade: once `syncd migrate` has run, a replica not yet restarted calls the
    11-argument function. Its pushes are stored as the new code stores them (conflicts and
    the feed included), beside the new replicas' pushes of the same gate."""
    eid, tickets = await event_with_tickets(client, org_a, n=2)
    gate = await enrolled_gate(client, org_a, eid, "G")
    status, _ = await send(client, gate, [gate.checkin(tickets[0])])  # a new replica
    assert status == 200
    now = time.time()
    conn = await asyncpg.connect(db_url)
    try:
        old = await conn.fetchrow(
            _OLD_STORE,
            gate.gate_id,
            0.0,
            [2, 3],
            [uuid.uuid4().bytes, uuid.uuid4().bytes],
            [tickets[1], tickets[0]],
            ["in", "in"],
            ["admit", "admit"],
            [None, None],
            ["scanner", "scanner"],
            [now, now + 1],
            True,
        )
        stored = await conn.fetch(
            "SELECT seq, ticket_id, conflict FROM checkins WHERE gate_id = $1 ORDER BY seq",
            gate.gate_id,
        )
    finally:
        await conn.close()
    assert old is not None and (old["acked"], old["stored"], old["conflicts"]) == (3, 2, 1)
    assert [tuple(r) for r in stored] == [
        (1, tickets[0], False),
        (2, tickets[1], False),
        (3, tickets[0], True),  # already inside since seq 1: the new body's rules apply
    ]
    assert (await stats(client, org_a, eid))["admitted"] == 3
