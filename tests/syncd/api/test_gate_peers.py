"""syncd's side of the peer mesh: it certifies a gate's own key at enrolment with the event key,
tells the event's gates (feed and peers list) who enrolled and who was revoked, and keeps all of
it inside the event: another event's gate sees nothing of these gates."""

from __future__ import annotations

import asyncpg
from aiohttp.test_utils import TestClient

from shared.peering import b64, verify_certificate
from shared.protocol import EnrollResponse, PeersPage
from shared.ticket import generate_private_key, public_key_from_b64, public_raw
from syncd.feed import append as feed_append
from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, changes, create_gate, event_with_tickets


async def _enrol(client: TestClient, org: Org, eid: int, name: str) -> tuple[Gate, EnrollResponse]:
    created = await create_gate(client, org, eid, name)
    key = generate_private_key()
    resp = await client.post(
        "/api/v1/gate/enroll",
        json={"code": created["code"], "peer_key": b64(public_raw(key.public_key()))},
    )
    assert resp.status == 200, await resp.text()
    enrolled = EnrollResponse.model_validate(await resp.json())
    return Gate(enrolled.gate_id, name, enrolled.credential), enrolled


async def _peers(client: TestClient, gate: Gate, urls: list[str] | None) -> PeersPage:
    resp = await client.post("/api/v1/gate/peers", json={"urls": urls}, headers=gate.h())
    assert resp.status == 200, await resp.text()
    return PeersPage.model_validate(await resp.json())


async def test_certified_at_enrolment_listed_to_peers_and_revoked_in_the_feed(
    client: TestClient, org_a: Org
) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    a, enrolled = await _enrol(client, org_a, eid, "A")
    keys = {bytes.fromhex(k.kid): public_key_from_b64(k.public_key) for k in enrolled.keys}
    cert = verify_certificate(enrolled.certificate, eid, keys)
    assert (cert.gate_id, cert.name) == (a.gate_id, "A")
    b, _ = await _enrol(client, org_a, eid, "B")
    await _peers(client, b, ["http://10.0.0.12:8766"])
    page = await _peers(client, a, ["http://10.0.0.11:8766"])
    assert [(g.gate_name, g.revoked) for g in page.gates] == [("B", False)]
    assert page.urls == {str(b.gate_id): ["http://10.0.0.12:8766"]}
    verify_certificate(page.gates[0].certificate, eid, keys)
    feed = await changes(client, a)
    assert {c["kind"] for c in feed["changes"]} >= {"gate.enrolled"}
    resp = await client.delete(f"/api/v1/events/{eid}/gates/{b.gate_id}", headers=org_a.h())
    assert resp.status == 200
    later = await changes(client, a, feed["cursor"])
    revoked = [c["gate"] for c in later["changes"] if c["kind"] == "gate.revoked"]
    assert revoked and revoked[0]["gate_id"] == b.gate_id and revoked[0]["revoked"]
    page = await _peers(client, a, None)  # None leaves A's URLs as they are
    assert page.gates[0].revoked and str(b.gate_id) not in page.urls


async def test_peers_stay_inside_their_event_and_bad_input_is_a_422(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    a, _ = await _enrol(client, org_a, eid, "A")
    other_event, _ = await event_with_tickets(client, org_a)
    foreign_org, _ = await event_with_tickets(client, org_b)
    for event, org in ((other_event, org_a), (foreign_org, org_b)):
        stranger, _ = await _enrol(client, org, event, "Stranger")
        assert (await _peers(client, stranger, None)).gates == []
    assert [g.gate_name for g in (await _peers(client, a, None)).gates] == []
    for urls in (["ftp://x"], ["http://a b:1"], [f"http://h{i}:1" for i in range(9)]):
        resp = await client.post("/api/v1/gate/peers", json={"urls": urls}, headers=a.h())
        assert resp.status == 422
    created = await create_gate(client, org_a, eid, "Bad key")
    resp = await client.post(
        "/api/v1/gate/enroll", json={"code": created["code"], "peer_key": "*" * 43}
    )
    assert resp.status == 422
    no_auth = await client.post("/api/v1/gate/peers", json={"urls": None})
    assert no_auth.status == 401


async def test_gate_changes_wake_gates_but_are_no_list_change(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """A gate change advances the feed without a tickets.updated message; a ticket change, in
    the same kind of transaction, makes one. Counted inside each transaction (the relay cannot
    see, or delete, uncommitted rows), then rolled back."""
    eid, ids = await event_with_tickets(client, org_a)
    a, _ = await _enrol(client, org_a, eid, "A")
    conn = await asyncpg.connect(db_url)
    counted = []
    try:
        for change in ("gate", "ticket"):
            tx = conn.transaction()
            await tx.start()
            head = await conn.fetchval("SELECT change_seq FROM events WHERE event_id = $1", eid)
            if change == "gate":
                await feed_append.append_gate(conn, eid, "revoked", a.gate_id)
            else:
                await feed_append.append_ticket(conn, "updated", eid, ids[0])
            moved = await conn.fetchval("SELECT change_seq FROM events WHERE event_id = $1", eid)
            made = await conn.fetchval(
                "SELECT count(*) FROM outbox WHERE tx = pg_current_xact_id()"
                " AND routing_key = 'tickets.updated'"
            )
            counted.append((change, moved - head, made))
            await tx.rollback()
    finally:
        await conn.close()
    assert counted == [("gate", 1, 0), ("ticket", 1, 1)]
