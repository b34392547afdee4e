"""Issue 12 point 5: a gate that pushes another organisation's ticket ids learns nothing of them.

Org A's gate pushes admissions, exits, double admissions (conflicts) and denials for org B's
ticket ids. They are kept as A's records of unknown tickets; no answer A can read (stats,
conflicts, ticket list, export, sheet, bundle, the gates' feed and presence) carries anything
of org B, and org B's answers carry nothing of A's pushes.
"""

from __future__ import annotations

import gzip
import secrets
import time

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from shared.protocol import PushRequest
from syncd.checkins.pusher import store_push
from tests.syncd.conftest import Org, create_event, push
from tests.syncd.gatekit import HEADER, Gate, changes, enrolled_gate, event_with_tickets, send

B_MARKS = ("SecretCatB", "Bob Hidden", "BREF-", "B-door", "b@example.org")


async def _org_b_event(client: TestClient, org_b: Org) -> tuple[int, list[int]]:
    eid = (await create_event(client, org_b, name="B fest"))["event_id"]
    rows = "".join(f"BREF-{i},Bob Hidden {i},b@example.org,SecretCatB,,,\n" for i in range(4))
    status, body = await push(client, org_b, eid, HEADER + rows)
    assert status == 200, body
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org_b.h())
    return eid, sorted(t["ticket_id"] for t in (await resp.json())["tickets"])


async def _seed(client: TestClient, a: Gate, ours: list[int], theirs: list[int]) -> None:
    """A's gate admits B's tickets (twice: conflicts), lets one out, denies one; and its own."""
    now = time.time()
    rows = [a.checkin(t, at=now + i) for i, t in enumerate(theirs)]
    rows += [a.checkin(theirs[0], at=now + 10), a.checkin(theirs[1], "out", at=now + 11)]
    rows += [a.checkin(theirs[2], outcome="deny", reason="unknown_ticket", at=now + 12)]
    rows += [a.checkin(t, at=now + 20 + i) for i, t in enumerate(ours)]
    status, body = await send(client, a, rows)
    assert status == 200 and body["stored"] == len(rows), body


def _clean(text: str, where: str) -> None:
    for mark in B_MARKS:
        assert mark not in text, f"{mark!r} of org B in {where}: {text[:400]}"


