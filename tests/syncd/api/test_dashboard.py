"""Issue 19: the organisers' dashboard API: its figures are the stats answer, its stream pushes
them when check-ins arrive (one computation for every open dashboard), and its tenancy, roles and
bounds are the API's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from syncd.app import create_app
from syncd.keys import DASHBOARD, POOL, SEEN
from syncd.settings import SyncdSettings
from tests.syncd.conftest import Org, create_event
from tests.syncd.gatekit import Gate, enrolled_gate, event_with_tickets, send

STREAM = "/api/v1/events/{}/dashboard/stream"


class Closed(Exception):
    """The stream said ``event: closed`` (its reason is the message)."""


@pytest.fixture
async def client(settings: SyncdSettings) -> AsyncIterator[TestClient]:
    quick = settings.model_copy(
        update={"dashboard_interval": 0.2, "dashboard_streams_per_token": 3}
    )
    async with TestClient(TestServer(create_app(quick))) as c:
        yield c


async def next_figures(resp: aiohttp.ClientResponse, within: float = 2.0) -> dict[str, Any]:
    """The next ``figures`` event of an open stream, within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        left = deadline - time.monotonic()
        block = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), max(0.01, left))
        if block.startswith(b"event: closed"):
            raise Closed(json.loads(block.split(b"data: ", 1)[1])["reason"])
        if block.startswith(b"event: figures"):
            figures: dict[str, Any] = json.loads(block.split(b"data: ", 1)[1])
            return figures


async def until(resp: aiohttp.ClientResponse, check: Any, within: float = 2.0) -> dict[str, Any]:
    """Figures events until one passes ``check``, all within ``within`` seconds."""
    deadline = time.monotonic() + within
    while True:
        figures = await next_figures(resp, deadline - time.monotonic())
        if check(figures):
            return figures


async def _world(client: TestClient, org: Org) -> tuple[int, list[int], Gate, Gate]:
    eid, tickets = await event_with_tickets(client, org, n=6)
    north = await enrolled_gate(client, org, eid, "North")
    south = await enrolled_gate(client, org, eid, "South")
    return eid, tickets, north, south


def _without_clock(stats: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in stats.items() if k != "at"}


async def test_the_figures_are_the_stats_answer_with_gates_chart_and_capacity(
    client: TestClient, org_a: Org
) -> None:
    """Admissions, an exit, a denial and a conflict (two gates admitted one ticket): the
    dashboard's ``stats`` is the stats endpoint's answer, its chart adds up to the stats'
    per-minute admissions, and each gate that pushed is online with the backlog it reported."""
    eid, t, north, south = await _world(client, org_a)
    now = time.time()
    rows = [north.checkin(t[0], at=now - 120), north.checkin(t[1], at=now - 60)]
    rows += [north.checkin(t[1], "out", at=now - 30), north.checkin(t[2], at=now - 5)]
    rows += [north.checkin(None, outcome="deny", reason="unknown_ticket", at=now - 4)]
    status, body = await send(client, north, rows)
    assert status == 200, body
    resp = await client.post(
        "/api/v1/gate/checkins",
        json={
            "sent_at": time.time(),
            "checkins": [south.checkin(t[0], at=now - 100)],
            "backlog": 7,
        },
        headers=south.h(),
    )
    assert resp.status == 200, await resp.text()
    await client.server.app[SEEN].write(client.server.app[POOL])
    stats = await (await client.get(f"/api/v1/events/{eid}/stats", headers=org_a.h())).json()
    resp = await client.get(f"/api/v1/events/{eid}/dashboard", headers=org_a.h("viewer"))
    assert resp.status == 200, await resp.text()
    dash = await resp.json()
    assert _without_clock(dash["stats"]) == _without_clock(stats)
    assert (stats["admitted"], stats["denied"], stats["conflicts"], stats["inside"]) == (4, 1, 1, 2)
    per_minute = {m["minute"]: m["admitted"] for m in stats["per_minute"]}
    chart = dash["chart"]
    summed = {
        m: sum(series[i] for series in chart["gates"].values())
        for i, m in enumerate(chart["minutes"])
    }
    assert {m: n for m, n in summed.items() if n} == {m: n for m, n in per_minute.items() if n}
    assert sum(summed.values()) == 5  # four entries and one exit, by minute
    gates = dash["gates"]
    assert gates[str(north.gate_id)]["online"] and gates[str(south.gate_id)]["online"]
    assert gates[str(south.gate_id)]["backlog"] == 7
    assert gates[str(north.gate_id)]["backlog"] is None  # pushed without reporting it
    assert dash["event"]["capacity"] == {}


