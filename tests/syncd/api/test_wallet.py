"""The wallet (issue 17): rotating events, claim links, claims that reissue, lost phones, the
feed's ``event.updated``, and the attacks: unknown or replaced links, foreign tenants, bad keys,
link hopping between phones, a token in the logs."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.bundle import BundleReader
from shared.peering import b64, unb64
from shared.rotating import check_holder, check_step, parse_code, rotate, step_at
from shared.ticket import public_raw, verify_signature
from syncd.app import create_app
from syncd.settings import SyncdSettings
from tests.syncd.api.test_tickets import keyring
from tests.syncd.conftest import Org, create_event
from tests.syncd.gatekit import enrolled_gate, event_with_tickets


class Phone:
    """A holder's phone: its own key, as the wallet page makes one."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()

    @property
    def public(self) -> str:
        return b64(public_raw(self.key.public_key()))

    async def claim(self, client: TestClient, token: str, path: str = "claim") -> tuple[int, dict]:
        resp = await client.post(
            f"/wallet/api/{path}",
            json={"token": token, "holder_key": self.public},
            headers={"User-Agent": "TestPhone/1.0"},
        )
        return resp.status, await resp.json()

    def code(self, answer: dict, now: float | None = None) -> str:
        step = step_at(time.time() if now is None else now, answer["period"])
        return rotate(unb64(answer["pass"], 170), self.key, step)


async def link(client: TestClient, org: Org, event_id: int, ticket_id: int) -> str:
    resp = await client.post(
        f"/api/v1/events/{event_id}/tickets/{ticket_id}/wallet-link", headers=org.h("organiser")
    )
    assert resp.status == 201, await resp.text()
    body = await resp.json()
    assert body["url"].endswith(body["path"]) and body["path"].startswith("/wallet/#claim=tsw_")
    return str(body["path"].split("=", 1)[1])


async def ticket(client: TestClient, org: Org, event_id: int, ticket_id: int) -> dict:
    resp = await client.get(f"/api/v1/events/{event_id}/tickets/{ticket_id}", headers=org.h())
    assert resp.status == 200
    return dict(await resp.json())


@pytest.fixture
async def reclaiming(settings: SyncdSettings) -> AsyncIterator[TestClient]:
    """syncd that lets a link move a ticket at once, at most 3 times."""
    quick = settings.model_copy(update={"wallet_reclaim_seconds": 0, "wallet_max_claims": 3})
    async with TestClient(TestServer(create_app(quick))) as c:
        yield c


async def test_rotating_event_settings_validate_and_reach_the_bundle(
    client: TestClient, org_a: Org
) -> None:
    event = await create_event(client, org_a, rotating=True, rotation_period=15)
    assert event["rotating"] is True and event["rotation_period"] == 15
    url = f"/api/v1/events/{event['event_id']}"
    for bad in (
        {"rotation_period": 1},
        {"rotation_period": 301},
        {"rotating": "yes"},
        {"rotating": None},
    ):
        resp = await client.patch(url, json=bad, headers=org_a.h("organiser"))
        assert resp.status == 422, bad
    resp = await client.patch(url, json={"rotation_period": 30}, headers=org_a.h("viewer"))
    assert resp.status == 403
    resp = await client.get(f"{url}/bundle", headers=org_a.h("organiser"))
    assert resp.status == 200
    reader = BundleReader(
        io.BytesIO(await resp.read()), await keyring(client, org_a, event["event_id"])
    )
    assert reader.header.event.rotating is True and reader.header.event.rotation_period == 15


async def test_a_settings_change_reaches_gates_through_the_feed(
    client: TestClient, org_a: Org
) -> None:
    eid, _ = await event_with_tickets(client, org_a, 2)
    gate = await enrolled_gate(client, org_a, eid, "Gate A")
    resp = await client.get("/api/v1/gate/changes", params={"cursor": ""}, headers=gate.h())
    cursor = (await resp.json())["cursor"]
    resp = await client.patch(
        f"/api/v1/events/{eid}",
        json={"rotating": True, "rotation_period": 20, "reentry": "never"},
        headers=org_a.h("organiser"),
    )
    assert resp.status == 200
    resp = await client.get("/api/v1/gate/changes", params={"cursor": cursor}, headers=gate.h())
    changes = (await resp.json())["changes"]
    assert [c["kind"] for c in changes] == ["event.updated"]
    assert changes[0]["event"]["rotating"] is True
    assert changes[0]["event"]["rotation_period"] == 20
    assert changes[0]["event"]["reentry"] == "never"
    # the venue is no gate's business: no feed change for it
    cursor = (await resp.json())["cursor"]
    await client.patch(
        f"/api/v1/events/{eid}", json={"venue": "Hall"}, headers=org_a.h("organiser")
    )
    resp = await client.get("/api/v1/gate/changes", params={"cursor": cursor}, headers=gate.h())
    assert (await resp.json())["changes"] == []


