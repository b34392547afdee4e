"""Events, key rotation, single-ticket actions, QR issuance, export and the signed bundle."""

from __future__ import annotations

import csv
import io

import pytest
from aiohttp.test_utils import TestClient

from shared.bundle import BundleReader
from shared.errors import RejectReason, TicketRejected
from shared.ticket import key_id, public_key_from_b64, verify_ticket
from tests.syncd.conftest import Org, create_event, push

HEADER = "external_ref,holder_name,email,category,zones,valid_from,valid_until\n"


async def keyring(client: TestClient, org: Org, event_id: int) -> dict:
    resp = await client.get(f"/api/v1/events/{event_id}/keys", headers=org.h("viewer"))
    keys = (await resp.json())["keys"]
    ring = {}
    for k in keys:
        public = public_key_from_b64(k["public_key"])
        assert key_id(public).hex() == k["kid"]
        if k["status"] == "active":
            ring[bytes.fromhex(k["kid"])] = public
    return ring


async def qr(client: TestClient, org: Org, event_id: int, ticket_id: int) -> str:
    resp = await client.get(
        f"/api/v1/events/{event_id}/tickets/{ticket_id}/qr", headers=org.h("organiser")
    )
    assert resp.status == 200
    return await resp.text()


async def setup_tickets(client: TestClient, org: Org) -> tuple[int, dict[str, dict]]:
    event = await create_event(client, org)
    eid = event["event_id"]
    await push(client, org, eid, HEADER + "T1,Ann,ann@x.org,VIP,VIP,,\nT2,Bob,,GA,,,\n")
    resp = await client.get(f"/api/v1/events/{eid}/tickets", headers=org.h())
    return eid, {t["external_ref"]: t for t in (await resp.json())["tickets"]}


async def test_event_crud_and_validation(client: TestClient, org_a: Org) -> None:
    event = await create_event(client, org_a, starts_at="2026-06-01T10:00:00+02:00")
    assert 0 < event["event_id"] <= 0xFFFFFFFF and event["zones"][1] == "VIP"
    url = f"/api/v1/events/{event['event_id']}"
    resp = await client.patch(
        url,
        json={"venue": "Hall", "zones": ["Main", "VIP", "Back", "Roof"]},
        headers=org_a.h("organiser"),
    )
    assert resp.status == 200 and (await resp.json())["venue"] == "Hall"
    resp = await client.patch(url, json={"zones": ["Main"]}, headers=org_a.h("organiser"))
    assert resp.status == 409
    for bad in (
        {"name": ""},
        {"name": "x", "zones": [f"z{i}" for i in range(17)]},
        {"name": "x", "timezone": "Mars/Base"},
        {"name": "x", "reentry": "sometimes"},
        {"name": "x", "starts_at": "2026-06-01T10:00:00"},
        {"name": "x", "bogus": 1},
    ):
        resp = await client.post("/api/v1/events", json=bad, headers=org_a.h("organiser"))
        assert resp.status == 422, bad
        assert (await resp.json())["problems"]
    resp = await client.get(url, headers=org_a.h("viewer"))
    assert (await resp.json())["tickets"] == {}


async def test_qr_verifies_and_reissue_changes_nonce(client: TestClient, org_a: Org) -> None:
    eid, got = await setup_tickets(client, org_a)
    ring = await keyring(client, org_a, eid)
    t1 = got["T1"]
    text = await qr(client, org_a, eid, t1["ticket_id"])
    ticket = verify_ticket(text, ring)
    assert (ticket.event_id, ticket.ticket_id, ticket.nonce, ticket.zone) == (
        eid,
        t1["ticket_id"],
        t1["nonce"],
        0b010,
    )
    resp = await client.post(
        f"/api/v1/events/{eid}/tickets/{t1['ticket_id']}/reissue", headers=org_a.h("organiser")
    )
    assert resp.status == 200
    new = verify_ticket(await qr(client, org_a, eid, t1["ticket_id"]), ring)
    assert new.nonce != ticket.nonce and new.nonce == (await resp.json())["nonce"]


async def test_revoke_block_unblock(client: TestClient, org_a: Org) -> None:
    eid, got = await setup_tickets(client, org_a)
    base = f"/api/v1/events/{eid}/tickets/{got['T2']['ticket_id']}"
    h = org_a.h("organiser")
    assert (await (await client.post(f"{base}/block", headers=h)).json())["status"] == "blocked"
    assert (await client.post(f"{base}/block", headers=h)).status == 409
    assert (await (await client.post(f"{base}/unblock", headers=h)).json())["status"] == "valid"
    resp = await client.post(f"{base}/revoke", headers=h)
    assert (await resp.json())["status"] == "revoked"
    assert (await client.post(f"{base}/unblock", headers=h)).status == 409
    _, result = await push(client, org_a, eid, HEADER + "T2,Bob,,GA,,,\n")
    assert result["same"] == 1
    resp = await client.get(base, headers=h)
    assert (await resp.json())["status"] == "revoked", "a push never undoes a manual revoke"
    assert (await client.post(f"{base}/explode", headers=h)).status == 404


