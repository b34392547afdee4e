"""Gate enrolment, scoping, push idempotency, the change feed and long-poll, conflicts."""

from __future__ import annotations

import asyncio
import time

import asyncpg
from aiohttp.test_utils import TestClient

from shared.protocol import ChangesPage, EnrollResponse, PushResponse
from syncd.keys import FEED_READS
from tests.syncd.conftest import Org
from tests.syncd.gatekit import changes, create_gate, enrolled_gate, event_with_tickets, send


async def test_enrol_code_is_single_use_and_expires(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    created = await create_gate(client, org_a, eid, "North")
    assert created["state"] == "pending" and len(created["code"]) == 19
    resp = await client.post("/api/v1/gate/enroll", json={"code": created["code"].lower()})
    assert resp.status == 200
    enrolled = EnrollResponse.model_validate(await resp.json())
    assert enrolled.credential.startswith("tsg_") and enrolled.event_id == eid
    assert enrolled.keys and enrolled.gate_name == "North"
    again = await client.post("/api/v1/gate/enroll", json={"code": created["code"]})
    assert again.status == 401
    stale = await create_gate(client, org_a, eid, "South")
    conn = await asyncpg.connect(db_url)
    try:
        await conn.execute("UPDATE gates SET code_expires_at = now() - interval '1 s'")
        stored = await conn.fetchval("SELECT count(*) FROM gates WHERE credential_hash IS NULL")
    finally:
        await conn.close()
    assert stored == 1  # the pending gate; no code or credential is stored in clear
    resp = await client.post("/api/v1/gate/enroll", json={"code": stale["code"]})
    assert resp.status == 401


async def test_gate_reaches_only_its_own_gate_endpoints(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    other, _ = await event_with_tickets(client, org_a)
    gate = await enrolled_gate(client, org_a, eid, "North")
    for path in (
        "/api/v1/events",
        f"/api/v1/events/{eid}",
        f"/api/v1/events/{eid}/gates",
        f"/api/v1/events/{other}/tickets",
        f"/api/v1/events/{eid}/stats",
        "/api/v1/whoami",
    ):
        resp = await client.get(path, headers=gate.h())
        assert resp.status == 403, path
    for role in ("admin", "organiser", "viewer"):
        for token in (org_a.h(role), org_b.h(role)):
            resp = await client.get("/api/v1/gate/changes", headers=token)
            assert resp.status == 403
            resp = await client.post("/api/v1/gate/checkins", json={}, headers=token)
            assert resp.status == 403
    # org B's gate sees nothing of org A's event
    eid_b, _ = await event_with_tickets(client, org_b)
    gate_b = await enrolled_gate(client, org_b, eid_b, "B")
    assert (await send(client, gate, [gate.checkin(tickets[0])]))[0] == 200
    page = ChangesPage.model_validate(await changes(client, gate_b))
    assert all(c.checkin is None for c in page.changes)
    resp = await client.delete(f"/api/v1/events/{eid}/gates/{gate.gate_id}", headers=org_a.h())
    assert resp.status == 200 and (await resp.json())["state"] == "revoked"
    assert (await send(client, gate, [gate.checkin(tickets[1])]))[0] == 401
    resp = await client.delete(f"/api/v1/events/{eid}/gates/{gate.gate_id}", headers=org_b.h())
    assert resp.status == 404


async def test_push_is_idempotent_and_acks_contiguous(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    gate = await enrolled_gate(client, org_a, eid, "North")
    rows = [gate.checkin(t) for t in tickets[:3]]
    for expected_stored in (3, 0, 0):
        status, body = await send(client, gate, rows)
        answer = PushResponse.model_validate(body)
        assert status == 200 and answer.acked_seq == 3 and answer.stored == expected_stored
        assert answer.committed_at is not None and answer.committed_at >= answer.server_time
    r4, r5, r6 = (
        gate.checkin(tickets[3]),
        gate.checkin(None, outcome="deny", reason="bad_sig"),
        (gate.checkin(tickets[4], direction="out")),
    )
    status, body = await send(client, gate, [r4, r6])  # seq 5 missing: ack stops at 4
    assert status == 200 and body["acked_seq"] == 4 and body["stored"] == 2
    status, body = await send(client, gate, [r5])
    assert body["acked_seq"] == 6 and body["stored"] == 1
    clash = {**rows[1], "scan_id": "f" * 32}
    new = gate.checkin(tickets[0], direction="out")
    status, body = await send(client, gate, [new, clash])
    assert status == 409 and body["error"] == "journal_clash" and body["seq"] == 2
    status, body = await send(client, gate, [new])
    assert status == 200 and body["stored"] == 1  # the refused batch left nothing behind


async def test_skew_corrects_times_and_warns(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    gate_clock = time.time() - 120  # gate A runs two minutes slow
    status, body = await send(client, a, [a.checkin(tickets[0], at=gate_clock - 5)], gate_clock)
    assert status == 200 and 119 < body["skew"] < 125 and "off" in body["clock_warning"]
    page = ChangesPage.model_validate(await changes(client, b, ""))
    ins = [c for c in page.changes if c.kind == "checkin.in"]
    assert len(ins) == 1 and ins[0].checkin is not None
    assert abs(ins[0].checkin.at - (time.time() - 5)) < 5 and ins[0].checkin.gate_name == "A"
    own = ChangesPage.model_validate(await changes(client, a, ""))
    assert not [c for c in own.changes if c.checkin is not None]  # a gate's own are left out
    status, body = await send(client, b, [b.checkin(tickets[1])])
    assert body["clock_warning"] is None


async def test_feed_pages_cursor_and_snapshot_required(client: TestClient, org_a: Org) -> None:
    eid, tickets = await event_with_tickets(client, org_a, n=5)
    gate = await enrolled_gate(client, org_a, eid, "North")
    page = ChangesPage.model_validate(await changes(client, gate, ""))
    added = [c for c in page.changes if c.kind == "ticket.added"]
    assert {c.ticket.ticket_id for c in added if c.ticket} == set(tickets)
    assert not page.more and not page.snapshot_required
    again = ChangesPage.model_validate(await changes(client, gate, page.cursor))
    assert again.changes == [] and again.cursor == page.cursor
    for bad in ("x", "-1", str(int(page.cursor) + 1), "9" * 30):
        assert (await changes(client, gate, bad))["snapshot_required"]
    resp = await client.get("/api/v1/gate/changes", params={"wait": "99"}, headers=gate.h())
    assert resp.status == 400


async def test_long_poll_wakes_on_another_gates_admission(client: TestClient, org_a: Org) -> None:
    """Online, a ticket admitted at gate A reaches gate B's waiting long-poll."""
    eid, tickets = await event_with_tickets(client, org_a)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    cursor = (await changes(client, b, ""))["cursor"]
    waiting = asyncio.create_task(changes(client, b, cursor, wait=30))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await send(client, a, [a.checkin(tickets[2])])
    page = ChangesPage.model_validate(await waiting)
    assert [(c.kind, c.checkin.ticket_id) for c in page.changes if c.checkin] == [
        ("checkin.in", tickets[2])
    ]


async def test_gates_woken_together_share_one_feed_read(client: TestClient, org_a: Org) -> None:
    """Eight gates long-poll from the head; one admission wakes them all with one feed read
    between them, each gets it, and the gate that made it gets only the cursor moved on."""
    eid, tickets = await event_with_tickets(client, org_a)
    a = await enrolled_gate(client, org_a, eid, "A")
    others = [await enrolled_gate(client, org_a, eid, f"B{i}") for i in range(8)]
    cursor = (await changes(client, a, ""))["cursor"]
    waiting = [asyncio.create_task(changes(client, g, cursor, wait=30)) for g in [a, *others]]
    await asyncio.sleep(0.3)
    assert not any(w.done() for w in waiting)
    reads = client.app[FEED_READS]
    before = reads.queries
    await send(client, a, [a.checkin(tickets[2])])
    own, *pages = [ChangesPage.model_validate(p) for p in await asyncio.gather(*waiting)]
    assert reads.queries - before == 1
    for page in pages:
        assert [(c.kind, c.checkin.ticket_id) for c in page.changes if c.checkin] == [
            ("checkin.in", tickets[2])
        ]
        assert page.cursor == pages[0].cursor != cursor
    assert own.changes == [] and own.cursor == pages[0].cursor


async def test_conflicts_earliest_corrected_time_is_the_entry(
    client: TestClient, org_a: Org
) -> None:
    eid, tickets = await event_with_tickets(client, org_a)
    a = await enrolled_gate(client, org_a, eid, "A")
    b = await enrolled_gate(client, org_a, eid, "B")
    now = time.time()
    t = tickets[0]
    await send(client, a, [a.checkin(t, at=now - 100)])  # A admits at -100, pushed first
    await send(client, b, [b.checkin(t, at=now - 300)])  # B admitted earlier, pushed late
    await send(client, a, [a.checkin(t, direction="out", at=now - 50), a.checkin(t, at=now - 40)])
    resp = await client.get(f"/api/v1/events/{eid}/conflicts", headers=org_a.h("viewer"))
    found = (await resp.json())["conflicts"]
    assert [(c["gate_name"], c["entry_gate_name"]) for c in found] == [("A", "B")]
    assert abs(found[0]["at"] - (now - 100)) < 5  # re-entry after the exit is no conflict
    page = ChangesPage.model_validate(await changes(client, b, ""))
    flags = [c.checkin.conflict for c in page.changes if c.checkin]
    assert flags == [True, False, False]