async def test_a_push_reaches_an_open_dashboard_within_two_seconds(
    client: TestClient, org_a: Org
) -> None:
    """The stream opens with the figures; an admission, and then a denial alone (which does
    not advance the gates' feed), each reach it within 2 s."""
    eid, t, north, _ = await _world(client, org_a)
    async with client.get(STREAM.format(eid), headers=org_a.h("viewer")) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        first = await next_figures(resp)
        assert first["stats"]["admitted"] == 0
        await send(client, north, [north.checkin(t[0])])
        moved = await until(resp, lambda f: f["stats"]["admitted"] == 1)
        assert sum(sum(s) for s in moved["chart"]["gates"].values()) == 1
        await send(client, north, [north.checkin(t[5], outcome="deny", reason="reissued")])
        denied = await until(resp, lambda f: f["stats"]["denied"] == 1)
        assert denied["stats"]["denials"] == {"reissued": 1}


async def test_a_drill_and_a_capacity_reach_an_open_dashboard(
    client: TestClient, org_a: Org
) -> None:
    """A gate's drill report and a new capacity change no check-in, and still show at once."""
    eid, _, north, _ = await _world(client, org_a)
    async with client.get(STREAM.format(eid), headers=org_a.h("viewer")) as resp:
        await next_figures(resp)
        report = {
            "ran_at": time.time(),
            "seconds": 3.0,
            "items": [{"name": "camera", "status": "fail", "detail": "no frames"}],
        }
        answer = await client.post("/api/v1/gate/drill", json=report, headers=north.h())
        assert answer.status == 200, await answer.text()
        drilled = await until(resp, lambda f: any(g["last_drill"] for g in f["stats"]["gates"]))
        (gate,) = [g for g in drilled["stats"]["gates"] if g["last_drill"]]
        assert gate["last_drill"]["result"] == "red"
        patched = await client.patch(
            f"/api/v1/events/{eid}",
            json={"capacity": {"*": 500, "VIP": 40}},
            headers=org_a.h("organiser"),
        )
        assert patched.status == 200, await patched.text()
        await until(resp, lambda f: f["event"]["capacity"] == {"*": 500, "VIP": 40})


