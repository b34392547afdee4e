"""``POST /api/v1/gate/drill``: a gate reports its pre-doors drill; organisers see each gate's
last one in the gate list and the stats. Only a gate credential reports, only for its own gate;
the body is bounded, and whatever a hostile gate sends is a 422, never stored."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from tests.syncd.conftest import Org
from tests.syncd.gatekit import Gate, enrolled_gate, event_with_tickets

DRILL = "/api/v1/gate/drill"


def board(*statuses: str, **fields: Any) -> dict[str, Any]:
    names = ("list", "keys", "camera", "syncd", "clock", "journal", "disk", "peers", "hooks")
    items = [
        {"name": name, "status": s, "figure": f"{name} figure", "detail": f"why {name}"}
        for name, s in zip(names, statuses, strict=False)
    ]
    return {"ran_at": time.time(), "seconds": 2.5, "items": items, **fields}


async def _gates(client: TestClient, org: Org, eid: int) -> dict[str, dict[str, Any]]:
    resp = await client.get(f"/api/v1/events/{eid}/gates", headers=org.h("viewer"))
    assert resp.status == 200
    return {g["name"]: g for g in (await resp.json())["gates"]}


async def _stats(client: TestClient, org: Org, eid: int) -> dict[str, Any]:
    resp = await client.get(f"/api/v1/events/{eid}/stats", headers=org.h("viewer"))
    assert resp.status == 200
    return dict(await resp.json())


async def test_a_drill_is_stored_and_shown_in_the_gate_list_and_the_stats(
    client: TestClient, org_a: Org
) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    await enrolled_gate(client, org_a, eid, "South")
    resp = await client.post(
        DRILL, json=board("ok", "ok", "fail", "warn", "skip"), headers=north.h()
    )
    assert resp.status == 200, await resp.text()
    answer = await resp.json()
    assert answer["result"] == "red" and abs(answer["server_time"] - time.time()) < 60
    gates = await _gates(client, org_a, eid)
    drill = gates["North"]["last_drill"]
    assert (drill["result"], drill["failing"], drill["warning"]) == ("red", ["camera"], ["syncd"])
    assert drill["problems"] == [
        {"name": "camera", "status": "fail", "figure": "camera figure", "detail": "why camera"},
        {"name": "syncd", "status": "warn", "figure": "syncd figure", "detail": "why syncd"},
    ]
    assert drill["seconds"] == 2.5 and abs(drill["ran_at"] - time.time()) < 60
    assert gates["South"]["last_drill"] is None
    stats = await _stats(client, org_a, eid)
    rows = {g["name"]: g for g in stats["gates"]}
    assert (
        rows["North"]["last_drill"]["result"] == "red"
        and "items" not in rows["North"]["last_drill"]
    )
    assert rows["North"]["last_drill"]["failing"] == ["camera"]
    assert rows["North"]["last_drill"]["warning"] == ["syncd"]
    assert stats["drills"] == {"green": 0, "amber": 0, "red": 1, "never": 1}


async def test_the_last_drill_replaces_the_one_before(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    gate = await enrolled_gate(client, org_a, eid, "North")
    for statuses, result in (
        (("fail",), "red"),
        (("ok", "warn"), "amber"),
        (("ok", "skip"), "green"),
    ):
        resp = await client.post(DRILL, json=board(*statuses), headers=gate.h())
        assert (await resp.json())["result"] == result
    drill = (await _gates(client, org_a, eid))["North"]["last_drill"]
    assert drill["result"] == "green" and drill["problems"] == [] and drill["failing"] == []


async def test_only_a_gate_reports_and_only_for_itself(
    client: TestClient, org_a: Org, org_b: Org
) -> None:
    """No credential, a bad one, an organiser's token (even an admin's) or a revoked gate's
    cannot report; a gate of another event or organisation reports only for itself, and a body
    that names a gate is refused (the gate is who the credential says)."""
    eid, _ = await event_with_tickets(client, org_a)
    north = await enrolled_gate(client, org_a, eid, "North")
    foreign_event, _ = await event_with_tickets(client, org_b)
    stranger = await enrolled_gate(client, org_b, foreign_event, "Stranger")
    body = board("ok")
    assert (await client.post(DRILL, json=body)).status == 401
    bad = {"Authorization": "Bearer tsg_" + "x" * 43}
    assert (await client.post(DRILL, json=body, headers=bad)).status == 401
    for role in ("organiser", "admin"):
        assert (await client.post(DRILL, json=body, headers=org_a.h(role))).status == 403
    named = {**board("fail"), "gate_id": north.gate_id}
    assert (await client.post(DRILL, json=named, headers=stranger.h())).status == 422
    assert (await client.post(DRILL, json=board("fail"), headers=stranger.h())).status == 200
    assert (await _gates(client, org_a, eid))["North"]["last_drill"] is None
    assert (await _gates(client, org_b, foreign_event))["Stranger"]["last_drill"]["result"] == "red"
    resp = await client.delete(f"/api/v1/events/{eid}/gates/{north.gate_id}", headers=org_a.h())
    assert resp.status == 200
    assert (await client.post(DRILL, json=body, headers=north.h())).status == 401
    assert (await _gates(client, org_a, eid))["North"]["last_drill"] is None


def _hostile() -> list[object]:
    item = {"name": "list", "status": "ok", "figure": "", "detail": ""}
    good = board("ok")
    return [
        {**good, "items": []},
        {**good, "items": [item] * 17},
        {**good, "items": [{**item, "name": "List"}]},
        {**good, "items": [{**item, "name": "x" * 33}]},
        {**good, "items": [{**item, "name": "list; drop"}]},
        {**good, "items": [{**item, "status": "green"}]},
        {**good, "items": [{**item, "figure": "x" * 121}]},
        {**good, "items": [{**item, "detail": "y" * 241}]},
        {**good, "items": [{**item, "figure": "\x1b[2J\x1b[31mALL GREEN"}]},
        {**good, "items": [{**item, "detail": "a\nb"}]},
        {**good, "items": [{**item, "figure": "nul\x00"}]},
        {**good, "items": [{**item, "figure": "c1 \x9b31m"}]},
        {**good, "items": [{**item, "extra": 1}]},
        {**good, "items": [{**item, "status": None}]},
        {**good, "items": "list"},
        {**good, "ran_at": -1},
        {**good, "ran_at": 2**32},
        {**good, "ran_at": "now"},
        {**good, "seconds": -0.1},
        {**good, "seconds": 3601},
        {**good, "seconds": True},
        {**good, "result": "green"},
        {"items": good["items"], "seconds": 1},
        [good],
    ]


async def test_hostile_bodies_are_422_and_change_nothing(client: TestClient, org_a: Org) -> None:
    eid, _ = await event_with_tickets(client, org_a)
    gate = await enrolled_gate(client, org_a, eid, "North")
    for body in _hostile():
        resp = await client.post(DRILL, json=body, headers=gate.h())
        assert resp.status == 422, (body, resp.status, await resp.text())
        assert (await resp.json())["error"]
    for raw in (b'{"ran_at": 1, "seconds": NaN, "items": []}', b"{", b""):
        resp = await client.post(
            DRILL, data=raw, headers={**gate.h(), "Content-Type": "application/json"}
        )
        assert resp.status in (400, 422), raw
    assert (await _gates(client, org_a, eid))["North"]["last_drill"] is None


async def test_the_largest_board_the_protocol_allows_is_stored_whole(
    client: TestClient, org_a: Org
) -> None:
    """16 items with figures of 120 and details of 240 characters, each a different 4-byte
    character (nothing for Postgres to compress): about 25 kB, stored and shown as sent."""
    eid, _ = await event_with_tickets(client, org_a)
    gate: Gate = await enrolled_gate(client, org_a, eid, "North")
    chars = iter(range(0x1F300, 0x1F300 + 16 * 360))
    items = [
        {
            "name": f"check_{i:02}_" + "x" * 23,
            "status": "fail",
            "figure": "".join(chr(next(chars)) for _ in range(120)),
            "detail": "".join(chr(next(chars)) for _ in range(240)),
        }
        for i in range(16)
    ]
    body = {"ran_at": 0, "seconds": 0, "items": items}
    resp = await client.post(DRILL, json=body, headers=gate.h())
    assert resp.status == 200, await resp.text()
    drill = (await _gates(client, org_a, eid))["North"]["last_drill"]
    assert drill["problems"] == items and drill["result"] == "red" and len(drill["failing"]) == 16
    stats = await _stats(client, org_a, eid)
    assert stats["gates"][0]["last_drill"]["failing"] == [i["name"] for i in items]