async def test_claim_reissues_bound_to_the_phone_and_the_code_verifies(
    client: TestClient, org_a: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    eid, ids = await event_with_tickets(client, org_a, 2)
    before = await ticket(client, org_a, eid, ids[0])
    assert before["holder_bound"] is False and before["wallet"] is None
    token = await link(client, org_a, eid, ids[0])
    phone = Phone()
    status, answer = await phone.claim(client, token)
    assert status == 200, answer
    assert answer["ticket_id"] == ids[0] and answer["period"] == 10
    assert answer["holder"] == "Holder 0" and answer["event"]["event_id"] == eid
    assert abs(answer["server_time"] - time.time()) < 5
    code = parse_code(phone.code(answer))
    verify_signature(code, await keyring(client, org_a, eid))
    check_holder(code)
    check_step(code, time.time(), 10)
    after = await ticket(client, org_a, eid, ids[0])
    assert code.nonce == after["nonce"] != before["nonce"]  # claiming reissued the ticket
    assert after["holder_bound"] is True
    assert after["wallet"]["claims"] == 1 and after["wallet"]["device"] == "TestPhone/1.0"
    # a reload on the same phone changes nothing
    status, again = await phone.claim(client, token)
    assert status == 200 and parse_code(phone.code(again)).nonce == after["nonce"]
    assert (await ticket(client, org_a, eid, ids[0]))["wallet"]["claims"] == 1
    assert token not in caplog.text and token[4:] not in caplog.text


async def test_a_second_phone_waits_then_moves_the_ticket_and_the_first_is_told(
    client: TestClient, reclaiming: TestClient, org_a: Org
) -> None:
    eid, ids = await event_with_tickets(client, org_a, 1)
    token = await link(client, org_a, eid, ids[0])
    first, second = Phone(), Phone()
    assert (await first.claim(client, token))[0] == 200
    resp = await client.post(
        "/wallet/api/claim", json={"token": token, "holder_key": second.public}
    )
    assert resp.status == 429 and int(resp.headers["Retry-After"]) > 500
    assert (await resp.json())["error"] == "claim_rate_limited"
    status, answer = await second.claim(reclaiming, token)  # the same database, no wait
    assert status == 200
    status, body = await first.claim(reclaiming, token, "pass")
    assert status == 409 and body["error"] == "claimed_elsewhere"
    status, fresh = await second.claim(reclaiming, token, "pass")
    assert status == 200 and fresh["pass"] == answer["pass"]
    assert (await ticket(client, org_a, eid, ids[0]))["wallet"]["claims"] == 2


async def test_a_link_moves_a_ticket_a_bounded_number_of_times(
    reclaiming: TestClient, org_a: Org
) -> None:
    eid, ids = await event_with_tickets(reclaiming, org_a, 1)
    token = await link(reclaiming, org_a, eid, ids[0])
    for _ in range(3):
        assert (await Phone().claim(reclaiming, token))[0] == 200
    status, body = await Phone().claim(reclaiming, token)
    assert status == 429 and body["error"] == "claim_limit"
    fresh = await link(reclaiming, org_a, eid, ids[0])  # the organiser's new link works ...
    assert (await Phone().claim(reclaiming, fresh))[0] == 200
    status, body = await Phone().claim(reclaiming, token)  # ... and the old one is dead
    assert status == 401 and body["error"] == "unknown_link"
    t = await ticket(reclaiming, org_a, eid, ids[0])
    assert t["wallet"]["claims"] == 1 and t["wallet"]["claims_total"] == 4


async def test_hostile_claims_are_named_4xx(client: TestClient, org_a: Org) -> None:
    eid, ids = await event_with_tickets(client, org_a, 2)
    token = await link(client, org_a, eid, ids[0])
    good = Phone().public
    for body, status in (
        ({"token": "tsw_" + "A" * 43, "holder_key": good}, 401),
        ({"token": token, "holder_key": "A" * 42}, 422),
        ({"token": token, "holder_key": "!" * 43}, 422),
        ({"token": token, "holder_key": good, "extra": 1}, 422),
        ({"token": token[:-1] + "\u00e9", "holder_key": good}, 422),
        ({"token": "x" * 5000, "holder_key": good}, 422),
        ({"token": 5, "holder_key": good}, 422),
    ):
        resp = await client.post("/wallet/api/claim", json=body)
        assert resp.status == status, (body, await resp.text())
    resp = await client.post(
        "/wallet/api/claim", data="{", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    # a revoked ticket cannot be claimed, nor get a link
    resp = await client.post(
        f"/api/v1/events/{eid}/tickets/{ids[0]}/revoke", headers=org_a.h("organiser")
    )
    assert resp.status == 200
    status, body = await Phone().claim(client, token)
    assert status == 409 and body["error"] == "bad_status"
    resp = await client.post(
        f"/api/v1/events/{eid}/tickets/{ids[0]}/wallet-link", headers=org_a.h("organiser")
    )
    assert resp.status == 409


async def test_links_are_the_organisers_of_the_event_only(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    eid, ids = await event_with_tickets(client, org_a, 1)
    path = f"/api/v1/events/{eid}/tickets/{ids[0]}/wallet-link"
    assert (await client.post(path)).status == 401
    assert (await client.post(path, headers=org_a.h("viewer"))).status == 403
    assert (await client.post(path, headers=org_b.h("organiser"))).status == 404
    other, _ = await event_with_tickets(client, org_b, 1)
    resp = await client.post(
        f"/api/v1/events/{other}/tickets/{ids[0]}/wallet-link", headers=org_b.h("organiser")
    )
    assert resp.status == 404  # org B's event, org A's ticket


async def test_the_page_is_served_with_a_strict_policy_and_nothing_else(client: TestClient) -> None:
    resp = await client.get("/wallet/")
    assert resp.status == 200 and resp.content_type == "text/html"
    policy = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    for name in ("wallet.js", "sw.js", "wallet.css"):
        resp = await client.get(f"/wallet/{name}")
        assert resp.status == 200, name
    for bad in ("nope.js", "..%2F..%2Fsyncd%2Fsettings.py", "%2e%2e", "vendor/..%2F..%2Fapp.py"):
        resp = await client.get(f"/wallet/{bad}")
        assert resp.status == 404, bad