async def test_tenancy_and_roles_of_both_endpoints(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    """Another organisation's token gets 404 (the event's existence is not disclosed), a gate
    credential 403, a wrong or missing token 401; viewer, organiser and admin all read."""
    eid, _, north, _ = await _world(client, org_a)
    for path in (f"/api/v1/events/{eid}/dashboard", STREAM.format(eid)):
        for role in ("viewer", "organiser", "admin"):
            async with client.get(path, headers=org_b.h(role)) as resp:
                assert resp.status == 404, (path, role)
                assert "Festival" not in await resp.text()
        async with client.get(path, headers=north.h()) as resp:
            assert resp.status == 403, path
        for headers in ({}, {"Authorization": "Bearer tsr_" + "x" * 43}):
            async with client.get(path, headers=headers) as resp:
                assert resp.status == 401, path
        for role in ("viewer", "organiser", "admin"):
            async with client.get(path, headers=org_a.h(role)) as resp:
                assert resp.status == 200, (path, role)
                if path.endswith("stream"):
                    assert (await next_figures(resp))["event"]["event_id"] == eid


async def test_a_hundred_dashboards_share_one_computation_per_change(
    client: TestClient, org_a: Org, db_url: str
) -> None:
    """100 open dashboards of one event (34 tokens, 3 streams each at most): one admission
    reaches all of them, computed once or twice (folded), never once per dashboard."""
    eid, t, north, _ = await _world(client, org_a)
    hub = client.server.app[DASHBOARD]
    tokens = [org_a.tokens["viewer"]] + [await _token(client, org_a, i) for i in range(33)]
    url = client.make_url(STREAM.format(eid))
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as screens:
        streams = []
        for i in range(100):
            auth = {"Authorization": f"Bearer {tokens[i // 3]}"}
            resp = await screens.get(url, headers=auth)
            assert resp.status == 200
            streams.append(resp)
        await asyncio.gather(*(next_figures(r, 10) for r in streams))
        assert hub.viewers == 100
        before = hub.computations
        await send(client, north, [north.checkin(t[0])])
        moved = await asyncio.gather(
            *(until(r, lambda f: f["stats"]["admitted"] == 1, 5) for r in streams)
        )
        assert len(moved) == 100
        assert 1 <= hub.computations - before <= 2
        for resp in streams:
            resp.close()


async def _token(client: TestClient, org: Org, i: int) -> str:
    resp = await client.post(
        "/api/v1/tokens", json={"name": f"screen {i}", "role": "viewer"}, headers=org.h("admin")
    )
    assert resp.status == 201, await resp.text()
    token: str = (await resp.json())["token"]
    return token


async def test_a_token_holds_a_bounded_number_of_streams(client: TestClient, org_a: Org) -> None:
    """With SYNCD_DASHBOARD_STREAMS_PER_TOKEN=3 a fourth stream of one token closes the oldest,
    which is told why; the other three stay open."""
    eid, _, _, _ = await _world(client, org_a)
    streams = []
    for _ in range(4):
        resp = await client.get(STREAM.format(eid), headers=org_a.h("viewer"))
        await next_figures(resp)
        streams.append(resp)
    with pytest.raises(Closed, match="replaced"):
        await next_figures(streams[0])
    assert client.server.app[DASHBOARD].viewers == 3
    for resp in streams:
        resp.close()


async def test_revoking_the_token_closes_its_dashboards(client: TestClient, org_a: Org) -> None:
    """Scenario: a steward's phone is lost; the admin revokes its token. Its open dashboard is
    told and closed at once, and the token opens no new one."""
    eid, _, _, _ = await _world(client, org_a)
    token = await _token(client, org_a, 0)
    headers = {"Authorization": f"Bearer {token}"}
    tokens = await (await client.get("/api/v1/tokens", headers=org_a.h("admin"))).json()
    (token_id,) = [x["token_id"] for x in tokens["tokens"] if x["name"] == "screen 0"]
    async with client.get(STREAM.format(eid), headers=headers) as resp:
        await next_figures(resp)
        revoked = await client.delete(f"/api/v1/tokens/{token_id}", headers=org_a.h("admin"))
        assert revoked.status == 200, await revoked.text()
        with pytest.raises(Closed, match="revoked"):
            await next_figures(resp, 5)
    async with client.get(STREAM.format(eid), headers=headers) as resp:
        assert resp.status == 401


async def test_capacity_is_checked_against_the_zones_and_follows_a_rename(
    client: TestClient, org_a: Org
) -> None:
    """Capacity keys are the event's zones or "*"; a bad key, a zero or a string is a 422 with
    a message naming it; renaming a zone keeps its capacity."""
    event = await create_event(client, org_a, capacity={"*": 1000, "VIP": 50})
    assert event["capacity"] == {"*": 1000, "VIP": 50}
    eid = event["event_id"]
    h = org_a.h("organiser")
    for bad, words in (
        ({"Garden": 5}, "'Garden'"),
        ({"VIP": 0}, "capacity"),
        ({"VIP": "50"}, "capacity"),
        ({"": 5}, "capacity"),
    ):
        resp = await client.patch(f"/api/v1/events/{eid}", json={"capacity": bad}, headers=h)
        assert resp.status == 422, (bad, await resp.text())
        assert words in await resp.text(), bad  # the message or the field's location
    resp = await client.post(
        "/api/v1/events", json={"name": "X", "capacity": {"Main": 5}}, headers=h
    )
    assert resp.status == 422 and "zones: none" in (await resp.json())["message"]
    zones = ["Main", "VIP Lounge", "Backstage"]
    resp = await client.patch(f"/api/v1/events/{eid}", json={"zones": zones}, headers=h)
    assert (await resp.json())["capacity"] == {"*": 1000, "VIP Lounge": 50}
    resp = await client.patch(f"/api/v1/events/{eid}", json={"capacity": {}}, headers=h)
    assert (await resp.json())["capacity"] == {}
    viewer = await client.patch(
        f"/api/v1/events/{eid}", json={"capacity": {"*": 1}}, headers=org_a.h("viewer")
    )
    assert viewer.status == 403


async def test_a_long_polling_gate_is_online_and_a_silent_one_is_not(
    client: TestClient, org_a: Org
) -> None:
    """Online means seen (push, long-poll, open stream) within SYNCD_GATE_ONLINE_SECONDS: a
    gate that long-polled is online once its replica wrote its sightings; one enrolled but
    never heard from is offline; a created, unenrolled one is pending."""
    eid, _, north, south = await _world(client, org_a)
    pending = await client.post(
        f"/api/v1/events/{eid}/gates", json={"name": "Side"}, headers=org_a.h("organiser")
    )
    side = (await pending.json())["gate_id"]
    resp = await client.get("/api/v1/gate/changes", headers=north.h())
    assert resp.status == 200
    assert await client.server.app[SEEN].write(client.server.app[POOL]) == 1
    dash = await (await client.get(f"/api/v1/events/{eid}/dashboard", headers=org_a.h())).json()
    gates = dash["gates"]
    assert gates[str(north.gate_id)]["online"] is True
    assert gates[str(north.gate_id)]["seen_at"] == pytest.approx(time.time(), abs=10)
    assert gates[str(south.gate_id)] == {
        "state": "enrolled",
        "online": False,
        "seen_at": None,
        "backlog": None,
        "backlog_at": None,
    }
    assert gates[str(side)]["state"] == "pending" and not gates[str(side)]["online"]
    assert await client.server.app[SEEN].write(client.server.app[POOL]) == 0  # nothing new
