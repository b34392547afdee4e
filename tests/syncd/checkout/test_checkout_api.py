"""The check-out setting on the events API: set, shown, changed, turned off, refused by name
when it is no "HH:MM", and carried to gates in the bundle header and the feed."""

from __future__ import annotations

import io

import pytest
from aiohttp.test_utils import TestClient

from shared.bundle import BundleReader
from tests.syncd.api.test_tickets import keyring
from tests.syncd.conftest import Org, create_event
from tests.syncd.gatekit import changes, enrolled_gate, event_with_tickets


async def test_set_show_change_and_turn_off(client: TestClient, org_a: Org) -> None:
    event = await create_event(client, org_a, checkout_time="04:00")
    url = f"/api/v1/events/{event['event_id']}"
    assert event["checkout_time"] == "04:00"
    shown = await (await client.get(url, headers=org_a.h("viewer"))).json()
    assert shown["checkout_time"] == "04:00"
    resp = await client.patch(url, json={"venue": "Hall"}, headers=org_a.h("organiser"))
    assert (await resp.json())["checkout_time"] == "04:00"  # left out: kept
    resp = await client.patch(url, json={"checkout_time": "05:30"}, headers=org_a.h("organiser"))
    assert (await resp.json())["checkout_time"] == "05:30"
    resp = await client.patch(url, json={"checkout_time": None}, headers=org_a.h("organiser"))
    assert (await resp.json())["checkout_time"] is None  # null: off
    listed = await (await client.get("/api/v1/events", headers=org_a.h("viewer"))).json()
    assert [e["checkout_time"] for e in listed["events"]] == [None]
    plain = await create_event(client, org_a)
    assert plain["checkout_time"] is None


@pytest.mark.parametrize(
    "bad", ["25:00", "24:00", "4:00", "04:60", "04:00:00", "", "04.00", 400, True, ["04:00"]]
)
async def test_a_bad_checkout_time_is_one_422_naming_the_field(
    client: TestClient, org_a: Org, bad: object
) -> None:
    event = await create_event(client, org_a)
    url = f"/api/v1/events/{event['event_id']}"
    for method, path in (("PATCH", url), ("POST", "/api/v1/events")):
        body = {"name": "Fest", "checkout_time": bad}
        resp = await client.request(method, path, json=body, headers=org_a.h("organiser"))
        assert resp.status == 422, (method, bad)
        problems = (await resp.json())["problems"]
        assert [p["field"] for p in problems] == ["checkout_time"], problems
        if isinstance(bad, str):
            assert "HH:MM from 00:00 to 23:59" in problems[0]["problem"]
    shown = await (await client.get(url, headers=org_a.h("viewer"))).json()
    assert shown["checkout_time"] is None  # nothing changed


async def test_only_organisers_of_the_event_set_it(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    event = await create_event(client, org_a)
    url = f"/api/v1/events/{event['event_id']}"
    body = {"checkout_time": "04:00"}
    assert (await client.patch(url, json=body, headers=org_a.h("viewer"))).status == 403
    assert (await client.patch(url, json=body, headers=org_b.h("organiser"))).status == 404
    assert (await client.patch(url, json=body)).status == 401
    shown = await (await client.get(url, headers=org_a.h("viewer"))).json()
    assert shown["checkout_time"] is None


async def test_gates_learn_it_from_the_bundle_and_the_feed(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a, 2)
    url = f"/api/v1/events/{eid}"
    gate = await enrolled_gate(client, org_a, eid, "Gate A")
    cursor = (await changes(client, gate))["cursor"]
    resp = await client.patch(url, json={"checkout_time": "04:00"}, headers=org_a.h("organiser"))
    assert resp.status == 200
    page = await changes(client, gate, cursor)
    assert [(c["kind"], c["event"]["checkout_time"]) for c in page["changes"]] == [
        ("event.updated", "04:00")
    ]
    for path, headers in (
        (f"{url}/bundle", org_a.h("organiser")),
        ("/api/v1/gate/snapshot", gate.h()),
    ):
        resp = await client.get(path, headers=headers)
        assert resp.status == 200
        reader = BundleReader(io.BytesIO(await resp.read()), await keyring(client, org_a, eid))
        assert reader.header.event.checkout_time == "04:00", path
    await client.patch(url, json={"checkout_time": None}, headers=org_a.h("organiser"))
    page = await changes(client, gate, page["cursor"])
    assert [c["event"]["checkout_time"] for c in page["changes"]] == [None]