async def test_rotation_and_retirement(client: TestClient, org_a: Org) -> None:
    eid, got = await setup_tickets(client, org_a)
    old_ring = await keyring(client, org_a, eid)
    (old_kid,) = old_ring
    resp = await client.post(f"/api/v1/events/{eid}/keys", headers=org_a.h("organiser"))
    assert resp.status == 201
    new_kid = bytes.fromhex((await resp.json())["kid"])
    text = await qr(client, org_a, eid, got["T1"]["ticket_id"])
    assert verify_ticket(text, old_ring).kid == old_kid, "old keys stay valid until retired"
    await push(client, org_a, eid, HEADER + "T3,New,,,,,\n")
    resp = await client.get(
        f"/api/v1/events/{eid}/tickets", params={"external_ref": "T3"}, headers=org_a.h()
    )
    t3 = (await resp.json())["tickets"][0]
    assert t3["kid"] == new_kid.hex(), "the new key signs new tickets"
    resp = await client.post(
        f"/api/v1/events/{eid}/keys/{new_kid.hex()}/retire", headers=org_a.h("organiser")
    )
    assert resp.status == 409, "the signer cannot be retired"
    resp = await client.post(
        f"/api/v1/events/{eid}/keys/{old_kid.hex()}/retire", headers=org_a.h("organiser")
    )
    assert resp.status == 200 and (await resp.json())["reissued"] == 2
    ring = await keyring(client, org_a, eid)
    assert list(ring) == [new_kid]
    with pytest.raises(TicketRejected) as exc:
        verify_ticket(text, ring)
    assert exc.value.reason == RejectReason.unknown_key
    verify_ticket(await qr(client, org_a, eid, got["T1"]["ticket_id"]), ring)


async def test_png_svg_sheet_and_export(client: TestClient, org_a: Org) -> None:
    eid, got = await setup_tickets(client, org_a)
    base = f"/api/v1/events/{eid}/tickets/{got['T1']['ticket_id']}/qr"
    resp = await client.get(base, params={"format": "png"}, headers=org_a.h("organiser"))
    assert resp.content_type == "image/png" and (await resp.read())[:8] == b"\x89PNG\r\n\x1a\n"
    resp = await client.get(base, params={"format": "svg"}, headers=org_a.h("organiser"))
    assert resp.content_type == "image/svg+xml" and b"<svg" in await resp.read()
    resp = await client.get(base, params={"format": "gif"}, headers=org_a.h("organiser"))
    assert resp.status == 400
    resp = await client.get(f"/api/v1/events/{eid}/sheet.html", headers=org_a.h("organiser"))
    page = await resp.text()
    assert resp.status == 200 and page.count("<svg") == 2 and "Ann" in page
    resp = await client.get(f"/api/v1/events/{eid}/export.csv", headers=org_a.h("organiser"))
    rows = list(csv.DictReader(io.StringIO(await resp.text())))
    ring = await keyring(client, org_a, eid)
    assert {r["external_ref"] for r in rows} == {"T1", "T2"}
    for r in rows:
        assert verify_ticket(r["qr_text"], ring).ticket_id == int(r["ticket_id"])
    assert rows[0]["zones"] == "VIP" and rows[1]["zones"] == "all"


@pytest.mark.parametrize("names", [True, False])
async def test_bundle_reads_back_and_verifies(client: TestClient, org_a: Org, names: bool) -> None:
    eid, got = await setup_tickets(client, org_a)
    t2 = got["T2"]
    await client.post(
        f"/api/v1/events/{eid}/tickets/{t2['ticket_id']}/block", headers=org_a.h("organiser")
    )
    await client.post(f"/api/v1/events/{eid}/keys", headers=org_a.h("organiser"))
    resp = await client.get(
        f"/api/v1/events/{eid}/bundle",
        params={"names": "1" if names else "0"},
        headers=org_a.h("organiser"),
    )
    assert resp.status == 200
    data = await resp.read()
    ring = await keyring(client, org_a, eid)
    header_keys = {}
    reader = BundleReader(io.BytesIO(data), ring)
    for k in reader.header.keys:
        header_keys[bytes.fromhex(k.kid)] = public_key_from_b64(k.public_key)
    rows = {t.ticket_id: t for t in reader.tickets()}
    reader.finish()
    assert reader.header.event.event_id == eid and reader.header.ticket_count == 2
    assert reader.header.event.zones == {"0": "Main", "1": "VIP", "2": "Backstage"}
    assert int(reader.header.cursor or 0) > 0
    for ref, ticket in got.items():
        text = await qr(client, org_a, eid, ticket["ticket_id"])
        verified = verify_ticket(text, header_keys)
        row = rows[verified.ticket_id]
        assert row.nonce == verified.nonce and row.zone == verified.zone
        assert row.holder == ({"T1": "Ann", "T2": "Bob"}[ref] if names else None)
    assert rows[t2["ticket_id"]].status == "blocked"