async def test_org_a_reads_nothing_of_org_b_after_pushing_its_ticket_ids(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    """Scenario: org A's /stats showed org B's category after A's gate pushed B's ticket ids
    (the per-category join had no event filter). Every endpoint A reads is checked."""
    ea, ours = await event_with_tickets(client, org_a, n=3)
    eb, theirs = await _org_b_event(client, org_b)
    await enrolled_gate(client, org_b, eb, "B-door")
    a, peer = (
        await enrolled_gate(client, org_a, ea, "A1"),
        await enrolled_gate(client, org_a, ea, "A2"),
    )
    await _seed(client, a, ours, theirs)
    h = org_a.h("organiser")
    resp = await client.get(f"/api/v1/events/{ea}/stats", headers=h)
    stats = await resp.json()
    assert resp.status == 200 and set(stats["categories"]) == {"GA", "VIP"}, stats
    assert sum(c["seen"] for c in stats["categories"].values()) == 3  # A's own tickets only
    assert stats["admitted"] == 3 + 4 + 1 and stats["conflicts"] == 1  # B's ids kept, unknown
    _clean(await resp.text(), "stats")
    for path in ("conflicts", "tickets", "export.csv", "sheet.html", "bundle", "gates"):
        resp = await client.get(f"/api/v1/events/{ea}/{path}", headers=h)
        assert resp.status == 200, (path, await resp.text())
        raw = await resp.read()
        _clean((gzip.decompress(raw) if path == "bundle" else raw).decode(), path)
    conflicts = await (await client.get(f"/api/v1/events/{ea}/conflicts", headers=h)).json()
    assert [c["ticket_id"] for c in conflicts["conflicts"]] == [theirs[0]]  # A's own record
    for t in theirs:
        for tail in ("", "/qr"):
            resp = await client.get(f"/api/v1/events/{ea}/tickets/{t}{tail}", headers=h)
            assert resp.status == 404, (t, tail)
        resp = await client.post(f"/api/v1/events/{ea}/tickets/{t}/revoke", headers=h)
        assert resp.status == 404
    feed = await changes(client, peer, "")
    _clean(str(feed), "change feed")
    assert {c["checkin"]["ticket_id"] for c in feed["changes"] if c["checkin"]} >= set(theirs[:2])
    resp = await client.get("/api/v1/gate/presence", headers=peer.h())
    _clean(await resp.text(), "presence")
    snapshot = await client.get("/api/v1/gate/snapshot", headers=peer.h())
    _clean(gzip.decompress(await snapshot.read()).decode(), "snapshot")


async def test_org_b_figures_do_not_move_when_org_a_pushes_its_ticket_ids(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    """The other side: B's stats, conflicts and tickets are untouched by A's gate's pushes."""
    ea, ours = await event_with_tickets(client, org_a, n=2)
    eb, theirs = await _org_b_event(client, org_b)
    await _seed(client, await enrolled_gate(client, org_a, ea, "A1"), ours, theirs)
    h = org_b.h("viewer")
    stats = await (await client.get(f"/api/v1/events/{eb}/stats", headers=h)).json()
    figures = ("admitted", "exits", "denied", "conflicts", "inside")
    assert {k: stats[k] for k in figures} == dict.fromkeys(figures, 0), stats
    assert stats["categories"] == {} and stats["gates"] == []
    conflicts = await (await client.get(f"/api/v1/events/{eb}/conflicts", headers=h)).json()
    assert conflicts == {"conflicts": []}
    tickets = await (await client.get(f"/api/v1/events/{eb}/tickets", headers=h)).json()
    assert {t["status"] for t in tickets["tickets"]} == {"valid"}


async def test_a_push_of_another_events_ticket_ids_never_waits_for_that_events_pushes(
    db_url: str,
) -> None:
    """Scenario: org A's gate pushes admissions of org B's ticket ids. The per-ticket locks that
    order conflict recomputes are per event, so A's push does not queue behind B's push on
    those tickets (B slowed by A, or A by B); within one event they still serialise."""
    conn_b, conn_a, conn_b2 = [await asyncpg.connect(db_url) for _ in range(3)]
    try:
        await conn_b.execute(
            "INSERT INTO orgs (name) VALUES ('a'), ('b'); INSERT INTO events (org_id, name)"
            " SELECT org_id, name FROM orgs ORDER BY org_id; INSERT INTO gates"
            " (event_id, org_id, name) SELECT event_id, org_id, 'g' || i FROM events,"
            " generate_series(1, 2) i"
        )
        gates = await conn_b.fetch("SELECT gate_id, event_id FROM gates ORDER BY event_id, gate_id")
        (a_gate, _), _, (b_gate, _), (b_gate2, _) = gates
        now = time.time()
        held = conn_b.transaction()
        await held.start()  # B's push of tickets 7 and 8: stored, locks held, not committed
        await store_push(conn_b, b_gate, _admissions(now, 7, 8), 0.0)
        for conn in (conn_a, conn_b2):
            await conn.execute("SET lock_timeout = '2s'")
        stored = await store_push(conn_a, a_gate, _admissions(now, 7, 8), 0.0)
        assert stored.stored == 2  # A got its locks while B's were held
        with pytest.raises(asyncpg.LockNotAvailableError):  # B's other gate does wait
            await store_push(conn_b2, b_gate2, _admissions(now, 8), 0.0)
        await held.rollback()
    finally:
        for conn in (conn_b, conn_a, conn_b2):
            await conn.close()


def _admissions(now: float, *tickets: int) -> PushRequest:
    rows = [
        {
            "seq": i + 1,
            "scan_id": secrets.token_hex(16),
            "ticket_id": t,
            "direction": "in",
            "outcome": "admit",
            "scanned_at": now + i,
        }
        for i, t in enumerate(tickets)
    ]
    return PushRequest.model_validate({"sent_at": now, "checkins": rows})
